"""Quantized params checked against the HN when they are loaded (a HAR's quantized.npz), so that a
file that does not belong to the network, or whose numbers the chip cannot hold, fails at once
with a named error instead of a KeyError, a TensorFlow error or a silently wrong output.

`validate_quantized_params(hn, qp, source)` checks every key of the stored params
(docs/numerics.md, "Stored parameters") against the HN:

- every key is "<net>/<layer>/<field>:0" of this network and of one of its layers, and the field
  is one that layer's kind, type and activation have; no field is missing;
- every array has the dtype and shape the derivation (emulator/quantization.py) gives it;
- kinds: host ops (softmax / argmax, and the output layers after them) are kind 1, nothing else
  is; a kind 2 (folded normalization) only where the HN allows the folding;
- tensors: width 8 or 16, scale finite and not below the narrowest calibrated range
  (LIMVALS_MIN_WIDTH over 2^b - 1 codes), zero point an integer code of that width, limvals
  exactly those of (s, z, b), range finite; layers that keep their input's tensor carry it
  unchanged; a concat's inputs share its width; an input layer feeding a folded normalization
  has the identity QP;
- rescales: mantissas M in [2^14, 2^15 - 1], shifts r in [7, 46] for 8-bit destinations and
  [0, 46] for 16-bit ones (16-bit for table activations' pre-activations); the negative side
  of leaky / PReLU the same, signed, or (0, 0); clamps inside the code range; tables of 65,536
  codes of the output's width; pre-activation tensors 16-bit;
- weights and biases: w_bits 4 / 8 / 16 and q_w within +-(2^(w-1) - 1) in int8 (w <= 8) or int16,
  1..4 groups with a finite positive scale each, bias mantissas within the int8 / int16 range
  (-128 / -32768 excluded), exponents 0..47, and the accumulator bound (sum |q_w| * max |q - z|
  + max |B|) below 2^47; element-wise multipliers A in [0, 2^t] with the larger 2^t; average
  pool counts exactly the window counts of the layer's geometry; concat requantization present
  exactly for the inputs whose (s, z) differ from the output's; a pad code in the code range;
  an on-chip normalization's bias within the float64-exact range (|acc| < 2^38).

With `rederive=True` (the default) it also recomputes what version 1 of the numerics derives
from stored quantities alone, and requires the stored values to be those: (s, z) from `range`
(and the pre-activation's from `pre_range`), M and r from `s_acc` (and s_acc itself from the
input scales and weight scales where it derives from them), the negative slope of leaky, the
clamps, the element-wise multipliers, the concat requantizations, the average pool's rescales,
the pad code, and the widths, weight bits, groups and bias dtypes from the HN's precision
modes (`layer.quantization_params`). A shift, mantissa, scale or zero point changed by hand
then fails even when it is in range. What cannot be rederived from the file alone is not
checked against anything but its range: q_w, s_w and the bias (they come from the float
weights), PReLU slopes, a normalization's bias, and the tables (docs/numerics.md: the stored
table is the truth).

Errors are `QuantizedParamsError` (a ParamsError, so an EmulatorError and a ValueError) naming
the source, the layer and the key, what was expected and what was found.
"""
from __future__ import annotations

import math
import re
from typing import Any, Mapping

import numpy as np

from .errors import ParamsError
from .hn import MAC_TYPES, PRECISION_MODE_RE, HNGraph, Layer, normalization_fold_target
from .numerics.activations import LUT_ACTS, SLOPE_ACTS
from .numerics.geometry import pool_counts, spatial_pads
from .numerics.params import (HOST_OPS, KIND_CHIP, KIND_FOLDED, KIND_HOST, PASSTHROUGH,
                              layer_config,
                              ACC_LIMIT_BITS, EW_EXTRA_BITS, LIMVALS_MIN_WIDTH, LUT_SIZE,
                              MANTISSA_BITS, PRE_ACT_BITS, SHIFT_MAX, SHIFT_MIN, TensorQ,
                              abs_weight_sum, channel_groups, derive_rescale,
                              derive_signed_rescale, ew_multipliers, qmax, relu6_hi_code, rhe,
                              tensor_params)
from .quant_errors import QuantizationError

# The same as in emulator/quantization.py, which imports TensorFlow (this module must not:
# loading a HAR does not need it); tests/test_load_validation.py checks that they agree.
BIAS_DTYPES = {"single_scale_decomposition": np.int8, "double_scale_initialization": np.int16}

M_MIN, M_MAX = 1 << (MANTISSA_BITS - 1), (1 << MANTISSA_BITS) - 1
ACC_LIMIT = 1 << (ACC_LIMIT_BITS - 1)   # |acc| < 2^47 (docs/numerics.md, "Constants")
FLOAT64_EXACT_ACC = 1 << 38             # float64 accumulators: |acc| < 2^38 keeps acc * M exact

_KEY_RE = re.compile(r"^([^/]+)/([^/]+)/([^/]+):0$")
_KIND_NAMES = {KIND_CHIP: "on-chip layer", KIND_HOST: "host op", KIND_FOLDED: "folded normalization"}

