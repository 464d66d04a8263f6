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
