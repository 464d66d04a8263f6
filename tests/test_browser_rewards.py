"""End to end: a real Chromium against `streamlit run app.py` edits a reward and trains it."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from browser_support import wait_until_idle

pytestmark = pytest.mark.browser

FORMULAS = '[data-testid="stMain"] .katex-html'


def test_a_weight_moved_by_keyboard_changes_the_formula_and_train_takes_the_reward(app_browser, tmp_path):
    page = app_browser.open("rewards")
    page.get_by_role("heading", name="Reward designer").wait_for()
    charts = page.locator(".stPlotlyChart")
    charts.nth(2).wait_for(timeout=60_000)
    assert charts.count() == 3, "Reward A's landscape, Reward B's, and the cut through both"
    # The cut has one curve per reward.
    assert charts.nth(2).locator("g.trace.scatter").count() >= 2
    formula_a = page.locator(FORMULAS).first
    assert "μ" not in formula_a.inner_text()  # the tutorial's focusing objective: sigma only

    # Reward A's mu_x weight: 0 -> 1 in four steps of 0.25.
    mu_x = page.locator(".st-key-rd-a-w_mu_x").get_by_role("slider")
    mu_x.focus()
    for _ in range(4):
        page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "sel => { const f = document.querySelector(sel); return f && f.innerText.includes('μ'); }",
        arg=FORMULAS,
        timeout=30_000,
    )
    wait_until_idle(page, timeout_ms=60_000)
    assert float(mu_x.input_value()) == 1.0
    assert charts.count() == 3 and page.locator('[data-testid="stMain"] [data-testid="stAlert"]').count() == 0
    page.screenshot(path=str(tmp_path / "rewards.png"))

    # An emptied number means "none", not the field's minimum (a time reward of -10 per step).
    reward_b = page.locator('[data-testid="stMetricValue"]').nth(1)
    before = reward_b.inner_text()
    time_reward_b = page.get_by_label("Time reward per step").nth(1)
    time_reward_b.fill("")
    time_reward_b.press("Enter")
    wait_until_idle(page, timeout_ms=60_000)
    assert float(time_reward_b.input_value()) == 0.0
    assert reward_b.inner_text() == before

    # "Train with reward A" opens the Train page with that reward filled in.
    page.get_by_role("button", name="Train with reward A").click()
    page.get_by_role("heading", name="Train an agent").wait_for(timeout=60_000)
    wait_until_idle(page, timeout_ms=60_000)
    assert urlsplit(page.url).path.endswith("/train")
    assert page.get_by_role("combobox", name="Reward mode").input_value() == "custom"
    # The reward it trains is shown in full: Reward A's formula with its new mu_x term.
    trained = page.locator('[data-testid="stMain"] [data-testid="stMarkdownContainer"]:has(.katex)')
    assert trained.count() == 1 and "μ" in trained.inner_text()
    app_browser.assert_offline()
