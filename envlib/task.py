"""The ARES EA task's logic on batches of N environments: one implementation for all.

:class:`AresEATask` turns actions into magnet settings (rescaling, delta or direct,
clipping to the magnets' limits), tracks all N beams with one Cheetah call, and computes
rewards, termination and the ``info`` of every environment. The single environment
(:class:`envlib.env.AresEAEnv`) is this logic with N = 1; the batched one
(:class:`envlib.batched.AresEAVecEnv`) is the same logic with N rows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from envlib import rewards
from envlib.beamline import (
    BEAM_PARAMETER_NAMES,
    DELTA_LIMITS,
    INCOMING_BEAM_NAMES,
    INCOMING_BEAM_UNITS,
    MAGNET_LABELS,
    MAGNET_LIMITS,
    MAGNET_UNITS,
    MISALIGNMENT_NAMES,
    QUADRUPOLE_INDICES,
    BeamlineSimulator,
)
from envlib.config import EnvConfig
from envlib.screen import is_on_screen, pixel_sum

#: Bounds of a random target ``[mu_x, sigma_x, mu_y, sigma_y]`` in m.
TARGET_LOW = np.array([-2e-3, 0.0, -2e-3, 0.0])
TARGET_HIGH = np.array([2e-3, 2e-3, 2e-3, 2e-3])
#: Bounds of a random incoming beam, order of ``INCOMING_BEAM_NAMES`` (eV, m, rad).
INCOMING_LOW = np.array([80e6, -1e-3, -1e-4, -1e-3, -1e-4, 1e-5, 1e-6, 1e-5, 1e-6, 1e-6, 1e-4])
INCOMING_HIGH = np.array([160e6, 1e-3, 1e-4, 1e-3, 1e-4, 5e-4, 5e-5, 5e-4, 5e-5, 5e-5, 1e-3])
#: Random misalignments are uniform within +- this, in m.
MISALIGNMENT_LIMIT = 2e-3

OBSERVATION_SIZES = {"beam_magnets": 9, "beam_magnets_target": 13, "full": 32}
#: The :class:`TaskState` fields an observation concatenates, in order, per observation mode.
OBSERVATION_PARTS = {
    "beam_magnets": ("beam", "magnets"),
    "beam_magnets_target": ("target", "beam", "magnets"),
    "full": ("target", "beam", "magnets", "incoming", "misalignments"),
}
#: (name, unit) of each value of a :class:`TaskState` part an observation can hold, in its order.
STATE_PART_ENTRIES = {
    "target": tuple((f"target_{n}", "m") for n in BEAM_PARAMETER_NAMES),
    "beam": tuple((f"beam_{n}", "m") for n in BEAM_PARAMETER_NAMES),
    "magnets": tuple(zip(MAGNET_LABELS, MAGNET_UNITS, strict=True)),
    "incoming": tuple((f"incoming_{n}", u) for n, u in zip(INCOMING_BEAM_NAMES, INCOMING_BEAM_UNITS, strict=True)),
    "misalignments": tuple((f"misalignment_{n}", "m") for n in MISALIGNMENT_NAMES),
}


def observation_entries(mode: str) -> tuple[tuple[str, str], ...]:
    """``(name, unit)`` of every value of an observation in ``mode``, in the order of
    :meth:`AresEATask.observe`.

    Names are ``target_mu_x`` ... ``target_sigma_y``, ``beam_mu_x`` ... (m), ``Q1``, ``Q2``,
    ``CV``, ``Q3``, ``CH`` (1/m^2, rad), ``incoming_energy`` ... (see ``INCOMING_BEAM_UNITS``)
    and ``misalignment_Q1_x`` ... (m).

    :param mode: an observation mode (``beam_magnets``, ``beam_magnets_target``, ``full``).
    :return: ``OBSERVATION_SIZES[mode]`` pairs.
    """
    return tuple(entry for part in OBSERVATION_PARTS[mode] for entry in STATE_PART_ENTRIES[part])


def hidden_entries(mode: str) -> tuple[tuple[str, str], ...]:
    """``(name, unit)`` of the simulator's state that an observation in ``mode`` leaves out:
    the entries of the ``full`` observation it lacks, in that order (empty for ``full``)."""
    seen = set(observation_entries(mode))
    return tuple(entry for entry in observation_entries("full") if entry not in seen)


def hidden_values(state: TaskState, mode: str) -> np.ndarray:
    """The values of :func:`hidden_entries` ``(mode)`` for all N environments of ``state``.

    :return: shape (N, h), float64, in the units :func:`hidden_entries` gives.
    """
    full = np.concatenate([getattr(state, part) for part in OBSERVATION_PARTS["full"]], axis=1)
    names = [name for name, _ in observation_entries("full")]
    return full[:, [names.index(name) for name, _ in hidden_entries(mode)]]


@dataclass
class EpisodeStart:
    """Everything that defines an episode's initial state (one environment).

    :param target: target beam ``[mu_x, sigma_x, mu_y, sigma_y]`` in m, shape (4,).
    :param incoming: incoming beam, shape (11,), see ``INCOMING_BEAM_NAMES``.
    :param misalignments: misalignments in m, shape (8,).
    :param magnets: initial ``[Q1, Q2, CV, Q3, CH]`` (1/m^2, rad), shape (5,).
    """

    target: np.ndarray
    incoming: np.ndarray
    misalignments: np.ndarray
    magnets: np.ndarray

    def __post_init__(self) -> None:
        for name, size in (("target", 4), ("incoming", 11), ("misalignments", 8), ("magnets", 5)):
            value = np.asarray(getattr(self, name), dtype=np.float64).reshape(-1)
            if value.shape != (size,) or not np.all(np.isfinite(value)):
                raise ValueError(f"EpisodeStart.{name} must be {size} finite numbers, got {getattr(self, name)!r}")
            setattr(self, name, value)
        self.magnets = np.clip(self.magnets, -MAGNET_LIMITS, MAGNET_LIMITS)


def sample_episode_start(config: EnvConfig, rng: np.random.Generator) -> EpisodeStart:
    """Draw an episode's initial state from ``rng`` as ``config`` says.

    Draws happen in a fixed order (incoming beam, misalignments, target, magnets), and
    only for the parts that are random, so one seed gives one initial state.
    """
    incoming = (
        rng.uniform(INCOMING_LOW, INCOMING_HIGH)
        if config.incoming_mode == "random"
        else np.array(config.incoming_values, dtype=np.float64)
    )
    misalignments = (
        rng.uniform(-MISALIGNMENT_LIMIT, MISALIGNMENT_LIMIT, size=8)
        if config.misalignment_mode == "random"
        else np.array(config.misalignment_values, dtype=np.float64)
    )
    target = (
        rng.uniform(TARGET_LOW, TARGET_HIGH)
        if config.target_beam_mode == "random"
        else np.array(config.target_beam_values, dtype=np.float64)
    )
    magnets = (
        rng.uniform(-MAGNET_LIMITS, MAGNET_LIMITS)
        if config.magnet_init_mode == "random"
        else np.array(config.magnet_init_values, dtype=np.float64)
    )
    return EpisodeStart(target=target, incoming=incoming, misalignments=misalignments, magnets=magnets)


@dataclass
class TaskState:
    """State of N environments; every array has N rows.

    ``target`` (N, 4) m; ``incoming`` (N, 11); ``misalignments`` (N, 8) m; ``magnets``
    (N, 5); ``beam`` (N, 4) m on the screen; ``errors_0`` and ``errors`` (N, 4) m, beam
    minus target at reset and now; ``objective_0`` and ``objective`` (N,) m, the objective
    over ``objective_terms``; ``steps`` and ``hold`` (N,) counts of steps taken and of
    consecutive steps within the thresholds.
    """

    target: np.ndarray
    incoming: np.ndarray
    misalignments: np.ndarray
    magnets: np.ndarray
    beam: np.ndarray
    errors_0: np.ndarray
    errors: np.ndarray
    objective_0: np.ndarray
    objective: np.ndarray
    steps: np.ndarray
    hold: np.ndarray

    @classmethod
    def empty(cls, n: int) -> TaskState:
        return cls(
            target=np.zeros((n, 4)),
            incoming=np.zeros((n, 11)),
            misalignments=np.zeros((n, 8)),
            magnets=np.zeros((n, 5)),
            beam=np.zeros((n, 4)),
            errors_0=np.zeros((n, 4)),
            errors=np.zeros((n, 4)),
            objective_0=np.ones(n),
            objective=np.ones(n),
            steps=np.zeros(n, dtype=np.int64),
            hold=np.zeros(n, dtype=np.int64),
        )


class AresEATask:
    """Batched task logic for one :class:`EnvConfig`.

    :param config: environment configuration.
    :param simulator: the Cheetah beamline to track with (shared ones are thread-safe).
    """

    def __init__(self, config: EnvConfig, simulator: BeamlineSimulator | None = None) -> None:
        self.config = config
        self.simulator = simulator if simulator is not None else BeamlineSimulator()
        self.actuator_indices = np.array(QUADRUPOLE_INDICES if config.actuators == "quadrupoles" else range(5))
        limits = (DELTA_LIMITS if config.action_mode == "delta" else MAGNET_LIMITS)[self.actuator_indices]
        #: Physical action range (1/m^2, rad) of the actuated magnets, shape (A,).
        self.physical_action_high = limits
        if config.rescale_action is None:
            low, high = -limits, limits
        else:
            low = np.full(len(limits), config.rescale_action[0])
            high = np.full(len(limits), config.rescale_action[1])
        self.action_space = spaces.Box(low=low.astype(np.float32), high=high.astype(np.float32), dtype=np.float32)
        size = OBSERVATION_SIZES[config.observation]
        self.observation_space = spaces.Box(low=-np.inf, high=np.inf, shape=(size,), dtype=np.float32)
        self._term_mask = rewards.term_mask(config.objective_terms)
        #: The reward (the preset of ``reward_mode`` or the custom spec).
        self.reward_spec = config.reward_spec
        self._thresholds = np.array(
            [
                np.inf if v is None else v
                for v in (
                    config.target_mu_x_threshold,
                    config.target_sigma_x_threshold,
                    config.target_mu_y_threshold,
                    config.target_sigma_y_threshold,
                )
            ]
        )
        self._has_threshold = bool(np.isfinite(self._thresholds).any())

    # --- actions -----------------------------------------------------------------
    def physical_action(self, action: np.ndarray) -> np.ndarray:
        """Map agent actions to physical units (1/m^2, rad), clipped to the action space.

        :param action: shape (N, A) in the agent's range (``rescale_action``).
        :return: shape (N, A): magnet settings (direct) or changes (delta).
        """
        action = np.asarray(action, dtype=np.float64).reshape(-1, len(self.actuator_indices))
        low = self.action_space.low.astype(np.float64)
        high = self.action_space.high.astype(np.float64)
        action = np.clip(action, low, high)
        if self.config.rescale_action is None:
            return action
        return -self.physical_action_high + (action - low) / (high - low) * 2 * self.physical_action_high

    def agent_action(self, physical: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`physical_action`: physical units to the agent's range, shape (N, A)."""
        physical = np.asarray(physical, dtype=np.float64).reshape(-1, len(self.actuator_indices))
        if self.config.rescale_action is None:
            return physical
        low = self.action_space.low.astype(np.float64)
        high = self.action_space.high.astype(np.float64)
        return low + (physical + self.physical_action_high) / (2 * self.physical_action_high) * (high - low)

    def _checked_action(self, action: np.ndarray, n: int) -> np.ndarray:
        """``action`` as shape (n, A), or a ValueError before anything changes."""
        action = np.asarray(action, dtype=np.float64)
        n_actuators = len(self.actuator_indices)
        if action.size != n * n_actuators:
            names = ", ".join(MAGNET_LABELS[i] for i in self.actuator_indices)
            raise ValueError(
                f"an action holds {n_actuators} values per environment ({names}, actuators="
                f"{self.config.actuators!r}) for {n} environment(s); got shape {action.shape}"
            )
        if not np.all(np.isfinite(action)):
            # A NaN would pass np.clip and poison the magnets, the beam and every reward.
            raise ValueError(f"actions must be finite numbers, got {action.reshape(n, n_actuators).tolist()}")
        return action.reshape(n, n_actuators)

    def next_magnets(self, magnets: np.ndarray, action: np.ndarray) -> np.ndarray:
        """Magnet settings after ``action``, clipped to the magnets' physical limits.

        NOTE: the tutorial's code never clipped, so delta actions drove magnets far past
        what a real power supply can do. Here a setting never leaves +-limit.

        :param magnets: current settings, shape (N, 5).
        :param action: agent actions, shape (N, A).
        :return: new settings, shape (N, 5).
        """
        physical = self.physical_action(action)
        new = np.array(magnets, dtype=np.float64, copy=True)
        if self.config.action_mode == "delta":
            new[:, self.actuator_indices] += physical
        else:
            new[:, self.actuator_indices] = physical
        return np.clip(new, -MAGNET_LIMITS, MAGNET_LIMITS)

    # --- observations and info -----------------------------------------------------
    def observe(self, state: TaskState) -> np.ndarray:
        """Observations of all N environments, shape (N, obs_size), float32, SI units; the
        names and units of the values: :func:`observation_entries`."""
        parts = [getattr(state, part) for part in OBSERVATION_PARTS[self.config.observation]]
        return np.concatenate(parts, axis=1).astype(np.float32)

    def objective(self, beam: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Objective over the configured terms, in m, shape (N,)."""
        return rewards.beam_errors(beam, target)[:, self._term_mask].sum(axis=1)

    # --- reset and step --------------------------------------------------------------
    def reset_rows(self, state: TaskState, rows: Sequence[int], starts: Sequence[EpisodeStart]) -> None:
        """Start new episodes in ``rows`` of ``state`` (one tracking call for those rows)."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) == 0:
            return
        state.target[rows] = np.stack([s.target for s in starts])
        state.incoming[rows] = np.stack([s.incoming for s in starts])
        state.misalignments[rows] = np.stack([s.misalignments for s in starts])
        state.magnets[rows] = np.stack([s.magnets for s in starts])
        beam = self.simulator.track(state.magnets[rows], state.incoming[rows], state.misalignments[rows])
        state.beam[rows] = beam
        state.errors_0[rows] = beam - state.target[rows]
        state.errors[rows] = beam - state.target[rows]
        obj = self.objective(beam, state.target[rows])
        state.objective_0[rows] = obj
        state.objective[rows] = obj
        state.steps[rows] = 0
        state.hold[rows] = 0

    def step(
        self, state: TaskState, action: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """Advance all N environments by one step (no auto-reset).

        :param action: shape (N, A).
        :return: ``(obs (N, d), reward (N,), terminated (N,), truncated (N,), infos)``.
        """
        cfg = self.config
        action = self._checked_action(action, len(state.beam))
        state.magnets = self.next_magnets(state.magnets, action)
        beam = self.simulator.track(state.magnets, state.incoming, state.misalignments)
        previous = state.objective
        objective = self.objective(beam, state.target)
        pixels = pixel_sum(beam)
        on_screen = is_on_screen(beam)
        mode_rewards = rewards.all_mode_rewards(
            objective=objective, previous_objective=previous, objective_0=state.objective_0, pixel_sum=pixels
        )
        signed_errors = beam - state.target
        errors = np.abs(signed_errors)
        within = np.all(errors <= self._thresholds, axis=1) if self._has_threshold else np.zeros(len(beam), dtype=bool)
        parts = self.reward_spec.parts(
            errors=signed_errors,
            previous_errors=state.errors,
            errors_0=state.errors_0,
            pixel_sum=pixels,
            on_screen=on_screen,
            within_thresholds=within,
        )
        reward = np.sum(list(parts.values()), axis=0) if parts else np.zeros(len(beam))

        state.beam = beam
        state.errors = signed_errors
        state.objective = objective
        state.steps = state.steps + 1
        state.hold = np.where(within, state.hold + 1, 0)
        success = (state.hold >= cfg.threshold_hold) if self._has_threshold else np.zeros(len(beam), dtype=bool)
        aborted = ~on_screen if cfg.abort_if_off_screen else np.zeros(len(beam), dtype=bool)
        terminated = success | aborted
        if cfg.time_limit is None:
            truncated = np.zeros(len(beam), dtype=bool)
        else:
            truncated = (state.steps >= cfg.time_limit) & ~terminated

        infos = self.infos(
            state,
            errors=errors,
            pixels=pixels,
            on_screen=on_screen,
            mode_rewards=mode_rewards,
            parts=parts,
            success=success,
            aborted=aborted,
        )
        return self.observe(state), reward, terminated, truncated, infos

    def infos(
        self,
        state: TaskState,
        *,
        errors: np.ndarray,
        pixels: np.ndarray,
        on_screen: np.ndarray,
        mode_rewards: dict[str, np.ndarray] | None = None,
        parts: dict[str, np.ndarray] | None = None,
        success: np.ndarray | None = None,
        aborted: np.ndarray | None = None,
    ) -> list[dict[str, Any]]:
        """The ``info`` dict of every row (plain Python floats, cheap to copy)."""
        n = len(state.beam)
        false = [False] * n
        errs = errors.tolist()
        mae_f = errors[:, [1, 3]].mean(axis=1).tolist()
        mae_a = errors.mean(axis=1).tolist()
        beams, targets, magnets = state.beam.tolist(), state.target.tolist(), state.magnets.tolist()
        obj, obj0, px, on = state.objective.tolist(), state.objective_0.tolist(), pixels.tolist(), on_screen.tolist()
        steps = state.steps.tolist()
        by_mode = {m: r.tolist() for m, r in mode_rewards.items()} if mode_rewards is not None else None
        parts_l = {k: v.tolist() for k, v in parts.items()} if parts is not None else None
        succ = success.tolist() if success is not None else false
        abrt = aborted.tolist() if aborted is not None else false
        out = []
        for i in range(n):
            info: dict[str, Any] = {
                "beam": beams[i],
                "target": targets[i],
                "magnets": magnets[i],
                "errors": dict(zip(BEAM_PARAMETER_NAMES, errs[i], strict=True)),
                "mae_focus": mae_f[i],
                "mae_all": mae_a[i],
                "objective": obj[i],
                "objective_0": obj0[i],
                "pixel_sum": px[i],
                "on_screen": on[i],
                "step": steps[i],
                "success": succ[i],
                "aborted": abrt[i],
            }
            if by_mode is not None:
                info["rewards_by_mode"] = {m: r[i] for m, r in by_mode.items()}
                info["reward_parts"] = {k: v[i] for k, v in parts_l.items()}
            out.append(info)
        return out

    def reset_infos(self, state: TaskState, rows: Sequence[int] | None = None) -> list[dict[str, Any]]:
        """``info`` for rows right after reset (no reward yet)."""
        if rows is not None:
            # Only the reset rows: an auto-reset of one env in 1024 should not build 1024 dicts.
            rows = np.asarray(rows, dtype=np.int64)
            state = TaskState(**{f.name: getattr(state, f.name)[rows] for f in dataclasses.fields(TaskState)})
        errors = rewards.beam_errors(state.beam, state.target)
        return self.infos(state, errors=errors, pixels=pixel_sum(state.beam), on_screen=is_on_screen(state.beam))
