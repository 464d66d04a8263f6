"""Train: set a config, launch a training in the background, watch its history, compare runs."""

import streamlit as st

from ui.common import job_manager, route_through_app, session_owner
from ui.train import config_form, instructor_box, live_section

route_through_app()
st.title("Train an agent")
st.markdown(
    "Tutorial Part IV in the browser: choose the reward and the PPO settings, launch, and watch the "
    "agent learn. Trainings run one after the other in the background; closing the tab does not stop "
    "them. A finished run appears on the **Compare agents** page."
)
manager = job_manager()
owner = session_owner()
config_form(manager, owner)
st.divider()
live_section(manager, owner)
instructor_box()
