"""End to end: on a projector's 1024 x 768 with the sidebar open, no label or formula is cut;
in half a laptop screen the Playground's rewards go under its screen; on a laptop and a wide
screen, Compare's agent panels fill balanced rows.

Workshop rooms project at 1024 or 1280 pixels; there the main area is ~560 or ~820 pixels
wide. Streamlit cuts a button's label with an ellipsis, and display math or a long word in
a narrow column runs out of its box.
"""

from __future__ import annotations

import time

import pytest
from browser_support import wait_until_idle

pytestmark = pytest.mark.browser

#: Elements of the main area whose content wider than their box means something is cut
#: (by more than 2 px: KaTeX's italic glyphs overhang their box by a pixel or two).
OVERFLOW_JS = """() => {
    const main = document.querySelector('[data-testid="stMain"]');
    const cut = [];
    for (const el of main.querySelectorAll(
        'button [data-testid="stMarkdownContainer"], [data-testid="stMarkdownContainer"], .katex-display'
    )) {
        if (el.offsetParent !== null && el.scrollWidth > el.clientWidth + 2)
            cut.push(`${el.innerText.trim().slice(0, 40)} (${el.scrollWidth} > ${el.clientWidth} px)`);
    }
    return cut;
}"""


#: Tick labels and axis titles of every Plotly chart that fall outside the chart (Plotly
#: draws them at negative x when its margins are too small for them, and the SVG cuts them).
TICKS_OUTSIDE_JS = """() => {
    const cut = [];
    for (const plot of document.querySelectorAll('[data-testid="stMain"] .js-plotly-plot')) {
        const box = plot.getBoundingClientRect();
        for (const t of plot.querySelectorAll('.xtick text, .ytick text, .g-xtitle text, .g-ytitle text')) {
            const r = t.getBoundingClientRect();
            if (r.width === 0) continue;
            if (r.left < box.left - 1 || r.right > box.right + 1 || r.bottom > box.bottom + 1)
                cut.push(`"${t.textContent}" of a chart ${Math.round(box.width)} px wide`);
        }
    }
    return cut;
}"""


#: Tables of the main area that scroll sideways: a column (the Playground's "in obj") is cut off.
TABLES_CUT_JS = """() => [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stTable"] *')]
    .filter(el => el.offsetParent !== null && el.scrollWidth > el.clientWidth + 1)
    .map(el => `table "${el.innerText.trim().slice(0, 40)}" (${el.scrollWidth} > ${el.clientWidth} px)`)"""


def cut_tables(page) -> list[str]:
    """The main area's tables that are wider than their column (one line per cut table)."""
    return page.evaluate(TABLES_CUT_JS)


#: Words of the main area's headings that break over two lines ("Magnet" / "s").
BROKEN_WORDS_JS = """() => {
    const broken = [];
    for (const h of document.querySelectorAll('[data-testid="stMain"] :is(h1, h2, h3)')) {
        const walker = document.createTreeWalker(h, NodeFilter.SHOW_TEXT);
        for (let node; (node = walker.nextNode()); )
            for (const m of node.textContent.matchAll(/\\S+/g)) {
                const range = document.createRange();
                range.setStart(node, m.index);
                range.setEnd(node, m.index + m[0].length);
                const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
                if (tops.size > 1) broken.push(`"${m[0]}" in "${h.textContent.trim().slice(0, 40)}"`);
            }
    }
    return broken;
}"""


def broken_words(page) -> list[str]:
    """Words of the main area's headings that break mid-word (a column too narrow for them)."""
    return page.evaluate(BROKEN_WORDS_JS)


def cut_elements(page) -> list[str]:
    """Texts of the main area's labels, paragraphs, formulas and chart axes that do not fit their box."""
    return page.evaluate(OVERFLOW_JS) + page.evaluate(TICKS_OUTSIDE_JS)


def cut_after_resize(page, timeout_s: float = 5.0) -> list[str]:
    """:func:`cut_elements` once the page has settled after a window resize: Plotly redraws its
    charts a moment later (a tick may stick out of the old size meanwhile). Returns the last
    reading, so a layout that stays cut still fails."""
    deadline = time.monotonic() + timeout_s
    while (cut := cut_elements(page)) and time.monotonic() < deadline:
        time.sleep(0.25)
    return cut


def panel_boxes(page) -> list[dict]:
    """Bounding boxes of the Compare page's agent panels, in order."""
    return page.locator('[class*="st-key-cmp-panel-"]').evaluate_all(
        "els => els.map(e => { const r = e.getBoundingClientRect(); return {x: r.x, y: r.y, width: r.width}; })"
    )


