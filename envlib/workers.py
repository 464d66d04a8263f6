"""Worker processes that run agents on many beams, away from a server's own process.

A Streamlit server runs every session's script in one process, and its Python runs one
thread at a time (the GIL). While it evaluates five agents on 200 beams (seconds of CPU),
every Playground move of every student waits for it. :class:`AgentWorkers` runs
:func:`envlib.compare.compare` in worker processes instead, on the machine's other core;
the server's thread only waits for the result.

What crosses between the processes is plain data (run folders, seeds) one way and a
:class:`~envlib.compare.Comparison` of DataFrames the other, pickled by
:mod:`concurrent.futures` between our own processes. Agents load in the worker with
:func:`envlib.agent.load_agent`, which never unpickles a run's files.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import multiprocessing.connection
import os
import sys
import threading
import types
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from envlib.agent import Agent, load_agent
from envlib.beamline import BeamlineSimulator
from envlib.compare import AgentRequest, Comparison, ScenarioName, compare

#: Loaded agents a worker keeps (about 0.1 MB each), the least recently used go first.
AGENTS_PER_WORKER = 16


class WorkerLost(RuntimeError):
    """A worker process died while it ran a request, twice (killed, or out of memory)."""


class AgentWorkers:
    """A pool of worker processes for :func:`envlib.compare.compare`.

    Requests queue and run at most ``processes`` at a time, each in a process of its own
    with its own Cheetah beamline and its own loaded agents. If a worker dies during a
    request, the pool starts new workers and runs the waiting requests again, once.

    The workers start at once, in the background: each imports torch, Cheetah and SB3
    (a few seconds) before it takes its first request. They start with ``spawn``, not
    ``fork``: a fork of a server with many threads could copy a lock another thread holds.

    :param processes: worker processes, at least 1.
    :param warm_up: agents each worker loads and runs on one beam as it starts, so that the
        first real request does not pay for loading them and for torch's first calls
        (~0.7 s of a five-agent episode's 1.6 s).
    """

    def __init__(self, processes: int = 1, warm_up: Sequence[AgentRequest] = ()) -> None:
        if processes < 1:
            raise ValueError(f"processes must be at least 1, not {processes}")
        self.processes = processes
        self._warm_up = tuple(warm_up)
        self._lock = threading.Lock()
        self._executor, self._started = self._start()

    def _start(self) -> tuple[ProcessPoolExecutor, list[Future[int]]]:
        context = multiprocessing.get_context("spawn")
        executor = ProcessPoolExecutor(self.processes, mp_context=context, initializer=_start_worker)
        # The pool starts a process whenever a request finds no idle one, until it has
        # `processes`: one request per worker now starts them all, so none starts later.
        with _bare_main_module():
            started = [executor.submit(_ready, self._warm_up) for _ in range(self.processes)]
        return executor, started

    def ready(self, timeout: float | None = None) -> list[int]:
        """Wait until every worker has started (and warmed up); their process ids.

        :raises TimeoutError: not all started within ``timeout`` seconds.
        """
        return [future.result(timeout) for future in self._started]

    def compare(
        self,
        agents: Sequence[AgentRequest],
        seeds: Sequence[int],
        scenario: ScenarioName = "tutorial",
        *,
        keep_traces: bool = True,
    ) -> Comparison:
        """:func:`envlib.compare.compare` in a worker; waits for its turn and the result.

        :param agents: ``(label, run_dir, version)`` per agent, in the order of the result; a
            new version (the model file's modification time) makes a worker load the run again.
        :param seeds: one seed per episode.
        :param scenario: a key of :data:`envlib.compare.SCENARIOS`.
        :param keep_traces: False drops the step-by-step traces in the worker (an
            evaluation needs only per-episode results; 200 seeds of traces are ~1 MB per agent).
        :raises envlib.runs.RunError: an agent's files cannot be loaded.
        :raises WorkerLost: a worker died during this request twice in a row.
        """
        request = (tuple(agents), tuple(int(s) for s in seeds), scenario, keep_traces)
        for attempt in range(2):
            executor = self._executor
            try:
                return executor.submit(_compare, *request).result()
            except BrokenProcessPool as exc:
                self._replace(executor)
                if attempt == 1:
                    raise WorkerLost(
                        "the worker process that runs the agents stopped twice during this request "
                        "(killed, or out of memory?)"
                    ) from exc
        raise AssertionError("unreachable")

    def worker_pids(self) -> list[int]:
        """Process ids of the workers alive now."""
        processes = getattr(self._executor, "_processes", None) or {}
        return [pid for pid, process in list(processes.items()) if process.is_alive()]

    def close(self) -> None:
        """Stop the workers; requests still queued fail."""
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        # Every request that waited on the broken pool lands here; only the first replaces it.
        with self._lock:
            if self._executor is broken:
                broken.shutdown(wait=False, cancel_futures=True)
                self._executor, self._started = self._start()


_main_swap = threading.Lock()


@contextlib.contextmanager
def _bare_main_module() -> Iterator[None]:
    """Let processes started meanwhile skip the parent's ``__main__``.

    A spawned child first imports its parent's main module. In a Streamlit server that is
    the app's script (Streamlit installs each run's module as ``__main__``), so a child
    would run the whole app, and start workers of its own. An empty module has nothing to
    import. The window is the few milliseconds of starting processes.
    """
    with _main_swap:
        main = sys.modules.get("__main__")
        bare = types.ModuleType("__main__")
        sys.modules["__main__"] = bare
        try:
            yield
        finally:
            # A script run that began meanwhile installed its own module: keep that one.
            if sys.modules.get("__main__") is bare and main is not None:
                sys.modules["__main__"] = main


# --- in the worker process ---------------------------------------------------------------
_simulator: BeamlineSimulator | None = None


def _start_worker() -> None:
    global _simulator
    import torch

    torch.set_num_threads(1)  # tiny ops: more threads only add overhead
    _simulator = BeamlineSimulator()
    # A worker holds its own end of the request queue, so it would wait forever for a
    # server killed with SIGKILL: it leaves when the server process is gone.
    threading.Thread(target=_exit_with_parent, name="exit-with-server", daemon=True).start()


def _exit_with_parent() -> None:
    parent = multiprocessing.parent_process()
    if parent is not None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(0)


def _ready(warm_up: tuple[AgentRequest, ...]) -> int:
    if warm_up:
        _compare(warm_up, (0,), "tutorial", False)
    return os.getpid()


@functools.lru_cache(maxsize=AGENTS_PER_WORKER)
def _agent(run_dir: str, version: int) -> Agent:
    return load_agent(run_dir)


def _compare(
    agents: tuple[AgentRequest, ...], seeds: tuple[int, ...], scenario: ScenarioName, keep_traces: bool
) -> Comparison:
    loaded = {label: _agent(run_dir, version) for label, run_dir, version in agents}
    result = compare(loaded, seeds, scenario=scenario, simulator=_simulator)
    if not keep_traces:
        result.traces = result.traces.iloc[:0]
    return result
