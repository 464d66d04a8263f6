"""Colour vision deficiency and contrast measures for tests of the app's colours.

Machado, Oliveira & Fernandes (2009) simulation at severity 1.0 (in linear sRGB), CIE76
distance in CIELAB (D65), and WCAG 2 contrast ratio.
"""

from __future__ import annotations

import numpy as np

MACHADO = {
    "normal": np.eye(3),
    "deuteranopia": np.array(
        [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]]
    ),
    "protanopia": np.array(
        [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]]
    ),
}
_XYZ = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
_WHITE = np.array([0.95047, 1.0, 1.08883])


def rgb(color: str) -> np.ndarray:
    """``#rrggbb`` or ``rgb(r,g,b)`` as 0-255 floats."""
    if color.startswith("rgb"):
        return np.array([float(v) for v in color[color.index("(") + 1 : -1].split(",")[:3]])
    h = color.lstrip("#")
    return np.array([int(h[i : i + 2], 16) for i in (0, 2, 4)], dtype=float)


def linear(values: np.ndarray) -> np.ndarray:
    c = np.asarray(values, dtype=float) / 255
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def lab(color: str, vision: str = "normal") -> np.ndarray:
    """CIELAB of ``color`` as seen with ``vision`` (a key of :data:`MACHADO`)."""
    xyz = _XYZ @ np.clip(MACHADO[vision] @ linear(rgb(color)), 0, 1) / _WHITE
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def distance(a: str, b: str, vision: str = "normal") -> float:
    """CIE76 ΔE between two colours as seen with ``vision``."""
    return float(np.linalg.norm(lab(a, vision) - lab(b, vision)))


def luminance(color: str) -> float:
    return float(np.array([0.2126, 0.7152, 0.0722]) @ linear(rgb(color)))


def contrast(a: str, b: str = "#ffffff") -> float:
    """WCAG 2 contrast ratio of two colours (≥ 4.5 for text, ≥ 3 for lines and large text)."""
    dark, light = sorted((luminance(a), luminance(b)))
    return (light + 0.05) / (dark + 0.05)


def simulated(color: str, vision: str) -> str:
    """``color`` as seen with ``vision``, as ``#rrggbb``."""
    lin = np.clip(MACHADO[vision] @ linear(rgb(color)), 0, 1)
    srgb = np.where(lin <= 0.0031308, lin * 12.92, 1.055 * lin ** (1 / 2.4) - 0.055)
    return "#" + "".join(f"{round(v * 255):02x}" for v in srgb)
