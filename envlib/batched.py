"""N ARES EA environments stepped with one Cheetah tracking call, as an SB3 ``VecEnv``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvObs, VecEnvStepReturn

from envlib.beamline import BeamlineSimulator
from envlib.config import EnvConfig
from envlib.screen import render_rgb
from envlib.task import AresEATask, EpisodeStart, TaskState, sample_episode_start


class AresEAVecEnv(VecEnv):
    """``n_envs`` ARES EA environments in one batch.

    Same semantics as SB3's ``DummyVecEnv`` of ``n_envs`` :class:`envlib.env.AresEAEnv`:
    environment i is seeded with ``seed + i`` at the first ``reset()`` after ``seed()``,
    draws later episodes from its own generator, and auto-resets when its episode ends,
    with the last observation in ``info["terminal_observation"]`` and
    ``info["TimeLimit.truncated"]`` set on truncation. The task's logic is
    :class:`envlib.task.AresEATask`, shared with the single environment.

    :param config: environment configuration (same for all environments).
    :param n_envs: number of environments N.
    :param simulator: Cheetah beamline to track with; a new one by default.
    :param render_mode: ``"rgb_array"`` (default) or None.
    """

    def __init__(
        self,
        config: EnvConfig | None = None,
        n_envs: int = 1,
        simulator: BeamlineSimulator | None = None,
        render_mode: str | None = "rgb_array",
    ) -> None:
        if n_envs < 1:
            raise ValueError(f"n_envs must be at least 1, got {n_envs}")
        self.config = config if config is not None else EnvConfig()
        self.task = AresEATask(self.config, simulator)
        self.render_mode = render_mode
        super().__init__(n_envs, self.task.observation_space, self.task.action_space)
        self.state = TaskState.empty(n_envs)
        self._rngs: list[np.random.Generator] = [seeding.np_random(None)[0] for _ in range(n_envs)]
        self._actions: np.ndarray | None = None
        #: Initial states of the current episodes, one per environment.
        self.starts: list[EpisodeStart | None] = [None] * n_envs

    # --- VecEnv API ------------------------------------------------------------------
    def reset(self) -> VecEnvObs:
        for i, seed in enumerate(self._seeds):
            if seed is not None:
                self._rngs[i] = seeding.np_random(seed)[0]
        starts = [sample_episode_start(self.config, rng) for rng in self._rngs]
        self.reset_to(starts)
        self._reset_seeds()
        self._reset_options()
        return self.task.observe(self.state)

    def reset_to(self, starts: Sequence[EpisodeStart]) -> VecEnvObs:
        """Start every environment from a given initial state (e.g. fixed evaluation beams)."""
        if len(starts) != self.num_envs:
            raise ValueError(f"need {self.num_envs} starts, got {len(starts)}")
        self.task.reset_rows(self.state, range(self.num_envs), starts)
        self.starts = list(starts)
        self.reset_infos = self.task.reset_infos(self.state)
        return self.task.observe(self.state)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("step_async() must be called before step_wait()")
        obs, reward, terminated, truncated, infos = self.task.step(self.state, self._actions)
        self._actions = None
        dones = terminated | truncated
        # Like DummyVecEnv: the flag is in every info, True only for a time-limit end.
        for info, flag in zip(infos, (truncated & ~terminated).tolist(), strict=True):
            info["TimeLimit.truncated"] = flag
        if dones.any():
            rows = np.flatnonzero(dones)
            for i in rows:
                infos[i]["terminal_observation"] = obs[i].copy()
            starts = [sample_episode_start(self.config, self._rngs[i]) for i in rows]
            self.task.reset_rows(self.state, rows, starts)
            for i, start in zip(rows, starts, strict=True):
                self.starts[i] = start
            obs[rows] = self.task.observe(self.state)[rows]
            for i, info in zip(rows, self.task.reset_infos(self.state, rows), strict=True):
                self.reset_infos[i] = info
        return obs, reward.astype(np.float32), dones, infos

    def close(self) -> None:
        return None

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [render_rgb(self.state.beam[i], self.state.target[i]) for i in range(self.num_envs)]

    def render(self, mode: str | None = None) -> np.ndarray | None:
        if (mode or self.render_mode) != "rgb_array":
            return None
        return np.asarray(self.get_images()[0])

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        if attr_name == "render_mode":
            return [self.render_mode for _ in self._get_indices(indices)]
        return [getattr(self, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        raise AttributeError(f"AresEAVecEnv environments share one config; cannot set {attr_name!r} per environment")

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any
    ) -> list[Any]:
        raise AttributeError(f"AresEAVecEnv has no per-environment method {method_name!r}")

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    def _get_indices(self, indices: VecEnvIndices) -> Iterable[int]:
        if indices is None:
            return range(self.num_envs)
        if isinstance(indices, int):
            return [indices]
        return indices
