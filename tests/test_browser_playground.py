"""End to end: a real Chromium against `streamlit run app.py` moves a magnet on the Playground."""

from __future__ import annotations

import re

import numpy as np
import pytest
from browser_support import wait_until_idle

from envlib.beamline import BeamlineSimulator
from envlib.config import DEMO_INCOMING_BEAM

pytestmark = pytest.mark.browser

NUMBER = re.compile(r"[+-]?\d+\.\d+")


def beam_numbers(page) -> list[float]:
    """The beam column of the table (mu_x, sigma_x, mu_y, sigma_y in mm)."""
    rows = page.locator('[data-testid="stMain"] [data-testid="stTable"] tbody tr')
    return [float(NUMBER.findall(rows.nth(i).inner_text())[0]) for i in range(4)]


def test_moving_a_magnet_by_keyboard_moves_the_beam(app_browser, tmp_path):
    page = app_browser.open("")  # the Playground is the landing page
    page.get_by_role("heading", name="Playground").wait_for()
    page.locator('[data-testid="stMain"] [data-testid="stPlotlyChart"]').first.wait_for()
    before = beam_numbers(page)
    table = page.locator('[data-testid="stMain"] [data-testid="stTable"]')
    old_text = table.inner_text()

    q1 = page.get_by_role("slider", name="Q1 (1/m²)")
    q1.focus()
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "([sel, old]) => { const t = document.querySelector(sel); return t && t.innerText !== old; }",
        arg=['[data-testid="stMain"] [data-testid="stTable"]', old_text],
        timeout=15_000,
    )
    assert q1.input_value() == "0.5"  # five steps of 0.1 1/m^2
    wait_until_idle(page)
    after = beam_numbers(page)
    page.screenshot(path=str(tmp_path / "playground.png"), full_page=True)

    assert after != before, "the beam numbers did not change after moving Q1"
    expected = BeamlineSimulator().track(np.array([0.5, 0, 0, 0, 0]), np.array(DEMO_INCOMING_BEAM), np.zeros(8))[0]
    np.testing.assert_allclose(after, expected * 1e3, atol=6e-5)
    assert (tmp_path / "playground.png").stat().st_size > 10_000
    app_browser.assert_offline()
