"""QFT: quantization-aware finetuning by distillation (Finkelstein et al. 2022; docs/finetune.md).

After derivation, the fake-quant graph of the quantized network (SdkQuantized: float math on the
integer grids, straight-through rounding) is the student; the float network (SdkFPOptimized, the
runner's fp-optimized params as they are when QFT starts) is the teacher. The student's float
kernels, one tf.Variable per on-chip MAC layer (conv / dw / deconv / dense), start at the stored
dequantized weights q_w * s_w and are trained with Adam to minimise

    loss = sum over outputs o of  mean((student_o - teacher_o)^2) / var(teacher_o)

(var over every image and element of the dataset: each output counts alike, whatever its scale).
The variables hold the kernels in units of their layer's weight range (max|q_w * s_w|), so that
one learning rate suits every layer. When the loss over the dataset has not improved after the
last epoch, nothing is written back (FinetuneReport.reverted).
The weight scales s_w, the biases (the stored B = mantissa * 2^e, a constant of the MAC kinds'
fake-quant), the activation grids and the rescales stay as derived: only the integer weights
q_w = clamp(round(W / s_w)) move.

After training, each layer's trained integer weights, dequantized (q_w * s_w, what the student
computed with), are written into a copy of the fp-optimized params (undoing a folded
normalization) and the layer is re-derived with `rederive_layer`, with its weights_clipping
turned off for that call so that s_w = max|W| / lim comes out as before (the trained weights are
clamped to the grid's range, and a layer keeps its scale as long as one weight of each group
sits at +-lim: see docs/finetune.md). runner.fp_optimized_params is then restored: the float
network stays the pre-quantization one, the integer params carry the result.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import time
from typing import Any, Callable

import numpy as np

from ..quant_errors import QuantizationError

log = logging.getLogger(__name__)

DEFAULT_DATASET_SIZE = 2048
DEFAULT_EPOCHS = 4
DEFAULT_BATCH_SIZE = 32
DEFAULT_LEARNING_RATE = 1e-4
_ABSENT = object()


class FinetuneOutOfDataError(QuantizationError, ValueError):
    """The seed's FAQ "FT out of data": finetuning asks for more images than given."""

    def __init__(self, given: int, needed: int):
        self.given, self.needed = int(given), int(needed)
        super().__init__(
            f"FT out of data: finetune (QFT) needs dataset_size = {needed} images, but only {given} "
            f"were given. Give at least {needed} images, or lower the finetune dataset size to at "
            f"most {given}: in the model script, 'post_quantization_optimization(finetune, "
            f"policy=enabled, dataset_size={given})'; in Python, finetune(..., dataset_size={given}).")


