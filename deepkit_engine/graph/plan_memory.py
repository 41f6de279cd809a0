"""Static memory planning: which entries share which memory, and why the peak is what it is.

A simulated allocation over the nodes in execution order (MXNet's
``plan_memory``): an output may take its input's buffer in place when the op
allows it and this node is the input's last reader. By default each chain of
in-place outputs is then one storage, and the storages are placed at offsets
of one arena by their lifetimes (:func:`pack_offsets`), so the arena comes
close to the largest sum of live bytes over the steps. Without packing,
outputs take a free buffer of similar size (growing it if needed) or a new
one, and buffers return to the free list when their last reader has run.
Entries held outside the plan (arguments, outputs, gradients) are never
shared, and an input an op reads only for its shape (:data:`SHAPE_ONLY_INPUTS`)
does not keep an entry alive.

:func:`memory_report` explains a plan: its peak step and the buffers alive
there, with why each is alive.
"""
import numpy as np

__all__ = ["MemoryPlan", "MemoryReport", "memory_report", "pack_offsets", "plan_memory",
           "shape_only_inputs"]

MATCH_RANGE = 16

#: Inputs whose values an op never reads, only their shapes (``{op name: input
#: indices}``, or ``{op name: fn(attrs) -> input indices}`` where they depend on
#: the node's attributes): such a read does not keep an entry alive, so a
#: forward output that backward needs only for its shape dies with forward.
SHAPE_ONLY_INPUTS = {"_reduce_to_like": (1,), "_broadcast_to_like": (1,), "_fc_data_grad": (2,)}


def shape_only_inputs(node):
    """The input indices of ``node`` whose shapes alone it reads (:data:`SHAPE_ONLY_INPUTS`)."""
    spec = SHAPE_ONLY_INPUTS.get(node.op.name, ()) if node.op is not None else ()
    return tuple(spec(node.attrs)) if callable(spec) else tuple(spec)


def value_inputs(node):
    """The ``(node, index)`` inputs whose values ``node`` reads."""
    skip = shape_only_inputs(node)
    if not skip:
        return list(node.inputs)
    return [e for k, e in enumerate(node.inputs) if k not in skip]


class MemoryPlan:
    """The result: a storage id per entry (-1: external or empty) and buffer sizes.

    Attributes:
        storage: Storage id per entry id.
        sizes: Bytes of each storage.
        inplace: ``{(node_index, output_index)}`` outputs written in place.
        entry_bytes: Bytes each entry needs.
        offsets: Byte offset of each storage in one arena of ``arena_bytes``
            (storages whose lifetimes overlap never overlap there), or None
            when every storage is a buffer of its own.
        arena_bytes: Size of that arena (None without offsets).
    """

    def __init__(self, storage, sizes, inplace, entry_bytes, offsets=None, arena_bytes=None):
        self.storage = storage
        self.sizes = sizes
        self.inplace = inplace
        self.entry_bytes = entry_bytes
        self.offsets = offsets
        self.arena_bytes = arena_bytes

    @property
    def planned_bytes(self):
        """Bytes the plan allocates: the arena, or all buffers together."""
        if self.offsets is not None:
            return int(self.arena_bytes)
        return int(sum(self.sizes))

    @property
    def unplanned_bytes(self):
        """What the same internal entries would need with one buffer each."""
        return int(sum(b for b, s in zip(self.entry_bytes, self.storage) if s >= 0))


#: Storage offsets in an arena are multiples of this (cache lines, SIMD loads).
ALIGN = 64


