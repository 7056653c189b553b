"""Reductions over axes: reduce_max, reduce_sum (docs/numerics.md, "Other layers").

reduce_max  float: max; integer: the max of the codes (keeps the input's tensor)
reduce_sum  float: sum; integer: the activation unit on sum (q - z_in) at s_acc = s_in
"""
from __future__ import annotations

import numpy as np

from .._lazy import kernels as K
from .._lazy import tf
from . import activation_unit
from .base import LayerKind, reshape_out


class ReduceMax(LayerKind):
    types = ("reduce_max",)
    passthrough = True

    def float_op(self, layer, inputs, params):
        return reshape_out(tf.reduce_max(inputs[0], axis=layer.params["axes"], keepdims=True), layer)

    def numeric(self, q, layer, ins):
        return reshape_out(K.reduce_max(ins[0], layer.params["axes"]), layer)


class ReduceSum(LayerKind):
    types = ("reduce_sum",)

    def float_op(self, layer, inputs, params):
        return reshape_out(tf.reduce_sum(inputs[0], axis=layer.params["axes"], keepdims=True), layer)

    def has_act_unit(self, layer):
        return True

    def derive(self, d, layer, cfg):
        activation_unit.derive(d, layer, np.float64(d.tq[d.source(layer)].scale))

    def numeric(self, q, layer, ins):
        tin = q.tensor(q.source(layer))
        acc = K.reduce_sum_acc(ins[0], tin.zp, tin.bits, layer.params["axes"])
        return reshape_out(activation_unit.numeric(q, layer.name, acc), layer)

    def fake_quant(self, f, layer, ins):
        tin, axes = f.tensor(f.source(layer)), layer.params["axes"]
        acc_fn = lambda x: tf.reduce_sum(f.ste_centred(x, tin), axis=axes, keepdims=True)  # noqa: E731
        return reshape_out(activation_unit.fake_quant(f, layer, None, inputs=[ins[0]], acc_fn=acc_fn), layer)

    def check(self, c, layer):
        activation_unit.check(c, layer, np.float64(c.tq[c.source(layer)].scale))


KINDS = (ReduceMax(), ReduceSum())
