"""Pieces of the Compare page: pick agents, run them on the same beam, flag what goes wrong.

Per-user choices live in ``st.session_state`` under ``cmp.*`` keys. Results are cached for
all sessions per (agents, seeds, scenario) with ``st.cache_data`` on plain arguments; the
agents run in the server's worker processes (:func:`ui.common.agent_workers`), and the
episode's (read-only) figures are kept once per server (``st.cache_resource``). The episode's
screens are one Plotly figure with a frame per step: its slider and Play button run in
the browser, so playing an episode costs the server nothing and the screens never flash.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import html
import secrets
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import yaml
from plotly.subplots import make_subplots

from envlib.beamline import BEAM_PARAMETER_NAMES, CORRECTOR_INDICES, MAGNET_LABELS, MAGNET_LIMITS
from envlib.compare import (
    BLOW_UP_FACTOR,
    FLAG_LABELS,
    PIN_STEPS,
    PIN_TOLERANCE,
    SCENARIOS,
    AgentCatalog,
    AgentChoice,
    Comparison,
    actuated_magnets,
    available_agents,
    traces_csv,
)
from envlib.config import EnvConfig
from envlib.evaluation import EVALUATION_SEED_BASE, evaluation_seeds
from envlib.figures import screen_spec
from envlib.jobs import runs_dir_from_environment
from envlib.pretrained import PRETRAINED
from envlib.rewards import objective_latex, reward_latex
from envlib.runs import RunError
from envlib.workers import WorkerLost
from ui.common import agent_workers, heavy_work_gate
from ui.widgets import (
    MODEBAR_PX,
    SERIES_COLORS,
    balanced_columns,
    cell_width,
    column_grid,
    distinct_colors,
    markdown_text,
    plotly_chart,
    plotly_text,
    scrolling_container,
    series_line,
    series_marker,
    stable_slot,
)

K_AGENTS = "cmp.agents"
K_SEED = "cmp.seed"
K_SCENARIO = "cmp.scenario"
K_RAN = "cmp.ran"
K_SHOWN = "cmp.shown"
K_ERROR = "cmp.error"
K_LOG = "cmp.log"
K_EPISODES = "cmp.episodes"
K_EVALUATION = "cmp.evaluation"

#: At most this many agents side by side (bounds the work of one click).
MAX_AGENTS = 6
#: Size of the reward formulas in the agent panels, em (KaTeX's own is 1.21 em).
PANEL_FORMULA_EM = 1.1
#: Narrowest agent panel, rem: the widest shipped agent's reward formula (Gary Buchwald's
#: objective_improvement with its time penalty, 220 px at PANEL_FORMULA_EM; 242 px at
#: KaTeX's size did not fit the 242 px inside a panel at 1024 px and broke before its "1")
#: fits on one line inside the panel's border and padding (2 x 17 px), with 10 px to spare.
#: Two panels still fit a row of a projector's 1024 px (564 px), five one of 1920 px (1460 px).
PANEL_MIN_REM = 16.5
#: Seconds between a session's checks for newly finished runs (the run list is cached 10 s).
NEW_AGENTS_EVERY_S = 15
DEFAULT_EPISODES = 50
MAX_EPISODES = 200
SEED_MAX = 2**31 - 1
#: The seed the page opens with (any seed works; this one is shown and editable).
DEFAULT_SEED = 6
#: Milliseconds each step stays on the screens while Play runs.
PLAY_FRAME_MS = 600
#: Camera binning of the screens' images in the animation: 32 gives 76 x 63 cells of
#: 0.1 mm (the ellipses show sizes exactly), about 6 kB per screen and step.
SCREENS_BINNING = 32
#: At most this many screens in a row; more agents wrap into rows (balanced: 4 as 2 + 2).
#: Three keep SCREEN_MIN_PX each in a projector's ~560 px main area (1024 px with the
#: sidebar open), where six in one row hid the last two and cut the sixth name at 1280 px.
SCREENS_MAX_COLUMNS = 3
#: Narrowest width of one agent's screen with its name, readout and flags, px. Below it
#: (a window narrower than a projector) the figure keeps this width and scrolls sideways.
SCREEN_MIN_PX = 150
#: Height of a row's screen area by screens per row, px: a screen is 0.62 times as tall as
#: it is wide, so three in ~560 px need ~110 px, and one or two fill the whole area.
SCREEN_AREA_PX = {1: 215, 2: 190, 3: 150}
#: Rows of the screens figure, px: an agent's name (per line), the readout under its
#: screen (three lines), its flag list (per line, plus the box's padding), the gap to the
#: next row, and the slider with Play under all rows.
SCREENS_TITLE_LINE_PX, SCREENS_READOUT_PX = 22, 70
SCREENS_FLAG_LINE_PX, SCREENS_FLAG_PAD_PX = 18, 14
SCREENS_ROW_GAP_PX, SCREENS_CONTROLS_PX = 18, 80
SCREENS_MARGIN = dict(l=10, r=10, t=MODEBAR_PX, b=10)
#: Vertical margins (top + bottom) of the screens figure, px.
SCREENS_MARGIN_PX = SCREENS_MARGIN["t"] + SCREENS_MARGIN["b"]
SCREENS_GAP = 0.02
#: Characters per line of a flag list (14 px text) and of a name (16 px bold) across the
#: figure's width at a projector's ~560 px, shared by the screens of a row: three get 21
#: and 18 characters each, which fit SCREEN_MIN_PX. A name wraps onto two lines at most.
SCREENS_FLAG_CHARS, SCREENS_TITLE_CHARS, SCREENS_TITLE_LINES = 63, 54, 2
SCREENS_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}, "scrollZoom": False}
#: Flag texts on their tinted boxes: ≥ 4.5:1 (the green was #1e8449, 4.3:1).
FLAG_RED, NO_FLAG_GREEN = "#c0392b", "#18703d"
#: An agent's name over its screen: dark text (its colour as text, e.g. orange, was 2.4:1 on
#: white) after a square in its colour. Streamlit's text colour.
NAME_TEXT = "#31333f"
#: What goes before the first line of a name over a screen (its colour in a span).
NAME_MARK = "■ "
UM = 1e6
#: One colour per agent, in its panel's square and in every figure (the shared palette; each
#: colour comes with its own dash and marker symbol). See :func:`agent_colors`.
AGENT_COLORS = SERIES_COLORS
FLAG_SYMBOLS = {"left_screen": "x", "aborted": "square", "blown_up": "star", "pinned": "diamond"}
SCENARIO_LABELS = {
    "tutorial": "tutorial: random incoming beam",
    "misaligned": "random incoming beam + misalignments",
}
ERROR_LABELS = {
    "mae_focus": "mae_focus = (|σx − σx'| + |σy − σy'|) / 2",
    "mae_all": "mae_all = mean error of μx, σx, μy, σy",
}
#: A flag's name in a table's header, where the evaluation's nine columns share 1024 px.
FLAG_SHORT = {"left_screen": "left the screen", "aborted": "ended early", "blown_up": "blown up", "pinned": "pinned"}
#: The return's column: each agent's return is in its own reward (see :func:`returns_note`).
RETURN_COLUMN = "return (own reward)"
PLOT_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}


# --- loading and running (cached) ------------------------------------------------------
@st.cache_data(max_entries=32, show_spinner=False)
def run_comparison(
    agents: tuple[tuple[str, str, int], ...], seeds: tuple[int, ...], scenario: str, *, keep_traces: bool = True
) -> Comparison:
    """:func:`envlib.compare.compare` in the server's worker processes, cached for every session.

    :param agents: ``(label, run_dir, version)`` per agent (plain data: the cache key).
    :param seeds: one seed per episode.
    :param scenario: a key of :data:`envlib.compare.SCENARIOS`.
    :param keep_traces: False drops the step-by-step traces (an evaluation's table and plot
        need only the per-episode results; 200 seeds of traces weigh ~1 MB per agent).
    """
    return agent_workers().compare(agents, seeds, scenario, keep_traces=keep_traces)


def agent_request(choices: Sequence[AgentChoice]) -> tuple[tuple[str, str, int], ...]:
    """The plain-data key of the chosen agents for :func:`run_comparison`.

    :raises ValueError: two agents share a label (results are keyed by it: one would vanish).
    """
    labels = [c.label for c in choices]
    if len(set(labels)) < len(labels):
        raise ValueError(f"two agents are both called {next(x for x in labels if labels.count(x) > 1)!r}")
    return tuple(c.request for c in choices)


def run_or_explain(
    agents: tuple[tuple[str, str, int], ...], seeds: tuple[int, ...], scenario: str, **kw: bool
) -> Comparison:
    """:func:`run_comparison`, or a clear message and the end of this run if an agent's files
    cannot be loaded (e.g. a run folder damaged since it was listed) or the worker that runs
    them died."""
    try:
        return run_comparison(agents, seeds, scenario, **kw)
    except RunError as exc:
        folder = Path(exc.path).parent
        name = next((label for label, run_dir, _ in agents if Path(run_dir) == folder), folder.name)
        st.error(
            f"Cannot load **{markdown_text(name)}**: `{exc.path.name}` {exc.problem}. "
            "Remove it from the choice and run again."
        )
        st.stop()
    except WorkerLost as exc:
        st.error(f"The agents did not finish: {exc}. New workers have started; run again.")
        st.stop()


@contextlib.contextmanager
def run_status(agents: tuple[tuple[str, str, int], ...], seed: int, scenario: str) -> Iterator[None]:
    """Says at once what runs, while the block runs a request this session has not shown yet.

    Not ``st.spinner``: it waits 0.5 s, and until then (longer on a busy server) its slot is
    a blank grey bar. Not on a rerun of the episode on show (a new view, the log toggle): its
    result is cached, and the line would flash and push the page down.
    """
    shown = (agents, seed, scenario)
    slot = st.empty()  # on every run: the elements after it keep their places
    if st.session_state.get(K_SHOWN) == shown:
        yield
        return
    n = len(agents)
    slot.markdown(
        f":material/hourglass_top: Running {n} agent{'s' * (n != 1)} on seed {seed} … (runs of all sessions take turns)"
    )
    try:
        yield
    finally:
        slot.empty()
    st.session_state[K_SHOWN] = shown


# --- choosing -------------------------------------------------------------------------
def agent_catalog() -> AgentCatalog:
    """:func:`envlib.compare.available_agents` of the training page's runs folder, re-read
    at most every 10 s (runs finish meanwhile)."""
    return _catalog(str(runs_dir_from_environment()))


@st.cache_data(ttl=10, show_spinner=False)
def _catalog(runs_dir: str) -> AgentCatalog:
    return available_agents(runs_dir)


@st.cache_data(ttl=10, show_spinner=False)
def _offered_keys(runs_dir: str) -> tuple[str, ...]:
    """The keys of :func:`_catalog`: a few bytes for every session's check, not the catalog."""
    return tuple(choice.key for choice in _catalog(runs_dir).choices)


