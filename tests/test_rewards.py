"""Every reward mode against a hand computation from the beam values in ``info``."""

import math

import numpy as np
import pytest

from envlib import rewards
from envlib.env import AresEAEnv

TARGET = (2e-4, 5e-5, -1e-4, 8e-5)
#: The screen's half width and height in m, typed in: 2448 x 2040 pixels of 3.3198 x 2.4469 um.
HALF_WIDTH, HALF_HEIGHT = 2448 * 3.3198e-6 / 2, 2040 * 2.4469e-6 / 2
#: [Q1, Q2, CV, Q3, CH] settings of one episode (direct mode, physical units): the last ones
#: push the beam partly and then fully off the screen, so the pixel sum is not always 1.
SETTINGS = np.array(
    [
        [10.0, -20.0, 0.0, 15.0, 0.0],
        [25.0, -30.0, 5e-4, 10.0, -5e-4],
        [-5.0, 8.0, 0.0, -3.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, 5e-3],
        [20.0, -20.0, 0.0, 0.0, 6e-3],
        [0.0, 0.0, 6e-3, 0.0, 6e-3],
    ]
)


def run_episode(simulator, **config):
    """Reset and apply SETTINGS directly; returns the reset info and [(reward, info), ...]."""
    base = dict(
        action_mode="direct", actuators="all", rescale_action=None, incoming_mode="constant",
        incoming_values=(80e6, -5e-4, 6e-5, 3e-4, 3e-5, 8e-4, 4e-5, 3e-4, 4e-5, 1e-6, 4e-6),
        target_beam_values=TARGET, time_limit=None,
    )  # fmt: skip
    env = AresEAEnv({**base, **config}, simulator=simulator)
    _, info_0 = env.reset(seed=0)
    steps = []
    for magnets in SETTINGS:
        _, reward, _, _, info = env.step(magnets.astype(np.float32))
        steps.append((reward, info))
    return info_0, steps


def hand_objective(info, terms):
    """obj = sum over terms of |b^c - b^t|, written out."""
    (mu_x, sigma_x, mu_y, sigma_y), (t_mu_x, t_sigma_x, t_mu_y, t_sigma_y) = info["beam"], info["target"]
    error = {
        "mu_x": abs(mu_x - t_mu_x),
        "sigma_x": abs(sigma_x - t_sigma_x),
        "mu_y": abs(mu_y - t_mu_y),
        "sigma_y": abs(sigma_y - t_sigma_y),
    }
    return sum(error[t] for t in terms)


def hand_pixel_sum(info):
    """Fraction of a Gaussian beam within the screen: product of two 1-D Gaussian integrals."""
    mu_x, sigma_x, mu_y, sigma_y = info["beam"]
    def within(half, mu, sigma):
        return 0.5 * (math.erf((half - mu) / (math.sqrt(2) * sigma)) + math.erf((half + mu) / (math.sqrt(2) * sigma)))

    return within(HALF_WIDTH, mu_x, sigma_x) * within(HALF_HEIGHT, mu_y, sigma_y)


def hand_rewards(info_0, steps, mode, terms, time_reward):
    obj_0 = hand_objective(info_0, terms)
    previous = obj_0
    out = []
    for _, info in steps:
        obj = hand_objective(info, terms)
        if mode == "negative_objective":
            r = -obj / obj_0
        elif mode == "objective_improvement":
            r = (previous - obj) / obj_0
        else:
            r = -hand_pixel_sum(info)
        out.append(r + time_reward)
        previous = obj
    return np.array(out)


TERMS = {"focus": ("sigma_x", "sigma_y"), "all": ("mu_x", "sigma_x", "mu_y", "sigma_y"), "x-only": ("mu_x", "sigma_x")}


@pytest.mark.parametrize("time_reward", [0.0, -1.0], ids=["no-time", "time-1"])
@pytest.mark.parametrize("terms", list(TERMS), ids=list(TERMS))
@pytest.mark.parametrize("mode", ["negative_objective", "objective_improvement", "sum_of_pixels"])
def test_reward_equals_the_hand_computation(simulator, mode, terms, time_reward):
    info_0, steps = run_episode(simulator, reward_mode=mode, objective_terms=TERMS[terms], time_reward=time_reward)
    got = np.array([r for r, _ in steps])
    np.testing.assert_allclose(got, hand_rewards(info_0, steps, mode, TERMS[terms], time_reward), rtol=1e-9, atol=1e-12)


def test_the_episode_covers_on_partly_off_and_off_screen_beams(simulator):
    """Guard for the test above: its pixel sums and objectives are not all the same."""
    info_0, steps = run_episode(simulator)
    pixel_sums = [hand_pixel_sum(info) for _, info in steps]
    assert max(pixel_sums) > 0.999 and min(pixel_sums) < 1e-3
    assert any(0.05 < p < 0.95 for p in pixel_sums)
    assert [info["on_screen"] for _, info in steps] == [True, True, True, True, False, False]


