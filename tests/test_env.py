"""The Gymnasium environment: API, actions, clipping, episode end and seeding."""

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from envlib import ENV_ID
from envlib.batched import AresEAVecEnv
from envlib.config import DEMO_INCOMING_BEAM, ConfigError, EnvConfig
from envlib.env import AresEAEnv
from envlib.reward_spec import RewardSpec
from envlib.task import OBSERVATION_SIZES, hidden_entries, hidden_values, observation_entries

QUAD_LIMIT, CORRECTOR_LIMIT = 72.0, 6.1782e-3  # 1/m^2, rad (reference table)
RANDOM_EVERYTHING = dict(
    incoming_mode="random", misalignment_mode="random", target_beam_mode="random", magnet_init_mode="random"
)
#: Physical units, every magnet, a fixed beam: the action is the magnet vector itself.
DIRECT_ALL = dict(action_mode="direct", actuators="all", rescale_action=None, incoming_mode="constant")

CHECK_CONFIGS = {
    "tutorial-defaults": {},
    "all-actuators-direct": dict(actuators="all", action_mode="direct"),
    "quadrupoles-direct-physical": dict(action_mode="direct", rescale_action=None),
    "all-delta-physical": dict(actuators="all", rescale_action=None),
    "observe-target": dict(observation="beam_magnets_target", target_beam_mode="random"),
    "observe-full-random": dict(observation="full", actuators="all", **RANDOM_EVERYTHING),
    "thresholds-abort-time": dict(
        target_sigma_x_threshold=1e-4, target_sigma_y_threshold=1e-4, threshold_hold=2, abort_if_off_screen=True,
        time_reward=-1.0, reward_mode="objective_improvement", rescale_action=(0.0, 1.0),
    ),  # fmt: skip
}


@pytest.mark.parametrize("config", CHECK_CONFIGS.values(), ids=CHECK_CONFIGS.keys())
def test_gymnasium_and_sb3_check_env(simulator, config):
    # Made through the registry so the checker can also build it with other render modes.
    gymnasium_check_env(gymnasium.make(ENV_ID, render_mode="rgb_array", simulator=simulator, **config).unwrapped)
    sb3_check_env(AresEAEnv(config, simulator=simulator))


@pytest.mark.parametrize(
    "config, n_actions, n_obs",
    [
        ({}, 3, 9),
        (dict(actuators="all"), 5, 9),
        (dict(observation="beam_magnets_target"), 3, 13),
        (dict(observation="full", actuators="all"), 5, 32),
    ],
    ids=["tutorial", "all", "with-target", "full"],
)
def test_spaces_follow_the_config(config, n_actions, n_obs, simulator):
    env = AresEAEnv(config, simulator=simulator)
    assert env.action_space.shape == (n_actions,)
    assert env.observation_space.shape == (n_obs,)
    obs, _ = env.reset(seed=1)
    assert obs.shape == (n_obs,) and obs.dtype == np.float32


def test_observation_holds_target_beam_magnets_incoming_and_misalignments(simulator):
    env = AresEAEnv(dict(observation="full", actuators="all", **RANDOM_EVERYTHING), simulator=simulator)
    obs, info = env.reset(seed=5)
    start = env.start
    expected = np.concatenate([start.target, info["beam"], start.magnets, start.incoming, start.misalignments])
    np.testing.assert_allclose(obs, expected.astype(np.float32))


