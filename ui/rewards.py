"""Pieces of the Reward designer page: a spec editor, the reward at the Playground's state,
landscapes side by side, and the hand-over to the Train page."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import streamlit as st

from envlib.beamline import BEAM_PARAMETER_NAMES, MAGNET_LABELS, BeamlineSimulator
from envlib.config import ConfigError, EnvConfig, RunConfig, TrainConfig
from envlib.figures import cut_figure, landscape_figure
from envlib.landscape import GridBeams, Landscape, cut_grid, landscape_grid, landscape_of, reward_parts_at
from envlib.reward_spec import MAX_WEIGHT, OBJECTIVE_FORMS, REWARD_KINDS, RewardSpec, RewardSpecError, preset
from envlib.task import EpisodeStart
from ui.widgets import (
    BEAM_LABELS,
    MAGNET_DISPLAY_SCALE,
    MAGNET_DISPLAY_UNITS,
    cell_width,
    column_grid,
    formula_lines,
    markdown_text,
    plotly_chart,
)

#: Help of "Objective form": how each beam error e = beam − target counts, in a student's words.
OBJECTIVE_FORM_HELP = (
    "How each beam error e (beam − target) counts in the objective. "
    "**absolute**: |e|, in mm: an error twice as big costs twice as much. "
    "**squared**: e², in mm²: big errors dominate, and near the target the small ones count almost "
    "nothing, so the reward goes flat just before the goal. "
    "**log**: ln of the weighted |e| sum: every step 10 times closer earns the same, so the last "
    "microns still pay."
)
#: Below this spread (max − min over the grid) a landscape is called flat.
FLAT_SPREAD = 1e-2
#: Help of a landscape's "Spread over the grid" line.
SPREAD_HELP = (
    "Spread = the highest minus the lowest reward on this grid, in the reward's own units (the colour "
    "bar's): mm of beam error for the absolute form, mm² for squared, no unit when normalised by obj₀ "
    "or for log. A big spread means moving these two magnets changes the reward a lot: the agent gets a "
    f"clear signal. Below {FLAT_SPREAD:g} the landscape is called flat."
)
#: Help of the landscapes' caption: what the colours' saturation means.
LANDSCAPE_COLOURS_HELP = (
    "The colour scale runs from the grid's 30th percentile to its best reward: the worst 30 % of the "
    "settings (usually a blown-up beam, far from the target) all get the darkest colour. Otherwise their "
    "huge penalties would stretch the scale and the detail near the best point would be one colour. "
    "Hover a point for its exact reward."
)

#: Session-state key the Train page reads a config to prefill from.
TRAIN_PREFILL_KEY = "train.prefill"
PRESETS = ("negative_objective", "objective_improvement", "sum_of_pixels")
#: Points of the one-dimensional cut.
CUT_POINTS = 400
#: Narrowest a weight slider gets before the four wrap two and two (rem).
WEIGHT_MIN_REM = 5.5
#: Narrowest a landscape gets before the two go one under the other (rem): axes, colour bar
#: and a readable heatmap (at 800 px with the sidebar open, two in a row were 65 px strips).
LANDSCAPE_MIN_REM = 16.0


@dataclass(frozen=True)
class RewardState:
    """The state a reward is looked at in: an episode start plus the magnets before and now.

    :param start: initial state of the episode (defines obj_0).
    :param previous_magnets: the magnets one step before (for improvement rewards).
    :param magnets: the magnets whose reward is shown, ``[Q1, Q2, CV, Q3, CH]``.
    :param source: where the state comes from, for the page's caption.
    """

    start: EpisodeStart
    previous_magnets: np.ndarray
    magnets: np.ndarray
    source: str

    def key(self) -> str:
        """A stable text key for caching."""
        s = self.start
        return json.dumps(
            [s.target.tolist(), s.incoming.tolist(), s.misalignments.tolist(), s.magnets.tolist(),
             self.previous_magnets.tolist(), self.magnets.tolist()]
        )  # fmt: skip


def _widget_values(spec: RewardSpec) -> dict[str, object]:
    values: dict[str, object] = {
        "kind": spec.kind,
        "form": spec.form,
        "normalize": spec.normalize,
        "pixel_weight": spec.pixel_weight,
        "time_reward": spec.time_reward,
        "off_screen_penalty": spec.off_screen_penalty,
        "success_bonus": spec.success_bonus,
    }
    values.update({f"w_{n}": w for n, w in spec.weight_map.items()})
    return values


def _load_preset(key: str) -> None:
    spec = preset(st.session_state[f"{key}.preset"], BEAM_PARAMETER_NAMES[1::2])
    for name, value in _widget_values(spec).items():
        st.session_state[f"{key}.{name}"] = value


def spec_editor(key: str, default_preset: str) -> RewardSpec | None:
    """Widgets that edit one reward spec; shows its formula. None while it is invalid.

    :param key: session-state namespace of this editor, e.g. ``"rd.a"``.
    :param default_preset: the tutorial mode it starts from.
    """
    if f"{key}.kind" not in st.session_state:
        st.session_state[f"{key}.preset"] = default_preset
        _load_preset(key)
    st.selectbox(
        "Start from the tutorial's", PRESETS, key=f"{key}.preset", on_change=_load_preset, args=(key,),
        persist_state="session",
        help="Loads the tutorial reward mode as a spec, with the tutorial's focusing obj (σx and σy, "
        "weight 1 each; the Playground's obj may count other terms); then change any term.",
    )  # fmt: skip
    # A wrapping row: in a narrow column the form goes below the kind, whose names stay whole.
    row = st.container(horizontal=True)
    row.radio("Kind", REWARD_KINDS, key=f"{key}.kind", width="content", persist_state="session",
              help="-Ô_j, or the improvement Ô_{j-1} - Ô_j of this step.")  # fmt: skip
    row.selectbox("Objective form", OBJECTIVE_FORMS, key=f"{key}.form", persist_state="session",
                  help=OBJECTIVE_FORM_HELP)  # fmt: skip
    st.toggle("Normalise by obj₀", key=f"{key}.normalize", persist_state="session",
              help="Divide by obj₀, the objective at the state at reset.")  # fmt: skip
    st.caption("Weights of each beam parameter's error (0 leaves it out)")
    # Four in a row where they fit; two and two in a projector's narrow column, not four stubs.
    weights = column_grid(f"{key.replace('.', '-')}-weights", WEIGHT_MIN_REM, items=len(BEAM_PARAMETER_NAMES))
    for name in BEAM_PARAMETER_NAMES:
        weights.slider(BEAM_LABELS[name], 0.0, 5.0, step=0.25, key=f"{key}.w_{name}", persist_state="session",
                       width=cell_width(WEIGHT_MIN_REM))  # fmt: skip
    c1, c2 = st.columns(2)
    c1.slider("Sum of pixels weight", 0.0, 5.0, step=0.25, key=f"{key}.pixel_weight", persist_state="session",
              help="Adds -w × (sum of the screen's pixels) = -w × fraction of the beam on the screen.")  # fmt: skip
    # value=0: an emptied field means "none", not the field's minimum (-10 per step).
    c2.number_input("Time reward per step", -10.0, 10.0, value=0.0, step=0.1, key=f"{key}.time_reward",
                    persist_state="session")  # fmt: skip
    c1.number_input("Penalty while off screen", -MAX_WEIGHT, 0.0, value=0.0, step=0.5, key=f"{key}.off_screen_penalty",
                    persist_state="session")  # fmt: skip
    c2.number_input("Bonus within thresholds", 0.0, MAX_WEIGHT, value=0.0, step=0.5, key=f"{key}.success_bonus",
                    persist_state="session",
                    help="Needs success thresholds in the training config.")  # fmt: skip
    try:
        spec = spec_from_state(key)
    except RewardSpecError as exc:
        st.error(f"**{exc.key}**: {exc.message}")
        return None
    formula_lines(spec.latex_lines())
    return spec


def spec_from_state(key: str) -> RewardSpec:
    """The spec the editor ``key`` holds in session state; :class:`RewardSpecError` if invalid."""
    return RewardSpec(
        kind=st.session_state[f"{key}.kind"],
        weights={n: st.session_state[f"{key}.w_{n}"] for n in BEAM_PARAMETER_NAMES},
        form=st.session_state[f"{key}.form"],
        normalize=st.session_state[f"{key}.normalize"],
        pixel_weight=st.session_state[f"{key}.pixel_weight"],
        time_reward=st.session_state[f"{key}.time_reward"],
        off_screen_penalty=st.session_state[f"{key}.off_screen_penalty"],
        success_bonus=st.session_state[f"{key}.success_bonus"],
    )


def show_reward_at(spec: RewardSpec, state: RewardState, simulator: BeamlineSimulator) -> float:
    """The spec's value at ``state``, term by term; returns the reward."""
    parts = reward_parts_at(spec, state.start, state.previous_magnets, state.magnets, simulator)
    total = float(sum(parts.values()))
    st.metric("Reward of this step", f"{total:.4f}")
    st.caption(" · ".join(f"{name}: {value:+.4f}" for name, value in parts.items()))
    return total