@st.fragment(run_every=NEW_AGENTS_EVERY_S)
def new_agents_notice(offered: tuple[str, ...]) -> None:
    """A note with a button when runs finished since the page drew its choice of agents.

    Only this fragment reruns on its timer, and on a cached tuple of keys: with 100 students
    on the page, ~7 tiny checks a second. The whole page reruns only on the click (offering
    the runs by itself would redraw the page under a student's hands).

    :param offered: the keys of the agents on offer when the page was drawn.
    """
    runs_dir = str(runs_dir_from_environment())
    new = [key for key in _offered_keys(runs_dir) if key not in offered]
    if not new:
        return
    by_key = _catalog(runs_dir).by_key()
    names = ", ".join(markdown_text(by_key[key].label) for key in new if key in by_key)
    row = st.container(horizontal=True, vertical_alignment="center")
    row.info(f"Finished training since you opened this page: {names}", icon=":material/fiber_new:")
    if row.button("Refresh the list", icon=":material/refresh:", key="cmp.new"):
        st.rerun(scope="app")  # the picker reads the catalog again


def agent_picker(catalog: AgentCatalog) -> list[AgentChoice]:
    """Multiselect of the agents on offer (default: the tutorial's five); the chosen ones."""
    by_key = catalog.by_key()
    for problem in catalog.problems:
        st.warning(f"Left out: {problem}", icon=":material/warning:")
    if not by_key:
        st.error(
            "No agents to compare: the shipped agents are missing from `pretrained/` and no training "
            "run has finished yet. Run `make pretrained`, or train one on the Train page."
        )
        st.stop()
    if K_AGENTS not in st.session_state:
        st.session_state[K_AGENTS] = [c.key for c in catalog.tutorial_defaults()][:MAX_AGENTS] or list(by_key)[:1]
    # A run deleted since the last rerun disappears from the choice instead of raising.
    st.session_state[K_AGENTS] = [k for k in st.session_state[K_AGENTS] if k in by_key]
    # Every value widget of this page has persist_state="session": Streamlit drops a widget's
    # value when another page is shown, and an instructor comes back to the agents they chose.
    keys = st.multiselect(
        "Agents",
        list(by_key),
        key=K_AGENTS,
        format_func=lambda k: by_key[k].label + ("" if k.startswith("pretrained/") else "  · training run"),
        max_selections=MAX_AGENTS,
        help="The shipped agents, then every finished run of the Train page (newest first).",
        persist_state="session",
    )
    return [by_key[k] for k in keys]


def _new_seed() -> None:
    st.session_state[K_SEED] = secrets.randbelow(10_000)


def _run() -> None:
    st.session_state[K_RAN] = True


def episode_controls() -> tuple[int, str]:
    """Seed (shown, editable, "New seed"), beams scenario and the Run button.

    :return: ``(seed, scenario)``.
    """
    st.session_state.setdefault(K_SEED, DEFAULT_SEED)
    row = st.container(horizontal=True, vertical_alignment="bottom")
    seed = row.number_input(
        "Seed", min_value=0, max_value=SEED_MAX, step=1, key=K_SEED, help="Same seed, same beam.", width=150,
        persist_state="session",
    )
    row.button("New seed", on_click=_new_seed, icon=":material/casino:")
    scenario = row.selectbox(
        "Beams", list(SCENARIOS), key=K_SCENARIO, format_func=SCENARIO_LABELS.get,
        help="What the seed draws: every agent starts from the same incoming beam, misalignments, "
        "target (zero: smallest, centred beam) and magnets (zero).", persist_state="session",
    )  # fmt: skip
    row.button("Run side by side", type="primary", on_click=_run, icon=":material/play_arrow:")
    return int(seed), scenario


