"""BackupAndRestore: back up the whole training state each epoch and resume exactly."""
import collections
import json
import os
import warnings

import h5py
import numpy as np

import deepkit_engine as dk
from deepkit_engine.base import DeepkitError
from deepkit_engine.fileio import atomic_path

from .. import backend, distributed
from .base import Callback

_RESERVED = ("__array__", "__tuple__", "__dict__")


def _encode(value, arrays, where):
    """JSON-ready data for ``value``; numpy arrays go to ``arrays`` by index."""
    if value is None or isinstance(value, (bool, str, int, float)):
        return value
    if hasattr(value, "asnumpy"):
        value = value.asnumpy()
    if isinstance(value, np.generic):
        arrays.append(np.asarray(value))
        return {"__array__": len(arrays) - 1, "scalar": True}
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biufc":
            raise TypeError(f"BackupAndRestore: cannot save the {value.dtype} array at {where}; "
                            "only numeric and boolean arrays can be saved")
        arrays.append(value)
        return {"__array__": len(arrays) - 1}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        if all(isinstance(k, str) and k not in _RESERVED for k in value):
            return {k: _encode(v, arrays, f"{where}.{k}") for k, v in value.items()}
        return {"__dict__": [[_encode(k, arrays, where), _encode(v, arrays, f"{where}[{k!r}]")]
                             for k, v in value.items()]}
    raise TypeError(f"BackupAndRestore: cannot save the {type(value).__name__} at {where}; a "
                    "state holds only numbers, strings, None, lists, tuples, dicts and numpy "
                    "arrays")


def _decode(value, arrays):
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    if not isinstance(value, dict):
        return value
    if "__array__" in value:
        array = arrays[value["__array__"]]
        return array[()] if value.get("scalar") else np.asarray(array)
    if "__tuple__" in value:
        return tuple(_decode(v, arrays) for v in value["__tuple__"])
    if "__dict__" in value:
        return {_hashable(_decode(k, arrays)): _decode(v, arrays) for k, v in value["__dict__"]}
    return {k: _decode(v, arrays) for k, v in value.items()}


def _hashable(key):
    return key.item() if isinstance(key, np.generic) else key


def _write_state(path, state):
    arrays = []
    text = json.dumps(_encode(state, arrays, "state"))
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = BackupAndRestore.FORMAT
            f.attrs["version"] = 1
            f.create_dataset("state", data=np.frombuffer(text.encode("utf-8"), np.uint8))
            group = f.create_group("arrays")
            for i, array in enumerate(arrays):
                group.create_dataset(str(i), data=array)


def _read_state(path):
    if not h5py.is_hdf5(path):
        raise DeepkitError(f"BackupAndRestore: {path} is not an HDF5 backup; delete it to start "
                           "afresh")
    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != BackupAndRestore.FORMAT:
            raise DeepkitError(f"BackupAndRestore: {path} is not a deepkit backup; delete it "
                               "or choose another backup_dir")
        text = bytes(f["state"][()]).decode("utf-8")
        arrays = {int(k): v[()] for k, v in f["arrays"].items()}
    return _decode(json.loads(text), arrays)


def _context_key(ctx):
    return f"{ctx.device_type}:{ctx.device_id}"


