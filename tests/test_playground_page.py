"""The Playground page through Streamlit's AppTest: what a student sees is what envlib computes."""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
from pathlib import Path

import numpy as np
import pytest
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

import ui.playground
from envlib import rewards
from envlib.beamline import BEAM_PARAMETER_NAMES, DELTA_LIMITS, MAGNET_LIMITS
from envlib.config import DEMO_INCOMING_BEAM
from envlib.playground import DEMO_STEPS, HISTORY_COLUMNS, TUTORIAL_TARGET
from envlib.pretrained import PRETRAINED
from envlib.runs import ObsNormalizer
from envlib.screen import pixel_sum
from ui.widgets import BEAM_LABELS, OBJ_LABELS

APP = str(Path(__file__).resolve().parents[1] / "app.py")
ALL = ("mu_x", "sigma_x", "mu_y", "sigma_y")
MAGNETS = ("Q1", "Q2", "CV", "Q3", "CH")


@pytest.fixture
def app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def set_magnets(at: AppTest, **values: float) -> None:
    """Move magnet sliders (display units: 1/m^2, mrad) and rerun."""
    for label, value in values.items():
        at.slider(key=f"pg.magnet.{label}").set_value(value)
    at.run()
    assert not at.exception, at.exception


def shown_beam(at: AppTest) -> dict[str, tuple[float, float, float]]:
    """(beam, target, error) in mm for each parameter, as the table shows them."""
    table = at.table[0].value
    return {
        name: tuple(float(table.loc[BEAM_LABELS[name], col]) for col in ("beam (mm)", "target (mm)", "error (mm)"))
        for name in BEAM_PARAMETER_NAMES
    }


def readout_text(at: AppTest) -> str:
    (text,) = [m.value for m in at.main.markdown if "sum_of_pixels` =" in m.value]
    return text


def shown_reward(at: AppTest, mode: str) -> float:
    """The value the readout shows for a reward mode."""
    return float(re.search(rf"`{mode}` = \*\*([+-]?\d+\.\d+)\*\*", readout_text(at)).group(1))


def shown_objectives(at: AppTest) -> tuple[float, float, float]:
    """obj_j, obj_{j-1} and obj_0 in mm, as the readout shows them."""
    text = readout_text(at)
    return tuple(
        float(re.search(rf"{re.escape(OBJ_LABELS[k])} = \**(\d+\.\d+)\** mm", text).group(1))
        for k in ("obj", "obj_previous", "obj_0")
    )


def envlib_beam(simulator, magnets_si) -> np.ndarray:
    """The beam on the screen for the demo beam, no misalignments, shape (4,) in m."""
    return simulator.track(np.asarray(magnets_si), np.array(DEMO_INCOMING_BEAM), np.zeros(8))[0]


def test_page_loads_with_magnets_target_screen_and_rewards(app):
    assert app.title[0].value == "Playground"
    assert [s.label for s in app.sidebar.slider] == ["μx (mm)", "σx (mm)", "μy (mm)", "σy (mm)"]
    assert [s.label for s in app.main.slider] == ["Q1 (1/m²)", "Q2 (1/m²)", "CV (mrad)", "Q3 (1/m²)", "CH (mrad)"]
    q1, cv = app.slider(key="pg.magnet.Q1"), app.slider(key="pg.magnet.CV")
    assert (q1.min, q1.max) == (-72.0, 72.0)
    assert cv.max == pytest.approx(MAGNET_LIMITS[2] * 1e3, abs=0.01)  # on the 0.01 mrad grid
    assert len(app.get("plotly_chart")) == 3  # the screen and the two history plots
    # Not in Streamlit's chart theme, whose axis titles and ticks are 3.7:1 on white.
    assert [c.proto.theme for c in app.get("plotly_chart")] == ["", "", ""]
    # At load the sliders are where the episode was reset: obj_j = obj_0, and the beam is on the screen.
    assert shown_reward(app, "negative_objective") == -1.0
    assert shown_reward(app, "objective_improvement") == 0.0
    assert shown_reward(app, "sum_of_pixels") == pytest.approx(-1.0)


