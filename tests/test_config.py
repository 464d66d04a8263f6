"""Configuration: bad input raises one clear ConfigError naming the key; safe YAML in and out."""

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from envlib.config import ConfigError, ConfigLoader, EnvConfig, RunConfig, TrainConfig

BAD_VALUES = [
    ({"env": {"reward_mod": "negative_objective"}}, "env.reward_mod", "allowed keys are"),
    ({"train": {"n_env": 4}}, "train.n_env", "allowed keys are"),
    ({"colour": "red"}, "colour", "allowed at the top level"),
    ({"env": {"time_limit": "25"}}, "env.time_limit", "integer"),
    ({"env": {"abort_if_off_screen": "yes"}}, "env.abort_if_off_screen", "true or false"),
    ({"env": {"time_reward": "-1"}}, "env.time_reward", "number"),
    ({"env": {"time_reward": float("nan")}}, "env.time_reward", "finite"),
    ({"train": {"net_arch": 64}}, "train.net_arch", "list"),
    ({"env": {"target_beam_values": [0, -1e-4, 0, 1e-4]}}, "env.target_beam_values", ">= 0"),
    ({"env": {"incoming_values": [80e6, 0, 0, 0, 0, -1e-4, 1e-5, 1e-4, 1e-5, 1e-6, 1e-6]}}, "env.incoming_values", ">"),
    ({"env": {"incoming_values": [80e6, 0, 0]}}, "env.incoming_values", "11 values"),
    ({"env": {"target_sigma_x_threshold": -1e-5}}, "env.target_sigma_x_threshold", "positive"),
    ({"env": {"time_limit": 0}}, "env.time_limit", "at least 1"),
    ({"env": {"threshold_hold": 0}}, "env.threshold_hold", "at least 1"),
    ({"env": {"rescale_action": [3, -3]}}, "env.rescale_action", "low < high"),
    ({"env": {"objective_terms": ["sigma_z"]}}, "env.objective_terms", "mu_x"),
    ({"env": {"magnet_init_values": [100, 0, 0, 0, 0]}}, "env.magnet_init_values", "limit"),
    ({"env": {"reward_mode": "positive_objective"}}, "env.reward_mode", "'negative_objective'"),
    ({"env": {"action_mode": "absolute"}}, "env.action_mode", "'direct', 'delta'"),
    ({"train": {"n_envs": 2, "n_steps": 10, "batch_size": 64}}, "train.batch_size", "n_steps * n_envs = 20"),
    ({"train": {"gamma": 1.5}}, "train.gamma", "(0, 1]"),
    ({"env": []}, "env", "mapping"),
    ({"train": 0}, "train", "mapping"),
]


@pytest.mark.parametrize("data, key, allowed", BAD_VALUES, ids=[f"{k}: {a}" for _, k, a in BAD_VALUES])
def test_bad_values_raise_config_error_naming_the_key(data, key, allowed):
    with pytest.raises(ConfigError) as excinfo:
        RunConfig.from_dict(data)
    assert excinfo.value.key == key
    assert str(excinfo.value).startswith(f"{key}: ")
    assert allowed in excinfo.value.message


def test_env_config_alone_names_keys_without_prefix():
    with pytest.raises(ConfigError) as excinfo:
        EnvConfig.from_dict({"reward_mode": "sum_of_pixel"})
    assert excinfo.value.key == "reward_mode"
    for mode in ("negative_objective", "objective_improvement", "sum_of_pixels"):
        assert mode in excinfo.value.message


def test_initial_magnets_of_the_wrong_length_built_in_python_name_the_key():
    # from_dict checks list lengths while coercing; a config built in code skips that step.
    with pytest.raises(ConfigError) as excinfo:
        EnvConfig(magnet_init_values=(0.0, 0.0, 0.0))
    assert excinfo.value.key == "magnet_init_values"
    assert "5 values" in excinfo.value.message


def test_a_config_is_a_value_error_for_callers_that_catch_those():
    with pytest.raises(ValueError):
        TrainConfig(batch_size=10_000)


def test_configs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        EnvConfig().time_limit = 3


def test_yaml_round_trip_gives_the_same_config(tmp_path):
    config = RunConfig(
        env=EnvConfig(
            action_mode="direct", reward_mode="objective_improvement", time_reward=-1.0, abort_if_off_screen=True,
            time_limit=None, target_sigma_x_threshold=2e-5, threshold_hold=3, rescale_action=None,
            objective_terms=("mu_x", "sigma_x"), actuators="all", observation="full", target_beam_mode="random",
            misalignment_mode="random", magnet_init_mode="constant", magnet_init_values=(1.0, -2.0, 1e-4, 3.0, -1e-4),
        ),
        train=TrainConfig(n_envs=8, n_steps=16, batch_size=32, net_arch=(32, 16), frame_stack=2, seed=7),
        display_name="Sean Kelley",
    )  # fmt: skip
    text = config.to_yaml()
    assert "!!" not in text  # plain data only: no Python tags
    assert RunConfig.from_yaml(text) == config
    path = tmp_path / "config.yml"
    path.write_text(text)
    assert RunConfig.load(path) == config
    assert yaml.safe_load(text)["env"]["objective_terms"] == ["mu_x", "sigma_x"]