def panel_rows(page) -> list[int]:
    """How many of the Compare page's agent panels sit in each row, top to bottom."""
    tops = [round(b["y"]) for b in panel_boxes(page)]
    return [tops.count(y) for y in sorted(set(tops))]


def open_compare_panels(app_browser):
    """The Compare page, once its agent panels are drawn and laid out in their grid."""
    page = app_browser.open("compare")
    page.get_by_role("heading", name="Compare agents").wait_for()
    page.locator('[class*="st-key-cmp-panel-"]').first.wait_for(timeout=60_000)
    wait_until_idle(page)
    # st.html's style sheet lands a moment after the panels (narrower, in a wrapping row until then).
    page.wait_for_function(
        "() => { const g = document.querySelector('.st-key-cmp-panels');"
        " return g && getComputedStyle(g).display === 'grid'; }",
        timeout=30_000,
    )
    return page


#: Pairs of the screens figure's annotations (names, readouts, flags) that overlap by more than 1 px.
OVERLAP_JS = """chart => {
    const boxes = [...chart.querySelectorAll('g.annotation')]
        .map(g => [g.textContent.trim().slice(0, 30), g.getBoundingClientRect()])
        .filter(([text, r]) => text && r.width > 0 && r.height > 0);  // not the off-screen arrows
    const overlaps = [];
    for (let i = 0; i < boxes.length; i++)
        for (let j = i + 1; j < boxes.length; j++) {
            const [a, p] = boxes[i], [b, q] = boxes[j];
            const w = Math.min(p.right, q.right) - Math.max(p.left, q.left);
            const h = Math.min(p.bottom, q.bottom) - Math.max(p.top, q.top);
            if (w > 1 && h > 1) overlaps.push(`${a} / ${b}`);
        }
    return overlaps;
}"""


#: Names, screens and texts of the screens figure that reach outside the chart's visible box.
OUTSIDE_JS = """chart => {
    const box = chart.getBoundingClientRect();
    const parts = [...chart.querySelectorAll('g.annotation, .heatmaplayer image, .heatmaplayer')];
    return parts.map(e => [e.textContent.trim().slice(0, 30) || e.tagName, e.getBoundingClientRect()])
        .filter(([, r]) => r.width > 0 && (r.left < box.left - 1 || r.right > box.right + 1))
        .map(([text, r]) => `${text} at ${Math.round(r.left)}-${Math.round(r.right)} px`);
}"""

#: Elements around the screens figure whose content is wider than they show (scrolled sideways).
SCROLLED_JS = """chart => {
    const out = [];
    for (let e = chart; e && !e.matches('[data-testid="stMain"]'); e = e.parentElement)
        if (e.scrollWidth > e.clientWidth + 2) out.push(`${e.className} (${e.scrollWidth} > ${e.clientWidth} px)`);
    return out;
}"""


