"""The operator registry: every op is declared here once.

An :class:`OpDef` holds everything about an op: its inputs and outputs, its
typed parameters, shape and type inference, the forward kernel and (filled by
the graph layer) its gradient. ``nd.<Op>``, ``sym.<Op>``, their docstrings and
the test enumeration are all generated from these declarations.

Kernel contract::

    forward(xp, attrs, inputs, outputs, req, **resources)

``xp`` is numpy or cupy, ``inputs``/``outputs`` are raw arrays (outputs are
preallocated with the inferred shapes and dtypes), and ``req[i]`` says how to
produce output ``i``: ``'write'`` (overwrite), ``'inplace'`` (the output shares
an input's memory), ``'add'`` (accumulate into it) or ``'null'`` (skip).
Ops that list ``resources`` get them as keyword arguments: ``rng`` (the
context's random generator), ``is_train`` (training or inference mode); one
handler (:mod:`deepkit_engine.resources`) provides them wherever ops run.
:meth:`OpDef.kernel` picks the numpy or the cupy kernel, for the NDArray
path and the executor alike.

Besides its computation, a declaration says how the op is offered:
``scalar_form``/``reflected_scalar_form`` (``x + 1``), ``operator`` (the
Python operator NDArray and Symbol implement with it) and ``fluent``
(``x.sum()``). Adding an op touches its family module and its test only.

Shape inference::

    infer_shape(attrs, in_shapes) -> (in_shapes, out_shapes)

Entries of ``in_shapes`` may be ``None`` when unknown; an op that can deduce
them (a weight from the data shape) returns them filled in, which is how
graph-level inference runs backwards. Type inference has the same form with
dtypes. Inference raises :class:`ShapeError`/:class:`DTypeError` with a message
about the arguments; the caller adds the op name, node name and all input
shapes.
"""
import ast

import numpy as np

from ..base import DTypeError, ParamError, ShapeError, did_you_mean

__all__ = [
    "REQUIRED", "Param", "Attrs", "OpDef", "register", "get_op", "list_ops",
    "canonical_ops", "write_result", "same_shape", "same_dtype", "Shape", "Axes",
    "DType", "OPERATORS", "register_runtime", "unregister", "add_registration_listener",
    "is_graph_attr",
]


#: Python operators an op may declare (``OpDef(operator=...)``): the dunder stem
#: and whether the operator has a reflected (``__radd__``) and an in-place
#: (``__iadd__``) form. Unary operators take one operand.
OPERATORS = {
    "add": ("binary", True, True), "sub": ("binary", True, True),
    "mul": ("binary", True, True), "truediv": ("binary", True, True),
    "mod": ("binary", True, True), "pow": ("binary", True, True),
    "matmul": ("binary", True, False),
    "eq": ("binary", False, False), "ne": ("binary", False, False),
    "lt": ("binary", False, False), "le": ("binary", False, False),
    "gt": ("binary", False, False), "ge": ("binary", False, False),
    "neg": ("unary", False, False), "abs": ("unary", False, False),
    "invert": ("unary", False, False),
}


class _Required:
    def __repr__(self):
        return "REQUIRED"


REQUIRED = _Required()


class Shape:
    """Parameter type: a tuple of ints (accepts an int, a list, or "(2, 3)")."""


class Axes:
    """Parameter type: ``None``, an int, or a tuple of ints."""


class DType:
    """Parameter type: a numpy dtype (accepts a name such as 'float32')."""


_TYPE_NAMES = {int: "int", float: "float", bool: "bool", str: "str", Shape: "shape",
               Axes: "int or tuple of int", DType: "dtype"}