@dataclasses.dataclass
class FinetuneReport:
    """What finetune did."""

    layers: list[str]               # the trained MAC layers
    images: int
    epochs: int
    batch_size: int
    learning_rate: float
    loss: list[float]               # mean training loss per epoch
    initial_loss: float             # the loss of the untrained student over the dataset
    final_loss: float               # the trained student's, over the dataset
    reverted: bool                  # the loss did not improve: the quantized params were kept
    snr_before: dict[str, float]    # dB per output, SdkQuantized vs float, on the training images
    snr_after: dict[str, float]
    scale_changed: list[str]        # layers whose re-derivation would have changed s_w (the
                                    # trained integer weights were installed on the old scale)
    weights_changed: dict[str, int]  # per layer: how many integer weights moved
    kept: list[str]                 # layers whose re-derivation failed: their weights untrained
    step_images_per_second: float   # training throughput (after the first, compiling, step)
    seconds: float

    def lines(self) -> list[str]:
        def db(d: dict) -> str:
            return ", ".join(f"{k} {v:.2f} dB" for k, v in d.items())

        out = [f"QFT: {len(self.layers)} MAC layers, {self.images} images, {self.epochs} epochs of "
               f"batch {self.batch_size}, Adam lr {self.learning_rate:g}, {self.seconds:.1f} s "
               f"({self.step_images_per_second:.0f} images/s in a training step)",
               "loss (MSE / teacher variance): " + " -> ".join(
                   f"{v:.5f}" for v in [self.initial_loss, *self.loss])
               + f" (epoch means); over the dataset {self.initial_loss:.5f} -> {self.final_loss:.5f}"
               + (" [not improved: params kept]" if self.reverted else ""),
               f"output SNR vs float, before: {db(self.snr_before)}; after: {db(self.snr_after)}"]
        out += [f"  {name}: {self.weights_changed.get(name, 0)} integer weights changed"
                for name in self.layers]
        if self.kept:
            out.append(f"kept untrained (re-derivation failed): {', '.join(self.kept)}")
        if self.scale_changed:
            out.append(f"weight scale kept (re-derivation would have shrunk it): "
                       f"{', '.join(self.scale_changed)}")
        return out

    def to_dict(self) -> dict:
        """A JSON-able summary (for runner.metadata and the HAR)."""
        def fin(v: float) -> float | None:
            v = float(v)
            return v if math.isfinite(v) else None

        return {"algorithm": "qft", "layers": list(self.layers), "images": int(self.images),
                "epochs": int(self.epochs), "batch_size": int(self.batch_size),
                "learning_rate": float(self.learning_rate),
                "loss": [fin(v) for v in self.loss], "initial_loss": fin(self.initial_loss),
                "final_loss": fin(self.final_loss), "reverted": bool(self.reverted),
                "snr_before_db": {k: fin(v) for k, v in self.snr_before.items()},
                "snr_after_db": {k: fin(v) for k, v in self.snr_after.items()},
                "scale_changed": list(self.scale_changed),
                "weights_changed": {k: int(v) for k, v in self.weights_changed.items()},
                "kept": list(self.kept),
                "step_images_per_second": fin(self.step_images_per_second),
                "seconds": round(float(self.seconds), 3)}


def _snr(ref: np.ndarray, x: np.ndarray) -> float:
    ref, x = np.asarray(ref, np.float64), np.asarray(x, np.float64)
    noise = float(np.sum((ref - x) ** 2))
    sig = float(np.sum(ref ** 2))
    if noise == 0.0:
        return math.inf
    return 10.0 * math.log10(sig / noise) if sig > 0 else -math.inf


def _count(data: Any) -> int:
    if isinstance(data, dict):
        return min(int(np.shape(v)[0]) for v in data.values()) if data else 0
    if isinstance(data, (list, tuple)):
        return min(int(np.shape(v)[0]) for v in data) if data else 0
    return int(np.shape(data)[0])


def check_trainable(hn: Any) -> None:
    """QFT back-propagates through every layer; TensorFlow's CPU kernels have no input gradient
    of a dilated convolution, so a network with one is refused up front, with the way out."""
    from ..quant_errors import UnsupportedLayerError

    for layer in hn.topological():
        d = layer.params.get("dilations", [1, 1, 1, 1]) if layer.type in ("conv", "dw") else [1, 1, 1, 1]
        if any(int(v) != 1 for v in d):
            raise UnsupportedLayerError(
                f"finetune (QFT) cannot train through layer '{layer.name}' ({layer.type} with dilations "
                f"{d}): TensorFlow's CPU kernels have no gradient of a dilated convolution. Quantize "
                f"without finetune (use bias correction, ibc=True, and 16-bit layers where needed)")


def check_finetune_data(data: Any, dataset_size: int | None = None) -> Any:
    """The FAQ's "FT out of data", checked before any step runs: `data` must hold at least
    dataset_size (default DEFAULT_DATASET_SIZE) images. Returns data."""
    needed = int(dataset_size or DEFAULT_DATASET_SIZE)
    given = _count(data)
    if given < needed:
        raise FinetuneOutOfDataError(given, needed)
    return data


