"""Plotly figures of the screen, shared by the app's pages."""

from __future__ import annotations

import base64
import io
from typing import Literal, get_args

import numpy as np
import plotly.graph_objects as go
from PIL import Image
from plotly.colors import sample_colorscale, sequential, unlabel_rgb

from envlib.beamline import SCREEN_HALF_SIZE
from envlib.screen import beam_image, beam_peak, ellipse_points, is_on_screen, pixel_edges

#: Binning of the image in the app's figure: 16 gives 153 x 127 cells (~20 kB of payload)
#: while the beam and target sizes are drawn exactly as ellipses.
FIGURE_BINNING = 16
#: The beam's 1σ ellipse: white over a dark edge, so that it reads both on the dark screen
#: and on the bright spot (red on Viridis' green-yellow was ~1.1:1 for deuteranopes).
BEAM_LINE = dict(color="#ffffff", width=2)
BEAM_EDGE = dict(color="#141414", width=5)
TARGET_LINE = dict(color="rgb(0,160,255)", width=2, dash="dash")
MM = 1e3
#: The one palette of every chart with several lines (agents, runs, reward modes), picked
#: so that each pair stays apart for deuteranopes and protanopes too: Okabe & Ito's colours
#: with Paul Tol's wine for their yellow (1.3:1 on white, invisible as a line). Here, not in
#: ui/widgets.py (which re-exports it), because this library's own figures use it as well.
SERIES_COLORS = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#882255")
#: A second channel beside colour, slot by slot: lines differ for a student who sees no colour.
SERIES_DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot", "8px,3px,2px,3px,2px,3px", "2px,5px")
#: Marker symbols, slot by slot (none of Compare's flag symbols: x, square, star, diamond).
SERIES_SYMBOLS = (
    "circle", "triangle-up", "triangle-down", "pentagon", "hexagon", "bowtie", "hourglass", "triangle-right",
)


#: The palette slots of a cut's curves (Reward A, B, ...): blue solid, vermillion dash-dot,
#: wine, all ≥ 3:1 on white (Plotly's default second colour was a pale blue, 1.8:1).
CUT_SLOTS = (0, 3, 7, 2)


def series_slot(color: str) -> int:
    """The palette slot of ``color`` (as :data:`SERIES_COLORS` spells it, any case); 0 for another."""
    upper = [c.upper() for c in SERIES_COLORS]
    return upper.index(color.upper()) if color.upper() in upper else 0


def series_line(color: str, **extra) -> dict:
    """A Plotly ``line`` in ``color`` with the dash of its slot: e.g. ``series_line(c, width=3)``."""
    return {"color": color, "dash": SERIES_DASHES[series_slot(color)], **extra}


def series_marker(color: str, **extra) -> dict:
    """A Plotly ``marker`` in ``color`` with the symbol of its slot."""
    return {"color": color, "symbol": SERIES_SYMBOLS[series_slot(color)], **extra}


#: How the beam's image is drawn: a heatmap trace (animation frames can change it), a PNG
#: picture under the axes (what the browser redraws fastest), or not at all.
ScreenImage = Literal["heatmap", "png", "none"]


#: Plotly's Viridis at the 256 levels, shape (256, 3), uint8: the heatmap's colours.
_VIRIDIS = np.array(
    [unlabel_rgb(c) for c in sample_colorscale(sequential.Viridis, list(np.linspace(0.0, 1.0, 256)))]
).round().astype(np.uint8)


