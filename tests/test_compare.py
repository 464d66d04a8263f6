"""Comparisons: every agent starts from the same beam, pathologies are found in the traces."""

from __future__ import annotations

import io
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from envlib.agent import load_agent
from envlib.compare import (
    BLOW_UP_FACTOR,
    PIN_STEPS,
    TUTORIAL_AGENT_IDS,
    available_agents,
    compare,
    find_flags,
    scenario_starts,
    traces_csv,
)
from envlib.config import RunConfig
from envlib.evaluation import evaluate, evaluation_seeds
from envlib.pretrained import PRETRAINED
from envlib.runs import MODEL_FILE, Progress, write_progress
from envlib.training import train

ALL_MAGNETS = (0, 1, 2, 3, 4)
SEEDS = [11, 12, 13]


@dataclass
class Scripted:
    """A policy that repeats one action (agent's range, [-3, 3]): a trace built on purpose."""

    config: RunConfig
    action: tuple[float, ...]

    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        return np.tile(np.asarray(self.action, dtype=np.float32), (len(obs), 1)), None


def scripted(action: tuple[float, ...], **env: object) -> Scripted:
    return Scripted(RunConfig.from_dict({"env": env}), action)


class EveryOtherEpisode(Scripted):
    """Repeats its action in episodes 0, 2, 4, ... and leaves the magnets alone in the others
    (for a delta action mode): one agent whose episodes differ on purpose."""

    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        actions, _ = super().predict(obs)
        actions[1::2] = 0.0
        return actions, None


#: Delta steps that raise the vertical corrector by its largest step each time: the beam
#: climbs out of the top of the screen, then CV sits at its limit.
PUSH_UP = dict(action=(0.0, 0.0, 3.0, 0.0, 0.0), actuators="all")
#: One moderate, fixed setting of the three quadrupoles: the beam stays small and centred.
GENTLE = dict(action=(0.3, -0.3, 0.1), action_mode="direct")


def run(agent: Scripted, seeds=SEEDS) -> pd.DataFrame:
    return evaluate(agent, seeds, starts=scenario_starts(seeds)).traces


