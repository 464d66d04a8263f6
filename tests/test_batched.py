"""The batched env equals SB3's DummyVecEnv of single envs, step by step."""

import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv

from envlib.batched import AresEAVecEnv
from envlib.config import EnvConfig
from envlib.env import AresEAEnv
from envlib.task import sample_episode_start

N_ENVS = 5
RANDOM_EVERYTHING = dict(
    incoming_mode="random", misalignment_mode="random", target_beam_mode="random", magnet_init_mode="random"
)
CONFIGS = {
    # Short episodes: every env truncates and auto-resets several times.
    "tutorial-time-limit": EnvConfig(time_limit=4, observation="full", **RANDOM_EVERYTHING),
    # Delta steps on all five magnets push some beams off the screen, at different steps.
    "abort-off-screen": EnvConfig(
        actuators="all", abort_if_off_screen=True, time_limit=6, observation="full",
        reward_mode="objective_improvement", time_reward=-1.0,
        incoming_mode="random", misalignment_mode="random", target_beam_mode="random",
    ),  # fmt: skip
    # Loose thresholds: some episodes end in success after the hold, others truncate.
    "thresholds": EnvConfig(
        target_sigma_x_threshold=4e-4, target_sigma_y_threshold=4e-4, threshold_hold=2, time_limit=8,
        reward_mode="sum_of_pixels",
    ),  # fmt: skip
}


def assert_same_info(batched, single, where):
    assert set(batched) == set(single), where
    for key, value in single.items():
        other = batched[key]
        if isinstance(value, dict):
            assert_same_info(other, value, f"{where}[{key}]")
        elif isinstance(value, (bool, np.bool_, int, str)):
            assert other == value, f"{where}[{key}]"
        else:
            np.testing.assert_allclose(other, value, rtol=1e-9, atol=1e-15, err_msg=f"{where}[{key}]")


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_batched_env_equals_dummy_vec_env_of_single_envs(config):
    batched = AresEAVecEnv(config, N_ENVS)
    dummy = DummyVecEnv([lambda: AresEAEnv(config) for _ in range(N_ENVS)])
    batched.seed(11)
    dummy.seed(11)
    obs_b, obs_d = batched.reset(), dummy.reset()
    np.testing.assert_allclose(obs_b, obs_d, rtol=1e-6)
    for i in range(N_ENVS):
        assert_same_info(batched.reset_infos[i], dummy.reset_infos[i], f"reset info {i}")

    rng = np.random.default_rng(5)
    episode_ends = np.zeros(N_ENVS, dtype=int)
    truncations = successes = aborts = 0
    for step in range(20):
        space = batched.action_space
        actions = rng.uniform(space.low, space.high, size=(N_ENVS,) + space.shape).astype(np.float32)
        obs_b, rew_b, done_b, infos_b = batched.step(actions)
        obs_d, rew_d, done_d, infos_d = dummy.step(actions)
        np.testing.assert_array_equal(done_b, done_d, err_msg=f"dones at step {step}")
        np.testing.assert_allclose(obs_b, obs_d, rtol=1e-6, atol=1e-12, err_msg=f"obs at step {step}")
        np.testing.assert_allclose(rew_b, rew_d, rtol=1e-6, atol=1e-9, err_msg=f"rewards at step {step}")
        for i in range(N_ENVS):
            assert_same_info(infos_b[i], infos_d[i], f"step {step} env {i}")
            if done_d[i]:
                assert_same_info(batched.reset_infos[i], dummy.reset_infos[i], f"reset info {i} at step {step}")
                truncations += infos_d[i]["TimeLimit.truncated"]
                successes += infos_d[i]["success"]
                aborts += infos_d[i]["aborted"]
        episode_ends += done_d

    # Guard: the comparison crossed episode boundaries, and of the kind the config is about.
    assert episode_ends.min() >= 2
    if config.abort_if_off_screen:
        assert aborts >= 2 and truncations >= 1
        assert len(set(episode_ends)) > 1  # envs ended at different steps
    elif config.target_sigma_x_threshold is not None:
        assert successes >= 2 and truncations >= 1
    else:
        assert truncations == episode_ends.sum()

    # A later reset() without seed() continues every env's generator, in both.
    np.testing.assert_allclose(batched.reset(), dummy.reset(), rtol=1e-6)


