"""The Train page's pieces: the config form, the job list with its controls, and live history plots.

The form edits a *base* config (a preset or an uploaded YAML): the keys of the tutorial's
training config and the env keys that shape the reward are fields; every other key of the
base (actuators, observation, target, ...) is kept as it is. Values are validated by
:class:`envlib.config.RunConfig` and the server's :class:`envlib.jobs.JobLimits` on every
change, and each error is shown under its field.

Live parts only read: the job list comes from the :class:`~envlib.jobs.JobManager` in memory,
the history from the run's CSV files (cached by modification time) and figures are rebuilt
only when a file changed, so one refresh tick costs some 10-25 ms of server CPU time. The page
refreshes itself only while a job is queued or running.

Session state keys start with ``train.``.
"""

from __future__ import annotations

import heapq
import hmac
import time
import typing
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import yaml

from envlib.config import ActionMode, Algorithm, ConfigError, EnvConfig, LrSchedule, RewardMode, RunConfig, TrainConfig
from envlib.jobs import Job, JobError, JobManager, RunScan, scan_runs
from envlib.names import sanitize_run_id
from envlib.pretrained import AGENTS, PRETRAINED_DIR
from envlib.runs import EPISODE_COLUMNS, EVALUATION_COLUMNS, MAX_CSV_BYTES, Progress, RunError, read_csv, read_progress
from ui.widgets import (
    BEAM_LABELS,
    MODEBAR_PX,
    SERIES_COLORS,
    cell_width,
    column_grid,
    distinct_colors,
    formula_lines,
    markdown_text,
    plotly_chart,
    plotly_text,
    series_line,
    series_marker,
    stable_slot,
)

P = "train."
#: Seconds between two refreshes of the job list while a job is queued or running.
LIVE_REFRESH_S = 2.0
#: Seconds between two refreshes of the history charts: they are most of a refresh's cost,
#: paid by every session watching (bench/workshop_load.py --watchers).
HISTORY_REFRESH_S = 6.0
#: Uploaded configs are small text files.
MAX_UPLOAD_BYTES = 64 * 1024
#: The limit as people read it (the uploader itself can only say "1MB per file").
UPLOAD_LIMIT = f"{MAX_UPLOAD_BYTES // 1024} KB"
#: Raw episode points drawn per run; longer histories are thinned (the smoothed curve uses all).
MAX_PLOT_POINTS = 1500
TUTORIAL_PRESET = "Tutorial, Part IV"
#: The preset box's entry for a form that is no preset (edited, uploaded, handed over), so
#: choosing the preset it showed before is a change again and loads it.
CUSTOM_PRESET = "Custom (edited or uploaded)"

FieldKind = Literal["select", "bool", "int", "float", "optional_int", "optional_float", "int_list", "range", "text"]


@dataclass(frozen=True)
class Field:
    """One form field for one config key.

    :param key: dotted config key, e.g. ``train.batch_size`` (``display_name`` at the top).
    :param label: the widget's label.
    :param help: one line shown as the widget's tooltip.
    :param kind: how the value is entered (see :func:`to_widget` and :func:`from_widget`).
    :param options: choices of a ``select`` field.
    :param step: step of a number field.
    :param fmt: printf format of a number field.
    """

    key: str
    label: str
    help: str
    kind: FieldKind
    options: tuple[Any, ...] = ()
    step: float | int | None = None
    fmt: str | None = None

    @property
    def widget_key(self) -> str:
        return f"{P}f.{self.key}"


def _choices(alias: Any) -> tuple[str, ...]:
    return typing.get_args(alias)


REWARD_FIELDS = (
    Field("env.reward_mode", "Reward mode",
          "What the agent is paid for; 'custom' needs a reward spec from the Reward designer or a YAML upload.",
          "select", _choices(RewardMode)),
    Field("env.action_mode", "Action mode",
          "direct: the action is the magnet setting; delta: it is added to the current setting.",
          "select", _choices(ActionMode)),
    Field("env.time_reward", "Time reward",
          "Added to the reward every step (e.g. -1 pays the agent to end episodes early).",
          "float", step=0.1, fmt="%g"),
    Field("env.abort_if_off_screen", "Abort if off screen",
          "End the episode when the beam centre leaves the screen.",
          "bool"),
    Field("env.time_limit", "Time limit (steps)",
          "Steps per episode before it is cut off; empty for no limit.",
          "optional_int", step=1),
    Field("env.threshold_hold", "Threshold hold (steps)",
          "Consecutive steps within all set thresholds that count as success and end the episode.",
          "int", step=1),
    *(
        Field(f"env.target_{name}_threshold", f"{BEAM_LABELS[name]} threshold (m)",
              f"Success when |{BEAM_LABELS[name]} − target| stays below this; empty to ignore {BEAM_LABELS[name]}.",
              "optional_float", step=1e-5, fmt="%.2e")
        for name in ("sigma_x", "sigma_y", "mu_x", "mu_y")  # the focusing ones first
    ),
    Field("env.rescale_action", "Rescale action (low, high)",
          "Range the agent acts in, mapped onto the magnets' range, e.g. -3, 3; empty for physical units.",
          "range"),
)  # fmt: skip
ALGORITHM_FIELDS = (
    Field("train.algorithm", "Algorithm", "PPO (the tutorial's) or TD3.", "select", _choices(Algorithm)),
    Field("train.n_envs", "n_envs",
          "Environments stepped in parallel; one rollout has n_steps × n_envs samples.",
          "int", step=1),
    Field("train.n_steps", "n_steps", "Steps each environment takes before every update.", "int", step=1),
    Field("train.batch_size", "batch_size", "Samples per gradient step (a minibatch of the rollout).", "int", step=1),
    Field("train.n_epochs", "n_epochs", "Passes over each rollout per update.", "int", step=1),
    Field("train.gamma", "gamma",
          "Discount factor: lower values make near rewards matter more (usually above 0.9).",
          "float", step=0.001, fmt="%.4f"),
    Field("train.learning_rate", "learning_rate", "Step size of the optimiser.", "float", step=1e-4, fmt="%.2e"),
    Field("train.lr_schedule", "lr_schedule",
          "constant, or linear decay to 0 at the last step.",
          "select", _choices(LrSchedule)),
    Field("train.ent_coef", "ent_coef",
          "PPO: entropy bonus that keeps the policy exploring.",
          "float", step=0.001, fmt="%g"),
    Field("train.gae_lambda", "gae_lambda",
          "PPO: bias-variance trade-off of the advantage estimate.",
          "float", step=0.01, fmt="%.3f"),
    Field("train.clip_range", "clip_range",
          "PPO: how far one update may move the policy.",
          "float", step=0.01, fmt="%.3f"),
)  # fmt: skip
RUN_FIELDS = (
    Field("display_name", "Run name", "A name for people; the run's folder gets a generated id.", "text"),
    Field("train.total_timesteps", "total_timesteps",
          "Environment steps to train for, all environments together.",
          "int", step=1000),
    Field("train.net_arch", "net_arch",
          "Hidden layer sizes of the actor and critic networks, e.g. 64, 64.",
          "int_list"),
    Field("train.normalize_observation", "normalize_observation",
          "Normalise observations by a running mean and standard deviation.",
          "bool"),
    Field("train.normalize_reward", "normalize_reward",
          "Normalise rewards by a running estimate of the return's spread.",
          "bool"),
    Field("train.frame_stack", "frame_stack",
          "Stack this many past observations; empty for none.",
          "optional_int", step=1),
    Field("train.seed", "seed", "Seed of the training (environments and network): same seed, same run.", "int", step=1),
    Field("train.eval_every", "eval_every",
          "Evaluate on fixed seeds every this many steps; 0 for never.",
          "int", step=1000),
    Field("train.eval_episodes", "eval_episodes", "Episodes (fixed seeds) per evaluation.", "int", step=1),
)  # fmt: skip
FIELDS = REWARD_FIELDS + ALGORITHM_FIELDS + RUN_FIELDS
#: Narrowest column of the form's three groups, rem: a key's name and its help icon fit.
FORM_GROUP_MIN_REM = 12.5
FIELD_BY_KEY = {f.key: f for f in FIELDS}


