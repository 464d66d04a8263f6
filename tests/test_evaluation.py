"""Evaluation on fixed seeds: one batch, same beams for every agent, traces and metrics."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from stable_baselines3.common.vec_env import VecFrameStack, VecNormalize

import envlib.evaluate
from envlib.agent import load_agent
from envlib.batched import AresEAVecEnv
from envlib.config import RunConfig
from envlib.env import AresEAEnv
from envlib.evaluation import TRACE_COLUMNS, episode_starts, evaluate, evaluation_seeds
from envlib.task import EpisodeStart
from envlib.training import train

ROOT = Path(__file__).resolve().parents[1]


def tiny_config(**train_keys: object) -> RunConfig:
    settings = {
        "n_envs": 8, "n_steps": 32, "batch_size": 64, "n_epochs": 1, "total_timesteps": 1024,
        "net_arch": [16, 16], "eval_every": 0, "seed": 1,
    }  # fmt: skip
    settings.update(train_keys)
    return RunConfig.from_dict({"train": settings})


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Two real short PPO runs with different seeds, and one that stacks 3 frames."""
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("runs")
    return {
        "a": train(tiny_config(seed=1), folder / "a").run_dir,
        "b": train(tiny_config(seed=2), folder / "b").run_dir,
        "stacked": train(tiny_config(seed=3, frame_stack=3), folder / "stacked").run_dir,
    }


def test_evaluation_seeds_are_fixed_and_nested():
    assert evaluation_seeds(5) == evaluation_seeds(5)
    assert evaluation_seeds(200)[:20] == evaluation_seeds(20)
    assert len(set(evaluation_seeds(200))) == 200
    with pytest.raises(ValueError, match="at least one evaluation episode, got 0"):
        evaluation_seeds(0)


def test_the_same_seeds_give_identical_evaluations(runs):
    agent = load_agent(runs["a"])
    first = evaluate(agent, evaluation_seeds(10))
    second = evaluate(load_agent(runs["a"]), evaluation_seeds(10))
    pd.testing.assert_frame_equal(first.traces, second.traces)
    assert first.metrics == second.metrics


def test_every_agent_sees_the_same_beams(runs):
    seeds = evaluation_seeds(6)
    a = evaluate(load_agent(runs["a"]), seeds).traces
    b = evaluate(load_agent(runs["b"]), seeds).traces
    start_columns = ["seed", "mu_x", "sigma_x", "mu_y", "sigma_y", "Q1", "Q2", "Q3"]
    pd.testing.assert_frame_equal(a[a.step == 0][start_columns], b[b.step == 0][start_columns])
    assert not np.allclose(a[a.step == 5]["Q1"], b[b.step == 5]["Q1"])  # different agents act differently


def test_traces_have_a_row_per_step_including_the_reset(runs):
    result = evaluate(load_agent(runs["a"]), evaluation_seeds(4))
    traces = result.traces
    assert tuple(traces.columns) == TRACE_COLUMNS
    assert len(traces) == 4 * 26  # time_limit 25 plus the reset state
    assert traces.groupby("episode")["step"].apply(list).tolist() == [list(range(26))] * 4
    assert traces[traces.step == 0]["reward"].isna().all()
    assert traces[traces.step > 0]["reward"].notna().all()
    last = traces[traces.step == 25]
    assert last["truncated"].all() and not last["terminated"].any()
    per_episode = result.per_episode
    np.testing.assert_allclose(per_episode["final_mae_focus"], last["mae_focus"])
    np.testing.assert_allclose(per_episode["return"], traces[traces.step > 0].groupby("episode")["reward"].sum())
    assert result.metrics["mean_final_mae_focus"] == pytest.approx(last["mae_focus"].mean())
    assert result.metrics["mean_episode_length"] == 25.0 and result.metrics["n_episodes"] == 4
    errors = traces[traces.step > 0][["sigma_x", "sigma_y"]].to_numpy()  # target is zero
    assert result.metrics["rmse_focus"] == pytest.approx(np.sqrt(np.mean(errors**2)))


