"""Global settings of the toolkit: image data format, default dtype, seeding."""
import random as _py_random

import numpy as np

import deepkit_engine as _dk

__all__ = ["image_data_format", "set_image_data_format", "floatx", "set_seed", "rng",
           "next_seed"]

_settings = {"data_format": "channels_first", "floatx": "float32"}
_state = {"seed": None, "rng": np.random.default_rng()}


def image_data_format():
    """``'channels_first'`` (NCHW, the default, as in MXNet and Caffe) or ``'channels_last'``."""
    return _settings["data_format"]


def set_image_data_format(data_format):
    """Set the default image layout for layers created afterwards."""
    if data_format not in ("channels_first", "channels_last"):
        raise ValueError(f"data_format must be 'channels_first' or 'channels_last', got "
                         f"{data_format!r}")
    _settings["data_format"] = data_format


def floatx():
    """The default float dtype name (``'float32'``)."""
    return _settings["floatx"]


def set_seed(seed):
    """Make runs reproducible: initializers, shuffling, dropout and augmentation.

    Seeds deepkit's generator, the engine's per-device generators, Python's
    ``random`` and numpy's global generator. Two runs with the same seed on the
    same machine give bit-identical weights.
    """
    seed = int(seed)
    _state["seed"] = seed
    _state["rng"] = np.random.default_rng(seed)
    _dk.random.seed(seed)
    _py_random.seed(seed)
    np.random.seed(seed % (2 ** 32))


def rng():
    """deepkit's numpy generator (seeded by :func:`set_seed`)."""
    return _state["rng"]


def next_seed():
    """A fresh integer seed drawn from deepkit's generator (for sub-generators)."""
    return int(_state["rng"].integers(0, 2 ** 31 - 1))


def rng_state():
    """The generator state, for exact resumption (BackupAndRestore)."""
    return {"seed": _state["seed"], "bit_generator": _state["rng"].bit_generator.state}


def set_rng_state(state):
    """Restore :func:`rng_state` in place, so holders of the generator see it too."""
    _state["seed"] = state.get("seed")
    _state["rng"].bit_generator.state = state["bit_generator"]
