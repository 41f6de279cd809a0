"""``deepkit zoo list | info NAME | verify | import-caffe NAME PROTOTXT CAFFEMODEL``."""
import json

from . import registry, weights_store
from .architectures import BUILDERS
from .caffe_import import import_caffe

__all__ = ["cli", "register"]


def _status(entry):
    for where, folder in (("cache", weights_store.cache_dir()),
                          ("shipped", weights_store.shipped_dir())):
        if entry.weights and (folder / entry.weights).is_file():
            return where
    return "download" if entry.url else "missing"


def cli(args):
    command = args.zoo_command
    if command == "list":
        for name in registry.names():
            entry = registry.REGISTRY[name]
            print(f"{name:22s} {entry.architecture:14s} weights: {_status(entry):8s} "
                  f"{entry.accuracy}")
        print("architectures (random weights): " + ", ".join(sorted(BUILDERS)))
        return 0
    if command == "info":
        entry = registry.info(args.name)
        data = {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(entry).items()}
        data["weights_status"] = _status(entry)
        print(json.dumps(data, indent=2))
        return 0
    if command == "verify":
        bad = 0
        for name in registry.names():
            entry = registry.REGISTRY[name]
            try:
                path = weights_store.find_weights(entry, download=False)
                print(f"{name:22s} ok      {path}")
            except Exception as err:  # noqa: BLE001 - report every entry
                bad += 1
                print(f"{name:22s} FAILED  {err}")
        return 1 if bad else 0
    if command == "import-caffe":
        path = import_caffe(args.name, args.prototxt, args.caffemodel, mean=args.mean)
        print(f"converted and registered '{args.name}' in {path}")
        return 0
    print("usage: deepkit zoo {list,info,verify,import-caffe}")
    return 2


def register(subparsers):
    """Add ``deepkit zoo ...`` to the ``deepkit`` command (entry point ``deepkit.commands``)."""
    zoo = subparsers.add_parser("zoo", help="the model zoo: list, info, verify, import-caffe")
    zoo.set_defaults(func=cli)
    zoo_sub = zoo.add_subparsers(dest="zoo_command")
    zoo_sub.add_parser("list", help="models and whether their weights are available")
    zoo_info = zoo_sub.add_parser("info", help="everything known about a model")
    zoo_info.add_argument("name")
    zoo_sub.add_parser("verify", help="check the checksums of available weights")
    imp = zoo_sub.add_parser("import-caffe", help="convert a Caffe model into the local zoo")
    imp.add_argument("name")
    imp.add_argument("prototxt")
    imp.add_argument("caffemodel")
    imp.add_argument("--mean")
