"""The screen: image, pixel sums and the orientation of the rendered picture."""

import numpy as np
import pytest

from envlib import screen
from envlib.beamline import SCREEN_HALF_SIZE
from envlib.env import AresEAEnv

BEAM_RED = np.array([255, 60, 60])
HX, HY = SCREEN_HALF_SIZE
#: A centred incoming beam, so only the correctors move it.
CENTRED_INCOMING = (80e6, 0.0, 0.0, 0.0, 0.0, 1e-4, 1e-5, 1e-4, 1e-5, 1e-6, 1e-6)


def rendered_screen(simulator, magnets):
    """Render the screen after setting [Q1, Q2, CV, Q3, CH] directly; returns (rgb, beam)."""
    env = AresEAEnv(
        dict(
            action_mode="direct", actuators="all", rescale_action=None, incoming_mode="constant",
            incoming_values=CENTRED_INCOMING, target_beam_values=(0.0, 5e-5, 0.0, 5e-5),
        ),
        render_mode="rgb_array",
        simulator=simulator,
    )  # fmt: skip
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.asarray(magnets, dtype=np.float32))
    return env.render(), np.array(info["beam"])


def brightest_pixel(rgb):
    """(row, column) of the image's peak: viridis' green channel rises with intensity."""
    return np.unravel_index(np.argmax(rgb[..., 1]), rgb.shape[:2])


def red_pixels(rgb):
    rows, cols = np.nonzero(np.all(rgb == BEAM_RED, axis=-1))
    assert len(rows) > 20, "the beam ellipse is not drawn"
    return rows, cols


def test_render_is_the_binning_4_screen_as_rgb(simulator):
    rgb, _ = rendered_screen(simulator, [0, 0, 0, 0, 0])
    assert rgb.shape == (510, 612, 3)
    assert rgb.dtype == np.uint8


def test_a_beam_moved_to_plus_x_is_drawn_right_of_centre(simulator):
    rgb, beam = rendered_screen(simulator, [0, 0, 0, 0, 2e-3])  # CH kicks towards +x
    assert beam[0] > 5e-4 and abs(beam[2]) < 1e-9
    rows, cols = red_pixels(rgb)
    assert cols.min() > 612 / 2  # the whole 1-sigma ellipse is right of the centre
    assert abs(rows.mean() - 510 / 2) < 3
    row, col = brightest_pixel(rgb)
    assert cols.min() < col < cols.max() and abs(row - 510 / 2) < 3


def test_a_beam_moved_to_plus_y_is_drawn_above_centre(simulator):
    rgb, beam = rendered_screen(simulator, [0, 0, 2e-3, 0, 0])  # CV kicks towards +y
    assert beam[2] > 5e-4 and abs(beam[0]) < 1e-9
    rows, cols = red_pixels(rgb)
    assert rows.max() < 510 / 2  # row 0 is the top of the screen
    assert abs(cols.mean() - 612 / 2) < 3
    row, col = brightest_pixel(rgb)
    assert rows.min() < row < rows.max() and abs(col - 612 / 2) < 3


@pytest.mark.parametrize("beam", [(1e-3, 2e-4, -8e-4, 1e-4), (-2.5e-3, 3e-4, 1.2e-3, 2e-4)], ids=["+x-y", "-x+y"])
def test_the_image_centroid_sits_at_the_beam_centre(beam):
    """Intensity centroid in pixel units == (mu - screen edge) / pixel size, x from the left, y from the top."""
    image = screen.beam_image(np.array(beam))
    x_edges, y_edges = screen.pixel_edges(4)
    rows, cols = np.indices(image.shape)
    col_c = (image * cols).sum() / image.sum()
    row_c = (image * rows).sum() / image.sum()
    assert col_c == pytest.approx((beam[0] + HX) / (x_edges[1] - x_edges[0]) - 0.5, abs=0.01)
    assert row_c == pytest.approx((HY - beam[2]) / (y_edges[0] - y_edges[1]) - 0.5, abs=0.01)


@pytest.mark.parametrize(
    "beam",
    [
        (0.0, 1e-4, 0.0, 1e-4),  # small, centred
        (1e-3, 1.5e-3, -5e-4, 8e-4),  # large
        (HX, 2e-4, 0.0, 2e-4),  # centred on the right edge: half of it hits the screen
        (-3.5e-3, 1e-3, 2.2e-3, 6e-4),  # partly off in x and y
        (1e-2, 1e-4, 0.0, 1e-4),  # far off
    ],
)
def test_image_sum_equals_pixel_sum(beam):
    beam = np.array(beam)
    assert screen.beam_image(beam).sum() == pytest.approx(screen.pixel_sum(beam[None])[0], abs=1e-12)


def test_pixel_sum_is_the_fraction_of_the_beam_on_the_screen():
    beams = np.array(
        [
            [0.0, 1e-5, 0.0, 1e-5],  # tiny
            [0.0, 6e-4, 0.0, 4e-4],  # large but on the screen (> 4 sigma from the edges)
            [HX, 1e-4, 0.0, 1e-4],  # half off to the right
            [HX, 1e-4, HY, 1e-4],  # in the corner: a quarter on the screen
            [0.0, 1e-4, -1e-2, 1e-4],  # off
        ]
    )
    np.testing.assert_allclose(screen.pixel_sum(beams), [1.0, 1.0, 0.5, 0.25, 0.0], atol=1e-6)


def test_zero_size_beam_stays_finite():
    x_edges, y_edges = screen.pixel_edges(4)
    x, y = (x_edges[400] + x_edges[401]) / 2, (y_edges[100] + y_edges[101]) / 2  # a pixel's centre
    image = screen.beam_image(np.array([x, 0.0, y, 0.0]))
    assert np.isfinite(image).all()
    assert image[100, 400] == pytest.approx(1.0)  # all the charge in that pixel


def test_on_screen_means_the_centre_within_half_the_screen():
    beams = np.array(
        [[0, 1e-4, 0, 1e-4], [0.99 * HX, 1e-3, 0, 1e-4], [1.01 * HX, 1e-4, 0, 1e-4], [0, 1e-4, -1.01 * HY, 1e-4]]
    )
    np.testing.assert_array_equal(screen.is_on_screen(beams), [True, True, False, False])
