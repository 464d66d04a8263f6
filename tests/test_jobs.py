"""Background training jobs: real ``python -m envlib.train`` processes under a JobManager."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from envlib.config import ConfigError, RunConfig
from envlib.jobs import JOB_FILE, Job, JobError, JobLimits, JobManager, list_finished_runs, owner_hash, scan_runs
from envlib.pretrained import PRETRAINED
from envlib.runs import (
    CONFIG_FILE,
    EPISODES_FILE,
    MODEL_FILE,
    NORMALIZER_FILE,
    PROGRESS_FILE,
    Progress,
    read_episodes,
    read_progress,
    write_progress,
)

#: A tiny but real training: 8 envs, rollouts of 128 steps, a network of one 8-unit layer.
TINY = {
    "display_name": "Tiny Test",
    "train": {
        "n_envs": 8,
        "n_steps": 16,
        "batch_size": 64,
        "n_epochs": 2,
        "total_timesteps": 2048,
        "net_arch": [8],
        "eval_every": 1024,
        "eval_episodes": 2,
        "seed": 3,
    },
}


def tiny(**train: object) -> RunConfig:
    return RunConfig.from_dict({**TINY, "train": {**TINY["train"], **train}})


#: Long enough that it only ends when a test stops or kills it.
LONG = {"total_timesteps": 500_000}


def wait_for(condition: Callable[[], object], timeout: float = 90.0, every: float = 0.1) -> object:
    """Poll ``condition`` until it returns something truthy; fail the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"timed out after {timeout} s waiting for {condition}")


def pid_of(job: Job) -> int:
    return int(job.handle.split(":")[0])


def process_is_gone(pid: int) -> bool:
    """The process has ended and been reaped (or is a zombie waiting for it)."""
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        return True
    return stat[stat.rfind(")") + 2] in "ZX"


def has_trained(manager: JobManager, job_id: str) -> bool:
    """The job's process is past start-up and has taken environment steps."""
    try:
        return read_progress(manager.run_dir(job_id)).timesteps > 0
    except Exception:
        return False


@pytest.fixture
def make_manager(tmp_path):
    """Managers on ``tmp_path / 'runs'`` that kill their processes when the test ends."""
    managers: list[JobManager] = []

    def make(watch: bool = True, **limits: object) -> JobManager:
        manager = JobManager(tmp_path / "runs", limits=JobLimits(**limits), poll_s=0.2, watch=watch)
        managers.append(manager)
        return manager

    yield make
    for manager in reversed(managers):
        manager.close(kill_jobs=True)


@pytest.mark.slow
def test_tiny_job_runs_to_completion_and_is_listed_as_finished(make_manager):
    manager = make_manager()
    job = manager.submit(tiny(), owner="alice")
    assert job.status == "running" and job.display_name == "Tiny Test"
    run_dir = manager.run_dir(job.job_id)

    done = wait_for(lambda: (j := manager.status(job.job_id)).status != "running" and j)
    assert done.status == "finished", done.error
    assert done.exit_code == 0 and done.ended >= done.started
    assert (run_dir / MODEL_FILE).is_file()
    assert read_progress(run_dir).timesteps >= 2048
    assert json.loads((run_dir / JOB_FILE).read_text())["status"] == "finished"
    finished = list_finished_runs(manager.runs_dir)
    assert [(r.run_id, r.display_name, r.status) for r in finished] == [(job.job_id, "Tiny Test", "finished")]


@pytest.mark.slow
def test_a_running_jobs_episode_history_grows_while_it_runs(make_manager):
    manager = make_manager()
    job = manager.submit(tiny(**LONG, eval_every=0), owner="alice")
    run_dir = manager.run_dir(job.job_id)

    counts: list[int] = []

    def two_different_counts_seen() -> bool:
        assert manager.status(job.job_id).status == "running", "the long job ended by itself"
        if (run_dir / EPISODES_FILE).exists():
            counts.append(len(read_episodes(run_dir)))
        return len(set(counts) - {0}) >= 2

    wait_for(two_different_counts_seen, every=0.2)
    assert counts == sorted(counts), "episodes.csv only grows"
    manager.stop(job.job_id, owner="alice")
    stopped = wait_for(lambda: (j := manager.status(job.job_id)).status != "running" and j)
    assert stopped.status == "stopped", stopped.error
    assert len(read_episodes(run_dir)) >= counts[-1]


