"""Reward landscapes agree with stepping the single environment."""

import numpy as np
import pytest

from envlib.beamline import MAGNET_LIMITS, BeamlineSimulator
from envlib.config import DEMO_INCOMING_BEAM, EnvConfig
from envlib.env import AresEAEnv
from envlib.landscape import reward_cut, reward_landscape, reward_parts_at
from envlib.reward_spec import preset
from envlib.task import EpisodeStart


@pytest.fixture(scope="module")
def simulator():
    return BeamlineSimulator()


@pytest.fixture
def start():
    return EpisodeStart(
        target=np.array([0.0, 5e-5, 0.0, 5e-5]),
        incoming=np.array(DEMO_INCOMING_BEAM),
        misalignments=np.array([1e-4, -2e-4, 0, 0, 3e-4, 0, 5e-5, -5e-5]),
        magnets=np.array([3.0, -2.0, 0.0, 1.0, 0.0]),
    )


def direct_env(simulator, mode):
    config = EnvConfig(
        action_mode="direct", actuators="all", rescale_action=None, reward_mode=mode,
        objective_terms=("sigma_x", "sigma_y"), time_limit=None,
    )  # fmt: skip
    return AresEAEnv(config, simulator=simulator)


@pytest.mark.parametrize("mode", ["negative_objective", "objective_improvement"])
def test_landscape_matches_a_direct_scan_with_the_single_env(simulator, start, mode):
    current = np.array([10.0, -10.0, 1e-3, 5.0, -1e-3])
    land = reward_landscape(preset(mode), start, current, simulator, x_index=0, y_index=1, n=9)
    env = direct_env(simulator, mode)
    scan = np.empty((9, 9))
    for row, q2 in enumerate(land.y_values):
        for col, q1 in enumerate(land.x_values):
            env.reset(options={"start": start})
            env.step(current)  # the "previous" state of objective_improvement
            _, reward, *_ = env.step(np.array([q1, q2, current[2], current[3], current[4]]))
            scan[row, col] = reward
    np.testing.assert_allclose(land.reward, scan, rtol=1e-9, atol=1e-12)
    best_row, best_col = np.unravel_index(np.argmax(scan), scan.shape)
    assert land.best[:2] == (land.x_values[best_col], land.y_values[best_row])


def test_a_step_from_other_magnets_starts_there_and_its_current_point_is_that_steps_reward(simulator, start):
    previous = np.array([10.0, -10.0, 1e-3, 5.0, -1e-3])  # where the environment is
    current = np.array([20.0, 5.0, 1e-3, 5.0, -1e-3])  # the sliders, not applied yet
    spec = preset("objective_improvement")
    land = reward_landscape(spec, start, current, simulator, x_index=0, y_index=1, n=7, previous_magnets=previous)
    env = direct_env(simulator, "objective_improvement")
    q1, q2 = land.x_values[2], land.y_values[5]
    env.reset(options={"start": start})
    env.step(previous)
    _, reward, *_ = env.step(np.array([q1, q2, *current[2:]]))
    assert land.reward[5, 2] == pytest.approx(reward, rel=1e-9)
    step_to_sliders = sum(reward_parts_at(spec, start, previous, current, simulator).values())
    assert land.current_reward == pytest.approx(step_to_sliders, rel=1e-9)
    assert land.current_reward != pytest.approx(0.0, abs=1e-3)  # from the sliders themselves it would be 0


def test_focusing_optimum_is_not_at_the_edge_and_beats_the_start(simulator, start):
    land = reward_landscape(preset("negative_objective"), start, start.magnets, simulator, n=101)
    x, y, best = land.best
    assert abs(x) < MAGNET_LIMITS[0] and abs(y) < MAGNET_LIMITS[1]
    assert best > land.current_reward > -1.0 - 1e-9


def test_sum_of_pixels_landscape_is_flat_where_the_beam_stays_on_screen(simulator, start):
    pixels = reward_landscape(preset("sum_of_pixels"), start, start.magnets, simulator, n=61,
                              x_range=(-5, 5), y_range=(-5, 5))  # fmt: skip
    focus = reward_landscape(preset("negative_objective"), start, start.magnets, simulator, n=61,
                             x_range=(-5, 5), y_range=(-5, 5))  # fmt: skip
    # A few per cent of the beam's tail at the screen edge is all sum_of_pixels sees.
    assert pixels.spread < 0.05 < 0.5 < focus.spread


def test_cut_is_the_row_of_the_landscape_through_the_current_setting(simulator, start):
    spec = preset("negative_objective")
    values, cut = reward_cut(spec, start, start.magnets, simulator, index=3, n=50)
    # A Q3 x Q1 landscape whose first row is Q1's current setting.
    q1 = start.magnets[0]
    land = reward_landscape(spec, start, start.magnets, simulator, x_index=3, y_index=0, n=50, y_range=(q1, q1 + 1.0))
    assert land.y_values[0] == q1
    np.testing.assert_array_equal(values, land.x_values)
    np.testing.assert_allclose(cut, land.reward[0], rtol=1e-9, atol=1e-12)
    # ... and every point of it is the reward of that one step in the single env.
    env = direct_env(simulator, "negative_objective")
    stepped = np.empty(len(values))
    for i, q3 in enumerate(values):
        env.reset(options={"start": start})
        magnets = start.magnets.copy()
        magnets[3] = q3
        _, stepped[i], *_ = env.step(magnets)
    np.testing.assert_allclose(cut, stepped, rtol=1e-9, atol=1e-12)
    assert np.ptp(cut) > 0.1  # a cut with some shape, not a constant


class CountingSimulator(BeamlineSimulator):
    """A real beamline that counts the beams it tracks."""

    def __init__(self) -> None:
        super().__init__()
        self.beams = 0

    def track(self, magnets, incoming, misalignments):
        self.beams += len(np.atleast_2d(magnets))
        return super().track(magnets, incoming, misalignments)

    def track_grid(self, magnets, incoming, misalignments, x_index, x_values, y_index, y_values):
        self.beams += np.size(x_values) * np.size(y_values)
        return super().track_grid(magnets, incoming, misalignments, x_index, x_values, y_index, y_values)


def test_a_cut_tracks_one_beam_per_point_not_a_square_grid(start):
    # The Reward designer draws a 400-point cut on every rerun: 400 beams, not 400 x 400.
    counting = CountingSimulator()
    values, cut = reward_cut(preset("negative_objective"), start, start.magnets, counting, index=0, n=400)
    assert values.shape == cut.shape == (400,)
    assert counting.beams <= 400 + 3  # + the reset, previous and current states


def test_grid_size_is_bounded(simulator, start):
    with pytest.raises(ValueError, match="n must be"):
        reward_landscape(preset("negative_objective"), start, start.magnets, simulator, n=10_000)
    with pytest.raises(ValueError, match="n must be"):
        reward_cut(preset("negative_objective"), start, start.magnets, simulator, n=1)
