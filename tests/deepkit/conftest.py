"""Fixtures for the toolkit tests: fresh layer names and a fixed seed per test."""
import pytest

import deepkit
from deepkit.layers.base import reset_names


@pytest.fixture(autouse=True)
def fresh_session():
    reset_names()
    deepkit.set_seed(1234)
    yield
