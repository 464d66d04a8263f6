"""The Compare page through Streamlit's AppTest: two agents, one seed, the same beam for both."""

from __future__ import annotations

import base64
import itertools
import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from streamlit.testing.v1 import AppTest

from envlib.beamline import BeamlineSimulator
from envlib.compare import scenario_starts
from envlib.config import RunConfig
from envlib.rewards import objective_latex
from envlib.training import train

APP = str(Path(__file__).resolve().parents[1] / "app.py")
AGENTS = ["run/pixels-delta", "run/objimp-direct"]
AGENTS_SHOWN = ["pixels-delta", "objimp-direct"]


def tiny_run(runs_dir: Path, run_id: str, seed: int, **env: object) -> None:
    config = RunConfig.from_dict(
        {
            "display_name": run_id,
            "env": env,
            "train": {"n_envs": 4, "n_steps": 32, "batch_size": 64, "n_epochs": 2, "total_timesteps": 256,
                      "net_arch": [8], "eval_every": 0, "seed": seed},
        }
    )  # fmt: skip
    train(config, runs_dir / run_id)


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory) -> Path:
    """A runs folder with two finished (tiny, really trained) runs of different rewards."""
    folder = tmp_path_factory.mktemp("runs")
    tiny_run(folder, "pixels-delta", 1, reward_mode="sum_of_pixels")
    tiny_run(folder, "objimp-direct", 2, reward_mode="objective_improvement", action_mode="direct")
    return folder


def open_compare(runs_dir: Path, monkeypatch) -> AppTest:
    """The app on ``runs_dir``, switched to the Compare page and run once."""
    monkeypatch.setenv("ARES_RUNS_DIR", str(runs_dir))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("pages/compare.py")
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.fixture
def page(runs_dir, monkeypatch) -> AppTest:
    return open_compare(runs_dir, monkeypatch)


def _array(value) -> np.ndarray:
    """A Plotly JSON array: a list, or a typed array ``{"dtype", "bdata"[, "shape"]}``."""
    if isinstance(value, dict):
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"])).astype(np.float64)
    return np.asarray(value, dtype=np.float64)


def screens(at: AppTest) -> dict:
    """The spec of the animated screens figure."""
    (chart,) = [c for c in at.get("plotly_chart") if "cmp.screens" in c.proto.id]
    return json.loads(chart.proto.spec)


