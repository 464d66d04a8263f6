"""Command line: train one agent from a YAML config into a new run directory.

::

    python -m envlib.train CONFIG.yaml --out RUNS_DIR [--run-id ID] [--max-timesteps N]
                           [--progress | --no-progress]

Prints the run directory (one line on stdout) as soon as it exists. SIGTERM, SIGINT (Ctrl-C) or a
file named ``STOP`` in the run directory ends training at the next step: the model reached
so far is saved, ``progress.json`` says ``stopped`` and the exit code is 0. A bad config or
run id exits with 2 before anything is written; an error during training leaves
``progress.json`` ``failed`` with the message and exits with 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import threading
from pathlib import Path

import torch
from stable_baselines3.common.callbacks import BaseCallback

from envlib.config import ConfigError, RunConfig
from envlib.names import generate_run_id
from envlib.runs import CONFIG_FILE, MODEL_FILE, PROGRESS_FILE, is_valid_run_id, run_path
from envlib.training import train


class StopOnEvent(BaseCallback):
    """Stops training at the next step once ``event`` is set (e.g. by a signal handler)."""

    def __init__(self, event: threading.Event) -> None:
        super().__init__()
        self.event = event

    def _on_step(self) -> bool:
        return not self.event.is_set()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line's arguments; argparse exits with 2 and a usage line on bad ones."""
    parser = argparse.ArgumentParser(
        prog="python -m envlib.train",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.strip().split("\n\n")[-1],  # stopping and exit codes
    )
    parser.add_argument("config", type=Path, help="run config: YAML with env and train sections (safe YAML only)")
    parser.add_argument(
        "--out", type=Path, required=True, help="runs folder (created if missing); the run goes to OUT/<run id>"
    )
    parser.add_argument("--run-id", help="run id ([a-z0-9][a-z0-9-]{0,63}); default: a generated name")
    parser.add_argument(
        "--max-timesteps",
        type=int,
        help="cap on the config's total_timesteps, in environment steps summed over all n_envs; default: no cap",
    )
    parser.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bar on stderr (default: on)"
    )
    return parser.parse_args(argv)


def prepare_run(args: argparse.Namespace) -> tuple[RunConfig, Path]:
    """Validate the inputs and pick the run directory; raises ValueError or ConfigError."""
    config = RunConfig.load(args.config)
    if args.max_timesteps is not None:
        if args.max_timesteps < 1:
            raise ValueError(f"--max-timesteps must be at least 1, got {args.max_timesteps}")
        capped = min(config.train.total_timesteps, args.max_timesteps)
        config = dataclasses.replace(config, train=dataclasses.replace(config.train, total_timesteps=capped))
    if args.out.exists() and not args.out.is_dir():
        raise ValueError(f"--out {args.out} is a file; give the folder that holds the runs")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.run_id is None:
        taken = {p.name for p in args.out.iterdir()}
        run_id = generate_run_id(taken)
    elif not is_valid_run_id(args.run_id):
        raise ValueError(
            f"--run-id {args.run_id!r} is not a valid id: use 1 to 64 lowercase letters, digits and dashes"
        )
    else:
        run_id = args.run_id
    run_dir = run_path(args.out, run_id)
    # A folder made beforehand (e.g. by a job manager for its log) is fine; a run is not.
    for name in (CONFIG_FILE, MODEL_FILE, PROGRESS_FILE):
        if (run_dir / name).exists():
            raise ValueError(f"{run_dir} already holds a run ({name}); choose another --run-id")
    run_dir.mkdir(exist_ok=True)
    return config, run_dir


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config, run_dir = prepare_run(args)
    except (ConfigError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    torch.set_num_threads(1)  # more threads are slower on a small shared machine
    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    print(run_dir, flush=True)
    try:
        result = train(config, run_dir, callbacks=[StopOnEvent(stop)], progress_bar=args.progress)
    except Exception as exc:
        print(f"error: training failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    metrics = result.evaluation or {}
    mae = metrics.get("mean_final_mae_focus")
    print(
        f"{result.status} after {result.timesteps:,} steps in {result.elapsed_s:.1f} s"
        + (f"; mean final mae_focus {mae:.3g} m on {metrics['n_episodes']} seeds" if mae is not None else ""),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
