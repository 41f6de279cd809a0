"""Recompute (mirror): keep few forward activations, recompute the others in backward.

Backward nodes that read a forward output which is not *kept* read a copy of
its node instead (``<name>_mirror``), computed during backward from kept
entries (recursively through the nodes in between). The forward outputs then
die as soon as forward is done with them, which the memory planner turns into
saved bytes.

Without sizes (:func:`apply_mirror` with no ``entry_bytes``), MXNet's rule
applies: the outputs of costly ops (:data:`HEAVY_OPS`) are kept and the cheap
ones recomputed. With sizes, one of two policies chooses.

``"one-pass"`` (what executors do by default) recomputes only outputs of short
chains of one-pass ops (:data:`ONE_PASS_OPS`: BatchNorm, activations) that
start from entries backward keeps anyway. In a convolutional net a
convolution's output is kept for its BatchNorm's backward; the ReLU output
after that BatchNorm, which the next convolution's weight gradient or a
pooling's backward reads, is then recomputed from it (two elementwise passes)
instead of being kept. On ResNet-18 this takes a third off the planned peak
for a percent or two of the step time. Only drops that do not raise the
estimated peak are made, so nets without such chains are planned as before.

``"segments"`` cuts the forward pass into *segments* at
entries through which everything flows (the outputs of residual blocks, of
a chain's layers): only segment boundaries (checkpoints) are kept and each
segment is recomputed, heavy ops included, just before its backward runs,
with segment lengths chosen so that the estimated peak is smallest (about
``sqrt(N)`` checkpoints on a chain). Segments whose activations are small
then keep their heavy outputs where that does not raise the peak, which
saves recomputing them.

BatchNorm is recomputed without touching its moving statistics: its copy is
``_batch_norm_apply``, which normalises with the batch mean and inverse std
that the forward pass saved (BatchNorm's hidden outputs, always kept), so the
recomputed output is bit-identical and the moving averages are updated once,
by forward (after a forward outside training, which normalises with the moving
statistics, the copy's result can differ from forward's in the last bits). Ops
that draw random numbers or have other auxiliary states or resources are
never recomputed (a redraw would change the result); other ops are assumed
deterministic. A node's ``__force_mirroring__`` attribute (MXNet's)
overrides all this: ``'False'`` always keeps its outputs, ``'True'`` always
recomputes them (it is then never a checkpoint).

The peak estimate that chooses the kept entries walks the forward positions
and back: kept entries live until backward reaches their node, a recomputed
entry from the moment backward first needs it (directly or to recompute
another) until backward reaches its node, and at each position the gradients
of the node's outputs and inputs and of the entries skipping over it are in
flight.
"""
from ..ops.registry import get_op
from ..resources import bound_to_run
from .node import Node, topo_order
from .plan_memory import shape_only_inputs, value_inputs

__all__ = ["HEAVY_OPS", "ONE_PASS_OPS", "POLICIES", "apply_mirror", "can_recompute",
           "is_mirrorable"]

#: Ops that are costly to recompute: kept from forward unless inside a segment.
HEAVY_OPS = frozenset({
    "dot", "batch_dot", "linalg_gemm2", "FullyConnected", "Convolution", "Deconvolution",
    "concat", "SoftmaxOutput", "BatchNorm", "RNN", "Embedding",
})

#: Loss heads and ops whose outputs are never worth recomputing.
_NEVER = frozenset({"SoftmaxOutput"})


def _forced(node):
    forced = node.user_attrs.get("__force_mirroring__")
    return None if forced is None else forced.lower() in ("1", "true")


def can_recompute(node):
    """Whether backward may recompute ``node``'s outputs at all (heavy ops included).

    Variables, ops that draw random numbers, ops with auxiliary states or
    other resources (BatchNorm excepted: see the module docstring), loss heads
    and nodes with ``__force_mirroring__`` false are always kept.
    """
    if node.op is None:
        return False
    forced = _forced(node)
    if forced is not None:
        return forced and not bound_to_run(node.op.resources)
    op = node.op
    if op.name == "BatchNorm":
        return True
    if bound_to_run(op.resources) or op.aux or op.loss_head or op.name in _NEVER:
        return False
    return op.mirror is None or bool(op.mirror)


def is_mirrorable(node):
    """Whether ``node`` is cheap to recompute (recomputed wherever backward needs it)."""
    if node.op is None:
        return False
    forced = _forced(node)
    if forced is not None:
        return forced
    op = node.op
    if bound_to_run(op.resources) or op.aux:
        return False
    if op.mirror is not None:
        return bool(op.mirror)
    return op.name not in HEAVY_OPS


