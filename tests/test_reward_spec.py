"""Composable reward specs: presets equal the tutorial's rewards, bad specs are refused."""

import numpy as np
import pytest
import yaml

from envlib import rewards
from envlib.reward_spec import RewardSpec, RewardSpecError, preset


def random_state(rng, n=64):
    return dict(
        errors=rng.normal(0, 3e-4, (n, 4)),
        previous_errors=rng.normal(0, 3e-4, (n, 4)),
        errors_0=rng.normal(0, 3e-4, (n, 4)),
        pixel_sum=rng.uniform(0, 1, n),
        on_screen=rng.uniform(size=n) > 0.3,
        within_thresholds=rng.uniform(size=n) > 0.5,
    )


@pytest.mark.parametrize(
    "terms", [("sigma_x", "sigma_y"), ("mu_x", "sigma_x", "mu_y", "sigma_y")], ids=["focus", "all"]
)
@pytest.mark.parametrize("time_reward", [0.0, -1.0], ids=["no-time", "time"])
@pytest.mark.parametrize("mode", rewards.REWARD_MODES)
def test_presets_equal_the_tutorial_rewards_exactly(mode, terms, time_reward):
    state = random_state(np.random.default_rng(7))
    obj = lambda e: rewards.objective(e, np.zeros_like(e), terms)  # noqa: E731
    expected = rewards.mode_reward(
        mode,
        objective=obj(state["errors"]),
        previous_objective=obj(state["previous_errors"]),
        objective_0=obj(state["errors_0"]),
        pixel_sum=state["pixel_sum"],
    ) + time_reward
    got = preset(mode, terms, time_reward).reward(**state)
    np.testing.assert_array_equal(got, expected)


def test_each_term_adds_its_part():
    spec = RewardSpec(
        kind="negative_objective",
        weights={"mu_x": 2.0, "sigma_y": 0.5},
        normalize=True,
        pixel_weight=0.25,
        time_reward=-0.1,
        off_screen_penalty=-3.0,
        success_bonus=2.0,
    )
    e = np.array([[1e-4, 9e-4, 9e-4, 2e-4]])
    e0 = np.array([[2e-4, 0.0, 0.0, 4e-4]])
    parts = spec.parts(
        errors=e, previous_errors=e, errors_0=e0, pixel_sum=np.array([0.8]),
        on_screen=np.array([False]), within_thresholds=np.array([True]),
    )  # fmt: skip
    d, d0 = 2 * 1e-4 + 0.5 * 2e-4, 2 * 2e-4 + 0.5 * 4e-4
    assert parts["objective"][0] == pytest.approx(-d / d0)
    assert parts["sum_of_pixels"][0] == pytest.approx(-0.2)
    assert parts["time"][0] == pytest.approx(-0.1)
    assert parts["off_screen"][0] == pytest.approx(-3.0)
    assert parts["success"][0] == pytest.approx(2.0)


def test_squared_and_log_forms():
    e, e0, ep = np.array([[0, 1e-4, 0, 1e-4]]), np.array([[0, 4e-4, 0, 4e-4]]), np.array([[0, 2e-4, 0, 2e-4]])
    state = dict(errors=e, previous_errors=ep, errors_0=e0, pixel_sum=np.ones(1), on_screen=np.ones(1, bool),
                 within_thresholds=np.zeros(1, bool))  # fmt: skip
    squared = RewardSpec(form="squared").reward(**state)[0]
    assert squared == pytest.approx(-(2e-8) / (32e-8))
    log_imp = RewardSpec(kind="objective_improvement", form="log").reward(**state)[0]
    assert log_imp == pytest.approx(np.log((4e-4 + 1e-6) / (2e-4 + 1e-6)))
    raw_mm = RewardSpec(normalize=False).reward(**state)[0]
    assert raw_mm == pytest.approx(-0.2)  # 2e-4 m = 0.2 mm


@pytest.mark.parametrize(
    "data, key",
    [
        ({"weights": {"sigma_z": 1.0}}, "weights.sigma_z"),
        ({"weights": {"sigma_x": -1.0}}, "weights.sigma_x"),
        ({"weights": {"sigma_x": "a lot"}}, "weights.sigma_x"),
        ({"form": "cubic"}, "form"),
        ({"kind": "maximise_fun"}, "kind"),
        ({"off_screen_penalty": 5.0}, "off_screen_penalty"),
        ({"success_bonus": -1.0}, "success_bonus"),
        ({"weights": {}, "pixel_weight": 0.0}, "weights"),
        ({"eval": "__import__('os')"}, "eval"),
    ],
    ids=["unknown-term", "negative-weight", "text-weight", "form", "kind", "positive-penalty", "negative-bonus",
         "no-terms", "unknown-key"],  # fmt: skip
)
def test_bad_specs_are_refused_naming_the_key(data, key):
    with pytest.raises(RewardSpecError) as err:
        RewardSpec.from_dict(data)
    assert err.value.key == key


def test_spec_round_trips_through_safe_yaml():
    spec = RewardSpec(kind="objective_improvement", weights={"mu_x": 1.5, "sigma_y": 1.0}, form="log",
                      time_reward=-0.5, success_bonus=1.0)  # fmt: skip
    text = yaml.safe_dump(spec.to_dict())
    assert RewardSpec.from_dict(yaml.safe_load(text)) == spec


def test_latex_names_the_weighted_terms():
    latex = RewardSpec(weights={"mu_x": 2.0, "sigma_y": 1.0}, time_reward=-1.0).latex()
    assert r"2\,|\mu_x" in latex and r"|\sigma_y" in latex and r"\sigma_x" not in latex
    assert latex.endswith(r"r_j = -\hat{O}_j -1")
