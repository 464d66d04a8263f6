"""The Train page in Streamlit's AppTest, with the real job manager and real training processes."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml
from streamlit.testing.v1 import AppTest
from test_jobs import a_job, run_folder

from envlib.config import ConfigError, EnvConfig, RunConfig, TrainConfig
from envlib.jobs import JobManager
from envlib.reward_spec import preset
from envlib.runs import MAX_CSV_BYTES, MODEL_FILE, Progress, read_progress
from ui.common import OWNER_TOKEN, job_manager
from ui.train import (
    CHART_HEIGHT_PX,
    COLORS,
    CUSTOM_PRESET,
    FIELDS,
    JOB_COLUMN_LONGEST,
    JOB_COLUMNS_PX,
    LEGEND_ROW_PX,
    MAX_UPLOAD_BYTES,
    config_data,
    count,
    duration,
    history_figures,
    parse_upload,
    presets,
    queue_waits,
    run_colors,
    status_label,
    to_widget,
    wait_text,
)
from ui.widgets import MODEBAR_PX, markdown_text

PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "train.py")
TINY = {"n_envs": 8, "n_steps": 16, "batch_size": 64, "n_epochs": 2, "eval_every": 1024, "eval_episodes": 2}
#: The env keys of the tutorial's config that shape the reward and the episode.
REWARD_KEYS = {
    "reward_mode", "action_mode", "time_reward", "abort_if_off_screen", "time_limit", "threshold_hold",
    "target_sigma_x_threshold", "target_sigma_y_threshold", "target_mu_x_threshold", "target_mu_y_threshold",
    "rescale_action",
}  # fmt: skip


@contextlib.contextmanager
def page_manager(runs: Path, monkeypatch) -> Iterator[JobManager]:
    """The page's cached JobManager on ``runs``, made now (as after a server restart: it reads
    the folder's jobs back); its processes die when the block ends."""
    monkeypatch.setenv("ARES_RUNS_DIR", str(runs))
    job_manager.clear()
    manager = job_manager()  # the same object the page gets from st.cache_resource
    try:
        yield manager
    finally:
        manager.close(kill_jobs=True)
        job_manager.clear()


@pytest.fixture
def manager(tmp_path, monkeypatch):
    """The page's cached JobManager, on a fresh runs folder; its processes die with the test."""
    with page_manager(tmp_path / "runs", monkeypatch) as manager:
        yield manager


def page(owner: str | None = None, **secrets: str) -> AppTest:
    """The page's first run; ``owner`` is the ``?owner=`` of its URL, as after a reload."""
    at = AppTest.from_file(PAGE, default_timeout=60)
    if owner is not None:
        at.query_params["owner"] = owner
    for key, value in secrets.items():
        at.secrets[key] = value
    return at.run()


def field(at: AppTest, key: str):
    return at.get_by_key(f"train.f.{key}")


def red_messages(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if m.value.startswith(":red[")]


def set_tiny(at: AppTest, total_timesteps: int, name: str) -> AppTest:
    for key, value in {**TINY, "total_timesteps": total_timesteps}.items():
        field(at, f"train.{key}").set_value(value)
    field(at, "train.net_arch").set_value("8")
    field(at, "display_name").set_value(name)
    return at.run()


def shows(at: AppTest, key: str) -> bool:
    try:
        at.get_by_key(key)
    except KeyError:
        return False
    return True


def uploader(at: AppTest):
    (widget,) = at.file_uploader  # its key changes when a preset clears it
    return widget


def table(at: AppTest) -> list[dict]:
    return at.dataframe[0].value.to_dict("records") if len(at.dataframe) else []


def test_form_has_every_training_key_and_the_reward_keys_with_help_starting_from_the_tutorial(manager):
    at = page()
    assert not at.exception
    keys = {f.key for f in FIELDS}
    assert {f"train.{f.name}" for f in dataclasses.fields(TrainConfig)} <= keys
    assert {f"env.{k}" for k in REWARD_KEYS} <= keys
    for f in FIELDS:
        widget = field(at, f.key)
        assert widget.help and "\n" not in widget.help, f.key
    tutorial = {
        "train.n_envs": 40, "train.n_steps": 50, "train.batch_size": 100, "train.n_epochs": 10,
        "train.total_timesteps": 200_000, "train.gamma": 0.99, "train.net_arch": "64, 64",
        "train.normalize_observation": True, "train.normalize_reward": True, "train.frame_stack": None,
        "env.reward_mode": "negative_objective", "env.action_mode": "delta", "env.time_reward": 0.0,
        "env.abort_if_off_screen": False, "env.time_limit": 25, "env.threshold_hold": 5,
        "env.target_sigma_x_threshold": None, "env.rescale_action": "-3, 3",
    }  # fmt: skip
    assert {k: field(at, k).value for k in tutorial} == tutorial
    assert "2,000 samples" in " ".join(c.value for c in at.caption)  # the tutorial's rollout arithmetic
    assert red_messages(at) == []


