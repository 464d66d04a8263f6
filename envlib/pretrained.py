"""The agents we trained ourselves and ship in ``pretrained/``, and how to retrain them.

Each agent lives in ``pretrained/<id>/`` as a normal run directory (see :mod:`envlib.runs`)
plus ``scores.json``: its metrics on :data:`SCORE_EPISODES` fixed evaluation seeds and how
long it trained. Load one with ``load_agent(PRETRAINED["negobj-delta"].path)``.

``python -m envlib.pretrained --retrain [ID ...]`` (``make pretrained``) retrains them one
after another from their checked-in ``config.yaml``, evaluates them, and rewrites
``pretrained/README.md`` with the table of scores.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from envlib.config import RunConfig
from envlib.evaluation import evaluate, evaluation_seeds
from envlib.runs import EPISODE_COLUMNS, EPISODES_FILE, RunError, read_config, read_episodes, write_atomic

#: Where the shipped agents live.
PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"
SCORES_FILE = "scores.json"
#: Episodes (fixed seeds) in ``scores.json``, as in the tutorial's evaluation.
SCORE_EPISODES = 200
#: A shipped ``episodes.csv`` keeps at most this many rows (every k-th episode) to stay small.
MAX_SHIPPED_EPISODE_ROWS = 2000


@dataclass(frozen=True)
class PretrainedAgent:
    """One shipped agent.

    :param id: folder name, says what the agent is (e.g. ``negobj-delta``).
    :param display_name: the tutorial's name for it (e.g. ``Sean Kelley``).
    """

    id: str
    display_name: str

    @property
    def path(self) -> Path:
        """The agent's run directory."""
        return PRETRAINED_DIR / self.id

    @property
    def config(self) -> RunConfig:
        """The agent's checked-in config (``description`` says what it teaches)."""
        return read_config(self.path)

    def scores(self) -> dict[str, Any]:
        """``scores.json``; :class:`RunError` if missing or unreadable."""
        path = self.path / SCORES_FILE
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RunError(path, f"cannot be read: {exc}") from None


#: The shipped agents, in the tutorial's order, then the full task.
AGENTS: tuple[PretrainedAgent, ...] = (
    PretrainedAgent("objimp-delta-abort-time", "Gary Buchwald"),
    PretrainedAgent("pixels-delta", "David Archibald"),
    PretrainedAgent("objimp-direct", "Bertha Sparkman"),
    PretrainedAgent("objimp-delta", "Betty Gordon"),
    PretrainedAgent("negobj-delta", "Sean Kelley"),
    PretrainedAgent("full-task", "Full task"),
)
PRETRAINED: dict[str, PretrainedAgent] = {agent.id: agent for agent in AGENTS}


def score(agent_id: str, episodes: int = SCORE_EPISODES) -> dict[str, float]:
    """Evaluate a shipped agent on the fixed seeds (deterministic); its metrics."""
    return _score_run(PRETRAINED[agent_id].path, episodes)


def _score_run(run_dir: Path, episodes: int = SCORE_EPISODES) -> dict[str, float]:
    """The metrics of the agent in ``run_dir`` on the fixed seeds (deterministic policy)."""
    from envlib.agent import load_agent

    return evaluate(load_agent(run_dir), evaluation_seeds(episodes)).metrics


