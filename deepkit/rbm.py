"""Restricted Boltzmann machines and deep belief nets.

:class:`RBM` learns with contrastive divergence (CD-k) or persistent CD
(PCD), with momentum (optionally raised after the first epochs, as in
Hinton's recipe), weight decay and a sparsity target; Bernoulli or
Gaussian (unit-variance) visible units, Bernoulli or noisy rectified (NReLU)
hidden units. Each CD update is one engine op (an operator written in Python
over the device's array module), so it runs on a GPU through the same code;
``fit`` runs the same loop, progress bar, History and callbacks as
``Model.fit``.

:class:`DBN` stacks RBMs, trains them greedily layer by layer, and turns into
an ordinary ``Sequential`` of sigmoid ``Dense`` layers (with optional dropout)
for fine-tuning::

    dbn = DBN([500, 500, 2000], final_momentum=0.9)
    dbn.fit(x_train, epochs=50)
    model = dbn.to_model(num_classes=10, dropout=0.2)
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=20)

RBMs and DBNs are saved in deepkit's HDF5 model layout: ``format`` and
``model_config`` attributes, weights under ``weights/<layer>/<param>`` with
checksums, written atomically.
"""
import json

import h5py
import numpy as np

from deepkit_engine import nd
from deepkit_engine import random as dk_random
from deepkit_engine.context import Context, current_context
from deepkit_engine.custom import define_op
from deepkit_engine.fileio import atomic_path
from deepkit_engine.hdf5_reading import SafeFile, write_dataset
from deepkit_engine.ops.random_ops import standard_normal, uniform01

from . import backend
from .callbacks import CallbackList, History, ProgbarLogger
from .layers import Dense, Dropout
from .models import Sequential
from .trainer.loop import Logs, LoopState, run_fit
from .utils import image_grid

__all__ = ["RBM", "DBN", "load_rbm", "load_dbn", "contrastive_divergence", "visible_draws"]

VISIBLE_TYPES = ("bernoulli", "gaussian")
HIDDEN_TYPES = ("bernoulli", "relu")
#: About how many rows one engine op of ``RBM.fit`` takes (in several updates).
UPDATE_ROWS_PER_OP = 1000
_STATE = ("weight", "visible_bias", "hidden_bias", "weight_velocity", "visible_velocity",
          "hidden_velocity", "chain")


# -- the CD update, as one engine op -----------------------------------------------------

def _sigmoid(xp, x):
    """``1 / (1 + exp(-x))`` in place, without overflow warnings."""
    xp.clip(x, -80, 80, out=x)
    xp.negative(x, out=x)
    xp.exp(x, out=x)
    x += 1
    xp.reciprocal(x, out=x)
    return x


def _hidden_mean(xp, pre, hidden):
    if hidden == "bernoulli":
        return _sigmoid(xp, pre)
    return xp.maximum(pre, 0, out=pre)


def _hidden_sample(xp, pre, mean, noise, hidden):
    """A hidden state: Bernoulli draws from ``mean``, or NReLU's ``max(0, x + N(0, sigmoid(x)))``."""
    if hidden == "bernoulli":
        return (noise < mean).astype(mean.dtype)
    spread = _sigmoid(xp, pre.copy())
    xp.sqrt(spread, out=spread)
    spread *= noise
    spread += pre
    return xp.maximum(spread, 0, out=spread)


def _visible_mean(xp, h, weight, visible_bias, visible):
    pre = h @ weight.T
    pre += visible_bias
    return _sigmoid(xp, pre) if visible == "bernoulli" else pre


def _visible_sample(xp, mean, noise, visible):
    if visible == "bernoulli":
        return (noise < mean).astype(mean.dtype)
    return mean + noise


def _hidden_pre(data, weight, hidden_bias):
    pre = data @ weight
    pre += hidden_bias
    return pre


def _draw(rng, kind, shape, dtype):
    """Noise for sampling: uniform for Bernoulli units, standard normal for the others."""
    if kind == "bernoulli":
        return uniform01(rng, shape, dtype)
    return standard_normal(rng, shape, dtype)


