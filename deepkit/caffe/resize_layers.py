"""Converters for the resizing fork layers: ``Interp``, ``Resize`` and ``Upsample``.

- ``Interp`` (PSPNet, DeepLab; ``interp_param``): bilinear, corners aligned.
  The output size is ``height``/``width``, or ``shrink_factor`` then
  ``zoom_factor`` of the input size (PSPNet's ``interp_layer``), after the
  non-positive ``pad_beg``/``pad_end`` crop the input; a second bottom gives
  the size as that blob's. The engine op is ``BilinearResize2D``, which
  recomputes the size from the factors for each input size.
- ``Resize`` (OpenCV's layer): nearest or bilinear (``interpolation``), to
  ``height``/``width`` or by ``zoom_factor`` (``int(n * zoom)``), with
  ``align_corners`` or ``half_pixel_centers``; the engine op is ``Resize2D``.
  OpenCV reads its fields from whichever parameter block holds them.
- ``Upsample``: with one bottom (the YOLOv3 forks), nearest-neighbour
  upsampling by the integer ``scale`` (``Resize2D``); with a second bottom, the
  mask of a MAX pooling (SegNet), max unpooling to ``upsample_h``/``upsample_w``
  or ``scale`` (``scale_h``/``scale_w``) times the input less ``pad_out_h``/
  ``pad_out_w`` (``MaxUnpool2D``).
"""
import numpy as np

from deepkit_engine import symbol as sym

from .detection_layers import ForkParam, any_fork_param
from .layers import Unsupported, register
from .shapes import CaffeRuleError

__all__ = ["interp", "resize", "upsample"]


def _four_d(cx, which=0):
    shape = tuple(cx.bottom_shapes[which])
    if len(shape) != 4:
        raise CaffeRuleError(f"{cx.type} takes (N, C, H, W) input; bottom {which} is {shape}")
    return shape


# -- Interp ----------------------------------------------------------------------------------

@register("Interp", doc="BilinearResize2D, corners aligned (height/width, zoom_factor, "
                        "shrink_factor, non-positive pad_beg/pad_end crop, or a second "
                        "bottom's size)")
