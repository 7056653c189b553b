"""Read access to a quantized network's stored params, by layer (what the executors and the
layer kinds read)."""
from __future__ import annotations

import numpy as np

from ..hn import HNGraph, Layer
from ..numerics.params import TensorQ
from .keys import Placement, qkey, read_placement


class QParams:
    def __init__(self, hn: HNGraph, qp: dict):
        self.hn, self.qp, self.net = hn, qp, hn.name
        self._placement: dict[str, Placement] = {}

    def has(self, layer: str, field: str) -> bool:
        return qkey(self.net, layer, field) in self.qp

    def get(self, layer: str, field: str):
        return self.qp[qkey(self.net, layer, field)]

    def placement(self, layer: str) -> Placement:
        p = self._placement.get(layer)
        if p is None:
            p = self._placement[layer] = read_placement(self.get(layer, "kind"))
        return p

    def on_chip(self, layer: str) -> bool:
        return self.placement(layer) == Placement.CHIP

    def tensor(self, layer: str) -> TensorQ:
        return TensorQ(float(self.get(layer, "out_scale")), int(self.get(layer, "out_zp")),
                       int(self.get(layer, "out_bits")))

    def source(self, layer: Layer, i: int = 0) -> str:
        """The on-chip tensor feeding input i of `layer` (skipping folded normalizations)."""
        name = layer.input[i]
        while self.placement(name) == Placement.FOLDED:
            name = self.hn.layers[name].input[0]
        return name

    def bias(self, layer: str) -> np.ndarray:
        """B = mantissa * 2^exponent (int64)."""
        return self.get(layer, "bias_mantissa").astype(np.int64) << int(self.get(layer, "bias_exponent"))

    def bias_mantissa_bits(self, layer: str) -> int:
        """The width of the stored bias mantissa: 8 (int8, single scale) or 16 (int16, double)."""
        return 8 if self.get(layer, "bias_mantissa").dtype == np.int8 else 16

    def m_eff(self, layer: str, M: str = "M", r: str = "r") -> np.ndarray:
        """The rescale M * 2^-r as float64 (exact)."""
        return self.get(layer, M).astype(np.float64) * np.exp2(-self.get(layer, r).astype(np.float64))

    def quant_info(self, layer: str):
        """The hailort_py.QuantInfo of a layer's output tensor (what its stream carries)."""
        from ..stream_export import tensor_quant_info

        return tensor_quant_info(self.qp, self.net, layer)
