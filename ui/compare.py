"""Pieces of the Compare page: pick agents, run them on the same beam, flag what goes wrong.

Per-user choices live in ``st.session_state`` under ``cmp.*`` keys. Results are cached for
all sessions per (agents, seeds, scenario) with ``st.cache_data`` on plain arguments; the
agents themselves are loaded once per server (``st.cache_resource``). The episode view is
an ``st.fragment``: the step slider and the Play timer rerun only the agents' panels.
"""

from __future__ import annotations

import functools
import html
import secrets
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from envlib.agent import Agent, load_agent
from envlib.beamline import BEAM_PARAMETER_NAMES, CORRECTOR_INDICES, MAGNET_LABELS, MAGNET_LIMITS
from envlib.compare import (
    BLOW_UP_FACTOR,
    FLAG_LABELS,
    PIN_STEPS,
    PIN_TOLERANCE,
    SCENARIOS,
    TUTORIAL_AGENT_IDS,
    AgentCatalog,
    AgentChoice,
    Comparison,
    actuated_magnets,
    available_agents,
    compare,
    traces_csv,
)
from envlib.config import EnvConfig
from envlib.evaluation import EVALUATION_SEED_BASE, evaluation_seeds
from envlib.figures import screen_figure
from envlib.jobs import runs_dir_from_environment
from envlib.rewards import objective_latex, reward_latex
from envlib.runs import RunError
from ui.common import shared_simulator

K_AGENTS = "cmp.agents"
K_SEED = "cmp.seed"
K_SCENARIO = "cmp.scenario"
K_RAN = "cmp.ran"
K_STEP = "cmp.step"
K_PLAY = "cmp.play"
K_SHOWN = "cmp.shown"
K_ERROR = "cmp.error"
K_LOG = "cmp.log"
K_EPISODES = "cmp.episodes"
K_EVALUATION = "cmp.evaluation"

#: At most this many agents side by side (one row of panels; bounds the work of one click).
MAX_AGENTS = 6
DEFAULT_EPISODES = 50
MAX_EPISODES = 200
SEED_MAX = 2**31 - 1
#: The seed the page opens with (any seed works; this one is shown and editable).
DEFAULT_SEED = 6
#: Seconds between two steps while Play runs.
PLAY_INTERVAL_S = 0.6
#: Height in px of a panel's settings and formula, the same in every panel.
SETUP_HEIGHT = 190
#: Height in px of a panel's screen.
SCREEN_HEIGHT = 230
UM = 1e6
#: One colour per panel: Streamlit's Markdown colour name (panel header) and the same hue
#: for Plotly (curves), so a panel and its curves match.
AGENT_COLORS = (
    ("blue", "#1c83e1"),
    ("orange", "#ff8700"),
    ("green", "#21c354"),
    ("red", "#ff2b2b"),
    ("violet", "#803df5"),
    ("gray", "#808495"),
)
FLAG_SYMBOLS = {"left_screen": "x", "aborted": "square", "blown_up": "star", "pinned": "diamond"}
SCENARIO_LABELS = {
    "tutorial": "tutorial: random incoming beam",
    "misaligned": "random incoming beam + misalignments",
}
ERROR_LABELS = {
    "mae_focus": "mae_focus = (|σx − σx'| + |σy − σy'|) / 2",
    "mae_all": "mae_all = mean error of μx, σx, μy, σy",
}
PLOT_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}


# --- loading and running (cached) ------------------------------------------------------
@st.cache_resource(max_entries=16, show_spinner=False)
def _agent(run_dir: str, version: int) -> Agent:
    """One loaded agent per (folder, model version) for the whole server (read-only)."""
    return load_agent(run_dir)