def test_a_reloaded_tab_keeps_its_jobs_through_the_owner_token_in_the_url(manager):
    first = page()
    token = first.query_params["owner"]
    assert OWNER_TOKEN.fullmatch(token)
    train = {**TINY, "total_timesteps": 400_000, "net_arch": [8]}
    config = RunConfig.from_dict({"display_name": "Mine", "train": train})
    manager.submit(config, owner=token)

    reloaded = page(owner=token)  # a reload, or a second tab on the same URL: a new session
    assert reloaded.query_params["owner"] == token
    assert [row["by"] for row in table(reloaded)] == ["you"] and shows(reloaded, "train.stop")
    stranger = page()
    assert stranger.query_params["owner"] != token
    assert [row["by"] for row in table(stranger)] == [""] and not shows(stranger, "train.stop")


@pytest.mark.parametrize("seconds, text", [(45, "45s"), (288, "4m 48s"), (3900, "1h 05m"), (None, "")])
def test_durations_are_short(seconds, text):
    assert duration(seconds) == text


@pytest.mark.parametrize(
    "n, text", [(500, "500"), (1000, "1k"), (12_345, "12.3k"), (30_000, "30k"), (999_999, "1M"), (1_500_000, "1.5M")]
)
def test_step_counts_are_short(n, text):
    assert count(n) == text


#: The main area's width on a projector's 1024 px with the sidebar open, px.
MAIN_AREA_AT_1024_PX = 560


def test_the_job_table_fits_a_projector_with_every_column_wide_enough_for_its_text(manager):
    config = RunConfig.from_dict({"train": {**TINY, "total_timesteps": 400_000, "net_arch": [8]}})
    manager.submit(config, owner="someone")
    columns = json.loads(page().dataframe[0].proto.columns)
    assert list(table(page())[0]) == list(JOB_COLUMNS_PX)
    assert {name: columns[name]["width"] for name in JOB_COLUMNS_PX} == JOB_COLUMNS_PX
    # Sized to their text, the steps were cut at 1280 px and the last columns off-screen at 1024 px.
    assert sum(JOB_COLUMNS_PX.values()) <= MAIN_AREA_AT_1024_PX
    for name, text in JOB_COLUMN_LONGEST.items():  # ~7 px per character at the table's font, plus padding
        assert len(text) * 7 + 16 <= JOB_COLUMNS_PX[name], name
    last_queued = dataclasses.replace(a_job("q", status="queued"), position=manager.limits.max_queued)
    assert len(status_label(last_queued)) <= len(JOB_COLUMN_LONGEST["status"])
    assert max(len(f"{count(n)} / {count(n * 10)}") for n in range(1, 99_999, 7)) <= len(JOB_COLUMN_LONGEST["steps"])
    assert len(f"{duration(59 * 60 + 59)} left") <= len(JOB_COLUMN_LONGEST["time"])


@pytest.mark.parametrize("bad", ["<b>x</b>", "A" * 23, "short", "A" * 21 + "!"])
def test_a_malformed_owner_in_the_url_is_replaced_by_a_new_token(manager, bad):
    at = page(owner=bad)
    assert at.query_params["owner"] != bad and OWNER_TOKEN.fullmatch(at.query_params["owner"])


def test_the_owner_token_comes_back_to_the_url_after_a_visit_to_another_page(manager):
    at = page()
    token = at.query_params["owner"]
    at.query_params.clear()  # what navigating to another page and back does to the URL
    at.run()
    assert at.query_params["owner"] == token


def test_a_half_filled_form_and_the_owner_survive_a_visit_to_another_page(manager):
    at = AppTest.from_file(str(Path(PAGE).parent.parent / "app.py"), default_timeout=120).run()
    at.switch_page("pages/train.py").run()
    token = at.query_params["owner"]
    field(at, "train.gamma").set_value(0.95)
    field(at, "display_name").set_value("Half done")
    at.run()
    at.switch_page("pages/playground.py").run()
    at.query_params.clear()  # as the browser's URL after the visit
    at.switch_page("pages/train.py").run()
    assert not at.exception
    assert (field(at, "train.gamma").value, field(at, "display_name").value) == (0.95, "Half done")
    assert at.selectbox(key="train.preset").value == CUSTOM_PRESET
    assert at.query_params["owner"] == token