# --- describing an agent ------------------------------------------------------------------
def setup_markdown(config: EnvConfig, *, training_run: bool = False) -> str:
    """The agent's reward and episode settings as three short Markdown lines."""
    reward = "custom" if config.reward_mode == "custom" else f"`{config.reward_mode}`"
    magnets = "Q1 Q2 Q3" if config.actuators == "quadrupoles" else "all 5 magnets"
    abort = "**abort** off screen" if config.abort_if_off_screen else "no abort"
    time = f"**time** {config.time_reward:+g}/step" if config.time_reward else "no time penalty"
    source = "  \n*training run*" if training_run else ""
    return f"**reward** {reward}  \n**actions** `{config.action_mode}` on {magnets}  \n{abort} · {time}{source}"


def reward_formula(config: EnvConfig) -> str:
    """LaTeX of the agent's reward (the tutorial's notation for its three modes)."""
    if config.reward_mode == "custom":
        return config.reward_spec.latex()
    return reward_latex(config.reward_mode, config.time_reward)


def common_objective(choices: Sequence[AgentChoice]) -> str | None:
    """LaTeX of obj if every chosen agent with an objective uses the same terms, else None."""
    terms = {c.config.env.objective_terms for c in choices if c.config.env.reward_mode != "custom"}
    return objective_latex(next(iter(terms))) if len(terms) == 1 else None


def _color(i: int) -> str:
    return AGENT_COLORS[i % len(AGENT_COLORS)]


def _preferred_color(key: str) -> int:
    """The colour an agent gets unless another one of the comparison has it: a shipped
    agent's place in the shipped list, a run's from its id (the same on every visit)."""
    ids = list(PRETRAINED)
    name = key.removeprefix("pretrained/")
    return ids.index(name) if key.startswith("pretrained/") and name in ids else stable_slot(key)


def agent_colors(choices: Sequence[AgentChoice]) -> dict[str, str]:
    """label -> colour (CSS hex) of every chosen agent.

    By the agent, not its place in the choice: removing one agent leaves the others'
    colours as they were (by place, Bertha took David's orange while an older box plot
    still showed David in it). Shipped agents choose first, then runs by id; one whose
    colour is taken gets the next free one, so up to len(AGENT_COLORS) agents all differ.
    """
    slots = {c.key: _preferred_color(c.key) % len(AGENT_COLORS) for c in choices}
    order = sorted(choices, key=lambda c: (not c.key.startswith("pretrained/"), slots[c.key], c.key))
    return distinct_colors([(c.label, slots[c.key]) for c in order], AGENT_COLORS)


def plot_colors(choices: Sequence[AgentChoice]) -> tuple[str, ...]:
    """The colour of each chosen agent, in the choice's order (plain data: a cache key)."""
    colors = agent_colors(choices)
    return tuple(colors[c.label] for c in choices)


def _by_label(agents: Sequence[tuple[str, str, int]], colors: Sequence[str]) -> dict[str, str]:
    """label -> Plotly colour, from an agent request and :func:`plot_colors`."""
    return {label: color for (label, _, _), color in zip(agents, colors, strict=True)}


def agent_title(choice: AgentChoice, color: str) -> None:
    """The agent's name after a square in its colour (the colour of its curves).

    :param color: CSS hex, see :data:`AGENT_COLORS` (exactly: Streamlit's ``:blue[]`` is
        a darker blue than the curves').
    """
    st.markdown(f'#### :color[■]{{foreground="{color}"}} {markdown_text(choice.label)}')


def lesson_text(description: str | None) -> tuple[str, str | None] | None:
    """An agent's description for its panel: ``(caption, tooltip)``, or None without one.

    A shipped agent's description ends in "Lesson: ..." (why it does what it does): the
    caption is that sentence and the tooltip the whole description; a panel of five lines
    each would push the reward formulas out of view on a projector. Any other description
    is the caption itself. Both as literal Markdown (descriptions of runs come from users).
    """
    if not description or not description.strip():
        return None
    text = " ".join(description.split())
    _, found, lesson = text.partition("Lesson:")
    if found and lesson.strip():
        return f"**Lesson:** {markdown_text(lesson.strip())}", markdown_text(text)
    return markdown_text(text), None


def agent_setup(choice: AgentChoice, *, show_objective: bool = True) -> None:
    """The agent's settings and reward formula, at their full height.

    No fixed-height box: with five agents on a 1366-pixel screen a box that aligned the
    panels scrolled, and hid the reward formula, which is the lesson.

    :param show_objective: also the formula of obj (off when the page shows one for all).
    """
    st.markdown(setup_markdown(choice.config.env, training_run=not choice.key.startswith("pretrained/")))
    # Inline math: it wraps at = and +/- in a narrow panel, where a display formula is cut off.
    st.markdown(f"${reward_formula(choice.config.env)}$")
    if show_objective and choice.config.env.reward_mode != "custom":
        st.markdown(f"${objective_latex(choice.config.env.objective_terms)}$")


def training_config(choice: AgentChoice) -> None:
    """The agent's whole config, folded: the panel names only its reward and episode, and the
    shipped agents trained otherwise than Train's preset (far longer, more envs, stacked
    frames). Without the description: it holds the lesson, shown only after a run."""
    t = choice.config.train
    data = {"env": choice.config.env.to_dict(), "train": t.to_dict()}
    with st.expander(f"Training config ({t.total_timesteps:,} steps, {t.n_envs} envs)"):
        st.code(yaml.safe_dump(data, sort_keys=False), language="yaml")  # a code block: shown literally


def agent_panels(choices: Sequence[AgentChoice], comparison: Comparison | None = None) -> None:
    """One panel per agent: who it is, what it is rewarded for and, after a run, every flag
    of the episode with its step (red), or that there is none (green), and a shipped
    agent's lesson (why it did what it did)."""
    shared = common_objective(choices) is not None
    colors = agent_colors(choices)
    st.html(f"<style>.st-key-cmp-panels .katex {{font-size: {PANEL_FORMULA_EM}em;}}</style>")
    grid = column_grid("cmp-panels", PANEL_MIN_REM, items=len(choices))
    for i, choice in enumerate(choices):
        with grid.container(border=True, key=f"cmp-panel-{i}", width=cell_width(PANEL_MIN_REM)):
            agent_title(choice, colors[choice.label])
            lesson = lesson_text(choice.config.description)
            # A "Lesson:" answers the page's question "what do you expect?": only after a run.
            is_lesson = lesson is not None and lesson[1] is not None
            if lesson is not None and not is_lesson:
                st.caption(lesson[0])
            if comparison is not None:
                flags = comparison.flags[comparison.flags["agent"] == choice.label]
                flags = flags[flags["episode"] == 0]
                if len(flags):
                    lines = [f"**step {f.step}** · {FLAG_LABELS[f.flag]}" for f in flags.itertuples()]
                    st.error("  \n".join(lines), icon=":material/warning:")
                else:
                    st.success("no flag in this episode", icon=":material/check_circle:")
            agent_setup(choice, show_objective=not shared)
            training_config(choice)
            if is_lesson and comparison is not None:
                st.caption(lesson[0], help=lesson[1])


