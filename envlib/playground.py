"""A manual tuning session: a person turns the magnets of one :class:`AresEAEnv` by hand.

:class:`PlaygroundSession` holds the environment, the reference state of the last reset
(obj_0) and the history of the steps taken. It can preview a magnet setting without
stepping (one Cheetah track, the numbers a step to that setting would give), apply a step
in the environment's action mode, run the tutorial's demo (the vertical corrector swept
over 10 steps) and export the history as CSV. No Streamlit in here: the Playground page
is a thin view of this class.

Units: magnets ``[Q1, Q2, CV, Q3, CH]`` in 1/m^2 and rad, beam parameters in m.
"""

from __future__ import annotations

import copy
import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from envlib.beamline import BEAM_PARAMETER_NAMES, MAGNET_LABELS, MAGNET_LIMITS, BeamlineSimulator
from envlib.config import DEMO_INCOMING_BEAM, ActionMode, EnvConfig
from envlib.env import AresEAEnv
from envlib.rewards import ALL_TERMS, REWARD_MODES
from envlib.task import AresEATask, EpisodeStart, hidden_values, sample_episode_start

#: The tutorial's example target ``[mu_x, sigma_x, mu_y, sigma_y]`` in m (Part I).
TUTORIAL_TARGET = (1e-3, 2e-4, 1e-3, 2e-4)
#: Number of steps of the tutorial's demo sweep.
DEMO_STEPS = 10
#: Rows the history keeps (the oldest go first): bounds one person's memory and CSV size.
MAX_HISTORY = 1000


def playground_config(
    target: Sequence[float] = TUTORIAL_TARGET,
    *,
    objective_terms: Sequence[str] = ALL_TERMS,
    time_reward: float = 0.0,
    action_mode: ActionMode = "delta",
    incoming_seed: int | None = None,
    misalignment_seed: int | None = None,
) -> EnvConfig:
    """The environment of the Playground: all five magnets, everything constant.

    The agent's action range is [-1, 1] (the tutorial's ``RescaleAction(env, -1, 1)``),
    magnets start at zero, there is no time limit and no abort.

    :param target: target beam ``[mu_x, sigma_x, mu_y, sigma_y]`` in m, shape (4,).
    :param objective_terms: beam parameters that count in obj.
    :param time_reward: added to the reward every step.
    :param action_mode: ``delta`` or ``direct``.
    :param incoming_seed: None for the demo incoming beam, else the seed of a random one
        (drawn within the tutorial's bounds).
    :param misalignment_seed: None for no misalignments, else the seed of random ones
        (within +-2 mm).
    :return: a validated config; incoming beam and misalignments are stored as constants,
        so the config alone reproduces the session.
    """
    incoming = DEMO_INCOMING_BEAM if incoming_seed is None else tuple(random_incoming_beam(incoming_seed))
    misalignments = (0.0,) * 8 if misalignment_seed is None else tuple(random_misalignments(misalignment_seed))
    return EnvConfig(
        action_mode=action_mode,
        time_reward=float(time_reward),
        time_limit=None,
        rescale_action=(-1.0, 1.0),
        objective_terms=tuple(t for t in BEAM_PARAMETER_NAMES if t in objective_terms),
        actuators="all",
        observation="beam_magnets_target",
        target_beam_mode="constant",
        target_beam_values=tuple(float(v) for v in target),
        incoming_mode="constant",
        incoming_values=tuple(float(v) for v in incoming),
        misalignment_mode="constant",
        misalignment_values=tuple(float(v) for v in misalignments),
        magnet_init_mode="constant",
        magnet_init_values=(0.0,) * 5,
    )


def random_incoming_beam(seed: int) -> np.ndarray:
    """A random incoming beam as the training environment draws it, from ``seed``.

    :return: shape (11,), see ``INCOMING_BEAM_NAMES`` (eV, m, rad).
    """
    rng = np.random.default_rng(seed)
    return sample_episode_start(EnvConfig(incoming_mode="random"), rng).incoming