def image_levels(beam: np.ndarray, binning: int = FIGURE_BINNING) -> np.ndarray:
    """The beam's screen image as 0-255 levels of the whole beam's peak, shape (H, W), uint8,
    row 0 at +y.

    Not of the brightest pixel on the screen: the last 0.5 % of a beam driven off the screen
    was drawn as bright as a focused beam. A beam whose centre is off the screen is scaled to
    the whole beam's peak (:func:`beam_peak`) or, if brighter, to a pixel of its whole charge
    spread evenly over the screen: the screen lights up no more than its share of the charge
    (a beam 81 mm wide, 0.5 % of it on the screen, is dark). For a beam whose centre is on the
    screen the brightest pixel is its peak: its levels stay as they were. uint8 keeps the
    payload small.
    """
    beam = np.asarray(beam, dtype=np.float64)
    image = beam_image(beam, binning)
    peak = image.max()
    if not is_on_screen(beam[None])[0]:
        peak = max(peak, beam_peak(beam, binning), 1.0 / image.size)
    return (image / peak * 255).astype(np.uint8) if peak > 0 else image.astype(np.uint8)


def image_png(beam: np.ndarray, binning: int = FIGURE_BINNING) -> bytes:
    """The beam's screen image in Viridis as PNG bytes (W x H pixels, row 0 at +y)."""
    buffer = io.BytesIO()
    # Level 1: ~4x faster than the default for a few % more bytes on these smooth images.
    Image.fromarray(_VIRIDIS[image_levels(beam, binning)]).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def screen_figure(
    beam: np.ndarray,
    target: np.ndarray | None = None,
    *,
    title: str | None = None,
    height: int = 360,
    binning: int = FIGURE_BINNING,
    image: ScreenImage = "heatmap",
) -> go.Figure:
    """The screen as the app shows it: image, screen edges, beam and target ellipses.

    The figure of :func:`screen_spec` (same parameters).
    """
    return go.Figure(screen_spec(beam, target, title=title, height=height, binning=binning, image=image))


