"""A student without a browser: Streamlit's own websocket protocol, for many sessions at once.

A browser talks to ``streamlit run`` over one websocket at ``/_stcore/stream``. It sends
``BackMsg`` protobufs (run the page; rerun a fragment with new widget values) and receives
``ForwardMsg`` protobufs (the page's elements, then ``script_finished``). :class:`StudentClient`
sends and reads the same messages, so one process can stand for a room of students on the
real server without a Chromium per student. What a browser adds on top (drawing the page)
is measured by the browser tests and ``bench/playground_latency.py``.

    async with StudentClient.connect(server.url) as student:
        page = await student.open_page()
        q1 = student.slider("pg.magnet.Q1")
        run = await student.set_slider(q1, 25.0)
        run.table()  # the beam table as a DataFrame
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

    def table(self, index: int = 0) -> pd.DataFrame:
        """The ``index``-th ``st.table`` of the run, decoded from its Arrow bytes."""
        data = self.of_kind("table")[index].table.arrow_data.data
        return pa.ipc.open_stream(data).read_pandas()


class StudentClient:
    """One browser session of the app, spoken to over its websocket. Not thread-safe."""

    def __init__(self, websocket: websockets.ClientConnection) -> None:
        self._ws = websocket
        self.sliders: dict[str, Slider] = {}

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, url: str) -> AsyncIterator[StudentClient]:
        """A new session on the server at ``url`` (``http://host:port``); closed on exit."""
        ws_url = url.replace("http://", "ws://", 1).rstrip("/") + "/_stcore/stream"
        async with websockets.connect(ws_url, max_size=None, open_timeout=30) as websocket:
            yield cls(websocket)

    async def open_page(self, page_script_hash: str = "") -> ScriptRun:
        """Run the page as a browser does when it opens it ('' = the app's default page)."""
        message = BackMsg()
        message.rerun_script.query_string = ""
        message.rerun_script.page_script_hash = page_script_hash
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
        message = BackMsg()
        message.rerun_script.fragment_id = slider.fragment_id
        state = message.rerun_script.widget_states.widgets.add()
        state.id = slider.id
        state.double_array_value.data.append(float(value))  # a single-value slider is an array of one
        return await self._run(message)

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
                elif kind == "script_finished":
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