def finetune(runner: Any, data: Any, *, dataset_size: int = DEFAULT_DATASET_SIZE,
             epochs: int = DEFAULT_EPOCHS, batch_size: int = DEFAULT_BATCH_SIZE,
             learning_rate: float = DEFAULT_LEARNING_RATE,
             progress: Callable[[int, int, str], None] | None = None,
             seed: int = 0) -> FinetuneReport:
    """QFT of a quantized runner (module doc; docs/finetune.md).

    data: {input layer: float32 (N, ...)} or one array (single-input nets); the first
    dataset_size images are used, fewer is FinetuneOutOfDataError (checked before any work).
    progress(done_steps, total_steps, "epoch e/E") after each training step.
    Replaces runner.quantized_params (a new dict); runner.fp_optimized_params is unchanged.
    """
    from ..errors import InferenceInputError, NotQuantizedError

    dataset_size, epochs, batch_size = int(dataset_size), int(epochs), int(batch_size)
    if dataset_size < 1:
        raise InferenceInputError(f"finetune: dataset_size must be >= 1, got {dataset_size}")
    given = _count(data)
    if given < dataset_size:
        raise FinetuneOutOfDataError(given, dataset_size)
    if epochs < 1 or batch_size < 1 or not learning_rate > 0:
        raise InferenceInputError(f"finetune: epochs ({epochs}) and batch_size ({batch_size}) must be "
                                  f">= 1 and learning_rate ({learning_rate}) > 0")
    if runner.quantized_params is None:
        raise NotQuantizedError("finetune (quantize the network first)")
    check_trainable(runner.hn)

    import tensorflow as tf

    from ..graph_exec import execute
    from ..hn import MAC_TYPES
    from ..layers.mac import weights_2d
    from ..limits import check_batch
    from ..numerics.params import channel_groups
    from ..qparams_check import validate_quantized_params
    from ..quantized_exec import fake_quant_layer_fn
    from ..targets import SdkFPOptimized, SdkQuantized
    from .config import layer_config
    from .derivation import rederive_layer
    from .folding import fold_normalization
    from .keys import qkey
    from .stored import QParams

    t0 = time.perf_counter()
    hn = runner.hn
    check_batch(hn, batch_size, "finetune", keep_all=True)
    ins = runner.prepare_inputs(data)
    ins = {k: np.ascontiguousarray(v[:dataset_size], np.float32) for k, v in ins.items()}
    in_names = [l.name for l in hn.input_layers]
    out_names = [l.name for l in hn.output_layers]
    qp0, fp0 = runner.quantized_params, runner.fp_optimized_params
    Q0 = QParams(hn, qp0)
    macs = [l for l in hn.topological() if l.type in MAC_TYPES and Q0.on_chip(l.name)]

    # --- teacher and the untrained student --------------------------------------------------
    teacher = runner.infer(SdkFPOptimized(), ins, batch_size=batch_size)
    before = runner.infer(SdkQuantized(), ins, batch_size=batch_size)
    snr_before = {o: _snr(teacher[o], before[o]) for o in out_names}
    inv_var = {o: np.float32(1.0 / max(float(np.var(np.asarray(teacher[o], np.float64))), 1e-12))
               for o in out_names}

    # --- the student's variables: the stored dequantized weights -----------------------------
    lims, s_ws, variables, unit = {}, {}, {}, {}
    for layer in macs:
        name = layer.name
        qw = Q0.get(name, "q_w").astype(np.float64)
        q2d = weights_2d(qw, layer.type)
        C = q2d.shape[1]
        s_w = Q0.get(name, "s_w")[channel_groups(C, int(Q0.get(name, "groups")))]
        s_ws[name] = s_w
        lims[name] = (1 << (int(Q0.get(name, "w_bits")) - 1)) - 1
        w0 = q2d * s_w[None, :]
        # trained in units of the layer's weight range, so that one learning rate means the same
        # for every layer (a folded normalization can make a layer's weights 100x smaller)
        unit[name] = np.float32(max(float(np.max(np.abs(w0))), float(np.max(s_w)), 1e-30))
        variables[name] = tf.Variable((w0 / unit[name]).reshape(qw.shape).astype(np.float32),
                                      name=f"qft_{name.replace('/', '_')}")
    var_list = [variables[l.name] for l in macs]

    def layer_fn():
        # built while tracing: the student's kernels are the variables times their units
        return fake_quant_layer_fn(hn, qp0, weights={n: v * unit[n] for n, v in variables.items()})

    def kernel(name: str) -> np.ndarray:
        return variables[name].numpy().astype(np.float64) * np.float64(unit[name])

    opt = tf.keras.optimizers.Adam(learning_rate=float(learning_rate))
    sig = [tf.TensorSpec([None, *l.output_shape[1:]], tf.float32) for l in hn.input_layers]
    sig += [tf.TensorSpec([None, *l.output_shape[1:]], tf.float32) for l in hn.output_layers]
    k = len(in_names)

    def loss_of(xs, ts):
        outs, _ = execute(hn, dict(zip(in_names, xs)), layer_fn())
        total = tf.constant(0.0, tf.float32)
        for o, t in zip(out_names, ts):
            total += tf.reduce_mean(tf.square(tf.cast(outs[o], tf.float32) - t)) * inv_var[o]
        return total

    @tf.function(input_signature=sig, reduce_retracing=True, autograph=False)
    def train_step(*args):
        with tf.GradientTape() as tape:
            loss = loss_of(args[:k], args[k:])
        grads = tape.gradient(loss, var_list)
        opt.apply_gradients([(g, v) for g, v in zip(grads, var_list) if g is not None])
        return loss

    @tf.function(input_signature=sig, reduce_retracing=True, autograph=False)
    def eval_step(*args):
        return loss_of(args[:k], args[k:])

    xs_all = [ins[n] for n in in_names]
    ts_all = [np.asarray(teacher[o], np.float32) for o in out_names]

    def batches(order):
        for i in range(0, dataset_size, batch_size):
            idx = order[i:i + batch_size]
            yield [a[idx] for a in xs_all] + [a[idx] for a in ts_all], len(idx)

    ident = np.arange(dataset_size)
    initial = sum(float(eval_step(*b)) * m for b, m in batches(ident)) / dataset_size

    rng = np.random.default_rng(seed)
    steps_per_epoch = -(-dataset_size // batch_size)
    total_steps, done = steps_per_epoch * epochs, 0
    losses: list[float] = []
    step_time, step_images = 0.0, 0
    for e in range(epochs):
        acc = 0.0
        for b, m in batches(rng.permutation(dataset_size)):
            ts = time.perf_counter()
            loss = float(train_step(*b))
            if done > 0:  # the first step traces and compiles
                step_time += time.perf_counter() - ts
                step_images += m
            acc += loss * m
            done += 1
            if progress is not None:
                progress(done, total_steps, f"epoch {e + 1}/{epochs}")
        losses.append(acc / dataset_size)
        log.info("QFT epoch %d/%d: loss %.6f", e + 1, epochs, losses[-1])

    final = sum(float(eval_step(*b)) * m for b, m in batches(ident)) / dataset_size
    improved = final < initial
    if not improved:  # e.g. a learning rate too high: the stored params stay as derived
        log.warning("QFT: the loss did not improve (%.6g -> %.6g); the quantized params are kept "
                    "(try a lower learning_rate)", initial, final)
    write = macs if improved else []

    # --- write back and re-derive ---------------------------------------------------------------
    base = fp0 if fp0 is not None else runner.native_params
    fp_new = dict(base)
    changed: dict[str, int] = {}
    scale_changed: list[str] = []
    trained_q: dict[str, np.ndarray] = {}
    kept: list[str] = []
    saved_clip: dict[str, Any] = {}
    try:
        for layer in write:
            name = layer.name
            w = kernel(name)
            w2 = weights_2d(w, layer.type)
            s_w, lim = s_ws[name], lims[name]
            q = np.clip(np.round(w2 / s_w[None, :]), -lim, lim)
            q_old = weights_2d(Q0.get(name, "q_w").astype(np.int64), layer.type)
            changed[name] = int(np.sum(q.astype(np.int64) != q_old))
            trained_q[name] = q.astype(np.int64).reshape(w.shape)
            w_eff = (q * s_w[None, :]).reshape(w.shape)  # what the student computed with
            prm = runner.layer_params(name, "fp_optimized")
            kernel_new, bias_new = w_eff, np.asarray(prm["bias"], np.float64)
            src = Q0.source(layer)
            if src != layer.input[0]:  # a folded normalization: W' = W / std, b' = b - W mean / std
                norm = runner.layer_params(layer.input[0], "fp_optimized")
                std = np.asarray(norm["std"], np.float64)
                if layer.type == "dense":
                    std_k = std[np.arange(w_eff.shape[0]) % std.shape[0]][:, None]
                else:
                    std_k = std[None, None, :, None]
                kernel_new = w_eff * std_k
                _, b_old = fold_normalization(prm["kernel"], prm["bias"], norm["mean"], norm["std"],
                                              layer.type)
                _, b_mid = fold_normalization(kernel_new, prm["bias"], norm["mean"], norm["std"],
                                              layer.type)
                bias_new = bias_new + (b_old - b_mid)  # the chip's folded bias stays as derived
            fp_new[qkey(hn.name, name, "kernel")] = kernel_new.astype(np.float32)
            fp_new[qkey(hn.name, name, "bias")] = bias_new.astype(np.float32)
        runner.fp_optimized_params = fp_new
        for layer in write:
            name = layer.name
            qpar = hn.layers[name].quantization_params
            if layer_config(hn, hn.layers[name]).weights_clipping is not None:
                # the trained weights are already within the grid's range: clipping them again
                # would change the scale they were trained on
                saved_clip[name] = qpar.get("weights_clipping", _ABSENT)
                qpar["weights_clipping"] = None
            qp_prev = runner.quantized_params
            try:
                rederive_layer(runner, name)
            except QuantizationError as e:  # e.g. the accumulator bound: keep the layer untrained
                log.warning("QFT: %s keeps its weights (%s)", name, e)
                runner.quantized_params = qp_prev
                kept.append(name)
                continue
            s_new = QParams(hn, runner.quantized_params).get(name, "s_w")
            if not np.allclose(s_new, Q0.get(name, "s_w"), rtol=1e-6, atol=0):
                # every weight of a group moved inside +-lim: max|W| / lim shrank. Keep the scale
                # the student was trained on: the layer's params as derived before, with the
                # trained integer weights (bias and rescales depend on s_w only, which is kept)
                scale_changed.append(name)
                log.info("QFT: %s: re-derivation would change the weight scale; kept the trained "
                         "one (the trained integer weights installed)", name)
                qp = dict(qp_prev)
                key = qkey(hn.name, name, "q_w")
                qp[key] = trained_q[name].astype(np.asarray(qp0[key]).dtype)
                runner.quantized_params = qp
        validate_quantized_params(hn, runner.quantized_params, "QFT's quantized params")
    except BaseException:
        runner.quantized_params = qp0
        raise
    finally:
        for name, v in saved_clip.items():
            if v is _ABSENT:
                hn.layers[name].quantization_params.pop("weights_clipping", None)
            else:
                hn.layers[name].quantization_params["weights_clipping"] = v
        runner.fp_optimized_params = fp0

    after = runner.infer(SdkQuantized(), ins, batch_size=batch_size)
    snr_after = {o: _snr(teacher[o], after[o]) for o in out_names}
    report = FinetuneReport(
        layers=[l.name for l in macs], images=dataset_size, epochs=epochs, batch_size=batch_size,
        learning_rate=float(learning_rate), loss=losses, initial_loss=initial, final_loss=final,
        reverted=not improved,
        snr_before=snr_before, snr_after=snr_after, scale_changed=scale_changed,
        weights_changed={k: (0 if k in kept else v) for k, v in changed.items()}, kept=kept,
        step_images_per_second=(step_images / step_time) if step_time > 0 else float("nan"),
        seconds=time.perf_counter() - t0)
    for line in report.lines():
        log.info("%s", line)
    return report
