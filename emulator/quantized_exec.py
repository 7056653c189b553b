"""The quantized emulation targets (docs/numerics.md).

SdkNumeric    the chip, bit-exact: inputs quantized by the C host quantizer
              (hailort_py.quantize, the function host code uses), then each layer kind's integer
              op layer by layer, compiled into one tf.function; outputs are the codes of the last
              on-chip tensors, dequantized by the C dequantizer; softmax / argmax at outputs run
              in float32 after dequantization (as on the host).
SdkQuantized  fake-quant: float math on the same grids (exact integer accumulators, the stored
              M * 2^-r, round half up, clamps, the stored tables), with straight-through
              rounding so that it is differentiable (QFT trains through
              `fake_quant_layer_fn`); each layer's elementwise work is one XLA-compiled fused
              op with a hand-written gradient (FakeQuantContext.fused). It gives SdkNumeric's
              codes.

The layer kinds (emulator/layers) hold the ops; this module holds what they run in: the
contexts they read the stored params from (NumericContext, FakeQuantContext), the dispatch by
placement, the compiled executors and batching.

infer(runner, target, data, inter_layers=False, batch_size=32) -> outputs or (outputs, layers):
outputs {output layer: float32}; layers {layer: float32 dequantized output} for every layer,
plus for SdkNumeric {"<layer>:codes": uint8/uint16 raw codes} for every on-chip layer.
"""
from __future__ import annotations

import weakref
from typing import Any, Callable

import numpy as np
import tensorflow as tf

from .errors import InferenceInputError
from .hn import MAC_TYPES, Layer
from .layers import kind_of
from .layers.mac import weights_2d
from .limits import check_batch
from .numerics import kernels as K
from .numerics.params import TensorQ, abs_weight_sum, channel_groups, qmax
from .quantization.keys import Placement
from .quantization.stored import QParams
from .stream_export import chip_source

_CACHE: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()


# ==== SdkNumeric ================================================================================

class NumericContext(QParams):
    """The stored params as the integer ops read them, and the XLA compilation of layers."""

    def __init__(self, hn, qp: dict, xla: bool):
        super().__init__(hn, qp)
        self.xla = bool(xla) and K.xla_is_exact()
        self._jitted: dict[str, Callable] = {}

    def jit(self, key: str, f: Callable) -> Callable:
        g = self._jitted.get(key)
        if g is None:
            g = self._jitted[key] = tf.function(f, jit_compile=True, autograph=False, reduce_retracing=True)
        return g


def numeric_layer_fn(hn, qp: dict, xla: bool = True) -> Callable:
    """The bit-exact layer function for graph_exec.execute: codes in, codes out (host ops and
    folded normalizations pass the chip's codes through; infer applies host ops in numpy).
    With xla (and K.xla_is_exact()), each on-chip layer is compiled by XLA: the same integer
    formulas, fused."""
    q = NumericContext(hn, qp, xla)

    def fn(layer: Layer, ins: list):
        if not q.on_chip(layer.name):
            return ins[0]
        kind = kind_of(layer)
        if q.xla and kind.xla:
            return kind.numeric_compiled(q, layer, ins)
        return kind.numeric(q, layer, ins)

    return fn


# ==== SdkQuantized (fake-quant) =================================================================

def round_ste(v):
    """round half to even with a straight-through gradient."""
    return v + tf.stop_gradient(tf.round(v) - v)


def fake_quant_weights(w, s_w_per_channel, bits: int):
    """Integer weights from float weights (a tensor, e.g. a QFT variable; last axis = output
    channel for conv / dense / deconv, [.., cin, mult] flattened for depthwise):
    clamp(round(W / s_w), -(2^(bw-1) - 1), 2^(bw-1) - 1) with a straight-through gradient
    (s_w per output channel: numpy, or a tensor when the scales are trained)."""
    lim = float((1 << (bits - 1)) - 1)
    shp = w.shape
    C = int(s_w_per_channel.shape[0])
    w2 = tf.reshape(w, [-1, C])
    s = s_w_per_channel.astype(np.float32) if isinstance(s_w_per_channel, np.ndarray) else \
        tf.cast(s_w_per_channel, tf.float32)
    q = tf.clip_by_value(round_ste(w2 / s), -lim, lim)
    return tf.reshape(q, shp)


