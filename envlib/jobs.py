"""Background training jobs: a queue, the processes that train, and job records on disk.

A :class:`JobManager` takes validated run configs from many users, keeps them in a queue,
starts at most ``max_concurrent`` trainings at a time through a :class:`TrainingBackend`,
watches them, and records every job in ``RUNS_DIR/<job id>/job.json`` (written atomically),
next to the run files the training writes (:mod:`envlib.runs`). The job id is the run id.

| file in the run folder | written by | content |
|---|---|---|
| ``job.json`` | the manager | the :class:`Job` record: status, owner, times, error, log tail |
| ``job.yaml`` | the manager | the config as submitted (the training writes ``config.yaml``) |
| ``train.log`` | the training process | its stdout and stderr |
| everything else | the training process | see :mod:`envlib.runs` |

Job life::

    queued -> running -> finished | stopped | failed
       |         `-----> interrupted   (process gone while no manager watched it)
       `-> cancelled                   (stopped before it started)

The training runs in a separate OS process (``python -m envlib.train``) in its own session,
so reruns, closed tabs or a restart of the server do not disturb it. A new manager on the
same folder reads every ``job.json`` back: a running job whose process still lives is
watched again, one whose process is gone takes the run's last ``progress.json`` status, or
``interrupted`` if that says it was still running. A ``job.json`` it cannot read is kept by
run id with the reason (:meth:`JobManager.unreadable`), for an instructor to delete.

The place where a job is started is the small :class:`TrainingBackend` interface (submit,
status, stop, list), shaped like Ray's job submission API (``submit_job``,
``get_job_status``, ``stop_job``, ``list_jobs``): :class:`LocalProcessBackend` starts local
processes; a cluster backend would submit the same command line to the cluster and needs
the runs folder on a file system both see. Nothing else changes.

.. warning::
    One manager per runs folder: two servers sharing a folder would each start its queue.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from envlib.config import ConfigError, RunConfig
from envlib.names import display_name as run_display_name
from envlib.names import generate_run_id
from envlib.runs import (
    CONFIG_FILE,
    MODEL_FILE,
    NORMALIZER_FILE,
    PROGRESS_FILE,
    Progress,
    RunError,
    is_valid_run_id,
    read_progress,
    request_stop,
    run_path,
    write_atomic,
    wrong_json_type,
)

log = logging.getLogger(__name__)

JOB_FILE = "job.json"
JOB_CONFIG_FILE = "job.yaml"
#: A job record is a few KB (its log tail at most 16 KB); a bigger ``job.json`` is not read.
MAX_JOB_FILE_BYTES = 256 * 1024
LOG_FILE = "train.log"

JobStatus = Literal["queued", "running", "finished", "stopped", "failed", "interrupted", "cancelled"]
#: Statuses a job never leaves.
TERMINAL_STATUSES: tuple[str, ...] = ("finished", "stopped", "failed", "interrupted", "cancelled")
ACTIVE_STATUSES: tuple[str, ...] = ("queued", "running")

#: The repository root: the training process runs ``-m envlib.train`` from here.
REPO_ROOT = Path(__file__).resolve().parent.parent
#: Where runs live unless ``ARES_RUNS_DIR`` says otherwise (git-ignored).
DEFAULT_RUNS_DIR = REPO_ROOT / "runs"


class JobError(Exception):
    """A job request the manager refuses (unknown job, not yours, queue full, still running)."""


# --- records --------------------------------------------------------------------------------
@dataclass
class Job:
    """What the manager knows about one training job (the content of ``job.json``).

    :param job_id: the job's id, which is also its run id and folder name.
    :param status: see the module docstring.
    :param owner_hash: SHA-256 of the submitting session's owner token (the token itself is
        never stored).
    :param display_name: the name people see (the config's ``display_name`` or one made
        from the id).
    :param total_timesteps: steps the job trains for, after the server's cap.
    :param submitted: unix time of submission, s.
    :param started: unix time its process started, or None.
    :param ended: unix time it reached a terminal status, or None.
    :param backend: name of the backend that runs it.
    :param handle: the backend's id of the running process, or None before it starts.
    :param exit_code: the process's exit code (negative: killed by that signal), if known.
    :param error: why it failed, was interrupted or stopped early, or None.
    :param log_tail: the last lines of ``train.log`` when it failed, else None.
    :param stop_requested: unix time someone asked it to stop, or None.
    :param stop_reason: who or what asked it to stop.
    :param position: place in the queue (1 = next) while queued; not stored.
    """

    job_id: str
    status: JobStatus
    owner_hash: str
    display_name: str
    total_timesteps: int
    submitted: float
    started: float | None = None
    ended: float | None = None
    backend: str = "local"
    handle: str | None = None
    exit_code: int | None = None
    error: str | None = None
    log_tail: str | None = None
    stop_requested: float | None = None
    stop_reason: str | None = None
    position: int | None = field(default=None, compare=False)

    @property
    def active(self) -> bool:
        """True while queued or running."""
        return self.status in ACTIVE_STATUSES

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        del data["position"]
        return data

    @classmethod
    def from_dict(cls, data: Any) -> Job:
        """Build from the JSON of ``job.json``; ``ValueError`` if it is not a job record."""
        if not isinstance(data, dict):
            raise ValueError("a job record must be a JSON object")
        names = {f.name for f in dataclasses.fields(cls)} - {"position"}
        required = {"job_id", "status", "owner_hash", "display_name", "total_timesteps", "submitted"}
        missing = required - set(data)
        if missing:
            raise ValueError(f"missing key(s): {', '.join(sorted(missing))}")
        wrong = wrong_json_type(data, _JOB_TYPES)
        if wrong:
            raise ValueError(wrong)
        job = cls(**{k: v for k, v in data.items() if k in names})
        if job.status not in ACTIVE_STATUSES + TERMINAL_STATUSES:
            raise ValueError(f"unknown status {job.status[:40]!r}")
        if not is_valid_run_id(job.job_id):
            raise ValueError(f"invalid job id {job.job_id[:40]!r}")
        return job


#: The JSON types of each stored :class:`Job` field (``None``: it may be null); a missing
#: optional field takes its default.
_JOB_TYPES: dict[str, tuple[type | None, ...]] = {
    "job_id": (str,), "status": (str,), "owner_hash": (str,), "display_name": (str,),
    "total_timesteps": (int,), "submitted": (int, float), "started": (int, float, None),
    "ended": (int, float, None), "backend": (str,), "handle": (str, None), "exit_code": (int, None),
    "error": (str, None), "log_tail": (str, None), "stop_requested": (int, float, None),
    "stop_reason": (str, None),
}  # fmt: skip


def owner_hash(token: str) -> str:
    """The stored form of an owner token (SHA-256 hex), so ``job.json`` does not reveal it."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