# --- values: config <-> widgets -------------------------------------------------------------
def _get(data: Mapping[str, Any], key: str) -> Any:
    section, _, name = key.rpartition(".")
    return (data.get(section) or {}).get(name) if section else data.get(name)


def to_widget(field: Field, value: Any) -> Any:
    """A config value as the widget of ``field`` shows it."""
    if field.kind == "int_list":
        return ", ".join(str(v) for v in value or ())
    if field.kind == "range":
        return "" if value is None else ", ".join(f"{float(v):g}" for v in value)
    if field.kind == "text":
        return value or ""
    if field.kind == "int":
        return int(value)
    if field.kind == "float":
        return float(value)
    if field.kind == "optional_int":
        return None if value is None else int(value)
    if field.kind == "optional_float":
        return None if value is None else float(value)
    return value


def from_widget(field: Field, value: Any) -> Any:
    """A widget value as config data; :class:`ConfigError` naming the key if it cannot be read."""
    if field.kind in ("int_list", "range"):
        text = (value or "").strip().strip("[]()")
        if not text:
            if field.kind == "range":
                return None
            raise ConfigError(field.key, "needs at least one layer size, e.g. 64, 64")
        parts = [p.strip() for p in text.replace(";", ",").split(",")]
        try:
            numbers = [int(p) for p in parts] if field.kind == "int_list" else [float(p) for p in parts]
        except ValueError:
            kind = "whole numbers, e.g. 64, 64" if field.kind == "int_list" else "two numbers, e.g. -3, 3"
            raise ConfigError(field.key, f"must be a comma-separated list of {kind}; got {value!r}") from None
        return numbers
    if field.kind == "text":
        return (value.strip() or None) if isinstance(value, str) else None
    return value