def test_moving_a_magnet_shows_the_beam_envlib_computes(app, simulator):
    before = shown_beam(app)
    set_magnets(app, Q1=12.5, CV=-1.5)
    beam = envlib_beam(simulator, [12.5, 0.0, -1.5e-3, 0.0, 0.0])
    shown = shown_beam(app)
    for i, name in enumerate(BEAM_PARAMETER_NAMES):
        assert shown[name][0] == pytest.approx(beam[i] * 1e3, abs=6e-5)
        assert shown[name][1] == pytest.approx(TUTORIAL_TARGET[i] * 1e3, abs=6e-5)
        assert shown[name][2] == pytest.approx(abs(beam[i] - TUTORIAL_TARGET[i]) * 1e3, abs=6e-5)
    assert shown != before


def test_reward_readout_matches_envlibs_reward_functions(app, simulator):
    set_magnets(app, Q1=20.0, Q2=-10.0, Q3=5.0)
    target = np.array(TUTORIAL_TARGET)
    beam = envlib_beam(simulator, [20.0, -10.0, 0.0, 5.0, 0.0])[None]
    beam_0 = envlib_beam(simulator, np.zeros(5))[None]
    obj, obj_0 = rewards.objective(beam, target, ALL), rewards.objective(beam_0, target, ALL)
    expected = {
        "negative_objective": rewards.negative_objective(obj, obj_0)[0],
        # No step yet: obj_{j-1} is the reset state.
        "objective_improvement": rewards.objective_improvement(obj_0, obj, obj_0)[0],
        "sum_of_pixels": rewards.sum_of_pixels(pixel_sum(beam))[0],
    }
    for mode, value in expected.items():
        assert shown_reward(app, mode) == pytest.approx(value, abs=6e-5), mode
    obj_shown, previous_shown, obj_0_shown = shown_objectives(app)
    assert obj_shown == pytest.approx(obj[0] * 1e3, abs=6e-5)
    assert previous_shown == obj_0_shown == pytest.approx(obj_0[0] * 1e3, abs=6e-5)
    for mode in rewards.REWARD_MODES:
        assert f"${rewards.reward_latex(mode)}$" in readout_text(app)


def test_sum_of_pixels_shows_minus_one_while_the_beam_stays_on_the_screen(app):
    shown = []
    for q in (0.0, 6.0, 12.0):
        set_magnets(app, Q1=q, Q2=-q)
        shown.append((shown_reward(app, "negative_objective"), shown_reward(app, "sum_of_pixels")))
    assert len({n for n, _ in shown}) == 3
    assert {p for _, p in shown} == {-1.0}
    set_magnets(app, Q1=0.0, Q2=0.0, CV=6.0)  # off the top of the screen
    assert shown_reward(app, "sum_of_pixels") > -0.5


def test_step_appends_to_the_history_and_the_sliders_follow_the_magnets(app):
    set_magnets(app, Q1=30.0, Q2=-3.0)
    session = app.session_state["pg.session"]
    assert len(session.history) == 1
    [step] = [b for b in app.button if b.label == "Step"]
    step.click().run()
    assert not app.exception
    assert len(session.history) == 2 and session.steps == 1
    # delta mode: Q1 moved by at most 10 % of its limit, and the slider shows where it is.
    assert session.magnets[0] == pytest.approx(DELTA_LIMITS[0])
    assert app.slider(key="pg.magnet.Q1").value == pytest.approx(DELTA_LIMITS[0])
    assert app.slider(key="pg.magnet.Q2").value == pytest.approx(-3.0)
    assert shown_reward(app, "negative_objective") == pytest.approx(
        session.history[1]["reward_negative_objective"], abs=6e-5
    )
    assert shown_objectives(app)[1] == pytest.approx(session.history[1]["objective"] * 1e3, abs=6e-5)
    history_chart = app.get("plotly_chart")[1].proto.spec  # rewards per step
    assert '"name":"negative_objective"' in history_chart
    # The rewards start at step 1, the errors at step 0: both charts span the same steps.
    rewards_x, errors_x = (json.loads(c.proto.spec)["layout"]["xaxis"]["range"] for c in app.get("plotly_chart")[1:])
    assert rewards_x == errors_x == [-0.5, 1.5]


