"""Widgets the pages share: magnet and target sliders, the screen chart, beam and reward readouts.

Every function takes a ``prefix`` for its ``st.session_state`` keys (e.g. ``"pg"`` gives
``"pg.magnet.Q1"``), so two pages or two panels never share a widget's state.
Display units: magnets in 1/m^2 (quadrupoles) and mrad (correctors), beams in mm.
"""

from __future__ import annotations

import html
import zlib
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from envlib.beamline import BEAM_PARAMETER_NAMES, MAGNET_LABELS, MAGNET_LIMITS, SCREEN_HALF_SIZE
from envlib.figures import (  # noqa: F401 (re-exported: the pages' one palette)
    SERIES_COLORS,
    SERIES_DASHES,
    SERIES_SYMBOLS,
    screen_spec,
    series_line,
    series_marker,
    series_slot,
)
from envlib.playground import Readout, normalised_magnets, physical_magnets
from envlib.rewards import REWARD_MODES, objective_latex, reward_latex

#: Factor from SI (1/m^2, rad) to the sliders' units (1/m^2, mrad), order ``[Q1, Q2, CV, Q3, CH]``.
MAGNET_DISPLAY_SCALE = np.array([1.0, 1.0, 1e3, 1.0, 1e3])
MAGNET_DISPLAY_UNITS = ("1/m²", "1/m²", "mrad", "1/m²", "mrad")
#: Slider steps in display units: 0.1 1/m^2 and 0.01 mrad (about 0.15 % of the limits).
MAGNET_DISPLAY_STEPS = (0.1, 0.1, 0.01, 0.1, 0.01)
NORMALISED_STEP = 0.01
#: Height of Plotly's mode bar (buttons 22 px, padding, 2 px from the top), px. Shown on
#: hover at a chart's top right; every figure's top margin starts with it, so no title,
#: name or legend entry sits under it.
MODEBAR_PX = 32
MM = 1e3
BEAM_LABELS = {"mu_x": "μx", "sigma_x": "σx", "mu_y": "μy", "sigma_y": "σy"}
#: Slider range of the target in mm, inside the screen (half size rounded down to 10 µm).
TARGET_LIMITS_MM = {
    "mu_x": (-np.floor(SCREEN_HALF_SIZE[0] * 1e5) / 100, np.floor(SCREEN_HALF_SIZE[0] * 1e5) / 100),
    "sigma_x": (0.0, np.floor(SCREEN_HALF_SIZE[0] * 1e5) / 100),
    "mu_y": (-np.floor(SCREEN_HALF_SIZE[1] * 1e5) / 100, np.floor(SCREEN_HALF_SIZE[1] * 1e5) / 100),
    "sigma_y": (0.0, np.floor(SCREEN_HALF_SIZE[1] * 1e5) / 100),
}


#: Labels of the objective readouts (Markdown with LaTeX), values in mm.
OBJ_LABELS = {
    "obj": r"$\mathrm{obj}_j$",
    "obj_previous": r"$\mathrm{obj}_{j-1}$",
    "obj_0": r"$\mathrm{obj}_0$",
}


#: Gap between the columns of :func:`column_grid`, rem (Streamlit's "small" gap).
GRID_GAP_REM = 1.0


#: CSS pixels per rem (the browser's default font size, which Streamlit keeps).
REM_PX = 16


def cell_width(min_rem: float) -> int:
    """The ``width`` (px) to give each child of a :func:`column_grid`.

    On a fresh page the grid's style sheet lands a moment after its children (st.html
    loads its own script first); until then the container is Streamlit's wrapping row,
    where children at their minimum width already wrap into the grid's rows instead of
    squeezing into one. The style sheet then stretches them.
    """
    return round(min_rem * REM_PX)