def _copy(node, inputs):
    """The backward copy of ``node`` reading ``inputs`` (its mirrored inputs)."""
    name = f"{node.name}_mirror"
    if node.op.name == "BatchNorm":
        return Node(get_op("_batch_norm_apply"), name, node.attrs,
                    [inputs[0], inputs[1], inputs[2], (node, 1), (node, 2)], node.user_attrs)
    return Node(node.op, name, node.attrs, inputs, node.user_attrs)


class _Forward:
    """Facts about the forward pass that the choice of kept entries needs."""

    def __init__(self, heads, backward, entry_bytes):
        self.nodes = [n for n in topo_order(heads) if n.op is not None]
        self.pos = {id(n): i for i, n in enumerate(self.nodes)}
        self.ids = {id(n) for n in topo_order(heads)}
        self.heads = {(id(n), idx) for n, idx in heads}
        self.bytes = entry_bytes
        # forward entries whose values backward reads
        self.needed = {}
        for node in backward:
            for src, idx in value_inputs(node):
                if id(src) in self.ids and src.op is not None:
                    self.needed[(id(src), idx)] = (src, idx)
        # always kept: what cannot be recomputed, and BatchNorm's saved statistics
        self.fixed = set()
        for node in self.nodes:
            n_out = node.num_outputs()
            if not can_recompute(node):
                self.fixed.update((id(node), k) for k in range(n_out))
            elif node.op.name == "BatchNorm":
                self.fixed.update((id(node), k) for k in range(1, n_out))
        self.cuts = self._cuts()
        n = len(self.nodes)
        self.out_b = [sum(entry_bytes(node, k) for k in range(node.num_outputs()))
                      for node in self.nodes]
        self.in_b = [sum(entry_bytes(src, idx) for src, idx in value_inputs(node)
                         if id(src) in self.pos) for node in self.nodes]
        diff = [0] * (n + 1)
        for q in range(n):
            if self.last[q] > q + 1:
                diff[q + 1] += self.out_b[q]
                diff[self.last[q]] -= self.out_b[q]
        self.cross, running = [], 0
        for p in range(n):
            running += diff[p]
            self.cross.append(running)

    def _cuts(self):
        """Positions of nodes whose first output every later forward node depends on alone.

        Node ``p`` is a cut when no forward edge jumps over it: every output
        of the op nodes before it is last read by ``p`` at the latest. Also
        sets ``last`` (the last forward reader of each position, or itself)
        and ``readers`` (the forward readers of each position).
        """
        self.last = list(range(len(self.nodes)))
        self.readers = [[] for _ in self.nodes]
        for p, node in enumerate(self.nodes):
            for src, _ in value_inputs(node):
                q = self.pos.get(id(src))
                if q is not None:
                    self.last[q] = max(self.last[q], p)
                    if p not in self.readers[q]:
                        self.readers[q].append(p)
        cuts, reach = [], -1
        for p in range(len(self.nodes)):
            if reach <= p and not _forced(self.nodes[p]):
                cuts.append(p)
            reach = max(reach, self.last[p])
        return cuts

    def recomputed(self, kept):
        """``(recomputed, sources)``: the forward entries that backward recomputes when
        ``kept`` entries are kept, and the kept entries that recomputation reads."""
        todo = [e for k, e in self.needed.items() if k not in kept]
        done, sources = set(), set()
        while todo:
            node, idx = todo.pop()
            key = (id(node), idx)
            if node.op is None or key in done:
                continue
            if key in kept:
                sources.add(key)
                continue
            done.add(key)
            if node.op.name == "BatchNorm":
                inputs = node.inputs[:3]
            else:
                inputs = value_inputs(node)
                # a copy computes all outputs of its node
                done.update((id(node), k) for k in range(node.num_outputs()))
            todo.extend(inputs)
        return done, sources

    def estimate(self, kept):
        """Estimated planned peak (bytes) when the ``kept`` forward entries are kept.

        A walk over the forward positions and back. Kept entries live from
        forward until backward reaches their node. A recomputed entry is made
        when backward first needs it (at its last forward reader, or when a
        recomputed entry made from it is) and lives until backward reaches its
        node. At each position the gradients in flight are those of the
        node's outputs and inputs and of the entries that skip over it.
        """
        n = len(self.nodes)
        redo, sources = self.recomputed(kept)
        kept_at = [0] * n
        for key in sources | {k for k in self.needed if k in kept}:
            p = self.pos[key[0]]
            kept_at[p] += self.bytes(self.nodes[p], key[1])
        redo_pos = {self.pos[nid] for nid, _ in redo if nid in self.pos}
        made = {}  # position -> backward position where its recomputed outputs appear
        alive = [0] * (n + 1)
        for q in sorted(redo_pos, reverse=True):
            node = self.nodes[q]
            need = [k for k in range(node.num_outputs())
                    if (id(node), k) in self.needed and (id(node), k) in redo]
            start = self.last[q] if need else -1
            for r in self.readers[q]:
                start = max(start, made.get(r, -1))
            made[q] = start
            if start >= q:
                size = sum(self.bytes(node, k) for k in need)
                alive[q] += size
                alive[start + 1] -= size
        # forward: kept entries so far, plus the entries in flight that are not kept
        cross_free = [0] * (n + 1)
        for q in range(n):
            if (id(self.nodes[q]), 0) not in kept and self.last[q] > q:
                cross_free[q + 1] += self.out_b[q]
                cross_free[self.last[q]] -= self.out_b[q]
        peak, kept_sum, flying = 0, 0, 0
        kept_prefix = []
        for p in range(n):
            kept_sum += kept_at[p]
            flying += cross_free[p]
            kept_prefix.append(kept_sum)
            peak = max(peak, kept_sum + flying + self.out_b[p])
        # backward, last position first
        redo_live, running = [], 0
        for p in range(n):
            running += alive[p]
            redo_live.append(running)
        for p in range(n - 1, -1, -1):
            peak = max(peak, kept_prefix[p] + redo_live[p] + self.out_b[p] + self.in_b[p]
                       + self.cross[p])
        return peak


