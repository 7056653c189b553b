"""What a layer kind is: the base class every module of emulator/layers/ fills in.

A kind holds, side by side, the four forms of one HN layer type (docs/numerics.md is the
definition of the integer ones):

  float_op(layer, inputs, params)  the float32 result before the fused activation (TF ops; the
                                   native and fp-optimized targets, and calibration)
  derive(d, layer, cfg)            its integer params, from its calibrated tensors and float params
                                   (d: quantization.derivation.Derivation)
  numeric(q, layer, ins)           the bit-exact integer op: codes in, codes out (SdkNumeric;
                                   q: quantized_exec.NumericContext)
  fake_quant(f, layer, ins)        the same on float32 values on the grids, differentiable
                                   (SdkQuantized; f: quantized_exec.FakeQuantContext)
  fields(layer) / check(c, layer)  what it stores and how a loaded file is checked
                                   (qparams_check; c: the checker)
and what the rest of the emulator asks of it: `passthrough` (keeps its input's tensor (s, z, b)),
`host` (runs on the host after dequantization), `macs(layer)`, `has_act_unit(layer)`.
Kinds are stateless singletons; `register` puts one in the registry (emulator.layers).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ParamsError
from ..hn import Layer

Tensor = Any
F32, F64, I32, I64 = (np.float32,), (np.float64,), (np.int32,), (np.int64,)


def param(params: dict[str, Any], key: str, layer: Layer):
    """A float param of a layer as a float32 tensor, with a clear error when it is not loaded."""
    from .._lazy import tf

    try:
        v = params[key]
    except KeyError:
        raise ParamsError(f"layer '{layer.name}' ({layer.type}) needs param '{key}:0', which is "
                          f"not loaded; load the network's NPZ with runner.load_params") from None
    return tf.cast(v, tf.float32) if isinstance(v, tf.Tensor) else tf.constant(np.asarray(v, np.float32))


def reshape_out(t, layer: Layer):
    """A tensor reshaped to the layer's output shape (any batch)."""
    from .._lazy import tf

    return tf.reshape(t, [-1] + list(layer.output_shape[1:]))


def spatial(layer: Layer) -> tuple[list[int], list[int], list[int], str]:
    """(kernel_shape, strides hw, dilations hw, padding) of a spatial layer."""
    p = layer.params
    return p["kernel_shape"], p["strides"][1:3], p.get("dilations", [1, 1, 1, 1])[1:3], p["padding"]


class LayerKind:
    types: tuple[str, ...] = ()
    passthrough = False  # its output keeps its input's tensor (s, z, b)
    host = False         # runs on the host in float32 after dequantization
    xla = True           # SdkNumeric compiles it with XLA (data movement alone gains nothing)

    def __repr__(self) -> str:
        return f"<layer kind {'/'.join(self.types)}>"

    # --- float ------------------------------------------------------------------------------
    def float_op(self, layer: Layer, inputs: list[Tensor], params: dict[str, Any]) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__}.float_op")

    def macs(self, layer: Layer) -> int:
        """Multiply-accumulates of one frame (reports and estimates)."""
        return 0

    # --- quantized --------------------------------------------------------------------------
    def has_act_unit(self, layer: Layer) -> bool:
        """Whether its on-chip form ends in the activation unit (s_acc, M, r, clamps...)."""
        return False

    def out_bits(self, d: Any, layer: Layer, cfg: Any) -> int:
        """Width of its output tensor (the precision mode's, unless the kind fixes it)."""
        return cfg.out_bits

    def tensor(self, d: Any, layer: Layer, cfg: Any):
        """Its output tensor (s, z, b): its input's when passthrough, else from its range."""
        if self.passthrough:
            return d.tq[d.source(layer)]
        return d.tensor_from_range(layer.name, self.out_bits(d, layer, cfg))

    def derive(self, d: Any, layer: Layer, cfg: Any) -> None:
        """Its integer params into d.qp (nothing for layers that only move codes)."""

    def numeric(self, q: Any, layer: Layer, ins: list[Tensor]) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__}.numeric")

    def numeric_compiled(self, q: Any, layer: Layer, ins: list[Tensor]) -> Tensor:
        """numeric() compiled by XLA as one function (the elementwise chain fused)."""
        return q.jit(layer.name, lambda *a: self.numeric(q, layer, list(a)))(*ins)

    def fake_quant(self, f: Any, layer: Layer, ins: list[Tensor]) -> Tensor:
        """Default for layers that only move values: the float op on the grid values (exact)."""
        return self.float_op(layer, ins, {})

    # --- stored params ----------------------------------------------------------------------
    def fields(self, layer: Layer) -> dict[str, tuple[tuple, tuple | None, bool]]:
        """Its own stored fields beyond the tensor's and the activation unit's:
        field -> (allowed dtypes, shape or None (checked in check()), required)."""
        return {}

    def check_width(self, c: Any, layer: Layer, tq: Any) -> None:
        """Its stored output width against its precision mode (layers that fix it override)."""
        cfg = c.configs[layer.name]
        if c.rederive and cfg.valid and tq.bits != cfg.out_bits:
            raise c.fail(layer.name, "out_bits", f"expected {cfg.out_bits}, the output width of its "
                                                 f"precision mode {cfg.precision_mode} (layer "
                                                 f"quantization_params in the HN); found {tq.bits}")

    def check(self, c: Any, layer: Layer) -> None:
        """Check its stored values (c: qparams_check's checker; its tensor is checked already)."""
