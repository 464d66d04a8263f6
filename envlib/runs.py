"""The run directory: what a training run writes, and how to read it back without pickle.

A run lives in ``RUNS_DIR/<run_id>/``:

| file | content |
|---|---|
| ``config.yaml`` | the :class:`~envlib.config.RunConfig` as safe YAML |
| ``model.zip`` | the SB3 model (loaded back weights-only, see :mod:`envlib.agent`) |
| ``normalizer.npz`` | ``VecNormalize`` statistics as plain arrays (:class:`ObsNormalizer`) |
| ``episodes.csv`` | one row per training episode (:data:`EPISODE_COLUMNS`) |
| ``evaluations.csv`` | one row per periodic evaluation on fixed seeds (:data:`EVALUATION_COLUMNS`) |
| ``progress.json`` | status, timesteps, speed (:class:`Progress`), rewritten about every second |
| ``STOP`` | created by anyone who wants the run to stop at its next step |

Whole files are written atomically (a temporary file in the same folder, then
``os.replace``), so a crash never leaves half a file behind. The two CSV files grow by
whole lines while the run trains; :func:`read_csv` ignores a last line still being
written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from envlib.config import ConfigError, RunConfig

CONFIG_FILE = "config.yaml"
MODEL_FILE = "model.zip"
NORMALIZER_FILE = "normalizer.npz"
EPISODES_FILE = "episodes.csv"
EVALUATIONS_FILE = "evaluations.csv"
PROGRESS_FILE = "progress.json"
STOP_FILE = "STOP"

#: Columns of ``episodes.csv``: timesteps (total so far), return (raw, not normalised),
#: length (steps), time_s (since the start of training), final mae_focus and mae_all (m).
EPISODE_COLUMNS = ("timesteps", "return", "length", "time_s", "mae_focus", "mae_all")
#: Columns of ``evaluations.csv``: means over the run's fixed evaluation seeds.
EVALUATION_COLUMNS = ("timesteps", "mean_final_mae_focus", "mean_final_mae_all", "mean_return")

#: A run id: lowercase letters, digits and dashes, starting with a letter or digit.
RUN_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")

Status = Literal["running", "finished", "stopped", "failed"]
STATUSES: tuple[str, ...] = ("running", "finished", "stopped", "failed")


class RunError(Exception):
    """A run file is missing, unreadable or not what it should be.

    :param path: the offending file (or run directory).
    :param problem: what is wrong with it.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self) -> tuple[type[RunError], tuple[Path, str]]:
        # Pickled by a worker process (envlib.workers); the default would call RunError(message).
        return type(self), (self.path, self.problem)


# --- names and paths ----------------------------------------------------------------------
def is_valid_run_id(run_id: object) -> bool:
    """True if ``run_id`` is a string matching :data:`RUN_ID_PATTERN`."""
    return isinstance(run_id, str) and RUN_ID_PATTERN.fullmatch(run_id) is not None


def run_path(runs_dir: str | Path, run_id: str) -> Path:
    """The directory of run ``run_id`` inside ``runs_dir``; never a path outside it.

    :raises ValueError: if ``run_id`` is not a valid id (e.g. ``../x``, ``a/b``, ``""``).
    """
    if not is_valid_run_id(run_id):
        raise ValueError(
            f"invalid run id {run_id!r}: use 1 to 64 lowercase letters, digits and dashes, "
            "starting with a letter or digit"
        )
    root = Path(runs_dir).resolve()
    path = (root / run_id).resolve()
    if path.parent != root:  # e.g. a symlink planted in the runs folder
        raise ValueError(f"run id {run_id!r} does not resolve to a folder inside {root}")
    return path


