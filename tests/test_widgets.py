"""The shared UI pieces' pure parts (the widgets themselves are tested through the pages)."""

from __future__ import annotations

import itertools

import pytest
from color_vision import contrast, distance

from ui.widgets import (
    SERIES_COLORS,
    SERIES_DASHES,
    SERIES_SYMBOLS,
    balanced_columns,
    column_grid_css,
    distinct_colors,
    markdown_text,
    plotly_text,
    series_line,
    series_marker,
)


@pytest.mark.parametrize(
    ("items", "fit", "columns"),
    [(5, 5, 5), (5, 4, 3), (5, 3, 3), (5, 2, 2), (5, 1, 1), (6, 4, 3), (6, 5, 3), (3, 2, 2), (1, 3, 1)],
)
def test_rows_are_balanced_instead_of_leaving_one_box_alone(items, fit, columns):
    assert balanced_columns(items, fit) == columns


def test_a_grid_of_five_has_a_width_query_for_each_column_count_that_fits():
    css = column_grid_css("panels", 14.0, items=5)
    # Four boxes of 14 rem and three gaps of 1 rem fit from 59 rem; five are then balanced as 3 + 2.
    assert "@container (min-width: 59rem) {.st-key-panels {grid-template-columns: repeat(3, " in css
    assert "@container (min-width: 74rem) {.st-key-panels {grid-template-columns: repeat(5, " in css
    assert ".st-key-panels-wrap {container-type: inline-size;}" in css
    assert "@container" not in column_grid_css("panels", 14.0)


def test_each_key_keeps_its_preferred_colour_and_a_clash_takes_the_next_free_one():
    palette = ("red", "green", "blue")
    assert distinct_colors([("a", 1), ("b", 1), ("c", 4)], palette) == {"a": "green", "b": "blue", "c": "red"}
    # Without "a", "b" gets the colour it prefers.
    assert distinct_colors([("b", 1), ("c", 4)], palette) == {"b": "green", "c": "blue"}
    # More keys than colours: they share, but none is lost.
    assert len(distinct_colors([(k, 0) for k in "abcd"], palette)) == 4


def test_user_chosen_names_show_literally_in_markdown_and_plotly():
    name = "*bold* [link](http://x) <b>b</b> $x$"
    escaped = markdown_text(name)
    assert "*bold*" not in escaped and "](http" not in escaped and "$x$" not in escaped
    assert escaped.replace("\\", "") == name
    assert plotly_text("<b>b</b> & co") == "&lt;b&gt;b&lt;/b&gt; &amp; co"


@pytest.mark.parametrize("vision", ["normal", "deuteranopia", "protanopia"])
def test_every_pair_of_palette_colours_stays_apart_for_colour_blind_students(vision):
    # The old Compare palette's green and red were 6 apart for deuteranopes (lines that cross
    # could not be told apart); Okabe & Ito's colours are ≥ 17 apart.
    close = [
        (a, b, round(distance(a, b, vision), 1))
        for a, b in itertools.combinations(SERIES_COLORS, 2)
        if distance(a, b, vision) < 15
    ]
    assert not close, close


def test_every_palette_colour_has_a_line_style_and_a_symbol_of_its_own():
    assert len(SERIES_COLORS) == len(SERIES_DASHES) == len(SERIES_SYMBOLS) == 8
    lines = [series_line(c, width=3) for c in SERIES_COLORS]
    markers = [series_marker(c, size=6) for c in SERIES_COLORS]
    assert len({line["dash"] for line in lines}) == len({m["symbol"] for m in markers}) == len(SERIES_COLORS)
    assert lines[2] == {"color": SERIES_COLORS[2], "dash": SERIES_DASHES[2], "width": 3}
    assert series_line(SERIES_COLORS[5].lower())["dash"] == SERIES_DASHES[5]  # CSS hex in any case
    # Lines must show on a white chart: ≥ 1.5:1 (the palette's yellow, 1.3:1, was replaced).
    assert min(contrast(c) for c in SERIES_COLORS) >= 1.5
