"""The Playground page: set a target, turn the five magnets, watch the beam and every reward.

Per-user state lives in ``st.session_state`` under ``pg.*`` keys; the Cheetah beamline is
shared by all sessions (:func:`ui.common.shared_simulator`). The live panel is an
``st.fragment``: moving a slider reruns only the panel (one Cheetah track, one figure, a
table and one Markdown readout), not the page.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from envlib.beamline import BEAM_PARAMETER_NAMES, MAGNET_LABELS, MAGNET_LIMITS
from envlib.config import EnvConfig
from envlib.playground import DEMO_STEPS, TUTORIAL_TARGET, PlaygroundSession, playground_config
from envlib.rewards import ALL_TERMS, REWARD_MODES
from ui.common import shared_simulator
from ui.widgets import (
    BEAM_LABELS,
    SERIES_COLORS,
    beam_table,
    convert_magnet_sliders,
    magnet_sliders,
    magnets_from_display,
    magnets_to_display,
    plotly_chart,
    reward_readout,
    screen_chart,
    series_line,
    series_marker,
    set_magnet_sliders,
    target_sliders,
    wrapping_columns,
)

PREFIX = "pg"
K_SESSION = "pg.session"
K_NORMALISED = "pg.normalised"
#: Index of the next demo step while "Play demo" runs; absent otherwise.
K_DEMO = "pg.demo"
K_BEAM_SEED = "pg.beam_seed"
K_RANDOM_BEAM = "pg.random_beam"
K_ACTION_MODE = "pg.action_mode"
#: Seconds each frame of the demo stays on the screen.
DEMO_DELAY_S = 0.4
SEED_MAX = 2**31 - 1
#: Widths of the live panel's three columns: magnets, screen, rewards. Just above the wrap
#: (34 rem; each column loses 2/3 of a 2 rem gap) "Magnets" keeps its ~101 px, the screen
#: the ~192 px of the beam table and the rewards the ~178 px of obj's formula's first line.
COLUMNS = [1.0, 1.73, 1.61]
#: Below this width the rewards go under the magnets and the screen (rem): they keep their
#: column on a 1024 px projector with the sidebar open (35 rem), not in 960 px (31 rem),
#: where obj's formula would be cut.
LIVE_WRAP_BELOW_REM = 34.0
#: The beam table's cells with 3 px of side padding, not Streamlit's 8 + 6: its five columns
#: then fit the screen's column (~200 px just above the wrap), where "in obj" was cut off.
TABLE_CSS = (
    '<style>.st-key-pg-live [data-testid="stTable"] :is(th, td) {padding-left: 3px; padding-right: 3px;}</style>'
)
#: Colours from the shared palette; each mode's line also has its own dash and marker symbol.
MODE_COLORS = dict(
    zip(("negative_objective", "objective_improvement", "sum_of_pixels"), SERIES_COLORS[:3], strict=True)
)
#: The errors' dash says whether a term is in obj, so their second channel is the marker symbol.
ERROR_COLORS = dict(zip(BEAM_PARAMETER_NAMES, SERIES_COLORS[4:8], strict=True))


def render() -> None:
    """Draw the whole page."""
    st.title("Playground")
    st.caption(
        "Set a target beam in the sidebar, then turn the magnets: the screen and every reward follow at once. "
        "**Step** applies the sliders to the environment as one step; the history below records each step."
    )
    session = _session(_setup_sidebar())
    playing = _advance_demo(session)

    _toolbar(session, playing)
    st.html(TABLE_CSS)
    with wrapping_columns("pg-live", LIVE_WRAP_BELOW_REM):
        live_panel()
    _history_panel(session)

    if playing:
        # Next frame of the demo: the whole page, so the history grows with it.
        time.sleep(DEMO_DELAY_S)
        st.rerun()


# --- setup (sidebar) --------------------------------------------------------------------
def _new_random_beam() -> None:
    st.session_state[K_RANDOM_BEAM] = True
    st.session_state[K_BEAM_SEED] = (int(st.session_state.get(K_BEAM_SEED, 0)) + 1) % (SEED_MAX + 1)


def _setup_sidebar() -> EnvConfig:
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
            persist_state="session",
            format_func=BEAM_LABELS.get,
            help="obj sums |beam − target| over these; the tutorial's focusing agents use σx and σy only.",
        )
        if not terms:
            st.warning("obj needs at least one beam parameter: using all four until you pick one.")
            terms = list(ALL_TERMS)
        time_reward = st.number_input(
            "time_reward (added every step)",
            min_value=-10.0,
            max_value=10.0,
            value=0.0,
            step=0.1,
            key="pg.time_reward",
            persist_state="session",
        )
        action_mode = st.radio(
            "Step mode (action_mode)",
            ["delta", "direct"],
            horizontal=True,
            key=K_ACTION_MODE,
            persist_state="session",
            help="direct: a step sets the magnets to the sliders. delta: a step moves each magnet towards "
            "the sliders by at most 10 % of its limit (±7.2 1/m², ±0.618 mrad).",
        )

        st.markdown("**Incoming beam**")
        st.session_state.setdefault(K_BEAM_SEED, 0)
        random_beam = st.toggle(
            "Random incoming beam",
            key=K_RANDOM_BEAM,
            persist_state="session",
            help="Off: the tutorial's fixed demo beam.",
        )
        st.button("New random beam", on_click=_new_random_beam, width="stretch", help="Random beam with the next seed.")
        beam_seed = st.number_input(
            "beam seed",
            min_value=0,
            max_value=SEED_MAX,
            step=1,
            key=K_BEAM_SEED,
            persist_state="session",
            disabled=not random_beam,
        )
        misaligned = st.toggle(
            "Misalignments",
            key="pg.misaligned",
            persist_state="session",
            help="Quadrupoles and screen shifted by up to ±2 mm.",
        )
        st.session_state.setdefault("pg.misalignment_seed", 0)
        misalignment_seed = st.number_input(
            "misalignment seed",
            min_value=0,
            max_value=SEED_MAX,
            step=1,
            key="pg.misalignment_seed",
            persist_state="session",
            disabled=not misaligned,
        )
    return playground_config(
        target,
        objective_terms=terms,
        time_reward=time_reward,
        action_mode=action_mode,
        incoming_seed=int(beam_seed) if random_beam else None,
        misalignment_seed=int(misalignment_seed) if misaligned else None,
    )


def _session(config: EnvConfig) -> PlaygroundSession:
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
def slider_magnets() -> np.ndarray:
    """The magnet sliders' setting ``[Q1, Q2, CV, Q3, CH]`` in 1/m^2 and rad, shape (5,)."""
    normalised = bool(st.session_state.get(K_NORMALISED, False))
    values = [st.session_state.get(f"{PREFIX}.magnet.{label}", 0.0) for label in MAGNET_LABELS]
    return magnets_from_display(values, normalised)


