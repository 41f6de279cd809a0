"""Registry-wide checks: every op is tested, documented and consistently declared.

Forward coverage: each registered op (canonical name) has a forward case in
some ``test_<family>.py`` module's ``CASES`` (a float64 numpy reference), or an
entry in its ``OTHER_COVERED_OPS`` naming the test function that checks it.
Gradient coverage: each differentiable op declares a gradient, and a
gradient-checked case exists for it (``OTHER_GRAD_COVERED_OPS`` likewise).
"""
import importlib
import pathlib

import pytest

from deepkit_engine import ndarray as nd
from deepkit_engine import symbol as sym
from deepkit_engine.ops.registry import canonical_ops, get_op, list_ops

_HERE = pathlib.Path(__file__).parent


def _test_modules():
    for path in sorted(_HERE.glob("test_*.py")):
        if path.stem != "test_registry_coverage":
            yield importlib.import_module(f"{__package__}.{path.stem}")


def _coverage():
    forward, gradient = {}, {}
    for module in _test_modules():
        for case in getattr(module, "CASES", []):
            op = get_op(case.op).name
            forward.setdefault(op, []).append(module.__name__)
            if case.grad:
                gradient.setdefault(op, []).append(module.__name__)
        for attr, target in (("OTHER_COVERED_OPS", forward),
                             ("OTHER_GRAD_COVERED_OPS", gradient)):
            for op_name, test_name in getattr(module, attr, {}).items():
                assert callable(getattr(module, test_name, None)), (
                    f"{module.__name__}.{attr} names '{test_name}' for '{op_name}', but no such "
                    "test function exists")
                target.setdefault(get_op(op_name).name, []).append(module.__name__)
    return forward, gradient


#: Ops exempt from the coverage rules (none: every op is tested).
_INTERNAL = set()


def test_every_op_has_a_forward_test():
    forward, _ = _coverage()
    missing = sorted(set(canonical_ops()) - set(forward) - _INTERNAL)
    assert not missing, f"ops without a forward test case: {missing}"


def test_every_differentiable_op_declares_and_checks_a_gradient():
    _, gradient = _coverage()
    ops = canonical_ops()
    undeclared = sorted(n for n, op in ops.items() if op.differentiable and op.gradient is None)
    assert not undeclared, f"differentiable ops without a declared gradient: {undeclared}"
    unchecked = sorted(n for n, op in ops.items()
                       if op.differentiable and n not in gradient and n not in _INTERNAL)
    assert not unchecked, f"differentiable ops without a numeric gradient check: {unchecked}"


@pytest.mark.parametrize("name", list_ops())
def test_nd_and_sym_functions_exist_with_generated_docs(name):
    op = get_op(name)
    assert getattr(nd, name).__doc__ == op.docstring()
    assert getattr(sym, name).__doc__ == op.docstring()
    for pname in op.params:
        if pname != "num_args" or not op.variadic:
            assert pname in op.docstring(), f"{name}: param {pname} missing from the docstring"
