"""Executors: a bound, memory-planned program for a symbol's forward and backward.

``bind`` differentiates the symbol with respect to the arguments that want
gradients, infers every shape and dtype, plans memory (in-place reuse, and
every buffer at an offset of one arena packed by lifetimes, so forward and
backward share it; optionally recomputing forward segments in backward),
preallocates the arena and compiles the kernels into two flat programs
(:meth:`Executor.memory_report` explains the plan's peak). ``forward`` and
``backward`` each push *one* engine operation that runs a whole program, so
engine overhead is per pass, not per op, and both return at once.

A segmented backward (:meth:`Executor.set_backward_segments`) pushes the
backward program as several engine operations instead, each writing the
gradient arrays that are complete at its end, so work that reads the first
gradients (a gradient all-reduce between processes) starts while the rest of
the backward pass runs.
"""
import collections
import math

import numpy as np

from . import engine as _engine_mod
from .base import ContextError, DeepkitError, ParamError, ShapeError
from .context import Context, current_context
from .graph.builder import GraphOps
from .graph.gradient import build_gradient, check_gradients
from .graph.infer import infer_shapes, infer_types
from .graph.mirror import POLICIES as _MIRROR_POLICIES
from .graph.mirror import apply_mirror
from .graph.node import Graph, Node
from .graph.plan_memory import memory_report as _memory_report
from .graph.plan_memory import plan_memory
from .graph.rewrite import pool_before_activation, without_kept_states
from .ndarray import NDArray
from .ndarray import array as _nd_array
from .ndarray import zeros as _nd_zeros
from .ops.normalization import sync_batchnorm_exchanges
from .resources import acquire as _acquire_resources

__all__ = ["Executor", "simple_bind"]

_GRAD_REQS = ("write", "add", "null")
#: Passes over arrays smaller than this run on the calling thread.
_INLINE_BYTES = 1 << 20


def _normalize_arrays(kind, names, given, allow_missing=False):
    if given is None:
        given = {}
    if isinstance(given, (list, tuple)):
        if len(given) != len(names):
            raise DeepkitError(f"bind: {kind} has {len(given)} arrays but the symbol has "
                               f"{len(names)} ({', '.join(names)})")
        given = dict(zip(names, given))
    unknown = [k for k in given if k not in names]
    if unknown:
        raise DeepkitError(f"bind: {kind} names {unknown} which are not in the symbol "
                           f"({', '.join(names)})")
    missing = [n for n in names if given.get(n) is None]
    if missing and not allow_missing:
        raise ParamError(f"bind: missing {kind} for: {', '.join(missing)}", param=missing[0])
    return collections.OrderedDict((n, given.get(n)) for n in names)


def _normalize_grad_req(grad_req, names):
    if isinstance(grad_req, str):
        reqs = {n: grad_req for n in names}
    elif isinstance(grad_req, (list, tuple)):
        if len(grad_req) != len(names):
            raise DeepkitError(f"bind: grad_req has {len(grad_req)} entries for {len(names)} "
                               "arguments")
        reqs = dict(zip(names, grad_req))
    elif isinstance(grad_req, dict):
        unknown = [k for k in grad_req if k not in names]
        if unknown:
            raise DeepkitError(f"bind: grad_req names {unknown}, not arguments of the symbol")
        reqs = {n: grad_req.get(n, "null") for n in names}
    else:
        raise TypeError(f"bind: grad_req must be a str, list or dict, got {grad_req!r}")
    for n, r in reqs.items():
        if r not in _GRAD_REQS:
            raise DeepkitError(f"bind: grad_req for '{n}' is {r!r}; use 'write', 'add' or 'null'")
    return reqs