# --- atomic writes --------------------------------------------------------------------------
def write_atomic(path: str | Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; runs are read by the app and by people
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_config(run_dir: str | Path, config: RunConfig) -> None:
    """Write ``config.yaml`` (safe YAML of ``config.to_dict()``)."""
    write_atomic(Path(run_dir) / CONFIG_FILE, config.to_yaml())


def read_config(run_dir: str | Path) -> RunConfig:
    """Read and validate ``config.yaml``; :class:`RunError` if missing or invalid."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise RunError(path, "missing: not a run directory, or the run has not started")
    try:
        return RunConfig.from_yaml(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise RunError(path, f"cannot be read: {exc}") from None
    except ConfigError as exc:
        raise RunError(path, f"invalid config: {exc}") from None


# --- observation normaliser -----------------------------------------------------------------
@dataclass
class ObsNormalizer:
    """``VecNormalize``'s statistics as plain arrays, applied without SB3.

    normalised obs = clip((obs - mean) / sqrt(var + epsilon), -clip_obs, clip_obs)
    when ``norm_obs``; the raw obs otherwise.

    :param obs_mean: running mean of the raw observations, shape (d,).
    :param obs_var: running variance, shape (d,).
    :param obs_count: number of observations behind the statistics.
    :param ret_var: running variance of the discounted return (reward normalisation).
    :param ret_count: number of returns behind ``ret_var``.
    :param norm_obs: whether observations are normalised.
    :param norm_reward: whether rewards were normalised in training.
    :param clip_obs: bound of the normalised observations.
    :param clip_reward: bound of the normalised rewards.
    :param gamma: discount of the return used for reward normalisation.
    :param epsilon: added to the variances.
    """

    obs_mean: np.ndarray
    obs_var: np.ndarray
    obs_count: float
    ret_var: float
    ret_count: float
    norm_obs: bool
    norm_reward: bool
    clip_obs: float
    clip_reward: float
    gamma: float
    epsilon: float

    def normalize(self, obs: np.ndarray) -> np.ndarray:
        """Normalise raw observations of shape (N, d); returns float32."""
        obs = np.asarray(obs, dtype=np.float64)
        if not self.norm_obs:
            return obs.astype(np.float32)
        out = (obs - self.obs_mean) / np.sqrt(self.obs_var + self.epsilon)
        return np.clip(out, -self.clip_obs, self.clip_obs).astype(np.float32)

    @classmethod
    def from_vec_normalize(cls, vec_normalize: Any) -> ObsNormalizer:
        """Snapshot the statistics of an SB3 ``VecNormalize`` (copies the arrays)."""
        obs_rms, ret_rms = vec_normalize.obs_rms, vec_normalize.ret_rms
        return cls(
            obs_mean=np.array(obs_rms.mean, dtype=np.float64),
            obs_var=np.array(obs_rms.var, dtype=np.float64),
            obs_count=float(obs_rms.count),
            ret_var=float(np.asarray(ret_rms.var).reshape(-1)[0]),
            ret_count=float(ret_rms.count),
            norm_obs=bool(vec_normalize.norm_obs),
            norm_reward=bool(vec_normalize.norm_reward),
            clip_obs=float(vec_normalize.clip_obs),
            clip_reward=float(vec_normalize.clip_reward),
            gamma=float(vec_normalize.gamma),
            epsilon=float(vec_normalize.epsilon),
        )

    def save(self, path: str | Path) -> None:
        """Write an ``.npz`` of plain float arrays (no pickle), atomically."""
        buffer = io.BytesIO()
        arrays = {f.name: np.asarray(getattr(self, f.name), dtype=np.float64) for f in dataclasses.fields(self)}
        np.savez(buffer, **arrays)
        write_atomic(path, buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> ObsNormalizer:
        """Read an ``.npz`` written by :meth:`save` with ``allow_pickle=False``.

        :raises RunError: if the file is missing, not an npz, or lacks or mangles a field.
        """
        path = Path(path)
        if not path.is_file():
            raise RunError(path, "missing: the run has no observation normaliser")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        try:
            with path.open("rb") as file:
                is_zip = file.read(4) == b"PK\x03\x04"
        except OSError as exc:
            raise RunError(path, f"cannot be read: {exc.strerror}") from None
        if not is_zip:  # np.load would take any other bytes for a pickle, and say so
            raise RunError(path, "is not a valid normaliser file: not an .npz archive")
        try:
            with np.load(path, allow_pickle=False) as npz:
                missing = sorted(set(fields) - set(npz.files))
                if missing:
                    raise RunError(path, f"lacks the field(s) {', '.join(missing)}")
                raw = {name: np.asarray(npz[name]) for name in fields}
        except RunError:
            raise
        except Exception as exc:  # zipfile.BadZipFile, ValueError (object arrays), OSError, ...
            # numpy's own text for object arrays suggests allow_pickle=True: never pass that on.
            why = "it holds Python objects, not plain numbers" if "pickle" in str(exc) else str(exc)
            raise RunError(path, f"is not a valid normaliser file: {why}") from None
        for name, value in raw.items():
            if value.dtype.kind not in "fiub" or not np.all(np.isfinite(value)):
                raise RunError(path, f"field {name} must hold finite numbers")
        mean, var = raw["obs_mean"].reshape(-1), raw["obs_var"].reshape(-1)
        if mean.shape != var.shape or np.any(var < 0):
            raise RunError(path, f"obs_mean {mean.shape} and obs_var {var.shape} disagree or var < 0")
        scalars = {name: float(raw[name].reshape(-1)[0]) for name in fields if name not in ("obs_mean", "obs_var")}
        return cls(
            obs_mean=mean,
            obs_var=var,
            obs_count=scalars["obs_count"],
            ret_var=scalars["ret_var"],
            ret_count=scalars["ret_count"],
            norm_obs=bool(scalars["norm_obs"]),
            norm_reward=bool(scalars["norm_reward"]),
            clip_obs=scalars["clip_obs"],
            clip_reward=scalars["clip_reward"],
            gamma=scalars["gamma"],
            epsilon=scalars["epsilon"],
        )


# --- progress -------------------------------------------------------------------------------
@dataclass
class Progress:
    """The content of ``progress.json``.

    :param status: ``running``, ``finished``, ``stopped`` or ``failed``.
    :param timesteps: environment steps done so far (all environments together).
    :param total_timesteps: steps the run aims for.
    :param fps: steps per second since the start.
    :param elapsed_s: wall time since the start, s.
    :param eta_s: estimated seconds left, or None when unknown or not running.
    :param updated: unix time of this record.
    :param error: the error message when failed.
    :param pid: id of the training process.
    """

    status: Status
    timesteps: int
    total_timesteps: int
    fps: float
    elapsed_s: float
    eta_s: float | None
    updated: float
    error: str | None
    pid: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def write_progress(run_dir: str | Path, progress: Progress) -> None:
    """Rewrite ``progress.json`` atomically."""
    write_atomic(Path(run_dir) / PROGRESS_FILE, json.dumps(progress.to_dict()))


#: The JSON types of each :class:`Progress` field (``None``: the field may be null).
_PROGRESS_TYPES: dict[str, tuple[type | None, ...]] = {
    "status": (str,), "timesteps": (int,), "total_timesteps": (int,), "fps": (int, float),
    "elapsed_s": (int, float), "eta_s": (int, float, None), "updated": (int, float),
    "error": (str, None), "pid": (int, None),
}  # fmt: skip


def wrong_json_type(data: dict[str, Any], types: dict[str, tuple[type | None, ...]]) -> str | None:
    """The first key of ``data`` whose value is not of its types (``None`` in them: null is
    allowed; a bool is never an int here), as ``key is value``; None if all fit. Absent keys pass."""
    for key, kinds in types.items():
        if key not in data or (data[key] is None and None in kinds):
            continue
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, tuple(k for k in kinds if k is not None)):
            text = repr(value)
            return f"{key} is {text if len(text) <= 40 else text[:39] + '…'}"  # a damaged file may hold anything
    return None


def read_progress(run_dir: str | Path) -> Progress:
    """Read ``progress.json``; :class:`RunError` if missing or malformed.

    Every field's type is checked, so a damaged record cannot reach a page as, say, a
    string of timesteps.
    """
    path = Path(run_dir) / PROGRESS_FILE
    if not path.is_file():
        raise RunError(path, "missing: the run has not started")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RunError(path, f"is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RunError(path, f"cannot be read: {exc}") from None
    names = list(_PROGRESS_TYPES)
    if not isinstance(data, dict) or sorted(data) != sorted(names):
        raise RunError(path, f"is not a valid progress record: keys must be {names}")
    wrong = wrong_json_type(data, _PROGRESS_TYPES)
    if wrong:
        raise RunError(path, f"is not a valid progress record: {wrong}")
    if data["status"] not in STATUSES:
        raise RunError(path, f"is not a valid progress record: status must be one of {STATUSES}")
    return Progress(**data)


def request_stop(run_dir: str | Path) -> None:
    """Ask the run training in ``run_dir`` to stop at its next step (creates ``STOP``)."""
    (Path(run_dir) / STOP_FILE).touch()


# --- CSV logs -------------------------------------------------------------------------------
class CsvLog:
    """A CSV file that grows by whole, flushed lines while a run trains.

    :param path: the file; created with a header line if it does not exist.
    :param columns: the column names.
    """

    def __init__(self, path: str | Path, columns: Sequence[str]) -> None:
        self.path = Path(path)
        self.columns = tuple(columns)
        if not self.path.exists():
            write_atomic(self.path, ",".join(self.columns) + "\n")
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def append(self, rows: Iterable[Sequence[float]]) -> None:
        """Append rows (one value per column) with one write, then flush."""
        lines = []
        for row in rows:
            if len(row) != len(self.columns):
                raise ValueError(f"{self.path.name}: need {len(self.columns)} values, got {len(row)}")
            lines.append(",".join(_format(v) for v in row) + "\n")
        if lines:
            self._fh.write("".join(lines))
            self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def _format(value: float) -> str:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(int(value))
    return f"{float(value):.7g}"


#: A CSV log larger than this is read from its header and its last this many bytes only, B.
#: 16 MiB hold some 300,000 episodes: every episode of a run of the server's 1,000,000 steps
#: unless its episodes are shorter than about 4 steps; a plot needs far fewer.
MAX_CSV_BYTES = 16 * 2**20


def read_csv(path: str | Path, columns: Sequence[str], max_bytes: int = MAX_CSV_BYTES) -> pd.DataFrame:
    """Read a run's CSV log; a last line still being written is ignored.

    Memory stays bounded: of a file larger than ``max_bytes`` (default :data:`MAX_CSV_BYTES`)
    only the header and the whole lines of its last ``max_bytes`` are read, so the frame holds
    the newest rows (the ``timesteps`` column still says where they are in the run), and
    ``frame.attrs["skipped_bytes"]`` is the number of bytes of older rows left out (else 0).

    :return: a DataFrame with ``columns`` (empty if the file does not exist yet).
    :raises RunError: if the header or a value is not what the log writes.
    """
    path = Path(path)
    if not path.is_file():
        return pd.DataFrame({c: pd.Series(dtype=float) for c in columns})
    try:
        raw, skipped = _read_head_and_tail(path, max_bytes)
    except OSError as exc:
        raise RunError(path, f"cannot be read: {exc}") from None
    text = raw.decode("utf-8", errors="replace")
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    try:
        frame = pd.read_csv(io.StringIO(text)) if text else pd.DataFrame()
    except Exception as exc:
        raise RunError(path, f"is not a valid CSV log: {exc}") from None
    if tuple(frame.columns) != tuple(columns):
        if frame.empty and not text:
            return pd.DataFrame({c: pd.Series(dtype=float) for c in columns})
        raise RunError(path, f"columns must be {list(columns)}, got {list(frame.columns)}")
    if not frame.empty and not all(pd.api.types.is_numeric_dtype(frame[c]) for c in columns):
        raise RunError(path, "holds a value that is not a number")
    frame.attrs["skipped_bytes"] = skipped
    return frame


def _read_head_and_tail(path: Path, max_bytes: int) -> tuple[bytes, int]:
    """The whole file if it has at most ``max_bytes``; else its first line and the whole lines
    of its last ``max_bytes``. Also returns the number of bytes left out between them."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size <= max_bytes:
            return fh.read(size), 0
        header = fh.readline(64 * 1024)
        start = max(len(header), size - max_bytes)
        fh.seek(start - 1)  # from the byte before: it tells whether `start` begins a line
        tail = fh.read(size - start + 1)
    first = tail.find(b"\n") + 1  # 0 if no newline: the tail is part of one (long) line
    kept = tail[first:] if first else b""
    return header + kept, size - len(header) - len(kept)


def read_episodes(run_dir: str | Path) -> pd.DataFrame:
    """``episodes.csv`` of a run as a DataFrame (:data:`EPISODE_COLUMNS`)."""
    return read_csv(Path(run_dir) / EPISODES_FILE, EPISODE_COLUMNS)


def read_evaluations(run_dir: str | Path) -> pd.DataFrame:
    """``evaluations.csv`` of a run as a DataFrame (:data:`EVALUATION_COLUMNS`)."""
    return read_csv(Path(run_dir) / EVALUATIONS_FILE, EVALUATION_COLUMNS)