def test_direct_mode_steps_onto_the_sliders(app):
    app.radio(key="pg.action_mode").set_value("direct").run()
    set_magnets(app, Q1=30.0)
    [step] = [b for b in app.button if b.label == "Step"]
    step.click().run()
    assert app.session_state["pg.session"].magnets[0] == pytest.approx(30.0)


def test_magnet_slider_help_names_the_bigger_keyboard_steps(app):
    # An arrow press moves a quadrupole 0.1 of ±72 1/m²: the help names PageUp/PageDown and Home/End.
    assert "PageUp/PageDown (or Shift + ←/→) 14.4, Home/End the limits" in app.slider(key="pg.magnet.Q1").help
    assert "PageUp/PageDown (or Shift + ←/→) 1.24," in app.slider(key="pg.magnet.CV").help
    app.toggle(key="pg.normalised").set_value(True).run()
    assert "PageUp/PageDown (or Shift + ←/→) 0.2," in app.slider(key="pg.magnet.Q1").help


def test_corrector_sliders_reach_zero_and_stop_at_the_limit(app):
    cv = app.slider(key="pg.magnet.CV")
    assert (cv.min, cv.max, cv.step) == (-6.18, 6.18, 0.01)  # 0 is min + 618 steps, on the slider's grid
    app.radio(key="pg.action_mode").set_value("direct").run()
    set_magnets(app, CV=6.18)
    [step] = [b for b in app.button if b.label == "Step"]
    step.click().run()
    assert app.session_state["pg.session"].magnets[2] == MAGNET_LIMITS[2]  # 6.1782 mrad, not beyond


def test_reset_puts_the_magnets_back_to_zero(app):
    set_magnets(app, Q1=5.0, CH=1.0)
    [step] = [b for b in app.button if b.label == "Step"]
    step.click().run()
    [reset] = [b for b in app.button if b.label == "Reset"]
    reset.click().run()
    session = app.session_state["pg.session"]
    assert np.array_equal(session.magnets, np.zeros(5)) and len(session.history) == 1
    assert [app.slider(key=f"pg.magnet.{m}").value for m in MAGNETS] == [0.0] * 5


def test_play_runs_the_tutorials_corrector_sweep(app, monkeypatch):
    monkeypatch.setattr(ui.playground, "DEMO_DELAY_S", 0.0)
    app.radio(key="pg.action_mode").set_value("direct").run()
    [play] = [b for b in app.button if b.label == "Play demo"]
    play.click().run()
    assert not app.exception
    session = app.session_state["pg.session"]
    assert len(session.history) == 1 + DEMO_STEPS
    cv = [row["CV"] for row in session.history[1:]]
    np.testing.assert_allclose(cv, (-0.5 + np.arange(DEMO_STEPS) / DEMO_STEPS) * MAGNET_LIMITS[2], rtol=1e-9)
    assert app.slider(key="pg.magnet.CV").value == pytest.approx(0.4 * MAGNET_LIMITS[2] * 1e3, abs=0.01)
    assert "pg.demo" not in app.session_state


def test_play_from_delta_mode_switches_to_direct_mode_as_in_the_tutorial(app, monkeypatch):
    monkeypatch.setattr(ui.playground, "DEMO_DELAY_S", 0.0)
    assert app.radio(key="pg.action_mode").value == "delta"
    [play] = [b for b in app.button if b.label == "Play demo"]
    play.click().run()
    assert not app.exception
    assert app.radio(key="pg.action_mode").value == "direct"
    session = app.session_state["pg.session"]
    assert session.config.action_mode == "direct" and len(session.history) == 1 + DEMO_STEPS
    # Not capped at 10 % per step: Q3 is at 0.3 of its limit from the first step on.
    np.testing.assert_allclose([row["Q3"] for row in session.history[1:]], 0.3 * MAGNET_LIMITS[3], rtol=1e-9)
    assert "New setup" not in " ".join(t.value for t in app.toast)