def test_batch_shapes_and_dtypes():
    n = 3
    env = AresEAVecEnv(EnvConfig(actuators="all", observation="beam_magnets_target"), n)
    env.seed(0)
    obs = env.reset()
    assert obs.shape == (n, 13) and obs.dtype == np.float32
    assert env.observation_space.shape == (13,) and env.action_space.shape == (5,)
    obs, rewards, dones, infos = env.step(np.zeros((n, 5), dtype=np.float32))
    assert obs.shape == (n, 13) and obs.dtype == np.float32
    assert rewards.shape == (n,) and rewards.dtype == np.float32
    assert dones.shape == (n,) and dones.dtype == bool
    assert len(infos) == n and all(isinstance(i, dict) for i in infos)
    images = env.get_images()
    assert len(images) == n and all(image.shape == (510, 612, 3) for image in images)
    assert env.render().shape == (510, 612, 3)


def test_terminal_observation_is_the_last_observation_of_the_episode():
    env = AresEAVecEnv(EnvConfig(time_limit=2, action_mode="direct", observation="full"), 2)
    env.seed(3)
    env.reset()
    first, *_ = env.step(np.ones((2, 3), dtype=np.float32))
    obs, _, dones, infos = env.step(np.full((2, 3), -1.0, dtype=np.float32))
    assert dones.all() and all(info["TimeLimit.truncated"] for info in infos)
    for i in range(2):
        terminal = infos[i]["terminal_observation"]
        # full observation: target (4), beam (4), magnets (5), ...; direct -1 of (-3, 3) is -24 1/m^2
        np.testing.assert_allclose(terminal[8:13], [-24.0, -24.0, 0.0, -24.0, 0.0], rtol=1e-6)
        assert not np.array_equal(terminal, obs[i])  # obs is the new episode's first one
        np.testing.assert_array_equal(obs[i][8:13], 0.0)  # magnets start at zero again


def test_each_env_has_its_own_seed():
    env = AresEAVecEnv(EnvConfig(**RANDOM_EVERYTHING), 4)
    env.seed(100)
    env.reset()
    for i, start in enumerate(env.starts):
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(100 + i)))  # what reset(seed=100 + i) uses
        expected = sample_episode_start(env.config, rng)
        np.testing.assert_array_equal(start.incoming, expected.incoming)
    assert len({tuple(s.incoming) for s in env.starts}) == 4


def test_reset_to_starts_each_env_from_the_given_state(simulator):
    config = EnvConfig(observation="full", **RANDOM_EVERYTHING)
    single = AresEAEnv(config, simulator=simulator)
    starts, single_obs = [], []
    for seed in range(3):
        obs, _ = single.reset(seed=seed)
        starts.append(single.start)
        single_obs.append(obs)
    env = AresEAVecEnv(config, 3, simulator=simulator)
    np.testing.assert_allclose(env.reset_to(starts), single_obs, rtol=1e-6)
    with pytest.raises(ValueError, match="need 3 starts"):
        env.reset_to(starts[:2])


def test_bad_use_gets_a_clear_error():
    with pytest.raises(ValueError, match="n_envs"):
        AresEAVecEnv(EnvConfig(), 0)
    env = AresEAVecEnv(EnvConfig(), 2)
    with pytest.raises(RuntimeError, match="step_async"):
        env.step_wait()
    with pytest.raises(AttributeError, match="share one config; cannot set 'config'"):
        env.set_attr("config", EnvConfig())
