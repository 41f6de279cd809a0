"""``Symbol``: a composable, inspectable description of a computation (MXNet 1.x).

A symbol is a list of output entries of graph nodes. Symbols are built with
``Variable`` and ``sym.<Op>``, combined with Python operators and by call
(``net(data=other)``), inspected (``list_arguments``, ``infer_shape``,
``get_internals``), saved as JSON, and bound to an executor to run.
"""
import ast
import numbers
import warnings

import numpy as np

from ..base import DeepkitError, ShapeError
from ..executor import Executor, simple_bind
from ..fileio import atomic_path
from ..graph.infer import infer_shapes, infer_types
from ..graph.node import Graph, Node, merge_variables, topo_order
from ..ops import registry as _registry
from ..ops.fluent import attach_fluent_methods, attach_operators
from .json_io import from_json, to_json
from .naming import current_attr_scope, current_name_manager

__all__ = ["Symbol", "Variable", "var", "Group", "functions"]


class Symbol:
    """One or more outputs of a graph. See the module docstring."""

    __slots__ = ("_outputs", "__weakref__")
    __hash__ = object.__hash__

    def __init__(self, outputs):
        self._outputs = list(outputs)

    # -- identity --------------------------------------------------------------
    @property
    def name(self):
        """The node name of a single-output symbol (None for groups)."""
        if len(self._outputs) != 1:
            return None
        return self._outputs[0][0].name

    def __repr__(self):
        if len(self._outputs) == 1:
            return f"<Symbol {self.name}>"
        return f"<Symbol group [{', '.join(self.list_outputs())}]>"

    def __len__(self):
        return len(self._outputs)

    def __iter__(self):
        return (Symbol([e]) for e in self._outputs)

    def __getitem__(self, index):
        if isinstance(index, str):
            names = self.list_outputs()
            if index not in names:
                raise KeyError(f"no output named '{index}'{_registry.did_you_mean(index, names)};"
                               f" outputs are {names}")
            index = names.index(index)
        if isinstance(index, slice):
            return Symbol(self._outputs[index])
        return Symbol([self._outputs[index]])

    def __bool__(self):
        raise DeepkitError("bool(Symbol) is not defined: a Symbol has no values until it is "
                           "bound and run (MXNet: NotImplementedForSymbol); compare with "
                           "'is None', or evaluate an NDArray instead")

    def __copy__(self):
        return Symbol(self._outputs)

    def __deepcopy__(self, memo):
        return Symbol(self._outputs)

    # -- fluent methods that are not plain op calls --------------------------------
    def reshape(self, *shape, **kwargs):
        """Reshape with MXNet's special values (0, -1, -2, -3, -4) and ``reverse``.

        ``s.reshape((2, -1))``, ``s.reshape(2, -1)`` or ``s.reshape(shape=..., reverse=True)``.
        """
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        if "shape" in kwargs:
            shape = kwargs.pop("shape")
        return functions["reshape"](self, shape=tuple(shape), **kwargs)

    def astype(self, dtype, **kwargs):
        """The output cast to ``dtype`` (``cast``)."""
        return functions["cast"](self, dtype=dtype, **kwargs)

    def pad(self, *args, **kwargs):
        """Method form of ``pad(self, mode, pad_width, ...)``."""
        return functions["pad"](self, *args, **kwargs)

    def argmax_channel(self, *args, **kwargs):
        """Index of the largest value along axis 1 (MXNet's ``argmax_channel``)."""
        return functions["argmax_channel"](self, *args, **kwargs)

    def as_nd_ndarray(self):
        """This symbol (it already is a classic ``sym`` symbol)."""
        return self

    def as_np_ndarray(self):
        """Refused: MXNet's ``mx.np`` symbols are not part of deepkit."""
        raise DeepkitError("as_np_ndarray: MXNet's mx.np symbols are not supported; use the "
                           "sym API itself")

    def gradient(self, wrt):
        """Refused, as in MXNet 1.x: bind the symbol and run ``backward`` instead."""
        raise DeepkitError(f"Symbol.gradient(wrt={wrt!r}) is not implemented (as in MXNet): "
                           "bind the symbol (simple_bind) and call backward() for gradients")

    def optimize_for(self, backend, *args, **kwargs):
        """Refused: deepkit has no subgraph backends to partition a symbol for."""
        raise DeepkitError(f"optimize_for(backend={backend!r}): deepkit has no subgraph "
                           "backends; bind the symbol as it is")

    def get_backend_symbol(self, backend):
        """Refused: deepkit has no subgraph backends to partition a symbol for."""
        raise DeepkitError(f"get_backend_symbol(backend={backend!r}): deepkit has no subgraph "
                           "backends; bind the symbol as it is")

    def _not_for_symbols(self, what):
        raise DeepkitError(f"Symbol.{what}() is not defined: a Symbol has no values until it "
                           "is bound and run (MXNet: NotImplementedForSymbol); bind it and use "
                           "the executor's outputs")

    def wait_to_read(self):
        """Refused, as in MXNet: a Symbol holds no values."""
        self._not_for_symbols("wait_to_read")

    def asnumpy(self):
        """Refused, as in MXNet: a Symbol holds no values."""
        self._not_for_symbols("asnumpy")

    def asscalar(self):
        """Refused, as in MXNet: a Symbol holds no values."""
        self._not_for_symbols("asscalar")

    def as_in_context(self, *args, **kwargs):
        """Refused, as in MXNet: a Symbol has no device until it is bound."""
        self._not_for_symbols("as_in_context")

    def detach(self):
        """Refused, as in MXNet: use ``BlockGrad`` to stop gradients in a graph."""
        self._not_for_symbols("detach")

    def backward(self, *args, **kwargs):
        """Refused, as in MXNet: bind the symbol and call the executor's ``backward``."""
        self._not_for_symbols("backward")

    def copy(self):
        """Refused, as in MXNet 1.x (``copy.copy(symbol)`` gives a copy)."""
        self._not_for_symbols("copy")

    # -- structure -------------------------------------------------------------
    def _nodes(self):
        return topo_order(self._outputs)

    def _aux_variable_ids(self, nodes=None):
        aux = set()
        for node in nodes or self._nodes():
            if node.op is not None and node.op.aux:
                names = node.input_names()
                for (src, _), n in zip(node.inputs, names):
                    if n in node.op.aux and src.op is None:
                        aux.add(id(src))
        return aux

    def list_arguments(self):
        """Names of the inputs (variables that are not auxiliary states), in order."""
        nodes = self._nodes()
        aux = self._aux_variable_ids(nodes)
        return [n.name for n in nodes if n.op is None and id(n) not in aux]

    def list_auxiliary_states(self):
        """Names of the auxiliary states (e.g. BatchNorm's moving mean/var)."""
        nodes = self._nodes()
        aux = self._aux_variable_ids(nodes)
        return [n.name for n in nodes if n.op is None and id(n) in aux]

    def list_inputs(self):
        """Every variable: arguments and auxiliary states, in graph order."""
        return [n.name for n in self._nodes() if n.op is None]

    def list_outputs(self):
        """Output names: ``<node>_<output>`` (``fc1_output``) or a variable's name."""
        return [node.output_names()[i] for node, i in self._outputs]

    def get_internals(self):
        """A symbol whose outputs are every output of every node, in graph order."""
        entries = []
        for node in self._nodes():
            entries.extend((node, i) for i in range(node.num_visible_outputs()))
        return Symbol(entries)

    def get_children(self):
        """The inputs of this symbol's node as one grouped symbol (None for a variable)."""
        entries = []
        for node, _ in self._outputs:
            entries.extend(node.inputs)
        return Symbol(entries) if entries else None

    # -- attributes --------------------------------------------------------------
    def attr(self, key):
        """A user attribute of this single-output symbol's node (``lr_mult`` ...)."""
        if len(self._outputs) != 1:
            raise DeepkitError("attr() needs a single-output symbol")
        attrs = self._outputs[0][0].user_attrs
        value = attrs.get(key)
        if value is None:
            value = attrs.get(f"__{key}__")
        return value

    def list_attr(self):
        """User attributes of this symbol's node."""
        if len(self._outputs) != 1:
            raise DeepkitError("list_attr() needs a single-output symbol")
        return dict(self._outputs[0][0].user_attrs)

    def attr_dict(self):
        """``{node_name: {key: value}}`` for every node with user attributes."""
        return {n.name: dict(n.user_attrs) for n in self._nodes() if n.user_attrs}

    def _set_attr(self, **kwargs):
        for node, _ in self._outputs:
            node.user_attrs.update({k: str(v) for k, v in kwargs.items()})

    # -- inference ---------------------------------------------------------------
    def _known_from_variables(self, graph, key, kwargs, args, kind):
        names = self.list_arguments()
        given = dict(kwargs)
        if args:
            if len(args) > len(names):
                raise ShapeError(f"infer_{kind}: {len(args)} positional values but the symbol has "
                                 f"only {len(names)} arguments ({', '.join(names)})")
            for n, v in zip(names, args):
                if v is not None:
                    given[n] = v
        known = {}
        variables = {n.name: n for n in graph.nodes if n.op is None}
        for name, value in given.items():
            if name not in variables:
                raise ShapeError(f"infer_{kind}: '{name}' is not an input of this symbol"
                                 f"{_registry.did_you_mean(name, variables)}; inputs are "
                                 f"{', '.join(variables)}")
            if value is not None:
                if kind == "shape":
                    value = (int(value),) if isinstance(value, numbers.Integral) else tuple(value)
                known[graph.entry_id(variables[name])] = value
        for node in variables.values():
            eid = graph.entry_id(node)
            if eid not in known and node.user_attrs.get(key):
                text = node.user_attrs[key]
                known[eid] = _parse_shape_attr(text) if kind == "shape" else _parse_dtype_attr(text)
        return known

    def _infer(self, kind, args, kwargs):
        graph = Graph(self._outputs)
        key = "__shape__" if kind == "shape" else "__dtype__"
        known = self._known_from_variables(graph, key, kwargs, args, kind)
        if kind == "shape":
            values = [None if v is None else tuple(v)
                      for v in infer_shapes(graph, known, zero_unknown=True)]
        else:
            values = infer_types(graph, known)
        nodes = graph.nodes
        aux = self._aux_variable_ids(nodes)
        arg = [values[graph.entry_id(n)] for n in nodes if n.op is None and id(n) not in aux]
        aux_v = [values[graph.entry_id(n)] for n in nodes if n.op is None and id(n) in aux]
        out = [values[graph.entry_id(n, i)] for n, i in self._outputs]
        return arg, out, aux_v

    def infer_shape(self, *args, **kwargs):
        """Infer every shape from some given ones (MXNet 1.x: a 0 dimension is unknown).

        Shapes flow forwards and backwards until nothing changes: weight
        shapes come from data shapes, labels from outputs, and partly known
        shapes such as ``(0, 10)`` are completed from the others.

        Returns:
            ``(arg_shapes, out_shapes, aux_shapes)`` in the order of
            ``list_arguments``, ``list_outputs`` and ``list_auxiliary_states``;
            ``(None, None, None)`` with a warning naming the arguments that
            stay unknown, as MXNet 1.9.1 does (:meth:`infer_shape_partial`
            shows what is known).
        """
        arg, out, aux = self._infer("shape", args, kwargs)
        if all(_known_shape(s) for s in arg + out + aux):
            return arg, out, aux
        unknowns = [f"{n}: {s if s is not None else ()}"
                    for n, s in zip(self.list_arguments(), arg) if not _known_shape(s)]
        if len(unknowns) > 10:
            unknowns = unknowns[:10] + ["..."]
        warnings.warn("Cannot decide shape for the following arguments (0s in shape means "
                      "unknown dimensions). Consider providing them as input:\n\t"
                      + "\n\t".join(unknowns), stacklevel=2)
        return None, None, None

    def infer_shape_partial(self, *args, **kwargs):
        """Like :meth:`infer_shape`, returning what is known and never failing on unknowns.

        As in MXNet 1.x, unknown dimensions are 0 (``(0, 10)``) and a shape of
        which nothing is known is ``()``. Since ``()`` is also a scalar's shape
        in deepkit, :meth:`infer_shape_known` tells the two apart.
        """
        arg, out, aux = self._infer("shape", args, kwargs)
        return ([() if s is None else s for s in arg], [() if s is None else s for s in out],
                [() if s is None else s for s in aux])

    def infer_shape_known(self, *args, **kwargs):
        """:meth:`infer_shape_partial` with ``None`` for a shape of which nothing is known.

        Unknown dimensions are 0; ``()`` is a scalar's shape.
        """
        return self._infer("shape", args, kwargs)

    def infer_type(self, *args, **kwargs):
        """Infer every dtype from some given ones.

        Returns:
            ``(arg_types, out_types, aux_types)``; ``(None, None, None)`` with a
            warning naming the arguments whose dtype stays unknown, as MXNet
            1.9.1 does (:meth:`infer_type_partial` shows what is known).
        """
        arg, out, aux = self._infer("type", args, kwargs)
        if not any(t is None for t in arg + out + aux):
            return arg, out, aux
        unknowns = [f"{n}: None" for n, t in zip(self.list_arguments(), arg) if t is None]
        warnings.warn("Cannot decide type for the following arguments. Consider providing them "
                      "as input:\n\t" + "\n\t".join(unknowns), stacklevel=2)
        return None, None, None

    def infer_type_partial(self, *args, **kwargs):
        """Like :meth:`infer_type`, with ``None`` for the dtypes that stay unknown."""
        return self._infer("type", args, kwargs)

    # -- composition -------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        """Compose: replace this symbol's variables by other symbols.

        ``net(data=other)`` or ``net(other)`` (positionally, in
        ``list_arguments`` order) returns a new symbol; this one is unchanged.
        """
        name = kwargs.pop("name", None)
        names = self.list_arguments()
        subs = {}
        if len(args) > len(names):
            raise DeepkitError(f"compose: {len(args)} positional symbols but only {len(names)} "
                               "arguments")
        for n, s in zip(names, args):
            subs[n] = s
        for k, s in kwargs.items():
            if k not in self.list_inputs():
                raise DeepkitError(f"compose: '{k}' is not an input of this symbol"
                                   f"{_registry.did_you_mean(k, names)}; inputs are {names}")
            subs[k] = s
        for k, s in subs.items():
            if not isinstance(s, Symbol) or len(s._outputs) != 1:
                raise DeepkitError(f"compose: the value for '{k}' must be a single-output Symbol")
        return Symbol(_substitute(self._outputs, {k: s._outputs[0] for k, s in subs.items()},
                                  name))

    # -- serialization -----------------------------------------------------------
    def __reduce__(self):
        # as MXNet: a symbol pickles as its JSON (ops by name, never their Python objects)
        return _symbol_from_json, (self.tojson(),)

    def tojson(self):
        """The graph as MXNet-compatible JSON text."""
        return to_json(self._outputs)

    def save(self, fname):
        """Write :meth:`tojson` to ``fname`` (atomically)."""
        with atomic_path(fname) as tmp:
            with open(tmp, "w") as f:
                f.write(self.tojson())

    def debug_str(self):
        """A readable listing of the nodes, their params and inputs."""
        lines = []
        for node in self._nodes():
            if node.op is None:
                lines.append(f"Variable:{node.name}")
                continue
            lines.append("-" * 40)
            lines.append(f"Op:{node.op.name}, Name={node.name}")
            lines.append("Inputs:")
            for i, (src, idx) in enumerate(node.inputs):
                lines.append(f"\targ[{i}]={src.output_names()[idx]}")
            if node.attrs:
                lines.append("Attrs:")
                lines.extend(f"\t{k}={v}" for k, v in node.attrs.items())
        return "\n".join(lines)

    # -- binding -----------------------------------------------------------------
    def simple_bind(self, ctx=None, grad_req="write", type_dict=None, shared_exec=None,
                    mirror="one-pass", plan_memory=True, **shapes):
        """Allocate every array from the given input shapes and bind (see ``bind``)."""
        return simple_bind(self, ctx, grad_req, type_dict, shared_exec, mirror, plan_memory,
                           shapes)

    def bind(self, ctx=None, args=None, args_grad=None, grad_req="write", aux_states=None,
             shared_exec=None, mirror="one-pass", plan_memory=True):
        """Bind arrays to the arguments and compile an :class:`Executor`.

        Args:
            ctx: Device.
            args: Argument arrays: a list in ``list_arguments`` order or a dict.
            args_grad: Gradient arrays (list or dict); arguments without one
                get no gradient.
            grad_req: ``'write'``, ``'add'`` or ``'null'``, or a list/dict of them.
            aux_states: Auxiliary state arrays (list or dict).
            shared_exec: Accepted for MXNet compatibility (arrays are shared by
                passing the same NDArrays).
            mirror: What backward recomputes instead of keeping (see
                :mod:`deepkit_engine.graph.mirror`; results are bit-identical).
                ``"one-pass"`` (the default): activations after BatchNorm, from
                the kept convolution outputs, where that lowers the peak.
                ``False``: nothing; every activation backward reads is kept, as
                in MXNet. ``True`` (or ``"segments"``): only segment boundaries
                of the forward pass are kept and the rest, BatchNorm included,
                is recomputed. An int is a memory budget in bytes: segments are
                recomputed only if the default plan needs more.
            plan_memory: ``False`` gives every intermediate its own buffer
                (for debugging; results are identical).
        """
        return Executor(self, ctx, args, args_grad, grad_req, aux_states, shared_exec, mirror,
                        plan_memory)

    def eval(self, ctx=None, **kwargs):
        """Bind the given arrays, run forward, and return the outputs."""
        exe = self.bind(ctx, kwargs, grad_req="null")
        return exe.forward()

    # Operators (``+``, ``-x``, ``==`` ...) are generated from the ops'
    # declarations at the end of this module.


def _arith(op, lhs, rhs, out):
    """``lhs <op> rhs`` for a Symbol operator; nodes are named after ``op.operator_alias``."""
    if isinstance(lhs, Symbol):
        if isinstance(rhs, Symbol):
            return _call(op.operator_alias, lhs, rhs)
        if isinstance(rhs, numbers.Number) and op.scalar_form is not None:
            return _call(_registry.get_op(op.scalar_form).operator_alias, lhs,
                         scalar=float(rhs))
    elif isinstance(lhs, numbers.Number) and op.reflected_scalar_form is not None:
        return _call(_registry.get_op(op.reflected_scalar_form).operator_alias, rhs,
                     scalar=float(lhs))
    return NotImplemented


def _unary(op, x):
    return _call(op.operator_alias, x)


def _call(call_name, *args, **kwargs):
    return functions[call_name](*args, **kwargs)


def _known_shape(shape):
    """A shape with every dimension known (MXNet 1.x: 0 is an unknown dimension)."""
    return shape is not None and 0 not in shape


#: MXNet's type flags, as its ``Variable(dtype=...)`` writes them into ``__dtype__``.
_MXNET_TYPE_FLAGS = {0: "float32", 1: "float64", 2: "float16", 3: "uint8", 4: "int32", 5: "int8",
                     6: "int64", 7: "bool", 8: "int16", 9: "uint16", 10: "uint32", 11: "uint64"}


def _parse_dtype_attr(text):
    """A ``__dtype__`` attribute: a dtype name (deepkit) or MXNet's numeric type flag."""
    text = str(text).strip()
    if text.isdigit():
        flag = int(text)
        if flag not in _MXNET_TYPE_FLAGS:
            raise DeepkitError(f"__dtype__={text!r}: MXNet type flag {flag} has no numpy dtype "
                               f"here; known flags are {sorted(_MXNET_TYPE_FLAGS)}")
        return np.dtype(_MXNET_TYPE_FLAGS[flag])
    return np.dtype(text)