def test_no_token_is_made_before_the_train_page_needs_one(manager):
    at = AppTest.from_file(str(Path(PAGE).parent.parent / "app.py"), default_timeout=120)
    at.query_params["owner"] = "<b>x</b>"  # not a token: not adopted
    at.run()
    assert not at.exception and at.title[0].value == "Playground"
    assert "train.owner" not in at.session_state
    at.query_params["owner"] = "T" * 22  # a token: adopted on any page
    at.run()
    assert at.session_state["train.owner"] == "T" * 22


@pytest.fixture
def small_cap_manager(tmp_path, monkeypatch):
    """Like ``manager``, with a per-job cap (400k steps) below every shipped agent's budget."""
    monkeypatch.setenv("ARES_MAX_TIMESTEPS", "400000")
    with page_manager(tmp_path / "runs", monkeypatch) as manager:
        yield manager


def test_a_preset_fills_the_form_with_a_shipped_agents_config(small_cap_manager):
    manager = small_cap_manager
    at = page()
    gary = next(name for name in presets() if "objimp-delta-abort-time" in name)
    at.selectbox(key="train.preset").set_value(gary).run()
    keys = ("env.reward_mode", "env.abort_if_off_screen", "env.time_reward", "display_name")
    values = {k: field(at, k).value for k in keys}
    assert values == {"env.reward_mode": "objective_improvement", "env.abort_if_off_screen": True,
                      "env.time_reward": -1.0, "display_name": "Gary Buchwald"}  # fmt: skip
    assert any("time penalty" in i.value for i in at.info), "the preset's lesson is shown"
    assert red_messages(at) == []

    sean = next(name for name in presets() if "negobj-delta" in name)
    trained = presets()[sean]["train"]["total_timesteps"]
    assert trained > manager.limits.max_total_timesteps
    at.selectbox(key="train.preset").set_value(sean).run()
    assert field(at, "train.total_timesteps").value == manager.limits.max_total_timesteps
    assert any(f"lowered from {trained:,}" in i.value for i in at.info) and red_messages(at) == []


def test_a_config_handed_over_by_the_reward_designer_fills_the_form(manager):
    from ui.rewards import TRAIN_PREFILL_KEY, training_config_for

    spec = preset("objective_improvement", terms=("mu_x", "sigma_x"), time_reward=-0.5)
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state[TRAIN_PREFILL_KEY] = training_config_for(spec).to_dict()
    at.run()
    assert field(at, "env.reward_mode").value == "custom" and red_messages(at) == []
    lines = [f"${line}$" for line in spec.latex_lines()]
    assert any(all(line in m.value for line in lines) for m in at.markdown), "the reward it trains, in full"
    kept = [c.value for c in at.code]
    assert any("kind: objective_improvement" in text and "mu_x: 1.0" in text for text in kept), kept
    # Plain text: the YAML highlighting's orange keys were 2.9:1 on the block's grey.
    assert {c.language for c in at.code} == {"text"}
    field(at, "train.total_timesteps").set_value(1000)
    at.run()
    assert red_messages(at) == [] and TRAIN_PREFILL_KEY not in at.session_state


def test_after_an_upload_or_an_edit_choosing_the_tutorial_preset_again_loads_it(manager):
    at = page()
    preset_box = lambda: at.selectbox(key="train.preset")  # noqa: E731
    assert preset_box().value == "Tutorial, Part IV"
    uploader(at).set_value(("mine.yaml", b"train: {n_envs: 20, batch_size: 100}\n", "application/x-yaml")).run()
    assert field(at, "train.n_envs").value == 20 and preset_box().value == CUSTOM_PRESET
    preset_box().set_value("Tutorial, Part IV").run()
    assert field(at, "train.n_envs").value == 40, "the tutorial's config is back"
    assert preset_box().value == "Tutorial, Part IV" and uploader(at).value is None, "the old file is no longer shown"

    field(at, "train.gamma").set_value(0.95).run()
    assert preset_box().value == CUSTOM_PRESET
    preset_box().set_value("Tutorial, Part IV").run()
    assert field(at, "train.gamma").value == 0.99


def test_an_invalid_value_is_shown_next_to_its_field_and_nothing_is_launched(manager):
    at = page()
    field(at, "train.batch_size").set_value(5000)
    field(at, "train.net_arch").set_value("64, sixty-four")
    at.run()
    messages = red_messages(at)
    assert any("batch_size" in m and "at most one rollout" in m for m in messages), messages
    assert any("net_arch" in m and "whole numbers" in m for m in messages), messages
    assert at.get_by_key("train.download").proto.disabled

    at.button(key="train.launch").click().run()
    assert any("Not launched" in e.value for e in at.error)
    assert manager.list() == [] and list(manager.runs_dir.iterdir()) == []

    field(at, "train.batch_size").set_value(100)
    field(at, "train.net_arch").set_value("64, 64")
    field(at, "train.total_timesteps").set_value(manager.limits.max_total_timesteps + 1)
    at.run()
    assert [m for m in red_messages(at) if "total_timesteps" in m and "on this server" in m]


