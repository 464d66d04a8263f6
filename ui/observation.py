"""The Playground's "What the agent observes" expander (tutorial Part I: observation,
observability, the Markov property).

It shows the observation of the Playground environment's current state, read from the
environment itself (:meth:`envlib.playground.PlaygroundSession.observation`), raw and as the
shipped full-task agent's network receives it after its observation normaliser; then the
simulator's state the observation leaves out (:meth:`PlaygroundSession.hidden`). It sits
outside the live panel's fragment: a slider move does not redraw it, a step or reset does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from envlib.pretrained import AGENTS, PRETRAINED
from envlib.runs import NORMALIZER_FILE, ObsNormalizer, RunError, read_config
from envlib.task import OBSERVATION_PARTS, STATE_PART_ENTRIES, hidden_entries, observation_entries

EXPANDER_LABEL = "What the agent observes"
#: The shipped agent whose observation has the Playground's 13 values (target, beam, magnets).
NORMALISER_AGENT = "full-task"
#: Column of the values the network receives.
NETWORK_COLUMN = "to the network"


@st.cache_resource(show_spinner=False)
def _normaliser(run_dir: str) -> ObsNormalizer | None:
    """The observation normaliser of a shipped agent, read once per server; None if unreadable."""
    try:
        return ObsNormalizer.load(Path(run_dir) / NORMALIZER_FILE)
    except RunError:
        return None


@st.cache_data(show_spinner=False)
def _shipped_observations() -> list[tuple[str, str, int]]:
    """``(display name, observation mode, frames stacked)`` of every shipped agent."""
    out = []
    for agent in AGENTS:
        try:
            config = read_config(agent.path)
        except RunError:
            continue  # Compare names a broken shipped agent; the Playground must not fail on it
        out.append((agent.display_name, config.env.observation, config.train.frame_stack or 1))
    return out


def observation_table(mode: str, observation: np.ndarray, normaliser: ObsNormalizer | None) -> pd.DataFrame:
    """One row per observed value: its name, value and unit, and what the network gets.

    :param mode: the environment's observation mode.
    :param observation: the raw observation, shape (d,), SI units.
    :param normaliser: the normaliser of an agent with this observation, or None (no column).
    """
    entries = observation_entries(mode)
    data: dict[str, list[str]] = {
        "value": [f"{v:+.4g}" for v in observation],
        "unit": [unit for _, unit in entries],
    }
    if normaliser is not None:
        data[NETWORK_COLUMN] = [f"{v:+.2f}" for v in normaliser.normalize(observation.reshape(1, -1))[0]]
    return pd.DataFrame(data, index=pd.Index([name for name, _ in entries], name="observed"))


def hidden_table(mode: str, hidden: np.ndarray) -> pd.DataFrame:
    """One row per value of the simulator's state the observation leaves out (value, unit).

    :param hidden: shape (h,), the units of :func:`envlib.task.hidden_entries`.
    """
    entries = hidden_entries(mode)
    return pd.DataFrame(
        {"value": [f"{v:+.4g}" for v in hidden], "unit": [unit for _, unit in entries]},
        index=pd.Index([name for name, _ in entries], name="hidden from the agent"),
    )


def observation_panel() -> None:
    """The collapsed expander; nothing before the Playground has made its session."""
    from ui.playground import K_SESSION  # the Playground's session, made by its render()

    session = st.session_state.get(K_SESSION)
    if session is None:
        return
    mode = session.config.observation
    observation = session.observation()
    full_task = PRETRAINED[NORMALISER_AGENT]
    normaliser = _normaliser(str(full_task.path))
    if normaliser is not None and len(normaliser.obs_mean) != len(observation):
        normaliser = None
    parts = ", ".join(f"{part} {len(STATE_PART_ENTRIES[part])}" for part in OBSERVATION_PARTS[mode])
    with st.expander(EXPANDER_LABEL, expanded=False):
        st.markdown(
            f"The environment's observation after step **{session.steps}**: {len(observation)} numbers "
            f"({parts}). **Step** and **Reset** change it; moving a slider only previews."
        )
        if normaliser is not None:
            st.caption(
                f"*{NETWORK_COLUMN}*: the same numbers after the {full_task.display_name} agent's observation "
                "normaliser (`normalize_observation`: minus the mean, divided by the standard deviation it saw "
                f"in training, clipped to ±{normaliser.clip_obs:g}): what its network's inputs are."
            )
        st.table(observation_table(mode, observation, normaliser))
        st.table(hidden_table(mode, session.hidden()))
        st.caption(
            "The simulator also uses these to compute the beam; the agent never gets them. "
            "Turn on a random incoming beam or misalignments in the sidebar and compare the two lists."
        )
        stacked = [(name, m, k) for name, m, k in _shipped_observations() if m != mode or k > 1]
        if stacked:
            modes = {(m, k) for _, m, k in stacked}
            for m, k in sorted(modes):
                names = ", ".join(name for name, mm, kk in stacked if (mm, kk) == (m, k))
                size = len(observation_entries(m))
                st.caption(
                    f"{names} observe `{m}`: {size} numbers"
                    + (" (no target)" if "target" not in m else "")
                    + (f", and get the last {k} observations at once (frame stacking): {k * size} inputs." if k > 1
                       else ".")
                )  # fmt: skip
        st.markdown(
            "The tutorial asks: *is this task fully or partially observable?* And does this observation have "
            "the *Markov property*: does the next beam depend only on the numbers above, or also on the "
            "hidden ones? Think about what frame stacking would add."
        )
