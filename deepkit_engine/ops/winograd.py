"""3x3 stride-1 convolutions by Winograd's minimal filtering F(4x4, 3x3), float32 on the CPU.

A 3x3 convolution computes each 4x4 block of outputs from a 6x6 block of
inputs with 144 multiply-adds per channel pair. Winograd's F(4x4, 3x3)
(Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2016)
transforms the 6x6 input tile and the 3x3 filter into 6x6 tiles, multiplies
them elementwise (36 multiply-adds) and transforms the product back::

    V = B^T d B      (input tile, 6x6)      U = G g G^T    (filter, 6x6)
    M = sum over input channels of U * V    Y = A^T M A    (output, 4x4)

Summed over channels, each of the 36 positions of ``M`` is a matrix product,
``M[k] (F, P) = U[k] (F, C) @ V[k] (C, P)`` over the ``P`` tiles of a batch,
so the convolution becomes 36 GEMMs with 4 times fewer multiply-adds than
im2col's one, plus transforms whose multiplications are by small constants.
ResNet's 3x3 layers are most of its work, forward and backward alike:

- the **data gradient** of a stride-1 convolution is the forward convolution
  of the output gradient (padded by ``2 - pad``) with the flipped weight,
  channels exchanged: the same code, the weight transform reading the
  filter flipped;
- the **weight gradient** is the adjoint of the forward: with
  ``dM = A dY A^T`` per output tile, ``dU[k] = dM[k] @ V[k]^T`` (36 GEMMs
  summed over the tiles, a long inner dimension) and ``dg = G^T dU G``.

Every result is the convolution's exact value in exact arithmetic. In float32
the transforms' constants (up to 8 in ``A``, 5 in ``B``) amplify rounding:
results are within about 1e-5 of the largest output, where im2col is within
about 1e-6 (F(2x2, 3x3) would be within 3e-6, for twice the products' work
and more data moved). cuDNN and oneDNN make the same trade. Only float32
numpy arrays take this path, with numba's compiled transforms
(``deepkit[fast]``); float64 (the reference and gradient checks) keeps
im2col. ``DEEPKIT_WINOGRAD=0`` turns it off. As in :mod:`.fused_cpu`, the
transforms are plain Python as written (readable, and tested on tiny arrays
without numba) and compiled once per process with numba's on-disk cache.
"""
import os

import numpy as np

from .. import threads
from . import fused_cpu
from .registry import write_result

__all__ = ["applies", "conv_data_grad", "conv_forward", "conv_weight_grad", "kernels", "prepare",
           "grad_tiles", "input_tiles", "output_tiles", "weight_tiles", "weight_from_tiles"]

#: Workspace (transformed inputs and products) of the tiles that run at once: bigger batches
#: go in chunks of samples, so temporary memory stays bounded.
WORKSPACE_BYTES = 16 << 20

#: Fewest channels on each side: thinner products (a first layer's 3 input channels, or 16)
#: do not pay for the transforms (measured: 16 channels at 28x28, weight gradient 0.67x im2col).
MIN_CHANNELS = 32

#: Fewest tiles in the batch per channel on the wider side. Transforming the filters costs
#: 36 values per channel pair and each product multiplies by one column per tile; with
#: few tiles the filters' transforms and thin products cost more than they save (measured,
#: batch 32: 256 channels at 7x7, 128 tiles, 1.3-1.5x faster than im2col; 512 channels at
#: 7x7, 0.9-1.3x; 512 at 4x4, 32 tiles, 0.6x).
MIN_TILES_PER_CHANNEL = 0.5


_F32 = np.float32
_QUARTER, _SIXTH, _TWELFTH, _TWENTYFOURTH = _F32(1 / 4), _F32(1 / 6), _F32(1 / 12), _F32(1 / 24)
_TWO, _FOUR, _FIVE, _EIGHT = _F32(2), _F32(4), _F32(5), _F32(8)

#: Output tile side (``m`` of F(m x m, 3 x 3)), input tile side, and the 36 positions.
TILE, WINDOW, POSITIONS = 4, 6, 36


