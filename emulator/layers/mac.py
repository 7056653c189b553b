"""Multiply-accumulate layers: conv, dw (depthwise), deconv (transposed conv), dense
(docs/numerics.md, "Multiply-accumulate layers").

Float:    y = op(x, W) + b (TF's conv / depthwise / transposed conv / matmul kernels, Hailo's
          SAME padding: the odd extra row / column first)
Integer:  acc[o] = sum_k (q[k] - z_in) * q_w[k, o] + B[o],   B = mant * 2^e
          then the activation unit (activation_unit.py) at s_acc[o] = s_in * s_w[g(o)]
Derived:  q_w, s_w per group (symmetric, 4 / 8 / 16 bits), the bias decomposed into an int8 /
          int16 mantissa and one exponent (bias_mode), a folded normalization applied to W and b
          first; the accumulator bound sum |q_w| * max |q - z| + max |B| < 2^47 checked.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from .._lazy import kernels as K
from .._lazy import tf
from ..errors import HNError
from ..hn import Layer
from ..numerics.geometry import spatial_pads, tf_pads
from ..numerics.params import (ACC_LIMIT_BITS, abs_weight_sum, channel_groups, check_accumulator,
                               decompose_bias, mac_bound, quantize_weights)
from ..numerics.activations import LUT_ACTS
from . import activation_unit
from .base import F64, I32, LayerKind, param, spatial

ACC_LIMIT = 1 << (ACC_LIMIT_BITS - 1)
BIAS_DTYPES = {"single_scale_decomposition": np.int8, "double_scale_initialization": np.int16}


def weights_2d(kernel: np.ndarray, ltype: str) -> np.ndarray:
    """The kernel as [K, C_out] (last axis the output channel; depthwise: [kh*kw, cin*mult])."""
    if ltype == "dw":
        kh, kw, ci, m = kernel.shape
        return kernel.reshape(kh * kw, ci * m)
    return kernel.reshape(-1, kernel.shape[-1])


class MacKind(LayerKind):
    """What conv, dw, deconv and dense share: weights, bias, the activation unit."""

    def has_act_unit(self, layer: Layer) -> bool:
        return True

    def product(self, layer: Layer, x, kernel):
        """The float MAC without bias."""
        raise NotImplementedError

    def int_op(self, layer: Layer):
        """The MAC as a callable (x, w) -> y on integer-valued float tensors (kernels.*_op)."""
        raise NotImplementedError

    def float_op(self, layer, inputs, params):
        return tf.nn.bias_add(self.product(layer, inputs[0], param(params, "kernel", layer)),
                              param(params, "bias", layer))

    # --- derivation ---------------------------------------------------------------------------
    def derive(self, d, layer, cfg):
        name = layer.name
        out, tin = d.tq[name], d.tq[d.source(layer)]
        kernel, bias = d.kernel_bias(layer)
        s_dest = d.pre_tensor(name).scale if layer.activation in LUT_ACTS else out.scale
        w2d = weights_2d(kernel, layer.type)
        C = w2d.shape[1]
        q2d, s_w = quantize_weights(w2d, cfg.w_bits, cfg.groups,
                                    zero_group_scale=np.float64(s_dest) / np.float64(tin.scale),
                                    clip=d.weight_clips(layer, w2d, cfg))
        s_acc = np.float64(tin.scale) * s_w[channel_groups(C, cfg.groups)]
        mant, e = decompose_bias(bias / s_acc, cfg.bias_mantissa_bits)
        B = mant * (1 << e)
        check_accumulator(name, mac_bound(q2d, tin.max_centred) + int(np.abs(B).max()))
        d.put(name, "q_w", q2d.reshape(kernel.shape).astype(np.int8 if cfg.w_bits <= 8 else np.int16))
        d.put(name, "s_w", s_w)
        d.put(name, "w_bits", np.array(cfg.w_bits, np.int32))
        d.put(name, "groups", np.array(cfg.groups, np.int32))
        d.put(name, "bias_mantissa", mant.astype(BIAS_DTYPES[cfg.bias_mode]))
        d.put(name, "bias_exponent", np.array(e, np.int32))
        activation_unit.derive(d, layer, s_acc, alpha=d.params(name).get("alpha"))

    # --- integer ------------------------------------------------------------------------------
    def accumulate(self, q, layer: Layer, x, tin, qw: np.ndarray, B: np.ndarray):
        raise NotImplementedError

    def numeric(self, q, layer, ins):
        name = layer.name
        tin = q.tensor(q.source(layer))
        acc = self.accumulate(q, layer, ins[0], tin, q.get(name, "q_w").astype(np.int64), q.bias(name))
        return activation_unit.numeric(q, name, acc)

    def fuse_product(self, layer: Layer) -> bool:
        """With XLA: whether the product runs inside the layer's one fused op (else on
        TensorFlow's kernel between the fused centring and activation unit)."""
        return True

    def numeric_compiled(self, q, layer, ins):
        """numeric() as one XLA function, or, where XLA's product is the slow one
        (fuse_product), TensorFlow's kernel between the compiled centring and activation unit."""
        if self.fuse_product(layer):
            return super().numeric_compiled(q, layer, ins)
        return self.numeric_split(q, layer, ins)

    def numeric_split(self, q, layer, ins):
        """The integer formulas with the product on TensorFlow's kernel and the centring and the
        activation unit compiled by XLA (float32 / float64 hold the integer sums exactly: the
        dtype comes from the worst-case accumulator bound, as in the integer kernels)."""
        name = layer.name
        tin = q.tensor(q.source(layer))
        qw, B = q.get(name, "q_w").astype(np.int64), q.bias(name)
        bound = K.max_centred(tin.zp, tin.bits) * abs_weight_sum(weights_2d(qw, layer.type))
        dt = K.exact_dtype(bound)
        if dt is None:
            return self.numeric(q, layer, ins)
        x = q.jit(name + "/in", lambda v: K.centred(v, tin.zp, dt))(ins[0])
        y = self.int_op(layer)(x, tf.constant(qw, dt))
        return q.jit(name + "/act", lambda v: activation_unit.numeric(q, name, K._add_bias(v, B, bound)))(y)

    def fake_quant(self, f, layer, ins):
        """The accumulator with float ops on integer values: float32 where the sum is provably
        exact (|acc| < 2^24), else float64, as the integer kernels do. With XLA, the centring of
        the input, the product and the activation unit (with the bias) are one fused op where
        XLA's product is fast (fuse_product); otherwise, and whenever the layer's parameters are
        trained (QFT: XLA's convolution gradients are slow), TensorFlow's kernel runs between
        the fused centring and activation unit, and its own gradients train through it."""
        name = layer.name
        tin = f.tensor(f.source(layer))
        wsum = f.weights(name)[3]
        dt = K.exact_dtype(tin.max_centred * wsum) or tf.float64
        bias = f.mac_bias(name, layer)
        if f.xla and self.fuse_product(layer) and not f.trains(name):
            op = self.fused_op(layer)
            qw = f.stored_int_weights(name)
            return activation_unit.fake_quant(
                f, layer, None, bias=bias, inputs=[ins[0]], key=f"{name}/with_product",
                acc_fn=lambda x: op(f.ste_centred(x, tin, dt), tf.constant(qw, dt)))
        y = self.unfused_product(f, layer, ins[0], tin, dt)
        return activation_unit.fake_quant(f, layer, y, bias=bias)

    def fused_op(self, layer: Layer):
        """The product as it runs inside the fused op (x, w) -> y: int_op by default."""
        return self.int_op(layer)

    def unfused_product(self, f, layer: Layer, x, tin, dt):
        return self.int_op(layer)(f.centred(x, tin, dt), f.int_weights(layer.name, dt))

    # --- stored -------------------------------------------------------------------------------
    def fields(self, layer):
        C = int(layer.output_shape[-1])
        return {"q_w": ((np.int8, np.int16), tuple(int(v) for v in layer.params["kernel_shape"]), True),
                "s_w": (F64, None, True), "w_bits": (I32, (), True), "groups": (I32, (), True),
                "bias_mantissa": ((np.int8, np.int16), (C,), True), "bias_exponent": (I32, (), True)}

    def check(self, c, layer):
        activation_unit.check(c, layer, self._check_weights(c, layer))

    def _check_weights(self, c, layer: Layer) -> np.ndarray:
        """Weights, groups, bias and the accumulator bound; returns the s_acc they give."""
        name = layer.name
        tin = c.tq[c.source(layer)]
        cfg = c.configs[name]
        wb = int(c.item(name, "w_bits"))
        if wb not in (4, 8, 16):
            raise c.fail(name, "w_bits", f"expected 4, 8 or 16, found {wb}")
        if c.rederive and cfg.valid and wb != cfg.w_bits:
            raise c.fail(name, "w_bits", f"expected {cfg.w_bits}, the weight bits of its precision mode "
                                         f"{cfg.precision_mode}, found {wb}")
        qw = c.a(name, "q_w")
        want_dt = np.int8 if wb <= 8 else np.int16
        if qw.dtype != want_dt:
            raise c.fail(name, "q_w", f"expected dtype {np.dtype(want_dt).name} for {wb}-bit weights, "
                                      f"found {qw.dtype}")
        lim = (1 << (wb - 1)) - 1
        c.int_range(name, "q_w", -lim, lim, f"{wb}-bit weights")
        g = int(c.item(name, "groups"))
        if not 1 <= g <= 4:
            raise c.fail(name, "groups", f"expected 1..4 weight quantization groups, found {g}")
        if c.rederive and g != cfg.groups:
            raise c.fail(name, "groups", f"expected {cfg.groups} (quantization_groups in the HN), found {g}")
        sw = c.a(name, "s_w")
        if tuple(sw.shape) != (g,):
            raise c.fail(name, "s_w", f"expected shape [{g}] (one scale per group, groups = {g}), "
                                      f"found {list(sw.shape)}")
        c.finite_positive(name, "s_w", "weight scales")
        mant = c.a(name, "bias_mantissa")
        kbits = 8 if mant.dtype == np.int8 else 16
        if c.rederive:
            want_b = BIAS_DTYPES.get(str(cfg.bias_mode))
            if want_b is not None and mant.dtype != want_b:
                raise c.fail(name, "bias_mantissa", f"expected dtype {np.dtype(want_b).name} (bias_mode "
                                                    f"{cfg.bias_mode}), found {mant.dtype}")
        mmax = (1 << (kbits - 1)) - 1
        c.int_range(name, "bias_mantissa", -mmax, mmax, f"{kbits}-bit bias mantissas")
        c.int_range(name, "bias_exponent", 0, ACC_LIMIT_BITS - 1, "a bias exponent")
        e = int(c.item(name, "bias_exponent"))
        q2d = weights_2d(qw.astype(np.int64), layer.type)
        mac = abs_weight_sum(q2d) * tin.max_centred
        if mac >= ACC_LIMIT:
            raise c.fail(name, "q_w", f"the accumulator could reach {mac:,} >= 2^{ACC_LIMIT_BITS - 1} "
                                      f"(sum |q_w| times max |q - z| of the input)")
        bmax = (int(np.abs(mant.astype(np.int64)).max()) if mant.size else 0) << e
        if mac + bmax >= ACC_LIMIT:
            raise c.fail(name, "bias_exponent", f"the accumulator could reach {mac + bmax:,} >= "
                                                f"2^{ACC_LIMIT_BITS - 1} (weights {mac:,} plus bias "
                                                f"{bmax:,} = mantissa * 2^{e})")
        return np.float64(tin.scale) * sw[channel_groups(q2d.shape[1], g)]


