"""The ``deepkit`` command."""
import argparse
import sys

import numpy as np


def _info(args):
    import deepkit_engine as dk  # noqa: PLC0415
    print(f"deepkit {dk.__version__}")
    print(f"numpy {np.__version__}")
    print(f"engine {dk.engine.engine_type()}")
    gpus = dk.num_gpus()
    print(f"gpus {gpus}" + ("" if gpus else " (install deepkit[gpu] on a CUDA machine for GPUs)"))
    print(f"operators {len(dk.ops.canonical_ops())} ({len(dk.ops.list_ops())} names with aliases)")
    return 0


def main(argv=None):
    """Entry point of the ``deepkit`` console script."""
    parser = argparse.ArgumentParser(prog="deepkit", description="deepkit command-line tools")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("info", help="versions, engine, devices and operator count")
    args = parser.parse_args(argv)
    if args.command == "info":
        return _info(args)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
