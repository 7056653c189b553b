"""Spatial resize: nearest and bilinear (docs/numerics.md, "Other layers").

Float:    TF's ResizeNearestNeighbor / ResizeBilinear (align_corners, half_pixel_centers)
Integer:  nearest copies codes; bilinear weights the four taps on a 2^-8 grid,
          acc = sum_taps (q - z_in) * wy * wx (wy, wx in 0..256), then the activation unit at
          s_acc = s_in * 2^-16. Both keep the input's tensor (s, z, b): the bilinear rescale is
          then an exact 2^-16.
"""
from __future__ import annotations

import numpy as np

from .._lazy import kernels as K
from .._lazy import tf
from ..errors import HNError
from ..hn import Layer
from . import activation_unit
from .base import LayerKind

RESIZE_ACC_SCALE = 2.0 ** -16  # the two 2^-8 tap weights


def _mode(layer: Layer) -> tuple[list[int], bool, bool]:
    p = layer.params
    align = bool(p.get("align_corners", False))
    return p["output_shape"][1:3], align, bool(p.get("half_pixel", not align))


def _bilinear(layer: Layer) -> bool:
    return layer.params.get("method") == "bilinear"


class Resize(LayerKind):
    types = ("resize",)
    passthrough = True

    def float_op(self, layer, inputs, params):
        out_hw, align, half = _mode(layer)
        size = tf.constant(out_hw, tf.int32)
        method = layer.params["method"]
        if method == "nearest":
            return tf.raw_ops.ResizeNearestNeighbor(images=inputs[0], size=size, align_corners=align,
                                                    half_pixel_centers=half)
        if method == "bilinear":
            return tf.raw_ops.ResizeBilinear(images=inputs[0], size=size, align_corners=align,
                                             half_pixel_centers=half)
        raise HNError(f"layer '{layer.name}': resize method '{method}' is not nearest|bilinear")

    def has_act_unit(self, layer):
        return _bilinear(layer)

    def derive(self, d, layer, cfg):
        if _bilinear(layer):
            activation_unit.derive(d, layer, np.float64(d.tq[d.source(layer)].scale) * RESIZE_ACC_SCALE)

    def numeric(self, q, layer, ins):
        out_hw, align, half = _mode(layer)
        if not _bilinear(layer):
            return K.resize_nearest(ins[0], out_hw, align, half)
        tin = q.tensor(q.source(layer))
        return activation_unit.numeric(q, layer.name, K.resize_bilinear_acc(ins[0], tin.zp, out_hw, align, half))

    def fake_quant(self, f, layer, ins):
        x = ins[0]
        out_hw, align, half = _mode(layer)
        if not _bilinear(layer):
            return K.resize_nearest(x, out_hw, align, half)
        tin = f.tensor(f.source(layer))
        y0, y1, fy = K.bilinear_taps(int(x.shape[1]), out_hw[0], align, half)
        x0, x1, fx = K.bilinear_taps(int(x.shape[2]), out_hw[1], align, half)
        fy = fy.astype(np.float64)[None, :, None, None]
        fx = fx.astype(np.float64)[None, None, :, None]

        def acc_fn(v):
            xi = f.ste_centred(v, tin)
            rows = tf.gather(xi, y0, axis=1) * (256 - fy) + tf.gather(xi, y1, axis=1) * fy
            return tf.gather(rows, x0, axis=2) * (256 - fx) + tf.gather(rows, x1, axis=2) * fx

        return activation_unit.fake_quant(f, layer, None, inputs=[x], acc_fn=acc_fn)

    def check(self, c, layer):
        if _bilinear(layer):
            activation_unit.check(c, layer, np.float64(c.tq[c.source(layer)].scale) * RESIZE_ACC_SCALE)


KINDS = (Resize(),)