def _choose_kept(fwd):
    """Kept forward entries: checkpoints at cuts plus heavy outputs where they are free."""
    nodes = fwd.nodes
    needed_at = {}
    for (nid, idx), (node, _) in fwd.needed.items():
        needed_at.setdefault(fwd.pos[nid], 0)
        needed_at[fwd.pos[nid]] += fwd.bytes(node, idx)
    total = sum(needed_at.values())
    if not total or not fwd.cuts:
        return None

    def checkpoints(budget):
        chosen, acc = [], 0
        cut_set = set(fwd.cuts)
        for p in range(len(nodes)):
            acc += needed_at.get(p, 0)
            if p in cut_set and acc >= budget:
                chosen.append(p)
                acc = 0
        return chosen

    def kept_for(chosen):
        return fwd.fixed | {(id(nodes[p]), 0) for p in chosen}

    best = None
    for k in (0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32):
        chosen = checkpoints(total / k if k else 0)
        kept = kept_for(chosen)
        cost = fwd.estimate(kept)
        if best is None or cost < best[0]:
            best = (cost, chosen, kept)
    cost, chosen, kept = best
    # local search: add or drop single checkpoints while the estimate improves
    # (adding one also saves recomputation, so a tie is enough for it)
    for _ in range(4):
        improved = False
        for p in fwd.cuts:
            trial = sorted(set(chosen) ^ {p})
            trial_kept = kept_for(trial)
            trial_cost = fwd.estimate(trial_kept)
            if trial_cost < cost or (trial_cost == cost and len(trial) > len(chosen)):
                cost, chosen, kept = trial_cost, trial, trial_kept
                improved = True
        if not improved:
            break
    # keep heavy outputs, smallest first, while the estimated peak does not grow
    heavy = sorted(((fwd.bytes(node, idx), fwd.pos[key[0]], key)
                    for key, (node, idx) in fwd.needed.items()
                    if key not in kept and node.op.name in HEAVY_OPS
                    and node.op.name != "BatchNorm" and not _forced(node)))
    for _, _, key in heavy:
        trial = kept | {key}
        if fwd.estimate(trial) <= cost:
            kept = trial
    return kept


#: What ``apply_mirror`` recomputes (its ``policy``): ``"one-pass"`` only chains of
#: :data:`ONE_PASS_OPS` over kept heavy outputs; ``"segments"`` whole segments.
POLICIES = ("one-pass", "segments")

#: Ops that take one pass over memory: where backward needs their output and
#: their inputs are kept anyway, recomputing the output costs a pass, not memory.
ONE_PASS_OPS = frozenset({"Activation", "BatchNorm", "relu", "sigmoid", "tanh"})

#: The longest chain of one-pass ops recomputed for one entry (BatchNorm then ReLU: 2).
_CHAIN = 2


