"""The quantized emulation targets (docs/numerics.md).

SdkNumeric    the chip, bit-exact: inputs quantized by the C host quantizer
              (hailort_py.quantize, the function host code uses), then the integer kernels of
              emulator/numerics layer by layer, compiled into one tf.function; outputs are the
              codes of the last on-chip tensors, dequantized by the C dequantizer; softmax /
              argmax at outputs run in float32 after dequantization (as on the host).
SdkQuantized  fake-quant: float32 math on the same grids (weights q_w * s_w, biases B * s_acc,
              rescales with the stored M * 2^-r, round half up, clamps, tables as f on the
              16-bit pre-activation grid), with straight-through rounding so that it is
              differentiable (QFT trains through `fake_quant_layer_fn`).

infer(runner, target, data, inter_layers=False, batch_size=32) -> outputs or (outputs, layers):
outputs {output layer: float32}; layers {layer: float32 dequantized output} for every layer,
plus for SdkNumeric {"<layer>:codes": uint8/uint16 raw codes} for every on-chip layer.
"""
from __future__ import annotations

import weakref
from typing import Any, Callable

import numpy as np
import tensorflow as tf

from .hn import MAC_TYPES, Layer
from .limits import check_batch
from .numerics import kernels as K
from .numerics.params import TensorQ, abs_weight_sum, channel_groups, qmax
from .quantization import KIND_CHIP, KIND_FOLDED, KIND_HOST, avgpool_geometry, qkey
from .stream_export import chip_source, tensor_quant_info

_CACHE: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()


class QParams:
    """Read access to a runner's quantized params by layer."""

    def __init__(self, hn, qp: dict):
        self.hn, self.qp, self.net = hn, qp, hn.name

    def has(self, layer: str, field: str) -> bool:
        return qkey(self.net, layer, field) in self.qp

    def get(self, layer: str, field: str):
        return self.qp[qkey(self.net, layer, field)]

    def kind(self, layer: str) -> int:
        return int(self.get(layer, "kind"))

    def tensor(self, layer: str) -> TensorQ:
        return TensorQ(float(self.get(layer, "out_scale")), int(self.get(layer, "out_zp")),
                       int(self.get(layer, "out_bits")))

    def source(self, layer: Layer, i: int = 0) -> str:
        name = layer.input[i]
        while self.kind(name) == KIND_FOLDED:
            name = self.hn.layers[name].input[0]
        return name

    def bias(self, layer: str) -> np.ndarray:
        return self.get(layer, "bias_mantissa").astype(np.int64) << int(self.get(layer, "bias_exponent"))

    def m_eff(self, layer: str, M="M", r="r") -> np.ndarray:
        return self.get(layer, M).astype(np.float64) * np.exp2(-self.get(layer, r).astype(np.float64))

    def quant_info(self, layer: str):
        """The hailort_py.QuantInfo of a layer's output tensor (what its stream carries)."""
        return tensor_quant_info(self.qp, self.net, layer)


def _spatial(layer: Layer):
    p = layer.params
    k = p["kernel_shape"]
    s = p["strides"][1:3]
    d = p.get("dilations", [1, 1, 1, 1])[1:3]
    return k, s, d, p["padding"]


def _avgpool_geometry(layer: Layer, Q: QParams):
    """(kernel hw, strides hw, pads, index into pool_counts / M / r per output position)."""
    k, s, pads, counts = avgpool_geometry(layer)
    return k, s, pads, np.searchsorted(Q.get(layer.name, "pool_counts"), counts)


def _reshape_out(t, layer: Layer):
    return tf.reshape(t, [-1] + list(layer.output_shape[1:]))


# ==== SdkNumeric ================================================================================

