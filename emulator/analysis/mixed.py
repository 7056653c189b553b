"""Mixed execution: some layers float (fp-optimized), the others as on the chip.

What the noise analysis runs (docs/analysis.md):

  run(x, quantized, snapped=())
                          only the layers in `quantized` run as on the chip; those in `snapped`
                          run in float on their inputs rounded to the grids the chip reads; the
                          rest in float. With every analysed layer quantized, the outputs are
                          SdkNumeric's, bit for bit; with none, SdkFPOptimized's.
  run_local(x)            float all the way, and beside it each analysed layer's chip op and
                          float op fed the float inputs (rounded): every layer's own error in
                          one pass.

One tf.function takes the data and two boolean masks over the analysed layers, so choosing other
layers does not retrace or recompile (each layer is a tf.cond between its forms).

How a quantized layer reads its inputs:
- all of them written by quantized layers (on their grids): their codes, exactly (a dequantized
  code snaps back to itself), and the kind's integer op: a run of quantized layers is the chip's
  integer pipeline, bit-exact;
- any of them float: the kind's fake-quant op (SdkQuantized's: float math on the integer grids,
  within one code of the integer op), which rounds a float input to its grid's step without
  clipping it to the grid's range. A tensor's range belongs to the layer that writes it: when
  that layer is kept float, so is its range.
A layer's own error is its quantized op against its float op on the same rounded inputs
(`snapped`); the outputs of quantized layers are dequantized, (q - z) * s in float32, for
whatever comes next.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .._lazy import tf
from ..errors import RunnerUsageError
from ..hn import Layer
from ..layers import kind_of
from ..numerics.params import TensorQ, qmax
from ..quantization.keys import Placement
from ..quantization.stored import QParams


def analysed_layers(runner: Any) -> list[str]:
    """The layers that add quantization error of their own, in topological order: every on-chip
    layer but those that move their input's codes unchanged (output layers, max pooling, shape
    changes, nearest resize: they keep their input's grid and compute nothing)."""
    Q = QParams(runner.hn, runner.quantized_params)
    return [l.name for l in runner.hn.topological()
            if Q.on_chip(l.name) and (not kind_of(l).passthrough or kind_of(l).has_act_unit(l))]


def _dequantize(code, t: TensorQ):
    """The C dequantizer's formula: ((float)q - zp) * scale in float32."""
    return (tf.cast(code, tf.float32) - np.float32(t.zp)) * np.float32(t.scale)


def _snap(x, t: TensorQ):
    """The codes of float values on the grid of t: clamp(round(x / s) + z, 0, 2^b - 1)."""
    v = tf.round(x / np.float32(t.scale)) + np.float32(t.zp)
    return tf.cast(tf.clip_by_value(v, 0.0, np.float32(qmax(t.bits))), t.dtype)


def _host_quantize(x, t: TensorQ):
    """The host quantizer's formula (layers/io.py): clip to limvals, x / s + z, clamp, round
    half to even; raw pixels (identity QP) clamp and round."""
    qm = np.float32(qmax(t.bits))
    if t.scale == 1.0 and t.zp == 0:
        v = x
    else:
        lo, hi = (np.float32(v) for v in t.limvals)
        v = tf.minimum(tf.maximum(x, lo), hi) / np.float32(t.scale) + np.float32(t.zp)
    return tf.cast(tf.round(tf.minimum(tf.maximum(v, np.float32(0.0)), qm)), t.dtype)