#: Environment variables a host sets -> the :class:`JobLimits` field each one sets.
ENVIRONMENT_LIMITS = {
    "ARES_MAX_CONCURRENT_TRAININGS": "max_concurrent",
    "ARES_MAX_TIMESTEPS": "max_total_timesteps",
    "ARES_MAX_JOBS_PER_USER": "max_active_per_owner",
    "ARES_MAX_RUNTIME_S": "max_runtime_s",
}


@dataclass(frozen=True)
class JobLimits:
    """What one job and one user may ask of the server.

    :param max_concurrent: trainings running at the same time (one per spare CPU core).
    :param max_total_timesteps: cap on ``train.total_timesteps`` of one job.
    :param max_rollout: cap on ``n_envs * n_steps`` (memory of one rollout).
    :param max_net_layers: cap on the number of hidden layers in ``net_arch``.
    :param max_runtime_s: a running job is asked to stop after this many seconds.
    :param max_active_per_owner: queued plus running jobs of one owner.
    :param max_queued: jobs waiting in the queue, all owners together.
    :param stop_timeout_s: a job that has not stopped this long after a stop request is killed.
    """

    max_concurrent: int = 1
    max_total_timesteps: int = 1_000_000
    max_rollout: int = 100_000
    max_net_layers: int = 8
    max_runtime_s: float = 3600.0
    max_active_per_owner: int = 2
    max_queued: int = 100
    stop_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if not getattr(self, f.name) > 0:
                raise ValueError(f"JobLimits.{f.name} must be positive, got {getattr(self, f.name)!r}")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> JobLimits:
        """The limits a host set with ``ARES_*`` variables (see :meth:`JobManager.from_environment`).

        :raises ValueError: naming the variable, if its value is not a positive number.
        """
        env = os.environ if environ is None else environ
        defaults = cls()
        values: dict[str, int | float] = {}
        for name, field_name in ENVIRONMENT_LIMITS.items():
            if name not in env:
                continue
            kind = type(getattr(defaults, field_name))  # int, or float for seconds
            try:
                value = kind(env[name])
            except ValueError:
                value = 0
            if not value > 0:
                unit = "a positive number of seconds" if kind is float else "a whole number of at least 1"
                raise ValueError(f"{name} must be {unit}, not {env[name]!r}")
            values[field_name] = value
        return cls(**values)

    def check(self, config: RunConfig) -> None:
        """Raise :class:`ConfigError` naming the key if ``config`` asks for more than allowed."""
        train = config.train
        if train.total_timesteps > self.max_total_timesteps:
            raise ConfigError(
                "train.total_timesteps",
                f"must be at most {self.max_total_timesteps:,} on this server, got {train.total_timesteps:,}",
            )
        if train.n_envs * train.n_steps > self.max_rollout:
            raise ConfigError(
                "train.n_steps",
                f"n_envs * n_steps must be at most {self.max_rollout:,} on this server, "
                f"got {train.n_envs} * {train.n_steps} = {train.n_envs * train.n_steps:,}",
            )
        if len(train.net_arch) > self.max_net_layers:
            raise ConfigError(
                "train.net_arch",
                f"may have at most {self.max_net_layers} layers on this server, got {len(train.net_arch)}",
            )


