"""Run a converted Caffe net and compare it with another implementation, layer by layer.

``verify(conversion, input, reference)`` runs the converted symbol with the
engine (``grad_req='null'``, inference mode), reading every requested layer's
output through ``get_internals()``, and compares each with the reference
(Caffe, OpenCV's dnn module, ...): max absolute and relative difference, and
pass/fail at ``max|diff| <= rtol * max|ref| + atol`` (default ``1e-4``,
``1e-5``).

Reference keys are Caffe layer names or blob (top) names. A layer name
means that layer's output (what OpenCV's ``net.forward(names)`` gives); a
blob name means the blob's *last* version (what Caffe's ``net.blobs[name]``
holds after in-place layers). ``keys='auto'`` reads the whole reference one
way: as blob names when some key is only a blob name, as layer names when
some key is only a layer name, and, when every key is both (in-place layers
named after their blob), the reading that matches more keys; the report says
which (``report.matched``). ``'layer'`` or ``'blob'`` forces one meaning. A
key naming a net input is the input array, so a reference file can carry
its own input.

``run(conversion, inputs)`` is the plain forward pass (in batches), with an
executor cached per batch shape.
"""
import numpy as np

from deepkit_engine import nd
from deepkit_engine import symbol as sym
from deepkit_engine.base import DeepkitError

__all__ = ["verify", "VerifyReport", "VerifyRow", "run", "Runner", "resolve_output"]


class VerifyRow:
    """One compared layer/blob."""

    __slots__ = ("key", "layer", "output", "shape", "ref_shape", "max_abs", "max_rel", "ref_max",
                 "tolerance", "passed", "note")

    def __init__(self, key, layer=None, output=None):
        self.key, self.layer, self.output = key, layer, output
        self.shape = self.ref_shape = None
        self.max_abs = self.max_rel = self.ref_max = self.tolerance = None
        self.passed = False
        self.note = None

    def to_dict(self):
        return {k: getattr(self, k) for k in self.__slots__}

    def __repr__(self):
        return f"VerifyRow({self.key!r}, passed={self.passed}, max_abs={self.max_abs})"


class VerifyReport:
    """Per-layer differences; ``passed`` when every compared row is within tolerance."""

    def __init__(self, rows, rtol, atol, matched=""):
        self.rows, self.rtol, self.atol = rows, rtol, atol
        self.matched = matched

    @property
    def passed(self):
        return bool(self.rows) and all(r.passed for r in self.rows)

    @property
    def failed(self):
        return [r for r in self.rows if not r.passed]

    def __getitem__(self, key):
        for r in self.rows:
            if r.key == key:
                return r
        raise KeyError(key)

    def __bool__(self):
        return self.passed

    def max_abs(self):
        vals = [r.max_abs for r in self.rows if r.max_abs is not None]
        return max(vals) if vals else None

    def table(self):
        head = ("Layer/blob", "Engine output", "Shape", "max|diff|", "max rel", "max|ref|",
                "tolerance", "")
        rows = [head]
        for r in self.rows:
            rows.append((str(r.key), str(r.output or "-"), _fmt(r.shape), _num(r.max_abs),
                         _num(r.max_rel), _num(r.ref_max), _num(r.tolerance),
                         ("ok" if r.passed else "FAIL") + (f" ({r.note})" if r.note else "")))
        widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        n_fail = len(self.failed)
        lines.append("")
        if self.matched:
            lines.append(self.matched)
        lines.append(f"{len(self.rows) - n_fail}/{len(self.rows)} within max|diff| <= "
                     f"{self.rtol:g} * max|ref| + {self.atol:g}; "
                     + ("PASSED" if self.passed else "FAILED"))
        return "\n".join(lines)

    __str__ = table

    def raise_if_failed(self):
        if not self.passed:
            raise DeepkitError("verification failed:\n" + self.table())
        return self


def _fmt(shape):
    return "-" if shape is None else "(" + ",".join(str(d) for d in shape) + ")"


def _num(x):
    return "-" if x is None else f"{x:.3g}"