def test_uploaded_yaml_fills_the_form_and_a_python_tag_is_refused(manager, tmp_path):
    at = page()
    flat = {"run_name": "Flat Tutorial", "n_envs": 20, "reward_mode": "objective_improvement", "time_reward": -1.0,
            "abort_if_off_screen": True, "rescale_action": [-1, 1], "net_arch": [32]}  # fmt: skip
    uploader(at).set_value(("cfg.yaml", yaml.safe_dump(flat).encode(), "application/x-yaml"))
    at.run()
    assert not at.error
    assert field(at, "train.n_envs").value == 20 and field(at, "env.reward_mode").value == "objective_improvement"
    assert field(at, "env.rescale_action").value == "-1, 1" and field(at, "display_name").value == "Flat Tutorial"

    witness = tmp_path / "pwned"
    evil = f"train: !!python/object/apply:os.system ['touch {witness}']\n".encode()
    uploader(at).set_value(("evil.yaml", evil, "application/x-yaml"))
    at.run()
    assert any("evil.yaml was not loaded" in e.value for e in at.error)
    assert field(at, "train.n_envs").value == 20, "a refused upload leaves the form as it was"
    assert not witness.exists()


def test_an_uploaded_config_with_3e_4_fills_the_form(manager):
    at = page()
    upload = b"train:\n  learning_rate: 3e-4\n  total_timesteps: 1E5\n"
    uploader(at).set_value(("sci.yaml", upload, "application/x-yaml")).run()
    assert not at.error
    assert field(at, "train.learning_rate").value == 3e-4 and field(at, "train.total_timesteps").value == 100_000


def test_the_uploader_says_the_size_limit_in_the_unit_of_the_refusal(manager):
    at = page()
    assert "at most 64 KB" in uploader(at).proto.help
    uploader(at).set_value(("big.yaml", b"#" * 120_000, "application/x-yaml")).run()
    assert any("big.yaml is 117 KB; a config is at most 64 KB" in e.value for e in at.error)


def test_parse_upload_takes_safe_yaml_only_and_caps_the_size():
    with pytest.raises(ConfigError, match="not valid YAML") as refused:
        parse_upload("x.yaml", b"a: !!python/name:os.system\n")
    assert refused.value.key == "config" and "python/name:os.system" in refused.value.message
    with pytest.raises(ConfigError) as too_big:
        parse_upload("big.yaml", b"#" * 100_000)
    assert too_big.value.key == "config"
    assert MAX_UPLOAD_BYTES == 64 * 1024
    assert too_big.value.message == "big.yaml is 98 KB; a config is at most 64 KB"
    assert parse_upload("ok.yaml", b"train: {n_envs: 3, batch_size: 50}\n").train.n_envs == 3


@pytest.mark.parametrize("name", list(presets()))
def test_every_preset_survives_the_form_unchanged(name):
    base = presets()[name]
    values = {}
    for f in FIELDS:
        section, _, key = f.key.rpartition(".")
        values[f.key] = to_widget(f, (base.get(section) or {}).get(key) if section else base.get(key))
    data, errors = config_data(base, values)
    assert errors == {}
    assert RunConfig.from_dict(data) == RunConfig.from_dict(base)  # description included


def test_an_edited_preset_loses_the_presets_description():
    base = next(config for name, config in presets().items() if "pixels-delta" in name)
    assert base["description"]
    data, _ = config_data(base, {"env.reward_mode": "negative_objective"})
    assert "description" not in data


def test_switching_reward_mode_away_from_custom_drops_the_spec():
    base = RunConfig(env=EnvConfig()).to_dict()
    base["env"].update(reward_mode="custom", reward=preset("objective_improvement", time_reward=-1.0).to_dict())
    assert RunConfig.from_dict(config_data(base, {"env.reward_mode": "custom"})[0]).env.reward_spec.time_reward == -1.0
    data, _ = config_data(base, {"env.reward_mode": "sum_of_pixels"})
    assert "reward" not in data["env"] and RunConfig.from_dict(data).env.reward_mode == "sum_of_pixels"


def test_after_a_launch_your_job_is_the_new_one_and_stop_works_on_it(manager):
    at = set_tiny(page(), total_timesteps=400_000, name="Old")
    at.button(key="train.launch").click().run()
    (old,) = manager.list()
    manager.stop(old.job_id, at.query_params["owner"])
    wait_until = time.monotonic() + 60
    while manager.status(old.job_id).active and time.monotonic() < wait_until:
        time.sleep(0.2)
    at.run()
    assert at.selectbox(key="train.control").value == old.job_id

    field(at, "display_name").set_value("New")
    at.run()
    at.button(key="train.launch").click().run()
    new = next(j for j in manager.list() if j.display_name == "New")
    assert at.selectbox(key="train.control").value == new.job_id
    assert not at.button(key="train.stop").proto.disabled


