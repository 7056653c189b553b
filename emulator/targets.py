"""Emulation targets, and the compiled float executor behind the two float ones.

  SdkNative()       the network as parsed, float32 (runner.native_params)
  SdkFPOptimized()  float32 with the pre-quantization changes (folding, equalization, clipping):
                    runner.fp_optimized_params, or the native params while there are none
  SdkQuantized()    fake-quant: float math on the integer grids (emulator.quantized_exec)
  SdkNumeric()      the chip, bit-exact integers (emulator.quantized_exec)
Targets are small value objects: SdkNative() == SdkNative(); a class or its name is accepted too.
"""
from __future__ import annotations

import logging
from typing import Any, Mapping

import numpy as np


class Target:
    name = "target"
    quantized = False  # runs on quantized params (emulator.quantized_exec)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self).__name__)


class SdkNative(Target):
    name = "native"


class SdkFPOptimized(Target):
    name = "fp_optimized"


class SdkQuantized(Target):
    name = "quantized"
    quantized = True


class SdkNumeric(Target):
    name = "numeric"
    quantized = True


TARGETS = {t.name: t for t in (SdkNative, SdkFPOptimized, SdkQuantized, SdkNumeric)}


def as_target(t: Any) -> Target:
    """A Target instance from an instance, a Target class, or a name ('native', 'SdkNumeric'...)."""
    if isinstance(t, Target):
        return t
    if isinstance(t, type) and issubclass(t, Target):
        return t()
    if isinstance(t, str):
        for cls in TARGETS.values():
            if t in (cls.name, cls.__name__):
                return cls()
    from .errors import RunnerUsageError

    raise RunnerUsageError(f"unknown emulation target {t!r}; use SdkNative(), SdkFPOptimized(), "
                     f"SdkQuantized() or SdkNumeric()")


class _QuietRetracing(logging.Filter):
    """Each runner compiles its own tf.functions from one closure; TF's frequent-retracing
    warning counts them together and would warn about traces that are intended."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not ("triggered tf.function retracing" in msg
                    and any(owner in msg for owner in ("FloatExecutor", "_Executor")))


logging.getLogger("tensorflow").addFilter(_QuietRetracing())


class FloatExecutor:
    """A float target compiled once for one set of params: tf.functions over graph_exec.execute
    with run_float_layer, the params embedded as constants. Batch size is free (one trace).
    `layer_fn` builds the same layers in whatever graph is current (Keras, tf.compat.v1)."""

    def __init__(self, hn: Any, params: Mapping[str, np.ndarray]):
        import tensorflow as tf

        from .float_ops import run_float_layer
        from .graph_exec import execute
        from .npz import layer_params

        self.hn = hn
        self._inputs = [l.name for l in hn.input_layers]
        self._outputs = [l.name for l in hn.output_layers]
        self._layer_names = [l.name for l in hn.topological()]
        # numpy, not tf.constant: the executor also builds graphs for tf.compat.v1 sessions and
        # Keras models, and a constant belongs to the graph it was made in
        consts = {l.name: layer_params(hn, params, l.name) for l in hn.topological()}

        def fn(layer, xs):
            return run_float_layer(layer, xs, consts[layer.name])

        sig = [tf.TensorSpec([None, *l.output_shape[1:]], tf.float32) for l in hn.input_layers]

        @tf.function(input_signature=sig, reduce_retracing=True)
        def outputs_only(*xs):
            outs, _ = execute(hn, dict(zip(self._inputs, xs)), fn)
            return [outs[n] for n in self._outputs]

        @tf.function(input_signature=sig, reduce_retracing=True)
        def everything(*xs):
            outs, allv = execute(hn, dict(zip(self._inputs, xs)), fn, keep_all=True)
            return [outs[n] for n in self._outputs], [allv[n] for n in self._layer_names]

        self._fn = outputs_only
        self._fn_all = everything
        self.layer_fn = fn  # for building graphs elsewhere (keras model, tf.compat.v1 graph)

    def run(self, batches: list[np.ndarray], inter_layers: bool) -> tuple[dict, dict]:
        if inter_layers:
            outs, allv = self._fn_all(*batches)
            return ({n: o.numpy() for n, o in zip(self._outputs, outs)},
                    {n: v.numpy() for n, v in zip(self._layer_names, allv)})
        outs = self._fn(*batches)
        return {n: o.numpy() for n, o in zip(self._outputs, outs)}, {}
