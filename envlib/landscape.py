"""Reward landscapes: the reward of one step over a grid of two magnets' settings.

A landscape answers "where would one step to this setting put the reward?" for every point
of a grid, the other magnets held at their current values. The step starts from the
previous magnets (by default the current ones): with the Playground's sliders moved but not
applied, that is where the environment is, so the landscape at the sliders' setting is the
reward the step there would get. It is computed with one
broadcast Cheetah call (:meth:`BeamlineSimulator.track_grid`) and the reward spec's own
terms, so it is exactly what the environment would return for that step.

The two parts are separate: :func:`landscape_grid` and :func:`cut_grid` track the beams
(:class:`GridBeams`, the costly part), :func:`landscape_of` applies a reward to them (numpy
only), so trying another reward on the same state tracks nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from envlib.beamline import MAGNET_LABELS, MAGNET_LIMITS, BeamlineSimulator
from envlib.reward_spec import RewardSpec
from envlib.screen import is_on_screen, pixel_sum
from envlib.task import EpisodeStart

#: Largest grid side: 400 x 400 = 160k tracked beams, about a second of CPU.
MAX_GRID = 400


@dataclass(frozen=True)
class Landscape:
    """Reward over a grid of two magnets.

    :param x_index: magnet along x, index into ``[Q1, Q2, CV, Q3, CH]``.
    :param y_index: magnet along y.
    :param x_values: settings along x (1/m^2 or rad), shape (nx,).
    :param y_values: settings along y, shape (ny,).
    :param reward: reward of one step to each grid point, shape (ny, nx).
    :param current: current settings ``(x, y)`` of the two magnets.
    :param current_reward: reward of a step that keeps the current setting.
    """

    x_index: int
    y_index: int
    x_values: np.ndarray
    y_values: np.ndarray
    reward: np.ndarray
    current: tuple[float, float]
    current_reward: float

    @property
    def best(self) -> tuple[float, float, float]:
        """``(x, y, reward)`` of the grid's best point (the first one on ties)."""
        row, col = np.unravel_index(int(np.argmax(self.reward)), self.reward.shape)
        return float(self.x_values[col]), float(self.y_values[row]), float(self.reward[row, col])

    @property
    def spread(self) -> float:
        """max - min of the reward over the grid: near 0 means a flat, uninformative landscape."""
        return float(self.reward.max() - self.reward.min())

    @property
    def x_label(self) -> str:
        return MAGNET_LABELS[self.x_index]

    @property
    def y_label(self) -> str:
        return MAGNET_LABELS[self.y_index]


@dataclass(frozen=True)
class GridBeams:
    """The beams on the screen for one step to every point of a grid of two magnets' settings.

    Everything a reward needs and nothing that depends on the reward, so one tracking serves
    any number of reward specs (:func:`landscape_of`).

    :param x_index: magnet along x, index into ``[Q1, Q2, CV, Q3, CH]``.
    :param y_index: magnet along y.
    :param x_values: settings along x (1/m^2 or rad), shape (nx,).
    :param y_values: settings along y, shape (ny,).
    :param beams: ``[mu_x, sigma_x, mu_y, sigma_y]`` on the screen in m, shape (ny, nx, 4).
    :param pixel_sums: fraction of each beam on the screen, shape (ny, nx).
    :param on_screen: whether each beam's centre is on the screen, shape (ny, nx).
    :param target: the target beam in m, shape (4,).
    :param reset_beam: the beam at the episode's reset (defines obj_0), shape (4,).
    :param previous_beam: the beam where the step starts (the previous objective), shape (4,).
    :param current_beam: the beam at the current magnets (the grid's ``current`` point), shape (4,).
    :param current: current settings ``(x, y)`` of the two magnets.
    """

    x_index: int
    y_index: int
    x_values: np.ndarray
    y_values: np.ndarray
    beams: np.ndarray
    pixel_sums: np.ndarray
    on_screen: np.ndarray
    target: np.ndarray
    reset_beam: np.ndarray
    previous_beam: np.ndarray
    current_beam: np.ndarray
    current: tuple[float, float]