def test_play_after_delta_steps_starts_a_direct_episode_and_the_history_says_so(app, monkeypatch):
    monkeypatch.setattr(ui.playground, "DEMO_DELAY_S", 0.0)
    set_magnets(app, Q1=30.0)
    [step] = [b for b in app.button if b.label == "Step"]
    step.click().run()
    step.click().run()
    session = app.session_state["pg.session"]
    assert [row["action_mode"] for row in session.history] == ["delta"] * 3
    [play] = [b for b in app.button if b.label == "Play demo"]
    play.click().run()
    assert not app.exception
    session = app.session_state["pg.session"]
    # The delta steps are not in the demo's episode: it starts at step 0, from zero magnets.
    assert [row["step"] for row in session.history] == list(range(1 + DEMO_STEPS))
    assert {row["action_mode"] for row in session.history} == {"direct"}
    assert session.history[0]["Q1"] == 0.0
    [note] = [c.value for c in app.caption if c.value.startswith("This episode")]
    assert "action_mode **direct**" in note
    assert "every reward mode" in app.get("plotly_chart")[1].proto.spec


def test_clear_history_and_csv_download(app, monkeypatch):
    downloads = {}  # url -> bytes, as the page hands them to Streamlit's media store
    original = MemoryMediaFileStorage.load_and_get_id

    def recorded(self, path_or_data, mimetype, kind, filename=None):
        file_id = original(self, path_or_data, mimetype, kind, filename)
        downloads[self.get_url(file_id)] = path_or_data
        return file_id

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", recorded)

    def downloaded_csv() -> list[dict[str, str]]:
        [button] = app.get("download_button")
        assert button.proto.label == "Download CSV"
        text = downloads[button.proto.url].decode()
        assert text == session.history_csv()
        reader = csv.DictReader(io.StringIO(text))
        assert reader.fieldnames == list(HISTORY_COLUMNS)
        return list(reader)

    set_magnets(app, Q1=5.0)
    [step] = [b for b in app.button if b.label == "Step"]
    step.click().run()
    session = app.session_state["pg.session"]
    assert len(session.history) == 2
    rows = downloaded_csv()
    assert [row["step"] for row in rows] == ["0", "1"]
    assert float(rows[1]["Q1"]) == pytest.approx(5.0)
    assert float(rows[1]["reward_negative_objective"]) == pytest.approx(session.history[1]["reward_negative_objective"])
    [clear] = [b for b in app.button if b.label == "Clear history"]
    clear.click().run()
    assert len(session.history) == 1
    [row] = downloaded_csv()
    assert float(row["Q1"]) == pytest.approx(5.0), "the current state stays as the first row"
    assert row["reward_negative_objective"] == ""


def test_normalised_view_shows_what_the_agent_sees_and_keeps_the_beam(app):
    set_magnets(app, Q1=36.0, CV=-3.0)
    before = shown_beam(app)
    app.toggle(key="pg.normalised").set_value(True).run()
    assert app.slider(key="pg.magnet.Q1").value == pytest.approx(0.5)
    assert app.slider(key="pg.magnet.CV").value == pytest.approx(-3.0 / (MAGNET_LIMITS[2] * 1e3), abs=1e-6)
    assert (app.slider(key="pg.magnet.Q1").min, app.slider(key="pg.magnet.Q1").max) == (-1.0, 1.0)
    assert shown_beam(app) == before
    app.toggle(key="pg.normalised").set_value(False).run()
    assert app.slider(key="pg.magnet.Q1").value == pytest.approx(36.0)


def test_a_new_target_starts_a_new_episode_with_its_own_reference(app):
    [step] = [b for b in app.button if b.label == "Step"]
    set_magnets(app, Q1=7.0)
    step.click().run()
    app.slider(key="pg.target.mu_x").set_value(0.0).run()
    session = app.session_state["pg.session"]
    assert session.config.target_beam_values[0] == 0.0
    assert session.magnets[0] == pytest.approx(7.0), "magnets stay where they were"
    assert len(session.history) == 1
    assert shown_objectives(app)[2] == pytest.approx(session.objective_0 * 1e3, abs=6e-5)


def test_objective_terms_are_chosen_and_shown(app):
    app.button_group(key="pg.terms").set_value(["sigma_x", "sigma_y"]).run()
    assert app.session_state["pg.session"].config.objective_terms == ("sigma_x", "sigma_y")
    table = app.table[0].value
    assert list(table["in obj"]) == ["—", "✓", "—", "✓"]
    assert f"${rewards.objective_latex(('sigma_x', 'sigma_y'))}$" in readout_text(app)
    app.button_group(key="pg.terms").set_value([]).run()
    assert "at least one" in app.warning[0].value
    assert app.session_state["pg.session"].config.objective_terms == ALL