# --- the episode ----------------------------------------------------------------------------
def view_options() -> tuple[str, bool]:
    """The common beam error to plot and whether on a log scale: ``(error, log_y)``."""
    st.session_state.setdefault(K_ERROR, "mae_focus")
    st.session_state.setdefault(K_LOG, True)
    row = st.container(horizontal=True, vertical_alignment="center")
    error = row.radio(
        "Beam error", list(ERROR_LABELS), key=K_ERROR, horizontal=True, format_func=ERROR_LABELS.get,
        help="The same yardstick for every agent, whatever its reward: the tutorial's mean absolute error.",
        persist_state="session",
    )  # fmt: skip
    log_y = row.toggle("log scale", key=K_LOG, persist_state="session")
    return error, log_y


def episode_view(choices: Sequence[AgentChoice], seed: int, scenario: str) -> None:
    """Every agent's screen in one figure, moved by one step slider and a Play button.

    The animation runs in the browser (Plotly frames): Play and the slider cost the
    server nothing and the screens never flash while they change (a Streamlit chart whose
    figure changes is mounted anew on every step).
    """
    error = st.session_state.get(K_ERROR, "mae_focus")
    figure = screens_figure_cached(agent_request(choices), seed, scenario, error, plot_colors(choices))
    columns = balanced_columns(len(choices), SCREENS_MAX_COLUMNS)
    # Until the browser has loaded Plotly (~2 s the first time) the chart is a blank grey
    # bar (Streamlit's skeleton): say in it what is coming.
    n = len(choices)
    st.html(
        f'<style>.st-key-cmp-screens [data-testid="stSkeleton"]::after {{display: block; padding: 0.5rem 1rem; '
        f'content: "Drawing the screens of {n} agent{"s" * (n != 1)} on seed {int(seed)} …";}}</style>'
    )
    with scrolling_container("cmp-screens", SCREEN_MIN_PX * columns):
        plotly_chart(figure, key="cmp.screens", config=SCREENS_CONFIG)


def episode_curves(choices: Sequence[AgentChoice], seed: int, scenario: str, error: str, log_y: bool) -> None:
    """Per-step reward and beam error of every agent, then its magnets."""
    curves, magnets = curves_cached(
        agent_request(choices), seed, scenario, error, log_y, moved_magnets(choices), plot_colors(choices)
    )
    plotly_chart(curves, config=PLOT_CONFIG, key="cmp.curves")
    plotly_chart(magnets, config=PLOT_CONFIG, key="cmp.magnets")


@st.cache_resource(max_entries=32, show_spinner=False)
def curves_cached(
    agents: tuple[tuple[str, str, int], ...],
    seed: int,
    scenario: str,
    error: str,
    log_y: bool,
    moved: tuple[int, ...],
    colors: tuple[str, ...],
) -> tuple[go.Figure, go.Figure]:
    """:func:`curves_figure` and :func:`magnets_figure` of one seed's comparison, built once
    (Plotly's validation makes them ~0.4 s; every rerun of the page draws them). Shared,
    read-only figures, like :func:`screens_figure_cached`."""
    comparison = run_comparison(agents, (seed,), scenario)
    by_label = _by_label(agents, colors)
    return (
        curves_figure(comparison, error=error, log_y=log_y, colors=by_label),
        magnets_figure(comparison, moved, colors=by_label),
    )


def moved_magnets(choices: Sequence[AgentChoice]) -> tuple[int, ...]:
    """Indices into ``[Q1, Q2, CV, Q3, CH]`` of the magnets any of the agents moves."""
    return tuple(sorted({i for c in choices for i in actuated_magnets(c.config.env)}))


def screen_legend() -> None:
    """What the small screens show, said once under the panels."""
    st.caption(
        "Screens: x from −4.1 to +4.1 mm, y from −2.5 to +2.5 mm. White ellipse: the beam (1σ); dashed blue: "
        "the target (a point at the centre for the tutorial's zero target)."
    )


def flags_help() -> None:
    """How the flags are found, in an expander (they are computed, never looked up per agent)."""
    with st.expander("How are the flags found?"):
        st.markdown(
            "From each agent's trace, at the first step where:\n"
            "- **beam left the screen**: the beam centre is outside the screen;\n"
            "- **episode ended early (abort)**: the environment ended the episode because the beam left "
            "the screen (agents trained with `abort_if_off_screen`);\n"
            f"- **beam blown up**: σx + σy is at least {BLOW_UP_FACTOR:g} × its value at the start;\n"
            f"- **magnet pinned at its limit**: a magnet the agent moves stays within {PIN_TOLERANCE:.0%} of "
            f"its limit for {PIN_STEPS} steps in a row (the flag shows the first of them)."
        )


def _axis(name: str, k: int) -> str:
    """Plotly's name of axis ``name`` (x or y) of subplot k (1-based): x, x2, x3, ..."""
    return name if k == 1 else f"{name}{k}"


def _on_axes(item: dict, k: int) -> dict:
    """A trace, shape or annotation of a single-screen figure, moved onto subplot k."""
    item = dict(item)
    for key, axis in (("xaxis", "x"), ("yaxis", "y"), ("xref", "x"), ("yref", "y"), ("axref", "x"), ("ayref", "y")):
        if item.get(key) == axis:
            item[key] = _axis(axis, k)
    return item


def _typed(array: np.ndarray) -> dict:
    """A numpy array as a Plotly typed array (base64 with dtype and shape): compact JSON.

    Plotly encodes arrays itself only in validated figures; the screens figure skips
    validation (see :func:`screens_figure`).
    """
    array = np.ascontiguousarray(array)
    return {
        "dtype": array.dtype.str.lstrip("<|"),
        "bdata": base64.b64encode(array.tobytes()).decode("ascii"),
        "shape": ", ".join(map(str, array.shape)),
    }


def _screen_parts(row: dict, k: int) -> tuple[list[dict], list[dict]]:
    """envlib's screen of one trace row (column -> value), as traces and annotations of subplot k.

    Always four traces (image, target, the beam's dark edge and its line) and two annotations (arrow and label of a
    beam off the screen, hidden while it is on): animation frames must keep their shape.
    """
    beam = np.array([row[n] for n in BEAM_PARAMETER_NAMES], dtype=np.float64)
    target = np.array([row[f"target_{n}"] for n in BEAM_PARAMETER_NAMES], dtype=np.float64)
    spec = screen_spec(beam, target, binning=SCREENS_BINNING)
    traces = []
    for trace in spec["data"]:
        trace = _on_axes({**trace, "xaxis": "x", "yaxis": "y", "showlegend": False}, k)
        for key in ("x", "y", "z"):
            if key in trace:
                value = np.asarray(trace[key])
                trace[key] = _typed(value.astype(np.float32) if value.dtype.kind == "f" else value)
        traces.append(trace)
    off = [_on_axes(a, k) for a in spec["layout"].get("annotations", [])]
    hidden = {"text": "", "showarrow": False, "x": 0, "y": 0, "xref": _axis("x", k), "yref": _axis("y", k)}
    while len(off) < 2:
        off.append({**hidden, "visible": False})
    for a in off:
        a.setdefault("visible", True)
        a["font"] = dict(color="orange", size=13)
    return traces, off


