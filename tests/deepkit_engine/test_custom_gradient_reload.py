"""A graph with ``custom_gradient`` nodes saved as symbol JSON in one process trains in
another that registers the same function, and is refused, clearly, where none is."""
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from deepkit_engine import ndarray as nd
from deepkit_engine import symbol as sym
from deepkit_engine.base import DeepkitError
from deepkit_engine.custom import custom_gradient, registered_gradients, unregister_gradient

FUNCTIONS = '''
from deepkit_engine import symbol as sym
from deepkit_engine.custom import custom_gradient


@custom_gradient
def softplus(x):
    e = sym.exp(x)

    def grad(upstream):
        return upstream * (1 - 1 / (1 + e))
    return sym.log(1 + e), grad


@custom_gradient(name="test_scaled_product")
def product(a, b):
    def grad(upstream):
        return upstream * b * 3, upstream * a * 0.5
    return a * b, grad


def unnamed(x):
    @custom_gradient
    def double(x):
        def grad(upstream):
            return upstream * 2
        return sym.identity(x), grad
    return double(x)
'''

COMMON = '''
import json, sys
import numpy as np
from deepkit_engine import ndarray as nd
from deepkit_engine import symbol as sym


def run(net, path):
    shapes = {"data": (4, 5), "other": (4, 5)}
    args = [a for a in net.list_arguments() if a in shapes or a.endswith("weight")
            or a.endswith("bias")]
    exe = net.simple_bind(type_dict={a: "float64" for a in net.list_arguments()},
                          **{a: s for a, s in shapes.items() if a in net.list_arguments()})
    rng = np.random.default_rng(7)
    for name in sorted(exe.arg_dict):
        exe.arg_dict[name][:] = rng.standard_normal(exe.arg_dict[name].shape)
    out = exe.forward(is_train=True)[0]
    exe.backward(nd.array(rng.standard_normal(out.shape), dtype="float64"))
    np.savez(path, output=out.asnumpy(),
             **{k: v.asnumpy() for k, v in exe.grad_dict.items() if v is not None})
'''

SAVE = COMMON + '''
import functions
data, other = sym.var("data"), sym.var("other")
fc = sym.FullyConnected(data, num_hidden=5, name="fc")
which = sys.argv[1]
if which == "module":
    net = sym.sum(functions.softplus(fc) * 2, axis=1)
elif which == "named":
    net = functions.product(sym.tanh(fc), other)
else:
    net = functions.unnamed(fc) * 3
net.save(which + ".json")
run(net, which + "_first.npz")
'''

LOAD = COMMON + '''
which, register = sys.argv[1], sys.argv[2] == "register"
if register:
    import functions  # noqa: F401 - registers the gradient functions
net = sym.load(which + ".json")
run(net, which + "_second.npz")
'''


def _script(tmp_path, name, text):
    (tmp_path / name).write_text(textwrap.dedent(text))
    return str(tmp_path / name)


@pytest.fixture
def workdir(tmp_path):
    _script(tmp_path, "functions.py", FUNCTIONS)
    return tmp_path


def _python(workdir, script, *args):
    return subprocess.run([sys.executable, _script(workdir, script[0], script[1]), *args],
                          cwd=workdir, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("which", ["module", "named"])
def test_saved_graph_trains_in_a_new_process_that_registers_the_function(workdir, which):
    first = _python(workdir, ("save.py", SAVE), which)
    assert first.returncode == 0, first.stderr
    saved = json.loads((workdir / f"{which}.json").read_text())
    functions = [n.get("attrs", {}).get("function") for n in saved["nodes"]
                 if n["op"] == "_custom_gradient"]
    assert functions == [{"module": "functions.softplus", "named": "test_scaled_product"}[which]]
    second = _python(workdir, ("load.py", LOAD), which, "register")
    assert second.returncode == 0, second.stderr
    a = np.load(workdir / f"{which}_first.npz")
    b = np.load(workdir / f"{which}_second.npz")
    assert sorted(a.files) == sorted(b.files) and len(a.files) >= 3
    for key in a.files:
        np.testing.assert_allclose(b[key], a[key], rtol=1e-12, atol=1e-12, err_msg=key)
    if which == "named":  # the declared gradients, not those of a * b
        assert not np.allclose(a["other"], 0)


def test_loading_without_the_registration_names_the_function_and_the_fix(workdir):
    assert _python(workdir, ("save.py", SAVE), "module").returncode == 0
    second = _python(workdir, ("load.py", LOAD), "module", "skip")
    assert second.returncode != 0
    last = second.stderr.strip().splitlines()[-1]
    assert "KeyError" not in second.stderr
    assert "module.json" in last and "_custom_gradient" in last
    assert "'functions.softplus' is not registered" in last
    assert "import the module that defines it (functions)" in last
    assert "custom_gradient(name='functions.softplus')" in last


def test_loading_a_function_without_a_registered_name_says_why(workdir):
    assert _python(workdir, ("save.py", SAVE), "unnamed").returncode == 0
    second = _python(workdir, ("load.py", LOAD), "unnamed", "register")
    assert second.returncode != 0
    last = second.stderr.strip().splitlines()[-1]
    assert "no registered name" in last and "custom_gradient(name=" in last


def test_a_loaded_graph_in_the_same_process_keeps_its_exact_gradient():
    @custom_gradient
    def halve(x):
        def grad(upstream):
            return upstream * 0.5
        return sym.identity(x), grad
    net = sym.load_json(halve(sym.var("data")).tojson())
    exe = net.simple_bind(data=(2, 3))
    exe.forward(is_train=True)
    exe.backward(nd.ones((2, 3)))
    np.testing.assert_allclose(exe.grad_dict["data"].asnumpy(), 0.5)


def test_names_are_registered_once_per_function():
    @custom_gradient(name="test_reload_unique")
    def first(x):
        return sym.identity(x), lambda u: u
    try:
        assert "test_reload_unique" in registered_gradients()
        assert first.registered_name == "test_reload_unique"
        with pytest.raises(ValueError, match="test_reload_unique.*already registered"):
            @custom_gradient(name="test_reload_unique")
            def second(x):
                return sym.identity(x), lambda u: u
    finally:
        unregister_gradient("test_reload_unique")
    with pytest.raises(DeepkitError, match="name must be a non-empty str"):
        custom_gradient(lambda x: x, name="")
