"""End to end: a real Chromium against `streamlit run app.py` moves a magnet on the Playground."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest
from browser_support import wait_until_idle
from playwright.sync_api import expect

from envlib.beamline import BeamlineSimulator
from envlib.config import DEMO_INCOMING_BEAM
from ui.widgets import slider_page_step

pytestmark = pytest.mark.browser

NUMBER = re.compile(r"[+-]?\d+\.\d+")


def beam_numbers(page) -> list[float]:
    """The beam column of the table (mu_x, sigma_x, mu_y, sigma_y in mm)."""
    rows = page.locator('.st-key-pg-live [data-testid="stTable"] tbody tr')
    return [float(NUMBER.findall(rows.nth(i).inner_text())[0]) for i in range(4)]


def test_moving_a_magnet_by_keyboard_moves_the_beam(app_browser, tmp_path):
    page = app_browser.open("")  # the Playground is the landing page
    page.get_by_role("heading", name="Playground").wait_for()
    page.locator('[data-testid="stMain"] [data-testid="stPlotlyChart"]').first.wait_for()
    before = beam_numbers(page)
    table = page.locator('.st-key-pg-live [data-testid="stTable"]')
    old_text = table.inner_text()

    q1 = page.get_by_role("slider", name="Q1 (1/m²)")
    q1.focus()
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "([sel, old]) => { const t = document.querySelector(sel); return t && t.innerText !== old; }",
        arg=['.st-key-pg-live [data-testid="stTable"]', old_text],
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

    # One arrow press is 0.1 of ±72: keyboard users take the bigger steps the help names.
    page.keyboard.press("PageUp")
    expect(q1).to_have_value(f"{0.5 + slider_page_step(-72.0, 72.0, 0.1):g}")  # 14.9
    page.keyboard.press("Shift+ArrowLeft")
    expect(q1).to_have_value("0.5")
    page.keyboard.press("End")
    expect(q1).to_have_value("72")
    cv = page.get_by_role("slider", name="CV (mrad)")
    cv.focus()
    page.keyboard.press("PageDown")
    expect(cv).to_have_value(f"{-slider_page_step(-6.18, 6.18, 0.01):g}")  # -1.24
    app_browser.assert_offline()


def playground_reward(page, mode: str) -> float:
    """The value the Playground's readout shows for a reward mode."""
    text = page.locator('[data-testid="stMain"]').inner_text()
    return float(re.search(rf"{mode}\s*=\s*([+-]?\d+\.\d+)", text).group(1))


def wait_for_new_reward(page, mode: str, old: float, timeout_s: float = 15.0) -> None:
    """Wait until the Playground's readout of ``mode`` differs from ``old`` and the run is over."""
    deadline = time.monotonic() + timeout_s
    while playground_reward(page, mode) == old:
        assert time.monotonic() < deadline, f"{mode} stayed at {old} after the sliders moved"
        page.wait_for_timeout(100)
    wait_until_idle(page)


def slider_values(page, *names: str) -> list[str]:
    return [page.get_by_role("slider", name=name).input_value() for name in names]


def test_moving_between_pages_keeps_what_the_student_set_on_each(app_browser):
    page = app_browser.open("")
    page.get_by_role("heading", name="Playground").wait_for()
    sidebar = page.locator('[data-testid="stSidebar"]')
    for term in ("μx", "μy"):  # obj over σx and σy, as the designer's negative_objective preset
        sidebar.get_by_role("button", name=term, exact=True).click()
        wait_until_idle(page)
    page.get_by_role("slider", name="Q1 (1/m²)").focus()
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    wait_until_idle(page)
    page.get_by_role("button", name="Step", exact=True).click()
    page.get_by_text("Step 1 since the last reset").wait_for()
    wait_until_idle(page)
    applied = playground_reward(page, "negative_objective")
    page.get_by_role("slider", name="Q2 (1/m²)").focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")  # moved, not applied: the designer shows this setting
    expect(page.get_by_role("slider", name="Q2 (1/m²)")).to_have_value("0.3")
    # The slider sends its value a moment after the last key press; read the readout once it has.
    wait_for_new_reward(page, "negative_objective", applied)
    before = slider_values(page, "Q1 (1/m²)", "Q2 (1/m²)")
    reward = playground_reward(page, "negative_objective")

    sidebar.get_by_role("link", name="Reward designer").click()
    page.get_by_role("heading", name="Reward A").wait_for()
    wait_until_idle(page)
    designer = float(page.locator('[data-testid="stMetricValue"]').first.inner_text())
    assert designer == pytest.approx(reward, abs=1e-4), "the designer does not show the Playground's setting"
    kind = page.locator('[data-testid="stRadio"]').first
    kind.get_by_text("objective_improvement").click()  # Reward A: a reward of the student's own
    wait_until_idle(page)

    sidebar.get_by_role("link", name="Playground").click()
    page.get_by_role("heading", name="Magnets").wait_for()
    wait_until_idle(page)
    assert before == ["0.5", "0.3"]
    assert slider_values(page, "Q1 (1/m²)", "Q2 (1/m²)") == before
    assert "Step 1 since the last reset" in page.locator('[data-testid="stMain"]').inner_text()
    assert playground_reward(page, "negative_objective") == reward

    sidebar.get_by_role("link", name="Reward designer").click()
    page.get_by_role("heading", name="Reward A").wait_for()
    wait_until_idle(page)
    assert kind.get_by_role("radio", name="objective_improvement").is_checked()
    app_browser.assert_offline()
