"""Per-layer noise analysis of a quantized network (docs/analysis.md): which layers cause the
error at the outputs, what kind of error it is, and what to do about it.

For every analysed layer n (on-chip layers that compute something: mixed.analysed_layers):
  (a) alone        only n quantized, the rest float: SNR at each model output
  (b) cumulative   everything quantized (SdkNumeric): SNR at n's own output
  (c) local        n's chip op fed the float inputs: n's own error, nothing before it
each with cosine, mean error (bias), max |error|, rmse and rmse in LSBs of n's output grid.
A quantized layer reads its inputs on their grids, and a tensor's grid belongs to the layer that
writes it: in (a) and (c), n's reference is n in float on the same snapped inputs (mixed.py), so
a too narrow range is blamed on the layer that writes the tensor, not on its readers.
The float reference is the fp-optimized network (the float network the quantized one was derived
from: equalization rescales channels inside it, its outputs are the native ones). Layers whose
worst (a) SNR is under the threshold are flagged, ranked worst first, diagnosed
(analysis.diagnostics) and given advice with model-script lines. The Lerr check reruns with the
flagged layers float and the rest bit-exact: what error remains tests the seed's assumption that
the layers' errors do not interact.

    report = analyze_noise(runner, images, threshold_db=10)
    report.ranked_layers[0].layer, report.to_json(), report.save_html("noise.html")
"""
from __future__ import annotations

import json
import math
import time
import weakref
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np

from ..errors import NotQuantizedError, RunnerUsageError
from . import metrics
from .diagnostics import Diagnostics, Suggestion, diagnose, suggest
from .tensors import TensorDump

DEFAULT_THRESHOLD_DB = 10.0
_MIXED: "weakref.WeakKeyDictionary[Any, tuple]" = weakref.WeakKeyDictionary()


@dataclass
class ErrorStats:
    """One tensor against its float reference (emulator.analysis.metrics)."""
    snr_db: float
    cosine: float
    mean_error: float
    max_abs_error: float
    rmse: float
    rmse_lsb: float | None  # rmse / the tensor's scale; None where there is no grid (host ops)

    @classmethod
    def of(cls, ref: np.ndarray, test: np.ndarray, scale: float | None = None) -> ErrorStats:
        e = metrics.rmse(ref, test)
        return cls(metrics.snr_db(ref, test), metrics.cosine_similarity(ref, test),
                   metrics.mean_error(ref, test), metrics.max_abs_error(ref, test), e,
                   None if scale is None else e / scale)


@dataclass
class LayerNoise:
    layer: str
    type: str
    alone: dict[str, ErrorStats]        # (a) per model output
    cumulative: ErrorStats              # (b)
    local: ErrorStats                   # (c)
    diagnostics: Diagnostics
    flagged: bool = False
    suggestion: Suggestion | None = None

    @property
    def alone_snr_db(self) -> float:
        """The worst output's SNR with only this layer quantized."""
        return min(s.snr_db for s in self.alone.values())


@dataclass
class LerrCheck:
    """The outputs with the flagged layers kept float and every other layer bit-exact."""
    kept_float: list[str]
    all_quantized: dict[str, ErrorStats]    # per output, every layer on the chip
    flagged_float: dict[str, ErrorStats]    # per output, the flagged layers float

    @property
    def remaining_error_pct(self) -> float:
        """The error left, as a share of the signal's amplitude: 100 * 10^(-SNR/20), worst
        output (the seed expects 1-2 % when the flagged layers explain the error)."""
        return max(100.0 * 10.0 ** (-s.snr_db / 20.0) for s in self.flagged_float.values())