@pytest.mark.slow
def test_launch_shows_the_job_and_its_progress_live_and_only_its_owner_controls_it(manager):
    owner = set_tiny(page(), total_timesteps=500_000, name="Page Run")
    owner.button(key="train.launch").click().run()
    assert not owner.exception
    (job,) = manager.list()
    assert (job.display_name, job.status) == ("Page Run", "running")
    run_dir = manager.run_dir(job.job_id)

    owner.button(key="train.launch").click().run()  # a second launch waits in the queue
    assert [row["status"] for row in table(owner)] == ["queued (#1)", "running"]

    seen = []
    deadline = time.monotonic() + 90
    while len({s for s in seen if s > 0}) < 2 and time.monotonic() < deadline:
        owner.run()
        queued_row, row = table(owner)
        if row["time"].endswith("left"):  # the running job has an ETA: the queued one an estimated wait
            assert queued_row["time"].startswith("wait "), queued_row
        if row["time"]:
            seen.append(read_progress(run_dir).timesteps)
            texts = [p.proto.text for p in owner.get("progress")]
            assert any("Page Run" in t and "steps/s" in t and "ETA" in t for t in texts), texts
        time.sleep(0.5)
    assert len({s for s in seen if s > 0}) >= 2, "progress should advance between two refreshes"
    assert len(owner.get("plotly_chart")) == 3  # return, length, evaluation MAE
    # Not in Streamlit's chart theme, whose axis titles and ticks are 3.7:1 on white.
    assert [c.proto.theme for c in owner.get("plotly_chart")] == ["", "", ""]

    other = page(instructor_password="s3cret")
    assert [row["by"] for row in table(other)] == ["", ""]
    assert not shows(other, "train.stop"), "another session gets no controls"
    other.text_input(key="train.password").set_value("guess").run()
    assert any("Wrong password" in e.value for e in other.error)
    other.text_input(key="train.password").set_value("s3cret").run()
    other.run()
    assert shows(other, "train.stop"), "an instructor controls every job"

    queued = manager.list()[1]
    owner.selectbox(key="train.control").set_value(queued.job_id).run()
    owner.button(key="train.stop").click().run()
    assert manager.status(queued.job_id).status == "cancelled"

    owner.selectbox(key="train.control").set_value(job.job_id).run()
    owner.button(key="train.stop").click().run()
    deadline = time.monotonic() + 30
    while manager.status(job.job_id).active and time.monotonic() < deadline:
        time.sleep(0.2)
    assert manager.status(job.job_id).status == "stopped"
    assert (run_dir / MODEL_FILE).is_file()

    owner.run()
    assert table(owner)[1]["status"] == "stopped"
    owner.selectbox(key="train.control").set_value(job.job_id).run()
    owner.button(key="train.delete").click().run()
    assert not run_dir.exists() and [j.job_id for j in manager.list()] == [queued.job_id]


@pytest.mark.browser
def test_in_a_real_browser_the_page_follows_a_launched_job_by_itself_and_stops_it(tmp_path, monkeypatch):
    from browser_support import chromium, streamlit_server, wait_until_idle

    runs = tmp_path / "runs"
    monkeypatch.setenv("ARES_RUNS_DIR", str(runs))  # the server inherits it
    config = tmp_path / "tiny.yaml"
    config.write_text(
        yaml.safe_dump({"display_name": "Browser Run", "train": {**TINY, "total_timesteps": 400_000, "net_arch": [8]}})
    )
    profile = tmp_path / "profile"
    profile.mkdir()
    with streamlit_server(tmp_path) as server, chromium(server, profile) as browser:
        page = browser.open("train")
        page.get_by_role("heading", name="Train an agent").wait_for()
        page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(config))
        page.get_by_text("n_steps × n_envs = 128 samples").wait_for(timeout=30_000)
        page.get_by_role("button", name="Launch training").click()

        bar = page.locator('[data-testid="stProgress"]').first

        def steps_shown() -> int:
            text = bar.inner_text(timeout=60_000)
            return int(text.split("running: ")[1].split(" /")[0].replace(",", "")) if "running: " in text else 0

        # No clicks from here on: the live section refreshes itself while the job runs.
        deadline = time.monotonic() + 90
        first = 0
        while first == 0 and time.monotonic() < deadline:
            first = steps_shown()
            time.sleep(0.5)
        later = first
        while later == first and time.monotonic() < deadline:
            later = steps_shown()
            time.sleep(0.5)
        assert 0 < first < later, (first, later)
        assert page.locator('[data-testid="stPlotlyChart"]').count() == 3

        page.get_by_role("button", name="Stop").click()
        page.get_by_text("stopped by its owner").wait_for(timeout=60_000)
        wait_until_idle(page)
        assert "stopped" in bar.inner_text()
        page.screenshot(path=str(tmp_path / "train.png"), full_page=True)
        browser.assert_offline()
    (run_dir,) = [p for p in runs.iterdir() if p.is_dir()]
    assert (run_dir / MODEL_FILE).is_file()
    assert "Browser Run" in (run_dir / "job.json").read_text()


