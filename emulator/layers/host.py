"""Host ops: softmax and argmax at a network's outputs. They run on the host after the output
stream is dequantized (never on the chip), so their quantized form is the float op:
  host_numpy(layer, x)  what the host applies to the dequantized float32 output (SdkNumeric,
                        EmulatedDevice, the host app): softmax in float64 over the float32 values
                        rounded to float32 (the same bytes whatever the batch size); argmax as
                        float32 indices shaped as the layer's output
"""
from __future__ import annotations

import numpy as np

from .._lazy import tf
from ..hn import Layer
from .base import LayerKind, reshape_out


class Softmax(LayerKind):
    types = ("softmax",)
    host = True

    def float_op(self, layer, inputs, params):
        return tf.nn.softmax(inputs[0], axis=int(layer.params.get("axis", -1)))

    def host_numpy(self, layer: Layer, x: np.ndarray) -> np.ndarray:
        axis = int(layer.params.get("axis", -1))
        d = np.asarray(x, np.float32).astype(np.float64)
        e = np.exp(d - d.max(axis=axis, keepdims=True))
        return (e / e.sum(axis=axis, keepdims=True)).astype(np.float32)


class Argmax(LayerKind):
    types = ("argmax",)
    host = True

    def float_op(self, layer, inputs, params):
        idx = tf.argmax(inputs[0], axis=int(layer.params["axis"]), output_type=tf.int32)
        return reshape_out(tf.cast(idx, tf.float32), layer)

    def host_numpy(self, layer: Layer, x: np.ndarray) -> np.ndarray:
        idx = np.argmax(np.asarray(x, np.float32), axis=int(layer.params["axis"])).astype(np.float32)
        return idx.reshape([-1] + list(layer.output_shape[1:]))


KINDS = (Softmax(), Argmax())