def _sliders_follow(session: PlaygroundSession) -> None:
    """Move the magnet sliders to the environment's magnets (before they are drawn)."""
    set_magnet_sliders(PREFIX, session.magnets, bool(st.session_state.get(K_NORMALISED, False)))


def _on_step() -> None:
    session = st.session_state[K_SESSION]
    session.step_to(slider_magnets())
    _sliders_follow(session)


def _on_reset() -> None:
    session = st.session_state[K_SESSION]
    session.reset()
    st.session_state.pop(K_DEMO, None)
    _sliders_follow(session)


def _on_play() -> None:
    session = st.session_state[K_SESSION]
    if session.config.action_mode != "direct":
        # The tutorial's demo sets the magnets; in delta mode each step would stop at 10 % of the way.
        st.session_state[K_ACTION_MODE] = "direct"
        session.reconfigure(dataclasses.replace(session.config, action_mode="direct"))
        st.toast("Play demo runs in direct mode, as in the tutorial: each step sets the magnets.")
    session.reset()
    st.session_state[K_DEMO] = 0


def _advance_demo(session: PlaygroundSession) -> bool:
    """While "Play demo" runs, take its next step; returns whether it is running."""
    index = st.session_state.get(K_DEMO)
    if index is None:
        return False
    session.step_to(session.demo_settings()[index])
    _sliders_follow(session)
    if index + 1 < DEMO_STEPS:
        st.session_state[K_DEMO] = index + 1
        return True
    del st.session_state[K_DEMO]
    return False


@st.fragment
def live_panel() -> None:
    """Magnet sliders, the screen, the beam against the target and every reward.

    A fragment: a slider move reruns only this. Everything static (buttons, history) lives
    outside it, because each element drawn here is one more message to the browser on every
    move; only the three column headers are here, so that they wrap with their columns.
    """
    session: PlaygroundSession = st.session_state[K_SESSION]
    terms = session.config.objective_terms
    playing = K_DEMO in st.session_state
    c_magnets, c_screen, c_rewards = st.columns(COLUMNS, gap="medium")
    c_magnets.subheader("Magnets")
    c_screen.subheader("Screen")
    c_rewards.subheader("Rewards at this setting")
    normalised = bool(st.session_state.get(K_NORMALISED, False))
    with c_magnets:
        magnets = magnet_sliders(PREFIX, normalised, disabled=playing)
        step_note(session, magnets, normalised)
    readout = session.preview(magnets)
    with c_screen:
        screen_chart(readout.beam, readout.target, key="pg.screen")
        beam_table(readout, terms)
    with c_rewards:
        reward_readout(readout, terms, reference_label="last reset (step 0)", last_step=last_step(session))


def last_step(session: PlaygroundSession) -> tuple[int, dict[str, float]] | None:
    """``(step, reward per mode)`` of the last step in the history; None before one (or after
    Clear history). Read from the history: nothing is tracked per slider move."""
    row = session.history[-1] if session.history else None
    if row is None or row[f"reward_{REWARD_MODES[0]}"] is None:
        return None
    return row["step"], {mode: row[f"reward_{mode}"] for mode in REWARD_MODES}


