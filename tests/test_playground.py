"""The Playground's session model (envlib.playground): previews, steps, demo, history."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from envlib import rewards
from envlib.beamline import DELTA_LIMITS, MAGNET_LIMITS
from envlib.config import DEMO_INCOMING_BEAM, ConfigError
from envlib.env import AresEAEnv
from envlib.playground import (
    HISTORY_COLUMNS,
    TUTORIAL_TARGET,
    PlaygroundSession,
    normalised_magnets,
    physical_magnets,
    playground_config,
)
from envlib.screen import pixel_sum
from envlib.task import hidden_entries, observation_entries

ALL = ("mu_x", "sigma_x", "mu_y", "sigma_y")


@pytest.fixture
def session(simulator) -> PlaygroundSession:
    """A fresh session on the shared simulator (conftest), default setup."""
    return PlaygroundSession(playground_config(), simulator=simulator)


def test_starts_from_zero_magnets_with_the_reset_state_as_reference(session, simulator):
    config = session.config
    beam0 = simulator.track(np.zeros(5), np.array(DEMO_INCOMING_BEAM), np.zeros(8))
    assert config.actuators == "all" and config.objective_terms == ALL
    assert np.array_equal(session.magnets, np.zeros(5))
    assert session.objective_0 == pytest.approx(rewards.objective(beam0, np.array(TUTORIAL_TARGET), ALL)[0], rel=1e-12)
    assert len(session.history) == 1 and session.history[0]["step"] == 0
    assert session.history[0]["reward_negative_objective"] is None


def test_preview_shows_cheetah_beam_and_every_reward_without_stepping(session, simulator):
    magnets = np.array([20.0, -15.0, 1e-3, 5.0, -5e-4])
    readout = session.preview(magnets)

    beam = simulator.track(magnets, np.array(DEMO_INCOMING_BEAM), np.zeros(8))
    target = np.array(TUTORIAL_TARGET)
    obj = rewards.objective(beam, target, ALL)
    obj_0 = np.array([session.objective_0])
    np.testing.assert_allclose(readout.beam, beam[0], rtol=1e-12)
    assert readout.objective == pytest.approx(obj[0], rel=1e-12)
    assert readout.rewards["negative_objective"] == pytest.approx(rewards.negative_objective(obj, obj_0)[0])
    assert readout.rewards["objective_improvement"] == pytest.approx(
        rewards.objective_improvement(obj_0, obj, obj_0)[0]
    )
    assert readout.rewards["sum_of_pixels"] == pytest.approx(-pixel_sum(beam)[0])
    # Nothing moved: the environment is still at the reset state.
    assert np.array_equal(session.magnets, np.zeros(5)) and session.steps == 0 and len(session.history) == 1


def test_preview_gives_the_numbers_a_direct_step_gives(simulator):
    session = PlaygroundSession(playground_config(action_mode="direct", time_reward=-0.5), simulator=simulator)
    session.step_to([5.0, 5.0, 0.0, 5.0, 0.0])
    magnets = [30.0, -20.0, -2e-3, 10.0, 1e-3]
    preview = session.preview(magnets)
    stepped = session.step_to(magnets)
    np.testing.assert_allclose(stepped.magnets, magnets, rtol=1e-12)
    np.testing.assert_allclose(preview.beam, stepped.beam, rtol=1e-12)
    assert preview.rewards == pytest.approx(stepped.rewards, rel=1e-12)
    assert preview.time_reward == -0.5
    assert preview.rewards["negative_objective"] == pytest.approx(-preview.objective / preview.objective_0 - 0.5)


def test_sum_of_pixels_stays_minus_one_while_the_beam_is_on_the_screen(session):
    # Quadrupoles change the beam's size a lot but keep it on the screen ...
    on_screen = [session.preview([q, -q, 0.0, q / 2, 0.0]) for q in (0.0, 5.0, 10.0, 15.0)]
    sizes = [r.beam[1] for r in on_screen]
    assert max(sizes) > 1.5 * min(sizes)
    for r in on_screen:
        assert r.rewards["sum_of_pixels"] == pytest.approx(-1.0, abs=1e-3)
    # ... while the objective-based rewards see every change.
    assert len({round(r.rewards["negative_objective"], 3) for r in on_screen}) == len(on_screen)
    # Pushing the beam off the screen is the only way sum_of_pixels "improves".
    off = session.preview([0.0, 0.0, MAGNET_LIMITS[2], 0.0, 0.0])
    assert not off.on_screen
    assert off.rewards["sum_of_pixels"] > -0.5


def test_a_delta_step_moves_each_magnet_at_most_ten_percent_of_its_limit(session):
    wanted = [50.0, -3.0, 5e-3, 0.0, -1e-4]
    expected = [DELTA_LIMITS[0], -3.0, DELTA_LIMITS[2], 0.0, -1e-4]
    np.testing.assert_allclose(session.step_destination(wanted), expected, rtol=1e-9, atol=1e-15)  # said before
    assert session.steps == 0
    readout = session.step_to(wanted)
    np.testing.assert_allclose(readout.magnets, expected, rtol=1e-9, atol=1e-15)
    assert session.steps == 1 and len(session.history) == 2
    assert session.history[-1]["reward_negative_objective"] == pytest.approx(readout.rewards["negative_objective"])


def test_direct_steps_set_magnets_clipped_to_their_limits(simulator):
    session = PlaygroundSession(playground_config(action_mode="direct"), simulator=simulator)
    readout = session.step_to([100.0, -10.0, -1.0, 10.0, 2e-3])
    np.testing.assert_allclose(readout.magnets, [72.0, -10.0, -MAGNET_LIMITS[2], 10.0, 2e-3], rtol=1e-12)


def test_bad_magnet_settings_are_refused_and_change_nothing(session):
    with pytest.raises(ValueError, match="finite"):
        session.step_to([np.nan, 0, 0, 0, 0])
    assert session.steps == 0 and len(session.history) == 1


def test_reset_puts_magnets_back_and_clears_the_history(session):
    session.step_to([7.0, 7.0, 0.0, 7.0, 0.0])
    obj_0 = session.objective_0
    session.reset()
    assert np.array_equal(session.magnets, np.zeros(5))
    assert session.objective_0 == obj_0 and len(session.history) == 1


def test_a_new_setup_starts_a_new_episode_from_the_current_magnets(session):
    session.step_to([7.0, -7.0, 0.0, 7.0, 0.0])
    magnets = session.magnets
    old_obj_0 = session.objective_0
    session.reconfigure(playground_config(target=(0.0, 0.0, 0.0, 0.0), objective_terms=("sigma_x", "sigma_y")))
    assert np.array_equal(session.magnets, magnets)
    assert session.steps == 0 and len(session.history) == 1
    beam = session.history[0]
    assert session.objective_0 == pytest.approx(beam["sigma_x"] + beam["sigma_y"], rel=1e-12)
    assert session.objective_0 != old_obj_0


def test_objective_improvement_over_the_history_telescopes(session):
    for q in (7.0, 14.0, 10.0, 3.0):
        session.step_to([q, -q, 0.0, q, 0.0])
    total = sum(row["reward_objective_improvement"] for row in session.history[1:])
    final = session.history[-1]["objective"]
    assert total == pytest.approx((session.objective_0 - final) / session.objective_0, rel=1e-9)


def test_demo_is_the_tutorials_vertical_corrector_sweep(simulator):
    session = PlaygroundSession(playground_config(action_mode="direct"), simulator=simulator)
    settings = session.demo_settings()
    normalised = normalised_magnets(settings)
    assert settings.shape == (10, 5)
    np.testing.assert_allclose(normalised[:, [0, 1, 3, 4]], np.tile([0.2, -0.2, 0.3, 0.0], (10, 1)), atol=1e-12)
    np.testing.assert_allclose(normalised[:, 2], -0.5 + np.arange(10) / 10, atol=1e-12)
    for magnets in settings:
        session.step_to(magnets)
    mu_y = [row["mu_y"] for row in session.history[1:]]
    mu_x = [row["mu_x"] for row in session.history[1:]]
    assert np.all(np.diff(mu_y) > 0), "the vertical corrector moves the beam up step by step"
    assert np.ptp(mu_x) < 1e-9, "and leaves x alone"


def test_normalised_view_is_what_a_rescaled_direct_agent_sees(simulator):
    env = AresEAEnv(playground_config(action_mode="direct"), simulator=simulator)
    magnets = np.array([36.0, -72.0, 3e-3, 0.0, -6.1782e-3])
    np.testing.assert_allclose(normalised_magnets(magnets), env.task.agent_action(magnets)[0], atol=1e-12)
    np.testing.assert_allclose(physical_magnets(normalised_magnets(magnets)), magnets, rtol=1e-12)
    np.testing.assert_allclose(physical_magnets([2.0, -2.0, 0, 0, 0]), [72.0, -72.0, 0, 0, 0])


def test_history_exports_as_csv_with_one_row_per_step(session):
    session.step_to([7.0, 0.0, 0.0, 0.0, 0.0])
    session.step_to([7.0, 7.0, 0.0, 0.0, 0.0])
    rows = list(csv.DictReader(io.StringIO(session.history_csv())))
    assert tuple(rows[0]) == HISTORY_COLUMNS
    assert [r["step"] for r in rows] == ["0", "1", "2"]
    assert rows[0]["reward_sum_of_pixels"] == ""
    assert float(rows[2]["Q2"]) == pytest.approx(7.0)
    assert float(rows[2]["sigma_x"]) == pytest.approx(session.history[2]["sigma_x"], rel=1e-15)
    assert float(rows[1]["reward_negative_objective"]) == pytest.approx(session.history[1]["reward_negative_objective"])


def test_clear_history_keeps_the_current_state(session):
    session.step_to([7.0, 0.0, 0.0, 0.0, 0.0])
    session.step_to([7.0, 7.0, 0.0, 0.0, 0.0])
    session.clear_history()
    assert len(session.history) == 1
    assert session.history[0]["step"] == 2 and session.history[0]["Q2"] == pytest.approx(7.0)
    assert session.history[0]["reward_negative_objective"] is None


def test_history_keeps_at_most_max_history_rows(session, monkeypatch):
    monkeypatch.setattr("envlib.playground.MAX_HISTORY", 3)
    for q in (1.0, 2.0, 3.0, 4.0):
        session.step_to([q, 0.0, 0.0, 0.0, 0.0])
    assert [row["step"] for row in session.history] == [2, 3, 4]


def test_random_beam_and_misalignments_come_from_their_seeds():
    a = playground_config(incoming_seed=7, misalignment_seed=3)
    b = playground_config(incoming_seed=7, misalignment_seed=3)
    c = playground_config(incoming_seed=8)
    assert a == b
    assert a.incoming_values != c.incoming_values and a.incoming_values != DEMO_INCOMING_BEAM
    assert a.misalignment_values != (0.0,) * 8 and max(map(abs, a.misalignment_values)) <= 2e-3
    assert c.misalignment_values == (0.0,) * 8
    assert playground_config().incoming_values == DEMO_INCOMING_BEAM


def test_the_observation_is_the_envs_and_the_hidden_state_is_incoming_beam_and_misalignments(simulator):
    session = PlaygroundSession(playground_config(incoming_seed=7, misalignment_seed=3), simulator=simulator)
    session.step_to([10.0, -10.0, 1e-3, 5.0, 0.0])
    observation = session.observation()
    names = [name for name, _ in observation_entries(session.config.observation)]
    assert observation.shape == (13,) and names[:1] == ["target_mu_x"] and names[-5:] == ["Q1", "Q2", "CV", "Q3", "CH"]
    last = session.history[-1]
    expected = [*TUTORIAL_TARGET, *(last[n] for n in ALL), *session.magnets]
    np.testing.assert_array_equal(observation, np.array(expected, dtype=np.float32))
    hidden = session.hidden()
    hidden_names = [name for name, _ in hidden_entries(session.config.observation)]
    assert hidden_names[::11] == ["incoming_energy", "misalignment_Q1_x"]
    np.testing.assert_array_equal(hidden, [*session.config.incoming_values, *session.config.misalignment_values])


def test_setup_errors_name_what_is_wrong():
    with pytest.raises(ConfigError, match="objective_terms"):
        playground_config(objective_terms=())
    with pytest.raises(ConfigError, match="target_beam_values"):
        playground_config(target=(0.0, -1e-3, 0.0, 0.0))
    with pytest.raises(ValueError, match="all five magnets"):
        PlaygroundSession(playground_config().replace(actuators="quadrupoles"))