@pytest.mark.parametrize("mode", ["beam_magnets", "beam_magnets_target", "full"])
def test_observation_entries_name_every_value_of_the_observation_in_order(simulator, mode):
    env = AresEAEnv(dict(observation=mode, actuators="all", **RANDOM_EVERYTHING), simulator=simulator)
    obs, info = env.reset(seed=5)
    entries = observation_entries(mode)
    assert len(entries) == OBSERVATION_SIZES[mode] == obs.shape[0]
    named = dict(zip((name for name, _ in entries), obs, strict=True))
    start = env.start
    assert named["beam_sigma_y"] == np.float32(info["beam"][3])
    assert named["CV"] == np.float32(start.magnets[2]) and dict(entries)["CV"] == "rad"
    if mode != "beam_magnets":
        assert named["target_mu_x"] == np.float32(start.target[0]) and dict(entries)["target_mu_x"] == "m"
    else:
        assert not any(name.startswith("target_") for name in named)
    hidden = dict(zip((name for name, _ in hidden_entries(mode)), hidden_values(env.state, mode)[0], strict=True))
    assert set(hidden).isdisjoint(named)
    assert len(hidden) + len(named) == OBSERVATION_SIZES["full"]
    if mode == "full":
        assert named["incoming_energy"] == np.float32(start.incoming[0])
        assert named["misalignment_screen_y"] == np.float32(start.misalignments[7])
    else:
        assert hidden["incoming_energy"] == start.incoming[0] and dict(hidden_entries(mode))["incoming_energy"] == "eV"
        assert hidden["misalignment_Q2_x"] == start.misalignments[2]
    if mode == "beam_magnets":
        assert hidden["target_sigma_x"] == start.target[1]


def test_gymnasium_make_builds_the_env_with_config_keys():
    env = gymnasium.make(ENV_ID, reward_mode="sum_of_pixels", time_limit=3)
    assert env.unwrapped.config.reward_mode == "sum_of_pixels"
    env.reset(seed=0)
    env.action_space.seed(0)
    for _ in range(2):
        *_, truncated, info = env.step(env.action_space.sample())
        assert not truncated
    *_, truncated, info = env.step(env.action_space.sample())
    assert truncated
    assert set(info["reward_parts"]) == {"sum_of_pixels"}
    with pytest.raises(ConfigError, match="reward_mode"):
        gymnasium.make(ENV_ID, reward_mode="sum_of_pixel")


def test_gymnasium_make_shares_a_given_simulator(simulator):
    env = gymnasium.make(ENV_ID, simulator=simulator)
    assert env.unwrapped.task.simulator is simulator


def magnets_after(simulator, actions, **config):
    """Magnet settings [Q1, Q2, CV, Q3, CH] in info after each action."""
    env = AresEAEnv(
        {"incoming_mode": "constant", "magnet_init_values": (10.0, -10.0, 1e-3, 5.0, -2e-3), **config},
        simulator=simulator,
    )
    env.reset(seed=0)
    out = []
    for action in actions:
        obs, *_, info = env.step(np.asarray(action, dtype=np.float32))
        np.testing.assert_allclose(obs[4:9], np.float32(info["magnets"]))  # beam_magnets: beam (4), magnets (5)
        out.append(info["magnets"])
    return np.array(out)


def test_delta_adds_to_the_setting_and_direct_sets_it(simulator):
    actions = [[1.0, 2.0, -3.0], [1.0, 2.0, -3.0]]
    delta = magnets_after(simulator, actions, action_mode="delta", rescale_action=None)
    np.testing.assert_allclose(delta[:, [0, 1, 3]], [[11.0, -8.0, 2.0], [12.0, -6.0, -1.0]], rtol=1e-6)
    direct = magnets_after(simulator, actions, action_mode="direct", rescale_action=None)
    np.testing.assert_allclose(direct[:, [0, 1, 3]], [[1.0, 2.0, -3.0], [1.0, 2.0, -3.0]], rtol=1e-6)


def test_quadrupole_actuators_leave_the_correctors_untouched(simulator):
    for mode in ("delta", "direct"):
        magnets = magnets_after(simulator, [[3.0, 3.0, 3.0], [-3.0, 1.0, 2.0]], action_mode=mode)
        np.testing.assert_array_equal(magnets[:, [2, 4]], [[1e-3, -2e-3]] * 2)