def _state_from_key(state_json: str) -> tuple[EpisodeStart, np.ndarray, np.ndarray]:
    """The episode start, previous magnets and magnets of a :meth:`RewardState.key`."""
    target, incoming, misalignments, start_magnets, previous, magnets = (np.array(v) for v in json.loads(state_json))
    start = EpisodeStart(target=target, incoming=incoming, misalignments=misalignments, magnets=start_magnets)
    return start, previous, magnets


# The beams are cached, not the rewards: a new weight or form costs no tracking, only numpy.
@st.cache_data(max_entries=48, show_spinner=False)
def _cached_grid(state_json: str, x_index: int, y_index: int, n: int) -> GridBeams:
    from ui.common import shared_simulator

    start, previous, magnets = _state_from_key(state_json)
    return landscape_grid(
        start, magnets, shared_simulator(), x_index=x_index, y_index=y_index, n=n, previous_magnets=previous
    )


@st.cache_data(max_entries=48, show_spinner=False)
def _cached_cut_grid(state_json: str, index: int, n: int) -> GridBeams:
    from ui.common import shared_simulator

    start, previous, magnets = _state_from_key(state_json)
    return cut_grid(start, magnets, shared_simulator(), index=index, n=n, previous_magnets=previous)


def landscape(spec: RewardSpec, state: RewardState, x_index: int, y_index: int, n: int) -> Landscape:
    """The spec's landscape over two magnets at ``state`` (the grid's beams cached per state)."""
    return landscape_of(spec, _cached_grid(state.key(), x_index, y_index, n))


