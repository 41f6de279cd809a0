"""A caffemodel with random weights for any deploy prototxt (trained weights are not available).

The blob shapes come from a structure-only conversion (what Caffe's layers
would allocate); BatchNorm gets a positive variance and a scale factor of 1,
Convolution weights are scaled by their fan-in so activations keep their size
through deep nets. ``bias`` rewrites the named layers' biases (to give an
SSD's confidence heads scores above the threshold for some classes).
"""
import numpy as np

from deepkit.caffe import convert_record, read_prototxt

from . import caffe_writer as cw


def random_blobs(rec, rng):
    """Random arrays for one layer record's blob shapes."""
    shapes = [tuple(s) for s in rec.caffe_blobs]
    if rec.type == "BatchNorm":
        c = shapes[0]
        return [rng.normal(0, 0.1, c), rng.uniform(0.5, 1.5, c), np.ones(shapes[2])]
    if rec.type == "Scale":
        return [rng.uniform(0.8, 1.2, shapes[0])] + [rng.normal(0, 0.1, s) for s in shapes[1:]]
    if rec.type in ("Convolution", "Deconvolution", "InnerProduct", "ConvolutionDepthwise"):
        fan_in = int(np.prod(shapes[0][1:])) or 1
        return [rng.normal(0, np.sqrt(1.0 / fan_in), shapes[0])] + \
            [rng.normal(0, 0.05, s) for s in shapes[1:]]
    if rec.type == "Normalize":
        return [rng.uniform(5, 20, s) for s in shapes]
    return [rng.normal(0, 0.5, s) for s in shapes]


def write_random_caffemodel(prototxt, path, rng, bias=None):
    """Write ``path``: the prototxt's layers with random blobs; returns ``path``.

    Args:
        prototxt: The deploy prototxt.
        path: The caffemodel to write.
        rng: A numpy Generator.
        bias: ``{layer name: function}``: each function gets that layer's last
            blob (the bias) and returns its new value.
    """
    record = convert_record(prototxt, None, strict=False)
    assert not record.problems, record.problems
    net = read_prototxt(str(prototxt))
    layers = []
    for rec in record.layers:
        if not rec.caffe_blobs:
            continue
        blobs = [np.asarray(b, np.float32) for b in random_blobs(rec, rng)]
        if bias and rec.name in bias:
            blobs[-1] = np.asarray(bias[rec.name](blobs[-1]), np.float32)
        layers.append(cw.v2_layer(rec.name, rec.type, rec.bottoms, rec.tops,
                                  [cw.blob(b) for b in blobs]))
    cw.write_caffemodel(str(path), {"name": net.name or "net", "layer": layers})
    return path
