"""Helpers for the end-to-end tests: a real ``streamlit run app.py`` and a real Chromium.

Every browser test of every page uses these (pytest puts ``tests/`` on ``sys.path``, and
``conftest.py`` loads this module as a plugin, so the ``app_browser`` fixture needs no import)::

    @pytest.mark.browser
    def test_my_page(app_browser):
        page = app_browser.open("my_page")
        ...
        app_browser.assert_offline()

:func:`streamlit_server` starts the app on a free localhost port with the repo's
``.streamlit/config.toml`` and waits for ``/_stcore/health``; :func:`chromium` launches
Debian's Chromium through Playwright in a fresh profile and records every request to a host
other than the app's own server (such requests are aborted, and the test fails).
Everything is stopped at teardown.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
#: Seconds to wait for the server's health check (importing torch and Cheetah takes a few).
SERVER_START_TIMEOUT = 60.0
#: URL schemes that never leave the browser.
LOCAL_SCHEMES = ("data", "blob", "about", "chrome", "chrome-extension", "devtools")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class StreamlitServer:
    """A running ``streamlit run app.py``.

    :param url: base URL, e.g. ``http://127.0.0.1:54321``.
    :param process: the server process.
    :param log_path: file with the server's stdout and stderr.
    """

    url: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        """The server's output so far (for failure messages)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _wait_healthy(url: str, process: subprocess.Popen, log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"streamlit exited with code {process.returncode} before it was healthy:\n{log_path.read_text()}"
            )
        with contextlib.suppress(OSError, urllib.error.URLError):
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        time.sleep(0.2)
    raise RuntimeError(f"streamlit did not answer {url}/_stcore/health within {timeout:g} s:\n{log_path.read_text()}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextlib.contextmanager
def streamlit_server(
    log_dir: Path, port: int | None = None, extra_args: tuple[str, ...] = ()
) -> Iterator[StreamlitServer]:
    """Start ``streamlit run app.py`` from the repo root on 127.0.0.1 and stop it afterwards.

    The repo's ``.streamlit/config.toml`` applies (the working directory is the repo); only
    the port and the loopback address are set on the command line.

    :param log_dir: directory for the server log (e.g. the test's ``tmp_path``).
    :param port: TCP port; a free one when None. Never 8501 (a person's ``make run``).
    :param extra_args: more ``streamlit run`` options, e.g. ``("--runner.fastReruns", "false")``.
    """
    port = port or free_port()
    if port == 8501:
        raise ValueError("port 8501 is left for `make run`; use another port")
    log_path = Path(log_dir) / f"streamlit-{port}.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    cmd = [
        sys.executable, "-m", "streamlit", "run", "app.py",
        "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
        *extra_args,
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        process = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, process, log_path, SERVER_START_TIMEOUT)
        yield StreamlitServer(url=url, process=process, log_path=log_path)
    finally:
        _stop(process)


@dataclass
class RequestGuard:
    """Records (and aborts) every request from the browser to a host but the app's own.

    :param allowed_netloc: ``host:port`` of the app's server.
    """

    allowed_netloc: str
    foreign: list[str] = field(default_factory=list)

    def is_allowed(self, url: str) -> bool:
        parts = urlsplit(url)
        return parts.scheme in LOCAL_SCHEMES or parts.netloc == self.allowed_netloc

    def on_route(self, route) -> None:
        url = route.request.url
        if self.is_allowed(url):
            route.continue_()
        else:
            self.foreign.append(url)
            route.abort()

    def on_websocket(self, websocket) -> None:
        if not self.is_allowed(websocket.url):
            self.foreign.append(websocket.url)


@dataclass
class BrowserSession:
    """A Chromium profile pointed at one Streamlit server.

    :param server: the app's server.
    :param context: the Playwright browser context (a fresh persistent profile).
    :param guard: the foreign-request recorder.
    """

    server: StreamlitServer
    context: object
    guard: RequestGuard
    _reported: int = 0

    def open(self, url_path: str = "", *, timeout_ms: float = 60_000):
        """Open a page of the app (``url_path`` as in ``st.Page(url_path=...)``) and wait
        until its script has run once. Returns the Playwright page."""
        page = self.context.new_page()
        page.on("websocket", self.guard.on_websocket)
        page.goto(f"{self.server.url}/{url_path}", wait_until="domcontentloaded", timeout=timeout_ms)
        wait_until_idle(page, timeout_ms=timeout_ms)
        return page

    def assert_offline(self) -> None:
        """Fail the test if the browser tried to reach any host but the app's server
        (each foreign request is reported once, here or at the fixture's teardown)."""
        new = self.guard.foreign[self._reported :]
        self._reported = len(self.guard.foreign)
        if new:
            pytest.fail(
                "the browser tried to reach hosts other than the app's server "
                f"({self.guard.allowed_netloc}):\n" + "\n".join(sorted(set(new)))
            )


def wait_until_idle(page, *, timeout_ms: float = 30_000) -> None:
    """Wait until the app has rendered and no script run is in progress.

    Streamlit shows ``stStatusWidget`` while a script runs; the app container carries
    ``data-test-script-state`` ("running", "notRunning", ...).
    """
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout_ms)
    page.wait_for_selector('[data-testid="stMain"]', timeout=timeout_ms)


@contextlib.contextmanager
def chromium(
    server: StreamlitServer, profile_dir: Path, *, viewport: tuple[int, int] = (1600, 1000)
) -> Iterator[BrowserSession]:
    """Debian's Chromium (headless, through Playwright) in a fresh profile, guarded
    against requests to any host but ``server``. Closed at exit."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (apt-get install chromium)")
    guard = RequestGuard(allowed_netloc=urlsplit(server.url).netloc)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile_dir),
            executable_path=CHROMIUM,
            headless=True,
            args=list(CHROMIUM_ARGS),
            viewport={"width": viewport[0], "height": viewport[1]},
        )
        try:
            context.route("**/*", guard.on_route)
            yield BrowserSession(server=server, context=context, guard=guard)
        finally:
            context.close()


@pytest.fixture
def app_browser(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[BrowserSession]:
    """A fresh ``streamlit run app.py`` and a fresh Chromium for one test, its window
    1600 x 1000 px or as ``@pytest.mark.viewport(width, height)`` says.

    Fails the test (at teardown, if the test did not call ``assert_offline`` itself) when
    the browser asked any other host for anything.
    """
    marker = request.node.get_closest_marker("viewport")
    viewport = tuple(marker.args) if marker else (1600, 1000)
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    with streamlit_server(tmp_path) as server, chromium(server, profile, viewport=viewport) as session:
        yield session
        session.assert_offline()