class MixedExecutor:
    """One runner's network in mixed float / bit-exact execution (module doc). Built once; the
    set of quantized layers is data, not structure."""

    def __init__(self, runner: Any, xla: bool = True):
        from ..graph_exec import execute
        from ..npz import layer_params
        from ..float_ops import run_float_layer
        from ..numerics import kernels as K
        from ..quantized_exec import FakeQuantContext, numeric_layer_fn

        if runner.quantized_params is None:
            from ..errors import NotQuantizedError

            raise NotQuantizedError(runner.hn.name)
        hn = runner.hn
        self.hn = hn
        self.Q = Q = QParams(hn, runner.quantized_params)
        self.layers = analysed_layers(runner)
        self.index = {n: i for i, n in enumerate(self.layers)}
        self.inputs = [l.name for l in hn.input_layers]
        self.outputs = [l.name for l in hn.output_layers]
        self.names = [l.name for l in hn.topological()]
        params = runner.fp_optimized_params if runner.fp_optimized_params is not None \
            else runner.native_params
        consts = {l.name: layer_params(hn, params, l.name) for l in hn.topological()}
        K.float32_path_is_exact()  # the kernels' eager self-checks, before any tracing
        K.xla_is_exact()
        numeric = numeric_layer_fn(hn, runner.quantized_params, xla)

        fq = FakeQuantContext(hn, runner.quantized_params)

        def sources(layer: Layer) -> list[str]:
            return [Q.source(layer, i) for i in range(len(layer.input))]

        def chip(layer: Layer, values: dict):
            """The integer op on its inputs' codes (all on their grids), dequantized."""
            if layer.type == "input_layer":
                codes = [_host_quantize(values[layer.name + ":in"], Q.tensor(layer.name))]
            else:
                codes = [_snap(values[s], Q.tensor(s)) for s in sources(layer)]
            return _dequantize(numeric(layer, codes), Q.tensor(layer.name))

        def fake(layer: Layer, values: dict):
            """The fake-quant op on float inputs (rounded to their grids' steps, not clipped)."""
            if layer.type == "input_layer":
                return kind_of(layer).fake_quant(fq, layer, [values[layer.name + ":in"]])
            return kind_of(layer).fake_quant(fq, layer, [values[s] for s in sources(layer)])

        def float_rounded(layer: Layer, values: dict):
            """The layer in float on its inputs rounded as `fake` rounds them: the reference its
            own error is measured against (a folded normalization between runs on them too)."""
            if layer.type == "input_layer":
                return values[layer.name]
            ins = []
            for name, src in zip(layer.input, sources(layer)):
                s = np.float32(Q.tensor(src).scale)
                v = tf.round(values[src] / s) * s
                if name != src:  # a folded normalization: the float network still runs it
                    v = run_float_layer(hn.layers[name], [v], consts[name])
                ins.append(v)
            return run_float_layer(layer, ins, consts[layer.name])

        def layer_fn(quant, snap, local: dict | None):
            values: dict[str, Any] = {}
            on_grid: dict[str, Any] = {}  # name -> bool tensor: the value is dequantized codes

            def fn(layer: Layer, ins: list):
                name = layer.name
                if layer.type == "input_layer":
                    values[name + ":in"] = ins[0]
                out = values[name] = run_float_layer(layer, ins, consts[name])
                i = self.index.get(name)
                if local is not None:
                    if i is not None:
                        local[name] = (fake(layer, values), float_rounded(layer, values))
                elif i is not None:
                    srcs = sources(layer) if layer.type != "input_layer" else []
                    exact = tf.reduce_all(tf.stack([tf.constant(True)] + [on_grid[s] for s in srcs]))
                    fl = out
                    out = tf.cond(
                        quant[i],
                        lambda: tf.cond(exact, lambda: chip(layer, values), lambda: fake(layer, values)),
                        lambda: tf.cond(snap[i], lambda: float_rounded(layer, values), lambda: fl))
                    on_grid[name] = quant[i]
                elif Q.placement(name) == Placement.HOST:
                    on_grid[name] = tf.constant(False)
                else:  # layers that keep their input's grid, folded normalizations
                    src = [on_grid[s] for s in (layer.input if Q.placement(name) == Placement.FOLDED
                                                 else sources(layer))]
                    on_grid[name] = tf.reduce_all(tf.stack([tf.constant(True)] + src))
                values[name] = out
                return out

            return fn

        sig = [tf.TensorSpec([None, *l.output_shape[1:]], tf.float32) for l in hn.input_layers]
        mask_spec = tf.TensorSpec([len(self.layers)], tf.bool)

        @tf.function(input_signature=[mask_spec, mask_spec, *sig], reduce_retracing=True,
                     autograph=False)
        def mixed(quant, snap, *xs):
            outs, _ = execute(hn, dict(zip(self.inputs, xs)), layer_fn(quant, snap, None))
            return [outs[n] for n in self.outputs]

        @tf.function(input_signature=sig, reduce_retracing=True, autograph=False)
        def local(*xs):
            loc: dict[str, Any] = {}
            _, allv = execute(hn, dict(zip(self.inputs, xs)), layer_fn(None, None, loc),
                              keep_all=True)
            return ([allv[n] for n in self.names], [loc[n][0] for n in self.layers],
                    [loc[n][1] for n in self.layers])

        self._mixed, self._local = mixed, local

    def mask(self, quantized) -> np.ndarray:
        unknown = sorted(set(quantized) - set(self.index))
        if unknown:
            raise RunnerUsageError(f"{unknown} are not analysed layers of '{self.hn.name}' "
                                   f"(analysed: {', '.join(self.layers)})")
        m = np.zeros(len(self.layers), bool)
        m[[self.index[n] for n in quantized]] = True
        return m

    def run(self, batches: list[np.ndarray], quantized, snapped=()) -> dict[str, np.ndarray]:
        """The outputs with the layers in `quantized` on the chip, those in `snapped` float on
        their inputs rounded as the chip reads them, the rest float."""
        outs = self._mixed(tf.constant(self.mask(quantized)), tf.constant(self.mask(snapped)),
                           *batches)
        return {n: o.numpy() for n, o in zip(self.outputs, outs)}

    def run_local(self, batches: list[np.ndarray]) -> tuple[dict, dict, dict]:
        """({layer: float output} for every layer, and for every analysed layer fed the float
        inputs: {layer: its fake-quant op}, {layer: its float op on the same rounded inputs})."""
        allv, loc, ref = self._local(*batches)
        return ({n: v.numpy() for n, v in zip(self.names, allv)},
                {n: v.numpy() for n, v in zip(self.layers, loc)},
                {n: v.numpy() for n, v in zip(self.layers, ref)})
