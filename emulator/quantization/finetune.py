"""QFT: quantization-aware finetuning by distillation (Finkelstein et al. 2022; docs/finetune.md).

After derivation, the fake-quant graph of the quantized network (SdkQuantized: float math on the
integer grids, straight-through rounding) is the student; the float network (SdkFPOptimized, the
runner's fp-optimized params as they are when QFT starts) is the teacher. The student's
parameters of every on-chip MAC layer (conv / dw / deconv / dense) are tf.Variables, trained
with Adam to minimise

    loss = sum over outputs o of  mean((student_o - teacher_o)^2) / var(teacher_o)

(var over every image and element of the dataset: each output counts alike, whatever its scale):
  weights  the float kernel, starting at the stored q_w * s_w, in units of the layer's weight
           range (max|q_w * s_w|); the student computes with q_w = clamp(round(W / s_w))
  biases   the float bias in real units (a folded normalization applied), starting at the stored
           B * s_acc, in units of the range of the unit's destination tensor; the student computes
           with B on the layer's bias grid (mantissa bits of its bias mode, the exponent chosen
           as the derivation chooses it)
  scales   s_w per quantization group (train_scales; off by default, docs/finetune.md says why),
           as log(s / s_w0) / SCALE_STEP, capped at max|W_g| / (lim - 0.49) (a weight of each
           group stays at +-lim, so the derivation gives the written-back weights that scale);
           the rescales M * 2^-r and the bias grid follow it as the derivation computes them
When the loss over the dataset has not improved after the last epoch, nothing is written back
(FinetuneReport.reverted). The activation grids (scale, zero point) and the tables stay as
derived.

After training, each layer's trained integer weights and bias, dequantized on the trained scale
(q_w * s_w, B * s_acc: what the student computed with), are written into a copy of the
fp-optimized params (undoing a folded normalization) and the layer is re-derived with
`rederive_layer`, with its weights_clipping turned off for that call so that s_w = max|W| / lim
comes out as trained (one weight of each group sits at +-lim: see docs/finetune.md).
runner.fp_optimized_params is then restored: the float network stays the pre-quantization one,
the integer params carry the result.
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
SCALE_STEP = 0.1  # a weight scale variable v means s = s_w0 * exp(SCALE_STEP * v): an Adam step of
                  # learning_rate moves log s by about SCALE_STEP * learning_rate
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
    trained: list[str] = dataclasses.field(default_factory=lambda: ["weights"])  # what was trained
    biases_changed: dict[str, int] = dataclasses.field(default_factory=dict)  # per layer: biases B moved
    scale_ratio: dict[str, list[float]] = dataclasses.field(default_factory=dict)  # s_w trained / derived

    def lines(self) -> list[str]:
        def db(d: dict) -> str:
            return ", ".join(f"{k} {v:.2f} dB" for k, v in d.items())

        out = [f"QFT ({', '.join(self.trained)}): {len(self.layers)} MAC layers, {self.images} images, "
               f"{self.epochs} epochs of batch {self.batch_size}, Adam lr {self.learning_rate:g}, "
               f"{self.seconds:.1f} s "
               f"({self.step_images_per_second:.0f} images/s in a training step)",
               "loss (MSE / teacher variance): " + " -> ".join(
                   f"{v:.5f}" for v in [self.initial_loss, *self.loss])
               + f" (epoch means); over the dataset {self.initial_loss:.5f} -> {self.final_loss:.5f}"
               + (" [not improved: params kept]" if self.reverted else ""),
               f"output SNR vs float, before: {db(self.snr_before)}; after: {db(self.snr_after)}"]
        for name in self.layers:
            line = f"  {name}: {self.weights_changed.get(name, 0)} integer weights changed"
            if name in self.biases_changed:
                line += f", {self.biases_changed[name]} biases"
            if name in self.scale_ratio:
                line += ", weight scale x " + " / ".join(f"{v:.4f}" for v in self.scale_ratio[name])
            out.append(line)
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
                "kept": list(self.kept), "trained": list(self.trained),
                "biases_changed": {k: int(v) for k, v in self.biases_changed.items()},
                "scale_ratio": {k: [float(x) for x in v] for k, v in self.scale_ratio.items()},
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
             seed: int = 0, train_biases: bool = True, train_scales: bool = False) -> FinetuneReport:
    """QFT of a quantized runner (module doc; docs/finetune.md).

    data: {input layer: float32 (N, ...)} or one array (single-input nets); the first
    dataset_size images are used, fewer is FinetuneOutOfDataError (checked before any work).
    progress(done_steps, total_steps, "epoch e/E") after each training step. The weights are
    always trained; train_biases (default on) and train_scales (default off: measured no
    better, docs/finetune.md) add the biases and the weight scales.
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
    from ..numerics import kernels as K
    from ..numerics.activations import LUT_ACTS
    from ..numerics.params import channel_groups, qmax
    from ..quantized_exec import FakeQuantContext, fake_quant_layer_fn
    from ..targets import SdkFPOptimized, SdkQuantized
    from .stored import QParams

    t0 = time.perf_counter()
    hn = runner.hn
    check_batch(hn, batch_size, "finetune", keep_all=True)
    ins = runner.prepare_inputs(data)
    ins = {k: np.ascontiguousarray(v[:dataset_size], np.float32) for k, v in ins.items()}
    in_names = [l.name for l in hn.input_layers]
    out_names = [l.name for l in hn.output_layers]
    qp0 = runner.quantized_params
    Q0 = QParams(hn, qp0)
    macs = [l for l in hn.topological() if l.type in MAC_TYPES and Q0.on_chip(l.name)]
    trained = ["weights"] + (["biases"] if train_biases else []) + (["scales"] if train_scales else [])

    # --- teacher and the untrained student --------------------------------------------------
    teacher = runner.infer(SdkFPOptimized(), ins, batch_size=batch_size)
    before = runner.infer(SdkQuantized(), ins, batch_size=batch_size)
    snr_before = {o: _snr(teacher[o], before[o]) for o in out_names}
    inv_var = {o: np.float32(1.0 / max(float(np.var(np.asarray(teacher[o], np.float64))), 1e-12))
               for o in out_names}

    # --- the student's variables: the stored dequantized weights, biases and scales ----------
    s_w0, w_vars, w_unit, b_vars, b_unit, s_vars = {}, {}, {}, {}, {}, {}
    for layer in macs:
        name = layer.name
        qw = Q0.get(name, "q_w").astype(np.float64)
        q2d = weights_2d(qw, layer.type)
        C = q2d.shape[1]
        s_w0[name] = np.asarray(Q0.get(name, "s_w"), np.float64)
        s_ch = s_w0[name][channel_groups(C, int(Q0.get(name, "groups")))]
        w0 = q2d * s_ch[None, :]
        # trained in units of the layer's weight range, so that one learning rate means the same
        # for every layer (a folded normalization can make a layer's weights 100x smaller)
        w_unit[name] = np.float32(max(float(np.max(np.abs(w0))), float(np.max(s_ch)), 1e-30))
        w_vars[name] = tf.Variable((w0 / w_unit[name]).reshape(qw.shape).astype(np.float32),
                                   name=f"qft_{name.replace('/', '_')}")
        if train_biases:
            # in units of the range of the tensor the unit rescales to (its output, or a table's
            # 16-bit pre-activation): a step of learning_rate moves the output by that fraction
            # of its range, whatever the layer's scales
            dest = (float(np.float32(Q0.get(name, "pre_scale"))) * qmax(16)) if layer.activation in LUT_ACTS \
                else float(Q0.tensor(name).scale) * qmax(Q0.tensor(name).bits)
            b_unit[name] = np.float64(dest)
            b0 = Q0.bias(name).astype(np.float64) * np.asarray(Q0.get(name, "s_acc"), np.float64)
            b_vars[name] = tf.Variable(b0 / b_unit[name], name=f"qft_bias_{name.replace('/', '_')}")
        if train_scales:
            # log(s / s_w0): the scale starts as derived
            s_vars[name] = tf.Variable(np.zeros(s_w0[name].shape), dtype=tf.float64,
                                       name=f"qft_scale_{name.replace('/', '_')}")
    var_list = [w_vars[l.name] for l in macs] + [b_vars[l.name] for l in macs if l.name in b_vars] + \
        [s_vars[l.name] for l in macs if l.name in s_vars]
    shared_fns: dict = {}  # the fused ops, compiled once for the training and the loss passes

    def student_params():
        return {"weights": {n: v * w_unit[n] for n, v in w_vars.items()},
                "biases": {n: v * b_unit[n] for n, v in b_vars.items()},
                "weight_scales": {n: tf.exp(v * SCALE_STEP) * s_w0[n] for n, v in s_vars.items()}}

    def layer_fn():
        # built while tracing: the student's parameters are read from the variables there
        return fake_quant_layer_fn(hn, qp0, **student_params(), fused_cache=shared_fns)

    opt = tf.keras.optimizers.Adam(learning_rate=float(learning_rate))
    sig = [tf.TensorSpec([None, *l.output_shape[1:]], tf.float32) for l in hn.input_layers]
    sig += [tf.TensorSpec([None, *l.output_shape[1:]], tf.float32) for l in hn.output_layers]
    k = len(in_names)
    K.float32_path_is_exact()  # the kernels' eager self-checks, before tracing
    K.xla_is_exact()

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

    # --- what the student computed with, layer by layer (eagerly, the same ops) ---------------
    student = FakeQuantContext(hn, qp0, **student_params(), xla=False)
    result = {}
    for layer in macs if improved else []:
        name = layer.name
        q = student.int_weights(name, tf.float64).numpy()
        s_g = _group_scales(student, name, s_w0[name])
        B = np.asarray(student.mac_bias(name, layer), np.float64) if (train_biases or train_scales) else None
        result[name] = (q, s_g, B)
    changed, biases_changed, scale_changed, kept = _write_back(runner, Q0, macs, result)

    after = runner.infer(SdkQuantized(), ins, batch_size=batch_size)
    snr_after = {o: _snr(teacher[o], after[o]) for o in out_names}
    rep = FinetuneReport(
        layers=[l.name for l in macs], images=dataset_size, epochs=epochs, batch_size=batch_size,
        learning_rate=float(learning_rate), loss=losses, initial_loss=initial, final_loss=final,
        reverted=not improved,
        snr_before=snr_before, snr_after=snr_after, scale_changed=scale_changed,
        weights_changed={k: (0 if k in kept else v) for k, v in changed.items()}, kept=kept,
        step_images_per_second=(step_images / step_time) if step_time > 0 else float("nan"),
        seconds=time.perf_counter() - t0, trained=trained,
        biases_changed={k: (0 if k in kept else v) for k, v in biases_changed.items()},
        scale_ratio={n: [float(v) for v in result[n][1] / s_w0[n]] for n in result
                     if train_scales and n not in kept})
    for line in rep.lines():
        log.info("%s", line)
    return rep