def config_data(base: Mapping[str, Any], values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Merge form values into a copy of the base config's plain data.

    :param base: plain config data (nested ``env`` / ``train`` sections).
    :param values: widget values by field key.
    :return: ``(data, errors)``: the merged data and messages of fields that could not be read.
    """
    data = {"env": dict(base.get("env") or {}), "train": dict(base.get("train") or {})}
    errors: dict[str, str] = {}
    for field in FIELDS:
        if field.key not in values:
            continue
        try:
            value = from_widget(field, values[field.key])
        except ConfigError as exc:
            errors[field.key] = exc.message
            continue
        section, _, name = field.key.rpartition(".")
        (data[section] if section else data)[name] = value
    if data["env"].get("reward_mode") != "custom":
        data["env"].pop("reward", None)  # a spec belongs to 'custom' only; switching away drops it
    if data.get("display_name") is None:
        data.pop("display_name", None)
    def plain(section: Mapping[str, Any] | None) -> dict[str, Any]:
        return {k: v for k, v in (section or {}).items() if not (k == "reward" and v is None)}

    unchanged = plain(data["env"]) == plain(base.get("env")) and plain(data["train"]) == plain(base.get("train"))
    if unchanged and base.get("description"):
        data["description"] = base["description"]  # it describes the preset; an edited config is another one
    return data, errors


def field_of(error_key: str) -> str | None:
    """The form field an error key belongs to (``env.reward.terms[0]`` -> ``env.reward_mode``)."""
    if error_key in FIELD_BY_KEY:
        return error_key
    if error_key == "env.reward" or error_key.startswith(("env.reward.", "env.reward[")):
        return "env.reward_mode"
    for key in FIELD_BY_KEY:
        if error_key.startswith((key + ".", key + "[")):
            return key
    return None


def validate(data: Mapping[str, Any], manager: JobManager) -> tuple[RunConfig | None, dict[str, str]]:
    """Validate merged data with envlib's config and the server's limits.

    The env and train sections are checked separately, so an error in each shows at once.

    :return: ``(config, errors)`` with errors keyed by config key (``config`` for the whole).
    """
    errors: dict[str, str] = {}
    for cls, section in ((EnvConfig, "env"), (TrainConfig, "train")):
        try:
            cls.from_dict(data.get(section), prefix=f"{section}.")
        except ConfigError as exc:
            errors[exc.key] = exc.message
    if errors:
        return None, errors
    try:
        config = RunConfig.from_dict(dict(data))
        manager.limits.check(config)
    except ConfigError as exc:
        return None, {exc.key: exc.message}
    return config, {}


# --- presets and uploads --------------------------------------------------------------------
@st.cache_data(ttl=300, show_spinner=False)
def presets() -> dict[str, dict[str, Any]]:
    """Config presets by name: the tutorial's training config and each shipped agent's config."""
    found = {TUTORIAL_PRESET: RunConfig().to_dict()}
    for agent in AGENTS:
        try:
            config = agent.config
        except RunError:
            continue  # a missing or broken shipped config must not take the page down
        found[f"{agent.display_name} ({agent.id})"] = config.to_dict()
    return found


def load_into_form(data: Mapping[str, Any], max_timesteps: int | None = None, preset: str = CUSTOM_PRESET) -> None:
    """Make ``data`` (valid plain config data) the form's base and fill every field from it.

    :param max_timesteps: the server's cap; a longer ``total_timesteps`` (e.g. a shipped
        agent trained for millions of steps) is lowered to it, with a note above the form.
    :param preset: what the preset box shows from now on: the preset's name, or :data:`CUSTOM_PRESET`.
    """
    full = RunConfig.from_dict(dict(data)).to_dict()
    st.session_state[P + "note"] = None
    asked = full["train"]["total_timesteps"]
    if max_timesteps is not None and asked > max_timesteps:
        full["train"]["total_timesteps"] = max_timesteps
        st.session_state[P + "note"] = (
            f"total_timesteps lowered from {asked:,} to {max_timesteps:,}, the most one job may train on this server."
        )
    st.session_state[P + "base"] = full
    for field in FIELDS:
        st.session_state[field.widget_key] = to_widget(field, _get(full, field.key))
    st.session_state[P + "preset"] = preset
    st.session_state[P + "loaded"] = _form_values()  # an edit away from these makes the form custom


def _form_values() -> dict[str, Any]:
    """The form's widget values by config key."""
    return {f.key: st.session_state.get(f.widget_key) for f in FIELDS}


def _mark_edits() -> None:
    """Switch the preset box to :data:`CUSTOM_PRESET` once the form no longer holds the preset it shows."""
    if st.session_state.get(P + "preset") != CUSTOM_PRESET and _form_values() != st.session_state.get(P + "loaded"):
        st.session_state[P + "preset"] = CUSTOM_PRESET


def _upload_key() -> str:
    """The uploader's key; a new one (after a preset is chosen) shows an empty uploader, not the old file."""
    return f"{P}upload{st.session_state.get(P + 'uploads', 0)}"


def parse_upload(name: str, payload: bytes) -> RunConfig:
    """An uploaded YAML config; :class:`ConfigError` if too big, not text or not valid (safe YAML only)."""
    if len(payload) > MAX_UPLOAD_BYTES:
        raise ConfigError("config", f"{name} is {len(payload) / 1024:,.0f} KB; a config is at most {UPLOAD_LIMIT}")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError("config", f"{name} is not UTF-8 text") from None
    return RunConfig.from_yaml(text)


def _on_preset(max_timesteps: int) -> None:
    name = st.session_state[P + "preset"]
    if name == CUSTOM_PRESET:
        return  # the form as it is
    st.session_state[P + "upload_error"] = None
    st.session_state[P + "uploads"] = st.session_state.get(P + "uploads", 0) + 1
    load_into_form(presets()[name], max_timesteps, preset=name)


def _on_upload(max_timesteps: int) -> None:
    uploaded = st.session_state.get(_upload_key())
    st.session_state[P + "upload_error"] = None
    if uploaded is None:
        return
    try:
        config = parse_upload(uploaded.name, uploaded.getvalue())
    except ConfigError as exc:
        st.session_state[P + "upload_error"] = f"{uploaded.name} was not loaded — {exc}"
        return
    load_into_form(config.to_dict(), max_timesteps)


# --- instructor -----------------------------------------------------------------------------
def instructor_password() -> str | None:
    """The instructor password from ``.streamlit/secrets.toml``, or None if none is set."""
    try:
        value = st.secrets.get("instructor_password")
    except Exception:  # no secrets file at all
        return None
    return str(value) if value else None


def is_instructor() -> bool:
    return bool(st.session_state.get(P + "instructor"))


def instructor_box() -> None:
    """Instructor sign-in: with the password, this session may stop and delete anyone's jobs."""
    password = instructor_password()
    with st.expander("Instructor", expanded=False):
        if password is None:
            st.caption("No instructor password is set (key `instructor_password` in `.streamlit/secrets.toml`).")
            return
        if is_instructor():
            st.success("Signed in as instructor: you can stop and delete every job.")
            return
        entered = st.text_input("Instructor password", type="password", key=P + "password")
        if entered:
            if hmac.compare_digest(entered.encode(), password.encode()):
                st.session_state[P + "instructor"] = True
                st.rerun()
            time.sleep(1.0)  # makes guessing slow; blocks only this session's script run
            st.error("Wrong password.")


# --- the config form ------------------------------------------------------------------------
def _render_field(field: Field, error: str | None) -> None:
    key, kwargs = field.widget_key, {"help": field.help, "persist_state": "session"}
    if field.kind == "select":
        st.selectbox(field.label, field.options, key=key, **kwargs)
    elif field.kind == "bool":
        st.checkbox(field.label, key=key, **kwargs)
    elif field.kind in ("int", "optional_int"):
        st.number_input(field.label, value=None, step=int(field.step or 1), key=key, **kwargs)
    elif field.kind in ("float", "optional_float"):
        st.number_input(field.label, value=None, step=float(field.step), format=field.fmt, key=key, **kwargs)
    else:
        st.text_input(field.label, key=key, **kwargs)
    if error:
        st.markdown(f":red[**{field.key.rpartition('.')[2]}**: {error}]")


