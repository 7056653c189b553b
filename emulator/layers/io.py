"""The network's ends: input_layer and output_layer.

input_layer   float: the data; integer: the codes the host quantizer made (hailort_py.quantize:
              clip to limvals, x / s + z, round half to even, saturate), or raw pixels with the
              identity QP (s = 1, z = 0) when a normalization is folded after it
output_layer  keeps the tensor of the layer before it; its stream carries those codes
"""
from __future__ import annotations

import numpy as np

from .._lazy import tf
from ..numerics.params import TensorQ, qmax
from .base import LayerKind


class InputLayer(LayerKind):
    types = ("input_layer",)
    xla = False

    def float_op(self, layer, inputs, params):
        return inputs[0]

    def tensor(self, d, layer, cfg):
        if d.feeds_folded(layer):
            return TensorQ(1.0, 0, cfg.out_bits)  # the identity QP: raw pixels go in
        return d.tensor_from_range(layer.name, cfg.out_bits, "input")

    def numeric(self, q, layer, ins):
        return ins[0]

    def fake_quant(self, f, layer, ins):
        """The C host quantizer's formula in float32 (clip to limvals, x / s + z, clamp, round
        half to even), dequantized; identity QP: clip to [0, 2^b - 1] and round."""
        t = f.tensor(layer.name)
        qm = np.float32(qmax(t.bits))
        if t.scale == 1.0 and t.zp == 0:
            lo, hi = np.float32(0.0), qm
        else:
            lo, hi = (np.float32(v) for v in t.limvals)
        s, z = np.float32(t.scale), np.float32(t.zp)

        def codes(x):
            return tf.minimum(tf.maximum(x, lo), hi) / s + z

        def fwd(x):
            return (tf.round(tf.minimum(tf.maximum(codes(x), np.float32(0.0)), qm)) - z) * s

        def bwd(g, x):  # straight-through: 1 where neither clamp is active
            v = codes(x)
            return tf.where((x >= lo) & (x <= hi) & (v >= 0.0) & (v <= qm), g, 0.0)

        return f.fused(f"{layer.name}/host_quantize", fwd, bwd, ins[0])


class OutputLayer(LayerKind):
    types = ("output_layer",)
    passthrough = True
    xla = False

    def float_op(self, layer, inputs, params):
        return inputs[0]

    def numeric(self, q, layer, ins):
        return ins[0]

    def fake_quant(self, f, layer, ins):
        return ins[0]


KINDS = (InputLayer(), OutputLayer())
