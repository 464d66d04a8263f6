"""Several agents on the same beams: side-by-side episodes, evaluations and reward pathologies.

Every agent of a comparison starts each episode from the **same** initial state: the
:class:`~envlib.task.EpisodeStart` of a seed is drawn once, from the comparison's scenario
(:data:`SCENARIOS`), and passed to :func:`envlib.evaluation.evaluate` of every agent. Agents
whose configs differ (reward, action mode, abort, time limit) therefore still see the same
incoming beam, misalignments, target and initial magnets; each then acts and is rewarded in
its own environment.

The pathologies the tutorial warns about are found in the traces, never looked up per
agent (:func:`find_flags`):

| flag | fires at the first step where |
|---|---|
| ``left_screen`` | the beam centre is off the screen |
| ``aborted`` | the episode was ended early by ``abort_if_off_screen`` |
| ``blown_up`` | sigma_x + sigma_y is :data:`BLOW_UP_FACTOR` times its value at reset or more |
| ``pinned`` | an actuated magnet starts :data:`PIN_STEPS` consecutive steps within :data:`PIN_TOLERANCE` of its limit |

Units: beam parameters and errors in m, magnets in 1/m^2 and rad.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from envlib.beamline import MAGNET_LABELS, MAGNET_LIMITS, QUADRUPOLE_INDICES, BeamlineSimulator
from envlib.config import EnvConfig, RunConfig
from envlib.evaluation import episode_starts, evaluate
from envlib.jobs import scan_runs
from envlib.pretrained import AGENTS as PRETRAINED_AGENTS
from envlib.runs import MODEL_FILE, NORMALIZER_FILE, RunError, read_config
from envlib.task import EpisodeStart

if TYPE_CHECKING:
    from envlib.agent import Agent

#: Beams a comparison starts from: only the sampling keys (``*_mode``, ``*_values``) matter.
#: ``tutorial`` is the tutorial's evaluation: a random incoming beam, no misalignments, a
#: zero target, magnets at zero. ``misaligned`` adds random misalignments (within +-2 mm).
SCENARIOS: dict[str, EnvConfig] = {
    "tutorial": EnvConfig(),
    "misaligned": EnvConfig(misalignment_mode="random"),
}
ScenarioName = Literal["tutorial", "misaligned"]

FlagKind = Literal["left_screen", "aborted", "blown_up", "pinned"]
#: How each flag reads on an agent's panel, in the order they are checked.
FLAG_LABELS: dict[str, str] = {
    "left_screen": "beam left the screen",
    "aborted": "episode ended early (abort)",
    "blown_up": "beam blown up",
    "pinned": "magnet pinned at its limit",
}
#: sigma_x + sigma_y this many times its value at reset counts as blown up.
BLOW_UP_FACTOR = 3.0
#: A magnet within this fraction of its limit counts as at the limit ...
PIN_TOLERANCE = 0.01
#: ... and is pinned when it stays there this many consecutive steps.
PIN_STEPS = 3
FLAG_COLUMNS = ("episode", "flag", "step", "detail")
MM = 1e3

#: The tutorial's five agents (Part III), in its order: the default comparison.
TUTORIAL_AGENT_IDS = tuple(agent.id for agent in PRETRAINED_AGENTS[:5])
#: One agent to run, as plain data (a cache key, or a request to a worker process):
#: ``(label, run folder, model version)``.
AgentRequest = tuple[str, str, int]
#: At most this many of the newest finished training runs are offered.
MAX_LISTED_RUNS = 50


# --- which agents there are ------------------------------------------------------------
@dataclass(frozen=True)
class AgentChoice:
    """An agent one can put into a comparison.

    :param key: unique id, ``pretrained/<id>`` or ``run/<run id>``.
    :param label: the name people see (the tutorial's name for shipped agents), unique in
        its catalog: a comparison's results are keyed by it.
    :param run_dir: the run directory to load it from (:func:`envlib.agent.load_agent`).
    :param config: its run config (environment and training).
    :param version: ``model.zip``'s modification time in ns: a retrained agent is a new one.
    """

    key: str
    label: str
    run_dir: Path
    config: RunConfig
    version: int

    @property
    def request(self) -> AgentRequest:
        """This agent as plain data, see :data:`AgentRequest`."""
        return self.label, str(self.run_dir), self.version


@dataclass
class AgentCatalog:
    """The agents on offer, and the folders that could not be read (with why)."""

    choices: list[AgentChoice] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def by_key(self) -> dict[str, AgentChoice]:
        return {choice.key: choice for choice in self.choices}

    def tutorial_defaults(self) -> list[AgentChoice]:
        """The tutorial's five shipped agents that are on offer, in the tutorial's order."""
        by_key = self.by_key()
        return [by_key[key] for key in (f"pretrained/{i}" for i in TUTORIAL_AGENT_IDS) if key in by_key]


def _choice(key: str, label: str, run_dir: Path) -> AgentChoice:
    """Read a run folder's config and check its agent files exist; :class:`RunError` if not."""
    config = read_config(run_dir)
    for name in (MODEL_FILE, NORMALIZER_FILE):
        if not (run_dir / name).is_file():
            raise RunError(run_dir / name, "missing")
    return AgentChoice(key, label, run_dir, config, (run_dir / MODEL_FILE).stat().st_mtime_ns)


def _unique_label(name: str, run_id: str, suffix: str, taken: set[str]) -> str:
    """``name`` + ``suffix``, or with the run id (unique in its folder) when that is taken.

    The whole label is checked: a comparison keys its results by label, so two runs shown
    alike would merge into one.
    """
    label = f"{name}{suffix}"
    if label in taken:
        label = f"{name} ({run_id}){suffix}"
    n = 2
    while label in taken:  # only if a shipped agent or another run is named like this one
        label, n = f"{name} ({run_id}, {n}){suffix}", n + 1
    return label


def available_agents(runs_dir: str | Path | None = None) -> AgentCatalog:
    """The shipped agents that have a model, then the newest finished training runs.

    Runs come from :func:`envlib.jobs.scan_runs` (finished, or stopped with a saved model);
    the damaged run folders it finds become :attr:`AgentCatalog.problems` (at most
    :data:`MAX_LISTED_RUNS` lines, then a count). Only small files are read; nothing is
    loaded or unpickled.

    :param runs_dir: the training page's runs folder; ``ARES_RUNS_DIR`` or ``runs/`` by default.
    """
    catalog = AgentCatalog()
    for agent in PRETRAINED_AGENTS:
        if not (agent.path / MODEL_FILE).is_file():
            continue  # not trained (yet): nothing to offer
        try:
            catalog.choices.append(_choice(f"pretrained/{agent.id}", agent.display_name, agent.path))
        except RunError as exc:
            catalog.problems.append(f"shipped agent {agent.display_name}: {exc.path.name} {exc.problem}")
    labels = {choice.label for choice in catalog.choices}
    scan = scan_runs(runs_dir)
    catalog.problems += [str(problem) for problem in scan.problems[:MAX_LISTED_RUNS]]
    if len(scan.problems) > MAX_LISTED_RUNS:
        catalog.problems.append(f"{len(scan.problems) - MAX_LISTED_RUNS} more damaged run folders")
    for run in scan.runs[:MAX_LISTED_RUNS]:
        suffix = " (stopped early)" if run.status == "stopped" else ""
        label = _unique_label(run.display_name, run.run_id, suffix, labels)
        try:
            catalog.choices.append(_choice(f"run/{run.run_id}", label, run.run_dir))
        except RunError as exc:
            catalog.problems.append(f"run {run.run_id}: {exc.path.name} {exc.problem}")
        labels.add(label)
    return catalog


def scenario_starts(seeds: Sequence[int], scenario: ScenarioName = "tutorial") -> list[EpisodeStart]:
    """The initial state of each seed's episode, shared by every agent of a comparison.

    :param seeds: one seed per episode.
    :param scenario: a key of :data:`SCENARIOS`.
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
    return episode_starts(SCENARIOS[scenario], seeds)


def actuated_magnets(config: EnvConfig) -> tuple[int, ...]:
    """Indices into ``[Q1, Q2, CV, Q3, CH]`` of the magnets an agent of ``config`` moves."""
    return QUADRUPOLE_INDICES if config.actuators == "quadrupoles" else tuple(range(len(MAGNET_LABELS)))


def find_flags(traces: pd.DataFrame, actuated: Sequence[int] = QUADRUPOLE_INDICES) -> pd.DataFrame:
    """The pathologies of every episode in ``traces``, each at the first step it happened.

    :param traces: one agent's traces as :func:`envlib.evaluation.evaluate` returns them
        (columns episode, step, mu_x, sigma_x, mu_y, sigma_y, Q1 ... CH, on_screen,
        aborted; step 0 is the reset state).
    :param actuated: indices of the magnets the agent moves (others cannot be its doing).
    :return: one row per (episode, flag) with columns :data:`FLAG_COLUMNS`, sorted by
        episode and step; ``detail`` says what happened in words.
    """
    # Plain numpy over the sorted rows: pandas' groupby per flag kind cost ~30 ms per agent,
    # a fifth of a five-agent episode on the Compare page.
    t = traces.sort_values(["episode", "step"], kind="stable")
    episode, step = t["episode"].to_numpy(), t["step"].to_numpy()
    sigma_x, sigma_y = t["sigma_x"].to_numpy(np.float64), t["sigma_y"].to_numpy(np.float64)
    mu_x, mu_y = t["mu_x"].to_numpy(np.float64), t["mu_y"].to_numpy(np.float64)
    acted = step > 0
    index = np.arange(len(t))
    starts = np.r_[True, episode[1:] != episode[:-1]] if len(t) else np.zeros(0, bool)
    rows: list[tuple[int, str, int, str]] = []

    def first(mask: np.ndarray) -> np.ndarray:
        """Index of the first row of each episode where ``mask`` holds, by episode."""
        hits = np.flatnonzero(mask)
        return hits[np.unique(episode[hits], return_index=True)[1]]

    for i in first(acted & ~t["on_screen"].to_numpy(bool)):
        rows.append((episode[i], "left_screen", step[i], f"centre at ({mu_x[i] * MM:+.1f}, {mu_y[i] * MM:+.1f}) mm"))
    for i in first(t["aborted"].to_numpy(bool)):
        rows.append((episode[i], "aborted", step[i], f"terminated at step {step[i]}"))

    size = sigma_x + sigma_y
    size_0 = size[np.maximum.accumulate(np.where(starts, index, 0))] if len(t) else size
    for i in first(acted & (size >= BLOW_UP_FACTOR * size_0)):
        now, start = size[i], size_0[i]
        rows.append(
            (episode[i], "blown_up", step[i], f"σx+σy {start * MM:.2f} → {now * MM:.2f} mm (×{now / start:.0f})")
        )

    pinned_at: dict[int, tuple[int, list[str]]] = {}
    for magnet in actuated:
        label = MAGNET_LABELS[magnet]
        value = t[label].to_numpy(np.float64)
        at_limit = acted & (np.abs(value) >= (1 - PIN_TOLERANCE) * MAGNET_LIMITS[magnet])
        # Length of the current run of steps at the limit: back to the last row not at the
        # limit, or to the row before the episode's first.
        last_reset = np.maximum.accumulate(np.maximum(np.where(at_limit, -1, index), np.where(starts, index - 1, -1)))
        run_length = np.where(at_limit, index - last_reset, 0)
        for i in first(run_length >= PIN_STEPS):
            start = step[i] - PIN_STEPS + 1
            text = f"{label} at {'+' if value[i] > 0 else '−'}limit"
            earliest, texts = pinned_at.get(episode[i], (start, []))
            pinned_at[episode[i]] = (min(earliest, start), [*texts, text])
    for ep, (first_step, texts) in pinned_at.items():
        rows.append((ep, "pinned", first_step, ", ".join(texts)))

    flags = pd.DataFrame(rows, columns=list(FLAG_COLUMNS))
    flags = flags.astype({"episode": np.int64, "step": np.int64})
    order = {kind: i for i, kind in enumerate(FLAG_LABELS)}
    flags["_order"] = flags["flag"].map(order)
    return flags.sort_values(["episode", "step", "_order"], kind="stable").drop(columns="_order").reset_index(drop=True)


@dataclass
class Comparison:
    """Several agents run on the same seeds.

    :param agents: the agents' names, in the order they were given.
    :param seeds: one seed per episode.
    :param scenario: the scenario the initial states were drawn from.
    :param traces: every agent's traces (columns of :data:`envlib.evaluation.TRACE_COLUMNS`
        after a leading ``agent`` column); step 0 is the shared reset state.
    :param flags: columns ``agent`` and :data:`FLAG_COLUMNS`.
    :param per_episode: one row per (agent, episode): the evaluation's per-episode columns
        (final_mae_focus, final_mae_all in m, length, return, left_screen, ...) plus one
        bool column per flag kind.
    """

    agents: list[str]
    seeds: list[int]
    scenario: str
    traces: pd.DataFrame
    flags: pd.DataFrame
    per_episode: pd.DataFrame

    def summary(self, error: Literal["mae_focus", "mae_all"] = "mae_focus") -> pd.DataFrame:
        """One row per agent: the tutorial's metrics and how often each pathology happened.

        :param error: the beam error the MAE columns are of.
        :return: index = agent; columns mean and median final MAE (m), fraction of episodes
            per flag, mean episode length (steps) and mean return.
        """
        per = self.per_episode
        grouped = per.groupby("agent", sort=False)
        table = pd.DataFrame(
            {
                "mean final MAE": grouped[f"final_{error}"].mean(),
                "median final MAE": grouped[f"final_{error}"].median(),
                **{f"fraction {FLAG_LABELS[k]}": grouped[k].mean() for k in FLAG_LABELS},
                "mean episode length": grouped["length"].mean(),
                "mean return": grouped["return"].mean(),
            }
        )
        return table.reindex(self.agents)


def compare(
    agents: Mapping[str, Agent],
    seeds: Sequence[int],
    *,
    scenario: ScenarioName = "tutorial",
    simulator: BeamlineSimulator | None = None,
) -> Comparison:
    """Run every agent on the same seeds from the same initial states, and flag pathologies.

    Each agent runs all episodes in one batch in its own environment (its reward, action
    mode, abort and time limit), deterministically.

    :param agents: name -> agent (see :func:`envlib.agent.load_agent`); names label the rows.
    :param seeds: one seed per episode.
    :param scenario: the beams' scenario, a key of :data:`SCENARIOS`.
    :param simulator: Cheetah beamline shared by all runs; a new one by default.
    """
    if not agents:
        raise ValueError("choose at least one agent to compare")
    seeds = [int(s) for s in seeds]
    starts = scenario_starts(seeds, scenario)
    simulator = simulator if simulator is not None else BeamlineSimulator()
    traces, flags, per_episode = [], [], []
    for name, agent in agents.items():
        result = evaluate(agent, seeds, starts=starts, simulator=simulator)
        found = find_flags(result.traces, actuated_magnets(agent.config.env))
        per = result.per_episode.copy()
        for kind in FLAG_LABELS:
            per[kind] = per["episode"].isin(found.loc[found["flag"] == kind, "episode"])
        traces.append(result.traces.assign(agent=name))
        flags.append(found.assign(agent=name))
        per_episode.append(per.assign(agent=name))

    def frame(parts: list[pd.DataFrame]) -> pd.DataFrame:
        out = pd.concat(parts, ignore_index=True)
        return out[["agent", *[c for c in out.columns if c != "agent"]]]

    return Comparison(
        agents=list(agents),
        seeds=seeds,
        scenario=scenario,
        traces=frame(traces),
        flags=frame(flags),
        per_episode=frame(per_episode),
    )


def traces_csv(traces: pd.DataFrame) -> bytes:
    """Traces as UTF-8 CSV, ready to download.

    Text cells that a spreadsheet would run as a formula (starting with ``= + - @``) get
    a leading apostrophe: agent names can come from users.
    """
    out = traces.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].astype(str).map(lambda s: "'" + s if s[:1] in ("=", "+", "-", "@") else s)
    return out.to_csv(index=False, float_format="%.7g").encode("utf-8")