@st.cache_data(max_entries=32, show_spinner=False)
def run_comparison(
    agents: tuple[tuple[str, str, int], ...], seeds: tuple[int, ...], scenario: str, *, keep_traces: bool = True
) -> Comparison:
    """:func:`envlib.compare.compare`, cached for every session.

    :param agents: ``(label, run_dir, version)`` per agent (plain data: the cache key).
    :param seeds: one seed per episode.
    :param scenario: a key of :data:`envlib.compare.SCENARIOS`.
    :param keep_traces: False drops the step-by-step traces (an evaluation's table and plot
        need only the per-episode results; 200 seeds of traces weigh ~1 MB per agent).
    """
    loaded = {label: _agent(run_dir, version) for label, run_dir, version in agents}
    result = compare(loaded, seeds, scenario=scenario, simulator=shared_simulator())
    if not keep_traces:
        result.traces = result.traces.iloc[:0]
    return result


def agent_request(choices: Sequence[AgentChoice]) -> tuple[tuple[str, str, int], ...]:
    """The plain-data key of the chosen agents for :func:`run_comparison`."""
    return tuple((c.label, str(c.run_dir), c.version) for c in choices)


def run_or_explain(
    agents: tuple[tuple[str, str, int], ...], seeds: tuple[int, ...], scenario: str, **kw: bool
) -> Comparison:
    """:func:`run_comparison`, or a clear message and the end of this run if an agent's files
    cannot be loaded (e.g. a run folder damaged since it was listed)."""
    try:
        return run_comparison(agents, seeds, scenario, **kw)
    except RunError as exc:
        st.error(f"Cannot load an agent: `{exc.path.name}` {exc.problem}. Remove it from the choice and run again.")
        st.stop()


# --- choosing -------------------------------------------------------------------------
def agent_catalog() -> AgentCatalog:
    """:func:`envlib.compare.available_agents` of the training page's runs folder, re-read
    at most every 10 s (runs finish meanwhile)."""
    return _catalog(str(runs_dir_from_environment()))