@pytest.mark.slow
def test_second_job_waits_for_the_free_slot_and_starts_when_the_first_ends(make_manager):
    manager = make_manager(max_concurrent=1)
    first = manager.submit(tiny(**LONG), owner="alice")
    second = manager.submit(tiny(), owner="bob")
    assert (first.status, second.status, second.position) == ("running", "queued", 1)

    wait_for(lambda: has_trained(manager, first.job_id))
    still = manager.status(second.job_id)
    assert still.status == "queued" and still.position == 1 and still.handle is None
    assert not (manager.run_dir(second.job_id) / "progress.json").exists()

    manager.stop(first.job_id, owner="alice")
    stopped = wait_for(lambda: (j := manager.status(first.job_id)).status != "running" and j)
    assert stopped.status == "stopped", stopped.error
    assert stopped.stop_reason == "stopped by its owner"
    assert (manager.run_dir(first.job_id) / MODEL_FILE).is_file(), "a stopped job keeps the model it reached"
    assert 0 < read_progress(manager.run_dir(first.job_id)).timesteps < LONG["total_timesteps"]

    started = wait_for(lambda: (j := manager.status(second.job_id)).status == "running" and j, timeout=5)
    assert started.position is None and started.handle is not None


@pytest.mark.slow
def test_a_job_over_its_time_limit_is_stopped_by_the_server_and_keeps_its_model(make_manager):
    manager = make_manager(max_runtime_s=2)  # runs out while the process is still starting up
    job = manager.submit(tiny(**LONG), owner="alice")
    stopped = wait_for(lambda: (j := manager.status(job.job_id)).status != "running" and j)
    assert stopped.status == "stopped", stopped.error
    assert "time limit of 2 s" in stopped.stop_reason and stopped.exit_code == 0
    assert (manager.run_dir(job.job_id) / MODEL_FILE).is_file()
    assert read_progress(manager.run_dir(job.job_id)).timesteps < LONG["total_timesteps"]


@pytest.mark.slow
def test_sigkill_of_the_training_process_marks_the_job_failed_with_the_reason_and_log(make_manager):
    manager = make_manager()
    job = manager.submit(tiny(**LONG), owner="alice")
    wait_for(lambda: has_trained(manager, job.job_id))

    os.kill(pid_of(job), signal.SIGKILL)
    failed = wait_for(lambda: (j := manager.status(job.job_id)).status != "running" and j, timeout=10)
    assert failed.status == "failed"
    assert failed.exit_code == -signal.SIGKILL
    assert "SIGKILL" in failed.error
    assert str(manager.run_dir(job.job_id)) in failed.log_tail  # the CLI's first line
    assert list_finished_runs(manager.runs_dir) == []


@pytest.mark.slow
def test_a_new_manager_recovers_the_list_and_marks_a_job_whose_process_is_gone_interrupted(make_manager):
    before = make_manager(max_concurrent=1)
    first = before.submit(tiny(**LONG), owner="alice")
    second = before.submit(tiny(**LONG), owner="bob")
    wait_for(lambda: has_trained(before, first.job_id))
    before.close()  # the server goes away; the training process does not

    after = make_manager(max_concurrent=1)
    recovered = {j.job_id: j for j in after.list()}
    assert set(recovered) == {first.job_id, second.job_id}
    assert recovered[first.job_id].status == "running", "a live process is watched again"
    assert (recovered[second.job_id].status, recovered[second.job_id].position) == ("queued", 1)
    assert after.owns(recovered[first.job_id], "alice") and not after.owns(recovered[first.job_id], "bob")

    os.kill(pid_of(first), signal.SIGKILL)  # dies while the new manager is not its parent
    gone = wait_for(lambda: (j := after.status(first.job_id)).status != "running" and j, timeout=10)
    assert gone.status == "interrupted"
    assert "gone" in gone.error and gone.exit_code is None
    wait_for(lambda: after.status(second.job_id).status == "running", timeout=5)


