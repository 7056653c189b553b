"""Element-wise layers of two tensors: ew_add, ew_sub, ew_mult (docs/numerics.md, "Other layers").

Float:   a + b, a - b, a * b (broadcasting as TF does)
Integer: add / sub: acc = A_a (q_a - z_a) +- A_b (q_b - z_b), with A_i = rhe(s_i / s_acc) and
         s_acc = max(s_a, s_b) * 2^-t (t = 14 for 8-bit operands, 22 when one is 16-bit);
         mult:  acc = (q_a - z_a)(q_b - z_b) at s_acc = s_a * s_b;
         then the activation unit.
"""
from __future__ import annotations

import numpy as np

from .._lazy import kernels as K
from ..numerics.params import (ACC_LIMIT_BITS, EW_EXTRA_BITS, check_accumulator, ew_multipliers)
from . import activation_unit
from .base import I64, LayerKind

ACC_LIMIT = 1 << (ACC_LIMIT_BITS - 1)


class AddSub(LayerKind):
    types = ("ew_add", "ew_sub")

    def float_op(self, layer, inputs, params):
        return inputs[0] - inputs[1] if layer.type == "ew_sub" else inputs[0] + inputs[1]

    def has_act_unit(self, layer):
        return True

    def derive(self, d, layer, cfg):
        ta, tb = d.tq[d.source(layer)], d.tq[d.source(layer, 1)]
        A, s_acc = ew_multipliers([ta.scale, tb.scale], max(ta.bits, tb.bits))
        check_accumulator(layer.name, int(A[0]) * ta.max_centred + int(A[1]) * tb.max_centred)
        d.put(layer.name, "ew_mult", A.astype(np.int64))
        activation_unit.derive(d, layer, s_acc, alpha=d.params(layer.name).get("alpha"))

    def numeric(self, q, layer, ins):
        ta, tb = q.tensor(q.source(layer)), q.tensor(q.source(layer, 1))
        A = q.get(layer.name, "ew_mult")
        return activation_unit.numeric(q, layer.name, K.ew_add_acc(
            ins[0], ta.zp, ta.bits, int(A[0]), ins[1], tb.zp, tb.bits, int(A[1]),
            subtract=layer.type == "ew_sub"))

    def fake_quant(self, f, layer, ins):
        A = f.get(layer.name, "ew_mult").astype(np.float64)
        ta, tb = f.tensor(f.source(layer)), f.tensor(f.source(layer, 1))
        sign = -1.0 if layer.type == "ew_sub" else 1.0

        def acc_fn(a, b):
            return f.ste_centred(a, ta) * A[0] + f.ste_centred(b, tb) * (sign * A[1])

        return activation_unit.fake_quant(f, layer, None, inputs=list(ins[:2]), acc_fn=acc_fn)

    def fields(self, layer):
        return {"ew_mult": (I64, (2,), True)}

    def check(self, c, layer):
        name = layer.name
        ta, tb = c.tq[c.source(layer)], c.tq[c.source(layer, 1)]
        bits = max(ta.bits, tb.bits)
        t = EW_EXTRA_BITS[bits]
        c.int_range(name, "ew_mult", 0, 1 << t, f"operand multipliers (t = {t})")
        A = c.a(name, "ew_mult").astype(np.int64)
        if int(A.max()) != 1 << t:
            raise c.fail(name, "ew_mult", f"expected the larger multiplier to be 2^{t} = {1 << t} "
                                          f"(docs/numerics.md 'Other layers'), found {A.tolist()}")
        bound = int(A[0]) * ta.max_centred + int(A[1]) * tb.max_centred
        if bound >= ACC_LIMIT:
            raise c.fail(name, "ew_mult", f"the accumulator could reach {bound:,} >= 2^{ACC_LIMIT_BITS - 1}")
        want_A, s_acc = ew_multipliers([ta.scale, tb.scale], bits)
        if c.rederive and not np.array_equal(A, want_A):
            raise c.fail(name, "ew_mult", f"expected {want_A.tolist()}, what the operands' scales "
                                          f"derive, found {A.tolist()}")
        activation_unit.check(c, layer, s_acc)


class Mult(LayerKind):
    types = ("ew_mult",)

    def float_op(self, layer, inputs, params):
        return inputs[0] * inputs[1]

    def has_act_unit(self, layer):
        return True

    def derive(self, d, layer, cfg):
        ta, tb = d.tq[d.source(layer)], d.tq[d.source(layer, 1)]
        activation_unit.derive(d, layer, np.float64(ta.scale) * np.float64(tb.scale),
                               alpha=d.params(layer.name).get("alpha"))

    def numeric(self, q, layer, ins):
        ta, tb = q.tensor(q.source(layer)), q.tensor(q.source(layer, 1))
        return activation_unit.numeric(q, layer.name, K.ew_mult_acc(ins[0], ta.zp, ins[1], tb.zp))

    def fake_quant(self, f, layer, ins):
        ta, tb = f.tensor(f.source(layer)), f.tensor(f.source(layer, 1))
        return activation_unit.fake_quant(f, layer, None, inputs=list(ins[:2]),
                                          acc_fn=lambda a, b: f.ste_centred(a, ta) * f.ste_centred(b, tb))

    def check(self, c, layer):
        ta, tb = c.tq[c.source(layer)], c.tq[c.source(layer, 1)]
        activation_unit.check(c, layer, np.float64(ta.scale) * np.float64(tb.scale))


KINDS = (AddSub(), Mult())