@pytest.mark.parametrize(
    "mode, rescale, actuators, action, expected_change",
    [
        # delta: the agent's range maps onto +-10 % of the limits.
        ("delta", (-3.0, 3.0), "quadrupoles", [3.0, -3.0, 0.0], [7.2, -7.2, 0.0]),
        ("delta", (-3.0, 3.0), "quadrupoles", [1.5, -0.75, 10.0], [3.6, -1.8, 7.2]),  # 10 clipped to 3
        ("delta", (0.0, 1.0), "all", [1.0, 0.5, 0.0, 0.75, 1.0], [7.2, 0.0, -6.1782e-4, 3.6, 6.1782e-4]),
        # direct: high in the agent's range is +limit.
        ("direct", (-3.0, 3.0), "all", [3.0, -3.0, 3.0, 1.0, -3.0], [72.0, -72.0, 6.1782e-3, 24.0, -6.1782e-3]),
    ],
    ids=["delta-extremes", "delta-inside-and-clipped", "delta-0-1", "direct"],
)
def test_rescaled_actions_map_linearly_onto_the_physical_range(
    simulator, mode, rescale, actuators, action, expected_change
):
    config = dict(action_mode=mode, rescale_action=rescale, actuators=actuators, incoming_mode="constant")
    env = AresEAEnv(config, simulator=simulator)
    env.reset(seed=0)  # magnets start at zero
    *_, info = env.step(np.array(action, dtype=np.float32))
    index = [0, 1, 3] if actuators == "quadrupoles" else [0, 1, 2, 3, 4]
    np.testing.assert_allclose(np.array(info["magnets"])[index], expected_change, rtol=1e-6, atol=1e-12)
    assert env.task.agent_action(np.array(info["magnets"])[index])[0] == pytest.approx(np.clip(action, *rescale))


def test_repeated_maximal_delta_actions_stop_at_the_magnet_limits(simulator):
    high = magnets_after(simulator, [[3.0] * 5] * 15, action_mode="delta", actuators="all")
    low = magnets_after(simulator, [[-3.0] * 5] * 15, action_mode="delta", actuators="all")
    limits = np.array([QUAD_LIMIT, QUAD_LIMIT, CORRECTOR_LIMIT, QUAD_LIMIT, CORRECTOR_LIMIT])
    assert np.all(np.abs(high) <= limits) and np.all(np.abs(low) <= limits)
    np.testing.assert_allclose(high[-1], limits)  # reached, not passed
    np.testing.assert_allclose(low[-1], -limits)
    np.testing.assert_allclose(high[0, 0], 10.0 + 7.2)  # the first step was not clipped


def test_direct_actions_in_physical_units_are_clipped_to_the_limits(simulator):
    env = AresEAEnv(DIRECT_ALL, simulator=simulator)
    env.reset(seed=0)
    *_, info = env.step(np.array([500.0, -500.0, 1.0, 0.0, -1.0], dtype=np.float32))
    np.testing.assert_allclose(info["magnets"], [72.0, -72.0, CORRECTOR_LIMIT, 0.0, -CORRECTOR_LIMIT])


# --- episode end -------------------------------------------------------------------------

INSIDE = np.zeros(5, dtype=np.float32)  # all magnets off
OUTSIDE = np.array([-40.0, 0.0, 0.0, 0.0, 0.0], dtype=np.float32)  # Q1 defocusing in x blows sigma_x up


@pytest.fixture
def sigma_x_between(simulator):
    """A sigma_x threshold between the beam's sigma_x with INSIDE and with OUTSIDE (target 0)."""
    env = AresEAEnv(DIRECT_ALL, simulator=simulator)
    env.reset(seed=0)
    sigma_inside = env.step(INSIDE)[4]["errors"]["sigma_x"]
    sigma_outside = env.step(OUTSIDE)[4]["errors"]["sigma_x"]
    assert sigma_inside < sigma_outside / 2
    return (sigma_inside + sigma_outside) / 2


def run(env, actions):
    """(terminated, truncated, info) after each action."""
    return [env.step(a)[2:] for a in actions]