#: Session-state key where another page (the Reward designer) leaves a config to train.
PREFILL_KEY = P + "prefill"


def _ensure_form(max_timesteps: int) -> None:
    prefill = st.session_state.pop(PREFILL_KEY, None)
    if prefill is not None:
        try:
            load_into_form(prefill, max_timesteps)  # a custom config
            st.session_state[P + "upload_error"] = None
            return
        except ConfigError as exc:
            st.session_state[P + "upload_error"] = f"The config handed over was not loaded — {exc}"
    if P + "base" not in st.session_state or any(f.widget_key not in st.session_state for f in FIELDS):
        base = st.session_state.get(P + "base")
        preset = st.session_state.get(P + "preset", TUTORIAL_PRESET) if base else TUTORIAL_PRESET
        load_into_form(base or presets()[TUTORIAL_PRESET], max_timesteps, preset)
    _mark_edits()


def rollout_summary(config: RunConfig) -> str:
    """The tutorial's Part IV arithmetic for this config, in its words (its "epochs" are rollouts)."""
    t = config.train
    rollout = t.n_steps * t.n_envs
    if t.algorithm != "PPO":
        return f"{rollout:,} samples between updates; {t.total_timesteps:,} steps in all."
    minibatches = -(-rollout // t.batch_size)
    rollouts = -(-t.total_timesteps // rollout)  # SB3 collects whole rollouts until it reaches the total
    per_rollout = minibatches * t.n_epochs
    return (
        f"One rollout (the tutorial's “epoch”) = n_steps × n_envs = {rollout:,} samples, so "
        f"{t.total_timesteps:,} steps = {rollouts:,} rollout{'s' * (rollouts != 1)}. Each rollout is split into "
        f"{minibatches:,} minibatches of {t.batch_size:,} (n_batch) and gone over n_epochs = {t.n_epochs} times: "
        f"{per_rollout:,} gradient steps per rollout, {rollouts:,} × {per_rollout:,} = "
        f"{rollouts * per_rollout:,} gradient steps (model updates) in the whole training."
    )


@st.fragment
def config_form(manager: JobManager, owner: str) -> None:
    """The config form with presets, upload/download and Launch (reruns only itself on edits)."""
    cap = manager.limits.max_total_timesteps
    _ensure_form(cap)
    names = [*presets(), CUSTOM_PRESET]
    c1, c2 = st.columns([2, 3])
    c1.selectbox(
        "Start from a preset", names, key=P + "preset", on_change=_on_preset, args=(cap,), persist_state="session",
        help="The tutorial's training config, or the config of a shipped agent.",
    )  # fmt: skip
    c2.file_uploader(
        "…or upload a config (YAML)", type=["yaml", "yml"], key=_upload_key(), on_change=_on_upload, args=(cap,),
        max_upload_size=1,
        help=f"A file downloaded here, or the tutorial's flat config dict as YAML; at most {UPLOAD_LIMIT}.",
    )  # fmt: skip
    if st.session_state.get(P + "upload_error"):
        st.error(st.session_state[P + "upload_error"])
    if st.session_state.get(P + "note"):
        st.info(st.session_state[P + "note"])
    description = st.session_state[P + "base"].get("description")
    if description:
        st.info(description)

    values = _form_values()
    data, errors = config_data(st.session_state[P + "base"], values)
    config, config_errors = validate(data, manager)  # a field that could not be read keeps its old value here
    for key, message in config_errors.items():
        errors.setdefault(field_of(key) or "config", message)
    if errors:
        config = None

    groups = (("Reward and episode", REWARD_FIELDS), ("Algorithm", ALGORITHM_FIELDS), ("Network and run", RUN_FIELDS))
    grid = column_grid("tr-form-groups", FORM_GROUP_MIN_REM)
    for title, fields in groups:
        with grid.container(width=cell_width(FORM_GROUP_MIN_REM)):
            st.markdown(f"**{title}**")
            for field in fields:
                _render_field(field, errors.get(field.key))
    if "config" in errors:
        st.error(f"config: {errors['config']}")
    if config is not None:
        # Said in full: a reward handed over from the Reward designer is otherwise only "custom".
        st.markdown("**The reward this trains**")
        formula_lines(config.env.reward_spec.latex_lines())
    kept = {k: v for k, v in data["env"].items() if f"env.{k}" not in FIELD_BY_KEY}
    with st.expander("Other environment keys (kept from the preset or upload)"):
        # Plain text: the YAML highlighting drew the keys orange, 2.9:1 on the code block's grey.
        st.code(yaml.safe_dump(kept, sort_keys=False), language="text")

    if config is not None:
        st.caption(rollout_summary(config))
    row = st.container(horizontal=True)
    launch = row.button("Launch training", type="primary", key=P + "launch")
    file_name = f"{_slug(data.get('display_name'))}.yaml"
    row.download_button(
        "Download config", data=config.to_yaml() if config else "", file_name=file_name,
        mime="application/x-yaml", disabled=config is None, key=P + "download", on_click="ignore",
    )  # fmt: skip
    if launch:
        if config is None:
            st.error("Not launched: fix the fields marked in red above.")
            return
        try:
            job = manager.submit(config, owner=owner)
        except (ConfigError, JobError) as exc:
            st.error(f"Not launched: {exc}")
            return
        st.session_state[P + "show_next"] = job.job_id
        st.session_state[P + "control"] = job.job_id  # Stop acts on the job just launched, not an older one
        st.rerun()


def _slug(name: str | None) -> str:
    try:
        return sanitize_run_id(name or "")
    except ValueError:
        return "ares-config"


# --- history: data and figures --------------------------------------------------------------
@dataclass(frozen=True)
class RunSource:
    """A run whose history can be plotted: a job of the manager, or a finished run on disk."""

    run_id: str
    name: str
    run_dir: Path
    job: Job | None = None


def _stamp(path: Path) -> tuple[int, int]:
    try:
        stat = path.stat()
        return stat.st_mtime_ns, stat.st_size
    except OSError:
        return 0, 0


@lru_cache(maxsize=256)
def _read_cached(path: str, columns: tuple[str, ...], stamp: tuple[int, int]) -> pd.DataFrame:
    return read_csv(path, columns)


def read_history(run_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A run's episodes and evaluations, re-read only when the file changed. Do not modify them."""
    episodes, evaluations = run_dir / "episodes.csv", run_dir / "evaluations.csv"
    return (
        _read_cached(str(episodes), EPISODE_COLUMNS, _stamp(episodes)),
        _read_cached(str(evaluations), EVALUATION_COLUMNS, _stamp(evaluations)),
    )


def smoothed(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over ``window`` points (fewer at the start), same length as ``values``."""
    if window <= 1 or len(values) == 0:
        return values.astype(float)
    cumsum = np.cumsum(np.insert(values.astype(float), 0, 0.0))
    idx = np.arange(1, len(values) + 1)
    start = np.maximum(idx - window, 0)
    return (cumsum[idx] - cumsum[start]) / (idx - start)


def thinned(n: int, limit: int = MAX_PLOT_POINTS) -> slice:
    """A slice keeping at most about ``limit`` evenly spaced of ``n`` points (the last one included)."""
    step = max(1, -(-n // limit))
    return slice((n - 1) % step, None, step)



#: The shared palette: each run's colour comes with its own dash (episode curves) and marker
#: symbol (evaluations, whose dash says focus or all four), so runs differ without colour.
COLORS = SERIES_COLORS


def run_colors(chosen: Sequence[str], kept: Mapping[str, str]) -> dict[str, str]:
    """run id -> Plotly colour of each chosen run, so "the blue curve" keeps meaning one run.

    By the run, not its place in the choice (a new job goes first, and by place the same run
    went blue, red, green as jobs were added). A run keeps the colour it had (``kept``) unless
    another chosen run kept it first; a new one takes the colour its id hashes to (the same in
    every session) or the next free one, so up to ``len(COLORS)`` runs all differ.

    :param chosen: run ids in the order of the selection.
    :param kept: colours the runs had before, by run id.
    """
    had_one = [run_id for run_id in chosen if kept.get(run_id) in COLORS]
    new = [run_id for run_id in chosen if run_id not in had_one]
    preferred = [(run_id, COLORS.index(kept[run_id])) for run_id in had_one]
    colors = distinct_colors(preferred + [(run_id, stable_slot(run_id)) for run_id in new], COLORS)
    return {run_id: colors[run_id] for run_id in chosen}


def history_figures(
    runs: list[tuple[str, pd.DataFrame, pd.DataFrame]],
    x: Literal["timesteps", "time_s"],
    window: int,
    colors: Sequence[str] | None = None,
) -> tuple[go.Figure, go.Figure, go.Figure]:
    """Episode return, episode length (raw and smoothed) and evaluation MAE of several runs.

    :param runs: ``(name, episodes, evaluations)`` per run (:mod:`envlib.runs` columns).
    :param x: ``timesteps`` or ``time_s`` (wall time since the start, s) for the episode plots.
    :param window: episodes in the trailing mean of the smoothed curves.
    :param colors: Plotly colour of each run (:func:`run_colors`); default :data:`COLORS` in order.
    :return: three figures; evaluations are always against timesteps.
    """
    # Traces as plain dicts, each figure built in one call: Plotly validates once, not per update.
    x_title = "timesteps" if x == "timesteps" else "wall time (s)"
    colors = colors or [COLORS[i % len(COLORS)] for i in range(len(runs))]
    figures = []
    for column, title in (("return", "Episode return"), ("length", "Episode length (steps)")):
        data = []
        for i, (name, episodes, _) in enumerate(runs):
            color, label = colors[i], plotly_text(name)
            xs, ys = episodes[x].to_numpy(), episodes[column].to_numpy()
            keep = thinned(len(xs))
            data.append({"type": "scatter", "x": xs[keep], "y": ys[keep], "mode": "markers", "name": f"{label} (raw)",
                         "marker": {"size": 3, "color": color, "opacity": 0.25}, "legendgroup": label,
                         "showlegend": False, "hoverinfo": "skip"})  # fmt: skip
            data.append({"type": "scatter", "x": xs[keep], "y": smoothed(ys, window)[keep], "mode": "lines",
                         "line": series_line(color, width=2), "name": label, "legendgroup": label})  # fmt: skip
        extra = {"xaxis": TIMESTEPS_AXIS} if x == "timesteps" else {}
        figures.append(go.Figure(data=data, layout=_layout(title, x_title, legend_rows=len(runs), **extra)))
    data = []
    for i, (name, _, evaluations) in enumerate(runs):
        color, label = colors[i], plotly_text(name)
        steps = evaluations["timesteps"].to_numpy()
        data.append({"type": "scatter", "x": steps, "y": evaluations["mean_final_mae_focus"].to_numpy() * 1e6,
                     "mode": "lines+markers", "line": {"color": color}, "marker": series_marker(color, size=8),
                     "name": f"{label}: focus",
                     "legendgroup": label})  # fmt: skip
        data.append({"type": "scatter", "x": steps, "y": evaluations["mean_final_mae_all"].to_numpy() * 1e6,
                     "mode": "lines+markers", "line": {"color": color, "dash": "dot"},
                     "marker": series_marker(color, size=8), "name": f"{label}: all four",
                     "legendgroup": label})  # fmt: skip
    layout = _layout(
        "Final MAE on fixed seeds (µm)", "timesteps", legend_rows=2 * len(runs), yaxis_type="log", xaxis=TIMESTEPS_AXIS
    )
    figures.append(go.Figure(data=data, layout=layout))
    return tuple(figures)


#: A timesteps axis from 0 with ticks like 20k: with one evaluation Plotly zoomed onto it (19.9995k, 20k, ...).
TIMESTEPS_AXIS = {"rangemode": "tozero", "tickformat": "~s", "hoverformat": ",d"}
#: Height of a history chart without its legend, px.
CHART_HEIGHT_PX = 280
#: Height the legend adds per entry, px (a chart is narrow: one entry per row).
LEGEND_ROW_PX = 22


def _layout(title: str, x_title: str, legend_rows: int, **extra: Any) -> dict[str, Any]:
    """A history chart's layout, with its legend in a band of its own under the x axis title.

    :param legend_rows: legend entries; the chart grows by :data:`LEGEND_ROW_PX` per entry.
    """
    # A legend at the figure's bottom (yref container) makes Plotly keep the axis title above it;
    # at a fixed paper y (-0.25) a legend of two runs grew upwards over the title.
    legend = {"orientation": "h", "yref": "container", "y": 0, "yanchor": "bottom"}
    height = CHART_HEIGHT_PX + MODEBAR_PX + LEGEND_ROW_PX * legend_rows
    # The title sits on the plot, under a strip kept free for the mode bar: shown on hover at
    # the top right, it covered the title of a chart a third of the page wide.
    margin = {"l": 10, "r": 10, "t": 40 + MODEBAR_PX, "b": 10}
    title = {"text": title, "yref": "paper", "y": 1, "yanchor": "bottom", "pad": {"b": 12}}
    # automargin: the small fixed margins would cut the tick labels (no Streamlit theme to set it).
    axes = {"xaxis_title": x_title, "xaxis_automargin": True, "yaxis_automargin": True}
    return {"title": title, "height": height, "margin": margin, "legend": legend, **axes, **extra}


@lru_cache(maxsize=64)
def _cached_figures(
    runs: tuple[tuple[str, str, str, tuple[int, int], tuple[int, int]], ...], x: str, window: int
) -> tuple[go.Figure, go.Figure, go.Figure]:
    """:func:`history_figures` of runs given as ``(name, colour, run_dir, episodes stamp, evaluations stamp)``.

    The stamps (mtime, size) are part of the key, so a finished run's figures are built once
    and shared by every session; st.plotly_chart only reads them.
    """
    data = [(name, *read_history(Path(run_dir))) for name, _, run_dir, _, _ in runs]
    return history_figures(data, x, window, colors=[color for _, color, *_ in runs])


def run_figures(
    sources: list[RunSource], colors: Sequence[str], x: str, window: int
) -> tuple[go.Figure, go.Figure, go.Figure]:
    """The history figures of ``sources`` in ``colors``, rebuilt only when one of their CSV files changed."""
    key = tuple(
        (s.name, color, str(s.run_dir), _stamp(s.run_dir / "episodes.csv"), _stamp(s.run_dir / "evaluations.csv"))
        for s, color in zip(sources, colors, strict=True)
    )
    return _cached_figures(key, x, window)


# --- the live section -----------------------------------------------------------------------
def _progress(run_dir: Path) -> Progress | None:
    try:
        return read_progress(run_dir)
    except RunError:
        return None


@lru_cache(maxsize=1024)
def _final_progress(run_dir: Path, ended: float) -> Progress | None:
    return _progress(run_dir)


def job_progress(manager: JobManager, job: Job) -> Progress | None:
    """The job's last progress record; read once for a job that has ended (it no longer changes)."""
    if job.status == "queued":
        return None
    run_dir = manager.run_dir(job.job_id)
    return _final_progress(run_dir, job.ended) if job.ended is not None else _progress(run_dir)


def queue_waits(jobs: Sequence[Job], progress: Mapping[str, Progress | None], slots: int) -> dict[str, float]:
    """job id -> about how many seconds each queued job waits before it starts.

    The running jobs free their slots at their ETA; each job ahead in the queue then holds a
    slot for its steps at the running jobs' mean speed. Empty when that is not known yet
    (a running job without an ETA): no guess is better than a wrong one.

    :param progress: job id -> its last progress record (:func:`job_progress`).
    :param slots: trainings that run at once (``max_concurrent``).
    """
    running = [progress.get(j.job_id) for j in jobs if j.status == "running"]
    # Nothing to go by without a running job (and beside a free slot a queued job starts at once).
    if not running or any(p is None or p.eta_s is None or p.fps <= 0 for p in running):
        return {}
    queued = sorted((j for j in jobs if j.status == "queued"), key=lambda j: j.position or 0)
    speed = sum(p.fps for p in running) / len(running)
    free = sorted([p.eta_s for p in running] + [0.0] * max(0, slots - len(running)))
    waits = {}
    for job in queued:
        start = heapq.heappop(free)
        waits[job.job_id] = start
        heapq.heappush(free, start + job.total_timesteps / speed)
    return waits


def wait_text(seconds: float) -> str:
    """An estimated wait in whole minutes (it is rough): ``wait ~5m``, ``wait ~1h 05m``."""
    minutes = int(round(seconds / 60))
    if minutes < 1:
        return "wait <1m"
    return f"wait ~{minutes // 60}h {minutes % 60:02d}m" if minutes >= 60 else f"wait ~{minutes}m"


def status_label(job: Job) -> str:
    """``queued (#2)``, ``running``, ``failed`` … as the job list shows it."""
    return f"queued (#{job.position})" if job.status == "queued" else job.status


#: Widths of the job table's columns, px. They add up to what a projector's main area holds
#: (~560 px at 1024 px with the sidebar open); sized to their text, the steps were cut at
#: 1280 px and the elapsed and "by" columns were off-screen at 1024 px.
JOB_COLUMNS_PX = {"run": 105, "status": 110, "progress": 85, "steps": 110, "time": 100, "by": 40}
#: The longest text each of those columns shows (a long run name is cut; it is whole in the
#: runs to plot under the table); the tests check each fits at ~7 px a character plus padding.
JOB_COLUMN_LONGEST = {"status": "queued (#100)", "steps": "9.99k / 99.9k", "time": "59m 59s left", "by": "you"}


def count(n: int) -> str:
    """A step count in three significant digits: ``500``, ``30k``, ``12.3k``, ``1M``."""
    if n < 1000:
        return str(n)
    thousands = float(f"{n / 1e3:.3g}")  # three significant digits: 999,999 is 1000k, so 1M
    return f"{thousands:g}k" if thousands < 1000 else f"{float(f'{n / 1e6:.3g}'):g}M"


def duration(seconds: float | None) -> str:
    """A duration in seconds as ``45s``, ``4m 48s`` or ``1h 05m``: short, so a table column fits it."""
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m {seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def job_table(
    manager: JobManager, jobs: list[Job], owner: str, damaged: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """One row per job: name, status, progress, steps, time left (running), about how long
    until it starts (queued) or taken, whose it is.

    The speed is in the history's progress line: the table fits a projector without it.

    :param damaged: run id -> what is wrong with its files (:func:`disk_scan`); such a job's
        status says so.
    """
    rows = []
    progress_of = {job.job_id: job_progress(manager, job) for job in jobs}
    waits = queue_waits(jobs, progress_of, manager.limits.max_concurrent)
    for job in reversed(jobs):  # newest first
        progress = progress_of[job.job_id]
        done = progress.timesteps / max(progress.total_timesteps, 1) if progress else 0.0
        if progress and job.status == "running" and progress.eta_s is not None:
            time_text = f"{duration(progress.eta_s)} left"
        elif job.job_id in waits:
            time_text = wait_text(waits[job.job_id])
        else:
            time_text = duration(progress.elapsed_s) if progress else ""
        rows.append(
            {
                "run": job.display_name,
                # What is damaged is said under the table; "finished (damaged)" was cut.
                "status": "damaged" if job.job_id in (damaged or {}) else status_label(job),
                "progress": min(done, 1.0),
                "steps": f"{count(progress.timesteps)} / {count(progress.total_timesteps)}"
                if progress
                else f"0 / {count(job.total_timesteps)}",
                "time": time_text,
                "by": "you" if manager.owns(job, owner) else "",
            }
        )
    return pd.DataFrame(rows)


@st.cache_data(ttl=10, show_spinner=False)
def disk_scan(runs_dir: str) -> RunScan:
    """:func:`~envlib.jobs.scan_runs`, scanned at most every 10 s (not on every tick)."""
    return scan_runs(runs_dir)


def damaged_runs(manager: JobManager) -> dict[str, str]:
    """Run id -> what is wrong with its files, for the damaged folders of the runs folder."""
    return {p.run_id: p.problem for p in disk_scan(str(manager.runs_dir)).problems}


def _sources(manager: JobManager, jobs: list[Job]) -> dict[str, RunSource]:
    sources = {
        job.job_id: RunSource(job.job_id, job.display_name, manager.run_dir(job.job_id), job)
        for job in reversed(jobs)
        if job.status != "queued" and job.status != "cancelled"
    }
    for run in disk_scan(str(manager.runs_dir)).runs:  # runs trained from the command line
        sources.setdefault(run.run_id, RunSource(run.run_id, run.display_name, run.run_dir))
    for run in disk_scan(str(PRETRAINED_DIR)).runs:  # shipped agents, if they kept their history
        sources.setdefault(
            f"pretrained/{run.run_id}", RunSource(run.run_id, f"{run.display_name} (pre-trained)", run.run_dir)
        )
    return sources


def _controls(manager: JobManager, jobs: list[Job], owner: str, damaged: Mapping[str, str]) -> None:
    instructor = is_instructor()
    mine = [j for j in reversed(jobs) if instructor or manager.owns(j, owner)]
    if not mine:
        st.caption("You can stop or delete the jobs you launched (instructors: all jobs).")
        return
    # No status in the label: a selectbox keeps showing the label an option had when chosen.
    names = {j.job_id: f"{j.display_name} · {j.job_id}" for j in mine}
    row = st.container(horizontal=True, vertical_alignment="bottom")
    job_id = row.selectbox(
        "Your job" if not instructor else "Job", list(names), format_func=names.get, key=P + "control",
        persist_state="session",
    )
    job = next(j for j in mine if j.job_id == job_id)
    shown = markdown_text(job.display_name)
    if row.button("Stop", key=P + "stop", disabled=not job.active, help="Saves the model reached so far."):
        _act(lambda: manager.stop(job_id, owner, instructor=instructor), f"Stopping {shown}.")
    if row.button("Delete", key=P + "delete", disabled=job.active, help="Deletes the run and its files."):
        _act(lambda: manager.delete(job_id, owner, instructor=instructor), f"Deleted {shown}.")
    if job_id in damaged:
        st.warning(f"**{shown}**: {markdown_text(damaged[job_id])}, so it cannot be compared. Delete removes it.")
    if job.status in ("failed", "interrupted"):
        st.error(f"{shown} {job.status}: {job.error}")
        if job.log_tail:
            st.code(job.log_tail, language="text")
    elif job.error and job.status in ("stopped", "cancelled"):
        st.info(job.error)


def _act(action: Any, message: str) -> None:
    try:
        action()
    except JobError as exc:
        st.error(str(exc))
        return
    disk_scan.clear()  # a deleted run must not linger in the plots
    st.toast(message)
    st.rerun(scope="app")


def _plot_selection(sources: dict[str, RunSource], own: Collection[str]) -> list[str]:
    """The runs to plot; at first this session's newest run (``own``: its job ids), or the
    newest of all when it has none (another student's run is not the one to look at)."""
    key = P + "plot"
    chosen = [r for r in st.session_state.get(key, []) if r in sources]
    new = st.session_state.pop(P + "show_next", None)
    if new in sources and new not in chosen:
        chosen = [new, *chosen]
    if not chosen and sources:
        chosen = [next((r for r in sources if r in own), next(iter(sources)))]
    st.session_state[key] = chosen
    return st.multiselect(
        "Runs to plot (several overlay)", list(sources), format_func=lambda r: sources[r].name, key=key,
        max_selections=len(COLORS), persist_state="session",
    )  # fmt: skip


def _progress_line(source: RunSource) -> None:
    progress = _progress(source.run_dir)
    job, name = source.job, markdown_text(source.name)
    if progress is None:
        st.caption(f"**{name}**: starting…" if job and job.active else f"**{name}**: no progress record")
        return
    status = job.status if job else progress.status
    text = (
        f"**{name}** — {status}: {progress.timesteps:,} / {progress.total_timesteps:,} steps, "
        f"{progress.fps:,.0f} steps/s, {duration(progress.elapsed_s)}"
    )
    if status == "running":
        text += f", ETA {duration(progress.eta_s) or '?'}"
    st.progress(min(progress.timesteps / max(progress.total_timesteps, 1), 1.0), text=text)
    if job and job.status in ("failed", "interrupted"):
        st.error(f"{name} {job.status}: {job.error}")


def jobs_body(manager: JobManager, owner: str, ticking: bool) -> None:
    """The job list and this session's controls; reads only job records."""
    jobs = manager.list()
    active = any(j.active for j in jobs)
    if ticking and not active:
        st.rerun(scope="app")  # everything ended: redraw once and stop refreshing
    damaged = damaged_runs(manager)
    if jobs:
        st.dataframe(
            job_table(manager, jobs, owner, damaged),
            hide_index=True,
            column_config={
                "progress": st.column_config.ProgressColumn(
                    "progress", min_value=0.0, max_value=1.0, format="percent", width=JOB_COLUMNS_PX["progress"]
                ),
                # Fixed widths: a column sized to its first, shorter text cut "4 min 48 s" later on.
                **{
                    name: st.column_config.TextColumn(name, width=width)
                    for name, width in JOB_COLUMNS_PX.items()
                    if name != "progress"
                },
            },
        )  # fmt: skip
        _controls(manager, jobs, owner, damaged)
    else:
        st.caption("No training jobs yet: set a config above and launch one.")
    _unreadable_records(manager, owner)


#: Unreadable job records named one by one; more are counted.
MAX_UNREADABLE_SHOWN = 10


def _unreadable_records(manager: JobManager, owner: str) -> None:
    """A note naming the jobs whose record could not be read, with Delete for instructors."""
    unreadable = manager.unreadable()
    if not unreadable:
        return
    lines = [f"- `{run_id}`: {markdown_text(why)}" for run_id, why in list(unreadable.items())[:MAX_UNREADABLE_SHOWN]]
    if len(unreadable) > MAX_UNREADABLE_SHOWN:
        lines.append(f"- and {len(unreadable) - MAX_UNREADABLE_SHOWN} more")
    instructor = is_instructor()
    who = "You can delete them here." if instructor else "Who started them is unknown: an instructor may delete them."
    st.warning(f"These runs' job records cannot be read, so they are not listed above. {who}\n\n" + "\n".join(lines))
    if not instructor:
        return
    row = st.container(horizontal=True, vertical_alignment="bottom")
    run_id = row.selectbox("Unreadable run", list(unreadable), key=P + "unreadable")
    if row.button("Delete", key=P + "delete_unreadable", help="Deletes the run folder and its files."):
        _act(lambda: manager.delete(run_id, owner, instructor=True), f"Deleted {run_id}.")


def history_body(manager: JobManager, owner: str) -> None:
    """Progress and history plots of the chosen runs; reads only job records and run files."""
    jobs = manager.list()
    sources = _sources(manager, jobs)
    if not sources:
        return
    st.subheader("Training history")
    chosen = _plot_selection(sources, {j.job_id for j in jobs if manager.owns(j, owner)})
    c1, c2 = st.columns(2)
    x = c1.radio("x axis", ("timesteps", "time_s"), format_func={"timesteps": "timesteps", "time_s": "wall time"}.get,
                 horizontal=True, key=P + "x", persist_state="session")  # fmt: skip
    window = c2.slider("Smoothing (episodes)", 1, 500, 50, key=P + "window", persist_state="session")
    kept = st.session_state.setdefault(P + "colors", {})  # run id -> colour, for this session
    colors = run_colors(chosen, kept)
    kept.update(colors)
    readable, readable_colors = [], []
    for run_id in chosen:
        source = sources[run_id]
        _progress_line(source)
        try:
            episodes, _ = read_history(source.run_dir)
        except RunError as exc:
            st.warning(f"{markdown_text(source.name)}: {exc.problem}")
            continue
        if episodes.attrs.get("skipped_bytes") and len(episodes):
            st.caption(
                f"{markdown_text(source.name)}: its episode log is over {MAX_CSV_BYTES // 2**20} MB; the plots show "
                f"its newest {len(episodes):,} episodes, from step {int(episodes['timesteps'].iloc[0]):,}."
            )
        readable.append(source)
        readable_colors.append(colors[run_id])
    if readable:
        # A wrapping row: three charts side by side where they fit, fewer per row where not.
        row = st.container(horizontal=True)
        for i, fig in enumerate(run_figures(readable, readable_colors, x, window)):
            plotly_chart(fig, key=f"{P}fig{i}", where=row)


def live_body(manager: JobManager, owner: str, ticking: bool) -> None:
    """The whole live section once: :func:`jobs_body` then :func:`history_body`."""
    jobs_body(manager, owner, ticking)
    history_body(manager, owner)


def live_section(manager: JobManager, owner: str) -> None:
    """The live part of the page. While jobs are active the job list refreshes itself every
    :data:`LIVE_REFRESH_S` s and the history every :data:`HISTORY_REFRESH_S` s."""
    ticking = any(j.active for j in manager.list())
    st.fragment(jobs_body, run_every=LIVE_REFRESH_S if ticking else None)(manager, owner, ticking)
    st.fragment(history_body, run_every=HISTORY_REFRESH_S if ticking else None)(manager, owner)
