"""Command line: evaluate a run's agent on the fixed evaluation seeds and print the metrics.

::

    python -m envlib.evaluate RUN_DIR [--episodes N] [--stochastic] [--traces OUT.csv]

Prints one line per metric (errors in m), then the metrics as one JSON object on the last
line. A missing or damaged run, or a bad option, exits with 2 before evaluating; a traces
file that cannot be written exits with 1 after the metrics.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from envlib.agent import load_agent
from envlib.evaluation import evaluate, evaluation_seeds
from envlib.runs import RunError

#: Metrics in meters, printed in scientific notation.
METRICS_IN_M = ("mean_final_mae_focus", "median_final_mae_focus", "mean_final_mae_all", "rmse_focus")
#: Most episodes one call evaluates: all run as one batch (10,000 took ~10 s and 0.8 GB).
MAX_EPISODES = 10_000


def traces_problem(path: Path | None) -> str | None:
    """Why ``--traces PATH`` cannot be written (checked before minutes of evaluation), or None."""
    if path is None:
        return None
    if path.is_dir():
        return f"--traces {path} is a folder; give a file name such as {path / 'traces.csv'}"
    if not path.parent.is_dir():
        return f"--traces {path}: the folder {path.parent} does not exist"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m envlib.evaluate",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.strip().split("\n\n")[-1],
    )
    parser.add_argument("run_dir", type=Path, help="run directory (config.yaml, model.zip, normalizer.npz)")
    parser.add_argument(
        "--episodes",
        type=int,
        default=200,
        help=f"episodes, one per fixed evaluation seed, 1 to {MAX_EPISODES} (default 200, as in pretrained/README.md)",
    )
    parser.add_argument("--stochastic", action="store_true", help="sample actions (default: the policy's mean action)")
    parser.add_argument(
        "--traces",
        type=Path,
        help="also write every step of every episode to this CSV file (beam and target in m, Q in 1/m^2, "
        "correctors in rad); default: none",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.episodes <= MAX_EPISODES:
        print(f"error: --episodes must be from 1 to {MAX_EPISODES}, got {args.episodes}", file=sys.stderr)
        return 2
    problem = traces_problem(args.traces)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    try:
        agent = load_agent(args.run_dir)
    except RunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = evaluate(agent, evaluation_seeds(args.episodes), deterministic=not args.stochastic)
    name = agent.config.display_name or args.run_dir.name
    print(f"{name}: {args.episodes} episodes, {'stochastic' if args.stochastic else 'deterministic'}")
    for key, value in result.metrics.items():
        text = f"{value:.3e} m" if key in METRICS_IN_M else f"{value:.4g}"
        print(f"  {key:<24} {text}")
    print(json.dumps(result.metrics), flush=True)
    if args.traces is not None:
        try:  # after the metrics, so a file that cannot be written loses none of them
            result.traces.to_csv(args.traces, index=False)
        except OSError as exc:
            print(f"error: cannot write --traces {args.traces}: {exc.strerror or exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