@pytest.mark.slow
def test_a_new_manager_takes_finished_or_stopped_from_the_run_of_a_job_that_ended_unwatched(make_manager):
    before = make_manager(watch=False, max_concurrent=2)  # records starts and stop requests, never an end
    finishing = before.submit(tiny(total_timesteps=512, eval_every=0), owner="alice")
    stopping = before.submit(tiny(**LONG, eval_every=0), owner="bob")
    wait_for(lambda: has_trained(before, stopping.job_id))
    before.stop(stopping.job_id, owner="bob")
    wait_for(lambda: process_is_gone(pid_of(finishing)) and process_is_gone(pid_of(stopping)))
    before.close()
    for job in (finishing, stopping):  # nobody recorded the end
        assert json.loads((before.run_dir(job.job_id) / JOB_FILE).read_text())["status"] == "running"

    after = make_manager()
    finished, stopped = after.status(finishing.job_id), after.status(stopping.job_id)
    assert (finished.status, finished.error, finished.exit_code) == ("finished", None, None)
    assert (stopped.status, stopped.error, stopped.exit_code) == ("stopped", "stopped by its owner", None)
    assert finished.ended is not None and stopped.ended is not None
    for job in (finished, stopped):
        assert json.loads((after.run_dir(job.job_id) / JOB_FILE).read_text())["status"] == job.status
    listed = {r.run_id: r.status for r in list_finished_runs(after.runs_dir)}
    assert listed == {finishing.job_id: "finished", stopping.job_id: "stopped"}


#: PPO that spends minutes in each update after a 128-step rollout: STOP is only read between steps.
DEAF = {"n_epochs": 1_000_000, "eval_every": 0, **LONG}


@pytest.mark.slow
def test_a_job_that_does_not_stop_after_its_stop_request_is_killed_after_stop_timeout(make_manager):
    manager = make_manager(stop_timeout_s=1)
    job = manager.submit(tiny(**DEAF), owner="alice")
    run_dir = manager.run_dir(job.job_id)
    # All 8 x 16 steps of the first rollout are taken: the process is in its long update.
    wait_for(lambda: has_trained(manager, job.job_id) and read_progress(run_dir).timesteps == 8 * 16)

    manager.stop(job.job_id, owner="alice")
    ended = wait_for(lambda: (j := manager.status(job.job_id)).status != "running" and j)
    assert process_is_gone(pid_of(job))
    assert ended.status == "stopped"
    assert ended.exit_code == -signal.SIGKILL
    assert ended.error == "stopped by its owner; it was ended by SIGKILL before it could save a model"
    assert read_progress(run_dir).status == "running", "the process never answered the request"
    assert not (run_dir / MODEL_FILE).exists() and list_finished_runs(manager.runs_dir) == []


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"train": {"batch_size": 0}}, "train.batch_size"),
        ({"train": {"n_envs": 4, "n_steps": 16, "batch_size": 100}}, "train.batch_size"),
        ({"env": {"reward_mode": "most_pixels"}}, "env.reward_mode"),
        ({"train": {"learning_rat": 0.1}}, "train.learning_rat"),
        ({"env": {"target_sigma_x_threshold": -1e-5}}, "env.target_sigma_x_threshold"),
    ],
    ids=["batch-zero", "batch-over-rollout", "unknown-reward-mode", "unknown-key", "negative-threshold"],
)
def test_invalid_configs_are_refused_with_the_key_named_and_nothing_launched(tmp_path, data, key):
    manager = JobManager(tmp_path, watch=False)
    with pytest.raises(ConfigError) as refused:
        manager.submit(data, owner="alice")
    assert refused.value.key == key
    assert manager.list() == [] and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("limits", "train", "key"),
    [
        ({"max_total_timesteps": 5000}, {"total_timesteps": 5001}, "train.total_timesteps"),
        ({"max_rollout": 1000}, {"n_envs": 64, "n_steps": 16, "batch_size": 64}, "train.n_steps"),
        ({"max_net_layers": 2}, {"net_arch": [8, 8, 8]}, "train.net_arch"),
    ],
    ids=["timesteps", "rollout", "layers"],
)
def test_the_server_caps_refuse_a_job_naming_the_key(tmp_path, limits, train, key):
    manager = JobManager(tmp_path, limits=JobLimits(**limits), watch=False)
    with pytest.raises(ConfigError) as refused:
        manager.submit(tiny(**train), owner="alice")
    assert refused.value.key == key and "on this server" in refused.value.message
    assert manager.list() == [] and list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_only_the_owner_or_an_instructor_controls_a_job_and_one_owner_cannot_flood_the_queue(make_manager):
    manager = make_manager(max_concurrent=1, max_active_per_owner=2)
    running = manager.submit(tiny(**LONG), owner="alice")
    queued = manager.submit(tiny(), owner="alice")
    with pytest.raises(JobError, match="limit is 2"):
        manager.submit(tiny(), owner="alice")
    assert len(manager.list()) == 2

    with pytest.raises(JobError, match="someone else"):
        manager.stop(running.job_id, owner="bob")
    with pytest.raises(JobError, match="stop it before deleting"):
        manager.delete(running.job_id, owner="alice")
    assert manager.status(running.job_id).stop_requested is None

    cancelled = manager.stop(queued.job_id, owner="bob", instructor=True)
    assert cancelled.status == "cancelled"
    assert manager.status(running.job_id).status == "running", "cancelling a queued job leaves others alone"
    assert json.loads((manager.run_dir(queued.job_id) / JOB_FILE).read_text())["status"] == "cancelled"

    with pytest.raises(JobError, match="someone else"):
        manager.delete(queued.job_id, owner="bob")
    queued_dir = manager.run_dir(queued.job_id)
    manager.delete(queued.job_id, owner="alice")
    assert not queued_dir.exists() and [j.job_id for j in manager.list()] == [running.job_id]
    with pytest.raises(JobError, match="no job"):
        manager.status(queued.job_id)
    # The owner token itself is never written to disk.
    assert "alice" not in (manager.run_dir(running.job_id) / JOB_FILE).read_text()