# --- backends -------------------------------------------------------------------------------
@dataclass(frozen=True)
class LaunchRequest:
    """Everything a backend needs to start one training.

    :param job_id: the job (and run) id.
    :param runs_dir: the runs folder; the run goes to ``runs_dir / job_id``.
    :param config_path: the YAML config to train.
    :param max_timesteps: cap passed to the training command (``--max-timesteps``).
    :param log_path: where the process's stdout and stderr go.
    """

    job_id: str
    runs_dir: Path
    config_path: Path
    max_timesteps: int
    log_path: Path

    def command(self, python: str = sys.executable) -> list[str]:
        """The training command line (the CLI of :mod:`envlib.train`)."""
        return [
            python, "-m", "envlib.train", str(self.config_path),
            "--out", str(self.runs_dir), "--run-id", self.job_id,
            "--max-timesteps", str(self.max_timesteps), "--no-progress",
        ]  # fmt: skip


@dataclass(frozen=True)
class BackendStatus:
    """What a backend knows about one handle.

    :param state: ``running``; ``exited`` with a known ``exit_code``; or ``gone`` (ended,
        but not as a child of this backend, so the exit code is unknown).
    :param exit_code: the exit code when ``exited``; negative: killed by that signal.
    """

    state: Literal["running", "exited", "gone"]
    exit_code: int | None = None


class TrainingBackend(ABC):
    """Where trainings run. Handles are the backend's own strings, stored in ``job.json``.

    A backend must recognise a handle written by an earlier instance of itself (the server
    restarted), at least well enough to say ``running`` or ``gone``.
    """

    name: ClassVar[str]

    @abstractmethod
    def submit(self, request: LaunchRequest) -> str:
        """Start the training; return its handle. Raises ``OSError`` if it cannot start."""

    @abstractmethod
    def status(self, handle: str) -> BackendStatus:
        """The state of the training behind ``handle``."""

    @abstractmethod
    def stop(self, handle: str, force: bool = False) -> None:
        """Ask it to stop (it saves the model reached so far); ``force`` kills it at once.

        The manager asks a job to stop through its run folder's ``STOP`` file and calls
        this with ``force=True`` only for a job that did not stop in time.
        """

    @abstractmethod
    def list(self) -> list[str]:
        """Handles of the trainings this backend knows to be running."""

    def set_exit_callback(self, callback: Any) -> None:  # noqa: B027 - optional hook
        """Called with no arguments when a training ends, so the manager reacts at once."""


