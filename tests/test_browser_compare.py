"""End to end: a real Chromium against `streamlit run app.py` runs the default comparison."""

from __future__ import annotations

import shutil
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
            assert f"■ {name}" in titles  # a square in the agent's colour, then the name in dark text
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
        page.locator('[data-testid="stTable"]').first.wait_for()
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
        evaluation = page.locator('[data-testid="stTable"]').nth(1)
        evaluation.wait_for(timeout=120_000)
        page.locator(".stPlotlyChart").nth(charts).wait_for(timeout=30_000)
        wait_until_idle(page, timeout_ms=120_000)
        assert page.locator(".stPlotlyChart").count() == charts + 1
        boxes = page.locator(".stPlotlyChart").nth(charts).locator("g.trace.boxes")
        assert boxes.count() == len(expected), "a box of final errors per agent"
        assert screens.locator(".heatmaplayer").count() == len(expected), "the episode's screens stay"
        browser.assert_offline()


def _boxes(chart, selector: str) -> list[dict]:
    """Bounding boxes (and texts) of the elements of a chart matching ``selector``."""
    return chart.locator(selector).evaluate_all(
        "els => els.filter(e => e.textContent.trim()).map(e => {"
        " const r = e.getBoundingClientRect();"
        " return {text: e.textContent, x: r.x, y: r.y, right: r.right, bottom: r.bottom}; })"
    )


def _texts_under_the_mode_bar(page, chart) -> list[str]:
    """Legend entries, titles and names of a chart that its mode bar (shown on hover) covers."""
    # The chart's top in view below Streamlit's header (a chart taller than the window was
    # scrolled to show its middle, its top under the header).
    chart.evaluate(
        "e => { e.scrollIntoView({block: 'start'}); let p = e.parentElement;"
        " while (p && p.scrollHeight <= p.clientHeight) p = p.parentElement; if (p) p.scrollBy(0, -120); }"
    )
    top = chart.bounding_box()
    chart.page.mouse.move(top["x"] + 40, top["y"] + 40)  # hover() scrolls the point under the header again
    bar = chart.locator(".modebar").first
    bar.wait_for(state="visible")
    box = bar.bounding_box()
    texts = _boxes(chart, ".legendtext, .annotation-text, .gtitle, .g-gtitle text")
    return [
        t["text"]
        for t in texts
        if t["x"] < box["x"] + box["width"] and t["right"] > box["x"] and t["y"] < box["y"] + box["height"]
        and t["bottom"] > box["y"]
    ]  # fmt: skip


@pytest.mark.viewport(1024, 800)
def test_on_a_projector_no_name_hides_under_the_mode_bar_formulas_keep_their_line_and_choices_stay(app_browser):
    page = app_browser.open("compare")
    page.get_by_role("button", name="Run side by side").click()
    page.locator(".stPlotlyChart").nth(2).wait_for(timeout=120_000)
    wait_until_idle(page, timeout_ms=120_000)
    screens, curves = page.locator(".stPlotlyChart").nth(0), page.locator(".stPlotlyChart").nth(1)

    # Every reward formula of the shipped agents on one line (Gary's broke before its "1").
    lines = page.locator('[class*="st-key-cmp-panel-"] .katex').evaluate_all(
        "els => els.map(k => new Set([...k.querySelectorAll('.base')]"
        ".map(b => Math.round(b.getBoundingClientRect().top))).size)"
    )
    assert lines and set(lines) == {1}, lines

    # A panel's square has the colour of its agent's curve.
    legend = curves.locator(".legend .traces").evaluate_all(
        "els => Object.fromEntries(els.filter(e => e.querySelector('path.js-line')).map(e =>"
        " [e.querySelector('.legendtext').textContent, getComputedStyle(e.querySelector('path.js-line')).stroke]))"
    )
    for i in range(5):
        panel = page.locator(f".st-key-cmp-panel-{i}")
        name = panel.locator("h4").inner_text().replace("■", "").strip()
        square = panel.locator("h4 span", has_text="■").last.evaluate("e => getComputedStyle(e).color")
        assert square == legend[name], name

    for width in (1024, 1366):
        page.set_viewport_size({"width": width, "height": 800})
        wait_until_idle(page)
        for chart in (screens, curves):
            assert _texts_under_the_mode_bar(page, chart) == [], width

    # Choices survive a visit to another page.
    page.set_viewport_size({"width": 1024, "height": 800})
    seed = page.get_by_role("spinbutton", name="Seed")
    seed.fill("42")
    seed.press("Enter")
    wait_until_idle(page)
    page.get_by_label("Remove Sean Kelley").click()
    wait_until_idle(page, timeout_ms=120_000)
    page.locator('[data-testid="stSidebarNav"] a', has_text="Playground").click()
    page.get_by_role("heading", name="Compare agents").wait_for(state="detached")
    wait_until_idle(page)
    page.locator('[data-testid="stSidebarNav"] a', has_text="Compare agents").click()
    page.get_by_role("heading", name="Compare agents").wait_for()
    wait_until_idle(page, timeout_ms=120_000)
    assert page.get_by_role("spinbutton", name="Seed").input_value() == "42"
    assert page.locator('[class*="st-key-cmp-panel-"]').count() == 4
    assert "Sean Kelley" not in page.locator('[data-testid="stMultiSelect"]').inner_text()