def screen_spec(
    beam: np.ndarray,
    target: np.ndarray | None = None,
    *,
    title: str | None = None,
    height: int = 360,
    binning: int = FIGURE_BINNING,
    image: ScreenImage = "heatmap",
) -> dict:
    """The screen as plain data ``{"data": [...], "layout": {...}}``, not validated by Plotly.

    For figures made of many screens (the Compare page animates ~130 of them): building
    and validating a ``go.Figure`` per screen would cost ~6 ms each.

    :param beam: ``[mu_x, sigma_x, mu_y, sigma_y]`` in m, shape (4,).
    :param target: target beam in m, shape (4,), or None.
    :param title: figure title.
    :param height: figure height in px.
    :param binning: camera binning of the image (cells are pixel integrals).
    :param image: how the beam's image is drawn: ``"heatmap"`` (a trace, for animation
        frames), ``"png"`` (a picture under the axes: 12-34 kB instead of ~40 kB, and the
        browser redraws it ~15 ms faster per slider move), or ``"none"``.
    :return: the figure's data and layout; axes in mm, +x right, +y up, equal aspect.
    """
    beam = np.asarray(beam, dtype=np.float64)
    hx, hy = SCREEN_HALF_SIZE[0] * MM, SCREEN_HALF_SIZE[1] * MM
    # One dict spec and one go.Figure(...) call: Plotly validates it once. Building it with
    # add_trace/update_* calls cost ~11 ms, this ~2 ms (the Playground redraws it per slider move).
    traces: list[dict] = []
    if image not in get_args(ScreenImage):
        raise ValueError(f"image must be one of {get_args(ScreenImage)}, not {image!r}")
    if image == "heatmap":
        x_edges, y_edges = pixel_edges(binning)
        traces.append(
            dict(
                type="heatmap",
                z=image_levels(beam, binning),
                x=((x_edges[1:] + x_edges[:-1]) / 2 * MM).round(4),
                y=((y_edges[1:] + y_edges[:-1]) / 2 * MM).round(4),
                colorscale="Viridis",
                showscale=False,
                hoverinfo="skip",
                zmin=0,
                zmax=255,
            )
        )
    pictures = []
    if image == "png":
        source = "data:image/png;base64," + base64.b64encode(image_png(beam, binning)).decode("ascii")
        pictures.append(dict(
            source=source, xref="x", yref="y", x=-hx, y=hy, sizex=2 * hx, sizey=2 * hy,
            sizing="stretch", xanchor="left", yanchor="top", layer="below",
        ))  # fmt: skip
    shapes = [dict(type="rect", x0=-hx, x1=hx, y0=-hy, y1=hy, line=dict(color="white", width=2))]
    if target is not None:
        tx, ty = ellipse_points(*np.asarray(target, dtype=np.float64))
        traces.append(
            dict(type="scatter", x=tx * MM, y=ty * MM, mode="lines", line=TARGET_LINE, name="target", hoverinfo="name")
        )
    bx, by = ellipse_points(*beam)
    bx, by = bx * MM, by * MM
    traces.append(dict(type="scatter", x=bx, y=by, mode="lines", line=BEAM_EDGE, showlegend=False, hoverinfo="skip"))
    traces.append(dict(type="scatter", x=bx, y=by, mode="lines", line=BEAM_LINE, name="beam", hoverinfo="name"))
    annotations = []
    if not bool(is_on_screen(beam[None])[0]):
        # Arrow from the centre towards the beam, stopped at the screen edge.
        cx, cy = beam[0] * MM, beam[2] * MM
        scale = min(hx / abs(cx) if cx else np.inf, hy / abs(cy) if cy else np.inf) * 0.92
        annotations.append(dict(
            x=cx * scale, y=cy * scale, ax=0, ay=0, axref="x", ayref="y", xref="x", yref="y",
            text="", showarrow=True, arrowhead=3, arrowwidth=3, arrowcolor="orange",
        ))  # fmt: skip
        annotations.append(dict(
            x=0, y=0, xref="x", yref="y", showarrow=False,
            text=f"<b>BEAM OFF SCREEN</b><br>at ({cx:.1f}, {cy:.1f}) mm",
            font=dict(color="orange", size=16), bgcolor="rgba(0,0,0,0.6)",
        ))  # fmt: skip
    layout = dict(
        xaxis=dict(
            range=[-hx * 1.02, hx * 1.02], title=dict(text="x (mm)"), showgrid=False, zeroline=False, constrain="domain"
        ),
        yaxis=dict(
            range=[-hy * 1.03, hy * 1.03], title=dict(text="y (mm)"), showgrid=False, zeroline=False,
            scaleanchor="x", scaleratio=1,
        ),  # fmt: skip
        shapes=shapes,
        images=pictures,
        annotations=annotations,
        title=title,
        height=height,
        margin=dict(l=10, r=10, t=40 if title else 10, b=10),
        plot_bgcolor="rgb(68,1,84)",
        # On the screen's colour: the white beam line shows in the legend as on the screen.
        legend=dict(
            orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0,
            bgcolor="rgb(68,1,84)", font=dict(color="white"),
        ),
        uirevision="screen",
    )
    return {"data": traces, "layout": layout}


def _magnet_axis(index: int) -> tuple[str, float]:
    """Axis title and scale factor for a magnet: k1 in 1/m^2, angles shown in mrad."""
    from envlib.beamline import CORRECTOR_INDICES, MAGNET_LABELS

    if index in CORRECTOR_INDICES:
        return f"{MAGNET_LABELS[index]} (mrad)", 1e3
    return f"{MAGNET_LABELS[index]} (1/m²)", 1.0