def numeric_layer_fn(hn, qp: dict, xla: bool = True) -> Callable:
    """The bit-exact layer function for graph_exec.execute: codes in, codes out (host ops pass
    the chip's codes through; infer applies them in numpy). With xla (and K.xla_is_exact()),
    layers are compiled by XLA: the same integer formulas, fused."""
    Q = QParams(hn, qp)

    def act_unit(name: str, acc):
        out = Q.tensor(name)
        M, r = Q.get(name, "M"), Q.get(name, "r")
        if Q.has(name, "lut"):
            return K.lut_activation(acc, M, r, int(Q.get(name, "pre_zp")), Q.get(name, "lut"))
        if Q.has(name, "M_neg"):
            return K.requantize_two_slope(acc, M, r, Q.get(name, "M_neg"), Q.get(name, "r_neg"),
                                          out.zp, out.bits)
        return K.requantize(acc, M, r, out.zp, Q.get(name, "act_lo"), Q.get(name, "act_hi"), out.bits)

    use_xla = bool(xla) and K.xla_is_exact()
    jitted: dict[str, Callable] = {}

    def jit(key: str, f: Callable) -> Callable:
        g = jitted.get(key)
        if g is None:
            g = jitted[key] = tf.function(f, jit_compile=True, autograph=False, reduce_retracing=True)
        return g

    def fn(layer: Layer, ins: list):
        """Each on-chip layer compiled by XLA (its elementwise chain fused into one loop), except
        the depthwise convolution itself, which XLA's CPU backend runs slowly."""
        name, t = layer.name, layer.type
        if not use_xla or Q.kind(name) != KIND_CHIP or t in ("input_layer", "output_layer", "reshape", "slice"):
            return body(layer, ins)
        if t == "dw":
            return dw_split(layer, ins)
        return jit(name, lambda *a: body(layer, list(a)))(*ins)

    def dw_split(layer: Layer, ins: list):
        name = layer.name
        tin = Q.tensor(Q.source(layer))
        qw, B = Q.get(name, "q_w").astype(np.int64), Q.bias(name)
        kh, kw_, ci, mult = qw.shape
        xmax = K.max_centred(tin.zp, tin.bits)
        bound = xmax * abs_weight_sum(qw.reshape(kh * kw_, ci * mult))
        dt = K.exact_dtype(bound)
        if dt is None:
            return body(layer, ins)
        k, s, d, pad = _spatial(layer)
        pads = K.spatial_pads(layer.input_shapes[0][1:3], k[:2], s, d, pad)
        x = jit(name + "/in", lambda q: K.centred(q, tin.zp, dt))(ins[0])
        y = K.depthwise_op(s, d, pads)(x, tf.constant(qw, dt))
        return jit(name + "/act", lambda v: act_unit(name, K._add_bias(v, B, bound)))(y)

    def body(layer: Layer, ins: list):
        name, t, p = layer.name, layer.type, layer.params
        kind = Q.kind(name)
        if kind == KIND_HOST:
            # host ops run after the graph, in numpy (host_ops_numpy); the chip's codes pass
            return ins[0]
        if kind == KIND_FOLDED or t in ("input_layer", "output_layer"):
            return ins[0]
        q = ins[0]
        tin = Q.tensor(Q.source(layer))
        if t in MAC_TYPES:
            qw, B = Q.get(name, "q_w").astype(np.int64), Q.bias(name)
            if t == "dense":
                acc = K.dense_acc(q, tin.zp, tin.bits, qw, B)
            elif t == "deconv":
                acc = K.deconv_acc(q, tin.zp, tin.bits, qw, B, layer.input_shapes[0][1:3],
                                   p["strides"][1:3], layer.output_shape[1:3], p["padding"])
            else:
                k, s, d, pad = _spatial(layer)
                pads = K.spatial_pads(layer.input_shapes[0][1:3], k[:2], s, d, pad)
                if t == "conv":
                    acc = K.conv2d_acc(q, tin.zp, tin.bits, qw, B, s, d, pads, int(p.get("groups", 1)))
                else:
                    acc = K.depthwise_acc(q, tin.zp, tin.bits, qw, B, s, d, pads)
            return act_unit(name, acc)
        if t == "activation":
            return act_unit(name, K.centred_acc(q, tin.zp, tin.bits))
        if t in ("ew_add", "ew_sub"):
            tb = Q.tensor(Q.source(layer, 1))
            A = Q.get(name, "ew_mult")
            return act_unit(name, K.ew_add_acc(q, tin.zp, tin.bits, int(A[0]), ins[1], tb.zp, tb.bits,
                                               int(A[1]), subtract=t == "ew_sub"))
        if t == "ew_mult":
            tb = Q.tensor(Q.source(layer, 1))
            return act_unit(name, K.ew_mult_acc(q, tin.zp, ins[1], tb.zp))
        if t == "maxpool":
            k, s = p["kernel_shape"][1:3], p["strides"][1:3]
            return K.maxpool(q, k, s, K.spatial_pads(layer.input_shapes[0][1:3], k, s, (1, 1), p["padding"]))
        if t == "avgpool":
            k, s, pads, idx = _avgpool_geometry(layer, Q)
            out = Q.tensor(name)
            return K.requantize_per_position(K.avgpool_acc(q, tin.zp, tin.bits, k, s, pads),
                                             Q.get(name, "M")[idx], Q.get(name, "r")[idx], out.zp, out.bits)
        if t == "global_avg_pool":
            return _reshape_out(act_unit(name, K.global_sum_acc(q, tin.zp, tin.bits)), layer)
        if t == "reduce_sum":
            return _reshape_out(act_unit(name, K.reduce_sum_acc(q, tin.zp, tin.bits, p["axes"])), layer)
        if t == "reduce_max":
            return _reshape_out(K.reduce_max(q, p["axes"]), layer)
        if t == "concat":
            out = Q.tensor(name)
            parts = []
            for i, qi in enumerate(ins):
                if Q.has(name, f"in{i}_M"):
                    ti = Q.tensor(Q.source(layer, i))
                    qi = K.requantize(K.centred_acc(qi, ti.zp, ti.bits), Q.get(name, f"in{i}_M"),
                                      Q.get(name, f"in{i}_r"), out.zp, 0, qmax(out.bits), out.bits)
                parts.append(qi)
            return K.concat_codes(parts, int(p["concat_axis"]))
        if t == "resize":
            out_hw = p["output_shape"][1:3]
            align = bool(p.get("align_corners", False))
            half = bool(p.get("half_pixel", not align))
            if p["method"] == "nearest":
                return K.resize_nearest(q, out_hw, align, half)
            return act_unit(name, K.resize_bilinear_acc(q, tin.zp, out_hw, align, half))
        if t == "normalization":
            return act_unit(name, K.normalization_acc(q, tin.zp, Q.get(name, "norm_bias")))
        if t == "pad":
            return K.pad_codes(q, p["pads"], int(Q.get(name, "pad_code")))
        if t == "reshape":
            return _reshape_out(q, layer)
        if t == "slice":
            return K.slice_codes(q, p["begin"], p["end"])
        if t == "space_to_depth":
            return K.space_to_depth(q, int(p["block_size"]))
        if t == "depth_to_space":
            return K.depth_to_space(q, int(p["block_size"]), p.get("mode", "DCR"))
        if t == "feature_shuffle":
            return K.feature_shuffle(q, int(p["groups"]))
        raise NotImplementedError(f"SdkNumeric: layer '{name}' of type {t}")

    return fn


