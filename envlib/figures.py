"""Plotly figures of the screen, shared by the app's pages."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from envlib.beamline import SCREEN_HALF_SIZE
from envlib.screen import beam_image, ellipse_points, is_on_screen, pixel_edges

#: Binning of the image in the app's figure: 16 gives 153 x 127 cells (~20 kB of payload)
#: while the beam and target sizes are drawn exactly as ellipses.
FIGURE_BINNING = 16
BEAM_LINE = dict(color="rgb(255,60,60)", width=2)
TARGET_LINE = dict(color="rgb(0,160,255)", width=2, dash="dash")
MM = 1e3


def screen_figure(
    beam: np.ndarray,
    target: np.ndarray | None = None,
    *,
    title: str | None = None,
    height: int = 360,
    binning: int = FIGURE_BINNING,
    show_image: bool = True,
) -> go.Figure:
    """The screen as the app shows it: image, screen edges, beam and target ellipses.

    :param beam: ``[mu_x, sigma_x, mu_y, sigma_y]`` in m, shape (4,).
    :param target: target beam in m, shape (4,), or None.
    :param title: figure title.
    :param height: figure height in px.
    :param binning: camera binning of the image (cells are pixel integrals).
    :param show_image: draw the beam's image (off for small grid thumbnails).
    :return: figure with axes in mm, +x right, +y up, equal aspect.
    """
    beam = np.asarray(beam, dtype=np.float64)
    hx, hy = SCREEN_HALF_SIZE[0] * MM, SCREEN_HALF_SIZE[1] * MM
    fig = go.Figure()
    if show_image:
        x_edges, y_edges = pixel_edges(binning)
        image = beam_image(beam, binning)
        peak = image.max()
        # uint8 keeps the payload small; cells are fractions of the peak.
        z = (image / peak * 255).astype(np.uint8) if peak > 0 else image.astype(np.uint8)
        fig.add_trace(
            go.Heatmap(
                z=z,
                x=((x_edges[1:] + x_edges[:-1]) / 2 * MM).round(4),
                y=((y_edges[1:] + y_edges[:-1]) / 2 * MM).round(4),
                colorscale="Viridis",
                showscale=False,
                hoverinfo="skip",
                zmin=0,
                zmax=255,
            )
        )
    fig.add_shape(type="rect", x0=-hx, x1=hx, y0=-hy, y1=hy, line=dict(color="white", width=2))
    if target is not None:
        tx, ty = ellipse_points(*np.asarray(target, dtype=np.float64))
        fig.add_trace(go.Scatter(x=tx * MM, y=ty * MM, mode="lines", line=TARGET_LINE, name="target", hoverinfo="name"))
    bx, by = ellipse_points(*beam)
    fig.add_trace(go.Scatter(x=bx * MM, y=by * MM, mode="lines", line=BEAM_LINE, name="beam", hoverinfo="name"))
    if not bool(is_on_screen(beam[None])[0]):
        # Arrow from the centre towards the beam, stopped at the screen edge.
        cx, cy = beam[0] * MM, beam[2] * MM
        scale = min(hx / abs(cx) if cx else np.inf, hy / abs(cy) if cy else np.inf) * 0.92
        fig.add_annotation(
            x=cx * scale, y=cy * scale, ax=0, ay=0, axref="x", ayref="y", xref="x", yref="y",
            text="", showarrow=True, arrowhead=3, arrowwidth=3, arrowcolor="orange",
        )  # fmt: skip
        fig.add_annotation(
            x=0, y=0, xref="x", yref="y", showarrow=False,
            text=f"<b>BEAM OFF SCREEN</b><br>at ({cx:.1f}, {cy:.1f}) mm",
            font=dict(color="orange", size=16), bgcolor="rgba(0,0,0,0.6)",
        )  # fmt: skip
    fig.update_xaxes(range=[-hx * 1.02, hx * 1.02], title_text="x (mm)", showgrid=False, zeroline=False, constrain="domain")
    fig.update_yaxes(
        range=[-hy * 1.03, hy * 1.03], title_text="y (mm)", showgrid=False, zeroline=False, scaleanchor="x", scaleratio=1
    )
    fig.update_layout(
        title=title,
        height=height,
        margin=dict(l=10, r=10, t=40 if title else 10, b=10),
        plot_bgcolor="rgb(68,1,84)",
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0),
        uirevision="screen",
    )
    return fig
