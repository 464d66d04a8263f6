"""Playground (tutorial Parts I–II): set a target, turn the five magnets, watch the beam and every reward."""

from ui.playground import render

render()
