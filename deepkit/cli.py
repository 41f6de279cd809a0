"""The ``deepkit`` command: ``info``, ``convert-caffe``, ``caffe-info`` and ``zoo``."""
import argparse
import sys

import numpy as np

__all__ = ["main"]


def _info(args):
    import deepkit_engine as dk  # noqa: PLC0415
    print(f"deepkit {dk.__version__}")
    print(f"numpy {np.__version__}")
    print(f"engine {dk.engine.engine_type()}")
    gpus = dk.num_gpus()
    print(f"gpus {gpus}" + ("" if gpus else " (install deepkit[gpu] on a CUDA machine for GPUs)"))
    print(f"operators {len(dk.ops.canonical_ops())} ({len(dk.ops.list_ops())} names with aliases)")
    return 0


def _shape(text):
    try:
        return tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N,C,H,W (integers), got {text!r}") from None


def _convert_caffe(args):
    from deepkit import caffe  # noqa: PLC0415
    conversion = caffe.convert(args.prototxt, args.caffemodel, mean=args.mean, rgb=args.rgb,
                               input_shape=args.input_shape, phase=args.phase,
                               fuse_bn_scale=args.fuse_bn_scale)
    print(conversion.layer_table())
    if args.verify:
        if not args.reference:
            raise SystemExit("convert-caffe: --verify needs --reference REF.npz")
        data = np.load(args.verify)
        with np.load(args.reference) as ref:
            reference = {k: ref[k] for k in ref.files}
        report = caffe.verify(conversion, data, reference)
        print(report)
        if not report.passed:
            print("verification FAILED: nothing was written", file=sys.stderr)
            return 1
    conversion.save(args.output)
    print(f"wrote {args.output}")
    return 0


def _caffe_info(args):
    from deepkit.caffe import reader  # noqa: PLC0415
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


def _zoo(args):
    import model_zoo  # noqa: PLC0415
    return model_zoo.cli(args)


def build_parser():
    parser = argparse.ArgumentParser(prog="deepkit", description="deepkit command-line tools")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("info", help="versions, engine, devices and operator count")

    conv = sub.add_parser("convert-caffe", help="convert a Caffe model to a deepkit model file")
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

    info = sub.add_parser("caffe-info", help="list what a .caffemodel holds")
    info.add_argument("caffemodel")

    zoo = sub.add_parser("zoo", help="the model zoo: list, info, verify, import-caffe")
    zoo_sub = zoo.add_subparsers(dest="zoo_command")
    zoo_sub.add_parser("list", help="models and whether their weights are available")
    zi = zoo_sub.add_parser("info", help="everything known about a model")
    zi.add_argument("name")
    zoo_sub.add_parser("verify", help="check the checksums of available weights")
    imp = zoo_sub.add_parser("import-caffe", help="convert a Caffe model into the local zoo")
    imp.add_argument("name")
    imp.add_argument("prototxt")
    imp.add_argument("caffemodel")
    imp.add_argument("--mean")
    return parser


def main(argv=None):
    """Entry point of the ``deepkit`` console script."""
    from deepkit_engine.base import DeepkitError  # noqa: PLC0415
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {"info": _info, "convert-caffe": _convert_caffe, "caffe-info": _caffe_info,
                "zoo": _zoo}
    handler = handlers.get(args.command)
    if handler is None:
        parser.print_help()
        return 0
    try:
        return handler(args)
    except (DeepkitError, FileNotFoundError, ValueError, KeyError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"deepkit {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
