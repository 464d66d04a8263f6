"""A student without a browser: Streamlit's own websocket protocol, for many sessions at once.

A browser talks to ``streamlit run`` over one websocket at ``/_stcore/stream``. It sends
``BackMsg`` protobufs (run the page; rerun a fragment with new widget values) and receives
``ForwardMsg`` protobufs (the page's elements, then ``script_finished``). :class:`StudentClient`
sends and reads the same messages, so one process can stand for a room of students on the
real server without a Chromium per student. What a browser adds on top (drawing the page)
is measured by the browser tests and ``bench/playground_latency.py``.

    async with StudentClient.connect(server.url) as student:
        page = await student.open_page()  # the app's default page, the Playground
        run = await student.set_slider(student.slider("pg.magnet.Q1"), 25.0)
        run.table()  # the beam table as a DataFrame
        await student.open_page("compare")
        await student.click("Run side by side")
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa
import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.Element_pb2 import Element
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

#: Seconds a run may take before the client gives up (a cold first run imports torch and Cheetah).
RUN_TIMEOUT_S = 120.0
_FINISHED = {ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY}


class AppError(RuntimeError):
    """The app showed an exception, or a run did not finish normally."""


@dataclass(frozen=True)
class Slider:
    """A slider on the page: its widget id and the fragment it lives in ('' when none)."""

    id: str
    fragment_id: str


@dataclass
class ScriptRun:
    """What one run of the page (or of a fragment) sent: its elements in order, and its time.

    :param seconds: from sending the request to ``script_finished``, wall clock.
    :param elements: ``(kind, element, fragment_id)`` per new element, e.g. ``("slider", ...)``.
    :param messages: ForwardMsgs received, ``script_finished`` included.
    """

    seconds: float
    elements: list[tuple[str, Element, str]] = field(default_factory=list)
    messages: int = 0

    def of_kind(self, kind: str) -> list[Element]:
        return [element for k, element, _ in self.elements if k == kind]

    def table(self, index: int = 0, kind: str = "table") -> pd.DataFrame:
        """The ``index``-th ``st.table`` (or ``st.dataframe``: ``kind="dataframe"``) of the run."""
        element = self.of_kind(kind)[index]
        return pa.ipc.open_stream(getattr(element, kind).arrow_data.data).read_pandas()


class StudentClient:
    """One browser session of the app, spoken to over its websocket. Not thread-safe."""

    def __init__(self, websocket: websockets.ClientConnection) -> None:
        self._ws = websocket
        self.sliders: dict[str, Slider] = {}
        #: Buttons and number inputs by label, as last drawn: (kind, widget id, fragment id).
        self.inputs: dict[str, tuple[str, str, str]] = {}
        #: The app's pages: URL path -> page script hash (from Streamlit's navigation message).
        self.pages: dict[str, str] = {}
        self._page_hash = ""

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, url: str) -> AsyncIterator[StudentClient]:
        """A new session on the server at ``url`` (``http://host:port``); closed on exit."""
        ws_url = url.replace("http://", "ws://", 1).rstrip("/") + "/_stcore/stream"
        async with websockets.connect(ws_url, max_size=None, open_timeout=30) as websocket:
            yield cls(websocket)

    async def open_page(self, url_path: str = "") -> ScriptRun:
        """Open a page as a browser does: ``""`` is the app's default page, else its URL path."""
        if url_path and not self.pages:
            await self.open_page()  # the first run tells the pages
        if url_path and url_path not in self.pages:
            raise KeyError(f"no page at /{url_path}; the app has {sorted(self.pages)}")
        self._page_hash = self.pages[url_path] if url_path else ""
        return await self._run(self._request())

    async def click(self, label: str) -> ScriptRun:
        """Press the button whose label starts with ``label``, as last drawn (a button in a
        fragment reruns that fragment, as in the browser)."""
        buttons = [(name, wid, frag) for name, (kind, wid, frag) in self.inputs.items() if kind == "button"]
        matches = [(wid, frag) for name, wid, frag in buttons if name.startswith(label)]
        if not matches:
            raise KeyError(f"no button {label!r} on the page")
        message = self._request()
        message.rerun_script.fragment_id = matches[0][1]
        state = message.rerun_script.widget_states.widgets.add()
        state.id, state.trigger_value = matches[0][0], True
        return await self._run(message)

    async def set_number(self, label: str, value: int) -> ScriptRun:
        """Type a whole number into the number input labelled ``label``."""
        kind, widget_id, fragment_id = self.inputs.get(label, ("", "", ""))
        if kind != "number_input":
            raise KeyError(f"no number input {label!r} on the page")
        message = self._request()
        message.rerun_script.fragment_id = fragment_id
        state = message.rerun_script.widget_states.widgets.add()
        state.id, state.int_value = widget_id, int(value)
        return await self._run(message)

    def fragment_of(self, run: ScriptRun, kind: str) -> str:
        """The fragment id of the first element of ``kind`` in ``run`` ('' when outside any)."""
        for k, _, fragment_id in run.elements:
            if k == kind:
                return fragment_id
        raise KeyError(f"no {kind} in that run; it drew {[k for k, _, _ in run.elements]}")

    async def rerun_fragment(self, fragment_id: str) -> ScriptRun:
        """Rerun one fragment as a browser does for ``st.fragment(run_every=...)``."""
        message = self._request()
        message.rerun_script.fragment_id = fragment_id
        message.rerun_script.is_auto_rerun = True
        return await self._run(message)

    def slider(self, key: str) -> Slider:
        """The slider whose widget key is ``key`` (e.g. ``"pg.magnet.Q1"``), as last drawn."""
        try:
            return self.sliders[key]
        except KeyError:
            raise KeyError(f"no slider with key {key!r} on the page; seen: {sorted(self.sliders)}") from None

    async def set_slider(self, slider: Slider, value: float) -> ScriptRun:
        """Move ``slider`` to ``value``: rerun its fragment (or the page), as the browser does.

        A browser sends every widget's state; this sends the moved slider's only, and the
        server keeps the others' last values.
        """
        message = self._request()
        message.rerun_script.fragment_id = slider.fragment_id
        state = message.rerun_script.widget_states.widgets.add()
        state.id = slider.id
        state.double_array_value.data.append(float(value))  # a single-value slider is an array of one
        return await self._run(message)

    def _request(self) -> BackMsg:
        """A rerun request of the page this session is on."""
        message = BackMsg()
        message.rerun_script.query_string = ""
        message.rerun_script.page_script_hash = self._page_hash
        return message

    async def _run(self, message: BackMsg) -> ScriptRun:
        start = time.perf_counter()
        await self._ws.send(message.SerializeToString())
        run = ScriptRun(seconds=0.0)
        async with asyncio.timeout(RUN_TIMEOUT_S):
            while True:
                received = ForwardMsg()
                received.ParseFromString(await self._ws.recv())
                run.messages += 1
                kind = received.WhichOneof("type")
                if kind == "delta" and received.delta.WhichOneof("type") == "new_element":
                    self._record(run, received.delta.new_element, received.delta.fragment_id)
                elif kind == "navigation":
                    self.pages = {page.url_pathname: page.page_script_hash for page in received.navigation.app_pages}
                elif kind == "script_finished":
                    if received.script_finished == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                        continue  # st.rerun(): the new run follows on the same socket
                    run.seconds = time.perf_counter() - start
                    if received.script_finished not in _FINISHED:
                        status = ForwardMsg.ScriptFinishedStatus.Name(received.script_finished)
                        raise AppError(f"the run ended with {status}")
                    return run

    def _record(self, run: ScriptRun, element: Element, fragment_id: str) -> None:
        kind = element.WhichOneof("type")
        run.elements.append((kind, element, fragment_id))
        if kind == "exception":
            raise AppError(f"the app showed an exception: {element.exception.type}: {element.exception.message}")
        if kind == "slider":
            key = element.slider.id.rsplit("-", 1)[-1]  # widget ids end in "-<user key>"
            self.sliders[key] = Slider(element.slider.id, fragment_id)
        elif kind in ("button", "number_input"):
            widget = getattr(element, kind)
            self.inputs[widget.label] = (kind, widget.id, fragment_id)
