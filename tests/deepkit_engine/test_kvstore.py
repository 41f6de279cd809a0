"""deepkit_engine.kvstore: MXNet's KVStore semantics on cpu(0) + cpu(1) (and a GPU when present)."""
import importlib.util
import os
import pathlib
import subprocess
import sys
import threading

import numpy as np
import pytest

from deepkit_engine import cpu, engine, gpu, kvstore, nd, num_gpus
from deepkit_engine.base import DTypeError, FileFormatError, ShapeError

DEVICES = [cpu(0), cpu(1)]
needs_gpu = pytest.mark.skipif(num_gpus() == 0, reason="no CUDA device with cupy "
                               "(install deepkit[gpu])")


def values_on(devices, arrays):
    return [nd.array(a, ctx=d) for a, d in zip(arrays, devices)]


class MomentumSGD:
    """MXNet's optimizer interface: v = mu * v - lr * grad; weight += v."""

    def __init__(self, lr=0.1, momentum=0.9):
        self.lr, self.momentum = lr, momentum
        self.created = []

    def create_state(self, index, weight):
        self.created.append(index)
        return nd.zeros(weight.shape, ctx=weight.ctx, dtype=weight.dtype)

    def update(self, index, weight, grad, state):
        state[:] = self.momentum * state - self.lr * grad
        weight[:] = weight + state


def momentum_reference(w, grads, lr=0.1, momentum=0.9):
    v = np.zeros_like(w)
    for g in grads:
        v = momentum * v - lr * g
        w = w + v
    return w


# -- creation ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["local", "device", "nccl"])
def test_create_gives_a_single_worker_store(name):
    kv = kvstore.create(name)
    assert (kv.type, kv.rank, kv.num_workers) == (name, 0, 1)
    assert kv.is_capable("optimizer")
    kv.barrier()  # nothing to wait for in one process


def test_create_rejects_unknown_types():
    with pytest.raises(ValueError, match="unknown type 'locl'.*did you mean 'local'"):
        kvstore.create("locl")
    with pytest.raises(ValueError, match="unknown type 'dist_asnyc'.*did you mean 'dist_async'"):
        kvstore.create("dist_asnyc")
    with pytest.raises(TypeError, match="name must be a string"):
        kvstore.create(3)


# -- dist_async in one process (a store of one worker; the server thread runs in-process) --------

_ASYNC_SCRIPT = pathlib.Path(__file__).resolve().parent / "mpi_scripts" / "async_one_process.py"


@pytest.fixture(scope="module")
def async_one_process():
    """The output of async_one_process.py, run in a process of its own.

    ``create('dist_async')`` initialises MPI (as a singleton without a
    launcher); the pytest process keeps MPI uninitialised for the other
    one-process dist tests, so the checks run in a child process.
    """
    if importlib.util.find_spec("mpi4py") is None:
        pytest.skip("mpi4py is not installed (pip install 'deepkit[dist]')")
    root = str(_ASYNC_SCRIPT.parents[3])
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PMI_", "PMIX_", "OMPI_COMM_WORLD", "MPI_LOCAL"))}
    env.update(PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
               DEEPKIT_DIST_TIMEOUT="30")
    result = subprocess.run([sys.executable, str(_ASYNC_SCRIPT)], capture_output=True,
                            text=True, timeout=120, env=env, cwd=root)
    return result


@pytest.mark.parametrize("check", ["create", "push needs an optimizer", "sgd",
                                   "states round trip", "close"])
def test_dist_async_as_one_worker(async_one_process, check):
    """rank 0 of 1; push without an optimizer fails clearly; SGD gives w - lr * g exactly;
    optimizer states save and load on rank 0; close stops the server; exit code 0."""
    output = async_one_process.stdout + async_one_process.stderr
    assert f"PASS {check}\n" in async_one_process.stdout, output
    assert async_one_process.returncode == 0 and "DONE" in async_one_process.stdout, output


# -- init, push, pull ----------------------------------------------------------------------