class Param:
    """A typed operator parameter with a default, validation and a doc line.

    Args:
        type: ``int``, ``float``, ``bool``, ``str``, :class:`Shape`,
            :class:`Axes` or :class:`DType`.
        default: The default value, or :data:`REQUIRED`. A default of ``None``
            also allows ``None`` to be passed.
        doc: One line for the generated docstring.
        choices: Allowed values (for strings).
        min: Smallest allowed value (numbers, and each entry of a shape).
        max: Largest allowed value (numbers).
    """

    __slots__ = ("type", "default", "doc", "choices", "min", "max", "name")

    def __init__(self, type, default=REQUIRED, doc="", choices=None, min=None, max=None):
        self.type, self.default, self.doc = type, default, doc
        self.choices, self.min, self.max = choices, min, max
        self.name = None

    def parse(self, op_name, value):
        """Convert ``value`` (a Python value or its string form) and validate it."""
        if value is None and (self.default is None or self.type is Axes):
            return None
        try:
            parsed = self._convert(value)
        except (TypeError, ValueError, SyntaxError):
            raise ParamError(
                f"{op_name}: param {self.name}={value!r} is not a valid "
                f"{_TYPE_NAMES.get(self.type, self.type)}", op=op_name, param=self.name,
                value=value) from None
        self._check(op_name, parsed, value)
        return parsed

    def _convert(self, value):
        t = self.type
        if isinstance(value, str) and t is not str and t is not DType:
            if value.strip() in ("None", "") and (self.default is None or t is Axes):
                return None
            if t is bool:
                low = value.strip().lower()
                if low in ("true", "1"):
                    return True
                if low in ("false", "0"):
                    return False
                raise ValueError(value)
            value = ast.literal_eval(value.strip()) if value.strip() not in ("None", "") else None
            if value is None:
                if self.default is None or t is Axes:
                    return None
                raise ValueError("None")
        if t is bool:
            if isinstance(value, (bool, np.bool_)) or value in (0, 1):
                return bool(value)
            raise ValueError(value)
        if t is int:
            if isinstance(value, (bool, np.bool_)) or float(value) != int(value):
                raise ValueError(value)
            return int(value)
        if t is float:
            if isinstance(value, (bool, np.bool_)):
                raise ValueError(value)
            return float(value)
        if t is str:
            if not isinstance(value, str):
                raise TypeError(value)
            return value
        if t is Shape:
            if isinstance(value, (int, np.integer)):
                return (int(value),)
            return tuple(_as_int(v) for v in value)
        if t is Axes:
            if value is None:
                return None
            if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
                return int(value)
            return tuple(_as_int(v) for v in value)
        if t is DType:
            if value is None or (isinstance(value, str) and value.strip() == "None"):
                if self.default is None:
                    return None
                raise ValueError(value)
            return np.dtype(value)
        raise TypeError(f"unknown param type {t!r}")

    def _check(self, op_name, parsed, raw):
        if self.choices is not None and parsed not in self.choices:
            raise ParamError(
                f"{op_name}: param {self.name}={raw!r} must be one of "
                f"{', '.join(map(repr, self.choices))}{did_you_mean(raw, self.choices)}",
                op=op_name, param=self.name, value=raw)
        if self.min is not None:
            values = parsed if isinstance(parsed, tuple) else (parsed,)
            if any(v < self.min for v in values):
                raise ParamError(f"{op_name}: param {self.name}={raw!r} must be >= {self.min}",
                                 op=op_name, param=self.name, value=raw)
        if self.max is not None and parsed > self.max:
            raise ParamError(f"{op_name}: param {self.name}={raw!r} must be <= {self.max}",
                             op=op_name, param=self.name, value=raw)

    def describe(self):
        kind = _TYPE_NAMES.get(self.type, str(self.type))
        if self.choices is not None:
            kind = "{" + ", ".join(map(repr, self.choices)) + "}"
        default = "required" if self.default is REQUIRED else f"default={self.default!r}"
        return f"{kind}, {default}"


def is_graph_attr(key):
    """Whether a keyword is an MXNet graph attribute (``__layout__``, ``__lr_mult__`` ...)."""
    return len(key) > 4 and key.startswith("__") and key.endswith("__")


def _as_int(v):
    if isinstance(v, (bool, np.bool_)) or int(v) != v:
        raise ValueError(v)
    return int(v)


class Attrs(dict):
    """Parsed op parameters: a dict that also allows ``attrs.name`` access."""

    __slots__ = ()

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


