"""Float32 execution of HN layers (the native / fp-optimized math), through the layer kinds.

  run_float_layer(layer, inputs, params) -> Tensor   the layer, fused activation included
  pre_activation(layer, inputs, params) -> Tensor    the MAC / affine / op result before it
  apply_activation(x, layer, params=None) -> Tensor  the fused activation alone
  activation_fn(act, x, ...)                         one activation by HN name
  layer_macs(layer) -> int                           multiply-accumulates of one frame
`params` hold BARE keys: "kernel", "bias", "alpha", "mean", "std" (numpy arrays or tensors).
Only TF ops are used, so these work eagerly, inside tf.function and in tf.compat.v1 graphs.
Where Keras or TFLite define an op, the same TF kernel is used so native results match them.
"""
from __future__ import annotations

from typing import Any

from .hn import Layer
from .layers import kind_of
from .layers.activation import activation_fn, apply_activation

Tensor = Any


def pre_activation(layer: Layer, inputs: list[Tensor], params: dict[str, Any]) -> Tensor:
    """The layer's result before its fused activation: conv / dw / deconv / dense return
    MAC + bias; ew_* the element-wise result; `activation` its input; every other type its
    full result (they have no activation)."""
    return kind_of(layer).float_op(layer, inputs, params)


def run_float_layer(layer: Layer, inputs: list[Tensor], params: dict[str, Any]) -> Tensor:
    """One HN layer in float32, fused activation included (see module doc)."""
    return apply_activation(pre_activation(layer, inputs, params), layer, params)


def layer_macs(layer: Layer) -> int:
    """Multiply-accumulates of one frame through the layer (for reports and estimates)."""
    return kind_of(layer).macs(layer)


__all__ = ["pre_activation", "run_float_layer", "apply_activation", "activation_fn", "layer_macs"]
