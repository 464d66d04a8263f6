"""End to end: a student's jobs stay theirs through page changes and a reload on any page.

The owner token lives in ``?owner=``; Streamlit drops query parameters on a page change, so
the app puts it back on every page (a reload on Compare used to give the tab a new token,
and the student's jobs lost their Stop and Delete).
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from browser_support import wait_until_idle

pytestmark = pytest.mark.browser

TINY = {"n_envs": 8, "n_steps": 16, "batch_size": 64, "n_epochs": 2, "eval_every": 0, "total_timesteps": 256}


def owner_of(page) -> str | None:
    return parse_qs(urlsplit(page.url).query).get("owner", [None])[0]


def go_to(page, link: str, heading: str) -> None:
    """Click a page in the sidebar and wait until it has drawn."""
    page.locator('[data-testid="stSidebarNav"] a', has_text=link).click()
    page.get_by_role("heading", name=heading).wait_for(timeout=60_000)
    wait_until_idle(page, timeout_ms=60_000)


def test_a_launched_job_stays_this_tabs_after_a_reload_on_another_page(app_browser, tmp_path, monkeypatch):
    monkeypatch.setenv("ARES_RUNS_DIR", str(tmp_path / "runs"))  # read by the server at its start
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({"display_name": "Mine", "train": {**TINY, "net_arch": [8]}}))
    page = app_browser.open("train")
    page.get_by_role("heading", name="Train an agent").wait_for()
    token = owner_of(page)
    assert token
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(config))
    page.get_by_text("n_steps × n_envs = 128 samples").wait_for(timeout=30_000)
    page.get_by_role("button", name="Launch training").click()
    page.get_by_role("button", name="Delete").wait_for(timeout=60_000)

    go_to(page, "Compare agents", "Compare agents")
    assert owner_of(page) == token
    page.reload()
    page.get_by_role("heading", name="Compare agents").wait_for(timeout=60_000)
    wait_until_idle(page, timeout_ms=60_000)
    assert owner_of(page) == token
    entries = page.evaluate("history.length")
    go_to(page, "Train", "Train an agent")
    assert owner_of(page) == token
    # One history entry per page change: there were two (/train, then /train?owner=...), and Back
    # from the second landed on the first, which put the token back: Back seemed to do nothing.
    assert page.evaluate("history.length") == entries + 1
    for name in ("Stop", "Delete"):  # shown only for this tab's own jobs
        page.get_by_role("button", name=name).wait_for(timeout=30_000)

    # A tab opened on another page with the token (a bookmark, a reload there) adopts it.
    other = app_browser.open(f"rewards?owner={token}")
    other.get_by_role("heading", name="Reward designer").wait_for(timeout=60_000)
    other.get_by_role("button", name="Train with reward A").click()
    other.get_by_role("heading", name="Train an agent").wait_for(timeout=60_000)
    wait_until_idle(other, timeout_ms=60_000)
    assert owner_of(other) == token
    other.get_by_role("button", name="Delete").wait_for(timeout=30_000)
    app_browser.assert_offline()
