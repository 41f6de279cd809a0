"""Global settings of the toolkit: image data format, default dtype, seeding.

The image data format starts as ``'channels_first'`` (NCHW: the engine's,
MXNet's and Caffe's layout). As Keras reads ``keras.json``, deepkit reads
``$DEEPKIT_HOME/deepkit.json`` (default ``~/.deepkit/deepkit.json``), e.g.
``{"image_data_format": "channels_last"}``, and the environment variable
``DEEPKIT_IMAGE_DATA_FORMAT`` overrides the file; both are read at import.
:func:`set_image_data_format` changes it for layers created afterwards.
"""
import json
import os
import pathlib
import random as _py_random
import warnings

import numpy as np

import deepkit_engine as _dk

__all__ = ["image_data_format", "set_image_data_format", "floatx", "set_seed", "rng",
           "next_seed"]

_settings = {"data_format": "channels_first", "floatx": "float32"}
_FORMATS = ("channels_first", "channels_last")


def config_path():
    """The settings file: ``$DEEPKIT_HOME/deepkit.json`` (default ``~/.deepkit/deepkit.json``)."""
    home = os.environ.get("DEEPKIT_HOME") or pathlib.Path.home() / ".deepkit"
    return pathlib.Path(home) / "deepkit.json"


def _load_settings():
    """The image data format from the settings file, then the environment."""
    path = config_path()
    if path.is_file():
        try:
            value = json.loads(path.read_text()).get("image_data_format")
        except (OSError, ValueError, AttributeError) as err:
            warnings.warn(f"deepkit: ignoring {path}: {err}", RuntimeWarning, stacklevel=2)
            value = None
        if value is not None:
            if value not in _FORMATS:
                warnings.warn(f"deepkit: {path}: image_data_format must be one of {_FORMATS}, "
                              f"got {value!r}; using channels_first", RuntimeWarning,
                              stacklevel=2)
            else:
                _settings["data_format"] = value
    value = os.environ.get("DEEPKIT_IMAGE_DATA_FORMAT")
    if value:
        if value not in _FORMATS:
            raise ValueError(f"DEEPKIT_IMAGE_DATA_FORMAT must be 'channels_first' or "
                             f"'channels_last', got {value!r}")
        _settings["data_format"] = value
_state = {"seed": None, "rng": np.random.default_rng()}


def image_data_format():
    """``'channels_first'`` (NCHW, the default, as in MXNet and Caffe) or ``'channels_last'``."""
    return _settings["data_format"]


def set_image_data_format(data_format):
    """Set the default image layout for layers created afterwards."""
    if data_format not in _FORMATS:
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


_load_settings()
