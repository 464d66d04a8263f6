"""Evaluate an agent on fixed seeds: every episode in one batch, traces and the tutorial's metrics.

The start of the episode with seed s is ``sample_episode_start(cfg, np_random(s))``, so
every agent evaluated with the same seeds and sampling config sees the same beams. All
episodes run together on one :class:`~envlib.batched.AresEAVecEnv`; an episode that ends
early (success or abort) is auto-reset by the VecEnv, and what follows is ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from gymnasium.utils import seeding

from envlib.batched import AresEAVecEnv
from envlib.beamline import BEAM_PARAMETER_NAMES, MAGNET_LABELS, BeamlineSimulator
from envlib.config import EnvConfig
from envlib.task import EpisodeStart, sample_episode_start

if TYPE_CHECKING:
    from envlib.agent import Agent

#: Evaluation seeds start here, far from the training seeds (``seed + i`` for env i).
EVALUATION_SEED_BASE = 1_000_000
#: Episodes without a time limit are cut after this many steps.
DEFAULT_MAX_STEPS = 100

TRACE_COLUMNS = (
    ("episode", "seed", "step", "reward")
    + BEAM_PARAMETER_NAMES
    + tuple(f"target_{name}" for name in BEAM_PARAMETER_NAMES)
    + MAGNET_LABELS
    + ("mae_focus", "mae_all", "on_screen", "terminated", "truncated", "aborted")
)


def evaluation_seeds(n: int) -> list[int]:
    """The fixed evaluation seeds, the same for every agent; the first n of a longer list.

    :param n: number of episodes.
    """
    if n < 1:
        raise ValueError(f"need at least one evaluation episode, got {n}")
    return list(range(EVALUATION_SEED_BASE, EVALUATION_SEED_BASE + n))


def episode_starts(config: EnvConfig, seeds: Sequence[int]) -> list[EpisodeStart]:
    """The initial state of the episode of every seed under ``config``'s sampling modes."""
    return [sample_episode_start(config, seeding.np_random(int(s))[0]) for s in seeds]


@dataclass
class EvaluationResult:
    """What :func:`evaluate` returns.

    :param traces: one row per (episode, step), step 0 being the reset state (its reward is
        NaN): columns :data:`TRACE_COLUMNS`; beam, target and maes in m, magnets in 1/m^2 and rad.
    :param per_episode: one row per episode: episode, seed, final_mae_focus, final_mae_all (m),
        length (steps), return, left_screen, terminated, truncated, aborted.
    :param metrics: mean_final_mae_focus, median_final_mae_focus, mean_final_mae_all,
        rmse_focus (m; root mean square of the sigma errors over every step after the
        reset), mean_episode_length, fraction_off_screen (episodes whose beam centre left
        the screen at any step), fraction_aborted, mean_return, n_episodes.
    """

    traces: pd.DataFrame
    per_episode: pd.DataFrame
    metrics: dict[str, float]


def evaluate(
    agent: Agent,
    seeds: Sequence[int],
    *,
    env_config: EnvConfig | None = None,
    deterministic: bool = True,
    starts: Sequence[EpisodeStart] | None = None,
    max_steps: int | None = None,
    simulator: BeamlineSimulator | None = None,
) -> EvaluationResult:
    """Run one episode per seed, all in one batch, and measure them.

    :param agent: the agent (see :func:`envlib.agent.load_agent`).
    :param seeds: one seed per episode, e.g. :func:`evaluation_seeds`.
    :param env_config: environment to evaluate in; the agent's own by default. Its
        observation and actuators must be the agent's.
    :param deterministic: the policy's mean action; False samples actions (reproducibly:
        torch is seeded from the first seed, without touching the caller's generator).
    :param starts: initial states overriding those of ``seeds`` (same length).
    :param max_steps: steps per episode at most; default the env's ``time_limit``
        (or :data:`DEFAULT_MAX_STEPS` without one).
    :param simulator: Cheetah beamline to reuse; a new one by default.
    """
    cfg = env_config if env_config is not None else agent.config.env
    own = agent.config.env
    if (cfg.observation, cfg.actuators) != (own.observation, own.actuators):
        raise ValueError(
            f"the agent observes {own.observation!r} and acts on {own.actuators!r}; the evaluation env "
            f"has {cfg.observation!r} and {cfg.actuators!r}"
        )
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("need at least one seed")
    if starts is None:
        starts = episode_starts(cfg, seeds)
    elif len(starts) != len(seeds):
        raise ValueError(f"got {len(starts)} starts for {len(seeds)} seeds")
    if max_steps is None:
        max_steps = cfg.time_limit if cfg.time_limit is not None else DEFAULT_MAX_STEPS
    n = len(seeds)
    venv = AresEAVecEnv(cfg, n_envs=n, simulator=simulator)
    obs = venv.reset_to(starts)

    recorder = _TraceRecorder(n)
    recorder.add(venv.reset_infos, np.full(n, np.nan), np.zeros(n, bool), np.zeros(n, bool), np.ones(n, bool))
    active = np.ones(n, dtype=bool)
    state, episode_start = None, np.ones(n, dtype=bool)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seeds[0])
        for _ in range(max_steps):
            actions, state = agent.predict(obs, state=state, episode_start=episode_start, deterministic=deterministic)
            episode_start = np.zeros(n, dtype=bool)
            obs, reward, dones, infos = venv.step(actions)
            truncated = np.array([bool(info.get("TimeLimit.truncated", False)) for info in infos])
            terminated = dones & ~truncated
            recorder.add(infos, reward, terminated, truncated, active)
            active &= ~dones
            if not active.any():
                break
    traces = recorder.frame(seeds)
    per_episode = _per_episode(traces)
    return EvaluationResult(traces=traces, per_episode=per_episode, metrics=_metrics(traces, per_episode))


