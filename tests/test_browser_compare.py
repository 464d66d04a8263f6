"""End to end: a real Chromium against `streamlit run app.py` runs the default comparison."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_support import chromium, streamlit_server, wait_until_idle

from envlib.compare import TUTORIAL_AGENT_IDS, available_agents
from envlib.config import RunConfig
from envlib.pretrained import PRETRAINED
from envlib.training import train

pytestmark = pytest.mark.browser


def current_step(screens) -> int:
    """The step the screens' slider shows ("step 12" -> 12)."""
    return int(screens.locator(".slider-container .slider-label").first.text_content().replace("step", "").strip())


@pytest.fixture
def runs_dir(tmp_path, monkeypatch) -> Path:
    """A runs folder with one finished (tiny) run: the page offers it next to the shipped agents."""
    folder = tmp_path / "runs"
    config = RunConfig.from_dict(
        {
            "display_name": "Tiny Pixels",
            "env": {"reward_mode": "sum_of_pixels"},
            "train": {"n_envs": 4, "n_steps": 32, "batch_size": 64, "n_epochs": 2, "total_timesteps": 256,
                      "net_arch": [8], "eval_every": 0, "seed": 1},
        }
    )  # fmt: skip
    train(config, folder / "tiny-pixels")
    monkeypatch.setenv("ARES_RUNS_DIR", str(folder))
    return folder


def test_the_default_comparison_shows_every_agents_panel(runs_dir, tmp_path):
    catalog = available_agents(runs_dir)
    # The default comparison is the tutorial's five shipped agents: all of them load.
    expected = [PRETRAINED[i].display_name for i in TUTORIAL_AGENT_IDS]
    assert [c.label for c in catalog.tutorial_defaults()] == expected, catalog.problems
    profile = tmp_path / "profile"
    profile.mkdir()
    with streamlit_server(tmp_path) as server, chromium(server, profile, viewport=(1920, 1080)) as browser:
        page = browser.open("compare")
        page.get_by_role("heading", name="Compare agents").wait_for()
        page.get_by_role("button", name="Run side by side").click()
        page.locator(f".st-key-cmp-panel-{len(expected) - 1}").wait_for(timeout=120_000)
        screens = page.locator(".stPlotlyChart").first
        screens.locator(".slider-container").wait_for(timeout=120_000)
        wait_until_idle(page, timeout_ms=120_000)
        page.screenshot(path=str(tmp_path / "compare.png"))

        # One screen per agent, named, in one figure that opens at the last step.
        titles = screens.locator(".annotation-text").evaluate_all("els => els.map(e => e.textContent)")
        for name in expected:
            assert name in titles
        assert screens.locator(".heatmaplayer").count() == len(expected)
        assert current_step(screens) == 25
        # Every agent's panel: its name, and its flags (red) or none (green).
        panels = page.locator('[class*="st-key-cmp-panel-"]')
        assert panels.count() == len(expected)
        for i, name in enumerate(expected):
            panel = page.locator(f".st-key-cmp-panel-{i}")
            assert name in panel.inner_text()
            boxes = '[data-testid="stAlertContentError"], [data-testid="stAlertContentSuccess"]'
            assert panel.locator(boxes).count() == 1
        page.locator('[data-testid="stDataFrame"]').first.wait_for()
        # Done when: the abort agent's and the sum_of_pixels agent's misbehaviour is flagged
        # (red), the well-rewarded agent has no flag (green).
        gary, david, sean = (page.locator(f".st-key-cmp-panel-{i}") for i in (0, 1, 4))
        assert "episode ended early (abort)" in gary.locator('[data-testid="stAlertContentError"]').inner_text()
        david_flags = david.locator('[data-testid="stAlertContentError"]').inner_text()
        assert "beam left the screen" in david_flags or "beam blown up" in david_flags
        assert sean.locator('[data-testid="stAlertContentSuccess"]').count() == 1

        # Play runs in the browser: the slider goes back to the start and moves on.
        screens.get_by_text("▶ Play").click()
        page.wait_for_function(
            "el => { const t = el.querySelector('.slider-container .slider-label').textContent;"
            " const n = Number(t.replace('step ', '')); return n >= 1 && n < 25; }",
            arg=screens.element_handle(),
            timeout=10_000,
        )

        # "Evaluate on N seeds" reruns its own section: a table with a row per agent and a box plot.
        charts = page.locator(".stPlotlyChart").count()
        episodes = page.get_by_label("Episodes N")
        episodes.fill("3")
        episodes.press("Enter")
        page.get_by_role("button", name="Evaluate on 3 seeds").click()
        evaluation = page.locator('[data-testid="stDataFrame"]').nth(1)
        evaluation.wait_for(timeout=120_000)
        page.locator(".stPlotlyChart").nth(charts).wait_for(timeout=30_000)
        wait_until_idle(page, timeout_ms=120_000)
        assert page.locator(".stPlotlyChart").count() == charts + 1
        boxes = page.locator(".stPlotlyChart").nth(charts).locator("g.trace.boxes")
        assert boxes.count() == len(expected), "a box of final errors per agent"
        assert screens.locator(".heatmaplayer").count() == len(expected), "the episode's screens stay"
        browser.assert_offline()
