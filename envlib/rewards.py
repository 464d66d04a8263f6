"""Reward functions of the ARES EA task, one pure function per reward mode.

Notation: b = ``[mu_x, sigma_x, mu_y, sigma_y]`` on the screen in m, c = current,
t = target, j = step index, 0 = right after reset. All functions work on batches:
arrays of shape (N,) in, shape (N,) out.

The objective sums the absolute errors of the chosen beam parameters only
(:data:`FOCUS_TERMS` for the tutorial's focusing-only agents, :data:`ALL_TERMS` for
position and focus):

    obj = sum_{i in terms} |b_i^c - b_i^t|     [m]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from envlib.beamline import BEAM_PARAMETER_NAMES

REWARD_MODES = ("negative_objective", "objective_improvement", "sum_of_pixels")
ALL_TERMS = BEAM_PARAMETER_NAMES
FOCUS_TERMS = ("sigma_x", "sigma_y")
#: obj_0 below this (m) is taken as this, so a reset onto the target cannot divide by 0.
MIN_OBJECTIVE_0 = 1e-12

_LATEX_SYMBOLS = {"mu_x": r"\mu_x", "sigma_x": r"\sigma_x", "mu_y": r"\mu_y", "sigma_y": r"\sigma_y"}


def term_mask(terms: Sequence[str]) -> np.ndarray:
    """Boolean mask over ``[mu_x, sigma_x, mu_y, sigma_y]`` for the given term names, shape (4,)."""
    unknown = [t for t in terms if t not in BEAM_PARAMETER_NAMES]
    if unknown or not terms:
        raise ValueError(
            f"objective terms must be a non-empty subset of {list(BEAM_PARAMETER_NAMES)}, got {list(terms)}"
        )
    return np.array([name in terms for name in BEAM_PARAMETER_NAMES])


def beam_errors(beam: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Absolute error of each beam parameter in m, shape (N, 4)."""
    return np.abs(np.atleast_2d(beam) - np.atleast_2d(target))


def objective(beam: np.ndarray, target: np.ndarray, terms: Sequence[str] = FOCUS_TERMS) -> np.ndarray:
    """obj = sum of |b^c - b^t| over ``terms``, in m, shape (N,)."""
    return beam_errors(beam, target)[:, term_mask(terms)].sum(axis=1)


def mae_focus(beam: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Tutorial metric without position: (|sigma_x error| + |sigma_y error|) / 2 in m, shape (N,)."""
    return beam_errors(beam, target)[:, [1, 3]].mean(axis=1)


def mae_all(beam: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Tutorial metric with ``include_position=True``: mean of all four errors in m, shape (N,)."""
    return beam_errors(beam, target).mean(axis=1)


def _safe_objective_0(objective_0: np.ndarray) -> np.ndarray:
    return np.maximum(objective_0, MIN_OBJECTIVE_0)


def negative_objective(objective: np.ndarray, objective_0: np.ndarray) -> np.ndarray:
    """r = -obj_j / obj_0. Dimensionless, <= 0; -1 at the reset state, 0 on target."""
    return -objective / _safe_objective_0(objective_0)


def objective_improvement(
    previous_objective: np.ndarray, objective: np.ndarray, objective_0: np.ndarray
) -> np.ndarray:
    """r = (obj_{j-1} - obj_j) / obj_0. Positive when the step brought the beam closer.

    Summed over an episode it telescopes to (obj_0 - obj_final) / obj_0.
    """
    return (previous_objective - objective) / _safe_objective_0(objective_0)


def sum_of_pixels(pixel_sum: np.ndarray) -> np.ndarray:
    """r = -(sum of all pixel values of the screen image).

    With pixel values as fractions of the beam's charge (see :mod:`envlib.screen`) this is
    minus the fraction of the beam on the screen: -1 whenever the beam is fully on it,
    whatever its size. The only way to gain is to push the beam off the screen.
    """
    return -np.asarray(pixel_sum, dtype=np.float64)


def mode_reward(
    mode: str,
    *,
    objective: np.ndarray,
    previous_objective: np.ndarray,
    objective_0: np.ndarray,
    pixel_sum: np.ndarray,
) -> np.ndarray:
    """The reward of ``mode`` without the time term, shape (N,)."""
    if mode == "negative_objective":
        return negative_objective(objective, objective_0)
    if mode == "objective_improvement":
        return objective_improvement(previous_objective, objective, objective_0)
    if mode == "sum_of_pixels":
        return sum_of_pixels(pixel_sum)
    raise ValueError(f"unknown reward_mode {mode!r}; allowed: {', '.join(REWARD_MODES)}")


def all_mode_rewards(**state: np.ndarray) -> dict[str, np.ndarray]:
    """Every reward mode at one state (keywords as :func:`mode_reward`), time term excluded."""
    return {mode: mode_reward(mode, **state) for mode in REWARD_MODES}


def objective_latex(terms: Sequence[str]) -> str:
    """LaTeX of the objective over ``terms``, e.g. ``|\\sigma_x^c - \\sigma_x^t| + ...``.

    Each term is a group: inline math wraps between the terms, never inside one."""
    parts = [
        rf"{{|{_LATEX_SYMBOLS[t]}^{{(c)}} - {_LATEX_SYMBOLS[t]}^{{(t)}}|}}" for t in BEAM_PARAMETER_NAMES if t in terms
    ]
    return r"\mathrm{obj} = " + " + ".join(parts)


def reward_latex(mode: str, time_reward: float = 0.0) -> str:
    """LaTeX of the reward of ``mode`` plus its time term."""
    base = {
        "negative_objective": r"r_j = -\,\mathrm{obj}_j / \mathrm{obj}_0",
        "objective_improvement": r"r_j = {(\mathrm{obj}_{j-1} - \mathrm{obj}_j) / \mathrm{obj}_0}",
        "sum_of_pixels": r"r_j = -\sum_{\text{pixels}} \text{pixel value}_j",
    }
    if mode not in base:
        raise ValueError(f"unknown reward_mode {mode!r}; allowed: {', '.join(REWARD_MODES)}")
    if time_reward:
        return base[mode] + rf" {'+' if time_reward > 0 else '-'} {abs(time_reward):g}"
    return base[mode]
