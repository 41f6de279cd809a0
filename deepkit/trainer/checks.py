"""Checks on the data as it enters ``fit``/``evaluate``/``train_on_batch``: bad values raise.

Three things would otherwise train silently on garbage: class labels out of
range for a sparse loss (the engine's ``pick`` clips them), indices out of
range for an Embedding fed straight from an input (the lookup clips them),
and NaN or infinity in the inputs or targets (the weights become NaN). Each
raises a ValueError that names the input or output, the offending value, its
sample and the valid range.

In-memory numpy arrays are checked once per call, before the first batch: a
sum per array finds non-finite values about as fast as memory can be read,
and the exact position is looked up only when there is one. Other array-likes
(h5py datasets, memmaps) are checked batch by batch as their rows are gathered
(on the calling thread, before the batch's work is queued), and batches of
iterables as they arrive. Nothing is checked on the engine, so a bad batch
never leaves failed work behind.
"""
import numpy as np

from .data import named

__all__ = ["DataChecks"]


def _is_in_memory(value):
    return type(value) is np.ndarray  # memmap and h5py read their rows from disk


def first_non_finite(array):
    """``(index tuple, value)`` of the first NaN or infinity in ``array``, or None."""
    array = np.asarray(array)
    if array.dtype.kind not in "fc" or array.size == 0:
        return None
    with np.errstate(all="ignore"):
        if np.isfinite(array.sum()):
            return None  # a sum of finite values is finite unless it overflows
    bad = np.argwhere(~np.isfinite(array))
    if len(bad) == 0:
        return None
    where = tuple(int(i) for i in bad[0])
    return where, array[where].item()


class DataChecks:
    """What one ``fit``/``evaluate`` call checks on its inputs and targets.

    Args:
        model: The model (its names, compiled losses, outputs and layer calls).
        what: The calling method, for messages (``'fit'``, ``'evaluate'``...).
        check_finite: Refuse NaN and infinity in inputs and targets.
    """

    def __init__(self, model, what, check_finite=True):
        self.model = model
        self.what = what
        self.check_finite = check_finite
        self.embeddings = self._embeddings_by_input(model)

    @staticmethod
    def _embeddings_by_input(model):
        """``{input name: [layers that take it directly and check indices]}``."""
        calls = getattr(type(model), "calls", None)  # the method, even if an instance shadows it
        if not callable(calls):
            return {}
        by_tensor = {id(t): name for t, name in zip(getattr(model, "inputs", []),
                                                     model.input_names)}
        found = {}
        for layer, node in calls(model):
            check = getattr(layer, "check_indices", None)
            if check is None or not node.inputs:
                continue
            name = by_tensor.get(id(node.inputs[0]))
            if name is not None:
                found.setdefault(name, []).append(layer)
        return found

    def _losses(self):
        losses = getattr(self.model, "compiled_loss", None) or []
        out = []
        for i, name in enumerate(self.model.output_names):
            loss = losses[i] if i < len(losses) else None
            shape = tuple(self.model.outputs[i].shape[1:]) if loss is not None else None
            out.append((name, loss, shape))
        return out

    # -- one array --------------------------------------------------------------------
    def input_values(self, name, values, positions=None):
        """Check the values of input ``name`` (numpy, batch axis first)."""
        if self.check_finite:
            self._finite("input", name, values, positions)
        for layer in self.embeddings.get(name, ()):
            layer.check_indices(values, name, positions)

    def target_values(self, index, values, positions=None):
        """Check the targets of output number ``index`` (numpy, batch axis first)."""
        name, loss, shape = self._losses()[index]
        if loss is not None:
            loss.check_label_values(values, (len(values),) + shape, name, positions)
        if self.check_finite:
            self._finite("target of output", name, values, positions)

    def _finite(self, kind, name, values, positions):
        found = first_non_finite(values)
        if found is None:
            return
        where, value = found
        row = where[0] if positions is None else int(np.asarray(positions)[where[0]])
        inner = f", position {where[1:]}" if len(where) > 1 else ""
        raise ValueError(f"{self.what}: the {kind} '{name}' holds {value} at sample {row}"
                         f"{inner}; training on it would make the weights NaN. Clean the data, "
                         f"or pass check_finite=False to {self.what} to skip this check")

    # -- whole calls and batches ---------------------------------------------------------
    def arrays(self, xs, ys):
        """Check in-memory arrays now; ``{(kind, name): check}`` for the others.

        Args:
            xs: Inputs by name. ys: Targets by output name (may be empty).

        Returns:
            Checks to run on gathered rows ``check(values, positions)`` of the
            arrays that are not numpy arrays in memory (h5py, memmap).
        """
        deferred = {}
        for name, value in xs.items():
            if _is_in_memory(value):
                self.input_values(name, value)
            else:
                deferred[("x", name)] = (lambda v, p, n=name: self.input_values(n, v, p))
        outputs = list(self.model.output_names)
        for name, value in ys.items():
            index = outputs.index(name)
            if _is_in_memory(value):
                self.target_values(index, value)
            else:
                deferred[("y", name)] = (lambda v, p, i=index: self.target_values(i, v, p))
        return deferred

    def batch(self, x, y, first):
        """Check one batch of an iterable (host arrays; ``first``: its first sample number)."""
        for name, value in named(x, self.model.input_names, "x").items():
            value = np.asarray(value)
            self.input_values(name, value, np.arange(first, first + len(value)))
        if y is None:
            return
        for i, value in enumerate(named(y, self.model.output_names, "y").values()):
            value = np.asarray(value)
            self.target_values(i, value, np.arange(first, first + len(value)))
