"""The zoo's architectures as Keras-style builders with the source networks' layer names.

Every builder has the signature ``builder(num_classes, input_shape=None,
include_top=True, pooling=None, name=None, classifier_activation='softmax',
...)`` and returns a :class:`deepkit.Model` on NCHW images (``input_shape``
is ``(channels, rows, cols)``; None means the architecture's standard size).
Layers carry the names of the network the weights come from (Caffe's for
AlexNet, GoogLeNet, the ResNets, ...), so weights move between them by name.

* ``include_top=False`` ends at the last feature map (the layers listed in
  :data:`HEAD_LAYERS` and the pooling before them are left out);
  ``pooling='avg'`` or ``'max'`` then adds a global pooling (``avg_pool`` /
  ``max_pool``) that gives one vector per image.
* The classifier's activation is a separate layer named ``prob`` (Caffe's
  deploy name); ``classifier_activation=None`` leaves it out (logits).

Attributes:
    BUILDERS: ``{name: builder}`` for every architecture.
    HEAD_LAYERS: ``{name: (layer names)}``: the layers whose weights depend on
        ``num_classes`` (the classifier), i.e. what fine-tuning replaces.
    CUSTOM_OBJECTS: Layer classes defined here, for
        ``deepkit.load_model(path, custom_objects=CUSTOM_OBJECTS)``.
"""
from .alexnet import alexnet, caffenet
from .blocks import CaffePooling2D, WithinChannelLRN
from .cifar10 import cifar10_full, cifar10_quick
from .googlenet import googlenet
from .lenet import lenet
from .mlp import mlp
from .mobilenet import mobilenet
from .nin import nin
from .resnet import resnet18, resnet34, resnet50, resnet101, resnet152
from .squeezenet import squeezenet1_0, squeezenet1_1
from .vgg import vgg11, vgg11_bn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg19, vgg19_bn

BUILDERS = {
    "mlp": mlp, "lenet": lenet, "alexnet": alexnet, "caffenet": caffenet,
    "vgg11": vgg11, "vgg13": vgg13, "vgg16": vgg16, "vgg19": vgg19,
    "vgg11_bn": vgg11_bn, "vgg13_bn": vgg13_bn, "vgg16_bn": vgg16_bn, "vgg19_bn": vgg19_bn,
    "googlenet": googlenet,
    "resnet18": resnet18, "resnet34": resnet34, "resnet50": resnet50, "resnet101": resnet101,
    "resnet152": resnet152,
    "squeezenet1_0": squeezenet1_0, "squeezenet1_1": squeezenet1_1,
    "mobilenet": mobilenet, "nin": nin,
    "cifar10_quick": cifar10_quick, "cifar10_full": cifar10_full,
}

HEAD_LAYERS = {
    "mlp": ("classifier",), "lenet": ("ip2",), "alexnet": ("fc8",), "caffenet": ("fc8",),
    **{name: ("fc8",) for name in BUILDERS if name.startswith("vgg")},
    "googlenet": ("loss3_classifier",),
    **{name: ("fc1000",) for name in BUILDERS if name.startswith("resnet")},
    "squeezenet1_0": ("conv10",), "squeezenet1_1": ("conv10",), "mobilenet": ("conv_preds",),
    "nin": ("cccp8_1024",), "cifar10_quick": ("ip2",), "cifar10_full": ("ip1",),
}

CUSTOM_OBJECTS = {"WithinChannelLRN": WithinChannelLRN, "CaffePooling2D": CaffePooling2D}

__all__ = ["BUILDERS", "HEAD_LAYERS", "CUSTOM_OBJECTS", "CaffePooling2D", "WithinChannelLRN",
           *BUILDERS]