@st.cache_data(ttl=10, show_spinner=False)
def _catalog(runs_dir: str) -> AgentCatalog:
    return available_agents(runs_dir)


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
        st.session_state[K_AGENTS] = [f"pretrained/{i}" for i in TUTORIAL_AGENT_IDS if f"pretrained/{i}" in by_key][
            :MAX_AGENTS
        ] or list(by_key)[:1]
    # A run deleted since the last rerun disappears from the choice instead of raising.
    st.session_state[K_AGENTS] = [k for k in st.session_state[K_AGENTS] if k in by_key]
    keys = st.multiselect(
        "Agents",
        list(by_key),
        key=K_AGENTS,
        format_func=lambda k: by_key[k].label + ("" if k.startswith("pretrained/") else "  · training run"),
        max_selections=MAX_AGENTS,
        help="The shipped agents, then every finished run of the Train page (newest first).",
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
    c_seed, c_new, c_scenario, c_run = st.columns([1.2, 1.1, 2.2, 1.5], vertical_alignment="bottom")
    seed = c_seed.number_input(
        "Seed", min_value=0, max_value=SEED_MAX, step=1, key=K_SEED, help="Same seed, same beam."
    )
    c_new.button("New seed", on_click=_new_seed, icon=":material/casino:", width="stretch")
    scenario = c_scenario.selectbox(
        "Beams", list(SCENARIOS), key=K_SCENARIO, format_func=SCENARIO_LABELS.get,
        help="What the seed draws: every agent starts from the same incoming beam, misalignments, "
        "target (zero: smallest, centred beam) and magnets (zero).",
    )  # fmt: skip
    c_run.button("Run side by side", type="primary", on_click=_run, icon=":material/play_arrow:", width="stretch")
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


def _escape(text: str) -> str:
    """User-chosen names as literal Markdown text."""
    return "".join("\\" + ch if ch in "\\`*_{}[]()#+-.!|<>:~$" else ch for ch in text)


def _color(i: int) -> tuple[str, str]:
    return AGENT_COLORS[i % len(AGENT_COLORS)]


def agent_title(i: int, choice: AgentChoice) -> None:
    """The agent's name in its colour (the colour of its curves)."""
    name, _ = _color(i)
    st.markdown(f"#### :{name}[■] {_escape(choice.label)}")


def agent_setup(choice: AgentChoice, *, show_objective: bool = True) -> None:
    """The agent's settings and reward formula, in a box of the same height in every panel.

    :param show_objective: also the formula of obj (off when the page shows one for all).
    """
    with st.container(height=SETUP_HEIGHT if not show_objective else SETUP_HEIGHT + 60, border=False):
        st.markdown(setup_markdown(choice.config.env, training_run=not choice.key.startswith("pretrained/")))
        st.latex(reward_formula(choice.config.env))
        if show_objective and choice.config.env.reward_mode != "custom":
            st.latex(objective_latex(choice.config.env.objective_terms))


def agent_panels(choices: Sequence[AgentChoice]) -> None:
    """The panels before a run: who the agents are and what they are rewarded for."""
    shared = common_objective(choices) is not None
    for i, (column, choice) in enumerate(zip(st.columns(len(choices)), choices)):
        with column.container(border=True, key=f"cmp-panel-{i}"):
            agent_title(i, choice)
            agent_setup(choice, show_objective=not shared)


# --- the episode ----------------------------------------------------------------------------
def _toggle_play(n_steps: int) -> None:
    playing = not st.session_state.get(K_PLAY, False)
    st.session_state[K_PLAY] = playing
    if playing and st.session_state.get(K_STEP, n_steps) >= n_steps:
        st.session_state[K_STEP] = 0


def _episode_id(comparison: Comparison) -> tuple:
    return (tuple(comparison.agents), tuple(comparison.seeds), comparison.scenario)


def view_options() -> tuple[str, bool]:
    """The common beam error to plot and whether on a log scale: ``(error, log_y)``."""
    st.session_state.setdefault(K_ERROR, "mae_focus")
    st.session_state.setdefault(K_LOG, True)
    c_error, c_log = st.columns([4, 1], vertical_alignment="center")
    error = c_error.radio(
        "Beam error", list(ERROR_LABELS), key=K_ERROR, horizontal=True, format_func=ERROR_LABELS.get,
        help="The same yardstick for every agent, whatever its reward: the tutorial's mean absolute error.",
    )  # fmt: skip
    log_y = c_log.toggle("log scale", key=K_LOG)
    return error, log_y


def episode_view(choices: Sequence[AgentChoice], comparison: Comparison) -> None:
    """One panel per agent, all moved by one step slider and a Play button.

    An ``st.fragment``: the slider and the Play timer rerun only the panels. Play starts a
    timer (``run_every``) that advances the step; pressing Pause, or the last step, reruns
    the page once to stop it.
    """
    n_steps = int(comparison.traces["step"].max())
    if st.session_state.get(K_SHOWN) != _episode_id(comparison):
        # A new episode opens at its last step: the outcome and every flag in view.
        st.session_state[K_SHOWN] = _episode_id(comparison)
        st.session_state[K_STEP] = n_steps
        st.session_state[K_PLAY] = False
    st.session_state[K_STEP] = min(int(st.session_state.get(K_STEP, n_steps)), n_steps)
    playing = bool(st.session_state.get(K_PLAY, False))

    @st.fragment(run_every=PLAY_INTERVAL_S if playing else None)
    def steps_view() -> None:
        if bool(st.session_state.get(K_PLAY)) != playing:
            st.rerun()  # Play or Pause pressed: rerun the page to start or stop the timer
        if playing:
            if st.session_state[K_STEP] >= n_steps:
                st.session_state[K_PLAY] = False
                st.rerun()
            st.session_state[K_STEP] += 1
        c_play, c_step = st.columns([1, 7], vertical_alignment="center")
        c_play.button(
            "Pause" if playing else "Play",
            icon=":material/pause:" if playing else ":material/play_arrow:",
            on_click=_toggle_play,
            args=(n_steps,),
            key="cmp.play_button",
            width="stretch",
        )
        step = c_step.slider("Step", 0, n_steps, key=K_STEP, help="Moves every agent's screen together.")
        panels(choices, comparison, step)

    steps_view()


def episode_curves(comparison: Comparison, choices: Sequence[AgentChoice], error: str, log_y: bool) -> None:
    """Per-step reward and beam error of every agent, then its magnets."""
    curves = curves_figure(comparison, error=error, log_y=log_y)
    st.plotly_chart(curves, config=PLOT_CONFIG, theme=None, key="cmp.curves")
    st.plotly_chart(magnets_figure(comparison, choices), config=PLOT_CONFIG, theme=None, key="cmp.magnets")


def screen_legend() -> None:
    """What the small screens show, said once under the panels."""
    st.caption(
        "Screens: x from −4.1 to +4.1 mm, y from −2.5 to +2.5 mm. Red ellipse: the beam (1σ); dashed blue: "
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


def panel_screen(beam: np.ndarray, target: np.ndarray) -> go.Figure:
    """envlib's screen figure, trimmed for a narrow panel (no legend, no axis titles: the
    page says once what the ellipses and the axes are)."""
    fig = screen_figure(beam, target, height=SCREEN_HEIGHT)
    fig.update_layout(showlegend=False, margin=dict(l=0, r=0, t=4, b=0))
    fig.update_xaxes(title_text=None)
    fig.update_yaxes(title_text=None)
    return fig


def _state_at(trace: pd.DataFrame, step: int) -> pd.Series:
    """The row of ``step``, or the last one if the episode ended earlier."""
    return trace[trace["step"] <= step].iloc[-1]


def panels(choices: Sequence[AgentChoice], comparison: Comparison, step: int) -> None:
    """One bordered panel per agent: name, screen at ``step``, readout, flags so far, settings.

    The screen and the flags come first, so that on a projector the outcome is in view
    without scrolling; a red box lists the flags raised up to ``step``, a green one says
    there are none (yet).
    """
    shared = common_objective(choices) is not None
    error = st.session_state.get(K_ERROR, "mae_focus")
    for i, (column, choice) in enumerate(zip(st.columns(len(choices)), choices)):
        trace = comparison.traces[comparison.traces["agent"] == choice.label]
        flags = comparison.flags[comparison.flags["agent"] == choice.label]
        with column.container(border=True, key=f"cmp-panel-{i}"):
            agent_title(i, choice)
            row = _state_at(trace, step)
            beam = row[list(BEAM_PARAMETER_NAMES)].to_numpy(dtype=np.float64)
            target = row[[f"target_{n}" for n in BEAM_PARAMETER_NAMES]].to_numpy(dtype=np.float64)
            screen = panel_screen(beam, target)
            st.plotly_chart(screen, key=f"cmp.screen.{i}", theme=None, config={"displayModeBar": False})
            last = int(trace["step"].max())
            reward = "—" if pd.isna(row["reward"]) else f"{row['reward']:+.3f}"
            readout = f"step **{int(row['step'])}**/{last} · reward **{reward}**"
            st.markdown(f"{readout} · {error} **{length_text(row[error])}**")
            lines = [f"**step {f.step}** · {FLAG_LABELS[f.flag]}" for f in flags[flags["step"] <= step].itertuples()]
            if step > last:
                lines.append(f"episode over after {last} steps")
            if lines:
                st.error("  \n".join(lines), icon=":material/warning:")
            else:
                st.success("no flag so far" if step < last else "no flag", icon=":material/check_circle:")
            agent_setup(choice, show_objective=not shared)


def length_text(metres: float) -> str:
    """A beam error for people: µm below 1 mm, mm above (e.g. ``"44 µm"``, ``"76.6 mm"``)."""
    return f"{metres * UM:.0f} µm" if metres < 1e-3 else f"{metres * 1e3:,.1f} mm"


def _marker_color(i: int) -> str:
    return _color(i)[1]


def curves_figure(
    comparison: Comparison, *, error: str = "mae_focus", log_y: bool = True, step: int | None = None
) -> go.Figure:
    """Per-step reward of each agent (its own reward) and the common beam error, flags marked.

    :param error: ``mae_focus`` or ``mae_all`` (shown in µm).
    :param log_y: log scale for the error.
    :param step: draw a cursor at this step.
    """
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
        subplot_titles=("Reward (each agent's own reward)", f"Beam error {error} (µm): one yardstick for all"),
    )  # fmt: skip
    for i, name in enumerate(comparison.agents):
        trace = comparison.traces[(comparison.traces["agent"] == name) & (comparison.traces["episode"] == 0)]
        color = _marker_color(i)
        acted = trace[trace["step"] > 0]
        fig.add_trace(
            go.Scatter(x=acted["step"], y=acted["reward"], mode="lines+markers", name=name, legendgroup=name,
                       line=dict(color=color, width=3), marker=dict(size=5)),
            row=1, col=1,
        )  # fmt: skip
        fig.add_trace(
            go.Scatter(x=trace["step"], y=trace[error] * UM, mode="lines+markers", name=name, legendgroup=name,
                       showlegend=False, line=dict(color=color, width=3), marker=dict(size=5)),
            row=2, col=1,
        )  # fmt: skip
        flags = comparison.flags[(comparison.flags["agent"] == name) & (comparison.flags["episode"] == 0)]
        # One marker per step, naming every flag raised there.
        for at_step, group in flags.groupby("step", sort=True):
            y = trace.loc[trace["step"] == at_step, error].iloc[0] * UM
            fig.add_trace(
                go.Scatter(
                    x=[at_step], y=[y], mode="markers+text", legendgroup=name, showlegend=False,
                    marker=dict(symbol=FLAG_SYMBOLS[group["flag"].iloc[0]], size=16, color=color,
                                line=dict(color="black", width=1.5)),
                    text=["⚠ " + ", ".join(FLAG_LABELS[f] for f in group["flag"])], textposition="top left",
                    textfont=dict(color=color, size=14),
                    hovertext=["<br>".join(f"{name}, step {at_step}: {FLAG_LABELS[f]} ({d})"
                                           for f, d in zip(group["flag"], group["detail"]))],
                    hoverinfo="text",
                ),
                row=2, col=1,
            )  # fmt: skip
    if step is not None:
        fig.add_vline(x=step, line=dict(color="gray", dash="dot", width=2))
    fig.update_yaxes(title_text="reward", row=1, col=1)
    fig.update_yaxes(title_text=f"{error} (µm)", type="log" if log_y else "linear", row=2, col=1)
    fig.update_xaxes(title_text="step", dtick=5, row=2, col=1)
    fig.update_layout(
        height=580, margin=dict(l=10, r=10, t=40, b=50), font=dict(size=15),
        legend=dict(orientation="h", yanchor="bottom", y=1.06, xanchor="left", x=0),
        hovermode="closest", uirevision="curves",
    )  # fmt: skip
    return fig


def magnets_figure(comparison: Comparison, choices: Sequence[AgentChoice], *, step: int | None = None) -> go.Figure:
    """Each actuated magnet per step, one subplot per magnet, every agent in its colour.

    Quadrupoles in 1/m^2, correctors in mrad; dotted lines at the limits.
    """
    moved = sorted({i for c in choices for i in actuated_magnets(c.config.env)})
    titles = [f"{MAGNET_LABELS[i]} ({'mrad' if i in CORRECTOR_INDICES else '1/m²'})" for i in moved]
    fig = make_subplots(rows=1, cols=len(moved), subplot_titles=titles, horizontal_spacing=0.05)
    for col, index in enumerate(moved, start=1):
        scale = 1e3 if index in CORRECTOR_INDICES else 1.0
        for i, name in enumerate(comparison.agents):
            trace = comparison.traces[(comparison.traces["agent"] == name) & (comparison.traces["episode"] == 0)]
            fig.add_trace(
                go.Scatter(x=trace["step"], y=trace[MAGNET_LABELS[index]] * scale, mode="lines", name=name,
                           legendgroup=name, showlegend=col == 1, line=dict(color=_marker_color(i), width=3)),
                row=1, col=col,
            )  # fmt: skip
        for sign in (-1, 1):
            fig.add_hline(y=sign * MAGNET_LIMITS[index] * scale, line=dict(color="gray", dash="dot"), row=1, col=col)
        if step is not None:
            fig.add_vline(x=step, line=dict(color="gray", dash="dot", width=2), row=1, col=col)
        fig.update_xaxes(title_text="step", row=1, col=col)
    fig.update_layout(
        height=340, margin=dict(l=10, r=10, t=60, b=50), font=dict(size=14), showlegend=False, uirevision="magnets"
    )
    return fig


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
                "return": round(float(per["return"]), 3),
                "steps": int(per["length"]),
                "flags": "; ".join(f"step {f.step}: {FLAG_LABELS[f.flag]} ({f.detail})" for f in flags.itertuples())
                or "—",
            }
        )
    return pd.DataFrame(rows)


