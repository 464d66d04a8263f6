"""Playground (tutorial Parts I–II): set a target, turn the five magnets, watch the beam and every reward."""

from ui.common import route_through_app
from ui.observation import observation_panel
from ui.playground import render

route_through_app()
render()
observation_panel()