def show_landscape(land: Landscape, title: str) -> None:
    """Heatmap plus a one-line verdict on how informative the landscape is."""
    # The title outside the figure: in a narrow column the legend wraps onto a title inside it.
    st.markdown(f"**{title}**")
    plotly_chart(landscape_figure(land), width="stretch", key=f"land.{title}")
    bx, by, best = land.best
    at_limit = bool(
        np.isclose(abs(bx), np.abs(land.x_values).max()) or np.isclose(abs(by), np.abs(land.y_values).max())
    )
    about_spread = SPREAD_HELP
    if land.spread < FLAT_SPREAD:
        verdict = "⚠️ **Flat**: the reward hardly changes over the grid — an agent gets no signal here."
    elif at_limit:
        verdict = "⚠️ **Best at a magnet limit**: this reward pays for extreme settings, not for a good beam."
        about_spread = None  # the line does not give the spread
    else:
        verdict = f"Spread over the grid: {land.spread:.3g}."
    best_x, best_y = (_magnet_setting(i, v) for i, v in ((land.x_index, bx), (land.y_index, by)))
    st.caption(
        f"Best point: {land.x_label} = {best_x}, {land.y_label} = {best_y} (reward {best:.4g}). {verdict}",
        help=about_spread,
    )


def _magnet_setting(index: int, value: float) -> str:
    """A magnet's setting (SI) in the sliders' and the axes' units, e.g. ``-6.18 mrad``."""
    return f"{value * MAGNET_DISPLAY_SCALE[index]:.3g} {MAGNET_DISPLAY_UNITS[index]}"


def show_cut(specs: dict[str, RewardSpec], state: RewardState, index: int) -> None:
    """Reward of each spec along one magnet, the others held (the cut's beams cached per state)."""
    grid = _cached_cut_grid(state.key(), index, CUT_POINTS)
    curves = {name: landscape_of(spec, grid).reward[0] for name, spec in specs.items()}
    plotly_chart(cut_figure(index, grid.x_values, curves, float(state.magnets[index])), width="stretch", key="cut")