def _group_scales(student: Any, name: str, s_w0: np.ndarray) -> np.ndarray:
    """The weight scale of each group the student computed with (the stored one when the scales
    are not trained)."""
    from ..numerics.params import channel_groups

    s_ch = np.asarray(student.channel_scales(name), np.float64)
    groups = len(s_w0)
    ch = channel_groups(s_ch.shape[0], groups)
    return np.array([s_ch[ch == g][0] if np.any(ch == g) else s_w0[g] for g in range(groups)])


def _write_back(runner: Any, Q0: Any, macs: list, result: dict):
    """Install the trained layers ({name: (q, s per group, B or None)}, B given when biases or
    scales trained; Q0: the params QFT started from; module doc): float kernel q * s and bias
    B * s_acc into a copy of the fp-optimized params, folding undone, then rederive_layer
    with weights_clipping off. A layer whose re-derivation would change its scale (weights only:
    every weight of a group moved inside +-lim) keeps its derived params with the trained q_w
    (and bias mantissa) installed; one whose re-derivation fails keeps its untrained params.
    Returns (weights changed, biases changed, scale_changed, kept). Everything restored when
    anything raises; runner.fp_optimized_params is restored in any case."""
    from ..layers.mac import weights_2d
    from ..numerics.params import channel_groups, decompose_bias
    from ..qparams_check import validate_quantized_params
    from .config import layer_config
    from .derivation import rederive_layer
    from .folding import fold_normalization
    from .keys import qkey
    from .stored import QParams

    hn, qp0 = runner.hn, Q0.qp
    fp0 = runner.fp_optimized_params
    base = fp0 if fp0 is not None else runner.native_params
    fp_new = dict(base)
    changed: dict[str, int] = {}
    biases_changed: dict[str, int] = {}
    scale_changed: list[str] = []
    kept: list[str] = []
    saved_clip: dict[str, Any] = {}
    try:
        for layer in macs:
            name = layer.name
            if name not in result:
                continue
            q, s_g, B = result[name]
            shape = Q0.get(name, "q_w").shape
            q2 = weights_2d(q, layer.type)
            C = q2.shape[1]
            s_ch = s_g[channel_groups(C, len(s_g))]
            q_old = weights_2d(Q0.get(name, "q_w").astype(np.int64), layer.type)
            changed[name] = int(np.sum(q2.astype(np.int64) != q_old))
            w_eff = (q2 * s_ch[None, :]).reshape(shape)  # what the student computed with
            prm = runner.layer_params(name, "fp_optimized")
            src = Q0.source(layer)
            folded = src != layer.input[0]
            if B is not None:
                biases_changed[name] = int(np.sum(B.astype(np.int64) != Q0.bias(name)))
                b_target = B * (np.float64(Q0.tensor(src).scale) * s_ch)  # the chip's bias, real units
            kernel_new, bias_new = w_eff, np.asarray(prm["bias"], np.float64)
            if folded:  # a folded normalization: W' = W / std, b' = b - W mean / std
                norm = runner.layer_params(layer.input[0], "fp_optimized")
                std = np.asarray(norm["std"], np.float64)
                if layer.type == "dense":
                    std_k = std[np.arange(w_eff.shape[0]) % std.shape[0]][:, None]
                else:
                    std_k = std[None, None, :, None]
                kernel_new = w_eff * std_k
                _, b_mid = fold_normalization(kernel_new, np.zeros_like(bias_new), norm["mean"], norm["std"],
                                              layer.type)
                if B is not None:  # b' = b_target: b = b_target + W mean / std
                    bias_new = b_target - b_mid
                else:  # the chip's folded bias stays as derived
                    _, b_old = fold_normalization(prm["kernel"], prm["bias"], norm["mean"], norm["std"],
                                                  layer.type)
                    bias_new = b_old - b_mid
            elif B is not None:
                bias_new = b_target
            fp_new[qkey(hn.name, name, "kernel")] = kernel_new.astype(np.float32)
            fp_new[qkey(hn.name, name, "bias")] = bias_new.astype(np.float32)
        runner.fp_optimized_params = fp_new
        for layer in macs:
            name = layer.name
            if name not in result:
                continue
            q, s_g, B = result[name]
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
                log.warning("QFT: %s keeps its parameters (%s)", name, e)
                runner.quantized_params = qp_prev
                kept.append(name)
                continue
            Qn = QParams(hn, runner.quantized_params)
            same_q = np.array_equal(Qn.get(name, "q_w").astype(np.int64), q.astype(np.int64).reshape(
                Qn.get(name, "q_w").shape))
            if not np.allclose(Qn.get(name, "s_w"), s_g, rtol=1e-6, atol=0) or not same_q:
                if not np.allclose(s_g, Q0.get(name, "s_w"), rtol=1e-6, atol=0):
                    # a trained scale the re-derivation does not reproduce (cannot happen: the
                    # student's scale is capped at max|W_g| / lim): keep the layer untrained
                    log.warning("QFT: %s keeps its parameters (its trained weight scale does not "
                                "re-derive)", name)
                    runner.quantized_params = qp_prev
                    kept.append(name)
                    continue
                # every weight of a group moved inside +-lim (weights trained on a fixed scale):
                # max|W| / lim shrank. Keep the scale the student was trained on: the layer's
                # params as derived before, with the trained integer weights (and bias)
                # installed (bias and rescales depend on s_w only, which is kept)
                scale_changed.append(name)
                log.info("QFT: %s: re-derivation would change the weight scale; kept the trained "
                         "one (the trained integer weights installed)", name)
                qp = dict(qp_prev)
                key = qkey(hn.name, name, "q_w")
                qp[key] = q.astype(np.int64).reshape(np.shape(qp0[key])).astype(np.asarray(qp0[key]).dtype)
                if B is not None:
                    mkey = qkey(hn.name, name, "bias_mantissa")
                    mant, e = decompose_bias(B, Q0.bias_mantissa_bits(name))
                    qp[mkey] = mant.astype(np.asarray(qp0[mkey]).dtype)
                    qp[qkey(hn.name, name, "bias_exponent")] = np.array(e, np.int32)
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
    return changed, biases_changed, scale_changed, kept