@dataclass
class NoiseReport:
    network: str
    images: int
    threshold_db: float
    reference: str
    outputs: dict[str, ErrorStats]      # SdkNumeric against the float reference, per output
    layers: list[LayerNoise]            # topological order
    lerr: LerrCheck | None
    model_script: str                   # the script the network was quantized with
    seconds: dict[str, float] = field(default_factory=dict)
    tensors: TensorDump | None = field(default=None, repr=False, compare=False)
    runner: Any = field(default=None, repr=False, compare=False)

    @property
    def ranked_layers(self) -> list[LayerNoise]:
        """Every analysed layer, worst (a) SNR first."""
        return sorted(self.layers, key=lambda l: (l.alone_snr_db, l.local.snr_db))

    @property
    def flagged(self) -> list[LayerNoise]:
        return [l for l in self.ranked_layers if l.flagged]

    def layer(self, name: str) -> LayerNoise:
        for l in self.layers:
            if l.layer == name:
                return l
        raise KeyError(f"'{name}' is not an analysed layer of '{self.network}'")

    @property
    def suggested_script(self) -> str:
        """Model-script lines for the flagged layers, worst first, ready to append to the
        network's script (later lines win)."""
        out: list[str] = []
        for l in self.flagged:
            out.append(f"# {l.layer}: (a) {l.alone_snr_db:.1f} dB at the outputs, local "
                       f"{l.local.snr_db:.1f} dB")
            for line in l.suggestion.script:
                if line.startswith("#") or line not in out:
                    out.append(line)
        return "\n".join(out) + ("\n" if out else "")

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k not in ("tensors", "runner")}
        d["ranked_layers"] = [l.layer for l in self.ranked_layers]
        d["flagged_layers"] = [l.layer for l in self.flagged]
        d["suggested_script"] = self.suggested_script
        if self.lerr is not None:
            d["lerr"]["remaining_error_pct"] = self.lerr.remaining_error_pct
        for l, ld in zip(self.layers, d["layers"]):
            ld["alone_snr_db"] = l.alone_snr_db
        return _json_safe(d)

    def to_json(self, indent: int | None = 2) -> str:
        """The report for machines. Infinite SNRs (no error at all) are the strings "inf" /
        "-inf" (JSON has no infinity)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def save_json(self, path) -> None:
        from ..files import write_text

        write_text(path, self.to_json())

    def save_html(self, path) -> None:
        """One static HTML file (plots embedded): flagged layers first, the suggested script
        ready to paste (analysis.report_html)."""
        from .report_html import render_html
        from ..files import write_text

        write_text(path, render_html(self))


def _json_safe(v: Any) -> Any:
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if isinstance(v, float) and math.isnan(v):
        return "nan"
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_safe(x) for x in v]
    if isinstance(v, np.generic):
        return _json_safe(v.item())
    return v


def mixed_executor(runner: Any):
    """The runner's MixedExecutor, built once per quantized params."""
    from .mixed import MixedExecutor

    key = (id(runner.quantized_params), id(runner.hn), id(runner.fp_optimized_params))
    cached = _MIXED.get(runner)
    if cached is None or cached[0] != key:
        cached = (key, MixedExecutor(runner))
        _MIXED[runner] = cached
    return cached[1]


def _in_batches(ex, ins: dict[str, np.ndarray], batch_size: int, run: Callable) -> list:
    """run(list of input batches) over the data in batches (padded as quantized_exec does, so
    the XLA-compiled layers see few shapes); returns the per-batch results with the padding
    rows still in, and the (start, stop) of each."""
    from ..quantized_exec import _pad_rows, batches

    n = next(iter(ins.values())).shape[0]
    out = []
    for s, e, size in batches(n, batch_size):
        out.append(((s, e), run([_pad_rows(ins[k][s:e], size) for k in ex.inputs])))
    return out


def _cat(parts: list, name: str) -> np.ndarray:
    return np.concatenate([r[name][:e - s] for (s, e), r in parts])