class _TraceRecorder:
    """Collects one block of columns per step for the rows still running."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.step = 0
        self.blocks: list[dict[str, np.ndarray]] = []

    def add(
        self,
        infos: Sequence[dict],
        reward: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        active: np.ndarray,
    ) -> None:
        rows = np.flatnonzero(active)
        if len(rows):
            picked = [infos[i] for i in rows]
            beam = np.array([info["beam"] for info in picked], dtype=np.float64).reshape(-1, 4)
            target = np.array([info["target"] for info in picked], dtype=np.float64).reshape(-1, 4)
            magnets = np.array([info["magnets"] for info in picked], dtype=np.float64).reshape(-1, 5)
            block = {"episode": rows, "step": np.full(len(rows), self.step), "reward": np.asarray(reward)[rows]}
            for j, name in enumerate(BEAM_PARAMETER_NAMES):
                block[name] = beam[:, j]
            for j, name in enumerate(BEAM_PARAMETER_NAMES):
                block[f"target_{name}"] = target[:, j]
            for j, name in enumerate(MAGNET_LABELS):
                block[name] = magnets[:, j]
            block["mae_focus"] = np.array([info["mae_focus"] for info in picked])
            block["mae_all"] = np.array([info["mae_all"] for info in picked])
            block["on_screen"] = np.array([info["on_screen"] for info in picked], dtype=bool)
            block["terminated"] = terminated[rows]
            block["truncated"] = truncated[rows]
            block["aborted"] = np.array([info["aborted"] for info in picked], dtype=bool)
            self.blocks.append(block)
        self.step += 1

    def frame(self, seeds: Sequence[int]) -> pd.DataFrame:
        columns = {name: np.concatenate([b[name] for b in self.blocks]) for name in self.blocks[0]}
        columns["seed"] = np.asarray(seeds, dtype=np.int64)[columns["episode"]]
        frame = pd.DataFrame({name: columns[name] for name in TRACE_COLUMNS})
        frame["reward"] = frame["reward"].astype(np.float64)
        return frame.sort_values(["episode", "step"], kind="stable").reset_index(drop=True)


def _per_episode(traces: pd.DataFrame) -> pd.DataFrame:
    acted = traces[traces["step"] > 0]
    last = traces.groupby("episode", sort=True).tail(1).set_index("episode")
    grouped = acted.groupby("episode", sort=True)
    return pd.DataFrame(
        {
            "episode": last.index.to_numpy(),
            "seed": last["seed"].to_numpy(),
            "final_mae_focus": last["mae_focus"].to_numpy(),
            "final_mae_all": last["mae_all"].to_numpy(),
            "length": last["step"].to_numpy(),
            "return": grouped["reward"].sum().reindex(last.index, fill_value=0.0).to_numpy(),
            "left_screen": (~grouped["on_screen"].all()).reindex(last.index, fill_value=False).to_numpy(),
            "terminated": last["terminated"].to_numpy(),
            "truncated": last["truncated"].to_numpy(),
            "aborted": last["aborted"].to_numpy(),
        }
    )


def _metrics(traces: pd.DataFrame, per_episode: pd.DataFrame) -> dict[str, float]:
    acted = traces[traces["step"] > 0]
    sigma_errors = np.concatenate(
        [
            (acted["sigma_x"] - acted["target_sigma_x"]).to_numpy(),
            (acted["sigma_y"] - acted["target_sigma_y"]).to_numpy(),
        ]
    )
    return {
        "mean_final_mae_focus": float(per_episode["final_mae_focus"].mean()),
        "median_final_mae_focus": float(per_episode["final_mae_focus"].median()),
        "mean_final_mae_all": float(per_episode["final_mae_all"].mean()),
        "rmse_focus": float(np.sqrt(np.mean(sigma_errors**2))) if len(sigma_errors) else float("nan"),
        "mean_episode_length": float(per_episode["length"].mean()),
        "fraction_off_screen": float(per_episode["left_screen"].mean()),
        "fraction_aborted": float(per_episode["aborted"].mean()),
        "mean_return": float(per_episode["return"].mean()),
        "n_episodes": int(len(per_episode)),
    }