def test_new_random_beam_draws_from_a_shown_seed(app):
    [new_beam] = [b for b in app.button if b.label == "New random beam"]
    new_beam.click().run()
    session = app.session_state["pg.session"]
    assert app.number_input(key="pg.beam_seed").value == 1
    first = session.config.incoming_values
    assert first != DEMO_INCOMING_BEAM
    app.number_input(key="pg.beam_seed").set_value(5).run()
    assert session.config.incoming_values != first
    app.number_input(key="pg.beam_seed").set_value(1).run()
    assert session.config.incoming_values == first, "the same seed gives the same beam"
    app.toggle(key="pg.random_beam").set_value(False).run()
    assert session.config.incoming_values == DEMO_INCOMING_BEAM


def test_two_browser_sessions_do_not_share_state():
    first, second = AppTest.from_file(APP, default_timeout=60), AppTest.from_file(APP, default_timeout=60)
    first.run()
    second.run()
    untouched = shown_beam(second)
    set_magnets(first, Q1=25.0)
    [step] = [b for b in first.button if b.label == "Step"]
    step.click().run()
    second.run()
    assert shown_beam(second) == untouched
    assert len(second.session_state["pg.session"].history) == 1
    assert first.session_state["pg.session"] is not second.session_state["pg.session"]
    # ... while the Cheetah beamline is built once and shared.
    assert first.session_state["pg.session"].env.task.simulator is second.session_state["pg.session"].env.task.simulator


def test_a_bad_server_setting_is_named_on_the_page_and_the_playground_still_works(monkeypatch):
    monkeypatch.setenv("ARES_HEAVY_AT_ONCE", "many")
    monkeypatch.setenv("ARES_MAX_TIMESTEPS", "-1")
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    messages = [e.value for e in at.error]
    assert any("ARES_HEAVY_AT_ONCE" in m and "'many'" in m for m in messages)
    assert any("ARES_MAX_TIMESTEPS" in m and "'-1'" in m for m in messages)
    set_magnets(at, Q1=5.0)
    assert at.slider(key="pg.magnet.Q1").value == 5.0


def test_in_delta_mode_a_slider_beyond_one_step_says_where_step_stops(app):
    set_magnets(app, Q1=30.0)
    [note] = [c.value for c in app.caption if c.value.startswith("Step stops at")]
    assert note.startswith("Step stops at Q1 +7.2:")  # 10 % of 72 1/m^2
    [step] = [b for b in app.button if b.label == "Step"]
    step.click().run()
    assert app.session_state["pg.session"].magnets[0] == pytest.approx(7.2)
    set_magnets(app, Q1=10.0)  # within one step of 7.2: nothing to say
    assert not [c for c in app.caption if c.value.startswith("Step stops at")]
    app.radio(key="pg.action_mode").set_value("direct").run()
    set_magnets(app, Q1=60.0)
    assert not [c for c in app.caption if c.value.startswith("Step stops at")]


def test_the_history_lines_differ_for_colour_blind_students_and_without_colour():
    from color_vision import distance

    from envlib.beamline import BeamlineSimulator
    from envlib.playground import PlaygroundSession, playground_config

    session = PlaygroundSession(playground_config(), BeamlineSimulator())
    session.step_to(np.zeros(5))
    rewards_fig, errors_fig = ui.playground.history_figures(session.history, ("sigma_x", "sigma_y"))
    for fig in (rewards_fig, errors_fig):
        traces = list(fig.data)
        assert len({t.marker.symbol for t in traces}) == len(traces), "each line has a marker of its own"
        for a, b in itertools.combinations(traces, 2):
            for vision in ("deuteranopia", "protanopia"):
                # objective_improvement (green) and sum_of_pixels (red) were 8 apart for deuteranopes.
                assert distance(a.line.color, b.line.color, vision) >= 15, (a.name, b.name, vision)
    # The reward modes' lines cross: they differ in dash too (the errors' dash says "in obj").
    assert len({t.line.dash for t in rewards_fig.data}) == len(rewards_fig.data)