def test_limits_from_the_environment_set_their_fields_and_keep_the_other_defaults():
    limits = JobLimits.from_environment({"ARES_MAX_TIMESTEPS": "50000", "ARES_MAX_RUNTIME_S": "90.5"})
    assert limits.max_total_timesteps == 50_000
    assert limits.max_runtime_s == 90.5
    assert limits.max_concurrent == JobLimits().max_concurrent
    assert JobLimits.from_environment({}) == JobLimits()


@pytest.mark.parametrize(
    ("name", "value"),
    [("ARES_MAX_TIMESTEPS", "lots"), ("ARES_MAX_JOBS_PER_USER", "0"), ("ARES_MAX_CONCURRENT_TRAININGS", "1.5"),
     ("ARES_MAX_RUNTIME_S", "-3"), ("ARES_MAX_RUNTIME_S", "nan")],
)  # fmt: skip
def test_a_bad_limit_in_the_environment_names_its_variable_and_value(name, value):
    with pytest.raises(ValueError, match=rf"^{name} must be a .*, not '{value}'$"):
        JobLimits.from_environment({name: value})


@pytest.mark.slow
def test_a_job_whose_folder_cannot_be_deleted_stays_listed_with_the_reason(make_manager, tmp_path):
    manager = make_manager(max_concurrent=1)
    running = manager.submit(tiny(**LONG), owner="alice")
    queued = manager.submit(tiny(), owner="alice")
    manager.stop(queued.job_id, owner="alice")  # cancelled while queued: it has ended
    folder = manager.run_dir(queued.job_id)
    outside = tmp_path / "outside"
    folder.rename(outside)
    folder.symlink_to(outside, target_is_directory=True)  # planted: must not be followed
    with pytest.raises(JobError, match="cannot delete .*inside"):
        manager.delete(queued.job_id, owner="alice")
    assert queued.job_id in [j.job_id for j in manager.list()] and outside.is_dir()
    manager.stop(running.job_id, owner="alice")


# --- damaged run folders and job records (no training: a shipped agent's files) -------------
SHIPPED = PRETRAINED["objimp-delta"].path


def run_folder(runs: Path, run_id: str, status: str = "finished", job: Job | None = None) -> Path:
    """A run folder as a training leaves it: a shipped agent's files and a progress record."""
    folder = runs / run_id
    folder.mkdir(parents=True)
    for name in (CONFIG_FILE, MODEL_FILE, NORMALIZER_FILE):
        shutil.copy(SHIPPED / name, folder / name)
    write_progress(
        folder,
        Progress(status=status, timesteps=64, total_timesteps=64, fps=1.0, elapsed_s=1.0, eta_s=None,
                 updated=time.time(), error=None, pid=os.getpid()),
    )  # fmt: skip
    if job is not None:
        (folder / JOB_FILE).write_text(json.dumps(job.to_dict()))
    return folder


def a_job(job_id: str, owner: str = "alice", status: str = "finished", submitted: float = 1.0) -> Job:
    return Job(job_id=job_id, status=status, owner_hash=owner_hash(owner), display_name=job_id.title(),
               total_timesteps=64, submitted=submitted, started=submitted, ended=submitted + 1)  # fmt: skip


