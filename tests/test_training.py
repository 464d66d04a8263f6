"""Training: a short real PPO/TD3 run writes a complete run directory that loads back."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.type_aliases import TrainFreq, TrainFrequencyUnit
from stable_baselines3.common.vec_env import VecFrameStack, VecNormalize

import envlib.train
import envlib.training
from envlib.agent import load_agent
from envlib.config import RunConfig
from envlib.evaluation import evaluate, evaluation_seeds
from envlib.runs import (
    EPISODE_COLUMNS,
    EVALUATION_COLUMNS,
    read_config,
    read_episodes,
    read_evaluations,
    read_progress,
    request_stop,
)
from envlib.training import find_vec_normalize, make_model, make_vec_env, train

ROOT = Path(__file__).resolve().parents[1]


def tiny_config(**train: object) -> RunConfig:
    """A few-thousand-step PPO run with a tiny network."""
    settings = {
        "n_envs": 8,
        "n_steps": 32,
        "batch_size": 64,
        "n_epochs": 2,
        "total_timesteps": 2048,
        "net_arch": [16, 16],
        "eval_every": 1024,
        "eval_episodes": 4,
        "seed": 3,
    }
    settings.update(train)
    return RunConfig.from_dict({"display_name": "Tiny", "train": settings})


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_short_run_writes_a_complete_run_that_loads_back_and_evaluates(tmp_path):
    config = tiny_config()
    result = train(config, tmp_path / "run")
    run = result.run_dir

    assert result.status == "finished"
    assert result.timesteps >= 2048
    assert read_config(run) == config
    for name in ("config.yaml", "model.zip", "normalizer.npz", "episodes.csv", "evaluations.csv", "progress.json"):
        assert (run / name).is_file(), name
    assert not list(run.glob(".*.tmp")), "temporary files left behind"

    progress = read_progress(run)
    assert progress.status == "finished" and progress.timesteps == result.timesteps
    assert progress.total_timesteps == 2048 and progress.error is None and progress.pid == os.getpid()

    episodes = read_episodes(run)
    assert tuple(episodes.columns) == EPISODE_COLUMNS
    # 2048 steps of 8 envs with 25-step episodes: 10 full rounds of 8 episodes.
    assert len(episodes) == 80
    assert (episodes["length"] == 25).all()
    assert episodes["timesteps"].is_monotonic_increasing
    assert (episodes["mae_focus"] > 0).all() and (episodes["mae_all"] >= episodes["mae_focus"] / 2).all()

    evaluations = read_evaluations(run)
    assert tuple(evaluations.columns) == EVALUATION_COLUMNS
    assert evaluations["timesteps"].tolist() == [1024, 2048]
    assert result.evaluation["n_episodes"] == 4
    assert evaluations["mean_final_mae_focus"].iloc[-1] == pytest.approx(result.evaluation["mean_final_mae_focus"])

    assert isinstance(PPO.load(run / "model.zip", device="cpu"), PPO)  # SB3's own format
    agent = load_agent(run)
    again = evaluate(agent, evaluation_seeds(4))
    # The saved agent is the one evaluated last during training.
    assert again.metrics["mean_final_mae_focus"] == pytest.approx(result.evaluation["mean_final_mae_focus"])


def test_every_training_key_reaches_the_model_and_the_env():
    config = tiny_config(
        n_envs=3, n_steps=20, batch_size=12, n_epochs=4, gamma=0.9, learning_rate=1e-3, net_arch=[8, 4],
        normalize_observation=False, normalize_reward=True, frame_stack=3, seed=11, ent_coef=0.01,
        gae_lambda=0.8, clip_range=0.3, lr_schedule="linear",
    )  # fmt: skip
    venv = make_vec_env(config)
    model = make_model(config, venv)
    assert isinstance(venv, VecFrameStack) and venv.observation_space.shape == (27,)
    vec_normalize = find_vec_normalize(venv)
    assert isinstance(vec_normalize, VecNormalize)
    assert (vec_normalize.norm_obs, vec_normalize.norm_reward, vec_normalize.gamma) == (False, True, 0.9)
    assert venv.num_envs == 3
    assert (model.n_steps, model.batch_size, model.n_epochs, model.gamma) == (20, 12, 4, 0.9)
    assert (model.ent_coef, model.gae_lambda, model.clip_range(1.0), model.seed) == (0.01, 0.8, 0.3, 11)
    assert model.lr_schedule(1.0) == pytest.approx(1e-3) and model.lr_schedule(0.5) == pytest.approx(5e-4)
    layers = [m.out_features for m in model.policy.mlp_extractor.policy_net if isinstance(m, torch.nn.Linear)]
    assert layers == [8, 4]


def test_n_epochs_sets_the_number_of_gradient_passes(tmp_path):
    # The tutorial's old code ignored n_epochs; here every rollout gets n_epochs passes.
    updates = {}
    for n_epochs in (1, 3):
        config = tiny_config(n_epochs=n_epochs, total_timesteps=512, eval_every=0)
        venv = make_vec_env(config)
        model = make_model(config, venv)
        model.learn(512)
        updates[n_epochs] = model._n_updates
    assert updates == {1: 2, 3: 6}  # 512 steps = 2 rollouts of 8 x 32


def test_td3_trains_and_loads_back(tmp_path):
    config = tiny_config(algorithm="TD3", n_steps=8, batch_size=32, n_epochs=1, total_timesteps=640, eval_every=320)
    result = train(config, tmp_path / "td3")
    assert result.status == "finished"
    assert read_evaluations(result.run_dir)["timesteps"].tolist() == [320, 640]
    agent = load_agent(result.run_dir)
    assert evaluate(agent, evaluation_seeds(2)).metrics["n_episodes"] == 2


@pytest.mark.parametrize(
    ("train", "train_freq", "gradient_steps", "learning_starts", "buffer_size"),
    [
        # 3 epochs of one 4 x 10 rollout in batches of 20: 6 gradient steps every 10 steps of each env.
        ({"n_envs": 4, "n_steps": 10, "batch_size": 20, "n_epochs": 3, "total_timesteps": 5000}, 10, 6, 40, 5000),
        # Less than one batch per update still makes one gradient step; the buffer holds one rollout.
        ({"n_envs": 2, "n_steps": 8, "batch_size": 64, "n_epochs": 1, "total_timesteps": 10}, 8, 1, 16, 16),
        # The replay buffer stops growing at a million transitions.
        ({"n_envs": 2, "n_steps": 8, "batch_size": 16, "n_epochs": 5, "total_timesteps": 3_000_000}, 8, 5, 16, 10**6),
    ],
    ids=["ppo-like-update", "at-least-one-step", "buffer-cap"],
)
def test_td3_maps_rollouts_and_epochs_onto_train_freq_and_gradient_steps(
    train, train_freq, gradient_steps, learning_starts, buffer_size
):
    config = tiny_config(algorithm="TD3", **train)
    model = make_model(config, make_vec_env(config))
    assert model.train_freq == TrainFreq(train_freq, TrainFrequencyUnit.STEP)
    assert model.gradient_steps == gradient_steps
    assert model.learning_starts == learning_starts
    assert model.buffer_size == buffer_size
    assert model.batch_size == train["batch_size"]


def test_td3_makes_its_gradient_steps_after_each_n_steps_once_one_rollout_is_collected():
    config = tiny_config(algorithm="TD3", n_envs=4, n_steps=10, batch_size=20, n_epochs=3, eval_every=0)
    model = make_model(config, make_vec_env(config))
    model.learn(3 * 40)  # three rollouts of 4 x 10 steps; learning starts after the first
    assert model.num_timesteps == 120
    assert model._n_updates == 2 * 6


def test_same_seed_gives_the_same_run(tmp_path):
    config = tiny_config(total_timesteps=512, eval_every=256)
    first = train(config, tmp_path / "a")
    second = train(config, tmp_path / "b")
    columns = [c for c in EPISODE_COLUMNS if c != "time_s"]
    pd.testing.assert_frame_equal(read_episodes(first.run_dir)[columns], read_episodes(second.run_dir)[columns])
    pd.testing.assert_frame_equal(read_evaluations(first.run_dir), read_evaluations(second.run_dir))
    a, b = load_agent(first.run_dir), load_agent(second.run_dir)
    for p, q in zip(a.policy.parameters(), b.policy.parameters(), strict=True):
        assert torch.equal(p, q)
    other = train(tiny_config(total_timesteps=512, eval_every=256, seed=4), tmp_path / "c")
    assert not read_episodes(other.run_dir)["return"].equals(read_episodes(first.run_dir)["return"])


def optimizer_of(config: RunConfig) -> torch.optim.Optimizer:
    model = make_model(config, make_vec_env(config))
    return model.actor.optimizer if config.train.algorithm == "TD3" else model.policy.optimizer


@pytest.mark.parametrize("algorithm", ["PPO", "TD3"])
def test_the_optimizer_is_sb3s_adam_as_one_fused_kernel(algorithm):
    optimizer = optimizer_of(tiny_config(algorithm=algorithm))
    assert type(optimizer) is torch.optim.Adam and optimizer.defaults["fused"] is True
    assert optimizer.defaults["eps"] == (1e-5 if algorithm == "PPO" else 1e-8)  # SB3's own choice
    assert optimizer.defaults["lr"] == pytest.approx(tiny_config().train.learning_rate)


def test_unchecked_distributions_change_the_time_not_one_bit_of_the_agent(tmp_path, monkeypatch):
    config = tiny_config(total_timesteps=512, eval_every=0)
    fast = load_agent(train(config, tmp_path / "fast").run_dir)
    assert torch.distributions.Distribution._validate_args is True  # restored after training
    monkeypatch.setattr(envlib.training, "distribution_checks_off", contextlib.nullcontext)
    checked = load_agent(train(config, tmp_path / "checked").run_dir)
    for p, q in zip(fast.policy.parameters(), checked.policy.parameters(), strict=True):
        assert torch.equal(p, q)


class StopAfter(BaseCallback):
    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps = steps

    def _on_step(self) -> bool:
        return self.num_timesteps < self.steps


def test_a_callback_returning_false_stops_and_keeps_the_model(tmp_path):
    result = train(tiny_config(total_timesteps=100_000), tmp_path / "run", callbacks=[StopAfter(600)])
    assert result.status == "stopped"
    assert 600 <= result.timesteps < 1000
    assert read_progress(result.run_dir).status == "stopped"
    assert load_agent(result.run_dir).config.train.total_timesteps == 100_000


def test_a_stop_file_stops_training(tmp_path):
    run = tmp_path / "run"

    class StopFileAt300(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps >= 300:
                request_stop(run)
            return True

    result = train(tiny_config(total_timesteps=100_000), run, callbacks=StopFileAt300())
    assert result.status == "stopped" and result.timesteps < 1000
    assert (run / "model.zip").is_file() and (run / "normalizer.npz").is_file()


def test_progress_is_written_while_training(tmp_path):
    run = tmp_path / "run"
    seen = []

    class ReadProgress(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % 256 == 0 and (run / "progress.json").exists():
                seen.append(read_progress(run))
            return True

    train(tiny_config(total_timesteps=4096, eval_every=0), run, callbacks=ReadProgress())
    running = [p for p in seen if p.status == "running"]
    assert running, "progress.json never said running"
    assert max(p.timesteps for p in running) > 0
    assert all(p.total_timesteps == 4096 for p in running)
    assert any(p.eta_s is not None and p.fps > 0 for p in running)


def test_an_error_marks_the_run_failed_and_is_raised(tmp_path):
    class Explode(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps >= 200:
                raise RuntimeError("magnet power supply tripped")
            return True

    with pytest.raises(RuntimeError, match="tripped"):
        train(tiny_config(), tmp_path / "run", callbacks=[Explode()])
    progress = read_progress(tmp_path / "run")
    assert progress.status == "failed"
    assert "magnet power supply tripped" in progress.error


# --- command line ------------------------------------------------------------------------
def write_config(path: Path, **train: object) -> Path:
    path.write_text(tiny_config(**train).to_yaml(), encoding="utf-8")
    return path


def run_cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "envlib.train", *args], cwd=ROOT, capture_output=True, text=True, timeout=120, **kwargs
    )


def test_cli_trains_into_a_named_run_and_caps_timesteps(tmp_path):
    config = write_config(tmp_path / "c.yaml", total_timesteps=1_000_000, eval_every=0)
    out = str(tmp_path / "runs")
    done = run_cli(str(config), "--out", out, "--run-id", "my-run", "--max-timesteps", "600", "--no-progress")
    assert done.returncode == 0, done.stderr
    run = tmp_path / "runs" / "my-run"
    assert done.stdout.strip() == str(run.resolve())
    assert read_config(run).train.total_timesteps == 600
    assert read_progress(run).status == "finished"
    assert load_agent(run).run_dir == run


def test_cli_generates_a_safe_name_and_rejects_bad_input(tmp_path):
    config = write_config(tmp_path / "c.yaml", total_timesteps=256, eval_every=0)
    done = run_cli(str(config), "--out", str(tmp_path / "runs"), "--progress")
    assert done.returncode == 0, done.stderr
    run = Path(done.stdout.strip())
    assert run.parent == (tmp_path / "runs").resolve()
    assert run.name.count("-") == 2 and run.name.islower()
    assert "100.0 %" in done.stderr  # the progress bar

    bad = run_cli(str(config), "--out", str(tmp_path / "runs"), "--run-id", "../escape")
    assert bad.returncode == 2 and "not a valid id" in bad.stderr
    assert not (tmp_path / "escape").exists()

    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("train: {n_epochs: 0}\n")
    bad = run_cli(str(wrong), "--out", str(tmp_path / "runs"))
    assert bad.returncode == 2 and "train.n_epochs" in bad.stderr

    again = run_cli(str(config), "--out", str(tmp_path / "runs"), "--run-id", run.name)
    assert again.returncode == 2 and "already holds a run" in again.stderr


def test_cli_stops_on_sigterm_and_saves_the_model(tmp_path):
    config = write_config(tmp_path / "c.yaml", total_timesteps=10_000_000, eval_every=0)
    command = ["-m", "envlib.train", str(config), "--out", str(tmp_path), "--run-id", "long", "--no-progress"]
    process = subprocess.Popen(
        [sys.executable, *command],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    run = tmp_path / "long"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if (run / "progress.json").exists() and read_progress(run).timesteps > 0:
                break
            time.sleep(0.1)
        else:
            pytest.fail("training did not start")
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    progress = json.loads((run / "progress.json").read_text())
    assert progress["status"] == "stopped"
    assert 0 < progress["timesteps"] < 10_000_000
    assert np.isfinite(load_agent(run).predict(np.zeros((1, 9)))[0]).all()


def test_cli_help_states_units_defaults_stopping_and_exit_codes(capsys):
    with pytest.raises(SystemExit) as done:
        envlib.train.parse_args(["--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for says in ("environment steps summed over all n_envs; default: no cap", "default: a generated name",
                 "(default: on)", "SIGINT (Ctrl-C)", "exits with 2", "exits with 1"):  # fmt: skip
        assert says in text, says


def test_cli_refuses_an_out_that_is_a_file_in_one_line(tmp_path):
    config = write_config(tmp_path / "c.yaml", total_timesteps=256, eval_every=0)
    (tmp_path / "runs").write_text("not a folder")
    with pytest.raises(ValueError, match="--out .*runs is a file; give the folder that holds the runs"):
        envlib.train.prepare_run(envlib.train.parse_args([str(config), "--out", str(tmp_path / "runs")]))
    assert (tmp_path / "runs").read_text() == "not a folder"
