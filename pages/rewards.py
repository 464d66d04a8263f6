"""Reward designer: define a reward from named terms, see its value and its landscape, train it."""

import streamlit as st

from ui.common import route_through_app, shared_simulator
from ui.rewards import (
    LANDSCAPE_COLOURS_HELP,
    LANDSCAPE_MIN_REM,
    follow_train_click,
    landscape,
    magnet_picker,
    playground_reward_state,
    show_cut,
    show_landscape,
    show_reward_at,
    spec_editor,
    train_button,
)
from ui.widgets import cell_width, column_grid

route_through_app()
follow_train_click()
st.title("Reward designer")
st.markdown(
    "A reward here is a **spec built from named terms** — never code. Build one, compare it with "
    "another (by default the tutorial's *sum of pixels*), and look at its **landscape**: the reward "
    "of one step to every setting of two magnets. A flat or misleading landscape is what makes an "
    "agent learn the wrong thing."
)

simulator = shared_simulator()
state = playground_reward_state(simulator)
st.caption(state.source)

col_a, col_b = st.columns(2, gap="large")
with col_a:
    st.subheader("Reward A")
    spec_a = spec_editor("rd.a", "negative_objective")
    if spec_a is not None:
        show_reward_at(spec_a, state, simulator)
with col_b:
    st.subheader("Reward B")
    spec_b = spec_editor("rd.b", "sum_of_pixels")
    if spec_b is not None:
        show_reward_at(spec_b, state, simulator)

st.divider()
st.subheader("Landscapes")
st.caption(
    "The reward of one step from the magnets the environment is at to every grid setting of two "
    "magnets, the others held at the sliders'; × is the sliders' setting (the step the card above "
    "shows), ★ the best point of the grid. The worst 30 % of the grid all show in the darkest colour.",
    help=LANDSCAPE_COLOURS_HELP,
)
c1, c2, c3 = st.columns(3)
with c1:
    x_index = magnet_picker("Magnet along x", "rd.x", 0)
with c2:
    y_index = magnet_picker("Magnet along y", "rd.y", 1)
with c3:
    n = st.select_slider(
        "Grid points per axis", options=[50, 100, 150, 200], value=100, key="rd.n", persist_state="session"
    )

if x_index == y_index:
    st.warning("Pick two different magnets.")
else:
    # Side by side where both fit; one under the other in a narrow window, not two strips.
    grid = column_grid("rd-landscapes", LANDSCAPE_MIN_REM, items=2)
    for spec, name in ((spec_a, "Reward A"), (spec_b, "Reward B")):
        with grid.container(width=cell_width(LANDSCAPE_MIN_REM)):
            if spec is None:
                st.info(f"{name} is not valid yet.")
            else:
                show_landscape(landscape(spec, state, x_index, y_index, n), name)

    cut_index = magnet_picker("One-dimensional cut along", "rd.cut", x_index)
    specs = {name: spec for name, spec in (("Reward A", spec_a), ("Reward B", spec_b)) if spec is not None}
    if specs:
        show_cut(specs, state, cut_index)

st.divider()
st.subheader("Train it")
st.markdown("Opens the Train page with the tutorial's training config and this reward filled in.")
for col, spec, key, name in zip(st.columns(2), (spec_a, spec_b), ("rd.a", "rd.b"), "AB", strict=True):
    with col:
        train_button(spec, key, name)