# field -> meaning (docs/numerics.md, "Stored parameters"), for the messages
FIELD_DOC = {
    "kind": "0 on-chip layer, 1 host op (softmax / argmax), 2 folded normalization",
    "out_scale": "scale s of the output tensor", "out_zp": "zero point z of the output tensor",
    "out_bits": "width b of the output tensor (8 or 16)", "limvals": "s * (0 - z), s * (2^b - 1 - z)",
    "range": "calibrated [min, max] of the output", "q_w": "quantized weights",
    "s_w": "weight scale per group", "w_bits": "weight bits", "groups": "weight quantization groups",
    "bias_mantissa": "bias mantissa per channel", "bias_exponent": "bias exponent (B = mantissa * 2^e)",
    "s_acc": "accumulator scale per channel", "M": "rescale mantissa", "r": "rescale shift",
    "act_lo": "lower clamp code per channel", "act_hi": "upper clamp code per channel",
    "M_neg": "negative-side mantissa (leaky / PReLU)", "r_neg": "negative-side shift (leaky / PReLU)",
    "pre_scale": "scale of the 16-bit pre-activation", "pre_zp": "zero point of the 16-bit pre-activation",
    "pre_range": "calibrated [min, max] of the pre-activation", "lut": "activation table",
    "ew_mult": "operand multipliers A_a, A_b", "pool_counts": "distinct window counts",
    "norm_bias": "on-chip normalization bias B_c", "pad_code": "code of the pad constant",
}


class QuantizedParamsError(ParamsError):
    """Quantized params that do not fit the HN or the chip's numerics: a key of no layer, a
    missing or unknown field, a wrong dtype or shape, a value out of its range, or values that
    disagree with what they derive from. Attributes: source, layer (bare name or None), key."""

    def __init__(self, source: str, layer: str | None, key: str | None, message: str):
        self.source, self.layer, self.key = source, layer, key
        where = source
        if layer is not None:
            where += f": layer '{layer}'"
        if key is not None:
            where += f", key '{key}'" if layer is not None else f": key {key!r}"
        super().__init__(f"{where}: {message}")


def validate_quantized_params(hn: HNGraph, qp: Mapping[str, Any], source: str = "quantized params",
                              *, rederive: bool = True) -> dict[str, np.ndarray]:
    """Check stored quantized params against `hn` (module doc); return them as a dict of numpy
    arrays (the same arrays, keys in the same order). Raises QuantizedParamsError."""
    return _Checker(hn, qp, source, rederive).run()


# ==== geometry ===================================================================================

def _avgpool_counts(layer: Layer) -> np.ndarray:
    p = layer.params
    k, s = p["kernel_shape"][1:3], p["strides"][1:3]
    pads = spatial_pads(layer.input_shapes[0][1:3], k, s, (1, 1), p["padding"])
    return np.unique(pool_counts(layer.input_shapes[0][1:3], k, s, pads,
                                 bool(p.get("count_include_pad", False))))


# ==== the checker ===============================================================================

