"""Training speed: the tutorial's config on the batched env, and on SB3's DummyVecEnv of single envs.

Trains the tutorial's Part IV config (PPO, n_envs 40, n_steps 50, batch 100, n_epochs 10,
200k timesteps) with :func:`envlib.training.train` on ``AresEAVecEnv``, and the same
config on ``DummyVecEnv`` of 40 ``AresEAEnv`` (one Cheetah call per env and step, the
tutorial's way) for a shorter budget once before and once after it, and evaluates the trained agent the way the Compare
page does (5 agents x 50 seeds). Prints a table, then one JSON object as the last line.

The VM's speed varies up to 2x from day to day, so the run also times the two workloads of
``stack-notes.md`` that stand for the two phases (a single-beam Cheetah step, 2.2 ms there;
SB3's PPO update at default settings, about 5 s per 20k timesteps there), before and after
the training, and scales each phase by the mean ratio: ``tutorial_200k_reference_s``
estimates the run on the machine those notes were measured on. It is an estimate (the
machine's speed also drifts during the run); the raw wall time stays the headline figure.

    python bench/train_speed.py [--timesteps 200000] [--dummy-timesteps 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import cheetah
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stable_baselines3 import PPO  # noqa: E402
from stable_baselines3.common.callbacks import BaseCallback  # noqa: E402
from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor, VecNormalize  # noqa: E402

from envlib.agent import load_agent, policy_kwargs  # noqa: E402
from envlib.beamline import build_segment  # noqa: E402
from envlib.config import RunConfig  # noqa: E402
from envlib.env import AresEAEnv  # noqa: E402
from envlib.evaluation import evaluate, evaluation_seeds  # noqa: E402
from envlib.training import train  # noqa: E402

#: The tutorial's training config (Part IV); periodic evaluation off, it is not training.
TUTORIAL = {
    "env": {"action_mode": "delta", "reward_mode": "negative_objective", "time_limit": 25},
    "train": {
        "algorithm": "PPO", "n_envs": 40, "n_steps": 50, "batch_size": 100, "n_epochs": 10,
        "total_timesteps": 200_000, "gamma": 0.99, "net_arch": [64, 64], "normalize_observation": True,
        "normalize_reward": True, "frame_stack": None, "seed": 0, "eval_every": 0,
    },
}  # fmt: skip


class PhaseClock(BaseCallback):
    """Wall time in PPO's two phases: collecting rollouts, and updating between them."""

    def __init__(self) -> None:
        super().__init__()
        self.rollout_s = self.update_s = 0.0
        self._mark: float | None = None

    def _on_rollout_start(self) -> None:
        now = time.perf_counter()
        if self._mark is not None:  # the update after the previous rollout ended now
            self.update_s += now - self._mark
        self._mark = now

    def _on_rollout_end(self) -> None:
        now = time.perf_counter()
        self.rollout_s += now - self._mark
        self._mark = now

    def _on_training_end(self) -> None:
        self._on_rollout_start()  # the last update

    def _on_step(self) -> bool:
        return True


#: stack-notes.md, "Measured speed": one single-beam tracking step, s.
REFERENCE_TRACK_S = 2.2e-3
#: stack-notes.md: SB3's PPO update alone ([64, 64] MLP, default settings) per 20k timesteps, s.
REFERENCE_UPDATE_20K_S = 5.0


