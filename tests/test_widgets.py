"""The shared UI pieces' pure parts (the widgets themselves are tested through the pages)."""

from __future__ import annotations

import pytest

from ui.widgets import balanced_columns, column_grid_css, distinct_colors, markdown_text, plotly_text


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