#: What a frame changes of each screen trace (everything else stays as the figure has it).
_FRAME_KEYS = {"heatmap": ("type", "z"), "scatter": ("type", "x", "y")}


#: One agent's episode for the screens: its trace rows by step (column -> value), its flags.
EpisodeRows = tuple[dict[int, dict], pd.DataFrame]


def _first_episode(comparison: Comparison) -> dict[str, EpisodeRows]:
    """Each agent's trace rows and flags in episode 0.

    Rows as plain dicts: the figure reads ~130 of them, and a pandas row lookup cost ~0.4 s
    of the server's one thread per figure.
    """
    traces = comparison.traces[comparison.traces["episode"] == 0]
    flags = comparison.flags[comparison.flags["episode"] == 0]
    return {
        name: (
            traces[traces["agent"] == name].set_index("step", drop=False).to_dict("index"),
            flags[flags["agent"] == name],
        )
        for name in comparison.agents
    }


def _flag_lines(flags: pd.DataFrame, step: int, last: int, columns: int) -> list[str]:
    """One agent's flag list under its screen at ``step``, wrapped to its share of the width.

    Plotly does not wrap annotation text, and an unwrapped list ran over the next agent's;
    continuation lines are indented.

    :param columns: screens per row of the figure.
    """
    pairs = zip(flags["step"].tolist(), flags["flag"].tolist(), strict=True)
    lines = [f"⚠ step {s}: {FLAG_LABELS[flag]}" for s, flag in pairs if s <= step]
    if step > last:
        lines.append(f"episode over after {last} steps")
    width = SCREENS_FLAG_CHARS // columns
    return [part for line in lines for part in textwrap.wrap(line, width, subsequent_indent="\u2003")]


def _title_lines(name: str, columns: int) -> list[str]:
    """An agent's name over its screen, wrapped to its share of the width; a name too long
    for SCREENS_TITLE_LINES ends in "…" (the whole name is its hover text)."""
    width = SCREENS_TITLE_CHARS // columns - len(NAME_MARK)  # room for the square before the name
    lines = textwrap.wrap(name, width) or [""]
    if len(lines) > SCREENS_TITLE_LINES:
        rest = " ".join(lines[SCREENS_TITLE_LINES - 1 :])
        lines = [*lines[: SCREENS_TITLE_LINES - 1], rest[: width - 1].rstrip() + "…"]
    return lines


@dataclass(frozen=True)
class ScreenPlace:
    """Where one agent's screen and texts sit in the screens figure, in paper fractions.

    :param columns: screens per row of the figure (texts wrap to their share of it).
    :param x0: left edge of its column; ``width``: the column's width.
    :param title: bottom of its name; ``top``, ``bottom``: its screen area;
        ``readout``, ``flags``: tops of its readout and flag list.
    """

    columns: int
    x0: float
    width: float
    title: float
    top: float
    bottom: float
    readout: float
    flags: float


def screens_grid(episode: dict[str, EpisodeRows], n_steps: int) -> tuple[int, list[ScreenPlace]]:
    """The screens' rows: ``(figure height in px, place of each agent)``.

    At most SCREENS_MAX_COLUMNS screens per row, the rows balanced. Every part of a row
    has a fixed height in px (its names' lines, its longest flag list at the last step,
    ``n_steps``), so a long flag list grows the figure downwards and no screen shrinks.
    """
    names = list(episode)
    columns = balanced_columns(len(names), SCREENS_MAX_COLUMNS)
    width = (1 - SCREENS_GAP * (columns - 1)) / columns
    area = SCREEN_AREA_PX[columns]
    rows, px = [], 0  # per agent: (column, px of its name's bottom from the plot's top)
    for first in range(0, len(names), columns):
        row = names[first : first + columns]
        titles = max(len(_title_lines(name, columns)) for name in row)
        flags = max(
            max(1, len(_flag_lines(episode[name][1], n_steps, max(episode[name][0]), columns))) for name in row
        )
        title = px + titles * SCREENS_TITLE_LINE_PX
        rows += [(c, title) for c in range(len(row))]
        px = title + area + SCREENS_READOUT_PX + flags * SCREENS_FLAG_LINE_PX + SCREENS_FLAG_PAD_PX
        px += SCREENS_ROW_GAP_PX
    plot = px + SCREENS_CONTROLS_PX

    def y(at: float) -> float:
        return 1 - at / plot

    places = [
        ScreenPlace(
            columns=columns, x0=c * (width + SCREENS_GAP), width=width, title=y(title), top=y(title),
            bottom=y(title + area), readout=y(title + area + 8), flags=y(title + area + SCREENS_READOUT_PX),
        )  # fmt: skip
        for c, title in rows
    ]
    return plot + SCREENS_MARGIN_PX, places


def screens_frame(
    episode: dict[str, EpisodeRows],
    step: int,
    error: str = "mae_focus",
    places: Sequence[ScreenPlace] | None = None,
    colors: Mapping[str, str] | None = None,
) -> tuple[list[dict], list[dict]]:
    """Traces and annotations of every agent's subplot at ``step``.

    Per agent: its name, its screen, a readout (step, its reward, the beam error) and the
    flags raised so far (red) or "no flag so far" (green). An agent whose episode ended
    earlier stays at its last step.

    :param episode: agent name -> (trace rows by step, flags), see :func:`_first_episode`.
    :param places: see :func:`screens_grid` (computed when None).
    :param colors: agent name -> Plotly colour of its name (by place without it).
    """
    if places is None:
        places = screens_grid(episode, max(max(rows) for rows, _ in episode.values()))[1]
    colors = _colors_for(list(episode), colors)
    data, annotations = [], []
    for k, ((name, (rows, flags)), place) in enumerate(zip(episode.items(), places, strict=True), start=1):
        last = max(rows)
        row = rows[min(step, last)]
        traces, off = _screen_parts(row, k)
        data += traces
        reward = "—" if pd.isna(row["reward"]) else f"{row['reward']:+.3f}"
        lines = _flag_lines(flags, step, last, place.columns)
        text = dict(
            xref="paper", yref="paper", x=place.x0, xanchor="left", yanchor="top", align="left", showarrow=False
        )
        title = "<br>".join(plotly_text(line) for line in _title_lines(name, place.columns))
        annotations += [
            dict(text, y=place.title, yanchor="bottom", hovertext=plotly_text(name),
                 text=f'<span style="color:{colors[name]}">{NAME_MARK.strip()}</span> <b>{title}</b>',
                 font=dict(size=16, color=NAME_TEXT)),
            *off,
            dict(text, y=place.readout, font=dict(size=14, color="black"),
                 text=f"step <b>{int(row['step'])}</b>/{last}<br>reward <b>{reward}</b><br>"
                      f"{error} <b>{length_text(row[error])}</b>"),
            dict(text, y=place.flags, borderpad=5,
                 text="<br>".join(lines) if lines else ("✓ no flag" if step >= last else "✓ no flag so far"),
                 font=dict(size=14, color=FLAG_RED if lines else NO_FLAG_GREEN),
                 bgcolor="rgba(255,43,43,0.10)" if lines else "rgba(33,195,84,0.10)"),
        ]  # fmt: skip
    return data, annotations