# -- the 1-D transforms (a 2-D transform applies one down the columns, then along the rows) ----

def _bt(d0, d1, d2, d3, d4, d5):
    """``B^T d`` for six inputs (Lavin's F(4, 3), points 0, 1, -1, 2, -2 and infinity)."""
    t, u = d4 - d2, _TWO * (d1 - d3)
    return (_FOUR * d0 - _FIVE * d2 + d4,
            d3 + d4 - _FOUR * (d1 + d2),
            d4 - d3 + _FOUR * (d1 - d2),
            t - u,
            t + u,
            _FOUR * d1 - _FIVE * d3 + d5)


def _g(g0, g1, g2):
    """``G g`` for a filter's three taps."""
    return (_QUARTER * g0,
            -_SIXTH * (g0 + g1 + g2),
            -_SIXTH * (g0 - g1 + g2),
            _TWENTYFOURTH * g0 + _TWELFTH * g1 + _SIXTH * g2,
            _TWENTYFOURTH * g0 - _TWELFTH * g1 + _SIXTH * g2,
            g2)


def _gt(u0, u1, u2, u3, u4, u5):
    """``G^T u``: the adjoint of :func:`_g`."""
    return (_QUARTER * u0 - _SIXTH * (u1 + u2) + _TWENTYFOURTH * (u3 + u4),
            _SIXTH * (u2 - u1) + _TWELFTH * (u3 - u4),
            _SIXTH * (u3 + u4 - u1 - u2) + u5)


def _at(m0, m1, m2, m3, m4, m5):
    """``A^T m``: four outputs from six products."""
    a, b, c, d = m1 + m2, m1 - m2, m3 + m4, m3 - m4
    return m0 + a + c, b + _TWO * d, a + _FOUR * c, b + _EIGHT * d + m5


def _a(e0, e1, e2, e3):
    """``A e``: the adjoint of :func:`_at` (six products' gradients from four outputs')."""
    return (e0,
            e0 + e1 + e2 + e3,
            e0 - e1 + e2 - e3,
            e0 + _TWO * e1 + _FOUR * e2 + _EIGHT * e3,
            e0 - _TWO * e1 + _FOUR * e2 - _EIGHT * e3,
            e3)


def _store6(v, k0, row, col, r):
    """``v[k0:k0 + 6, row, col] = r`` for a 6-tuple."""
    v[k0, row, col] = r[0]
    v[k0 + 1, row, col] = r[1]
    v[k0 + 2, row, col] = r[2]
    v[k0 + 3, row, col] = r[3]
    v[k0 + 4, row, col] = r[4]
    v[k0 + 5, row, col] = r[5]


# -- the 2-D transforms (plain Python, compiled by numba) ---------------------------------------

def weight_tiles(w, flipped, r0, r1, u):
    """``U = G g G^T``: ``u[6a + b, r, s]`` for rows ``r0:r1`` of ``u``, from the 3x3 filters.

    Args:
        w: (F, C, 3, 3) float32 weight.
        flipped: Transform the data gradient's filters instead: ``u[k, c, f]``
            from ``w[f, c]`` turned by 180 degrees (channels exchanged).
        r0, r1: The range of ``u``'s rows (``F``, or ``C`` with ``flipped``)
            this call writes; each row is written in order (the 36 planes'
            stores stay sequential).
        u: (36, F, C) float32 output, or (36, C, F) with ``flipped``.
    """
    for r in range(r0, r1):
        for s in range(u.shape[2]):
            if flipped:
                g = w[s, r]
                g00, g01, g02 = g[2, 2], g[2, 1], g[2, 0]
                g10, g11, g12 = g[1, 2], g[1, 1], g[1, 0]
                g20, g21, g22 = g[0, 2], g[0, 1], g[0, 0]
            else:
                g = w[r, s]
                g00, g01, g02 = g[0, 0], g[0, 1], g[0, 2]
                g10, g11, g12 = g[1, 0], g[1, 1], g[1, 2]
                g20, g21, g22 = g[2, 0], g[2, 1], g[2, 2]
            c0 = _g(g00, g10, g20)  # the columns of t = G g (6x3)
            c1 = _g(g01, g11, g21)
            c2 = _g(g02, g12, g22)
            _store6(u, 0, r, s, _g(c0[0], c1[0], c2[0]))  # the rows of U = t G^T
            _store6(u, 6, r, s, _g(c0[1], c1[1], c2[1]))
            _store6(u, 12, r, s, _g(c0[2], c1[2], c2[2]))
            _store6(u, 18, r, s, _g(c0[3], c1[3], c2[3]))
            _store6(u, 24, r, s, _g(c0[4], c1[4], c2[4]))
            _store6(u, 30, r, s, _g(c0[5], c1[5], c2[5]))