@pytest.mark.viewport(1024, 768)
def test_nothing_is_cut_at_1024_pixels(app_browser):
    page = app_browser.open("")
    page.get_by_role("heading", name="Playground").wait_for()
    page.locator('[data-testid="stMain"] [data-testid="stPlotlyChart"]').first.wait_for()
    wait_until_idle(page)
    assert cut_elements(page) + cut_tables(page) + broken_words(page) == [], "Playground"

    page = app_browser.open("rewards")
    page.get_by_role("heading", name="Reward designer").wait_for()
    page.locator('[data-testid="stMain"] [data-testid="stPlotlyChart"]').first.wait_for(timeout=60_000)
    wait_until_idle(page)
    assert cut_elements(page) == [], "Reward designer"
    # Reward A's four weights sit two and two in its narrow column; with all four in use,
    # its formula's long first line wraps instead of running out of the column.
    weights = page.locator('.st-key-rd-a-weights [data-testid="stSlider"]')
    tops = [round(box["y"]) for box in weights.evaluate_all("els => els.map(e => e.getBoundingClientRect())")]
    assert [tops.count(y) for y in sorted(set(tops))] == [2, 2]
    for name in ("mu_x", "mu_y"):
        page.locator(f".st-key-rd-a-w_{name}").get_by_role("slider").focus()
        page.keyboard.press("ArrowRight")
        page.wait_for_function(
            "n => { const s = document.querySelector('.st-key-rd-a-w_' + n + ' input[type=range]');"
            " return s !== null && s.value === '0.25'; }",
            arg=name,
        )
    page.wait_for_function(
        "() => [...document.querySelectorAll('.katex-html')].some(f => f.innerText.split('∣').length > 8)"
    )
    wait_until_idle(page, timeout_ms=60_000)
    assert cut_elements(page) == [], "Reward designer, four weights"

    page = app_browser.open("compare")
    page.get_by_role("heading", name="Compare agents").wait_for()
    # Six agents, the most a comparison takes: the tutorial's five and the full task.
    choice = page.locator('[data-testid="stMultiSelect"] input')
    choice.fill("Full task")
    choice.press("Enter")
    page.keyboard.press("Escape")
    wait_until_idle(page, timeout_ms=60_000)
    page.get_by_role("button", name="Run side by side").click()
    screens = page.locator(".stPlotlyChart").first
    screens.locator(".slider-container").wait_for(timeout=120_000)
    wait_until_idle(page, timeout_ms=120_000)
    assert cut_elements(page) == [], "Compare agents"
    # Names, readouts and flags of neighbouring agents never run into each other.
    assert screens.evaluate(OVERLAP_JS) == []
    # All six screens and names in view, in two rows of three: none hidden off the side
    # (one row of six showed 3.7 of them and cut the sixth name).
    assert screens.locator(".heatmaplayer").count() == 6
    assert screens.evaluate(OUTSIDE_JS) == []
    assert screens.evaluate(SCROLLED_JS) == []
    assert cut_tables(page) == [], "This episode"
    charts = page.locator(".stPlotlyChart").count()
    episodes = page.get_by_label("Episodes N")
    episodes.fill("3")
    episodes.press("Enter")
    page.get_by_role("button", name="Evaluate on 3 seeds").click()
    page.locator(".stPlotlyChart").nth(charts).wait_for(timeout=120_000)
    wait_until_idle(page, timeout_ms=120_000)
    assert cut_elements(page) == [], "Compare agents, evaluated on 3 seeds"
    assert cut_tables(page) == [], "Many episodes"
    boxes = panel_boxes(page)
    assert len(boxes) >= 2
    # Two per row, at least 14 rem each: names, reward modes and formulas keep their lines.
    assert min(b["width"] for b in boxes) >= 200
    assert panel_rows(page) == [2, 2, 2]

    page = app_browser.open("train")
    page.get_by_role("heading", name="Train an agent").wait_for()
    page.get_by_role("button", name="Launch training").wait_for()
    wait_until_idle(page)
    assert cut_elements(page) == [], "Train"
    app_browser.assert_offline()


def playground_headers(page) -> dict[str, dict]:
    """Bounding boxes of the Playground live panel's three headers, by name."""
    return {
        name: page.get_by_role("heading", name=name).bounding_box()
        for name in ("Magnets", "Screen", "Rewards at this setting")
    }


@pytest.mark.viewport(960, 1000)
def test_playground_rewards_go_under_the_screen_in_half_a_laptop_screen(app_browser):
    # Half of a 1920 px screen with the sidebar open leaves the main area ~500 px: three
    # columns would cut obj's formula and break "Magnets" mid-word.
    page = app_browser.open("")
    page.locator('[data-testid="stMain"] [data-testid="stPlotlyChart"]').first.wait_for()
    wait_until_idle(page)
    page.wait_for_function(  # the style sheet lands a moment after the columns
        "() => { const b = document.querySelector('.st-key-pg-live');"
        " return b && getComputedStyle(b).containerType === 'inline-size'; }"
    )
    boxes = playground_headers(page)
    table = page.locator('.st-key-pg-live [data-testid="stTable"]').bounding_box()  # under the screen
    assert boxes["Magnets"]["y"] == pytest.approx(boxes["Screen"]["y"], abs=2)
    assert boxes["Rewards at this setting"]["y"] > table["y"] + table["height"], "rewards under the screen"
    assert boxes["Magnets"]["height"] == pytest.approx(boxes["Screen"]["height"], abs=2), "one line each"
    assert cut_elements(page) + cut_tables(page) == []

    # A projector's 1024 px: the rewards stay beside the screen, in view while the magnets move.
    page.set_viewport_size({"width": 1024, "height": 768})
    page.wait_for_function(
        "() => { const h = [...document.querySelectorAll('h3')];"
        " const y = t => h.find(e => e.textContent.startsWith(t)).getBoundingClientRect().y;"
        " return Math.abs(y('Rewards') - y('Screen')) < 2; }"
    )
    assert cut_after_resize(page) + cut_tables(page) + broken_words(page) == []
    # Just wide enough for three columns (the main area a little over 34 rem): the narrowest
    # the columns get, and "Magnets", the beam table and obj's formula still fit theirs.
    page.set_viewport_size({"width": 1008, "height": 768})
    page.wait_for_function("() => document.querySelector('.st-key-pg-live').getBoundingClientRect().width < 550")
    boxes = playground_headers(page)
    assert boxes["Rewards at this setting"]["y"] == pytest.approx(boxes["Screen"]["y"], abs=2), "three columns"
    assert cut_after_resize(page) + cut_tables(page) + broken_words(page) == []