class Executor:
    """A compiled forward/backward program with its bound arrays.

    Attributes:
        arg_dict, grad_dict, aux_dict: ``{name: NDArray}``.
        arg_arrays, grad_arrays, aux_arrays: The same, as lists in symbol order
            (``None`` in ``grad_arrays`` where no gradient is requested).
        outputs: The output NDArrays (valid after ``forward``).
    """

    def __init__(self, symbol, ctx=None, args=None, args_grad=None, grad_req="write",
                 aux_states=None, shared_exec=None, mirror="one-pass", plan_memory=True):
        self._symbol = symbol
        self._ctx = ctx = Context(ctx) if ctx is not None else current_context()
        ctx.check_available()
        arg_names = symbol.list_arguments()
        aux_names = symbol.list_auxiliary_states()
        self.arg_dict = _normalize_arrays("args", arg_names, args)
        self.aux_dict = _normalize_arrays("aux_states", aux_names, aux_states)
        reqs = _normalize_grad_req(grad_req, arg_names)
        grads = _normalize_arrays("args_grad", arg_names, args_grad, allow_missing=True)
        for n in arg_names:
            if grads[n] is None:
                reqs[n] = "null"
        self._grad_req = reqs
        self.grad_dict = collections.OrderedDict(
            (n, g) for n, g in grads.items() if reqs[n] != "null")
        for kind, arrays in (("argument", self.arg_dict), ("aux state", self.aux_dict),
                             ("gradient", self.grad_dict)):
            for n, a in arrays.items():
                if not isinstance(a, NDArray):
                    raise TypeError(f"bind: {kind} '{n}' must be an NDArray, got "
                                    f"{type(a).__name__}")
                if a.ctx != ctx:
                    raise ContextError(f"bind: {kind} '{n}' is on {a.ctx} but the executor is "
                                       f"on {ctx}; move it with as_in_context({ctx})")
        for n, g in self.grad_dict.items():
            if g.shape != self.arg_dict[n].shape:
                raise ShapeError(f"bind: gradient array for '{n}' has shape {g.shape} but the "
                                 f"argument has shape {self.arg_dict[n].shape}", argument=n,
                                 expected=self.arg_dict[n].shape, actual=g.shape)
        self._plan_enabled = plan_memory
        if isinstance(mirror, str):
            if mirror not in _MIRROR_POLICIES:
                raise ParamError(f"bind: mirror={mirror!r} is not a recompute policy; expected "
                                 f"one of {', '.join(map(repr, _MIRROR_POLICIES))}, True, "
                                 "False or a memory budget in bytes", op="bind",
                                 param="mirror", value=mirror)
            self._mirror = mirror
            self._compile(symbol)
        elif isinstance(mirror, bool) or mirror is None:
            self._mirror = "segments" if mirror else False
            self._compile(symbol)
        else:
            # a memory budget in bytes: recompute segments only when the default plan exceeds it
            self._mirror = "one-pass"
            self._compile(symbol)
            if self._plan.planned_bytes > int(mirror):
                self._mirror = "segments"
                self._compile(symbol)
        self._last_train = None
        self._monitor = None
        self._segment_groups = None
        self._bwd_segments = None  # [(program, reads, writes, uses replica)] or None
        #: The :class:`~deepkit_engine.replicas.Replica` of a data-parallel step this
        #: executor runs in (set by the trainer before each pass), or None.
        self.replica = None

    # -- public views ------------------------------------------------------------
    @property
    def arg_arrays(self):
        return list(self.arg_dict.values())

    @property
    def grad_arrays(self):
        return [self.grad_dict.get(n) for n in self.arg_dict]

    @property
    def aux_arrays(self):
        return list(self.aux_dict.values())

    @property
    def output_dict(self):
        return collections.OrderedDict(zip(self._symbol.list_outputs(), self.outputs))

    # -- compilation ---------------------------------------------------------------
    def _compile(self, symbol):
        heads = list(symbol._outputs)
        var_nodes = {n.name: n for n in symbol._nodes() if n.op is None}
        wrt_names = [n for n, r in self._grad_req.items() if r != "null"]
        if not wrt_names:  # inference: the same outputs with less work and memory
            heads = without_kept_states(pool_before_activation(heads))
        self._heads = heads  # the graph's own output entries (rewritten ones included)
        head_grad_nodes = []
        grad_entries, checks = [], []
        if wrt_names:
            head_grads = []
            for k, (node, idx) in enumerate(heads):
                if node.op is not None and node.op.loss_head:
                    head_grads.append(None)
                    head_grad_nodes.append(None)
                else:
                    hg = Node(None, f"__head_grad_{k}__")
                    head_grad_nodes.append(hg)
                    head_grads.append((hg, 0))
            grad_entries, checks = build_gradient(heads, head_grads,
                                                  [var_nodes[n] for n in wrt_names])
            if self._mirror:
                grad_entries, rebuilt = apply_mirror(
                    heads, grad_entries, self._forward_entry_bytes(heads, var_nodes),
                    policy=self._mirror)
                checks = [((rebuilt.get(id(g[0]), g[0]), g[1]), f, n, k)
                          for g, f, n, k in checks]
            grad_entries = self._own_grad_entries(heads, grad_entries)
        # Gradient outputs in reverse argument order: the depth-first schedule
        # then computes each layer's parameter gradients as soon as that
        # layer's output gradient exists (last layer first), so activations
        # die early instead of living until the end of backward.
        outputs = heads + [e for e in reversed(grad_entries) if e is not None]
        graph = Graph(outputs)
        self._graph = graph
        uses = {}
        for n in graph.nodes:
            if n.op is not None and n.op.prepare is not None:
                uses.setdefault(id(n.op), (n.op, []))[1].append(n.attrs)
        for op, attrs in uses.values():
            op.prepare(self._ctx, attrs)
        # a head whose gradient no backward node reads (no path to any argument)
        head_grad_nodes = [hg if hg is not None and id(hg) in graph.node_id else None
                           for hg in head_grad_nodes]
        self._head_grad_nodes = head_grad_nodes

        # shapes and dtypes: forward first, then the head gradients, then all
        known_shapes, known_types = {}, {}
        for n, a in list(self.arg_dict.items()) + list(self.aux_dict.items()):
            eid = graph.entry_id(var_nodes[n])
            known_shapes[eid] = a.shape
            known_types[eid] = a.dtype
        fwd_graph = Graph(heads)
        fwd_known_s = {fwd_graph.entry_id(var_nodes[n]): a.shape
                       for n, a in list(self.arg_dict.items()) + list(self.aux_dict.items())}
        fwd_known_t = {fwd_graph.entry_id(var_nodes[n]): a.dtype
                       for n, a in list(self.arg_dict.items()) + list(self.aux_dict.items())}
        fwd_shapes = infer_shapes(fwd_graph, fwd_known_s)
        fwd_types = infer_types(fwd_graph, fwd_known_t)
        for k, (node, idx) in enumerate(heads):
            hg = head_grad_nodes[k] if head_grad_nodes else None
            if hg is not None:
                known_shapes[graph.entry_id(hg)] = fwd_shapes[fwd_graph.entry_id(node, idx)]
                known_types[graph.entry_id(hg)] = fwd_types[fwd_graph.entry_id(node, idx)]
        shapes = infer_shapes(graph, known_shapes)
        dtypes = infer_types(graph, known_types)
        unknown = sorted({graph.entry_name(e) for e in range(graph.num_entries)
                          if shapes[e] is None or dtypes[e] is None})
        if unknown:
            raise ShapeError("bind: cannot infer the shape or dtype of: " + ", ".join(unknown))
        check_gradients(graph, shapes, checks)
        self._shapes, self._dtypes = shapes, dtypes

        xp = self._ctx.xp
        arrays = [None] * graph.num_entries
        external = set()
        for n, a in list(self.arg_dict.items()) + list(self.aux_dict.items()):
            eid = graph.entry_id(var_nodes[n])
            arrays[eid] = a
            external.add(eid)
        self._head_grad_arrays = []
        for hg in head_grad_nodes:
            if hg is None:
                self._head_grad_arrays.append(None)
                continue
            eid = graph.entry_id(hg)
            arr = NDArray(xp.ones(shapes[eid], dtypes[eid]), self._ctx)
            arrays[eid] = arr
            external.add(eid)
            self._head_grad_arrays.append(arr)
        self.outputs = []
        for node, idx in heads:
            eid = graph.entry_id(node, idx)
            if arrays[eid] is None:
                arrays[eid] = NDArray(xp.zeros(shapes[eid], dtypes[eid]), self._ctx)
                external.add(eid)
            self.outputs.append(arrays[eid])
        grad_req_of_entry = {}
        self._zero_grads = []
        for name, entry in zip(wrt_names, grad_entries):
            if entry is None:
                if self._grad_req[name] == "write":
                    self._zero_grads.append(self.grad_dict[name])
                continue
            eid = graph.entry_id(*entry)
            arrays[eid] = self.grad_dict[name]
            external.add(eid)
            grad_req_of_entry[eid] = "add" if self._grad_req[name] == "add" else "write"

        fwd_ids = {id(n) for n in fwd_graph.nodes}
        op_nodes = [n for n in graph.nodes if n.op is not None]
        fwd_nodes = [n for n in op_nodes if id(n) in fwd_ids]
        bwd_nodes = [n for n in op_nodes if id(n) not in fwd_ids]
        plan = plan_memory(graph, fwd_nodes + bwd_nodes, shapes, dtypes, external,
                           share=self._plan_enabled, allow_inplace=self._plan_enabled)
        self._plan = plan
        grad_names = {graph.entry_id(*e): n for n, e in zip(wrt_names, grad_entries)
                      if e is not None}
        self._schedule = (fwd_nodes + bwd_nodes, len(fwd_nodes), external, grad_names, var_nodes)
        # what each backward step reads and writes among the bound arrays (for segments)
        self._bwd_io = [(graph.input_entry_ids(n), graph.output_entry_ids(n)) for n in bwd_nodes]
        self._external_arrays = {eid: arrays[eid] for eid in external}
        if plan.offsets is not None:  # one arena; storages at their planned offsets
            arena = xp.empty(max(plan.arena_bytes, 1), np.uint8)
            self._pool = [arena]
            blocks = [arena[off:off + size] for off, size in zip(plan.offsets, plan.sizes)]
        else:
            self._pool = [xp.empty(max(size, 1), np.uint8) for size in plan.sizes]
            blocks = self._pool
        if _engine_mod._profiler is not None:  # profile_memory counts the planned buffers
            _engine_mod._profiler.allocated("executor bind", sum(b.nbytes for b in self._pool))
        raw = [None] * graph.num_entries
        for eid in range(graph.num_entries):
            if arrays[eid] is not None:
                raw[eid] = arrays[eid]._data
            elif plan.storage[eid] >= 0:
                block = blocks[plan.storage[eid]]
                raw[eid] = block[:plan.entry_bytes[eid]].view(dtypes[eid]).reshape(shapes[eid])
            else:
                raw[eid] = xp.empty(shapes[eid], dtypes[eid])
        self._raw = raw
        self._fwd_program = self._program(fwd_nodes, graph, raw, plan, grad_req_of_entry)
        unread = _unread_gradients(graph, bwd_nodes, external)
        self._bwd_program = self._program(bwd_nodes, graph, raw, plan, grad_req_of_entry, unread)
        self._internal_var = _engine_mod.Var()
        self._resources = tuple(sorted({r for n in op_nodes for r in n.op.resources}))
        self._blas_wide = not any(n.op.pool_parallel for n in op_nodes)
        # a pass that draws random numbers writes the generator's variable
        self._resource_writes = _acquire_resources(self._resources, self._ctx, False,
                                                   "executor")[1]
        total = plan.planned_bytes + sum(a.size * a.dtype.itemsize for a in self.arg_dict.values())
        self._inline = total <= _INLINE_BYTES and not self._ctx.is_gpu

    def _forward_entry_bytes(self, heads, var_nodes):
        """``entry_bytes(node, index)`` of the forward entries (for the recompute pass)."""
        fwd = Graph(heads)
        known_s, known_t = {}, {}
        for n, a in list(self.arg_dict.items()) + list(self.aux_dict.items()):
            if id(var_nodes[n]) in fwd.node_id:
                known_s[fwd.entry_id(var_nodes[n])] = a.shape
                known_t[fwd.entry_id(var_nodes[n])] = a.dtype
        shapes = infer_shapes(fwd, known_s)
        dtypes = infer_types(fwd, known_t)
        sizes = [0 if s is None or d is None else math.prod(s) * np.dtype(d).itemsize
                 for s, d in zip(shapes, dtypes)]
        return lambda node, index: sizes[fwd.entry_id(node, index)]

    def _own_grad_entries(self, heads, grad_entries):
        """Give each argument gradient a node of its own to write into its array."""
        F = GraphOps()
        counts = collections.Counter(e for e in grad_entries if e is not None)
        consumers = collections.Counter()
        graph = Graph(heads + [e for e in grad_entries if e is not None])
        for n in graph.nodes:
            for src, i in n.inputs:
                consumers[(id(src), i)] += 1
        head_set = {(id(n), i) for n, i in heads}
        result = []
        for e in grad_entries:
            if e is None:
                result.append(None)
                continue
            node, idx = e
            key = (id(node), idx)
            if node.op is None or counts[e] > 1 or consumers[key] > 0 or key in head_set:
                copy = F.identity(F.wrap([e]), name=f"{node.name}_gradcopy")
                result.append(copy._outputs[0])
            else:
                result.append(e)
        return result

    def _program(self, nodes, graph, raw, plan, grad_req_of_entry, unread=frozenset()):
        steps = []
        xp = self._ctx.xp
        for node in nodes:
            in_ids = graph.input_entry_ids(node)
            out_ids = graph.output_entry_ids(node)
            req = []
            for k, eid in enumerate(out_ids):
                if eid in grad_req_of_entry:
                    req.append(grad_req_of_entry[eid])
                elif eid in unread:
                    req.append("null")
                elif (node, k) in plan.inplace:
                    req.append("inplace")
                else:
                    req.append("write")
            op = node.op
            kernel = op.kernel(self._ctx)
            steps.append((kernel, node.attrs, [raw[e] for e in in_ids],
                          [raw[e] for e in out_ids], tuple(req), op.resources, node))
        return steps, xp

    # -- running -------------------------------------------------------------------
    def replica_exchanges(self, phase):
        """Lengths of the vectors this executor's ``phase`` pass exchanges with its replicas.

        Args:
            phase: ``'forward'`` (a training pass) or ``'backward'``.
        """
        if "replica" not in self._resources:
            return []
        program = self._fwd_program if phase == "forward" else self._bwd_program
        return sync_batchnorm_exchanges(
            [(node.op.name, attrs, [a.shape for a in ins])
             for _, attrs, ins, _, _, _, node in program[0]], phase)

    def _replica_writes(self, replica):
        if replica is None or replica.group.order_var is None \
                or "replica" not in self._resources:
            return []
        return [replica.group.order_var]

    def _can_inline(self, replica):
        # a pass that meets other devices mid-way must run on this device's workers
        return self._inline and (replica is None or not replica.collective
                                 or "replica" not in self._resources)

    def _run(self, program, is_train, phase, replica=None):
        steps, xp = program
        node = None
        try:
            available = _acquire_resources(self._resources, self._ctx, is_train,
                                           replica=replica, blas_wide=self._blas_wide)[0] \
                if self._resources else None
            monitor = self._monitor
            profiler = _engine_mod._profiler
            timed = profiler is not None and profiler.symbolic  # profiling: time each step
            for kernel, attrs, ins, outs, req, resources, node in steps:
                if timed:
                    start = _engine_mod._clock()
                if resources:
                    kernel(xp, attrs, ins, outs, req, **{r: available[r] for r in resources})
                else:
                    kernel(xp, attrs, ins, outs, req)
                if timed:
                    profiler.executor_step(phase, node, start, outs)
                if monitor is not None:
                    self._report(monitor, node, ins, outs)
        except Exception as err:
            where = f"{node.op.name} '{node.name}'" if node is not None else "executor"
            raise DeepkitError(f"{phase}: {where} failed: {type(err).__name__}: {err}") from err

    def _report(self, monitor, node, ins, outs):
        """Hand copies of a node's outputs (and inputs, with ``monitor_all``) to the monitor."""
        callback, monitor_all = monitor
        if monitor_all:
            for name, value in zip(node.input_names(), ins):
                callback(f"{node.name}_{name}", NDArray(value.copy(), self._ctx))
        visible = node.num_visible_outputs()
        for name, value in list(zip(node.output_names(), outs))[:visible]:
            callback(name, NDArray(value.copy(), self._ctx))

    def set_monitor_callback(self, callback, monitor_all=False):
        """Call ``callback(name, NDArray)`` with every node's output as forward computes it.

        As MXNet's executor monitor: names are ``<node>_<output>``
        (``fc1_output``); with ``monitor_all`` each node's inputs are reported
        first as ``<node>_<input>`` (``fc1_data``, ``fc1_weight``). The arrays
        are copies, so the callback may keep them. ``None`` switches it off.
        Backward passes are reported too, under their ``_backward_...`` nodes.
        An executor without gradients runs max pooling before a monotone
        activation that only the pooling reads (the same outputs, less work;
        :mod:`deepkit_engine.graph.rewrite`), so the activation's output is
        reported pooled there.

        Args:
            callback: ``callback(name, array)`` or None.
            monitor_all: Also report the inputs of each node.
        """
        if callback is not None and not callable(callback):
            raise TypeError(f"set_monitor_callback: callback must be callable or None, got "
                            f"{type(callback).__name__}")
        self._monitor = None if callback is None else (callback, bool(monitor_all))

    @property
    def backward_segments(self):
        """The groups given to :meth:`set_backward_segments` (tuples of names), or None."""
        return self._segment_groups

    @property
    def num_backward_segments(self):
        """How many engine operations one :meth:`backward` pushes (1 when unsegmented)."""
        return len(self._bwd_segments) if self._bwd_segments else 1

    def set_backward_segments(self, groups):
        """Push the backward pass as several engine operations, cut where groups complete.

        A gradient array is complete after the last backward step that
        writes (or, with ``grad_req='add'``, adds to) it. The backward program
        is cut after the step that completes the last gradient of each group,
        and each piece is pushed as its own engine operation that writes only
        the gradient arrays it completes. Work pushed later that reads a
        group's gradients (an all-reduce of a bucket) therefore waits only
        for the pieces up to that group, not for the whole backward pass. The
        pieces run in program order, one after another, with the same kernels
        as the unsegmented pass, so the gradients are identical.

        Segmenting costs one engine operation per piece: it pays off when the
        gradients are consumed by work that can run beside the rest of the
        backward pass. ``groups=None`` (the default) pushes one operation.

        Args:
            groups: A list of lists of argument names with gradients (e.g. the
                buckets of a gradient exchange, last layers first), or None.
                Groups whose gradients complete at the same step share a
                piece; names without a gradient in the program (unused
                arguments, zeroed before the pass) cut nothing.

        Raises:
            DeepkitError: A name is not an argument with a gradient here.
        """
        if groups is None:
            self._segment_groups = self._bwd_segments = None
            return
        groups = tuple(tuple(g) for g in groups)
        for group in groups:
            for name in group:
                if name not in self.grad_dict:
                    raise DeepkitError(
                        f"set_backward_segments: '{name}' is not an argument with a gradient; "
                        f"those are: {', '.join(self.grad_dict) or 'none'}")
        self._segment_groups = groups
        self._bwd_segments = self._plan_segments(groups)

    def _plan_segments(self, groups):
        """The pieces of the backward program for ``groups``; None when one piece remains."""
        steps, xp = self._bwd_program
        name_of = {id(grad): name for name, grad in self.grad_dict.items()}
        grad_eids = {eid: name_of[id(array)] for eid, array in self._external_arrays.items()
                     if id(array) in name_of}
        done_at = {}  # gradient name -> index of the last step writing it
        for i, (_, outs) in enumerate(self._bwd_io):
            for eid in outs:
                if eid in grad_eids:
                    done_at[grad_eids[eid]] = i
        cuts = sorted({max(done_at[n] for n in g if n in done_at) + 1
                       for g in groups if any(n in done_at for n in g)})
        bounds = [0] + [c for c in cuts if 0 < c < len(steps)] + [len(steps)]
        if len(bounds) <= 2:
            return None
        segments = []
        for start, stop in zip(bounds[:-1], bounds[1:]):
            reads, writes = [], []
            resources = set()
            for k in range(start, stop):
                ins, outs = self._bwd_io[k]
                for eid in ins:
                    array = self._external_arrays.get(eid)
                    if array is not None:
                        reads.append(array._var)
                for eid in outs:
                    array = self._external_arrays.get(eid)
                    if array is not None:
                        writes.append(array._var)
                resources.update(steps[k][5])
            reads = list(dict.fromkeys(reads))
            writes = list(dict.fromkeys(writes)) + [self._internal_var]
            writes += _acquire_resources(tuple(r for r in self._resources if r in resources),
                                         self._ctx, False, "executor")[1]
            segments.append(((steps[start:stop], xp), reads, writes, "replica" in resources))
        return segments

    def _vars(self, arrays):
        return [a._var for a in arrays if a is not None]

    def forward(self, is_train=False, **kwargs):
        """Run the forward pass (returns at once; read ``outputs`` to wait).

        Args:
            is_train: Training mode (Dropout active, BatchNorm batch statistics
                and moving-average updates). ``backward`` may follow either
                mode, as in MXNet (see :meth:`backward`).
            **kwargs: New values for arguments, copied in first.

        Returns:
            The list of output NDArrays.
        """
        for name, value in kwargs.items():
            target = self.arg_dict.get(name)
            if target is None:
                raise DeepkitError(f"forward: '{name}' is not an argument; arguments are "
                                   f"{', '.join(self.arg_dict)}")
            if not isinstance(value, NDArray):
                value = _nd_array(value, ctx=self._ctx, dtype=target.dtype)
            if value.shape != target.shape:
                raise ShapeError(f"forward: '{name}' has shape {value.shape} but the executor "
                                 f"was bound with {target.shape}; use reshape() to rebind",
                                 argument=name, expected=target.shape, actual=value.shape)
            value.copyto(target)
        is_train = bool(is_train)
        reads = self._vars(self.arg_dict.values())
        writes = self._vars(self.outputs) + self._vars(self.aux_dict.values())
        writes.append(self._internal_var)
        writes += self._resource_writes
        program, replica = self._fwd_program, self.replica
        writes += self._replica_writes(replica)
        _engine_mod._engine.push(lambda: self._run(program, is_train, "forward", replica), reads,
                                 writes, self._ctx, "forward", self._can_inline(replica))
        self._last_train = is_train
        return self.outputs

    def backward(self, out_grads=None, is_train=True):
        """Run the backward pass, writing (or adding to) the gradient arrays.

        As in MXNet 1.x, backward may follow a plain ``forward()``
        (``is_train=False``), and MXNet's classic executor tutorials rely on
        it: the gradient is then that of the inference-mode forward pass.
        Dropout passes the gradient through unchanged (its mask was all
        ones), and BatchNorm differentiates with the training formula but
        the running statistics that forward used in place of the batch ones
        (the moving averages do not change).

        Args:
            out_grads: Gradients of the outputs (NDArray or list). Loss heads
                (SoftmaxOutput, MakeLoss, ...) ignore them; other heads default
                to ones.
            is_train: The training flag the backward kernels see (MXNet's
                default, True).

        Raises:
            DeepkitError: No forward pass ran yet, or nothing is differentiated.
        """
        if self._last_train is None:
            raise DeepkitError("backward() needs a forward() first: no forward pass has run "
                               "on this executor yet")
        if not self.grad_dict:
            raise DeepkitError("backward(): nothing to differentiate; bind with grad_req "
                               "'write' or 'add' and gradient arrays")
        if out_grads is not None:
            if isinstance(out_grads, NDArray):
                out_grads = [out_grads]
            if len(out_grads) != len(self.outputs):
                raise DeepkitError(f"backward: {len(out_grads)} out_grads for "
                                   f"{len(self.outputs)} outputs")
            for k, (g, dst) in enumerate(zip(out_grads, self._head_grad_arrays)):
                if dst is None or g is None:
                    continue
                if not isinstance(g, NDArray):
                    g = _nd_array(g, ctx=self._ctx, dtype=dst.dtype)
                if g.shape != dst.shape:
                    raise ShapeError(f"backward: out_grads[{k}] has shape {g.shape} but output "
                                     f"{k} has shape {dst.shape}", expected=dst.shape,
                                     actual=g.shape)
                g.copyto(dst)
        for g in self._zero_grads:
            g[:] = 0
        if self._bwd_segments is not None:
            self._backward_segments(is_train)
            return
        reads = self._vars(self.arg_dict.values()) + self._vars(self.aux_dict.values()) \
            + self._vars(self._head_grad_arrays) + self._vars(self.outputs)
        writes = self._vars(self.grad_dict.values()) + [self._internal_var]
        program, replica = self._bwd_program, self.replica
        writes += self._replica_writes(replica)
        _engine_mod._engine.push(lambda: self._run(program, is_train, "backward", replica),
                                 reads, writes, self._ctx, "backward",
                                 self._can_inline(replica))

    def _backward_segments(self, is_train):
        """Push each piece of the segmented backward pass as its own engine operation."""
        replica = self.replica
        order = self._replica_writes(replica)
        push = _engine_mod._engine.push
        for program, reads, writes, uses_replica in self._bwd_segments:
            if uses_replica and order:
                writes = writes + order
            push(lambda program=program: self._run(program, is_train, "backward", replica),
                 reads, writes, self._ctx, "backward", False, gather=False)

    # -- sharing and reshaping -----------------------------------------------------
    def copy_params_from(self, arg_params, aux_params=None, allow_extra_params=False):
        """Copy parameter values (``{name: NDArray}``) into the bound arrays."""
        for params, target, kind in ((arg_params, self.arg_dict, "argument"),
                                     (aux_params or {}, self.aux_dict, "aux state")):
            for name, value in params.items():
                if name not in target:
                    if allow_extra_params:
                        continue
                    raise ParamError(f"copy_params_from: '{name}' is not an {kind} of this "
                                     "executor (pass allow_extra_params=True to skip it)",
                                     param=name)
                value = value if isinstance(value, NDArray) else _nd_array(value)
                value.as_in_context(self._ctx).copyto(target[name])

    def reshape(self, partial_shaping=False, allow_up_sizing=False, **shapes):
        """A new executor for new input shapes that shares the parameter arrays.

        Arguments whose shape is unchanged keep the same NDArrays (so
        parameters and their gradients are shared); the others get new ones.

        Args:
            partial_shaping: Allow arguments not named in ``shapes`` to change
                shape (else that is an error, as in MXNet).
            allow_up_sizing: Allow any argument to grow (as in MXNet, growing
                is refused unless asked for).
            **shapes: New input shapes by argument name.
        """
        arg_shapes, _, aux_shapes = self._symbol.infer_shape(**shapes)
        if arg_shapes is None:
            raise ShapeError(f"reshape: the shapes {shapes} do not determine every argument")
        names = list(self.arg_dict)
        if not partial_shaping:
            changed = [n for n, s in zip(names, arg_shapes)
                       if s != self.arg_dict[n].shape and n not in shapes]
            if changed:
                raise ShapeError(f"reshape: the new shapes also change {changed}; pass "
                                 "partial_shaping=True to allow it")
        args, grads = {}, {}
        for n, s in zip(names, arg_shapes):
            old = self.arg_dict[n]
            same = s == old.shape
            if not same and not allow_up_sizing and int(np.prod(s)) > old.size:
                raise ShapeError(f"reshape: '{n}' would grow from {old.shape} to {s}; as in "
                                 "MXNet, binding the largest shape first and reshaping down "
                                 "is the cheaper order; pass allow_up_sizing=True to grow",
                                 argument=n, expected=old.shape, actual=s)
            args[n] = old if same else _nd_zeros(s, self._ctx, old.dtype)
            if n in self.grad_dict:
                g = self.grad_dict[n]
                grads[n] = g if same else _nd_zeros(s, self._ctx, g.dtype)
        aux = {n: (a if a.shape == s else _nd_zeros(s, self._ctx, a.dtype))
               for (n, a), s in zip(self.aux_dict.items(), aux_shapes)}
        return Executor(self._symbol, self._ctx, args, grads, self._grad_req, aux,
                        mirror=self._mirror, plan_memory=self._plan_enabled)

    # -- reports -------------------------------------------------------------------
    def memory_report(self, top=10):
        """Explain the planned memory: the pool, the peak step and what is alive there.

        Args:
            top: How many of the largest planned entries ``largest`` lists.

        Returns:
            A :class:`~deepkit_engine.graph.plan_memory.MemoryReport`: print it
            for a table of the buffers alive at the peak (name, shape, size
            and why each is alive: needed by backward, recomputed for
            backward, parameter gradient, output, ...), or read its fields
            (``report['planned_bytes']``, ``report.alive``, ...).
        """
        order, num_forward, external, grad_names, var_nodes = self._schedule
        graph = self._graph
        roles = dict.fromkeys(external, "argument")
        for name in self.aux_dict:
            roles[graph.entry_id(var_nodes[name])] = "auxiliary state"
        for eid, name in grad_names.items():
            roles[eid] = ("parameter gradient", f"{name} gradient")
        for node, idx in self._heads:
            roles[graph.entry_id(node, idx)] = "output"
        for hg in self._head_grad_nodes:
            if hg is not None:
                roles[graph.entry_id(hg)] = "head gradient"
        return _memory_report(graph, order, self._plan, self._shapes, self._dtypes, roles,
                              num_forward, top)

    def debug_str(self):
        """The program, and the planned memory in MB."""
        report = self.memory_report()
        lines = [self._symbol.debug_str(), "",
                 f"Total {report['planned_bytes'] / 2**20:.3f} MB planned for internal buffers "
                 f"({report['unplanned_bytes'] / 2**20:.3f} MB without reuse), "
                 f"{report['inplace']} in-place outputs",
                 f"Peak {report['peak_bytes'] / 2**20:.3f} MB at '{report['peak_node']}' "
                 f"({report['peak_phase']}); memory_report() lists what is alive there"]
        return "\n".join(lines)


