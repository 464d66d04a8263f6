"""The shared UI pieces' pure parts (the widgets themselves are tested through the pages)."""

from __future__ import annotations

import pytest

from ui.widgets import balanced_columns, column_grid_css


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