@functools.lru_cache(maxsize=None)
def _onednn() -> bool:
    """Whether TensorFlow runs its oneDNN kernels in this process (docs/numerics.md, "TensorFlow
    and oneDNN"); False when that cannot be told."""
    try:
        from tensorflow.python.util import _pywrap_util_port

        return bool(_pywrap_util_port.IsMklEnabled())
    except Exception:  # noqa: BLE001  (a private API: absent means unknown)
        return False


def _depthwise_slices(strides, dilations, pads):
    """op(x, w) of a depthwise convolution (w [kh, kw, cin, mult]) as the sum over the kernel
    taps of a strided slice of the zero-padded input times that tap's weights: the same products
    and (exact, integer) sums as depthwise_op, in elementwise ops that XLA fuses with the
    centring and the activation unit (fake-quant)."""
    (pt, pb), (pl, pr) = pads
    sh, sw = strides
    dh, dw = dilations

    def op(xt, wt):
        kh, kw, ci, mult = (int(v) for v in wt.shape)
        if mult > 1:  # output channel c * mult + k reads input channel c
            xt = tf.repeat(xt, mult, axis=3)
        wt = tf.reshape(wt, [kh, kw, ci * mult])
        if pt or pb or pl or pr:
            xt = K.pad_const(xt, [[0, 0], [pt, pb], [pl, pr], [0, 0]])
        H, W = int(xt.shape[1]), int(xt.shape[2])
        oh, ow = (H - (kh - 1) * dh - 1) // sh + 1, (W - (kw - 1) * dw - 1) // sw + 1
        y = None
        for i in range(kh):
            for j in range(kw):
                y0, x0 = i * dh, j * dw
                tap = xt[:, y0:y0 + (oh - 1) * sh + 1:sh, x0:x0 + (ow - 1) * sw + 1:sw, :] * wt[i, j]
                y = tap if y is None else y + tap
        return y
    return op


