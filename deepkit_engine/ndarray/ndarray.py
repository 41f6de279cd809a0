"""The lazy :class:`NDArray` handle and the imperative op dispatch.

An NDArray is a buffer (a numpy or cupy array, allocated when the handle is
made) plus the engine variable that orders the work on it. Views made by
basic indexing share their base's buffer *and* variable, so every write
through a view is ordered with every read of the base. Operations infer the
output shape and dtype at the call (errors are raised there, not later), then
push the kernel to the engine and return at once; only reading values waits.
"""
import numbers
import weakref

import numpy as np

from .. import engine as _engine_mod
from .. import tape as _tape
from ..base import ContextError, DeepkitError, DTypeError, ShapeError
from ..context import Context, context_of_array, current_context
from ..engine import Var as _Var
from .. import ops as _ops  # noqa: F401 - registers every op family
from ..ops import registry as _registry
from ..ops.fluent import attach_operators
from ..resources import acquire as _acquire_resources, bound_to_run

__all__ = ["NDArray", "LastPrepared", "invoke", "prepare_invoke", "INLINE_MAX_SIZE"]

#: Work on at most this many elements runs on the calling thread when ready:
#: a thread hand-off costs more than the arithmetic.
INLINE_MAX_SIZE = 1 << 14

_BASIC_INDEX_TYPES = (int, np.integer, slice, type(Ellipsis), type(None))


def _engine():
    return _engine_mod._engine


