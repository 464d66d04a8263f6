"""The ARES EA transverse tuning task as a Gymnasium environment."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from envlib.beamline import BeamlineSimulator
from envlib.config import EnvConfig
from envlib.screen import render_rgb
from envlib.task import AresEATask, EpisodeStart, TaskState, sample_episode_start


class AresEAEnv(gym.Env):
    r"""
    ## Description

    Focus and centre the electron beam on the diagnostic screen AREABSCR1 of the ARES
    Experimental Area (DESY) with three quadrupoles (Q1, Q2, Q3) and two correctors
    (CV, CH). The beam is tracked with Cheetah as a Gaussian ``ParameterBeam``; its
    moments on the screen are the beam parameters.

    ## Action Space

    ``Box(low, high, (A,), float32)``: A = 3 (``actuators="quadrupoles"``: Q1, Q2, Q3) or
    A = 5 (``"all"``: Q1, Q2, CV, Q3, CH). With ``rescale_action=(low, high)`` the agent
    acts in that range, mapped linearly onto the physical range; with ``None`` it acts in
    physical units.

    | action_mode | physical range | meaning |
    |---|---|---|
    | direct | +-72 1/m^2 (quadrupoles), +-6.1782e-3 rad (correctors) | the new setting |
    | delta | +-7.2 1/m^2, +-6.1782e-4 rad (10 % of the limits) | added to the setting |

    ## Observation Space

    ``Box(-inf, inf, (d,), float32)`` in SI units (normalise with ``VecNormalize``):

    | observation | d | content |
    |---|---|---|
    | beam_magnets (tutorial) | 9 | beam (4), magnets (5) |
    | beam_magnets_target | 13 | target (4), beam (4), magnets (5) |
    | full (simulator state) | 32 | target (4), beam (4), magnets (5), incoming beam (11), misalignments (8) |

    Beam and target are ``[mu_x, sigma_x, mu_y, sigma_y]`` in m; magnets ``[Q1, Q2, CV, Q3,
    CH]`` in 1/m^2 and rad.

    ## Rewards

    ``reward_mode`` (see :mod:`envlib.rewards`) plus ``time_reward`` every step:
    ``negative_objective`` r = -obj_j / obj_0; ``objective_improvement``
    r = (obj_{j-1} - obj_j) / obj_0; ``sum_of_pixels`` r = -(sum of the screen's pixels).
    obj sums |b^c - b^t| over ``objective_terms`` (focusing only by default).

    ## Starting State

    Incoming beam, misalignments, target and magnets are constant or drawn uniformly:
    incoming beam within the tutorial's bounds (energy 80-160 MeV, ...), misalignments
    within +-2 mm, target mu within +-2 mm and sigma within [0, 2] mm, magnets within their
    limits.

    ## Episode End

    Termination: every configured ``target_*_threshold`` met for ``threshold_hold``
    consecutive steps (success), or the beam centre leaves the screen with
    ``abort_if_off_screen``. Truncation: ``time_limit`` steps.

    ## Info

    ``beam``, ``target``, ``magnets``, ``errors`` (per beam parameter, m), ``mae_focus``,
    ``mae_all``, ``objective``, ``objective_0``, ``pixel_sum``, ``on_screen``, ``step``,
    ``success``, ``aborted``; after a step also ``reward_parts`` (the mode's term and the
    time term) and ``rewards_by_mode`` (every mode's value at this step).

    ## Arguments

    | Parameter | Type | Default | Description |
    |---|---|---|---|
    | config | EnvConfig or dict | EnvConfig() | every key of :class:`EnvConfig` |
    | render_mode | str or None | None | ``"rgb_array"``: the screen at binning 4, (510, 612, 3) |
    | simulator | BeamlineSimulator or None | None | share one Cheetah segment between envs |
    | \*\*overrides | | | single config keys, e.g. ``gymnasium.make("AresEA-v0", reward_mode="sum_of_pixels")`` |

    ``reset(options=...)`` accepts ``{"start": EpisodeStart}`` to start from a given
    state (e.g. the same beam for several agents).

    ## Differences from the tutorial's code

    - ``reset(seed=...)`` reproduces the whole episode (incoming beam, misalignments,
      target, initial magnets); all draws come from ``self.np_random``.
    - Magnet settings are clipped to their physical limits, also in delta mode.
    - A random target is drawn from a bounded, physical range (not metres).
    - The objective's terms are explicit (``objective_terms``).
    - ``info`` explains every reward; the screen image is computed from the beam moments.

    ## Version History

    - v0: first version, Cheetah 0.8.4.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(
        self,
        config: EnvConfig | dict[str, Any] | None = None,
        render_mode: str | None = None,
        simulator: BeamlineSimulator | None = None,
        **overrides: Any,
    ) -> None:
        if config is None:
            config = EnvConfig()
        if isinstance(config, dict):
            config = EnvConfig.from_dict(config)
        if overrides:
            config = config.replace(**overrides)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.config = config
        self.render_mode = render_mode
        self.task = AresEATask(config, simulator)
        self.action_space = self.task.action_space
        self.observation_space = self.task.observation_space
        self.state = TaskState.empty(1)
        #: Initial state of the current episode.
        self.start: EpisodeStart | None = None
        self._started = False

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        start = (options or {}).get("start")
        if start is None:
            start = sample_episode_start(self.config, self.np_random)
        elif not isinstance(start, EpisodeStart):
            raise TypeError(f"options['start'] must be an EpisodeStart, got {type(start).__name__}")
        self.task.reset_rows(self.state, [0], [start])
        self.start = start
        self._started = True
        return self.task.observe(self.state)[0], self.task.reset_infos(self.state)[0]

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self._started:
            raise RuntimeError("call reset() before step()")
        obs, reward, terminated, truncated, infos = self.task.step(self.state, np.asarray(action)[None])
        return obs[0], float(reward[0]), bool(terminated[0]), bool(truncated[0]), infos[0]

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        return render_rgb(self.state.beam[0], self.state.target[0])
