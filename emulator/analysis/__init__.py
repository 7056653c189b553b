"""Analysis of quantized networks against their float reference.

`metrics`: the accuracy metrics (SNR in dB, cosine similarity, mean error, max |error|, RMSE,
top-1 agreement), one definition each, used by `host-app compare` and by the emulator's own
analyses (numpy only).
`noise`: the per-layer noise analysis (runner.analyze_noise; docs/analysis.md), on `mixed`
(mixed float / bit-exact execution), with `diagnostics` (findings and suggested script lines),
`tensors` (the inter-layer tensor dump), `plots` and `report_html` (the HTML report). Importing
this package imports no TensorFlow.
"""
from __future__ import annotations

from . import metrics
from .metrics import (MetricsError, MetricsShapeError, NonFiniteValueError, cosine_similarity,
                      max_abs_error, mean_error, rmse, snr_db, top1_agreement)

__all__ = ["metrics", *metrics.__all__]
