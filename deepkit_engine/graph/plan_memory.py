"""Static memory planning: which entries share which buffer.

A simulated allocation over the nodes in execution order (MXNet's
``plan_memory``): an output may take its input's buffer in place when the op
allows it and this node is the input's last reader; other outputs take a free
buffer of similar size (growing it if needed) or a new one; buffers return to
the free list when their last reader has run. Entries held outside the plan
(arguments, outputs, gradients) are never shared.
"""
import numpy as np

__all__ = ["MemoryPlan", "plan_memory"]

MATCH_RANGE = 16


class MemoryPlan:
    """The result: a storage id per entry (-1: external or empty) and buffer sizes.

    Attributes:
        storage: Storage id per entry id.
        sizes: Bytes of each storage.
        inplace: ``{(node_index, output_index)}`` outputs written in place.
        entry_bytes: Bytes each entry needs.
    """

    def __init__(self, storage, sizes, inplace, entry_bytes):
        self.storage = storage
        self.sizes = sizes
        self.inplace = inplace
        self.entry_bytes = entry_bytes

    @property
    def planned_bytes(self):
        return int(sum(self.sizes))

    @property
    def unplanned_bytes(self):
        """What the same internal entries would need with one buffer each."""
        return int(sum(b for b, s in zip(self.entry_bytes, self.storage) if s >= 0))


def plan_memory(graph, order, shapes, dtypes, external, share=True, allow_inplace=True):
    """Plan buffers for the internal entries of ``graph``.

    Args:
        graph: The :class:`Graph`.
        order: Op nodes in execution order.
        shapes, dtypes: Per entry id.
        external: Entry ids that have their own arrays.
        share: Reuse freed buffers (False: one buffer per entry).
        allow_inplace: Use ops' in-place pairs.
    """
    n = graph.num_entries
    entry_bytes = [int(np.prod(s, dtype=np.int64)) * np.dtype(d).itemsize
                   if s is not None and d is not None else 0
                   for s, d in zip(shapes, dtypes)]
    remaining = [0] * n
    for node in order:
        for src, i in node.inputs:
            remaining[graph.entry_id(src, i)] += 1
    storage = [-1] * n
    sizes = []
    live = []          # live entries per storage
    free = []          # storage ids available
    inplace = set()

    def request(nbytes):
        if share and free:
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
        in_ids = [graph.entry_id(src, i) for src, i in node.inputs]
        out_ids = graph.output_entry_ids(node)
        taken = set()
        for k, eid in enumerate(out_ids):
            if eid in external or entry_bytes[eid] == 0:
                continue
            sid = None
            if allow_inplace and share:
                for i_in, i_out in node.op.inplace:
                    if i_out != k or i_in >= len(in_ids):
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
        for eid in in_ids:
            remaining[eid] -= 1
            if remaining[eid] == 0 and eid not in external:
                release(eid)
        for eid in out_ids:
            if remaining[eid] == 0 and eid not in external and storage[eid] >= 0:
                release(eid)
    return MemoryPlan(storage, sizes, inplace, entry_bytes)
