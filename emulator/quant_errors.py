"""Exceptions of the quantization toolchain: the failures of the seed's FAQ ("Fail to Quantize
errors") and the checks of docs/numerics.md, each a named exception that says what happened,
where (layer, numbers) and what to do about it.

They all derive from `QuantizationError`, itself an `emulator.errors.EmulatorError`, so a caller
can catch the whole family, or both families (float and quantization) at once.
"""
from __future__ import annotations

from .errors import EmulatorError

_REAL_DATA_ADVICE = (
    "Make sure that the weights and the calibration set are real, and not randomized: random "
    "weights or random calibration images give scale ratios no trained network produces. "
    "Load the trained NPZ (runner.load_params) and calibrate with pre-processed real images, "
    "the same pre-processing the network was trained with.")


class QuantizationError(EmulatorError):
    """Base of every error the quantization toolchain raises on purpose."""


class UnsupportedRequiredSlopeError(QuantizationError, ValueError):
    """The rescale of a layer needs a multiplier m = M * 2^-r whose shift r is outside what the
    activation unit offers (docs/numerics.md, "Rescale"). The seed's FAQ: "unsupported required
    slope"."""

    def __init__(self, layer: str, desired_shift: int, available: tuple[int, int], slope: float,
                 what: str = "output rescale"):
        self.layer, self.desired_shift, self.available, self.slope = layer, desired_shift, available, slope
        lo, hi = available
        side = ("steeper than the activation unit allows" if desired_shift < lo
                else "too small for the longest shift")
        super().__init__(
            f"unsupported required slope in layer '{layer}' ({what}): the slope {slope:.6g} is "
            f"{side}; desired shift is {desired_shift}, available shift is {lo}..{hi}. "
            f"{_REAL_DATA_ADVICE}")


class CalibrationOutOfRangeError(QuantizationError, IndexError):
    """The seed's FAQ "OutOfRange": calib_num_batch * batch_size asks for more images than given."""

    def __init__(self, requested: int, available: int, calib_num_batch: int, batch_size: int):
        self.requested, self.available = requested, available
        super().__init__(
            f"OutOfRange: run_quantization_from_np was asked for calib_num_batch x batch_size = "
            f"{calib_num_batch} x {batch_size} = {requested} calibration images, but the array "
            f"holds only {available}. Give at least {requested} images, or lower calib_num_batch "
            f"or batch_size so that their product is at most {available}.")


class LimvalsOutSmallRangeError(QuantizationError, ValueError):
    """The seed's FAQ "limvals out small range": a tensor's calibrated range (extended to
    include 0) is degenerate, i.e. the calibration set never activates that branch."""

    def __init__(self, layer: str, lo: float, hi: float, min_width: float, tensor: str = "output",
                 branch: list[str] | None = None):
        self.layer, self.lo, self.hi, self.branch = layer, lo, hi, list(branch or [])
        where = f" (the branch to {', '.join(self.branch)})" if self.branch else ""
        super().__init__(
            f"limvals out small range in layer '{layer}' ({tensor}){where}: the calibration set gives "
            f"the range [{lo:.6g}, {hi:.6g}], narrower than {min_width:g}; on the given "
            f"calibration set this branch is not being activated. Check that the calibration set "
            f"is representative enough to activate all of the output branches (real images, "
            f"the network's own pre-processing), or remove the dead branch.")


class CalibrationShapeError(QuantizationError, ValueError):
    """The calibration array does not match the network's input (the seed: (N, H, W, C))."""

    def __init__(self, message: str):
        super().__init__(
            f"{message}. run_quantization_from_np expects a numpy array of shape (N, H, W, C) of "
            f"pre-processed images matching the network's input layer (or a dict from input "
            f"layer name to such arrays when the network has several inputs).")


class QuantizationConfigError(QuantizationError, ValueError):
    """An unknown layer, key or value in the per-layer quantization config."""


class AccumulatorOverflowError(QuantizationError, ValueError):
    """A layer whose worst-case accumulator does not fit the activation unit's 48-bit input."""

    def __init__(self, layer: str, bound: int, limit_bits: int):
        self.layer, self.bound = layer, bound
        super().__init__(
            f"layer '{layer}': the worst-case accumulator |acc| <= {bound} (2^{bound.bit_length()}) "
            f"does not fit the activation unit's {limit_bits}-bit input. Lower the layer's "
            f"precision (a16 -> a8 inputs or w16 -> w8) or split the layer; this also happens "
            f"with randomized weights. {_REAL_DATA_ADVICE}")


class ConcatWidthError(QuantizationError, ValueError):
    """A concat whose inputs have different activation widths (8 with 16)."""

    def __init__(self, layer: str, a: str, bits_a: int, b: str, bits_b: int):
        super().__init__(
            f"concat layer '{layer}': input '{a}' is {bits_a}-bit but input '{b}' is "
            f"{bits_b}-bit; the inputs of a concat must have the same width. Set the same "
            f"precision_mode on both producers (e.g. a16 on both, or on neither).")


class UnsupportedLayerError(QuantizationError, NotImplementedError):
    """A layer the emulated chip cannot run in the quantized domain (e.g. a softmax that feeds
    another on-chip layer; softmax and argmax run on the host only at outputs)."""