# ==== SdkQuantized (fake-quant) =================================================================

def floor_ste(v):
    """floor with a straight-through (identity) gradient."""
    return v + tf.stop_gradient(tf.floor(v) - v)


def round_ste(v):
    """round half to even with a straight-through gradient."""
    return v + tf.stop_gradient(tf.round(v) - v)


def _deq(code, t: TensorQ):
    """(code - z) * s in float32: the dequantizer's formula."""
    return (tf.cast(code, tf.float32) - np.float32(t.zp)) * np.float32(t.scale)


def centred_int(x, t: TensorQ):
    """The centred code q - z of a value x on the grid of t, as a float32 integer: round(x / s)
    (exact: x = (q - z) * s in float32 is within 2^-23 * |q - z| of the grid), straight-through."""
    return round_ste(x / np.float32(t.scale))


def fake_quant_input(x, t: TensorQ):
    """The C host quantizer's formula in float32 (clip to limvals, x / s + z, clamp, round half
    to even), dequantized; identity QP: clip to [0, 2^b - 1] and round."""
    qm = np.float32(qmax(t.bits))
    if t.scale == 1.0 and t.zp == 0:
        lo, hi = np.float32(0.0), qm
    else:
        lo, hi = (np.float32(v) for v in t.limvals)
    c = tf.minimum(tf.maximum(x, lo), hi)
    v = c / np.float32(t.scale) + np.float32(t.zp)
    v = tf.minimum(tf.maximum(v, np.float32(0.0)), qm)
    return _deq(round_ste(v), t)


