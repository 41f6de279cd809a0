"""The fused float32 SGD kernels (numba): as plain Python against float64 formulas, and every
SGD op on the fused path giving the same bits as its numpy path."""
import importlib.util

import numpy as np
import pytest

import deepkit_engine as dk
from deepkit_engine.ops import fused_update
from deepkit_engine.ops.registry import get_op

HAS_NUMBA = importlib.util.find_spec("numba") is not None
needs_numba = pytest.mark.skipif(not HAS_NUMBA,
                                 reason="numba is not installed (pip install 'deepkit[fast]')")

F32 = np.float32
nd = dk.nd


def _arrays(n=37, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=n).astype(F32) for _ in range(3)]


def test_kernels_apply_only_without_clipping_to_contiguous_float32_numpy_arrays():
    w, g, m = _arrays()
    assert fused_update.applies(-1.0, (w, g, m))
    assert not fused_update.applies(0.5, (w, g, m))
    assert not fused_update.applies(-1.0, (w, g.astype(np.float64)))
    assert not fused_update.applies(-1.0, (w, np.arange(8, dtype=F32)[::2]))


@pytest.mark.parametrize("wd", [0.0, 0.01])
def test_kernels_as_written_match_the_float64_formulas(wd):
    w, g, m = _arrays(5)
    rescale, lr, momentum = 0.5, 0.1, 0.9
    w64, g64, m64 = (a.astype(np.float64) for a in (w, g, m))
    step = momentum * m64 - lr * (rescale * g64 + wd * w64)
    weight, mom = w.copy(), m.copy()
    fused_update.sgd_mom_step(weight, g, mom, F32(rescale), F32(wd), F32(lr), F32(momentum))
    np.testing.assert_allclose(mom, step, rtol=1e-6)
    np.testing.assert_allclose(weight, w64 + step, rtol=1e-6)
    weight = w.copy()
    fused_update.sgd_step(weight, g, F32(rescale), F32(wd), F32(lr))
    np.testing.assert_allclose(weight, w64 - lr * (rescale * g64 + wd * w64), rtol=1e-6)


def _run(monkeypatch, numba_on, name, params, with_mom, count=1, out_moms=False):
    """The op's outputs (and updated momenta) on fixed float32 data, numba on or off."""
    monkeypatch.setenv("DEEPKIT_NUMBA", "1" if numba_on else "0")
    op = get_op(name)
    inputs, weights, moms = [], [], []
    for i in range(count):
        w, g, m = (nd.array(a) for a in _arrays(1000 + 7 * i, seed=i))
        inputs += [w, g] + ([m] if with_mom else [])
        weights.append(w)
        moms += [m] if with_mom else []
    nd.invoke(op, inputs, op.parse_attrs(params), weights + (moms if out_moms else []))
    return [a.asnumpy() for a in weights + moms]


SGD_OP_CALLS = [
    ("sgd_update", {"lr": 0.1, "rescale_grad": 0.25}, False, 1, False),
    ("sgd_update", {"lr": 0.1, "wd": 0.01}, False, 1, False),
    ("sgd_mom_update", {"lr": 0.1, "momentum": 0.9, "rescale_grad": 0.25}, True, 1, False),
    ("sgd_mom_update", {"lr": 0.1, "momentum": 0.9, "wd": 0.01}, True, 1, False),
    ("_multi_sgd_update", {"lrs": (0.1, 0.2), "wds": (0.0, 0.01), "rescale_grad": 0.5,
                           "num_args": 6, "momentum": 0.9}, True, 2, True),
    ("_multi_sgd_update", {"lrs": (0.1, 0.2), "wds": (0.01, 0.0), "num_args": 4}, False, 2,
     False),
    ("multi_sgd_mom_update", {"lrs": (0.1, 0.2), "wds": (0.0, 0.0), "momentum": 0.9,
                              "rescale_grad": 0.5, "num_weights": 2}, True, 2, False),
    ("multi_sgd_update", {"lrs": (0.1, 0.2), "wds": (0.0, 0.0), "num_weights": 2}, False, 2,
     False),
]


@needs_numba
@pytest.mark.parametrize("name,params,with_mom,count,out_moms", SGD_OP_CALLS)
def test_fused_path_gives_the_numpy_paths_bits(monkeypatch, name, params, with_mom, count,
                                               out_moms):
    fused = _run(monkeypatch, True, name, params, with_mom, count, out_moms)
    plain = _run(monkeypatch, False, name, params, with_mom, count, out_moms)
    for a, b in zip(fused, plain):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(fused[0], _arrays(1000)[0]), "the weight was not updated"


@needs_numba
def test_clipping_keeps_numpys_path(monkeypatch):
    params = {"lr": 0.1, "momentum": 0.9, "clip_gradient": 0.5}
    fused = _run(monkeypatch, True, "sgd_mom_update", params, True)
    w, g, m = _arrays(1000)
    step = 0.9 * m - 0.1 * np.clip(g, -0.5, 0.5)
    np.testing.assert_allclose(fused[0], w + step, rtol=1e-6)