def track_grid_beams(
    start: EpisodeStart,
    magnets: Sequence[float],
    simulator: BeamlineSimulator,
    x_index: int,
    x_values: np.ndarray,
    y_index: int,
    y_values: np.ndarray,
    previous_magnets: Sequence[float] | None = None,
) -> GridBeams:
    """Track one step to every point of the grid ``y_values`` x ``x_values``.

    One broadcast Cheetah call for the grid (len(y_values) * len(x_values) beams) and one
    for the reset, previous and current states.

    :param start: the episode's initial state (target, incoming beam, misalignments and the
        magnets at reset).
    :param magnets: current ``[Q1, Q2, CV, Q3, CH]``; the other three magnets stay here.
    :param previous_magnets: where the step starts (the previous objective); default ``magnets``.
    """
    magnets = np.asarray(magnets, dtype=np.float64).reshape(5)
    previous = magnets if previous_magnets is None else np.asarray(previous_magnets, dtype=np.float64).reshape(5)
    xs = np.asarray(x_values, dtype=np.float64).reshape(-1)
    ys = np.asarray(y_values, dtype=np.float64).reshape(-1)
    ref = simulator.track(
        np.stack([start.magnets, previous, magnets]),
        np.tile(start.incoming, (3, 1)),
        np.tile(start.misalignments, (3, 1)),
    )
    beams = simulator.track_grid(magnets, start.incoming, start.misalignments, x_index, xs, y_index, ys)
    flat = beams.reshape(-1, 4)
    return GridBeams(
        x_index=x_index,
        y_index=y_index,
        x_values=xs,
        y_values=ys,
        beams=beams,
        pixel_sums=pixel_sum(flat).reshape(beams.shape[:-1]),
        on_screen=is_on_screen(flat).reshape(beams.shape[:-1]),
        target=np.asarray(start.target, dtype=np.float64),
        reset_beam=ref[0],
        previous_beam=ref[1],
        current_beam=ref[2],
        current=(float(magnets[x_index]), float(magnets[y_index])),
    )


def landscape_of(spec: RewardSpec, grid: GridBeams, thresholds: Sequence[float | None] = (None,) * 4) -> Landscape:
    """The reward ``spec`` gives each point of ``grid`` (no tracking: numpy on the grid's beams).

    :param thresholds: success thresholds on |mu_x|, |sigma_x|, |mu_y|, |sigma_y| errors in
        m (None: not checked), for the spec's success bonus.
    """
    th = np.array([np.inf if t is None else t for t in thresholds], dtype=np.float64)
    errors_0 = grid.reset_beam - grid.target
    previous = grid.previous_beam - grid.target

    def rewards(beams: np.ndarray, pixel_sums: np.ndarray, on_screen: np.ndarray) -> np.ndarray:
        errors = beams - grid.target
        n = len(errors)
        within = np.all(np.abs(errors) <= th, axis=1) if np.isfinite(th).any() else np.zeros(n, bool)
        return spec.reward(
            errors=errors,
            previous_errors=np.broadcast_to(previous, (n, 4)),
            errors_0=np.broadcast_to(errors_0, (n, 4)),
            pixel_sum=pixel_sums,
            on_screen=on_screen,
            within_thresholds=within,
        )

    shape = grid.beams.shape[:-1]
    grid_rewards = rewards(grid.beams.reshape(-1, 4), grid.pixel_sums.reshape(-1), grid.on_screen.reshape(-1))
    here_beam = grid.current_beam.reshape(1, 4)
    here = rewards(here_beam, pixel_sum(here_beam), is_on_screen(here_beam))[0]
    return Landscape(
        x_index=grid.x_index,
        y_index=grid.y_index,
        x_values=grid.x_values,
        y_values=grid.y_values,
        reward=grid_rewards.reshape(shape),
        current=grid.current,
        current_reward=float(here),
    )


def landscape_grid(
    start: EpisodeStart,
    magnets: Sequence[float],
    simulator: BeamlineSimulator,
    *,
    x_index: int = 0,
    y_index: int = 1,
    n: int = 100,
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] | None = None,
    previous_magnets: Sequence[float] | None = None,
) -> GridBeams:
    """The beams of an n x n grid over two magnets (default: their full ranges), see :func:`reward_landscape`."""
    _check_points(n)
    x_range = x_range or (-MAGNET_LIMITS[x_index], MAGNET_LIMITS[x_index])
    y_range = y_range or (-MAGNET_LIMITS[y_index], MAGNET_LIMITS[y_index])
    xs, ys = np.linspace(*x_range, n), np.linspace(*y_range, n)
    return track_grid_beams(start, magnets, simulator, x_index, xs, y_index, ys, previous_magnets)


