"""AppTest of the Reward designer page: specs, formulas, live value, landscapes, hand-over to Train."""

import base64
import json
import re

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from envlib.config import RunConfig
from envlib.landscape import reward_landscape, reward_parts_at
from envlib.playground import PlaygroundSession
from envlib.reward_spec import RewardSpec, preset
from ui.rewards import _widget_values, training_config_for


@pytest.fixture
def page():
    at = AppTest.from_file("../app.py", default_timeout=120).run()
    at.switch_page("pages/rewards.py").run()
    assert not at.exception
    return at


def formulas(at) -> list[str]:
    """The reward formulas on the page (Markdown, one inline-math equation per line)."""
    return [m.value for m in at.markdown if m.value.startswith("$") and "r_j = " in m.value]


def metric_values(at):
    return [float(m.value) for m in at.metric]


def test_page_shows_both_specs_with_formulas_and_landscapes(page):
    shown = formulas(page)
    assert len(shown) == 2
    assert r"\sigma_x" in shown[0] and "pixel" in shown[1]
    captions = " ".join(c.value for c in page.caption)
    assert "Best point: Q1" in captions
    # sum_of_pixels at the demo state: the beam is fully on the screen.
    assert metric_values(page)[1] == pytest.approx(-1.0, abs=1e-6)


def test_live_value_matches_envlib_for_an_edited_spec(page):
    page.slider(key="rd.a.w_mu_x").set_value(2.0).run()
    page.selectbox(key="rd.a.form").set_value("log").run()
    page.radio(key="rd.a.kind").set_value("objective_improvement").run()
    page.number_input(key="rd.a.time_reward").set_value(-0.5).run()
    assert not page.exception
    spec = RewardSpec(kind="objective_improvement", weights={"mu_x": 2.0, "sigma_x": 1.0, "sigma_y": 1.0},
                      form="log", time_reward=-0.5)  # fmt: skip
    session = PlaygroundSession()
    expected = sum(reward_parts_at(spec, session.env.start, session.magnets, session.magnets,
                                   session.env.task.simulator).values())  # fmt: skip
    assert metric_values(page)[0] == pytest.approx(expected, abs=1e-4)
    assert formulas(page)[0] == "  \n".join(f"${line}$" for line in spec.latex_lines())
    assert r"2\,|\mu_x" in formulas(page)[0] and r"\ln" in formulas(page)[0]


def test_invalid_spec_shows_the_key_and_keeps_the_page(page):
    for name in ("sigma_x", "sigma_y"):
        page.slider(key=f"rd.a.w_{name}").set_value(0.0).run()
    assert not page.exception
    assert any("weights" in e.value for e in page.error)
    assert len(formulas(page)) == 1  # only reward B still has a formula
    assert page.button(key="rd.train.A").disabled


def test_choosing_a_preset_loads_its_terms(page):
    page.selectbox(key="rd.b.preset").set_value("objective_improvement").run()
    assert page.session_state["rd.b.kind"] == "objective_improvement"
    assert page.session_state["rd.b.pixel_weight"] == 0.0
    assert page.session_state["rd.b.w_sigma_x"] == 1.0


def test_a_new_weight_redraws_the_landscapes_without_tracking_a_beam(page, monkeypatch):
    from envlib.beamline import BeamlineSimulator

    grids = []
    original = BeamlineSimulator.track_grid
    def counted(self, *args, **kwargs):
        grids.append(args)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(BeamlineSimulator, "track_grid", counted)
    page.slider(key="rd.a.w_mu_x").set_value(1.75).run()
    page.selectbox(key="rd.a.form").set_value("squared").run()
    assert not page.exception and len(page.get("plotly_chart")) == 3
    # Not in Streamlit's chart theme, whose axis titles and ticks are 3.7:1 on white.
    assert [c.proto.theme for c in page.get("plotly_chart")] == ["", "", ""]
    assert grids == [], "a reward's terms change what it pays, not where the beams go"
    page.selectbox(key="rd.y").set_value(3).run()  # a new pair of magnets does need new beams
    assert len(grids) == 1


def test_train_button_opens_the_train_page_with_the_spec_filled_in(page):
    page.slider(key="rd.a.w_mu_y").set_value(1.0).run()
    page.button(key="rd.train.A").click().run()
    assert not page.exception
    assert page.title[0].value.startswith("Train")
    assert page.get_by_key("train.f.env.reward_mode").value == "custom"
    assert "train.prefill" not in page.session_state  # taken by the Train page, once


def test_a_bonus_without_thresholds_disables_train_with_the_reason_and_keeps_the_page(page):
    page.number_input(key="rd.a.success_bonus").set_value(0.5).run()
    assert not page.exception
    assert page.button(key="rd.train.A").disabled and not page.button(key="rd.train.B").disabled
    [message] = [e.value for e in page.error]
    assert "Cannot train reward A" in message and "success" in message and "bonus to 0" in message
    page.button(key="rd.train.B").click().run()  # the other reward still trains
    assert not page.exception and page.title[0].value.startswith("Train")