# -- running --------------------------------------------------------------------------------

def as_record(conversion):
    """The conversion record of a converted model (``model.conversion``), or the record itself."""
    record = getattr(conversion, "conversion", None)
    return record if record is not None else conversion


def _input_dict(conversion, inputs):
    names = [n for n, _ in conversion.inputs]
    if isinstance(inputs, dict):
        unknown = [k for k in inputs if k not in names]
        if unknown:
            raise DeepkitError(f"unknown input(s) {unknown}; the net's inputs are {names}")
        missing = [n for n in names if n not in inputs]
        if missing:
            raise DeepkitError(f"no value for input(s) {missing}")
        return {k: np.asarray(v, dtype=np.float32) for k, v in inputs.items()}
    if len(names) != 1:
        raise DeepkitError(f"the net has {len(names)} inputs ({', '.join(names)}); pass a dict")
    return {names[0]: np.asarray(inputs, dtype=np.float32)}


class Runner:
    """Forward passes of a converted net, with one executor per input shape."""

    def __init__(self, conversion, outputs=None, ctx=None):
        self.conversion = conversion
        self.ctx = ctx
        if outputs is None:
            self.symbol = conversion.symbol
        else:
            internals = conversion.symbol.get_internals()
            self.symbol = sym.Group([internals[name] for name in outputs])
        self.names = self.symbol.list_outputs()
        self._params = None
        self._executors = {}

    def _arrays(self):
        if self._params is None:
            conv = self.conversion
            self._params = ({k: nd.array(v, ctx=self.ctx) for k, v in conv.arg_params.items()},
                            {k: nd.array(v, ctx=self.ctx) for k, v in conv.aux_params.items()})
        return self._params

    def _executor(self, inputs):
        key = tuple(sorted((k, v.shape) for k, v in inputs.items()))
        exe = self._executors.get(key)
        if exe is None:
            args, aux = self._arrays()
            bound = {}
            for name in self.symbol.list_arguments():
                if name in inputs:
                    bound[name] = nd.array(inputs[name], ctx=self.ctx)
                elif name in args:
                    bound[name] = args[name]
                else:
                    raise DeepkitError(f"no value for '{name}' (a parameter missing from the "
                                       "conversion: was it converted without a caffemodel?)")
            aux_bound = {name: aux[name] for name in self.symbol.list_auxiliary_states()}
            exe = self.symbol.bind(self.ctx, bound, grad_req="null", aux_states=aux_bound)
            self._executors = {key: exe}  # keep one: shapes rarely alternate
            return exe, True
        return exe, False

    def __call__(self, inputs):
        """``{output name: numpy array}`` for one batch (``inputs``: array or dict)."""
        inputs = _input_dict(self.conversion, inputs)
        exe, fresh = self._executor(inputs)
        if fresh:
            outs = exe.forward(is_train=False)
        else:
            outs = exe.forward(is_train=False, **{k: v for k, v in inputs.items()
                                                  if k in exe.arg_dict})
        return {name: o.asnumpy() for name, o in zip(self.names, outs)}


def run(conversion, inputs, outputs=None, batch_size=None, ctx=None):
    """Forward ``inputs`` through the converted net; ``{output name: array}``.

    Args:
        conversion: A :class:`~deepkit.caffe.convert.CaffeConversion`.
        inputs: An array for a one-input net, or ``{input name: array}``.
        outputs: Engine output names (``get_internals`` names) to return; the
            net's outputs by default.
        batch_size: Split the batch axis into chunks of this size.
        ctx: Device (default: the current context).
    """
    conversion = as_record(conversion)
    runner = Runner(conversion, outputs, ctx)
    inputs = _input_dict(conversion, inputs)
    n = next(iter(inputs.values())).shape[0]
    if batch_size is None or batch_size >= n:
        return runner(inputs)
    parts = {}
    for start in range(0, n, batch_size):
        chunk = {k: v[start:start + batch_size] for k, v in inputs.items()}
        for name, value in runner(chunk).items():
            parts.setdefault(name, []).append(value)
    return {name: np.concatenate(values, axis=0) for name, values in parts.items()}


