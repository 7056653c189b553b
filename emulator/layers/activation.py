"""The activation functions in float32, and the standalone `activation` layer.

Float: activation_fn(act, x) as Keras 3 computes it on the TF backend; every layer with a fused
activation applies it after its float_op (float_ops.run_float_layer).
Integer: the activation unit on the centred input code, acc = q - z_in at s_acc = s_in
(activation_unit.py has the formulas).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .._lazy import kernels as K
from .._lazy import tf
from ..errors import HNError
from ..hn import Layer
from . import activation_unit
from .base import LayerKind, param


def activation_fn(act: str, x, leaky_alpha: float = 0.2, alpha=None):
    """One activation by HN name, as Keras 3 computes it on the TF backend (float32)."""
    if act == "linear":
        return x
    if act == "relu":
        return tf.nn.relu(x)
    if act == "relu6":
        return tf.nn.relu6(x)
    if act == "leaky":
        return tf.nn.leaky_relu(x, alpha=float(leaky_alpha))
    if act == "prelu":
        # Keras PReLU: relu(x) - alpha * relu(-x)
        return tf.nn.relu(x) - alpha * tf.nn.relu(-x)
    if act == "sigmoid":
        return tf.nn.sigmoid(x)
    if act == "tanh":
        return tf.nn.tanh(x)
    if act == "silu":
        return tf.nn.silu(x)
    if act == "hardsigmoid":
        return tf.nn.relu6(x + 3.0) / 6.0
    if act == "hardswish":
        return x * (tf.nn.relu6(x + 3.0) / 6.0)
    if act == "gelu":
        return tf.nn.gelu(x, approximate=False)
    if act == "gelu_tanh":
        return tf.nn.gelu(x, approximate=True)
    if act == "elu":
        return tf.nn.elu(x)
    if act == "exp":
        return tf.exp(x)
    if act == "mish":
        return x * tf.nn.tanh(tf.math.softplus(x))
    if act == "softplus":
        return tf.math.softplus(x)
    raise HNError(f"unknown activation '{act}'")


def apply_activation(x, layer: Layer, params: dict[str, Any] | None = None):
    """The layer's activation (params['activation'], default linear) applied to x.
    `prelu` needs params['alpha'] (per channel, last axis); a `relu6` with params['act_clip']
    clips channel c at act_clip[c] instead of 6 (what equalization leaves)."""
    act = layer.params.get("activation", "linear")
    if act == "relu6" and params and "act_clip" in params:
        return tf.minimum(tf.nn.relu(x), param(params, "act_clip", layer))
    return activation_fn(act, x, leaky_alpha=layer.params.get("leaky_alpha", 0.2),
                         alpha=(param(params or {}, "alpha", layer) if act == "prelu" else None))


class Activation(LayerKind):
    types = ("activation",)

    def float_op(self, layer, inputs, params):
        return inputs[0]

    def has_act_unit(self, layer):
        return True

    def derive(self, d, layer, cfg):
        activation_unit.derive(d, layer, np.float64(d.tq[d.source(layer)].scale),
                               alpha=d.params(layer.name).get("alpha"))

    def numeric(self, q, layer, ins):
        tin = q.tensor(q.source(layer))
        return activation_unit.numeric(q, layer.name, K.centred_acc(ins[0], tin.zp, tin.bits))

    def fake_quant(self, f, layer, ins):
        tin = f.tensor(f.source(layer))
        return activation_unit.fake_quant(f, layer, None, inputs=[ins[0]],
                                          acc_fn=lambda x: f.ste_centred(x, tin))

    def check(self, c, layer):
        activation_unit.check(c, layer, np.float64(c.tq[c.source(layer)].scale))


KINDS = (Activation(),)