def _fmt(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    return str(v)


class _Checker:
    def __init__(self, hn: HNGraph, qp: Mapping[str, Any], source: str, rederive: bool):
        self.hn, self.qp, self.source, self.rederive = hn, qp, source, rederive
        self.net = hn.name
        self.fields: dict[str, dict[str, np.ndarray]] = {}
        self.kind: dict[str, int] = {}
        self.tq: dict[str, TensorQ] = {}

    # --- errors and access -------------------------------------------------------------------
    def key(self, layer: str, field: str) -> str:
        return f"{self.net}/{layer}/{field}:0"

    def fail(self, layer: str, field: str | None, message: str) -> QuantizedParamsError:
        return QuantizedParamsError(self.source, layer, self.key(layer, field) if field else None, message)

    def a(self, layer: str, field: str) -> np.ndarray:
        return self.fields[layer][field]

    def item(self, layer: str, field: str):
        return self.fields[layer][field].item()

    # --- the walk ----------------------------------------------------------------------------
    def run(self) -> dict[str, np.ndarray]:
        if not isinstance(self.qp, Mapping):
            raise QuantizedParamsError(self.source, None, None,
                                       f"expected a mapping of keys to numpy arrays, found "
                                       f"{type(self.qp).__name__}")
        out: dict[str, np.ndarray] = {}
        for key, v in self.qp.items():
            m = _KEY_RE.match(key) if isinstance(key, str) else None
            if m is None:
                raise QuantizedParamsError(self.source, None, key,
                                           "is not '<net>/<layer>/<field>:0' (docs/numerics.md, "
                                           "'Stored parameters')")
            net, layer, field = m.groups()
            if net != self.net:
                raise QuantizedParamsError(
                    self.source, None, key,
                    f"belongs to a network '{net}', but the HN is network '{self.net}': these "
                    f"quantized params are not this network's")
            if layer not in self.hn.layers:
                raise QuantizedParamsError(
                    self.source, layer, key,
                    f"network '{self.net}' has no layer '{layer}': the quantized params do not "
                    f"belong to this HN (another network, or an HN edited after quantization); "
                    f"quantize again (run_quantization_from_np)")
            if isinstance(v, np.generic):
                v = np.asarray(v)
            if not isinstance(v, np.ndarray):
                raise self.fail(layer, field, f"expected a numpy array, found {type(v).__name__}")
            self.fields.setdefault(layer, {})[field] = v
            out[key] = v
        self.configs = self._configs()
        self.host = {n: self._is_host(l) for n, l in self.hn.layers.items()}
        order = self.hn.topological()
        for layer in order:  # kinds first: a layer's tensor depends on its consumers' kinds
            self._kind(layer)
        for layer in order:
            self._layer(layer)
        return out

    def _kind(self, layer: Layer) -> None:
        name = layer.name
        if name not in self.fields:
            raise self.fail(name, "kind", f"missing, as every key of this {layer.type} layer: the "
                                          f"quantized params were made for another network or before "
                                          f"the HN was edited; quantize again (run_quantization_from_np)")
        if "kind" not in self.fields[name]:
            raise self.fail(name, "kind", f"missing: every layer has a 'kind' (int32 [], {FIELD_DOC['kind']})")
        self._dtype_shape(layer, "kind", (np.int32,), ())
        kind = int(self.item(name, "kind"))
        self._check_kind(layer, kind)
        self.kind[name] = kind

    def _layer(self, layer: Layer) -> None:
        name, kind = layer.name, self.kind[layer.name]
        have = self.fields[name]
        spec = self._spec(layer, kind)
        for f in have:
            if f not in spec:
                desc = f"a {layer.type} layer" + (f" with activation {layer.activation}"
                                                   if kind == KIND_CHIP and _act_unit_type(layer) else "")
                raise self.fail(name, f, f"is not a field of {desc} ({_KIND_NAMES[kind]}, kind {kind}); "
                                         f"expected only its fields {list(spec)}")
        for f, (dtypes, shape, required) in spec.items():
            if f not in have:
                if not required:
                    continue
                dt = " or ".join(np.dtype(d).name for d in dtypes)
                raise self.fail(name, f, f"missing: a {layer.type} layer ({_KIND_NAMES[kind]}) needs "
                                         f"'{f}' ({dt} {list(shape) if shape is not None else ''}: "
                                         f"{FIELD_DOC.get(f, f)})")
            self._dtype_shape(layer, f, dtypes, shape)
        if kind != KIND_CHIP:
            return
        for i in range(len(layer.input)):
            src = self._source(layer, i)
            if self.kind[src] != KIND_CHIP:
                raise self.fail(name, "kind", f"an on-chip layer, but its input '{src}' is a "
                                              f"{_KIND_NAMES[self.kind[src]]}: host ops may only feed "
                                              f"output layers")
        self._tensor(layer)
        self._layer_fields(layer)

    # --- kinds --------------------------------------------------------------------------------
    def _is_host(self, layer: Layer) -> bool:
        if layer.type in HOST_OPS:
            return True
        return layer.type == "output_layer" and self._is_host(self.hn.layers[layer.input[0]])

    def _foldable(self, layer: Layer) -> bool:
        """The HN allows folding this normalization (quantization's folding rule without the
        calibration-range condition)."""
        return normalization_fold_target(self.hn, layer) is not None

    def _check_kind(self, layer: Layer, kind: int) -> None:
        name = layer.name
        if kind not in _KIND_NAMES:
            raise self.fail(name, "kind", f"expected 0, 1 or 2 ({FIELD_DOC['kind']}), found {kind}")
        if self.host[name] and kind != KIND_HOST:
            raise self.fail(name, "kind", f"expected 1: a {layer.type} "
                                          f"{'after a host op ' if layer.type == 'output_layer' else ''}"
                                          f"runs on the host, found {kind}")
        if not self.host[name] and kind == KIND_HOST:
            raise self.fail(name, "kind", f"expected 0: only softmax / argmax (and the output layers "
                                          f"after them) run on the host, and this is a {layer.type}; found 1")
        if kind == KIND_FOLDED and not self._foldable(layer):
            raise self.fail(name, "kind", f"expected 0: a {layer.type} layer here cannot be a folded "
                                          f"normalization (only a normalization right after an input "
                                          f"layer, feeding one unpadded, ungrouped conv / dw / dense); "
                                          f"found 2")

    def _source(self, layer: Layer, i: int = 0) -> str:
        name = layer.input[i]
        while self.kind.get(name) == KIND_FOLDED:
            name = self.hn.layers[name].input[0]
        return name

    # --- which fields a layer has ---------------------------------------------------------------
    def _spec(self, layer: Layer, kind: int) -> dict[str, tuple[tuple, tuple | None, bool]]:
        """field -> (allowed dtypes, shape or None (checked later), required)."""
        spec: dict[str, tuple] = {"kind": ((np.int32,), (), True)}
        if kind != KIND_CHIP:
            return spec
        f32, f64, i32, i64 = (np.float32,), (np.float64,), (np.int32,), (np.int64,)

        def add(**fields):
            for k, (dt, shp) in fields.items():
                spec[k] = (dt, shp, True)

        add(out_scale=(f32, ()), out_zp=(i32, ()), out_bits=(i32, ()), limvals=(f32, (2,)),
            range=(f64, (2,)))
        t, p = layer.type, layer.params
        C = int(layer.output_shape[-1])
        if t in MAC_TYPES:
            add(q_w=((np.int8, np.int16), tuple(int(d) for d in p["kernel_shape"])), s_w=(f64, None),
                w_bits=(i32, ()), groups=(i32, ()), bias_mantissa=((np.int8, np.int16), (C,)),
                bias_exponent=(i32, ()))
        elif t in ("ew_add", "ew_sub"):
            add(ew_mult=(i64, (2,)))
        elif t == "normalization":
            add(norm_bias=(i64, (C,)))
        elif t == "pad":
            add(pad_code=(i32, ()))
        elif t == "avgpool":
            n = len(_avgpool_counts(layer))
            add(pool_counts=(i64, (n,)), M=(i32, (n,)), r=(i32, (n,)))
        elif t == "concat":  # present exactly for the inputs to requantize: checked with the values
            for i in range(len(layer.input)):
                spec[f"in{i}_M"] = (i32, (), False)
                spec[f"in{i}_r"] = (i32, (), False)
        if _act_unit_type(layer):
            add(s_acc=(f64, (C,)), M=(i32, (C,)), r=(i32, (C,)), act_lo=(i32, (C,)), act_hi=(i32, (C,)))
            if layer.activation in LUT_ACTS:
                add(pre_scale=(f32, ()), pre_zp=(i32, ()), pre_range=(f64, (2,)),
                    lut=((np.uint8, np.uint16), (LUT_SIZE,)))
            elif layer.activation in SLOPE_ACTS:
                add(M_neg=(i32, (C,)), r_neg=(i32, (C,)))
        return spec

    def _dtype_shape(self, layer: Layer, f: str, dtypes: tuple, shape: tuple | None) -> None:
        arr = self.a(layer.name, f)
        if not any(arr.dtype == np.dtype(d) for d in dtypes):
            want = " or ".join(np.dtype(d).name for d in dtypes)
            found = f"{arr.dtype}"
            if np.issubdtype(np.dtype(dtypes[0]), np.integer) and np.issubdtype(arr.dtype, np.floating):
                vals = arr.ravel()
                bad = vals[~np.isfinite(vals) | (vals != np.round(vals))] if vals.size else vals
                found += (f" holding the non-integral value {_fmt(bad[0])}" if bad.size else
                          " (integral values, but not stored as integers)")
            raise self.fail(layer.name, f, f"expected dtype {want} ({FIELD_DOC.get(f, f)}), found {found}")
        if shape is not None and tuple(arr.shape) != tuple(shape):
            raise self.fail(layer.name, f, f"expected shape {list(shape)} ({FIELD_DOC.get(f, f)} of a "
                                            f"{layer.type} layer with output {layer.output_shape}), "
                                            f"found {list(arr.shape)}")

    # --- value checks -----------------------------------------------------------------------------
    def _finite_positive(self, layer: str, f: str, what: str) -> None:
        v = self.a(layer, f).astype(np.float64).ravel()
        bad = np.flatnonzero(~np.isfinite(v) | (v <= 0))
        if bad.size:
            at = f" at index {int(bad[0])}" if self.a(layer, f).ndim else ""
            raise self.fail(layer, f, f"expected {what} (finite, > 0), found {_fmt(v[bad[0]])}{at}")

    def _int_range(self, layer: str, f: str, lo: int, hi: int, what: str) -> None:
        v = self.a(layer, f).astype(np.int64).ravel()
        bad = np.flatnonzero((v < lo) | (v > hi))
        if bad.size:
            at = f" at index {int(bad[0])}" if self.a(layer, f).ndim else ""
            raise self.fail(layer, f, f"expected {what} in [{lo}, {hi}], found {int(v[bad[0]])}{at}")

    def _range_pair(self, layer: str, f: str) -> None:
        lo, hi = (float(x) for x in self.a(layer, f))
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
            raise self.fail(layer, f, f"expected a finite calibrated range [min, max] with min <= max, "
                                      f"found [{_fmt(lo)}, {_fmt(hi)}]")

    def _scale_zp(self, name: str, fs: str, fz: str, bits: int, what: str) -> TensorQ:
        self._finite_positive(name, fs, f"a {what} scale")
        s = float(self.item(name, fs))
        smin = float(np.float32(LIMVALS_MIN_WIDTH / qmax(bits)))
        if s < smin:
            raise self.fail(name, fs, f"expected a {what} scale >= {smin:.4g} (the narrowest calibrated "
                                      f"range, {LIMVALS_MIN_WIDTH:g}, over 2^{bits} - 1 codes), found {_fmt(s)}")
        self._int_range(name, fz, 0, qmax(bits), f"a {what} zero point (a code of a {bits}-bit tensor)")
        return TensorQ(s, int(self.item(name, fz)), bits)

    def _tensor(self, layer: Layer) -> None:
        name = layer.name
        bits = int(self.item(name, "out_bits"))
        if bits not in (8, 16):
            raise self.fail(name, "out_bits", f"expected 8 or 16 (the output tensor's width), found {bits}")
        tq = self._scale_zp(name, "out_scale", "out_zp", bits, "tensor")
        self._range_pair(name, "range")
        self.tq[name] = tq
        self._tensor_relations(layer, tq)
        # last: when one of s, z, limvals was changed, the checks above blame s or z first
        lim = self.a(name, "limvals")
        want = np.array(tq.limvals, np.float32)
        if not np.array_equal(lim, want):
            raise self.fail(name, "limvals", f"expected {want.tolist()} (s * (0 - z), s * (2^b - 1 - z) "
                                             f"of the stored s = {_fmt(tq.scale)}, z = {tq.zp}, b = {bits}), "
                                             f"found {lim.tolist()}")

    def _tensor_relations(self, layer: Layer, tq: TensorQ) -> None:
        """What ties a tensor to its inputs, its consumers and its precision mode."""
        name, t, bits = layer.name, layer.type, tq.bits
        if t in PASSTHROUGH:
            src = self._source(layer)
            ts = self.tq[src]
            for f, mine, theirs in (("out_bits", tq.bits, ts.bits), ("out_scale", tq.scale, ts.scale),
                                    ("out_zp", tq.zp, ts.zp)):
                if mine != theirs:
                    raise self.fail(name, f, f"expected {_fmt(theirs)}, the {f} of its input '{src}': a "
                                             f"{t} keeps its input's tensor (s, z, b); found {_fmt(mine)}")
            return
        cfg_bits = self._mode(layer)[0]
        if t == "concat":
            for i in range(len(layer.input)):
                src = self._source(layer, i)
                if self.tq[src].bits != bits:
                    raise self.fail(name, "out_bits", f"expected {self.tq[src].bits}, the width of its input "
                                                      f"{i} '{src}': a concat's inputs and output share one "
                                                      f"width; found {bits}")
        elif self.rederive and cfg_bits is not None and bits != cfg_bits:
            mode = self.configs[name]["precision_mode"]
            raise self.fail(name, "out_bits", f"expected {cfg_bits}, the output width of its precision mode "
                                              f"{mode} (layer quantization_params in the HN); found {bits}")
        folded = [c for c in layer.output if self.kind[c] == KIND_FOLDED]
        if t == "input_layer" and folded:
            if (tq.scale, tq.zp) != (1.0, 0):
                raise self.fail(name, "out_scale" if tq.scale != 1.0 else "out_zp",
                                f"expected the identity QP (scale 1, zero point 0): its consumer "
                                f"'{folded[0]}' is a folded normalization, so raw pixels go in; "
                                f"found scale {_fmt(tq.scale)}, zero point {tq.zp}")
            if self.rederive:
                lo, hi = (float(x) for x in self.a(name, "range"))
                if lo < 0 or hi > qmax(bits):
                    raise self.fail(name, "range", f"expected a range inside [0, {qmax(bits)}] (a "
                                                   f"normalization is folded only then), found "
                                                   f"[{_fmt(lo)}, {_fmt(hi)}]")
            return
        if self.rederive:
            self._rederive_tensor(name, "range", "out_scale", "out_zp", tq, "output")

    def _rederive_tensor(self, name: str, frange: str, fs: str, fz: str, tq: TensorQ, what: str) -> None:
        lo, hi = (float(x) for x in self.a(name, frange))
        try:
            d = tensor_params(lo, hi, tq.bits, name, what)
        except (QuantizationError, ValueError) as e:  # LimvalsOutSmallRangeError, ...
            raise self.fail(name, frange, f"no tensor derives from the stored range: {e}") from None
        for f, mine, want in ((fs, tq.scale, d.scale), (fz, tq.zp, d.zp)):
            if mine != want:
                raise self.fail(name, f, f"expected {_fmt(want)}, what the stored {frange} [{_fmt(lo)}, "
                                         f"{_fmt(hi)}] gives ({what} tensor, {tq.bits} bits; docs/numerics.md "
                                         f"'Tensors'), found {_fmt(mine)}: the value or the range was "
                                         f"changed after quantization")

    def _mode(self, layer: Layer) -> tuple[int | None, int | None]:
        m = PRECISION_MODE_RE.match(str(self.configs[layer.name]["precision_mode"]))
        if not m:
            return None, None
        return int(m.group(3) or m.group(1)), int(m.group(2))

    def _configs(self) -> dict[str, dict]:
        """The effective configuration of every layer (numerics.params.layer_config)."""
        return {l.name: layer_config(self.hn, l) for l in self.hn.layers.values()}

    # --- per type ---------------------------------------------------------------------------------
    def _check_rescale(self, name: str, fM: str, fr: str, dest_bits: int, signed: bool = False) -> None:
        M = self.a(name, fM).astype(np.int64).ravel()
        r = self.a(name, fr).astype(np.int64).ravel()
        rmin = SHIFT_MIN[dest_bits]
        zero = (M == 0) & (r == 0) if signed else np.zeros(M.shape, bool)
        absM = np.abs(M) if signed else M
        bad = np.flatnonzero(~zero & ((absM < M_MIN) | (absM > M_MAX)))
        if bad.size:
            i = int(bad[0])
            at = f" at index {i}" if self.a(name, fM).ndim else ""
            also = "; or M = 0 with r = 0" if signed else ""
            raise self.fail(name, fM, f"expected {'signed ' if signed else ''}mantissas with |M| in "
                                      f"[{M_MIN}, {M_MAX}] (15 bits, normalized{also}; docs/numerics.md "
                                      f"'The activation unit'), found {int(M[i])}{at}")
        bad = np.flatnonzero(~zero & ((r < rmin) | (r > SHIFT_MAX)))
        if bad.size:
            i = int(bad[0])
            at = f" at index {i}" if self.a(name, fr).ndim else ""
            raise self.fail(name, fr, f"expected shifts in [{rmin}, {SHIFT_MAX}] (a {dest_bits}-bit "
                                      f"destination; docs/numerics.md 'The activation unit'), found "
                                      f"{int(r[i])}{at}")

    def _rederived_rescale(self, name: str, fM: str, fr: str, m, dest_bits: int, what: str,
                           signed: bool = False) -> None:
        try:
            M, r = (derive_signed_rescale if signed else derive_rescale)(m, dest_bits, name, what)
        except (ValueError, ArithmeticError) as e:
            raise self.fail(name, fM, f"the stored scales give no valid {what}: {e}") from None
        for f, want in ((fM, M), (fr, r)):
            have = self.a(name, f).astype(np.int64).ravel()
            want = np.broadcast_to(np.asarray(want, np.int64).ravel(), have.shape)
            bad = np.flatnonzero(have != want)
            if bad.size:
                i = int(bad[0])
                raise self.fail(name, f, f"expected {int(want[i])} at index {i}, the {what} the stored "
                                         f"scales derive (docs/numerics.md 'The activation unit'), found "
                                         f"{int(have[i])}: the value or a scale was changed after quantization")

    def _act_unit(self, layer: Layer, s_acc_want) -> None:
        name, act = layer.name, layer.activation
        out = self.tq[name]
        self._finite_positive(name, "s_acc", "accumulator scales")
        s_acc = self.a(name, "s_acc")
        C = s_acc.shape[0]
        if self.rederive and s_acc_want is not None:
            want = np.broadcast_to(np.asarray(s_acc_want, np.float64), (C,))
            bad = np.flatnonzero(s_acc != want)
            if bad.size:
                i = int(bad[0])
                raise self.fail(name, "s_acc", f"expected {_fmt(want[i])} at index {i}, the accumulator scale "
                                               f"its input and weight scales give, found {_fmt(s_acc[i])}")
        if act in LUT_ACTS:
            pre = self._scale_zp(name, "pre_scale", "pre_zp", PRE_ACT_BITS, "pre-activation")
            self._range_pair(name, "pre_range")
            if self.rederive:
                self._rederive_tensor(name, "pre_range", "pre_scale", "pre_zp", pre, "pre-activation")
            lut = self.a(name, "lut")
            want_dt = np.uint8 if out.bits == 8 else np.uint16
            if lut.dtype != want_dt:
                raise self.fail(name, "lut", f"expected dtype {np.dtype(want_dt).name} (codes of the "
                                             f"{out.bits}-bit output), found {lut.dtype}")
            self._check_rescale(name, "M", "r", PRE_ACT_BITS)
            if self.rederive:
                self._rederived_rescale(name, "M", "r", s_acc / np.float64(pre.scale), PRE_ACT_BITS,
                                        "pre-activation rescale")
        else:
            self._check_rescale(name, "M", "r", out.bits)
            if self.rederive:
                self._rederived_rescale(name, "M", "r", s_acc / np.float64(out.scale), out.bits,
                                        "output rescale")
            if act in SLOPE_ACTS:
                self._check_rescale(name, "M_neg", "r_neg", out.bits, signed=True)
                if self.rederive and act == "leaky":
                    a = np.float64(layer.params.get("leaky_alpha", 0.2))
                    self._rederived_rescale(name, "M_neg", "r_neg", a * s_acc / np.float64(out.scale),
                                            out.bits, "negative-side rescale", signed=True)
        self._int_range(name, "act_lo", 0, qmax(out.bits), f"clamp codes of a {out.bits}-bit output")
        self._int_range(name, "act_hi", 0, qmax(out.bits), f"clamp codes of a {out.bits}-bit output")
        lo, hi = self.a(name, "act_lo"), self.a(name, "act_hi")
        bad = np.flatnonzero(lo > hi)
        if bad.size:
            i = int(bad[0])
            raise self.fail(name, "act_hi", f"expected act_hi >= act_lo, found {int(hi[i])} < {int(lo[i])} "
                                            f"at index {i}")
        if self.rederive:
            wlo, whi = 0, qmax(out.bits)
            if act in ("relu", "relu6"):
                wlo = out.zp
            if act == "relu6":
                whi = relu6_hi_code(out.zp, out.scale, out.bits)
            for f, arr, want in (("act_lo", lo, wlo), ("act_hi", hi, whi)):
                bad = np.flatnonzero(arr != want)
                if bad.size:
                    i = int(bad[0])
                    raise self.fail(name, f, f"expected {want} (activation {act} on an output with zero "
                                             f"point {out.zp}, {out.bits} bits), found {int(arr[i])} at index {i}")

    def _mac(self, layer: Layer) -> np.ndarray:
        name, t = layer.name, layer.type
        tin = self.tq[self._source(layer)]
        cfg = self.configs[name]
        wb = int(self.item(name, "w_bits"))
        if wb not in (4, 8, 16):
            raise self.fail(name, "w_bits", f"expected 4, 8 or 16, found {wb}")
        _, cfg_wb = self._mode(layer)
        if self.rederive and cfg_wb is not None and wb != cfg_wb:
            raise self.fail(name, "w_bits", f"expected {cfg_wb}, the weight bits of its precision mode "
                                            f"{cfg['precision_mode']}, found {wb}")
        qw = self.a(name, "q_w")
        want_dt = np.int8 if wb <= 8 else np.int16
        if qw.dtype != want_dt:
            raise self.fail(name, "q_w", f"expected dtype {np.dtype(want_dt).name} for {wb}-bit weights, "
                                         f"found {qw.dtype}")
        lim = (1 << (wb - 1)) - 1
        self._int_range(name, "q_w", -lim, lim, f"{wb}-bit weights")
        g = int(self.item(name, "groups"))
        if not 1 <= g <= 4:
            raise self.fail(name, "groups", f"expected 1..4 weight quantization groups, found {g}")
        if self.rederive and g != int(cfg["quantization_groups"]):
            raise self.fail(name, "groups", f"expected {int(cfg['quantization_groups'])} (quantization_groups "
                                            f"in the HN), found {g}")
        sw = self.a(name, "s_w")
        if tuple(sw.shape) != (g,):
            raise self.fail(name, "s_w", f"expected shape [{g}] (one scale per group, groups = {g}), "
                                         f"found {list(sw.shape)}")
        self._finite_positive(name, "s_w", "weight scales")
        mant = self.a(name, "bias_mantissa")
        kbits = 8 if mant.dtype == np.int8 else 16
        if self.rederive:
            want_b = BIAS_DTYPES.get(str(cfg["bias_mode"]))
            if want_b is not None and mant.dtype != want_b:
                raise self.fail(name, "bias_mantissa", f"expected dtype {np.dtype(want_b).name} (bias_mode "
                                                       f"{cfg['bias_mode']}), found {mant.dtype}")
        mmax = (1 << (kbits - 1)) - 1
        self._int_range(name, "bias_mantissa", -mmax, mmax, f"{kbits}-bit bias mantissas")
        self._int_range(name, "bias_exponent", 0, ACC_LIMIT_BITS - 1, "a bias exponent")
        e = int(self.item(name, "bias_exponent"))
        q2d = qw.astype(np.int64)
        q2d = q2d.reshape(q2d.shape[0] * q2d.shape[1], -1) if t == "dw" else q2d.reshape(-1, q2d.shape[-1])
        mac = abs_weight_sum(q2d) * tin.max_centred
        if mac >= ACC_LIMIT:
            raise self.fail(name, "q_w", f"the accumulator could reach {mac:,} >= 2^{ACC_LIMIT_BITS - 1} "
                                         f"(sum |q_w| times max |q - z| of the input)")
        bmax = (int(np.abs(mant.astype(np.int64)).max()) if mant.size else 0) << e
        if mac + bmax >= ACC_LIMIT:
            raise self.fail(name, "bias_exponent", f"the accumulator could reach {mac + bmax:,} >= "
                                                   f"2^{ACC_LIMIT_BITS - 1} (weights {mac:,} plus bias "
                                                   f"{bmax:,} = mantissa * 2^{e})")
        C = q2d.shape[1]
        return np.float64(tin.scale) * sw[channel_groups(C, g)]

    def _layer_fields(self, layer: Layer) -> None:
        name, t, p = layer.name, layer.type, layer.params
        out = self.tq[name]
        if t in ("input_layer", "output_layer", "maxpool", "reduce_max", "reshape", "slice",
                 "space_to_depth", "depth_to_space", "feature_shuffle"):
            return
        tin = self.tq[self._source(layer)]
        s_in = np.float64(tin.scale)
        if t in MAC_TYPES:
            self._act_unit(layer, self._mac(layer))
        elif t == "activation":
            self._act_unit(layer, s_in)
        elif t in ("ew_add", "ew_sub"):
            tb = self.tq[self._source(layer, 1)]
            bits = max(tin.bits, tb.bits)
            tbits = EW_EXTRA_BITS[bits]
            self._int_range(name, "ew_mult", 0, 1 << tbits, f"operand multipliers (t = {tbits})")
            A = self.a(name, "ew_mult").astype(np.int64)
            if int(A.max()) != 1 << tbits:
                raise self.fail(name, "ew_mult", f"expected the larger multiplier to be 2^{tbits} = "
                                                 f"{1 << tbits} (docs/numerics.md 'Other layers'), found {A.tolist()}")
            bound = int(A[0]) * tin.max_centred + int(A[1]) * tb.max_centred
            if bound >= ACC_LIMIT:
                raise self.fail(name, "ew_mult", f"the accumulator could reach {bound:,} >= 2^{ACC_LIMIT_BITS - 1}")
            want_A, s_acc = ew_multipliers([tin.scale, tb.scale], bits)
            if self.rederive and not np.array_equal(A, want_A):
                raise self.fail(name, "ew_mult", f"expected {want_A.tolist()}, what the operands' scales "
                                                 f"derive, found {A.tolist()}")
            self._act_unit(layer, s_acc)
        elif t == "ew_mult":
            tb = self.tq[self._source(layer, 1)]
            self._act_unit(layer, s_in * np.float64(tb.scale))
        elif t == "concat":
            for i in range(len(layer.input)):
                fM, fr = f"in{i}_M", f"in{i}_r"
                src = self._source(layer, i)
                ti = self.tq[src]
                differ = (ti.scale, ti.zp) != (out.scale, out.zp)
                for f in (fM, fr):
                    if differ and f not in self.fields[name]:
                        raise self.fail(name, f, f"missing: input {i} '{src}' has scale {_fmt(ti.scale)}, "
                                                 f"zero point {ti.zp} and the output scale {_fmt(out.scale)}, "
                                                 f"zero point {out.zp}, so it is requantized with "
                                                 f"in{i}_M, in{i}_r (int32 [])")
                    if not differ and f in self.fields[name]:
                        raise self.fail(name, f, f"unexpected: input {i} '{src}' already has the output's "
                                                 f"scale and zero point, so it is copied, not requantized")
                if not differ:
                    continue
                self._check_rescale(name, fM, fr, out.bits)
                if self.rederive:
                    self._rederived_rescale(name, fM, fr, np.float64(ti.scale) / np.float64(out.scale),
                                            out.bits, f"requantization of input {i}")
        elif t == "avgpool":
            vals = _avgpool_counts(layer)
            pc = self.a(name, "pool_counts")
            if not np.array_equal(pc, vals):
                raise self.fail(name, "pool_counts", f"expected {vals.tolist()}, the distinct window counts "
                                                     f"of this pool's geometry, found {pc.tolist()}")
            self._check_rescale(name, "M", "r", out.bits)
            if self.rederive:
                self._rederived_rescale(name, "M", "r", s_in / (vals * np.float64(out.scale)), out.bits,
                                        "average rescale")
        elif t == "global_avg_pool":
            hw = layer.input_shapes[0][1] * layer.input_shapes[0][2]
            self._act_unit(layer, s_in / hw)
        elif t == "reduce_sum":
            self._act_unit(layer, s_in)
        elif t == "resize":
            if p["method"] == "bilinear":
                self._act_unit(layer, s_in * 2.0 ** -16)
        elif t == "normalization":
            B = self.a(name, "norm_bias")
            bound = (int(np.abs(B).max()) if B.size else 0) + 256 * tin.max_centred
            if bound >= FLOAT64_EXACT_ACC:
                raise self.fail(name, "norm_bias", f"the accumulator (q - z) * 2^8 + B could reach {bound:,} "
                                                   f">= 2^38, beyond the exact float64 rescale")
            self._act_unit(layer, None)
        elif t == "pad":
            self._int_range(name, "pad_code", 0, qmax(out.bits), f"a code of a {out.bits}-bit tensor")
            if self.rederive:
                c = float(p.get("constant_value", 0.0))
                want = int(np.clip(rhe(c / np.float64(out.scale)) + out.zp, 0, qmax(out.bits)))
                have = int(self.item(name, "pad_code"))
                if have != want:
                    raise self.fail(name, "pad_code", f"expected {want}, the code of the constant {c} on the "
                                                      f"output's grid, found {have}")


def _act_unit_type(layer: Layer) -> bool:
    """Whether the layer's on-chip form ends in the activation unit (s_acc, M, r, clamps...)."""
    t = layer.type
    return (t in MAC_TYPES or t in ("activation", "ew_add", "ew_sub", "ew_mult", "global_avg_pool",
                                    "reduce_sum", "normalization")
            or (t == "resize" and layer.params.get("method") == "bilinear"))


__all__ = ["validate_quantized_params", "QuantizedParamsError"]