def test_train_goes_to_the_train_page_before_the_landscapes_are_redrawn(page, monkeypatch):
    import ui.rewards

    drawn = []
    original = ui.rewards.show_landscape
    monkeypatch.setattr(ui.rewards, "show_landscape", lambda *a, **k: drawn.append(a) or original(*a, **k))
    page.number_input(key="rd.a.time_reward").set_value(-0.5)  # typed, then clicked: one rerun for both
    page.button(key="rd.train.A").click().run()
    assert not page.exception and page.title[0].value.startswith("Train")
    assert drawn == [], "the click waited for the whole Reward designer page to be drawn again"
    assert page.session_state["train.base"]["env"]["reward"]["time_reward"] == -0.5


def test_handed_over_config_is_valid_and_carries_the_spec():
    spec = RewardSpec(weights={"mu_y": 1.0, "sigma_x": 2.0}, form="squared")
    config = RunConfig.from_dict(training_config_for(spec).to_dict())
    assert config.env.reward_mode == "custom" and config.env.reward == spec
    assert config.env.actuators == "all"  # a position term needs the correctors


def shown_landscape(at, name):
    """The reward grid a landscape heatmap shows, shape (n_y, n_x)."""
    [chart] = [c for c in at.get("plotly_chart") if c.key == f"land.{name}"]
    z = json.loads(chart.proto.spec)["data"][0]["z"]
    shape = [int(n) for n in z["shape"].split(",")]
    return np.frombuffer(base64.b64decode(z["bdata"]), dtype=z["dtype"]).reshape(shape)


def test_preset_landscape_of_the_page_is_the_tutorial_reward(page, simulator):
    # The page's default spec A is the tutorial's negative_objective on the focusing terms.
    spec = preset("negative_objective")
    assert spec == RewardSpec(weights={"sigma_x": 1.0, "sigma_y": 1.0})
    assert {name: page.session_state[f"rd.a.{name}"] for name in _widget_values(spec)} == _widget_values(spec)
    # ... and its landscape over Q1 and Q2 at the Playground's state (magnets at zero) is that reward's.
    session = page.session_state["pg.session"]
    expected = reward_landscape(spec, session.env.start, session.magnets, simulator, x_index=0, y_index=1, n=100)
    np.testing.assert_allclose(shown_landscape(page, "Reward A"), expected.reward, rtol=1e-6)


def test_value_follows_the_playground_sliders():
    at = AppTest.from_file("../app.py", default_timeout=120).run()  # the Playground is the landing page
    at.slider(key="pg.magnet.Q1").set_value(12.0).run()
    at.switch_page("pages/rewards.py").run()
    assert not at.exception
    session = at.session_state["pg.session"]
    magnets = session.magnets.copy()
    magnets[0] = 12.0
    expected = sum(reward_parts_at(preset("negative_objective"), session.env.start, session.magnets, magnets,
                                   session.env.task.simulator).values())  # fmt: skip
    assert metric_values(at)[0] == pytest.approx(expected, abs=1e-4)
    assert expected != pytest.approx(-1.0, abs=1e-3)  # the slider moved the beam
    assert "Playground's state" in " ".join(c.value for c in at.caption)


def test_the_landscapes_current_point_is_the_step_the_card_shows():
    at = AppTest.from_file("../app.py", default_timeout=120).run()
    at.slider(key="pg.magnet.Q1").set_value(12.0).run()  # moved on the Playground, not applied
    at.switch_page("pages/rewards.py").run()
    at.selectbox(key="rd.a.preset").set_value("objective_improvement").run()
    assert not at.exception
    [chart] = [c for c in at.get("plotly_chart") if c.key == "land.Reward A"]
    now = json.loads(chart.proto.spec)["data"][1]["name"]  # the × marker's legend entry
    card = metric_values(at)[0]
    assert card != pytest.approx(0.0, abs=1e-3)  # a step from Q1 = 0 to 12 changes obj
    assert now == f"now: {card:.4f}"  # as the card reads it


def test_the_best_point_is_given_in_the_axes_units(page):
    page.selectbox(key="rd.x").set_value(2).run()  # CV along x, in mrad on the axis
    page.selectbox(key="rd.y").set_value(4).run()  # CH along y
    assert not page.exception
    captions = [c.value for c in page.caption if c.value.startswith("Best point")]
    assert len(captions) == 2
    for caption in captions:
        assert re.match(r"Best point: CV = [+-]?\d+(\.\d+)? mrad, CH = [+-]?\d+(\.\d+)? mrad ", caption), caption


def test_the_designers_jargon_has_help_in_a_students_words(page):
    # "Objective form: absolute": what each form does to an error, with its unit.
    form_help = page.selectbox(key="rd.a.form").help
    for words in ("absolute", "|e|", "mm", "squared", "e²", "mm²", "log", "microns"):
        assert words in form_help, words
    # "Spread over the grid: 157": what the number is and in which unit.
    [spread] = [c for c in page.caption if "Spread over the grid" in c.value]
    assert "highest minus the lowest reward" in spread.proto.help and "mm" in spread.proto.help
    assert "0.01" in spread.proto.help, "says when a landscape counts as flat"
    # "Colours saturate below the 30th percentile": said plainly, and why.
    [colours] = [c for c in page.caption if "darkest colour" in c.value]
    assert "30th percentile" in colours.proto.help and "worst 30 %" in colours.proto.help
    assert "penalties" in colours.proto.help
