"""A trained policy with its observation normaliser, loaded from a run without unpickling.

SB3's ``PPO.load`` cloudpickle-loads every ``:serialized:`` entry of the ``data`` file in
``model.zip``, and a crafted file can add entries of its own, so ``custom_objects`` is no
defence. :func:`load_agent` never reads ``data``: it builds the policy from the run's
``config.yaml`` and loads only the network weights, the way SB3's ``set_parameters`` does
(``load_from_zip_file(..., load_data=False)``, which reads the ``.pth`` files with
``torch.load(weights_only=True)``). The normaliser comes from ``normalizer.npz`` read with
``allow_pickle=False``.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3 import PPO, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.save_util import load_from_zip_file

from envlib.config import RunConfig, TrainConfig
from envlib.runs import MODEL_FILE, NORMALIZER_FILE, ObsNormalizer, RunError, read_config
from envlib.task import AresEATask

ALGORITHMS: dict[str, type[BaseAlgorithm]] = {"PPO": PPO, "TD3": TD3}


def policy_kwargs(train: TrainConfig) -> dict[str, Any]:
    """SB3 ``policy_kwargs`` for ``train.net_arch``; one place, so training and loading agree."""
    layers = list(train.net_arch)
    if train.algorithm == "PPO":
        return {"net_arch": {"pi": layers, "vf": layers}}
    return {"net_arch": layers}


def policy_spaces(config: RunConfig) -> tuple[spaces.Box, spaces.Box]:
    """The policy's observation space (after frame stacking) and action space.

    :return: ``(Box of shape (k * d,), Box of shape (A,))`` with d the env's observation
        size, k the frame stack (1 without) and A the number of actuators.
    """
    task = AresEATask(config.env)  # builds a Cheetah segment (~20 ms), only to read the spaces
    obs_space, action_space = task.observation_space, task.action_space
    k = config.train.frame_stack or 1
    stacked = spaces.Box(low=-np.inf, high=np.inf, shape=(k * obs_space.shape[0],), dtype=np.float32)
    return stacked, action_space


class _NoOptimizer:
    """Stands in for Adam in a policy that only acts.

    SB3 builds an optimizer in every policy, and the first torch optimizer of a process
    imports ``torch._dynamo`` (~1.8 s): the first Compare run on a fresh server waited for it.
    """

    def __init__(self, params: Any, lr: float, **kwargs: Any) -> None:
        del params, lr, kwargs


def build_policy(config: RunConfig) -> BasePolicy:
    """A freshly initialised policy network of the shape ``config`` trains (CPU), for acting only.

    It has no optimizer (``policy.optimizer`` is a stand-in); training builds its own
    policy through SB3.
    """
    obs_space, action_space = policy_spaces(config)
    policy_class = ALGORITHMS[config.train.algorithm].policy_aliases["MlpPolicy"]
    kwargs = {**policy_kwargs(config.train), "optimizer_class": _NoOptimizer}
    policy = policy_class(obs_space, action_space, lambda _: 0.0, **kwargs)
    return policy.to("cpu")


@dataclass
class Agent:
    """A policy ready to act on raw observations of :class:`envlib.batched.AresEAVecEnv`.

    :param config: the run's configuration (environment and training).
    :param policy: the SB3 policy network.
    :param normalizer: the observation normaliser the policy was trained with.
    :param run_dir: where the agent was loaded from, or None (e.g. during training).
    """

    config: RunConfig
    policy: BasePolicy
    normalizer: ObsNormalizer
    run_dir: Path | None = None
    frame_stack: int = field(init=False)

    def __post_init__(self) -> None:
        self.frame_stack = self.config.train.frame_stack or 1

    @property
    def observation_size(self) -> int:
        """Size d of one raw observation."""
        return len(self.normalizer.obs_mean)

    def predict(
        self,
        obs: np.ndarray,
        state: np.ndarray | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Actions for a batch of raw observations, like SB3's ``model.predict``.

        Normalises the observations and, for frame-stacking agents, stacks them as
        ``VecFrameStack`` does: the stack is the returned ``state``; pass it back on the
        next call, with ``episode_start`` True where an episode begins (its stack is zeroed).

        :param obs: raw observations, shape (N, d) or (d,).
        :param state: the stack from the previous call, shape (N, k * d), or None to start.
        :param episode_start: shape (N,), True where a new episode starts; None = all
            when ``state`` is None, none otherwise.
        :param deterministic: the mean action (True) or a sample from the policy.
        :return: ``(actions (N, A) in the agent's action range, state)``; state is None
            for agents without frame stacking.
        """
        obs = np.asarray(obs, dtype=np.float64)
        single = obs.ndim == 1
        obs = np.atleast_2d(obs)
        if obs.shape[1] != self.observation_size:
            raise ValueError(
                f"observations have {obs.shape[1]} values, this agent expects {self.observation_size} "
                f"(observation mode {self.config.env.observation!r})"
            )
        normalized = self.normalizer.normalize(obs)
        if self.frame_stack > 1:
            n, d = normalized.shape
            if state is None:
                state = np.zeros((n, self.frame_stack * d), dtype=np.float32)
            else:
                state = np.roll(np.asarray(state, dtype=np.float32), -d, axis=1)
            if episode_start is not None:
                state[np.asarray(episode_start, dtype=bool)] = 0.0
            state[:, -d:] = normalized
            normalized = state.copy()
        actions, _ = self.policy.predict(normalized, deterministic=deterministic)
        return (actions[0] if single else actions), state

    @classmethod
    def from_training(
        cls, config: RunConfig, model: BaseAlgorithm, vec_normalize: Any, run_dir: Path | None = None
    ) -> Agent:
        """The agent a training run has reached so far (shares the model's policy)."""
        return cls(config, model.policy, ObsNormalizer.from_vec_normalize(vec_normalize), run_dir)


