"""The EA beamline on Cheetah against an independent linear-optics computation."""

import numpy as np
import pytest

from envlib.beamline import MAGNET_LIMITS, BeamlineSimulator

# The ARES EA lattice typed in from the reference table (not imported from envlib):
# (kind, length in m, which magnet of [Q1, Q2, CV, Q3, CH] or None).
REFERENCE_LATTICE = (
    ("drift", 0.17504, None),
    ("quadrupole", 0.122, 0),  # AREAMQZM1
    ("drift", 0.428, None),
    ("quadrupole", 0.122, 1),  # AREAMQZM2
    ("drift", 0.204, None),
    ("vertical_corrector", 0.02, 2),  # AREAMCVM1
    ("drift", 0.204, None),
    ("quadrupole", 0.122, 3),  # AREAMQZM3
    ("drift", 0.179, None),
    ("horizontal_corrector", 0.02, 4),  # AREAMCHM1
    ("drift", 0.45, None),
)


def drift_matrix(length):
    """4x4 map of (x, px, y, py) through a field-free drift."""
    m = np.eye(4)
    m[0, 1] = m[2, 3] = length
    return m


def quadrupole_plane(k, length):
    """2x2 map of one plane through a thick quadrupole of strength k (1/m^2, > 0 focuses)."""
    if k > 0:
        w = np.sqrt(k)
        c, s = np.cos(w * length), np.sin(w * length)
        return np.array([[c, s / w], [-w * s, c]])
    if k < 0:
        w = np.sqrt(-k)
        c, s = np.cosh(w * length), np.sinh(w * length)
        return np.array([[c, s / w], [w * s, c]])
    return np.array([[1.0, length], [0.0, 1.0]])


def quadrupole_matrix(k1, length):
    """4x4 map: focusing in x and defocusing in y for k1 > 0, the other way round for k1 < 0."""
    m = np.zeros((4, 4))
    m[:2, :2] = quadrupole_plane(k1, length)
    m[2:, 2:] = quadrupole_plane(-k1, length)
    return m


def track_reference(magnets, incoming, misalignments, lattice=REFERENCE_LATTICE):
    """First and second moments on the screen, element by element, in plain numpy.

    :param magnets: [Q1, Q2, CV, Q3, CH] in 1/m^2 and rad.
    :param incoming: the 11 incoming beam values (energy, mu_x, mu_px, mu_y, mu_py,
        sigma_x, sigma_px, sigma_y, sigma_py, sigma_tau, sigma_p).
    :param misalignments: Q1, Q2, Q3, screen (x, y) in m.
    :param lattice: (kind, length, magnet) upstream to downstream.
    :return: [mu_x, sigma_x, mu_y, sigma_y] in the screen's frame, m.
    """
    # For drifts, quadrupoles and correctors Cheetah's linear map does not couple
    # (x, px, y, py) to (tau, p) (no bends), so the transverse block is the whole story.
    mu = np.array([incoming[1], incoming[2], incoming[3], incoming[4]])
    sigma = np.diag(np.array([incoming[5], incoming[6], incoming[7], incoming[8]]) ** 2)
    quad_offsets = {0: misalignments[0:2], 1: misalignments[2:4], 3: misalignments[4:6]}
    for kind, length, magnet in lattice:
        if kind == "drift":
            r = drift_matrix(length)
            mu = r @ mu
        elif kind == "quadrupole":
            r = quadrupole_matrix(magnets[magnet], length)
            offset = np.array([quad_offsets[magnet][0], 0.0, quad_offsets[magnet][1], 0.0])
            mu = r @ (mu - offset) + offset  # the quadrupole acts on the distance from its axis
        else:  # a corrector: a drift, then a thin kick of `angle` rad
            r = drift_matrix(length)
            mu = r @ mu
            mu[1 if kind == "horizontal_corrector" else 3] += magnets[magnet]
        sigma = r @ sigma @ r.T
    return np.array(
        [mu[0] - misalignments[6], np.sqrt(sigma[0, 0]), mu[2] - misalignments[7], np.sqrt(sigma[2, 2])]
    )


