"""Activation functions in float64 and the 65,536-entry tables of the activation unit.

The functions are those of `emulator.float_ops.activation_fn` (Keras 3 definitions), evaluated
in float64 with numpy (and `math.erf` for GELU). Classes (docs/numerics.md, "Activations"):
  CLAMP_ACTS  linear, relu, relu6  - clamps in the output code domain
  SLOPE_ACTS  leaky, prelu         - a second (signed) rescale for the negative side
  LUT_ACTS    everything else      - 16-bit pre-activation code -> table
"""
from __future__ import annotations

import math

import numpy as np

from .params import LUT_SIZE, qmax, rhe

CLAMP_ACTS = ("linear", "relu", "relu6")
SLOPE_ACTS = ("leaky", "prelu")
LUT_ACTS = ("sigmoid", "tanh", "silu", "hardswish", "hardsigmoid", "gelu", "gelu_tanh", "elu",
            "exp", "mish", "softplus")

_erf = np.frompyfunc(math.erf, 1, 1)


def _softplus(x):
    return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0.0)


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def act_float64(act: str, x: np.ndarray) -> np.ndarray:
    """f(x) in float64 for a LUT activation (definitions of float_ops.activation_fn)."""
    x = np.asarray(x, np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        if act == "sigmoid":
            return _sigmoid(x)
        if act == "tanh":
            return np.tanh(x)
        if act == "silu":
            return x * _sigmoid(x)
        if act == "hardsigmoid":
            return np.clip(x + 3.0, 0.0, 6.0) / 6.0
        if act == "hardswish":
            return x * (np.clip(x + 3.0, 0.0, 6.0) / 6.0)
        if act == "gelu":
            return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)).astype(np.float64))
        if act == "gelu_tanh":
            return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
        if act == "elu":
            return np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))
        if act == "exp":
            return np.exp(x)
        if act == "mish":
            return x * np.tanh(_softplus(x))
        if act == "softplus":
            return _softplus(x)
    raise ValueError(f"activation '{act}' is not a table (LUT) activation")


def build_lut(act: str, pre_scale: float, pre_zp: int, out_scale: float, out_zp: int,
              out_bits: int) -> np.ndarray:
    """lut[i] = clamp(rhe(f(s_pre * (i - z_pre)) / s_out) + z_out, 0, 2^b - 1), i = 0..65535,
    float64 throughout (s_pre, s_out are the float32 tensor scales as float64)."""
    i = np.arange(LUT_SIZE, dtype=np.float64)
    x = np.float64(np.float32(pre_scale)) * (i - pre_zp)
    y = act_float64(act, x) / np.float64(np.float32(out_scale))
    with np.errstate(invalid="ignore"):
        code = rhe(y) + out_zp
    code = np.where(np.isnan(code), 0, code)
    code = np.clip(code, 0, qmax(out_bits))
    return code.astype(np.uint8 if out_bits == 8 else np.uint16)