def test_init_then_pull_into_several_devices():
    kv = kvstore.create("local")
    kv.init(3, nd.full((2, 3), 2.0))
    outs = [nd.zeros((2, 3), ctx=d) for d in DEVICES]
    kv.pull(3, out=outs)
    for o, d in zip(outs, DEVICES):
        assert o.ctx == d
        np.testing.assert_array_equal(o.asnumpy(), 2.0)
    with pytest.raises(ValueError, match="duplicate init of key 3"):
        kv.init(3, nd.zeros((2, 3)))
    with pytest.raises(ValueError, match="out is required"):
        kv.pull(3)


def test_init_copies_the_value():
    kv = kvstore.create("local")
    value = nd.ones((2,))
    kv.init("w", value)
    value[:] = 5.0
    out = nd.zeros((2,))
    kv.pull("w", out=out)
    np.testing.assert_array_equal(out.asnumpy(), 1.0)


@pytest.mark.parametrize("kind", ["local", "device"])
def test_push_sums_the_devices_and_replaces_the_stored_value(kind, rng):
    kv = kvstore.create(kind)
    kv.init(0, nd.zeros((3, 4)))
    grads = [rng.standard_normal((3, 4)) for _ in DEVICES]
    kv.push(0, values_on(DEVICES, grads))
    outs = [nd.zeros((3, 4), ctx=d) for d in DEVICES]
    kv.pull(0, out=outs)
    for o in outs:
        np.testing.assert_allclose(o.asnumpy(), grads[0] + grads[1], rtol=1e-6)
    # without an updater a push replaces the value: nothing accumulates
    kv.push(0, values_on(DEVICES, [np.ones((3, 4)), np.ones((3, 4))]))
    kv.pull(0, out=outs)
    for o in outs:
        np.testing.assert_array_equal(o.asnumpy(), 2.0)


def test_device_store_sums_on_the_first_values_device():
    kv = kvstore.create("device")
    kv.init("k", nd.zeros((2,), ctx=cpu(1)))
    kv.push("k", [nd.ones((2,), ctx=cpu(1)), nd.full((2,), 3.0, ctx=cpu(0))])
    assert kv._merge["k"].ctx == cpu(1)
    local = kvstore.create("local")
    local.init("k", nd.zeros((2,), ctx=cpu(1)))
    local.push("k", [nd.ones((2,), ctx=cpu(1))])
    assert local._merge["k"].ctx == cpu(0) and local._store["k"].ctx == cpu(0)
    out = nd.zeros((2,))
    kv.pull("k", out=out)
    np.testing.assert_array_equal(out.asnumpy(), 4.0)


def test_lists_of_keys_with_per_device_lists(rng):
    kv = kvstore.create("device")
    shapes = {"w": (2, 3), "b": (3,)}
    kv.init(list(shapes), [nd.zeros(s) for s in shapes.values()])
    grads = {k: [rng.standard_normal(s).astype(np.float32) for _ in DEVICES]
             for k, s in shapes.items()}
    outs = [[nd.zeros(s, ctx=d) for d in DEVICES] for s in shapes.values()]
    kv.pushpull(list(shapes), [values_on(DEVICES, grads[k]) for k in shapes], out=outs)
    for k, per_device in zip(shapes, outs):
        for o in per_device:
            np.testing.assert_allclose(o.asnumpy(), grads[k][0] + grads[k][1], rtol=1e-6)


def test_pushpull_without_out_writes_into_the_values():
    kv = kvstore.create("local")
    kv.init(5, nd.zeros((4,)))
    values = [nd.full((4,), 1.5, ctx=d) for d in DEVICES]
    kv.pushpull(5, values)
    for v in values:
        np.testing.assert_array_equal(v.asnumpy(), 3.0)


def test_a_key_given_twice_in_one_push_is_summed():
    kv = kvstore.create("local")
    kv.init(1, nd.zeros((2,)))
    kv.push([1, 1], [nd.ones((2,)), nd.full((2,), 4.0)])
    out = nd.zeros((2,))
    kv.pull(1, out=out)
    np.testing.assert_array_equal(out.asnumpy(), 5.0)