def _cd_forward(xp, data, hidden_noise, visible_noise, weight, visible_bias, hidden_bias,
                weight_velocity, visible_velocity, hidden_velocity, chain, k=1,
                persistent=False, learning_rate=0.1, momentum=0.5, weight_decay=0.0,
                sparsity_target=0.05, sparsity_cost=0.0, visible="bernoulli",
                hidden="bernoulli", draw_noise=False, batch_size=0, rng=None):
    """CD-k/PCD-k updates of the parameters (aux states, in place), one per ``batch_size``
    rows of ``data`` (all rows when 0); returns the summed per-update errors."""
    size = batch_size or data.shape[0]
    state = (weight, visible_bias, hidden_bias, weight_velocity, visible_velocity,
             hidden_velocity, chain)
    hyper = (learning_rate, momentum, weight_decay, sparsity_target, sparsity_cost, visible,
             hidden)
    total = 0.0
    for start in range(0, data.shape[0], size):
        rows = data[start:start + size]
        n = rows.shape[0]
        # a last, smaller batch cannot continue the persistent chains: it takes a CD step
        chained = persistent and n == chain.shape[0]
        if draw_noise:
            hidden_noise = _draw(rng, hidden, (k, n, weight.shape[1]), data.dtype)
            visible_noise = _draw(rng, visible, (visible_draws(k, chained), n, weight.shape[0]),
                                  data.dtype)
        total += _cd_batch(xp, rows, hidden_noise, visible_noise, *state, k, chained, *hyper)
    return xp.asarray(total, dtype=data.dtype).reshape(1)


def _cd_batch(xp, data, hidden_noise, visible_noise, weight, visible_bias, hidden_bias,
              weight_velocity, visible_velocity, hidden_velocity, chain, k, persistent,
              learning_rate, momentum, weight_decay, sparsity_target, sparsity_cost, visible,
              hidden):
    """One CD-k/PCD-k update from one batch; returns its mean squared reconstruction error."""
    n = data.shape[0]
    pre0 = _hidden_pre(data, weight, hidden_bias)
    h0_mean = _hidden_mean(xp, pre0.copy() if hidden == "relu" else pre0, hidden)
    h = _hidden_sample(xp, pre0, h0_mean, hidden_noise[0], hidden)
    reconstruction = _visible_mean(xp, h, weight, visible_bias, visible)
    error = reconstruction - data
    error *= error
    if persistent:
        pre = _hidden_pre(chain, weight, hidden_bias)
        mean = _hidden_mean(xp, pre.copy() if hidden == "relu" else pre, hidden)
        h = _hidden_sample(xp, pre, mean, hidden_noise[0], hidden)
    v_mean = None
    for step in range(k):
        v_mean = reconstruction if step == 0 and not persistent else \
            _visible_mean(xp, h, weight, visible_bias, visible)
        if step < k - 1:
            v = _visible_sample(xp, v_mean, visible_noise[step], visible)
            pre = _hidden_pre(v, weight, hidden_bias)
            mean = _hidden_mean(xp, pre.copy() if hidden == "relu" else pre, hidden)
            h = _hidden_sample(xp, pre, mean, hidden_noise[step + 1], hidden)
    if persistent:
        chain[...] = _visible_sample(xp, v_mean, visible_noise[-1], visible)
    h_neg = _hidden_mean(xp, _hidden_pre(v_mean, weight, hidden_bias), hidden)

    grad_w = data.T @ h0_mean
    grad_w -= v_mean.T @ h_neg
    grad_w /= n
    grad_v = (data.sum(axis=0) - v_mean.sum(axis=0)) / n
    grad_h = (h0_mean.sum(axis=0) - h_neg.sum(axis=0)) / n
    if sparsity_cost:
        push = sparsity_cost * (sparsity_target - h0_mean.mean(axis=0))
        grad_h += push
        grad_w += xp.outer(data.mean(axis=0), push)
    if weight_decay:
        grad_w -= weight_decay * weight
    for param, velocity, grad in ((weight, weight_velocity, grad_w),
                                  (visible_bias, visible_velocity, grad_v),
                                  (hidden_bias, hidden_velocity, grad_h)):
        velocity *= momentum
        grad *= learning_rate
        velocity += grad
        param += velocity
    return error.sum() / n


def visible_draws(k, persistent):
    """Rows of visible noise a CD-k update uses: one per inner Gibbs step, one for the chain."""
    return k - 1 + int(bool(persistent))


def _cd_shape(in_shapes, **params):
    data, hidden_noise, visible_noise, weight = in_shapes[:4]
    if params["draw_noise"]:
        return [(1,)]
    if params["batch_size"] and params["batch_size"] < data[0]:
        raise ValueError(f"rbm_cd_update: several updates per call (batch_size="
                         f"{params['batch_size']} for {data[0]} rows) need draw_noise=True")
    expected = {"hidden_noise": (params["k"], data[0], weight[1]),
                "visible_noise": (visible_draws(params["k"], params["persistent"]), data[0],
                                  weight[0])}
    for name, shape in (("hidden_noise", hidden_noise), ("visible_noise", visible_noise)):
        if tuple(shape) != expected[name]:
            raise ValueError(f"rbm_cd_update: {name} has shape {tuple(shape)}, expected "
                             f"{expected[name]} (k, batch, units)")
    return [(1,)]


