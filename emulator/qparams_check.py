"""Quantized params checked against the HN when they are loaded (a HAR's quantized.npz), so that a
file that does not belong to the network, or whose numbers the chip cannot hold, fails at once
with a named error instead of a KeyError, a TensorFlow error or a silently wrong output.

`validate_quantized_params(hn, qp, source)` checks every key of the stored params
(docs/numerics.md, "Stored parameters") against the HN:

- every key is "<net>/<layer>/<field>:0" of this network and of one of its layers, and the field
  is one that layer's placement, type and activation have (each layer kind lists its fields);
  no field is missing;
- every array has the dtype and shape the derivation (emulator/quantization/) gives it;
- placements ("kind"): host ops (softmax / argmax, and the output layers after them) are
  'host', nothing else is; 'folded' only where the HN allows the folding; version 1 int32 codes
  (0 chip, 1 host, 2 folded) are read as those names;
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

The walk and the checks shared by every kind are here; what is particular to a layer type is its
kind's `fields` and `check` (emulator/layers/). Errors are `QuantizedParamsError` (a ParamsError, so an EmulatorError and a ValueError) naming
the source, the layer and the key, what was expected and what was found.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from .errors import ParamsError
from .hn import HNGraph, Layer, normalization_fold_target
from .layers import activation_unit, kind_of
from .numerics.params import LIMVALS_MIN_WIDTH, MANTISSA_BITS, SHIFT_MAX, SHIFT_MIN, TensorQ, \
    derive_rescale, derive_signed_rescale, qmax, tensor_params
from .quant_errors import QuantizationError
from .quantization.config import LayerConfig, layer_config
from .quantization.keys import KIND_DOC, Placement, qkey, read_placement, split_key

M_MIN, M_MAX = 1 << (MANTISSA_BITS - 1), (1 << MANTISSA_BITS) - 1

# field -> meaning (docs/numerics.md, "Stored parameters"), for the messages
FIELD_DOC = {
    "kind": KIND_DOC,
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
    "act_clip": "per-channel upper clip of a ReLU6 (float, after equalization)",
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


# ==== the checker ===============================================================================

class _Checker:
    """The walk, and the checks the layer kinds call from their `check` (layers/base.py)."""

    def __init__(self, hn: HNGraph, qp: Mapping[str, Any], source: str, rederive: bool):
        self.hn, self.qp, self.source_name, self.rederive = hn, qp, source, rederive
        self.net = hn.name
        self.fields: dict[str, dict[str, np.ndarray]] = {}
        self.placement: dict[str, Placement] = {}
        self.tq: dict[str, TensorQ] = {}
        self.configs: dict[str, LayerConfig] = {}

    # --- errors and access -------------------------------------------------------------------
    def fail(self, layer: str, field: str | None, message: str) -> QuantizedParamsError:
        return QuantizedParamsError(self.source_name, layer, qkey(self.net, layer, field) if field else None,
                                    message)

    def a(self, layer: str, field: str) -> np.ndarray:
        return self.fields[layer][field]

    def item(self, layer: str, field: str):
        return self.fields[layer][field].item()

    @staticmethod
    def fmt(v: Any) -> str:
        if isinstance(v, (float, np.floating)):
            return repr(float(v))
        return str(v)

    def source(self, layer: Layer, i: int = 0) -> str:
        name = layer.input[i]
        while self.placement.get(name) == Placement.FOLDED:
            name = self.hn.layers[name].input[0]
        return name

    # --- the walk ----------------------------------------------------------------------------
    def run(self) -> dict[str, np.ndarray]:
        if not isinstance(self.qp, Mapping):
            raise QuantizedParamsError(self.source_name, None, None,
                                       f"expected a mapping of keys to numpy arrays, found "
                                       f"{type(self.qp).__name__}")
        out: dict[str, np.ndarray] = {}
        for key, v in self.qp.items():
            parts = split_key(key)
            if parts is None:
                raise QuantizedParamsError(self.source_name, None, key,
                                           "is not '<net>/<layer>/<field>:0' (docs/numerics.md, "
                                           "'Stored parameters')")
            net, layer, field = parts
            if net != self.net:
                raise QuantizedParamsError(
                    self.source_name, None, key,
                    f"belongs to a network '{net}', but the HN is network '{self.net}': these "
                    f"quantized params are not this network's")
            if layer not in self.hn.layers:
                raise QuantizedParamsError(
                    self.source_name, layer, key,
                    f"network '{self.net}' has no layer '{layer}': the quantized params do not "
                    f"belong to this HN (another network, or an HN edited after quantization); "
                    f"quantize again (run_quantization_from_np)")
            if isinstance(v, np.generic):
                v = np.asarray(v)
            if not isinstance(v, np.ndarray):
                raise self.fail(layer, field, f"expected a numpy array, found {type(v).__name__}")
            self.fields.setdefault(layer, {})[field] = v
            out[key] = v
        self.configs = {l.name: layer_config(self.hn, l) for l in self.hn.layers.values()}
        self.host = {n: self._is_host(l) for n, l in self.hn.layers.items()}
        order = self.hn.topological()
        for layer in order:  # placements first: a layer's tensor depends on its consumers'
            self._placement(layer)
        for layer in order:
            self._layer(layer)
        return out

    def _placement(self, layer: Layer) -> None:
        name = layer.name
        if name not in self.fields:
            raise self.fail(name, "kind", f"missing, as every key of this {layer.type} layer: the "
                                          f"quantized params were made for another network or before "
                                          f"the HN was edited; quantize again (run_quantization_from_np)")
        if "kind" not in self.fields[name]:
            raise self.fail(name, "kind", f"missing: every layer has a 'kind' ({FIELD_DOC['kind']})")
        try:
            p = read_placement(self.a(name, "kind"))
        except ValueError as e:
            raise self.fail(name, "kind", str(e)) from None
        if self.host[name] and p != Placement.HOST:
            raise self.fail(name, "kind", f"expected 'host': a {layer.type} "
                                          f"{'after a host op ' if layer.type == 'output_layer' else ''}"
                                          f"runs on the host, found '{p.value}'")
        if not self.host[name] and p == Placement.HOST:
            raise self.fail(name, "kind", f"expected 'chip': only softmax / argmax (and the output layers "
                                          f"after them) run on the host, and this is a {layer.type}; "
                                          f"found 'host'")
        if p == Placement.FOLDED and normalization_fold_target(self.hn, layer) is None:
            raise self.fail(name, "kind", f"expected 'chip': a {layer.type} layer here cannot be a folded "
                                          f"normalization (only a normalization right after an input "
                                          f"layer, feeding one unpadded, ungrouped conv / dw / dense); "
                                          f"found 'folded'")
        self.placement[name] = p

    def _is_host(self, layer: Layer) -> bool:
        return kind_of(layer).host or (layer.type == "output_layer"
                                       and self._is_host(self.hn.layers[layer.input[0]]))

    def _layer(self, layer: Layer) -> None:
        name, p = layer.name, self.placement[layer.name]
        kind = kind_of(layer)
        have = self.fields[name]
        spec = self._spec(layer, p)
        for f in have:
            if f not in spec:
                desc = f"a {layer.type} layer" + (f" with activation {layer.activation}"
                                                   if p == Placement.CHIP and kind.has_act_unit(layer) else "")
                raise self.fail(name, f, f"is not a field of {desc} ({p.description}); "
                                         f"expected only its fields {list(spec)}")
        for f, (dtypes, shape, required) in spec.items():
            if f not in have:
                if not required:
                    continue
                dt = " or ".join(np.dtype(d).name for d in dtypes)
                raise self.fail(name, f, f"missing: a {layer.type} layer ({p.description}) needs "
                                         f"'{f}' ({dt} {list(shape) if shape is not None else ''}: "
                                         f"{FIELD_DOC.get(f, f)})")
            self._dtype_shape(layer, f, dtypes, shape)
        if p != Placement.CHIP:
            return
        for i in range(len(layer.input)):
            src = self.source(layer, i)
            if self.placement[src] != Placement.CHIP:
                raise self.fail(name, "kind", f"an on-chip layer, but its input '{src}' is a "
                                              f"{self.placement[src].description}: host ops may only "
                                              f"feed output layers")
        self._tensor(layer)
        if layer.type != "input_layer":
            kind.check(self, layer)

    # --- which fields a layer has ---------------------------------------------------------------
    def _spec(self, layer: Layer, p: Placement) -> dict[str, tuple[tuple, tuple | None, bool]]:
        """field -> (allowed dtypes, shape or None (checked later), required)."""
        spec: dict[str, tuple] = {"kind": ((), None, True)}  # checked by read_placement
        if p != Placement.CHIP:
            return spec
        f32, f64, i32 = (np.float32,), (np.float64,), (np.int32,)
        spec.update(out_scale=(f32, (), True), out_zp=(i32, (), True), out_bits=(i32, (), True),
                    limvals=(f32, (2,), True), range=(f64, (2,), True))
        kind = kind_of(layer)
        spec.update(kind.fields(layer))
        if kind.has_act_unit(layer):
            spec.update(activation_unit.fields(layer))
        return spec

    def _dtype_shape(self, layer: Layer, f: str, dtypes: tuple, shape: tuple | None) -> None:
        if not dtypes:
            return
        arr = self.a(layer.name, f)
        if not any(arr.dtype == np.dtype(d) for d in dtypes):
            want = " or ".join(np.dtype(d).name for d in dtypes)
            found = f"{arr.dtype}"
            if np.issubdtype(np.dtype(dtypes[0]), np.integer) and np.issubdtype(arr.dtype, np.floating):
                vals = arr.ravel()
                bad = vals[~np.isfinite(vals) | (vals != np.round(vals))] if vals.size else vals
                found += (f" holding the non-integral value {self.fmt(bad[0])}" if bad.size else
                          " (integral values, but not stored as integers)")
            raise self.fail(layer.name, f, f"expected dtype {want} ({FIELD_DOC.get(f, f)}), found {found}")
        if shape is not None and tuple(arr.shape) != tuple(shape):
            raise self.fail(layer.name, f, f"expected shape {list(shape)} ({FIELD_DOC.get(f, f)} of a "
                                            f"{layer.type} layer with output {layer.output_shape}), "
                                            f"found {list(arr.shape)}")

    # --- value checks (the kinds call these) ------------------------------------------------------
    def finite_positive(self, layer: str, f: str, what: str) -> None:
        v = self.a(layer, f).astype(np.float64).ravel()
        bad = np.flatnonzero(~np.isfinite(v) | (v <= 0))
        if bad.size:
            at = f" at index {int(bad[0])}" if self.a(layer, f).ndim else ""
            raise self.fail(layer, f, f"expected {what} (finite, > 0), found {self.fmt(v[bad[0]])}{at}")

    def int_range(self, layer: str, f: str, lo: int, hi: int, what: str) -> None:
        v = self.a(layer, f).astype(np.int64).ravel()
        bad = np.flatnonzero((v < lo) | (v > hi))
        if bad.size:
            at = f" at index {int(bad[0])}" if self.a(layer, f).ndim else ""
            raise self.fail(layer, f, f"expected {what} in [{lo}, {hi}], found {int(v[bad[0]])}{at}")

    def range_pair(self, layer: str, f: str) -> None:
        lo, hi = (float(x) for x in self.a(layer, f))
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
            raise self.fail(layer, f, f"expected a finite calibrated range [min, max] with min <= max, "
                                      f"found [{self.fmt(lo)}, {self.fmt(hi)}]")

    def scale_zp(self, name: str, fs: str, fz: str, bits: int, what: str) -> TensorQ:
        self.finite_positive(name, fs, f"a {what} scale")
        s = float(self.item(name, fs))
        smin = float(np.float32(LIMVALS_MIN_WIDTH / qmax(bits)))
        if s < smin:
            raise self.fail(name, fs, f"expected a {what} scale >= {smin:.4g} (the narrowest calibrated "
                                      f"range, {LIMVALS_MIN_WIDTH:g}, over 2^{bits} - 1 codes), found {self.fmt(s)}")
        self.int_range(name, fz, 0, qmax(bits), f"a {what} zero point (a code of a {bits}-bit tensor)")
        return TensorQ(s, int(self.item(name, fz)), bits)

    def _tensor(self, layer: Layer) -> None:
        name = layer.name
        bits = int(self.item(name, "out_bits"))
        if bits not in (8, 16):
            raise self.fail(name, "out_bits", f"expected 8 or 16 (the output tensor's width), found {bits}")
        tq = self.scale_zp(name, "out_scale", "out_zp", bits, "tensor")
        self.range_pair(name, "range")
        self.tq[name] = tq
        self._tensor_relations(layer, tq)
        # last: when one of s, z, limvals was changed, the checks above blame s or z first
        lim = self.a(name, "limvals")
        want = np.array(tq.limvals, np.float32)
        if not np.array_equal(lim, want):
            raise self.fail(name, "limvals", f"expected {want.tolist()} (s * (0 - z), s * (2^b - 1 - z) "
                                             f"of the stored s = {self.fmt(tq.scale)}, z = {tq.zp}, b = {bits}), "
                                             f"found {lim.tolist()}")

    def _tensor_relations(self, layer: Layer, tq: TensorQ) -> None:
        """What ties a tensor to its inputs, its consumers and its precision mode."""
        name, kind = layer.name, kind_of(layer)
        if kind.passthrough:
            src = self.source(layer)
            ts = self.tq[src]
            for f, mine, theirs in (("out_bits", tq.bits, ts.bits), ("out_scale", tq.scale, ts.scale),
                                    ("out_zp", tq.zp, ts.zp)):
                if mine != theirs:
                    raise self.fail(name, f, f"expected {self.fmt(theirs)}, the {f} of its input '{src}': a "
                                             f"{layer.type} keeps its input's tensor (s, z, b); found {self.fmt(mine)}")
            return
        kind.check_width(self, layer, tq)
        folded = [c for c in layer.output if self.placement[c] == Placement.FOLDED]
        if layer.type == "input_layer" and folded:
            if (tq.scale, tq.zp) != (1.0, 0):
                raise self.fail(name, "out_scale" if tq.scale != 1.0 else "out_zp",
                                f"expected the identity QP (scale 1, zero point 0): its consumer "
                                f"'{folded[0]}' is a folded normalization, so raw pixels go in; "
                                f"found scale {self.fmt(tq.scale)}, zero point {tq.zp}")
            if self.rederive:
                lo, hi = (float(x) for x in self.a(name, "range"))
                if lo < 0 or hi > qmax(tq.bits):
                    raise self.fail(name, "range", f"expected a range inside [0, {qmax(tq.bits)}] (a "
                                                   f"normalization is folded only then), found "
                                                   f"[{self.fmt(lo)}, {self.fmt(hi)}]")
            return
        if self.rederive:
            self.rederive_tensor(name, "range", "out_scale", "out_zp", tq, "output")

    def rederive_tensor(self, name: str, frange: str, fs: str, fz: str, tq: TensorQ, what: str) -> None:
        lo, hi = (float(x) for x in self.a(name, frange))
        try:
            d = tensor_params(lo, hi, tq.bits, name, what)
        except (QuantizationError, ValueError) as e:  # LimvalsOutSmallRangeError, ...
            raise self.fail(name, frange, f"no tensor derives from the stored range: {e}") from None
        for f, mine, want in ((fs, tq.scale, d.scale), (fz, tq.zp, d.zp)):
            if mine != want:
                raise self.fail(name, f, f"expected {self.fmt(want)}, what the stored {frange} [{self.fmt(lo)}, "
                                         f"{self.fmt(hi)}] gives ({what} tensor, {tq.bits} bits; docs/numerics.md "
                                         f"'Tensors'), found {self.fmt(mine)}: the value or the range was "
                                         f"changed after quantization")

    def check_rescale(self, name: str, fM: str, fr: str, dest_bits: int, signed: bool = False) -> None:
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

    def rederived_rescale(self, name: str, fM: str, fr: str, m, dest_bits: int, what: str,
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


__all__ = ["validate_quantized_params", "QuantizedParamsError"]