def _pads(layer: Layer):
    k, s, d, pad = spatial(layer)
    return spatial_pads(layer.input_shapes[0][1:3], k[:2], s, d, pad)


class Conv(MacKind):
    types = ("conv",)

    def fuse_product(self, layer):
        """With TensorFlow's oneDNN kernels on, XLA's CPU convolution is the slower one on spatial
        kernels over few input channels (FER's 3x3 conv1 (1 channel, 64x64): 2.1x, conv2 (8
        channels): 1.35x, ONet's conv1 (3 channels): 1.4x), while a small layer gains from one
        fused op instead of three; without oneDNN, XLA's is as fast or faster everywhere."""
        k = layer.params["kernel_shape"]
        spatial_kernel = int(k[0]) * int(k[1]) > 1
        return not (spatial_kernel and int(k[2]) < 16 and self.macs(layer) >= 100_000 and _onednn())

    def product(self, layer, x, kernel):
        k, s, d, pad = spatial(layer)
        if pad == "SAME":  # Hailo's SAME as the convolution's own explicit padding (no pad op)
            tfpad = tf_pads(_pads(layer))
        else:
            tfpad = "SAME" if pad == "SAME_TENSORFLOW" else "VALID"
        s4, d4 = layer.params["strides"], layer.params.get("dilations", [1, 1, 1, 1])
        groups = int(layer.params.get("groups", 1))
        if groups == 1:
            return tf.nn.conv2d(x, kernel, strides=s4, padding=tfpad, dilations=d4)
        # grouped conv as split / concat: TF's native grouped conv is not available on every CPU build
        return tf.concat([tf.nn.conv2d(a, b, strides=s4, padding=tfpad, dilations=d4)
                          for a, b in zip(tf.split(x, groups, axis=3), tf.split(kernel, groups, axis=3))],
                         axis=3)

    def int_op(self, layer):
        _, s, d, _ = spatial(layer)
        return K.conv_op(s, d, _pads(layer), int(layer.params.get("groups", 1)))

    def accumulate(self, q, layer, x, tin, qw, B):
        _, s, d, _ = spatial(layer)
        return K.conv2d_acc(x, tin.zp, tin.bits, qw, B, s, d, _pads(layer), int(layer.params.get("groups", 1)))

    def macs(self, layer):
        k = layer.params["kernel_shape"]
        return math.prod(layer.output_shape[1:]) * k[0] * k[1] * k[2]