@pytest.mark.browser
def test_a_job_list_refresh_sends_no_charts_and_a_history_refresh_sends_them(manager, tmp_path):
    import asyncio

    from browser_support import streamlit_server
    from streamlit_client import StudentClient

    from ui.train import HISTORY_REFRESH_S, LIVE_REFRESH_S

    train = {**TINY, "total_timesteps": 400_000, "net_arch": [8]}
    config = RunConfig.from_dict({"display_name": "Watched", "train": train})
    job = manager.submit(config, owner="someone")
    run_dir = manager.run_dir(job.job_id)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (run_dir / "episodes.csv").is_file():
        time.sleep(0.2)

    async def watch(url: str):
        async with StudentClient.connect(url) as client:
            opened = await client.open_page("train")
            job_list, history = client.fragment_of(opened, "dataframe"), client.fragment_of(opened, "multiselect")
            return job_list, history, await client.rerun_fragment(job_list), await client.rerun_fragment(history)

    with streamlit_server(tmp_path) as server:  # it lists the job from the runs folder
        job_list, history, list_run, history_run = asyncio.run(watch(server.url))
    assert LIVE_REFRESH_S < HISTORY_REFRESH_S and job_list != history
    # A watcher's frequent refresh carries the job list only; the charts come with the slower one.
    assert list_run.of_kind("dataframe") and not list_run.of_kind("plotly_chart")
    assert len(history_run.of_kind("plotly_chart")) == 3 and not history_run.of_kind("dataframe")