def _channel_sum(t, like):
    """Sum a gradient over the axes `like` (a per-channel [C] or scalar parameter) broadcasts on."""
    if like.shape.rank == 0:
        return tf.reduce_sum(t)
    return tf.reduce_sum(t, axis=list(range(t.shape.rank - 1)))


def quantized_rescale(m, signed: bool = False):
    """The chip's rescale of a multiplier tensor m (per channel, float64), straight-through:
    M * 2^-r with (M, r) as numerics.params.derive_rescale gives them (15-bit mantissa, round half
    to even, the carry to 2^14), so that a student whose weight scales train computes the
    rescale the re-derivation will store. Shifts beyond the chip's range are not refused here
    (the re-derivation refuses them). signed: the negative side of leaky / PReLU (M = sign *
    M(|m|), 0 stays 0)."""
    from .numerics.params import MANTISSA_BITS

    a = tf.abs(m) if signed else m
    tiny = tf.constant(np.finfo(np.float64).tiny, tf.float64)
    x = tf.floor(tf.math.log(tf.maximum(a, tiny)) / np.log(2.0)) + 1.0  # frexp's exponent, then
    f = a * tf.pow(tf.constant(2.0, tf.float64), -x)                  # corrected into [0.5, 1)
    x = tf.where(f >= 1.0, x + 1.0, tf.where(f < 0.5, x - 1.0, x))
    f = a * tf.pow(tf.constant(2.0, tf.float64), -x)
    Mq = tf.round(f * float(1 << MANTISSA_BITS))
    mq = Mq * tf.pow(tf.constant(2.0, tf.float64), x - float(MANTISSA_BITS))  # exact: M * 2^-r
    mq = tf.where(a > 0, mq, tf.zeros_like(mq))
    if signed:
        mq = tf.sign(m) * mq
    return m + tf.stop_gradient(mq - m)


def _bias_grid(ideal, mantissa_bits: int):
    """B_ideal (float64 [C], accumulator units) on the bias grid as numerics.params.decompose_bias
    puts it: e = the smallest e >= 0 with max |rhe(B_ideal / 2^e)| <= mmax, B = rhe(B_ideal /
    2^e) * 2^e, the rounding straight-through."""
    mmax = float((1 << (mantissa_bits - 1)) - 1)
    top = tf.stop_gradient(tf.reduce_max(tf.abs(ideal)))
    pw = tf.constant(2.0 ** np.arange(48), tf.float64)
    ok = tf.round(top / pw) <= mmax  # rhe is monotone: the largest |B| decides
    e = tf.argmax(tf.cast(ok, tf.int32), output_type=tf.int32)
    step = tf.gather(pw, e)
    return tf.clip_by_value(round_ste(ideal / step), -mmax, mmax) * step