class NDArray:
    """A multi-dimensional array whose operations run on the dependency engine.

    Create one with :func:`deepkit_engine.nd.array`, ``zeros``, ``ones``, ...;
    read it with :meth:`asnumpy`. Arithmetic, comparisons, ``@`` and indexing
    work as in numpy (binary operators broadcast), but they return before the
    work is done.
    """

    __slots__ = ("_data", "_var", "_ctx", "_grad", "_grad_req", "_tape", "__weakref__")
    __array_priority__ = 1000.0
    __hash__ = object.__hash__

    def __init__(self, data, ctx=None, var=None):
        self._data = data
        self._ctx = ctx if ctx is not None else context_of_array(data)
        self._var = var if var is not None else _Var()
        self._grad = None
        self._grad_req = "null"
        self._tape = None

    # -- metadata (never waits) --------------------------------------------
    @property
    def shape(self):
        return self._data.shape

    @property
    def dtype(self):
        return self._data.dtype

    @property
    def ctx(self):
        return self._ctx

    context = ctx

    @property
    def size(self):
        return self._data.size

    @property
    def ndim(self):
        return self._data.ndim

    @property
    def T(self):
        return invoke_by_name("transpose", [self], {})

    @property
    def grad(self):
        """The gradient buffer attached by ``attach_grad`` (autograd)."""
        return self._grad

    # -- reading (waits) -----------------------------------------------------
    def wait_to_read(self):
        """Block until all pending writes to this array are done."""
        _engine_mod._engine.wait_for_var(self._var)
        return self

    def asnumpy(self, copy=True):
        """A numpy copy of the values (waits for pending work).

        Args:
            copy: False returns a read-only view of a CPU array's own buffer
                instead of a copy (no copy for data that is only read, e.g. a
                batch fed onward); it shows later writes to the array.
        """
        _engine_mod._engine.wait_for_var(self._var)
        data = self._data
        if isinstance(data, np.ndarray):
            if copy:
                return data.copy()
            view = data.view()
            view.flags.writeable = False
            return view
        return data.get()

    def asscalar(self):
        """The value of a one-element array as a Python scalar."""
        if self.size != 1:
            raise ShapeError(f"asscalar: the array has shape {self.shape}; only one-element "
                             "arrays convert to a scalar", expected=(1,), actual=self.shape)
        return self.asnumpy().reshape(()).item()

    item = asscalar

    def tolist(self):
        return self.asnumpy().tolist()

    def __array__(self, dtype=None, copy=None):
        self.wait_to_read()
        data = self._data if isinstance(self._data, np.ndarray) else self._data.get()
        if dtype is not None and np.dtype(dtype) != data.dtype:
            return data.astype(dtype)
        return data.copy() if copy else data

    def __dlpack__(self, stream=None, **kwargs):
        self.wait_to_read()
        if stream is None:
            return self._data.__dlpack__(**kwargs)
        return self._data.__dlpack__(stream=stream, **kwargs)

    def __dlpack_device__(self):
        return self._data.__dlpack_device__()

    def __repr__(self):
        values = self.asnumpy()
        shape = "x".join(map(str, self.shape)) if self.shape else "scalar"
        return f"{values}\n<NDArray {shape} @{self._ctx}>"

    def __str__(self):
        return self.__repr__()

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d NDArray")
        return self.shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __bool__(self):
        if self.size == 0:  # as MXNet 1.x: an empty array is false
            return False
        if self.size != 1:
            raise ValueError(f"the truth value of an NDArray of shape {self.shape} is ambiguous; "
                             "use .asnumpy().any() or .all()")
        return bool(self.asscalar())

    def __float__(self):
        return float(self.asscalar())

    def __int__(self):
        return int(self.asscalar())

    def __index__(self):
        if self.dtype.kind not in "iub":
            raise TypeError(f"only integer NDArrays can be used as an index, not {self.dtype}")
        return int(self.asscalar())

    # -- copies and conversions ------------------------------------------------
    def copy(self):
        """A new array with the same values on the same context."""
        return self.copyto(self._ctx)

    def copyto(self, other):
        """Copy into ``other`` (an NDArray of the same shape) or onto a Context.

        Returns the destination array.
        """
        if isinstance(other, Context):
            other.check_available()
            dst = NDArray(other.xp.empty(self.shape, self.dtype), other)
        elif isinstance(other, NDArray):
            if other.shape != self.shape:
                raise ShapeError(f"copyto: source shape {self.shape} does not match destination "
                                 f"shape {other.shape}", expected=self.shape, actual=other.shape)
            if other is self:
                return other
            dst = other
        else:
            raise TypeError(f"copyto: expected a Context or an NDArray, got {type(other).__name__}")
        src_data, dst_data = self._data, dst._data
        # A GPU side does the copy (its stream); between CPU devices the destination does,
        # so that a device's work never waits for another device's workers.
        work_ctx = self._ctx if self._ctx.is_gpu and not dst._ctx.is_gpu else dst._ctx
        _engine_mod._engine.push(lambda: _copy_between(src_data, dst_data), (self._var,),
                                 (dst._var,), work_ctx, "copyto", self.size <= INLINE_MAX_SIZE)
        return dst

    def as_in_context(self, ctx):
        """This array if it is already on ``ctx``, else a copy there."""
        return self if self._ctx == ctx else self.copyto(ctx)

    def astype(self, dtype, copy=True):
        """The values cast to ``dtype`` (a new array unless ``copy=False`` and equal)."""
        if not copy and np.dtype(dtype) == self.dtype:
            return self
        return invoke_by_name("cast", [self], {"dtype": dtype})

    def reshape(self, *shape, **kwargs):
        """Reshape, with MXNet's special values (0, -1, -2, -3, -4) and ``reverse``."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        if "shape" in kwargs:
            shape = kwargs.pop("shape")
        return invoke_by_name("reshape", [self], dict(kwargs, shape=shape))

    def flatten(self, inplace=False):
        """``(N, -1)``: a view when ``inplace`` (MXNet), else a new array (``flatten``)."""
        if inplace:
            return self._view(self.shape[:1] + (int(np.prod(self.shape[1:])),)
                              if self.ndim else (1, 1))
        return invoke_by_name("flatten", [self], {})

    def expand_dims(self, axis, inplace=False):
        """A size-1 axis inserted at ``axis``: a view when ``inplace`` (MXNet)."""
        if inplace:
            position = axis + self.ndim + 1 if axis < 0 else axis
            return self._view(self.shape[:position] + (1,) + self.shape[position:])
        return invoke_by_name("expand_dims", [self], {"axis": axis})

    def squeeze(self, axis=None, inplace=False):
        """The size-1 axes removed (``axis`` ones only): a view when ``inplace`` (MXNet)."""
        if inplace:
            axes = range(self.ndim) if axis is None else \
                [a % self.ndim for a in ((axis,) if isinstance(axis, int) else axis)]
            shape = tuple(d for i, d in enumerate(self.shape) if not (i in axes and d == 1))
            return self._view(shape or (1,))
        return invoke_by_name("squeeze", [self], {"axis": axis})

    def _view(self, shape):
        """The same buffer with another shape (shares the engine variable)."""
        if self._tape is not None and _tape.active:
            return invoke_by_name("reshape", [self], {"shape": shape})
        return NDArray(self._data.reshape(shape), self._ctx, self._var)

    def attach_grad(self, grad_req="write"):
        """Allocate ``.grad`` (zeros) and mark this array as a variable for autograd."""
        if grad_req not in ("write", "add", "null"):
            raise DeepkitError(f"attach_grad: grad_req must be 'write', 'add' or 'null', got "
                               f"{grad_req!r}")
        ctx = self._ctx
        with ctx.device_scope():
            grad = NDArray(ctx.xp.zeros(self.shape, self.dtype), ctx)
        _tape.mark_variables([self], [grad], grad_req)

    # ``backward`` (differentiate this recorded result) is added by ``autograd``,
    # which sits above this module.

    def write_async(self, host_fn, name=None):
        """Fill this array from the host without waiting: ``self[...] = host_fn()``, later.

        Pushes to the engine a job that calls ``host_fn()`` (which returns a
        numpy array, e.g. the next batch read from disk), checks that its
        shape is this array's shape and copies it into the array's buffer.
        Returns at once; reads of this array wait for the job. An error in
        ``host_fn`` or a wrong shape is raised at the next wait on this
        array, like any engine error.

        Args:
            host_fn: ``() -> numpy array`` of this array's shape; its values are
                cast to this array's dtype.
            name: What is written (an input name), named in errors.

        Returns:
            This array.
        """
        label = f"write_async '{name}'" if name else "write_async"
        data, shape = self._data, self.shape
        is_numpy = isinstance(data, np.ndarray)

        def write():
            value = host_fn()
            actual = tuple(np.shape(value))
            if actual != shape:
                raise ShapeError(f"{label}: host_fn returned an array of shape {actual}, "
                                 f"expected {shape}", argument=name, expected=shape,
                                 actual=actual)
            if is_numpy:
                data[...] = value
            else:
                data.set(np.ascontiguousarray(value, data.dtype))
        _engine_mod._engine.push(write, (), (self._var,), self._ctx, label, False)
        return self

    def detach(self):
        """The same values, cut off from the autograd tape."""
        return NDArray(self._data, self._ctx, self._var)

    # -- MXNet 1.x methods that are not plain op calls ----------------------------
    def pad(self, mode="constant", pad_width=None, constant_value=0.0):
        """Method form of ``nd.pad(self, mode, pad_width, constant_value)``."""
        return invoke_by_name("pad", [self], {"mode": mode, "pad_width": pad_width,
                                              "constant_value": constant_value})

    def argmax_channel(self):
        """Index of the largest value along axis 1 (MXNet's ``argmax_channel``)."""
        return invoke_by_name("argmax_channel", [self], {})

    def slice_assign(self, rhs, begin, end, step=None):
        """Write ``rhs`` into the region ``begin:end:step`` of this array; returns self.

        Args:
            rhs: An NDArray (or array-like) with the region's shape (or one that
                broadcasts to it).
            begin, end: Per leading axis, the region's bounds (``None`` = open).
            step: Per leading axis, the stride (``None`` = 1).
        """
        self[_region_key(begin, end, step, self.ndim)] = rhs
        return self

    def slice_assign_scalar(self, scalar, begin, end, step=None):
        """Fill the region ``begin:end:step`` of this array with ``scalar``; returns self."""
        self[_region_key(begin, end, step, self.ndim)] = float(scalar)
        return self

    @property
    def stype(self):
        """The storage type: always ``'default'`` (dense; deepkit has no sparse storage)."""
        return "default"

    def tostype(self, stype):
        """A dense copy for ``stype='default'``; sparse storage types are refused."""
        if stype != "default":
            raise DeepkitError(f"tostype: stype={stype!r} is not supported: deepkit arrays are "
                               "dense, the only storage type is 'default'")
        return self.copy()

    def as_nd_ndarray(self):
        """This array (it already is an ``nd`` array)."""
        return self

    def as_np_ndarray(self):
        """Refused: MXNet's ``mx.np`` array interface is not part of deepkit."""
        raise DeepkitError("as_np_ndarray: MXNet's mx.np arrays are not supported; use "
                           "asnumpy() for a numpy copy or the nd API itself")

    def to_dlpack_for_read(self):
        """A DLPack capsule sharing this array's memory, once pending writes are done."""
        return self.__dlpack__()

    def to_dlpack_for_write(self):
        """A DLPack capsule through which other libraries may write this array's memory."""
        return self.__dlpack__()

    # -- indexing --------------------------------------------------------------
    def __getitem__(self, key):
        basic = _basic_key(key)
        if basic is not None:
            try:
                view = self._data[basic]
            except IndexError as err:
                raise IndexError(f"NDArray of shape {self.shape}: index {key!r} is out of "
                                 f"range ({err})") from None
            if _tape.active and self._tape is not None:
                return self._recorded_slice(basic, view.shape)
            return NDArray(view, self._ctx, self._var)
        key = _resolve_advanced_key(key, self._ctx)
        self.wait_to_read()
        try:
            result = self._data[key]
        except IndexError as err:
            raise IndexError(f"NDArray of shape {self.shape}: index is out of range ({err})") \
                from None
        if not hasattr(result, "shape") or result.ndim == 0 and not isinstance(result, type(self._data)):
            result = self._ctx.xp.asarray(result)
        return NDArray(result, self._ctx)

    def _recorded_slice(self, basic, shape):
        """Basic indexing inside ``autograd.record()``: a recorded ``slice`` (and ``reshape``).

        As MXNet, which records it as ``slice``, so gradients flow back to
        the indexed array (outside recording, indexing returns a view).
        """
        begin, end, step = [], [], []
        covered = self.ndim - sum(1 for j in basic if j is not None and j is not Ellipsis)
        for k in basic:
            if k is Ellipsis:
                begin += [None] * covered
                end += [None] * covered
                step += [None] * covered
                covered = 0  # a second Ellipsis covers nothing
                continue
            if k is None:
                continue
            size = self.shape[len(begin)]
            if isinstance(k, slice):
                start, stop, stride = k.indices(size)
                begin.append(start)
                end.append(None if stride < 0 and stop < 0 else stop)
                step.append(stride)
            else:
                index = int(k) + size if int(k) < 0 else int(k)
                begin.append(index)
                end.append(index + 1)
                step.append(1)
        result = invoke_by_name("slice", [self], {"begin": tuple(begin), "end": tuple(end),
                                                  "step": tuple(step)})
        if result.shape != tuple(shape):
            result = invoke_by_name("reshape", [result], {"shape": tuple(shape)})
        return result

    def __setitem__(self, key, value):
        basic = _basic_key(key)
        if basic is None:
            self._set_advanced(key, value)
            return
        try:
            target = self._data[basic]
        except IndexError as err:
            raise IndexError(f"NDArray of shape {self.shape}: index {key!r} is out of range "
                             f"({err})") from None
        reads = ()
        if isinstance(value, NDArray):
            if value._ctx != self._ctx:
                raise ContextError(f"slice assignment: value is on {value._ctx} but the array is "
                                   f"on {self._ctx}; use value.as_in_context({self._ctx})")
            source = value._data
            trimmed = _trim_leading_ones(value.shape, target.ndim)
            if trimmed != value.shape:
                source = source.reshape(trimmed)
            _check_assignable(trimmed, target.shape, key, self.shape)
            reads = (value._var,)
        elif isinstance(value, numbers.Number):
            source = value
        else:
            source = np.asarray(value)
            source = source.reshape(_trim_leading_ones(source.shape, target.ndim))
            _check_assignable(source.shape, target.shape, key, self.shape)
            source = self._ctx.xp.asarray(source, dtype=self.dtype)
            if source is value:
                source = source.copy()
        xp = self._ctx.xp

        def assign():
            if target.ndim == 0 or not hasattr(source, "shape") or source.shape != target.shape:
                xp.copyto(target, source, casting="unsafe")
            else:
                target[...] = source
        _engine_mod._engine.push(assign, reads, (self._var,), self._ctx, "slice_assign",
                                 target.size <= INLINE_MAX_SIZE)

    def _set_advanced(self, key, value):
        key = _resolve_advanced_key(key, self._ctx)
        if isinstance(value, NDArray):
            value.wait_to_read()
            value = value._data
        _engine_mod.wait_for_write(self._var)
        try:
            self._data[key] = value
        except (IndexError, ValueError) as err:
            raise type(err)(f"NDArray of shape {self.shape}: cannot assign at index ({err})") \
                from None

    # -- arithmetic ------------------------------------------------------------
    # Operators (``+``, ``-x``, ``==``, ``@``, ``+=`` ...) are generated from the
    # ops' declarations at the end of this module.
    def __pos__(self):
        return self


# -- helpers -------------------------------------------------------------------

def _copy_between(src, dst):
    if isinstance(dst, np.ndarray):
        if isinstance(src, np.ndarray):
            np.copyto(dst, src)
        else:
            src.get(out=dst)
    else:
        if isinstance(src, np.ndarray):
            dst.set(src)
        else:
            dst[...] = src


def _basic_key(key):
    """Normalise a basic index so that numpy returns a view; None if advanced.

    ``x[:]`` means the whole array whatever its rank (0-d included), as in MXNet.
    """
    if key is Ellipsis or (isinstance(key, slice) and key == slice(None)):
        return (Ellipsis,)
    if isinstance(key, tuple):
        for k in key:
            if not isinstance(k, _BASIC_INDEX_TYPES) or isinstance(k, bool):
                return None
        return key if Ellipsis in key else key + (Ellipsis,)
    if isinstance(key, _BASIC_INDEX_TYPES) and not isinstance(key, bool):
        return (key, Ellipsis)
    return None


def _resolve_advanced_key(key, ctx):
    xp = ctx.xp

    def conv(k):
        if isinstance(k, NDArray):
            k.wait_to_read()
            data = k._data
            return data.astype(np.int64) if data.dtype.kind == "f" else data
        if isinstance(k, (list, np.ndarray)):
            return xp.asarray(k)
        return k
    if isinstance(key, tuple):
        return tuple(conv(k) for k in key)
    return conv(key)


def _trim_leading_ones(shape, ndim):
    """``shape`` without the leading size-1 axes beyond ``ndim`` (MXNet: ``a[0] = b`` with
    ``b`` of shape ``(1, 1, 3)`` and ``a[0]`` of shape ``(3,)``)."""
    shape = tuple(shape)
    while len(shape) > ndim and shape[0] == 1:
        shape = shape[1:]
    return shape


def _check_assignable(value_shape, target_shape, key, full_shape):
    try:
        result = np.broadcast_shapes(tuple(value_shape), tuple(target_shape))
    except ValueError:
        result = None
    if result != tuple(target_shape):
        raise ShapeError(f"slice assignment: value of shape {tuple(value_shape)} cannot be "
                         f"assigned to index {key!r} of an NDArray of shape {full_shape} "
                         f"(the selection has shape {tuple(target_shape)})",
                         expected=tuple(target_shape), actual=tuple(value_shape))


def _as_nd(value, like):
    if isinstance(value, NDArray):
        return value
    return NDArray(like._ctx.xp.asarray(np.asarray(value, dtype=like.dtype)), like._ctx)


# -- dispatch ------------------------------------------------------------------

def binary_dispatch(op, lhs, rhs, out=None):
    """``lhs <op> rhs`` for a binary op where either side may be a Python scalar
    (then the op's declared scalar form runs) or a numpy array/list."""
    if isinstance(lhs, NDArray):
        if isinstance(rhs, NDArray):
            return invoke(op, [lhs, rhs], op.default_attrs, out)
        if isinstance(rhs, numbers.Number) and op.scalar_form is not None:
            return invoke(_registry._REGISTRY[op.scalar_form], [lhs],
                          _registry.Attrs(scalar=float(rhs)), out)
        if isinstance(rhs, (np.ndarray, list, tuple)):
            return invoke(op, [lhs, _as_nd(rhs, lhs)], op.default_attrs, out)
    elif isinstance(rhs, NDArray):
        if isinstance(lhs, numbers.Number) and op.reflected_scalar_form is not None:
            return invoke(_registry._REGISTRY[op.reflected_scalar_form], [rhs],
                          _registry.Attrs(scalar=float(lhs)), out)
        if isinstance(lhs, (np.ndarray, list, tuple)):
            return invoke(op, [_as_nd(lhs, rhs), rhs], op.default_attrs, out)
    return NotImplemented


def _unary_dispatch(op, x):
    return invoke(op, [x], op.default_attrs)


def invoke_by_name(name, inputs, kwargs, out=None):
    op = _registry.get_op(name)
    return invoke(op, inputs, op.parse_attrs(kwargs), out)


def invoke(op, inputs, attrs, out=None, ctx=None):
    """Run ``op`` imperatively: infer at the call, push the kernel, return outputs.

    Args:
        op: The :class:`OpDef`.
        inputs: NDArrays, in the op's input order.
        attrs: Parsed parameters (``op.parse_attrs``).
        out: An NDArray or list of NDArrays to write into instead of new ones.
        ctx: The context for ops without inputs (creation, random).

    Returns:
        One NDArray, or a list when the op has several outputs.
    """
    outputs, run, writes, ctx, small = _checked_call(op, inputs, attrs, out, ctx)
    if _engine_mod._profiler is not None and out is None:  # profile_memory: new outputs
        _engine_mod._profiler.allocated(op.name, sum(o._data.nbytes for o in outputs))
    _engine_mod._engine.push(run, [x._var for x in inputs], writes, ctx, op.name, small)
    if _tape.active:
        _tape.record(op, attrs, inputs, outputs)
    if len(outputs) == 1:
        return outputs[0]
    if op.visible_outputs is not None:
        visible = op.num_visible_outputs(attrs)
        return outputs[0] if visible == 1 else outputs[:visible]
    return outputs


def _checked_call(op, inputs, attrs, out, ctx):
    """What :func:`invoke` and :func:`prepare_invoke` push: checked, inferred, ready to run.

    Returns:
        ``(outputs, run, writes, ctx, small)``: the output NDArrays (``out``,
        or new ones), the kernel call, the variables it writes, the device,
        and whether the work is small enough to run inline.
    """
    if inputs:
        first = inputs[0]
        ctx = first._ctx
        if len(inputs) == 1:
            in_shapes = [first._data.shape]
            in_dtypes = [first._data.dtype]
        else:
            in_shapes = []
            in_dtypes = []
            for x in inputs:
                if x._ctx is not ctx and x._ctx != ctx:
                    raise ContextError(
                        f"{op.name}: inputs are on different contexts ({ctx} and {x._ctx}); "
                        f"move them with as_in_context()")
                data = x._data
                in_shapes.append(data.shape)
                in_dtypes.append(data.dtype)
    else:
        ctx = ctx or current_context()
        in_shapes, in_dtypes = [], []
    out_shapes = op.run_infer_shape(attrs, in_shapes, None, in_dtypes)[1]
    out_dtypes = op.run_infer_type(attrs, in_dtypes, None, in_shapes)[1]
    if not in_dtypes and any(d is None for d in out_dtypes):  # init ops, dtype=None
        fallback = getattr(op.infer_type, "fallback_dtype", None)
        out_dtypes = [fallback if d is None else d for d in out_dtypes]
    xp = ctx.xp
    if out is None:
        if len(out_shapes) == 1:
            outputs = [NDArray(xp.empty(out_shapes[0], out_dtypes[0]), ctx)]
        else:
            outputs = [NDArray(xp.empty(s, d), ctx) for s, d in zip(out_shapes, out_dtypes)]
    else:
        outputs = [out] if isinstance(out, NDArray) else list(out)
        _check_out(op, outputs, out_shapes, out_dtypes, ctx)
    in_data = [x._data for x in inputs]
    out_data = [o._data for o in outputs]
    req = _WRITE_REQS[len(outputs)] if len(outputs) < 8 else ["write"] * len(outputs)
    kernel = op.kernel(ctx)
    small = out_data[0].size <= INLINE_MAX_SIZE if out_data else True
    if small:
        for d in in_data:
            if d.size > INLINE_MAX_SIZE:
                small = False
                break
    writes = [o._var for o in outputs]
    if op.aux:
        names = op.input_names(attrs)
        writes += [x._var for x, n in zip(inputs, names) if n in op.aux]
    if op.resources:
        resources, extra_writes = _acquire_resources(op.resources, ctx, _tape.is_training(),
                                                     op.name)
        writes += extra_writes

        def run():
            kernel(xp, attrs, in_data, out_data, req, **resources)
    else:
        def run():
            kernel(xp, attrs, in_data, out_data, req)
    return outputs, run, writes, ctx, small


_WRITE_REQS = [("write",) * n for n in range(8)]


class LastPrepared:
    """The last function prepared for a set of objects, dropped as soon as one of them is.

    A training loop pushes the same work on the same arrays every step, so
    the work is prepared once (:func:`prepare_invoke`,
    ``host_work.prepare_buffer_work``) and kept under a key naming the
    objects it was made for (their ``id``). The kept function holds the
    arrays' buffers, so the entry is dropped as soon as any of the objects
    is collected: arrays made anew each step (gradients summed over devices)
    are not kept past their step, and an ``id`` in the key never comes to
    name another object.
    """

    __slots__ = ("_key", "_fn", "_refs", "__weakref__")

    def __init__(self):
        self._key = self._fn = self._refs = None

    def __reduce__(self):  # a copy (or a pickled owner) starts empty
        return (LastPrepared, ())

    def get(self, key):
        """The function kept for ``key``, or None."""
        return self._fn if key == self._key else None

    def keep(self, key, fn, objects):
        """Keep ``fn`` for ``key`` until one of ``objects`` (weakly referenced) is collected."""
        holder = weakref.ref(self)

        def drop(_):
            kept = holder()
            if kept is not None and kept._key == key:
                kept._key = kept._fn = kept._refs = None
        self._key, self._fn = key, fn
        self._refs = [weakref.ref(o, drop) for o in objects]


def prepare_invoke(op, inputs, attrs, out):
    """A function that pushes ``op`` on these very arrays, checked once: the per-step form of
    :func:`invoke`.

    Work repeated every training step on the same arrays (an optimizer's
    update of the same weights, gradients and states) pays :func:`invoke`'s
    shape and type inference and its checks of ``out`` once, here; each call
    of the returned function only queues the kernel. It is valid as long as
    the arrays are (an NDArray's buffer never changes). The pushes are not
    recorded by autograd: use it for updates, outside ``autograd.record()``.

    Args:
        op: The :class:`OpDef`; ops whose resources tie them to the moment
            they run (random state, the training flag) are refused.
        inputs: NDArrays, in the op's input order.
        attrs: Parsed parameters (``op.parse_attrs``).
        out: An NDArray or list of NDArrays the op writes.

    Returns:
        A function of no arguments.
    """
    if bound_to_run(op.resources):
        raise DeepkitError(f"prepare_invoke: {op.name} needs resources "
                           f"({', '.join(op.resources)}); call invoke() for each use")
    _, run, writes, ctx, small = _checked_call(op, inputs, attrs, out, None)
    reads, name = [x._var for x in inputs], op.name

    def push():
        _engine_mod._engine.push(run, reads, writes, ctx, name, small)
    return push


def _check_out(op, outputs, shapes, dtypes, ctx):
    if len(outputs) != len(shapes):
        raise ShapeError(f"{op.name}: out= has {len(outputs)} arrays but the op has "
                         f"{len(shapes)} outputs")
    for i, (o, s, d) in enumerate(zip(outputs, shapes, dtypes)):
        if not isinstance(o, NDArray):
            raise TypeError(f"{op.name}: out= must be an NDArray, got {type(o).__name__}")
        if o.shape != tuple(s):
            raise ShapeError(f"{op.name}: output {i} has shape {tuple(s)} but out= has shape "
                             f"{o.shape}", op=op.name, argument="out", expected=tuple(s),
                             actual=o.shape)
        if o.dtype != d:
            raise DTypeError(f"{op.name}: output {i} has dtype {np.dtype(d).name} but out= has "
                             f"dtype {o.dtype.name}", op=op.name, argument="out", expected=d,
                             actual=o.dtype)
        if o._ctx != ctx:
            raise ContextError(f"{op.name}: out= is on {o._ctx} but the inputs are on {ctx}")


def _region_key(begin, end, step, ndim):
    """The index ``begin:end:step`` per leading axis, for ``slice_assign``."""
    begin, end = tuple(begin), tuple(end)
    step = tuple(step) if step else (None,) * len(begin)
    if not len(begin) == len(end) == len(step) or len(begin) > ndim:
        raise ShapeError(f"slice_assign: begin={begin}, end={end} and step={step} must have "
                         f"the same length, at most the array's {ndim} dimensions",
                         argument="begin", expected=ndim, actual=len(begin))
    return tuple(slice(b, e, s) for b, e, s in zip(begin, end, step))


attach_operators(NDArray, binary_dispatch, _unary_dispatch)
