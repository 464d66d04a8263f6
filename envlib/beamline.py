"""The ARES Experimental Area (EA) beamline as a Cheetah segment.

All numbers come from the ARES EA reference (element names, lengths, magnet limits,
screen geometry). Magnet order everywhere in this package is ``[Q1, Q2, CV, Q3, CH]``.
"""

from __future__ import annotations

import threading

import cheetah
import numpy as np
import torch

#: Cheetah element names of the actuators, in the order ``[Q1, Q2, CV, Q3, CH]``.
MAGNET_NAMES = ("AREAMQZM1", "AREAMQZM2", "AREAMCVM1", "AREAMQZM3", "AREAMCHM1")
#: Short labels of the actuators, same order.
MAGNET_LABELS = ("Q1", "Q2", "CV", "Q3", "CH")
#: Units of the actuators, same order: quadrupole strength k1 in 1/m^2, corrector angle in rad.
MAGNET_UNITS = ("1/m^2", "1/m^2", "rad", "1/m^2", "rad")
#: Indices of the quadrupoles and correctors in the magnet vector.
QUADRUPOLE_INDICES = (0, 1, 3)
CORRECTOR_INDICES = (2, 4)

QUADRUPOLE_LIMIT = 72.0  # 1/m^2
CORRECTOR_LIMIT = 6.1782e-3  # rad
#: Physical limit (+-) of every magnet, shape (5,).
MAGNET_LIMITS = np.array(
    [QUADRUPOLE_LIMIT, QUADRUPOLE_LIMIT, CORRECTOR_LIMIT, QUADRUPOLE_LIMIT, CORRECTOR_LIMIT]
)
#: Largest change per step in ``action_mode="delta"``: 10 % of the limits, shape (5,).
DELTA_LIMITS = 0.1 * MAGNET_LIMITS

#: Beam parameters read on the screen, in m.
BEAM_PARAMETER_NAMES = ("mu_x", "sigma_x", "mu_y", "sigma_y")
#: Parameters of an incoming beam (energy in eV, positions in m, angles in rad).
INCOMING_BEAM_NAMES = (
    "energy", "mu_x", "mu_px", "mu_y", "mu_py",
    "sigma_x", "sigma_px", "sigma_y", "sigma_py", "sigma_tau", "sigma_p",
)  # fmt: skip
#: Units of the incoming beam's parameters, same order (sigma_p is a relative energy spread).
INCOMING_BEAM_UNITS = ("eV", "m", "rad", "m", "rad", "m", "rad", "m", "rad", "m", "1")
#: Transverse misalignments in m: Q1, Q2, Q3 and the screen, each (x, y).
MISALIGNMENT_NAMES = (
    "Q1_x", "Q1_y", "Q2_x", "Q2_y", "Q3_x", "Q3_y", "screen_x", "screen_y",
)  # fmt: skip

#: (element name, attribute) that holds each magnet's setting, order ``[Q1, Q2, CV, Q3, CH]``.
_MAGNET_ATTRIBUTES = tuple(zip(MAGNET_NAMES, ("k1", "k1", "angle", "k1", "angle"), strict=True))

SCREEN_NAME = "AREABSCR1"
#: Camera sensor (width, height) in pixels.
SCREEN_RESOLUTION = (2448, 2040)
#: Pixel (width, height) in m.
SCREEN_PIXEL_SIZE = (3.3198e-6, 2.4469e-6)
#: Binning the app shows the image at.
SCREEN_BINNING = 4
#: Half width and half height of the screen in m (about 4.06 mm by 2.50 mm).
SCREEN_HALF_SIZE = (
    SCREEN_RESOLUTION[0] * SCREEN_PIXEL_SIZE[0] / 2,
    SCREEN_RESOLUTION[1] * SCREEN_PIXEL_SIZE[1] / 2,
)