def training_config_for(spec: RewardSpec) -> RunConfig:
    """The tutorial's training config with ``spec`` as its reward.

    A spec that weighs a position error needs the correctors and sees the target; a
    focusing-only spec keeps the tutorial's three quadrupoles.
    """
    steers = spec.weight_map["mu_x"] > 0 or spec.weight_map["mu_y"] > 0
    env = EnvConfig(
        reward_mode="custom",
        reward=spec,
        objective_terms=BEAM_PARAMETER_NAMES if steers else ("sigma_x", "sigma_y"),
        actuators="all" if steers else "quadrupoles",
        observation="beam_magnets_target" if steers else "beam_magnets",
    )
    return RunConfig(env=env, train=TrainConfig(), description="Trained from the Reward designer.")


#: Session-state flag: a "Train with reward" click handed a config over; go to the Train page.
_GO_TRAIN_KEY = "rd.go_train"


def _hand_over(key: str) -> None:
    """on_click of "Train with reward": the spec as the editor holds it now (a value typed just
    before the click included), handed to the Train page; nothing if it cannot be trained."""
    try:
        config = training_config_for(spec_from_state(key))
    except (RewardSpecError, ConfigError):
        return  # the rerun disables the button and says why
    st.session_state[TRAIN_PREFILL_KEY] = config.to_dict()
    st.session_state[_GO_TRAIN_KEY] = True


def follow_train_click() -> None:
    """Go to the Train page if "Train with reward" was clicked. Call it before the page draws:
    after the landscapes, the click waited for a whole rerun of the page (~0.6 s in a browser)."""
    if st.session_state.pop(_GO_TRAIN_KEY, False):
        st.switch_page("pages/train.py")


def train_button(spec: RewardSpec | None, key: str, name: str) -> None:
    """"Train with reward <name>": hands the tutorial's config with the spec of editor ``key``
    to the Train page (see :func:`follow_train_click`).

    Disabled, with the reason under it, while the spec cannot be trained: it is invalid, or
    the training config refuses it (a bonus within thresholds, and the tutorial sets none).
    """
    refused = None
    if spec is not None:
        try:
            training_config_for(spec)
        except ConfigError as exc:  # raised on the click, it took the rest of the page down
            refused = exc
    st.button(f"Train with reward {name}", disabled=spec is None or refused is not None, key=f"rd.train.{name}",
              type="primary", on_click=_hand_over, args=(key,))  # fmt: skip
    if refused is not None:
        why = _TRAIN_REFUSALS.get(refused.key) or f"{refused}. Change the reward above to train it."
        st.error(markdown_text(f"Cannot train reward {name} as it is: {why}"))


#: A training config's refusal in the designer's words, with what to do, by its key.
_TRAIN_REFUSALS = {
    "reward.success_bonus": "its bonus within thresholds needs success thresholds, and the tutorial's training "
    "config sets none. Set the bonus to 0 to train it from here.",
}


def magnet_picker(label: str, key: str, default: int) -> int:
    """A select box over ``[Q1, Q2, CV, Q3, CH]``; returns the index."""
    return st.selectbox(
        label, range(5), index=default, format_func=lambda i: MAGNET_LABELS[i], key=key, persist_state="session"
    )


def playground_reward_state(simulator: BeamlineSimulator) -> RewardState:
    """The Playground's state of this browser session, or the demo beam at zero magnets.

    The reward is shown for the Playground's slider setting (one step from the magnets the
    environment is at), with obj_0 from the Playground's last reset.
    """
    from envlib.playground import PlaygroundSession
    from ui.playground import K_SESSION, slider_magnets

    session = st.session_state.get(K_SESSION)
    if isinstance(session, PlaygroundSession) and session.env.start is not None:
        return RewardState(
            start=session.env.start,
            previous_magnets=session.magnets,
            magnets=slider_magnets(),
            source="At the Playground's state: its beam, target and magnets (change them there).",
        )
    default = st.session_state.get("rd.default_session")
    if default is None:
        default = st.session_state["rd.default_session"] = PlaygroundSession(simulator=simulator)
    return RewardState(
        start=default.env.start,
        previous_magnets=default.magnets,
        magnets=default.magnets,
        source="At the Playground's starting state (demo beam, magnets at zero): open the Playground to change it.",
    )