def random_misalignments(seed: int) -> np.ndarray:
    """Random misalignments as the environment draws them, from ``seed``.

    :return: shape (8,) in m, see ``MISALIGNMENT_NAMES``.
    """
    rng = np.random.default_rng(seed)
    return sample_episode_start(EnvConfig(incoming_mode="constant", misalignment_mode="random"), rng).misalignments


def normalised_magnets(magnets: np.ndarray | Sequence[float]) -> np.ndarray:
    """Magnet settings as a direct-mode agent with ``rescale_action=(-1, 1)`` sees them.

    This is the tutorial's ``RescaleAction(env, -1, 1)``: -1 and 1 are the limits.

    :param magnets: ``[Q1, Q2, CV, Q3, CH]`` in 1/m^2 and rad, shape (..., 5).
    :return: same shape, in [-1, 1] for settings within the limits.
    """
    return np.asarray(magnets, dtype=np.float64) / MAGNET_LIMITS


def physical_magnets(normalised: np.ndarray | Sequence[float]) -> np.ndarray:
    """Inverse of :func:`normalised_magnets`, clipped to [-1, 1] first; shape (..., 5)."""
    return np.clip(np.asarray(normalised, dtype=np.float64), -1.0, 1.0) * MAGNET_LIMITS


@dataclass(frozen=True)
class Readout:
    """Everything the Playground shows about one magnet setting.

    :param magnets: ``[Q1, Q2, CV, Q3, CH]`` in 1/m^2 and rad, shape (5,).
    :param beam: beam on the screen ``[mu_x, sigma_x, mu_y, sigma_y]`` in m, shape (4,).
    :param target: target beam in m, shape (4,).
    :param errors: |beam - target| per parameter in m, shape (4,).
    :param objective: obj of this setting in m (sum of the errors of the objective's terms).
    :param previous_objective: obj_{j-1} in m: the state the environment is in now.
    :param objective_0: obj_0 in m: the state at the last reset.
    :param pixel_sum: sum of the screen's pixels: the fraction of the beam on the screen.
    :param on_screen: whether the beam centre is on the screen.
    :param rewards: every reward mode's value, time reward included.
    :param time_reward: the time term in ``rewards``.
    """

    magnets: np.ndarray
    beam: np.ndarray
    target: np.ndarray
    errors: np.ndarray
    objective: float
    previous_objective: float
    objective_0: float
    pixel_sum: float
    on_screen: bool
    rewards: dict[str, float]
    time_reward: float

    @classmethod
    def from_info(cls, info: dict[str, Any], previous_objective: float, time_reward: float) -> Readout:
        """Build from a step's ``info`` (see :class:`envlib.env.AresEAEnv`).

        :param previous_objective: obj_{j-1} in m.
        :param time_reward: the config's time term, added to every mode's reward
            (``rewards_by_mode`` leaves it out).
        """
        time_reward = float(time_reward)
        return cls(
            magnets=np.array(info["magnets"]),
            beam=np.array(info["beam"]),
            target=np.array(info["target"]),
            errors=np.array([info["errors"][n] for n in BEAM_PARAMETER_NAMES]),
            objective=float(info["objective"]),
            previous_objective=float(previous_objective),
            objective_0=float(info["objective_0"]),
            pixel_sum=float(info["pixel_sum"]),
            on_screen=bool(info["on_screen"]),
            rewards={m: float(r) + time_reward for m, r in info["rewards_by_mode"].items()},
            time_reward=time_reward,
        )


#: Columns of the history, in order: step, magnets, beam, errors (m), obj, pixel sum,
#: on-screen flag, then each mode's reward (time reward included; empty at step 0).
HISTORY_COLUMNS = (
    ("step", "action_mode")
    + MAGNET_LABELS
    + BEAM_PARAMETER_NAMES
    + tuple(f"error_{n}" for n in BEAM_PARAMETER_NAMES)
    + ("objective", "pixel_sum", "on_screen")
    + tuple(f"reward_{m}" for m in REWARD_MODES)
)


