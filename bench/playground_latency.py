"""How long a student waits after moving a magnet on the Playground.

1. Server side: 100 random magnet-slider moves through Streamlit's AppTest (a full rerun of
   the page: more than the live fragment the real server reruns), p50/p95, and the size of
   the screen figure's payload. Also the two parts of the live panel alone: the preview (one
   Cheetah track) and building + serialising the screen figure.
2. In a browser: `streamlit run app.py` on a free localhost port and Debian's Chromium;
   20 moves of Q1 by keyboard, each timed from the key press until the shown beam numbers
   have changed.

Usage: ``.venv/bin/python bench/playground_latency.py [--moves 100] [--browser-moves 20] [--no-browser]``.
Prints a table; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]
torch.set_num_threads(1)

from envlib.beamline import MAGNET_LABELS, MAGNET_LIMITS  # noqa: E402
from envlib.playground import PlaygroundSession  # noqa: E402
from ui.widgets import MAGNET_DISPLAY_SCALE, MAGNET_DISPLAY_STEPS, screen_chart_figure  # noqa: E402

TABLE = '.st-key-pg-live [data-testid="stTable"]'  # the beam table of the live panel, not the observation's


def percentiles(samples_s: list[float]) -> tuple[float, float]:
    """p50 and p95 in ms."""
    ms = np.asarray(samples_s) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def random_moves(n: int, seed: int = 0) -> list[tuple[str, float]]:
    """``n`` (magnet label, slider value in display units) pairs, on the sliders' grid."""
    rng = np.random.default_rng(seed)
    moves = []
    for _ in range(n):
        i = int(rng.integers(5))
        limit = MAGNET_LIMITS[i] * MAGNET_DISPLAY_SCALE[i]
        step = MAGNET_DISPLAY_STEPS[i]
        value = round(float(rng.uniform(-limit, limit)) / step) * step
        moves.append((MAGNET_LABELS[i], float(np.clip(round(value, 2), -limit, limit))))
    return moves


def bench_apptest(n: int) -> dict[str, float]:
    """Page reruns after a slider move, through AppTest.

    Three figures per move: the whole page script (``render``, the server's work: an upper
    bound, the real server reruns only the live fragment), the live fragment alone, and the
    round trip through AppTest (its thread start and polling included).
    """
    from streamlit.testing.v1 import AppTest

    import ui.playground

    spans: dict[str, list[float]] = {"render": [], "live_panel": []}
    for name in spans:
        original = getattr(ui.playground, name)

        def timed(*args, _original=original, _name=name, **kwargs):
            start = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                spans[_name].append(time.perf_counter() - start)

        setattr(ui.playground, name, timed)

    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.run()
    for _ in range(3):  # warm-up
        at.slider(key="pg.magnet.Q1").set_value(1.0).run()
    for span in spans.values():
        span.clear()
    round_trips, payloads = [], []
    for label, value in random_moves(n):
        slider = at.slider(key=f"pg.magnet.{label}")
        start = time.perf_counter()
        slider.set_value(value).run()
        round_trips.append(time.perf_counter() - start)
        if at.exception:
            raise RuntimeError(f"the page raised: {at.exception}")
        payloads.append(len(at.get("plotly_chart")[0].proto.spec))
    p50, p95 = percentiles(spans["render"])
    f50, f95 = percentiles(spans["live_panel"])
    a50, a95 = percentiles(round_trips)
    return {
        "rerun_p50_ms": p50,
        "rerun_p95_ms": p95,
        "fragment_p50_ms": f50,
        "fragment_p95_ms": f95,
        "apptest_p50_ms": a50,
        "apptest_p95_ms": a95,
        "figure_bytes": int(max(payloads)),
    }


def bench_parts(n: int) -> dict[str, float]:
    """The live panel's work alone: preview (Cheetah) and the screen figure."""
    session = PlaygroundSession()
    rng = np.random.default_rng(1)
    previews, figures = [], []
    for _ in range(n):
        magnets = rng.uniform(-MAGNET_LIMITS, MAGNET_LIMITS)
        start = time.perf_counter()
        readout = session.preview(magnets)
        middle = time.perf_counter()
        screen_chart_figure(readout.beam, readout.target).to_json()
        figures.append(time.perf_counter() - middle)
        previews.append(middle - start)
    return {"preview_p50_ms": percentiles(previews)[0], "figure_p50_ms": percentiles(figures)[0]}