def comparison_html(comparison: Comparison, choices: Sequence[AgentChoice], error: str, log_y: bool) -> str:
    """A self-contained HTML page (plotly.js inlined: opens offline) of the comparison.

    The final screen of every agent, the per-step curves and the magnets.
    """
    n = len(comparison.agents)
    figures = []
    for i, name in enumerate(comparison.agents):
        trace = comparison.traces[(comparison.traces["agent"] == name) & (comparison.traces["episode"] == 0)]
        row = trace.iloc[-1]
        beam = row[list(BEAM_PARAMETER_NAMES)].to_numpy(dtype=np.float64)
        target = row[[f"target_{b}" for b in BEAM_PARAMETER_NAMES]].to_numpy(dtype=np.float64)
        figures.append(screen_figure(beam, target, title=f"{name}: step {int(row['step'])}", height=320))
    figures.append(curves_figure(comparison, error=error, log_y=log_y))
    figures.append(magnets_figure(comparison, choices))
    parts = [fig.to_html(full_html=False, include_plotlyjs=(j == 0)) for j, fig in enumerate(figures)]
    screens = "".join(f'<div style="flex:1 1 {100 // min(n, 3) - 1}%">{p}</div>' for p in parts[:n])
    flags = "".join(
        f"<li><b>{html.escape(f.agent)}</b>, step {f.step}: "
        f"{html.escape(FLAG_LABELS[f.flag])} ({html.escape(f.detail)})</li>"
        for f in comparison.flags.itertuples()
    )
    title = f"ARES Reward Lab: {n} agents on seed {comparison.seeds[0]} ({html.escape(comparison.scenario)} beams)"
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body style='font-family:sans-serif'><h2>{title}</h2>"
        f"<div style='display:flex;flex-wrap:wrap'>{screens}</div>{''.join(parts[n:])}"
        f"<h3>Flags</h3><ul>{flags or '<li>none</li>'}</ul></body></html>"
    )