CD_UPDATE = define_op(
    "rbm_cd_update", _cd_forward, inputs=("data", "hidden_noise", "visible_noise"),
    aux=_STATE, outputs=("reconstruction_error",),
    params={"k": 1, "persistent": False, "learning_rate": 0.1, "momentum": 0.5,
            "weight_decay": 0.0, "sparsity_target": 0.05, "sparsity_cost": 0.0,
            "visible": "bernoulli", "hidden": "bernoulli", "draw_noise": False,
            "batch_size": 0},
    infer_shape=_cd_shape, register=False,
    doc="One contrastive-divergence update of an RBM's parameters (in place); returns the "
        "mean squared reconstruction error of the batch.")


def _gibbs_forward(xp, start, weight, visible_bias, hidden_bias, steps=1, visible="bernoulli",
                   hidden="bernoulli", rng=None):
    """``steps`` of block Gibbs sampling from ``start``; returns the last visible means."""
    v, v_mean = start, start
    for _ in range(steps):
        pre = _hidden_pre(v, weight, hidden_bias)
        mean = _hidden_mean(xp, pre.copy() if hidden == "relu" else pre, hidden)
        h = _hidden_sample(xp, pre, mean, _draw(rng, hidden, mean.shape, mean.dtype), hidden)
        v_mean = _visible_mean(xp, h, weight, visible_bias, visible)
        v = _visible_sample(xp, v_mean, _draw(rng, visible, v_mean.shape, v_mean.dtype), visible)
    return v_mean


GIBBS = define_op(
    "rbm_gibbs", _gibbs_forward, inputs=("data", "weight", "visible_bias", "hidden_bias"),
    params={"steps": 1, "visible": "bernoulli", "hidden": "bernoulli"}, register=False,
    doc="Block Gibbs sampling in an RBM: the visible means after ``steps`` up-down steps.")


def contrastive_divergence(data, hidden_noise, visible_noise, state, **params):
    """Run CD updates as one engine op: ``state`` arrays change in place.

    Args:
        data: ``(batch, visible)`` NDArray.
        hidden_noise: ``(k, batch, hidden)``: uniform draws for Bernoulli
            hidden units, standard normal ones for ReLU units.
        visible_noise: ``(k - 1 + persistent, batch, visible)``: the same for
            the visible units (the last row feeds the persistent chain).
        state: ``{name: NDArray}`` for ``weight`` (visible, hidden),
            ``visible_bias``, ``hidden_bias``, their velocities
            (``weight_velocity``, ``visible_velocity``, ``hidden_velocity``)
            and ``chain`` (the persistent chain, ``(batch, visible)``).
        **params: ``k``, ``persistent``, ``learning_rate``, ``momentum``,
            ``weight_decay``, ``sparsity_target``, ``sparsity_cost``,
            ``visible``, ``hidden``; ``draw_noise=True`` draws the noise inside
            the op from the device's generator (the noise inputs are then
            ignored: pass empty arrays), which saves two engine ops per update;
            with it, ``batch_size`` splits ``data`` into several updates made
            in order by one op.

    Returns:
        A ``(1,)`` NDArray: the mean squared reconstruction error of the
        batch (summed over the updates when there are several).
    """
    inputs = [data, hidden_noise, visible_noise] + [state[n] for n in _STATE]
    return nd.invoke(CD_UPDATE, inputs, CD_UPDATE.parse_attrs(params))


# -- the model ------------------------------------------------------------------------------

