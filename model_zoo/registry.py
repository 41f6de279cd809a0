"""What the zoo knows about each model: builder, weights, preprocessing, provenance."""
import dataclasses

from deepkit_engine.base import did_you_mean

__all__ = ["ModelInfo", "REGISTRY", "register", "info", "names"]


@dataclasses.dataclass
class ModelInfo:
    """One zoo entry.

    Attributes:
        name: Zoo name (``lenet_mnist``).
        architecture: Builder name in ``model_zoo.architectures.BUILDERS``.
        num_classes: Classes of the pre-trained head.
        input_shape: One sample's shape (NCHW).
        head: Names of the classifier layers that ``num_classes=K`` replaces.
        features_end: The last layer of the feature extractor (for ``freeze='features'``).
        weights: File name of the weights (HDF5, ``save_weights`` format), or None.
        sha256: Checksum of the weights file.
        url: Where to download the weights from, or None (shipped or converted locally).
        preprocessing: ``{'channel_order': 'RGB'|'BGR'|'gray', 'range': 255.0 or 1.0,
            'mean': [...] or None, 'std': [...] or None}`` applied by ``model.preprocess``.
        class_names: Label names.
        source: How the weights were made (trained here, or converted from Caffe).
        license: Licence of the weights.
        accuracy: Test accuracy measured by this project, and on what.
        builder_kwargs: Extra arguments for the builder.
    """

    name: str
    architecture: str
    num_classes: int
    input_shape: tuple
    head: tuple
    features_end: str = None
    weights: str = None
    sha256: str = None
    url: str = None
    preprocessing: dict = dataclasses.field(default_factory=dict)
    class_names: tuple = ()
    source: str = ""
    license: str = ""
    accuracy: str = ""
    builder_kwargs: dict = dataclasses.field(default_factory=dict)


REGISTRY = {}


def register(entry):
    if entry.name in REGISTRY:
        raise ValueError(f"model '{entry.name}' is registered twice")
    REGISTRY[entry.name] = entry
    return entry


def names():
    return sorted(REGISTRY)


def info(name):
    """The entry for ``name``; unknown names get a did-you-mean and the list."""
    entry = REGISTRY.get(name)
    if entry is None:
        raise KeyError(f"unknown model '{name}'{did_you_mean(name, REGISTRY)}; the zoo has: "
                       f"{', '.join(names())}")
    return entry


_DIGITS = tuple(str(i) for i in range(10))
_MNIST = {"channel_order": "gray", "range": 1.0, "mean": None, "std": None}

register(ModelInfo(
    "lenet_mnist", "lenet", 10, (1, 28, 28), head=("ip2",), features_end="flatten",
    weights="lenet_mnist.h5", preprocessing=dict(_MNIST), class_names=_DIGITS,
    source="trained by deepkit with model_zoo/recipes/train_mnist.py lenet_mnist",
    license="CC0 (weights trained here on MNIST)"))
register(ModelInfo(
    "mlp_mnist", "mlp", 10, (1, 28, 28), head=("classifier",), features_end="fc1",
    weights="mlp_mnist.h5", preprocessing=dict(_MNIST), class_names=_DIGITS,
    source="trained by deepkit with model_zoo/recipes/train_mnist.py mlp_mnist",
    license="CC0 (weights trained here on MNIST)"))
register(ModelInfo(
    "lenet_mnist_0to4", "lenet", 10, (1, 28, 28), head=("ip2",), features_end="flatten",
    weights="lenet_mnist_0to4.h5", preprocessing=dict(_MNIST), class_names=_DIGITS,
    source="trained by deepkit on digits 0-4 only with model_zoo/recipes/train_mnist.py "
           "lenet_mnist_0to4 (the source for the fine-tuning demo)",
    license="CC0 (weights trained here on MNIST)"))
register(ModelInfo(
    "cifar10_full_caffe", "cifar10_full", 10, (3, 32, 32), head=("ip1",),
    features_end="pool3", weights="cifar10_full_caffe.h5",
    preprocessing={"channel_order": "BGR", "range": 255.0, "mean": None, "std": None},
    class_names=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                 "ship", "truck"),
    source="converted by deepkit's Caffe converter from the Caffe model in "
           "shared/data/caffe/cifar10_full_v1 (model_zoo/recipes/convert_cifar10_full.py)",
    license="BSD-2-Clause (from a Caffe fork)", accuracy="outputs equal the converter's"))


def _apply_manifest():
    """Fill checksums and measured accuracies from the recipes' manifest."""
    import json  # noqa: PLC0415
    import pathlib  # noqa: PLC0415
    path = pathlib.Path(__file__).resolve().parent / "weights" / "manifest.json"
    if not path.is_file():
        return
    for name, record in json.loads(path.read_text()).items():
        entry = REGISTRY.get(name)
        if entry is None:
            continue
        entry.sha256 = record.get("sha256")
        if "accuracy" in record:
            entry.accuracy = f"{record['accuracy']:.4f} on the {record.get('measured_on', 'test set')}"


_apply_manifest()