def tiny_run(folder: Path, seed: int, **env: object) -> Path:
    config = RunConfig.from_dict(
        {
            "display_name": f"Tiny {seed}",
            "env": env,
            "train": {"n_envs": 4, "n_steps": 32, "batch_size": 64, "n_epochs": 2, "total_timesteps": 256,
                      "net_arch": [8], "eval_every": 0, "seed": seed},
        }
    )  # fmt: skip
    return train(config, folder / f"tiny-{seed}").run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Two really trained (tiny) agents with different rewards, action modes and starts: the
    second trained on random targets and misalignments, so its own env would draw other beams."""
    folder = tmp_path_factory.mktemp("runs")
    return {
        "pixels-delta": tiny_run(folder, 1, reward_mode="sum_of_pixels"),
        "negobj-direct": tiny_run(
            folder, 2, action_mode="direct", abort_if_off_screen=True, time_reward=-1.0,
            target_beam_mode="random", misalignment_mode="random",
        ),
    }


@pytest.fixture(scope="module")
def agents(runs):
    return {name: load_agent(path) for name, path in runs.items()}


# --- flags ------------------------------------------------------------------------------------
def test_a_beam_driven_off_the_screen_is_flagged_at_the_step_it_left():
    traces = run(scripted(**PUSH_UP))
    flags = find_flags(traces, ALL_MAGNETS)
    for episode, trace in traces.groupby("episode"):
        left = flags[(flags["episode"] == episode) & (flags["flag"] == "left_screen")]
        first_off = int(trace.loc[~trace["on_screen"], "step"].min())
        assert left["step"].tolist() == [first_off]
        pinned = flags[(flags["episode"] == episode) & (flags["flag"] == "pinned")]
        first_at_limit = int(trace.loc[np.isclose(trace["CV"], 6.1782e-3), "step"].min())
        assert pinned["step"].tolist() == [first_at_limit]
        assert "CV at +limit" in pinned["detail"].iloc[0]
    assert set(flags["flag"]) == {"left_screen", "pinned"}


def test_an_abort_is_flagged_where_the_episode_ended():
    traces = run(scripted(**PUSH_UP, abort_if_off_screen=True))
    flags = find_flags(traces, ALL_MAGNETS)
    for episode, trace in traces.groupby("episode"):
        ended = int(trace["step"].max())
        assert ended < 25
        mine = flags[flags["episode"] == episode].set_index("flag")["step"]
        assert mine["aborted"] == ended
        assert mine["left_screen"] == ended


def test_a_blown_up_beam_is_flagged():
    traces = run(scripted((3.0, 3.0, 3.0), action_mode="direct"))
    flags = find_flags(traces)
    blown = flags[flags["flag"] == "blown_up"]
    assert blown["episode"].tolist() == [0, 1, 2]
    assert (blown["step"] == 1).all()
    size = traces["sigma_x"] + traces["sigma_y"]
    assert (size[traces["step"] == 1].to_numpy() >= BLOW_UP_FACTOR * size[traces["step"] == 0].to_numpy()).all()


def test_a_good_trace_raises_no_flag():
    traces = run(scripted(**GENTLE))
    assert traces["on_screen"].all()
    assert find_flags(traces).empty


def test_a_magnet_is_pinned_only_after_enough_steps_at_its_limit():
    traces = run(scripted(**GENTLE), seeds=[5]).copy()
    short = traces.copy()
    short.loc[short["step"].between(4, 4 + PIN_STEPS - 2), "Q2"] = -72.0
    assert find_flags(short).empty
    long = traces.copy()
    long.loc[long["step"].between(4, 4 + PIN_STEPS - 1), "Q2"] = -72.0
    flags = find_flags(long)
    assert flags[["flag", "step", "detail"]].values.tolist() == [["pinned", 4, "Q2 at −limit"]]


def test_magnets_the_agent_does_not_move_are_not_its_fault():
    traces = run(scripted(**GENTLE), seeds=[5]).copy()
    traces.loc[traces["step"] > 0, "CH"] = 6.1782e-3  # as if CH had started at its limit
    assert find_flags(traces, actuated=(0, 1, 3)).empty
    assert find_flags(traces, actuated=ALL_MAGNETS)["flag"].tolist() == ["pinned"]


# --- comparisons ------------------------------------------------------------------------------
def test_every_agent_starts_from_the_same_beam(agents):
    result = compare(agents, [7])
    start = result.traces[result.traces["step"] == 0].set_index("agent")
    columns = ["mu_x", "sigma_x", "mu_y", "sigma_y", "target_mu_x", "target_sigma_x", "Q1", "Q2", "Q3"]
    np.testing.assert_array_equal(start.loc["pixels-delta", columns], start.loc["negobj-direct", columns])
    # ... and the agents then act differently (two real, different policies).
    first = result.traces[result.traces["step"] == 1].set_index("agent")
    quads = ["Q1", "Q2", "Q3"]
    assert not np.allclose(first.loc["pixels-delta", quads], first.loc["negobj-direct", quads])


def test_the_seed_decides_the_beam(agents):
    one = {"pixels-delta": agents["pixels-delta"]}
    a, b, c = (compare(one, [s]).traces for s in (7, 7, 8))
    assert a.loc[0, "sigma_x"] == b.loc[0, "sigma_x"]
    assert a.loc[0, "sigma_x"] != c.loc[0, "sigma_x"]


def test_evaluation_is_reproducible_whatever_the_order_of_the_agents(agents):
    seeds = evaluation_seeds(8)
    first = compare(agents, seeds)
    again = compare(dict(reversed(list(agents.items()))), seeds)
    for name in agents:
        pd.testing.assert_frame_equal(
            first.traces[first.traces["agent"] == name].reset_index(drop=True),
            again.traces[again.traces["agent"] == name].reset_index(drop=True),
        )
    pd.testing.assert_frame_equal(first.summary(), again.summary().loc[first.agents])


def test_the_summary_counts_episodes_per_flag():
    push_up = scripted(**PUSH_UP)
    agents = {
        "always up": push_up,
        "up every other episode": EveryOtherEpisode(push_up.config, push_up.action),
        "gentle": scripted(**GENTLE),
    }
    result = compare(agents, evaluation_seeds(6))
    summary = result.summary("mae_all")
    assert list(summary.index) == list(agents)
    # Pushed up, the beam leaves the screen and CV ends up pinned: in all, half, none of the episodes.
    assert summary["fraction beam left the screen"].tolist() == [1.0, 0.5, 0.0]
    assert summary["fraction magnet pinned at its limit"].tolist() == [1.0, 0.5, 0.0]
    assert summary["fraction episode ended early (abort)"].tolist() == [0.0, 0.0, 0.0]
    assert summary["fraction beam blown up"].tolist() == [0.0, 0.0, 0.0]
    half = result.flags[result.flags["agent"] == "up every other episode"]
    assert set(half["episode"]) == {0, 2, 4}
    for name in agents:
        per = result.per_episode[result.per_episode["agent"] == name]
        assert summary.loc[name, "mean final MAE"] == pytest.approx(per["final_mae_all"].mean())


def test_misaligned_scenario_draws_misalignments_for_everyone():
    tutorial, misaligned = scenario_starts([3], "tutorial")[0], scenario_starts([3], "misaligned")[0]
    assert not tutorial.misalignments.any()
    assert np.abs(misaligned.misalignments).max() > 0
    with pytest.raises(ValueError, match="unknown scenario"):
        scenario_starts([3], "moon")


# --- exports and listing ----------------------------------------------------------------------
def test_traces_csv_reads_back_and_defuses_spreadsheet_formulas(agents):
    result = compare({"=HYPERLINK(1)": agents["pixels-delta"]}, [7])
    back = pd.read_csv(io.BytesIO(traces_csv(result.traces)))
    assert len(back) == len(result.traces)
    assert set(back["agent"]) == {"'=HYPERLINK(1)"}
    np.testing.assert_allclose(back["sigma_x"], result.traces["sigma_x"], rtol=1e-6)


def test_finished_runs_are_offered_next_to_the_shipped_agents(runs, tmp_path):
    catalog = available_agents(runs["pixels-delta"].parent)
    keys = [c.key for c in catalog.choices]
    # Every shipped agent (all six have a model.zip), in the tutorial's order, then the runs.
    assert keys[: len(PRETRAINED)] == [f"pretrained/{i}" for i in PRETRAINED]
    assert sorted(keys[len(PRETRAINED) :]) == ["run/tiny-1", "run/tiny-2"]
    assert catalog.problems == []
    by_key = catalog.by_key()
    assert by_key["pretrained/negobj-delta"].label == "Sean Kelley"
    assert by_key["run/tiny-2"].config.env.action_mode == "direct"
    assert by_key["run/tiny-1"].label == "Tiny 1"


def test_the_default_choice_is_the_tutorials_five_shipped_agents_in_its_order(runs):
    catalog = available_agents(runs["pixels-delta"].parent)
    defaults = catalog.tutorial_defaults()
    assert [c.key for c in defaults] == [f"pretrained/{i}" for i in TUTORIAL_AGENT_IDS]


def test_a_retrained_model_makes_a_new_agent_request(runs, tmp_path):
    shutil.copytree(runs["pixels-delta"], tmp_path / "tiny-1")
    before = available_agents(tmp_path).by_key()["run/tiny-1"]
    model = tmp_path / "tiny-1" / MODEL_FILE
    os.utime(model, ns=(model.stat().st_atime_ns, model.stat().st_mtime_ns + 1_000_000_000))
    after = available_agents(tmp_path).by_key()["run/tiny-1"]
    assert after.version == model.stat().st_mtime_ns != before.version
    assert after.request[:2] == before.request[:2] and after.request != before.request


def test_a_run_still_training_is_not_offered(runs, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(runs["pixels-delta"], copy / "busy-run")
    write_progress(
        copy / "busy-run",
        Progress(status="running", timesteps=1, total_timesteps=2, fps=1.0, elapsed_s=1.0, eta_s=1.0,
                 updated=0.0, error=None, pid=1),
    )  # fmt: skip
    assert not [c for c in available_agents(copy).choices if c.key.startswith("run/")]


def test_two_runs_stopped_early_under_one_name_get_two_labels(runs, tmp_path):
    for run_id in ("twin-a", "twin-b"):
        shutil.copytree(runs["pixels-delta"], tmp_path / run_id)  # both called "Tiny 1"
        write_progress(
            tmp_path / run_id,
            Progress(status="stopped", timesteps=1, total_timesteps=2, fps=1.0, elapsed_s=1.0, eta_s=None,
                     updated=0.0, error=None, pid=None),
        )  # fmt: skip
    labels = [c.label for c in available_agents(tmp_path).choices if c.key.startswith("run/")]
    assert len(set(labels)) == 2, labels  # results are keyed by label: the same one would merge them
    assert all(label.startswith("Tiny 1") and label.endswith(" (stopped early)") for label in labels)


def test_a_symlink_in_the_runs_folder_to_a_run_outside_it_is_never_offered(runs, tmp_path):
    outside, folder = tmp_path / "outside", tmp_path / "runs"
    shutil.copytree(runs["pixels-delta"], outside / "secret-run")
    shutil.copytree(runs["pixels-delta"], folder / "own-run")
    (folder / "evil-link").symlink_to(outside / "secret-run", target_is_directory=True)
    offered = [c.key for c in available_agents(folder).choices if c.key.startswith("run/")]
    assert offered == ["run/own-run"]


def test_a_finished_run_that_lost_its_config_or_progress_is_left_out_with_the_reason(runs, tmp_path):
    for run_id in ("no-config", "bad-progress", "busy"):
        shutil.copytree(runs["pixels-delta"], tmp_path / run_id)
    (tmp_path / "no-config" / "config.yaml").unlink()
    (tmp_path / "bad-progress" / "progress.json").write_text("{")
    write_progress(
        tmp_path / "busy",
        Progress(status="running", timesteps=1, total_timesteps=2, fps=1.0, elapsed_s=1.0, eta_s=1.0,
                 updated=0.0, error=None, pid=1),
    )  # fmt: skip
    catalog = available_agents(tmp_path)
    assert not [c for c in catalog.choices if c.key.startswith("run/")]
    assert catalog.problems == [
        "run bad-progress: progress.json is not valid JSON (Expecting property name enclosed in double quotes "
        "at line 1, column 2)",
        "run no-config: finished, but config.yaml is missing",
    ]  # and nothing about the run still training