#: Magnet settings [Q1, Q2, CV, Q3, CH] (1/m^2, rad): drift-like, the usual focusing
#: signs, the opposite signs, strong quads near the limits with both correctors kicking.
SETTINGS = np.array(
    [
        [0.0, 0.0, 0.0, 0.0, 0.0],
        [10.0, -20.0, 0.0, 15.0, 0.0],
        [-30.0, 25.0, 1e-3, -12.0, -2e-3],
        [72.0, -72.0, -6.1782e-3, 60.0, 6.1782e-3],
    ]
)
INCOMING = np.array([80e6, -5e-4, 6e-5, 3e-4, 3e-5, 4e-4, 4e-5, 1e-4, 4e-5, 1e-6, 1e-6])
MISALIGNMENTS = np.array(
    [
        np.zeros(8),
        np.zeros(8),
        [2e-4, -1e-4, -3e-4, 0.0, 1.5e-4, 2e-4, 0.0, 0.0],  # misaligned quads
        [-1e-3, 5e-4, 8e-4, -6e-4, 2e-3, -2e-3, 3e-4, -1e-4],  # and a misaligned screen
    ]
)


def test_cheetah_tracking_equals_the_product_of_transfer_matrices():
    """Drifts, thick quads (misaligned too) and corrector kicks: Cheetah == matrices to 1e-9."""
    incoming = np.tile(INCOMING, (len(SETTINGS), 1))
    got = BeamlineSimulator().track(SETTINGS, incoming, MISALIGNMENTS)
    expected = np.array([track_reference(m, INCOMING, d) for m, d in zip(SETTINGS, MISALIGNMENTS, strict=True)])
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda lat: lat[:1] + ((lat[1][0], lat[1][1] + 1e-3, lat[1][2]),) + lat[2:],  # Q1 1 mm longer
        lambda lat: lat[:2] + ((lat[2][0], 0.43, lat[2][2]),) + lat[3:],  # a 2 mm longer drift
        lambda lat: lat[:1] + ((lat[1][0], lat[1][1], 1),) + lat[2:3] + ((lat[3][0], lat[3][1], 0),) + lat[4:],
        lambda lat: lat[:5] + lat[7:9] + lat[5:7] + lat[9:],  # CV after Q3 instead of before
    ],
    ids=["quad-length", "drift-length", "Q1-Q2-swapped", "element-order"],
)
def test_the_reference_computation_notices_a_wrong_lattice(mutate, simulator):
    """The comparison above is sensitive: a wrong length or order misses by far more than 1e-9."""
    got = simulator.track(SETTINGS[2:], np.tile(INCOMING, (2, 1)), MISALIGNMENTS[2:])
    lattice = mutate(REFERENCE_LATTICE)
    wrong = np.array(
        [track_reference(m, INCOMING, d, lattice) for m, d in zip(SETTINGS[2:], MISALIGNMENTS[2:], strict=True)]
    )
    assert np.max(np.abs(wrong - got) / np.abs(got)) > 1e-4


def test_batched_tracking_equals_one_call_per_beam(simulator):
    """One batched Cheetah call gives each row's single-call result."""
    rng = np.random.default_rng(3)
    n = 7
    magnets = rng.uniform(-MAGNET_LIMITS, MAGNET_LIMITS, size=(n, 5))
    incoming = np.tile(INCOMING, (n, 1))
    incoming[:, 1:5] += rng.normal(0, 1e-4, size=(n, 4))
    misalignments = rng.uniform(-1e-3, 1e-3, size=(n, 8))
    batched = simulator.track(magnets, incoming, misalignments)
    single = np.concatenate([simulator.track(magnets[i], incoming[i], misalignments[i]) for i in range(n)])
    assert batched.shape == (n, 4)
    np.testing.assert_allclose(batched, single, rtol=1e-12, atol=1e-18)