def test_a_run_that_finishes_while_the_page_is_open_is_offered_without_a_click(runs_dir, tmp_path):
    profile = tmp_path / "profile"
    profile.mkdir()
    with streamlit_server(tmp_path) as server, chromium(server, profile, viewport=(1280, 800)) as browser:
        page = browser.open("compare")
        page.get_by_role("heading", name="Compare agents").wait_for()
        wait_until_idle(page, timeout_ms=60_000)
        # A run finishes on the Train page (another student's): its folder appears, complete.
        shutil.copytree(runs_dir / "tiny-pixels", tmp_path / "late")
        (tmp_path / "late").rename(runs_dir / "late-pixels")
        note = page.get_by_text("Finished training since you opened this page")
        note.wait_for(timeout=60_000)  # run list cached 10 s, checked every 15 s
        assert "Tiny Pixels (late-pixels)" in note.inner_text()
        page.get_by_role("button", name="Refresh the list").click()
        note.wait_for(state="detached", timeout=30_000)
        wait_until_idle(page, timeout_ms=60_000)
        page.locator('[data-testid="stMultiSelect"] input').click()
        page.get_by_role("option", name="Tiny Pixels (late-pixels)", exact=False).wait_for(timeout=10_000)
        browser.assert_offline()


SLOT_STATE = """() => {
    const seen = [];
    for (const e of document.querySelectorAll('[data-testid="stSkeleton"], [data-testid="stSpinner"]')) {
        const screens = e.closest(".st-key-cmp-screens");
        seen.push(screens ? "screens: " + getComputedStyle(e, "::after").content : e.getAttribute("data-testid"));
    }
    const text = document.querySelector('[data-testid="stMain"]').innerText;
    const at = text.indexOf("Running ");
    if (at >= 0) seen.push(text.slice(at, text.indexOf("…", at) + 1));
    const state = document.querySelector('[data-testid="stApp"]').getAttribute("data-test-script-state");
    return {seen, running: state === "running"};
}"""


def _watch(page, seconds: float = 60.0) -> list[str]:
    """What the page shows for a run in progress (grey skeletons, spinner, status line) from a
    click until the script run ends, each once, in order of appearance."""
    import time

    seen: list[str] = []
    started, deadline = False, time.monotonic() + seconds
    while time.monotonic() < deadline:
        state = page.evaluate(SLOT_STATE)
        for thing in state["seen"]:
            if thing not in seen:
                seen.append(thing)
        started |= state["running"]
        if started and not state["running"]:
            break
        time.sleep(0.03)
    return seen


def test_a_run_says_at_once_what_runs_and_a_rerun_of_the_same_episode_says_nothing(app_browser):
    page = app_browser.open("compare")
    page.get_by_role("button", name="Run side by side").click()
    # The status line from the start: no blank grey bar first (st.spinner's slot for 0.5 s or more).
    seen = _watch(page)
    assert seen[0] == "Running 5 agents on seed 6 …", seen
    # The screens' own skeleton, while Plotly loads, is never blank either (lazy widgets' may be).
    assert "stSpinner" not in seen
    assert {s for s in seen if s.startswith("screens")} <= {'screens: "Drawing the screens of 5 agents on seed 6 …"'}
    page.locator(".st-key-cmp-panel-4").wait_for(timeout=60_000)
    assert "Running " not in page.locator('[data-testid="stMain"]').inner_text()
    # A new view of the same episode is cached: no line flashes and pushes the page down.
    page.get_by_text("log scale").click()
    assert not [s for s in _watch(page) if s.startswith("Running")]
    # While the browser loads Plotly the screens are Streamlit's grey skeleton: it says what comes.
    said = page.locator(".stVerticalBlock.st-key-cmp-screens").evaluate(
        """box => {
            const probe = document.createElement("div");
            probe.setAttribute("data-testid", "stSkeleton");
            box.appendChild(probe);
            const text = getComputedStyle(probe, "::after").content;
            probe.remove();
            return text;
        }"""
    )
    assert said == '"Drawing the screens of 5 agents on seed 6 …"'