class OpDef:
    """The single declaration of an operator. See the module docstring.

    Args:
        name: Registered name (MXNet's where one exists).
        forward: The kernel ``forward(xp, attrs, inputs, outputs, req, **res)``,
            or a dict ``{'cpu': f, 'gpu': g}`` for per-backend kernels.
        inputs: Input names, or ``callable(attrs) -> names``.
        params: ``{name: Param}``.
        infer_shape: ``(attrs, in_shapes) -> (in_shapes, out_shapes)``;
            defaults to "all inputs share one shape, as does the output".
        infer_type: ``(attrs, in_dtypes) -> (in_dtypes, out_dtypes)``;
            defaults to "all inputs share one dtype, as does the output".
        outputs: Output names, or ``callable(attrs) -> names``.
        aliases: Other names for the same op (MXNet internal names).
        variadic: Inputs come as ``*args``; their count is param ``num_args``.
        inplace: ``(input_index, output_index)`` pairs that may share memory.
        resources: Extra kernel arguments: ``'rng'``, ``'is_train'``, ``'replica'``,
            ``'blas_wide'`` (see :mod:`deepkit_engine.resources`).
        aux: Names of inputs that are auxiliary states: the op updates them
            in place (BatchNorm's moving statistics); they are listed by
            ``list_auxiliary_states`` and get no gradient.
        partial_infer: ``infer_shape`` and ``infer_type`` cope with unknown
            (``None``) inputs. Otherwise graph inference calls them only once
            every input is known (``same_shape``/``same_dtype`` always cope).
        loss_head: The op is a loss head: its gradient does not use the
            incoming output gradient (MXNet's SoftmaxOutput and friends).
        mirror: Cheap to recompute: with ``mirror=True`` binding, its outputs
            are recomputed in backward instead of kept from forward.
        unbroadcast: The gradient pass sums each input gradient down to that
            input's shape (for broadcasting ops, so they never do it themselves).
        visible_outputs: How many of the outputs users see (an int or
            ``callable(attrs) -> int``); the rest are hidden outputs that only
            the gradient uses (Dropout's mask). Default: all.
        gradient: The graph-level gradient (filled by the gradient pass's
            declarations); ``None`` means not declared yet.
        differentiable: False for ops with no gradient at all (argmax, ...).
        doc: What the op computes; parameters are appended automatically.
        scalar_form: For a binary op, the op that computes ``array <op> scalar``
            (``add`` -> ``_plus_scalar``): NDArray, Symbol and the generated
            functions use it when one operand is a Python number.
        reflected_scalar_form: The op for ``scalar <op> array``
            (``subtract`` -> ``_rminus_scalar``); defaults to ``scalar_form``.
        operator: The Python operator NDArray and Symbol implement with this op,
            as the dunder stem: ``'add'`` gives ``__add__``, ``__radd__`` and
            (NDArray) ``__iadd__``; see :data:`OPERATORS`.
        operator_alias: The registered name that operator-built symbol nodes
            are named after (MXNet's: ``x + y`` makes ``_plus0``); defaults to
            ``name``.
        fluent: ``True`` to offer the op as an NDArray/Symbol method under its
            name (``x.sum(axis=1)``), or the method name(s) to use.
        prepare: ``prepare(ctx, attrs)``, called when an executor that runs the op
            on ``ctx`` is bound, with the params of each of its nodes: loads what the
            kernel compiles on first use (numba kernels), so that neither the time
            nor the memory of loading them falls into the first training step.
        pool_parallel: The kernel splits its work over the kernel pool and keeps
            both cores busy by itself (convolutions, pooling, BatchNorm, recurrent
            layers): an executor running one does not hand matrix products to
            BLAS's own threads (see ``'blas_wide'``).
    """

    def __init__(self, name, forward, inputs=("data",), params=None, infer_shape=None,
                 infer_type=None, outputs=("output",), aliases=(), variadic=False, inplace=(),
                 resources=(), gradient=None, differentiable=True, doc="", aux=(),
                 partial_infer=None, loss_head=False, mirror=None, unbroadcast=False,
                 visible_outputs=None, scalar_form=None, reflected_scalar_form=None,
                 operator=None, operator_alias=None, fluent=False, prepare=None,
                 pool_parallel=False):
        self.name = name
        self.prepare = prepare
        self.pool_parallel = pool_parallel
        if isinstance(forward, dict):
            self.forward_cpu = forward["cpu"]
            self.forward_gpu = forward.get("gpu", forward["cpu"])
        else:
            self.forward_cpu = self.forward_gpu = forward
        self.inputs = inputs
        self.params = dict(params or {})
        for pname, p in self.params.items():
            p.name = pname
            if p.default is not REQUIRED and p.default is not None:
                p.default = p.parse(name, p.default)
        if variadic and "num_args" not in self.params:
            self.params["num_args"] = Param(int, None, "Number of inputs (set automatically).",
                                            min=0)
            self.params["num_args"].name = "num_args"
        self.infer_shape = infer_shape or same_shape
        self.infer_type = infer_type or same_dtype
        self.aux = tuple(aux)
        if partial_infer is None:
            partial_infer = infer_shape is None or getattr(infer_shape, "partial", False)
        self.partial_infer = partial_infer
        self.loss_head = loss_head
        self.mirror = mirror
        self.unbroadcast = unbroadcast
        self.visible_outputs = visible_outputs
        self.outputs = outputs
        self.aliases = tuple(aliases)
        self.variadic = variadic
        self.inplace = tuple(inplace)
        self.resources = tuple(resources)
        self.gradient = gradient
        self.differentiable = differentiable
        self.doc = doc
        self.default_attrs = self._defaults_or_none()
        self.num_static_outputs = None if callable(outputs) else len(outputs)
        self.scalar_form = scalar_form
        self.reflected_scalar_form = reflected_scalar_form or scalar_form
        if operator is not None and operator not in OPERATORS:
            raise ValueError(f"{name}: unknown operator {operator!r}; one of {sorted(OPERATORS)}")
        self.operator = operator
        self.operator_alias = operator_alias or name
        if fluent is True:
            fluent = (name,)
        elif isinstance(fluent, str):
            fluent = (fluent,)
        self.fluent = tuple(fluent or ())

    def _defaults_or_none(self):
        if any(p.default is REQUIRED for p in self.params.values()):
            return None
        return Attrs({k: p.default for k, p in self.params.items()})

    def parse_attrs(self, kwargs):
        """Validate keyword parameters against the declaration; fill defaults."""
        if not kwargs and self.default_attrs is not None:
            return self.default_attrs
        attrs = Attrs()
        params = self.params
        for key, value in kwargs.items():
            p = params.get(key)
            if p is None:
                raise ParamError(
                    f"{self.name}: unknown param '{key}'{did_you_mean(key, params)}; "
                    f"valid params: {', '.join(params) or 'none'}", op=self.name, param=key,
                    value=value)
            attrs[key] = p.parse(self.name, value)
        for key, p in params.items():
            if key not in attrs:
                if p.default is REQUIRED:
                    raise ParamError(f"{self.name}: missing required param '{key}' "
                                     f"({p.describe()})", op=self.name, param=key)
                attrs[key] = p.default
        return attrs

    def split_call(self, args, kwargs, is_input):
        """Sort a call's arguments into positional inputs, inputs by name and parsed attrs.

        The one argument convention of ``nd.<op>``, ``sym.<op>`` and graph
        passes: inputs first (a variadic op also takes one list), params
        positionally after them or by keyword, inputs also by keyword.

        Args:
            args: The positional arguments.
            kwargs: The keyword arguments.
            is_input: Tells an input (an array, a symbol) from a param value.

        Returns:
            ``(inputs, inputs by name, attrs)``.
        """
        named = {k: v for k, v in kwargs.items() if is_input(v)}
        params = {k: v for k, v in kwargs.items() if k not in named}
        if self.variadic:
            args = list(args[0]) if len(args) == 1 and isinstance(args[0], (list, tuple)) \
                else list(args)
            params.setdefault("num_args", len(args))
        elif not callable(self.inputs):
            args, params = self.positional_params(self.inputs, args, params)
        return list(args), named, self.parse_attrs(params)

    def positional_params(self, names, args, params):
        """Move positional values beyond the inputs into params, in declaration order.

        MXNet's generated functions take params positionally after the inputs
        (``nd.clip(x, 0, 1)``); so do ours.
        """
        extra = args[len(names):]
        if not extra:
            return args, params
        order = [k for k in self.params if k != "num_args"]
        if len(extra) > len(order):
            params_text = f" and {len(order)} param(s)" if order else ""
            raise ParamError(f"{self.name}: takes {len(names)} input(s) ({', '.join(names)})"
                             f"{params_text} but {len(args)} were given", op=self.name)
        params = dict(params)
        for k, v in zip(order, extra):
            if k in params:
                raise ParamError(f"{self.name}: param '{k}' given both positionally and by "
                                 "keyword", op=self.name, param=k)
            params[k] = v
        return args[:len(names)], params

    def input_names(self, attrs):
        if self.variadic:
            return tuple(f"arg{i}" for i in range(attrs.get("num_args") or 0))
        return self.inputs(attrs) if callable(self.inputs) else self.inputs

    def output_names(self, attrs):
        return self.outputs(attrs) if callable(self.outputs) else self.outputs

    def num_outputs(self, attrs):
        n = self.num_static_outputs
        return n if n is not None else len(self.outputs(attrs))

    def num_visible_outputs(self, attrs):
        """How many outputs users see (the rest are hidden, for the gradient)."""
        v = self.visible_outputs
        if v is None:
            return self.num_outputs(attrs)
        return v(attrs) if callable(v) else v

    def kernel(self, device):
        """The forward kernel for ``device``: a Context, or an array module (numpy/cupy).

        The one place that chooses between the numpy and the cupy kernel; the
        NDArray path and the executor both ask here.
        """
        if device is np or device is None:
            return self.forward_cpu
        try:
            gpu = device.device_type == "gpu"  # a Context
        except AttributeError:  # cupy
            gpu = True
        return self.forward_gpu if gpu else self.forward_cpu

    def describe_inputs(self, names, shapes, dtypes=None):
        parts = []
        for i, (n, s) in enumerate(zip(names, shapes)):
            d = f" {np.dtype(dtypes[i]).name}" if dtypes is not None and dtypes[i] is not None else ""
            parts.append(f"{n}={tuple(s) if s is not None else '?'}{d}")
        return ", ".join(parts)

    def run_infer_shape(self, attrs, in_shapes, node=None, in_dtypes=None):
        """Shape inference with errors that name the op, the node and all inputs."""
        try:
            return self.infer_shape(attrs, in_shapes)
        except (ShapeError, DTypeError, ParamError) as err:
            raise self._decorate(err, attrs, in_shapes, node, in_dtypes) from None

    def run_infer_type(self, attrs, in_dtypes, node=None, in_shapes=None):
        try:
            return self.infer_type(attrs, in_dtypes)
        except (ShapeError, DTypeError, ParamError) as err:
            raise self._decorate(err, attrs, in_shapes, node, in_dtypes) from None

    def _decorate(self, err, attrs, in_shapes, node, in_dtypes):
        names = self.input_names(attrs) if attrs is not None else ()
        if in_shapes is None:
            in_shapes = [None] * len(names)
        who = f"{self.name} '{node}'" if node else self.name
        text = str(err)
        if text.startswith(self.name + ":"):
            text = text[len(self.name) + 1:].lstrip()
        msg = f"{who}: {text}\n  inputs: {self.describe_inputs(names, in_shapes, in_dtypes)}"
        if isinstance(err, ParamError):
            return ParamError(msg, op=self.name, param=err.param, value=err.value)
        return type(err)(msg, op=self.name, node=node, argument=getattr(err, "argument", None),
                         expected=getattr(err, "expected", None),
                         actual=getattr(err, "actual", None))

    def docstring(self):
        """The generated docstring: the op's doc, its inputs and its params."""
        lines = [self.doc.strip() or f"The {self.name} operator.", ""]
        if self.variadic:
            lines += ["Args:", "    *data: NDArray or Symbol inputs."]
        else:
            names = self.inputs if not callable(self.inputs) else ("(depends on params)",)
            lines += ["Args:"] + [f"    {n}: NDArray or Symbol input." for n in names]
        for pname, p in self.params.items():
            if pname == "num_args" and self.variadic:
                continue
            lines.append(f"    {pname} ({p.describe()}): {p.doc}")
        lines += ["    out: NDArray to write the result into (nd only).",
                  "    name: Node name (sym only).", "",
                  f"Returns:\n    {self.num_static_outputs or 'several'} output(s)."]
        if self.aliases:
            lines += ["", "Also registered as: " + ", ".join(self.aliases) + "."]
        return "\n".join(lines)

    def __repr__(self):
        return f"<OpDef {self.name}>"