def _gt_column(du, b, f, c):
    """``G^T`` applied down column ``b`` of the 6x6 ``dU`` of filter ``f``, channel ``c``."""
    return _gt(du[b, f, c], du[6 + b, f, c], du[12 + b, f, c], du[18 + b, f, c],
               du[24 + b, f, c], du[30 + b, f, c])


def weight_from_tiles(du, f0, f1, out):
    """``dg = G^T dU G``: the 3x3 weight gradient of filters ``f0:f1`` from ``du[k, f, c]``.

    Args:
        du: (36, F, C) float32 gradient of the transformed filters.
        out: (F, C, 3, 3) float32, written.
    """
    for f in range(f0, f1):
        for c in range(du.shape[2]):
            # the columns of t = G^T dU (3x6), then the rows of t G
            c0, c1, c2 = _gt_column(du, 0, f, c), _gt_column(du, 1, f, c), _gt_column(du, 2, f, c)
            c3, c4, c5 = _gt_column(du, 3, f, c), _gt_column(du, 4, f, c), _gt_column(du, 5, f, c)
            g = out[f, c]
            g[0, 0], g[0, 1], g[0, 2] = _gt(c0[0], c1[0], c2[0], c3[0], c4[0], c5[0])
            g[1, 0], g[1, 1], g[1, 2] = _gt(c0[1], c1[1], c2[1], c3[1], c4[1], c5[1])
            g[2, 0], g[2, 1], g[2, 2] = _gt(c0[2], c1[2], c2[2], c3[2], c4[2], c5[2])


def input_tiles(x, pad_h, pad_w, buf, v):
    """``V = B^T d B`` of every 6x6 input tile (stride 4) of the samples in ``x``.

    Args:
        x: (N, C, H, W) float32 data.
        pad_h, pad_w: The convolution's zero padding.
        buf: (4 * th + 2, 4 * tw + 2) float32 scratch for one padded plane,
            ``th`` by ``tw`` being the tiles per plane; zero where the plane
            does not cover it (its border is never written).
        v: (36, C, N * th * tw) float32 output; tile ``p`` of sample ``n`` is
            column ``n * th * tw + p`` (tiles row by row).
    """
    n_all, c_all, h, w = x.shape
    th = (buf.shape[0] - 2) // 4
    tw = (buf.shape[1] - 2) // 4
    for n in range(n_all):
        for ch in range(c_all):
            plane = x[n, ch]
            for r in range(h):
                for q in range(w):
                    buf[pad_h + r, pad_w + q] = plane[r, q]
            for ty in range(th):
                y = 4 * ty
                p0 = (n * th + ty) * tw
                for tx in range(tw):
                    q = 4 * tx
                    p = p0 + tx
                    # the columns of t = B^T d, then the rows of V = t B
                    c0 = _bt(buf[y, q], buf[y + 1, q], buf[y + 2, q], buf[y + 3, q],
                             buf[y + 4, q], buf[y + 5, q])
                    c1 = _bt(buf[y, q + 1], buf[y + 1, q + 1], buf[y + 2, q + 1],
                             buf[y + 3, q + 1], buf[y + 4, q + 1], buf[y + 5, q + 1])
                    c2 = _bt(buf[y, q + 2], buf[y + 1, q + 2], buf[y + 2, q + 2],
                             buf[y + 3, q + 2], buf[y + 4, q + 2], buf[y + 5, q + 2])
                    c3 = _bt(buf[y, q + 3], buf[y + 1, q + 3], buf[y + 2, q + 3],
                             buf[y + 3, q + 3], buf[y + 4, q + 3], buf[y + 5, q + 3])
                    c4 = _bt(buf[y, q + 4], buf[y + 1, q + 4], buf[y + 2, q + 4],
                             buf[y + 3, q + 4], buf[y + 4, q + 4], buf[y + 5, q + 4])
                    c5 = _bt(buf[y, q + 5], buf[y + 1, q + 5], buf[y + 2, q + 5],
                             buf[y + 3, q + 5], buf[y + 4, q + 5], buf[y + 5, q + 5])
                    _store6(v, 0, ch, p, _bt(c0[0], c1[0], c2[0], c3[0], c4[0], c5[0]))
                    _store6(v, 6, ch, p, _bt(c0[1], c1[1], c2[1], c3[1], c4[1], c5[1]))
                    _store6(v, 12, ch, p, _bt(c0[2], c1[2], c2[2], c3[2], c4[2], c5[2]))
                    _store6(v, 18, ch, p, _bt(c0[3], c1[3], c2[3], c3[3], c4[3], c5[3]))
                    _store6(v, 24, ch, p, _bt(c0[4], c1[4], c2[4], c3[4], c4[4], c5[4]))
                    _store6(v, 30, ch, p, _bt(c0[5], c1[5], c2[5], c3[5], c4[5], c5[5]))