def _proc_start_ticks(pid: int) -> int | None:
    """Start time of process ``pid`` in clock ticks since boot, None if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) "
    if fields[0] in ("Z", "X"):  # zombie or dead: the process has ended
        return None
    return int(fields[19])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LocalProcessBackend(TrainingBackend):
    """Trains in a local OS process: ``python -m envlib.train`` in a new session.

    stdout and stderr go to the request's log file. A reaper thread waits for each process,
    so none is left a zombie, and records its exit code. A handle is ``"pid:start"``, the
    process id and its start time from ``/proc``, so a recycled pid is never mistaken for
    the training after a restart.

    :param python: the interpreter that trains.
    :param niceness: added to the training process's nice value, so the web server stays
        responsive while it computes (0 to leave it).
    :param threads: value of ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` in the process.
    """

    name = "local"

    def __init__(self, python: str = sys.executable, niceness: int = 5, threads: int = 1) -> None:
        self.python = python
        self.niceness = niceness
        self.threads = threads
        self._lock = threading.Lock()
        self._children: dict[str, subprocess.Popen] = {}
        self._exit_codes: dict[str, int] = {}
        self._on_exit: Any = None

    def set_exit_callback(self, callback: Any) -> None:
        self._on_exit = callback

    def submit(self, request: LaunchRequest) -> str:
        env = dict(os.environ)
        env.update(
            OMP_NUM_THREADS=str(self.threads),
            MKL_NUM_THREADS=str(self.threads),
            PYTHONUNBUFFERED="1",
            PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])),
        )
        with open(request.log_path, "ab") as log_file:
            proc = subprocess.Popen(
                request.command(self.python),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=REPO_ROOT,
                env=env,
                close_fds=True,
                start_new_session=True,  # own process group: Ctrl-C on the server does not reach it
            )
        if self.niceness:
            try:
                os.setpriority(os.PRIO_PROCESS, proc.pid, self.niceness)
            except OSError:
                pass  # it may already have ended; the reaper will tell
        start = _proc_start_ticks(proc.pid)
        handle = f"{proc.pid}:{start if start is not None else 0}"
        with self._lock:
            self._children[handle] = proc
        threading.Thread(target=self._reap, args=(handle, proc), name=f"reap-{proc.pid}", daemon=True).start()
        return handle

    def _reap(self, handle: str, proc: subprocess.Popen) -> None:
        code = proc.wait()
        with self._lock:
            self._exit_codes[handle] = code
            self._children.pop(handle, None)
        if self._on_exit is not None:
            self._on_exit()

    @staticmethod
    def _parse(handle: str) -> tuple[int, int]:
        pid, _, start = handle.partition(":")
        return int(pid), int(start or 0)

    def _is_ours_and_alive(self, handle: str) -> bool:
        pid, start = self._parse(handle)
        if Path("/proc").is_dir():
            ticks = _proc_start_ticks(pid)
            return ticks is not None and (start == 0 or ticks == start)
        return _pid_alive(pid)

    def status(self, handle: str) -> BackendStatus:
        with self._lock:
            if handle in self._exit_codes:
                return BackendStatus("exited", self._exit_codes[handle])
            if handle in self._children:
                return BackendStatus("running")
        # A process started by an earlier instance (before a restart): not our child.
        return BackendStatus("running" if self._is_ours_and_alive(handle) else "gone")

    def stop(self, handle: str, force: bool = False) -> None:
        if self.status(handle).state != "running":
            return
        pid, _ = self._parse(handle)
        try:
            # The training's signal handler ends it at the next step and saves the model.
            os.killpg(pid, signal.SIGKILL if force else signal.SIGTERM)
        except ProcessLookupError:
            pass

    def list(self) -> list[str]:
        with self._lock:
            return list(self._children)


# --- the manager ----------------------------------------------------------------------------
class JobManager:
    """The queue and the records of all training jobs in one runs folder. Thread-safe.

    :param runs_dir: the runs folder (created if missing).
    :param backend: where trainings run; :class:`LocalProcessBackend` by default.
    :param limits: caps per job and per user.
    :param poll_s: seconds between two checks of the running jobs by the watcher thread.
    :param watch: start the watcher thread (False: call :meth:`refresh` yourself).
    """

    def __init__(
        self,
        runs_dir: str | Path,
        backend: TrainingBackend | None = None,
        limits: JobLimits | None = None,
        poll_s: float = 1.0,
        watch: bool = True,
    ) -> None:
        self.runs_dir = Path(runs_dir).resolve()
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.backend = backend if backend is not None else LocalProcessBackend()
        self.limits = limits if limits is not None else JobLimits()
        self.poll_s = poll_s
        self._lock = threading.RLock()
        self._jobs: dict[str, Job] = {}
        self._unreadable: dict[str, str] = {}  # run id -> why its job.json cannot be read
        self._wake = threading.Event()
        self._closed = threading.Event()
        self.backend.set_exit_callback(self._wake.set)
        self._recover()
        self.refresh()
        self._thread: threading.Thread | None = None
        if watch:
            self._thread = threading.Thread(target=self._watch, name="job-manager", daemon=True)
            self._thread.start()

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> JobManager:
        """A manager configured by environment variables (defaults in brackets).

        ``ARES_RUNS_DIR`` (``runs/`` in the repository), ``ARES_MAX_CONCURRENT_TRAININGS`` (1),
        ``ARES_MAX_TIMESTEPS`` (1,000,000), ``ARES_MAX_JOBS_PER_USER`` (2),
        ``ARES_MAX_RUNTIME_S`` (3600).
        """
        env = os.environ if environ is None else environ
        return cls(runs_dir_from_environment(env), limits=JobLimits.from_environment(env))

    # -- public API ---------------------------------------------------------------------------
    def submit(self, config: RunConfig | Mapping[str, Any], owner: str) -> Job:
        """Validate ``config``, write its job record and queue it (it starts when a slot is free).

        :param config: a run config, or plain data validated by :meth:`RunConfig.from_dict`.
        :param owner: the submitting session's token; only it may stop or delete the job.
        :return: a copy of the new job record.
        :raises ConfigError: the config is invalid or exceeds :attr:`limits` (the key is named).
        :raises JobError: the owner or the queue has too many jobs.
        """
        if not isinstance(config, RunConfig):
            config = RunConfig.from_dict(dict(config))
        self.limits.check(config)
        with self._lock:
            self._check_open()
            mine = [j for j in self._jobs.values() if j.active and j.owner_hash == owner_hash(owner)]
            if len(mine) >= self.limits.max_active_per_owner:
                raise JobError(
                    f"you already have {len(mine)} job(s) queued or running; the limit is "
                    f"{self.limits.max_active_per_owner}. Stop one or wait for it to finish."
                )
            if sum(j.status == "queued" for j in self._jobs.values()) >= self.limits.max_queued:
                raise JobError(f"the queue is full ({self.limits.max_queued} jobs); try again later")
            taken = {p.name for p in self.runs_dir.iterdir()} | set(self._jobs)
            job_id = generate_run_id(taken)
            run_dir = run_path(self.runs_dir, job_id)
            run_dir.mkdir()
            write_atomic(run_dir / JOB_CONFIG_FILE, config.to_yaml())
            job = Job(
                job_id=job_id,
                status="queued",
                owner_hash=owner_hash(owner),
                display_name=config.display_name or run_display_name(job_id),
                total_timesteps=config.train.total_timesteps,
                submitted=time.time(),
                backend=self.backend.name,
            )
            self._jobs[job_id] = job
            self._save(job)
            self._schedule()
            return self._copy(job)

    def status(self, job_id: str) -> Job:
        """A copy of the job's record (with its queue position); :class:`JobError` if unknown."""
        with self._lock:
            return self._copy(self._get(job_id))

    def list(self) -> list[Job]:
        """Copies of all job records, oldest first, queued ones with their position."""
        with self._lock:
            return [self._copy(j) for j in sorted(self._jobs.values(), key=lambda j: j.submitted)]

    def unreadable(self) -> dict[str, str]:
        """Run id -> why its ``job.json`` could not be read back at start-up, sorted by id.

        These jobs are not in :meth:`list`: who started them is unknown, so only an
        instructor may :meth:`delete` them.
        """
        with self._lock:
            return dict(sorted(self._unreadable.items()))

    def stop(self, job_id: str, owner: str, instructor: bool = False) -> Job:
        """Stop a job: a queued one is cancelled; a running one saves its model and stops.

        :param owner: the caller's owner token.
        :param instructor: the caller may stop anyone's job.
        :raises JobError: unknown job, or not the caller's.
        """
        with self._lock:
            job = self._get(job_id)
            self._check_may_control(job, owner, instructor)
            if job.status == "queued":
                self._end(job, "cancelled", error="cancelled before it started")
            elif job.status == "running":
                by = "its owner" if self.owns(job, owner) else "an instructor"
                self._request_stop(job, f"stopped by {by}")
            return self._copy(job)

    def delete(self, job_id: str, owner: str, instructor: bool = False) -> None:
        """Delete a job that has ended, with its whole run folder.

        A job whose record could not be read (:meth:`unreadable`) may be deleted by an
        instructor only, and not while its training process still runs.

        :raises JobError: unknown job, not the caller's, or still queued or running.
        """
        with self._lock:
            if job_id in self._unreadable:
                self._delete_unreadable(job_id, instructor)
                return
            job = self._get(job_id)
            self._check_may_control(job, owner, instructor)
            if job.active:
                raise JobError(f"job {job.display_name!r} is {job.status}; stop it before deleting it")
            self._remove_folder(job_id, job.display_name)
            del self._jobs[job_id]

    def run_dir(self, job_id: str) -> Path:
        """The run folder of a job (where :mod:`envlib.runs` reads its files)."""
        with self._lock:
            self._get(job_id)
        # The id was checked by run_path when the job was made or recovered; no syscalls here,
        # since every session's refresh asks for every job's folder.
        return self.runs_dir / job_id

    @staticmethod
    def owns(job: Job, owner: str) -> bool:
        """True if ``owner`` is the token that submitted ``job``."""
        return job.owner_hash == owner_hash(owner)

    def refresh(self) -> None:
        """Check the running jobs, record those that ended, enforce limits, start queued ones."""
        with self._lock:
            now = time.time()
            for job in list(self._jobs.values()):
                if job.status != "running" or job.handle is None or job.backend != self.backend.name:
                    continue
                state = self.backend.status(job.handle)
                if state.state == "running":
                    self._enforce_time(job, now)
                else:
                    self._finish(job, state)
            self._schedule()

    def close(self, kill_jobs: bool = False) -> None:
        """Stop watching. Training processes keep running and a new manager picks them up,
        unless ``kill_jobs`` (tests, benchmarks): then running ones are killed and recorded.
        Closing twice does nothing.
        """
        if self._closed.is_set():
            return
        self._closed.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        if kill_jobs:
            with self._lock:
                running = [j for j in self._jobs.values() if j.status == "running" and j.handle]
                for job in running:
                    self._request_stop(job, "stopped because the job manager closed")
                    self.backend.stop(job.handle, force=True)
            deadline = time.monotonic() + 10
            while running and time.monotonic() < deadline:
                states = {j.job_id: self.backend.status(j.handle) for j in running}
                if all(s.state != "running" for s in states.values()):
                    break
                time.sleep(0.05)
            with self._lock:
                for job in running:
                    state = self.backend.status(job.handle)
                    if job.status == "running" and state.state != "running":
                        self._finish(job, state)

    # -- internals ----------------------------------------------------------------------------
    def _watch(self) -> None:
        while not self._closed.is_set():
            self._wake.wait(self.poll_s)
            self._wake.clear()
            if self._closed.is_set():
                break
            try:
                self.refresh()
            except Exception:  # a bad disk or record must not end the watching
                log.exception("job manager refresh failed")

    def _check_open(self) -> None:
        if self._closed.is_set():
            raise JobError("the job manager is closed")

    def _get(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise JobError(f"no job {job_id!r}")
        return job

    def _check_may_control(self, job: Job, owner: str, instructor: bool) -> None:
        if not (instructor or self.owns(job, owner)):
            raise JobError(
                f"job {job.display_name!r} was started by someone else; only they or an instructor may change it"
            )

    def _delete_unreadable(self, run_id: str, instructor: bool) -> None:
        if not instructor:
            raise JobError(
                f"the job record of run {run_id!r} cannot be read, so who started it is unknown; "
                "only an instructor may delete it"
            )
        try:
            progress: Progress | None = read_progress(self.runs_dir / run_id)
        except RunError:
            progress = None
        if progress is not None and progress.status == "running" and _is_training(progress.pid, run_id):
            raise JobError(f"run {run_id!r} is still training (process {progress.pid}); try again when it has ended")
        self._remove_folder(run_id, run_id)
        del self._unreadable[run_id]

    def _remove_folder(self, run_id: str, name: str) -> None:
        """Delete a run's folder; :class:`JobError` naming ``name`` if it stays."""
        # A job whose files stay (a symlink planted outside the runs folder, no permission)
        # stays listed, with the reason, instead of vanishing: callers forget it only after this.
        try:
            shutil.rmtree(run_path(self.runs_dir, run_id))
        except FileNotFoundError:
            pass
        except (ValueError, OSError) as exc:
            raise JobError(f"cannot delete {name!r}: {exc}") from None

    def _copy(self, job: Job) -> Job:
        position = None
        if job.status == "queued":
            queued = sorted((j for j in self._jobs.values() if j.status == "queued"), key=lambda j: j.submitted)
            position = 1 + [j.job_id for j in queued].index(job.job_id)
        return dataclasses.replace(job, position=position)

    def _save(self, job: Job) -> None:
        write_atomic(run_path(self.runs_dir, job.job_id) / JOB_FILE, json.dumps(job.to_dict(), indent=1))

    def _recover(self) -> None:
        """Read every ``job.json`` of the runs folder back (after a restart of the server)."""
        for path in sorted(self.runs_dir.glob(f"*/{JOB_FILE}")):
            try:
                run_path(self.runs_dir, path.parent.name)  # ValueError for a folder that leads elsewhere
            except ValueError as exc:
                log.warning("skipping %s: %s", path, exc)
                continue
            try:
                job = self._read_job(path)
            except (OSError, ValueError, TypeError, RecursionError) as exc:
                # Kept, not dropped: the Train page names it and an instructor may delete it.
                log.warning("cannot read %s: %s", path, exc)
                self._unreadable[path.parent.name] = _job_record_problem(exc)
                continue
            self._jobs[job.job_id] = job
            if job.status == "running" and job.handle is None:
                self._end(job, "interrupted", error="the server stopped while the job was starting")

    def _read_job(self, path: Path) -> Job:
        """The job record in ``path``; ``ValueError`` (or ``OSError``) if it is not a sound one."""
        if path.stat().st_size > MAX_JOB_FILE_BYTES:
            raise ValueError(f"it is larger than {MAX_JOB_FILE_BYTES // 1024} KB")
        job = Job.from_dict(json.loads(path.read_text(encoding="utf-8")))
        if job.job_id != path.parent.name:
            raise ValueError(f"job id {job.job_id!r} differs from its folder")
        if job.status == "running" and job.handle is not None and job.backend == self.backend.name:
            try:
                self.backend.status(job.handle)
            except ValueError:
                raise ValueError(f"handle {job.handle[:40]!r} is not one the {job.backend} backend makes") from None
        return job

    def _schedule(self) -> None:
        running = sum(j.status == "running" for j in self._jobs.values())
        queued = sorted((j for j in self._jobs.values() if j.status == "queued"), key=lambda j: j.submitted)
        for job in queued[: max(0, self.limits.max_concurrent - running)]:
            self._start(job)

    def _start(self, job: Job) -> None:
        run_dir = run_path(self.runs_dir, job.job_id)
        request = LaunchRequest(
            job_id=job.job_id,
            runs_dir=self.runs_dir,
            config_path=run_dir / JOB_CONFIG_FILE,
            max_timesteps=min(job.total_timesteps, self.limits.max_total_timesteps),
            log_path=run_dir / LOG_FILE,
        )
        try:
            job.handle = self.backend.submit(request)
        except OSError as exc:
            self._end(job, "failed", error=f"could not start the training: {exc}")
            return
        job.status = "running"
        job.started = time.time()
        self._save(job)

    def _request_stop(self, job: Job, reason: str) -> None:
        """Ask a running job to stop through its run folder's ``STOP`` file.

        The training checks the file at every step, also when the request comes while the
        process is still importing (a SIGTERM then would end it before it can save).
        :meth:`_enforce_time` kills it if it has not ended ``stop_timeout_s`` later.
        """
        if job.stop_requested is None:
            job.stop_requested = time.time()
            job.stop_reason = reason
            self._save(job)
        try:
            request_stop(run_path(self.runs_dir, job.job_id))
        except OSError as exc:  # e.g. the folder was removed by hand: the timeout kills it
            log.warning("cannot ask job %s to stop: %s", job.job_id, exc)

    def _enforce_time(self, job: Job, now: float) -> None:
        if job.stop_requested is None and job.started is not None and now - job.started > self.limits.max_runtime_s:
            self._request_stop(job, f"stopped by the server after its time limit of {self.limits.max_runtime_s:.0f} s")
        elif job.stop_requested is not None and now - job.stop_requested > self.limits.stop_timeout_s:
            log.warning("job %s did not stop within %.0f s; killing it", job.job_id, self.limits.stop_timeout_s)
            self.backend.stop(job.handle, force=True)

    def _finish(self, job: Job, state: BackendStatus) -> None:
        """Record the end of a job whose process has exited or is gone."""
        run_dir = run_path(self.runs_dir, job.job_id)
        try:
            progress: Progress | None = read_progress(run_dir)
        except RunError:
            progress = None
        job.exit_code = state.exit_code
        status, error = job_outcome(job, state, progress, has_model=(run_dir / MODEL_FILE).is_file())
        tail = log_tail(run_dir / LOG_FILE) if status in ("failed", "interrupted") else None
        self._end(job, status, error=error, log_tail=tail)

    def _end(self, job: Job, status: JobStatus, error: str | None = None, log_tail: str | None = None) -> None:
        job.status = status
        job.ended = time.time()
        job.error = error
        job.log_tail = log_tail
        self._save(job)


def _job_record_problem(exc: Exception) -> str:
    """What is wrong with a ``job.json``, in a few words for the Train page."""
    if isinstance(exc, json.JSONDecodeError):
        return f"{JOB_FILE} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
    if isinstance(exc, UnicodeDecodeError):
        return f"{JOB_FILE} is not UTF-8 text"
    return f"{JOB_FILE} cannot be read: {exc}" if isinstance(exc, OSError) else f"{JOB_FILE} is not a job record: {exc}"


def _is_training(pid: int | None, run_id: str) -> bool:
    """True if process ``pid`` lives and is the training of ``run_id`` (its command line names it)."""
    if pid is None or pid <= 0 or not _pid_alive(pid):
        return False
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc: a live pid is taken at its word
    return run_id.encode() in command


def job_outcome(
    job: Job, state: BackendStatus, progress: Progress | None, has_model: bool
) -> tuple[JobStatus, str | None]:
    """The final status of a job whose process ended, and the reason when it is not a success.

    :param job: the job (its stop request counts).
    :param state: how the process ended (``exited`` with a code, or ``gone``).
    :param progress: the run's last ``progress.json``, or None if it never wrote one.
    :param has_model: whether ``model.zip`` exists.
    """
    said = progress.status if progress is not None else None
    if state.state == "gone":  # ended while no manager was its parent: trust the run's record
        if said in ("finished", "stopped") and has_model:
            return said, job.stop_reason if said == "stopped" else None
        if said == "failed":
            return "failed", progress.error or "the training failed"
        reached = f"{progress.timesteps:,} of {progress.total_timesteps:,}" if progress else "0"
        return "interrupted", (
            f"the training process is gone after {reached} steps: it was killed or the machine "
            "restarted while the server was not watching it"
        )
    code = state.exit_code
    if code == 0 and said in ("finished", "stopped") and has_model:
        return said, job.stop_reason if said == "stopped" else None
    if code == 0:
        return "failed", f"the training process exited without saving a model (last status: {said})"
    if code is not None and code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else f"signal {-code}"
        if job.stop_requested is not None and -code in (signal.SIGTERM, signal.SIGKILL):
            return "stopped", f"{job.stop_reason}; it was ended by {name} before it could save a model"
        reason = f"the training process was killed by {name}"
        if -code == signal.SIGKILL:
            reason += " (out of memory, or killed by an administrator)"
        return "failed", reason
    if said == "failed" and progress.error:
        return "failed", progress.error
    return "failed", f"the training process exited with code {code}"


def log_tail(path: Path, lines: int = 20, max_bytes: int = 16_384) -> str | None:
    """The last ``lines`` lines of a log file (at most its last ``max_bytes``), or None."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return None
    text = data.decode("utf-8", errors="replace").replace("\r", "\n")
    kept = [line for line in text.splitlines() if line.strip()][-lines:]
    return "\n".join(kept) or None


# --- finished runs, for other pages ---------------------------------------------------------
def runs_dir_from_environment(environ: Mapping[str, str] | None = None) -> Path:
    """The runs folder: ``ARES_RUNS_DIR`` if set, else ``runs/`` in the repository."""
    env = os.environ if environ is None else environ
    value = env.get("ARES_RUNS_DIR")
    return Path(value).expanduser().resolve() if value else DEFAULT_RUNS_DIR


@dataclass(frozen=True)
class FinishedRun:
    """A run with a saved model, ready to load with :func:`envlib.agent.load_agent`.

    :param run_id: the run's id (its folder name).
    :param run_dir: its folder.
    :param display_name: the name people see.
    :param status: ``finished``, or ``stopped`` (saved before its last step).
    :param timesteps: steps it trained.
    :param updated: unix time of its last progress record, s.
    """

    run_id: str
    run_dir: Path
    display_name: str
    status: Literal["finished", "stopped"]
    timesteps: int
    updated: float


@dataclass(frozen=True)
class RunProblem:
    """A folder of the runs folder that looks like a run but cannot be offered, and why.

    :param run_id: the folder's name (a valid run id).
    :param run_dir: the folder.
    :param problem: what is wrong, e.g. ``finished, but config.yaml is missing``.
    """

    run_id: str
    run_dir: Path
    problem: str

    def __str__(self) -> str:
        return f"run {self.run_id}: {self.problem}"


@dataclass(frozen=True)
class RunScan:
    """What :func:`scan_runs` found: the runs that saved a model, newest first, and the
    damaged ones (by run id)."""

    runs: list[FinishedRun]
    problems: list[RunProblem]


def scan_runs(runs_dir: str | Path | None = None) -> RunScan:
    """The runs in ``runs_dir`` (default: :func:`runs_dir_from_environment`) that saved a model,
    and the run folders that are damaged.

    A folder is damaged if it has a ``model.zip`` but no ``progress.json``, an unreadable
    ``progress.json``, or a ``progress.json`` saying finished or stopped while a file an agent
    needs is missing. Queued, running, failed or interrupted runs are neither. Runs started from
    the command line count too. Reads only small files (``progress.json``, ``job.json`` or
    ``config.yaml``) and never the model.
    """
    root = Path(runs_dir) if runs_dir is not None else runs_dir_from_environment()
    if not root.is_dir():
        return RunScan([], [])
    found, problems = [], []
    for path in root.iterdir():
        if not (is_valid_run_id(path.name) and path.is_dir()):
            continue
        try:
            run_path(root, path.name)
        except ValueError:
            continue  # a symlink to a folder outside the runs folder: never read
        result = _inspect_run(path)
        if isinstance(result, FinishedRun):
            found.append(result)
        elif result is not None:
            problems.append(result)
    found.sort(key=lambda r: r.updated, reverse=True)
    problems.sort(key=lambda p: p.run_id)
    return RunScan(found, problems)


def _inspect_run(path: Path) -> FinishedRun | RunProblem | None:
    """One run folder as :func:`scan_runs` sees it: ready, damaged, or neither (None)."""
    if not (path / PROGRESS_FILE).is_file():
        # The training writes progress.json right after config.yaml, long before model.zip.
        has_model = (path / MODEL_FILE).is_file()
        return RunProblem(path.name, path, f"{MODEL_FILE} saved, but {PROGRESS_FILE} is missing") if has_model else None
    try:
        progress = read_progress(path)
    except RunError as exc:
        return RunProblem(path.name, path, f"{PROGRESS_FILE} {exc.problem}")
    if progress.status not in ("finished", "stopped"):
        return None
    missing = [name for name in (CONFIG_FILE, MODEL_FILE, NORMALIZER_FILE) if not (path / name).is_file()]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        return RunProblem(path.name, path, f"{progress.status}, but {' and '.join(missing)} {verb} missing")
    return FinishedRun(
        run_id=path.name,
        run_dir=path,
        display_name=_stored_display_name(path),
        status=progress.status,
        timesteps=progress.timesteps,
        updated=progress.updated,
    )


def list_finished_runs(runs_dir: str | Path | None = None) -> list[FinishedRun]:
    """The runs of :func:`scan_runs` that saved a model, newest first."""
    return scan_runs(runs_dir).runs


def _stored_display_name(run_dir: Path) -> str:
    try:
        name = json.loads((run_dir / JOB_FILE).read_text(encoding="utf-8")).get("display_name")
        if isinstance(name, str) and name:
            return name
    except (OSError, ValueError, AttributeError):
        pass
    try:
        config = RunConfig.load(run_dir / CONFIG_FILE)
        if config.display_name:
            return config.display_name
    except ConfigError:
        pass
    return run_display_name(run_dir.name)
