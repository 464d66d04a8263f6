"""The Playground page: set a target, turn the five magnets, watch the beam and every reward.

Per-user state lives in ``st.session_state`` under ``pg.*`` keys; the Cheetah beamline is
shared by all sessions (:func:`ui.common.shared_simulator`). The live panel is an
``st.fragment``: moving a slider reruns only the panel (one Cheetah track and one figure),
not the page.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import plotly.graph_objects as go
import streamlit as st
from streamlit.errors import StreamlitInvalidLayoutContextError

from envlib.beamline import BEAM_PARAMETER_NAMES, MAGNET_LABELS
from envlib.playground import DEMO_STEPS, TUTORIAL_TARGET, PlaygroundSession, playground_config
from envlib.rewards import ALL_TERMS, REWARD_MODES
from ui.common import shared_simulator
from ui.widgets import (
    BEAM_LABELS,
    beam_table,
    convert_magnet_sliders,
    magnet_sliders,
    magnets_from_display,
    reward_readout,
    screen_chart,
    set_magnet_sliders,
    target_sliders,
)

PREFIX = "pg"
K_SESSION = "pg.session"
K_NORMALISED = "pg.normalised"
#: Index of the next demo step while "Play" runs; absent otherwise.
K_DEMO = "pg.demo"
#: Set by a button's callback inside the live panel when the whole page must redraw.
K_RERUN_APP = "pg.rerun_app"
K_BEAM_SEED = "pg.beam_seed"
K_RANDOM_BEAM = "pg.random_beam"
#: Recent reward values drawn beside each reward while the sliders move.
K_TRAILS = "pg.trails"
TRAIL_LENGTH = 40
#: Seconds each frame of the demo stays on the screen.
DEMO_DELAY_S = 0.4
SEED_MAX = 2**31 - 1
MODE_COLORS = {"negative_objective": "#1f77b4", "objective_improvement": "#2ca02c", "sum_of_pixels": "#d62728"}
ERROR_COLORS = {"mu_x": "#9467bd", "sigma_x": "#ff7f0e", "mu_y": "#17becf", "sigma_y": "#8c564b"}


def render() -> None:
    """Draw the whole page."""
    st.title("Playground")
    st.caption(
        "Set a target beam in the sidebar, then turn the magnets: the screen and every reward follow at once. "
        "**Step** applies the sliders to the environment as one step; the history below records each step."
    )
    session = _session(_setup_sidebar())
    live_panel()
    _history_panel(session)


# --- setup (sidebar) --------------------------------------------------------------------
def _new_random_beam() -> None:
    st.session_state[K_RANDOM_BEAM] = True
    st.session_state[K_BEAM_SEED] = (int(st.session_state.get(K_BEAM_SEED, 0)) + 1) % (SEED_MAX + 1)


def _setup_sidebar():
    """The setup widgets; returns the Playground's :class:`EnvConfig`."""
    with st.sidebar:
        st.header("Setup")
        st.markdown("**Target beam** (blue on the screen)")
        target = target_sliders(PREFIX, TUTORIAL_TARGET)

        st.markdown("**Reward**")
        st.session_state.setdefault("pg.terms", list(ALL_TERMS))
        terms = st.pills(
            "Beam parameters in obj",
            ALL_TERMS,
            selection_mode="multi",
            key="pg.terms",
            format_func=BEAM_LABELS.get,
            help="obj sums |beam − target| over these; the tutorial's focusing agents use σx and σy only.",
        )
        if not terms:
            st.warning("obj needs at least one beam parameter: using all four until you pick one.")
            terms = list(ALL_TERMS)
        time_reward = st.number_input(
            "time_reward (added every step)", min_value=-10.0, max_value=10.0, value=0.0, step=0.1, key="pg.time_reward"
        )
        action_mode = st.radio(
            "Step mode (action_mode)",
            ["delta", "direct"],
            horizontal=True,
            key="pg.action_mode",
            help="direct: a step sets the magnets to the sliders. delta: a step moves each magnet towards "
            "the sliders by at most 10 % of its limit (±7.2 1/m², ±0.618 mrad).",
        )

        st.markdown("**Incoming beam**")
        st.session_state.setdefault(K_BEAM_SEED, 0)
        random_beam = st.toggle("Random incoming beam", key=K_RANDOM_BEAM, help="Off: the tutorial's fixed demo beam.")
        st.button("New random beam", on_click=_new_random_beam, width="stretch", help="Random beam with the next seed.")
        beam_seed = st.number_input(
            "beam seed", min_value=0, max_value=SEED_MAX, step=1, key=K_BEAM_SEED, disabled=not random_beam
        )
        misaligned = st.toggle("Misalignments", key="pg.misaligned", help="Quadrupoles and screen shifted by up to ±2 mm.")
        st.session_state.setdefault("pg.misalignment_seed", 0)
        misalignment_seed = st.number_input(
            "misalignment seed", min_value=0, max_value=SEED_MAX, step=1, key="pg.misalignment_seed", disabled=not misaligned
        )
    return playground_config(
        target,
        objective_terms=terms,
        time_reward=time_reward,
        action_mode=action_mode,
        incoming_seed=int(beam_seed) if random_beam else None,
        misalignment_seed=int(misalignment_seed) if misaligned else None,
    )