def test_objective_improvement_sums_to_the_total_improvement(simulator):
    info_0, steps = run_episode(simulator, reward_mode="objective_improvement")
    total = sum(r for r, _ in steps)
    assert total == pytest.approx((info_0["objective"] - steps[-1][1]["objective"]) / info_0["objective"], rel=1e-9)


def test_objective_terms_decide_what_counts(simulator):
    """Position errors change the reward only when mu_x, mu_y are among the terms."""
    _, focus = run_episode(simulator, objective_terms=("sigma_x", "sigma_y"))
    _, everything = run_episode(simulator, objective_terms=("mu_x", "sigma_x", "mu_y", "sigma_y"))
    for (r_f, info_f), (r_a, info_a) in zip(focus, everything, strict=True):
        e = info_f["errors"]
        assert info_f["objective"] == pytest.approx(e["sigma_x"] + e["sigma_y"], rel=1e-12)
        assert info_a["objective"] == pytest.approx(e["mu_x"] + e["sigma_x"] + e["mu_y"] + e["sigma_y"], rel=1e-12)
        assert r_f != pytest.approx(r_a, rel=1e-6)


@pytest.mark.parametrize("mode", ["negative_objective", "objective_improvement", "sum_of_pixels"])
def test_info_explains_the_reward(simulator, mode):
    info_0, steps = run_episode(simulator, reward_mode=mode, time_reward=-0.5)
    errors_0 = np.abs(np.subtract(info_0["beam"], TARGET))
    assert info_0["errors"] == pytest.approx(dict(zip(("mu_x", "sigma_x", "mu_y", "sigma_y"), errors_0, strict=True)))
    for reward, info in steps:
        beam, target = np.array(info["beam"]), np.array(info["target"])
        errors = np.abs(beam - target)
        np.testing.assert_array_equal(target, TARGET)
        assert list(info["errors"]) == ["mu_x", "sigma_x", "mu_y", "sigma_y"]
        np.testing.assert_allclose(list(info["errors"].values()), errors, rtol=1e-12)
        assert info["mae_focus"] == pytest.approx((errors[1] + errors[3]) / 2, rel=1e-12)
        assert info["mae_all"] == pytest.approx(errors.sum() / 4, rel=1e-12)
        assert info["on_screen"] == (abs(beam[0]) <= HALF_WIDTH and abs(beam[2]) <= HALF_HEIGHT)
        assert info["pixel_sum"] == pytest.approx(hand_pixel_sum(info), abs=1e-12)
        # The parts add up to the reward, and the time term is one of them.
        assert sum(info["reward_parts"].values()) == pytest.approx(reward, rel=1e-12, abs=1e-15)
        assert info["reward_parts"]["time"] == -0.5
        # Every mode's value is reported; the configured one plus the time term is the reward.
        assert set(info["rewards_by_mode"]) == set(rewards.REWARD_MODES)
        assert info["rewards_by_mode"][mode] - 0.5 == pytest.approx(reward, rel=1e-12, abs=1e-15)


def test_rewards_by_mode_are_the_hand_computed_values_of_every_mode(simulator):
    """``info["rewards_by_mode"]`` of a negative_objective env gives what the other modes would pay."""
    info_0, steps = run_episode(simulator, reward_mode="negative_objective")
    for mode in rewards.REWARD_MODES:
        got = [info["rewards_by_mode"][mode] for _, info in steps]
        np.testing.assert_allclose(got, hand_rewards(info_0, steps, mode, TERMS["focus"], 0.0), rtol=1e-9, atol=1e-12)


def test_a_reset_onto_the_target_does_not_divide_by_zero(simulator):
    """obj_0 = 0 (the beam starts on target) gives finite rewards."""
    from envlib.config import DEMO_INCOMING_BEAM
    from envlib.task import EpisodeStart

    env = AresEAEnv(dict(action_mode="direct", actuators="all", rescale_action=None), simulator=simulator)
    start = EpisodeStart(
        target=np.zeros(4), incoming=np.array(DEMO_INCOMING_BEAM), misalignments=np.zeros(8), magnets=np.zeros(5)
    )
    _, info = env.reset(options={"start": start})
    start.target = np.array(info["beam"])  # the beam of the reset state is the target
    _, info = env.reset(options={"start": start})
    assert info["objective"] == 0.0
    _, reward, *_ = env.step(np.array([1.0, 0, 0, 0, 0], dtype=np.float32))
    assert np.isfinite(reward) and reward < 0
