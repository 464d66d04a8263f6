"""ARES Reward Lab: the entry point. Router and frame only; pages live in pages/."""

import streamlit as st

from ui.common import agent_workers, freeze_startup_heap, keep_owner_in_url, setting_problems, sidebar_about

st.set_page_config(page_title="ARES Reward Lab", page_icon="⚛", layout="wide")
keep_owner_in_url()  # before any page draws: a reload on any page keeps this session's jobs

# The default page is served at "/" whatever its url_path; "start" keeps it apart from the
# hidden page below, which sends a typed or shared /playground link there instead of "Page not found".
playground = st.Page("pages/playground.py", title="Playground", icon=":material/tune:", default=True, url_path="start")
pages = {
    "Explore": [
        playground,
        st.Page("pages/rewards.py", title="Reward designer", icon=":material/functions:", url_path="rewards"),
    ],
    "Agents": [
        st.Page("pages/compare.py", title="Compare agents", icon=":material/smart_toy:", url_path="compare"),
        st.Page("pages/train.py", title="Train", icon=":material/model_training:", url_path="train"),
        st.Page(lambda: st.switch_page(playground), title="Playground", url_path="playground", visibility="hidden"),
    ],
}
navigation = st.navigation(pages)
sidebar_about()
freeze_startup_heap()
problems = setting_problems()
for problem in problems:
    st.error(f"Server setting: {problem}. The host can fix it and restart the server.", icon=":material/settings:")
if not problems:
    agent_workers()  # starts the workers' imports now, not at the first Compare run
navigation.run()
