"""Shared fixtures: the device matrix, the shared data folder, a clean engine."""
import os
import pathlib

import numpy as np
import pytest

from deepkit_engine.context import cpu, gpu, num_gpus

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent


def _gpu_param():
    return pytest.param(gpu(0), id="gpu", marks=pytest.mark.skipif(
        num_gpus() == 0, reason="no CUDA device with cupy (install deepkit[gpu])"))


@pytest.fixture(params=[pytest.param(cpu(), id="cpu"), _gpu_param()])
def ctx(request):
    """Runs the test once per available device: cpu always, gpu when present."""
    return request.param


@pytest.fixture
def rng():
    """A seeded numpy generator, so every test sees the same inputs."""
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def shared_data():
    """The real-data folder (``$DEEPKIT_SHARED_DATA``, default ``../shared/data``).

    Skips where it is absent (a user's fresh clone); fails instead when
    ``DEEPKIT_REQUIRE_SHARED_DATA=1``, which CI sets, so that these tests can
    never silently vanish from CI.
    """
    path = pathlib.Path(os.environ.get("DEEPKIT_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
    if not path.is_dir():
        message = f"shared data folder {path} not found (set DEEPKIT_SHARED_DATA)"
        if os.environ.get("DEEPKIT_REQUIRE_SHARED_DATA") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path