def fake_quant_weights(w, s_w_per_channel: np.ndarray, bits: int):
    """Integer weights from float weights (a tensor, e.g. a QFT variable; last axis = output
    channel for conv / dense / deconv, [.., cin, mult] flattened for depthwise):
    clamp(round(W / s_w), -(2^(bw-1) - 1), 2^(bw-1) - 1) with a straight-through gradient."""
    lim = float((1 << (bits - 1)) - 1)
    shp = w.shape
    w2 = tf.reshape(w, [-1, len(s_w_per_channel)])
    q = tf.clip_by_value(round_ste(w2 / s_w_per_channel.astype(np.float32)), -lim, lim)
    return tf.reshape(q, shp)


def fake_quant_layer_fn(hn, qp: dict, weights: dict | None = None) -> Callable:
    """The fake-quant layer function for graph_exec.execute: float32 values on the grids.

    Each layer recovers the centred codes of its inputs (centred_int), computes its accumulator
    with float ops on integer values (float32 where the sum is provably exact, else float64, as
    the integer kernels do; element-wise / pooling / resize sums in float64), rescales in float64
    with the stored M * 2^-r and floor(v + 1/2), clamps, and dequantizes. Rounding is
    straight-through, so gradients reach the inputs and (through fake_quant_weights) float
    weights given in `weights` ({layer: float kernel}; default: the stored q_w * s_w, which
    round back to q_w exactly). Table activations evaluate f in float64 on the 16-bit
    pre-activation grid.
    """
    from .float_ops import activation_fn, pre_activation, run_float_layer

    Q = QParams(hn, qp)
    f64 = np.float64
    wint: dict[str, Any] = {}
    for layer in hn.topological():
        name = layer.name
        if Q.kind(name) == KIND_CHIP and layer.type in MAC_TYPES:
            qw = Q.get(name, "q_w").astype(np.float64)
            C = qw.shape[-1] if layer.type != "dw" else qw.shape[2] * qw.shape[3]
            s_w = Q.get(name, "s_w")[channel_groups(C, int(Q.get(name, "groups")))]
            if weights is not None and name in weights:
                w = weights[name]
            else:
                w = tf.constant((qw.reshape(-1, C) * s_w[None, :]).reshape(qw.shape).astype(np.float32))
            wint[name] = (w, s_w, int(Q.get(name, "w_bits")), abs_weight_sum(qw.reshape(-1, C)))

    def finish(code, name, lo=None, hi=None):
        out = Q.tensor(name)
        lo = np.float64(0) if lo is None else lo
        hi = np.float64(qmax(out.bits)) if hi is None else hi
        return _deq(tf.minimum(tf.maximum(code, lo), hi), out)

    def act_unit(layer: Layer, acc):
        """acc: float64 tensor holding the integer accumulator."""
        name = layer.name
        out = Q.tensor(name)
        m = Q.m_eff(name)
        if Q.has(name, "lut"):
            pre = TensorQ(float(Q.get(name, "pre_scale")), int(Q.get(name, "pre_zp")), 16)
            p = tf.clip_by_value(floor_ste(acc * m + 0.5) + f64(pre.zp), f64(0), f64(65535))
            xp = (p - f64(pre.zp)) * f64(np.float32(pre.scale))
            v = activation_fn(layer.activation, xp, leaky_alpha=layer.params.get("leaky_alpha", 0.2))
            return finish(round_ste(v / f64(np.float32(out.scale))) + f64(out.zp), name)
        if Q.has(name, "M_neg"):
            mn = Q.m_eff(name, "M_neg", "r_neg")
            code = tf.where(acc >= 0, floor_ste(acc * m + 0.5), floor_ste(acc * mn + 0.5))
            return finish(code + f64(out.zp), name)
        return finish(floor_ste(acc * m + 0.5) + f64(out.zp), name,
                      Q.get(name, "act_lo").astype(f64), Q.get(name, "act_hi").astype(f64))

    def fn(layer: Layer, ins: list):
        name, t, p = layer.name, layer.type, layer.params
        kind = Q.kind(name)
        if kind == KIND_HOST:
            return ins[0] if t == "output_layer" else run_float_layer(layer, ins, {})
        if kind == KIND_FOLDED or t == "output_layer":
            return ins[0]
        if t == "input_layer":
            return fake_quant_input(ins[0], Q.tensor(name))
        x = ins[0]
        tin = Q.tensor(Q.source(layer))
        if t in ("maxpool", "reduce_max", "reshape", "slice", "space_to_depth", "depth_to_space",
                 "feature_shuffle"):
            return pre_activation(layer, [x], {})
        xi = centred_int(x, tin)
        if t in MAC_TYPES:
            w, s_w, wbits, wsum = wint[name]
            if t == "dense":
                op = K.dense_op(int(np.prod(layer.input_shapes[0][1:])))
            elif t == "deconv":
                k = p["kernel_shape"]
                op = K.deconv_op(layer.input_shapes[0][1:3], k[:2], k[3], p["strides"][1:3],
                                 layer.output_shape[1:3], p["padding"])
            else:
                k, s, d, pad = _spatial(layer)
                pads = K.spatial_pads(layer.input_shapes[0][1:3], k[:2], s, d, pad)
                op = K.conv_op(s, d, pads, int(p.get("groups", 1))) if t == "conv" else \
                    K.depthwise_op(s, d, pads)
            dt = K.exact_dtype(tin.max_centred * wsum) or tf.float64
            wi = fake_quant_weights(w, s_w, wbits)
            y = op(tf.cast(xi, dt), tf.cast(wi, dt))
            return act_unit(layer, tf.cast(y, tf.float64) + Q.bias(name).astype(f64))
        xi = tf.cast(xi, tf.float64)
        if t == "activation":
            return act_unit(layer, xi)
        if t in ("ew_add", "ew_sub"):
            tb = Q.tensor(Q.source(layer, 1))
            A = Q.get(name, "ew_mult").astype(f64)
            xb = tf.cast(centred_int(ins[1], tb), tf.float64)
            return act_unit(layer, xi * A[0] - xb * A[1] if t == "ew_sub" else xi * A[0] + xb * A[1])
        if t == "ew_mult":
            tb = Q.tensor(Q.source(layer, 1))
            return act_unit(layer, xi * tf.cast(centred_int(ins[1], tb), tf.float64))
        if t == "avgpool":
            k, s, pads, idx = _avgpool_geometry(layer, Q)
            m = Q.m_eff(name)[idx][:, :, None]
            acc = K.depthwise_op(s, (1, 1), pads)(xi, np.ones((k[0], k[1], int(x.shape[-1]), 1)))
            return finish(floor_ste(acc * m + 0.5) + f64(Q.tensor(name).zp), name)
        if t == "global_avg_pool":
            return _reshape_out(act_unit(layer, tf.reduce_sum(xi, axis=[1, 2])), layer)
        if t == "reduce_sum":
            return _reshape_out(act_unit(layer, tf.reduce_sum(xi, axis=p["axes"], keepdims=True)), layer)
        if t == "concat":
            out = Q.tensor(name)
            parts = []
            for i, xv in enumerate(ins):
                if Q.has(name, f"in{i}_M"):
                    ti = Q.tensor(Q.source(layer, i))
                    m = float(Q.get(name, f"in{i}_M")) * 2.0 ** -int(Q.get(name, f"in{i}_r"))
                    acc = tf.cast(centred_int(xv, ti), tf.float64)
                    xv = finish(floor_ste(acc * m + 0.5) + f64(out.zp), name)
                parts.append(xv)
            return tf.concat(parts, axis=int(p["concat_axis"]))
        if t == "resize":
            out_hw = p["output_shape"][1:3]
            align = bool(p.get("align_corners", False))
            half = bool(p.get("half_pixel", not align))
            if p["method"] == "nearest":
                return K.resize_nearest(x, out_hw, align, half)
            y0, y1, fy = K.bilinear_taps(int(x.shape[1]), out_hw[0], align, half)
            x0, x1, fx = K.bilinear_taps(int(x.shape[2]), out_hw[1], align, half)
            fy = fy.astype(f64)[None, :, None, None]
            fx = fx.astype(f64)[None, None, :, None]
            tt = tf.gather(xi, y0, axis=1) * (256 - fy) + tf.gather(xi, y1, axis=1) * fy
            acc = tf.gather(tt, x0, axis=2) * (256 - fx) + tf.gather(tt, x1, axis=2) * fx
            return act_unit(layer, acc)
        if t == "normalization":
            return act_unit(layer, xi * 256.0 + Q.get(name, "norm_bias").astype(f64))
        if t == "pad":
            out = Q.tensor(name)
            v = np.float32((int(Q.get(name, "pad_code")) - out.zp) * np.float32(out.scale))
            return K.pad_const(x, [[0, 0]] + [list(pp) for pp in p["pads"]], v)
        raise NotImplementedError(f"SdkQuantized: layer '{name}' of type {t}")

    return fn