class FakeQuantContext(QParams):
    """The stored params as the fake-quant ops read them, the float weights they quantize, and
    the shared fused ops (centring, the activation unit, tables) the layer kinds call.

    The elementwise parts of every layer (recovering the centred codes of its inputs, the
    activation unit, the host quantizer) are fused ops (`fused`): one function for the forward
    values and one for the straight-through gradient, both XLA-compiled when the kernels'
    self-check passes (K.xla_is_exact; xla=False or EMULATOR_XLA=0 runs them as plain
    TensorFlow ops, the same values). A MAC layer whose parameters are not trained is one fused
    op with its product where XLA's product is fast (layers/mac.py, fuse_product); otherwise its
    product runs on TensorFlow's kernel between two fused ops, and trains through its gradients.

    fused_cache: a dict shared by contexts of the same (hn, qp, xla): their fused ops are the
    same functions (they capture numpy constants only; tensors are arguments).

    QFT's trainable parameters (all optional, keyword arguments; tensors, e.g. variables):
      weights        {MAC layer: float kernel}        integer weights clamp(round(W / s_w))
      biases         {MAC layer: float bias [C]}      real units (a folded normalization
                     applied): B = mant * 2^e on the layer's bias grid, e chosen per step as the
                     derivation chooses it, mantissa bits from the stored bias dtype
      weight_scales  {MAC layer: s [groups]}         the weight scale per group, capped at
                     max|W_g| / (lim - 0.49), so that a weight of each group rounds to +-lim and
                     the derivation gives the written-back weights q_w * s the scale s; the
                     rescales M * 2^-r (and a two-slope unit's negative side) follow it as the
                     derivation computes them, and the bias grid with it
    """

    def __init__(self, hn, qp: dict, weights: dict | None = None, *, biases: dict | None = None,
                 weight_scales: dict | None = None, xla: bool = True, fused_cache: dict | None = None):
        super().__init__(hn, qp)
        self.xla = bool(xla) and K.xla_is_exact()
        # the fused ops by key; contexts of the same (hn, qp, xla) may share one dict (QFT's
        # training and loss passes), so that XLA compiles each op once
        self._fns: dict[str, tuple[Callable, Callable]] = {} if fused_cache is None else fused_cache
        self._weights: dict[str, Any] = {}
        self._int_w: dict[str, np.ndarray] = {}
        self._trained_w: set[str] = set()
        self._biases = dict(biases or {})
        self._scales = dict(weight_scales or {})
        self._trained_cache: dict = {}
        for layer in hn.topological():
            name = layer.name
            if self.on_chip(name) and layer.type in MAC_TYPES:
                qw = self.get(name, "q_w").astype(np.float64)
                q2d = weights_2d(qw, layer.type)
                C = q2d.shape[1]
                s_w = self.get(name, "s_w")[channel_groups(C, int(self.get(name, "groups")))]
                if weights is not None and name in weights:
                    w = weights[name]
                    self._trained_w.add(name)
                else:
                    w = tf.constant((q2d * s_w[None, :]).reshape(qw.shape).astype(np.float32))
                self._int_w[name] = qw
                self._weights[name] = (w, s_w, int(self.get(name, "w_bits")), abs_weight_sum(q2d))

    # --- QFT's parameters -------------------------------------------------------------------------
    def weights(self, name: str):
        """(float weights, s_w per output channel, weight bits, max_o sum |q_w|) of a MAC layer
        (the stored scales; `channel_scales` gives the trained ones)."""
        return self._weights[name]

    def trains(self, name: str) -> bool:
        """Whether any of the layer's weights, bias or weight scale is a given tensor."""
        return name in self._trained_w or name in self._biases or name in self._scales

    def channel_scales(self, name: str):
        """s_w per output channel: the stored float64 numpy array, or (trained scales) a float64
        tensor min(s_g, max|W_g| / (lim - 0.49)) per channel."""
        if name not in self._scales:
            return self._weights[name][1]
        w = self._weights[name][0]
        return self._scales_of(name, tf.cast(w, tf.float64), tf.cast(self._scales[name], tf.float64))

    def _scales_of(self, name: str, w64, s):
        _, s_w, bits, _ = self._weights[name]
        groups = int(self.get(name, "groups"))
        C = s_w.shape[0]
        lim = float((1 << (bits - 1)) - 1)
        ch = channel_groups(C, groups)
        wmax = tf.math.unsorted_segment_max(tf.reduce_max(tf.abs(tf.reshape(w64, [-1, C])), axis=0),
                                            ch, groups)
        s = tf.reshape(s, [groups])
        # beyond wmax / (lim - 1/2) no weight of the group would round to +-lim, and the
        # derivation would give the written-back weights another scale (0.49: a margin for ties)
        s_eff = tf.where(wmax > 0, tf.minimum(s, wmax / (lim - 0.49)), s)
        return tf.gather(s_eff, ch)

    def stored_int_weights(self, name: str) -> np.ndarray:
        """The stored q_w of a MAC layer as float64 numpy (kernel shape)."""
        return self._int_w[name]

    def int_weights(self, name: str, dtype):
        """The layer's integer weights in `dtype` (kernel shape): a constant (the stored q_w) unless
        its weights or scales are trained (then fake_quant_weights, straight-through)."""
        if name not in self._trained_w and name not in self._scales:
            return tf.constant(self._int_w[name], dtype)
        return tf.cast(self._trained(name)["w"], dtype)

    def mac_bias(self, name: str, layer: Layer):
        """The bias B in accumulator units: the stored mant * 2^e (int64 numpy) unless the layer's
        bias or weight scales are trained; then a float64 tensor on the bias grid, e chosen as the
        derivation does (the smallest e >= 0 with max |rhe(b / s_acc / 2^e)| <= mmax), the
        mantissa rounded straight-through."""
        if name not in self._biases and name not in self._scales:
            return self.bias(name)
        return self._trained(name)["bias"]

    def rescale(self, name: str, layer: Layer, M: str = "M", r: str = "r"):
        """The activation unit's multiplier: the stored M * 2^-r (numpy float64), or, when the
        layer's weight scales train, quantized_rescale of s_acc / s_dest (M_neg: of alpha *
        s_acc / s_out) as the derivation computes it."""
        if name not in self._scales:
            return self.m_eff(name, M, r)
        return self._trained(name)["m_neg" if M == "M_neg" else "m"]

    def _trained(self, name: str) -> dict:
        """A trained layer's integer weights "w" (float32, kernel shape) and, as its bias or
        scales train, "bias" (B, float64 [C]) and "m" / "m_neg" (the rescales): one differentiable
        op of the layer's parameter tensors (XLA-compiled with the others), built once per graph."""
        graph = None if tf.executing_eagerly() else tf.compat.v1.get_default_graph()
        key = (name, id(graph))
        hit = self._trained_cache.get(key) if graph is not None else None  # eager: current values
        if hit is not None and hit[0] is graph:
            return hit[1]
        layer = self.hn.layers[name]
        w, s_w, bits, _ = self._weights[name]
        names, args = ["w"], [tf.cast(w, tf.float32)]
        if name in self._biases:
            names.append("b")
            args.append(tf.cast(self._biases[name], tf.float64))
        if name in self._scales:
            names.append("s")
            args.append(tf.cast(self._scales[name], tf.float64))
        s_in = np.float64(self.tensor(self.source(layer)).scale)
        two = self.has(name, "M_neg")
        outs = ["w"] + (["bias"] if len(names) > 1 else []) + (["m"] + (["m_neg"] if two else [])
                                                                 if "s" in names else [])
        b_stored = self.bias(name).astype(np.float64) * self.get(name, "s_acc")
        mbits = self.bias_mantissa_bits(name)
        if two:
            s_out = np.float64(self.tensor(name).scale)
            alpha = np.float64(layer.params.get("leaky_alpha", 0.2)) if layer.activation == "leaky" else \
                self.m_eff(name, "M_neg", "r_neg") / self.get(name, "s_acc") * s_out  # PReLU: 15 bits
        s_dest = np.float64(np.float32(self.get(name, "pre_scale"))) if self.has(name, "lut") \
            else np.float64(self.tensor(name).scale)

        def fn(*a):
            p = dict(zip(names, a))
            s_ch = self._scales_of(name, tf.cast(p["w"], tf.float64), p["s"]) if "s" in p else s_w
            res = {"w": fake_quant_weights(p["w"], s_ch, bits)}
            if "bias" in outs:
                s_acc = s_in * s_ch
                b = p["b"] if "b" in p else tf.constant(b_stored)
                res["bias"] = _bias_grid(b / s_acc, mbits)
            if "m" in outs:
                res["m"] = quantized_rescale(s_in * s_ch / s_dest)
                if two:
                    res["m_neg"] = quantized_rescale(s_in * s_ch * (alpha / s_out), signed=True)
            return tuple(res[o] for o in outs)

        vals = self.fused_diff(f"{name}/params[{','.join(names)}]", fn, *args)
        res = dict(zip(outs, vals))
        if graph is not None:
            self._trained_cache[key] = (graph, res)
        return res

    # --- fused ops --------------------------------------------------------------------------------
    def fused(self, key: str, fwd: Callable, bwd: Callable, *args, reduce: tuple = ()):
        """fwd(*args) with the gradient bwd(upstream, *args) -> one gradient (or None) per arg
        (fwd returning a tuple: bwd(upstream_1, ..., upstream_k, *args)).
        Both run as XLA-compiled tf.functions when self.xla (compiled once per key and shape),
        else as plain ops. `key` names the pair: one key, one (fwd, bwd). reduce: indices of
        args whose gradient bwd returns per element, to be summed over all but the last axis
        here (by TensorFlow's reduction: XLA's CPU column reductions are slow)."""
        pair = self._fns.get(key)
        if pair is None:
            if self.xla:
                pair = (tf.function(fwd, jit_compile=True, autograph=False, reduce_retracing=True),
                        tf.function(bwd, jit_compile=True, autograph=False, reduce_retracing=True))
            else:
                pair = (fwd, bwd)
            self._fns[key] = pair
        f, b = pair

        @tf.custom_gradient
        def op(*a):
            def grad(*g):
                res = b(*g, *a)
                res = list(res) if isinstance(res, (list, tuple)) else [res]
                for i in reduce:
                    res[i] = tf.cast(_channel_sum(res[i], a[i]), a[i].dtype)
                return res
            return f(*a), grad

        return op(*args)

    def fused_diff(self, key: str, fn: Callable, *args):
        """fn(*args) -> a tuple of tensors, as a fused op whose gradient is fn's own (autodiff of
        fn inside the compiled backward function)."""
        n = len(args)

        def fwd(*a):
            return tuple(fn(*a))

        def bwd(*ga):
            gs, a = ga[:-n], list(ga[-n:])
            with tf.GradientTape() as tape:
                tape.watch(a)
                ys = fn(*a)
            return tape.gradient(list(ys), a, output_gradients=[
                tf.zeros_like(y) if g is None else tf.cast(g, y.dtype) for g, y in zip(gs, ys)])

        return self.fused(key, fwd, bwd, *args)

    def centred(self, x, t: TensorQ, dtype=tf.float32, pads=None):
        """The centred code q - z of a value x on the grid of t, as an integer-valued `dtype`
        tensor: round(x / s) (exact: x = (q - z) * s in float32 is within 2^-23 * |q - z| of the
        grid), straight-through (gradient 1 / s). pads ((top, bottom), (left, right)): the
        result padded with zeros (the real zero's centred code), inside the fused op."""
        s = np.float32(t.scale)
        dt = tf.as_dtype(dtype)
        pads = tuple(tuple(int(v) for v in p) for p in pads) if pads is not None else None
        if pads is not None and not any(v for p in pads for v in p):
            pads = None
        full = [[0, 0], *[list(p) for p in pads], [0, 0]] if pads else None

        def fwd(v):
            c = tf.cast(tf.round(v / s), dt)
            return K.pad_const(c, full) if full else c

        def bwd(g, v):
            g = tf.cast(g, tf.float32) / s
            if full:
                (t0, _), (l0, _) = pads
                g = g[:, t0:t0 + v.shape[1], l0:l0 + v.shape[2], :] if v.shape[1] is not None and \
                    v.shape[2] is not None else tf.slice(g, [0, t0, l0, 0], tf.shape(v))
            return g

        return self.fused(f"centred/{t.scale!r}/{dt.name}/{pads}", fwd, bwd, x)

    @staticmethod
    def _split_params(**kw):
        """Trainable (tensor) and constant (numpy) parameters of a unit: (names, tensors, consts)."""
        names, tensors, const = [], [], {}
        for nm, v in kw.items():
            if v is None:
                continue
            if isinstance(v, (np.ndarray, np.generic, float, int)):
                const[nm] = np.asarray(v, np.float64)
            else:
                names.append(nm)
                tensors.append(tf.cast(v, tf.float64))
        return names, tensors, const

    def _unit_op(self, key: str, inputs: list, acc_fn, names: list, tensors: list, const: dict,
                 fwd_tail, bwd_tail):
        """One fused op over `inputs` and the trained parameter tensors: a = acc_fn(*inputs)
        (+ bias), then fwd_tail(a, params) -> float32 output; bwd_tail(g, a, params) -> (gradient
        of a, {param: per-element gradient to sum}). The inputs' gradients come from acc_fn's
        own (straight-through) gradient."""
        n_in = len(inputs)

        def params(ex):
            p = dict(const)
            p.update(zip(names, ex))
            return p

        def total(ins, p):
            a = tf.cast(acc_fn(*ins), tf.float64)
            return a + p["bias"] if "bias" in p else a

        def fwd(*args):
            p = params(args[n_in:])
            return fwd_tail(total(args[:n_in], p), p)

        def bwd(g, *args):
            ins, ex = list(args[:n_in]), args[n_in:]
            p = params(ex)
            with tf.GradientTape() as tape:
                tape.watch(ins)
                a0 = tf.cast(acc_fn(*ins), tf.float64)
            a = a0 + p["bias"] if "bias" in p else a0
            ga, per = bwd_tail(g, a, p)
            gi = tape.gradient(a0, ins, output_gradients=ga)
            res = list(gi)
            for nm in names:  # per element, float32: summed per channel outside (fused(reduce=))
                res.append(tf.cast(ga if nm == "bias" else per[nm], tf.float32))
            return res

        return self.fused(f"{key}[{','.join(names)}]", fwd, bwd, *inputs, *tensors,
                          reduce=tuple(range(n_in, n_in + len(names))))

    def unit(self, key: str, inputs: list, acc_fn, m, out: TensorQ, lo=None, hi=None, *, bias=None,
             m_neg=None):
        """The dequantized codes clamp(floor(a * m_sel + 1/2) + z, lo, hi), a = acc_fn(*inputs) +
        bias, m_sel = m (m_neg where a < 0: two-slope units), as one fused op: float32 on out's
        grid.

        acc_fn: the accumulator (an exact integer in float32 / float64) from the input tensors,
        differentiable (straight-through rounding, e.g. `ste_centred`); m, m_neg: numpy
        multipliers (per channel, per position or scalar) or tensors (trained scales); bias:
        None, numpy integers or an integer-valued float64 tensor (trained); lo, hi: numpy codes
        (default the code range). Straight-through gradient: d out / d a = s * m_sel where
        lo <= floor(a * m_sel + 1/2) + z <= hi (inclusive, as tf.maximum / tf.minimum pass it), 0
        elsewhere; to the bias its sum over all but the channel axis, to m (m_neg) the sum of
        a times it."""
        zp, s = np.float64(out.zp), np.float32(out.scale)
        lo = np.asarray(0 if lo is None else lo, np.float64)
        hi = np.asarray(qmax(out.bits) if hi is None else hi, np.float64)
        names, tensors, const = self._split_params(bias=bias, m=m, m_neg=m_neg)
        two = "m_neg" in names or "m_neg" in const

        def value(a, p):
            if not two:
                return tf.floor(a * p["m"] + 0.5) + zp
            return tf.where(a >= 0.0, tf.floor(a * p["m"] + 0.5), tf.floor(a * p["m_neg"] + 0.5)) + zp

        def fwd_tail(a, p):
            code = tf.minimum(tf.maximum(value(a, p), lo), hi)
            return (tf.cast(code, tf.float32) - np.float32(zp)) * s

        def bwd_tail(g, a, p):
            v = value(a, p)
            d = tf.where((v >= lo) & (v <= hi), tf.cast(g, tf.float64) * np.float64(s), 0.0)
            if not two:
                return d * p["m"], {"m": d * a}
            pos = a >= 0.0
            da, zero = d * a, tf.zeros_like(d)
            return d * tf.where(pos, p["m"], p["m_neg"]), \
                {"m": tf.where(pos, da, zero), "m_neg": tf.where(pos, zero, da)}

        return self._unit_op(f"{key}/unit", inputs, acc_fn, names, tensors, const, fwd_tail, bwd_tail)

    def requantize(self, key: str, acc, m, out: TensorQ, lo=None, hi=None, *, bias=None, m_neg=None):
        """`unit` on an accumulator tensor (float32 / float64 holding exact integers)."""
        return self.unit(key, [acc], lambda a: a, m, out, lo, hi, bias=bias, m_neg=m_neg)

    def table(self, key: str, inputs: list, acc_fn, m, pre: TensorQ, lut: np.ndarray, fn: Callable,
              out: TensorQ, *, bias=None):
        """Table activations as one fused op: p = clamp(floor(a * m + 1/2) + z_pre, 0, 65535),
        a = acc_fn(*inputs) + bias, and the stored table's code lut[p] (the chip's value),
        dequantized. Gradient: the activation's derivative on the pre-activation grid,
        straight-through: d out / d a = f'(s_pre * (p - z_pre)) * s_pre * m where p and
        rhe(f / s_out) + z are inside their code ranges, 0 elsewhere."""
        from .numerics.params import LUT_SIZE

        zp_pre, s_pre = np.float64(pre.zp), np.float64(np.float32(pre.scale))
        s_out, zp = np.float32(out.scale), np.float64(out.zp)
        top, pmax = np.float64(qmax(out.bits)), np.float64(LUT_SIZE - 1)
        lut_c = np.asarray(lut)
        names, tensors, const = self._split_params(bias=bias, m=m)

        def fwd_tail(a, p):
            idx = tf.clip_by_value(tf.floor(a * p["m"] + 0.5) + zp_pre, 0.0, pmax)
            code = tf.gather(tf.constant(lut_c), tf.cast(idx, tf.int32))
            return (tf.cast(code, tf.float32) - np.float32(zp)) * s_out

        def bwd_tail(g, a, p):
            idx = tf.floor(a * p["m"] + 0.5) + zp_pre
            xp = (tf.clip_by_value(idx, 0.0, pmax) - zp_pre) * s_pre
            with tf.GradientTape() as tape:
                tape.watch(xp)
                v = fn(xp)
            c = tf.round(v / np.float64(s_out)) + zp
            keep = (c >= 0.0) & (c <= top) & (idx >= 0.0) & (idx <= pmax)
            d = tape.gradient(v, xp, output_gradients=tf.where(keep, tf.cast(g, tf.float64), 0.0)) * s_pre
            return d * p["m"], {"m": d * a}

        return self._unit_op(f"{key}/table", inputs, acc_fn, names, tensors, const, fwd_tail, bwd_tail)

    @staticmethod
    def ste_centred(x, t: TensorQ, dtype=tf.float64):
        """round(x / s) as in `centred`, straight-through, as plain ops (inside an acc_fn)."""
        return tf.cast(round_ste(x / np.float32(t.scale)), dtype)