class BackupAndRestore(Callback):
    """Back up the whole training state each epoch; resume exactly after an interruption.

    At every epoch end it writes one HDF5 file (atomically) in ``backup_dir``
    holding the weights (and auxiliary states), the optimizer state and
    learning rate, the epoch, deepkit's random generator (shuffling,
    initializers), the engine's random generators (dropout) and every other
    callback's ``get_state()`` (EarlyStopping's best weights, History, the
    CSV file's length ...). When ``fit`` starts with a backup present, all of
    it is restored and training goes on at the next epoch, so a run that was
    interrupted and resumed ends bit-identical to one that was not, provided
    the model, data and ``compile``/``fit`` arguments are the same (build
    the model after the same ``deepkit.set_seed``). The History returned by
    the resumed ``fit`` holds every epoch, the earlier ones included. When
    training completes the backup is deleted.

    Interrupting means an exception (or the process dying) during ``fit``;
    the backup of the last completed epoch stays on disk.

    Args:
        backup_dir: Folder for the backup (created when missing; use one per
            training run).
        save_freq: ``'epoch'``, the only frequency at which a run can resume
            exactly.
        delete_checkpoint: Delete the backup when training completes.

    Attributes:
        restored_epoch: The epoch training resumed at, or None.
    """

    FORMAT = "deepkit.backup"
    restores_state = True
    FILENAME = "backup.h5"

    def __init__(self, backup_dir, save_freq="epoch", delete_checkpoint=True):
        super().__init__()
        if not backup_dir:
            raise ValueError("BackupAndRestore: 'backup_dir' must be a folder path. "
                             f"Received: backup_dir={backup_dir!r}")
        if save_freq != "epoch":
            raise ValueError("BackupAndRestore: 'save_freq' must be 'epoch' (an exact resume is "
                             f"possible only at epoch boundaries). Received: "
                             f"save_freq={save_freq!r}")
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = save_freq
        self.delete_checkpoint = bool(delete_checkpoint)
        self.restored_epoch = None
        self._others = []
        self._resume_epoch = None
        self._warned = set()

    @property
    def path(self):
        """The backup file."""
        return os.path.join(self.backup_dir, self.FILENAME)

    def set_callbacks(self, callbacks):
        """The callbacks of this ``fit``, whose state is backed up (set by CallbackList)."""
        self._others = [c for c in callbacks if c is not self]

    def _keyed(self):
        counts = collections.Counter()
        for c in self._others:
            name = type(c).__name__
            yield f"{name}#{counts[name]}", c
            counts[name] += 1

    # -- contexts and generators -------------------------------------------------------
    def _contexts(self):
        found = {_context_key(dk.cpu()): dk.cpu()}
        for p in self.model.weights:
            if p.data is not None:
                found.setdefault(_context_key(p.data.ctx), p.data.ctx)
        return found

    def _engine_rng_state(self):
        states = {}
        for key, ctx in self._contexts().items():
            states[key] = dk.random.get_state(ctx)
            if states[key] is None and key not in self._warned:
                self._warned.add(key)
                warnings.warn(f"BackupAndRestore: the random generator of {ctx} has no "
                              "readable state; a resumed run draws different random "
                              "numbers there (dropout masks)", RuntimeWarning, stacklevel=3)
        return states

    def _set_engine_rng_state(self, states):
        contexts = self._contexts()
        for key, state in states.items():
            if key in contexts:
                dk.random.set_state(state, contexts[key])

    # -- hooks -------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        self._resume_epoch = None
        self.restored_epoch = None
        if os.path.exists(self.path):
            self._restore(_read_state(self.path))

    def on_epoch_begin(self, epoch, logs=None):
        if self._resume_epoch is None:
            return
        resume, self._resume_epoch = self._resume_epoch, None
        if epoch != resume:
            raise DeepkitError(
                f"BackupAndRestore restored the state saved at the end of epoch {resume} "
                f"(1-based) from {self.path}, but fit() went on with epoch {epoch + 1} instead "
                f"of {resume + 1}: another callback moved loop.initial_epoch after this one set "
                "it")

    def on_epoch_end(self, epoch, logs=None):
        if distributed.is_chief():  # every rank restores from the file rank 0 writes
            self._save(epoch + 1)

    def on_train_end(self, logs=None):
        if not self.delete_checkpoint or not distributed.is_chief():
            return
        if os.path.exists(self.path):
            os.remove(self.path)
        try:
            os.rmdir(self.backup_dir)
        except OSError:
            pass  # not empty, or already gone: leave the folder as it is

    # -- saving and restoring ----------------------------------------------------------
    def _save(self, next_epoch):
        model = self.model
        optimizer = model.optimizer
        weights = {p.name: p.data.asnumpy() for p in model.weights}
        dk.waitall()
        lr = optimizer.learning_rate
        state = {
            "epoch": next_epoch,
            "model": model.name,
            "weights": weights,
            "optimizer": {"class_name": type(optimizer).__name__,
                          "state": optimizer.get_state(),
                          "learning_rate": None if callable(lr) else float(lr)},
            "rng": {"deepkit": backend.rng_state(), "engine": self._engine_rng_state()},
            "callbacks": {},
        }
        for key, c in self._keyed():
            cb_state = c.get_state()
            if cb_state:
                state["callbacks"][key] = cb_state
        os.makedirs(self.backup_dir, exist_ok=True)
        _write_state(self.path, state)

    def _restore(self, state):
        model = self.model
        optimizer = model.optimizer
        if optimizer is None:
            raise DeepkitError(f"BackupAndRestore: model '{model.name}' must be compiled "
                               "before fit() can restore its optimizer state")
        params = model.weights
        saved = state["weights"]
        problems = [f"'{p.name}' is not in the backup" for p in params if p.name not in saved]
        problems += [f"'{p.name}': backup has shape {tuple(np.shape(saved[p.name]))}, the "
                     f"model {p.shape}" for p in params
                     if p.name in saved and tuple(np.shape(saved[p.name])) != p.shape]
        names = {p.name for p in params}
        problems += [f"'{n}' is in the backup but not in the model" for n in saved
                     if n not in names]
        saved_opt = state["optimizer"]["class_name"]
        if saved_opt != type(optimizer).__name__:
            problems.append(f"the backup's optimizer is {saved_opt}, the model's "
                            f"{type(optimizer).__name__}")
        if problems:
            raise DeepkitError(f"BackupAndRestore: the backup in {self.path} does not match "
                               f"model '{model.name}' (delete it to start afresh):\n  "
                               + "\n  ".join(problems))
        if any(p.data is None for p in params):
            model.initialize_weights()
        model.set_weights([saved[p.name] for p in params])
        optimizer.set_state(state["optimizer"]["state"], params)
        lr = state["optimizer"].get("learning_rate")
        if lr is not None and not callable(optimizer.learning_rate):
            optimizer.learning_rate = float(lr)
        states = state.get("callbacks", {})
        for key, c in self._keyed():
            if key in states:
                c.set_state(states[key])
        dk.waitall()
        # in place: fit's data source already holds deepkit's generator object
        backend.rng().bit_generator.state = state["rng"]["deepkit"]["bit_generator"]
        self._set_engine_rng_state(state["rng"]["engine"])
        if self.loop is None:
            raise DeepkitError("BackupAndRestore can only restore inside fit(), which gives "
                               "its callbacks the loop state")
        self.loop.initial_epoch = int(state["epoch"])
        self._resume_epoch = int(state["epoch"])
        self.restored_epoch = int(state["epoch"])
