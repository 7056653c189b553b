"""The registry of layer kinds: one module per kind, each holding that kind's float op, parameter
derivation, bit-exact integer op, fake-quant op and stored-field check side by side (base.py says
what a kind is). Executors, derivation, export and the load-time check dispatch through
`kind_of`; nothing else in the emulator branches on a layer's type.

  io             input_layer, output_layer
  mac            conv, dw, deconv, dense
  activation     the activation functions, and the standalone activation layer
  elementwise    ew_add, ew_sub, ew_mult
  pools          maxpool, avgpool, global_avg_pool
  reduce         reduce_max, reduce_sum
  resize         resize (nearest, bilinear)
  shape          concat, slice, reshape, pad, space_to_depth, depth_to_space, feature_shuffle
  normalization  normalization
  host           softmax, argmax (run on the host)
  activation_unit  the rescale + activation every accumulating kind ends in (not a kind)

A new layer type is one new module here (its KINDS tuple listed below) plus its tests; the HN
schema of its params is in hn.py.
"""
from __future__ import annotations

from ..errors import HNError
from ..hn import Layer
from . import activation, elementwise, host, io, mac, normalization, pools, reduce, resize, shape
from .base import LayerKind

KINDS: dict[str, LayerKind] = {}
for _module in (io, mac, activation, elementwise, pools, reduce, resize, shape, normalization, host):
    for _kind in _module.KINDS:
        for _t in _kind.types:
            if _t in KINDS:
                raise RuntimeError(f"layer type '{_t}' registered twice")
            KINDS[_t] = _kind

PASSTHROUGH = tuple(t for t, k in KINDS.items() if k.passthrough)  # keep their input's tensor
HOST_OPS = tuple(t for t, k in KINDS.items() if k.host)            # run on the host


def kind_of(layer: Layer | str) -> LayerKind:
    """The kind of a layer (or of a layer type name)."""
    t = layer if isinstance(layer, str) else layer.type
    try:
        return KINDS[t]
    except KeyError:
        where = "" if isinstance(layer, str) else f"layer '{layer.name}': "
        raise HNError(f"{where}no implementation for layer type '{t}' (known: {', '.join(KINDS)})") from None


__all__ = ["KINDS", "PASSTHROUGH", "HOST_OPS", "LayerKind", "kind_of"]