def landscape_figure(landscape, *, title: str | None = None, height: int = 420) -> go.Figure:
    """Heatmap of a :class:`envlib.landscape.Landscape` with the current and best settings marked.

    The colour range runs from the 30th percentile to the maximum, so the large penalties
    of blown-up beams do not wash out the structure near the optimum (lower values
    saturate); a flat landscape shows as one colour.

    :param landscape: reward over a grid of two magnets.
    :param title: figure title.
    :param height: figure height in px.
    """
    x_title, x_scale = _magnet_axis(landscape.x_index)
    y_title, y_scale = _magnet_axis(landscape.y_index)
    z = landscape.reward
    zmax = float(z.max())
    zmin = float(np.percentile(z, 30))
    if zmax - zmin < 1e-12:
        # Flat: one colour, on a colour bar of readable ticks (a 1e-12 range read -1.0000000000006).
        pad = 0.01 * max(1.0, abs(zmax))
        zmin, zmax = zmax - pad, zmax + pad
    bx, by, best = landscape.best
    fig = go.Figure(
        go.Heatmap(
            z=z.astype(np.float32),
            x=(landscape.x_values * x_scale).astype(np.float32),
            y=(landscape.y_values * y_scale).astype(np.float32),
            zmin=zmin,
            zmax=zmax,
            colorscale="Viridis",
            colorbar=dict(title=dict(text="reward", side="right"), thickness=12),
            hovertemplate=f"{x_title}: %{{x:.3g}}<br>{y_title}: %{{y:.3g}}<br>reward: %{{z:.4g}}<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[landscape.current[0] * x_scale], y=[landscape.current[1] * y_scale], mode="markers",
            marker=dict(symbol="x", size=13, color="white", line=dict(width=1, color="black")),
            name=f"now: {landscape.current_reward:.4f}",  # as the page's reward card: -1.3e-15 reads -0.0000
        )
    )  # fmt: skip
    fig.add_trace(
        go.Scatter(
            x=[bx * x_scale], y=[by * y_scale], mode="markers",
            marker=dict(symbol="star", size=15, color="orange", line=dict(width=1, color="black")),
            name=f"best: {best:.4f}",
        )
    )  # fmt: skip
    fig.update_traces(cliponaxis=False, selector=dict(type="scatter"))  # a best point at a limit shows whole
    fig.update_layout(
        title=title,
        height=height,
        # The grid's cells exactly: left to autorange, a marker at a limit widens one axis only.
        # automargin: the small fixed margins would cut the tick labels (the app draws its
        # charts without Streamlit's theme, which set it).
        xaxis=dict(title=x_title, range=_cell_edges(landscape.x_values * x_scale), automargin=True),
        yaxis=dict(title=y_title, range=_cell_edges(landscape.y_values * y_scale), automargin=True),
        margin=dict(l=10, r=10, t=40 if title else 10, b=10),
        # Top left: Plotly's mode bar appears over the top right corner.
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="left", x=0.0),
    )
    return fig


def _cell_edges(values: np.ndarray) -> list[float]:
    """``[low, high]`` of a heatmap axis whose cell centres are ``values`` (evenly spaced)."""
    half = (values[-1] - values[0]) / (len(values) - 1) / 2 if len(values) > 1 else 0.5
    return [float(values[0] - half), float(values[-1] + half)]


def cut_figure(
    index: int, values: np.ndarray, curves: dict[str, np.ndarray], current: float, *, height: int = 300
) -> go.Figure:
    """Reward along one magnet for one or more rewards (a 1-D cut through landscapes).

    :param index: the magnet, index into ``[Q1, Q2, CV, Q3, CH]``.
    :param values: its settings, shape (n,).
    :param curves: reward name -> reward along the cut, shape (n,) each.
    :param current: the magnet's current setting (marked by a vertical line).
    """
    title, scale = _magnet_axis(index)
    fig = go.Figure()
    for slot, (name, reward) in zip(CUT_SLOTS, curves.items(), strict=False):
        line = series_line(SERIES_COLORS[slot], width=2.5)
        fig.add_trace(go.Scatter(x=values * scale, y=reward, mode="lines", name=name, line=line))
    fig.add_vline(x=current * scale, line=dict(color="grey", dash="dot"))
    fig.update_layout(
        height=height,
        xaxis=dict(title=title, automargin=True),  # see landscape_figure
        yaxis=dict(title="reward", automargin=True),
        margin=dict(l=10, r=10, t=10, b=10),
        # Top left: Plotly's mode bar appears over the top right corner.
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="left", x=0.0),
    )
    return fig
