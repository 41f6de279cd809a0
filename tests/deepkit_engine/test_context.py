"""Contexts: equality, the current context, and GPU errors without a GPU."""
import numpy as np
import pytest

import deepkit_engine as dk
from deepkit_engine import context
from deepkit_engine.base import ContextError


def test_cpu_context_basics():
    assert dk.cpu() == dk.Context("cpu", 0)
    assert hash(dk.cpu()) == hash(dk.Context("cpu"))
    assert repr(dk.gpu(1)) == "gpu(1)"
    assert dk.cpu().xp is np
    assert dk.current_context() == dk.cpu()


def test_with_block_sets_current_context():
    other = dk.Context("cpu", 1)
    with other:
        assert dk.current_context() == other
        assert dk.nd.zeros((2,)).ctx == other
    assert dk.current_context() == dk.cpu()


def test_bad_context_arguments():
    with pytest.raises(ContextError, match="device_type"):
        dk.Context("tpu")
    with pytest.raises(ContextError, match="device_id"):
        dk.Context("cpu", -1)


def test_gpu_without_cupy_or_device_explains_install(monkeypatch):
    monkeypatch.setattr(context, "_cupy_tried", True)
    monkeypatch.setattr(context, "_cupy", None)
    monkeypatch.setattr(context, "_cupy_error", ImportError("No module named 'cupy'"))
    assert dk.num_gpus() == 0
    with pytest.raises(ContextError, match=r"gpu\(0\).*deepkit\[gpu\]"):
        dk.gpu(0).xp
    with pytest.raises(ContextError, match="cupy"):
        dk.nd.zeros((2,), ctx=dk.gpu(0))


@pytest.mark.skipif(dk.num_gpus() > 0, reason="checks the no-GPU message")
def test_missing_device_index_is_reported():
    with pytest.raises(ContextError, match="gpu"):
        dk.gpu(7).check_available()