# ==== executors =================================================================================

class _Executor:
    def __init__(self, runner, numeric: bool, xla: bool = True):
        from .graph_exec import execute

        hn = runner.hn
        self.hn, self.numeric = hn, numeric
        self.Q = QParams(hn, runner.quantized_params)
        K.float32_path_is_exact()  # eager self-checks before tracing
        K.xla_is_exact()
        fn = numeric_layer_fn(hn, runner.quantized_params, xla) if numeric else \
            fake_quant_layer_fn(hn, runner.quantized_params)
        self.inputs = [l.name for l in hn.input_layers]
        self.outputs = [l.name for l in hn.output_layers]
        self.names = [l.name for l in hn.topological()]
        if numeric:
            sig = [tf.TensorSpec([None, *l.output_shape[1:]], self.Q.tensor(l.name).dtype)
                   for l in hn.input_layers]
        else:
            sig = [tf.TensorSpec([None, *l.output_shape[1:]], tf.float32) for l in hn.input_layers]

        @tf.function(input_signature=sig, reduce_retracing=True, autograph=False)
        def outputs_only(*xs):
            outs, _ = execute(hn, dict(zip(self.inputs, xs)), fn)
            return [outs[n] for n in self.outputs]

        @tf.function(input_signature=sig, reduce_retracing=True, autograph=False)
        def everything(*xs):
            outs, allv = execute(hn, dict(zip(self.inputs, xs)), fn, keep_all=True)
            return [outs[n] for n in self.outputs], [allv[n] for n in self.names]

        self._fn, self._fn_all = outputs_only, everything
        self._sig, self._layer_fn, self._codes_fns = sig, fn, {}
        # the host quantizer's QP and code type per input, for every batch (SdkNumeric)
        self._in_quant = [(self.Q.quant_info(n), self.Q.tensor(n).dtype) for n in self.inputs] \
            if numeric else []

    def codes_fn(self, names: tuple[str, ...]):
        """A tf.function from input codes to the codes of the named layers (SdkNumeric)."""
        from .graph_exec import execute

        f = self._codes_fns.get(names)
        if f is None:
            hn, fn = self.hn, self._layer_fn

            @tf.function(input_signature=self._sig, reduce_retracing=True, autograph=False)
            def f(*xs):
                _, allv = execute(hn, dict(zip(self.inputs, xs)), fn, keep_all=True)
                return [allv[n] for n in names]

            self._codes_fns[names] = f
        return f

    def prepare(self, x: dict[str, np.ndarray]) -> list:
        if not self.numeric:
            return [x[n] for n in self.inputs]
        import hailort_py as hrt

        return [hrt.quantize(x[n], qi, dtype) for n, (qi, dtype) in zip(self.inputs, self._in_quant)]

    def run(self, batch: list, inter: bool):
        if inter:
            o, a = self._fn_all(*batch)
            return [v.numpy() for v in o], [v.numpy() for v in a]
        return [v.numpy() for v in self._fn(*batch)], None