def shown_beams(at: AppTest, step: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The beam ellipse (x, y in mm) on every agent's screen in the frame of ``step``."""
    frame = next(f for f in screens(at)["frames"] if f["name"] == str(step))
    # Four traces per agent: image, target, the beam's dark edge, the beam.
    return [(_array(t["x"]), _array(t["y"])) for t in frame["data"][3::4]]


def run_two_agents(at: AppTest, seed: int) -> None:
    at.multiselect(key="cmp.agents").set_value(AGENTS)
    at.number_input(key="cmp.seed").set_value(seed)
    at.run()
    next(b for b in at.button if b.label == "Run side by side").click()
    at.run()
    assert not at.exception, at.exception


def test_the_objective_the_agents_share_is_shown_above_them(page):
    page.multiselect(key="cmp.agents").set_value(AGENTS).run()
    # Both runs keep the tutorial's focusing objective (sigma_x and sigma_y).
    shown = [m.value for m in page.markdown if m.value.startswith(r"$\mathrm{obj} =")]
    assert shown == [f"${objective_latex(('sigma_x', 'sigma_y'))}$"]


def test_two_agents_start_from_the_same_beam_and_the_table_appears(page):
    run_two_agents(page, seed=5)
    # At the last step: two different agents, two different beams.
    last = shown_beams(page, 25)
    assert len(last) == 2
    assert not np.allclose(last[0][0], last[1][0])
    # At step 0 the same beam, and it is seed 5's beam tracked through the beamline: the
    # ellipse's centre is (mu_x, mu_y).
    first = shown_beams(page, 0)
    np.testing.assert_array_equal(first[0][0], first[1][0])
    np.testing.assert_array_equal(first[0][1], first[1][1])
    start = scenario_starts([5])[0]
    beam = BeamlineSimulator().track(start.magnets, start.incoming, start.misalignments)[0]
    x, y = first[0]
    assert x[:-1].mean() == pytest.approx(beam[0] * 1e3, abs=1e-4)
    assert y[:-1].mean() == pytest.approx(beam[2] * 1e3, abs=1e-4)
    table = page.table[0].value
    assert list(table["agent"]) == [r"pixels\-delta", r"objimp\-direct"]  # literal Markdown
    assert (table["steps"] == 25).all()
    # Each agent's return is in its own reward: named so, and said not to compare across agents.
    assert r"return \(own reward\)" in table.columns
    note = next(c.value for c in page.caption if "own reward" in c.value)
    assert "does not compare" in note and "yardstick" in note


def test_each_shipped_agents_lesson_shows_only_after_the_run_it_explains(page):
    # The page asks "what do you expect each one to do?": the lessons answer it, so none before a run.
    assert not [c for c in page.caption if "Lesson" in c.value]
    assert not [c for c in page.markdown if "time penalty makes it attractive" in c.value]
    next(b for b in page.button if b.label == "Run side by side").click()
    page.run()
    assert not page.exception, page.exception
    # After it, the tutorial's five panels: each one's lesson, its whole description on hover.
    lessons = {c.value: c.proto.help for c in page.caption if c.value.startswith("**Lesson:**")}
    assert len(lessons) == 5
    gary = next(text for text in lessons if "termination the agent can trigger" in text)
    assert "time penalty makes it attractive" in gary
    assert "push the beam off the screen" in lessons[gary]


def test_each_panel_folds_the_agents_whole_training_config_without_its_lesson(page):
    configs = [e for e in page.expander if e.label.startswith("Training config")]
    # The tutorial's five shipped agents: each trained for 1M steps in 100 envs, not Train's preset.
    assert [e.label for e in configs] == ["Training config (1,000,000 steps, 100 envs)"] * 5
    texts = [e.code[0].value for e in configs]
    gary = yaml.safe_load(next(t for t in texts if "time_reward: -1.0" in t))
    assert gary["train"]["total_timesteps"] == 1_000_000 and gary["train"]["frame_stack"] == 4
    assert gary["env"]["abort_if_off_screen"] is True
    assert not [t for t in texts if "Lesson" in t or "description" in t]  # the answer waits for a run


def test_a_description_shows_as_literal_text_and_none_shows_nothing():
    from ui import compare as ui

    assert ui.lesson_text(None) is None and ui.lesson_text("  ") is None
    assert ui.lesson_text("My *try*: obj_j\n twice") == (r"My \*try\*\: obj\_j twice", None)
    caption, tooltip = ui.lesson_text("Pixels. Lesson: a reward that does not measure the goal gets gamed.")
    assert caption == r"**Lesson:** a reward that does not measure the goal gets gamed\."
    assert tooltip.startswith(r"Pixels\. Lesson\:")


def test_one_slider_and_play_move_every_screen_through_the_steps(page):
    run_two_agents(page, seed=5)
    spec = screens(page)
    assert [f["name"] for f in spec["frames"]] == [str(s) for s in range(26)]
    (slider,) = spec["layout"]["sliders"]
    assert slider["active"] == 25  # opens at the outcome
    assert [s["args"][0] for s in slider["steps"]] == [[str(s)] for s in range(26)]
    play = spec["layout"]["updatemenus"][0]["buttons"][0]
    assert play["method"] == "animate" and play["args"][0] == [str(s) for s in range(26)]
    # Every frame moves both screens (four traces each) and names both agents.
    for frame in spec["frames"]:
        assert len(frame["data"]) == 8
        texts = [a["text"] for a in frame["layout"]["annotations"]]
        assert all(any(t.endswith(f"</span> <b>{name}</b>") for t in texts) for name in AGENTS_SHOWN), texts


def test_another_seed_gives_another_beam(page):
    run_two_agents(page, seed=5)
    five = shown_beams(page, 0)[0]
    next(b for b in page.button if b.label == "New seed").click()
    page.run()
    assert page.number_input(key="cmp.seed").value != 5
    assert not np.allclose(shown_beams(page, 0)[0][0], five[0])


def test_evaluate_on_n_seeds_shows_a_table_per_agent(page):
    run_two_agents(page, seed=5)
    page.number_input(key="cmp.episodes").set_value(4)
    page.run()
    next(b for b in page.button if b.label == "Evaluate on 4 seeds").click()
    page.run()
    assert not page.exception, page.exception
    table = page.table[1].value
    assert list(table["agent"]) == [r"pixels\-delta", r"objimp\-direct"]
    assert {r"mean \(µm\)", r"left the screen \(%\)", "mean episode length"} <= set(table.columns)
    assert (table["mean episode length"] == 25).all()


def evaluate(at: AppTest, episodes: int) -> None:
    at.number_input(key="cmp.episodes").set_value(episodes)
    at.run()
    next(b for b in at.button if b.label == f"Evaluate on {episodes} seeds").click()
    at.run()
    assert not at.exception, at.exception


def test_many_episodes_follows_the_chosen_agents(page):
    run_two_agents(page, seed=5)
    evaluate(page, 4)
    assert list(page.table[1].value["agent"]) == [r"pixels\-delta", r"objimp\-direct"]
    # One agent removed: the episode shows one, and no evaluation still shows both.
    page.multiselect(key="cmp.agents").set_value(AGENTS[:1]).run()
    assert list(page.table[0].value["agent"]) == [r"pixels\-delta"]
    assert len(page.table) == 1, "the old evaluation is gone"
    assert not [m for m in page.markdown if "2 agents on 4 episodes" in m.value]
    assert any("changed since the last evaluation" in i.value for i in page.info)
    evaluate(page, 4)
    assert list(page.table[1].value["agent"]) == [r"pixels\-delta"]
    assert any("1 agent on 4 episodes" in m.value for m in page.markdown)


def chart(at: AppTest, key: str) -> dict:
    """The spec of the Plotly chart with this key."""
    (found,) = [c for c in at.get("plotly_chart") if key in c.proto.id]
    return json.loads(found.proto.spec)


def colors_shown(at: AppTest) -> dict[str, set[str]]:
    """Every colour each agent is drawn in: panel square, screen name, curves, magnets, boxes."""
    shown: dict[str, set[str]] = {}
    for m in at.markdown:
        if found := re.fullmatch(r'#### :color\[■\]\{foreground="(#\w+)"\} (.+)', m.value):
            shown.setdefault(found[2].replace("\\", ""), set()).add(found[1])
    for key in ("cmp.curves", "cmp.magnets", "cmp.box"):
        for trace in chart(at, key)["data"] if any(key in c.proto.id for c in at.get("plotly_chart")) else []:
            if trace.get("name") in shown:
                shown[trace["name"]].add(trace.get("line", {}).get("color"))
    for a in screens(at)["layout"]["annotations"]:
        if found := re.fullmatch(r'<span style="color:(#\w+)">■</span> <b>(.+)</b>', a["text"]):
            shown[found[2]].add(found[1])
    return shown


def test_an_agent_keeps_its_colour_in_every_figure_when_another_is_removed(page):
    run_two_agents(page, seed=5)
    evaluate(page, 2)
    before = colors_shown(page)
    assert all(len(colors) == 1 for colors in before.values()), before  # panel, screens, curves, boxes agree
    assert before["pixels-delta"] != before["objimp-direct"]
    page.multiselect(key="cmp.agents").set_value(AGENTS[1:]).run()
    evaluate(page, 2)
    assert colors_shown(page) == {"objimp-direct": before["objimp-direct"]}


def test_removing_david_leaves_bertha_her_colour_and_six_agents_get_six_colours(runs_dir):
    from envlib.compare import available_agents
    from ui.compare import agent_colors

    catalog = available_agents(runs_dir)
    five = catalog.tutorial_defaults()
    before = agent_colors(five)
    after = agent_colors([c for c in five if c.label != "David Archibald"])
    assert after == {label: color for label, color in before.items() if label != "David Archibald"}
    # Whichever six are chosen (runs' colours come from their ids, and can clash), all differ.
    for six in (catalog.choices[:6], catalog.choices[-6:], catalog.choices[2:8]):
        assert len(set(agent_colors(six).values())) == 6


def test_the_magnets_hover_names_the_whole_agent_the_magnet_and_its_unit(runs_dir):
    from envlib.agent import load_agent
    from envlib.compare import available_agents, compare
    from ui.compare import magnets_figure

    choice = next(c for c in available_agents(runs_dir).choices if c.key == "run/pixels-delta")
    long_name = "Bertha Sparkman, direct actions"  # Plotly's name box cut this after 15 characters
    result = compare({long_name: load_agent(choice.run_dir)}, [5])
    figure = magnets_figure(result, (0, 2))  # Q1 (a quadrupole) and CV (a corrector)
    q1, cv = (trace.hovertemplate for trace in figure.data)
    assert q1 == f"<b>{long_name}</b><br>step %{{x}}: Q1 %{{y:.2f}} 1/m²<extra></extra>"
    assert cv == f"<b>{long_name}</b><br>step %{{x}}: CV %{{y:.2f}} mrad<extra></extra>"


def test_the_choices_are_as_left_after_a_visit_to_another_page(page):
    page.multiselect(key="cmp.agents").set_value(AGENTS[1:])
    page.number_input(key="cmp.seed").set_value(42)
    page.selectbox(key="cmp.scenario").set_value("misaligned")
    page.run()
    next(b for b in page.button if b.label == "Run side by side").click()
    page.run()
    page.number_input(key="cmp.episodes").set_value(7)
    page.toggle(key="cmp.log").set_value(False)
    page.run()
    page.switch_page("pages/playground.py")
    page.run()
    page.switch_page("pages/compare.py")
    page.run()
    assert not page.exception, page.exception
    assert page.multiselect(key="cmp.agents").value == AGENTS[1:]
    assert page.number_input(key="cmp.seed").value == 42
    assert page.selectbox(key="cmp.scenario").value == "misaligned"
    assert page.number_input(key="cmp.episodes").value == 7
    assert page.toggle(key="cmp.log").value is False


def test_the_exported_figure_opens_offline_and_names_every_agent_and_flag(runs_dir):
    from envlib.agent import load_agent
    from envlib.compare import available_agents, compare
    from ui.compare import comparison_html

    choices = [c for c in available_agents(runs_dir).choices if c.key in AGENTS]
    result = compare({c.label: load_agent(c.run_dir) for c in choices}, [5])
    result.flags.loc[len(result.flags)] = ["objimp-direct", 0, "left_screen", 3, "<b>made up</b>"]
    page = comparison_html(result, choices, "mae_focus", True)
    assert page.count("<script src=") == 0  # plotly.js is inside, not fetched
    assert re.search(r"plotly\.js v\d+\.\d+", page)
    assert page.count('"method":"animate"') >= 27  # the screens' slider (26 steps) and Play work in the file
    for choice in choices:
        assert choice.label in page
    assert "&lt;b&gt;made up&lt;/b&gt;" in page  # user text is escaped


def test_a_damaged_run_gets_a_clear_message_not_a_crash(runs_dir, tmp_path, monkeypatch):
    import shutil

    copy = tmp_path / "runs"
    shutil.copytree(runs_dir, copy)
    (copy / "objimp-direct" / "model.zip").write_bytes(b"not a zip")
    at = open_compare(copy, monkeypatch)
    at.multiselect(key="cmp.agents").set_value(AGENTS)
    at.run()
    next(b for b in at.button if b.label == "Run side by side").click()
    at.run()
    assert not at.exception, at.exception
    [error] = [e.value for e in at.error if "model.zip" in e.value and "not a valid" in e.value]
    assert "**objimp\\-direct**" in error, error  # names the agent to remove (its label, as Markdown)


def test_a_lost_worker_gets_a_clear_message_and_the_next_run_works(page, monkeypatch):
    from envlib.workers import AgentWorkers, WorkerLost

    working = AgentWorkers.compare

    def lost(self, *args, **kwargs):
        raise WorkerLost("the worker process that runs the agents stopped twice during this request")

    monkeypatch.setattr(AgentWorkers, "compare", lost)
    run_two_agents(page, 914_101)
    assert any("did not finish" in e.value and "run again" in e.value for e in page.error)
    monkeypatch.setattr(AgentWorkers, "compare", working)
    next(b for b in page.button if b.label == "Run side by side").click()
    page.run()
    assert not page.exception and not page.error
    assert len(shown_beams(page, 0)) == 2, "both agents' screens after the next run"


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", "", "9999"])
def test_a_bad_heavy_at_once_names_the_variable_and_the_range(value, monkeypatch):
    from ui.common import heavy_at_once

    monkeypatch.setenv("ARES_HEAVY_AT_ONCE", value)
    with pytest.raises(ValueError, match=r"ARES_HEAVY_AT_ONCE must be a whole number from 1 to \d+"):
        heavy_at_once()


def test_heavy_at_once_is_one_by_default_and_takes_the_cores(monkeypatch):
    import os

    from ui.common import heavy_at_once

    monkeypatch.delenv("ARES_HEAVY_AT_ONCE", raising=False)
    assert heavy_at_once() == 1
    monkeypatch.setenv("ARES_HEAVY_AT_ONCE", str(os.cpu_count()))
    assert heavy_at_once() == os.cpu_count()


def test_flag_lists_wrap_to_their_screen_and_a_long_one_grows_the_figure_downwards(runs_dir):
    import pandas as pd

    from envlib.agent import load_agent
    from envlib.compare import FLAG_LABELS, available_agents, compare
    from ui import compare as ui

    choices = [c for c in available_agents(runs_dir).choices if c.key in AGENTS]
    result = compare({c.label: load_agent(c.run_dir) for c in choices}, [5])
    normal = ui.screens_figure(result)
    # Three agents share a row's width: every line fits a third of it, and no word is lost.
    flags = pd.DataFrame({"step": [2, 3, 3], "flag": ["blown_up", "left_screen", "aborted"]})
    lines = ui._flag_lines(flags, step=25, last=3, columns=3)
    assert max(len(line) for line in lines) <= ui.SCREENS_FLAG_CHARS // 3
    assert " ".join(lines).split() == " ".join(
        [f"⚠ step {s}: {FLAG_LABELS[f]}" for s, f in zip(flags["step"], flags["flag"], strict=True)]
        + ["episode over after 3 steps"]
    ).split()
    # Ten more flags on one agent: the figure grows by one line height per added line, and the
    # screens keep their size in px.
    before = max((len(ui._flag_lines(f, 25, 25, 2)) for _, f in result.flags.groupby("agent")), default=1)
    for step in range(10):
        result.flags.loc[len(result.flags)] = ["pixels-delta", 0, "pinned", step, "made up"]
    tall = ui.screens_figure(result)
    lines = max(len(ui._flag_lines(f, 25, 25, 2)) for _, f in result.flags.groupby("agent"))
    assert lines >= 10
    assert tall.layout.height == normal.layout.height + (lines - before) * ui.SCREENS_FLAG_LINE_PX

    def screen_px(figure):
        bottom, top = figure.layout.yaxis.domain
        return (top - bottom) * (figure.layout.height - ui.SCREENS_MARGIN_PX)

    assert screen_px(tall) == pytest.approx(screen_px(normal))


def test_six_agents_get_two_rows_of_three_screens_and_a_long_name_wraps():
    import pandas as pd

    from ui import compare as ui

    no_flags = pd.DataFrame({"step": [], "flag": []})
    names = ["Gary Buchwald", "David Archibald", "Bertha Sparkman", "Betty Gordon", "Sean Kelley",
             "weighted reward with a time penalty and abort (run-20261202-1412)"]  # fmt: skip
    episode = {name: ({0: {}, 25: {}}, no_flags) for name in names}
    height, places = ui.screens_grid(episode, 25)
    # Three columns side by side, the same three in the second row, under the first row's texts.
    assert {p.columns for p in places} == {3}
    assert [p.x0 for p in places[:3]] == [p.x0 for p in places[3:]]
    assert places[0].x0 == 0 and places[2].x0 + places[2].width == pytest.approx(1)
    assert all(p.top < places[0].flags for p in places[3:])
    assert all(p.bottom > 0 for p in places)
    # Four agents: two rows of two, not three and one.
    _, four = ui.screens_grid(dict(list(episode.items())[:4]), 25)
    assert [p.columns for p in four] == [2] * 4
    # The long name: two lines of its column's width, the rest shortened, whole on hover.
    title = ui._title_lines(names[-1], 3)
    assert len(title) == 2 and title[-1].endswith("…")
    assert max(map(len, title)) <= ui.SCREENS_TITLE_CHARS // 3
    assert ui._title_lines("Sean Kelley", 3) == ["Sean Kelley"]


def test_the_server_process_leaves_the_agents_runs_to_its_worker(runs_dir, agents_only_in_workers):
    """A Playground move waits for the server's one thread (the GIL): agents must not run on it.

    Every step of loading and running an agent raises in this process; the workers start with
    ``spawn`` and import their own modules, so the evaluation answers only if it ran there.
    """
    from envlib.compare import available_agents
    from envlib.evaluation import evaluation_seeds
    from ui import compare as ui

    choices = [c for c in available_agents(runs_dir).choices if c.key in AGENTS or c.key == "pretrained/negobj-delta"]
    request = ui.agent_request(choices)
    ui.run_comparison(request, (914_001,), "tutorial")  # workers started, agents loaded

    agents_only_in_workers()
    result = ui.run_comparison(request, tuple(evaluation_seeds(60)), "tutorial", keep_traces=False)
    assert len(result.per_episode) == 60 * len(choices) == 180
    assert (result.per_episode["length"] > 0).all()


def test_a_finished_run_whose_config_was_deleted_is_named_as_left_out(runs_dir, tmp_path, monkeypatch):
    import shutil

    copy = tmp_path / "runs"
    shutil.copytree(runs_dir, copy)
    (copy / "objimp-direct" / "config.yaml").unlink()
    at = open_compare(copy, monkeypatch)
    assert [w.value for w in at.warning if w.value.startswith("Left out")] == [
        "Left out: run objimp-direct: finished, but config.yaml is missing"
    ]
    options = at.multiselect(key="cmp.agents").options
    assert [o for o in options if "training run" in o] == ["pixels-delta  · training run"]


def test_agents_lines_differ_for_colour_blind_students_and_without_colour(runs_dir):
    from color_vision import distance

    from envlib.agent import load_agent
    from envlib.compare import available_agents, compare
    from ui.compare import agent_colors, curves_figure, magnets_figure

    catalog = available_agents(runs_dir)
    for six in (catalog.choices[:6], catalog.choices[-6:]):
        for a, b in itertools.combinations(agent_colors(six).values(), 2):
            for vision in ("deuteranopia", "protanopia"):
                assert distance(a, b, vision) >= 15, (a, b, vision)  # green and red were 6 apart
    two = [c for c in catalog.choices if c.key in AGENTS]
    colors = agent_colors(two)
    result = compare({c.label: load_agent(c.run_dir) for c in two}, [5])
    for fig in (curves_figure(result, colors=colors), magnets_figure(result, (0,), colors=colors)):
        lines = {t.name: (t.line.dash, t.marker.symbol if "markers" in (t.mode or "") else None)
                 for t in fig.data if t.showlegend is not False and t.name in colors}  # fmt: skip
        assert len(lines) == 2 and len({dash for dash, _ in lines.values()}) == 2, lines
        assert len({symbol for _, symbol in lines.values()}) == (2 if fig.data[0].mode == "lines+markers" else 1)


def test_names_and_flag_texts_over_the_screens_are_dark_enough_to_read(page):
    from color_vision import contrast

    from ui.compare import FLAG_RED, NO_FLAG_GREEN

    run_two_agents(page, seed=5)
    annotations = screens(page)["layout"]["annotations"]
    names = [a for a in annotations if "■</span>" in a["text"]]
    assert len(names) == 2
    # The name in dark text (orange text was 2.4:1 on white); its colour in the square before it.
    assert all(contrast(a["font"]["color"]) >= 4.5 for a in names)
    assert {re.search(r"color:(#\w+)", a["text"])[1] for a in names} == set(colors_shown(page)["pixels-delta"]) | set(
        colors_shown(page)["objimp-direct"]
    )
    # Flag texts on their tinted boxes (10 % of red or green over white): ≥ 4.5:1.
    for color, tint in ((FLAG_RED, (255, 43, 43)), (NO_FLAG_GREEN, (33, 195, 84))):
        box = "#" + "".join(f"{round(0.9 * 255 + 0.1 * c):02x}" for c in tint)
        assert contrast(color, box) >= 4.5, color
