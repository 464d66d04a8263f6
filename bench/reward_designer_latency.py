"""How long the Reward designer takes to answer a student.

1. The page's rerun through Streamlit's AppTest (the script's own work, with AppTest's thread
   start and polling): with nothing changed, and after a weight slider of Reward A moves to
   a value not seen before (the page caches the beams of its grids, not the rewards: a new
   weight recomputes the rewards on them, with no tracking).
2. The 400-point cut for both rewards as the page computes it without a cache (one 400-beam
   tracking, both rewards on it), and its peer: the same cut taken as the first row of a
   400 x 400 grid for each reward, which is what the page computed on every rerun before.

Usage: ``.venv/bin/python bench/reward_designer_latency.py [--reruns 20]``.
Prints a table; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # works from a clean clone
torch.set_num_threads(1)

from envlib.beamline import BeamlineSimulator  # noqa: E402
from envlib.config import DEMO_INCOMING_BEAM  # noqa: E402
from envlib.landscape import cut_grid, landscape_of, reward_landscape  # noqa: E402
from envlib.reward_spec import preset  # noqa: E402
from envlib.task import EpisodeStart  # noqa: E402

CUT_POINTS = 400


def percentiles(samples_s: list[float]) -> tuple[float, float]:
    """p50 and p95 in ms."""
    ms = np.asarray(samples_s) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_page(reruns: int) -> dict[str, float]:
    """Reruns of pages/rewards.py through AppTest, idle and after a weight change."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "pages" / "rewards.py"), default_timeout=120)
    at.run()  # imports, the Playground state, both landscapes
    if at.exception:
        raise RuntimeError(f"the page failed: {at.exception[0].value}")
    idle = [timed(at.run) for _ in range(reruns)]
    # mu_x weights of Reward A on the slider's grid (0.25 to 5, it starts at 0): each one is new
    # to the page, so every move misses the landscape cache.
    changed = []
    for w in np.arange(1, min(reruns, 20) + 1) * 0.25:
        at.slider(key="rd.a.w_mu_x").set_value(float(w))
        changed.append(timed(at.run))
    if at.exception:
        raise RuntimeError(f"the page failed: {at.exception[0].value}")
    idle_p50, idle_p95 = percentiles(idle)
    changed_p50, changed_p95 = percentiles(changed)
    return {
        "page_rerun_p50_ms": round(idle_p50, 1),
        "page_rerun_p95_ms": round(idle_p95, 1),
        "page_weight_change_p50_ms": round(changed_p50, 1),
        "page_weight_change_p95_ms": round(changed_p95, 1),
    }


def bench_cut(repeats: int = 5) -> dict[str, float]:
    """The 400-point cut for both default rewards, and the same cut as a row of a square grid."""
    simulator = BeamlineSimulator()
    start = EpisodeStart(
        target=np.zeros(4), incoming=np.array(DEMO_INCOMING_BEAM), misalignments=np.zeros(8), magnets=np.zeros(5)
    )
    magnets = np.zeros(5)
    specs = (preset("negative_objective"), preset("sum_of_pixels"))

    def cut() -> np.ndarray:
        grid = cut_grid(start, magnets, simulator, index=0, n=CUT_POINTS)
        return np.stack([landscape_of(s, grid).reward[0] for s in specs])

    def square_row() -> np.ndarray:
        rows = []
        for s in specs:
            land = reward_landscape(
                s, start, magnets, simulator, x_index=0, y_index=1, n=CUT_POINTS, y_range=(magnets[1], magnets[1])
            )
            rows.append(land.reward[0])
        return np.stack(rows)

    if not np.array_equal(cut(), square_row()):
        raise RuntimeError("the cut and the first row of the square grid differ")
    cut_s = min(timed(cut) for _ in range(repeats))
    square_s = min(timed(square_row) for _ in range(max(1, repeats // 2)))
    return {
        "cut_two_rewards_ms": round(cut_s * 1e3, 2),
        "cut_as_square_grid_row_ms": round(square_s * 1e3, 1),
        "square_grid_vs_cut": round(square_s / cut_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reruns", type=int, default=20, help="page reruns of each kind (weight changes: at most 20)")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    figures = {**bench_cut(), **bench_page(args.reruns)}
    figures["load_average_1min"] = round(load, 2)
    rows = [
        ("Reward designer rerun, nothing changed, p50 / p95", "page_rerun_p50_ms", "page_rerun_p95_ms"),
        ("  after a weight change (rewards anew, beams cached), p50 / p95",
         "page_weight_change_p50_ms", "page_weight_change_p95_ms"),
        (f"{CUT_POINTS}-point cut of both rewards / as a row of a square grid",
         "cut_two_rewards_ms", "cut_as_square_grid_row_ms"),
    ]  # fmt: skip
    width = max(len(r[0]) for r in rows)
    for name, a, b in rows:
        print(f"{name:<{width}}  {figures[a]:8.1f} / {figures[b]:8.1f} ms")
    print(f"{'the square grid is slower by':<{width}}  {figures['square_grid_vs_cut']:.0f} x")
    print(f"1-min load average at start {load:.2f} on {os.cpu_count()} cores")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