def _at_column(m, b, f, p):
    """``A^T`` applied down column ``b`` of tile ``p``'s 6x6 products for filter ``f``."""
    return _at(m[b, f, p], m[6 + b, f, p], m[12 + b, f, p], m[18 + b, f, p], m[24 + b, f, p],
               m[30 + b, f, p])


def output_tiles(m, buf, bias, accumulate, out):
    """``Y = A^T M A``: the 4x4 output block of every tile, plus ``bias``, into ``out``.

    Args:
        m: (36, F, N * th * tw) float32 products, tiles as in :func:`input_tiles`.
        buf: (4 * th, 4 * tw) float32 scratch for one output plane.
        bias: (F,) float32, or an empty array for none.
        accumulate: Add to ``out`` instead of overwriting it.
        out: (N, F, Ho, Wo) float32 output (``Ho <= 4 * th``, ``Wo <= 4 * tw``).
    """
    n_all, f_all, ho, wo = out.shape
    th = buf.shape[0] // 4
    tw = buf.shape[1] // 4
    for n in range(n_all):
        for f in range(f_all):
            for ty in range(th):
                y = 4 * ty
                p0 = (n * th + ty) * tw
                for tx in range(tw):
                    p = p0 + tx
                    q = 4 * tx
                    c0 = _at_column(m, 0, f, p)
                    c1 = _at_column(m, 1, f, p)
                    c2 = _at_column(m, 2, f, p)
                    c3 = _at_column(m, 3, f, p)
                    c4 = _at_column(m, 4, f, p)
                    c5 = _at_column(m, 5, f, p)
                    for i in range(4):
                        r = _at(c0[i], c1[i], c2[i], c3[i], c4[i], c5[i])
                        buf[y + i, q], buf[y + i, q + 1] = r[0], r[1]
                        buf[y + i, q + 2], buf[y + i, q + 3] = r[2], r[3]
            b = bias[f] if bias.shape[0] else _F32(0.0)
            target = out[n, f]
            for r in range(ho):
                for q in range(wo):
                    if accumulate:
                        target[r, q] += buf[r, q] + b
                    else:
                        target[r, q] = buf[r, q] + b