def test_after_a_step_each_reward_also_says_what_that_step_earned(app):
    # Before any step there is nothing to say.
    assert "earned" not in readout_text(app)
    set_magnets(app, Q1=30.0)
    [step] = [b for b in app.button if b.label == "Step"]
    step.click().run()
    session = app.session_state["pg.session"]
    # Delta mode: the sliders now sit on the magnets, so the improvement at the sliders is 0 …
    assert shown_reward(app, "objective_improvement") == 0.0
    # … and what the step earned (from the history) is shown beside every reward.
    text = readout_text(app)
    for mode in rewards.REWARD_MODES:
        earned = float(re.search(rf"`{mode}` = \*\*[^*]+\*\* · step 1 earned ([+-]\d+\.\d+)", text).group(1))
        assert earned == pytest.approx(session.history[-1][f"reward_{mode}"], abs=6e-5)
    assert session.history[-1]["reward_objective_improvement"] > 0.01  # the beam did get smaller
    # Clear history forgets the step: nothing earned to show.
    next(b for b in app.button if b.label == "Clear history").click().run()
    assert "earned" not in readout_text(app)


def observation_expander(at: AppTest):
    [expander] = [e for e in at.expander if e.label == "What the agent observes"]
    return expander


def test_what_the_agent_observes_shows_the_envs_13_values_and_what_is_hidden(app):
    app.toggle(key="pg.misaligned").set_value(True).run()
    set_magnets(app, Q1=30.0)
    [step] = [b for b in app.button if b.label == "Step"]
    step.click().run()
    assert not app.exception, app.exception
    session = app.session_state["pg.session"]
    expander = observation_expander(app)
    assert expander.proto.expanded is False, "collapsed: it must not push the live panel down"
    observed, hidden = (t.value for t in expander.table)
    names = ["target_mu_x", "target_sigma_x", "target_mu_y", "target_sigma_y",
             "beam_mu_x", "beam_sigma_x", "beam_mu_y", "beam_sigma_y", "Q1", "Q2", "CV", "Q3", "CH"]  # fmt: skip
    assert list(observed.index) == names
    # The values are the environment's observation after the step (Q1 moved by one delta step).
    assert float(observed.loc["Q1", "value"]) == pytest.approx(DELTA_LIMITS[0], rel=1e-4)
    assert float(observed.loc["beam_sigma_x", "value"]) == pytest.approx(session.history[-1]["sigma_x"], rel=1e-3)
    assert observed.loc["CV", "unit"] == "rad" and observed.loc["target_mu_x", "unit"] == "m"
    # ... and what the full-task agent's network gets after its normaliser.
    normaliser = ObsNormalizer.load(PRETRAINED["full-task"].path / "normalizer.npz")
    network = normaliser.normalize(session.observation().reshape(1, -1))[0]
    np.testing.assert_allclose(observed["to the network"].astype(float), network, atol=6e-3)
    # Hidden: the incoming beam's 11 values and the 8 misalignments the sidebar switched on, with units.
    assert list(hidden.index[:1]) == ["incoming_energy"] and hidden.loc["incoming_energy", "unit"] == "eV"
    assert len(hidden) == 19 and hidden.index[-1] == "misalignment_screen_y"
    shown = hidden["value"].astype(float).to_numpy()
    np.testing.assert_allclose(shown[:11], DEMO_INCOMING_BEAM, rtol=1e-3)
    np.testing.assert_allclose(shown[11:], session.config.misalignment_values, rtol=1e-3)
    assert max(abs(shown[11:])) > 0
    text = " ".join(m.value for m in (*expander.markdown, *expander.caption))
    assert "Markov" in text and "observable" in text and "frame stacking" in text


def test_a_broken_shipped_config_leaves_the_observation_panel_working(tmp_path, monkeypatch):
    import types

    import ui.observation

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.yaml").write_text("env: [unclosed\n")
    agents = [types.SimpleNamespace(path=broken, display_name="Broken"), PRETRAINED["negobj-delta"]]
    monkeypatch.setattr(ui.observation, "AGENTS", agents)
    ui.observation._shipped_observations.clear()
    try:
        names = [name for name, _, _ in ui.observation._shipped_observations()]
        assert names == [PRETRAINED["negobj-delta"].display_name]
    finally:
        ui.observation._shipped_observations.clear()
