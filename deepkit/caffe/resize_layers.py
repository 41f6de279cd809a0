"""Converter for Caffe's ``Interp`` fork layer (PSPNet, DeepLab): bilinear resize, corners aligned.

``interp_param`` gives the output size as ``height``/``width``, or by
``shrink_factor`` then ``zoom_factor`` of the input size (PSPNet's
``interp_layer``); a second bottom gives it as that blob's size. The engine
op is ``BilinearResize2D``, which recomputes the size from the factors for
each input size (any input size keeps working).
"""
from deepkit_engine import symbol as sym

from .detection_layers import ForkParam
from .layers import Unsupported, register
from .shapes import CaffeRuleError

__all__ = ["interp"]


@register("Interp", doc="BilinearResize2D, corners aligned (height/width, zoom_factor, "
                        "shrink_factor, or a second bottom's size)")
def interp(cx):
    """BilinearResize2D, corners aligned (height/width, zoom_factor, shrink_factor)."""
    if len(cx.bottoms) not in (1, 2):
        raise CaffeRuleError(f"Interp takes 1 or 2 bottoms, got {len(cx.bottoms)}")
    shape = tuple(cx.bottom_shapes[0])
    if len(shape) != 4:
        raise CaffeRuleError(f"Interp takes (N, C, H, W) input; got {shape}")
    p = ForkParam(cx.layer, "interp_param")
    if int(p.get("pad_beg", 0)) or int(p.get("pad_end", 0)):
        raise Unsupported("interp_param pad_beg/pad_end other than 0 are not supported",
                          "crop or pad the input with a Crop layer instead")
    kwargs = dict(zoom_factor=int(p.get("zoom_factor", 1)),
                  shrink_factor=int(p.get("shrink_factor", 1)))
    if len(cx.bottoms) == 2:
        kwargs = dict(height=int(cx.bottom_shapes[1][2]), width=int(cx.bottom_shapes[1][3]))
    elif p.has("height") or p.has("width"):
        if not (p.has("height") and p.has("width")):
            raise CaffeRuleError("interp_param height and width go together")
        kwargs = dict(height=int(p.get("height")), width=int(p.get("width")))
    elif kwargs["zoom_factor"] == 1 and kwargs["shrink_factor"] == 1:
        raise CaffeRuleError("interp_param needs zoom_factor, shrink_factor or height/width")
    h, w = shape[2:]
    if "height" in kwargs:
        out_h, out_w = kwargs["height"], kwargs["width"]
    else:
        out_h, out_w = ((n - 1) // kwargs["shrink_factor"] + 1 for n in (h, w))
        out_h, out_w = (n + (n - 1) * (kwargs["zoom_factor"] - 1) for n in (out_h, out_w))
    out = sym.BilinearResize2D(cx.bottoms[0], align_corners=True, name=cx.node, attr=cx.attr,
                               **kwargs)
    return [(out, shape[:2] + (out_h, out_w))]
