"""Train PPO or TD3 with Stable-Baselines3 on the batched ARES EA environment, into a run directory.

The training env is ``AresEAVecEnv(config.env, n_envs)`` wrapped in ``VecMonitor``,
``VecNormalize`` (observation and reward normalisation as configured) and, with
``frame_stack``, ``VecFrameStack``. :func:`train` writes the run directory described in
:mod:`envlib.runs` while it trains: episodes, periodic evaluations on fixed seeds and a
progress record about every half second, and at the end the model and the normaliser.

Stopping: any SB3 callback returning False, or a ``STOP`` file in the run directory, ends
training at the next step; the model reached so far is saved and the run is ``stopped``.

Every key of :class:`~envlib.config.TrainConfig` is honoured. For TD3, which has no
rollouts or epochs, ``n_steps`` is the number of steps of each env between updates
(``train_freq``), and each update makes as many gradient steps as PPO would on that much
data (``n_epochs * n_steps * n_envs / batch_size``); ``ent_coef``, ``gae_lambda`` and
``clip_range`` are PPO's only.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.vec_env import VecEnv, VecFrameStack, VecMonitor, VecNormalize

from envlib.agent import ALGORITHMS, Agent, policy_kwargs
from envlib.batched import AresEAVecEnv
from envlib.config import RunConfig
from envlib.evaluation import evaluate, evaluation_seeds
from envlib.runs import (
    EPISODE_COLUMNS,
    EPISODES_FILE,
    EVALUATION_COLUMNS,
    EVALUATIONS_FILE,
    MODEL_FILE,
    NORMALIZER_FILE,
    STOP_FILE,
    CsvLog,
    ObsNormalizer,
    Progress,
    Status,
    write_atomic,
    write_config,
    write_progress,
)

#: Seconds between two writes of ``progress.json``.
PROGRESS_INTERVAL_S = 0.5
#: TD3: exploration noise std as a fraction of the half-width of the action range.
TD3_ACTION_NOISE = 0.1


@dataclass
class TrainResult:
    """What :func:`train` returns.

    :param run_dir: the run directory.
    :param status: ``finished`` or ``stopped``.
    :param timesteps: environment steps trained.
    :param elapsed_s: wall time of the run, s.
    :param evaluation: metrics of the last evaluation on fixed seeds, or None if disabled.
    """

    run_dir: Path
    status: Status
    timesteps: int
    elapsed_s: float
    evaluation: dict[str, float] | None


def make_vec_env(config: RunConfig) -> VecEnv:
    """The wrapped training env: AresEAVecEnv -> VecMonitor -> VecNormalize [-> VecFrameStack]."""
    train = config.train
    venv: VecEnv = VecMonitor(AresEAVecEnv(config.env, n_envs=train.n_envs))
    venv = VecNormalize(
        venv,
        training=True,
        norm_obs=train.normalize_observation,
        norm_reward=train.normalize_reward,
        gamma=train.gamma,
    )
    if train.frame_stack:
        venv = VecFrameStack(venv, n_stack=train.frame_stack)
    return venv


def optimizer_kwargs(algorithm: str) -> dict[str, Any]:
    """Adam's settings as SB3 chooses them for ``algorithm``, run as torch's fused kernel.

    The same algorithm in one call per step instead of ~10 per parameter tensor: the
    tutorial config's 20,000 PPO minibatches take ~17 % less time. The rounding differs
    from the per-tensor loop in the last bits, so an agent differs from plain SB3's in
    detail, not in kind; the shipped agents were trained this way.
    """
    eps = {"eps": 1e-5} if algorithm == "PPO" else {}  # SB3's ActorCriticPolicy sets 1e-5 for Adam
    return {**eps, "fused": True}


@contextlib.contextmanager
def distribution_checks_off() -> Iterator[None]:
    """Skip torch.distributions' argument checks while SB3 trains.

    SB3 builds a distribution per rollout step and per minibatch, and checks its inputs
    each time; they come from the policy network, so the checks cannot fail on our side.
    Same numbers, ~3 % less time per minibatch. The previous default is restored after.
    """
    previous = torch.distributions.Distribution._validate_args  # torch has no public getter
    torch.distributions.Distribution.set_default_validate_args(False)
    try:
        yield
    finally:
        torch.distributions.Distribution.set_default_validate_args(previous)


def make_model(config: RunConfig, venv: VecEnv) -> BaseAlgorithm:
    """A new PPO or TD3 model on ``venv`` with every training key of ``config`` applied."""
    train = config.train
    lr = train.learning_rate
    learning_rate: Any = (lambda remaining: lr * remaining) if train.lr_schedule == "linear" else lr
    common = {
        "learning_rate": learning_rate,
        "gamma": train.gamma,
        "batch_size": train.batch_size,
        "policy_kwargs": {**policy_kwargs(train), "optimizer_kwargs": optimizer_kwargs(train.algorithm)},
        "seed": train.seed,
        "device": "cpu",
        "verbose": 0,
    }
    if train.algorithm == "PPO":
        return ALGORITHMS["PPO"](
            "MlpPolicy",
            venv,
            n_steps=train.n_steps,
            n_epochs=train.n_epochs,
            ent_coef=train.ent_coef,
            gae_lambda=train.gae_lambda,
            clip_range=train.clip_range,
            **common,
        )
    rollout = train.n_steps * train.n_envs
    half_width = (venv.action_space.high - venv.action_space.low) / 2
    return ALGORITHMS["TD3"](
        "MlpPolicy",
        venv,
        buffer_size=min(1_000_000, max(train.total_timesteps, rollout)),
        learning_starts=rollout,
        train_freq=(train.n_steps, "step"),
        gradient_steps=max(1, train.n_epochs * rollout // train.batch_size),
        action_noise=NormalActionNoise(np.zeros_like(half_width), TD3_ACTION_NOISE * half_width),
        **common,
    )


def find_vec_normalize(venv: VecEnv) -> VecNormalize:
    """The ``VecNormalize`` layer inside a wrapped training env."""
    layer: Any = venv
    while not isinstance(layer, VecNormalize):
        layer = layer.venv
    return layer


class _ProgressClock:
    """Shared counters of a run, written to ``progress.json`` by a heartbeat thread.

    The thread keeps the record fresh while SB3 runs a long gradient update, when no
    callback is called.
    """

    def __init__(self, run_dir: Path, total_timesteps: int) -> None:
        self.run_dir = run_dir
        self.total_timesteps = total_timesteps
        self.timesteps = 0
        self.start = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="progress", daemon=True)

    def record(self, status: Status, error: str | None = None) -> Progress:
        elapsed = time.monotonic() - self.start
        fps = self.timesteps / elapsed if elapsed > 0 else 0.0
        eta = (self.total_timesteps - self.timesteps) / fps if status == "running" and fps > 0 else None
        return Progress(
            status=status,
            timesteps=int(self.timesteps),
            total_timesteps=int(self.total_timesteps),
            fps=float(fps),
            elapsed_s=float(elapsed),
            eta_s=None if eta is None else max(0.0, float(eta)),
            updated=time.time(),
            error=error,
            pid=os.getpid(),
        )

    def write(self, status: Status, error: str | None = None) -> None:
        write_progress(self.run_dir, self.record(status, error))

    def _beat(self) -> None:
        while not self._stop.wait(PROGRESS_INTERVAL_S):
            try:
                self.write("running")
            except OSError:  # a full disk must not kill training; the next beat retries
                pass

    def start_beating(self) -> None:
        self.write("running")
        self._thread.start()

    def stop_beating(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


class RunRecorder(BaseCallback):
    """Writes a run's episodes, periodic evaluations and progress, and honours ``STOP``.

    :param config: the run's configuration.
    :param run_dir: the run directory.
    :param clock: the run's progress counters.
    """

    def __init__(self, config: RunConfig, run_dir: Path, clock: _ProgressClock) -> None:
        super().__init__()
        self.config = config
        self.run_dir = run_dir
        self.clock = clock
        self.episodes = CsvLog(run_dir / EPISODES_FILE, EPISODE_COLUMNS)
        self.evaluations = CsvLog(run_dir / EVALUATIONS_FILE, EVALUATION_COLUMNS)
        self.stop_file = run_dir / STOP_FILE
        every = config.train.eval_every
        self.next_evaluation = every if every > 0 else None
        self.last_evaluation: dict[str, float] | None = None
        self._seeds = evaluation_seeds(config.train.eval_episodes)

    def _on_step(self) -> bool:
        self.clock.timesteps = self.num_timesteps
        dones = self.locals.get("dones")
        if dones is not None and np.any(dones):
            infos = self.locals["infos"]
            elapsed = time.monotonic() - self.clock.start
            rows = []
            for i in np.flatnonzero(dones):
                episode = infos[i].get("episode")
                if episode is not None:
                    rows.append(
                        (
                            self.num_timesteps,
                            float(episode["r"]),
                            int(episode["l"]),
                            round(elapsed, 3),
                            infos[i]["mae_focus"],
                            infos[i]["mae_all"],
                        )
                    )
            self.episodes.append(rows)
        return not self.stop_file.exists()

    def _on_rollout_start(self) -> None:
        # Evaluate here, not in _on_step: the steps of a rollout come before its update, so
        # only now does the policy include everything learnt up to num_timesteps.
        if self.next_evaluation is not None and self.num_timesteps >= self.next_evaluation:
            self.evaluate()
            every = self.config.train.eval_every
            self.next_evaluation = (self.num_timesteps // every + 1) * every

    def evaluate(self) -> dict[str, float]:
        """Evaluate the current policy on the fixed seeds and append a row to ``evaluations.csv``."""
        agent = Agent.from_training(self.config, self.model, find_vec_normalize(self.training_env))
        metrics = evaluate(agent, self._seeds).metrics
        names = ("mean_final_mae_focus", "mean_final_mae_all", "mean_return")
        self.evaluations.append([(self.num_timesteps, *(metrics[name] for name in names))])
        self.last_evaluation = metrics
        return metrics

    def close(self) -> None:
        self.episodes.close()
        self.evaluations.close()


class TextProgressBar(BaseCallback):
    """A one-line progress bar on a text stream (stderr by default), at most twice a second.

    :param total_timesteps: steps the run aims for.
    :param stream: where to draw.
    """

    def __init__(self, total_timesteps: int, stream: Any = None) -> None:
        super().__init__()
        self.total = total_timesteps
        self.stream = stream if stream is not None else sys.stderr
        self._start = time.monotonic()
        self._last = 0.0

    def _on_step(self) -> bool:
        now = time.monotonic()
        if now - self._last >= 0.5:
            self._last = now
            self.draw(now)
        return True

    def draw(self, now: float) -> None:
        done = min(self.num_timesteps, self.total)
        fraction = done / self.total
        elapsed = now - self._start
        fps = done / elapsed if elapsed > 0 else 0.0
        eta = f"{(self.total - done) / fps:4.0f} s" if fps > 0 else "   ? s"
        bar = "#" * int(30 * fraction)
        self.stream.write(
            f"\r[{bar:<30}] {100 * fraction:5.1f} % {done:>9,}/{self.total:,} steps "
            f"{fps:7.0f} steps/s  ETA {eta}"
        )
        self.stream.flush()

    def _on_training_end(self) -> None:
        self.draw(time.monotonic())
        self.stream.write("\n")
        self.stream.flush()


def save_model(model: BaseAlgorithm, run_dir: Path) -> None:
    """Write ``model.zip`` (SB3's format) atomically."""
    buffer = io.BytesIO()
    model.save(buffer)
    write_atomic(run_dir / MODEL_FILE, buffer.getvalue())


def train(
    config: RunConfig,
    run_dir: Path,
    callbacks: Sequence[BaseCallback] | BaseCallback | None = None,
    progress_bar: bool = False,
) -> TrainResult:
    """Train an agent as ``config`` says and write the run to ``run_dir``.

    :param config: environment and training configuration.
    :param run_dir: the run directory (created if missing).
    :param callbacks: extra SB3 callbacks; one returning False stops training.
    :param progress_bar: draw a text progress bar on stderr.
    :return: the outcome; an exception is re-raised after ``progress.json`` says ``failed``.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_config(run_dir, config)
    clock = _ProgressClock(run_dir, config.train.total_timesteps)
    clock.start_beating()
    recorder: RunRecorder | None = None
    venv: VecEnv | None = None
    try:
        venv = make_vec_env(config)
        model = make_model(config, venv)
        recorder = RunRecorder(config, run_dir, clock)
        extra = [callbacks] if isinstance(callbacks, BaseCallback) else list(callbacks or [])
        chain: list[BaseCallback] = [recorder, *extra]
        if progress_bar:
            chain.append(TextProgressBar(config.train.total_timesteps))
        clock.start = time.monotonic()
        with distribution_checks_off():
            model.learn(total_timesteps=config.train.total_timesteps, callback=CallbackList(chain))
        clock.timesteps = model.num_timesteps
        status: Status = "finished" if model.num_timesteps >= config.train.total_timesteps else "stopped"
        if config.train.eval_every > 0:
            recorder.evaluate()  # the final policy (the last update came after every rollout)
        save_model(model, run_dir)
        ObsNormalizer.from_vec_normalize(find_vec_normalize(venv)).save(run_dir / NORMALIZER_FILE)
    except BaseException as exc:
        clock.stop_beating()
        clock.write("failed", error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if recorder is not None:
            recorder.close()
        if venv is not None:
            venv.close()
    clock.stop_beating()
    clock.write(status)
    return TrainResult(
        run_dir=run_dir,
        status=status,
        timesteps=int(model.num_timesteps),
        elapsed_s=time.monotonic() - clock.start,
        evaluation=recorder.last_evaluation,
    )