class PlaygroundSession:
    """One person's manual tuning session on the ARES EA.

    :param config: the environment's config (see :func:`playground_config`); it must act
        on all five magnets.
    :param simulator: a Cheetah beamline to share between sessions (thread-safe).
    """

    def __init__(self, config: EnvConfig | None = None, simulator: BeamlineSimulator | None = None) -> None:
        self._build(config if config is not None else playground_config(), simulator)
        #: One row per step, the first is the reset state (see :data:`HISTORY_COLUMNS`);
        #: at most :data:`MAX_HISTORY` rows.
        self.history: list[dict[str, Any]] = []
        self.reset()

    def _build(self, config: EnvConfig, simulator: BeamlineSimulator | None) -> None:
        if config.actuators != "all":
            raise ValueError(f"the Playground turns all five magnets; got actuators={config.actuators!r}")
        self.env = AresEAEnv(config, simulator=simulator)
        # Previews are direct steps (physical units) on a copy of the state: the same code
        # path as a real step, so preview and step cannot drift apart.
        self._direct = AresEATask(config.replace(action_mode="direct", rescale_action=None), self.env.task.simulator)

    # --- state ------------------------------------------------------------------------
    @property
    def config(self) -> EnvConfig:
        return self.env.config

    @property
    def magnets(self) -> np.ndarray:
        """Current ``[Q1, Q2, CV, Q3, CH]`` of the environment (1/m^2, rad), shape (5,)."""
        return self.env.state.magnets[0].copy()

    @property
    def objective_0(self) -> float:
        """obj at the last reset, in m: the reference of the normalised rewards."""
        return float(self.env.state.objective_0[0])

    @property
    def steps(self) -> int:
        """Steps taken since the last reset."""
        return int(self.env.state.steps[0])

    def observation(self) -> np.ndarray:
        """What an agent in this environment observes now: the environment's observation of
        its current state (after the last reset or step; the sliders' preview is no state).

        :return: shape (d,), float32, SI units, named by
            ``envlib.task.observation_entries(config.observation)`` (13 values here: target,
            beam, magnets).
        """
        return self.env.task.observe(self.env.state)[0]

    def hidden(self) -> np.ndarray:
        """The simulator's state that :meth:`observation` leaves out (incoming beam, misalignments).

        :return: shape (h,), float64, named by ``envlib.task.hidden_entries(config.observation)``
            (19 values here: the incoming beam's 11 in eV, m, rad; 8 misalignments in m).
        """
        return hidden_values(self.env.state, self.config.observation)[0]

    def reset(self, magnets: Sequence[float] | None = None) -> None:
        """Start a new episode and clear the history.

        :param magnets: start from these settings (1/m^2, rad), shape (5,); None for the
            config's initial magnets (zero).
        """
        start = None
        if magnets is not None:
            c = self.config
            start = EpisodeStart(
                target=np.array(c.target_beam_values),
                incoming=np.array(c.incoming_values),
                misalignments=np.array(c.misalignment_values),
                magnets=np.asarray(magnets, dtype=np.float64),
            )
        # The config is all constant, so the seed only fixes the env's generator.
        _, info = self.env.reset(seed=0, options={"start": start} if start is not None else None)
        self.history = [self._row(info, rewards=None)]

    def reconfigure(self, config: EnvConfig) -> None:
        """Switch to a new config; a new episode starts from the current magnets."""
        magnets = self.magnets
        self._build(config, self.env.task.simulator)
        self.reset(magnets)

    # --- preview and steps ------------------------------------------------------------------
    def preview(self, magnets: Sequence[float]) -> Readout:
        """What the screen and every reward would show at ``magnets``, without stepping.

        :param magnets: ``[Q1, Q2, CV, Q3, CH]`` in 1/m^2 and rad, shape (5,); clipped to
            the magnets' limits.
        """
        state = copy.deepcopy(self.env.state)
        previous = float(state.objective[0])
        _, _, _, _, infos = self._direct.step(state, np.asarray(magnets, dtype=np.float64).reshape(1, 5))
        return Readout.from_info(infos[0], previous, self.config.time_reward)

    def step_to(self, magnets: Sequence[float]) -> Readout:
        """One environment step towards ``magnets``, appended to the history.

        In direct mode the magnets are set to ``magnets``. In delta mode the action is the
        difference, so each magnet moves by at most 10 % of its limit per step.

        :param magnets: wanted ``[Q1, Q2, CV, Q3, CH]`` in 1/m^2 and rad, shape (5,).
        :return: the readout of the state reached.
        """
        action = self._action_towards(magnets)[0]
        previous = float(self.env.state.objective[0])
        # float64, not the space's float32: a direct step lands exactly on ``wanted``.
        _, _, _, _, info = self.env.step(action)
        readout = Readout.from_info(info, previous, self.config.time_reward)
        self.history.append(self._row(info, rewards=readout.rewards))
        del self.history[:-MAX_HISTORY]
        return readout

    def step_destination(self, magnets: Sequence[float]) -> np.ndarray:
        """Where :meth:`step_to` ``magnets`` would put the magnets, without stepping: there in
        direct mode, at most 10 % of each limit from the current settings in delta mode.

        :param magnets: wanted ``[Q1, Q2, CV, Q3, CH]`` in 1/m^2 and rad, shape (5,).
        :return: the settings a step reaches, shape (5,).
        """
        return self.env.task.next_magnets(self.magnets.reshape(1, 5), self._action_towards(magnets))[0]

    def _action_towards(self, magnets: Sequence[float]) -> np.ndarray:
        """The agent's action of a step towards ``magnets`` (SI, shape (5,)), shape (1, 5)."""
        wanted = np.asarray(magnets, dtype=np.float64).reshape(5)
        if not np.all(np.isfinite(wanted)):
            raise ValueError(f"magnet settings must be finite numbers, got {list(wanted)}")
        physical = wanted - self.magnets if self.config.action_mode == "delta" else wanted
        return self.env.task.agent_action(physical)

    def demo_settings(self) -> np.ndarray:
        """The tutorial's demo: the vertical corrector swept over 10 steps.

        The tutorial steps a direct-mode env with normalised actions
        ``[0.2, -0.2, -0.5 + i / 10, 0.3, 0]`` for i = 0..9.

        :return: the demo's magnet settings in 1/m^2 and rad, shape (10, 5).
        """
        i = np.arange(DEMO_STEPS)
        actions = np.tile([0.2, -0.2, -0.5, 0.3, 0.0], (DEMO_STEPS, 1))
        actions[:, 2] += i / DEMO_STEPS
        return physical_magnets(actions)

    # --- history ------------------------------------------------------------------------
    def clear_history(self) -> None:
        """Forget the steps taken; keep the current state as the history's first row."""
        self.history = [dict(self.history[-1], **{f"reward_{m}": None for m in REWARD_MODES})]

    def history_csv(self) -> str:
        """The history as CSV text (header :data:`HISTORY_COLUMNS`; SI units, rewards dimensionless)."""
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in self.history:
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
        return out.getvalue()

    def _row(self, info: dict[str, Any], rewards: dict[str, float] | None) -> dict[str, Any]:
        row: dict[str, Any] = {"step": int(info["step"]), "action_mode": self.config.action_mode}
        row.update(zip(MAGNET_LABELS, info["magnets"], strict=True))
        row.update(zip(BEAM_PARAMETER_NAMES, info["beam"], strict=True))
        row.update({f"error_{n}": info["errors"][n] for n in BEAM_PARAMETER_NAMES})
        row.update(objective=info["objective"], pixel_sum=info["pixel_sum"], on_screen=bool(info["on_screen"]))
        row.update({f"reward_{m}": (None if rewards is None else rewards[m]) for m in REWARD_MODES})
        return row
