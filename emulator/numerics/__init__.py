"""The emulated chip's integer arithmetic (docs/numerics.md is the definition).

params       derivations of integer parameters from float quantities (tensor params, weights,
             bias decomposition, rescale mantissa / shift, element-wise multipliers); numpy only
activations  float64 activation functions and the 65,536-entry activation tables; numpy only
geometry     padding and average-pool window counts of the spatial layers; numpy only
kernels      the integer ops, one plain function per op, the formula in its docstring
             (TensorFlow ops; import emulator.numerics.kernels explicitly)
"""
from .activations import CLAMP_ACTS, LUT_ACTS, SLOPE_ACTS, act_float64, build_lut
from .params import (TensorQ, decompose_bias, derive_rescale, derive_signed_rescale, ew_multipliers,
                     quantize_weights, tensor_params)

__all__ = ["CLAMP_ACTS", "LUT_ACTS", "SLOPE_ACTS", "act_float64", "build_lut", "TensorQ",
           "decompose_bias", "derive_rescale", "derive_signed_rescale", "ew_multipliers",
           "quantize_weights", "tensor_params"]
