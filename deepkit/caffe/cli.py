"""The Caffe subcommands of the ``deepkit`` command: ``convert-caffe`` and ``caffe-info``.

:func:`register` is this package's entry point in the ``deepkit.commands``
group: the ``deepkit`` command calls it with its subparsers, and runs the
chosen subcommand's ``func(args)``, whose return value is the exit status.
"""
import argparse
import sys

import numpy as np

from deepkit_engine.base import DeepkitError

from . import reader
from .convert import convert
from .sources import parse_shape
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
    conv.add_argument("--input-shape", type=_shape,
                      help="N,C,H,W for Data/ImageData inputs; 0 or None for H and W: "
                           "convert at the declared size, run on any size")
    conv.add_argument("--phase", default="TEST", choices=("TEST", "TRAIN"))
    conv.add_argument("--fuse-bn-scale", action="store_true",
                      help="fold BatchNorm+Scale into one op (default: one op per layer)")
    conv.add_argument("--verify", metavar="INPUT.npy",
                      help="check outputs on this input (or put the input in the reference "
                           "under the input's name)")
    conv.add_argument("--reference", metavar="REF.npz",
                      help="reference outputs keyed by blob names (Caffe's net.blobs) or "
                           "layer names (OpenCV's forward(names)), plus the input array")
    conv.add_argument("--reference-keys", choices=("auto", "blob", "layer"), default="auto",
                      help="how to read the reference's keys (default: what fits them)")
    conv.set_defaults(func=convert_caffe)

    info = subparsers.add_parser("caffe-info", help="list what a .caffemodel holds")
    info.add_argument("caffemodel")
    info.set_defaults(func=caffe_info)


def _shape(text):
    try:
        return parse_shape(text, "--input-shape")
    except DeepkitError:
        raise argparse.ArgumentTypeError(f"expected N,C,H,W (integers; 0 or None for a free "
                                         f"height or width), got {text!r}") from None


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
    model = convert(args.prototxt, args.caffemodel, mean=args.mean, rgb=args.rgb,
                    input_shape=args.input_shape, phase=args.phase,
                    fuse_bn_scale=args.fuse_bn_scale)
    print(model.layer_table())
    if args.verify and not args.reference:
        raise SystemExit("convert-caffe: --verify needs --reference REF.npz")
    if args.reference:
        data = np.load(args.verify) if args.verify else None
        with np.load(args.reference) as ref:
            reference = {k: ref[k] for k in ref.files}
        try:
            report = verify(model, data, reference, keys=args.reference_keys)
        except DeepkitError as e:
            raise SystemExit(f"convert-caffe: {e} (--verify INPUT.npy)") from None
        print(report)
        if not report.passed:
            print("verification FAILED: nothing was written", file=sys.stderr)
            return 1
    model.save(args.output)
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