def episode_exports(comparison: Comparison, choices: Sequence[AgentChoice], error: str, log_y: bool) -> None:
    """Download buttons: the traces as CSV and the comparison as HTML (files made on click)."""
    seed = comparison.seeds[0]
    c_csv, c_html, c_note = st.columns([1, 1, 3], vertical_alignment="center")
    c_csv.download_button(
        "Traces (CSV)", data=functools.partial(traces_csv, comparison.traces), file_name=f"compare-seed-{seed}.csv",
        mime="text/csv", icon=":material/download:", on_click="ignore", width="stretch",
    )  # fmt: skip
    c_html.download_button(
        "Figure (HTML)", data=functools.partial(comparison_html, comparison, choices, error, log_y),
        file_name=f"compare-seed-{seed}.html", mime="text/html", icon=":material/download:", on_click="ignore",
        width="stretch",
    )  # fmt: skip
    c_note.caption("PNG: the camera icon above each chart. The HTML file opens offline (plotly.js inside).")


# --- many episodes ---------------------------------------------------------------------------
def _evaluate_request(choices: Sequence[AgentChoice], scenario: str) -> None:
    st.session_state[K_EVALUATION] = (agent_request(choices), int(st.session_state[K_EPISODES]), scenario)


def evaluation_section(choices: Sequence[AgentChoice], scenario: str, error: str, log_y: bool) -> None:
    """"Evaluate on N seeds": the same N fixed seeds for every agent, a table and a box plot."""
    st.session_state.setdefault(K_EPISODES, DEFAULT_EPISODES)
    c_n, c_button, c_note = st.columns([1, 1.4, 3], vertical_alignment="bottom")
    n = c_n.number_input("Episodes N", min_value=1, max_value=MAX_EPISODES, step=10, key=K_EPISODES)
    c_button.button(
        f"Evaluate on {int(n)} seeds", on_click=_evaluate_request, args=(choices, scenario),
        icon=":material/query_stats:", width="stretch",
    )  # fmt: skip
    c_note.caption(
        f"Seeds {EVALUATION_SEED_BASE:,} … {EVALUATION_SEED_BASE + int(n) - 1:,}, the same beams for every agent "
        "(and the same as the shipped agents' scores). Each agent runs all episodes in one batch."
    )
    request = st.session_state.get(K_EVALUATION)
    if request is None:
        return
    agents, episodes, scenario_done = request
    with st.spinner(f"{len(agents)} agents × {episodes} episodes …"):
        result = run_or_explain(agents, tuple(evaluation_seeds(episodes)), scenario_done, keep_traces=False)
    st.markdown(f"**{len(agents)} agents on {episodes} episodes** ({SCENARIO_LABELS[scenario_done]} beams)")
    st.dataframe(evaluation_table(result, error), hide_index=True, width="stretch")
    st.plotly_chart(evaluation_figure(result, error=error, log_y=log_y), config=PLOT_CONFIG, theme=None, key="cmp.box")
    st.download_button(
        "Per-episode results (CSV)", data=functools.partial(traces_csv, result.per_episode),
        file_name=f"compare-{episodes}-episodes.csv", mime="text/csv", icon=":material/download:", on_click="ignore",
    )  # fmt: skip