def reference_track_s(steps: int = 300, blocks: int = 5) -> float:
    """Median time of one single-beam step through the 13-element EA segment, quad maps rebuilt, s."""
    segment = build_segment()
    beam = cheetah.ParameterBeam.from_parameters(energy=torch.tensor(1e8, dtype=torch.float64), dtype=torch.float64)
    quads = (segment.AREAMQZM1, segment.AREAMQZM2, segment.AREAMQZM3)
    times = []
    with torch.no_grad():
        for _ in range(blocks):
            start = time.perf_counter()
            for i in range(steps):
                for j, quad in enumerate(quads):
                    quad.k1 = torch.tensor(float((i + j) % 11 - 5), dtype=torch.float64)
                segment.track(beam)
            times.append((time.perf_counter() - start) / steps)
    return sorted(times)[blocks // 2]


def reference_update_20k_s() -> float:
    """SB3's PPO update time per 20k timesteps at default settings (plain Adam, n_steps 2048, batch 64)."""
    model = PPO("MlpPolicy", "Pendulum-v1", seed=0, device="cpu")
    phases = PhaseClock()
    model.learn(4 * model.n_steps, callback=phases)
    return phases.update_s * 20_000 / model.num_timesteps


def train_dummy(config: RunConfig, timesteps: int) -> float:
    """Train the same PPO on DummyVecEnv of single envs; returns steps per second."""
    train_cfg = config.train
    venv = DummyVecEnv([lambda: AresEAEnv(config.env) for _ in range(train_cfg.n_envs)])
    venv = VecNormalize(VecMonitor(venv), norm_obs=True, norm_reward=True, gamma=train_cfg.gamma)
    model = PPO(
        "MlpPolicy", venv, n_steps=train_cfg.n_steps, batch_size=train_cfg.batch_size,
        n_epochs=train_cfg.n_epochs, gamma=train_cfg.gamma, learning_rate=train_cfg.learning_rate,
        policy_kwargs=policy_kwargs(train_cfg), seed=train_cfg.seed, device="cpu",
    )  # fmt: skip
    start = time.perf_counter()
    model.learn(timesteps)
    return model.num_timesteps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timesteps", type=int, default=200_000)
    parser.add_argument("--dummy-timesteps", type=int, default=10_000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    load_before = os.getloadavg()[0]
    config = RunConfig.from_dict(TUTORIAL)
    config = RunConfig.from_dict(
        {**config.to_dict(), "train": {**config.train.to_dict(), "total_timesteps": args.timesteps}}
    )
    calibration = [(reference_track_s(), reference_update_20k_s())]
    # The peer runs before and after the batched training, so a VM whose speed drifts during
    # the run moves both sides of the ratio alike.
    dummy_runs = [train_dummy(config, args.dummy_timesteps)]
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        phases = PhaseClock()
        result = train(config, Path(folder) / "tutorial", callbacks=phases)
        wall = time.perf_counter() - start
        agent = load_agent(result.run_dir)
        evaluate(agent, evaluation_seeds(50))  # warm up
        start = time.perf_counter()
        for _ in range(5):
            metrics = evaluate(load_agent(result.run_dir), evaluation_seeds(50)).metrics
        evaluate_s = time.perf_counter() - start
    batched = result.timesteps / wall
    dummy_runs.append(train_dummy(config, args.dummy_timesteps))
    dummy = len(dummy_runs) / sum(1 / rate for rate in dummy_runs)  # steps over total time
    calibration.append((reference_track_s(), reference_update_20k_s()))
    slow_track = sum(track for track, _ in calibration) / len(calibration) / REFERENCE_TRACK_S
    slow_update = sum(update for _, update in calibration) / len(calibration) / REFERENCE_UPDATE_20K_S
    load_after = os.getloadavg()[0]
    per_200k = 200_000 / result.timesteps
    figures = {
        "tutorial_200k_wall_s": round(wall * per_200k, 2),
        "rollout_200k_s": round(phases.rollout_s * per_200k, 2),
        "update_200k_s": round(phases.update_s * per_200k, 2),
        "tutorial_200k_reference_s": round(
            (phases.rollout_s / slow_track + phases.update_s / slow_update) * per_200k, 1
        ),
        "machine_vs_reference_track": round(slow_track, 2),
        "machine_vs_reference_update": round(slow_update, 2),
        "machine_vs_reference_before_after": [
            [round(track / REFERENCE_TRACK_S, 2), round(update / REFERENCE_UPDATE_20K_S, 2)]
            for track, update in calibration
        ],
        "batched_steps_per_s": round(batched, 1),
        "dummy_steps_per_s": round(dummy, 1),
        "dummy_steps_per_s_before_after": [round(rate, 1) for rate in dummy_runs],
        "speedup": round(batched / dummy, 2),
        "evaluate_5x50_s": round(evaluate_s, 3),
        "tutorial_mean_final_mae_focus": metrics["mean_final_mae_focus"],
        "timesteps": result.timesteps,
        "dummy_timesteps": args.dummy_timesteps,
        "load_average_1min_before_after": [round(load_before, 2), round(load_after, 2)],
        "cpu_count": os.cpu_count(),
    }
    rows = [
        ("tutorial config, 200k steps, batched env", f"{figures['tutorial_200k_wall_s']:.1f} s"),
        ("  collecting rollouts (env and policy)", f"{figures['rollout_200k_s']:.1f} s"),
        ("  PPO updates (10 epochs of 20 minibatches each)", f"{figures['update_200k_s']:.1f} s"),
        ("this machine vs stack-notes: Cheetah step / PPO update", f"{slow_track:.2f} x / {slow_update:.2f} x slower"),
        ("tutorial 200k, phases scaled to the stack-notes machine", f"{figures['tutorial_200k_reference_s']:.1f} s"),
        ("batched env (AresEAVecEnv), training", f"{batched:,.0f} steps/s"),
        ("DummyVecEnv of 40 AresEAEnv, training (before / after)",
         f"{dummy:,.0f} steps/s ({dummy_runs[0]:,.0f} / {dummy_runs[1]:,.0f})"),
        ("speedup", f"{figures['speedup']:.1f} x"),
        ("evaluate 5 agents x 50 seeds", f"{evaluate_s:.2f} s"),
        ("agent after training: mean final mae_focus", f"{metrics['mean_final_mae_focus']:.2e} m (50 seeds)"),
        ("1-min load average before / after", f"{load_before:.2f} / {load_after:.2f} on {os.cpu_count()} CPUs"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