class _ArrayBatches:
    """Batches of rows of a host array as NDArrays on one device, reshuffled each epoch."""

    def __init__(self, x, batch_size, shuffle, ctx):
        self.x, self.batch_size, self.shuffle, self.ctx = x, batch_size, shuffle, ctx

    @property
    def num_batches(self):
        return -(-len(self.x) // self.batch_size)

    def batches(self):
        order = backend.rng().permutation(len(self.x)) if self.shuffle else None
        for start in range(0, len(self.x), self.batch_size):
            rows = self.x[order[start:start + self.batch_size]] if order is not None else \
                self.x[start:start + self.batch_size]
            yield len(rows), (nd.array(rows, ctx=self.ctx), None, None)


def _choice(name, value, choices, who):
    if value not in choices:
        raise ValueError(f"{who}: {name}={value!r} must be one of {', '.join(choices)}")
    return value


class RBM:
    """A restricted Boltzmann machine.

    Args:
        n_hidden: Number of hidden units.
        visible: ``'bernoulli'`` (data in [0, 1]) or ``'gaussian'``
            (unit-variance units: standardize the data first).
        hidden: ``'bernoulli'`` or ``'relu'`` (noisy rectified units).
        learning_rate: Step size of the CD updates.
        momentum: Momentum of the updates (of the first ``momentum_epochs``
            epochs of each ``fit`` when ``final_momentum`` is given).
        final_momentum: Momentum after the first ``momentum_epochs`` epochs of
            each ``fit`` (None keeps ``momentum`` throughout). Hinton's recipe
            (``rbm.m``, the practical guide) starts at 0.5, while the weights
            are still far from their final values and the updates large, and
            switches to 0.9 after 5 epochs.
        momentum_epochs: Epochs of each ``fit`` at ``momentum`` before
            ``final_momentum`` takes over.
        weight_decay: L2 penalty on the weights.
        sparsity_target: Desired mean activation of the hidden units.
        sparsity_cost: Strength of the sparsity penalty (0 turns it off).
        name: Layer name used in files and errors.
        ctx: Device (default: the current context).
    """

    def __init__(self, n_hidden, visible="bernoulli", hidden="bernoulli", learning_rate=0.1,
                 momentum=0.5, weight_decay=0.0002, sparsity_target=0.05, sparsity_cost=0.0,
                 name="rbm", ctx=None, final_momentum=None, momentum_epochs=5):
        if int(n_hidden) != n_hidden or n_hidden < 1:
            raise ValueError(f"RBM '{name}': n_hidden must be a positive int, got {n_hidden!r}")
        self.n_hidden = int(n_hidden)
        self.visible = _choice("visible", visible, VISIBLE_TYPES, f"RBM '{name}'")
        self.hidden = _choice("hidden", hidden, HIDDEN_TYPES, f"RBM '{name}'")
        self.learning_rate, self.momentum = float(learning_rate), float(momentum)
        self.final_momentum = None if final_momentum is None else float(final_momentum)
        for what, value in (("momentum", self.momentum), ("final_momentum", self.final_momentum)):
            if value is not None and not 0 <= value < 1:
                raise ValueError(f"RBM '{name}': {what} must be in [0, 1), got {value!r}")
        if int(momentum_epochs) != momentum_epochs or momentum_epochs < 0:
            raise ValueError(f"RBM '{name}': momentum_epochs must be an int >= 0, got "
                             f"{momentum_epochs!r}")
        self.momentum_epochs = int(momentum_epochs)
        self.weight_decay = float(weight_decay)
        self.sparsity_target, self.sparsity_cost = float(sparsity_target), float(sparsity_cost)
        self.name = name
        self.ctx = Context(ctx) if ctx is not None else current_context()
        self.n_visible = None
        self.state = None
        self.history = None
        self.stop_training = False
        self._run = None

    # -- parameters --------------------------------------------------------------------
    @property
    def built(self):
        return self.state is not None

    def build(self, n_visible, data=None):
        """Create the parameters: small random weights, visible biases from the data."""
        self.n_visible = int(n_visible)
        rng = backend.rng()
        weight = rng.normal(0.0, 0.01, (self.n_visible, self.n_hidden)).astype(np.float32)
        visible_bias = np.zeros(self.n_visible, np.float32)
        if data is not None and self.visible == "bernoulli":
            p = np.clip(data.mean(axis=0), 1e-3, 1 - 1e-3)
            visible_bias = np.log(p / (1 - p)).astype(np.float32)
        self._set_state({"weight": weight, "visible_bias": visible_bias,
                         "hidden_bias": np.zeros(self.n_hidden, np.float32)})

    def _set_state(self, values):
        shapes = {"weight": (self.n_visible, self.n_hidden), "visible_bias": (self.n_visible,),
                  "hidden_bias": (self.n_hidden,)}
        velocities = {"weight": "weight_velocity", "visible_bias": "visible_velocity",
                      "hidden_bias": "hidden_velocity"}
        state = {"chain": None}
        for name, shape in shapes.items():
            value = np.asarray(values[name], np.float32)
            if value.shape != shape:
                raise ValueError(f"RBM '{self.name}': {name} has shape {value.shape}, expected "
                                 f"{shape}")
            state[name] = nd.array(value, ctx=self.ctx)
            state[velocities[name]] = nd.zeros(shape, ctx=self.ctx)
        self.state = state

    def get_weights(self):
        """``[weight (visible, hidden), visible_bias, hidden_bias]`` as numpy arrays."""
        self._require_built("get_weights")
        return [self.state[n].asnumpy() for n in ("weight", "visible_bias", "hidden_bias")]

    def set_weights(self, weights):
        """Set ``[weight, visible_bias, hidden_bias]``; velocities restart at zero."""
        weight = np.asarray(weights[0])
        self.n_visible = weight.shape[0]
        self._set_state(dict(zip(("weight", "visible_bias", "hidden_bias"), weights)))

    def _require_built(self, what):
        if not self.built:
            raise ValueError(f"RBM '{self.name}'.{what}: the RBM has no weights yet; call fit() "
                             "(or load one) first")

    # -- data checks --------------------------------------------------------------------
    def _check_data(self, x, what):
        x = np.asarray(x, dtype=np.float32)
        x = x.reshape(len(x), -1)
        if self.built and x.shape[1] != self.n_visible:
            raise ValueError(f"RBM '{self.name}'.{what}: data has {x.shape[1]} features per "
                             f"sample, the RBM has {self.n_visible} visible units")
        if not np.all(np.isfinite(x)):
            raise ValueError(f"RBM '{self.name}'.{what}: data contains NaN or infinity")
        if self.visible == "bernoulli" and x.size and (x.min() < 0 or x.max() > 1):
            bad = int(np.argmax((x < 0).any(axis=1) | (x > 1).any(axis=1)))
            raise ValueError(f"RBM '{self.name}'.{what}: Bernoulli visible units need data in "
                             f"[0, 1], got values from {x.min():g} to {x.max():g} (first bad "
                             f"sample: {bad}); scale it (x / 255 for images) or use "
                             "visible='gaussian'")
        return x

    # -- training -------------------------------------------------------------------------
    def fit(self, x, epochs=1, batch_size=100, k=1, persistent=False, shuffle=True, verbose=1,
            callbacks=None):
        """Train with CD-k (or PCD-k with ``persistent=True``).

        Args:
            x: ``(samples, features...)`` data (flattened per sample).
            epochs: Passes over the data.
            batch_size: Samples per update.
            k: Gibbs steps per update.
            persistent: Keep the negative chain across batches and epochs (PCD).
            shuffle: Reshuffle each epoch.
            verbose: 0 silent, 1 progress bar.
            callbacks: deepkit callbacks (EarlyStopping, CSVLogger, ...).

        Returns:
            The :class:`~deepkit.callbacks.History`: per epoch
            ``reconstruction_error`` (mean over the epoch), ``free_energy`` and
            ``pseudo_likelihood`` (on the epoch's last batch; computed only
            there, so the progress bar shows them at the end of each epoch).
        """
        if int(k) != k or k < 1:
            raise ValueError(f"RBM '{self.name}'.fit: k must be a positive int, got {k!r}")
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"RBM '{self.name}'.fit: batch_size must be a positive int, got "
                             f"{batch_size!r}")
        x = self._check_data(x, "fit")
        if len(x) == 0:
            raise ValueError(f"RBM '{self.name}'.fit: the data set is empty")
        if not self.built:
            self.build(x.shape[1], x)
        batch_size = min(int(batch_size), len(x))
        if persistent:
            chain = self.state.get("chain")
            if chain is None or chain.shape[0] != batch_size:
                rows = backend.rng().choice(len(x), batch_size, replace=len(x) < batch_size)
                self.state["chain"] = nd.array(x[rows], ctx=self.ctx)
        # one engine op makes several updates, so that per-op costs stay small next to them
        updates_per_op = max(1, UPDATE_ROWS_PER_OP // batch_size)
        source = _ArrayBatches(x, batch_size * updates_per_op, shuffle, self.ctx)
        state = LoopState("fit", epochs=int(epochs), steps=source.num_batches)
        self._run = {"k": int(k), "persistent": bool(persistent), "steps": source.num_batches,
                     "batch_size": batch_size, "loop": state}
        self._no_noise = nd.zeros((0,), ctx=self.ctx)
        history = History()
        cbs = list(callbacks or []) + ([ProgbarLogger(verbose)] if verbose else []) + [history]
        params = {"epochs": int(epochs), "steps": source.num_batches, "batch_size": batch_size,
                  "verbose": verbose}
        self.history = history
        run_fit(self, source, state, CallbackList(cbs, self, params, state))
        return history

    def reset_metrics(self):
        self._error_sum = nd.zeros((1,), ctx=self.ctx)
        self._error_batches = 0
        self._steps_done = 0

    def get_metrics_result(self):
        return {"reconstruction_error": self._mean_error()}

    def _mean_error(self):
        return float(self._error_sum.asnumpy()[0]) / max(self._error_batches, 1)

    def current_momentum(self, epoch):
        """The momentum of the updates in ``epoch`` (0-based) of a ``fit``."""
        if self.final_momentum is not None and epoch >= self.momentum_epochs:
            return self.final_momentum
        return self.momentum

    def _noise(self, kind, shape):
        if kind == "bernoulli":
            return dk_random.uniform(0.0, 1.0, shape=shape, ctx=self.ctx)
        return dk_random.normal(0.0, 1.0, shape=shape, ctx=self.ctx)

    def train_step(self, data):
        """The CD updates of one step's rows ``(x, None, None)``; returns lazy logs."""
        x = data[0]
        run = self._run
        persistent = run["persistent"]
        state = self.state if persistent else dict(self.state, chain=self._no_noise)
        error = contrastive_divergence(
            x, self._no_noise, self._no_noise, state, draw_noise=True,
            batch_size=run["batch_size"], k=run["k"],
            persistent=persistent, learning_rate=self.learning_rate,
            momentum=self.current_momentum(run["loop"].epoch),
            weight_decay=self.weight_decay, sparsity_target=self.sparsity_target,
            sparsity_cost=self.sparsity_cost, visible=self.visible, hidden=self.hidden)
        self._error_sum += error
        self._error_batches += -(-x.shape[0] // run["batch_size"])
        self._steps_done += 1
        readers = {"reconstruction_error": self._mean_error}
        if self._steps_done == run["steps"]:  # the epoch's last batch: its logs close it
            readers["free_energy"] = lambda: float(self._free_energy(x).mean().asnumpy()[0])
            readers["pseudo_likelihood"] = lambda: self._pseudo_likelihood(x)
        return Logs(readers)

    # -- quantities -------------------------------------------------------------------------
    def _hidden_input(self, v):
        return nd.broadcast_add(nd.dot(v, self.state["weight"]),
                                self.state["hidden_bias"].reshape((1, -1)))

    def _free_energy(self, v):
        """Per-sample free energy as an NDArray (the Bernoulli-hidden form for ReLU units)."""
        hidden_term = nd.Activation(self._hidden_input(v), act_type="softrelu").sum(axis=1)
        bias = self.state["visible_bias"].reshape((1, -1))
        if self.visible == "bernoulli":
            visible_term = -nd.broadcast_mul(v, bias).sum(axis=1)
        else:
            visible_term = 0.5 * nd.square(nd.broadcast_sub(v, bias)).sum(axis=1)
        return visible_term - hidden_term

    def _pseudo_likelihood(self, v):
        if self.visible != "bernoulli":
            return float("nan")
        n, features = v.shape
        flip = np.zeros((n, features), np.float32)
        flip[np.arange(n), backend.rng().integers(0, features, n)] = 1
        flip = nd.array(flip, ctx=self.ctx)
        flipped = v + flip * (1 - 2 * v)
        gap = self._free_energy(flipped) - self._free_energy(v)
        log_sigmoid = -nd.Activation(-gap, act_type="softrelu")
        return float(features * log_sigmoid.mean().asnumpy()[0])

    def free_energy(self, x):
        """Free energy of each sample (numpy, ``(samples,)``)."""
        self._require_built("free_energy")
        x = self._check_data(x, "free_energy")
        return self._free_energy(nd.array(x, ctx=self.ctx)).asnumpy()

    def pseudo_likelihood(self, x):
        """Stochastic pseudo-log-likelihood per visible unit times their count (Bernoulli)."""
        self._require_built("pseudo_likelihood")
        return self._pseudo_likelihood(nd.array(self._check_data(x, "pseudo_likelihood"),
                                                ctx=self.ctx))

    def _hidden_mean_nd(self, v):
        pre = self._hidden_input(v)
        return nd.sigmoid(pre) if self.hidden == "bernoulli" else nd.relu(pre)

    def _visible_mean_nd(self, h):
        pre = nd.broadcast_add(nd.dot(h, self.state["weight"], transpose_b=True),
                               self.state["visible_bias"].reshape((1, -1)))
        return nd.sigmoid(pre) if self.visible == "bernoulli" else pre

    def transform(self, x, batch_size=1000):
        """Hidden unit means for ``x`` (numpy, ``(samples, n_hidden)``)."""
        self._require_built("transform")
        x = self._check_data(x, "transform")
        return np.concatenate([self._hidden_mean_nd(nd.array(x[i:i + batch_size], ctx=self.ctx))
                               .asnumpy() for i in range(0, len(x), batch_size)]
                              or [np.zeros((0, self.n_hidden), np.float32)])

    def reconstruct(self, x):
        """Visible means after one up-down pass (numpy, like ``x`` flattened)."""
        self._require_built("reconstruct")
        v = nd.array(self._check_data(x, "reconstruct"), ctx=self.ctx)
        return self._visible_mean_nd(self._hidden_mean_nd(v)).asnumpy()

    def reconstruction_error(self, x):
        """Mean squared reconstruction error per sample (summed over features)."""
        x = self._check_data(x, "reconstruction_error")
        return float(((self.reconstruct(x) - x) ** 2).sum(axis=1).mean())

    def sample(self, n, gibbs_steps=1000, init=None):
        """Visible means after ``gibbs_steps`` of block Gibbs sampling from ``n`` chains.

        Args:
            n: Number of chains.
            gibbs_steps: Up-down steps.
            init: Starting visible states (default: random binary / normal).
        """
        self._require_built("sample")
        if init is None:
            v = self._noise(self.visible, (n, self.n_visible))
            if self.visible == "bernoulli":
                v = v < 0.5
        else:
            v = nd.array(self._check_data(init, "sample")[:n], ctx=self.ctx)
        params = GIBBS.parse_attrs({"steps": int(gibbs_steps), "visible": self.visible,
                                    "hidden": self.hidden})
        mean = nd.invoke(GIBBS, [v, self.state["weight"], self.state["visible_bias"],
                                 self.state["hidden_bias"]], params)
        return mean.asnumpy()

    # -- pictures ---------------------------------------------------------------------------
    def save_filters(self, path, image_shape, count=100, cols=10):
        """Draw the first ``count`` filters (weight columns) as an image grid PNG."""
        self._require_built("save_filters")
        filters = self.state["weight"].asnumpy().T[:count]
        return image_grid(filters.reshape((-1,) + tuple(image_shape)), path, cols=cols,
                          normalize="each")

    def save_samples(self, path, image_shape, n=100, gibbs_steps=1000, cols=10):
        """Draw ``n`` samples after ``gibbs_steps`` Gibbs steps as an image grid PNG."""
        samples = self.sample(n, gibbs_steps)
        return image_grid(samples.reshape((-1,) + tuple(image_shape)), path, cols=cols)

    # -- files ------------------------------------------------------------------------------
    def get_config(self):
        return {"n_hidden": self.n_hidden, "visible": self.visible, "hidden": self.hidden,
                "learning_rate": self.learning_rate, "momentum": self.momentum,
                "weight_decay": self.weight_decay, "sparsity_target": self.sparsity_target,
                "sparsity_cost": self.sparsity_cost, "name": self.name,
                "final_momentum": self.final_momentum, "momentum_epochs": self.momentum_epochs}

    def save(self, path):
        """Write the RBM (config and weights) to an HDF5 file, atomically."""
        self._require_built("save")
        _save(path, "deepkit.rbm", {"class_name": "RBM", "config": self.get_config()}, [self])


class DBN:
    """A deep belief net: RBMs trained greedily, one layer on the hidden means of the last.

    Args:
        layers: Hidden layer sizes, bottom first (``[500, 500, 2000]``).
        visible: Visible type of the first RBM (higher ones see Bernoulli
            means, or Gaussian-like values for ReLU hidden units).
        hidden: Hidden unit type of every RBM.
        name: Used for the RBMs' names (``<name>_rbm<i>``) and the Dense layers.
        **rbm_kwargs: Passed to every :class:`RBM` (learning rate, momentum, ...).
    """

    def __init__(self, layers, visible="bernoulli", hidden="bernoulli", name="dbn",
                 **rbm_kwargs):
        layers = list(layers)
        if not layers:
            raise ValueError(f"DBN '{name}': layers must list at least one hidden layer size")
        self.name = name
        self.rbms = []
        for i, size in enumerate(layers):
            vis = visible if i == 0 else ("bernoulli" if hidden == "bernoulli" else "gaussian")
            self.rbms.append(RBM(size, visible=vis, hidden=hidden, name=f"{name}_rbm{i}",
                                 **rbm_kwargs))

    @property
    def layers(self):
        return [r.n_hidden for r in self.rbms]

    def fit(self, x, epochs=10, batch_size=100, k=1, persistent=False, verbose=1,
            callbacks=None):
        """Greedy layer-wise pre-training; returns one History per RBM."""
        histories = []
        data = np.asarray(x, np.float32).reshape(len(x), -1)
        for i, rbm in enumerate(self.rbms):
            if verbose:
                print(f"{self.name}: pre-training layer {i + 1}/{len(self.rbms)} "
                      f"({data.shape[1]} -> {rbm.n_hidden})")
            histories.append(rbm.fit(data, epochs=epochs, batch_size=batch_size, k=k,
                                     persistent=persistent, verbose=verbose,
                                     callbacks=callbacks))
            if i + 1 < len(self.rbms):
                data = rbm.transform(data)
        return histories

    def transform(self, x):
        """The top layer's hidden means, computed up the stack."""
        for rbm in self.rbms:
            x = rbm.transform(x)
        return x

    def to_model(self, num_classes=None, output_activation="softmax", dropout=0.0,
                 input_dropout=0.0):
        """A ``Sequential`` of ``Dense(sigmoid)`` layers initialised from the RBM weights.

        Each RBM's weights and hidden biases become a Dense layer's kernel and
        bias (its visible biases only matter to the generative model).

        Args:
            num_classes: Adds a ``Dense(num_classes, output_activation)`` layer
                on top (randomly initialised) when given.
            output_activation: The classifier's activation.
            dropout: Rate of a ``Dropout`` layer after each hidden layer
                (0: none). Fine-tuning a pre-trained DBN with dropout
                (Srivastava et al., 2014) keeps the large top layers from
                overfitting the labels; the weights need no rescaling since
                ``Dropout`` scales the kept units in training.
            input_dropout: Rate of a ``Dropout`` layer on the input (0: none).

        Returns:
            An uncompiled :class:`~deepkit.models.Sequential`.
        """
        for rbm in self.rbms:
            rbm._require_built("to_model")
        for what, rate in (("dropout", dropout), ("input_dropout", input_dropout)):
            if not 0 <= rate < 1:
                raise ValueError(f"DBN '{self.name}'.to_model: {what} must be in [0, 1), got "
                                 f"{rate!r}")
        if any(r.hidden != "bernoulli" for r in self.rbms):
            activation = "relu"
        else:
            activation = "sigmoid"
        first = {"input_shape": (self.rbms[0].n_visible,)}
        layers = []
        if input_dropout:
            layers.append(Dropout(input_dropout, name=f"{self.name}_input_dropout", **first))
            first = {}
        for i, r in enumerate(self.rbms):
            layers.append(Dense(r.n_hidden, activation=activation, name=f"{self.name}_dense{i}",
                                **(first if i == 0 else {})))
            if dropout:
                layers.append(Dropout(dropout, name=f"{self.name}_dropout{i}"))
        model = Sequential(layers)
        if num_classes is not None:
            model.add(Dense(int(num_classes), activation=output_activation,
                            name=f"{self.name}_classifier"))
        model.initialize_weights()
        for i, rbm in enumerate(self.rbms):
            weight, _, hidden_bias = rbm.get_weights()
            model.get_layer(f"{self.name}_dense{i}").set_weights([weight.T, hidden_bias])
        return model

    def get_config(self):
        first = self.rbms[0].get_config()
        extra = {k: v for k, v in first.items()
                 if k not in ("n_hidden", "visible", "hidden", "name")}
        return {"layers": self.layers, "visible": first["visible"],
                "hidden": first["hidden"], "name": self.name, **extra}

    def save(self, path):
        """Write the DBN (config and every RBM's weights) to an HDF5 file, atomically."""
        for rbm in self.rbms:
            rbm._require_built("save")
        _save(path, "deepkit.dbn", {"class_name": "DBN", "config": self.get_config()}, self.rbms)


# -- files ----------------------------------------------------------------------------------

_PARAMS = ("weight", "visible_bias", "hidden_bias")


def _save(path, fmt, config, rbms):
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["format"] = fmt
        f.attrs["version"] = 1
        f.attrs["model_config"] = json.dumps(config)
        weights = f.create_group("weights")
        for rbm in rbms:
            g = weights.create_group(rbm.name)
            g.attrs["param_names"] = json.dumps(list(_PARAMS))
            for name, value in zip(_PARAMS, rbm.get_weights()):
                write_dataset(g, name, value)


def _load(path, fmt, what):
    with SafeFile(path, what) as f:
        found = f.attr("format")
        if found != fmt:
            raise ValueError(f"{what}: {path} holds {found!r}, not an {fmt} file")
        config = f.json_attr("model_config")
        stored = {name: {p: f.read(f"weights/{name}/{p}") for p in _PARAMS}
                  for name in f.keys("weights")}
    return config, stored


def _restore(rbm, stored, path):
    if rbm.name not in stored:
        raise ValueError(f"{path}: no weights for '{rbm.name}'")
    values = stored[rbm.name]
    rbm.set_weights([values[p] for p in _PARAMS])


def load_rbm(path):
    """An :class:`RBM` saved with :meth:`RBM.save`."""
    config, stored = _load(path, "deepkit.rbm", "load_rbm")
    rbm = RBM(**config["config"])
    _restore(rbm, stored, path)
    return rbm


def load_dbn(path):
    """A :class:`DBN` saved with :meth:`DBN.save`."""
    config, stored = _load(path, "deepkit.dbn", "load_dbn")
    dbn = DBN(**config["config"])
    for rbm in dbn.rbms:
        _restore(rbm, stored, path)
    return dbn