def _align(n):
    return -(-n // ALIGN) * ALIGN


def pack_offsets(sizes, starts, ends):
    """Offsets that place buffers with overlapping lifetimes at disjoint addresses.

    Greedy by size: the largest buffer first, each at the lowest aligned
    offset free of the buffers already placed whose lifetime
    ``[starts[i], ends[i]]`` (steps, inclusive) overlaps its own.

    Returns:
        ``(offsets, arena_bytes)``.
    """
    count = len(sizes)
    offsets = [0] * count
    p_off = np.zeros(count, np.int64)
    p_end_addr = np.zeros(count, np.int64)
    p_start = np.zeros(count, np.int64)
    p_end = np.zeros(count, np.int64)
    arena = 0
    by_size = sorted(range(count), key=lambda i: (-sizes[i], starts[i]))
    for placed, sid in enumerate(by_size):
        size = _align(max(int(sizes[sid]), 1))
        a, b = starts[sid], ends[sid]
        mask = (p_start[:placed] <= b) & (p_end[:placed] >= a)
        off = 0
        if mask.any():
            lo, hi = p_off[:placed][mask], p_end_addr[:placed][mask]
            for k in np.argsort(lo, kind="stable"):
                if off + size <= lo[k]:
                    break
                off = max(off, int(hi[k]))
        offsets[sid] = off
        p_off[placed], p_end_addr[placed] = off, off + size
        p_start[placed], p_end[placed] = a, b
        arena = max(arena, off + size)
    return offsets, arena


def plan_memory(graph, order, shapes, dtypes, external, share=True, allow_inplace=True,
                pack=True):
    """Plan buffers for the internal entries of ``graph``.

    Args:
        graph: The :class:`Graph`.
        order: Op nodes in execution order.
        shapes, dtypes: Per entry id.
        external: Entry ids that have their own arrays.
        share: Reuse memory (False: one buffer per entry).
        allow_inplace: Use ops' in-place pairs.
        pack: With ``share``: give each chain of in-place outputs a storage
            and place the storages in one arena by their lifetimes
            (:func:`pack_offsets`); False: reuse whole freed buffers
            (growing them where needed), one allocation per buffer.
    """
    n = graph.num_entries
    entry_bytes = [int(np.prod(s, dtype=np.int64)) * np.dtype(d).itemsize
                   if s is not None and d is not None else 0
                   for s, d in zip(shapes, dtypes)]
    remaining = [0] * n
    for node in order:
        for src, i in value_inputs(node):
            remaining[graph.entry_id(src, i)] += 1
    storage = [-1] * n
    sizes = []
    live = []          # live entries per storage
    free = []          # storage ids available
    inplace = set()

    def request(nbytes):
        if share and free and not pack:
            best = None
            for sid in free:
                size = sizes[sid]
                if nbytes <= size <= nbytes * MATCH_RANGE and (best is None or size < sizes[best]):
                    best = sid
            if best is None:
                for sid in free:
                    if sizes[sid] * MATCH_RANGE >= nbytes and (best is None
                                                              or sizes[sid] > sizes[best]):
                        best = sid
            if best is not None:
                free.remove(best)
                sizes[best] = max(sizes[best], nbytes)
                return best
        sizes.append(nbytes)
        live.append(0)
        return len(sizes) - 1

    def release(eid):
        sid = storage[eid]
        if sid >= 0:
            live[sid] -= 1
            if live[sid] == 0:
                free.append(sid)

    for nid_node in order:
        node = nid_node
        in_ids = graph.input_entry_ids(node)
        read_ids = [graph.entry_id(src, i) for src, i in value_inputs(node)]
        out_ids = graph.output_entry_ids(node)
        taken = set()
        shape_only = shape_only_inputs(node)
        for k, eid in enumerate(out_ids):
            if eid in external or entry_bytes[eid] == 0:
                continue
            sid = None
            if allow_inplace and share:
                for i_in, i_out in node.op.inplace:
                    if i_out != k or i_in >= len(in_ids) or i_in in shape_only:
                        continue
                    src = in_ids[i_in]
                    s = storage[src]
                    if (s >= 0 and s not in taken and remaining[src] == 1 and live[s] == 1
                            and in_ids.count(src) == 1
                            and entry_bytes[src] == entry_bytes[eid]
                            and np.dtype(dtypes[src]) == np.dtype(dtypes[eid])):
                        sid = s
                        inplace.add((node, k))
                        break
            if sid is None:
                sid = request(entry_bytes[eid])
            storage[eid] = sid
            live[sid] += 1
            taken.add(sid)
        for eid in read_ids:
            remaining[eid] -= 1
            if remaining[eid] == 0 and eid not in external:
                release(eid)
        for eid in out_ids:
            if remaining[eid] == 0 and eid not in external and storage[eid] >= 0:
                release(eid)
    if not (share and pack):
        return MemoryPlan(storage, sizes, inplace, entry_bytes)
    starts = [len(order)] * len(sizes)
    ends = [-1] * len(sizes)
    for step, node in enumerate(order):
        for eid in graph.output_entry_ids(node):
            sid = storage[eid]
            if sid >= 0:
                starts[sid] = min(starts[sid], step)
                ends[sid] = max(ends[sid], step)
        for src, i in value_inputs(node):
            sid = storage[graph.entry_id(src, i)]
            if sid >= 0:
                ends[sid] = max(ends[sid], step)
    offsets, arena = pack_offsets(sizes, starts, ends)
    return MemoryPlan(storage, sizes, inplace, entry_bytes, offsets, arena)


class MemoryReport:
    """What a memory plan costs and why: the planned pool, the peak and what is alive there.

    Readable as a table (``str(report)``) and as data: the attributes, or
    ``report[key]`` / :meth:`as_dict` for the keys ``planned_bytes``,
    ``unplanned_bytes``, ``external_bytes``, ``peak_bytes``, ``peak_step``,
    ``peak_node``, ``peak_phase``, ``alive``, ``largest`` and ``inplace``.

    Attributes:
        planned_bytes: The pool: bytes of all planned buffers together.
        unplanned_bytes: What the same entries would need with a buffer each.
        external_bytes: Arrays outside the pool (arguments, auxiliary states,
            gradients, outputs).
        peak_bytes: Bytes of the planned buffers alive at the peak step.
        peak_step: Index of the peak step in the execution order.
        peak_node: Name of the node that runs at the peak.
        peak_phase: ``'forward'`` or ``'backward'``.
        alive: Rows ``{'name', 'shape', 'dtype', 'bytes', 'why', 'planned'}``
            alive at the peak, largest first: every planned buffer in use, and
            the external arrays (``planned`` False).
        largest: ``(entry name, bytes)`` of the largest planned entries.
        inplace: How many outputs are written in place of an input.
        live_bytes: Planned bytes alive at each step (the memory curve).
    """

    _KEYS = ("planned_bytes", "unplanned_bytes", "external_bytes", "peak_bytes", "peak_step",
             "peak_node", "peak_phase", "alive", "largest", "inplace")

    #: How many rows of ``alive`` the table shows.
    rows = 25

    def __init__(self, **fields):
        for key in self._KEYS + ("live_bytes", "num_steps"):
            setattr(self, key, fields[key])

    def as_dict(self):
        """The report as plain data (without the per-step curve)."""
        return {k: getattr(self, k) for k in self._KEYS}

    def __getitem__(self, key):
        if key not in self._KEYS:
            raise KeyError(key)
        return getattr(self, key)

    def keys(self):
        """The keys ``report[key]`` accepts."""
        return self._KEYS

    def __str__(self):
        mib = 2 ** 20
        lines = [(f"Planned pool {self.planned_bytes / mib:.2f} MiB "
                  f"({self.unplanned_bytes / mib:.2f} MiB without reuse, {self.inplace} outputs "
                  f"in place); arrays outside the pool {self.external_bytes / mib:.2f} MiB"),
                 (f"Peak at step {self.peak_step} of {self.num_steps} ({self.peak_phase}, node "
                  f"'{self.peak_node}'): {self.peak_bytes / mib:.2f} MiB of planned buffers "
                  "alive")]
        rows = [("MiB", "name", "shape", "why alive")]
        shown = self.alive[:self.rows]
        for r in shown:
            rows.append((f"{r['bytes'] / mib:.2f}", r["name"], "x".join(map(str, r["shape"])),
                         r["why"]))
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        for row in rows:
            lines.append(f"{row[0]:>{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:<{widths[2]}}  "
                         f"{row[3]}")
        rest = self.alive[len(shown):]
        if rest:
            lines.append(f"... and {len(rest)} smaller arrays "
                         f"({sum(r['bytes'] for r in rest) / mib:.2f} MiB)")
        return "\n".join(lines)

    def __repr__(self):
        return (f"<MemoryReport planned={self.planned_bytes} peak={self.peak_bytes} at "
                f"'{self.peak_node}'>")


def memory_report(graph, order, plan, shapes, dtypes, external_roles=None, num_forward=None,
                  top=10):
    """Explain a plan: where its peak is and which buffers are alive there, and why.

    An entry is alive from the step that writes it to the last step that
    reads it. The peak is the step with the most planned bytes alive (the
    pool can exceed it where buffers of different sizes did not pack
    perfectly).

    Args:
        graph: The :class:`Graph` the plan was made for.
        order: Op nodes in execution order (as given to :func:`plan_memory`).
        plan: The :class:`MemoryPlan`.
        shapes, dtypes: Per entry id.
        external_roles: ``{entry id: why}`` or ``{entry id: (why, name)}`` for
            arrays outside the pool (``'parameter gradient'``, ``'output'``,
            ...); they are listed as alive throughout (arguments and
            auxiliary states, bound before the program runs, only count in
            ``external_bytes``).
        num_forward: How many leading steps of ``order`` are the forward pass
            (None: all of them).
        top: How many of the largest planned entries ``largest`` lists.

    Returns:
        A :class:`MemoryReport`.
    """
    external_roles = dict(external_roles or {})
    num_forward = len(order) if num_forward is None else num_forward
    born, last, readers = {}, {}, {}
    for step, node in enumerate(order):
        for eid in (graph.entry_id(src, i) for src, i in value_inputs(node)):
            if eid in born:
                last[eid] = step
                readers.setdefault(eid, []).append(step)
        for eid in graph.output_entry_ids(node):
            if plan.storage[eid] >= 0:
                born[eid] = step
                last[eid] = step
    # planned bytes alive per step: a storage counts once, with its largest live entry
    n_steps = len(order)
    holders = [{} for _ in range(n_steps)]
    for eid, start in born.items():
        sid = plan.storage[eid]
        for step in range(start, last[eid] + 1):
            held = holders[step].get(sid)
            if held is None or plan.entry_bytes[eid] > plan.entry_bytes[held]:
                holders[step][sid] = eid
    live_bytes = [sum(plan.entry_bytes[e] for e in h.values()) for h in holders]
    peak = max(range(n_steps), key=live_bytes.__getitem__) if n_steps else 0
    node_name = order[peak].name if n_steps else ""

    def why(eid):
        start = born[eid]
        later = [s for s in readers.get(eid, ()) if s > peak]
        if start == peak:
            return "written here"
        if not later:
            return "read here"
        nxt = order[later[0]]
        if start < num_forward <= later[0]:
            return f"needed by backward ({nxt.name})"
        if start >= num_forward and order[start].name.endswith("_mirror"):
            return f"recomputed for backward ({nxt.name})"
        return f"waiting for {nxt.name}"

    alive = []
    for eid in (holders[peak].values() if n_steps else ()):
        alive.append({"name": graph.entry_name(eid), "shape": tuple(shapes[eid]),
                      "dtype": str(np.dtype(dtypes[eid])), "bytes": plan.entry_bytes[eid],
                      "why": why(eid), "planned": True})
    external = 0
    for eid, role in external_roles.items():
        nbytes = plan.entry_bytes[eid]
        external += nbytes
        role, name = role if isinstance(role, tuple) else (role, graph.entry_name(eid))
        if role in ("argument", "auxiliary state"):
            continue  # bound before the program runs: not part of its growth
        alive.append({"name": name, "shape": tuple(shapes[eid]),
                      "dtype": str(np.dtype(dtypes[eid])), "bytes": nbytes, "why": role,
                      "planned": False})
    alive.sort(key=lambda r: (-r["bytes"], r["name"]))
    largest = sorted(((graph.entry_name(e), plan.entry_bytes[e]) for e in range(graph.num_entries)
                      if plan.storage[e] >= 0), key=lambda t: -t[1])[:top]
    return MemoryReport(planned_bytes=plan.planned_bytes, unplanned_bytes=plan.unplanned_bytes,
                        external_bytes=int(external), peak_bytes=int(live_bytes[peak]) if n_steps
                        else 0, peak_step=peak, peak_node=node_name,
                        peak_phase="forward" if peak < num_forward else "backward",
                        alive=alive, largest=largest, inplace=len(plan.inplace),
                        live_bytes=live_bytes, num_steps=n_steps)
