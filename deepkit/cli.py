"""The ``deepkit`` command, assembled from the subcommands each installed package registers.

The core contributes ``deepkit info``. Every other subcommand comes from an
entry point in the ``deepkit.commands`` group: a function
``register(subparsers)`` that adds its parsers with ``argparse`` and sets
``func`` (``handler(args) -> exit code``) through ``set_defaults``. The Caffe
converter registers ``convert-caffe`` and ``caffe-info``, the model zoo
registers ``zoo``; so the toolkit never imports the packages built on it, and
a third-party package adds its own commands the same way::

    [project.entry-points."deepkit.commands"]
    mytool = "mypackage.cli:register"
"""
import argparse
import importlib.metadata
import os
import sys

import numpy as np

import deepkit_engine as dk
from deepkit_engine.base import DeepkitError

__all__ = ["main", "build_parser", "ENTRY_POINT_GROUP"]

#: The entry-point group that subcommand providers register under.
ENTRY_POINT_GROUP = "deepkit.commands"


def _info(args):
    print(f"deepkit {dk.__version__}")
    print(f"numpy {np.__version__}")
    print(f"engine {dk.engine.engine_type()}")
    gpus = dk.num_gpus()
    print(f"gpus {gpus}" + ("" if gpus else " (install deepkit[gpu] on a CUDA machine for GPUs)"))
    print(f"operators {len(dk.ops.canonical_ops())} ({len(dk.ops.list_ops())} names with aliases)")
    return 0


def _registered_commands():
    """The ``register`` functions of the ``deepkit.commands`` entry points, sorted by name."""
    points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    return [(point.name, point) for point in sorted(points, key=lambda p: p.name)]


def build_parser():
    """The argument parser with the core's and every registered package's subcommands."""
    parser = argparse.ArgumentParser(prog="deepkit", description="deepkit command-line tools")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("info", help="versions, engine, devices and operator count") \
        .set_defaults(func=_info)
    for name, point in _registered_commands():
        try:
            register = point.load()
        except ImportError as err:
            print(f"deepkit: the '{name}' commands are unavailable: {err}", file=sys.stderr)
            continue
        register(sub)
    return parser


def main(argv=None):
    """Entry point of the ``deepkit`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "func", None)
    if handler is None:
        parser.print_help()
        return 0
    try:
        return handler(args)
    except (DeepkitError, FileNotFoundError, ValueError, KeyError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"deepkit {args.command}: error: {message}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader of a pipe went away (`deepkit zoo list | head`): stop quietly, as
        # Unix tools do; stdout goes to devnull so the flush at exit cannot fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
