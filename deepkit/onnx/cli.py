"""``deepkit export-onnx MODEL OUT.onnx`` and ``deepkit import-onnx IN.onnx OUT.h5``."""
from ..models.loading import load_model
from .export import DEFAULT_OPSET, export
from .importer import load

__all__ = ["register"]


def export_onnx(args):
    """Handler of ``deepkit export-onnx``."""
    export(load_model(args.model), args.output, opset=args.opset)
    print(f"wrote {args.output}")
    return 0


def import_onnx(args):
    """Handler of ``deepkit import-onnx``."""
    model = load(args.onnx)
    model.save(args.output)
    print(f"wrote {args.output} ({len(model.weights)} weights, inputs "
          f"{', '.join(model.input_names)})")
    return 0


def register(subparsers):
    """Add the ONNX subcommands to the ``deepkit`` command (entry point ``deepkit.commands``)."""
    out = subparsers.add_parser("export-onnx", help="write a deepkit model file as ONNX")
    out.add_argument("model", help="a model file deepkit.load_model reads (.h5)")
    out.add_argument("output", help="the .onnx file to write")
    out.add_argument("--opset", type=int, default=DEFAULT_OPSET)
    out.set_defaults(func=export_onnx)
    inp = subparsers.add_parser("import-onnx", help="convert an ONNX file to a deepkit model file")
    inp.add_argument("onnx", help="the .onnx file")
    inp.add_argument("output", help="the deepkit model file to write (.h5)")
    inp.set_defaults(func=import_onnx)