def executor(runner, numeric: bool) -> _Executor:
    entry = _CACHE.setdefault(runner, {})
    key = "numeric" if numeric else "quantized"
    qp_id = (id(runner.quantized_params), id(runner.hn))
    if key not in entry or entry[key][0] != qp_id:
        entry[key] = (qp_id, _Executor(runner, numeric))
    return entry[key][1]


def batches(n: int, batch_size: int):
    """(start, stop, padded size) of each batch: full batches, then the remainder padded to the
    next power of two (at most batch_size), so that the XLA-compiled layers see few shapes
    (XLA compiles once per shape). Padding rows repeat the last row and are dropped after."""
    for s in range(0, n, batch_size):
        e = min(s + batch_size, n)
        k = e - s
        size = k if k == batch_size else min(batch_size, 1 << (k - 1).bit_length())
        yield s, e, size


def _pad_rows(a: np.ndarray, size: int) -> np.ndarray:
    if a.shape[0] == size:
        return a
    return np.concatenate([a, np.repeat(a[-1:], size - a.shape[0], axis=0)])


def run_codes(runner: Any, codes: dict, names: list[str], batch_size: int = 32) -> dict[str, np.ndarray]:
    """SdkNumeric on raw input codes: {input layer: uint8/uint16 (N, ...)} -> {layer: codes}
    for the named on-chip layers (what EmulatedDevice serves: no host quantizer in between).
    A name given twice (two output streams of one tensor) is computed once."""
    names = list(dict.fromkeys(names))
    total = np.asarray(next(iter(codes.values()))).shape[0] if codes else 0
    check_batch(runner.hn, min(total, batch_size), "the emulated chip", bytes_per_element=8)
    ex = executor(runner, True)
    for n in ex.inputs:
        want = ex.Q.tensor(n).dtype
        if n not in codes:
            raise ValueError(f"run_codes: no codes for input layer '{n}'")
        if np.asarray(codes[n]).dtype != want:
            raise ValueError(f"run_codes: input '{n}' codes must be {np.dtype(want).name}, "
                             f"got {np.asarray(codes[n]).dtype}")
    for n in names:
        if ex.Q.kind(n) != KIND_CHIP:
            raise ValueError(f"run_codes: '{n}' is not an on-chip tensor (host op or folded)")
    f = ex.codes_fn(tuple(names))
    total = np.asarray(codes[ex.inputs[0]]).shape[0]
    parts: dict[str, list] = {n: [] for n in names}
    for s, e, size in batches(total, batch_size):
        res = f(*[_pad_rows(np.asarray(codes[n][s:e]), size) for n in ex.inputs])
        for n, v in zip(names, res):
            parts[n].append(v.numpy()[:e - s])
    return {n: np.concatenate(v) if v else np.zeros((0,), np.uint8) for n, v in parts.items()}


