"""run_quantization_from_np: the seed's basic quantization scheme (docs/numerics.md).

Steps, in order (the later algorithms plug in between them):
  1. calibration check     (N, H, W, C) against the HN, OutOfRange (a failure changes nothing)
  2. per-layer config      layer.quantization_params (precision_mode, bias_mode,
                           quantization_groups), filled from `config` and validated
  3. statistics            float (fp-optimized) inference over calib_num_batch x batch_size
                           images: min / max of every layer output and table pre-activation
  4. derivation            placements, tensors (s, z, b), each layer kind's integer params
  5. export                runner.quantized_params, runner.metadata["calibration"],
                           runner.stream_infos
"""
from __future__ import annotations

import logging
from typing import Any, Mapping

from ..errors import NoParamsError
from ..limits import check_batch
from ..stream_export import get_stream_infos, host_ops_of
from .calibration import check_calibration
from .config import apply_config
from .derivation import derive_quantized_params
from .statistics import collect_statistics

log = logging.getLogger(__name__)


def run_quantization_from_np(runner: Any, np_array: Any, calib_num_batch: int = 8, batch_size: int = 8,
                             config: Mapping[str, Mapping[str, Any]] | None = None) -> None:
    """Quantize `runner` with the basic scheme (seed section 3.2; docs/numerics.md).

    np_array: (N, H, W, C) pre-processed images (or {input layer: array}); the first
    calib_num_batch * batch_size are used (more than N is the FAQ's OutOfRange error).
    config: {layer name or glob: {"precision_mode": "a8_w8" | "a8_w4" | "a16_w16" | "a16_w8" |
    "a8_w8_a16", "bias_mode": "single_scale_decomposition" | "double_scale_initialization",
    "quantization_groups": 1..4}}; written into the HN's per-layer quantization_params.
    Fills runner.quantized_params, runner.metadata["calibration"], runner.stream_infos.
    """
    if runner.native_params is None:
        raise NoParamsError(runner.hn.name)
    data = check_calibration(runner, np_array, calib_num_batch, batch_size)
    apply_config(runner.hn, config)
    n = int(calib_num_batch) * int(batch_size)
    check_batch(runner.hn, int(batch_size), "calibration", keep_all=True)
    log.info("calibration: %d images in %d batches of %d", n, calib_num_batch, batch_size)
    stats = collect_statistics(runner, data, int(batch_size))
    qp, summary = derive_quantized_params(runner, stats)
    summary.update({"images": n, "calib_num_batch": int(calib_num_batch), "batch_size": int(batch_size)})
    previous = runner.quantized_params
    runner.quantized_params = qp
    try:
        infos = stream_infos_dicts(runner, get_stream_infos(runner))
    except BaseException:  # a network whose streams cannot be exported stays as it was
        runner.quantized_params = previous
        raise
    runner.metadata["calibration"] = summary
    runner.stream_infos = infos


def stream_infos_dicts(runner: Any, infos: list) -> list[dict]:
    """The stream infos as the dicts a runner and its HAR keep (with the host ops of outputs)."""
    out = []
    for si in infos:
        d = si.to_dict()
        ops = host_ops_of(runner, si.name)
        if ops:
            d["host_ops"] = ops
        out.append(d)
    return out
