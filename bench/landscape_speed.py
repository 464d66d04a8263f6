"""Benchmark of reward landscapes: computed and turned into a Plotly figure.

Run from the repository root::

    .venv/bin/python bench/landscape_speed.py

For 100 x 100 and 200 x 200 grids over Q1 and Q2 (the Reward designer's default), times
``reward_landscape`` (one broadcast Cheetah call + the spec's terms) plus
``landscape_figure(...).to_json()`` (what the page sends), best of a few repeats with one
torch thread, for the negative_objective and sum_of_pixels presets. Prints a table and, as
the last line, one JSON object with ``landscape_100x100_ms`` and ``landscape_200x200_ms``
(the slower preset each), the split into compute and figure, the payload sizes and the
1-minute load average at the start (the machine may be shared).
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

from envlib.beamline import BeamlineSimulator  # noqa: E402
from envlib.config import DEMO_INCOMING_BEAM  # noqa: E402
from envlib.figures import landscape_figure  # noqa: E402
from envlib.landscape import reward_landscape  # noqa: E402
from envlib.reward_spec import preset  # noqa: E402
from envlib.task import EpisodeStart  # noqa: E402

REPEATS = 5


def best_of(fn, repeats: int = REPEATS) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3, out


def main() -> None:
    torch.set_num_threads(1)
    load = os.getloadavg()[0]
    simulator = BeamlineSimulator()
    start = EpisodeStart(
        target=np.zeros(4), incoming=np.array(DEMO_INCOMING_BEAM), misalignments=np.zeros(8), magnets=np.zeros(5)
    )
    magnets = np.array([10.0, -10.0, 0.0, 5.0, 0.0])
    reward_landscape(preset("negative_objective"), start, magnets, simulator, n=20)  # warm-up
    rows, figures = [], {}
    for n in (100, 200):
        worst_total = 0.0
        for mode in ("negative_objective", "sum_of_pixels"):
            spec = preset(mode)
            # Default arguments bind this iteration's values (best_of runs each lambda right away anyway).
            compute_ms, land = best_of(lambda spec=spec, n=n: reward_landscape(spec, start, magnets, simulator, n=n))
            figure_ms, payload = best_of(lambda land=land: landscape_figure(land).to_json())
            total_ms, _ = best_of(
                lambda spec=spec, n=n: landscape_figure(
                    reward_landscape(spec, start, magnets, simulator, n=n)
                ).to_json()
            )
            rows.append((f"{n}x{n}", mode, compute_ms, figure_ms, total_ms, len(payload)))
            worst_total = max(worst_total, total_ms)
        figures[f"landscape_{n}x{n}_ms"] = round(worst_total, 1)

    print(f"{'grid':>8} {'reward':>20} {'compute ms':>11} {'figure ms':>10} {'total ms':>9} {'payload':>9}")
    for grid, mode, c, f, t, size in rows:
        print(f"{grid:>8} {mode:>20} {c:11.1f} {f:10.1f} {t:9.1f} {size / 1e3:8.0f}k")
    print(
        "goals: 100x100 <= 150 ms, 200x200 <= 500 ms; "
        f"1-min load average at start {load:.2f} on {os.cpu_count()} cores"
    )
    result = dict(figures)
    for grid, mode, c, f, _, size in rows:
        key = f"{grid}_{mode}"
        result[f"compute_{key}_ms"] = round(c, 1)
        result[f"figure_{key}_ms"] = round(f, 1)
        result[f"payload_{key}_bytes"] = size
    result["load_average_1min"] = round(load, 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