def test_tracking_without_the_marker_and_screen_gives_the_full_lattices_bits():
    """The simulator skips two identity maps; Cheetah's full 13-element segment agrees exactly."""
    simulator = BeamlineSimulator()
    incoming = np.tile(INCOMING, (len(SETTINGS), 1))
    got = simulator.track(SETTINGS, incoming, MISALIGNMENTS)
    simulator._tracked = simulator.segment  # track through all 13 elements instead
    simulator._magnet_key = None
    full = simulator.track(SETTINGS, incoming, MISALIGNMENTS)
    assert len(simulator.segment.elements) == 13
    np.testing.assert_array_equal(got, full)


def test_new_incoming_beams_and_misalignments_are_not_served_from_the_cache(simulator):
    """The simulator caches the incoming beam; a changed beam must still change the result."""
    magnets = np.array([[10.0, -10.0, 0.0, 5.0, 0.0]])
    first = simulator.track(magnets, INCOMING[None], np.zeros((1, 8)))
    moved = INCOMING.copy()
    moved[1] += 1e-4
    assert simulator.track(magnets, moved[None], np.zeros((1, 8)))[0, 0] != first[0, 0]
    shifted = np.zeros((1, 8))
    shifted[0, 0] = 1e-4  # Q1 moved in x
    assert simulator.track(magnets, INCOMING[None], shifted)[0, 0] != first[0, 0]
    np.testing.assert_array_equal(simulator.track(magnets, INCOMING[None], np.zeros((1, 8))), first)


def test_changed_magnets_are_not_served_from_the_cache(simulator):
    """The simulator only re-sets magnets that changed; every change must still count."""
    fresh = BeamlineSimulator()
    rng = np.random.default_rng(8)
    magnets = np.array([[10.0, -10.0, 1e-4, 5.0, -1e-4]] * 3)
    incoming, misalignments = np.tile(INCOMING, (3, 1)), np.zeros((3, 8))
    for j in [4, 2, 0, 3, 1, 4]:  # one magnet at a time, in one row
        magnets = magnets.copy()
        magnets[1, j] *= -2
        got = simulator.track(magnets, incoming, misalignments)
        np.testing.assert_array_equal(got, fresh.track(magnets, incoming, misalignments))
        assert not np.array_equal(got[1], got[0])
    # A grid scan re-sets everything; the next batched call must not trust its caches.
    simulator.track_grid(magnets[0], INCOMING, np.zeros(8), 0, rng.uniform(-5, 5, 3), 4, rng.uniform(-1e-3, 1e-3, 2))
    np.testing.assert_array_equal(simulator.track(magnets, incoming, misalignments), got)
    # A smaller batch (the rows an auto-reset tracks) with the same first row.
    np.testing.assert_array_equal(simulator.track(magnets[:1], incoming[:1], misalignments[:1]), got[:1])


def test_track_refuses_arrays_of_the_wrong_shape(simulator):
    with pytest.raises(ValueError, match=r"magnets \(N, 5\)"):
        simulator.track(np.zeros((2, 5)), np.tile(INCOMING, (3, 1)), np.zeros((2, 8)))


def test_the_simulator_keeps_no_reference_to_the_callers_arrays(simulator):
    """Changing an array after track() must not change what a later call computes."""
    magnets = np.array([[10.0, -10.0, 0.0, 5.0, 0.0]])
    incoming = INCOMING[None].copy()
    misalignments = np.zeros((1, 8))
    expected = simulator.track(magnets * 2, incoming.copy(), misalignments.copy())
    simulator.track(magnets, INCOMING[None] * 1.1, np.full((1, 8), 1e-4))  # something else
    simulator.track(magnets, incoming, misalignments)
    misalignments[0, :6] = 1e-3  # the caller reuses its arrays, e.g. another env's state
    incoming[0, 0] = 160e6
    np.testing.assert_array_equal(simulator.track(magnets * 2, INCOMING[None], np.zeros((1, 8))), expected)