_REGISTRY = {}
_CANONICAL = {}


def register(op):
    """Add an :class:`OpDef` (and its aliases) to the registry; return it."""
    for n in (op.name,) + op.aliases:
        if n in _REGISTRY:
            raise ValueError(f"operator '{n}' is registered twice")
        _REGISTRY[n] = op
    _CANONICAL[op.name] = op
    return op


_LISTENERS = []


def add_registration_listener(listener):
    """Call ``listener(op, added)`` whenever an op is registered or removed at run time.

    The generated namespaces (``nd``, ``sym``) subscribe, so an op declared
    after import (an operator written in Python) appears there like the
    built-in ones, and disappears when it is unregistered.
    """
    _LISTENERS.append(listener)


def register_runtime(op):
    """Register ``op`` after import and tell the listeners (``nd``, ``sym``); return it.

    Raises:
        ValueError: The name or an alias is taken; the message names the op.
    """
    register(op)
    for listener in _LISTENERS:
        listener(op, True)
    return op


def unregister(name):
    """Remove a run-time registered op (and its aliases); tell the listeners.

    Raises:
        ParamError: No op of that name is registered.
    """
    op = get_op(name)
    for n in (op.name,) + op.aliases:
        _REGISTRY.pop(n, None)
    _CANONICAL.pop(op.name, None)
    for listener in _LISTENERS:
        listener(op, False)