class Depthwise(MacKind):
    types = ("dw",)

    def product(self, layer, x, kernel):
        k, s, d, pad = spatial(layer)
        if s[0] != s[1]:
            # TF's depthwise kernel refuses unequal strides (Keras on TF cannot run such a layer;
            # TFLite can): the padding of the real strides made explicit, then stride 1 and a
            # subsample, which evaluates the same windows
            return K.depthwise_op(s, d, _pads(layer))(x, kernel)
        if pad == "SAME":
            x = K.pad_const(x, [[0, 0], *[list(p) for p in _pads(layer)], [0, 0]])
        tfpad = "SAME" if pad == "SAME_TENSORFLOW" else "VALID"
        return tf.nn.depthwise_conv2d(x, kernel, strides=layer.params["strides"], padding=tfpad, dilations=d)

    def fuse_product(self, layer):
        """XLA's CPU depthwise convolution is 10-40x slower than TensorFlow's (numeric_compiled
        keeps it out of XLA); inside the fused op the product is a sum of kh * kw shifted slices
        times per-channel weights instead (`_depthwise_slices`), elementwise work XLA fuses
        (measured 1.1-1.4x faster than the centring, TensorFlow's kernel and the unit apart)."""
        return True

    def fused_op(self, layer):
        _, s, d, _ = spatial(layer)
        return _depthwise_slices(s, d, _pads(layer))

    def unfused_product(self, f, layer, x, tin, dt):
        """The padding joins the fused centring (no pad op of its own)."""
        _, s, d, _ = spatial(layer)
        return K.depthwise_op(s, d)(f.centred(x, tin, dt, pads=_pads(layer)), f.int_weights(layer.name, dt))

    def int_op(self, layer):
        _, s, d, _ = spatial(layer)
        return K.depthwise_op(s, d, _pads(layer))

    def accumulate(self, q, layer, x, tin, qw, B):
        _, s, d, _ = spatial(layer)
        return K.depthwise_acc(x, tin.zp, tin.bits, qw, B, s, d, _pads(layer))

    def numeric_compiled(self, q, layer, ins):
        """XLA compiles the centring and the activation unit, not the depthwise convolution
        itself, which XLA's CPU backend runs slowly."""
        return self.numeric_split(q, layer, ins)

    def macs(self, layer):
        k = layer.params["kernel_shape"]
        return math.prod(layer.output_shape[1:]) * k[0] * k[1]


