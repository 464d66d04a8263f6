"""End to end: the Train page's job table and history charts on a projector's 1024 px.

With the sidebar open the main area is ~560 px wide: the job table's last columns (elapsed,
"by") were off to the right, and Plotly's mode bar, shown on hover, covered the titles of
the history charts a third of that wide.
"""

from __future__ import annotations

import pytest
from browser_support import wait_until_idle
from test_browser_layout import cut_elements
from test_jobs import a_job, run_folder

pytestmark = pytest.mark.browser

#: Pairs (title, mode bar) of every Plotly chart on the page whose boxes overlap.
TITLE_UNDER_MODEBAR_JS = """() => {
    const covered = [];
    for (const plot of document.querySelectorAll('[data-testid="stMain"] .js-plotly-plot')) {
        const title = plot.querySelector('.gtitle'), bar = plot.querySelector('.modebar');
        if (!title || !bar) continue;
        const t = title.getBoundingClientRect(), b = bar.getBoundingClientRect();
        const across = Math.min(t.right, b.right) > Math.max(t.left, b.left);
        if (across && Math.min(t.bottom, b.bottom) > Math.max(t.top, b.top)) covered.push(title.textContent);
    }
    return covered;
}"""


@pytest.mark.viewport(1024, 768)
def test_the_job_table_and_chart_titles_are_whole_at_1024_pixels(app_browser, tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    monkeypatch.setenv("ARES_RUNS_DIR", str(runs))  # read by the server at its start
    token = "T" * 22
    for i, name in enumerate(("weighted-offscreen", "short")):
        run_folder(runs, name, job=a_job(name, owner=token, submitted=1.0 + i))
    page = app_browser.open(f"train?owner={token}")
    page.get_by_role("heading", name="Train an agent").wait_for()
    page.locator('[data-testid="stPlotlyChart"]').nth(2).wait_for(timeout=60_000)
    wait_until_idle(page)

    scroller = page.locator('[data-testid="stDataFrame"] .dvn-scroller').first
    width, shown = scroller.evaluate("e => [e.scrollWidth, e.clientWidth]")
    assert width <= shown, f"the job table scrolls sideways: {width} px of columns in {shown} px"
    for i in range(3):  # the mode bar shows on hover
        page.locator('[data-testid="stPlotlyChart"]').nth(i).hover()
        assert page.evaluate(TITLE_UNDER_MODEBAR_JS) == []
    assert cut_elements(page) == [], "Train with jobs and charts"
    app_browser.assert_offline()