def test_success_after_threshold_hold_consecutive_steps_and_the_hold_resets(simulator, sigma_x_between):
    config = {**DIRECT_ALL, "target_sigma_x_threshold": sigma_x_between, "threshold_hold": 3}
    env = AresEAEnv(config, simulator=simulator)
    env.reset(seed=0)
    steps = run(env, [INSIDE, INSIDE, OUTSIDE, INSIDE, INSIDE, INSIDE])
    assert [terminated for terminated, _, _ in steps] == [False, False, False, False, False, True]
    assert steps[-1][2]["success"] and not any(info["success"] for _, _, info in steps[:-1])
    assert not any(truncated for _, truncated, _ in steps)


def test_success_needs_every_configured_threshold(simulator, sigma_x_between):
    """A tiny mu_x threshold that never holds keeps the episode going."""
    env = AresEAEnv(
        {**DIRECT_ALL, "target_sigma_x_threshold": sigma_x_between, "target_mu_x_threshold": 1e-9, "threshold_hold": 1},
        simulator=simulator,
    )
    env.reset(seed=0)
    assert not any(terminated for terminated, _, _ in run(env, [INSIDE] * 5))


def test_no_thresholds_no_termination(simulator):
    env = AresEAEnv({**DIRECT_ALL, "time_limit": None}, simulator=simulator)
    env.reset(seed=0)
    assert not any(t or tr for t, tr, _ in run(env, [INSIDE] * 50))


def test_truncation_at_exactly_time_limit_steps(simulator):
    env = AresEAEnv({**DIRECT_ALL, "time_limit": 7}, simulator=simulator)
    env.reset(seed=0)
    steps = run(env, [INSIDE] * 7)
    assert [truncated for _, truncated, _ in steps] == [False] * 6 + [True]
    assert not any(terminated for terminated, _, _ in steps)
    assert steps[-1][2]["step"] == 7
    env.reset()
    assert not run(env, [INSIDE])[0][1]  # a reset starts counting again


OFF_SCREEN = np.array([0.0, 0.0, CORRECTOR_LIMIT, 0.0, 0.0], dtype=np.float32)  # CV kicks the beam ~6 mm up


@pytest.mark.parametrize("abort", [True, False], ids=["abort", "no-abort"])
def test_abort_when_the_beam_leaves_the_screen(simulator, abort):
    env = AresEAEnv({**DIRECT_ALL, "abort_if_off_screen": abort}, simulator=simulator)
    env.reset(seed=0)
    (terminated_on, _, info_on), (terminated_off, truncated, info_off) = run(env, [INSIDE, OFF_SCREEN])
    assert info_on["on_screen"] and not terminated_on and not info_on["aborted"]
    assert not info_off["on_screen"] and info_off["beam"][2] > 2.5e-3
    assert terminated_off == abort and info_off["aborted"] == abort
    assert not truncated and not info_off["success"]


# --- seeding -----------------------------------------------------------------------------


def rollout(env, seed, n_steps=8, n_episodes=2):
    """Observations, rewards and infos of episodes started by reset(seed) then reset()."""
    actions = np.random.default_rng(99).uniform(-3, 3, size=(n_episodes, n_steps, env.action_space.shape[0]))
    record = []
    for episode in range(n_episodes):
        obs, info = env.reset(seed=seed if episode == 0 else None)
        record.append((obs, info, env.start))
        for action in actions[episode]:
            record.append(env.step(action.astype(np.float32)))
    return record


def test_reset_seed_reproduces_the_whole_episode(simulator):
    config = dict(observation="full", actuators="all", **RANDOM_EVERYTHING)
    first = rollout(AresEAEnv(config, simulator=simulator), seed=123)
    again = rollout(AresEAEnv(config, simulator=simulator), seed=123)
    assert len(first) == len(again)
    for a, b in zip(first, again, strict=True):
        for x, y in zip(a, b, strict=True):
            if hasattr(x, "incoming"):  # EpisodeStart
                for part in ("incoming", "misalignments", "target", "magnets"):
                    np.testing.assert_array_equal(getattr(x, part), getattr(y, part))
            elif isinstance(x, np.ndarray):
                np.testing.assert_array_equal(x, y)
            else:
                assert x == y


