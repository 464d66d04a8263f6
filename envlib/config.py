"""Typed configuration of the environment and of training, validated at the edge.

A config is built from plain data (a dict, or YAML read safely by :class:`ConfigLoader`) with
:meth:`RunConfig.from_dict`; any unknown key, wrong type or impossible value raises a
:class:`ConfigError` that names the key and says what is allowed. ``to_dict`` gives plain
data back, so a config round-trips through safe YAML.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from envlib.beamline import BEAM_PARAMETER_NAMES
from envlib.reward_spec import RewardSpec, RewardSpecError, preset

#: A YAML 1.2 float: PyYAML's YAML 1.1 resolver wants a dot, so ``3e-4`` and ``1E5`` stayed strings.
YAML_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.VERBOSE,
)


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping gives one key twice."""


class ConfigLoader(yaml.SafeLoader):
    """Safe YAML loading (plain data, no Python tags) that reads ``3e-4`` as a float and refuses a repeated key."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """A mapping; a key given twice is an error (PyYAML would keep the last one without a word)."""
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *defaults`: keys given here override the merged ones, as YAML means
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)):
                if key in seen:
                    raise DuplicateKeyError(None, None, f"the key {key!r} is given twice", key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


class ConfigDumper(yaml.SafeDumper):
    """Safe YAML dumping that quotes a string such as ``"1e5"``, so :class:`ConfigLoader` reads it back as text."""


ConfigLoader.add_implicit_resolver("tag:yaml.org,2002:float", YAML_FLOAT, list("-+0123456789."))
ConfigDumper.add_implicit_resolver("tag:yaml.org,2002:float", YAML_FLOAT, list("-+0123456789."))


ActionMode = Literal["direct", "delta"]
RewardMode = Literal["negative_objective", "objective_improvement", "sum_of_pixels", "custom"]
SourceMode = Literal["constant", "random"]
Actuators = Literal["all", "quadrupoles"]
ObservationMode = Literal["beam_magnets", "beam_magnets_target", "full"]
Algorithm = Literal["PPO", "TD3"]
LrSchedule = Literal["constant", "linear"]

#: The fixed demo incoming beam (energy in eV, m, rad), order of ``INCOMING_BEAM_NAMES``.
DEMO_INCOMING_BEAM = (80e6, -5e-4, 6e-5, 3e-4, 3e-5, 4e-4, 4e-5, 1e-4, 4e-5, 1e-6, 4e-6)


class ConfigError(ValueError):
    """A configuration value is missing, unknown, of the wrong type or out of range.

    :param key: dotted name of the offending key, e.g. ``train.batch_size``.
    :param message: what is wrong and what is allowed.
    """

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}")


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_type_name(args[0])}"
        return f"a list of {len(args)} numbers"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _coerce(key: str, value: Any, tp: Any) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert lists to tuples."""
    origin = typing.get_origin(tp)
    if tp is RewardSpec:
        if isinstance(value, RewardSpec):
            return value
        try:
            return RewardSpec.from_dict(value)
        except RewardSpecError as exc:
            raise ConfigError(f"{key}.{exc.key}", exc.message) from None
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(key, f"must be {_type_name(tp)}, got null")
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(key, value, arg)
            except ConfigError as exc:
                errors.append(exc)
        if len(errors) == 1:  # X | None: X's own message is the most precise one
            raise errors[0]
        raise ConfigError(key, f"must be {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(key, f"must be one of {', '.join(map(repr, allowed))}; got {value!r}")
        return value
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(key, f"must be {_type_name(tp)}, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(f"{key}[{i}]", v, args[0]) for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(key, f"must be a list of {len(args)} values, got {len(value)}")
        return tuple(_coerce(f"{key}[{i}]", v, a) for i, (v, a) in enumerate(zip(value, args, strict=True)))
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(key, f"must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(key, f"must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(key, f"must be a number, got {value!r}")
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(key, f"must be a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(key, f"must be text, got {value!r}")
        return value
    raise ConfigError(key, f"has an unsupported type {tp!r}")  # pragma: no cover


def _from_dict(cls: type, data: Any, prefix: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(prefix or "config", f"must be a mapping of keys to values, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(map(str, data)) - set(names))
    if unknown:
        raise ConfigError(
            f"{prefix}{unknown[0]}",
            f"unknown key; allowed keys are: {', '.join(names)}",
        )
    kwargs = {name: _coerce(f"{prefix}{name}", data[name], hints[name]) for name in names if name in data}
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        if not prefix or exc.key.startswith(prefix):
            raise
        raise ConfigError(f"{prefix}{exc.key}", exc.message) from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's error as one line: where (line and column, from 1) and what, plus why a tag is refused."""
    mark, problem = getattr(exc, "problem_mark", None), getattr(exc, "problem", None)
    if mark is None or not problem:
        return ": " + " ".join(str(exc).split())  # e.g. a ReaderError: no mark, a multi-line text
    context = getattr(exc, "context", None)
    text = f" at line {mark.line + 1}, column {mark.column + 1}: " + (f"{context}, {problem}" if context else problem)
    if isinstance(exc, yaml.constructor.ConstructorError) and not isinstance(exc, DuplicateKeyError):
        text += " (a config is plain data: Python tags are refused)"
    return text


def _check(key: str, ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(key, message)


def _to_plain(value: Any) -> Any:
    if isinstance(value, RewardSpec):
        return value.to_dict()
    if isinstance(value, tuple):
        return [_to_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class EnvConfig:
    """Configuration of the ARES EA environment. Units: m, rad, 1/m^2, eV.

    Defaults are the tutorial's training environment: three quadrupoles, focusing only,
    a random incoming beam each episode, zero misalignments, a zero target and magnets
    starting at zero.
    """

    action_mode: ActionMode = "delta"
    reward_mode: RewardMode = "negative_objective"
    #: Added to the reward every step (e.g. -1.0 to make episodes short).
    time_reward: float = 0.0
    abort_if_off_screen: bool = False
    #: Steps per episode before truncation; null for no limit.
    time_limit: int | None = 25
    #: Success thresholds on |b^c - b^t| in m; null disables a threshold.
    target_mu_x_threshold: float | None = None
    target_sigma_x_threshold: float | None = None
    target_mu_y_threshold: float | None = None
    target_sigma_y_threshold: float | None = None
    #: Consecutive steps within all thresholds before success ends the episode.
    threshold_hold: int = 5
    #: Range the agent acts in, mapped linearly onto the magnets' range; null for physical units.
    rescale_action: tuple[float, float] | None = (-3.0, 3.0)
    #: Beam parameters that count in the objective.
    objective_terms: tuple[str, ...] = ("sigma_x", "sigma_y")
    actuators: Actuators = "quadrupoles"
    observation: ObservationMode = "beam_magnets"
    target_beam_mode: SourceMode = "constant"
    #: Target ``[mu_x, sigma_x, mu_y, sigma_y]`` in m, when constant.
    target_beam_values: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    incoming_mode: SourceMode = "random"
    #: Incoming beam in the order of ``INCOMING_BEAM_NAMES``, when constant.
    incoming_values: tuple[float, float, float, float, float, float, float, float, float, float, float] = (
        DEMO_INCOMING_BEAM
    )
    misalignment_mode: SourceMode = "constant"
    #: Misalignments in m (Q1 x, y; Q2 x, y; Q3 x, y; screen x, y), when constant.
    misalignment_values: tuple[float, float, float, float, float, float, float, float] = (0.0,) * 8
    magnet_init_mode: SourceMode = "constant"
    #: Initial ``[Q1, Q2, CV, Q3, CH]`` in 1/m^2 and rad, when constant.
    magnet_init_values: tuple[float, float, float, float, float] = (0.0,) * 5
    #: The reward when ``reward_mode`` is ``custom`` (see :mod:`envlib.reward_spec`).
    reward: RewardSpec | None = None

    @property
    def reward_spec(self) -> RewardSpec:
        """The reward as a spec: the custom one, or the preset of ``reward_mode``."""
        if self.reward_mode == "custom":
            return self.reward
        return preset(self.reward_mode, self.objective_terms, self.time_reward)

    def __post_init__(self) -> None:
        from envlib.beamline import MAGNET_LIMITS

        if self.reward_mode == "custom":
            _check("reward", self.reward is not None, "is required when reward_mode is 'custom'")
            _check(
                "time_reward",
                self.time_reward == 0.0,
                "must be 0 with reward_mode 'custom': the time term is the reward spec's time_reward",
            )
        else:
            _check(
                "reward",
                self.reward is None,
                f"is only used with reward_mode 'custom' (reward_mode is {self.reward_mode!r})",
            )
        thresholds = (
            self.target_mu_x_threshold, self.target_sigma_x_threshold,
            self.target_mu_y_threshold, self.target_sigma_y_threshold,
        )  # fmt: skip
        if self.reward is not None and self.reward.success_bonus:
            _check(
                "reward.success_bonus",
                any(t is not None for t in thresholds),
                "needs at least one target_*_threshold: the bonus is paid while all set thresholds hold",
            )

        _check("time_limit", self.time_limit is None or self.time_limit >= 1, "must be at least 1 step, or null")
        _check("threshold_hold", self.threshold_hold >= 1, "must be at least 1 step")
        for name in ("mu_x", "sigma_x", "mu_y", "sigma_y"):
            key = f"target_{name}_threshold"
            value = getattr(self, key)
            _check(key, value is None or value > 0, f"must be a positive distance in m, or null; got {value!r}")
        if self.rescale_action is not None:
            low, high = self.rescale_action
            _check("rescale_action", low < high, f"needs low < high, got {list(self.rescale_action)}")
        terms = self.objective_terms
        _check(
            "objective_terms",
            bool(terms) and all(t in BEAM_PARAMETER_NAMES for t in terms) and len(set(terms)) == len(terms),
            f"must be a non-empty list of distinct names from {list(BEAM_PARAMETER_NAMES)}, got {list(terms)}",
        )
        t = self.target_beam_values
        _check("target_beam_values", t[1] >= 0 and t[3] >= 0, f"sigma_x and sigma_y must be >= 0 m, got {list(t)}")
        inc = self.incoming_values
        _check("incoming_values", inc[0] > 0, f"energy (first value) must be > 0 eV, got {inc[0]!r}")
        _check(
            "incoming_values",
            all(v > 0 for v in inc[5:]),
            f"sigma_x, sigma_px, sigma_y, sigma_py, sigma_tau, sigma_p must be > 0, got {list(inc[5:])}",
        )
        _check(
            "magnet_init_values",
            len(self.magnet_init_values) == len(MAGNET_LIMITS),
            f"must be {len(MAGNET_LIMITS)} values [Q1, Q2, CV, Q3, CH], got {len(self.magnet_init_values)}",
        )
        for i, (value, limit) in enumerate(zip(self.magnet_init_values, MAGNET_LIMITS, strict=True)):
            _check(
                "magnet_init_values",
                abs(value) <= limit,
                f"value {i} = {value!r} is outside the magnet's limit +-{limit:g}",
            )

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, prefix: str = "") -> EnvConfig:
        """Build from plain data; raises :class:`ConfigError` naming the bad key."""
        return _from_dict(cls, data, prefix)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists, not tuples), for safe YAML."""
        return {f.name: _to_plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def replace(self, **changes: Any) -> EnvConfig:
        """A copy with ``changes`` applied, validated like :meth:`from_dict`."""
        return EnvConfig.from_dict({**self.to_dict(), **{k: _to_plain(v) for k, v in changes.items()}})


@dataclass(frozen=True)
class TrainConfig:
    """Configuration of a training run (the tutorial's Part IV keys)."""

    algorithm: Algorithm = "PPO"
    n_envs: int = 40
    n_steps: int = 50
    batch_size: int = 100
    n_epochs: int = 10
    total_timesteps: int = 200_000
    gamma: float = 0.99
    learning_rate: float = 3e-4
    net_arch: tuple[int, ...] = (64, 64)
    normalize_observation: bool = True
    normalize_reward: bool = True
    #: Number of past observations stacked (SB3 ``VecFrameStack``); null for none.
    frame_stack: int | None = None
    seed: int = 0
    #: Evaluate on fixed seeds every this many timesteps; 0 disables.
    eval_every: int = 20_000
    eval_episodes: int = 20
    #: ``linear`` decays the learning rate to 0 at ``total_timesteps``.
    lr_schedule: LrSchedule = "constant"
    #: PPO only: entropy bonus, GAE lambda and clip range (SB3's defaults).
    ent_coef: float = 0.0
    gae_lambda: float = 0.95
    clip_range: float = 0.2

    def __post_init__(self) -> None:
        for key in ("n_envs", "n_steps", "batch_size", "n_epochs", "total_timesteps"):
            _check(key, getattr(self, key) >= 1, f"must be at least 1, got {getattr(self, key)!r}")
        _check("n_envs", self.n_envs <= 4096, f"must be at most 4096, got {self.n_envs}")
        rollout = self.n_steps * self.n_envs
        if self.algorithm == "PPO":
            _check(
                "batch_size",
                self.batch_size <= rollout,
                f"must be at most one rollout (n_steps * n_envs = {rollout}), got {self.batch_size}",
            )
            _check("batch_size", self.batch_size >= 2, f"must be at least 2 for PPO, got {self.batch_size}")
        _check("gamma", 0.0 < self.gamma <= 1.0, f"must be in (0, 1], got {self.gamma!r}")
        _check("learning_rate", 0.0 < self.learning_rate < 1.0, f"must be in (0, 1), got {self.learning_rate!r}")
        _check(
            "net_arch",
            bool(self.net_arch) and all(1 <= n <= 1024 for n in self.net_arch),
            f"must be a non-empty list of layer sizes from 1 to 1024, got {list(self.net_arch)}",
        )
        _check(
            "frame_stack",
            self.frame_stack is None or 1 <= self.frame_stack <= 16,
            f"must be from 1 to 16, or null; got {self.frame_stack!r}",
        )
        _check("seed", 0 <= self.seed < 2**32, f"must be from 0 to 2**32 - 1, got {self.seed!r}")
        _check("eval_every", self.eval_every >= 0, f"must be >= 0 (0 disables), got {self.eval_every!r}")
        _check("eval_episodes", 1 <= self.eval_episodes <= 1000, f"must be from 1 to 1000, got {self.eval_episodes!r}")
        _check("ent_coef", 0.0 <= self.ent_coef <= 1.0, f"must be in [0, 1], got {self.ent_coef!r}")
        _check("gae_lambda", 0.0 <= self.gae_lambda <= 1.0, f"must be in [0, 1], got {self.gae_lambda!r}")
        _check("clip_range", 0.0 < self.clip_range <= 1.0, f"must be in (0, 1], got {self.clip_range!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, prefix: str = "") -> TrainConfig:
        """Build from plain data; raises :class:`ConfigError` naming the bad key."""
        return _from_dict(cls, data, prefix)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists, not tuples), for safe YAML."""
        return {f.name: _to_plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


@dataclass(frozen=True)
class RunConfig:
    """Everything a training run needs: the environment and the training settings.

    YAML layout::

        display_name: Sean Kelley     # optional
        env: {reward_mode: negative_objective, ...}
        train: {n_envs: 40, ...}

    The tutorial's flat config dict (all keys at the top level, plus ``run_name``) is
    accepted too; each key goes to the section that owns it.
    """

    env: EnvConfig = field(default_factory=EnvConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    display_name: str | None = None
    description: str | None = None

    @classmethod
    def from_dict(cls, data: Any) -> RunConfig:
        """Build from plain data (nested or the tutorial's flat layout)."""
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError("config", f"must be a mapping of keys to values, got {type(data).__name__}")
        data = dict(data)
        env_keys = {f.name for f in dataclasses.fields(EnvConfig)}
        train_keys = {f.name for f in dataclasses.fields(TrainConfig)}
        # `env:` with nothing after it is null (defaults); any other non-mapping is an error.
        env_data = data.pop("env", None)
        train_data = data.pop("train", None)
        env_data = {} if env_data is None else env_data
        train_data = {} if train_data is None else train_data
        for name in ("env", "train"):
            section = env_data if name == "env" else train_data
            if not isinstance(section, dict):
                raise ConfigError(name, f"must be a mapping of keys to values, got {type(section).__name__}")
        env_data, train_data = dict(env_data), dict(train_data)
        if "display_name" in data and "run_name" in data:
            raise ConfigError("run_name", "give display_name or the tutorial's run_name, not both")
        display_name = data.pop("display_name", data.pop("run_name", None))
        description = data.pop("description", None)
        for key in list(data):
            for name, keys, section in (("env", env_keys, env_data), ("train", train_keys, train_data)):
                if key not in keys:
                    continue
                if key in section:  # one of the two would be silently dropped
                    raise ConfigError(key, f"given twice: at the top level and under {name}; keep one")
                section[key] = data.pop(key)
        if data:
            key = sorted(map(str, data))[0]
            raise ConfigError(
                key, "unknown key; allowed at the top level: display_name, description, env, train"
            )
        for key, value in (("display_name", display_name), ("description", description)):
            if value is not None and not isinstance(value, str):
                raise ConfigError(key, f"must be text, got {value!r}")
        return cls(
            env=EnvConfig.from_dict(env_data, prefix="env."),
            train=TrainConfig.from_dict(train_data, prefix="train."),
            display_name=display_name,
            description=description,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain nested data, for safe YAML."""
        out: dict[str, Any] = {}
        if self.display_name is not None:
            out["display_name"] = self.display_name
        if self.description is not None:
            out["description"] = self.description
        out["env"] = self.env.to_dict()
        out["train"] = self.train.to_dict()
        return out

    def to_yaml(self) -> str:
        """The config as safe YAML text."""
        return yaml.dump(self.to_dict(), Dumper=ConfigDumper, sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str) -> RunConfig:
        """Parse safe YAML (no Python object tags) into a validated config; ``3e-4`` is a number."""
        try:
            data = yaml.load(text, Loader=ConfigLoader)  # a SafeLoader: plain data only
        except yaml.YAMLError as exc:
            raise ConfigError("config", f"is not valid YAML{_yaml_problem(exc)}") from None
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        """Read a YAML file; a missing or unreadable file raises :class:`ConfigError`."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError("config", f"cannot read {path}: {exc}") from None
        return cls.from_yaml(text)