# -- comparing ------------------------------------------------------------------------------

def resolve_output(conversion, key, keys="auto"):
    """``(engine output name or None, layer record or None, note)`` for a reference key."""
    if keys not in ("auto", "layer", "blob"):
        raise ValueError(f"keys must be 'auto', 'layer' or 'blob', got {keys!r}")
    conversion = as_record(conversion)
    records = conversion.layers
    if keys in ("auto", "layer"):
        rec = next((r for r in records if r.name == key), None)
        if rec is not None:
            if rec.status in ("dropped", "failed", "skipped") or not rec.tops:
                return None, rec, f"layer '{key}' is {rec.status}" + \
                    (f" ({rec.note})" if rec.note else "") + ": it has no output to compare"
            if len(rec.tops) != 1:
                return None, rec, (f"layer '{key}' has {len(rec.tops)} tops; key the reference by "
                                   "top name")
            if rec.outputs[0] is None:
                return None, rec, f"layer '{key}' is {rec.status}" + \
                    (f" ({rec.note})" if rec.note else "") + ": no separate output to compare"
            return rec.outputs[0], rec, None
        if keys == "layer":
            return None, None, f"no layer named '{key}'"
    # the last version of a blob
    for rec in reversed(records):
        if key in rec.tops:
            out = rec.outputs[rec.tops.index(key)]
            if out is None:
                return None, rec, f"blob '{key}' (last written by '{rec.name}', {rec.status}) " \
                                  "has no output in the converted net"
            return out, rec, None
    if keys == "auto":
        internals = conversion.symbol.get_internals().list_outputs()
        if key in internals:
            return key, None, None
    return None, None, f"no layer or blob named '{key}'"


def verify(conversion, input_array, reference, rtol=1e-4, atol=1e-5, keys="auto", ctx=None):
    """Compare the converted net's outputs with a reference implementation's.

    Args:
        conversion: A converted model (:func:`deepkit.caffe.convert`) or its
            :class:`~deepkit.caffe.records.CaffeConversion`.
        input_array: The input batch (array, or ``{input name: array}``);
            ``None`` takes it from the reference's keys that name net inputs.
        reference: ``{layer or blob name: array}`` (keys naming net inputs are
            the input), or one array for the net's (single) output.
        rtol, atol: Pass when ``max|diff| <= rtol * max|ref| + atol``.
        keys: How to read reference keys: ``'auto'`` (see the module
            docs), ``'layer'`` or ``'blob'``.
        ctx: Device.

    Returns:
        :class:`VerifyReport` (``.passed``, ``.rows``, ``.matched`` says how
        the keys were read; ``str(report)`` is the table; ``raise_if_failed()``).

    Raises:
        DeepkitError: No input was given, in the arguments or the reference.
    """
    conversion = as_record(conversion)
    if not isinstance(reference, dict):
        outs = conversion.outputs
        if len(outs) != 1:
            raise DeepkitError(f"the reference is one array but the net has {len(outs)} outputs "
                               f"({', '.join(b for b, _ in outs)}); pass a dict")
        reference = {outs[0][0]: reference}
        keys = "blob" if keys == "auto" else keys
    reference = dict(reference)
    names = [n for n, _ in conversion.inputs]
    given = {k: reference.pop(k) for k in list(reference) if k in names}
    notes = []
    if input_array is None:
        if set(given) != set(names):
            raise DeepkitError(f"verify: no input array: pass one, or put it in the reference "
                               f"under the input name(s) {names}")
        input_array = given if len(names) > 1 else given[names[0]]
        notes.append(f"input {', '.join(repr(n) for n in given)} taken from the reference")
    elif given:
        notes.append(f"reference key(s) {', '.join(repr(n) for n in given)} name net inputs: "
                     "not compared")
    if keys != "auto":
        report = _compare(conversion, input_array, reference, rtol, atol, keys, ctx)
        how = f"read as {keys} names"
    else:
        report, how = _compare_auto(conversion, input_array, reference, rtol, atol, ctx)
    matched = sum(1 for r in report.rows if r.output is not None)
    report.matched = f"reference keys {how}: {matched}/{len(report.rows)} matched" + \
        "".join(f"; {n}" for n in notes)
    return report


