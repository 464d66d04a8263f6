"""The app's Plotly screen: axes in mm, beam and target ellipses, off-screen warning."""

import base64
import io

import numpy as np
import pytest
from PIL import Image

from envlib.figures import landscape_figure, screen_figure

HX_MM, HY_MM = 2448 * 3.3198e-3 / 2, 2040 * 2.4469e-3 / 2  # screen half size in mm (reference table)
BEAM = np.array([1e-3, 2e-4, -5e-4, 1e-4])
TARGET = np.array([0.0, 5e-5, 0.0, 5e-5])


def trace(fig, name):
    (found,) = [t for t in fig.data if t.name == name]
    return found


def test_axes_are_in_mm_and_span_the_screen():
    fig = screen_figure(BEAM, TARGET)
    x0, x1 = fig.layout.xaxis.range
    y0, y1 = fig.layout.yaxis.range
    assert -1.05 * HX_MM < x0 < -HX_MM and HX_MM < x1 < 1.05 * HX_MM
    assert -1.05 * HY_MM < y0 < -HY_MM and HY_MM < y1 < 1.05 * HY_MM
    assert "mm" in fig.layout.xaxis.title.text and "mm" in fig.layout.yaxis.title.text
    (edges,) = fig.layout.shapes
    assert (edges.x0, edges.x1, edges.y0, edges.y1) == pytest.approx((-HX_MM, HX_MM, -HY_MM, HY_MM))


def test_beam_and_target_are_1_sigma_ellipses_in_mm():
    fig = screen_figure(BEAM, TARGET)
    for name, b in (("beam", BEAM), ("target", TARGET)):
        t = trace(fig, name)
        x, y = np.array(t.x), np.array(t.y)
        assert (x.max() + x.min()) / 2 == pytest.approx(b[0] * 1e3, abs=1e-9)
        assert (x.max() - x.min()) / 2 == pytest.approx(b[1] * 1e3, rel=1e-3)
        assert (y.max() + y.min()) / 2 == pytest.approx(b[2] * 1e3, abs=1e-6)
        assert (y.max() - y.min()) / 2 == pytest.approx(b[3] * 1e3, rel=1e-3)
    assert [t.name for t in screen_figure(BEAM).data if t.name] == ["beam"]  # no target given, none drawn


def test_the_image_peaks_at_the_beam_with_x_right_and_y_up():
    fig = screen_figure(BEAM, TARGET)
    (heatmap,) = [t for t in fig.data if t.type == "heatmap"]
    z = np.asarray(heatmap.z)
    row, col = np.unravel_index(np.argmax(z), z.shape)
    cell_x, cell_y = np.diff(heatmap.x).mean(), np.diff(heatmap.y).mean()
    assert heatmap.x[col] == pytest.approx(BEAM[0] * 1e3, abs=abs(cell_x))
    assert heatmap.y[row] == pytest.approx(BEAM[2] * 1e3, abs=abs(cell_y))
    assert -HX_MM < min(heatmap.x) and max(heatmap.x) < HX_MM
    assert -HY_MM < min(heatmap.y) and max(heatmap.y) < HY_MM


def test_the_png_picture_covers_the_screen_and_peaks_at_the_beam_with_x_right_and_y_up():
    fig = screen_figure(BEAM, TARGET, image="png")
    assert not [t for t in fig.data if t.type == "heatmap"]
    (picture,) = fig.layout.images
    assert (picture.x, picture.y) == pytest.approx((-HX_MM, HY_MM))  # top-left corner
    assert (picture.sizex, picture.sizey) == pytest.approx((2 * HX_MM, 2 * HY_MM))
    assert (picture.xref, picture.yref, picture.sizing, picture.layer) == ("x", "y", "stretch", "below")
    header, data = picture.source.split(",", 1)
    assert header == "data:image/png;base64"
    pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("L"), dtype=float)
    row, col = np.unravel_index(np.argmax(pixels), pixels.shape)
    height, width = pixels.shape
    x = -HX_MM + (col + 0.5) / width * 2 * HX_MM
    y = HY_MM - (row + 0.5) / height * 2 * HY_MM  # row 0 at the top
    assert x == pytest.approx(BEAM[0] * 1e3, abs=2 * HX_MM / width)
    assert y == pytest.approx(BEAM[2] * 1e3, abs=2 * HY_MM / height)