def _unread_gradients(graph, bwd_nodes, external):
    """Entries that gradient ops write but nothing reads: their ``req`` is ``'null'``.

    A gradient op with several outputs (``_backward_RNN``,
    ``_backward_Convolution``...) computes all of its inputs' gradients
    unless told otherwise; the one of a data input that needs no gradient has
    no reader, and ``'null'`` lets the op skip it (MXNet's ``kNullOp``).
    """
    counts = graph.consumers()
    unread = set()
    for node in bwd_nodes:
        if node.num_outputs() < 2 or not node.op.name.startswith("_backward_"):
            continue
        for eid in graph.output_entry_ids(node):
            if counts[eid] == 0 and eid not in external:
                unread.add(eid)
    return unread


def simple_bind(symbol, ctx=None, grad_req="write", type_dict=None, shared_exec=None,
                mirror="one-pass", plan_memory=True, shapes=None):
    """Bind with every array allocated (zeros) from the given input shapes."""
    ctx = Context(ctx) if ctx is not None else current_context()
    shapes = dict(shapes or {})
    arg_shapes, _, aux_shapes = symbol.infer_shape_known(**shapes)
    names = symbol.list_arguments()
    # as in MXNet 1.x, a 0 in an inferred shape is an unknown dimension
    missing = [n for n, s in zip(names, arg_shapes) if s is None or 0 in s]
    aux_names = symbol.list_auxiliary_states()
    missing += [n for n, s in zip(aux_names, aux_shapes) if s is None or 0 in s]
    if missing:
        raise ShapeError(f"simple_bind: cannot infer shapes for: {', '.join(missing)}; provide "
                         f"input shapes, e.g. simple_bind(ctx, {names[0] if names else 'data'}="
                         "(N, ...))")
    types = dict(type_dict or {})
    arg_types, out_types, aux_types = symbol.infer_type_partial(
        **{n: types.get(n, np.float32) for n in names if n in types or n in shapes})
    if any(t is None for t in arg_types + out_types + aux_types):  # not all decided
        arg_types = [np.dtype(types.get(n, np.float32)) for n in names]
        aux_types = [np.dtype(np.float32)] * len(aux_names)
    reqs = _normalize_grad_req(grad_req, names)
    shared = shared_exec.arg_dict if shared_exec is not None else {}
    shared_grads = shared_exec.grad_dict if shared_exec is not None else {}
    args, grads = {}, {}
    for n, s, t in zip(names, arg_shapes, arg_types):
        prev = shared.get(n)
        args[n] = prev if prev is not None and prev.shape == s else _nd_zeros(s, ctx, t)
        if reqs[n] != "null":
            prev_g = shared_grads.get(n)
            grads[n] = prev_g if prev_g is not None and prev_g.shape == s else _nd_zeros(s, ctx, t)
    aux = {n: _nd_zeros(s, ctx, t) for n, s, t in zip(aux_names, aux_shapes, aux_types)}
    return Executor(symbol, ctx, args, grads, reqs, aux, mirror=mirror, plan_memory=plan_memory)
