"""Timing helpers shared by the benchmarks (imported as ``timing`` from the bench folder)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Timing:
    """Shortest wall-clock and CPU time of one run, in s."""

    wall: float
    cpu: float


def best_time(fn: Callable[[int], object], repeats: int = 3) -> Timing:
    """Shortest wall and process (CPU) time of ``fn(i)`` over ``repeats`` runs (i = 0, 1, ...).

    On a shared machine the wall time grows with the load; the CPU time shows what one free
    core would do.
    """
    walls, cpus = [], []
    for i in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        fn(i)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return Timing(min(walls), min(cpus))