def grad_tiles(g, buf, dm):
    """``dM = A dY A^T``: the 6x6 gradient of every tile's products from its 4x4 output block.

    Args:
        g: (N, F, Ho, Wo) float32 output gradient.
        buf: (4 * th, 4 * tw) float32 scratch for one plane; zero where the
            plane does not cover it (its border is never written).
        dm: (36, F, N * th * tw) float32 output, tiles as in :func:`input_tiles`.
    """
    n_all, f_all, ho, wo = g.shape
    th = buf.shape[0] // 4
    tw = buf.shape[1] // 4
    for n in range(n_all):
        for f in range(f_all):
            plane = g[n, f]
            for r in range(ho):
                for q in range(wo):
                    buf[r, q] = plane[r, q]
            for ty in range(th):
                y = 4 * ty
                p0 = (n * th + ty) * tw
                for tx in range(tw):
                    p = p0 + tx
                    q = 4 * tx
                    # the columns of A dY (6x4), then the rows of (A dY) A^T
                    c0 = _a(buf[y, q], buf[y + 1, q], buf[y + 2, q], buf[y + 3, q])
                    c1 = _a(buf[y, q + 1], buf[y + 1, q + 1], buf[y + 2, q + 1], buf[y + 3, q + 1])
                    c2 = _a(buf[y, q + 2], buf[y + 1, q + 2], buf[y + 2, q + 2], buf[y + 3, q + 2])
                    c3 = _a(buf[y, q + 3], buf[y + 1, q + 3], buf[y + 2, q + 3], buf[y + 3, q + 3])
                    _store6(dm, 0, f, p, _a(c0[0], c1[0], c2[0], c3[0]))
                    _store6(dm, 6, f, p, _a(c0[1], c1[1], c2[1], c3[1]))
                    _store6(dm, 12, f, p, _a(c0[2], c1[2], c2[2], c3[2]))
                    _store6(dm, 18, f, p, _a(c0[3], c1[3], c2[3], c3[3]))
                    _store6(dm, 24, f, p, _a(c0[4], c1[4], c2[4], c3[4]))
                    _store6(dm, 30, f, p, _a(c0[5], c1[5], c2[5], c3[5]))


_TRANSFORMS = ("weight_tiles", "weight_from_tiles", "input_tiles", "output_tiles", "grad_tiles")


class _Kernels:
    """The compiled transforms (attributes named as the module's functions)."""

    def __init__(self, numba):
        global _bt, _g, _gt, _at, _a, _store6, _at_column, _gt_column
        # multiply-adds fused where the machine has FMA; otherwise the order written
        options = {"nogil": True, "error_model": "numpy", "cache": True, "fastmath": {"contract"}}
        _bt, _g, _gt, _at, _a, _store6, _at_column, _gt_column = (
            numba.njit(inline="always", **options)(fn)
            for fn in (_bt, _g, _gt, _at, _a, _store6, _at_column, _gt_column))
        for name in _TRANSFORMS:
            setattr(self, name, numba.njit(**options)(globals()[name]))


def kernels(dtype=np.float32):
    """The compiled transforms for ``dtype``, or None (im2col runs instead)."""
    if os.environ.get("DEEPKIT_WINOGRAD", "1").strip() == "0":
        return None
    return fused_cpu.compiled_once(_Kernels, dtype)


def prepare(ctx, attrs):
    """Load the compiled transforms at bind when a convolution may run here (see
    ``OpDef.prepare``): tiny calls of each, with the argument types of real calls
    (planes from :func:`_planes`), compile them or read them from the cache.

    Args:
        ctx: The executor's context (nothing to load off the CPU).
        attrs: The params of each node of the op; only 2-D 3x3 kernels need
            the transforms (a network without them does not load numba here).
    """
    if ctx.device_type != "cpu" or not any(tuple(a.kernel) == (3, 3) for a in attrs):
        return
    fused = kernels()
    if fused is None:
        return
    x = np.zeros((1, 1, 2, 2), np.float32)
    u, v = _planes(1, 1), _planes(1, 1)
    fused.weight_tiles(np.zeros((1, 1, 3, 3), np.float32), False, 0, 1, u)
    fused.weight_from_tiles(u, 0, 1, np.zeros((1, 1, 3, 3), np.float32))
    fused.input_tiles(x, 1, 1, _input_plane(1, 1), v)
    fused.output_tiles(v, _output_plane(1, 1), np.empty(0, np.float32), False, x)
    fused.grad_tiles(x, _output_plane(1, 1), v)