#: The EA lattice as (name, kind, length in m), upstream to downstream.
LATTICE = (
    ("AREASOLA1", "marker", 0.0),
    ("Drift_AREASOLA1", "drift", 0.17504),
    ("AREAMQZM1", "quadrupole", 0.122),
    ("Drift_AREAMQZM1", "drift", 0.428),
    ("AREAMQZM2", "quadrupole", 0.122),
    ("Drift_AREAMQZM2", "drift", 0.204),
    ("AREAMCVM1", "vertical_corrector", 0.02),
    ("Drift_AREAMCVM1", "drift", 0.204),
    ("AREAMQZM3", "quadrupole", 0.122),
    ("Drift_AREAMQZM3", "drift", 0.179),
    ("AREAMCHM1", "horizontal_corrector", 0.02),
    ("Drift_AREAMCHM1", "drift", 0.45),
    ("AREABSCR1", "screen", 0.0),
)


def build_segment(dtype: torch.dtype = torch.float64) -> cheetah.Segment:
    """Build the ARES EA segment from Cheetah elements.

    NOTE: the screen is the last element, so the segment's outgoing beam is the beam on the
    screen. :class:`BeamlineSimulator` reads it from there and applies the screen
    misalignment itself: Cheetah 0.8.4 cannot broadcast a batched screen misalignment
    against a batched ``ParameterBeam``, and an active screen clones the beam (~0.4 ms).
    The screen image is computed from the moments by :mod:`envlib.screen`.

    :param dtype: dtype of every element (float64 keeps moments exact to ~1e-12).
    :return: the segment; elements are reachable by name, e.g. ``segment.AREAMQZM1``.
    """
    kw = {"dtype": dtype}
    elements = []
    for name, kind, length in LATTICE:
        length_t = torch.tensor(length, **kw)
        if kind == "marker":
            elements.append(cheetah.Marker(name=name, **kw))
        elif kind == "drift":
            elements.append(cheetah.Drift(length_t, name=name, **kw))
        elif kind == "quadrupole":
            elements.append(cheetah.Quadrupole(length_t, name=name, **kw))
        elif kind == "vertical_corrector":
            elements.append(cheetah.VerticalCorrector(length_t, name=name, **kw))
        elif kind == "horizontal_corrector":
            elements.append(cheetah.HorizontalCorrector(length_t, name=name, **kw))
        elif kind == "screen":
            elements.append(
                cheetah.Screen(
                    resolution=SCREEN_RESOLUTION,
                    pixel_size=torch.tensor(SCREEN_PIXEL_SIZE, **kw),
                    binning=SCREEN_BINNING,
                    is_active=False,
                    name=name,
                    **kw,
                )
            )
        else:  # pragma: no cover - LATTICE is a constant
            raise ValueError(f"unknown element kind {kind!r}")
    return cheetah.Segment(elements, name="ARES_EA")