def test_png_and_heatmap_draw_the_same_levels_in_the_same_colours():
    heatmap = [t for t in screen_figure(BEAM, image="heatmap").data if t.type == "heatmap"][0]
    (picture,) = screen_figure(BEAM, image="png").layout.images
    rgb = np.asarray(Image.open(io.BytesIO(base64.b64decode(picture.source.split(",", 1)[1]))).convert("RGB"))
    z = np.asarray(heatmap.z)
    assert rgb.shape[:2] == z.shape
    assert tuple(rgb[z == 0][0]) == (68, 1, 84)  # Viridis' first colour, as the heatmap's zmin
    assert tuple(rgb[z == 255][0]) == (253, 231, 37)  # and its last, at the peak


def test_an_unknown_image_kind_is_refused():
    with pytest.raises(ValueError, match="image"):
        screen_figure(BEAM, image="jpeg")
    assert not [t for t in screen_figure(BEAM, image="none").data if t.type == "heatmap"]
    assert not screen_figure(BEAM, image="none").layout.images


@pytest.mark.parametrize(
    "beam, off",
    [
        ([0.0, 1e-4, 0.0, 1e-4], False),
        ([3.9e-3, 5e-4, 2.4e-3, 3e-4], False),  # near the corner, centre still on the screen
        ([5e-3, 1e-4, 0.0, 1e-4], True),
        ([0.0, 1e-4, -3e-3, 1e-4], True),
    ],
    ids=["centre", "corner", "off-right", "off-below"],
)
def test_off_screen_annotation_only_when_the_beam_is_off_the_screen(beam, off):
    fig = screen_figure(np.array(beam), TARGET)
    texts = [a.text or "" for a in fig.layout.annotations]
    assert any("OFF SCREEN" in t for t in texts) == off
    if off:
        arrow = [a for a in fig.layout.annotations if a.showarrow][0]
        # The arrow points from the centre towards the beam and stays on the screen.
        assert np.sign(arrow.x) == np.sign(beam[0]) and np.sign(arrow.y) == np.sign(beam[2])
        assert abs(arrow.x) <= HX_MM and abs(arrow.y) <= HY_MM
    else:
        assert len(fig.layout.annotations) == 0


@pytest.mark.parametrize("image", ["heatmap", "png"])
def test_the_figure_serialises_to_a_small_payload(image):
    """The screen is sent to every browser on every slider move."""
    wide = np.array([0.0, 2e-3, 0.0, 1.5e-3])  # a beam over most of the screen: the largest picture
    assert len(screen_figure(wide, TARGET, image=image).to_json()) < 100_000


def test_a_landscape_spans_its_grid_and_marks_a_best_point_at_a_limit_whole():
    from envlib.landscape import Landscape

    xs, ys = np.linspace(-72, 72, 5), np.linspace(-72, 72, 3)
    reward = np.zeros((3, 5))
    reward[2, 4] = 1.0  # best at Q1 = Q2 = +72, a corner
    fig = landscape_figure(Landscape(0, 1, xs, ys, reward, current=(0.0, 0.0), current_reward=0.0))
    assert list(fig.layout.xaxis.range) == [-90.0, 90.0]  # cells 36 wide around -72 ... 72
    assert list(fig.layout.yaxis.range) == [-108.0, 108.0]  # cells 72 high
    best = fig.data[2]
    assert (best.x[0], best.y[0]) == (72.0, 72.0) and best.cliponaxis is False


def test_a_flat_landscape_is_one_colour_with_readable_colour_bar_ticks():
    from envlib.landscape import Landscape

    xs, ys = np.linspace(-72, 72, 5), np.linspace(-72, 72, 3)
    fig = landscape_figure(Landscape(0, 1, xs, ys, -np.ones((3, 5)), current=(0.0, 0.0), current_reward=-1.0))
    heatmap = fig.data[0]
    assert (heatmap.zmin, heatmap.zmax) == (-1.01, -0.99)  # -1 in the middle, not at a 1e-12 edge


def test_landscape_legends_keep_out_of_the_mode_bars_corner():
    from envlib.figures import cut_figure
    from envlib.landscape import Landscape

    xs = np.linspace(-72, 72, 5)
    land = landscape_figure(Landscape(0, 1, xs, xs, np.zeros((5, 5)), current=(0.0, 0.0), current_reward=0.0))
    cut = cut_figure(0, xs, {"Reward A": np.zeros(5), "Reward B": np.ones(5)}, 0.0)
    for fig in (land, cut):
        assert (fig.layout.legend.xanchor, fig.layout.legend.x) == ("left", 0.0)