#: In the page: the time of each key press, and of the first frame painted after the beam
#: table's text changed (a MutationObserver, then requestAnimationFrame).
PAGE_PROBE = """
([sel]) => {
  window.__keys = []; window.__shown = [];
  document.addEventListener("keydown", () => window.__keys.push(performance.now()), true);
  const table = document.querySelector(sel);
  let last = table.innerText;
  new MutationObserver(() => {
    const text = document.querySelector(sel).innerText;
    if (text !== last) { last = text; requestAnimationFrame(() => window.__shown.push(performance.now())); }
  }).observe(document.querySelector('[data-testid="stMain"]'), {subtree: true, childList: true, characterData: true});
}
"""


def bench_browser(n: int) -> dict[str, object]:
    """Key presses on Q1 in Chromium, each timed in the page from the key event to the
    first frame that shows new beam numbers (Playwright's own round trips left out)."""
    from browser_support import chromium, streamlit_server, wait_until_idle

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "profile").mkdir()
        with streamlit_server(tmp) as server, chromium(server, tmp / "profile") as browser:
            page = browser.open("")
            page.locator(TABLE).wait_for()
            q1 = page.get_by_role("slider", name="Q1 (1/m²)")
            q1.focus()
            for key in ("ArrowRight", "ArrowLeft"):  # warm-up: first figure render
                page.keyboard.press(key)
                time.sleep(0.5)
            wait_until_idle(page)
            page.evaluate(PAGE_PROBE, [TABLE])
            times, wall = [], []
            for i in range(n):
                start = time.perf_counter()
                page.keyboard.press("ArrowRight")
                page.wait_for_function(f"() => window.__shown.length >= {i + 1}", timeout=10_000)
                wall.append(time.perf_counter() - start)
                wait_until_idle(page)
                time.sleep(0.1)  # let the page settle: moves are measured one at a time
            keys, shown = page.evaluate("() => [window.__keys, window.__shown]")
            # Not strict: the table may change more than once per key; the first changes pair with the keys.
            times = [(s - k) / 1e3 for k, s in zip(keys, shown, strict=False)]
            foreign = sorted(set(browser.guard.foreign))
    p50, p95 = percentiles(times)
    wall50, wall95 = percentiles(wall)
    return {
        "browser_p50_ms": p50,
        "browser_p95_ms": p95,
        "browser_wall_p50_ms": wall50,
        "browser_wall_p95_ms": wall95,
        "foreign_requests": foreign,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--moves", type=int, default=100, help="slider moves through AppTest")
    parser.add_argument("--browser-moves", type=int, default=20, help="key presses in Chromium")
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium part")
    args = parser.parse_args()

    load = os.getloadavg()[0]
    result: dict[str, object] = {"load_avg_1min": round(load, 2), "cpus": os.cpu_count()}
    result.update(bench_apptest(args.moves))
    result.update(bench_parts(args.moves))
    if not args.no_browser:
        result.update(bench_browser(args.browser_moves))

    print(f"Playground latency (load average {load:.2f} on {os.cpu_count()} CPUs at start)")
    print(f"{'figure':<56} {'value':>10}  goal")
    rows = [
        ("server: whole page script after a slider move, p50 (ms)", "rerun_p50_ms", ""),
        ("server: whole page script after a slider move, p95 (ms)", "rerun_p95_ms", "<= 50"),
        ("  live fragment alone (what the server reruns), p50", "fragment_p50_ms", ""),
        ("  live fragment alone, p95 (ms)", "fragment_p95_ms", ""),
        ("  preview (one Cheetah track), p50 (ms)", "preview_p50_ms", ""),
        ("  screen figure + JSON, p50 (ms)", "figure_p50_ms", ""),
        ("  round trip through AppTest, p50 (ms)", "apptest_p50_ms", ""),
        ("  round trip through AppTest, p95 (ms)", "apptest_p95_ms", ""),
        ("screen figure payload (bytes)", "figure_bytes", "<= 100000"),
        ("browser: key press to new numbers painted, p50 (ms)", "browser_p50_ms", ""),
        ("browser: key press to new numbers painted, p95 (ms)", "browser_p95_ms", "<= 200"),
        ("  same, timed from Python (+ Playwright IPC), p50", "browser_wall_p50_ms", ""),
        ("  same, timed from Python, p95 (ms)", "browser_wall_p95_ms", ""),
    ]
    for text, key, goal in rows:
        if key in result:
            value = result[key]
            shown = f"{value:>10.1f}" if isinstance(value, float) else f"{value:>10}"
            print(f"{text:<56} {shown}  {goal}")
    if result.get("foreign_requests"):
        print("WARNING: the browser asked other hosts for:", ", ".join(result["foreign_requests"]))
    rounded = {k: (round(v, 2) if isinstance(v, float) else v) for k, v in result.items()}
    print(json.dumps(rounded))


if __name__ == "__main__":
    main()
