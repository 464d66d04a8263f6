"""Benchmark of the ARES EA environment: single step, batched throughput, render.

Run from the repository root::

    .venv/bin/python bench/env_step.py

Prints a table and, as the last line, one JSON object with ``single_step_ms``,
``batched{1,40,1024}_steps_per_s``, ``dummy40_steps_per_s``, ``speedup_vs_dummy40`` and
``render_ms`` (plus the 1-minute load average at the start, to judge the figures by).
Every figure is the best of a few repeats, so a busy neighbour shows less; all runs use
the tutorial's training config (random incoming beam, delta actions on Q1, Q2, Q3,
25-step episodes with auto-reset) and one torch thread.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # works from a clean clone

from stable_baselines3.common.vec_env import DummyVecEnv  # noqa: E402

from envlib.batched import AresEAVecEnv  # noqa: E402
from envlib.config import EnvConfig  # noqa: E402
from envlib.env import AresEAEnv  # noqa: E402

REPEATS = 3


def best_time(fn, repeats: int = REPEATS) -> float:
    """Shortest wall time of ``fn()`` over ``repeats`` runs, in s."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def random_actions(space, n_steps: int, n_envs: int | None = None, seed: int = 0) -> np.ndarray:
    shape = (n_steps,) + ((n_envs,) if n_envs else ()) + space.shape
    return np.random.default_rng(seed).uniform(space.low, space.high, size=shape).astype(np.float32)


def single_step_ms(config: EnvConfig, n_steps: int = 500) -> float:
    """One AresEAEnv step (resets at episode ends included), in ms."""
    env = AresEAEnv(config)
    actions = random_actions(env.action_space, n_steps)
    env.reset(seed=0)

    def run() -> None:
        for action in actions:
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()

    run()  # warm-up
    return best_time(run) / n_steps * 1e3


def vec_steps_per_s(venv, n_steps: int) -> float:
    """Env-steps per second of a VecEnv (auto-resets included)."""
    actions = random_actions(venv.action_space, n_steps, venv.num_envs)
    venv.seed(0)
    venv.reset()

    def run() -> None:
        for action in actions:
            venv.step(action)

    venv.step(actions[0])  # warm-up
    return venv.num_envs * n_steps / best_time(run)


def render_ms(config: EnvConfig, n: int = 200) -> float:
    """One ``render()`` of the single env (binning 4, RGB with both ellipses), in ms."""
    env = AresEAEnv(config, render_mode="rgb_array")
    env.reset(seed=0)
    env.step(env.action_space.sample())
    env.render()  # warm-up

    def run() -> None:
        for _ in range(n):
            env.render()

    return best_time(run) / n * 1e3


def main() -> None:
    torch.set_num_threads(1)
    load = os.getloadavg()[0]
    config = EnvConfig()
    figures: dict[str, float] = {"cpu_load_1min": round(load, 2)}

    figures["single_step_ms"] = single_step_ms(config)
    for n, n_steps in ((1, 500), (40, 150), (1024, 15)):
        figures[f"batched{n}_steps_per_s"] = vec_steps_per_s(AresEAVecEnv(config, n), n_steps)
    # Each single env with its own Cheetah segment, as SB3 would build them: a shared one
    # would rebuild the incoming beam on every call and flatter the speed-up.
    dummy = DummyVecEnv([lambda: AresEAEnv(config) for _ in range(40)])
    figures["dummy40_steps_per_s"] = vec_steps_per_s(dummy, 15)
    figures["speedup_vs_dummy40"] = figures["batched40_steps_per_s"] / figures["dummy40_steps_per_s"]
    figures["render_ms"] = render_ms(config)

    rows = [
        ("single env step", f"{figures['single_step_ms']:.3f} ms", ""),
        ("batched N=1", f"{figures['batched1_steps_per_s']:,.0f} env-steps/s", ""),
        ("batched N=40", f"{figures['batched40_steps_per_s']:,.0f} env-steps/s", ">= 10,000"),
        ("batched N=1024", f"{figures['batched1024_steps_per_s']:,.0f} env-steps/s", ""),
        ("DummyVecEnv N=40", f"{figures['dummy40_steps_per_s']:,.0f} env-steps/s", ""),
        ("speed-up at N=40", f"{figures['speedup_vs_dummy40']:.1f} x", ">= 15 x"),
        ("render (rgb_array)", f"{figures['render_ms']:.2f} ms", "<= 5 ms"),
    ]
    print(f"ARES EA env benchmark ({os.cpu_count()} CPUs, load {load:.2f}, torch threads {torch.get_num_threads()})")
    print(f"{'what':<20} {'figure':>24}  goal")
    for what, figure, goal in rows:
        print(f"{what:<20} {figure:>24}  {goal}")
    print(json.dumps({k: round(v, 4) for k, v in figures.items()}))


if __name__ == "__main__":
    main()
