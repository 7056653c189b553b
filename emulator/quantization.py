"""run_quantization_from_np: the seed's basic quantization scheme (docs/numerics.md).

Steps, in order (the later algorithms of toolchain.md plug in between them):
  1. calibration check     (N, H, W, C) against the HN, OutOfRange (a failure changes nothing)
  2. per-layer config      layer.quantization_params (precision_mode, bias_mode,
                           quantization_groups), filled from `config` and validated
  3. statistics            native (fp-optimized) float inference over calib_num_batch x
                           batch_size images: min / max of every layer output, and of the
                           pre-activation of table (LUT) activations
  4. tensor params         (s, z, b) per tensor, normalization folding
  5. layer params          weights, bias decomposition, rescale mantissa / shift, tables
  6. export                runner.quantized_params, runner.metadata["calibration"],
                           runner.stream_infos
Per-layer derivation functions are public (derive_layer_params) so that IBC / QFT can re-derive
one layer after changing its float params or ranges.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Any, Mapping

import numpy as np

from .hn import MAC_TYPES, PRECISION_MODE_RE, HNGraph, Layer, normalization_fold_target
from .limits import check_batch
from .numerics import kernels as K
from .numerics.activations import CLAMP_ACTS, LUT_ACTS, SLOPE_ACTS, build_lut
from .numerics.params import (CONFIG_KEYS, HOST_OPS, KIND_CHIP, KIND_FOLDED, KIND_HOST,
                              PASSTHROUGH, layer_config,
                              BIAS_MANTISSA_BITS, PRE_ACT_BITS, TensorQ, check_accumulator,
                              channel_groups, decompose_bias, derive_rescale,
                              derive_signed_rescale, ew_multipliers, mac_bound, qmax,
                              quantize_weights, relu6_hi_code, rhe, tensor_params)
from .quant_errors import (CalibrationOutOfRangeError, CalibrationShapeError, ConcatWidthError,
                           QuantizationConfigError, QuantizationError, UnsupportedLayerError)

log = logging.getLogger(__name__)

NUMERICS_VERSION = 1


def qkey(net: str, layer: str, field: str) -> str:
    """Key of a stored quantized param: "<net>/<layer>/<field>:0"."""
    return f"{net}/{layer}/{field}:0"


# ==== per-layer configuration ====================================================================

def parse_precision_mode(mode: str) -> tuple[int, int]:
    """'aX_wY[_aZ]' -> (output bits, weight bits): weights Y bits, output Z (= X when absent)."""
    m = PRECISION_MODE_RE.match(str(mode))
    if not m:
        raise QuantizationConfigError(
            f"precision_mode '{mode}' is not aX_wY[_aZ] with X, Z in {{8, 16}} and Y in {{4, 8, 16}} "
            f"(e.g. a8_w8, a8_w4, a16_w16, a16_w8, a8_w8_a16)")
    return int(m.group(3) or m.group(1)), int(m.group(2))


def _validate_entry(where: str, entry: Mapping[str, Any]) -> dict:
    if not isinstance(entry, Mapping):
        raise QuantizationConfigError(f"{where}: expected a dict of {list(CONFIG_KEYS)}, got {entry!r}")
    out = {}
    for k, v in entry.items():
        if k not in CONFIG_KEYS:
            raise QuantizationConfigError(
                f"{where}: unknown key '{k}'; the basic scheme takes {list(CONFIG_KEYS)} "
                f"(equalization, IBC, QFT and clipping come with the model-script issue)")
        if k == "precision_mode":
            parse_precision_mode(v)
        elif k == "bias_mode" and v not in BIAS_MANTISSA_BITS:
            raise QuantizationConfigError(f"{where}: bias_mode '{v}' is not one of {list(BIAS_MANTISSA_BITS)}")
        elif k == "quantization_groups" and (not isinstance(v, (int, np.integer)) or isinstance(v, bool)
                                             or not 1 <= int(v) <= 4):
            raise QuantizationConfigError(f"{where}: quantization_groups must be an int 1..4, got {v!r}")
        out[k] = int(v) if k == "quantization_groups" else str(v)
    return out


def apply_config(hn: HNGraph, config: Mapping[str, Mapping[str, Any]] | None) -> None:
    """Write `config` ({layer name or glob: {key: value}}; later entries win) into the layers'
    quantization_params, validating every key and value; existing entries (a model script's)
    are validated too."""
    for layer in hn.layers.values():
        _validate_entry(f"layer '{layer.name}' quantization_params",
                        {k: v for k, v in layer.quantization_params.items() if k in CONFIG_KEYS})
    for pattern, entry in (config or {}).items():
        entry = _validate_entry(f"config['{pattern}']", entry)
        layers = hn.match(pattern) if any(c in pattern for c in "*?[") else \
            ([hn.layer(pattern)] if _has_layer(hn, pattern) else [])
        if not layers:
            raise QuantizationConfigError(
                f"config['{pattern}']: no layer of network '{hn.name}' matches; layers are "
                f"{', '.join(list(hn.layers)[:12])}{'...' if len(hn.layers) > 12 else ''}")
        for layer in layers:
            if "quantization_groups" in entry and int(entry["quantization_groups"]) > 1 \
                    and layer.type not in MAC_TYPES:
                raise QuantizationConfigError(
                    f"config['{pattern}']: quantization_groups applies to layers with weights "
                    f"({', '.join(MAC_TYPES)}); '{layer.name}' is a {layer.type}")
            layer.quantization_params.update(entry)


def _has_layer(hn: HNGraph, name: str) -> bool:
    try:
        hn.layer(name)
        return True
    except Exception:
        return False


# ==== calibration data ===========================================================================

def check_calibration(runner: Any, np_array: Any, calib_num_batch: int, batch_size: int) -> dict[str, np.ndarray]:
    """Validate the calibration array(s) and return {input layer: float32 (n, ...)} with
    n = calib_num_batch * batch_size."""
    hn = runner.hn
    for name, v in (("calib_num_batch", calib_num_batch), ("batch_size", batch_size)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise QuantizationConfigError(f"{name} must be a positive int, got {v!r}")
    ins = hn.input_layers
    if isinstance(np_array, Mapping):
        data = {}
        for k, v in np_array.items():
            if not _has_layer(hn, k) or hn.layer(k).type != "input_layer":
                raise CalibrationShapeError(f"calibration dict key '{k}' is not an input layer of "
                                            f"'{hn.name}' (inputs: {[l.name for l in ins]})")
            data[hn.layer(k).name] = v
        missing = [l.name for l in ins if l.name not in data]
        if missing:
            raise CalibrationShapeError(f"no calibration data for input layer(s) {missing}")
    else:
        if len(ins) != 1:
            raise CalibrationShapeError(f"network '{hn.name}' has {len(ins)} inputs "
                                        f"{[l.name for l in ins]}; pass a dict")
        data = {ins[0].name: np_array}
    need = int(calib_num_batch) * int(batch_size)
    out = {}
    for l in ins:
        a = data[l.name]
        if not isinstance(a, np.ndarray):
            a = np.asarray(a)
        want = tuple(l.output_shape[1:])
        if a.ndim != len(want) + 1 or tuple(a.shape[1:]) != want:
            hint = ""
            if a.ndim == len(want) and tuple(a.shape) == want:
                hint = " (a single image: add the batch axis, np_array[None])"
            elif a.ndim == len(want) + 1 and a.ndim == 4 and tuple(a.shape[1:]) == (want[2], want[0], want[1]):
                hint = " (channels first: transpose to NHWC, np.transpose(x, (0, 2, 3, 1)))"
            raise CalibrationShapeError(
                f"calibration array for input layer '{l.name}' has shape {a.shape}, expected "
                f"(N, {', '.join(map(str, want))}){hint}")
        if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
            raise CalibrationShapeError(f"calibration array for '{l.name}' has dtype {a.dtype}; "
                                        f"expected real numbers (float32 pre-processed images)")
        if a.shape[0] < need:
            raise CalibrationOutOfRangeError(need, int(a.shape[0]), int(calib_num_batch), int(batch_size))
        a = np.asarray(a[:need], np.float32)
        if not np.all(np.isfinite(a)):
            raise CalibrationShapeError(f"calibration array for '{l.name}' holds NaN or inf")
        out[l.name] = a
    return out


# ==== statistics =================================================================================

def collect_statistics(runner: Any, data: Mapping[str, np.ndarray], batch_size: int,
                       which: str = "fp_optimized") -> dict[str, np.ndarray]:
    """Min / max of every layer's output over the calibration images (float network), and of
    the pre-activation ("<layer>/pre") of layers with a table activation. Returns
    {name: float64 [min, max]}."""
    import tensorflow as tf

    from .float_ops import apply_activation, pre_activation, run_float_layer
    from .graph_exec import execute

    hn = runner.hn
    consts = {l.name: {k: tf.constant(v) for k, v in runner.layer_params(l.name, which).items()}
              for l in hn.topological()}
    names = [l.name for l in hn.input_layers]
    sig = [tf.TensorSpec([None, *l.output_shape[1:]], tf.float32) for l in hn.input_layers]

    @tf.function(input_signature=sig, reduce_retracing=True, autograph=False)
    def stats(*xs):
        rec = {}

        def fn(layer, ins):
            if layer.type not in ("input_layer", "output_layer") and layer.activation in LUT_ACTS:
                pre = pre_activation(layer, ins, consts[layer.name])
                out = apply_activation(pre, layer, consts[layer.name])
                rec[layer.name + "/pre"] = tf.stack([tf.reduce_min(pre), tf.reduce_max(pre)])
            else:
                out = run_float_layer(layer, ins, consts[layer.name])
            rec[layer.name] = tf.stack([tf.reduce_min(out), tf.reduce_max(out)])
            return out

        execute(hn, dict(zip(names, xs)), fn)
        return rec

    n = next(iter(data.values())).shape[0]
    acc: dict[str, np.ndarray] = {}
    for s in range(0, n, batch_size):
        r = stats(*[data[k][s:s + batch_size] for k in names])
        for k, v in r.items():
            v = v.numpy().astype(np.float64)
            acc[k] = v if k not in acc else np.array([min(acc[k][0], v[0]), max(acc[k][1], v[1])])
    return acc


# ==== derivation =================================================================================

@dataclasses.dataclass
class _Ctx:
    hn: HNGraph
    net: str
    stats: dict
    params: Any  # callable name -> bare params dict (float)
    qp: dict
    tq: dict  # layer -> TensorQ of its output (on-chip tensors)
    kind: dict
    pre: dict = dataclasses.field(default_factory=dict)  # layer -> TensorQ of a table's pre-activation

    def pre_tensor(self, name: str) -> TensorQ:
        """The 16-bit pre-activation tensor of a table (LUT) activation, from its calibrated range."""
        if name not in self.pre:
            lo, hi = self.stats[name + "/pre"]
            self.pre[name] = tensor_params(lo, hi, PRE_ACT_BITS, name, "pre-activation")
        return self.pre[name]


def _store_tensor(ctx: _Ctx, name: str, t: TensorQ, rng=None) -> None:
    qp, net = ctx.qp, ctx.net
    qp[qkey(net, name, "out_scale")] = np.array(t.scale, np.float32)
    qp[qkey(net, name, "out_zp")] = np.array(t.zp, np.int32)
    qp[qkey(net, name, "out_bits")] = np.array(t.bits, np.int32)
    qp[qkey(net, name, "limvals")] = np.array(t.limvals, np.float32)
    if rng is not None:
        qp[qkey(net, name, "range")] = np.asarray(rng, np.float64)


def source(ctx: _Ctx, layer: Layer, i: int = 0) -> str:
    """The on-chip tensor feeding input i of `layer` (skipping folded normalizations)."""
    name = layer.input[i]
    while ctx.kind.get(name) == KIND_FOLDED:
        name = ctx.hn.layers[name].input[0]
    return name


def _is_host(hn: HNGraph, layer: Layer) -> bool:
    if layer.type in HOST_OPS:
        return True
    return layer.type == "output_layer" and _is_host(hn, hn.layers[layer.input[0]])


def _check_host_op(hn: HNGraph, layer: Layer) -> None:
    for c in layer.output:
        cl = hn.layers[c]
        if cl.type not in ("output_layer",) + HOST_OPS:
            raise UnsupportedLayerError(
                f"layer '{layer.name}' ({layer.type}) feeds the on-chip layer '{c}' ({cl.type}); "
                f"{layer.type} runs on the host after dequantization, so it may only feed output "
                f"layers. Move it to the end of the network or remove it before quantizing.")


def _folding_target(hn: HNGraph, layer: Layer, stats: dict, in_bits: int) -> Layer | None:
    """The MAC layer a normalization folds into (docs/numerics.md), or None."""
    cons = normalization_fold_target(hn, layer)
    if cons is None:
        return None
    src = hn.layers[layer.input[0]]
    lo, hi = stats[src.name]
    if lo < 0 or hi > qmax(in_bits):
        return None
    return cons


def _fold_normalization(kernel: np.ndarray, bias: np.ndarray, mean: np.ndarray, std: np.ndarray,
                        ltype: str) -> tuple[np.ndarray, np.ndarray]:
    """W' = W / std_c per input channel c; b' = b - sum W * mean_c / std_c (float64)."""
    w = np.asarray(kernel, np.float64)
    b = np.asarray(bias, np.float64)
    mean = np.asarray(mean, np.float64)
    std = np.asarray(std, np.float64)
    if ltype == "conv":
        wf = w / std[None, None, :, None]
        bf = b - np.einsum("hwio,i->o", w, mean / std)
    elif ltype == "dw":
        wf = w / std[None, None, :, None]
        bf = b - np.einsum("hwcm,c->cm", w, mean / std).reshape(-1)
    else:  # dense: input flattened (H, W, C) row-major, channel = k % C
        c = mean.shape[0]
        idx = np.arange(w.shape[0]) % c
        wf = w / std[idx][:, None]
        bf = b - (w * (mean / std)[idx][:, None]).sum(axis=0)
    return wf, bf


def _w2d(kernel: np.ndarray, ltype: str) -> np.ndarray:
    if ltype == "dw":
        kh, kw, ci, m = kernel.shape
        return kernel.reshape(kh * kw, ci * m)
    return kernel.reshape(-1, kernel.shape[-1])


def _act_unit(ctx: _Ctx, layer: Layer, s_acc, out: TensorQ, alpha=None) -> None:
    """Rescale / activation params of the activation unit fed by an accumulator of scale s_acc
    (per channel or scalar): M, r, act_lo, act_hi, and M_neg, r_neg (leaky / PReLU) or
    pre_scale, pre_zp, lut (table activations)."""
    qp, net, name = ctx.qp, ctx.net, layer.name
    C = int(layer.output_shape[-1])
    s_acc = np.broadcast_to(np.asarray(s_acc, np.float64), (C,)).copy()
    act = layer.activation
    qp[qkey(net, name, "s_acc")] = s_acc
    if act in LUT_ACTS:
        pre = ctx.pre_tensor(name)
        M, r = derive_rescale(s_acc / np.float64(pre.scale), PRE_ACT_BITS, name, "pre-activation rescale")
        qp[qkey(net, name, "pre_scale")] = np.array(pre.scale, np.float32)
        qp[qkey(net, name, "pre_zp")] = np.array(pre.zp, np.int32)
        qp[qkey(net, name, "pre_range")] = np.asarray(ctx.stats[name + "/pre"], np.float64)
        qp[qkey(net, name, "lut")] = build_lut(act, pre.scale, pre.zp, out.scale, out.zp, out.bits)
        lo, hi = 0, qmax(out.bits)
    else:
        M, r = derive_rescale(s_acc / np.float64(out.scale), out.bits, name)
        lo, hi = 0, qmax(out.bits)
        if act in ("relu", "relu6"):
            lo = out.zp
        if act == "relu6":
            hi = relu6_hi_code(out.zp, out.scale, out.bits)
        if act in SLOPE_ACTS:
            a = np.float64(layer.params.get("leaky_alpha", 0.2)) if act == "leaky" else \
                np.asarray(alpha, np.float64)
            Mn, rn = derive_signed_rescale(a * s_acc / np.float64(out.scale), out.bits, name)
            qp[qkey(net, name, "M_neg")] = np.broadcast_to(Mn, (C,)).astype(np.int32)
            qp[qkey(net, name, "r_neg")] = np.broadcast_to(rn, (C,)).astype(np.int32)
        elif act not in CLAMP_ACTS:
            raise UnsupportedLayerError(f"layer '{name}': activation '{act}' has no integer form")
    qp[qkey(net, name, "M")] = M.astype(np.int32)
    qp[qkey(net, name, "r")] = r.astype(np.int32)
    qp[qkey(net, name, "act_lo")] = np.full(C, lo, np.int32)
    qp[qkey(net, name, "act_hi")] = np.full(C, hi, np.int32)


def derive_layer_params(ctx: _Ctx, layer: Layer, cfg: dict) -> None:
    """Integer params of one on-chip layer (its output tensor already in ctx.tq)."""
    qp, net, name, t = ctx.qp, ctx.net, layer.name, layer.type
    out = ctx.tq[name]
    if t in ("input_layer", "output_layer", "maxpool", "reduce_max", "reshape", "slice",
             "space_to_depth", "depth_to_space", "feature_shuffle"):
        return
    src = source(ctx, layer)
    tin = ctx.tq[src]
    p = layer.params
    if t in MAC_TYPES:
        prm = ctx.params(name)
        kernel, bias = np.asarray(prm["kernel"], np.float64), np.asarray(prm["bias"], np.float64)
        folded = layer.input[0] != src
        if folded:
            norm = ctx.params(layer.input[0])
            kernel, bias = _fold_normalization(kernel, bias, norm["mean"], norm["std"], t)
        _, wbits = parse_precision_mode(cfg["precision_mode"])
        groups = int(cfg["quantization_groups"])
        s_dest = ctx.pre_tensor(name).scale if layer.activation in LUT_ACTS else out.scale
        w2d = _w2d(kernel, t)
        C = w2d.shape[1]
        q2d, s_w = quantize_weights(w2d, wbits, groups,
                                    zero_group_scale=np.float64(s_dest) / np.float64(tin.scale))
        s_acc = np.float64(tin.scale) * s_w[channel_groups(C, groups)]
        mant, e = decompose_bias(bias / s_acc, BIAS_MANTISSA_BITS[cfg["bias_mode"]])
        B = mant * (1 << e)
        check_accumulator(name, mac_bound(q2d, tin.max_centred) + int(np.abs(B).max()))
        wdt = np.int8 if wbits <= 8 else np.int16
        qp[qkey(net, name, "q_w")] = q2d.reshape(kernel.shape).astype(wdt)
        qp[qkey(net, name, "s_w")] = s_w
        qp[qkey(net, name, "w_bits")] = np.array(wbits, np.int32)
        qp[qkey(net, name, "groups")] = np.array(groups, np.int32)
        qp[qkey(net, name, "bias_mantissa")] = mant.astype(np.int8 if cfg["bias_mode"] == "single_scale_decomposition" else np.int16)
        qp[qkey(net, name, "bias_exponent")] = np.array(e, np.int32)
        _act_unit(ctx, layer, s_acc, out, alpha=prm.get("alpha"))
    elif t == "activation":
        _act_unit(ctx, layer, np.float64(tin.scale), out, alpha=ctx.params(name).get("alpha"))
    elif t in ("ew_add", "ew_sub"):
        tb = ctx.tq[source(ctx, layer, 1)]
        A, s_acc = ew_multipliers([tin.scale, tb.scale], max(tin.bits, tb.bits))
        check_accumulator(name, int(A[0]) * tin.max_centred + int(A[1]) * tb.max_centred)
        qp[qkey(net, name, "ew_mult")] = A.astype(np.int64)
        _act_unit(ctx, layer, s_acc, out, alpha=ctx.params(name).get("alpha"))
    elif t == "ew_mult":
        tb = ctx.tq[source(ctx, layer, 1)]
        _act_unit(ctx, layer, np.float64(tin.scale) * np.float64(tb.scale), out,
                  alpha=ctx.params(name).get("alpha"))
    elif t == "concat":
        for i in range(len(layer.input)):
            ti = ctx.tq[source(ctx, layer, i)]
            if (ti.scale, ti.zp) != (out.scale, out.zp):
                M, r = derive_rescale(np.float64(ti.scale) / np.float64(out.scale), out.bits, name,
                                      f"requantization of input {i}")
                qp[qkey(net, name, f"in{i}_M")] = np.array(M[0], np.int32)
                qp[qkey(net, name, f"in{i}_r")] = np.array(r[0], np.int32)
    elif t == "avgpool":
        vals = np.unique(avgpool_geometry(layer)[3])
        M, r = derive_rescale(np.float64(tin.scale) / (vals * np.float64(out.scale)), out.bits, name)
        qp[qkey(net, name, "pool_counts")] = vals.astype(np.int64)
        qp[qkey(net, name, "M")] = M.astype(np.int32)
        qp[qkey(net, name, "r")] = r.astype(np.int32)
    elif t == "global_avg_pool":
        hw = layer.input_shapes[0][1] * layer.input_shapes[0][2]
        _act_unit(ctx, layer, np.float64(tin.scale) / hw, out)
    elif t == "reduce_sum":
        _act_unit(ctx, layer, np.float64(tin.scale), out)
    elif t == "resize":
        if p["method"] == "bilinear":
            _act_unit(ctx, layer, np.float64(tin.scale) * 2.0 ** -16, out)
    elif t == "normalization":
        prm = ctx.params(name)
        mean, std = np.asarray(prm["mean"], np.float64), np.asarray(prm["std"], np.float64)
        B = rhe(-mean / np.float64(tin.scale) * 256.0).astype(np.int64)
        qp[qkey(net, name, "norm_bias")] = B
        _act_unit(ctx, layer, np.float64(tin.scale) * 2.0 ** -8 / std, out)
    elif t == "pad":
        c = float(p.get("constant_value", 0.0))
        code = int(np.clip(rhe(c / np.float64(out.scale)) + out.zp, 0, qmax(out.bits)))
        qp[qkey(net, name, "pad_code")] = np.array(code, np.int32)
    else:
        raise UnsupportedLayerError(f"layer '{name}': type '{t}' has no quantized implementation")


def avgpool_geometry(layer: Layer) -> tuple[list[int], list[int], tuple, np.ndarray]:
    """(kernel hw, strides hw, pads, window count per output position) of an average pool."""
    p = layer.params
    k, s = p["kernel_shape"][1:3], p["strides"][1:3]
    hw = layer.input_shapes[0][1:3]
    pads = K.spatial_pads(hw, k, s, (1, 1), p["padding"])
    return k, s, pads, K.pool_counts(hw, k, s, pads, bool(p.get("count_include_pad", False)))


def _concat_bits(ctx: _Ctx, layer: Layer, cfg: dict) -> int:
    """A concat's inputs must share one width, which its output keeps (an explicit precision
    mode of another width is an error too)."""
    srcs = [source(ctx, layer, i) for i in range(len(layer.input))]
    b0 = ctx.tq[srcs[0]].bits
    for s in srcs[1:]:
        if ctx.tq[s].bits != b0:
            raise ConcatWidthError(layer.name, srcs[0], b0, s, ctx.tq[s].bits)
    if "precision_mode" in layer.quantization_params and parse_precision_mode(cfg["precision_mode"])[0] != b0:
        raise ConcatWidthError(layer.name, srcs[0], b0, f"{layer.name} (its own precision_mode)",
                               parse_precision_mode(cfg["precision_mode"])[0])
    return b0


def derive_quantized_params(runner: Any, stats: dict, which: str = "fp_optimized") -> tuple[dict, dict]:
    """All quantized params from the statistics. Returns (quantized_params, summary)."""
    hn = runner.hn
    net = hn.name
    ctx = _Ctx(hn=hn, net=net, stats=stats, params=lambda n: runner.layer_params(n, which),
               qp={}, tq={}, kind={})
    cfgs = {l.name: layer_config(hn, l) for l in hn.topological()}
    folded: dict[str, str] = {}
    # kinds and normalization folding
    for layer in hn.topological():
        if _is_host(hn, layer):
            if layer.type in HOST_OPS:
                _check_host_op(hn, layer)
            ctx.kind[layer.name] = KIND_HOST
            continue
        ctx.kind[layer.name] = KIND_CHIP
        if layer.type == "normalization":
            in_bits = parse_precision_mode(cfgs[layer.input[0]]["precision_mode"])[0]
            tgt = _folding_target(hn, layer, stats, in_bits)
            if tgt is not None:
                ctx.kind[layer.name] = KIND_FOLDED
                folded[layer.name] = tgt.name
    # tensors
    for layer in hn.topological():
        name = layer.name
        ctx.qp[qkey(net, name, "kind")] = np.array(ctx.kind[name], np.int32)
        if ctx.kind[name] != KIND_CHIP:
            continue
        bits = parse_precision_mode(cfgs[name]["precision_mode"])[0]
        if layer.type == "input_layer":
            if any(ctx.kind.get(c) == KIND_FOLDED for c in layer.output):
                t = TensorQ(1.0, 0, bits)  # the identity QP: raw pixels go in
            else:
                t = tensor_params(*stats[name], bits, name, "input")
        elif layer.type in PASSTHROUGH:
            t = ctx.tq[source(ctx, layer)]
        else:
            if layer.type == "concat":
                bits = _concat_bits(ctx, layer, cfgs[name])
            t = tensor_params(*stats[name], bits, name)
        ctx.tq[name] = t
        _store_tensor(ctx, name, t, stats.get(name))
    # layer params
    for layer in hn.topological():
        if ctx.kind[layer.name] == KIND_CHIP:
            derive_layer_params(ctx, layer, cfgs[layer.name])
            log.debug("quantized %s (%s): %s", layer.name, layer.type, ctx.tq[layer.name])
    summary = {
        "numerics_version": NUMERICS_VERSION,
        "folded_normalization": folded,
        "layers": {n: {"scale": float(t.scale), "zp": int(t.zp), "bits": int(t.bits),
                       "range": [float(v) for v in stats[n]] if n in stats else None,
                       **{k: v for k, v in cfgs[n].items()}}
                   for n, t in ctx.tq.items()},
    }
    return ctx.qp, summary


# ==== the public entry point =====================================================================

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
        from .errors import NoParamsError

        raise NoParamsError(runner.hn.name)
    data = check_calibration(runner, np_array, calib_num_batch, batch_size)
    apply_config(runner.hn, config)
    n = int(calib_num_batch) * int(batch_size)
    check_batch(runner.hn, int(batch_size), "calibration", keep_all=True)
    log.info("calibration: %d images in %d batches of %d", n, calib_num_batch, batch_size)
    stats = collect_statistics(runner, data, int(batch_size))
    qp, summary = derive_quantized_params(runner, stats)
    summary.update({"images": n, "calib_num_batch": int(calib_num_batch), "batch_size": int(batch_size)})
    from .stream_export import get_stream_infos

    previous = runner.quantized_params
    runner.quantized_params = qp
    try:
        infos = stream_infos_dicts(runner, get_stream_infos(runner))
    except Exception:  # a network whose streams cannot be exported stays as it was
        runner.quantized_params = previous
        raise
    runner.metadata["calibration"] = summary
    runner.stream_infos = infos


def stream_infos_dicts(runner: Any, infos: list) -> list[dict]:
    from .stream_export import host_ops_of

    out = []
    for si in infos:
        d = si.to_dict()
        ops = host_ops_of(runner, si.name)
        if ops:
            d["host_ops"] = ops
        out.append(d)
    return out


__all__ = ["run_quantization_from_np", "collect_statistics", "derive_quantized_params",
           "derive_layer_params", "apply_config", "check_calibration", "layer_config",
           "parse_precision_mode", "qkey", "QuantizationError"]