def _thin_episodes(run_dir: Path) -> int:
    """Keep every k-th row of ``episodes.csv`` so it has at most MAX_SHIPPED_EPISODE_ROWS; returns k."""
    episodes = read_episodes(run_dir)
    k = max(1, -(-len(episodes) // MAX_SHIPPED_EPISODE_ROWS))
    if k > 1:
        thinned = episodes.iloc[k - 1 :: k]
        write_atomic(run_dir / EPISODES_FILE, thinned.to_csv(index=False, columns=list(EPISODE_COLUMNS)))
    return k


def _versions() -> dict[str, str]:
    names = ("stable-baselines3", "torch", "cheetah-accelerator", "gymnasium", "numpy")
    return {name: metadata.version(name) for name in names} | {"python": platform.python_version()}


def retrain(agent_id: str, *, max_timesteps: int | None = None, progress_bar: bool = False) -> dict[str, Any]:
    """Retrain one shipped agent from its ``config.yaml``, evaluate it and write ``scores.json``.

    Trains and scores in a scratch folder next to it and moves the files in only when both
    finished, so a failed or stopped retraining leaves the shipped agent (model and scores) as it was.

    :param agent_id: an id of :data:`PRETRAINED`.
    :param max_timesteps: cap on total_timesteps (for trying the pipeline quickly).
    :return: the scores written.
    """
    from envlib.training import train

    agent = PRETRAINED[agent_id]
    config = agent.config
    if max_timesteps is not None:
        capped = min(config.train.total_timesteps, max_timesteps)
        config = dataclasses.replace(config, train=dataclasses.replace(config.train, total_timesteps=capped))
    scratch = PRETRAINED_DIR / f".{agent_id}.training"
    shutil.rmtree(scratch, ignore_errors=True)
    load_before = os.getloadavg()
    result = train(config, scratch, progress_bar=progress_bar)
    load_after = os.getloadavg()
    if result.status != "finished":
        raise RuntimeError(f"retraining {agent_id} ended {result.status}")
    every_k = _thin_episodes(scratch)
    scores = {
        "id": agent.id,
        "display_name": agent.display_name,
        "evaluation": {
            "episodes": SCORE_EPISODES,
            "seeds": f"envlib.evaluation.evaluation_seeds({SCORE_EPISODES})",
            "deterministic": True,
        },
        "metrics": _score_run(scratch),  # before the move: a model never ships with another's scores
        "training": {
            "timesteps": result.timesteps,
            "wall_s": round(result.elapsed_s, 1),
            "steps_per_s": round(result.timesteps / result.elapsed_s, 1),
            "load_average_1min_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
            "cpu_count": os.cpu_count(),
            "episodes_csv_every_kth": every_k,
        },
        "versions": _versions(),
    }
    write_atomic(scratch / SCORES_FILE, json.dumps(scores, indent=2) + "\n")
    for path in scratch.iterdir():
        # config.yaml stays the checked-in one, also after a capped trial (scores.json has the steps).
        if path.name not in ("progress.json", "config.yaml"):
            os.replace(path, agent.path / path.name)
    shutil.rmtree(scratch)
    return scores


def _setup(config: RunConfig, timesteps: int) -> str:
    env, train = config.env, config.train
    parts = [env.reward_mode, env.action_mode]
    if env.abort_if_off_screen:
        parts.append("abort off screen")
    if env.time_reward:
        parts.append(f"time_reward {env.time_reward:g}")
    if env.actuators == "all":
        parts.append("5 magnets")
    if env.target_beam_mode == "random":
        parts.append("random targets")
    parts.append("terms " + "+".join(env.objective_terms))
    return ", ".join(parts) + f"; {train.algorithm}, {timesteps:,} steps"


def readme_table() -> str:
    """The Markdown table of every shipped agent's scores (agents without scores are listed as such)."""
    header = (
        "| id | tutorial name | setup | mean final mae_focus (m) | median (m) | mean final mae_all (m) "
        "| episode length | left screen | aborted | training time |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for agent in AGENTS:
        try:
            config = agent.config
            scores = agent.scores()
        except RunError:
            rows.append(f"| `{agent.id}` | {agent.display_name} | not trained yet | | | | | | | |")
            continue
        m, t = scores["metrics"], scores["training"]
        rows.append(
            f"| `{agent.id}` | {agent.display_name} | {_setup(config, t['timesteps'])} "
            f"| {m['mean_final_mae_focus']:.2e} | {m['median_final_mae_focus']:.2e} | {m['mean_final_mae_all']:.2e} "
            f"| {m['mean_episode_length']:.1f} | {100 * m['fraction_off_screen']:.0f} % "
            f"| {100 * m['fraction_aborted']:.0f} % | {t['wall_s'] / 60:.1f} min |"
        )
    return header + "\n".join(rows) + "\n"


README_HEAD = """# Pre-trained agents

Agents we trained ourselves with `envlib.training` on the batched ARES EA environment, one
for each of the tutorial's five reward setups (the tutorial's names are kept as display
names) plus one for the full task. Each folder is a run directory: `config.yaml` (with a
`description` of what the agent teaches), `model.zip`, `normalizer.npz`, `episodes.csv`
(every k-th training episode, k in `scores.json`), `evaluations.csv` and `scores.json`.

Load one without unpickling anything:

```python
from envlib.agent import load_agent
from envlib.pretrained import PRETRAINED
agent = load_agent(PRETRAINED["negobj-delta"].path)
```

Retrain them all from their configs (one after another, CPU only): `make pretrained`
(`python -m envlib.pretrained --retrain [ID ...]`).

## Scores

Deterministic policy on the {episodes} fixed seeds `envlib.evaluation.evaluation_seeds({episodes})`
(the same incoming beams for every agent). mae_focus = (|sigma_x error| + |sigma_y error|) / 2
and mae_all = mean of all four beam errors, both at the last step of an episode. "left
screen": episodes in which the beam centre left the screen at some step. Training times are
wall time on a 2-core machine shared with other work (load averages in `scores.json`).

"""


def write_readme() -> None:
    """Rewrite ``pretrained/README.md`` from the agents' ``scores.json``."""
    text = README_HEAD.format(episodes=SCORE_EPISODES) + readme_table()
    notes = PRETRAINED_DIR / "NOTES.md"
    if notes.is_file():
        text += "\n" + notes.read_text(encoding="utf-8")
    write_atomic(PRETRAINED_DIR / "README.md", text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m envlib.pretrained", description=__doc__.split("\n\n")[0])
    parser.add_argument("ids", nargs="*", help=f"agents to retrain (default: all of {', '.join(PRETRAINED)})")
    parser.add_argument("--retrain", action="store_true", help="retrain, evaluate and update the README")
    parser.add_argument(
        "--max-timesteps",
        type=int,
        help="cap on total_timesteps, in environment steps (a quick trial; its agents replace the shipped ones "
        "and their README rows); default: the configs' own",
    )
    parser.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bar on stderr (default: on)"
    )
    args = parser.parse_args(argv)
    unknown = [i for i in args.ids if i not in PRETRAINED]
    if unknown:
        print(f"error: unknown agent(s) {', '.join(unknown)}; known: {', '.join(PRETRAINED)}", file=sys.stderr)
        return 2
    if args.max_timesteps is not None and args.max_timesteps < 1:
        print(f"error: --max-timesteps must be at least 1, got {args.max_timesteps}", file=sys.stderr)
        return 2
    if not args.retrain:
        print(readme_table(), end="")
        return 0
    import torch

    torch.set_num_threads(1)
    for agent_id in args.ids or list(PRETRAINED):
        print(f"== {agent_id} ({time.strftime('%H:%M:%S')})", file=sys.stderr, flush=True)
        scores = retrain(agent_id, max_timesteps=args.max_timesteps, progress_bar=args.progress)
        print(json.dumps(scores["metrics"] | scores["training"]), flush=True)
        write_readme()
    return 0


if __name__ == "__main__":
    sys.exit(main())