def get_op(name):
    """Look up an op by name or alias; unknown names get a did-you-mean."""
    op = _REGISTRY.get(name)
    if op is None:
        raise ParamError(f"unknown operator '{name}'{did_you_mean(name, _REGISTRY)}",
                         op=name)
    return op


def list_ops():
    """Every registered name, aliases included, sorted."""
    return sorted(_REGISTRY)


def canonical_ops():
    """``{name: OpDef}`` for every op under its canonical name (no aliases)."""
    return dict(_CANONICAL)


# -- helpers shared by op declarations ---------------------------------------

def write_result(xp, out, value, req):
    """Store ``value`` into ``out`` honouring ``req`` (write/inplace/add/null)."""
    if req == "add":
        xp.add(out, value, out=out, casting="unsafe")
    elif req != "null":
        if out.shape == () or (hasattr(value, "shape") and value.shape != out.shape):
            xp.copyto(out, xp.broadcast_to(value, out.shape), casting="unsafe")
        else:
            out[...] = value


def same_shape(attrs, in_shapes):
    """Inference for elementwise ops: every input and the output share one shape."""
    known = None
    for i, s in enumerate(in_shapes):
        if s is not None:
            if known is None:
                known = s
            elif s != known:
                raise ShapeError(f"input {i} has shape {tuple(s)} but input 0 has {tuple(known)}; "
                                 "use the broadcast_* op to broadcast", argument=i,
                                 expected=known, actual=s)
    if known is None:
        return in_shapes, [None]
    return [known] * len(in_shapes), [known]