def _parse_shape_attr(text):
    value = ast.literal_eval(text)
    return (int(value),) if isinstance(value, int) else tuple(int(v) for v in value)


def _substitute(outputs, subs, name=None):
    """Copy the graph behind ``outputs`` with variables replaced by entries."""
    memo = {}

    def copy_node(node):
        got = memo.get(id(node))
        if got is not None:
            return got
        if node.op is None:
            memo[id(node)] = node
            return node
        new_inputs = []
        for src, idx in node.inputs:
            if src.op is None and src.name in subs:
                new_inputs.append(subs[src.name])
            else:
                new_inputs.append((copy_node(src), idx))
        new = Node(node.op, node.name, node.attrs, new_inputs, node.user_attrs)
        memo[id(node)] = new
        return new
    result = []
    for node, idx in outputs:
        if node.op is None and node.name in subs:
            result.append(subs[node.name])
        else:
            result.append((copy_node(node), idx))
    for node, _ in result:
        node.variables()  # refuse duplicate variable names now
    return result


def Variable(name, attr=None, shape=None, lr_mult=None, wd_mult=None, dtype=None, init=None,
             **kwargs):
    """A named input of a graph (data, label, weight, ...).

    Args:
        name: The variable's name; arrays are bound to it by name.
        attr: Extra string attributes.
        shape: Known shape (used by shape inference).
        lr_mult, wd_mult: Learning-rate and weight-decay multipliers.
        dtype: Known dtype.
        init: Initializer description (a string, or an object with ``dumps()``).
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"Variable: name must be a non-empty str, got {name!r}")
    attrs = current_attr_scope().get(attr)
    if shape is not None:
        attrs["__shape__"] = str(tuple(shape))
    if lr_mult is not None:
        attrs["__lr_mult__"] = str(float(lr_mult))
    if wd_mult is not None:
        attrs["__wd_mult__"] = str(float(wd_mult))
    if dtype is not None:
        attrs["__dtype__"] = np.dtype(dtype).name
    if init is not None:
        attrs["__init__"] = init if isinstance(init, str) else init.dumps()
    for k, v in kwargs.items():
        if k.startswith("__") and k.endswith("__"):
            attrs[k] = str(v)
        else:
            raise TypeError(f"Variable: unknown argument '{k}'; extra attributes must be "
                            "spelled '__name__' or passed in attr=")
    return Symbol([(Node(None, name, user_attrs=attrs), 0)])


var = Variable


def Group(symbols):
    """One symbol whose outputs are the outputs of ``symbols``, in order."""
    entries = []
    merged = {}
    for s in symbols:
        if not isinstance(s, Symbol):
            raise TypeError(f"Group: expected Symbols, got {type(s).__name__}")
        for node, _ in s._outputs:
            merged = merge_variables(merged, node.variables(), "Group")
        entries.extend(s._outputs)
    return Symbol(entries)


def make_function(op, call_name):
    """The ``sym.<call_name>`` function for ``op``; node names use ``call_name`` as hint.

    As in MXNet 1.x, keywords spelled ``__name__`` (``__layout__='NCHW'``)
    are graph attributes, not op params: they join ``attr`` on the new node.
    """
    hint = call_name.lower()
    scalar_form = op.scalar_form
    reflected_scalar_form = op.reflected_scalar_form

    def function(*args, name=None, attr=None, **kwargs):
        if scalar_form is not None and len(args) == 2:
            a, b = args
            if isinstance(b, numbers.Number) and isinstance(a, Symbol):
                return _call(scalar_form, a, scalar=float(b), name=name, attr=attr)
            if isinstance(a, numbers.Number) and isinstance(b, Symbol):
                return _call(reflected_scalar_form, b, scalar=float(a), name=name, attr=attr)
        graph_attrs = {k: v for k, v in kwargs.items() if _registry.is_graph_attr(k)}
        if graph_attrs:
            kwargs = {k: v for k, v in kwargs.items() if k not in graph_attrs}
            attr = dict(attr or {})
            attr.update({k: str(v) for k, v in graph_attrs.items()})
        args, symbols, attrs = op.split_call(args, kwargs, lambda v: isinstance(v, Symbol))
        inputs = args
        node_name = current_name_manager().get(name, hint)
        if not op.variadic:
            names = op.input_names(attrs)
            if len(args) > len(names):
                raise DeepkitError(f"{op.name} '{node_name}': takes {len(names)} input(s) "
                                   f"({', '.join(names)}) but {len(args)} were given")
            slots = dict(zip(names, args))
            for k, v in symbols.items():
                if k not in names:
                    raise DeepkitError(f"{op.name} '{node_name}': unknown input '{k}'"
                                       f"{_registry.did_you_mean(k, names)}; inputs are "
                                       f"{', '.join(names) or 'none'}")
                slots[k] = v
            inputs = []
            for n in names:
                s = slots.get(n)
                if s is None:
                    s = Variable(f"{node_name}_{n}")
                inputs.append(s)
        entries = []
        for i, s in enumerate(inputs):
            if not isinstance(s, Symbol):
                raise TypeError(f"{op.name} '{node_name}': input {i} must be a Symbol, got "
                                f"{type(s).__name__}")
            if len(s._outputs) != 1:
                raise DeepkitError(f"{op.name} '{node_name}': input {i} is a group of "
                                   f"{len(s._outputs)} outputs; pick one with [index]")
            entries.append(s._outputs[0])
        node = Node(op, node_name, attrs, entries, current_attr_scope().get(attr))
        node.variables()  # refuse duplicate variable names at composition
        return Symbol([(node, i) for i in range(node.num_visible_outputs())])

    function.__name__ = call_name
    function.__qualname__ = call_name
    function.__doc__ = op.docstring()
    return function


#: ``{call name: function}``: ``sym.<name>`` for every registered name (aliases included).
functions = {name: make_function(_registry.get_op(name), name) for name in _registry.list_ops()}

attach_operators(Symbol, _arith, _unary, inplace=False)
attach_fluent_methods(Symbol, functions)


def _symbol_from_json(text):
    """Unpickle a :class:`Symbol` (see ``Symbol.__reduce__``)."""
    return Symbol(from_json(text))