# -- when it runs ----------------------------------------------------------------------------

def applies(xp, x, w, out, geo, groups, data_grad=False):
    """Whether a convolution (``geo``: kernel, stride, dilate, pad) runs here.

    A 2-D, 3x3, stride-1, undilated, ungrouped float32 convolution on numpy
    with padding of at most 2 (the data gradient pads by ``2 - pad``), at
    least :data:`MIN_CHANNELS` channels in and out and
    :data:`MIN_TILES_PER_CHANNEL` output tiles in the batch per channel, and
    the compiled transforms available. ``x`` and ``out`` are the forward's data
    and output, or with ``data_grad`` the output gradient and the data gradient.
    """
    kernel, stride, dilate, pad = geo
    if not (xp is np and groups == 1 and tuple(kernel) == (3, 3) and tuple(stride) == (1, 1)
            and tuple(dilate) == (1, 1) and max(pad) <= 2 and min(pad) >= 0
            and x.dtype == np.float32 and w.dtype == np.float32 and out.dtype == np.float32
            and min(w.shape[0], w.shape[1]) >= MIN_CHANNELS and out.ndim == 4):
        return False
    small, large = (out, x) if data_grad else (x, out)
    if tuple(large.shape[2:]) != tuple(s + 2 * p - 2 for s, p in zip(small.shape[2:], pad)):
        return False
    th, tw = _tiles(large.shape[2:])
    if large.shape[0] * th * tw < MIN_TILES_PER_CHANNEL * max(w.shape[0], w.shape[1]):
        return False
    return kernels() is not None