def interp(cx):
    """BilinearResize2D, corners aligned (height/width, zoom_factor, shrink_factor, padding)."""
    if len(cx.bottoms) not in (1, 2):
        raise CaffeRuleError(f"Interp takes 1 or 2 bottoms, got {len(cx.bottoms)}")
    shape = _four_d(cx)
    p = ForkParam(cx.layer, "interp_param")
    pad_beg, pad_end = int(p.get("pad_beg", 0)), int(p.get("pad_end", 0))
    if pad_beg > 0 or pad_end > 0:
        raise CaffeRuleError(f"interp_param pad_beg/pad_end must be 0 or negative (a crop), as "
                             f"Caffe's Interp layer requires; got pad_beg {pad_beg}, pad_end "
                             f"{pad_end}")
    h, w = (n + pad_beg + pad_end for n in shape[2:])
    if h < 1 or w < 1:
        raise CaffeRuleError(f"interp_param pad_beg {pad_beg} and pad_end {pad_end} crop the "
                             f"input {shape} to nothing ({h}, {w})")
    kwargs = dict(zoom_factor=int(p.get("zoom_factor", 1)),
                  shrink_factor=int(p.get("shrink_factor", 1)))
    if min(kwargs.values()) < 1:
        raise CaffeRuleError(f"interp_param zoom_factor and shrink_factor must be positive; "
                             f"got {kwargs['zoom_factor']} and {kwargs['shrink_factor']}")
    if len(cx.bottoms) == 2:
        other = _four_d(cx, 1)
        kwargs = dict(height=int(other[2]), width=int(other[3]))
    elif p.has("zoom_factor") or p.has("shrink_factor"):
        pass
    elif p.has("height") or p.has("width"):
        if not (p.has("height") and p.has("width")):
            raise CaffeRuleError("interp_param height and width go together")
        kwargs = dict(height=int(p.get("height")), width=int(p.get("width")))
    else:
        raise CaffeRuleError("interp_param needs zoom_factor, shrink_factor or height/width")
    if "height" in kwargs:
        out_h, out_w = kwargs["height"], kwargs["width"]
        if out_h < 1 or out_w < 1:
            raise CaffeRuleError(f"interp_param height and width must be positive; got "
                                 f"{out_h} and {out_w}")
    else:
        out_h, out_w = ((n - 1) // kwargs["shrink_factor"] + 1 for n in (h, w))
        out_h, out_w = (n + (n - 1) * (kwargs["zoom_factor"] - 1) for n in (out_h, out_w))
    x = cx.bottoms[0]
    if pad_beg or pad_end:
        end = pad_end if pad_end else None
        x = sym.slice(x, begin=(None, None, -pad_beg, -pad_beg), end=(None, None, end, end),
                      name=cx.sub("crop"))
    out = sym.BilinearResize2D(x, align_corners=True, name=cx.node, attr=cx.attr, **kwargs)
    return [(out, shape[:2] + (out_h, out_w))]


# -- Resize (OpenCV) ---------------------------------------------------------------------------

def _resize_coordinate(mode, align, half):
    if mode == "opencv_linear" or (mode == "bilinear" and half):
        return "bilinear", "half_pixel"
    if align:
        return ("nearest" if mode == "nearest" else "bilinear"), "align_corners"
    return mode, ("half_pixel" if half else "asymmetric")


@register("Resize", doc="Resize2D as OpenCV's Resize layer (interpolation nearest/bilinear/"
                        "opencv_linear, zoom_factor(_x/_y) or height/width or a second "
                        "bottom's size, align_corners, half_pixel_centers)")
def resize(cx):
    """Resize2D as OpenCV's Resize layer."""
    if len(cx.bottoms) not in (1, 2):
        raise CaffeRuleError(f"Resize takes 1 or 2 bottoms, got {len(cx.bottoms)}")
    shape = _four_d(cx)
    p = any_fork_param(cx.layer, "resize_param")
    mode = str(p.get("interpolation", "")).strip('"')
    if mode not in ("nearest", "bilinear", "opencv_linear"):
        raise CaffeRuleError(f"Resize's interpolation must be nearest, bilinear or "
                             f"opencv_linear (OpenCV requires it); got {mode or 'none'!r}")
    align, half = bool(p.get("align_corners", False)), bool(p.get("half_pixel_centers", False))
    mode, coordinate = _resize_coordinate(mode, align, half)
    kwargs = dict(mode=mode, coordinate=coordinate)
    if p.has("zoom_factor") and (p.has("zoom_factor_x") or p.has("zoom_factor_y")):
        raise CaffeRuleError("Resize: give zoom_factor or zoom_factor_x/zoom_factor_y, not both")
    if p.has("zoom_factor_x") != p.has("zoom_factor_y"):
        raise CaffeRuleError("Resize: zoom_factor_x and zoom_factor_y go together")
    zoom_w = float(p.get("zoom_factor_x", p.get("zoom_factor", 0)))
    zoom_h = float(p.get("zoom_factor_y", p.get("zoom_factor", 0)))
    if len(cx.bottoms) == 2:
        other = cx.bottom_shapes[1]
        if len(other) < 4:
            raise CaffeRuleError(f"Resize's second bottom gives the size: it needs 4 axes, got "
                                 f"{tuple(other)}")
        kwargs.update(height=int(other[2]), width=int(other[3]))
    else:
        for axis, zoom, fixed in (("height", zoom_h, int(float(p.get("height", 0)))),
                                  ("width", zoom_w, int(float(p.get("width", 0))))):
            if zoom > 0:
                kwargs["zoom_h" if axis == "height" else "zoom_w"] = zoom
            elif fixed > 0:
                kwargs[axis] = fixed
            else:
                raise CaffeRuleError(f"Resize needs the output {axis}: give zoom_factor"
                                     f"{'_y' if axis == 'height' else '_x'} or {axis}")
    out = sym.Resize2D(cx.bottoms[0], name=cx.node, attr=cx.attr, **kwargs)
    top = shape[:2] + tuple(
        kwargs[axis] if axis in kwargs else int(np.float32(n) * np.float32(kwargs[zoom]))
        for axis, zoom, n in (("height", "zoom_h", shape[2]), ("width", "zoom_w", shape[3])))
    if min(top[2:]) < 1:
        raise CaffeRuleError(f"Resize of {shape} gives an empty output {top}")
    return [(out, top)]


# -- Upsample (YOLOv3 forks; SegNet with a mask) --------------------------------------------------

def _positive(p, key, default):
    value = int(p.get(key, default))
    if value < 1:
        raise CaffeRuleError(f"upsample_param.{key} must be positive; got {value}")
    return value


@register("Upsample", doc="one bottom: nearest-neighbour Resize2D by upsample_param.scale (YOLOv3 "
                          "forks); with a pooling mask: MaxUnpool2D to upsample_h/upsample_w "
                          "or scale (scale_h/scale_w, pad_out_h/pad_out_w) as SegNet")
def upsample(cx):
    """Nearest upsampling by ``scale`` (one bottom), or SegNet's max unpooling (data, mask)."""
    if len(cx.bottoms) not in (1, 2):
        raise CaffeRuleError(f"Upsample takes 1 bottom (data) or 2 (data and a pooling mask), "
                             f"got {len(cx.bottoms)}")
    shape = _four_d(cx)
    p = ForkParam(cx.layer, "upsample_param")
    if len(cx.bottoms) == 1:
        if p.has("upsample_h") or p.has("upsample_w") or p.has("pad_out_h") or \
                p.has("pad_out_w"):
            raise Unsupported("upsample_param upsample_h/upsample_w/pad_out_* need the pooling "
                              "mask as a second bottom (SegNet's layer)",
                              "give the mask bottom, or use scale for nearest upsampling")
        scale_h = _positive(p, "scale_h", p.get("scale", 1))
        scale_w = _positive(p, "scale_w", p.get("scale", 1))
        out = sym.Resize2D(cx.bottoms[0], zoom_h=float(scale_h), zoom_w=float(scale_w),
                           mode="nearest", coordinate="asymmetric", name=cx.node, attr=cx.attr)
        return [(out, shape[:2] + (shape[2] * scale_h, shape[3] * scale_w))]
    mask = _four_d(cx, 1)
    if mask != shape:
        raise CaffeRuleError(f"Upsample's mask must have the data's shape {shape}; got {mask}")
    if p.has("upsample_h") or p.has("upsample_w"):
        if not (p.has("upsample_h") and p.has("upsample_w")):
            raise CaffeRuleError("upsample_param upsample_h and upsample_w go together")
        out_h, out_w = int(p.get("upsample_h")), int(p.get("upsample_w"))
        if out_h < 2 or out_w < 2:
            raise CaffeRuleError(f"upsample_param upsample_h and upsample_w must be above 1 (as "
                                 f"SegNet checks); got {out_h} and {out_w}")
        kwargs = dict(height=out_h, width=out_w)
    else:
        if p.has("scale") and (p.has("scale_h") or p.has("scale_w")):
            raise CaffeRuleError("upsample_param: give scale or scale_h/scale_w, not both")
        if p.has("scale_h") != p.has("scale_w"):
            raise CaffeRuleError("upsample_param scale_h and scale_w go together")
        scale_h = int(p.get("scale_h", p.get("scale", 2)))
        scale_w = int(p.get("scale_w", p.get("scale", 2)))
        if scale_h < 2 or scale_w < 2:
            raise CaffeRuleError(f"upsample_param scale must be above 1 (as SegNet checks); "
                                 f"got {scale_h} x {scale_w}")
        pad_h, pad_w = int(bool(p.get("pad_out_h", False))), int(bool(p.get("pad_out_w", False)))
        if (pad_h and scale_h != 2) or (pad_w and scale_w != 2):
            raise CaffeRuleError("upsample_param pad_out_h/pad_out_w need a scale of 2 on "
                                 "that axis (as SegNet checks)")
        kwargs = dict(scale_h=scale_h, scale_w=scale_w, pad_out_h=pad_h, pad_out_w=pad_w)
        out_h, out_w = shape[2] * scale_h - pad_h, shape[3] * scale_w - pad_w
    out = sym.MaxUnpool2D(cx.bottoms[0], cx.bottoms[1], name=cx.node, attr=cx.attr, **kwargs)
    return [(out, shape[:2] + (out_h, out_w))]
