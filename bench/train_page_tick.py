"""Benchmark of the Train page: the tutorial's training launched as a job, and the page's refresh cost.

Run from the repository root::

    .venv/bin/python bench/train_page_tick.py [--timesteps 200000] [--ticks-after 20]

1. Submits the tutorial's training config (n_envs 40, n_steps 50, batch 100, n_epochs 10,
   200k steps, evaluation every 20k steps on 20 seeds) to a :class:`~envlib.jobs.JobManager`
   with the default local backend, exactly as the page's Launch button does, and waits
   for it: ``job_wall_s`` from submission to the job's final record, ``train_s`` the
   training's own clock, ``startup_s`` from submission to the first environment step.
2. Meanwhile, about once a second, renders the page's whole live section (``live_body``:
   the job list, refreshed every 2 s, and the progress and three history plots of the
   running job, refreshed every 6 s) in Streamlit's AppTest and times its server work: reading the
   job records and CSVs, building the Plotly figures and serialising every element. After
   the job ends it does the same on the finished run's full history.

``tick_ms_*`` is that server time per tick (one CPU core; the training runs on the other).
AppTest's own overhead and the websocket are not in it; ``apptest_run_ms_p50`` gives the
whole AppTest run for reference. The last line is one JSON object; the 1-minute load
average at the start and the end says how busy the machine was.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # works from a clean clone

from envlib.config import RunConfig, TrainConfig  # noqa: E402
from envlib.jobs import JobManager  # noqa: E402
from envlib.runs import RunError, read_episodes, read_progress  # noqa: E402


def live_section_script() -> None:
    """The AppTest script: the Train page's live section alone, timed from inside."""
    import time

    import streamlit as st

    from ui.common import job_manager, session_owner
    from ui.train import live_body

    manager = job_manager()
    start, cpu_start = time.perf_counter(), time.thread_time()
    live_body(manager, session_owner(), ticking=False)
    st.session_state["tick_ms"] = 1e3 * (time.perf_counter() - start)
    st.session_state["tick_cpu_ms"] = 1e3 * (time.thread_time() - cpu_start)


def tick(at) -> tuple[float, float, float]:
    """One refresh: (wall and CPU time of the live section, whole AppTest run), in ms."""
    start = time.perf_counter()
    at.run()
    total = 1e3 * (time.perf_counter() - start)
    if at.exception:
        raise RuntimeError(at.exception[0].value)
    return float(at.session_state["tick_ms"]), float(at.session_state["tick_cpu_ms"]), total


def percentiles(values: list[float]) -> dict[str, float]:
    a = np.asarray(values)
    return {"p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)), "max": float(a.max())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timesteps", type=int, default=TrainConfig().total_timesteps)
    parser.add_argument("--ticks-after", type=int, default=20, help="ticks on the finished run")
    args = parser.parse_args()

    from streamlit.testing.v1 import AppTest

    load_start = os.getloadavg()[0]
    runs_dir = Path(tempfile.mkdtemp(prefix="ares-bench-runs-"))
    os.environ["ARES_RUNS_DIR"] = str(runs_dir)
    from ui.common import job_manager

    manager: JobManager = job_manager()  # the page's own manager (st.cache_resource)
    config = RunConfig.from_dict({"display_name": "Tutorial bench", "train": {"total_timesteps": args.timesteps}})
    try:
        at = AppTest.from_function(live_section_script, default_timeout=60)
        tick(at)  # imports and caches warm up; not counted

        submitted = time.time()
        job = manager.submit(config, owner="bench")
        run_dir = manager.run_dir(job.job_id)
        first_step = None
        live: list[tuple[float, float, float]] = []
        while manager.status(job.job_id).active:
            time.sleep(1.0)
            try:
                progress = read_progress(run_dir)
            except RunError:
                continue
            if first_step is None and progress.timesteps > 0:
                first_step = time.time()
            live.append(tick(at))
        done = manager.status(job.job_id)
        if done.status != "finished":
            raise RuntimeError(f"the job ended {done.status}: {done.error}\n{done.log_tail}")
        progress = read_progress(run_dir)
        n_episodes = len(read_episodes(run_dir))
        after = [tick(at) for _ in range(args.ticks_after)]
    finally:
        manager.close(kill_jobs=True)
        shutil.rmtree(runs_dir, ignore_errors=True)
    load_end = os.getloadavg()[0]

    figures = {
        "timesteps": progress.timesteps,
        "job_wall_s": done.ended - submitted,
        "train_s": progress.elapsed_s,
        "startup_s": (first_step - submitted) if first_step else None,
        "episodes": n_episodes,
    }
    ticks = live + after
    live_ms, after_ms = percentiles([t[0] for t in live]), percentiles([t[0] for t in after])
    wall, cpu = percentiles([t[0] for t in ticks]), percentiles([t[1] for t in ticks])
    apptest_ms = float(np.median([t[2] for t in ticks]))
    rows = [
        ("tutorial config, timesteps", f"{figures['timesteps']:,}"),
        ("job wall time, submit to finished (s)", f"{figures['job_wall_s']:.1f}"),
        ("  training clock (s)", f"{figures['train_s']:.1f}"),
        ("  submit to first env step (s)", f"{figures['startup_s'] or float('nan'):.1f}"),
        ("episodes in the history", f"{figures['episodes']:,}"),
        ("ticks while training / on the finished run", f"{len(live)} / {len(after)}"),
        ("tick wall ms while training p50 / p95 / max",
         f"{live_ms['p50']:.1f} / {live_ms['p95']:.1f} / {live_ms['max']:.1f}"),
        ("tick wall ms on finished run p50 / p95 / max",
         f"{after_ms['p50']:.1f} / {after_ms['p95']:.1f} / {after_ms['max']:.1f}"),
        ("tick CPU ms, all ticks p50 / p95 / max", f"{cpu['p50']:.1f} / {cpu['p95']:.1f} / {cpu['max']:.1f}"),
        ("whole AppTest run ms p50", f"{apptest_ms:.1f}"),
        ("load average (1 min) start / end", f"{load_start:.2f} / {load_end:.2f}"),
    ]
    print(f"{'what':<48} value")
    for label, value in rows:
        print(f"{label:<48} {value}")
    print(
        json.dumps(
            {
                "tutorial_timesteps": figures["timesteps"],
                "job_wall_s": round(figures["job_wall_s"], 2),
                "train_s": round(figures["train_s"], 2),
                "startup_s": round(figures["startup_s"], 2) if figures["startup_s"] else None,
                "tick_ms_p50": round(wall["p50"], 2),
                "tick_ms_p95": round(wall["p95"], 2),
                "tick_ms_max": round(wall["max"], 2),
                "tick_cpu_ms_p50": round(cpu["p50"], 2),
                "tick_cpu_ms_p95": round(cpu["p95"], 2),
                "tick_ms_live_p50": round(live_ms["p50"], 2),
                "tick_ms_finished_p50": round(after_ms["p50"], 2),
                "apptest_run_ms_p50": round(apptest_ms, 2),
                "ticks": len(ticks),
                "load_avg_start": round(load_start, 2),
                "load_avg_end": round(load_end, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
