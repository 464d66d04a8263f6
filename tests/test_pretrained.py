"""The shipped agents: complete, loadable without pickle, and they still teach their lessons."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import torch

import envlib.pretrained
from envlib.agent import load_agent
from envlib.evaluation import evaluate, evaluation_seeds
from envlib.pretrained import AGENTS, PRETRAINED, PRETRAINED_DIR, SCORE_EPISODES, readme_table
from envlib.runs import is_valid_run_id, read_evaluations

IDS = [agent.id for agent in AGENTS]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def scores() -> dict[str, dict]:
    return {agent.id: agent.scores() for agent in AGENTS}


def test_the_registry_lists_exactly_the_shipped_folders():
    folders = {p.name for p in PRETRAINED_DIR.iterdir() if p.is_dir() and not p.name.startswith(".")}
    assert folders == set(PRETRAINED)
    names = {agent.display_name for agent in AGENTS}
    assert {"Gary Buchwald", "David Archibald", "Bertha Sparkman", "Betty Gordon", "Sean Kelley"} <= names


@pytest.mark.parametrize("agent_id", IDS)
def test_each_agent_is_a_complete_run_with_a_description(agent_id, scores):
    agent = PRETRAINED[agent_id]
    assert is_valid_run_id(agent.id)
    for name in ("config.yaml", "model.zip", "normalizer.npz", "episodes.csv", "evaluations.csv", "scores.json"):
        assert (agent.path / name).is_file(), name
    config = agent.config
    assert config.display_name == agent.display_name
    assert config.description and len(config.description) > 40
    assert scores[agent_id]["evaluation"]["episodes"] == SCORE_EPISODES
    assert scores[agent_id]["training"]["timesteps"] >= config.train.total_timesteps
    assert (agent.path / "model.zip").stat().st_size < 300_000  # small enough for git
    assert len(read_evaluations(agent.path)) >= 2


@pytest.mark.parametrize("agent_id", IDS)
def test_each_agent_reproduces_its_scores(agent_id, scores):
    metrics = evaluate(load_agent(PRETRAINED[agent_id].path), evaluation_seeds(SCORE_EPISODES)).metrics
    expected = scores[agent_id]["metrics"]
    for key in ("mean_final_mae_focus", "mean_final_mae_all", "mean_episode_length", "fraction_aborted"):
        assert metrics[key] == pytest.approx(expected[key], rel=1e-3, abs=1e-9), key


def test_a_few_seeds_keep_the_order_of_the_scores(scores):
    few = {
        agent_id: evaluate(load_agent(PRETRAINED[agent_id].path), evaluation_seeds(20)).metrics["mean_final_mae_focus"]
        for agent_id in ("negobj-delta", "objimp-delta", "pixels-delta")
    }
    assert few["negobj-delta"] < few["pixels-delta"]
    assert few["objimp-delta"] < few["pixels-delta"]
    full = {agent_id: scores[agent_id]["metrics"]["mean_final_mae_focus"] for agent_id in few}
    assert sorted(few, key=few.get) == sorted(full, key=full.get)


def test_the_working_agents_reach_the_quality_goals(scores):
    assert scores["negobj-delta"]["metrics"]["mean_final_mae_focus"] <= 4e-5
    assert scores["objimp-delta"]["metrics"]["mean_final_mae_focus"] <= 6e-5


def test_the_cautionary_agents_show_their_lesson(scores):
    best = scores["negobj-delta"]["metrics"]["mean_final_mae_focus"]
    pixels = scores["pixels-delta"]["metrics"]
    assert pixels["mean_final_mae_focus"] > 3 * best  # it does not focus
    abort = scores["objimp-delta-abort-time"]["metrics"]
    assert abort["fraction_aborted"] > 0.5 and abort["mean_episode_length"] < 10  # it leaves the screen early


def test_the_readme_shows_every_agents_scores(scores):
    readme = (PRETRAINED_DIR / "README.md").read_text(encoding="utf-8")
    assert readme_table() in readme
    for agent in AGENTS:
        assert f"{scores[agent.id]['metrics']['mean_final_mae_focus']:.2e}" in readme


def test_loading_every_agent_builds_no_optimizer_and_never_imports_torch_dynamo():
    """An agent only acts: the first torch optimizer of a process imports torch._dynamo (~2 s)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from envlib.agent import load_agent\n"
        "from envlib.pretrained import PRETRAINED\n"
        "for agent in PRETRAINED.values():\n"
        "    assert not hasattr(load_agent(agent.path).policy.optimizer, 'step')\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=PRETRAINED_DIR.parent, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_retraining_swaps_in_model_and_scores_together_or_neither(tmp_path, monkeypatch):
    """Ctrl-C while the new agent is scored leaves the old model with its own scores."""
    shutil.copytree(PRETRAINED["negobj-delta"].path, tmp_path / "negobj-delta")
    monkeypatch.setattr(envlib.pretrained, "PRETRAINED_DIR", tmp_path)
    agent = tmp_path / "negobj-delta"
    shipped = {name: (agent / name).read_bytes() for name in ("model.zip", "scores.json", "normalizer.npz")}

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(envlib.pretrained, "evaluate", interrupted)
        with pytest.raises(KeyboardInterrupt):
            envlib.pretrained.retrain("negobj-delta", max_timesteps=1)
    assert {name: (agent / name).read_bytes() for name in shipped} == shipped

    scores = envlib.pretrained.retrain("negobj-delta", max_timesteps=1)  # one rollout: 5,000 steps
    assert (agent / "model.zip").read_bytes() != shipped["model.zip"]
    assert json.loads((agent / "scores.json").read_text()) == scores
    assert scores["training"]["timesteps"] == 5000
    metrics = evaluate(load_agent(agent), evaluation_seeds(SCORE_EPISODES)).metrics
    assert metrics == pytest.approx(scores["metrics"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["negobj-delta"]  # no scratch folder left


def test_retrain_refuses_a_zero_cap_in_one_line_and_warns_that_a_trial_replaces_the_agents(capsys):
    model = (PRETRAINED["negobj-delta"].path / "model.zip").read_bytes()
    assert envlib.pretrained.main(["--retrain", "--max-timesteps", "0", "negobj-delta"]) == 2
    assert capsys.readouterr().err == "error: --max-timesteps must be at least 1, got 0\n"
    assert (PRETRAINED["negobj-delta"].path / "model.zip").read_bytes() == model
    with pytest.raises(SystemExit):
        envlib.pretrained.main(["--help"])
    assert "its agents replace the shipped ones" in " ".join(capsys.readouterr().out.split())


def test_the_main_readme_quotes_the_shipped_scores_and_training_time(scores):
    readme = (PRETRAINED_DIR.parent / "README.md").read_text(encoding="utf-8")
    for agent in AGENTS:
        row = re.search(rf"^\| `{agent.id}` \| {agent.display_name} \| (.*?) \|", readme, re.MULTILINE)
        assert row, agent.id
        m = scores[agent.id]["metrics"]
        if agent.config.env.abort_if_off_screen:
            assert f"after {m['mean_episode_length']:.1f} steps" in readme
        else:
            value, key = (
                (m["mean_final_mae_all"], "mae_all ") if agent.id == "full-task" else (m["mean_final_mae_focus"], "")
            )
            assert row.group(1) == f"{key}{value:.1e} m".replace("e-0", "e-"), agent.id
    minutes = sum(s["training"]["wall_s"] for s in scores.values()) / 60
    claimed = re.search(r"`make pretrained`\s+retrains them all \(about (\d+) min on 2 cores", readme)
    assert claimed and abs(int(claimed.group(1)) - minutes) < 1, minutes