def test_different_seeds_give_different_episodes_and_a_reset_without_seed_moves_on(simulator):
    env = AresEAEnv(dict(**RANDOM_EVERYTHING), simulator=simulator)
    env.reset(seed=1)
    s1 = env.start
    env.reset()
    s1_next = env.start
    env.reset(seed=2)
    s2 = env.start
    for part in ("incoming", "misalignments", "target", "magnets"):
        assert not np.array_equal(getattr(s1, part), getattr(s2, part)), part
        assert not np.array_equal(getattr(s1, part), getattr(s1_next, part)), part


def test_random_starts_stay_within_their_bounds(simulator):
    env = AresEAEnv(dict(**RANDOM_EVERYTHING), simulator=simulator)
    low = np.array([80e6, -1e-3, -1e-4, -1e-3, -1e-4, 1e-5, 1e-6, 1e-5, 1e-6, 1e-6, 1e-4])
    high = np.array([160e6, 1e-3, 1e-4, 1e-3, 1e-4, 5e-4, 5e-5, 5e-4, 5e-5, 5e-5, 1e-3])
    limits = np.array([QUAD_LIMIT, QUAD_LIMIT, CORRECTOR_LIMIT, QUAD_LIMIT, CORRECTOR_LIMIT])
    for seed in range(30):
        env.reset(seed=seed)
        s = env.start
        assert np.all((low <= s.incoming) & (s.incoming <= high))
        assert np.all(np.abs(s.misalignments) <= 2e-3)
        assert np.all(np.abs(s.target[[0, 2]]) <= 2e-3) and np.all((0 <= s.target[[1, 3]]) & (s.target[[1, 3]] <= 2e-3))
        assert np.all(np.abs(s.magnets) <= limits)


def test_constant_starts_use_the_configured_values(simulator):
    env = AresEAEnv(
        dict(
            incoming_mode="constant", target_beam_values=(1e-4, 2e-5, -1e-4, 3e-5), magnet_init_values=(1, 2, 0, 3, 0)
        ),
        simulator=simulator,
    )
    _, info = env.reset(seed=0)
    np.testing.assert_array_equal(env.start.incoming, DEMO_INCOMING_BEAM)
    np.testing.assert_array_equal(info["target"], [1e-4, 2e-5, -1e-4, 3e-5])
    np.testing.assert_array_equal(info["magnets"], [1, 2, 0, 3, 0])
    np.testing.assert_array_equal(env.start.misalignments, np.zeros(8))


def test_misuse_gets_a_clear_error(simulator):
    env = AresEAEnv(simulator=simulator)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(3, dtype=np.float32))
    with pytest.raises(TypeError, match="EpisodeStart"):
        env.reset(options={"start": [0.0] * 4})
    with pytest.raises(ValueError, match="render_mode"):
        AresEAEnv(render_mode="human", simulator=simulator)
    with pytest.raises(ConfigError, match="actuators"):
        AresEAEnv({"actuators": "five"}, simulator=simulator)


@pytest.mark.parametrize(
    "action, message",
    [(np.zeros(5), r"3 values per environment \(Q1, Q2, Q3"), (np.zeros(6), "got shape"), ([np.nan, 0, 0], "finite")],
    ids=["five-values", "six-values", "nan"],
)
def test_a_bad_action_is_refused_and_changes_nothing(simulator, action, message):
    env = AresEAEnv(dict(incoming_mode="constant", magnet_init_values=(1.0, 2.0, 0.0, 3.0, 0.0)), simulator=simulator)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        env.step(np.asarray(action, dtype=np.float32))
    np.testing.assert_array_equal(env.state.magnets, [[1.0, 2.0, 0.0, 3.0, 0.0]])
    assert env.state.steps[0] == 0
    *_, info = env.step(np.zeros(3, dtype=np.float32))
    assert np.isfinite(info["beam"]).all() and info["step"] == 1


