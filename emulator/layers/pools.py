"""Pooling: maxpool, avgpool, global_avg_pool (docs/numerics.md, "Other layers").

maxpool          float: max over the window (Hailo's SAME pads with -inf: padding never wins);
                 integer: the max of the codes (the output keeps the input's tensor)
avgpool          float: window sum / window count (count_include_pad decides the count);
                 integer: q = clamp(((sum (q - z_in)) * M[n] + 2^(r[n]-1)) >> r[n]) + z, ...),
                 one (M, r) per distinct window count n: M[n] 2^-r[n] ~= s_in / (n s_out)
global_avg_pool  float: mean over H, W; integer: the activation unit on sum (q - z_in) at
                 s_acc = s_in / (H W)
"""
from __future__ import annotations

import numpy as np

from .._lazy import kernels as K
from .._lazy import tf
from ..hn import Layer
from ..numerics.geometry import pool_counts, spatial_pads
from ..numerics.params import derive_rescale
from . import activation_unit
from .base import I32, I64, LayerKind, reshape_out


def pool_geometry(layer: Layer) -> tuple[list[int], list[int], tuple, np.ndarray]:
    """(kernel hw, strides hw, pads, window count per output position) of a pool."""
    p = layer.params
    k, s = p["kernel_shape"][1:3], p["strides"][1:3]
    hw = layer.input_shapes[0][1:3]
    pads = spatial_pads(hw, k, s, (1, 1), p["padding"])
    return k, s, pads, pool_counts(hw, k, s, pads, bool(p.get("count_include_pad", False)))


def _ksize(layer: Layer) -> list[int]:
    k = layer.params["kernel_shape"]
    return [1, k[1], k[2], 1]


class MaxPool(LayerKind):
    types = ("maxpool",)
    passthrough = True

    def float_op(self, layer, inputs, params):
        x, pad, strides = inputs[0], layer.params["padding"], layer.params["strides"]
        _, _, pads, _ = pool_geometry(layer)
        if pad == "SAME":
            x = K.pad_const(x, [[0, 0], list(pads[0]), list(pads[1]), [0, 0]], -np.inf)
            pad = "VALID"
        return tf.nn.max_pool2d(x, _ksize(layer), strides, "SAME" if pad == "SAME_TENSORFLOW" else "VALID")

    def numeric(self, q, layer, ins):
        k, s, pads, _ = pool_geometry(layer)
        return K.maxpool(ins[0], k, s, pads)


class AvgPool(LayerKind):
    types = ("avgpool",)

    def float_op(self, layer, inputs, params):
        x, pad = inputs[0], layer.params["padding"]
        ksize, strides = _ksize(layer), layer.params["strides"]
        n = float(ksize[1] * ksize[2])
        include = bool(layer.params.get("count_include_pad", False))
        if pad == "SAME" or (pad == "SAME_TENSORFLOW" and include):
            _, _, (ph, pw), _ = pool_geometry(layer)
            pads = [[0, 0], list(ph), list(pw), [0, 0]]
            summed = tf.nn.avg_pool2d(K.pad_const(x, pads), ksize, strides, "VALID") * n
            if include:
                return summed / n
            ones = K.pad_const(tf.ones_like(x[:1, :, :, :1]), pads)
            return summed / (tf.nn.avg_pool2d(ones, ksize, strides, "VALID") * n)
        # TF's SAME average excludes the padding (as TFLite and Keras do)
        return tf.nn.avg_pool2d(x, ksize, strides, "SAME" if pad == "SAME_TENSORFLOW" else "VALID")

    def derive(self, d, layer, cfg):
        name = layer.name
        tin, out = d.tq[d.source(layer)], d.tq[name]
        vals = np.unique(pool_geometry(layer)[3])
        M, r = derive_rescale(np.float64(tin.scale) / (vals * np.float64(out.scale)), out.bits, name)
        d.put(name, "pool_counts", vals.astype(np.int64))
        d.put(name, "M", M.astype(np.int32))
        d.put(name, "r", r.astype(np.int32))

    def _per_position(self, ctx, layer: Layer):
        """(kernel, strides, pads, index into pool_counts / M / r of every output position)."""
        k, s, pads, counts = pool_geometry(layer)
        return k, s, pads, np.searchsorted(ctx.get(layer.name, "pool_counts"), counts)

    def numeric(self, q, layer, ins):
        name = layer.name
        tin, out = q.tensor(q.source(layer)), q.tensor(name)
        k, s, pads, idx = self._per_position(q, layer)
        return K.requantize_per_position(K.avgpool_acc(ins[0], tin.zp, tin.bits, k, s, pads),
                                         q.get(name, "M")[idx], q.get(name, "r")[idx], out.zp, out.bits)

    def fake_quant(self, f, layer, ins):
        name = layer.name
        k, s, pads, idx = self._per_position(f, layer)
        m = f.m_eff(name)[idx][:, :, None]
        tin = f.tensor(f.source(layer))
        dt = K.exact_dtype(tin.max_centred * k[0] * k[1]) or tf.float64
        ones = tf.ones((k[0], k[1], int(ins[0].shape[-1]), 1), dt)
        acc = K.depthwise_op(s, (1, 1), pads)(f.centred(ins[0], tin, dt), ones)
        return f.requantize(name, acc, m, f.tensor(name))

    def fields(self, layer):
        n = len(np.unique(pool_geometry(layer)[3]))
        return {"pool_counts": (I64, (n,), True), "M": (I32, (n,), True), "r": (I32, (n,), True)}

    def check(self, c, layer):
        name = layer.name
        tin, out = c.tq[c.source(layer)], c.tq[name]
        vals = np.unique(pool_geometry(layer)[3])
        pc = c.a(name, "pool_counts")
        if not np.array_equal(pc, vals):
            raise c.fail(name, "pool_counts", f"expected {vals.tolist()}, the distinct window counts "
                                              f"of this pool's geometry, found {pc.tolist()}")
        c.check_rescale(name, "M", "r", out.bits)
        if c.rederive:
            c.rederived_rescale(name, "M", "r", np.float64(tin.scale) / (vals * np.float64(out.scale)),
                                out.bits, "average rescale")


class GlobalAvgPool(LayerKind):
    types = ("global_avg_pool",)

    def float_op(self, layer, inputs, params):
        return reshape_out(tf.reduce_mean(inputs[0], axis=[1, 2], keepdims=True), layer)

    def has_act_unit(self, layer):
        return True

    def _s_acc(self, tin, layer: Layer) -> np.float64:
        return np.float64(tin.scale) / (layer.input_shapes[0][1] * layer.input_shapes[0][2])

    def derive(self, d, layer, cfg):
        activation_unit.derive(d, layer, self._s_acc(d.tq[d.source(layer)], layer))

    def numeric(self, q, layer, ins):
        tin = q.tensor(q.source(layer))
        return reshape_out(activation_unit.numeric(q, layer.name, K.global_sum_acc(ins[0], tin.zp, tin.bits)),
                           layer)

    def fake_quant(self, f, layer, ins):
        tin = f.tensor(f.source(layer))
        acc_fn = lambda x: tf.reduce_sum(f.ste_centred(x, tin), axis=[1, 2])  # noqa: E731
        return reshape_out(activation_unit.fake_quant(f, layer, None, inputs=[ins[0]], acc_fn=acc_fn), layer)

    def check(self, c, layer):
        activation_unit.check(c, layer, self._s_acc(c.tq[c.source(layer)], layer))


KINDS = (MaxPool(), AvgPool(), GlobalAvgPool())