def test_the_tutorials_flat_config_is_accepted():
    config = RunConfig.from_dict(
        {"run_name": "Betty Gordon", "reward_mode": "objective_improvement", "n_envs": 40, "batch_size": 100,
         "rescale_action": [-3, 3], "time_limit": 25}
    )  # fmt: skip
    assert config.display_name == "Betty Gordon"
    assert config.env.reward_mode == "objective_improvement" and config.env.rescale_action == (-3.0, 3.0)
    assert config.train.n_envs == 40 and config.train.batch_size == 100


def test_a_key_given_flat_and_in_its_section_is_refused_not_silently_dropped():
    with pytest.raises(ConfigError, match="given twice: at the top level and under train") as excinfo:
        RunConfig.from_yaml("seed: 1\ntrain: {seed: 2}\n")
    assert excinfo.value.key == "seed"
    with pytest.raises(ConfigError, match="under env"):
        RunConfig.from_dict({"env": {"time_limit": 25}, "time_limit": 50})
    with pytest.raises(ConfigError, match="not both"):
        RunConfig.from_dict({"display_name": "A", "run_name": "B"})
    assert RunConfig.from_dict({"seed": 1, "env": {"time_limit": 25}}).train.seed == 1


def test_yaml_with_a_python_object_tag_is_refused_and_runs_nothing(tmp_path):
    witness = tmp_path / "pwned"
    text = f"env: !!python/object/apply:builtins.open ['{witness}', 'w']\n"
    with pytest.raises(ConfigError) as excinfo:
        RunConfig.from_yaml(text)
    assert excinfo.value.key == "config"
    assert not witness.exists()
    with pytest.raises(ConfigError):
        RunConfig.from_yaml("!!python/object:envlib.config.EnvConfig {}\n")


def test_unreadable_files_and_broken_yaml_raise_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        RunConfig.load(tmp_path / "missing.yml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        RunConfig.from_yaml("env: {reward_mode: [\n")


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("env: {reward_mode: [\n", "at line 2, column 1: while parsing a flow node, expected the node content"),
        ("env:\n\ttime_limit: 3\n", "at line 2, column 1: "),
        ("env: !!python/name:os.system\n", "at line 1, column 6: could not determine a constructor for the tag"),
        ("env: {}\n\x00", "unacceptable character #x0000"),
    ],
)
def test_a_yaml_error_is_one_line_that_says_where(text, where):
    with pytest.raises(ConfigError) as refused:
        RunConfig.from_yaml(text)
    message = str(refused.value)
    assert "\n" not in message and where in message, message
    if "python/name" in text:
        assert "Python tags are refused" in message


@pytest.mark.parametrize("text", ["3e-4", "3E-4", "0.3e-3", "+3e-4"])
def test_a_learning_rate_in_scientific_notation_is_a_number(text):
    assert RunConfig.from_yaml(f"train:\n  learning_rate: {text}\n").train.learning_rate == pytest.approx(3e-4)


def test_whole_numbers_in_scientific_notation_are_accepted_for_integer_keys():
    config = RunConfig.from_yaml("train: {total_timesteps: 1E5, eval_every: 2e4}\nenv: {time_reward: -1e-1}\n")
    assert (config.train.total_timesteps, config.train.eval_every) == (100_000, 20_000)
    assert isinstance(config.train.total_timesteps, int) and config.env.time_reward == -0.1


def test_a_name_that_looks_like_a_number_stays_a_name_through_yaml():
    config = RunConfig(display_name="1e5")
    assert RunConfig.from_yaml(config.to_yaml()).display_name == "1e5"


def test_a_key_given_twice_is_refused_not_silently_overwritten():
    with pytest.raises(ConfigError) as refused:
        RunConfig.from_yaml("train:\n  seed: 1\n  n_envs: 4\n  seed: 2\n")
    assert str(refused.value) == "config: is not valid YAML at line 4, column 3: the key 'seed' is given twice"
    with pytest.raises(ConfigError, match="the key 'train' is given twice"):
        RunConfig.from_yaml("train: {seed: 1}\nenv: {}\ntrain: {n_envs: 4}\n")
    # A merge key is YAML's way to override on purpose, not a repeat.
    merged = RunConfig.from_yaml("train: {<<: {seed: 4, n_envs: 4, batch_size: 50}, seed: 5}\n")
    assert (merged.train.seed, merged.train.n_envs) == (5, 4)


def test_the_readme_lists_every_training_key_with_its_default():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Training keys", 1)[1].split("\n\n", 2)[1]
    listed = {}
    for row in section.splitlines()[2:]:
        keys, defaults = row.split(" | ")[:2]
        values = yaml.load(f"[{defaults.replace('`', '')}]", Loader=ConfigLoader)
        listed |= dict(zip(re.findall(r"`(\w+)`", keys), values, strict=True))
    assert listed == TrainConfig().to_dict()