# --- custom rewards ----------------------------------------------------------------------

#: Thresholds that hold with the magnets off and fail for each of the moves below.
THRESHOLDS = dict(target_mu_x_threshold=2e-3, target_sigma_x_threshold=1e-3, target_mu_y_threshold=1e-3)
FOCUS = np.array([10.0, -10.0, 0.0, 0.0, 0.0], dtype=np.float32)  # still within every threshold
STEER_X = np.array([0.0, 0.0, 0.0, 0.0, -CORRECTOR_LIMIT], dtype=np.float32)  # mu_x ~3 mm: on screen, not within
#: (action, beam centre on the screen, every threshold holds), with the magnets' zero start.
MOVES = [(INSIDE, True, True), (OUTSIDE, False, False), (OFF_SCREEN, False, False), (FOCUS, True, True),
         (STEER_X, True, False), (INSIDE, True, True)]  # fmt: skip
UNITS = {"absolute": 1e3, "squared": 1e6, "log": 1.0}  # m -> mm, m^2 -> mm^2; the log has none

SPECS = {
    "absolute-normalized-negative": RewardSpec(
        weights={"mu_x": 0.5, "sigma_x": 1.0, "mu_y": 0.5, "sigma_y": 2.0}, time_reward=-0.1,
        off_screen_penalty=-5.0, success_bonus=3.0,
    ),
    "squared-in-mm2-improvement-with-pixels": RewardSpec(
        kind="objective_improvement", form="squared", normalize=False, pixel_weight=0.5,
        off_screen_penalty=-2.0, success_bonus=1.0,
    ),
    "log-normalized-improvement": RewardSpec(
        kind="objective_improvement", form="log", weights={"mu_x": 1.0, "mu_y": 1.0}, time_reward=0.2,
        off_screen_penalty=-1.0, success_bonus=0.5,
    ),
    "log-in-metres-negative": RewardSpec(
        form="log", normalize=False, weights={"sigma_x": 2.0}, off_screen_penalty=-10.0, success_bonus=10.0
    ),
}  # fmt: skip


def objective_hat(spec: RewardSpec, errors: dict, errors_0: dict) -> float:
    """Ô of the README's table, by hand from the beam errors in ``info``."""

    def objective(errs: dict) -> float:
        power = 2 if spec.form == "squared" else 1
        d = sum(w * abs(errs[name]) ** power for name, w in spec.weight_map.items())
        return float(np.log(d + 1e-6)) if spec.form == "log" else d

    if not spec.normalize:
        return objective(errors) * UNITS[spec.form]
    if spec.form == "log":
        return objective(errors) - objective(errors_0)
    return objective(errors) / objective(errors_0)


def expected_reward(spec: RewardSpec, info: dict, previous: dict, start: dict, thresholds: dict) -> float:
    """The spec's reward of one step, computed from ``info`` without the env's code."""
    now = objective_hat(spec, info["errors"], start["errors"])
    if spec.kind == "negative_objective":
        base = -now
    else:
        base = objective_hat(spec, previous["errors"], start["errors"]) - now
    within = all(info["errors"][key[len("target_") : -len("_threshold")]] <= t for key, t in thresholds.items())
    return (
        base
        - spec.pixel_weight * info["pixel_sum"]
        + spec.time_reward
        + (0.0 if info["on_screen"] else spec.off_screen_penalty)
        + (spec.success_bonus if within else 0.0)
    )


