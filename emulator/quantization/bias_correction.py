"""IBC: iterative bias correction (Finkelstein, Almog and Grobman 2019; docs/bias-correction.md).

Layer by layer in topological order, with every layer before it quantized and already
corrected, the per-channel mean of the layer's quantized pre-activation is compared with the
float one over the calibration images, and the difference is folded into the layer's float
bias; the layer's integer params are then re-derived (`rederive_layer`). The stored bias is
mant * 2^e with one exponent per layer and an int8 (single_scale_decomposition) or int16
(double_scale_initialization) mantissa: that grid bounds what the correction can reach.

What is compared (per output channel o; means over images and positions):

    pre_ref[o]  the reference's pre-activation (MAC + bias, before the activation): the
                runner's fp-optimized float network as it is when IBC starts
    mac_q[o]    the chip's multiply-accumulate without its bias, in real units: the layer's
                float op on the dequantized input codes with the dequantized weights q_w * s_w
    b'[o]       the float bias the chip quantizes (a folded normalization applied)

    wanted b'  = mean(pre_ref) - mean(mac_q)        the new float bias, b_new = b + (wanted - b')

The pre-activation is what the bias shifts, by the same amount at every position, whatever the
activation (ReLU's dead side, PReLU's two slopes, a table) does after it. After the correction the
layer's remaining mean error is the rounding of the wanted bias to the stored grid, computed
exactly before anything is installed; when the exponent would grow (a coarser grid for every
channel) the wanted bias clipped to the current exponent's range is tried as well, and the
original bias is kept when neither is better.

One pass does it all: the reference and the quantized network are walked together, layer by
layer over all images (in batches), keeping only the tensors a later layer still needs. When a
layer is reached everything before it is final, so no layer is run twice; the uncorrected
network is walked alongside (measure_before) for the report's "before" figures.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import time
from typing import Any, Callable, Iterable

import numpy as np

from ..hn import MAC_TYPES, HNGraph, Layer
from ..numerics.params import channel_groups, decompose_bias
from .keys import qkey
from .stored import QParams

log = logging.getLogger(__name__)

LIMITED_FRACTION = 0.1  # limited by the bias precision: more than this part of the error remains


@dataclasses.dataclass
class LayerCorrection:
    """One layer's correction. Errors are mean_o |mean(quantized - reference)[o]| over the
    output channels o (means over images and positions), in real units: of the pre-activation
    (what IBC compares) and of the layer's output (after its activation: what the next layers
    see). `codes(v)` divides by the output scale. "before" is the uncorrected quantized network,
    "seen" what IBC compared (everything before the layer corrected, the layer not yet)."""

    name: str
    type: str
    activation: str
    channels: int
    bias_bits: int                 # 8 or 16: the stored mantissa
    out_scale: float
    error_before: float | None
    error_seen: float
    error_after: float             # = the rounding of the wanted bias to the stored grid
    output_error_before: float | None
    output_error_after: float
    snr_before: float | None       # dB, the layer's output against the reference's
    snr_after: float
    exponent_before: int
    exponent_after: int
    clipped: int                   # channels whose wanted bias did not fit the kept exponent
    step: float                    # mean over channels of the bias step 2^e * s_acc (real units)
    max_correction: float          # max_o |wanted - b'| (real units)
    choice: str                    # "corrected", "clipped" (exponent kept) or "kept" (unchanged)

    @property
    def exponent_grew(self) -> bool:
        return self.exponent_after > self.exponent_before

    @property
    def limited(self) -> bool:
        """The bias precision bounds the result: more than LIMITED_FRACTION of the error IBC
        saw remains (the rounding of the wanted bias), or the exponent grew, or channels were
        clipped to keep it."""
        return (self.error_after > LIMITED_FRACTION * self.error_seen or self.exponent_grew
                or self.clipped > 0)

    def codes(self, value: float | None) -> float | None:
        return None if value is None else value / self.out_scale

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["limited"] = self.limited
        d["exponent_grew"] = self.exponent_grew
        for k in ("error_before", "error_seen", "error_after", "output_error_before",
                  "output_error_after", "step", "max_correction"):
            d[k + "_codes"] = self.codes(d[k])
        return {k: _plain(v) for k, v in d.items()}

    def line(self) -> str:
        def f(v: float | None, w: int = 6, p: int = 3) -> str:
            return "-".rjust(w) if v is None else f"{v:{w}.{p}f}"

        flags = []
        if self.exponent_grew:
            flags.append(f"exponent {self.exponent_before}->{self.exponent_after}")
        if self.clipped:
            flags.append(f"{self.clipped} channels clipped")
        if self.choice == "kept":
            flags.append("bias kept")
        if self.limited:
            flags.append("limited by the bias precision")
        return (f"{self.name:<16} {self.type:<5} int{self.bias_bits:<2}  pre-act "
                f"{f(self.codes(self.error_before))} {f(self.codes(self.error_seen))} -> "
                f"{f(self.codes(self.error_after))}  output {f(self.codes(self.output_error_before))} -> "
                f"{f(self.codes(self.output_error_after))}  step {f(self.codes(self.step))}  SNR "
                f"{f(self.snr_before, 5, 1)} -> {f(self.snr_after, 5, 1)} dB"
                + (f"  [{', '.join(flags)}]" if flags else ""))


@dataclasses.dataclass
class BiasCorrectionReport:
    """What correct_biases did, per corrected layer in topological order."""

    layers: list[LayerCorrection]
    images: int
    seconds: float

    def __getitem__(self, name: str) -> LayerCorrection:
        for l in self.layers:
            if l.name == name:
                return l
        raise KeyError(name)

    @property
    def limited(self) -> list[str]:
        """The layers whose correction the bias precision bounded."""
        return [l.name for l in self.layers if l.limited]

    def mean(self, field: str, codes: bool = True) -> float | None:
        """Mean over the layers of one error field, in output codes (codes=False: real units);
        None when a layer lacks it (no "before" measured) or there are no layers."""
        vals = [getattr(l, field) for l in self.layers]
        if not vals or any(v is None for v in vals):
            return None
        if codes:
            vals = [v / l.out_scale for v, l in zip(vals, self.layers)]
        return float(np.mean(vals))

    def lines(self) -> list[str]:
        """The report for a log: a header, one line per layer (mean per-channel errors in output
        codes: pre-activation before, seen -> after; the output's before -> after; the bias
        step; the layer output's SNR before -> after), a summary."""
        out = [f"IBC: {len(self.layers)} layers, {self.images} images, {self.seconds:.1f} s. Mean "
               f"|per-channel mean error| in output codes, pre-activation: before (uncorrected), "
               f"seen -> after; output: before -> after; bias step; output SNR vs float"]
        out += [l.line() for l in self.layers]

        def f(v: float | None) -> str:
            return "-" if v is None else f"{v:.3f}"

        out.append(f"mean over layers: pre-activation {f(self.mean('error_before'))} -> "
                   f"{f(self.mean('error_after'))} codes, output {f(self.mean('output_error_before'))} "
                   f"-> {f(self.mean('output_error_after'))} codes; limited by the bias precision: "
                   f"{len(self.limited)} of {len(self.layers)}")
        return out

    def to_dict(self) -> dict:
        """A JSON-able summary (for runner.metadata and the HAR)."""
        return {"algorithm": "ibc", "compared": "pre-activation", "images": int(self.images),
                "seconds": round(float(self.seconds), 3), "limited": self.limited,
                "mean_error_before_codes": self.mean("error_before"),
                "mean_error_after_codes": self.mean("error_after"),
                "mean_output_error_before_codes": self.mean("output_error_before"),
                "mean_output_error_after_codes": self.mean("output_error_after"),
                "layers": {l.name: l.to_dict() for l in self.layers}}


def _plain(v: Any) -> Any:
    if isinstance(v, (np.floating, float)):
        v = float(v)
        return v if math.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


# ==== helpers =====================================================================================

def _channel_mean(x: np.ndarray) -> np.ndarray:
    """Mean over every axis but the last (channels), accumulated in float64."""
    x = np.asarray(x)
    return x.reshape(-1, x.shape[-1]).mean(axis=0, dtype=np.float64)


def _mean_error(a: np.ndarray, b: np.ndarray) -> float:
    """mean_o |a[o] - b[o]| of two per-channel means."""
    return float(np.mean(np.abs(a - b))) if a.size else 0.0


def snr_db(ref: np.ndarray, x: np.ndarray) -> float:
    """10 log10(sum ref^2 / sum (ref - x)^2), float64; inf when they are equal."""
    ref = np.asarray(ref, np.float64)
    noise = float(np.square(ref - np.asarray(x, np.float64)).sum())
    if noise == 0.0:
        return math.inf
    return 10.0 * math.log10(max(float(np.square(ref).sum()), 1e-300) / noise)


def _batched(fn: Callable[..., Any], arrays: list[np.ndarray], batch_size: int) -> np.ndarray:
    n = arrays[0].shape[0]
    return np.concatenate([np.asarray(fn(*[a[s:s + batch_size] for a in arrays]))
                           for s in range(0, n, batch_size)])


def _ancestors(hn: HNGraph, names: Iterable[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(names)
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo.extend(hn.layers[n].input)
    return seen


def _walk_bytes(walk: list[Layer], pending: dict[str, int], code_bytes: int, n: int) -> tuple[int, str]:
    """Peak memory of the walk over n images: the live tensors of the reference (float32) and of
    the quantized networks (codes), plus the working set of the layer being processed (its
    reference pre-activation and output, dequantized input and output, float32)."""
    def size(shape) -> int:
        return math.prod(max(int(d), 1) for d in list(shape)[1:])

    shapes = {l.name: l.output_shape for l in walk}
    left, live, peak, where = dict(pending), 0, 0, ""
    per = 4 + code_bytes
    for layer in walk:
        out = size(layer.output_shape)
        live += out * per
        work = (3 * out + sum(size(s) for s in layer.input_shapes)) * 4
        if live + work > peak:
            peak, where = live + work, layer.name
        for i in dict.fromkeys(layer.input):
            left[i] -= layer.input.count(i)
            if left[i] <= 0:
                live -= size(shapes[i]) * per
    return peak * n, where


# ==== IBC =========================================================================================

def correct_biases(runner: Any, data: Any, batch_size: int = 32, *, layers: Iterable[str] | None = None,
                   progress: Callable[[int, int, str], None] | None = None,
                   measure_before: bool = True) -> BiasCorrectionReport:
    """Iterative bias correction of a quantized runner (module doc; docs/bias-correction.md).

    data: the calibration images, {input layer: float32 (N, ...)} or one array for a
    single-input network (runner.prepare_inputs). batch_size: images per TensorFlow call (all N
    images are kept per tensor between layers). layers: the MAC layers to correct, bare or
    scoped names (default: every on-chip conv / dw / deconv / dense). progress(done, total,
    layer) is called after each corrected layer. measure_before=False skips the walk of the
    uncorrected network (the report's "before" figures are then None).

    Installs new fp-optimized params (the corrected float biases; a new, validated dict) and
    re-derives the corrected layers (runner.quantized_params becomes a new dict). The reference
    is the fp-optimized float network as it is when called: correct once per quantization (a
    second call would compare against the already corrected float biases). On an error the
    runner is left as it was."""
    from .._lazy import tf
    from ..errors import InferenceInputError, NotQuantizedError
    from ..float_ops import apply_activation, pre_activation
    from ..limits import LIMITS, LimitError
    from ..quant_errors import QuantizationConfigError, QuantizationError
    from ..quantized_exec import numeric_layer_fn
    from .derivation import rederive_layer
    from .folding import fold_normalization

    import hailort_py as hrt

    t0 = time.perf_counter()
    if runner.quantized_params is None:
        raise NotQuantizedError("bias correction (quantize the network first)")
    if int(batch_size) < 1:
        raise InferenceInputError(f"bias correction: batch_size must be >= 1, got {batch_size}")
    batch_size = int(batch_size)
    hn = runner.hn
    ins = runner.prepare_inputs(data)
    n = next(iter(ins.values())).shape[0]
    if n == 0:
        raise InferenceInputError("bias correction needs at least one calibration image (got 0)")
    qp0, fp0 = runner.quantized_params, runner.fp_optimized_params
    Q0 = QParams(hn, qp0)
    order = hn.topological()
    macs = [l.name for l in order if l.type in MAC_TYPES and Q0.on_chip(l.name)]
    if layers is None:
        targets = macs
    else:
        want = {hn.layer(x).name for x in ([layers] if isinstance(layers, str) else layers)}
        bad = sorted(want - set(macs))
        if bad:
            raise QuantizationConfigError(f"bias correction: {bad} are not on-chip MAC layers (conv / dw / "
                                          f"deconv / dense); the candidates are {macs}")
        targets = [x for x in macs if x in want]
    target_set = set(targets)
    needed = _ancestors(hn, targets)
    walk = [l for l in order if l.name in needed]
    pending = {l.name: sum(1 for c in l.output if c in needed) for l in walk}
    code_bytes = max(Q0.tensor(l.name).bits // 8 for l in walk if Q0.on_chip(l.name)) \
        * (2 if measure_before else 1)
    need, where = _walk_bytes(walk, pending, code_bytes, n)
    if need > LIMITS.memory_budget_bytes:
        raise LimitError(f"bias correction: network '{hn.name}' would need about {need / 2**30:.1f} GiB "
                         f"for {n} images (largest at layer '{where}'), over the memory budget of "
                         f"{LIMITS.memory_budget_bytes / 2**30:.1f} GiB; use fewer calibration images, "
                         f"measure_before=False, or raise {LIMITS.describe('memory_budget_bytes')}")

    ref_params = {l.name: runner.layer_params(l.name, "fp_optimized") for l in walk}
    base = fp0 if fp0 is not None else runner.native_params

    def chip_bias(layer: Layer, Q: QParams, bias: np.ndarray) -> np.ndarray:
        """The float64 bias the derivation quantizes for this float32 bias (a folded
        normalization applied, as derivation.kernel_bias does)."""
        b = np.asarray(bias, np.float32).astype(np.float64)
        if Q.source(layer) != layer.input[0]:
            norm = ref_params[layer.input[0]]
            _, b = fold_normalization(ref_params[layer.name]["kernel"], b, norm["mean"], norm["std"],
                                      layer.type)
        return b

    def deq(Q: QParams, name: str, codes: np.ndarray) -> np.ndarray:
        """(q - z) * s in float32, the dequantizer's formula."""
        t = Q.tensor(name)
        return (codes.astype(np.float32) - np.float32(t.zp)) * np.float32(t.scale)

    def mac_mean(Q: QParams, layer: Layer, x_codes: np.ndarray) -> np.ndarray:
        """Per-channel mean of the chip's MAC without bias, in real units (float op on the
        dequantized source codes with the dequantized weights)."""
        name = layer.name
        x = deq(Q, Q.source(layer), x_codes)
        qw = Q.get(name, "q_w").astype(np.float64)
        C = int(layer.output_shape[-1])
        s_w = np.asarray(Q.get(name, "s_w"), np.float64)[channel_groups(C, int(Q.get(name, "groups")))]
        if layer.type == "dw":
            w = (qw.reshape(-1, C) * s_w).reshape(qw.shape)
        else:
            w = qw * s_w  # the last axis is the output channel (conv HWIO, dense, deconv)
        prm = {"kernel": tf.constant(w.astype(np.float32)), "bias": tf.zeros([C], tf.float32)}
        total = np.zeros(C, np.float64)
        for s in range(0, n, batch_size):
            y = pre_activation(layer, [tf.constant(x[s:s + batch_size])], prm).numpy()
            total += y.reshape(-1, C).sum(axis=0, dtype=np.float64)
        return total / (n * (math.prod(int(d) for d in layer.output_shape[1:]) // C))

    def codes_fn(qp: dict) -> Callable:
        fn = numeric_layer_fn(hn, qp, xla=False)
        return lambda layer, *xs: fn(layer, list(xs))

    ref: dict[str, np.ndarray] = {}       # reference float outputs
    cor: dict[str, np.ndarray] = {}       # codes of the network being corrected
    org: dict[str, np.ndarray] | None = {} if measure_before else None   # uncorrected network
    f_org = f_cur = codes_fn(qp0)
    fp, changed = dict(base), False
    results: list[LayerCorrection] = []

    def release(layer: Layer) -> None:
        for i in dict.fromkeys(layer.input):
            pending[i] -= layer.input.count(i)
            if pending[i] <= 0:
                for st in (ref, cor, org):
                    if st is not None:
                        st.pop(i, None)

    def same_inputs(layer: Layer) -> bool:
        return org is not None and all(org[i] is cor[i] for i in layer.input)

    try:
        for layer in walk:
            name = layer.name
            if layer.type == "input_layer":
                Q = QParams(hn, runner.quantized_params)
                ref[name] = ins[name]
                cor[name] = hrt.quantize(ins[name], Q.quant_info(name), Q.tensor(name).dtype)
                if org is not None:
                    org[name] = cor[name]
                continue
            prm = ref_params[name]
            if name not in target_set:
                ref[name] = _batched(lambda *xs: apply_activation(pre_activation(layer, list(xs), prm),
                                                                  layer, prm),
                                     [ref[i] for i in layer.input], batch_size)
                cor[name] = _batched(lambda *xs: f_cur(layer, *xs), [cor[i] for i in layer.input], batch_size)
                if org is not None:
                    org[name] = cor[name] if same_inputs(layer) else \
                        _batched(lambda *xs: f_org(layer, *xs), [org[i] for i in layer.input], batch_size)
                release(layer)
                continue

            # the reference: pre-activation (its per-channel mean) and output
            pre = _batched(lambda *xs: pre_activation(layer, list(xs), prm), [ref[i] for i in layer.input],
                           batch_size)
            pre_ref = _channel_mean(pre)
            out_ref = _batched(lambda v: apply_activation(tf.constant(v), layer, prm), [pre], batch_size)
            del pre
            ref[name] = out_ref
            out_ref_mean = _channel_mean(out_ref)

            Q = QParams(hn, runner.quantized_params)
            s_acc = np.asarray(Q.get(name, "s_acc"), np.float64)
            kbits = Q.bias_mantissa_bits(name)
            mmax = (1 << (kbits - 1)) - 1
            e0 = int(Q.get(name, "bias_exponent"))
            mq = mac_mean(Q, layer, cor[layer.input[0]])
            err_seen = _mean_error(mq + Q.bias(name) * s_acc, pre_ref)

            # the uncorrected network at this layer
            err_before = out_before = snr_before = None
            if org is not None:
                if same_inputs(layer):
                    err_before = err_seen
                    oc = _batched(lambda *xs: f_org(layer, *xs), [cor[i] for i in layer.input], batch_size)
                else:
                    Qo = QParams(hn, qp0)
                    mo = mac_mean(Qo, layer, org[layer.input[0]])
                    err_before = _mean_error(mo + Qo.bias(name) * s_acc, pre_ref)
                    oc = _batched(lambda *xs: f_org(layer, *xs), [org[i] for i in layer.input], batch_size)
                od = deq(Q, name, oc)
                out_before = _mean_error(_channel_mean(od), out_ref_mean)
                snr_before = snr_db(out_ref, od)
                org[name] = oc
                del od

            # the correction: the wanted float bias, and what the stored grid makes of it
            b_cur = np.asarray(runner.layer_params(name, "fp_optimized")["bias"])
            b_chip = chip_bias(layer, Q, b_cur)
            wanted = pre_ref - mq

            def candidate(bprime: np.ndarray) -> tuple[np.ndarray, float, int]:
                """(float32 bias, the error it leaves, its exponent) for a wanted chip bias."""
                b_new = (b_cur.astype(np.float64) + (bprime - b_chip)).astype(b_cur.dtype)
                m, e = decompose_bias(chip_bias(layer, Q, b_new) / s_acc, kbits)
                return b_new, _mean_error(mq + m * 2.0 ** e * s_acc, pre_ref), e

            cands = {"corrected": candidate(wanted)}
            clipped = 0
            if cands["corrected"][2] > e0:  # a coarser grid for every channel: also try keeping e
                lim = mmax * 2.0 ** e0 * s_acc
                clipped = int(np.sum(np.abs(wanted) > lim))
                cands["clipped"] = candidate(np.clip(wanted, -lim, lim))
            choice = min(cands, key=lambda k: cands[k][1])
            if cands[choice][1] >= err_seen:
                choice = "kept"
            if choice != "clipped":
                clipped = 0
            if choice != "kept":
                fp_new = dict(fp)
                fp_new[qkey(hn.name, name, "bias")] = cands[choice][0]
                qp_prev, fp_prev = runner.quantized_params, runner.fp_optimized_params
                runner.fp_optimized_params = fp_new
                try:
                    rederive_layer(runner, name)
                except QuantizationError as e:  # e.g. the accumulator bound: keep this layer as it was
                    log.warning("IBC: %s keeps its bias (%s)", name, e)
                    runner.fp_optimized_params, runner.quantized_params = fp_prev, qp_prev
                    choice, clipped = "kept", 0
                else:
                    fp, changed = fp_new, True
                    f_cur = codes_fn(runner.quantized_params)
                Q = QParams(hn, runner.quantized_params)
            err_after = _mean_error(mq + Q.bias(name) * s_acc, pre_ref)
            e1 = int(Q.get(name, "bias_exponent"))

            codes = _batched(lambda *xs: f_cur(layer, *xs), [cor[i] for i in layer.input], batch_size)
            od = deq(Q, name, codes)
            out_after = _mean_error(_channel_mean(od), out_ref_mean)
            snr_after = snr_db(out_ref, od)
            cor[name] = codes
            del od
            results.append(LayerCorrection(
                name=name, type=layer.type, activation=layer.activation,
                channels=int(layer.output_shape[-1]), bias_bits=kbits,
                out_scale=float(Q.tensor(name).scale), error_before=err_before, error_seen=err_seen,
                error_after=err_after, output_error_before=out_before, output_error_after=out_after,
                snr_before=snr_before, snr_after=snr_after, exponent_before=e0, exponent_after=e1,
                clipped=clipped, step=float(np.mean(2.0 ** e1 * s_acc)),
                max_correction=float(np.max(np.abs(wanted - b_chip))), choice=choice))
            log.info("IBC %s", results[-1].line())
            release(layer)
            if progress is not None:
                progress(len(results), len(targets), name)
        if changed:
            runner.set_fp_optimized_params(fp)  # validated; a new dict
    except BaseException:
        runner.fp_optimized_params, runner.quantized_params = fp0, qp0
        raise
    return BiasCorrectionReport(layers=results, images=int(n), seconds=time.perf_counter() - t0)