def test_a_beam_mostly_off_the_screen_looks_dark_and_one_on_it_keeps_its_levels():
    from envlib.figures import image_levels, image_png
    from envlib.screen import beam_image, pixel_sum

    # 0.4 % of the beam still on the screen (the sum-of-pixels agent's end): drawn dim, not as
    # bright as a focused beam (scaled to what was left, its tail showed as a lit-up screen).
    off = np.array([-6e-3, 1e-3, -3.5e-3, 1e-3])
    assert 0.001 < pixel_sum(off[None])[0] < 0.01
    assert image_levels(off).max() < 0.1 * 255
    picture = np.asarray(Image.open(io.BytesIO(image_png(off))).convert("RGB"))
    assert picture.max(axis=(0, 1)).tolist() != [253, 231, 37]  # no yellow, Viridis' top
    # The audit's sum-of-pixels beam: 81 mm tall, centred 104 mm below, 0.5 % on the screen. Its
    # density there is half its peak's, but the screen shows no more light than its share.
    huge = np.array([3.88e-3, 3.95e-3, -103.98e-3, 81.17e-3])
    assert pixel_sum(huge[None])[0] < 0.01
    assert image_levels(huge, 32).max() < 0.1 * 255
    # A beam whose centre is on the screen: its brightest pixel is 255, levels as before.
    image = beam_image(BEAM, 16)
    np.testing.assert_array_equal(image_levels(BEAM), (image / image.max() * 255).astype(np.uint8))
    assert image_levels(BEAM).max() == 255


def test_the_landscape_markers_read_their_rewards_like_the_reward_card():
    from envlib.landscape import Landscape

    # A reward of -1.3e-15 (a rounding error of 0) read "now: -1.277e-15" beside a card's "-0.0000".
    xs = np.linspace(-72, 72, 5)
    reward = np.zeros((5, 5))
    reward[0, 0] = 12.345678
    fig = landscape_figure(Landscape(0, 1, xs, xs, reward, current=(0.0, 0.0), current_reward=-1.277e-15))
    assert [fig.data[1].name, fig.data[2].name] == ["now: -0.0000", "best: 12.3457"]


@pytest.mark.parametrize("vision", ["normal", "deuteranopia", "protanopia"])
def test_the_beam_ellipse_reads_on_the_dark_screen_and_on_the_bright_spot(vision):
    from color_vision import contrast, simulated

    from envlib.figures import _VIRIDIS

    fig = screen_figure(BEAM, TARGET)
    edge, line = [t for t in fig.data if t.type == "scatter" and t.name != "target"]  # the edge first: beneath
    assert list(edge.x) == list(line.x) and edge.line.width > line.line.width + 2 and edge.hoverinfo == "skip"
    # On every level of the image, the white line or its dark edge stands out ≥ 3:1 (the old
    # red line on the green-yellow spot was 1.1:1 for deuteranopes).
    seen = [simulated(color, vision) for color in (line.line.color, edge.line.color)]
    for level in _VIRIDIS:
        background = simulated("#" + "".join(f"{v:02x}" for v in level), vision)
        assert max(contrast(c, background) for c in seen) >= 3, (level, vision)
    # The target stays apart: dashed, where the beam is solid.
    assert trace(fig, "target").line.dash == "dash" and line.line.dash is None


def test_the_cuts_rewards_differ_in_colour_for_colour_blind_students_in_dash_and_read_on_white():
    from color_vision import contrast, distance, simulated

    from envlib.figures import cut_figure

    xs = np.linspace(-72, 72, 5)
    cut = cut_figure(0, xs, {"Reward A": np.zeros(5), "Reward B": np.ones(5)}, 0.0)
    a, b = cut.data
    assert a.line.dash != b.line.dash  # apart without colour
    for vision in ("normal", "deuteranopia", "protanopia"):
        # Reward B was Plotly's pale blue: 1.8:1 on white, and A's blue but lighter.
        assert min(contrast(simulated(t.line.color, vision)) for t in (a, b)) >= 3, vision
        assert distance(a.line.color, b.line.color, vision) >= 15, vision


def test_landscape_and_cut_axes_grow_their_margins_to_hold_the_tick_labels():
    from envlib.figures import cut_figure
    from envlib.landscape import Landscape

    # Drawn without Streamlit's theme (its axis text is 3.7:1), whose template set automargin:
    # with the 10 px margins alone, "−50" was cut off at the left edge.
    xs = np.linspace(-72, 72, 5)
    land = landscape_figure(Landscape(0, 1, xs, xs, np.zeros((5, 5)), current=(0.0, 0.0), current_reward=0.0))
    cut = cut_figure(0, xs, {"Reward A": np.zeros(5)}, 0.0)
    for fig in (land, cut):
        assert fig.layout.xaxis.automargin is True and fig.layout.yaxis.automargin is True
