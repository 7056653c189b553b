"""run_quantization_from_np: the quantization flow, in the order of the seed (docs/numerics.md,
docs/model-script.md):

  1. calibration check     (N, H, W, C) against the HN, OutOfRange (a failure changes nothing)
  2. configuration         the model script (if any): its normalization layers added after the
                           input (quantization/input_normalization.py), its settings compiled
                           into each layer's quantization_params, then `config`; all validated
  3. equalization          dead-channel clean-up and cross-layer equalization of the float
                           params (runner.fp_optimized_params), when enabled
  4. statistics            float (fp-optimized) inference over the calibration images: min / max
                           of every layer output and table pre-activation
  5. clipping              forced ranges and activation clipping narrow the ranges
  6. derivation            placements, tensors (s, z, b), each layer kind's integer params
                           (weights clipped where configured, bias in the bias mode's precision)
  7. bias correction       IBC, layer by layer, when enabled
  8. finetune              QFT: distillation of the fake-quant network from the float one,
                           training the weights and biases (the weight scales on request),
                           when enabled (docs/finetune.md)
  9. export                runner.quantized_params, runner.metadata["calibration"] (the summary:
                           what each step did), runner.stream_infos
Each step logs what it did (logger "emulator.quantization"); long steps show a progress bar on a
terminal.
"""
from __future__ import annotations

import logging
import os
import time
from typing import Any, Mapping

from ..errors import NoParamsError
from ..limits import check_batch
from ..progress import bar
from ..stream_export import get_stream_infos, host_ops_of
from .calibration import check_calibration
from .clipping import clip_ranges, percentile_layers
from .config import apply_config, layer_config
from .derivation import derive_quantized_params
from .statistics import collect_statistics

log = logging.getLogger("emulator.quantization")

DEFAULT_CALIB_NUM_BATCH = 8
DEFAULT_BATCH_SIZE = 8


def _script(runner: Any, model_script: Any):
    """The runner's model script compiled (after loading `model_script` into it), or None."""
    if model_script is not None:
        runner.load_model_script(model_script)
    if not runner.model_script.strip():
        return None
    from ..model_script import compile_model_script

    source = os.fspath(model_script) if isinstance(model_script, os.PathLike) else "<script>"
    compiled = compile_model_script(runner.model_script, runner.hn, source=source)
    return compiled


def _add_normalizations(runner: Any, compiled: Any) -> list[str]:
    """The script's `name = normalization(mean, std)` layers added to the network (after the
    checks of the data, so that a refused call leaves the runner as it was); the log lines."""
    from .input_normalization import add_input_normalization

    done = []
    for name, mean, std, line in compiled.normalizations:
        if add_input_normalization(runner, name, mean, std, compiled.source, line):
            done.append(f"{name}: normalization added after the input layer (line {line})")
    return done


def _follow(pb: Any):
    """A progress(done, total, what) callback that moves the bar pb."""
    def progress(done: int, total: int, what: str) -> None:
        pb.total = total
        pb.set_postfix_str(what)
        pb.update(done - pb.n)
    return progress


def _flag(value: Any, from_script: Any, default: bool = False) -> bool:
    return bool(value) if value is not None else (bool(from_script) if from_script is not None else default)