def fake_quant_layer_fn(hn, qp: dict, weights: dict | None = None, *, biases: dict | None = None,
                        weight_scales: dict | None = None, xla: bool = True,
                        fused_cache: dict | None = None) -> Callable:
    """The fake-quant layer function for graph_exec.execute: float32 values on the grids.

    Each layer recovers the centred codes of its inputs (FakeQuantContext.centred), computes its
    accumulator with float ops on integer values (float32 where the sum is provably exact, else
    float64, as the integer kernels do; element-wise / pooling / resize sums in float64),
    rescales in float64 with the stored M * 2^-r and floor(v + 1/2), clamps, and dequantizes;
    table activations take the stored table's code. Rounding is straight-through, so gradients
    reach the inputs and the QFT parameters given as tensors (FakeQuantContext: `weights`
    {layer: float kernel} through fake_quant_weights; `biases`, `weight_scales`). The
    elementwise parts run as XLA-compiled fused ops when XLA is exact here (xla=True).
    """
    from .float_ops import run_float_layer

    f = FakeQuantContext(hn, qp, weights, biases=biases, weight_scales=weight_scales, xla=xla,
                         fused_cache=fused_cache)

    def fn(layer: Layer, ins: list):
        p = f.placement(layer.name)
        if p == Placement.HOST:
            return ins[0] if layer.type == "output_layer" else run_float_layer(layer, ins, {})
        if p == Placement.FOLDED:
            return ins[0]
        return kind_of(layer).fake_quant(f, layer, ins)

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
            raise InferenceInputError(f"run_codes: no codes for input layer '{n}'")
        if np.asarray(codes[n]).dtype != want:
            raise InferenceInputError(f"run_codes: input '{n}' codes must be {np.dtype(want).name}, "
                             f"got {np.asarray(codes[n]).dtype}")
    for n in names:
        if n not in ex.hn.layers or not ex.Q.on_chip(n):
            raise InferenceInputError(f"run_codes: '{n}' is not an on-chip tensor (host op or folded)")
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
    """A host op (softmax / argmax) as the host applies it to a dequantized float32 output
    (layers/host.py)."""
    return kind_of(layer).host_numpy(layer, x)


def infer(runner: Any, target: Any, data: Any, inter_layers: bool = False, batch_size: int = 32):
    """runner.infer for SdkQuantized / SdkNumeric (module doc)."""
    if batch_size < 1:
        raise InferenceInputError(f"batch_size must be >= 1, got {batch_size}")
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
        place = Q.placement(name)
        if not numeric:
            v = raw[name]
        elif place == Placement.HOST and layer.type == "output_layer":
            # the graph passed the chip's codes through the host ops: dequantize, then apply them
            src, host_layers = chip_source(runner, layer)
            v = dequantize(raw[name], Q, src)
            for h in host_layers:
                v = host_op_numpy(h, v)
        elif place == Placement.HOST:
            v = host_op_numpy(layer, value(layer.input[0]))
        elif place == Placement.FOLDED:
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
        place = Q.placement(k)
        if place == Placement.FOLDED:
            # not a chip tensor: the normalization of the (quantized) input, in float32
            prm = runner.layer_params(k, "fp_optimized")
            layers[k] = ((value(hn.layers[k].input[0]) - prm["mean"]) / prm["std"]).astype(np.float32)
            continue
        layers[k] = value(k)
        if numeric and place == Placement.CHIP:
            layers[k + ":codes"] = raw[k]
    return result, layers
