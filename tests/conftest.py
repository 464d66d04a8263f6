"""Shared test setup: one CPU thread, seeded global generators, one Cheetah segment."""

import random

import numpy as np
import pytest
import torch

# The browser tests' fixture (app_browser), without each test file importing it.
pytest_plugins = ("browser_support",)

# Two cores are shared by everything on the machine; more threads only slow Cheetah down.
torch.set_num_threads(1)


def pytest_addoption(parser):
    parser.addoption("--seed", action="store", type=int, default=42, help="seed of the global generators")


@pytest.fixture(autouse=True)
def seed(request):
    """Seed Python's, numpy's and torch's global generators before every test."""
    value = request.config.getoption("--seed")
    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)
    return value


@pytest.fixture(scope="session")
def simulator():
    """One Cheetah EA segment for the whole session (building one costs ~0.1 s)."""
    from envlib.beamline import BeamlineSimulator

    return BeamlineSimulator()


@pytest.fixture
def agents_only_in_workers(monkeypatch):
    """Trip wires in this process for every step of loading and running an agent.

    The worker processes start with ``spawn`` and import their own, untouched modules, so a
    request made after this fixture answers only if its agents ran in a worker.
    """
    import envlib.agent
    import envlib.compare
    import envlib.evaluation
    import envlib.workers

    def here(*args: object, **kwargs: object) -> None:
        raise AssertionError("an agent was loaded or run in this process, not in a worker")

    def arm() -> None:
        for owner, name in [
            (envlib.agent, "load_agent"),
            (envlib.workers, "load_agent"),
            (envlib.compare, "compare"),
            (envlib.workers, "compare"),
            (envlib.evaluation, "evaluate"),
            (envlib.compare, "evaluate"),
            (envlib.agent.Agent, "predict"),
        ]:
            monkeypatch.setattr(owner, name, here)

    return arm
