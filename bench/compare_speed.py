"""Benchmark of the Compare page's work: the tutorial's five agents side by side.

Run from the repository root::

    .venv/bin/python bench/compare_speed.py

Prints a table and, as the last line, one JSON object with ``episode5_s`` (one side-by-side
episode of the five tutorial agents, 25 steps each, from the same initial state; goal
<= 1 s), ``eval5x50_s`` (the five agents on 50 seeds; goal <= 5 s), ``screens5_s`` (the
page's animated screens of that episode: 5 screens x 26 steps, built and serialised as
``st.plotly_chart`` does; Play then runs in the browser), ``workers_episode5_s`` (the same
episode as the server runs it: in a worker process of :class:`envlib.workers.AgentWorkers`,
the result pickled back; ``workers_vs_in_process`` is its ratio to ``episode5_s``; shipped
agents only), the same figures per CPU second (``*_cpu``; for the worker path, this process's
CPU only), the 1-minute load average at the start and ``agents``: ``shipped``
when the five agents in ``pretrained/`` were used, or ``stand-ins`` (their configs with
freshly initialised networks of the same shape: the same amount of work) while they have
not been trained yet. Every figure is the best of a few repeats; one torch thread.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import plotly.io
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # works from a clean clone

from timing import best_time  # noqa: E402  (bench/timing.py)

from envlib.agent import Agent, build_policy, load_agent  # noqa: E402
from envlib.beamline import BeamlineSimulator  # noqa: E402
from envlib.compare import TUTORIAL_AGENT_IDS, available_agents, compare  # noqa: E402
from envlib.evaluation import evaluation_seeds  # noqa: E402
from envlib.pretrained import PRETRAINED  # noqa: E402
from envlib.runs import ObsNormalizer  # noqa: E402
from envlib.workers import AgentWorkers  # noqa: E402
from ui.compare import screens_figure  # noqa: E402

REPEATS = 3


def stand_in(agent_id: str) -> Agent:
    """A shipped agent's config with an untrained network of the same shape (no saved model yet)."""
    config = PRETRAINED[agent_id].config
    d = build_policy(config).observation_space.shape[0] // (config.train.frame_stack or 1)
    identity = ObsNormalizer(np.zeros(d), np.ones(d), 1.0, 1.0, 1.0, True, True, 10.0, 10.0, 0.99, 1e-8)
    return Agent(config=config, policy=build_policy(config), normalizer=identity)


def tutorial_agents() -> tuple[dict[str, Agent], str]:
    """The tutorial's five agents by display name, and whether they are the shipped ones."""
    shipped = all((PRETRAINED[i].path / "model.zip").is_file() for i in TUTORIAL_AGENT_IDS)
    make = (lambda i: load_agent(PRETRAINED[i].path)) if shipped else stand_in
    return {PRETRAINED[i].display_name: make(i) for i in TUTORIAL_AGENT_IDS}, "shipped" if shipped else "stand-ins"


def main() -> None:
    torch.set_num_threads(1)
    load = os.getloadavg()[0]
    agents, kind = tutorial_agents()
    simulator = BeamlineSimulator()
    compare(agents, [0], simulator=simulator)  # warm-up

    episode = best_time(lambda i: compare(agents, [100 + i], simulator=simulator), repeats=5)
    seeds = evaluation_seeds(50)
    evaluation = best_time(lambda i: compare(agents, seeds, simulator=simulator), REPEATS)
    result = compare(agents, [7], simulator=simulator)

    def screens(_: int) -> None:
        figure = screens_figure(result).to_dict()  # what st.plotly_chart does with it
        plotly.io.to_json(figure, validate=False)

    animation = best_time(screens, REPEATS)
    size_mb = len(screens_figure(result).to_json()) / 1e6

    figures: dict[str, float | str] = {"cpu_load_1min": load, "agents": kind, "screens5_mb": size_mb}
    for suffix, attr in (("", "wall"), ("_cpu", "cpu")):
        figures[f"episode5_s{suffix}"] = getattr(episode, attr)
        figures[f"eval5x50_s{suffix}"] = getattr(evaluation, attr)
        figures[f"screens5_s{suffix}"] = getattr(animation, attr)
    if kind == "shipped":
        workers = AgentWorkers(1)
        request = [choice.request for choice in available_agents().tutorial_defaults()]
        workers.compare(request, [0])  # started, agents loaded
        remote = best_time(lambda i: workers.compare(request, [100 + i]), repeats=5)
        workers.close()
        figures["workers_episode5_s"], figures["workers_episode5_s_cpu"] = remote.wall, remote.cpu
        figures["workers_vs_in_process"] = remote.wall / episode.wall

    def row(what: str, key: str, goal: str = "") -> str:
        return f"{what:<36} {figures[key]:>8.3f} {figures[f'{key}_cpu']:>8.3f}  {goal}"

    print(
        f"Compare benchmark: five tutorial agents ({kind}), {os.cpu_count()} CPUs, load {load:.2f}, "
        f"torch threads {torch.get_num_threads()}"
    )
    print(f"{'what (s)':<36} {'wall':>8} {'per CPU':>8}  goal (wall)")
    print(row("one episode, 5 agents x 25 steps", "episode5_s", "<= 1 s"))
    print(row("evaluation, 5 agents x 50 seeds", "eval5x50_s", "<= 5 s"))
    print(row("its animated screens, 5 x 26 frames", "screens5_s") + f"({size_mb:.2f} MB to the browser)")
    if "workers_episode5_s" in figures:
        ratio = figures["workers_vs_in_process"]
        print(row("the episode in a worker process", "workers_episode5_s", f"{ratio:.2f} x in-process"))
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}))


if __name__ == "__main__":
    main()
