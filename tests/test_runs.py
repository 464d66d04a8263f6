"""Run directories: safe names, atomic files, and loading an agent without unpickling anything."""

from __future__ import annotations

import base64
import io
import json
import os
import pickle
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO

from envlib.agent import load_agent
from envlib.config import RunConfig
from envlib.names import display_name, generate_run_id, sanitize_run_id
from envlib.runs import (
    EPISODE_COLUMNS,
    MAX_CSV_BYTES,
    ObsNormalizer,
    Progress,
    RunError,
    is_valid_run_id,
    read_config,
    read_csv,
    read_progress,
    run_path,
    write_atomic,
)
from envlib.training import train

NASTY_NAMES = [
    "../../etc/passwd", "..", ".", "/absolute/path", "a/b", "a\\b", "~root", "C:\\Windows",
    "name\x00with-nul", "  spaces  ", "Sean Kelley", "Ünïcødé Ägent", "-leading-dash", "x" * 300,
    "run; rm -rf /", "$(whoami)", "%2e%2e%2f", "\u202eevil",
]  # fmt: skip


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A real, short PPO run (a few thousand steps, tiny network)."""
    torch.set_num_threads(1)
    config = RunConfig.from_dict(
        {
            "train": {
                "n_envs": 8, "n_steps": 32, "batch_size": 64, "n_epochs": 1, "total_timesteps": 1024,
                "net_arch": [16, 16], "eval_every": 0, "seed": 1,
            }
        }
    )  # fmt: skip
    return train(config, tmp_path_factory.mktemp("runs") / "tiny").run_dir


@pytest.fixture
def run_copy(tiny_run, tmp_path) -> Path:
    """A copy of the tiny run that a test may damage."""
    return Path(shutil.copytree(tiny_run, tmp_path / "copy"))


# --- names ------------------------------------------------------------------------------------
def test_generated_names_are_human_valid_and_new():
    taken = {generate_run_id() for _ in range(200)}
    for run_id in taken:
        assert is_valid_run_id(run_id)
        first, last, suffix = run_id.split("-")
        assert first.isalpha() and last.isalpha() and len(suffix) == 4
    assert generate_run_id(taken) not in taken
    assert display_name("sean-kelley-3f2a") == "Sean Kelley 3f2a"


#: The nasty names with no letters or digits at all: the only ones refused.
UNUSABLE_NAMES = {"..", "."}


@pytest.mark.parametrize("name", NASTY_NAMES, ids=range(len(NASTY_NAMES)))
def test_a_sanitised_name_never_leaves_the_runs_folder(name, tmp_path):
    if name in UNUSABLE_NAMES:
        with pytest.raises(ValueError, match="no letters or digits"):
            sanitize_run_id(name)
        return
    run_id = sanitize_run_id(name)
    assert is_valid_run_id(run_id)
    path = run_path(tmp_path, run_id)
    assert path.parent == tmp_path.resolve()
    assert path.name == run_id


def test_sanitising_keeps_what_people_meant():
    assert sanitize_run_id("Sean Kelley") == "sean-kelley"
    assert sanitize_run_id("../../etc/passwd") == "etc-passwd"
    assert sanitize_run_id("Réné Ägent") == "rene-agent"
    assert len(sanitize_run_id("x" * 300)) == 64
    for empty in ("", "../..", "///", "日本語"):
        with pytest.raises(ValueError, match="no letters or digits"):
            sanitize_run_id(empty)


@pytest.mark.parametrize("run_id", ["..", ".", "../x", "a/b", "/etc", "UPPER", "", "-x", "a" * 65, "a b", "ok\n"])
def test_run_path_refuses_ids_that_are_not_plain_names(run_id, tmp_path):
    with pytest.raises(ValueError, match="invalid run id"):
        run_path(tmp_path, run_id)


def test_run_path_refuses_a_symlink_out_of_the_runs_folder(tmp_path):
    runs, outside = tmp_path / "runs", tmp_path / "outside"
    runs.mkdir()
    outside.mkdir()
    (runs / "evil").symlink_to(outside)
    with pytest.raises(ValueError, match="inside"):
        run_path(runs, "evil")
    assert run_path(runs, "fine") == (runs / "fine").resolve()


# --- files --------------------------------------------------------------------------------------
def test_atomic_write_replaces_whole_files_and_leaves_nothing_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "progress.json"
    write_atomic(target, "old")
    write_atomic(target, b"new")
    assert target.read_text() == "new"

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, "half-written")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["progress.json"]


def test_a_csv_line_still_being_written_is_ignored(tmp_path):
    path = tmp_path / "episodes.csv"
    path.write_text("timesteps,return,length,time_s,mae_focus,mae_all\n25,-3.5,25,0.1,1e-4,2e-4\n50,-2.")
    frame = read_csv(path, EPISODE_COLUMNS)
    assert frame["timesteps"].tolist() == [25]
    assert read_csv(tmp_path / "missing.csv", EPISODE_COLUMNS).empty
    path.write_text("when,what\n1,2\n")
    with pytest.raises(RunError, match="columns must be"):
        read_csv(path, EPISODE_COLUMNS)


def test_a_huge_csv_log_is_read_from_its_header_and_newest_rows_only(tmp_path):
    path = tmp_path / "episodes.csv"
    row_bytes = len("1000000,-12.34567,150,1234.567,0.0001234567,0.0002345678\n")
    rows = MAX_CSV_BYTES // row_bytes + 20_000  # some 1.3 MB over the limit
    lines = (f"{t:07d},-12.34567,150,1234.567,0.0001234567,0.0002345678\n" for t in range(1, rows + 1))
    path.write_text(",".join(EPISODE_COLUMNS) + "\n" + "".join(lines) + "1,2,3")  # and a line being written
    frame = read_csv(path, EPISODE_COLUMNS)
    assert frame["timesteps"].iloc[-1] == rows, "the newest row is kept"
    assert frame["timesteps"].is_monotonic_increasing and frame["timesteps"].diff().max() == 1, "whole rows only"
    assert len(frame) == MAX_CSV_BYTES // row_bytes, "only the last MAX_CSV_BYTES are read"
    assert frame.attrs["skipped_bytes"] == (rows - len(frame)) * row_bytes, "the older rows left out"
    small = read_csv(path, EPISODE_COLUMNS, max_bytes=path.stat().st_size)
    assert len(small) == rows and small.attrs["skipped_bytes"] == 0


def test_a_config_yaml_written_by_hand_with_3e_4_is_read(tmp_path):
    (tmp_path / "config.yaml").write_text("train:\n  learning_rate: 3e-4\n  total_timesteps: 1E5\n")
    config = read_config(tmp_path)
    assert (config.train.learning_rate, config.train.total_timesteps) == (3e-4, 100_000)


def test_a_malformed_progress_record_is_a_clear_error(tmp_path):
    with pytest.raises(RunError, match="progress.json: missing"):
        read_progress(tmp_path)
    (tmp_path / "progress.json").write_text('{"status": "exploded"}')
    with pytest.raises(RunError, match="not a valid progress record"):
        read_progress(tmp_path)
    (tmp_path / "progress.json").write_text('{"status": "finished", "timesteps": 3')
    with pytest.raises(RunError, match=r"progress.json: is not valid JSON \(Expecting .* at line 1, column 38\)$"):
        read_progress(tmp_path)
    fields = {"status": "finished", "timesteps": 3, "total_timesteps": 3, "fps": 1.5, "elapsed_s": 2,
              "eta_s": None, "updated": 1.0, "error": None, "pid": 7}  # fmt: skip
    assert read_progress_of(tmp_path, fields).timesteps == 3
    for key, value in [("timesteps", "3"), ("updated", None), ("pid", True), ("error", 5), ("eta_s", "soon")]:
        with pytest.raises(RunError, match=f"not a valid progress record: {key} is {re.escape(repr(value))}$"):
            read_progress_of(tmp_path, {**fields, key: value})


def read_progress_of(run_dir: Path, fields: dict) -> Progress:
    (run_dir / "progress.json").write_text(json.dumps(fields))
    return read_progress(run_dir)


def test_normaliser_round_trips_and_normalises_like_vec_normalize(tmp_path):
    normalizer = ObsNormalizer(
        obs_mean=np.array([1.0, -2.0]), obs_var=np.array([4.0, 0.25]), obs_count=10.0, ret_var=2.0,
        ret_count=10.0, norm_obs=True, norm_reward=True, clip_obs=10.0, clip_reward=10.0, gamma=0.99, epsilon=1e-8,
    )  # fmt: skip
    normalizer.save(tmp_path / "n.npz")
    loaded = ObsNormalizer.load(tmp_path / "n.npz")
    np.testing.assert_array_equal(loaded.obs_var, normalizer.obs_var)
    out = loaded.normalize(np.array([[3.0, -2.5], [1.0, 100.0]]))
    np.testing.assert_allclose(out, [[1.0, -1.0], [0.0, 10.0]], rtol=1e-6)  # the second is clipped


# --- loading an agent ---------------------------------------------------------------------------
class Payload:
    """Unpickling this creates a folder: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (str(self.marker),))