def test_broadcast_initialises_and_pulls():
    kv = kvstore.create("local")
    outs = [nd.zeros((2, 3), ctx=d) for d in DEVICES]
    kv.broadcast("3", nd.full((2, 3), 2.0), out=outs)
    for o in outs:
        np.testing.assert_array_equal(o.asnumpy(), 2.0)
    with pytest.raises(ValueError, match="duplicate init of key '3'"):
        kv.broadcast("3", nd.ones((2, 3)), out=outs)


# -- errors --------------------------------------------------------------------------------

def test_keys_must_be_all_int_or_all_str():
    kv = kvstore.create("local")
    with pytest.raises(TypeError, match="all int or all str.*got int 1 and str 'b'"):
        kv.init([1, "b"], [nd.zeros((1,)), nd.zeros((1,))])
    kv.init(1, nd.zeros((1,)))
    with pytest.raises(TypeError, match="this store holds int keys.*got str 'b'"):
        kv.init("b", nd.zeros((1,)))
    with pytest.raises(TypeError, match="a key must be an int or a str, got float"):
        kv.push(1.0, nd.zeros((1,)))
    with pytest.raises(TypeError, match="got bool"):
        kv.push(True, nd.zeros((1,)))


def test_unknown_keys_are_named():
    kv = kvstore.create("local")
    kv.init("weight", nd.zeros((2,)))
    with pytest.raises(KeyError, match="kvstore.push: key 'weigth' was not initialised.*did you "
                                       "mean 'weight'"):
        kv.push("weigth", nd.zeros((2,)))
    with pytest.raises(KeyError, match="kvstore.pull: key 'bias' was not initialised"):
        kv.pull("bias", out=nd.zeros((2,)))


def test_shape_and_dtype_mismatches_are_reported():
    kv = kvstore.create("local")
    kv.init(7, nd.zeros((2, 3)))
    with pytest.raises(ShapeError, match=r"push: the value for key 7 has shape \(3, 2\), expected "
                                         r"\(2, 3\)") as info:
        kv.push(7, [nd.zeros((2, 3)), nd.zeros((3, 2), ctx=cpu(1))])
    assert (info.value.expected, info.value.actual) == ((2, 3), (3, 2))
    with pytest.raises(ShapeError, match=r"pull: the out for key 7 has shape \(6,\)"):
        kv.pull(7, out=nd.zeros((6,)))
    with pytest.raises(DTypeError, match="dtype float64, expected float32"):
        kv.push(7, nd.zeros((2, 3), dtype=np.float64))
    with pytest.raises(ValueError, match="2 keys need a list of 2 values"):
        kv.push([7, 8], nd.zeros((2, 3)))
    with pytest.raises(TypeError, match="must be an NDArray or a list of NDArrays, got ndarray"):
        kv.push(7, np.zeros((2, 3), np.float32))


# -- updaters ------------------------------------------------------------------------------

def test_set_optimizer_updates_the_stored_weight(rng):
    kv = kvstore.create("device")
    w0 = rng.standard_normal((3,)).astype(np.float32)
    kv.init(0, nd.array(w0))
    optimizer = MomentumSGD()
    kv.set_optimizer(optimizer)
    steps = [[rng.standard_normal((3,)).astype(np.float32) for _ in DEVICES] for _ in range(3)]
    outs = [nd.zeros((3,), ctx=d) for d in DEVICES]
    for grads in steps:
        kv.pushpull(0, values_on(DEVICES, grads), out=outs)
    expected = momentum_reference(w0, [g[0] + g[1] for g in steps])
    for o in outs:
        np.testing.assert_allclose(o.asnumpy(), expected, rtol=1e-5)
    assert optimizer.created == [0]  # one state per key, made at the first push


def test_set_optimizer_needs_mxnets_interface():
    with pytest.raises(TypeError, match="has no create_state"):
        kvstore.create("local").set_optimizer(object())


def test_set_updater_as_in_mxnets_example():
    kv = kvstore.create("local")
    kv.init(3, nd.full((2, 3), 2.0))
    seen = []

    def update(key, value, stored):
        seen.append(key)
        stored += value * 2

    kv._set_updater(update)
    kv.push(3, nd.ones((2, 3)))
    out = nd.zeros((2, 3))
    kv.pull(3, out=out)
    np.testing.assert_array_equal(out.asnumpy(), 4.0)
    kv.push(3, [nd.ones((2, 3)), nd.ones((2, 3), ctx=cpu(1))])
    kv.pull(3, out=out)
    np.testing.assert_array_equal(out.asnumpy(), 8.0)
    assert seen == [3, 3] and kv.updater is update