def dequantize(codes: np.ndarray, Q: QParams, name: str) -> np.ndarray:
    """The C dequantizer ((float)q - zp) * scale, float32."""
    import hailort_py as hrt

    return hrt.dequantize(np.ascontiguousarray(codes), Q.quant_info(name))


def host_op_numpy(layer: Layer, x: np.ndarray) -> np.ndarray:
    """softmax / argmax as the host computes them after dequantizing: softmax in float64 over
    the float32 values, rounded to float32 (the same bytes whatever the batch size); argmax as
    float32 indices, shaped as the layer's output (float_ops' convention)."""
    x = np.asarray(x, np.float32)
    if layer.type == "softmax":
        axis = int(layer.params.get("axis", -1))
        d = x.astype(np.float64)
        e = np.exp(d - d.max(axis=axis, keepdims=True))
        return (e / e.sum(axis=axis, keepdims=True)).astype(np.float32)
    if layer.type == "argmax":
        idx = np.argmax(x, axis=int(layer.params["axis"])).astype(np.float32)
        return idx.reshape([-1] + list(layer.output_shape[1:]))
    raise NotImplementedError(f"host op {layer.type}")


def infer(runner: Any, target: Any, data: Any, inter_layers: bool = False, batch_size: int = 32):
    """runner.infer for SdkQuantized / SdkNumeric (module doc)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    numeric = target.name == "numeric"
    ins = runner.prepare_inputs(data)
    n = next(iter(ins.values())).shape[0]
    check_batch(runner.hn, n if inter_layers else min(n, batch_size), f"{target!r} inference",
                bytes_per_element=8, keep_all=inter_layers)
    ex = executor(runner, numeric)
    hn, Q = runner.hn, ex.Q
    n = next(iter(ins.values())).shape[0]
    if n == 0:
        empty = {l.name: np.zeros((0, *l.output_shape[1:]), np.float32) for l in hn.output_layers}
        return (empty, {}) if inter_layers else empty
    outs: dict[str, list] = {k: [] for k in ex.outputs}
    alls: dict[str, list] = {k: [] for k in ex.names} if inter_layers else {}
    for s, e, size in batches(n, batch_size):
        batch = ex.prepare({k: _pad_rows(v[s:e], size) for k, v in ins.items()})
        o, a = ex.run(batch, inter_layers)
        for k, v in zip(ex.outputs, o):
            outs[k].append(v[:e - s])
        if inter_layers:
            for k, v in zip(ex.names, a):
                alls[k].append(v[:e - s])
    raw = {k: np.concatenate(v) for k, v in (alls if inter_layers else outs).items()}
    floats: dict[str, np.ndarray] = {}

    def value(name: str) -> np.ndarray:
        """The float32 output of a layer (numeric: dequantized codes, host ops applied)."""
        if name in floats:
            return floats[name]
        layer = hn.layers[name]
        kind = Q.kind(name)
        if not numeric:
            v = raw[name]
        elif kind == KIND_HOST and layer.type == "output_layer":
            # the graph passed the chip's codes through the host ops: dequantize, then apply them
            src, host_layers = chip_source(runner, layer)
            v = dequantize(raw[name], Q, src)
            for h in host_layers:
                v = host_op_numpy(h, v)
        elif kind == KIND_HOST:
            v = host_op_numpy(layer, value(layer.input[0]))
        elif kind == KIND_FOLDED:
            v = value(layer.input[0])
        else:
            v = dequantize(raw[name], Q, name)
        floats[name] = np.asarray(v, np.float32)
        return floats[name]

    result = {k: value(k) for k in ex.outputs}
    if not inter_layers:
        return result
    layers: dict[str, np.ndarray] = {}
    for k in ex.names:
        kind = Q.kind(k)
        if kind == KIND_FOLDED:
            # not a chip tensor: the normalization of the (quantized) input, in float32
            prm = runner.layer_params(k, "fp_optimized")
            layers[k] = ((value(hn.layers[k].input[0]) - prm["mean"]) / prm["std"]).astype(np.float32)
            continue
        layers[k] = value(k)
        if numeric and kind == KIND_CHIP:
            layers[k + ":codes"] = raw[k]
    return result, layers