def screens_figure(
    comparison: Comparison, error: str = "mae_focus", colors: Mapping[str, str] | None = None
) -> go.Figure:
    """The screens of every agent side by side, animated over the steps of episode 0.

    One subplot per agent built from :func:`envlib.figures.screen_spec`; one frame per
    step; a slider and Play/Pause buttons (Plotly's, run in the browser). The figure opens
    at the last step: every outcome and every flag in view.
    """
    episode = _first_episode(comparison)
    n_steps = max(max(rows) for rows, _ in episode.values())
    height, places = screens_grid(episode, n_steps)
    frames, data = [], []
    for step in range(n_steps + 1):
        data, annotations = screens_frame(episode, step, error, places, colors)
        changed = [{key: t[key] for key in _FRAME_KEYS[t["type"]]} for t in data]
        frames.append(dict(name=str(step), data=changed, layout=dict(annotations=annotations)))
    single = screen_spec(np.zeros(4), binning=SCREENS_BINNING)["layout"]
    layout: dict = dict(
        height=height, margin=SCREENS_MARGIN, showlegend=False, plot_bgcolor="rgb(68,1,84)",
        font=dict(size=12), annotations=frames[-1]["layout"]["annotations"], shapes=[],
    )  # fmt: skip
    for k, place in enumerate(places, start=1):
        layout[f"xaxis{'' if k == 1 else k}"] = {
            **single["xaxis"], "domain": [place.x0, place.x0 + place.width], "anchor": _axis("y", k), "title": None,
            "constraintoward": "left",  # under its name and texts, which start at the column's left
            "showticklabels": False, "ticks": "",
        }  # fmt: skip
        layout[f"yaxis{'' if k == 1 else k}"] = {
            **single["yaxis"], "domain": [place.bottom, place.top],
            "anchor": _axis("x", k), "scaleanchor": _axis("x", k), "title": None, "showticklabels": False, "ticks": "",
        }  # fmt: skip
        layout["shapes"] += [_on_axes({**shape, "xref": "x", "yref": "y"}, k) for shape in single["shapes"]]
    go_to = dict(mode="immediate", frame=dict(duration=0, redraw=True), transition=dict(duration=0))
    layout["sliders"] = [
        dict(
            active=n_steps, x=0.12, len=0.88, y=0.0, yanchor="bottom", pad=dict(t=0, b=0),
            currentvalue=dict(prefix="step ", font=dict(size=16)),
            steps=[dict(label=str(s), method="animate", args=[[str(s)], go_to]) for s in range(n_steps + 1)],
        )
    ]  # fmt: skip
    play = dict(mode="immediate", fromcurrent=False, frame=dict(duration=PLAY_FRAME_MS, redraw=True),
                transition=dict(duration=0))  # fmt: skip
    pause = {**go_to, "frame": {"duration": 0, "redraw": False}}
    layout["updatemenus"] = [
        dict(
            type="buttons", direction="left", x=0.0, y=0.0, xanchor="left", yanchor="bottom", showactive=False,
            pad=dict(t=0, b=20), font=dict(size=14),
            buttons=[
                dict(label="▶ Play", method="animate", args=[[str(s) for s in range(n_steps + 1)], play]),
                dict(label="❚❚", method="animate", args=[[None], pause]),
            ],
        )
    ]  # fmt: skip
    # Data and layout as plain dicts, not validated again (that took ~0.5 s for ~130 screens):
    # they are envlib's screen specs and this function's layout. Plotly still checks the frames.
    return go.Figure(data=data, layout=layout, frames=frames, skip_invalid=False, _validate=False)


@st.cache_resource(max_entries=32, show_spinner=False)
def screens_figure_cached(
    agents: tuple[tuple[str, str, int], ...], seed: int, scenario: str, error: str, colors: tuple[str, ...]
) -> go.Figure:
    """:func:`screens_figure` of :func:`run_comparison` on one seed, built once for all sessions.

    A resource, not data: ``st.cache_data`` would unpickle (and so re-validate) the ~1 MB
    figure on every rerun. The figure is only read (``st.plotly_chart`` copies it).
    """
    comparison = run_comparison(agents, (seed,), scenario)  # in a worker, outside the gate
    with heavy_work_gate():
        return screens_figure(comparison, error, _by_label(agents, colors))


def length_text(metres: float) -> str:
    """A beam error for people: µm below 1 mm, mm above (e.g. ``"44 µm"``, ``"76.6 mm"``)."""
    return f"{metres * UM:.0f} µm" if metres < 1e-3 else f"{metres * 1e3:,.1f} mm"


def _hover_name(name: str) -> str:
    """An agent's name for a hover text: HTML-escaped, and no ``%{`` that Plotly would fill in."""
    return plotly_text(name).replace("%", "&#37;")


def _fit_axes(fig: go.Figure) -> go.Figure:
    """Margins that grow to hold the tick labels and axis titles (the small fixed ones cut
    them off at the chart's left edge; the template's automargin did not reach the browser)."""
    return fig.update_xaxes(automargin=True).update_yaxes(automargin=True)


def _colors_for(agents: Sequence[str], colors: Mapping[str, str] | None) -> dict[str, str]:
    """label -> Plotly colour: ``colors`` (see :func:`agent_colors`), or by place without it."""
    return {name: colors[name] if colors else _color(i) for i, name in enumerate(agents)}