def _session(config) -> PlaygroundSession:
    """This browser session's :class:`PlaygroundSession`, switched to ``config``."""
    session = st.session_state.get(K_SESSION)
    if session is None:
        session = PlaygroundSession(config, simulator=shared_simulator())
        st.session_state[K_SESSION] = session
    elif session.config != config:
        session.reconfigure(config)
        st.session_state.pop(K_DEMO, None)
        st.toast("New setup: a new episode starts from the current magnets (obj₀ is its first state).")
    return session


# --- live panel -------------------------------------------------------------------------------
def _slider_magnets():
    normalised = bool(st.session_state.get(K_NORMALISED, False))
    values = [st.session_state.get(f"{PREFIX}.magnet.{label}", 0.0) for label in MAGNET_LABELS]
    return magnets_from_display(values, normalised)


def _follow(session: PlaygroundSession) -> None:
    """Sliders to the environment's magnets, and the whole page to redraw (history)."""
    set_magnet_sliders(PREFIX, session.magnets, bool(st.session_state.get(K_NORMALISED, False)))
    st.session_state[K_RERUN_APP] = True


def _on_step() -> None:
    session = st.session_state[K_SESSION]
    session.step_to(_slider_magnets())
    _follow(session)


def _on_reset() -> None:
    session = st.session_state[K_SESSION]
    session.reset()
    st.session_state.pop(K_DEMO, None)
    _follow(session)


def _on_play() -> None:
    session = st.session_state[K_SESSION]
    session.reset()
    st.session_state[K_DEMO] = 0
    # No page redraw yet: the demo redraws the page when it ends.
    set_magnet_sliders(PREFIX, session.magnets, bool(st.session_state.get(K_NORMALISED, False)))


@st.fragment
def live_panel() -> None:
    """Magnet sliders, the screen, the beam against the target and every reward."""
    if st.session_state.pop(K_RERUN_APP, False):
        st.rerun(scope="app")
    session: PlaygroundSession = st.session_state[K_SESSION]
    demo_index = st.session_state.get(K_DEMO)
    if demo_index is not None:
        session.step_to(session.demo_settings()[demo_index])
        set_magnet_sliders(PREFIX, session.magnets, bool(st.session_state.get(K_NORMALISED, False)))
    playing = demo_index is not None
    terms = session.config.objective_terms

    c_magnets, c_screen, c_rewards = st.columns([1.0, 2.0, 1.5], gap="medium")
    with c_magnets:
        st.subheader("Magnets")
        st.toggle(
            "As the agent sees them",
            key=K_NORMALISED,
            on_change=convert_magnet_sliders,
            args=(PREFIX, K_NORMALISED),
            help="Settings normalised to [-1, 1] (the limits), like the tutorial's RescaleAction(env, -1, 1).",
        )
        magnets = magnet_sliders(PREFIX, bool(st.session_state[K_NORMALISED]), disabled=playing)
        st.button("Step", type="primary", on_click=_on_step, disabled=playing, width="stretch")
        b_reset, b_play = st.columns(2)
        b_reset.button("Reset", on_click=_on_reset, disabled=playing, width="stretch", help="Magnets back to 0, new episode.")
        b_play.button(
            "Play demo",
            on_click=_on_play,
            disabled=playing,
            width="stretch",
            help="The tutorial's demo: reset, then sweep the vertical corrector CV over 10 steps "
            "(Q1, Q2, Q3 at 0.2, −0.2, 0.3 of their limits).",
        )
        mode = session.config.action_mode
        st.caption(
            f"Step {session.steps} since the last reset · mode **{mode}**"
            + (" (each magnet moves at most 10 % of its limit per step)" if mode == "delta" else "")
            + (f" · demo step {demo_index + 1}/{DEMO_STEPS}" if playing else "")
        )

    readout = session.preview(magnets)
    with c_screen:
        screen_chart(readout.beam, readout.target, key="pg.screen")
        beam_table(readout, terms)
    with c_rewards:
        st.subheader("Rewards at this setting")
        reward_readout(readout, terms, reference_label="last reset (step 0)", trails=_trails(readout))

    if playing:
        time.sleep(DEMO_DELAY_S)
        if demo_index + 1 < DEMO_STEPS:
            st.session_state[K_DEMO] = demo_index + 1
            _rerun_panel()
        st.session_state.pop(K_DEMO, None)
        st.rerun(scope="app")