def evaluation_table(result: Comparison, error: str) -> pd.DataFrame:
    """The tutorial's metrics and the pathology rates per agent, in display units."""
    summary = result.summary(error)
    table = pd.DataFrame({"agent": summary.index})
    table[f"mean final {error} (µm)"] = (summary["mean final MAE"] * UM).round(1).to_numpy()
    table[f"median final {error} (µm)"] = (summary["median final MAE"] * UM).round(1).to_numpy()
    for kind, label in FLAG_LABELS.items():
        table[f"{label} (%)"] = (summary[f"fraction {label}"] * 100).round(0).to_numpy()
    table["mean episode length"] = summary["mean episode length"].round(1).to_numpy()
    table["mean return"] = summary["mean return"].round(3).to_numpy()
    return table


def evaluation_figure(result: Comparison, *, error: str = "mae_focus", log_y: bool = True) -> go.Figure:
    """Final beam error of every episode, a box and all points per agent."""
    fig = go.Figure()
    for i, name in enumerate(result.agents):
        per = result.per_episode[result.per_episode["agent"] == name]
        fig.add_trace(
            go.Box(
                y=per[f"final_{error}"] * UM, name=name, boxpoints="all", jitter=0.4, pointpos=0,
                marker=dict(color=_marker_color(i), size=6), line=dict(color=_marker_color(i)),
                customdata=per["seed"], hovertemplate="seed %{customdata}: %{y:.1f} µm<extra></extra>",
            )
        )  # fmt: skip
    fig.update_yaxes(title_text=f"final {error} (µm)", type="log" if log_y else "linear")
    fig.update_layout(height=440, margin=dict(l=10, r=10, t=30, b=10), font=dict(size=15), showlegend=False)
    return fig