def curves_figure(
    comparison: Comparison,
    *,
    error: str = "mae_focus",
    log_y: bool = True,
    step: int | None = None,
    colors: Mapping[str, str] | None = None,
) -> go.Figure:
    """Per-step reward of each agent (its own reward) and the common beam error, flags marked.

    :param error: ``mae_focus`` or ``mae_all`` (shown in µm).
    :param log_y: log scale for the error.
    :param step: draw a cursor at this step.
    :param colors: agent name -> Plotly colour (by place without it).
    """
    colors = _colors_for(comparison.agents, colors)
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
        subplot_titles=("Reward (each agent's own reward)", f"Beam error {error} (µm): one yardstick for all"),
    )  # fmt: skip
    for name in comparison.agents:
        trace = comparison.traces[(comparison.traces["agent"] == name) & (comparison.traces["episode"] == 0)]
        color = colors[name]
        label = plotly_text(name)  # Plotly renders some HTML in names; agent names come from users
        acted = trace[trace["step"] > 0]
        who = f"<b>{_hover_name(name)}</b><br>step %{{x}}: "
        fig.add_trace(
            go.Scatter(x=acted["step"], y=acted["reward"], mode="lines+markers", name=label, legendgroup=name,
                       line=series_line(color, width=3), marker=series_marker(color, size=6),
                       hovertemplate=who + "reward %{y:.3f}<extra></extra>"),
            row=1, col=1,
        )  # fmt: skip
        fig.add_trace(
            go.Scatter(x=trace["step"], y=trace[error] * UM, mode="lines+markers", name=label, legendgroup=name,
                       showlegend=False, line=series_line(color, width=3), marker=series_marker(color, size=6),
                       hovertemplate=who + f"{error} %{{y:,.1f}} µm<extra></extra>"),
            row=2, col=1,
        )  # fmt: skip
        flags = comparison.flags[(comparison.flags["agent"] == name) & (comparison.flags["episode"] == 0)]
        # A marker in the agent's colour at every flag, its shape saying which flag (legend).
        at = trace.set_index("step").loc[flags["step"], error].to_numpy() * UM
        fig.add_trace(
            go.Scatter(
                x=flags["step"], y=at, mode="markers", legendgroup=name, showlegend=False,
                marker=dict(symbol=[FLAG_SYMBOLS[f] for f in flags["flag"]], size=17, color=color,
                            line=dict(color="black", width=1.5)),
                hovertext=[f"{label}, step {s}: {FLAG_LABELS[f]} ({d})"
                           for s, f, d in zip(flags["step"], flags["flag"], flags["detail"], strict=True)],
                hoverinfo="text",
            ),
            row=2, col=1,
        )  # fmt: skip
    for kind, symbol in FLAG_SYMBOLS.items():
        fig.add_trace(
            go.Scatter(
                x=[None], y=[None], mode="markers", name=f"⚠ {FLAG_LABELS[kind]}",
                marker=dict(symbol=symbol, size=14, color="white", line=dict(color="black", width=1.5)),
            ),
            row=2, col=1,
        )  # fmt: skip
    if step is not None:
        fig.add_vline(x=step, line=dict(color="gray", dash="dot", width=2))
    fig.update_yaxes(title_text="reward", row=1, col=1)
    fig.update_yaxes(title_text=f"{error} (µm)", type="log" if log_y else "linear", row=2, col=1)
    fig.update_xaxes(title_text="step", dtick=5, row=2, col=1)
    # The legend goes under the charts: on top, the mode bar covered an agent's name.
    fig.update_layout(
        height=580 + MODEBAR_PX, margin=dict(l=10, r=10, t=40 + MODEBAR_PX, b=10), font=dict(size=15),
        legend=dict(orientation="h", yref="container", y=0, yanchor="bottom", xanchor="left", x=0),
        hovermode="closest", uirevision="curves",
    )  # fmt: skip
    return _fit_axes(fig)


def magnets_figure(
    comparison: Comparison,
    moved: Sequence[int],
    *,
    step: int | None = None,
    colors: Mapping[str, str] | None = None,
) -> go.Figure:
    """The moved magnets per step, one subplot per magnet, every agent in its colour.

    :param moved: indices into ``[Q1, Q2, CV, Q3, CH]`` of the magnets any agent moves.
    :param colors: agent name -> Plotly colour (by place without it).

    Quadrupoles in 1/m^2, correctors in mrad; dotted lines at the limits.
    """
    titles = [f"{MAGNET_LABELS[i]} ({'mrad' if i in CORRECTOR_INDICES else '1/m²'})" for i in moved]
    colors = _colors_for(comparison.agents, colors)
    fig = make_subplots(rows=1, cols=len(moved), subplot_titles=titles, horizontal_spacing=0.05)
    for col, index in enumerate(moved, start=1):
        scale, unit = (1e3, "mrad") if index in CORRECTOR_INDICES else (1.0, "1/m²")
        for name in comparison.agents:
            trace = comparison.traces[(comparison.traces["agent"] == name) & (comparison.traces["episode"] == 0)]
            # The whole name in the hover text: Plotly's trace-name box cut it at 15 characters.
            hover = f"<b>{_hover_name(name)}</b><br>step %{{x}}: {MAGNET_LABELS[index]} %{{y:.2f}} {unit}"
            hover += "<extra></extra>"
            fig.add_trace(
                go.Scatter(x=trace["step"], y=trace[MAGNET_LABELS[index]] * scale, mode="lines", name=plotly_text(name),
                           legendgroup=name, showlegend=col == 1, line=series_line(colors[name], width=3),
                           hovertemplate=hover),
                row=1, col=col,
            )  # fmt: skip
        for sign in (-1, 1):
            fig.add_hline(y=sign * MAGNET_LIMITS[index] * scale, line=dict(color="gray", dash="dot"), row=1, col=col)
        if step is not None:
            fig.add_vline(x=step, line=dict(color="gray", dash="dot", width=2), row=1, col=col)
        fig.update_xaxes(title_text="step", row=1, col=col)
    fig.update_layout(
        height=340, margin=dict(l=10, r=10, t=30 + MODEBAR_PX, b=50), font=dict(size=14), showlegend=False,
        uirevision="magnets",
    )
    return _fit_axes(fig)


def episode_table(comparison: Comparison, error: str) -> pd.DataFrame:
    """One row per agent of a single episode: final error, return, length and its flags."""
    rows = []
    for name in comparison.agents:
        per = comparison.per_episode[comparison.per_episode["agent"] == name].iloc[0]
        flags = comparison.flags[comparison.flags["agent"] == name]
        rows.append(
            {
                "agent": name,
                f"final {error} (µm)": round(float(per[f"final_{error}"]) * UM, 1),
                RETURN_COLUMN: round(float(per["return"]), 3),
                "steps": int(per["length"]),
                "flags": "; ".join(f"step {f.step}: {FLAG_LABELS[f.flag]} ({f.detail})" for f in flags.itertuples())
                or "—",
            }
        )
    return pd.DataFrame(rows)


def show_table(table: pd.DataFrame) -> None:
    """A small table whose headers and cells wrap: on a projector's 1024 px a dataframe cut
    its long flag texts and the evaluation's columns. Names and texts as literal Markdown
    (``st.table`` renders Markdown; agent names come from users); numbers keep their digits."""
    shown = table.rename(columns=markdown_text)
    for column in [c for c in shown.columns if not pd.api.types.is_numeric_dtype(shown[c])]:
        shown[column] = shown[column].map(markdown_text)
    st.table(shown.style.format(_number_format(table)), hide_index=True)


def _number_format(table: pd.DataFrame) -> dict[str, str]:
    """Per (escaped) column, the format that shows its rounded numbers as rounded."""
    formats = {}
    for column in table.columns:
        if table[column].dtype.kind == "f":
            decimals = 3 if "return" in column else 1 if "(µm)" in column or "length" in column else 0
            formats[markdown_text(column)] = f"{{:,.{decimals}f}}"
    return formats


def returns_note() -> None:
    """Why the returns of the agents cannot be compared, and what can."""
    st.caption(
        f"**{RETURN_COLUMN}**: the sum of each agent's *own* reward over the episode. Every agent "
        "is scored by a different reward, so one agent's return does not compare with another's "
        "(a bigger one is not a better agent). The beam error is the one yardstick for all."
    )


