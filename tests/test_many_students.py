"""A room of students on one real ``streamlit run app.py``, over Streamlit's websocket protocol.

Their reruns overlap in the server's threads and share one Cheetah segment; each student
must still see the beam of their own magnets.
"""

from __future__ import annotations

import asyncio
import contextlib

import numpy as np
from browser_support import streamlit_server
from streamlit_client import ScriptRun, StudentClient

from envlib.beamline import BeamlineSimulator
from envlib.config import DEMO_INCOMING_BEAM

STUDENTS = 8


def shown_beam_mm(run: ScriptRun) -> np.ndarray:
    """The beam column of the Playground's table: mu_x, sigma_x, mu_y, sigma_y in mm."""
    return run.table()["beam (mm)"].astype(float).to_numpy()


def expected_beam_mm(q1: float) -> np.ndarray:
    """What Cheetah gives for Q1 = ``q1`` 1/m^2, the other magnets at 0 (the Playground's default beam)."""
    beam = BeamlineSimulator().track(np.array([q1, 0, 0, 0, 0]), np.array(DEMO_INCOMING_BEAM), np.zeros(8))[0]
    return beam * 1e3


async def _room(url: str) -> list[tuple[float, np.ndarray]]:
    """Every student opens the Playground, then all move Q1 at once, each to their own value, twice."""
    async with contextlib.AsyncExitStack() as stack:
        students = [await stack.enter_async_context(StudentClient.connect(url)) for _ in range(STUDENTS)]
        await asyncio.gather(*(s.open_page() for s in students))
        seen = []
        for round_ in range(2):
            values = [-30.0 + 7.0 * i + round_ for i in range(STUDENTS)]
            runs = await asyncio.gather(
                *(s.set_slider(s.slider("pg.magnet.Q1"), v) for s, v in zip(students, values, strict=True))
            )
            seen += [(v, shown_beam_mm(run)) for v, run in zip(values, runs, strict=True)]
        return seen


def test_students_moving_magnets_at_the_same_time_each_see_their_own_beam(tmp_path):
    with streamlit_server(tmp_path) as server:
        seen = asyncio.run(_room(server.url))
    assert len(seen) == 2 * STUDENTS
    for q1, shown in seen:
        np.testing.assert_allclose(shown, expected_beam_mm(q1), atol=6e-5, err_msg=f"student who set Q1 = {q1}")
    assert len({tuple(shown) for _, shown in seen}) == len(seen), "every setting gave its own beam"


#: Playground moves during one evaluation: ~0.1 s each here, against ~10 s for the evaluation
#: (5 agents x 200 episodes in the server's worker, its table and box plot).
MOVES_DURING_EVALUATION = 20


async def _evaluation_beside_moves(url: str) -> tuple[ScriptRun, list[tuple[float, np.ndarray]], bool]:
    """One session evaluates the tutorial's agents on Compare while another keeps moving Q1.

    Returns the evaluation's run, the student's settings and beams, and whether the evaluation
    was still running when the student's last answer arrived.
    """
    async with StudentClient.connect(url) as instructor, StudentClient.connect(url) as student:
        await student.open_page()
        await instructor.open_page("compare")
        await instructor.click("Run side by side")
        await instructor.set_number("Episodes N", 200)
        evaluation = asyncio.ensure_future(instructor.click("Evaluate on 200 seeds"))
        await asyncio.sleep(0)  # the click goes out before the first move
        seen = []
        for i in range(MOVES_DURING_EVALUATION):
            q1 = -19.0 + 2.0 * i
            run = await student.set_slider(student.slider("pg.magnet.Q1"), q1)
            seen.append((q1, shown_beam_mm(run)))
        overlapped = not evaluation.done()
        return await evaluation, seen, overlapped


def test_an_evaluation_on_compare_and_playground_moves_at_the_same_time_both_get_their_answer(tmp_path):
    with streamlit_server(tmp_path) as server:
        evaluation, seen, overlapped = asyncio.run(_evaluation_beside_moves(server.url))
    assert overlapped, f"the evaluation answered before the student's {MOVES_DURING_EVALUATION} moves did"
    table = evaluation.table(-1)  # the last table: the evaluation's
    assert len(table) == 5, "a row per tutorial agent"
    charts = evaluation.of_kind("plotly_chart")
    assert len(charts) == 1, "the evaluation reran its own section (one box plot), not the episode's screens"
    assert (table["mean episode length"] > 0).all()
    assert len(seen) == MOVES_DURING_EVALUATION
    for q1, shown in seen:
        np.testing.assert_allclose(shown, expected_beam_mm(q1), atol=6e-5, err_msg=f"the student who set Q1 = {q1}")