def _compare_auto(conversion, input_array, reference, rtol, atol, ctx):
    """The report under the reading of the keys that fits them (see the module docs)."""
    layer_names = {rec.name for rec in conversion.layers}
    blob_names = {t for rec in conversion.layers for t in rec.tops}
    keys = set(reference)
    blob_only = keys & blob_names - layer_names
    layer_only = keys & layer_names - blob_names
    if blob_only and not layer_only:
        return (_compare(conversion, input_array, reference, rtol, atol, "blob", ctx),
                "read as blob names (Caffe's net.blobs)")
    if layer_only and not blob_only:
        return (_compare(conversion, input_array, reference, rtol, atol, "layer", ctx),
                "read as layer names (OpenCV's forward(names))")
    if (blob_only and layer_only) or not keys & (layer_names | blob_names):
        return (_compare(conversion, input_array, reference, rtol, atol, "auto", ctx),
                "read as layer names, else blob names, else engine output names")
    by_layer = _compare(conversion, input_array, reference, rtol, atol, "layer", ctx)
    if by_layer.passed or not keys & blob_names:
        return by_layer, "read as layer names (OpenCV's forward(names))"
    by_blob = _compare(conversion, input_array, reference, rtol, atol, "blob", ctx)
    if len(by_blob.rows) - len(by_blob.failed) > len(by_layer.rows) - len(by_layer.failed):
        return by_blob, "read as blob names (Caffe's net.blobs; they match more keys than " \
                        "layer names)"
    return by_layer, "read as layer names (OpenCV's forward(names))"


def _compare(conversion, input_array, reference, rtol, atol, keys, ctx):
    rows, wanted = [], []
    names = {rec.name for rec in conversion.layers} | {t for rec in conversion.layers
                                                       for t in rec.tops}
    for key, ref in reference.items():
        out, rec, note = resolve_output(conversion, key, keys if key in names else "auto")
        row = VerifyRow(key, rec.name if rec is not None else None, out)
        row.ref_shape = tuple(np.shape(ref))
        if out is None:
            row.note = note
        else:
            wanted.append(out)
        rows.append(row)
    values = {}
    if wanted:
        unique = list(dict.fromkeys(wanted))
        values = run(conversion, input_array, outputs=unique, ctx=ctx)
        values = dict(zip(unique, values.values()))
    for row, ref in zip(rows, reference.values()):
        if row.output is None:
            continue
        got = values[row.output]
        ref = np.asarray(ref, dtype=np.float64)
        row.shape = tuple(got.shape)
        if got.shape != ref.shape:
            if got.size != ref.size:
                row.note = f"shape {got.shape} differs from the reference {ref.shape}"
                continue
            row.note = f"reference shape {ref.shape} reshaped"
            ref = ref.reshape(got.shape)
        diff = np.abs(got.astype(np.float64) - ref)
        finite = np.isfinite(ref) & np.isfinite(got)
        g64 = got.astype(np.float64)
        same_nonfinite = (~np.isfinite(ref)) & ((g64 == ref) | (np.isnan(g64) & np.isnan(ref)))
        bad = ~(finite | same_nonfinite)
        if np.any(bad):
            row.note = "non-finite values differ"
        diff = np.where(same_nonfinite, 0.0, np.where(bad, np.inf, diff))
        row.max_abs = float(diff.max()) if diff.size else 0.0
        refabs = np.abs(np.where(np.isfinite(ref), ref, 0.0))
        row.ref_max = float(refabs.max()) if ref.size else 0.0
        row.max_rel = row.max_abs / row.ref_max if row.ref_max > 0 else \
            (0.0 if row.max_abs == 0 else float("inf"))
        row.tolerance = rtol * row.ref_max + atol
        row.passed = row.note != "non-finite values differ" and row.max_abs <= row.tolerance
    return VerifyReport(rows, rtol, atol)