def test_a_run_folder_that_lost_a_file_or_its_progress_is_reported_not_dropped(tmp_path):
    runs = tmp_path / "runs"
    run_folder(runs, "intact")
    (run_folder(runs, "no-config") / CONFIG_FILE).unlink()
    (run_folder(runs, "bad-progress") / PROGRESS_FILE).write_text('{"status": "finished",')
    (run_folder(runs, "typed-progress") / PROGRESS_FILE).write_text(
        json.dumps({**read_progress(runs / "intact").to_dict(), "timesteps": "lots"})
    )
    (run_folder(runs, "no-progress") / PROGRESS_FILE).unlink()
    stopped = run_folder(runs, "stopped-bare", status="stopped")
    (stopped / MODEL_FILE).unlink()
    (stopped / NORMALIZER_FILE).unlink()
    # Not damaged: still training, failed, or never started (a queued job has only job.json).
    (run_folder(runs, "still-running", status="running") / MODEL_FILE).unlink()
    run_folder(runs, "failed", status="failed")
    (runs / "queued").mkdir()
    (runs / "queued" / JOB_FILE).write_text(json.dumps(a_job("queued", status="queued").to_dict()))

    scan = scan_runs(runs)
    assert [r.run_id for r in scan.runs] == ["intact"] == [r.run_id for r in list_finished_runs(runs)]
    assert {p.run_id: p.problem for p in scan.problems} == {
        "bad-progress": "progress.json is not valid JSON (Expecting property name enclosed in double quotes "
        "at line 1, column 23)",
        "no-config": "finished, but config.yaml is missing",
        "no-progress": "model.zip saved, but progress.json is missing",
        "stopped-bare": "stopped, but model.zip and normalizer.npz are missing",
        "typed-progress": "progress.json is not a valid progress record: timesteps is 'lots'",
    }
    assert str(scan.problems[1]) == "run no-config: finished, but config.yaml is missing"


def test_an_unreadable_job_record_is_kept_named_and_deletable_by_an_instructor_only(tmp_path):
    runs = tmp_path / "runs"
    run_folder(runs, "sound", job=a_job("sound", submitted=2.0))
    (run_folder(runs, "not-json") / JOB_FILE).write_text("{")
    # Valid JSON of wrong types: "yesterday" once made list() fail to sort the jobs by time.
    wrong = {**a_job("wrong-types").to_dict(), "submitted": "yesterday"}
    (run_folder(runs, "wrong-types") / JOB_FILE).write_text(json.dumps(wrong))
    running = {**a_job("bad-handle", status="running").to_dict(), "handle": "not-a-pid", "ended": None}
    (run_folder(runs, "bad-handle", status="running") / JOB_FILE).write_text(json.dumps(running))
    (run_folder(runs, "nested") / JOB_FILE).write_text("[" * 100_000 + "]" * 100_000)

    manager = JobManager(runs, watch=False)
    assert [j.job_id for j in manager.list()] == ["sound"]
    unreadable = manager.unreadable()
    assert list(unreadable) == ["bad-handle", "nested", "not-json", "wrong-types"]
    assert unreadable["not-json"].startswith("job.json is not valid JSON (")
    assert unreadable["wrong-types"] == "job.json is not a job record: submitted is 'yesterday'"
    assert unreadable["bad-handle"].endswith(": handle 'not-a-pid' is not one the local backend makes")
    assert unreadable["nested"].startswith("job.json is not a job record: maximum recursion depth")

    with pytest.raises(JobError, match="only an instructor"):
        manager.delete("not-json", owner="alice")
    assert (runs / "not-json").is_dir()
    manager.delete("not-json", owner="bob", instructor=True)
    assert not (runs / "not-json").exists() and "not-json" not in manager.unreadable()
    manager.refresh()  # the watcher's tick leaves them alone
    assert list(JobManager(runs, watch=False).unreadable()) == ["bad-handle", "nested", "wrong-types"]


def test_an_instructor_cannot_delete_an_unreadable_run_whose_training_still_runs(tmp_path):
    runs = tmp_path / "runs"
    folder = run_folder(runs, "live", status="running")
    (folder / JOB_FILE).write_text("{")
    # A real process whose command line names the run, as `python -m envlib.train ... --run-id live` does.
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "--run-id", "live"])
    try:
        progress = read_progress(folder)
        write_progress(folder, dataclasses.replace(progress, pid=process.pid))
        manager = JobManager(runs, watch=False)
        with pytest.raises(JobError, match="still training"):
            manager.delete("live", owner="bob", instructor=True)
        assert folder.is_dir()
    finally:
        process.kill()
        process.wait()
    manager.delete("live", owner="bob", instructor=True)
    assert not folder.exists()