def test_push_and_pull_return_before_the_work_runs():
    if engine.engine_type() != "threaded":
        pytest.skip("the naive engine runs everything at push time")
    kv = kvstore.create("local")
    kv.init(0, nd.zeros((4,)))
    gate = threading.Event()
    grad = nd.zeros((4,))

    def produce():  # the gradient is still being computed while we push and pull
        assert gate.wait(30)
        grad._data[...] = 3.0

    engine.push(produce, (), (grad._var,), cpu(0), "slow gradient")
    out = nd.zeros((4,), ctx=cpu(1))
    kv.push(0, grad)
    kv.pull(0, out=out)
    assert not gate.is_set()  # both returned while the gradient was pending
    gate.set()
    np.testing.assert_array_equal(out.asnumpy(), 3.0)


# -- optimizer states ------------------------------------------------------------------------

def _trained_store(w0, steps, optimizer):
    kv = kvstore.create("local")
    kv.init(["w", "v"], [nd.array(w0), nd.array(w0 * 2)])
    kv.set_optimizer(optimizer)
    for g in steps:
        kv.push(["w", "v"], [values_on(DEVICES, [g, g]), [nd.array(g)]])
    return kv


def test_optimizer_states_round_trip(tmp_path, rng):
    w0 = rng.standard_normal((4,)).astype(np.float32)
    steps = [rng.standard_normal((4,)).astype(np.float32) for _ in range(4)]
    path = tmp_path / "states.npz"
    first = _trained_store(w0, steps[:2], MomentumSGD())
    first.save_optimizer_states(str(path), dump_optimizer=True)
    assert sorted(os.listdir(tmp_path)) == ["states.npz"]  # written atomically, nothing left over
    with np.load(path, allow_pickle=False) as archive:  # plain arrays only
        assert "__meta__" in archive.files

    # a fresh store at the same weights, states loaded, continues as if never stopped
    resumed = kvstore.create("local")
    w_now, v_now = nd.zeros((4,)), nd.zeros((4,))
    first.pull(["w", "v"], out=[w_now, v_now])
    resumed.init(["w", "v"], [w_now, v_now])
    resumed.set_optimizer(MomentumSGD())
    resumed.load_optimizer_states(str(path))
    np.testing.assert_array_equal(resumed.updater.states["w"].asnumpy(),
                                  first.updater.states["w"].asnumpy())
    for g in steps[2:]:
        resumed.push(["w", "v"], [values_on(DEVICES, [g, g]), [nd.array(g)]])
    out = [nd.zeros((4,)), nd.zeros((4,))]
    resumed.pull(["w", "v"], out=out)
    np.testing.assert_allclose(out[0].asnumpy(), momentum_reference(w0, [2 * g for g in steps]),
                               rtol=1e-5)
    np.testing.assert_allclose(out[1].asnumpy(), momentum_reference(w0 * 2, steps), rtol=1e-5)


def test_states_of_nested_and_missing_states_round_trip(tmp_path):
    class Nested(MomentumSGD):
        def create_state(self, index, weight):
            return None if index == 1 else (nd.ones(weight.shape), [nd.full(weight.shape, 2.0)])

        def update(self, index, weight, grad, state):
            weight[:] = weight - grad

    kv = kvstore.create("local")
    kv.init([1, 2], [nd.zeros((2,)), nd.zeros((2,))])
    kv.set_optimizer(Nested())
    kv.push([1, 2], [nd.ones((2,)), nd.ones((2,))])
    kv.save_optimizer_states(str(tmp_path / "s.npz"))
    other = kvstore.create("local")
    other.init([1, 2], [nd.zeros((2,)), nd.zeros((2,))])
    other.set_optimizer(Nested())
    other.load_optimizer_states(str(tmp_path / "s.npz"))
    states = other.updater.states
    assert states[1] is None and isinstance(states[2], tuple) and isinstance(states[2][1], list)
    np.testing.assert_array_equal(states[2][1][0].asnumpy(), 2.0)


