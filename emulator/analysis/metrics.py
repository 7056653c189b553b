"""Accuracy metrics of a test tensor against a reference tensor: numpy only (no TensorFlow).

Every function takes `ref` (the reference, e.g. the native float network's values) and `test`
(the values under test, e.g. dequantized device values) as array-likes of the same shape, and
returns a Python float. The arithmetic is float64 whatever the inputs' dtype. Writing
e = test - ref for the error, element by element, over all n elements:

    snr_db            10 log10(sum ref^2 / sum e^2)                 dB; higher is better
    cosine_similarity sum(ref * test) / (||ref|| ||test||)         1 = same direction
    mean_error        sum(e) / n                                    the bias (signed)
    max_abs_error     max |e|
    rmse              sqrt(sum(e^2) / n)
    top1_agreement    share of samples whose argmax over the last axis is the same

Degenerate cases (each function's doc says its own):
- identical tensors: snr_db is +inf (no noise), even when both are zero;
- a zero reference with some error: snr_db is -inf (no signal);
- empty tensors: snr_db +inf, cosine_similarity 1.0, the errors 0.0, top1_agreement nan.
Errors (MetricsError and its subclasses, which are also ValueErrors):
- shapes that differ: MetricsShapeError naming both shapes (nothing is broadcast);
- NaN or infinite values: NonFiniteValueError naming the argument, how many values and the
  first position (a metric over a NaN would be a NaN that hides where it came from);
- values that are not real numbers (strings, complex, ragged lists): MetricsError.
Magnitudes whose squares overflow or underflow float64 (beyond about 1e154, or non-zero below
about 1e-154) are outside the domain: the sums become inf or 0 and the results inf, nan or a
wrong degenerate case.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import EmulatorError

__all__ = [
    "MetricsError",
    "MetricsShapeError",
    "NonFiniteValueError",
    "snr_db",
    "cosine_similarity",
    "mean_error",
    "max_abs_error",
    "rmse",
    "top1_agreement",
]


class MetricsError(EmulatorError, ValueError):
    """Values a metric is not defined on; the message names the argument and what is wrong."""


class MetricsShapeError(MetricsError):
    """`ref` and `test` have different shapes (metrics never broadcast)."""


class NonFiniteValueError(MetricsError):
    """An argument holds NaN or infinite values."""


def _real_array(x, name: str) -> np.ndarray:
    """x as a float64 array of finite values, or MetricsError naming `name`."""
    try:
        a = np.asarray(x)
    except ValueError as e:  # ragged nested sequences
        raise MetricsError(f"{name} is not an array of numbers: {e}") from None
    if a.dtype.kind == "O":
        try:
            a = a.astype(np.float64)
        except (TypeError, ValueError) as e:
            raise MetricsError(f"{name} is not an array of real numbers: {e}") from None
    elif a.dtype.kind not in "biuf":
        raise MetricsError(f"{name} has dtype {a.dtype}; metrics take real numbers (bool, "
                           f"integer or float arrays)")
    a = a.astype(np.float64, copy=False)
    bad = ~np.isfinite(a)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        kind = "NaN" if np.isnan(a).any() else "infinite"
        raise NonFiniteValueError(
            f"{name} holds {int(bad.sum())} non-finite value(s) ({kind} among them), the first "
            f"at index {first}; metrics are defined on finite values only")
    return a


def _pair(ref, test) -> tuple[np.ndarray, np.ndarray]:
    r, t = _real_array(ref, "ref"), _real_array(test, "test")
    if r.shape != t.shape:
        raise MetricsShapeError(f"ref has shape {r.shape} and test has shape {t.shape}; metrics "
                                f"compare tensors of the same shape (reshape them first)")
    return r, t


def snr_db(ref, test) -> float:
    """Signal-to-noise ratio of `test` against `ref`, in dB:

        SNR = 10 log10( sum(ref^2) / sum((ref - test)^2) )

    +inf when the noise is zero (identical tensors, including two zero or two empty ones);
    -inf when the reference is all zeros and the noise is not. Example: ref = x, test = x + e
    with sum(e^2) = sum(x^2) / 100 gives 20 dB."""
    r, t = _pair(ref, test)
    err = np.sum((r - t) ** 2)
    sig = np.sum(r ** 2)
    if err == 0:
        return math.inf
    if sig == 0:
        return -math.inf
    return float(10.0 * np.log10(sig / err))


def cosine_similarity(ref, test) -> float:
    """Cosine of the angle between the two tensors, flattened:

        cos = sum(ref * test) / (sqrt(sum ref^2) * sqrt(sum test^2))

    in [-1, 1] (up to rounding). 1.0 when both are all zeros (or empty), 0.0 when exactly one
    is all zeros."""
    a, b = (x.ravel() for x in _pair(ref, test))
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 and nb == 0:
        return 1.0
    if na == 0 or nb == 0:
        return 0.0
    return float(np.dot(a, b) / (na * nb))


def mean_error(ref, test) -> float:
    """The bias: the mean signed error, over all n elements,

        mean_error = sum(test - ref) / n

    positive when `test` is too large on average; 0.0 for empty tensors."""
    r, t = _pair(ref, test)
    return float(np.mean(t - r)) if r.size else 0.0


def max_abs_error(ref, test) -> float:
    """The largest absolute error, max |test - ref|; 0.0 for empty tensors."""
    r, t = _pair(ref, test)
    return float(np.max(np.abs(t - r))) if r.size else 0.0


def rmse(ref, test) -> float:
    """Root-mean-square error over all n elements,

        rmse = sqrt( sum((test - ref)^2) / n )

    0.0 for empty tensors. rmse >= |mean_error| and rmse <= max_abs_error."""
    r, t = _pair(ref, test)
    return float(np.sqrt(np.mean((t - r) ** 2))) if r.size else 0.0


def top1_agreement(ref, test) -> float:
    """The share of samples whose top-1 class is the same in both: scores have the classes on
    the last axis and the samples on the leading axes (a 1-D array is one sample),

        agreement = #{i : argmax ref[i] == argmax test[i]} / #samples

    Ties go to the first maximum (numpy.argmax). nan when there are no samples. A last axis of
    length 0 is a MetricsShapeError (no class to pick)."""
    r, t = _pair(ref, test)
    if r.ndim == 0 or r.shape[-1] == 0:
        raise MetricsShapeError(f"top-1 agreement needs scores with classes on the last axis; "
                                f"got shape {r.shape}")
    r = r.reshape(-1, r.shape[-1])
    t = t.reshape(-1, t.shape[-1])
    if r.shape[0] == 0:
        return math.nan
    return float(np.mean(r.argmax(axis=1) == t.argmax(axis=1)))
