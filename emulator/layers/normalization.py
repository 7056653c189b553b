"""Per-channel normalization (x - mean) / std (docs/numerics.md, "Normalization").

Folded (right after an input layer, feeding one unpadded, ungrouped MAC layer, raw pixels
in range): it has no tensor of its own; W' = W / std_c, b' = b - sum W mean_c / std_c go into
the MAC layer (quantization/folding.py) and the input gets the identity QP.
On chip:  acc = (q - z_in) * 2^8 + B_c,  B_c = rhe(-mean_c / s_in * 2^8), then the activation
          unit at s_acc = s_in * 2^-8 / std_c.
"""
from __future__ import annotations

import numpy as np

from .._lazy import kernels as K
from ..numerics.params import rhe
from . import activation_unit
from .base import I64, LayerKind, param

NORM_SHIFT = 8
FLOAT64_EXACT_ACC = 1 << 38  # float64 accumulators: |acc| < 2^38 keeps acc * M exact


class Normalization(LayerKind):
    types = ("normalization",)

    def float_op(self, layer, inputs, params):
        return (inputs[0] - param(params, "mean", layer)) / param(params, "std", layer)

    def has_act_unit(self, layer):
        return True

    def derive(self, d, layer, cfg):
        prm = d.params(layer.name)
        s_in = np.float64(d.tq[d.source(layer)].scale)
        mean, std = np.asarray(prm["mean"], np.float64), np.asarray(prm["std"], np.float64)
        d.put(layer.name, "norm_bias", rhe(-mean / s_in * 2.0 ** NORM_SHIFT).astype(np.int64))
        activation_unit.derive(d, layer, s_in * 2.0 ** -NORM_SHIFT / std)

    def numeric(self, q, layer, ins):
        tin = q.tensor(q.source(layer))
        return activation_unit.numeric(q, layer.name, K.normalization_acc(ins[0], tin.zp,
                                                                           q.get(layer.name, "norm_bias")))

    def fake_quant(self, f, layer, ins):
        tin = f.tensor(f.source(layer))
        acc_fn = lambda x: f.ste_centred(x, tin) * float(1 << NORM_SHIFT)  # noqa: E731
        return activation_unit.fake_quant(f, layer, None, bias=f.get(layer.name, "norm_bias"),
                                          inputs=[ins[0]], acc_fn=acc_fn)

    def fields(self, layer):
        return {"norm_bias": (I64, (int(layer.output_shape[-1]),), True)}

    def check(self, c, layer):
        name = layer.name
        tin = c.tq[c.source(layer)]
        B = c.a(name, "norm_bias")
        bound = (int(np.abs(B).max()) if B.size else 0) + (1 << NORM_SHIFT) * tin.max_centred
        if bound >= FLOAT64_EXACT_ACC:
            raise c.fail(name, "norm_bias", f"the accumulator (q - z) * 2^8 + B could reach {bound:,} "
                                            f">= 2^38, beyond the exact float64 rescale")
        activation_unit.check(c, layer, None)  # s_acc holds the float std: not derivable


KINDS = (Normalization(),)