def test_updaters_with_get_states_save_their_bytes(tmp_path):
    class BytesUpdater:
        def __init__(self):
            self.blob = b""

        def __call__(self, key, value, stored):
            stored[:] = value

        def get_states(self, dump_optimizer=False):
            return b"\x00state\xff"

        def set_states(self, blob):
            self.blob = blob

    kv = kvstore.create("local")
    kv.set_updater(BytesUpdater())
    kv.save_optimizer_states(str(tmp_path / "u.npz"))
    other = kvstore.create("local")
    other.set_updater(BytesUpdater())
    other.load_optimizer_states(str(tmp_path / "u.npz"))
    assert other.updater.blob == b"\x00state\xff"


def test_saving_and_loading_states_report_what_is_missing(tmp_path):
    kv = kvstore.create("local")
    with pytest.raises(ValueError, match="no optimizer is set"):
        kv.save_optimizer_states(str(tmp_path / "x.npz"))
    kv.set_updater(lambda key, value, stored: None)
    with pytest.raises(TypeError, match="has no get_states"):
        kv.save_optimizer_states(str(tmp_path / "x.npz"))
    kv.set_optimizer(MomentumSGD())
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not an archive")
    with pytest.raises(FileFormatError, match="not an optimizer-states archive"):
        kv.load_optimizer_states(str(bad))
    other = tmp_path / "other.npz"
    np.savez(other, weights=np.ones(2))
    with pytest.raises(FileFormatError, match="description"):
        kv.load_optimizer_states(str(other))


# -- a GPU with the CPU --------------------------------------------------------------------

@needs_gpu
@pytest.mark.gpu
@pytest.mark.parametrize("kind", ["local", "device"])
def test_gpu_and_cpu_values_are_summed(kind, rng):
    devices = [gpu(0), cpu(0)]
    kv = kvstore.create(kind)
    kv.init(0, nd.zeros((3, 2), ctx=gpu(0)))
    grads = [rng.standard_normal((3, 2)).astype(np.float32) for _ in devices]
    outs = [nd.zeros((3, 2), ctx=d) for d in devices]
    kv.pushpull(0, values_on(devices, grads), out=outs)
    assert kv._merge[0].ctx == (gpu(0) if kind == "device" else cpu(0))
    for o in outs:
        np.testing.assert_allclose(o.asnumpy(), grads[0] + grads[1], rtol=1e-6)
    kv.set_optimizer(MomentumSGD())
    kv.pushpull(0, values_on(devices, grads), out=outs)
    expected = momentum_reference(grads[0] + grads[1], [grads[0] + grads[1]])
    for o in outs:
        np.testing.assert_allclose(o.asnumpy(), expected, rtol=1e-5)


# -- several GPUs: NCCL ----------------------------------------------------------------------

def test_nccl_is_not_used_for_cpu_values_or_a_repeated_device():
    a, b = np.ones(4, np.float32), np.ones(4, np.float32)
    assert kvstore._nccl_reducer([a, b], np.empty(4, np.float32)) is None
    assert kvstore._nccl_reducer([a], np.empty(4, np.float32)) is None


@pytest.mark.gpu
@pytest.mark.skipif(num_gpus() < 2 or kvstore._cupy_with_nccl() is None,
                    reason="needs two CUDA devices and cupy built with NCCL")
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_device_store_sums_values_on_several_gpus_with_nccl(dtype, rng):
    devices = [gpu(0), gpu(1)]
    kv = kvstore.create("nccl")
    kv.init("w", nd.zeros((5, 3), ctx=gpu(0), dtype=dtype))
    grads = [rng.standard_normal((5, 3)).astype(dtype) for _ in devices]
    values = values_on(devices, grads)
    assert kvstore._nccl_reducer([v._data for v in values], kv._store["w"]._data) is not None
    outs = [nd.zeros((5, 3), ctx=d, dtype=dtype) for d in devices]
    kv.pushpull("w", values, out=outs)
    for o in outs:
        np.testing.assert_allclose(o.asnumpy(), grads[0] + grads[1],
                                   rtol=1e-2 if dtype == "float16" else 1e-6)