def test_batched_evaluation_matches_one_gymnasium_episode(runs):
    agent = load_agent(runs["a"])
    seeds = evaluation_seeds(3)
    traces = evaluate(agent, seeds).traces
    start = episode_starts(agent.config.env, seeds)[2]
    env = AresEAEnv(agent.config.env)
    obs, info = env.reset(options={"start": start})
    beams = [info["beam"]]
    rewards = []
    for _ in range(25):
        action, _ = agent.predict(obs[None])
        obs, reward, terminated, truncated, info = env.step(action[0])
        beams.append(info["beam"])
        rewards.append(reward)
    episode = traces[traces.episode == 2]
    np.testing.assert_allclose(episode[["mu_x", "sigma_x", "mu_y", "sigma_y"]].to_numpy(), beams, rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(episode["reward"].to_numpy()[1:], rewards, rtol=1e-5)


def test_episodes_that_end_early_are_cut_where_they_end(runs):
    agent = load_agent(runs["a"])
    config = agent.config.env.replace(abort_if_off_screen=True)
    seeds = evaluation_seeds(4)
    starts = episode_starts(config, seeds)
    for i in (1, 3):  # a screen shifted by 5 mm: the beam is off it from the start
        misaligned = np.zeros(8)
        misaligned[6] = 5e-3
        starts[i] = dataclasses.replace(starts[i], misalignments=misaligned)
    result = evaluate(agent, seeds, env_config=config, starts=starts)
    lengths = result.traces.groupby("episode")["step"].max().tolist()
    assert lengths == [25, 1, 25, 1]
    aborted = result.traces[result.traces.episode.isin([1, 3]) & (result.traces.step == 1)]
    assert aborted["aborted"].all() and aborted["terminated"].all() and not aborted["on_screen"].any()
    assert result.per_episode["aborted"].tolist() == [False, True, False, True]
    assert result.metrics["fraction_aborted"] == 0.5
    assert result.metrics["fraction_off_screen"] >= 0.5
    assert result.metrics["mean_episode_length"] == 13.0


def test_starts_override_the_seeds_beams(runs):
    agent = load_agent(runs["a"])
    start = EpisodeStart(
        target=np.zeros(4), incoming=np.array(agent.config.env.incoming_values), misalignments=np.zeros(8),
        magnets=np.array([10.0, -10.0, 0.0, 5.0, 0.0]),
    )  # fmt: skip
    traces = evaluate(agent, [7, 8], starts=[start, start]).traces
    first = traces[traces.step == 0]
    assert first["Q1"].tolist() == [10.0, 10.0] and first["seed"].tolist() == [7, 8]
    assert first["sigma_x"].nunique() == 1


def test_stochastic_evaluation_is_reproducible_and_differs_from_deterministic(runs):
    agent = load_agent(runs["a"])
    seeds = evaluation_seeds(5)
    torch.manual_seed(123)
    one = evaluate(agent, seeds, deterministic=False).traces
    two = evaluate(agent, seeds, deterministic=False).traces
    pd.testing.assert_frame_equal(one, two)
    mean = evaluate(agent, seeds).traces
    assert not np.allclose(one["Q1"], mean["Q1"])


def test_an_agent_cannot_be_evaluated_in_an_env_it_cannot_see(runs):
    agent = load_agent(runs["a"])
    with pytest.raises(ValueError, match="observes"):
        evaluate(agent, [1], env_config=agent.config.env.replace(observation="beam_magnets_target"))


def test_frame_stacking_agent_acts_like_sb3_wrappers(runs):
    # The agent stacks and normalises itself; SB3's VecNormalize + VecFrameStack must agree.
    agent = load_agent(runs["stacked"])
    venv = AresEAVecEnv(agent.config.env, n_envs=4)
    normalize = VecNormalize(venv, training=False, norm_obs=True, norm_reward=False)
    normalize.obs_rms.mean, normalize.obs_rms.var = agent.normalizer.obs_mean, agent.normalizer.obs_var
    stacked = VecFrameStack(normalize, n_stack=3)
    stacked.seed(5)
    sb3_obs = stacked.reset()
    raw = venv.task.observe(venv.state)
    state, start = None, np.ones(4, dtype=bool)
    for _ in range(60):  # more than two episodes: auto-resets must zero the stack
        sb3_actions, _ = agent.policy.predict(sb3_obs, deterministic=True)
        actions, state = agent.predict(raw, state=state, episode_start=start)
        np.testing.assert_allclose(state, sb3_obs, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(actions, sb3_actions, rtol=1e-5, atol=1e-6)
        sb3_obs, _, dones, _ = stacked.step(actions)
        raw, start = venv.task.observe(venv.state), dones


def test_evaluate_cli_prints_the_metrics(runs):
    done = subprocess.run(
        [sys.executable, "-m", "envlib.evaluate", str(runs["a"]), "--episodes", "5"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    metrics = json.loads(done.stdout.strip().splitlines()[-1])
    assert metrics == pytest.approx(evaluate(load_agent(runs["a"]), evaluation_seeds(5)).metrics)
    assert "mean_final_mae_focus" in done.stdout.splitlines()[1]

    missing = subprocess.run(
        [sys.executable, "-m", "envlib.evaluate", str(runs["a"] / "nope")], cwd=ROOT, capture_output=True, text=True
    )
    assert missing.returncode == 2 and "config.yaml: missing" in missing.stderr


def test_evaluate_cli_refuses_a_traces_path_it_cannot_write_without_losing_the_metrics(runs, tmp_path):
    def cli(traces: Path) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "envlib.evaluate", str(runs["a"]), "--episodes", "2", "--traces", str(traces)],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    for where, says in ((tmp_path, "is a folder"), (tmp_path / "no" / "t.csv", "does not exist")):
        refused = cli(where)
        assert refused.returncode == 2 and says in refused.stderr and "Traceback" not in refused.stderr
        assert refused.stdout == ""  # refused before evaluating anything
    # A folder that exists but takes no new file: only writing finds out, after the metrics.
    late = cli(Path("/proc/traces.csv"))
    assert late.returncode == 1 and "cannot write --traces" in late.stderr and "Traceback" not in late.stderr
    assert json.loads(late.stdout.splitlines()[-1])["n_episodes"] == 2
    written = cli(tmp_path / "t.csv")
    assert written.returncode == 0 and len(pd.read_csv(tmp_path / "t.csv")) == 2 * 26


def test_evaluate_cli_help_states_units_limits_and_exit_codes(capsys):
    with pytest.raises(SystemExit) as done:
        envlib.evaluate.main(["--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for says in ("1 to 10000 (default 200", "(errors in m)", "beam and target in m, Q in 1/m^2, correctors in rad",
                 "exits with 2 before evaluating", "exits with 1 after the metrics"):  # fmt: skip
        assert says in text, says