def balanced_columns(items: int, fit: int) -> int:
    """Columns for ``items`` equal boxes when ``fit`` fit in a row: as many rows as ``fit``
    columns need, with the boxes spread evenly over them (5 boxes, 4 fit: 3 + 2, not 4 + 1)."""
    rows = -(-items // max(1, fit))
    return -(-items // rows)


def column_grid_css(key: str, min_rem: float, items: int | None = None) -> str:
    """The style sheet of :func:`column_grid`.

    Without ``items``, CSS's ``auto-fit`` fills each row and leaves the rest to the last.
    With it, a container query per width at which one more column fits sets the balanced
    number of columns (:func:`balanced_columns`); the query needs a wrapper of its own,
    the ``st-key-{key}-wrap`` container, whose width is what the grid can use.
    """
    grid = f".st-key-{key}"
    css = [
        f"{grid} {{display: grid !important; gap: {GRID_GAP_REM}rem; "
        f"grid-template-columns: repeat(auto-fit, minmax({min_rem}rem, 1fr));}}",
        f"{grid} > div {{width: auto !important; min-width: 0 !important;}}",
    ]
    if items:
        css.append(f".st-key-{key}-wrap {{container-type: inline-size;}}")
        css.append(f"{grid} {{grid-template-columns: minmax(0, 1fr);}}")
        for fit in range(2, items + 1):
            width = fit * min_rem + (fit - 1) * GRID_GAP_REM
            columns = balanced_columns(items, fit)
            css.append(
                f"@container (min-width: {width:g}rem) "
                f"{{{grid} {{grid-template-columns: repeat({columns}, minmax(0, 1fr));}}}}"
            )
    return "<style>" + " ".join(css) + "</style>"


def column_grid(key: str, min_rem: float, items: int | None = None) -> DeltaGenerator:
    """A container whose children take equal columns at least ``min_rem`` wide, as many per
    row as fit: five agents side by side on a wide screen, in rows of two on a projector's
    1024 px, where ``st.columns`` would squeeze them and break words mid-word. Given the
    number of ``items``, the rows are balanced: 3 + 2 on a 1366 px laptop, not 4 + 1.

    Streamlit's layout API has no minimum width for a stretching child, so a style sheet
    sets a grid on the container's documented ``st-key-`` class; without it the container
    is still a wrapping row. Give each child ``width=cell_width(min_rem)``, so that it
    wraps the same way before the style sheet applies.
    """
    st.html(column_grid_css(key, min_rem, items))
    parent = st.container(key=f"{key}-wrap") if items else st
    return parent.container(horizontal=True, key=key)


def wrapping_columns_css(key: str, below_rem: float) -> str:
    """The style sheet of :func:`wrapping_columns`."""
    block = f'.st-key-{key} [data-testid="stHorizontalBlock"]'
    return (
        f"<style>.st-key-{key} {{container-type: inline-size;}} "
        f"@container (max-width: {below_rem:g}rem) {{{block} {{flex-wrap: wrap;}} "
        f'{block} > [data-testid="stColumn"]:last-child {{flex: 1 1 100% !important; width: 100% !important;}}}}'
        "</style>"
    )


def wrapping_columns(key: str, below_rem: float) -> DeltaGenerator:
    """A container whose ``st.columns`` put their last column under the others when the
    container is narrower than ``below_rem``: the Playground's rewards beside the screen on a
    projector, under it in half a laptop screen, where they would be cut.

    Streamlit stacks columns by the window's width only (below 640 px), not by the room the
    sidebar leaves; a container query on the documented ``st-key-`` class does it by the
    container's. Draw the columns inside the returned container, e.g. from a fragment.
    """
    st.html(wrapping_columns_css(key, below_rem))
    return st.container(key=key)


def scrolling_container(key: str, min_px: int) -> DeltaGenerator:
    """A container whose elements are at least ``min_px`` wide; narrower, it scrolls sideways.

    For a figure whose parts have a fixed size in px (annotations, fonts), which Plotly
    would otherwise squeeze onto each other. A style sheet on the documented ``st-key-``
    class, as in :func:`column_grid`.
    """
    st.html(
        f"<style>.st-key-{key} {{overflow-x: auto;}} "
        f'.st-key-{key} [data-testid="stElementContainer"] {{min-width: {int(min_px)}px;}}</style>'
    )
    return st.container(key=key)


def _magnet_key(prefix: str, label: str) -> str:
    return f"{prefix}.magnet.{label}"


def magnets_to_display(magnets: Sequence[float], normalised: bool) -> np.ndarray:
    """SI settings to slider values: 1/m^2 and mrad, or [-1, 1] when ``normalised``; shape (5,)."""
    if normalised:
        return np.round(normalised_magnets(magnets), 6)
    return np.asarray(magnets, dtype=np.float64) * MAGNET_DISPLAY_SCALE


def magnets_from_display(values: Sequence[float], normalised: bool) -> np.ndarray:
    """Slider values back to SI settings (1/m^2, rad) within the magnets' limits, shape (5,)."""
    if normalised:
        return physical_magnets(values)
    return np.clip(np.asarray(values, dtype=np.float64) / MAGNET_DISPLAY_SCALE, -MAGNET_LIMITS, MAGNET_LIMITS)


def slider_limit(limit: float, step: float) -> float:
    """The end of a symmetric slider for ``±limit``: the limit rounded up to a whole number
    of steps, so that 0 and the ends are on the slider's grid (which starts at its minimum).
    The corrector's 6.1782 mrad gives 6.18; :func:`magnets_from_display` clips it back."""
    return round(np.ceil(limit / step - 1e-9) * step, 10)


def slider_page_step(low: float, high: float, step: float) -> float:
    """How far PageUp/PageDown (and Shift + arrow) move a Streamlit slider, in its units:
    a tenth of its range on its ``step`` grid, at least one step (React Aria's ``pageSize``,
    which Streamlit's slider uses and does not let the app set)."""
    return round(max(round((high - low) / 10 / step) * step, step), 10)


def set_magnet_sliders(prefix: str, magnets: Sequence[float], normalised: bool) -> None:
    """Move the magnet sliders to ``magnets`` (SI). Call before the sliders are drawn
    in this run (e.g. from a button's ``on_click``)."""
    values = magnets_to_display(magnets, normalised)
    limits = np.ones(5) if normalised else MAGNET_LIMITS * MAGNET_DISPLAY_SCALE
    for label, value, limit in zip(MAGNET_LABELS, values, limits, strict=True):
        st.session_state[_magnet_key(prefix, label)] = float(np.clip(value, -limit, limit))


def magnet_sliders(prefix: str, normalised: bool = False, *, disabled: bool = False) -> np.ndarray:
    """Five sliders for ``[Q1, Q2, CV, Q3, CH]``, bounded by the magnets' limits.

    :param prefix: session-state namespace of the sliders.
    :param normalised: show settings as the agent sees them, in [-1, 1] (the limits).
    :return: the settings in SI units (1/m^2, rad), shape (5,).
    """
    limits = MAGNET_LIMITS * MAGNET_DISPLAY_SCALE
    values = []
    for i, label in enumerate(MAGNET_LABELS):
        key = _magnet_key(prefix, label)
        st.session_state.setdefault(key, 0.0)
        if normalised:
            low, high, step, fmt, unit = -1.0, 1.0, NORMALISED_STEP, "%+.2f", "normalised"
        else:
            step = MAGNET_DISPLAY_STEPS[i]
            high = slider_limit(float(limits[i]), step)
            low = -high
            fmt, unit = ("%+.1f" if step >= 0.1 else "%+.2f"), MAGNET_DISPLAY_UNITS[i]
        kind = "quadrupole k1" if i in (0, 1, 3) else "corrector angle"
        # One arrow press is 0.1 of ±72 1/m²: keyboard users need the bigger keys.
        keys = (
            f"Keys: ←/→ {step:g}, PageUp/PageDown (or Shift + ←/→) {slider_page_step(low, high, step):g}, "
            "Home/End the limits."
        )
        values.append(
            st.slider(
                f"{label} ({unit})",
                min_value=low,
                max_value=high,
                step=step,
                format=fmt,
                key=key,
                persist_state="session",
                disabled=disabled,
                help=f"{label}: {kind}, limit ±{limits[i]:g} {MAGNET_DISPLAY_UNITS[i]}. {keys}",
            )
        )
    return magnets_from_display(values, normalised)


def convert_magnet_sliders(prefix: str, normalised_key: str) -> None:
    """``on_change`` of a "normalised" toggle: re-express the sliders in the new units."""
    now_normalised = bool(st.session_state[normalised_key])
    old = [st.session_state.get(_magnet_key(prefix, label), 0.0) for label in MAGNET_LABELS]
    set_magnet_sliders(prefix, magnets_from_display(old, not now_normalised), now_normalised)


def target_sliders(prefix: str, default: Sequence[float]) -> np.ndarray:
    """Four sliders for the target beam in mm, bounded by the screen.

    :param default: initial target ``[mu_x, sigma_x, mu_y, sigma_y]`` in m.
    :return: the target in m, shape (4,).
    """
    values = []
    for name, value in zip(BEAM_PARAMETER_NAMES, default, strict=True):
        low, high = TARGET_LIMITS_MM[name]
        key = f"{prefix}.target.{name}"
        st.session_state.setdefault(key, float(np.clip(value * MM, low, high)))
        values.append(
            st.slider(
                f"{BEAM_LABELS[name]} (mm)",
                min_value=float(low),
                max_value=float(high),
                step=0.01,
                key=key,
                persist_state="session",
            )
        )
    return np.array(values) / MM


def screen_chart_figure(beam: np.ndarray, target: np.ndarray | None, *, height: int = 340) -> go.Figure:
    """The figure :func:`screen_chart` sends: envlib's screen with the image as a PNG picture.

    Per slider move, the browser redraws a picture with fixed margins ~35 ms faster than a
    heatmap with automatic margins (which take a second layout pass).
    """
    spec = screen_spec(beam, target, height=height, image="png")
    spec["layout"]["margin"] = dict(l=50, r=10, t=10, b=45)
    spec["layout"]["yaxis"]["constrain"] = "domain"  # both axes shrink: 1 mm = 1 mm, no empty band
    return go.Figure(spec)  # validated once (update_* calls afterwards cost ~1.5 ms per move)


def plotly_chart(figure: go.Figure | dict, *, key: str, where: DeltaGenerator | None = None, **kwargs) -> None:
    """``st.plotly_chart`` without Streamlit's chart theme, for every chart of the app: the
    theme draws axis titles and ticks in #808495 (3.7:1 on white, below 4.5:1 for text);
    Plotly's own template draws them in #2a3f5f (~11:1).

    :param where: the container to draw in (default: the current one).
    """
    (where or st).plotly_chart(figure, key=key, theme=None, **kwargs)


def screen_chart(beam: np.ndarray, target: np.ndarray | None, *, key: str, height: int = 340) -> None:
    """The screen (envlib's Plotly figure): image, screen edges, beam and target ellipses."""
    plotly_chart(screen_chart_figure(beam, target, height=height), key=key, config={"displayModeBar": False})


def beam_table_data(readout: Readout, terms: Sequence[str]) -> pd.DataFrame:
    """Beam against target in mm, with each error and whether it counts in obj."""
    rows = {
        BEAM_LABELS[name]: {
            "beam (mm)": f"{readout.beam[i] * MM:+.4f}",
            "target (mm)": f"{readout.target[i] * MM:+.4f}",
            "error (mm)": f"{readout.errors[i] * MM:.4f}",
            "in obj": "✓" if name in terms else "—",
        }
        for i, name in enumerate(BEAM_PARAMETER_NAMES)
    }
    return pd.DataFrame.from_dict(rows, orient="index")


def beam_table(readout: Readout, terms: Sequence[str]) -> None:
    """The beam parameters against the target (a static table: readable, cheap)."""
    st.table(beam_table_data(readout, terms))


def formula_lines(lines: Sequence[str]) -> None:
    """LaTeX equations, one per line, as inline math: a long one wraps at its ``+`` and ``=``
    in a narrow column, where ``st.latex``'s display math would be cut."""
    st.markdown("  \n".join(f"${line}$" for line in lines))


def reward_readout_markdown(
    readout: Readout,
    terms: Sequence[str],
    *,
    reference_label: str = "last reset",
    last_step: tuple[int, Mapping[str, float]] | None = None,
) -> str:
    """Markdown (with LaTeX) of every reward mode's value and formula, and of obj_j,
    obj_{j-1} and obj_0; see :func:`reward_readout`.

    The formulas are inline math: it wraps at ``=`` and ``+`` in a narrow column (a 1024 px
    projector), where display math is cut off."""

    def earned(mode: str) -> str:
        # Right after a Step the sliders sit on the magnets, so an improvement reward reads
        # 0 there: what the step itself earned is the number the student is looking for.
        return "" if last_step is None else f" · step {last_step[0]} earned {last_step[1][mode]:+.4f}"

    modes = "\n\n".join(
        f"`{mode}` = **{readout.rewards[mode]:+.4f}**{earned(mode)}  \n${reward_latex(mode, readout.time_reward)}$"
        for mode in REWARD_MODES
    )
    return (
        f"${objective_latex(terms)}$\n\n"
        # Lines, not a table: three columns of numbers do not fit a projector's narrow column.
        f"{OBJ_LABELS['obj']} = **{readout.objective * MM:.4f}** mm at the sliders' setting  \n"
        f"{OBJ_LABELS['obj_previous']} = {readout.previous_objective * MM:.4f} mm after the last step  \n"
        f"{OBJ_LABELS['obj_0']} = {readout.objective_0 * MM:.4f} mm at the {reference_label}\n\n"
        f"{modes}\n\n"
        f"Beam on the screen: **{readout.pixel_sum:.2%}** of its charge "
        f"(centre {'on' if readout.on_screen else '**off**'} the screen). "
        "`sum_of_pixels` is minus this fraction: it stays at −1 whatever the beam's size, "
        "as long as the beam is fully on the screen."
    )


def reward_readout(
    readout: Readout,
    terms: Sequence[str],
    *,
    reference_label: str = "last reset",
    last_step: tuple[int, Mapping[str, float]] | None = None,
) -> None:
    """Every reward mode's value at ``readout`` with its formula, and obj_j, obj_{j-1}, obj_0.

    One Markdown element: inside a fragment that reruns per slider move, every element is
    one more message to the browser (the readout used to be ~25 of them).

    :param terms: the beam parameters in obj.
    :param reference_label: what obj_0 refers to, in words.
    :param last_step: ``(step, reward per mode)`` of the last step taken, shown beside each
        reward; None before any.
    """
    st.markdown(reward_readout_markdown(readout, terms, reference_label=reference_label, last_step=last_step))


def markdown_text(text: str) -> str:
    """A user-chosen name as literal Markdown: no emphasis, links, math or HTML from it."""
    return "".join("\\" + ch if ch in "\\`*_{}[]()#+-.!|<>:~$" else ch for ch in text)


def plotly_text(text: str) -> str:
    """A user-chosen name for Plotly's trace names and annotations, which render HTML tags
    (``<b>``, ``<br>``): escaped."""
    return html.escape(text, quote=False)


def stable_slot(key: str) -> int:
    """A number from ``key`` that is the same in every session and process (``hash`` is not)."""
    return zlib.crc32(key.encode())


def distinct_colors(preferred: Sequence[tuple[str, int]], palette: Sequence[str]) -> dict[str, str]:
    """key -> colour: each key in turn takes its preferred slot of ``palette``, or the next
    free one if an earlier key has it, so up to ``len(palette)`` keys all differ and a key
    keeps its colour when others come and go.

    :param preferred: ``(key, slot)`` pairs, in the order keys get to choose.
    """
    taken: set[int] = set()
    colors = {}
    for key, slot in preferred:
        slot %= len(palette)
        while slot in taken and len(taken) < len(palette):
            slot = (slot + 1) % len(palette)
        taken.add(slot)
        colors[key] = palette[slot]
    return colors
