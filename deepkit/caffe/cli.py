"""The Caffe subcommands of the ``deepkit`` command: ``convert-caffe`` and ``caffe-info``.

:func:`register` is this package's entry point in the ``deepkit.commands``
group: the ``deepkit`` command calls it with its subparsers, and runs the
chosen subcommand's ``func(args)``, whose return value is the exit status.
"""
import argparse
import sys

import numpy as np

from . import reader
from .convert import convert
from .verify import verify

__all__ = ["register", "convert_caffe", "caffe_info"]


def register(subparsers):
    """Add ``convert-caffe`` and ``caffe-info`` to the ``deepkit`` command.

    Args:
        subparsers: The ``deepkit`` parser's subparsers (from
            ``ArgumentParser.add_subparsers``). Each added parser sets
            ``func``: ``func(args)`` runs the subcommand and returns the exit
            status.
    """
    conv = subparsers.add_parser("convert-caffe",
                                 help="convert a Caffe model to a deepkit model file")
    conv.add_argument("prototxt", help="deploy.prototxt (network structure)")
    conv.add_argument("caffemodel", help="model.caffemodel (trained weights)")
    conv.add_argument("-o", "--output", required=True, help="output model file (.h5)")
    conv.add_argument("--mean", help="mean image (.binaryproto) to record as preprocessing")
    conv.add_argument("--rgb", action="store_true",
                      help="take RGB input: swap the first layer's channels (only where exact)")
    conv.add_argument("--input-shape", type=_shape, help="N,C,H,W for Data/ImageData inputs")
    conv.add_argument("--phase", default="TEST", choices=("TEST", "TRAIN"))
    conv.add_argument("--fuse-bn-scale", action="store_true",
                      help="fold BatchNorm+Scale into one op (default: one op per layer)")
    conv.add_argument("--verify", metavar="INPUT.npy", help="check outputs on this input")
    conv.add_argument("--reference", metavar="REF.npz",
                      help="reference outputs (per layer/top name, or the final output)")
    conv.set_defaults(func=convert_caffe)

    info = subparsers.add_parser("caffe-info", help="list what a .caffemodel holds")
    info.add_argument("caffemodel")
    info.set_defaults(func=caffe_info)


def _shape(text):
    try:
        return tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N,C,H,W (integers), got {text!r}") from None


def convert_caffe(args):
    """``deepkit convert-caffe``: convert, print the layer table, optionally verify, write.

    Args:
        args: The parsed arguments (see :func:`register`).

    Returns:
        0 when the model was written, 1 when verification failed (nothing written).

    Raises:
        SystemExit: ``--verify`` without ``--reference``.
        DeepkitError: The conversion or the files failed (the message names the file).
    """
    conversion = convert(args.prototxt, args.caffemodel, mean=args.mean, rgb=args.rgb,
                         input_shape=args.input_shape, phase=args.phase,
                         fuse_bn_scale=args.fuse_bn_scale)
    print(conversion.layer_table())
    if args.verify:
        if not args.reference:
            raise SystemExit("convert-caffe: --verify needs --reference REF.npz")
        data = np.load(args.verify)
        with np.load(args.reference) as ref:
            reference = {k: ref[k] for k in ref.files}
        report = verify(conversion, data, reference)
        print(report)
        if not report.passed:
            print("verification FAILED: nothing was written", file=sys.stderr)
            return 1
    conversion.save(args.output)
    print(f"wrote {args.output}")
    return 0


def caffe_info(args):
    """``deepkit caffe-info``: the layers of a .caffemodel, their blob shapes, the parameter count.

    Args:
        args: The parsed arguments (see :func:`register`).

    Returns:
        0.
    """
    net = reader.read_caffemodel(args.caffemodel)
    total = 0
    print(f"{args.caffemodel}: net '{net.name}', {len(net.layer)} layers")
    for layer in net.layer:
        shapes = [tuple(reader.blob_array(b).shape) for b in layer.blobs]
        count = sum(int(np.prod(s)) for s in shapes)
        total += count
        blobs = ", ".join(str(s) for s in shapes) or "-"
        print(f"  {layer.type:20s} {layer.name:30s} {blobs}")
    print(f"{total:,} parameters")
    return 0
