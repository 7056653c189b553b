"""Analysis of quantized networks against their float reference (numpy only, no TensorFlow).

`metrics`: the accuracy metrics (SNR in dB, cosine similarity, mean error, max |error|, RMSE,
top-1 agreement), one definition each, used by `host-app compare` and by the emulator's own
analyses.
"""
from __future__ import annotations

from . import metrics
from .metrics import (MetricsError, MetricsShapeError, NonFiniteValueError, cosine_similarity,
                      max_abs_error, mean_error, rmse, snr_db, top1_agreement)

__all__ = ["metrics", *metrics.__all__]
