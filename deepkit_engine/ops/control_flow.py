"""Control flow (MXNet 1.x's ``contrib``): ``_foreach``, ``_while_loop``, ``_cond``.

Each op carries its bodies as subgraphs: the JSON text of a symbol graph in a
string parameter (so graphs with loops save and load as any other), plus the
names of the body's inputs in the order the op's inputs feed them. Inputs
are variadic: for ``_foreach`` the sliced sequences, then the loop states,
then the variables the body captured from the outer graph ("free"
variables, such as weights); ``_while_loop`` has loop variables then free
variables; ``_cond`` has the predicate then free variables.

The kernels run the bodies with a small interpreter over their subgraphs,
and the gradients are ``_backward_*`` ops that run the body's own gradient
subgraph step by step backwards (backpropagation through time); free
variables get their gradients summed over steps. Subgraph parsing,
inference, running and differentiation sit above the graph passes, in
:mod:`deepkit_engine.control_flow`, which installs them here with
:func:`install` (the op declarations stay in the op library).
"""
from ..base import DeepkitError
from .registry import OpDef, Param, register

__all__ = ["install"]

_IMPL = {}


def install(**functions):
    """Provide the implementation functions (``name=function``) the declarations call."""
    _IMPL.update(functions)


def _impl(name):
    fn = _IMPL.get(name)
    if fn is None:
        raise DeepkitError("control-flow ops (_foreach, _while_loop, _cond) need "
                           "deepkit_engine.control_flow; import deepkit_engine.contrib")
    return fn


def _call(name):
    def function(*args, **kwargs):
        return _impl(name)(*args, **kwargs)
    function.__name__ = name
    return function


def _with_partial(fn):
    fn.partial = True
    return fn


_SUBGRAPH = "JSON text of the body's symbol graph."
_NAMES = "JSON list: the body input variable fed by each op input, in order."

_FOREACH = {
    "subgraph": Param(str, doc=_SUBGRAPH),
    "in_names": Param(str, doc=_NAMES),
    "num_data": Param(int, doc="Sequences sliced along axis 0.", min=0),
    "num_states": Param(int, doc="Loop states.", min=0),
    "num_outputs": Param(int, doc="Per-step outputs of the body (stacked).", min=0),
}
_WHILE = {
    "cond_graph": Param(str, doc="JSON text of the condition's graph (one scalar output)."),
    "func_graph": Param(str, doc="JSON text of the step function's graph."),
    "in_names": Param(str, doc=_NAMES),
    "num_loop_vars": Param(int, doc="Loop variables.", min=0),
    "num_outputs": Param(int, doc="Per-step outputs of the step function (stacked).", min=0),
    "max_iterations": Param(int, doc="Most steps; the stacked outputs have this many rows "
                                     "(rows after the last step are zeros).", min=1),
}
_COND = {
    "then_graph": Param(str, doc="JSON text of the then-branch's graph."),
    "else_graph": Param(str, doc="JSON text of the else-branch's graph."),
    "in_names": Param(str, doc=_NAMES),
    "num_outputs": Param(int, doc="Outputs of each branch.", min=1),
}


def _foreach_outputs(attrs):
    return tuple(f"output{i}" for i in range(attrs.num_outputs)) + \
        tuple(f"state{i}" for i in range(attrs.num_states))


def _while_outputs(attrs):
    return tuple(f"output{i}" for i in range(attrs.num_outputs)) + \
        tuple(f"loop_var{i}" for i in range(attrs.num_loop_vars))


def _cond_outputs(attrs):
    return tuple(f"output{i}" for i in range(attrs.num_outputs))


def _grad_outputs(attrs):
    return tuple(f"grad{i}" for i in range(attrs.num_args - attrs.num_ograds))


def _backward_params(params):
    out = dict(params)
    out["grad_graph"] = Param(str, doc="JSON text of the body's gradient graph.")
    out["num_ograds"] = Param(int, doc="Output gradients after the forward inputs.", min=0)
    return out


def _backward_cond_params():
    out = dict(_COND)
    out["then_grad"] = Param(str, doc="JSON text of the then-branch's gradient graph.")
    out["else_grad"] = Param(str, doc="JSON text of the else-branch's gradient graph.")
    out["num_ograds"] = Param(int, doc="Output gradients after the forward inputs.", min=0)
    return out


for _name, _params, _outputs, _doc in (
        ("_foreach", _FOREACH, _foreach_outputs,
         "Runs a body over the first axis of sequences, carrying states (MXNet's "
         "contrib.foreach): the per-step outputs stacked, then the final states."),
        ("_while_loop", _WHILE, _while_outputs,
         "Runs a step function while a condition holds, at most max_iterations times (MXNet's "
         "contrib.while_loop): the per-step outputs stacked into max_iterations rows (zeros "
         "after the last step), then the final loop variables."),
        ("_cond", _COND, _cond_outputs,
         "Runs the then- or the else-branch on whether the predicate is nonzero (MXNet's "
         "contrib.cond)."),
):
    _kind = _name[1:]
    register(OpDef(
        _name, _call(f"{_kind}_forward"), variadic=True, params=_params, outputs=_outputs,
        infer_shape=_with_partial(_call(f"{_kind}_shape")), infer_type=_call(f"{_kind}_type"),
        partial_infer=True, resources=("rng", "is_train"), gradient=_call(f"{_kind}_gradient"),
        doc=_doc))
    register(OpDef(
        f"_backward{_name}", _call(f"{_kind}_backward"), variadic=True,
        params=_backward_cond_params() if _kind == "cond" else _backward_params(_params),
        outputs=_grad_outputs, infer_shape=_with_partial(_call(f"{_kind}_backward_shape")),
        infer_type=_call("backward_type"), partial_infer=True, resources=("rng", "is_train"),
        differentiable=False,
        doc=f"Gradient of {_name}: the gradients of its inputs, by running the body's "
            "gradient graph backwards over the steps."))