@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
def test_custom_reward_is_the_specs_formula_and_its_parts_add_up(simulator, spec):
    config = {**DIRECT_ALL, "reward_mode": "custom", "reward": spec, "threshold_hold": 10, **THRESHOLDS}
    env = AresEAEnv(config, simulator=simulator)
    _, start = env.reset(seed=0)
    previous = start
    for step, (action, on_screen, within) in enumerate(MOVES):
        _, reward, terminated, _, info = env.step(action)
        assert not terminated
        assert info["on_screen"] == on_screen, f"step {step}: the move does not do what the test needs"
        assert reward == pytest.approx(expected_reward(spec, info, previous, start, THRESHOLDS), rel=1e-9)
        parts = info["reward_parts"]
        assert sum(parts.values()) == pytest.approx(reward, rel=1e-12, abs=1e-12)
        assert parts["off_screen"] == (0.0 if on_screen else spec.off_screen_penalty), f"step {step}"
        assert parts["success"] == (spec.success_bonus if within else 0.0), f"step {step}"
        assert parts.get("time", 0.0) == spec.time_reward
        assert parts.get("sum_of_pixels", 0.0) == pytest.approx(-spec.pixel_weight * info["pixel_sum"])
        previous = info


def test_custom_reward_leaves_out_the_terms_it_does_not_use(simulator):
    spec = RewardSpec(weights={"sigma_y": 1.0})
    env = AresEAEnv({**DIRECT_ALL, "reward_mode": "custom", "reward": spec}, simulator=simulator)
    _, start = env.reset(seed=0)
    _, reward, *_, info = env.step(OFF_SCREEN)  # off the screen, but no penalty was asked for
    assert set(info["reward_parts"]) == {"objective"}
    assert reward == info["reward_parts"]["objective"] == pytest.approx(
        -info["errors"]["sigma_y"] / start["errors"]["sigma_y"], rel=1e-9
    )


def test_batched_env_gives_the_single_envs_custom_rewards_for_the_same_seeds(simulator):
    spec = RewardSpec(
        kind="objective_improvement", form="squared", normalize=False, weights={"mu_x": 1.0, "sigma_x": 1.0,
        "mu_y": 1.0, "sigma_y": 1.0}, pixel_weight=0.1, time_reward=-0.05, off_screen_penalty=-3.0, success_bonus=2.0,
    )  # fmt: skip
    config = EnvConfig(
        actuators="all", time_limit=5, reward_mode="custom", reward=spec, target_sigma_x_threshold=4e-4,
        target_sigma_y_threshold=4e-4, threshold_hold=2, incoming_mode="random", misalignment_mode="random",
    )  # fmt: skip
    n_envs, seed = 4, 21
    batched = AresEAVecEnv(config, n_envs, simulator=simulator)
    batched.seed(seed)
    batched.reset()
    singles = [AresEAEnv(config, simulator=simulator) for _ in range(n_envs)]
    for i, env in enumerate(singles):
        env.reset(seed=seed + i)  # what the batched env does with seed() for env i

    rng = np.random.default_rng(8)
    paid = {"off_screen": 0, "success": 0}
    ended = 0
    for step in range(20):
        actions = rng.uniform(-3.0, 3.0, size=(n_envs, 5)).astype(np.float32)
        _, rewards, dones, infos = batched.step(actions)
        for i, env in enumerate(singles):
            _, reward, terminated, truncated, info = env.step(actions[i])
            where = f"step {step} env {i}"
            assert rewards[i] == pytest.approx(reward, rel=1e-6, abs=1e-6), where
            assert infos[i]["reward_parts"].keys() == info["reward_parts"].keys(), where
            for name, value in info["reward_parts"].items():
                assert infos[i]["reward_parts"][name] == pytest.approx(value, rel=1e-9, abs=1e-12), f"{where} {name}"
                paid[name] = paid.get(name, 0) + (value != 0)
            assert dones[i] == (terminated or truncated), where
            if dones[i]:
                ended += 1
                env.reset()  # the batched env auto-resets from the env's own generator
    # Guard: the penalty and the bonus were both paid, and episodes ended and restarted.
    assert paid["off_screen"] >= 3 and paid["success"] >= 3 and ended >= 4, (paid, ended)
