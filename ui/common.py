"""UI pieces every page uses: the sidebar blurb and process-wide resources."""

from __future__ import annotations

import os
import re
import secrets
import threading

import streamlit as st
import torch

from envlib.beamline import BeamlineSimulator
from envlib.compare import available_agents
from envlib.jobs import JobLimits, JobManager, runs_dir_from_environment
from envlib.workers import AgentWorkers

ABOUT = (
    "**ARES Reward Lab** — learn how the reward definition shapes what a reinforcement-learning "
    "agent does, on a real accelerator task: focus and centre the electron beam on a screen of "
    "the ARES linac (DESY), simulated with Cheetah."
)


#: Query parameter that carries the owner token in the page's URL.
OWNER_PARAM = "owner"
#: An owner token as ``secrets.token_urlsafe(16)`` makes it: 22 URL-safe base64 characters.
OWNER_TOKEN = re.compile(r"[A-Za-z0-9_-]{22}")
#: Session-state key of this session's owner token.
OWNER_KEY = "train.owner"


def keep_owner_in_url() -> None:
    """Keep this session's owner token in ``?owner=`` on every page. ``app.py`` calls it first.

    Streamlit drops query parameters on a page change; were the token put back only by the
    Train page, a reload on any other page lost the student's jobs. A session without a token
    adopts a well-formed one from its URL (a reload, a bookmark), on whichever page it lands.
    Two dict look-ups per run; the URL changes only when the token is missing from it.
    """
    token = st.session_state.get(OWNER_KEY)
    from_url = st.query_params.get(OWNER_PARAM)
    if token is None:
        if isinstance(from_url, str) and OWNER_TOKEN.fullmatch(from_url):  # user input: only a well-formed token
            st.session_state[OWNER_KEY] = from_url
        return
    if from_url != token:
        st.query_params[OWNER_PARAM] = token


def session_owner() -> str:
    """This browser's owner token (random; it marks the jobs it started), kept in the URL.

    Session state alone dies with the tab, so a reload lost the student's jobs (and reset the
    per-user limit); the token therefore lives in ``?owner=`` too and is read back from there
    (:func:`keep_owner_in_url`). Made on the first visit to the Train page. Trade-off: whoever
    gets this URL shares these jobs. Fine for a classroom; the instructor password still
    controls every job.
    """
    keep_owner_in_url()
    token = st.session_state.get(OWNER_KEY)
    if token is None:
        token = st.session_state[OWNER_KEY] = secrets.token_urlsafe(16)
        st.query_params[OWNER_PARAM] = token
    return token


#: Captions at 75 % opacity, not Streamlit's 60 % (3.9:1 on the page, below 4.5:1).
#: ``!important``: Streamlit sets the opacity on the caption's own element, in a class rule.
CAPTION_CSS = '<style>[data-testid="stCaptionContainer"] {opacity: 0.75 !important;}</style>'


def sidebar_about() -> None:
    """The one-sentence description of the app, in the sidebar, and the style sheet that
    makes every page's captions readable (here: drawn once per run, on every page)."""
    st.sidebar.markdown(ABOUT)
    st.html(CAPTION_CSS)  # a style sheet alone takes no room on the page


@st.cache_resource(show_spinner=False)
def shared_simulator() -> BeamlineSimulator:
    """One Cheetah beamline per server process (thread-safe; tracking holds a lock)."""
    # Tiny torch ops: more threads only add overhead and contend between sessions.
    torch.set_num_threads(1)
    return BeamlineSimulator()


#: Worker processes for agents' runs, and animated figures one server builds at once;
#: ``ARES_HEAVY_AT_ONCE`` sets another number.
HEAVY_AT_ONCE = 1


def heavy_at_once() -> int:
    """``ARES_HEAVY_AT_ONCE`` (default :data:`HEAVY_AT_ONCE`): worker processes for agents' runs.

    :raises ValueError: naming the variable, unless it is a whole number from 1 to the
        machine's cores (each worker holds ~0.4 GB; more workers than cores only share them).
    """
    value = os.environ.get("ARES_HEAVY_AT_ONCE", str(HEAVY_AT_ONCE))
    cores = os.cpu_count() or 1
    if not value.strip().isdigit() or not 1 <= int(value) <= cores:
        raise ValueError(f"ARES_HEAVY_AT_ONCE must be a whole number from 1 to {cores} (the cores), not {value!r}")
    return int(value)


def setting_problems() -> list[str]:
    """What is wrong with the host's ``ARES_*`` variables, one message each (none if all is well)."""
    problems = []
    for check in (heavy_at_once, JobLimits.from_environment):
        try:
            check()
        except ValueError as exc:
            problems.append(str(exc))
    return problems


@st.cache_resource(show_spinner=False)
def agent_workers() -> AgentWorkers:
    """The server's worker processes that run agents on beams (:func:`heavy_at_once` of them).

    Started (not awaited) on the first visit and warmed up with the Compare page's default
    agents, so the first Compare run waits for neither the workers' imports nor the agents'
    loading. Agents' runs used to share the server's one core (the GIL) with every session;
    see ``bench/workshop_load.py --evaluators`` for what that cost.
    """
    defaults = available_agents(runs_dir_from_environment()).tutorial_defaults()
    return AgentWorkers(heavy_at_once(), warm_up=[choice.request for choice in defaults])


@st.cache_resource(show_spinner=False)
def heavy_work_gate() -> threading.BoundedSemaphore:
    """The server's queue for heavy work in its own process: ``with heavy_work_gate(): ...``.

    Agents' runs go to :func:`agent_workers`; what stays here is building the Compare
    page's animated figure (~0.4 s of the server's one thread, the GIL). Several builds
    side by side would all finish late; in turns the first finishes early. Hold it only on
    a cache miss, and never twice in one thread: it is not reentrant.
    """
    return threading.BoundedSemaphore(heavy_at_once())


def route_through_app() -> None:
    """Make a deep link run through ``app.py``'s navigation. Call first on every page.

    Streamlit 1.67 treats an app with a ``pages/`` folder as a legacy multipage app until
    ``st.navigation`` has run once in the server process: if the first visitor after a
    start opens ``/compare`` directly, the page runs on its own (no sidebar, no layout) and
    so does every later session. Switching the flag and rerunning sends the run through
    ``app.py``, which resolves the same URL with ``st.navigation``.
    """
    from streamlit.runtime.pages_manager import PagesManager

    # Once per browser session: a rerun drops a button click, so it must only ever happen
    # on the page load that found the process in legacy mode.
    if PagesManager.uses_pages_directory and not st.session_state.get("_routed_through_app"):
        st.session_state["_routed_through_app"] = True
        PagesManager.uses_pages_directory = False
        st.rerun()


@st.cache_resource(show_spinner=False)
def job_manager() -> JobManager:
    """The server's one job manager: queue, training processes and job records in the runs folder.

    Configured by ``ARES_RUNS_DIR`` and the other variables of :meth:`JobManager.from_environment`.
    """
    return JobManager.from_environment()


@st.cache_resource(show_spinner=False)
def freeze_startup_heap() -> int:
    """Move the objects alive after start-up out of the garbage collector's reach, once.

    torch, Cheetah and SB3 leave ~300k long-lived objects; each automatic full collection
    walks them all (70-230 ms measured, holding the GIL, so every session stalls). After
    ``gc.freeze()`` a full collection skips them.

    :return: the number of objects frozen.
    """
    import gc

    import stable_baselines3  # noqa: F401  (the pages' heavy imports, frozen with the rest)

    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
