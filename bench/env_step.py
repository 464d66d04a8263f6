"""Benchmark of the ARES EA environment: single step, batched throughput, render.

Run from the repository root::

    .venv/bin/python bench/env_step.py

Prints a table and, as the last line, one JSON object with ``single_step_ms``,
``batched{1,40,1024}_steps_per_s``, ``dummy40_steps_per_s``, ``speedup_vs_dummy40`` and
``render_ms`` (wall clock), the same figures per CPU second (``*_cpu``), and the 1-minute
load average at the start. On a shared machine the wall-clock figures drop with the load;
the CPU-time ones show what one free core would do. Every figure is the best of a few
repeats. All runs use the tutorial's training config (random incoming beam, delta actions
on Q1, Q2, Q3, 25-step episodes with auto-reset) and one torch thread.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # works from a clean clone

from stable_baselines3.common.vec_env import DummyVecEnv  # noqa: E402
from timing import Timing, best_time  # noqa: E402  (bench/timing.py)

from envlib.batched import AresEAVecEnv  # noqa: E402
from envlib.config import EnvConfig  # noqa: E402
from envlib.env import AresEAEnv  # noqa: E402

REPEATS = 3


def random_actions(space, n_steps: int, n_envs: int | None = None, seed: int = 0) -> np.ndarray:
    shape = (n_steps,) + ((n_envs,) if n_envs else ()) + space.shape
    return np.random.default_rng(seed).uniform(space.low, space.high, size=shape).astype(np.float32)


def single_step(config: EnvConfig, n_steps: int = 500) -> Timing:
    """Time of one AresEAEnv step (resets at episode ends included), in s."""
    env = AresEAEnv(config)
    actions = random_actions(env.action_space, n_steps)
    env.reset(seed=0)

    def run() -> None:
        for action in actions:
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()

    run()  # warm-up
    t = best_time(lambda _: run(), REPEATS)
    return Timing(t.wall / n_steps, t.cpu / n_steps)


def vec_step(venv, n_steps: int) -> Timing:
    """Time per env-step of a VecEnv (auto-resets included), in s."""
    actions = random_actions(venv.action_space, n_steps, venv.num_envs)
    venv.seed(0)
    venv.reset()

    def run() -> None:
        for action in actions:
            venv.step(action)

    venv.step(actions[0])  # warm-up
    t = best_time(lambda _: run(), REPEATS)
    n = venv.num_envs * n_steps
    return Timing(t.wall / n, t.cpu / n)


def render(config: EnvConfig, n: int = 200) -> Timing:
    """Time of one ``render()`` of the single env (binning 4, RGB with both ellipses), in s."""
    env = AresEAEnv(config, render_mode="rgb_array")
    env.reset(seed=0)
    env.step(np.full(env.action_space.shape, 1.0, dtype=np.float32))  # a beam away from the target
    env.render()  # warm-up

    def run() -> None:
        for _ in range(n):
            env.render()

    t = best_time(lambda _: run(), REPEATS)
    return Timing(t.wall / n, t.cpu / n)


def main() -> None:
    torch.set_num_threads(1)
    load = os.getloadavg()[0]
    config = EnvConfig()

    single = single_step(config)
    batched = {n: vec_step(AresEAVecEnv(config, n), n_steps) for n, n_steps in ((1, 500), (40, 150), (1024, 15))}
    # Each single env with its own Cheetah segment, as SB3 would build them: a shared one
    # would rebuild the incoming beam on every call and flatter the speed-up.
    dummy = vec_step(DummyVecEnv([lambda: AresEAEnv(config) for _ in range(40)]), 15)
    rendering = render(config)

    figures: dict[str, float] = {"cpu_load_1min": load}
    for suffix, attr in (("", "wall"), ("_cpu", "cpu")):
        figures[f"single_step_ms{suffix}"] = getattr(single, attr) * 1e3
        for n, t in batched.items():
            figures[f"batched{n}_steps_per_s{suffix}"] = 1.0 / getattr(t, attr)
        figures[f"dummy40_steps_per_s{suffix}"] = 1.0 / getattr(dummy, attr)
        figures[f"speedup_vs_dummy40{suffix}"] = getattr(dummy, attr) / getattr(batched[40], attr)
        figures[f"render_ms{suffix}"] = getattr(rendering, attr) * 1e3

    def row(what: str, key: str, fmt: str, unit: str, goal: str = "") -> str:
        wall, cpu = format(figures[key], fmt), format(figures[f"{key}_cpu"], fmt)
        return f"{what:<20} {wall:>10} {cpu:>10}  {unit:<13} {goal}"

    print(f"ARES EA env benchmark: {os.cpu_count()} CPUs, load {load:.2f}, torch threads {torch.get_num_threads()}")
    print(f"{'what':<20} {'wall':>10} {'per CPU':>10}  {'unit':<13} goal (wall, 2 cores)")
    print(row("single env step", "single_step_ms", ".3f", "ms"))
    for n in batched:
        print(row(f"batched N={n}", f"batched{n}_steps_per_s", ",.0f", "env-steps/s", ">= 10,000" if n == 40 else ""))
    print(row("DummyVecEnv N=40", "dummy40_steps_per_s", ",.0f", "env-steps/s"))
    print(row("speed-up at N=40", "speedup_vs_dummy40", ".1f", "x", ">= 15 x"))
    print(row("render (rgb_array)", "render_ms", ".2f", "ms", "<= 5 ms"))
    print(json.dumps({k: round(v, 4) for k, v in figures.items()}))


if __name__ == "__main__":
    main()