def cut_grid(
    start: EpisodeStart,
    magnets: Sequence[float],
    simulator: BeamlineSimulator,
    *,
    index: int = 0,
    n: int = 400,
    previous_magnets: Sequence[float] | None = None,
) -> GridBeams:
    """The beams of a one-dimensional cut: ``index`` sweeps its full range in ``n`` points, the
    other magnets held at ``magnets`` (a 1 x n grid, so ``n`` beams)."""
    _check_points(n)
    other = 1 if index == 0 else 0
    magnets = np.asarray(magnets, dtype=np.float64).reshape(5)
    xs = np.linspace(-MAGNET_LIMITS[index], MAGNET_LIMITS[index], n)
    return track_grid_beams(start, magnets, simulator, index, xs, other, magnets[other : other + 1], previous_magnets)


def _check_points(n: int) -> None:
    if not 2 <= n <= MAX_GRID:
        raise ValueError(f"n must be from 2 to {MAX_GRID}, got {n}")


def reward_landscape(
    spec: RewardSpec,
    start: EpisodeStart,
    magnets: Sequence[float],
    simulator: BeamlineSimulator,
    *,
    x_index: int = 0,
    y_index: int = 1,
    n: int = 100,
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] | None = None,
    thresholds: Sequence[float | None] = (None, None, None, None),
    previous_magnets: Sequence[float] | None = None,
) -> Landscape:
    """The reward of one step to every point of an n x n grid.

    :param spec: the reward.
    :param start: the episode's initial state (target, incoming beam, misalignments and the
        magnets at reset, which define obj_0).
    :param magnets: current ``[Q1, Q2, CV, Q3, CH]``; the other magnets stay here.
    :param simulator: Cheetah beamline.
    :param x_index: magnet along x (default Q1).
    :param y_index: magnet along y (default Q2).
    :param n: grid points per axis, 2 to :data:`MAX_GRID`.
    :param x_range: ``(low, high)`` along x; default the magnet's full range.
    :param y_range: ``(low, high)`` along y; default the magnet's full range.
    :param thresholds: success thresholds on |mu_x|, |sigma_x|, |mu_y|, |sigma_y| errors in
        m (None: not checked), for the spec's success bonus.
    :param previous_magnets: where the step starts: the previous objective (for
        ``objective_improvement``) is the one at this setting; default ``magnets``.
    """
    grid = landscape_grid(
        start, magnets, simulator, x_index=x_index, y_index=y_index, n=n, x_range=x_range, y_range=y_range,
        previous_magnets=previous_magnets,
    )  # fmt: skip
    return landscape_of(spec, grid, thresholds)


def reward_cut(
    spec: RewardSpec,
    start: EpisodeStart,
    magnets: Sequence[float],
    simulator: BeamlineSimulator,
    *,
    index: int = 0,
    n: int = 400,
    thresholds: Sequence[float | None] = (None, None, None, None),
) -> tuple[np.ndarray, np.ndarray]:
    """One-dimensional cut: the reward of one step as one magnet sweeps its range.

    Tracks ``n`` beams, the other magnets held at ``magnets``.

    :param index: the magnet that sweeps, index into ``[Q1, Q2, CV, Q3, CH]``.
    :param n: points along its full range, 2 to :data:`MAX_GRID`.
    :return: ``(values, reward)``, shapes (n,) each.
    """
    land = landscape_of(spec, cut_grid(start, magnets, simulator, index=index, n=n), thresholds)
    return land.x_values, land.reward[0]


def reward_parts_at(
    spec: RewardSpec,
    start: EpisodeStart,
    previous_magnets: Sequence[float],
    magnets: Sequence[float],
    simulator: BeamlineSimulator,
    *,
    thresholds: Sequence[float | None] = (None, None, None, None),
) -> dict[str, float]:
    """Each term of the reward of one step from ``previous_magnets`` to ``magnets``.

    :param start: the episode's initial state (defines obj_0).
    :return: term name -> value; the reward is their sum.
    """
    rows = np.stack([start.magnets, np.asarray(previous_magnets, float), np.asarray(magnets, float)])
    beams = simulator.track(rows, np.tile(start.incoming, (3, 1)), np.tile(start.misalignments, (3, 1)))
    errors = beams - start.target
    th = np.array([np.inf if t is None else t for t in thresholds], dtype=np.float64)
    within = np.all(np.abs(errors[2:]) <= th, axis=1) if np.isfinite(th).any() else np.zeros(1, bool)
    parts = spec.parts(
        errors=errors[2:], previous_errors=errors[1:2], errors_0=errors[0:1],
        pixel_sum=pixel_sum(beams[2:]), on_screen=is_on_screen(beams[2:]), within_thresholds=within,
    )  # fmt: skip
    return {name: float(value[0]) for name, value in parts.items()}