def _one_pass_roots(node, depth):
    """The entries a chain of one-pass ops ending at ``node`` starts from, or None.

    Chains reach back at most ``depth`` nodes and must start from entries that
    are never recomputed under this policy (heavy ops' outputs and arguments),
    so that recomputing one entry never needs another recomputed one.
    """
    if (depth == 0 or node.op is None or node.op.name not in ONE_PASS_OPS
            or not can_recompute(node)):
        return None
    roots = set()
    inputs = node.inputs[:3] if node.op.name == "BatchNorm" else value_inputs(node)
    for src, idx in inputs:
        if src.op is None or (src.op.name in HEAVY_OPS and src.op.name != "BatchNorm"):
            roots.add((id(src), idx))
            continue
        found = _one_pass_roots(src, depth - 1)
        if found is None:
            return None
        roots |= found
    return roots


def _choose_one_pass(fwd):
    """Kept forward entries under the ``"one-pass"`` policy.

    Every entry backward reads is kept, except outputs of chains of up to
    :data:`_CHAIN` one-pass ops (BatchNorm, then an activation) that start from
    entries kept anyway: a convolution's output is kept for BatchNorm's
    backward, so the ReLU after the BatchNorm is recomputed from it in two
    passes instead of being kept. Candidates go largest first, each only where
    the estimated peak does not grow.
    """
    kept = set(fwd.needed) | fwd.fixed
    cost = fwd.estimate(kept)
    candidates = []
    for key, (node, idx) in fwd.needed.items():
        # a graph output stays alive anyway: recomputing it would only add work
        roots = None if key in fwd.fixed or key in fwd.heads else _one_pass_roots(node, _CHAIN)
        if roots is not None:
            candidates.append((fwd.bytes(node, idx), fwd.pos[key[0]], key, roots))
    for _, _, key, roots in sorted(candidates, key=lambda c: c[:2], reverse=True):
        if not all(r in kept or r[0] not in fwd.pos for r in roots):
            continue  # a root that backward does not read would have to be kept for it
        trial = kept - {key}
        trial_cost = fwd.estimate(trial)
        if trial_cost <= cost:
            kept, cost = trial, trial_cost
    return kept


def apply_mirror(heads, grad_entries, entry_bytes=None, policy="segments"):
    """Rewrite the gradient entries so that backward recomputes forward activations.

    Args:
        heads: The forward outputs (entries).
        grad_entries: The gradient entries (``None`` where there is none).
        entry_bytes: ``entry_bytes(node, index)``: bytes of a forward entry.
            Given, ``policy`` chooses what is recomputed (see the module
            docstring); None: only cheap ops are recomputed (MXNet's rule).
        policy: One of :data:`POLICIES`: ``"segments"`` or ``"one-pass"``.

    Returns:
        ``(entries, rebuilt)``: the new gradient entries (``None`` kept as is)
        and ``{id(old node): new node}`` for every rebuilt backward node.
    """
    forward_ids = {id(n) for n in topo_order(heads)}
    live = [e for e in grad_entries if e is not None]
    backward = [n for n in topo_order(live) if id(n) not in forward_ids and n.op is not None]
    kept = None
    if entry_bytes is not None:
        fwd = _Forward(heads, backward, entry_bytes)
        kept = _choose_one_pass(fwd) if policy == "one-pass" else _choose_kept(fwd)
    clones = {}
    rebuilt = {}

    def keeps(node, idx):
        if kept is not None:
            return (id(node), idx) in kept
        return not is_mirrorable(node)

    def mirrored(entry):
        node, idx = entry
        if id(node) not in forward_ids or node.op is None or keeps(node, idx):
            return entry
        clone = clones.get(id(node))
        if clone is None:
            skip = _shape_only(node)
            clone = _copy(node, [e if k in skip else mirrored(e)
                                 for k, e in enumerate(node.inputs)])
            clones[id(node)] = clone
        return (clone, idx)

    for node in backward:
        skip = _shape_only(node)
        new_inputs = []
        for k, (src, idx) in enumerate(node.inputs):
            if id(src) in forward_ids:
                new_inputs.append((src, idx) if k in skip else mirrored((src, idx)))
            else:
                new_inputs.append((rebuilt.get(id(src), src), idx))
        rebuilt[id(node)] = Node(node.op, node.name, node.attrs, new_inputs, node.user_attrs)
    entries = [None if e is None else (rebuilt.get(id(e[0]), e[0]), e[1]) for e in grad_entries]
    return entries, rebuilt


def _shape_only(node):
    """Input indices of ``node`` read for their shape only (never recomputed for it)."""
    return set(shape_only_inputs(node))
