"""Agents run in worker processes: the same results as in this process, errors that say what
broke, a killed worker replaced without losing the request, no workers left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from envlib.agent import load_agent
from envlib.compare import available_agents, compare
from envlib.evaluation import evaluation_seeds
from envlib.runs import RunError
from envlib.workers import AgentWorkers

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def workers():
    pool = AgentWorkers(1)
    yield pool
    pool.close()


@pytest.fixture(scope="module")
def shipped() -> tuple[tuple[str, str, int], ...]:
    """The shipped agents as ``(label, run_dir, version)`` requests."""
    catalog = available_agents(ROOT / "no-runs-here")
    return tuple(c.request for c in catalog.choices)


def test_a_comparison_in_a_worker_equals_the_same_one_in_this_process(workers, shipped):
    request = shipped[3:5]
    seeds = (11, 12, 13)
    remote = workers.compare(request, seeds)
    local = compare({label: load_agent(run_dir) for label, run_dir, _ in request}, seeds)
    assert remote.agents == local.agents == [label for label, _, _ in request]
    pd.testing.assert_frame_equal(remote.per_episode, local.per_episode)
    pd.testing.assert_frame_equal(remote.traces, local.traces)
    pd.testing.assert_frame_equal(remote.flags, local.flags)


def test_without_traces_only_the_per_episode_results_come_back(workers, shipped):
    result = workers.compare(shipped[:2], (21, 22), keep_traces=False)
    assert result.traces.empty
    assert len(result.per_episode) == 4


def test_the_calling_process_loads_and_runs_no_agent_of_an_evaluation(workers, shipped, agents_only_in_workers):
    agents_only_in_workers()
    result = workers.compare(shipped, tuple(evaluation_seeds(50)), keep_traces=False)
    assert len(result.per_episode) == 50 * len(shipped)
    assert (result.per_episode["length"] > 0).all()


def test_an_agent_that_cannot_be_loaded_raises_run_error_naming_its_file(workers, tmp_path):
    with pytest.raises(RunError) as caught:
        workers.compare([("gone", str(tmp_path / "gone"), 0)], (1,))
    assert caught.value.path == tmp_path / "gone" / "config.yaml"
    assert "missing" in caught.value.problem


def _cpu_ticks(pid: int) -> int:
    """User + system CPU time of process ``pid`` so far, in clock ticks (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of the line


def test_a_worker_killed_during_a_request_is_replaced_and_the_request_still_answers(shipped):
    pool = AgentWorkers(1)
    try:
        (first,) = pool.ready(timeout=120)
        seeds = tuple(evaluation_seeds(200))
        answer: dict[str, object] = {}

        def ask() -> None:
            try:
                answer["result"] = pool.compare(shipped, seeds, keep_traces=False)
            except BaseException as exc:  # shown by the test, not lost in the thread
                answer["error"] = exc

        idle = _cpu_ticks(first)  # a started worker waits for requests without using the CPU
        asking = threading.Thread(target=ask)
        asking.start()
        # Busy with the request: 6 agents x 200 episodes take seconds of its CPU, loading included.
        busy = idle + os.sysconf("SC_CLK_TCK") // 5
        deadline = time.monotonic() + 120
        while _cpu_ticks(first) < busy and not answer and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not answer, f"the request ended ({sorted(answer)}) before the worker could be killed during it"
        assert _cpu_ticks(first) >= busy, "the worker never started on the request"
        os.kill(first, signal.SIGKILL)
        asking.join(timeout=180)
        assert not asking.is_alive(), "the request did not answer within 180 s of its worker's death"
        if "error" in answer:
            raise AssertionError("the request failed after its worker was killed") from answer["error"]
        assert len(answer["result"].per_episode) == 200 * len(shipped)
        # The pool's only worker died: one alive now means the pool was replaced (the retry path).
        assert pool.worker_pids() and first not in pool.worker_pids()
    finally:
        pool.close()


def test_workers_leave_when_the_server_process_is_killed(tmp_path):
    server = textwrap.dedent(
        """
        import sys, time
        from envlib.workers import AgentWorkers

        if __name__ == "__main__":
            pool = AgentWorkers(2)
            print(*pool.ready(timeout=120), flush=True)
            time.sleep(600)
        """
    )
    script = tmp_path / "server.py"
    script.write_text(server)
    process = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        pids = [int(p) for p in process.stdout.readline().split()]
        assert len(pids) == 2 and all(_alive(p) for p in pids)
    finally:
        process.kill()
        process.wait()
    deadline = time.monotonic() + 20
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in pids), "a worker outlived the killed server"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by init here) counts as gone.
    stat = Path(f"/proc/{pid}/stat")
    status = stat.read_text().split(") ")[-1][:1] if stat.exists() else "X"
    return status != "Z"


def test_processes_must_be_at_least_one():
    with pytest.raises(ValueError, match="at least 1"):
        AgentWorkers(0)


def test_workers_do_not_run_the_script_streamlit_installed_as_main(tmp_path, monkeypatch):
    """Streamlit runs the app as ``__main__``; a spawned child would import it and run the app."""
    import types

    marker = tmp_path / "ran"
    script = tmp_path / "app.py"
    script.write_text(f"open({str(marker)!r}, 'w').close()\n")
    fake_main = types.ModuleType("__main__")
    fake_main.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", fake_main)
    pool = AgentWorkers(1)
    try:
        assert pool.ready(timeout=120)
        assert sys.modules["__main__"] is fake_main, "the script's module is back as __main__"
    finally:
        pool.close()
    assert not marker.exists(), "a worker ran the app's script"


def test_workers_warm_up_by_running_the_given_agents_as_they_start(tmp_path):
    pool = AgentWorkers(1, warm_up=[("gone", str(tmp_path / "gone"), 0)])
    try:
        with pytest.raises(RunError, match="gone"):
            pool.ready(timeout=120)
    finally:
        pool.close()