def analyze_noise(runner: Any, data: Any, batch_size: int = 16,
                  threshold_db: float = DEFAULT_THRESHOLD_DB, lerr: bool = True,
                  dump: Any = None, progress: bool = True) -> NoiseReport:
    """The per-layer noise analysis (module doc) of a quantized runner on `data` (pre-processed
    inputs as runner.infer takes them; a few real images are enough, 16 is plenty).

    threshold_db: layers whose worst (a) SNR is below it are flagged. lerr: run the Lerr check
    when a layer is flagged. dump: a path to save every inter-layer tensor to (.npz,
    analysis.tensors); the tensors are in report.tensors either way. progress: a bar per step on
    a terminal (nothing when stderr is not one)."""
    from ..limits import check_batch
    from ..progress import bar
    from ..quantization.config import layer_config
    from ..stream_export import chip_source
    from ..targets import SdkNumeric
    from ..hn import MAC_TYPES

    if runner.quantized_params is None:
        raise NotQuantizedError(runner.hn.name)
    if not (isinstance(batch_size, int) and batch_size >= 1):
        raise RunnerUsageError(f"analyze_noise: batch_size must be a positive int, got {batch_size!r}")
    try:
        threshold_db = float(threshold_db)
    except (TypeError, ValueError):
        raise RunnerUsageError(f"analyze_noise: threshold_db must be a number of dB, got "
                               f"{threshold_db!r}") from None
    if not math.isfinite(threshold_db):
        raise RunnerUsageError(f"analyze_noise: threshold_db must be finite, got {threshold_db}")
    hn = runner.hn
    ins = runner.prepare_inputs(data)
    n = next(iter(ins.values())).shape[0]
    if n == 0:
        raise RunnerUsageError("analyze_noise: no data to analyse (0 images); give a few real, "
                               "pre-processed images")
    # everything is kept for the whole data: every layer float, quantized, codes and local
    check_batch(hn, n * 4, "noise analysis (every layer's tensors, 4 copies)", keep_all=True)
    clock: dict[str, float] = {}
    t0 = time.perf_counter()
    ex = mixed_executor(runner)
    Q = ex.Q

    # float reference (every layer) and (c) in one pass
    parts = _in_batches(ex, ins, batch_size,
                        lambda b: dict(zip(("all", "local", "ref"), ex.run_local(b))))
    native = {k: np.concatenate([r["all"][k][:e - s] for (s, e), r in parts]) for k in ex.names}
    local, local_ref = ({k: np.concatenate([r[part][k][:e - s] for (s, e), r in parts])
                         for k in ex.layers} for part in ("local", "ref"))
    clock["float and local (c)"] = time.perf_counter() - t0

    # (b): SdkNumeric, every layer
    t = time.perf_counter()
    _, quant = runner.infer(SdkNumeric(), ins, inter_layers=True, batch_size=batch_size)
    clock["quantized (b)"] = time.perf_counter() - t

    # (a): two runs per layer through the same compiled function: the layer on the chip, and
    # the layer in float on the same snapped inputs (its reference)
    t = time.perf_counter()
    alone: dict[str, dict[str, np.ndarray]] = {}
    alone_ref: dict[str, dict[str, np.ndarray]] = {}
    with bar(len(ex.layers), "noise analysis (a)", unit="layer", enabled=progress) as pb:
        for name in ex.layers:
            res = _in_batches(ex, ins, batch_size, lambda b, name=name: ex.run(b, [name]))
            alone[name] = {o: _cat(res, o) for o in ex.outputs}
            res = _in_batches(ex, ins, batch_size, lambda b, name=name: ex.run(b, [], [name]))
            alone_ref[name] = {o: _cat(res, o) for o in ex.outputs}
            pb.update(1)
    clock["one layer quantized (a)"] = time.perf_counter() - t

    feeds_output = {chip_source(runner, l)[0] for l in hn.output_layers}
    outputs_ref = {o: native[o] for o in ex.outputs}
    layers: list[LayerNoise] = []
    for name in ex.layers:
        layer = hn.layers[name]
        tq = Q.tensor(name)
        diag = diagnose(native[name], local[name], tq, layer_config(hn, layer), layer,
                        has_weights=layer.type in MAC_TYPES, error_ref=local_ref[name])
        ln = LayerNoise(
            layer=name, type=layer.type,
            alone={o: ErrorStats.of(alone_ref[name][o], alone[name][o]) for o in ex.outputs},
            cumulative=ErrorStats.of(native[name], quant[name], tq.scale),
            local=ErrorStats.of(local_ref[name], local[name], tq.scale),
            diagnostics=diag)
        ln.flagged = ln.alone_snr_db < threshold_db
        if ln.flagged:
            ln.suggestion = suggest(name, diag, name in feeds_output)
        layers.append(ln)

    outputs = {o: ErrorStats.of(outputs_ref[o], quant[o]) for o in ex.outputs}
    check = None
    arrays: dict[str, np.ndarray] = {}
    flagged = [l.layer for l in layers if l.flagged]
    if lerr and flagged:
        t = time.perf_counter()
        keep = [l for l in ex.layers if l not in flagged]
        res = _in_batches(ex, ins, batch_size, lambda b: ex.run(b, keep))
        lerr_out = {o: _cat(res, o) for o in ex.outputs}
        res = _in_batches(ex, ins, batch_size, lambda b: ex.run(b, ex.layers))
        all_out = {o: _cat(res, o) for o in ex.outputs}
        check = LerrCheck(flagged, {o: ErrorStats.of(outputs_ref[o], all_out[o]) for o in ex.outputs},
                          {o: ErrorStats.of(outputs_ref[o], lerr_out[o]) for o in ex.outputs})
        arrays.update({f"lerr/{o}": v for o, v in lerr_out.items()})
        clock["Lerr check"] = time.perf_counter() - t

    for k, v in ins.items():
        arrays[f"input/{k}"] = v
    for k in ex.names:
        arrays[f"native/{k}"] = native[k]
        arrays[f"quantized/{k}"] = quant[k]
        if f"{k}:codes" in quant:
            arrays[f"codes/{k}"] = quant[f"{k}:codes"]
    for k in ex.layers:
        arrays[f"local/{k}"] = local[k]
        arrays[f"local_ref/{k}"] = local_ref[k]
        for o in ex.outputs:
            arrays[f"alone/{k}/{o}"] = alone[k][o]
            arrays[f"alone_ref/{k}/{o}"] = alone_ref[k][o]
    meta = {"network": hn.name, "reference": "fp_optimized", "outputs": ex.outputs,
            "inputs": ex.inputs,
            "layers": {k: {"type": hn.layers[k].type, "analysed": k in ex.index,
                           "placement": Q.placement(k).name.lower(),
                           **({"scale": Q.tensor(k).scale, "zero_point": Q.tensor(k).zp,
                               "bits": Q.tensor(k).bits} if Q.on_chip(k) else {})}
                       for k in ex.names}}
    tensors = TensorDump(arrays, meta)
    if dump is not None:
        t = time.perf_counter()
        tensors.save(dump)
        clock["tensor dump"] = time.perf_counter() - t
    clock["total"] = time.perf_counter() - t0
    return NoiseReport(network=hn.name, images=int(n), threshold_db=threshold_db,
                       reference="fp_optimized", outputs=outputs, layers=layers, lerr=check,
                       model_script=runner.model_script, seconds=clock, tensors=tensors,
                       runner=runner)