def landscape_boxes(page) -> list[dict]:
    """Bounding boxes of the Reward designer's two landscape charts."""
    charts = page.locator('[class*="st-key-rd-landscapes"] [data-testid="stPlotlyChart"]')
    charts.nth(1).wait_for(timeout=60_000)
    return [charts.nth(i).bounding_box() for i in range(charts.count())]


@pytest.mark.viewport(800, 900)
def test_reward_landscapes_go_one_under_the_other_in_a_narrow_window(app_browser):
    # 800 px with the sidebar open leaves ~470 px: side by side, each heatmap was a 65 px strip.
    page = app_browser.open("rewards")
    page.get_by_role("heading", name="Landscapes").wait_for(timeout=60_000)
    wait_until_idle(page, timeout_ms=60_000)
    a, b = landscape_boxes(page)
    assert b["y"] > a["y"] + a["height"] - 1, "Reward B's landscape under Reward A's"
    assert min(a["width"], b["width"]) >= 400

    # A projector's 1024 px: side by side again, to compare the two at a glance.
    page.set_viewport_size({"width": 1024, "height": 768})
    page.wait_for_function(
        "() => { const c = [...document.querySelectorAll('[class*=\"st-key-rd-landscapes\"] .stPlotlyChart')];"
        " return c.length === 2 && Math.abs(c[0].getBoundingClientRect().y - c[1].getBoundingClientRect().y) < 2; }"
    )
    assert cut_after_resize(page) == []
    app_browser.assert_offline()


@pytest.mark.viewport(1366, 768)
def test_five_agents_fill_balanced_rows_on_a_laptop(app_browser):
    page = open_compare_panels(app_browser)
    # Four would fit in a row; 3 + 2 reads as one group, 4 + 1 leaves an agent on its own.
    assert panel_rows(page) == [3, 2]
    assert cut_elements(page) == []
    # On a fresh page the style sheet lands a moment after the panels: without it they
    # already wrap into the same rows (narrower), not squeezed five in one.
    page.evaluate("() => document.querySelectorAll('[data-testid=\"stHtml\"] style').forEach(s => s.remove())")
    page.wait_for_function("() => getComputedStyle(document.querySelector('.st-key-cmp-panels')).display !== 'grid'")
    assert panel_rows(page) == [3, 2]


@pytest.mark.viewport(1920, 1080)
def test_five_agents_share_one_row_on_a_wide_screen(app_browser):
    page = open_compare_panels(app_browser)
    assert panel_rows(page) == [5]
    assert cut_elements(page) == []
    boxes = panel_boxes(page)
    widths = [b["width"] for b in boxes]
    assert max(widths) - min(widths) < 2, "equal columns"


def test_captions_are_dark_enough_to_read_on_every_page(app_browser):
    from color_vision import contrast

    def rgb(css: str) -> list[float]:
        return [float(v) for v in css[css.index("(") + 1 : -1].split(",")[:3]]

    # Streamlit draws captions in its text colour at 60 % opacity: 3.9:1 on the page, below 4.5:1.
    for path, heading in (("", "Playground"), ("rewards", "Reward designer"), ("train", "Train an agent")):
        page = app_browser.open(path)
        page.get_by_role("heading", name=heading).wait_for()
        caption = page.locator('[data-testid="stMain"] [data-testid="stCaptionContainer"]').first
        caption.wait_for()
        wait_until_idle(page)
        # st.html loads its script before its style sheet lands: on a fresh page, wait for it.
        page.wait_for_function(
            "() => [...document.querySelectorAll('style')].some(s => s.textContent.includes('stCaptionContainer'))",
            timeout=10_000,
        )
        color, opacity = caption.evaluate("e => [getComputedStyle(e).color, getComputedStyle(e).opacity]")
        background = page.locator("body").evaluate("e => getComputedStyle(e).backgroundColor")
        a = float(opacity)
        seen = [a * c + (1 - a) * p for c, p in zip(rgb(color), rgb(background), strict=True)]
        hex_seen = "#" + "".join(f"{round(v):02x}" for v in seen)
        assert contrast(hex_seen, "#" + "".join(f"{round(v):02x}" for v in rgb(background))) >= 4.5, (heading, seen)