same_shape.partial = True


def same_dtype(attrs, in_dtypes):
    """Inference for most ops: every input and the output share one dtype."""
    known = None
    for i, d in enumerate(in_dtypes):
        if d is not None:
            if known is None:
                known = d
            elif d != known:
                raise DTypeError(f"input {i} has dtype {np.dtype(d).name} but input 0 has "
                                 f"{np.dtype(known).name}; cast one with astype()",
                                 argument=i, expected=known, actual=d)
    if known is None:
        return in_dtypes, [None]
    return [known] * len(in_dtypes), [known]


def contrib_op(name, namespace):
    """The op behind ``<namespace>.contrib.<name>``: ``_contrib_<name>``, else ``<name>``.

    Returns:
        ``(OpDef, the registered name)``.

    Raises:
        AttributeError: Neither name is registered (the message names both).
    """
    for candidate in (f"_contrib_{name}", name):
        if candidate in list_ops():
            return get_op(candidate), candidate
    raise AttributeError(f"{namespace}.contrib has no operator '{name}' (looked for "
                         f"'_contrib_{name}' and '{name}' in the registry)")


def contrib_names():
    """The names ``nd.contrib``/``sym.contrib`` list: the ops registered as ``_contrib_<name>``."""
    return sorted(n[len("_contrib_"):] for n in list_ops() if n.startswith("_contrib_"))
