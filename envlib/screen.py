"""The diagnostic screen AREABSCR1: images, pixel sums and rendering from beam moments.

The image of a Gaussian beam is computed per pixel as the integral of the beam's
transverse density over that pixel (the beamline has no x-y coupling, so the density
factorises into an x and a y part). Pixel values are fractions of the beam's charge, so
the sum of all pixels is the fraction of the beam that hits the screen: 1 for a beam fully
on the screen, whatever its size. Arrays are indexed ``[row, column]`` with row 0 at the
top (+y up) and column 0 at the left (-x): ``image[::-1]`` is Cheetah's orientation.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.special import erf as _erf

from envlib.beamline import SCREEN_BINNING, SCREEN_HALF_SIZE, SCREEN_RESOLUTION

_SQRT2 = np.sqrt(2.0)
#: Smallest sigma used in density integrals, in m, so a zero-size beam stays finite.
MIN_SIGMA = 1e-9


@lru_cache(maxsize=8)
def pixel_edges(binning: int = SCREEN_BINNING) -> tuple[np.ndarray, np.ndarray]:
    """Pixel edges of the binned screen in m.

    :param binning: camera binning (4 gives 612 x 510 pixels).
    :return: ``(x_edges, y_edges)``, shapes (W + 1,) and (H + 1,); x ascending (left to
        right), y descending (top to bottom).
    """
    width = SCREEN_RESOLUTION[0] // binning
    height = SCREEN_RESOLUTION[1] // binning
    x = np.linspace(-SCREEN_HALF_SIZE[0], SCREEN_HALF_SIZE[0], width + 1)
    y = np.linspace(SCREEN_HALF_SIZE[1], -SCREEN_HALF_SIZE[1], height + 1)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def _cdf(edges: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    sigma = np.maximum(sigma, MIN_SIGMA)
    return 0.5 * (1.0 + _erf((edges[None, :] - mu[:, None]) / (_SQRT2 * sigma[:, None])))


def beam_profiles(beam: np.ndarray, binning: int = SCREEN_BINNING) -> tuple[np.ndarray, np.ndarray]:
    """Fraction of the beam in each pixel column and row.

    :param beam: ``[mu_x, sigma_x, mu_y, sigma_y]`` in m, shape (N, 4).
    :return: ``(px, py)`` of shapes (N, W) and (N, H); py runs top to bottom.
    """
    beam = np.atleast_2d(beam)
    x_edges, y_edges = pixel_edges(binning)
    px = np.diff(_cdf(x_edges, beam[:, 0], beam[:, 1]), axis=1)
    py = -np.diff(_cdf(y_edges, beam[:, 2], beam[:, 3]), axis=1)
    return px, py


def beam_image(beam: np.ndarray, binning: int = SCREEN_BINNING) -> np.ndarray:
    """Screen image of one beam: fraction of the charge in each pixel.

    :param beam: ``[mu_x, sigma_x, mu_y, sigma_y]`` in m, shape (4,).
    :param binning: camera binning; 4 gives an image of shape (510, 612).
    :return: image, shape (H, W), row 0 at the top (+y).
    """
    px, py = beam_profiles(np.asarray(beam, dtype=np.float64)[None, :], binning)
    return np.outer(py[0], px[0])


def beam_peak(beam: np.ndarray, binning: int = SCREEN_BINNING) -> float:
    """The brightest pixel the whole beam gives on a screen without edges, as a fraction of
    its charge: the pixel (of the screen's grid, extended beyond it) that holds its centre.

    :param beam: ``[mu_x, sigma_x, mu_y, sigma_y]`` in m, shape (4,).
    """
    x_edges, y_edges = pixel_edges(binning)
    peak = 1.0
    for mu, sigma, edges in ((beam[0], beam[1], x_edges), (beam[2], beam[3], y_edges[::-1])):
        width = edges[1] - edges[0]
        low = edges[0] + np.floor((mu - edges[0]) / width) * width
        peak *= float(np.diff(_cdf(np.array([low, low + width]), np.array([mu]), np.array([sigma])))[0, 0])
    return peak


def pixel_sum(beam: np.ndarray) -> np.ndarray:
    """Sum of all pixel values of the screen image, for a batch of beams.

    Equal to ``beam_image(b).sum()`` (the pixel integrals add up to the integral over the
    screen) but computed in O(1) per beam.

    :param beam: ``[mu_x, sigma_x, mu_y, sigma_y]`` in m, shape (N, 4).
    :return: fraction of each beam on the screen, shape (N,), in [0, 1].
    """
    beam = np.atleast_2d(beam)
    sx = np.maximum(beam[:, 1], MIN_SIGMA) * _SQRT2
    sy = np.maximum(beam[:, 3], MIN_SIGMA) * _SQRT2
    hx, hy = SCREEN_HALF_SIZE
    fx = 0.5 * (_erf((hx - beam[:, 0]) / sx) - _erf((-hx - beam[:, 0]) / sx))
    fy = 0.5 * (_erf((hy - beam[:, 2]) / sy) - _erf((-hy - beam[:, 2]) / sy))
    return fx * fy


def is_on_screen(beam: np.ndarray) -> np.ndarray:
    """Whether each beam's centre lies on the screen (|mu_x|, |mu_y| within half its size).

    :param beam: shape (N, 4) in m.
    :return: bool array, shape (N,).
    """
    beam = np.atleast_2d(beam)
    return (np.abs(beam[:, 0]) <= SCREEN_HALF_SIZE[0]) & (np.abs(beam[:, 2]) <= SCREEN_HALF_SIZE[1])


def ellipse_points(
    mu_x: float, sigma_x: float, mu_y: float, sigma_y: float, n: int = 90
) -> tuple[np.ndarray, np.ndarray]:
    """Points of the 1-sigma ellipse of a beam, in m, shapes (n + 1,) each (closed)."""
    t = np.linspace(0.0, 2.0 * np.pi, n + 1)
    return mu_x + sigma_x * np.cos(t), mu_y + sigma_y * np.sin(t)


@lru_cache(maxsize=1)
def _colormap() -> np.ndarray:
    # Viridis anchors (matplotlib's, 9 stops), interpolated to 256 RGB entries.
    anchors = np.array(
        [
            [68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
            [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37],
        ],
        dtype=np.float64,
    )  # fmt: skip
    pos = np.linspace(0, 1, len(anchors))
    grid = np.linspace(0, 1, 256)
    lut = np.stack([np.interp(grid, pos, anchors[:, c]) for c in range(3)], axis=1)
    return lut.astype(np.uint8)


TARGET_COLOR = np.array([0, 160, 255], dtype=np.uint8)
BEAM_COLOR = np.array([255, 60, 60], dtype=np.uint8)


def _draw_ellipse(img: np.ndarray, params: np.ndarray, color: np.ndarray, binning: int) -> None:
    h, w = img.shape[:2]
    x_edges, y_edges = pixel_edges(binning)
    dx = x_edges[1] - x_edges[0]
    dy = y_edges[0] - y_edges[1]
    xs, ys = ellipse_points(*params, n=720)
    cols = np.floor((xs - x_edges[0]) / dx).astype(np.int64)
    rows = np.floor((y_edges[0] - ys) / dy).astype(np.int64)
    for dr, dc in ((0, 0), (1, 0), (0, 1), (1, 1)):  # 2 px thick line
        r, c = rows + dr, cols + dc
        ok = (r >= 0) & (r < h) & (c >= 0) & (c < w)
        img[r[ok], c[ok]] = color


def render_rgb(beam: np.ndarray, target: np.ndarray, binning: int = SCREEN_BINNING) -> np.ndarray:
    """The screen as an RGB picture: beam image plus beam (red) and target (blue) ellipses.

    :param beam: current ``[mu_x, sigma_x, mu_y, sigma_y]`` in m, shape (4,).
    :param target: target beam, same layout.
    :return: uint8 array of shape (H, W, 3); +x right, +y up.
    """
    px, py = beam_profiles(np.asarray(beam, dtype=np.float64)[None, :], binning)
    # The image is the outer product of the two profiles, so its peak is the product of
    # theirs. Scaling before the product, in float32, and one np.take from the colour
    # table cost ~1 ms instead of ~4 ms for a float64 image and fancy indexing.
    peak = px[0].max() * py[0].max()
    scale = 255.0 / peak if peak > 0 else 0.0
    levels = np.outer((py[0] * scale).astype(np.float32), px[0].astype(np.float32)).astype(np.uint8)
    rgb = np.take(_colormap(), levels, axis=0)
    _draw_ellipse(rgb, np.asarray(target, dtype=np.float64), TARGET_COLOR, binning)
    _draw_ellipse(rgb, np.asarray(beam, dtype=np.float64), BEAM_COLOR, binning)
    return rgb
