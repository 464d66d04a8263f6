"""End to end: the addresses a workshop writes on the board or shares lead to their pages."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from browser_support import wait_until_idle

pytestmark = pytest.mark.browser


@pytest.mark.parametrize(("path", "heading"), [("playground", "Playground"), ("rewards", "Reward A"),
                                               ("compare", "Compare agents"), ("train", "Train an agent")])  # fmt: skip
def test_every_page_has_an_address_that_opens_it_without_page_not_found(app_browser, path, heading):
    page = app_browser.open("")
    page.get_by_role("heading", name="Playground").wait_for(timeout=60_000)
    page.goto(f"{app_browser.server.url}/{path}")  # typed into the tab, as from the board
    page.get_by_role("heading", name=heading).first.wait_for(timeout=60_000)
    wait_until_idle(page, timeout_ms=60_000)
    page.wait_for_timeout(1500)  # the "Page not found" dialog comes a moment after the page
    assert "Page not found" not in page.locator("body").inner_text()
    if path == "playground":  # the landing page lives at "/"; the old address still works
        assert urlsplit(page.url).path == "/"