class Deconv(MacKind):
    types = ("deconv",)

    def product(self, layer, x, kernel):
        k, s, _, pad = spatial(layer)
        kt = tf.transpose(kernel, [0, 1, 3, 2])  # HN [kh, kw, cin, cout] -> TF [kh, kw, cout, cin]
        n = tf.shape(x)[0]
        _, oh, ow, oc = layer.output_shape
        s4 = layer.params["strides"]
        if pad in ("VALID", "SAME_TENSORFLOW"):
            return tf.nn.conv2d_transpose(x, kt, tf.stack([n, oh, ow, oc]), strides=s4,
                                          padding="SAME" if pad == "SAME_TENSORFLOW" else "VALID")
        ih, iw = layer.input_shapes[0][1:3]
        fh, fw = (ih - 1) * s[0] + k[0], (iw - 1) * s[1] + k[1]
        full = tf.nn.conv2d_transpose(x, kt, tf.stack([n, fh, fw, oc]), strides=s4, padding="VALID")
        th, tw = fh - oh, fw - ow
        if th < 0 or tw < 0:
            raise HNError(f"layer '{layer.name}': SAME deconv needs kernel >= stride")
        top, left = th - th // 2, tw - tw // 2  # extra first, as for SAME convs
        return full[:, top:top + oh, left:left + ow, :]

    def int_op(self, layer):
        p, k = layer.params, layer.params["kernel_shape"]
        return K.deconv_op(layer.input_shapes[0][1:3], k[:2], k[3], p["strides"][1:3],
                           layer.output_shape[1:3], p["padding"])

    def accumulate(self, q, layer, x, tin, qw, B):
        p = layer.params
        return K.deconv_acc(x, tin.zp, tin.bits, qw, B, layer.input_shapes[0][1:3], p["strides"][1:3],
                            layer.output_shape[1:3], p["padding"])

    def macs(self, layer):
        k = layer.params["kernel_shape"]
        return math.prod(layer.input_shapes[0][1:]) * k[0] * k[1] * k[3]


class Dense(MacKind):
    types = ("dense",)

    def product(self, layer, x, kernel):
        return tf.matmul(tf.reshape(x, [-1, int(layer.params["kernel_shape"][0])]), kernel)

    def int_op(self, layer):
        return K.dense_op(int(np.prod(layer.input_shapes[0][1:])))

    def accumulate(self, q, layer, x, tin, qw, B):
        return K.dense_acc(x, tin.zp, tin.bits, qw, B)

    def macs(self, layer):
        return int(np.prod(layer.params["kernel_shape"]))


KINDS = (Conv(), Depthwise(), Deconv(), Dense())