def step_note(session: PlaygroundSession, magnets: np.ndarray, normalised: bool) -> None:
    """In delta mode, where Step would stop when the sliders are more than one step away
    (the screen and rewards show the sliders' setting, which Step does not reach)."""
    if session.config.action_mode != "delta":
        return
    reach = session.step_destination(magnets)
    short = np.flatnonzero(~np.isclose(reach, magnets, rtol=0.0, atol=1e-9 * MAGNET_LIMITS))
    if short.size:
        shown = magnets_to_display(reach, normalised)
        stops = ", ".join(f"{MAGNET_LABELS[i]} {shown[i]:+.3g}" for i in short)
        st.caption(f"Step stops at {stops}: at most 10 % of each limit per step.")


def _toolbar(session: PlaygroundSession, playing: bool) -> None:
    """Step, Reset, Play demo, the normalised view and where the episode is."""
    # A wrapping row, not columns: on a projector's 1024 px the buttons keep their labels.
    row = st.container(horizontal=True, vertical_alignment="center")
    row.button("Step", type="primary", on_click=_on_step, disabled=playing,
               help="Apply the sliders to the environment as one step.")  # fmt: skip
    row.button("Reset", on_click=_on_reset, disabled=playing, help="Magnets back to 0, new episode.")
    row.button(
        "Play demo",
        on_click=_on_play,
        disabled=playing,
        help="The tutorial's demo, in direct mode as there: reset, then sweep the vertical corrector CV "
        "over 10 steps (Q1, Q2, Q3 at 0.2, −0.2, 0.3 of their limits).",
    )
    row.toggle(
        "As the agent sees them",
        key=K_NORMALISED,
        persist_state="session",
        on_change=convert_magnet_sliders,
        args=(PREFIX, K_NORMALISED),
        disabled=playing,
        help="Magnet settings normalised to [-1, 1] (the limits), like the tutorial's RescaleAction(env, -1, 1).",
    )
    mode = session.config.action_mode
    row.caption(
        f"Step **{session.steps}** since the last reset · action_mode **{mode}**"
        + (": a step moves each magnet at most 10 % of its limit" if mode == "delta" else ": a step sets the magnets")
        + (" · playing the demo" if playing else "")
    )


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
            line=series_line(MODE_COLORS[mode]),
            marker=series_marker(MODE_COLORS[mode], size=7),
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
            marker=series_marker(ERROR_COLORS[name], size=7),
        )
        for name in BEAM_PARAMETER_NAMES
    ]

    # Both charts over the same steps (the rewards start at step 1, the errors at step 0), so
    # that a step sits at the same x in both.
    steps = [history[0]["step"], history[-1]["step"]] if history else [0, 0]
    x_range = [steps[0] - 0.5, max(steps[1], steps[0] + 1) + 0.5]

    def layout(title: str, y_title: str) -> dict:
        return dict(
            title=dict(text=title, font=dict(size=14)),
            height=300,
            margin=dict(l=10, r=10, t=40, b=10),
            xaxis=dict(
                title=dict(text="step"), range=x_range, dtick=1 if len(history) <= 20 else None, automargin=True
            ),
            yaxis=dict(title=dict(text=y_title), automargin=True),
            legend=dict(orientation="h", y=-0.3),
        )

    # Dict specs: one validation each (make_subplots and update_* calls cost ~20 ms).
    return (
        go.Figure(data=reward_traces, layout=layout("Reward per step, every reward mode", "reward")),
        go.Figure(data=error_traces, layout=layout("Beam error per step", "|beam − target| (mm)")),
    )


def _clear_history() -> None:
    st.session_state[K_SESSION].clear_history()


def _history_panel(session: PlaygroundSession) -> None:
    st.subheader("History")
    # One episode, one action_mode: a new mode (also Play demo's switch to direct) starts a new episode.
    modes = sorted({row["action_mode"] for row in session.history})
    st.caption(
        f"This episode, since the last reset (step 0), all in action_mode **{', '.join(modes)}**: "
        "changing the setup or the step mode starts a new episode from the current magnets."
        + ("" if len(session.history) > 1 else " No steps yet: press **Step** or **Play demo**.")
    )
    rewards_fig, errors_fig = history_figures(session.history, session.config.objective_terms)
    c_rewards, c_errors = st.columns(2)
    plotly_chart(rewards_fig, key="pg.history.rewards", where=c_rewards, config={"displayModeBar": False})
    plotly_chart(errors_fig, key="pg.history.errors", where=c_errors, config={"displayModeBar": False})
    row = st.container(horizontal=True)
    row.button("Clear history", on_click=_clear_history, disabled=len(session.history) <= 1)
    row.download_button(
        "Download CSV",
        data=session.history_csv(),
        file_name="playground_history.csv",
        mime="text/csv",
        on_click="ignore",
        help="One row per step, in SI units (unlike the page's mm and mrad): Q1, Q2, Q3 in 1/m², "
        "CV and CH in rad, beam, errors and objective in m.",
    )