def run_quantization_from_np(runner: Any, np_array: Any, calib_num_batch: int | None = None,
                             batch_size: int | None = None,
                             config: Mapping[str, Mapping[str, Any]] | None = None, *,
                             model_script: Any = None, equalize: bool | None = None,
                             ibc: bool | None = None, finetune: bool | None = None,
                             finetune_options: Mapping[str, Any] | None = None) -> None:
    """Quantize `runner` (seed sections 3 and 4; module doc for the steps).

    np_array: (N, H, W, C) pre-processed images (or {input layer: array}); the first
    calib_num_batch * batch_size are used (more than N is the FAQ's OutOfRange error). Unset,
    they come from the script's model_optimization_config(calibration, batch_size=,
    calibset_size=), else 8 and 8.
    config: {layer name or glob: {key: value}} with the keys of a model script's
    quantization_param and clipping commands (docs/model-script.md), applied after the script.
    model_script: the script's text (str) or a pathlib.Path to a .alls file; it is kept in the
    runner (and its HAR). Without it the runner's own model_script (if any) applies.
    equalize / ibc / finetune: enable or disable equalization, bias correction and QFT (None: as
    the script says; off when it says nothing). QFT takes the script's dataset_size, epochs,
    batch_size and learning_rate, or `finetune_options` ({"dataset_size": 2048, ...}); it uses
    np_array's first dataset_size images (fewer is the FAQ's "FT out of data" error).
    Fills runner.quantized_params, runner.fp_optimized_params (when equalization runs),
    runner.metadata["calibration"], runner.stream_infos.
    """
    if runner.native_params is None:
        raise NoParamsError(runner.hn.name)
    t0 = time.perf_counter()
    previous_script = runner.model_script
    try:  # the checks before any change: a refused call leaves the runner as it was
        compiled = _script(runner, model_script)
        cal = compiled.calibration if compiled else {}
        batch_size = batch_size or cal.get("batch_size") or DEFAULT_BATCH_SIZE
        if calib_num_batch is None:
            calib_num_batch = -(-cal["calibset_size"] // batch_size) if "calibset_size" in cal \
                else DEFAULT_CALIB_NUM_BATCH
        qft = _flag(finetune, compiled.finetune.get("policy") if compiled and compiled.finetune else None)
        qft_options = {k: v for k, v in ((compiled.finetune or {}) if compiled else {}).items() if k != "policy"}
        qft_options.update(finetune_options or {})
        if qft:
            from .finetune import check_finetune_data, check_trainable

            qft_data = check_finetune_data(np_array, qft_options.get("dataset_size"))
            check_trainable(runner.hn)
        data = check_calibration(runner, np_array, calib_num_batch, batch_size)
        added = _add_normalizations(runner, compiled) if compiled else []
    except BaseException:
        runner.model_script = previous_script
        raise
    steps: list[dict] = [{"step": "normalization", "log": added}] if added else []
    if compiled:
        apply_config(runner.hn, compiled.layers)
        for line in compiled.summary():
            log.info("model script: %s", line)
    apply_config(runner.hn, config)
    n = int(calib_num_batch) * int(batch_size)
    check_batch(runner.hn, int(batch_size), "calibration", keep_all=True)

    if _flag(equalize, compiled.equalization if compiled else None):
        from .dead_channels import clean_dead_channels
        from .equalization import equalize as equalize_params

        t = time.perf_counter()
        params, dead = clean_dead_channels(runner)
        params, eq = equalize_params(runner, params)
        runner.set_fp_optimized_params(params)
        for line in [*dead.lines(), *eq.lines()]:
            log.info("equalization: %s", line)
        steps.append({"step": "equalization", "seconds": round(time.perf_counter() - t, 3),
                      "log": [*dead.lines(), *eq.lines()]})

    configs = {l.name: layer_config(runner.hn, l) for l in runner.hn.topological()}
    samples: dict = dict.fromkeys(percentile_layers(configs))
    log.info("calibration: %d images in %d batches of %d", n, calib_num_batch, batch_size)
    t = time.perf_counter()
    with bar(n, "calibration statistics") as pb:
        stats = collect_statistics(runner, data, int(batch_size), samples=samples, progress=pb.update)
    steps.append({"step": "statistics", "seconds": round(time.perf_counter() - t, 3), "images": n})
    clipped = clip_ranges(runner.hn, stats, configs, samples)
    if clipped:
        steps.append({"step": "clipping", "log": [f"{k}: {v}" for k, v in clipped.items()]})

    qp, summary = derive_quantized_params(runner, stats)
    summary.update({"images": n, "calib_num_batch": int(calib_num_batch), "batch_size": int(batch_size)})
    previous = runner.quantized_params
    runner.quantized_params = qp
    try:
        infos = stream_infos_dicts(runner, get_stream_infos(runner))
    except BaseException:  # a network whose streams cannot be exported stays as it was
        runner.quantized_params = previous
        raise

    if _flag(ibc, compiled.bias_correction if compiled else None):
        from .bias_correction import correct_biases

        check_batch(runner.hn, int(batch_size), "bias correction", bytes_per_element=8, keep_all=True)
        float_params = runner.fp_optimized_params
        t = time.perf_counter()
        with bar(0, "bias correction", unit="layer") as pb:
            report = correct_biases(runner, data, int(batch_size), progress=_follow(pb))
        # the corrected biases live in the quantized params; the float network (SdkFPOptimized)
        # stays what the pre-quantization steps made, so quantizing again starts from it
        runner.fp_optimized_params = float_params
        for line in report.lines():
            log.info("bias correction: %s", line)
        steps.append({"step": "bias_correction", "seconds": round(time.perf_counter() - t, 3),
                      "report": report.to_dict()})

    if qft:
        from .finetune import finetune as run_finetune

        check_batch(runner.hn, int(qft_options.get("batch_size", 32)), "finetune", bytes_per_element=8,
                    keep_all=True)
        t = time.perf_counter()
        with bar(0, "finetune (QFT)", unit="step") as pb:
            report = run_finetune(runner, qft_data, progress=_follow(pb), **qft_options)
        for line in report.lines():
            log.info("finetune: %s", line)
        steps.append({"step": "finetune", "seconds": round(time.perf_counter() - t, 3),
                      "report": report.to_dict()})

    summary["steps"] = steps
    summary["seconds"] = round(time.perf_counter() - t0, 3)
    if compiled:
        summary["model_script"] = compiled.summary()
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
