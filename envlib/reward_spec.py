"""Composable rewards: a small typed spec built from named terms, never code.

A :class:`RewardSpec` says how the reward of one step is made. With e_i = b_i^c - b_i^t
the error of beam parameter i (m) and w_i its weight:

    d_j   = sum_i w_i |e_i|        (form "absolute" and "log")
          = sum_i w_i e_i^2        (form "squared")
    O_j   = d_j                    (absolute, squared)
          = ln(d_j + eps)          (log, eps = 1 um: the log keeps rewarding the last microns)
    Ô_j   = O_j / O_0              (normalize, absolute and squared)
          = O_j - O_0              (normalize, log: ln(d_j / d_0))
          = O_j in mm (absolute), mm^2 (squared), ln(d/m + 1e-6) (log)  (not normalized)
    base  = -Ô_j                   (kind "negative_objective")
          = Ô_{j-1} - Ô_j          (kind "objective_improvement")
    r_j   = base - w_pixels * (sum of the screen's pixels)
            + time_reward
            + off_screen_penalty   (if the beam centre is off the screen)
            + success_bonus        (if every configured threshold holds this step)

The tutorial's three reward modes are presets (:func:`preset`) and give exactly the numbers
of :mod:`envlib.rewards`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from envlib.beamline import BEAM_PARAMETER_NAMES
from envlib.rewards import MIN_OBJECTIVE_0

RewardKind = Literal["negative_objective", "objective_improvement"]
ObjectiveForm = Literal["absolute", "squared", "log"]
REWARD_KINDS: tuple[str, ...] = ("negative_objective", "objective_improvement")
OBJECTIVE_FORMS: tuple[str, ...] = ("absolute", "squared", "log")
#: Offset inside the log form, in m.
LOG_EPSILON = 1e-6
#: Largest allowed weight or magnitude of a constant term: keeps rewards in a trainable range.
MAX_WEIGHT = 1000.0

_SYMBOL = {"mu_x": r"\mu_x", "sigma_x": r"\sigma_x", "mu_y": r"\mu_y", "sigma_y": r"\sigma_y"}
_UNIT_SCALE = {"absolute": 1e3, "squared": 1e6, "log": 1.0}


class RewardSpecError(ValueError):
    """A reward spec names an unknown term or has a value out of range.

    :param key: the offending key, e.g. ``weights.sigma_z``.
    :param message: what is wrong and what is allowed.
    """

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}")


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise RewardSpecError(key, f"must be a finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class RewardSpec:
    """How one step's reward is made (see the module docstring for the formula).

    :param kind: ``negative_objective`` (-Ô_j) or ``objective_improvement`` (Ô_{j-1} - Ô_j).
    :param weights: weight of each beam parameter's error: a mapping with keys from
        ``mu_x, sigma_x, mu_y, sigma_y`` (missing keys weigh 0), stored as a tuple of the
        four weights in that order so a spec is hashable. Weights are >= 0.
    :param form: ``absolute``, ``squared`` or ``log`` objective.
    :param normalize: divide by (log: subtract) the objective right after reset, obj_0.
    :param pixel_weight: weight of the sum_of_pixels term, >= 0 (the term is -w * sum).
    :param time_reward: added every step (a penalty when negative).
    :param off_screen_penalty: added while the beam centre is off the screen, <= 0.
    :param success_bonus: added every step all configured thresholds hold, >= 0.
    """

    kind: RewardKind = "negative_objective"
    weights: Mapping[str, float] | tuple[float, float, float, float] = (0.0, 1.0, 0.0, 1.0)
    form: ObjectiveForm = "absolute"
    normalize: bool = True
    pixel_weight: float = 0.0
    time_reward: float = 0.0
    off_screen_penalty: float = 0.0
    success_bonus: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in REWARD_KINDS:
            raise RewardSpecError("kind", f"must be one of {', '.join(REWARD_KINDS)}; got {self.kind!r}")
        if self.form not in OBJECTIVE_FORMS:
            raise RewardSpecError("form", f"must be one of {', '.join(OBJECTIVE_FORMS)}; got {self.form!r}")
        if not isinstance(self.normalize, bool):
            raise RewardSpecError("normalize", f"must be true or false, got {self.normalize!r}")
        raw = self.weights
        if isinstance(raw, (tuple, list)) and len(raw) == len(BEAM_PARAMETER_NAMES):
            raw = dict(zip(BEAM_PARAMETER_NAMES, raw, strict=True))
        if not isinstance(raw, Mapping):
            raise RewardSpecError("weights", f"must map beam parameters to weights, got {self.weights!r}")
        weights = {}
        for name, value in raw.items():
            key = f"weights.{name}"
            if name not in BEAM_PARAMETER_NAMES:
                raise RewardSpecError(key, f"unknown term; the terms are {', '.join(BEAM_PARAMETER_NAMES)}")
            value = _number(key, value)
            if not 0.0 <= value <= MAX_WEIGHT:
                raise RewardSpecError(
                    key, f"must be from 0 to {MAX_WEIGHT:g} (a negative weight rewards error), got {value!r}"
                )
            weights[name] = value
        object.__setattr__(self, "weights", tuple(weights.get(n, 0.0) for n in BEAM_PARAMETER_NAMES))
        checks = {
            "pixel_weight": (0.0, MAX_WEIGHT, "must be from 0 to {hi:g}"),
            "time_reward": (-MAX_WEIGHT, MAX_WEIGHT, "must be from {lo:g} to {hi:g}"),
            "off_screen_penalty": (-MAX_WEIGHT, 0.0, "must be from {lo:g} to 0 (it is a penalty)"),
            "success_bonus": (0.0, MAX_WEIGHT, "must be from 0 to {hi:g}"),
        }
        for key, (lo, hi, message) in checks.items():
            value = _number(key, getattr(self, key))
            if not lo <= value <= hi:
                raise RewardSpecError(key, message.format(lo=lo, hi=hi) + f", got {value!r}")
            object.__setattr__(self, key, value)
        if not self.uses_objective and self.pixel_weight == 0.0:
            raise RewardSpecError(
                "weights", "every weight is 0 and pixel_weight is 0: the reward would not depend on the beam"
            )

    # --- plain data ------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Any) -> RewardSpec:
        """Build from plain data (e.g. safe YAML); unknown keys raise :class:`RewardSpecError`."""
        if not isinstance(data, Mapping):
            raise RewardSpecError("reward", f"must be a mapping of keys to values, got {type(data).__name__}")
        allowed = [f for f in cls.__dataclass_fields__]
        unknown = sorted(set(map(str, data)) - set(allowed))
        if unknown:
            raise RewardSpecError(unknown[0], f"unknown key; allowed keys are: {', '.join(allowed)}")
        return cls(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        """Plain data for safe YAML (zero weights left out)."""
        return {
            "kind": self.kind,
            "weights": {k: v for k, v in self.weight_map.items() if v},
            "form": self.form,
            "normalize": self.normalize,
            "pixel_weight": self.pixel_weight,
            "time_reward": self.time_reward,
            "off_screen_penalty": self.off_screen_penalty,
            "success_bonus": self.success_bonus,
        }

    @property
    def weight_map(self) -> dict[str, float]:
        """Weights by beam parameter name."""
        return dict(zip(BEAM_PARAMETER_NAMES, self.weights, strict=True))

    @property
    def weight_vector(self) -> np.ndarray:
        """Weights over ``[mu_x, sigma_x, mu_y, sigma_y]``, shape (4,)."""
        return np.array(self.weights, dtype=np.float64)

    @property
    def uses_objective(self) -> bool:
        return bool(self.weight_vector.any())

    # --- evaluation -------------------------------------------------------------------
    def distance(self, errors: np.ndarray) -> np.ndarray:
        """d = weighted sum of |e| (or e^2 for ``squared``) in m (m^2), shape (N,).

        :param errors: b^c - b^t (sign irrelevant) in m, shape (N, 4).
        """
        errors = np.abs(np.atleast_2d(errors))
        if self.form == "squared":
            errors = errors**2
        w = self.weight_vector
        used = w != 0
        # Column sum (not a dot product) so the presets reproduce envlib.rewards bit for bit.
        return (errors[:, used] * w[used]).sum(axis=1)

    def objective(self, distance: np.ndarray) -> np.ndarray:
        """O from d: d itself, or ln(d + eps) for the log form, shape (N,)."""
        if self.form == "log":
            return np.log(distance + LOG_EPSILON)
        return distance

    def scaled(self, objective: np.ndarray, objective_0: np.ndarray, difference: bool = False) -> np.ndarray:
        """Ô: normalised by O_0 if ``normalize``, else in mm (mm^2) units, shape (N,).

        :param difference: ``objective`` is a difference of two objectives (O_0 cancels
            in the log form).
        """
        if not self.normalize:
            return objective * _UNIT_SCALE[self.form]
        if self.form == "log":
            return objective if difference else objective - objective_0
        return objective / np.maximum(objective_0, MIN_OBJECTIVE_0 ** (2 if self.form == "squared" else 1))

    def parts(
        self,
        *,
        errors: np.ndarray,
        previous_errors: np.ndarray,
        errors_0: np.ndarray,
        pixel_sum: np.ndarray,
        on_screen: np.ndarray,
        within_thresholds: np.ndarray,
    ) -> dict[str, np.ndarray]:
        """Each term of the reward for a batch, shapes (N,); the reward is their sum.

        :param errors: errors b^c - b^t now, (N, 4) in m.
        :param previous_errors: errors one step before, (N, 4).
        :param errors_0: errors right after reset, (N, 4).
        :param pixel_sum: sum of the screen's pixels (fraction of the beam on it), (N,).
        :param on_screen: whether each beam centre is on the screen, (N,) bool.
        :param within_thresholds: whether every configured threshold holds, (N,) bool;
            all False when no threshold is configured.
        """
        n = len(pixel_sum)
        out: dict[str, np.ndarray] = {}
        if self.uses_objective:
            o0 = self.objective(self.distance(errors_0))
            now = self.objective(self.distance(errors))
            if self.kind == "negative_objective":
                out["objective"] = -self.scaled(now, o0)
            else:
                previous = self.objective(self.distance(previous_errors))
                out["objective"] = self.scaled(previous - now, o0, difference=True)
        if self.pixel_weight:
            out["sum_of_pixels"] = -self.pixel_weight * np.asarray(pixel_sum, dtype=np.float64)
        if self.time_reward:
            out["time"] = np.full(n, self.time_reward)
        if self.off_screen_penalty:
            out["off_screen"] = np.where(on_screen, 0.0, self.off_screen_penalty)
        if self.success_bonus:
            out["success"] = np.where(within_thresholds, self.success_bonus, 0.0)
        return out

    def reward(self, **state: np.ndarray) -> np.ndarray:
        """Sum of :meth:`parts` (same keywords), shape (N,)."""
        parts = self.parts(**state)
        return np.sum(list(parts.values()), axis=0) if parts else np.zeros(len(state["pixel_sum"]))

    # --- formula ---------------------------------------------------------------------
    def latex(self) -> str:
        """The reward as LaTeX, with the weights filled in: :meth:`latex_lines` joined by ``\\\\``."""
        return r" \\ ".join(self.latex_lines())

    def latex_lines(self) -> list[str]:
        """The reward's definition as LaTeX, one equation per line: d, Ô_j (if any terms), r_j."""
        terms = []
        for name, w in self.weight_map.items():
            if not w:
                continue
            sym = _SYMBOL[name]
            err = rf"|{sym}^{{(c)}} - {sym}^{{(t)}}|" + ("^2" if self.form == "squared" else "")
            terms.append(err if w == 1 else rf"{w:g}\,{err}")
        lines = []
        if terms:
            d = " + ".join(terms)
            lines.append(rf"d = {d}")
            if self.form == "log":
                o = r"\ln(d_j/d_0)" if self.normalize else r"\ln(d_j/\mathrm{m} + 10^{-6})"
            else:
                o = (
                    r"d_j / d_0"
                    if self.normalize
                    else (r"d_j\ [\mathrm{mm}]" if self.form == "absolute" else r"d_j\ [\mathrm{mm}^2]")
                )
            lines.append(rf"\hat{{O}}_j = {o}")
        r = []
        if terms:
            r.append(r"-\hat{O}_j" if self.kind == "negative_objective" else r"(\hat{O}_{j-1} - \hat{O}_j)")
        if self.pixel_weight:
            w = "" if self.pixel_weight == 1 else rf"{self.pixel_weight:g}\,"
            r.append(rf"- {w}\sum_\text{{pixels}} \text{{pixel value}}_j")
        if self.time_reward:
            r.append(f"{self.time_reward:+g}")
        if self.off_screen_penalty:
            r.append(rf"{self.off_screen_penalty:+g}\,[\text{{off screen}}]")
        if self.success_bonus:
            r.append(rf"+{self.success_bonus:g}\,[\text{{within thresholds}}]")
        lines.append("r_j = " + " ".join(r).replace("+ -", "- ").lstrip("+ "))
        return lines


def preset(mode: str, terms: Sequence[str] = ("sigma_x", "sigma_y"), time_reward: float = 0.0) -> RewardSpec:
    """The spec of one of the tutorial's reward modes.

    :param mode: ``negative_objective``, ``objective_improvement`` or ``sum_of_pixels``.
    :param terms: beam parameters in the objective (weight 1 each).
    :param time_reward: added every step.
    """
    if mode == "sum_of_pixels":
        return RewardSpec(weights={}, pixel_weight=1.0, time_reward=time_reward)
    if mode in REWARD_KINDS:
        return RewardSpec(kind=mode, weights={t: 1.0 for t in terms}, time_reward=time_reward)
    raise RewardSpecError(
        "reward_mode", f"unknown preset {mode!r}; allowed: negative_objective, objective_improvement, sum_of_pixels"
    )
