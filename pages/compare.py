"""Compare agents (tutorial Part III): agents trained with different rewards, side by side on the same beam."""

import streamlit as st

from ui.common import route_through_app
from ui.compare import (
    K_RAN,
    agent_catalog,
    agent_panels,
    agent_picker,
    agent_request,
    common_objective,
    episode_controls,
    episode_curves,
    episode_exports,
    episode_table,
    episode_view,
    evaluation_section,
    flags_help,
    new_agents_notice,
    returns_note,
    run_or_explain,
    run_status,
    screen_legend,
    show_table,
    view_options,
)
from ui.widgets import formula_lines

route_through_app()
st.title("Compare agents")
st.markdown(
    "Agents trained with **different rewards**, side by side on the **same beam**. "
    "Before you press *Run*: what do you expect each one to do, and why?"
)
catalog = agent_catalog()
new_agents_notice(tuple(catalog.by_key()))
choices = agent_picker(catalog)
seed, scenario = episode_controls()
if not choices:
    st.info("Choose at least one agent.")
    st.stop()
objective = common_objective(choices)
if objective is not None:
    formula_lines([objective])

if not st.session_state.get(K_RAN):
    agent_panels(choices)
    st.caption("Press **Run side by side**: every agent starts from the same incoming beam, target and magnets.")
    st.stop()

with run_status(agent_request(choices), seed, scenario):
    comparison = run_or_explain(agent_request(choices), (seed,), scenario)
    episode_view(choices, seed, scenario)
screen_legend()
agent_panels(choices, comparison)

st.subheader("Step by step")
error, log_y = view_options()
episode_curves(choices, seed, scenario, error, log_y)

st.subheader("This episode")
show_table(episode_table(comparison, error))
returns_note()
flags_help()
episode_exports(comparison, choices, error, log_y)

st.subheader("Many episodes")
evaluation_section(choices, scenario, error, log_y)