def load_agent(run_dir: str | Path) -> Agent:
    """Load a run's agent without unpickling anything.

    :param run_dir: the run directory (``config.yaml``, ``model.zip``, ``normalizer.npz``).
    :raises RunError: naming the file, if a file is missing, corrupt, or does not fit the config.
    """
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    model_path = run_dir / MODEL_FILE
    if not model_path.is_file():
        raise RunError(model_path, "missing: the run has no saved model (yet)")
    try:
        with zipfile.ZipFile(model_path) as archive:
            names = set(archive.namelist())
            damaged = archive.testzip()  # CRC of every member
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise RunError(model_path, f"is not a valid SB3 model archive: {exc}") from None
    if "policy.pth" not in names:
        raise RunError(model_path, "has no policy.pth: the file is damaged or not an SB3 model")
    if damaged is not None:
        raise RunError(model_path, f"is damaged: member {damaged} fails its checksum")
    try:
        # load_data=False: the pickled `data` entry is never read (what set_parameters does).
        _, params, _ = load_from_zip_file(model_path, load_data=False, device="cpu")
    except Exception as exc:  # weights_only unpickler errors, corrupt members, ...
        raise RunError(model_path, f"cannot read the network weights: {exc}") from None
    policy = build_policy(config)
    try:
        policy.load_state_dict(params["policy"], strict=True)
    except (KeyError, RuntimeError, TypeError) as exc:
        raise RunError(
            model_path,
            f"weights do not fit the network of config.yaml (net_arch {list(config.train.net_arch)}, "
            f"observation {config.env.observation!r}, frame_stack {config.train.frame_stack}): {exc}",
        ) from None
    policy.set_training_mode(False)
    normalizer = ObsNormalizer.load(run_dir / NORMALIZER_FILE)
    obs_size = policy.observation_space.shape[0] // (config.train.frame_stack or 1)
    if len(normalizer.obs_mean) != obs_size:
        raise RunError(
            run_dir / NORMALIZER_FILE,
            f"has statistics for {len(normalizer.obs_mean)} observation values, the config's env has {obs_size}",
        )
    return Agent(config=config, policy=policy, normalizer=normalizer, run_dir=run_dir)