def comparison_html(comparison: Comparison, choices: Sequence[AgentChoice], error: str, log_y: bool) -> str:
    """A self-contained HTML page of the comparison; plotly.js is inlined, so it opens offline.

    The animated screens (slider and Play work in the file), the per-step curves, the
    magnets and the list of flags.
    """
    colors = agent_colors(choices)
    figures = [
        screens_figure(comparison, error, colors),
        curves_figure(comparison, error=error, log_y=log_y, colors=colors),
        magnets_figure(comparison, moved_magnets(choices), colors=colors),
    ]
    parts = [
        fig.to_html(full_html=False, include_plotlyjs=(j == 0), auto_play=False, config=PLOT_CONFIG)
        for j, fig in enumerate(figures)
    ]
    flags = "".join(
        f"<li><b>{html.escape(f.agent)}</b>, step {f.step}: "
        f"{html.escape(FLAG_LABELS[f.flag])} ({html.escape(f.detail)})</li>"
        for f in comparison.flags.itertuples()
    )
    n = len(comparison.agents)
    title = f"ARES Reward Lab: {n} agents on seed {comparison.seeds[0]} ({html.escape(comparison.scenario)} beams)"
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body style='font-family:sans-serif'><h2>{title}</h2>{''.join(parts)}"
        f"<h3>Flags</h3><ul>{flags or '<li>none</li>'}</ul></body></html>"
    )


def episode_exports(comparison: Comparison, choices: Sequence[AgentChoice], error: str, log_y: bool) -> None:
    """Download buttons: the traces as CSV and the comparison as HTML (files made on click)."""
    seed = comparison.seeds[0]
    row = st.container(horizontal=True, vertical_alignment="center")
    row.download_button(
        "Traces (CSV)", data=functools.partial(traces_csv, comparison.traces), file_name=f"compare-seed-{seed}.csv",
        mime="text/csv", icon=":material/download:", on_click="ignore",
    )  # fmt: skip
    row.download_button(
        "Figure (HTML)", data=functools.partial(comparison_html, comparison, choices, error, log_y),
        file_name=f"compare-seed-{seed}.html", mime="text/html", icon=":material/download:", on_click="ignore",
    )  # fmt: skip
    row.caption("PNG: the camera icon above each chart. The HTML file opens offline (plotly.js inside).")


# --- many episodes ---------------------------------------------------------------------------
def _evaluate_request(choices: Sequence[AgentChoice], scenario: str) -> None:
    st.session_state[K_EVALUATION] = (agent_request(choices), int(st.session_state[K_EPISODES]), scenario)


@st.fragment
def evaluation_section(choices: Sequence[AgentChoice], scenario: str, error: str, log_y: bool) -> None:
    """"Evaluate on N seeds": the same N fixed seeds for every agent, a table and a box plot.

    A fragment: its number and button rerun only this section, so the episode's figures
    above (~1.4 MB of screens) are not built into messages and sent again.
    """
    st.session_state.setdefault(K_EPISODES, DEFAULT_EPISODES)
    row = st.container(horizontal=True, vertical_alignment="bottom")
    n = row.number_input(
        "Episodes N", min_value=1, max_value=MAX_EPISODES, step=10, key=K_EPISODES, width=150, persist_state="session"
    )
    row.button(
        f"Evaluate on {int(n)} seeds", on_click=_evaluate_request, args=(choices, scenario),
        icon=":material/query_stats:",
    )  # fmt: skip
    row.caption(
        f"Seeds {EVALUATION_SEED_BASE:,} … {EVALUATION_SEED_BASE + int(n) - 1:,}, the same beams for every agent "
        "(and the same as the shipped agents' scores). Each agent runs all episodes in one batch."
    )
    request = st.session_state.get(K_EVALUATION)
    if request is None:
        return
    agents, episodes, scenario_done = request
    if (agents, scenario_done) != (agent_request(choices), scenario):
        # Results of other agents or beams would read as this comparison's: not shown.
        st.info(
            f"The agents or the beams have changed since the last evaluation ({len(agents)} agents on "
            f"{episodes} episodes). Press **Evaluate on {int(n)} seeds** to evaluate the ones chosen now.",
            icon=":material/update:",
        )
        return
    with st.spinner(f"{len(agents)} agents × {episodes} episodes … (runs of all sessions take turns)"):
        result = run_or_explain(agents, tuple(evaluation_seeds(episodes)), scenario_done, keep_traces=False)
    agents_text = f"{len(agents)} agent{'s' if len(agents) > 1 else ''}"
    st.markdown(
        f"**{agents_text} on {episodes} episodes** (beams: {SCENARIO_LABELS[scenario_done]}): final `{error}` "
        "of the episodes in µm, and in how many % of them each flag was raised"
    )
    show_table(evaluation_table(result, error))
    returns_note()
    colors = _by_label(agents, plot_colors(choices))
    figure = evaluation_figure(result, error=error, log_y=log_y, colors=colors)
    plotly_chart(figure, config=PLOT_CONFIG, key="cmp.box")
    st.download_button(
        "Per-episode results (CSV)", data=functools.partial(traces_csv, result.per_episode),
        file_name=f"compare-{episodes}-episodes.csv", mime="text/csv", icon=":material/download:", on_click="ignore",
    )  # fmt: skip


def evaluation_table(result: Comparison, error: str) -> pd.DataFrame:
    """The tutorial's metrics and the pathology rates per agent, in display units."""
    summary = result.summary(error)
    table = pd.DataFrame({"agent": summary.index})
    # Short headers: nine columns fit a projector's 1024 px; the line above names the error.
    table["mean (µm)"] = (summary["mean final MAE"] * UM).round(1).to_numpy()
    table["median (µm)"] = (summary["median final MAE"] * UM).round(1).to_numpy()
    for kind, label in FLAG_LABELS.items():
        table[f"{FLAG_SHORT[kind]} (%)"] = (summary[f"fraction {label}"] * 100).round(0).to_numpy()
    table["mean episode length"] = summary["mean episode length"].round(1).to_numpy()
    table[f"mean {RETURN_COLUMN}"] = summary["mean return"].round(3).to_numpy()
    return table


def evaluation_figure(
    result: Comparison, *, error: str = "mae_focus", log_y: bool = True, colors: Mapping[str, str] | None = None
) -> go.Figure:
    """Final beam error of every episode, a box and all points per agent.

    :param colors: agent name -> Plotly colour (by place without it).
    """
    colors = _colors_for(result.agents, colors)
    fig = go.Figure()
    for name in result.agents:
        per = result.per_episode[result.per_episode["agent"] == name]
        fig.add_trace(
            go.Box(
                y=per[f"final_{error}"] * UM, name=plotly_text(name), boxpoints="all", jitter=0.4, pointpos=0,
                marker=series_marker(colors[name], size=7), line=dict(color=colors[name]),
                customdata=per["seed"], hovertemplate="seed %{customdata}: %{y:.1f} µm<extra></extra>",
            )
        )  # fmt: skip
    fig.update_yaxes(title_text=f"final {error} (µm)", type="log" if log_y else "linear")
    fig.update_layout(height=440, margin=dict(l=10, r=10, t=30, b=10), font=dict(size=15), showlegend=False)
    return _fit_axes(fig)