def _rerun_panel() -> None:
    """Rerun only the live panel, or the page when this run is not a fragment rerun."""
    try:
        st.rerun(scope="fragment")
    except StreamlitInvalidLayoutContextError:
        # A full run (first load, a sidebar change, AppTest) cannot rerun just a fragment.
        st.rerun(scope="app")


def _trails(readout) -> dict[str, list[float]]:
    """The last :data:`TRAIL_LENGTH` shown values of each reward, at the shown precision
    (so a reward that does not change on screen draws a flat line)."""
    trails = st.session_state.setdefault(K_TRAILS, {mode: [] for mode in REWARD_MODES})
    now = {mode: round(readout.rewards[mode], 4) for mode in REWARD_MODES}
    if not trails[REWARD_MODES[0]] or any(trails[m][-1] != v for m, v in now.items()):
        for mode, value in now.items():
            trails[mode].append(value)
            del trails[mode][:-TRAIL_LENGTH]
    return trails


# --- history -------------------------------------------------------------------------------
def history_figures(history: list[dict], terms: Sequence[str]) -> tuple[go.Figure, go.Figure]:
    """Reward of every mode per step, and each beam error per step in mm.

    :param history: :attr:`PlaygroundSession.history` (row 0 is the reset state, no reward).
    :param terms: the beam parameters in obj (drawn solid; the others dotted).
    """
    stepped = [row for row in history if row[f"reward_{REWARD_MODES[0]}"] is not None]
    reward_traces = [
        dict(
            type="scatter",
            x=[row["step"] for row in stepped],
            y=[row[f"reward_{mode}"] for row in stepped],
            mode="lines+markers",
            name=mode,
            line=dict(color=MODE_COLORS[mode]),
        )
        for mode in REWARD_MODES
    ]
    error_traces = [
        dict(
            type="scatter",
            x=[row["step"] for row in history],
            y=[row[f"error_{name}"] * 1e3 for row in history],
            mode="lines+markers",
            name=f"|{BEAM_LABELS[name]} error|" + ("" if name in terms else " (not in obj)"),
            line=dict(color=ERROR_COLORS[name], dash="solid" if name in terms else "dot"),
        )
        for name in BEAM_PARAMETER_NAMES
    ]

    def layout(title: str, y_title: str) -> dict:
        return dict(
            title=dict(text=title, font=dict(size=14)),
            height=300,
            margin=dict(l=10, r=10, t=40, b=10),
            xaxis=dict(title=dict(text="step"), dtick=1 if len(history) <= 20 else None, automargin=True),
            yaxis=dict(title=dict(text=y_title), automargin=True),
            legend=dict(orientation="h", y=-0.3),
        )

    # Dict specs: one validation each (make_subplots and update_* calls cost ~20 ms).
    return (
        go.Figure(data=reward_traces, layout=layout("Reward per step, every mode", "reward")),
        go.Figure(data=error_traces, layout=layout("Beam error per step", "|beam − target| (mm)")),
    )


def _clear_history() -> None:
    st.session_state[K_SESSION].clear_history()


def _history_panel(session: PlaygroundSession) -> None:
    st.subheader("History")
    if len(session.history) <= 1:
        st.caption("No steps yet: press **Step** or **Play demo**. Step 0 is the state at the last reset.")
    rewards_fig, errors_fig = history_figures(session.history, session.config.objective_terms)
    c_rewards, c_errors = st.columns(2)
    c_rewards.plotly_chart(rewards_fig, key="pg.history.rewards", config={"displayModeBar": False})
    c_errors.plotly_chart(errors_fig, key="pg.history.errors", config={"displayModeBar": False})
    c_clear, c_download, _ = st.columns([1, 1, 4])
    c_clear.button("Clear history", on_click=_clear_history, disabled=len(session.history) <= 1, width="stretch")
    c_download.download_button(
        "Download CSV",
        data=session.history_csv(),
        file_name="playground_history.csv",
        mime="text/csv",
        on_click="ignore",
        width="stretch",
    )