def history_of(steps: list[int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Episodes and evaluations of a made-up run, one row per entry of ``steps``."""
    n = len(steps)
    episodes = pd.DataFrame({"timesteps": steps, "return": [-1.0] * n, "length": [25] * n,
                             "time_s": [float(i) for i in range(n)], "mae_focus": [1e-4] * n,
                             "mae_all": [2e-4] * n})  # fmt: skip
    evaluations = pd.DataFrame({"timesteps": steps, "mean_final_mae_focus": [1e-4] * n,
                                "mean_final_mae_all": [2e-4] * n, "mean_return": [-1.0] * n})  # fmt: skip
    return episodes, evaluations


def test_a_run_name_with_html_shows_literally_in_every_chart_legend_and_hover():
    name = "../../etc/passwd <b>bold</b> demo"
    figures = history_figures([(name, *history_of([1000, 2000]))], "timesteps", 1)
    names = [trace.name for fig in figures for trace in fig.data]
    assert len(names) == 6
    assert all("<b>" not in n and "&lt;b&gt;bold&lt;/b&gt; demo" in n for n in names), names


def test_the_legend_has_a_band_of_its_own_under_the_axis_title_that_grows_with_the_runs():
    two = [("one", *history_of([1000, 2000])), ("two", *history_of([1000, 3000]))]
    for fig in history_figures(two, "timesteps", 1):
        legend = fig.layout.legend
        # At the figure's bottom, not at a paper y the legend grows upwards from into the axis title.
        assert (legend.yref, legend.y, legend.yanchor) == ("container", 0, "bottom")
        entries = sum(1 for trace in fig.data if trace.showlegend is not False)
        assert fig.layout.height >= CHART_HEIGHT_PX + LEGEND_ROW_PX * entries


def test_the_chart_titles_sit_under_a_strip_left_free_for_the_mode_bar():
    for fig in history_figures([("one", *history_of([1000, 2000]))], "timesteps", 1):
        # On the plot's top edge; the margin above it holds the title and the mode bar (shown on hover).
        title = fig.layout.title
        assert (title.yref, title.y, title.yanchor) == ("paper", 1, "bottom")
        assert fig.layout.margin.t >= MODEBAR_PX + title.pad.b + 22  # 22 px: the title's line


def test_a_single_evaluation_is_drawn_as_points_on_a_timesteps_axis_from_zero():
    *_, mae = history_figures([("one", *history_of([20_000]))], "timesteps", 1)
    assert [trace.name for trace in mae.data] == ["one: focus", "one: all four"]
    assert all("markers" in trace.mode for trace in mae.data), "a line through one point is invisible"
    # Plotly zoomed onto the lone point (ticks 19.999k, 19.9995k, ...); from 0 with ticks like 20k.
    assert (mae.layout.xaxis.rangemode, mae.layout.xaxis.tickformat) == ("tozero", "~s")


def test_a_run_keeps_its_colour_as_new_jobs_are_added_in_front_of_it():
    kept: dict[str, str] = {}
    chosen: list[str] = []
    for new in ("first-run", "second-run", "third-run", "fourth-run"):
        chosen = [new, *chosen]  # as the page does with a launched job
        colors = run_colors(chosen, kept)
        assert {run: colors[run] for run in kept} == kept, "no run changed colour"
        assert len(set(colors.values())) == len(chosen), "every run has a colour of its own"
        kept.update(colors)


def test_eight_runs_all_get_different_colours_and_history_figures_use_them():
    chosen = [f"run-{i}" for i in range(len(COLORS))]
    colors = run_colors(chosen, {})
    assert sorted(colors.values()) == sorted(COLORS)
    figures = history_figures([("a", *history_of([1000]))], "timesteps", 1, colors=[colors["run-3"]])
    assert {trace.line.color for fig in figures for trace in fig.data if trace.mode != "markers"} == {colors["run-3"]}


#: A well-formed owner token (the ``?owner=`` of the URL).
ALICE = "alice-token-0123456789"


@pytest.fixture
def damaged_runs(tmp_path, monkeypatch):
    """A runs folder with a finished job of ALICE's that lost its config.yaml, and a job whose
    job.json is not JSON; the page's manager is made after them (as after a server restart)."""
    runs = tmp_path / "runs"
    (run_folder(runs, "lost-config", job=a_job("lost-config", owner=ALICE)) / "config.yaml").unlink()
    (run_folder(runs, "garbled") / "job.json").write_text('{"job_id": "garbled", "status": ')
    with page_manager(runs, monkeypatch):
        yield runs


def test_a_finished_job_whose_files_are_damaged_says_so_and_can_be_deleted(damaged_runs):
    at = page(owner=ALICE)
    assert not at.exception, at.exception
    assert [(row["run"], row["status"]) for row in table(at)] == [("Lost-Config", "damaged")]
    assert any(
        markdown_text("finished, but config.yaml is missing, so it cannot be compared") in w.value for w in at.warning
    ), [w.value for w in at.warning]
    at.button(key="train.delete").click().run()
    assert not at.exception, at.exception
    assert not (damaged_runs / "lost-config").exists() and table(at) == []


def test_an_unreadable_job_record_is_named_and_only_an_instructor_may_delete_it(damaged_runs):
    student = page(owner=ALICE)
    [note] = [w.value for w in student.warning if "job records cannot be read" in w.value]
    assert "`garbled`: " + markdown_text("job.json is not valid JSON (Expecting value at line 1, column 33)") in note
    assert "an instructor may delete them" in note
    assert not shows(student, "train.delete_unreadable")

    instructor = page(instructor_password="s3cret")
    instructor.text_input(key="train.password").set_value("s3cret").run()
    instructor.run()
    assert instructor.selectbox(key="train.unreadable").value == "garbled"
    instructor.button(key="train.delete_unreadable").click().run()
    assert not instructor.exception, instructor.exception
    assert not (damaged_runs / "garbled").exists()
    assert not [w for w in instructor.warning if "job records cannot be read" in w.value]


def test_a_run_with_a_huge_episode_log_plots_its_newest_episodes_and_says_so(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    folder = run_folder(runs, "long-run", job=a_job("long-run", owner=ALICE))
    rows = MAX_CSV_BYTES // 40 + 1000  # each row below is 40 bytes or more
    with open(folder / "episodes.csv", "w") as fh:
        fh.write("timesteps,return,length,time_s,mae_focus,mae_all\n")
        fh.writelines(f"{t:08d},-1.234567,2,{t / 1000:.3f},0.000123,0.000234\n" for t in range(1, rows + 1))
    with page_manager(runs, monkeypatch):
        at = page(owner=ALICE)
        assert not at.exception, at.exception
        [caption] = [c.value for c in at.caption if "episode log is over" in c.value]
        assert markdown_text("Long-Run") + ": its episode log is over 16 MB; the plots show its newest" in caption
        assert len(at.get("plotly_chart")) == 3


def test_runs_differ_in_the_history_charts_without_colour_and_for_colour_blind_students():
    from color_vision import distance

    chosen = [f"run-{i}" for i in range(len(COLORS))]
    colors = run_colors(chosen, {})
    for a, b in itertools.combinations(colors.values(), 2):
        for vision in ("deuteranopia", "protanopia"):
            assert distance(a, b, vision) >= 15, (a, b, vision)  # green and red were 10 apart for deuteranopes
    runs = [(run, *history_of([1000, 2000])) for run in chosen]
    returns, lengths, mae = history_figures(runs, "timesteps", 1, colors=[colors[run] for run in chosen])
    for fig in (returns, lengths):
        curves = [t for t in fig.data if t.mode == "lines"]
        assert len({t.line.dash for t in curves}) == len(chosen), "each run's curve has a dash of its own"
    # In the evaluations the dash says focus or all four: each run has a marker symbol of its own.
    focus = [t for t in mae.data if t.name.endswith(": focus")]
    assert len({t.marker.symbol for t in focus}) == len(chosen)


def test_history_axes_grow_their_margins_to_hold_the_tick_labels():
    # Drawn without Streamlit's theme, whose template set automargin; 10 px margins cut "20k".
    for fig in history_figures([("one", *history_of([1000, 2000]))], "timesteps", 1):
        assert fig.layout.xaxis.automargin is True and fig.layout.yaxis.automargin is True


def test_the_rollout_line_answers_the_tutorials_part_iv_example_in_its_words(manager):
    # Part IV: n_steps 100, n_envs 2, batch_size 50, n_epochs 3, 2 "epochs" (rollouts) = 400 steps;
    # it asks for n_batch in one epoch (4) and the total number of model updates (4 x 3 x 2 = 24).
    at = page()
    values = {"n_steps": 100, "n_envs": 2, "batch_size": 50, "n_epochs": 3, "total_timesteps": 400}
    for key, value in values.items():
        field(at, f"train.{key}").set_value(value)
    at.run()
    (line,) = [c.value for c in at.caption if "rollout" in c.value]
    assert "200 samples" in line and "400 steps = 2 rollouts" in line
    assert "4 minibatches of 50 (n_batch)" in line and "n_epochs = 3" in line
    assert "12 gradient steps per rollout" in line
    assert "2 × 12 = 24 gradient steps (model updates) in the whole training" in line


@pytest.fixture
def two_students_runs(tmp_path, monkeypatch):
    """A runs folder with a finished run of ALICE's and a newer one of another student's."""
    runs = tmp_path / "runs"
    run_folder(runs, "alice-run", job=a_job("alice-run", owner=ALICE, submitted=1.0))
    run_folder(runs, "bob-run", job=a_job("bob-run", owner="bob-token-0123456789", submitted=2.0))
    with page_manager(runs, monkeypatch):
        yield runs


def test_the_history_first_plots_this_sessions_own_newest_run_not_another_students(two_students_runs):
    at = page(owner=ALICE)
    assert not at.exception, at.exception
    assert at.multiselect(key="train.plot").value == ["alice-run"]
    # A session with no run of its own sees the newest run, as before.
    assert page(owner="carol-token-0123456789").multiselect(key="train.plot").value == ["bob-run"]


def a_progress(fps: float, eta_s: float | None) -> Progress:
    return Progress(status="running", timesteps=1000, total_timesteps=31_000, fps=fps, elapsed_s=10.0, eta_s=eta_s,
                    updated=time.time(), error=None, pid=None)  # fmt: skip


def test_a_queued_job_gets_an_estimated_wait_from_the_running_jobs_eta_and_the_queue_ahead():
    running = a_job("r", status="running")
    first = dataclasses.replace(a_job("q1", status="queued"), total_timesteps=60_000, position=1)
    second = dataclasses.replace(a_job("q2", status="queued"), total_timesteps=30_000, position=2)
    jobs = [running, first, second]
    progress = {"r": a_progress(fps=100.0, eta_s=300.0), "q1": None, "q2": None}
    # One slot: q1 starts when r ends (300 s), q2 after q1's 60,000 steps at 100 steps/s.
    assert queue_waits(jobs, progress, slots=1) == {"q1": 300.0, "q2": 900.0}
    # Two slots: q1 takes the free one at once, q2 the one r frees.
    assert queue_waits(jobs, progress, slots=2) == {"q1": 0.0, "q2": 300.0}
    # No ETA yet (a job just started): no guess.
    assert queue_waits(jobs, {**progress, "r": a_progress(fps=0.0, eta_s=None)}, slots=1) == {}
    assert [wait_text(s) for s in (20, 300, 900, 3900)] == ["wait <1m", "wait ~5m", "wait ~15m", "wait ~1h 05m"]
    assert len(wait_text(9 * 3600 + 59 * 60)) <= len(JOB_COLUMN_LONGEST["time"])
