"""The quantized emulation targets (docs/numerics.md).

SdkNumeric    the chip, bit-exact: inputs quantized by the C host quantizer
              (hailort_py.quantize, the function host code uses), then each layer kind's integer
              op layer by layer, compiled into one tf.function; outputs are the codes of the last
              on-chip tensors, dequantized by the C dequantizer; softmax / argmax at outputs run
              in float32 after dequantization (as on the host).
SdkQuantized  fake-quant: float32 math on the same grids (weights q_w * s_w, biases B * s_acc,
              rescales with the stored M * 2^-r, round half up, clamps, tables as f on the
              16-bit pre-activation grid), with straight-through rounding so that it is
              differentiable (QFT trains through `fake_quant_layer_fn`).

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

def floor_ste(v):
    """floor with a straight-through (identity) gradient."""
    return v + tf.stop_gradient(tf.floor(v) - v)


def round_ste(v):
    """round half to even with a straight-through gradient."""
    return v + tf.stop_gradient(tf.round(v) - v)


def fake_quant_weights(w, s_w_per_channel: np.ndarray, bits: int):
    """Integer weights from float weights (a tensor, e.g. a QFT variable; last axis = output
    channel for conv / dense / deconv, [.., cin, mult] flattened for depthwise):
    clamp(round(W / s_w), -(2^(bw-1) - 1), 2^(bw-1) - 1) with a straight-through gradient."""
    lim = float((1 << (bits - 1)) - 1)
    shp = w.shape
    w2 = tf.reshape(w, [-1, len(s_w_per_channel)])
    q = tf.clip_by_value(round_ste(w2 / s_w_per_channel.astype(np.float32)), -lim, lim)
    return tf.reshape(q, shp)


class FakeQuantContext(QParams):
    """The stored params as the fake-quant ops read them, the float weights they quantize, and
    the shared float formulas (straight-through rounding, dequantization, clamps)."""

    floor = staticmethod(floor_ste)
    round = staticmethod(round_ste)
    fake_quant_weights = staticmethod(fake_quant_weights)

    def __init__(self, hn, qp: dict, weights: dict | None = None):
        super().__init__(hn, qp)
        self._weights: dict[str, Any] = {}
        for layer in hn.topological():
            name = layer.name
            if self.on_chip(name) and layer.type in MAC_TYPES:
                qw = self.get(name, "q_w").astype(np.float64)
                q2d = weights_2d(qw, layer.type)
                C = q2d.shape[1]
                s_w = self.get(name, "s_w")[channel_groups(C, int(self.get(name, "groups")))]
                if weights is not None and name in weights:
                    w = weights[name]
                else:
                    w = tf.constant((q2d * s_w[None, :]).reshape(qw.shape).astype(np.float32))
                self._weights[name] = (w, s_w, int(self.get(name, "w_bits")), abs_weight_sum(q2d))

    def weights(self, name: str):
        """(float weights, s_w per output channel, weight bits, max_o sum |q_w|) of a MAC layer."""
        return self._weights[name]

    @staticmethod
    def dequantize(code, t: TensorQ):
        """(code - z) * s in float32: the dequantizer's formula."""
        return (tf.cast(code, tf.float32) - np.float32(t.zp)) * np.float32(t.scale)

    @staticmethod
    def centred(x, t: TensorQ):
        """The centred code q - z of a value x on the grid of t, as a float32 integer: round(x / s)
        (exact: x = (q - z) * s in float32 is within 2^-23 * |q - z| of the grid), straight-through."""
        return round_ste(x / np.float32(t.scale))

    def centred64(self, x, t: TensorQ):
        return tf.cast(self.centred(x, t), tf.float64)

    def finish(self, code, name: str, lo=None, hi=None):
        """Clamp float64 codes to [lo, hi] (default the code range) and dequantize."""
        out = self.tensor(name)
        lo = np.float64(0) if lo is None else lo
        hi = np.float64(qmax(out.bits)) if hi is None else hi
        return self.dequantize(tf.minimum(tf.maximum(code, lo), hi), out)


def fake_quant_layer_fn(hn, qp: dict, weights: dict | None = None) -> Callable:
    """The fake-quant layer function for graph_exec.execute: float32 values on the grids.

    Each layer recovers the centred codes of its inputs (FakeQuantContext.centred), computes its
    accumulator with float ops on integer values (float32 where the sum is provably exact, else
    float64, as the integer kernels do; element-wise / pooling / resize sums in float64),
    rescales in float64 with the stored M * 2^-r and floor(v + 1/2), clamps, and dequantizes.
    Rounding is straight-through, so gradients reach the inputs and (through
    fake_quant_weights) float weights given in `weights` ({layer: float kernel}; default: the
    stored q_w * s_w, which round back to q_w exactly). Table activations evaluate f in float64
    on the 16-bit pre-activation grid.
    """
    from .float_ops import run_float_layer

    f = FakeQuantContext(hn, qp, weights)

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