def rewrite_zip(path: Path, replace: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members.update(replace)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def test_a_pickle_planted_in_the_model_data_is_never_run(run_copy, tmp_path):
    marker = tmp_path / "payload-ran"
    model = run_copy / "model.zip"
    with zipfile.ZipFile(model) as archive:
        data = json.loads(archive.read("data"))
    data["planted_key"] = {
        ":type:": "<class 'object'>",
        ":serialized:": base64.b64encode(pickle.dumps(Payload(marker))).decode(),
    }
    rewrite_zip(model, {"data": json.dumps(data).encode()})

    agent = load_agent(run_copy)
    assert not marker.exists(), "load_agent ran a pickle from model.zip"
    actions, _ = agent.predict(np.zeros((2, 9)))
    assert actions.shape == (2, 3)

    # The payload is live: SB3's own loader runs it, even with custom_objects for the key.
    PPO.load(model, device="cpu", custom_objects={"planted": None})
    assert marker.exists()


def test_a_pickle_planted_in_the_weights_is_refused(run_copy, tmp_path):
    marker = tmp_path / "payload-ran"
    buffer = io.BytesIO()
    torch.save({"mlp_extractor.policy_net.0.weight": Payload(marker)}, buffer)
    rewrite_zip(run_copy / "model.zip", {"policy.pth": buffer.getvalue()})
    with pytest.raises(RunError, match="model.zip: cannot read the network weights"):
        load_agent(run_copy)
    assert not marker.exists()


def test_a_pickle_in_the_normaliser_is_refused(run_copy, tmp_path):
    marker = tmp_path / "payload-ran"
    with np.load(run_copy / "normalizer.npz") as npz:
        fields = dict(npz)
    fields["obs_mean"] = np.array([Payload(marker)] * 9, dtype=object)
    np.savez(run_copy / "normalizer.npz", **fields)  # np.savez pickles object arrays
    with pytest.raises(RunError, match="normaliser file: it holds Python objects, not plain numbers"):
        load_agent(run_copy)
    assert not marker.exists()


def damage(run: Path, case: str) -> None:
    if case == "no config":
        (run / "config.yaml").unlink()
    elif case == "config not yaml":
        (run / "config.yaml").write_text("env: [unclosed\n")
    elif case == "config unknown key":
        (run / "config.yaml").write_text("env: {warp_drive: true}\n")
    elif case == "config other network":
        config = RunConfig.load(run / "config.yaml").to_dict()
        config["train"]["net_arch"] = [32]
        (run / "config.yaml").write_text(RunConfig.from_dict(config).to_yaml())
    elif case == "no model":
        (run / "model.zip").unlink()
    elif case == "model not a zip":
        (run / "model.zip").write_bytes(b"this is not a zip file")
    elif case == "model truncated":
        data = (run / "model.zip").read_bytes()
        (run / "model.zip").write_bytes(data[: len(data) // 2])
    elif case == "model bit flip":
        data = bytearray((run / "model.zip").read_bytes())
        with zipfile.ZipFile(run / "model.zip") as archive:
            info = archive.getinfo("policy.pth")
        data[info.header_offset + 30 + len(info.filename) + 100] ^= 0xFF  # inside policy.pth's bytes
        (run / "model.zip").write_bytes(bytes(data))
    elif case == "model without weights":
        with zipfile.ZipFile(run / "model.zip", "w") as archive:
            archive.writestr("data", "{}")
    elif case == "no normaliser":
        (run / "normalizer.npz").unlink()
    elif case == "normaliser garbage":
        (run / "normalizer.npz").write_bytes(b"\x00" * 100)
    elif case == "normaliser wrong size":
        normalizer = ObsNormalizer.load(run / "normalizer.npz")
        normalizer.obs_mean, normalizer.obs_var = np.zeros(13), np.ones(13)
        normalizer.save(run / "normalizer.npz")
    elif case == "normaliser not finite":
        normalizer = ObsNormalizer.load(run / "normalizer.npz")
        normalizer.obs_var[0] = np.nan
        normalizer.save(run / "normalizer.npz")


DAMAGES = {
    "no config": ("config.yaml", "missing"),
    "config not yaml": ("config.yaml", "not valid YAML"),
    "config unknown key": ("config.yaml", "env.warp_drive: unknown key"),
    "config other network": ("model.zip", "do not fit the network"),
    "no model": ("model.zip", "missing"),
    "model not a zip": ("model.zip", "not a valid SB3 model archive"),
    "model truncated": ("model.zip", "damaged"),
    "model without weights": ("model.zip", "no policy.pth"),
    "model bit flip": ("model.zip", "fails its checksum"),
    "no normaliser": ("normalizer.npz", "missing"),
    "normaliser garbage": ("normalizer.npz", "not a valid normaliser file: not an .npz archive"),
    "normaliser wrong size": ("normalizer.npz", "13 observation values"),
    "normaliser not finite": ("normalizer.npz", "finite numbers"),
}


@pytest.mark.parametrize("case", list(DAMAGES))
def test_a_missing_or_corrupt_run_file_is_a_clear_error(run_copy, case):
    damage(run_copy, case)
    file, problem = DAMAGES[case]
    with pytest.raises(RunError) as error:
        load_agent(run_copy)
    assert error.value.path.name == file
    assert problem in str(error.value)