class BeamlineSimulator:
    """Track batches of incoming beams through the EA segment with one Cheetah call.

    One simulator may be shared between threads (e.g. Streamlit sessions): tracking
    holds a lock because the segment's magnet settings are set in place.

    :param dtype: dtype of the Cheetah segment and beams.
    """

    def __init__(self, dtype: torch.dtype = torch.float64) -> None:
        self.dtype = dtype
        self.segment = build_segment(dtype)
        # The marker and the inactive screen are identity maps: tracking without them gives
        # the same bits with ~9 % fewer instructions per call (valgrind, 40 beams).
        self._tracked = cheetah.Segment(
            [e for e in self.segment.elements if not isinstance(e, (cheetah.Marker, cheetah.Screen))],
            name="ARES_EA_tracked",
        )
        self._lock = threading.Lock()
        self._beam: cheetah.ParameterBeam | None = None
        self._beam_key: np.ndarray | None = None
        self._misalignment_key: np.ndarray | None = None
        self._magnet_key: np.ndarray | None = None

    def __deepcopy__(self, memo: dict) -> BeamlineSimulator:
        # A simulator is a shared, thread-safe resource, not a value: gymnasium.make()
        # deep-copies its kwargs, and gymnasium.make(..., simulator=sim) must share ``sim``.
        return self

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        # Always a copy: the segment keeps these tensors between calls (and Cheetah caches
        # maps by tensor identity), so they must not share memory with a caller's array.
        return torch.tensor(np.asarray(array, dtype=np.float64), dtype=self.dtype)

    def _incoming_beam(self, incoming: np.ndarray) -> cheetah.ParameterBeam:
        # Incoming beams change only at resets: rebuilding the beam every step costs ~0.3 ms.
        if self._beam_key is not None and np.array_equal(self._beam_key, incoming):
            return self._beam
        inc = self._tensor(incoming)
        self._beam = cheetah.ParameterBeam.from_parameters(
            energy=inc[:, 0], mu_x=inc[:, 1], mu_px=inc[:, 2], mu_y=inc[:, 3],
            mu_py=inc[:, 4], sigma_x=inc[:, 5], sigma_px=inc[:, 6], sigma_y=inc[:, 7],
            sigma_py=inc[:, 8], sigma_tau=inc[:, 9], sigma_p=inc[:, 10],
            dtype=self.dtype,
        )  # fmt: skip
        self._beam_key = incoming.copy()
        return self._beam

    def _set_misalignments(self, misalignments: np.ndarray) -> None:
        if self._misalignment_key is not None and np.array_equal(
            self._misalignment_key, misalignments
        ):
            return
        mis = self._tensor(misalignments)
        self.segment.AREAMQZM1.misalignment = mis[:, 0:2]
        self.segment.AREAMQZM2.misalignment = mis[:, 2:4]
        self.segment.AREAMQZM3.misalignment = mis[:, 4:6]
        self._misalignment_key = misalignments.copy()

    def _set_magnets(self, magnets: np.ndarray) -> None:
        # Only magnets whose settings changed get a new tensor: Cheetah caches an element's
        # map while its tensors stay the same, so a fixed corrector (quadrupole-only
        # agents) costs nothing after the first step.
        key = self._magnet_key
        same_rows = key is not None and key.shape == magnets.shape
        for j, (name, attribute) in enumerate(_MAGNET_ATTRIBUTES):
            if not (same_rows and np.array_equal(key[:, j], magnets[:, j])):
                setattr(getattr(self.segment, name), attribute, self._tensor(magnets[:, j]))
        self._magnet_key = magnets.copy()

    def track(
        self, magnets: np.ndarray, incoming: np.ndarray, misalignments: np.ndarray
    ) -> np.ndarray:
        """Track a batch and read the beam on the screen.

        :param magnets: magnet settings, shape (N, 5): k1 in 1/m^2, angles in rad.
        :param incoming: incoming beams, shape (N, 11), see :data:`INCOMING_BEAM_NAMES`.
        :param misalignments: misalignments in m, shape (N, 8), see :data:`MISALIGNMENT_NAMES`.
        :return: ``[mu_x, sigma_x, mu_y, sigma_y]`` on the screen in m, shape (N, 4),
            in the screen's frame (screen misalignment subtracted).
        """
        magnets = np.atleast_2d(np.asarray(magnets, dtype=np.float64))
        incoming = np.atleast_2d(np.asarray(incoming, dtype=np.float64))
        misalignments = np.atleast_2d(np.asarray(misalignments, dtype=np.float64))
        n = magnets.shape[0]
        if magnets.shape != (n, 5) or incoming.shape != (n, 11) or misalignments.shape != (n, 8):
            raise ValueError(
                "track() wants magnets (N, 5), incoming (N, 11) and misalignments (N, 8); "
                f"got {magnets.shape}, {incoming.shape}, {misalignments.shape}"
            )
        with self._lock, torch.no_grad():
            beam = self._incoming_beam(incoming)
            self._set_misalignments(misalignments)
            self._set_magnets(magnets)
            out_beam = self._tracked.track(beam)
            out = torch.stack(
                [out_beam.mu_x, out_beam.sigma_x, out_beam.mu_y, out_beam.sigma_y], dim=-1
            )
        out = out.numpy().astype(np.float64, copy=True).reshape(n, 4)
        out[:, 0] -= misalignments[:, 6]
        out[:, 2] -= misalignments[:, 7]
        return out

    def track_grid(
        self,
        magnets: np.ndarray,
        incoming: np.ndarray,
        misalignments: np.ndarray,
        x_index: int,
        x_values: np.ndarray,
        y_index: int,
        y_values: np.ndarray,
    ) -> np.ndarray:
        """Track one beam over a grid of two magnets' settings, the others held fixed.

        Uses Cheetah's broadcasting (magnet x varies along the last batch dimension, magnet
        y along the first), so each magnet's map is built once per value, not per grid point.

        :param magnets: settings of all five magnets, shape (5,) (1/m^2, rad).
        :param incoming: incoming beam, shape (11,).
        :param misalignments: misalignments in m, shape (8,).
        :param x_index: index in ``[Q1, Q2, CV, Q3, CH]`` of the magnet along x.
        :param x_values: its settings, shape (nx,).
        :param y_index: index of the magnet along y (must differ from ``x_index``).
        :param y_values: its settings, shape (ny,).
        :return: ``[mu_x, sigma_x, mu_y, sigma_y]`` on the screen in m, shape (ny, nx, 4).
        """
        if x_index == y_index or not (0 <= x_index < 5 and 0 <= y_index < 5):
            raise ValueError(f"x_index and y_index must be two different magnets 0-4, got {x_index}, {y_index}")
        settings: list[torch.Tensor] = [
            self._tensor(np.asarray(v, dtype=np.float64)) for v in np.asarray(magnets, dtype=np.float64).reshape(5)
        ]
        settings[x_index] = self._tensor(np.asarray(x_values, dtype=np.float64).reshape(1, -1))
        settings[y_index] = self._tensor(np.asarray(y_values, dtype=np.float64).reshape(-1, 1))
        inc = self._tensor(np.asarray(incoming, dtype=np.float64).reshape(11))
        mis_np = np.asarray(misalignments, dtype=np.float64).reshape(8)
        mis = self._tensor(mis_np)
        beam = cheetah.ParameterBeam.from_parameters(
            energy=inc[0], mu_x=inc[1], mu_px=inc[2], mu_y=inc[3], mu_py=inc[4],
            sigma_x=inc[5], sigma_px=inc[6], sigma_y=inc[7], sigma_py=inc[8],
            sigma_tau=inc[9], sigma_p=inc[10], dtype=self.dtype,
        )  # fmt: skip
        seg = self.segment
        with self._lock, torch.no_grad():
            # The batched caches of track() do not describe the segment after this call.
            self._beam_key = None
            self._misalignment_key = None
            self._magnet_key = None
            seg.AREAMQZM1.misalignment = mis[0:2]
            seg.AREAMQZM2.misalignment = mis[2:4]
            seg.AREAMQZM3.misalignment = mis[4:6]
            seg.AREAMQZM1.k1 = settings[0]
            seg.AREAMQZM2.k1 = settings[1]
            seg.AREAMCVM1.angle = settings[2]
            seg.AREAMQZM3.k1 = settings[3]
            seg.AREAMCHM1.angle = settings[4]
            out_beam = self._tracked.track(beam)
            out = torch.stack(
                [out_beam.mu_x, out_beam.sigma_x, out_beam.mu_y, out_beam.sigma_y], dim=-1
            )
        ny, nx = len(np.atleast_1d(y_values)), len(np.atleast_1d(x_values))
        out = out.numpy().astype(np.float64, copy=True)
        out = np.broadcast_to(out, (ny, nx, 4)).copy()
        out[..., 0] -= mis_np[6]
        out[..., 2] -= mis_np[7]
        return out