def _tiles(out_sp):
    return -(-out_sp[0] // TILE), -(-out_sp[1] // TILE)


def _sample_ranges(n, per_sample_bytes, parts):
    """Sample ranges whose workspaces, ``parts`` at a time, fit :data:`WORKSPACE_BYTES`."""
    size = max(1, WORKSPACE_BYTES // max(parts, 1) // max(per_sample_bytes, 1))
    size = min(size, -(-n // max(parts, 1)))
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def _planes(rows, cols):
    """A new (36, rows, cols) float32 array whose planes do not start 4 KiB apart.

    The transforms read or write the 36 planes side by side, one value each
    per tile. Planes a multiple of 4 KiB apart (every ResNet layer's are) map
    those streams onto the same few sets of the level-1 cache, which holds
    fewer ways than that, and every store missed (the input transform of one
    ResNet layer ran 7 times slower). A plane stride of 4 KiB times j plus
    one cache line spreads them over as many sets.
    """
    stride = -(-rows * cols // 1024) * 1024 + 16
    space = np.empty(POSITIONS * stride, np.float32)
    return np.lib.stride_tricks.as_strided(space, (POSITIONS, rows, cols),
                                           (stride * 4, cols * 4, 4))


def _input_plane(th, tw):
    """Zeroed scratch for one padded input plane of ``th`` by ``tw`` tiles."""
    return np.zeros((TILE * th + 2, TILE * tw + 2), np.float32)


def _output_plane(th, tw):
    """Zeroed scratch for one output (or output gradient) plane of ``th`` by ``tw`` tiles."""
    return np.zeros((TILE * th, TILE * tw), np.float32)


def _sample_bytes(c, f, tiles):
    """Workspace of one sample: its transformed inputs and products."""
    return POSITIONS * (c + f) * tiles * 4


def _transformed_weight(w, flipped):
    """``U`` (36, F, C) of ``w`` (or of the data gradient's flipped filter, (36, C, F))."""
    fused = kernels()
    f, c = w.shape[:2]
    u = _planes(c, f) if flipped else _planes(f, c)
    threads.parallel_map(lambda r: fused.weight_tiles(w, flipped, r.start, r.stop, u),
                         threads.even_slices(u.shape[1], threads.pool_size()))
    return u


def _forward_tiles(x, u, pad, out, req, bias):
    """``out (req)= conv(x, U) + bias`` from the transformed filters ``u`` (36, F, C)."""
    fused = kernels()
    n, c = x.shape[:2]
    f = u.shape[1]
    th, tw = _tiles(out.shape[2:])
    per = th * tw
    bias = np.empty(0, np.float32) if bias is None else np.ascontiguousarray(bias, np.float32)
    accumulate = req == "add"

    def chunk(r):
        rows = r.stop - r.start
        v = _planes(c, rows * per)
        fused.input_tiles(x[r], pad[0], pad[1], _input_plane(th, tw), v)
        m = np.matmul(u, v, out=_planes(f, rows * per))
        fused.output_tiles(m, _output_plane(th, tw), bias, accumulate, out[r])

    threads.parallel_map(chunk, _sample_ranges(n, _sample_bytes(c, f, per), threads.pool_size()))


def conv_forward(x, w, out, req, pad, bias=None):
    """``out (N, F, Ho, Wo) (req)= conv(x, w) + bias`` for a 3x3 stride-1 convolution.

    ``req`` is ``'write'``, ``'inplace'`` or ``'add'``; see :func:`applies`.
    """
    _forward_tiles(x, _transformed_weight(w, False), pad, out, req, bias)


def conv_data_grad(g, w, out, req, pad):
    """``out (N, C, H, W) (req)=`` the data gradient of a 3x3 stride-1 convolution.

    The forward convolution of the output gradient ``g``, padded by ``2 - pad``,
    with the flipped weight, channels exchanged.
    """
    _forward_tiles(g, _transformed_weight(w, True), (2 - pad[0], 2 - pad[1]), out, req, None)


def conv_weight_grad(g, x, out, req, pad):
    """``out (F, C, 3, 3) (req)=`` the weight gradient of a 3x3 stride-1 convolution.

    Per chunk of samples, the input tiles' ``V`` and the output gradient's
    ``dM`` are transformed in parallel (samples split over the kernel pool),
    then ``dU[k] += dM[k] @ V[k]^T`` with BLAS's in-place accumulation, the
    36 products split over the pool: one ``dU`` for the whole batch, no
    partial sum per thread.
    """
    fused = kernels()
    n, c = x.shape[:2]
    f = g.shape[1]
    th, tw = _tiles(g.shape[2:])
    per = th * tw
    parts = threads.pool_size()
    size = _sample_ranges(n, _sample_bytes(c, f, per), 1)[0].stop
    v_all, dm_all = _planes(c, size * per), _planes(f, size * per)
    du = _planes(f, c)
    for start in range(0, n, size):
        stop = min(start + size, n)
        cols = (stop - start) * per
        v, dm = v_all[:, :, :cols], dm_all[:, :, :cols]

        def transform(r, start=start, v=v, dm=dm):
            a, b = start + r.start, start + r.stop
            lo, hi = r.start * per, r.stop * per
            fused.input_tiles(x[a:b], pad[0], pad[1], _input_plane(th, tw), v[:, :, lo:hi])
            fused.grad_tiles(g[a:b], _output_plane(th, tw), dm[:, :, lo:hi])

        def products(ks, v=v, dm=dm, accumulate=start > 0):
            for k in range(ks.start, ks.stop):
                threads.gemm_nt(dm[k], v[k], du[k], accumulate)

        threads.parallel_map(transform, threads.even_slices(stop - start, parts))
        threads.parallel_map(products, threads.even_slices(POSITIONS, parts))
    if req == "add" or not out.flags.c_contiguous:
        grad = np.empty(out.shape, np.float32)
        fused.weight_from_tiles(du, 0, f, grad)
        write_result(np, out, grad, req)
        return
    threads.parallel_map(lambda r: fused.weight_from_tiles(du, r.start, r.stop, out),
                         threads.even_slices(f, parts))
