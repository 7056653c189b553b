"""The HN: the network graph as Hailo's toolchain writes it (JSON), loaded into plain objects.

This module is the contract between the importers, the float emulation and the quantizer: every
part of the emulator reads and writes networks through `HNGraph` and `Layer`. Keys are those of
docs/file-formats.md; per-type `params` are listed in LAYER_PARAMS below.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import json
import math
import numbers
import re
from typing import Any

from . import limits
from .errors import HNError
from .limits import LimitError

# Per layer type: the keys its `params` may hold (validation rejects others).
# Shapes are NHWC; kernels HWIO (dense [cin, cout], dw [kh, kw, cin, multiplier],
# deconv [kh, kw, cin, cout]); strides / dilations / pool kernels [1, h, w, 1];
# padding VALID | SAME (symmetric) | SAME_TENSORFLOW (TF's: the extra row/column at the end).
# Tensors of rank 4 are [-1, H, W, C]; a dense layer flattens its input (row-major over H, W, C)
# and outputs [-1, C]; other ranks (e.g. BlazeFace's [-1, 896, 16]) appear only around
# reshape / concat / activation / ew layers and outputs.
# `activation`: see ACTIVATIONS (leaky: `leaky_alpha`; prelu: per-channel alphas in the NPZ key
# `alpha:0`).
LAYER_PARAMS: dict[str, tuple[str, ...]] = {
    "input_layer": (),
    "output_layer": (),
    "conv": ("kernel_shape", "strides", "dilations", "padding", "groups", "activation",
             "leaky_alpha", "elementwise_add", "batch_norm"),  # elementwise_add: false only
    "dw": ("kernel_shape", "strides", "dilations", "padding", "activation", "leaky_alpha",
           "batch_norm"),
    "deconv": ("kernel_shape", "strides", "padding", "activation", "leaky_alpha", "batch_norm"),
    "dense": ("kernel_shape", "activation", "leaky_alpha", "batch_norm"),
    "activation": ("activation", "leaky_alpha"),  # a standalone activation (prelu: alpha:0)
    "maxpool": ("kernel_shape", "strides", "padding"),
    "avgpool": ("kernel_shape", "strides", "padding", "count_include_pad"),
    "global_avg_pool": (),
    "concat": ("concat_axis",),  # index into the full shape, batch = 0 (channels of NHWC = 3)
    "slice": ("begin", "end"),  # per non-batch axis ([h, w, c] for NHWC); a plain crop, step 1
    "resize": ("method", "output_shape", "align_corners", "half_pixel"),  # method nearest|bilinear
    "ew_add": ("activation", "leaky_alpha"),
    "ew_sub": ("activation", "leaky_alpha"),
    "ew_mult": ("activation", "leaky_alpha"),
    "normalization": (),  # mean / std per channel in the NPZ keys mean:0 / std:0
    "pad": ("pads", "constant_value"),  # pads [[top, bottom], [left, right], [front, back]]
    "reshape": ("output_shape",),  # [-1, ...]; flatten is a reshape to [-1, n]
    "space_to_depth": ("block_size",),
    "depth_to_space": ("block_size", "mode"),  # mode DCR (TF) | CRD
    "feature_shuffle": ("groups",),
    "reduce_max": ("axes",),  # indices into the full shape; kept as 1 or dropped per output_shape
    "reduce_sum": ("axes",),
    "softmax": ("axis",),  # run on the host in float when at an output
    "argmax": ("axis",),  # index as float32; the axis kept as 1 or dropped per output_shape
}

ACTIVATIONS = ("linear", "relu", "relu6", "leaky", "prelu", "sigmoid", "tanh", "silu", "hardswish",
               "hardsigmoid", "gelu", "gelu_tanh", "elu", "exp", "mish", "softplus")

# Params a layer type cannot do without (validation names the first one missing).
REQUIRED_PARAMS: dict[str, tuple[str, ...]] = {
    "conv": ("kernel_shape", "strides", "padding"),
    "dw": ("kernel_shape", "strides", "padding"),
    "deconv": ("kernel_shape", "strides", "padding"),
    "dense": ("kernel_shape",),
    "activation": ("activation",),
    "maxpool": ("kernel_shape", "strides", "padding"),
    "avgpool": ("kernel_shape", "strides", "padding"),
    "concat": ("concat_axis",),
    "slice": ("begin", "end"),
    "resize": ("method", "output_shape"),
    "pad": ("pads",),
    "reshape": ("output_shape",),
    "space_to_depth": ("block_size",),
    "depth_to_space": ("block_size",),
    "feature_shuffle": ("groups",),
    "reduce_max": ("axes",),
    "reduce_sum": ("axes",),
    "softmax": ("axis",),
    "argmax": ("axis",),
}

PADDINGS = ("VALID", "SAME", "SAME_TENSORFLOW")
MULTI_INPUT_TYPES = ("concat", "ew_add", "ew_sub", "ew_mult")
ONE_INPUT_TYPES = tuple(t for t in LAYER_PARAMS if t not in MULTI_INPUT_TYPES + ("input_layer",))
MAC_TYPES = ("conv", "dw", "deconv", "dense")  # layers with kernel:0 / bias:0


@dataclasses.dataclass
class Layer:
    name: str  # bare name, e.g. "conv1" (the HN key is "<net>/<name>")
    type: str
    input: list[str]  # bare names of producers, in operand order
    output: list[str]  # bare names of consumers
    input_shapes: list[list[int]]  # [-1, H, W, C] each
    output_shapes: list[list[int]]
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    original_names: list[str] = dataclasses.field(default_factory=list)
    quantization_params: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def output_shape(self) -> list[int]:
        return self.output_shapes[0]

    @property
    def activation(self) -> str:
        return self.params.get("activation", "linear")


@dataclasses.dataclass
class HNGraph:
    name: str
    layers: dict[str, Layer]  # bare name -> layer, in topological order
    net_params: dict[str, Any] = dataclasses.field(default_factory=dict)

    # --- lookups -------------------------------------------------------------------------
    def scoped(self, bare: str) -> str:
        return f"{self.name}/{bare}"

    def find(self, name: str) -> Layer | None:
        """The layer of a bare or scoped name, or None."""
        return self.layers.get(name.split("/", 1)[1] if name.startswith(self.name + "/") else name)

    def layer(self, name: str) -> Layer:
        bare = name.split("/", 1)[1] if name.startswith(self.name + "/") else name
        try:
            return self.layers[bare]
        except KeyError:
            import difflib

            close = difflib.get_close_matches(bare, list(self.layers), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else \
                f"; its layers are {', '.join(list(self.layers)[:12])}{'...' if len(self.layers) > 12 else ''}"
            raise HNError(f"network '{self.name}' has no layer '{name}'{hint}") from None

    @property
    def input_layers(self) -> list[Layer]:
        return [l for l in self.layers.values() if l.type == "input_layer"]

    @property
    def output_layers(self) -> list[Layer]:
        """Output layers in net_params.output_layers_order (scoped names there)."""
        order = self.net_params.get("output_layers_order")
        outs = [l for l in self.layers.values() if l.type == "output_layer"]
        if not order:
            return outs
        return [self.layer(n) for n in order]

    def topological(self) -> list[Layer]:
        return list(self.layers.values())

    def match(self, pattern: str) -> list[Layer]:
        """Layers whose bare or scoped name matches a glob (`conv*`, `net/output_layer*`)."""
        return [l for l in self.layers.values()
                if fnmatch.fnmatchcase(l.name, pattern) or fnmatch.fnmatchcase(self.scoped(l.name), pattern)]

    def validate(self) -> None:
        """Raise HNError naming the layer if the graph is malformed, LimitError if it is beyond
        emulator.limits (see validate_graph)."""
        validate_graph(self)

    @classmethod
    def from_dict(cls, d: Any, source: str = "HN") -> "HNGraph":
        """Build and validate a graph from the parsed HN JSON; layers are re-ordered
        topologically (the file's order need only be roughly topological)."""
        return _from_dict(d, source)

    @classmethod
    def from_json(cls, text: str | bytes, source: str = "HN") -> "HNGraph":
        """Parse and validate HN JSON text. Bounded by emulator.limits (size, nesting depth,
        layer count, elements of one layer's output): beyond them a LimitError, which names
        the figure and the limit to raise; anything malformed, including a key given twice in
        one object (a layer defined twice, a param given twice), is an HNError."""
        return _from_dict(_parse_json(text, source), source)

    # --- (de)serialization -----------------------------------------------------------------
    def to_dict(self) -> dict:
        layers = {}
        for l in self.layers.values():
            d = {
                "type": l.type,
                "input": [self.scoped(i) for i in l.input],
                "output": [self.scoped(o) for o in l.output],
                "input_shapes": l.input_shapes,
                "output_shapes": l.output_shapes,
                "original_names": l.original_names,
                "params": l.params,
            }
            if l.quantization_params:
                d["quantization_params"] = l.quantization_params
            layers[self.scoped(l.name)] = d
        return {"name": self.name, "net_params": self.net_params, "layers": layers}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


# --- loading and validation ------------------------------------------------------------------

def _parse_json(text: str | bytes, source: str) -> Any:
    """limits.load_json (bounded size and depth, duplicate keys refused) with the errors the
    HN's callers see: LimitError as it is, everything else an HNError naming the source."""
    try:
        return limits.load_json(text, source)
    except LimitError:
        raise
    except json.JSONDecodeError as e:
        raise HNError(f"{source} is not valid JSON: {e}") from None
    except ValueError as e:  # a duplicate key (or undecodable bytes)
        where = _duplicate_key_path(text)
        if where is None:
            raise HNError(f"{source} is not valid JSON: {e}") from None
        raise HNError(f"{source}: {where} (which one would win is not defined); remove or "
                      f"rename one") from None


class _DupDict(dict):
    dups: list


def _duplicate_key_path(text: str | bytes) -> str | None:
    """Where the first key given twice in one object is, in words (the layer and the key), or
    None. Called only after limits.load_json refused the text, so its depth is bounded."""
    def hook(pairs):
        d = _DupDict()
        d.dups = []
        for k, v in pairs:
            if k in d:
                d.dups.append(k)
            d[k] = v
        return d

    try:
        tree = json.loads(text, object_pairs_hook=hook)
    except ValueError:
        return None
    stack: list[tuple[Any, list]] = [(tree, [])]
    while stack:  # depth first, in file order
        node, path = stack.pop()
        if isinstance(node, _DupDict) and node.dups:
            k = node.dups[0]
            if path == ["layers"]:
                return f"layer '{k}' is defined twice in 'layers' (layer names must be unique)"
            if len(path) >= 2 and path[0] == "layers":
                inner = "".join(f"[{p!r}]" for p in path[2:])
                return f"layer '{path[1]}': the key '{k}' appears twice in {inner or 'the layer'}"
            return f"the key '{k}' appears twice in {''.join(f'[{p!r}]' for p in path) or 'the top level'}"
        children = list(node.items()) if isinstance(node, dict) else \
            list(enumerate(node)) if isinstance(node, list) else []
        stack.extend((v, path + [k]) for k, v in reversed(children))
    return None


def _elements(shape: list[int]) -> int:
    return math.prod(int(d) for d in shape[1:])


def _check_limits_layer(g: "HNGraph", l: Layer, source: str) -> None:
    """One frame of the layer's output (and of a MAC layer's kernel) within
    LIMITS.max_tensor_elements, else a LimitError naming the layer."""
    lim = limits.LIMITS.max_tensor_elements
    for what, shape in (("output shape", [-1] + list(l.output_shapes[0][1:]) if l.output_shapes else None),
                        ("input shape", l.input_shapes[0] if l.type == "input_layer" and l.input_shapes else None)):
        if shape is not None and _elements(shape) > lim:
            raise LimitError(f"{source}: layer '{g.scoped(l.name)}': {what} {shape} has "
                             f"{_elements(shape):,} elements per frame, more than the limit; "
                             f"{limits.LIMITS.describe('max_tensor_elements')}")
    k = l.params.get("kernel_shape")
    if l.type in MAC_TYPES and _int_list(k) and math.prod(k) > lim:
        raise LimitError(f"{source}: layer '{g.scoped(l.name)}': kernel_shape {k} has "
                         f"{math.prod(k):,} weights, more than the limit; "
                         f"{limits.LIMITS.describe('max_tensor_elements')}")


def _check_layer_count(n: int, net: str, source: str) -> None:
    if n > limits.LIMITS.max_layers:
        raise LimitError(f"{source}: network '{net}' has {n:,} layers, more than the limit; "
                         f"{limits.LIMITS.describe('max_layers')}")


# --- param types and ranges (checked at load, so that inference never meets a bad one) ---------

def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool,))


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(float(v))


def _int_list(v: Any, n: int | None = None, lo: int | None = None) -> bool:
    return (isinstance(v, (list, tuple)) and (n is None or len(v) == n) and all(_is_int(x) for x in v)
            and (lo is None or all(x >= lo for x in v)))


def _short(v: Any, n: int = 60) -> str:
    s = repr(v)
    return s if len(s) <= n else s[:n] + "..."


BIAS_MODES = ("single_scale_decomposition", "double_scale_initialization")
# the precision modes of the per-layer configuration (aX_wY[_aZ]; docs/numerics.md)
PRECISION_MODE_RE = re.compile(r"^a(8|16)_w(4|8|16)(?:_a(8|16))?$")
# the keys of layer.quantization_params the quantization toolchain reads (a model script's
# quantization_param / activation_clipping / weights_clipping, or run_quantization_from_np(config=))
QUANTIZATION_KEYS = ("precision_mode", "bias_mode", "quantization_groups", "force_range_in",
                     "force_range_out", "range_margin", "activation_clipping", "weights_clipping")
# range_margin: the calibrated output range times this (headroom for values calibration missed)
RANGE_MARGIN_MIN, RANGE_MARGIN_MAX = 1.0, 64.0
CLIPPING_MODES = {"activation_clipping": ("manual", "percentile"),
                  "weights_clipping": ("manual", "percentile", "mmse")}


def quantization_value_problem(key: str, v: Any) -> str | None:
    """What is wrong with a value of a quantization_params key (None when it is valid)."""
    if key == "precision_mode":
        if not (isinstance(v, str) and PRECISION_MODE_RE.match(v)):
            return (f"'precision_mode' = {_short(v)} is not aX_wY[_aZ] with X, Z in {{8, 16}} and Y in "
                    f"{{4, 8, 16}} (e.g. a8_w8, a8_w4, a16_w16, a16_w8, a8_w8_a16)")
    elif key == "bias_mode":
        if not (isinstance(v, str) and v in BIAS_MODES):
            return f"'bias_mode' = {_short(v)} is not one of {list(BIAS_MODES)}"
    elif key == "quantization_groups":
        if not (_is_int(v) and 1 <= v <= 4):
            return f"'quantization_groups' = {_short(v)} must be an int 1..4"
    elif key in ("force_range_in", "force_range_out"):
        if not (isinstance(v, (list, tuple)) and len(v) == 2 and all(_is_real(x) for x in v)
                and all(math.isfinite(x) for x in v) and v[0] < v[1]):
            return f"'{key}' = {_short(v)} must be [lo, hi] with finite lo < hi"
    elif key == "range_margin":
        if not (_is_real(v) and RANGE_MARGIN_MIN <= v <= RANGE_MARGIN_MAX):
            return f"'range_margin' = {_short(v)} must be a number in [{RANGE_MARGIN_MIN:g}, {RANGE_MARGIN_MAX:g}]"
    elif key in CLIPPING_MODES:
        if not (isinstance(v, dict) and set(v) <= {"mode", "values"} and v.get("mode") in CLIPPING_MODES[key]):
            return (f"'{key}' = {_short(v)} must be {{'mode': {' | '.join(CLIPPING_MODES[key])}, "
                    f"'values': [...]}}")
        vals = v.get("values")
        if vals is not None and not (isinstance(vals, (list, tuple)) and all(_is_real(x) and math.isfinite(x)
                                                                           for x in vals)):
            return f"'{key}' values {_short(vals)} must be a list of finite numbers"
        vals = list(vals or [])
        mode = v["mode"]
        if mode == "manual" and key == "activation_clipping" and not (len(vals) == 2 and vals[0] < vals[1]):
            return f"'{key}' manual needs values [lo, hi] with lo < hi, got {_short(vals)}"
        if mode == "manual" and key == "weights_clipping" and not (
                len(vals) in (1, 2) and max(abs(x) for x in vals) > 0):
            return f"'{key}' manual needs values [magnitude] or [lo, hi] (not all zero), got {_short(vals)}"
        if mode == "percentile" and not (len(vals) in (1, 2) and all(0 <= x <= 100 for x in vals)
                                         and (len(vals) == 1 or vals[0] < vals[1]) and vals[-1] > 0):
            return f"'{key}' percentile needs values [p] or [lo, hi] within 0..100 (lo < hi), got {_short(vals)}"
        if mode == "mmse" and vals:
            return f"'{key}' mmse takes no values, got {_short(vals)}"
    else:
        return f"unknown key '{key}' (the toolchain reads {list(QUANTIZATION_KEYS)})"
    return None
RANK4_TYPES = ("conv", "dw", "deconv", "maxpool", "avgpool", "global_avg_pool", "resize", "pad",
               "space_to_depth", "depth_to_space")


def _check_params(g: "HNGraph", l: Layer, where: str) -> None:
    """Every param of the layer against its type and range (LAYER_PARAMS); errors name the
    layer, the key, the value and what it must be."""
    p, t = l.params, l.type
    rank = len(l.input_shapes[0]) if l.input_shapes else len(l.output_shapes[0])

    def bad(key: str, must: str) -> HNError:
        return HNError(f"{where}: param '{key}' = {_short(p[key])} must be {must}")

    if t in RANK4_TYPES and rank != 4:
        raise HNError(f"{where}: type {t} needs a [-1, H, W, C] input, got {l.input_shapes[0]}")
    for key, v in p.items():
        if key == "kernel_shape":
            if t == "dense":
                if not _int_list(v, 2, 1):
                    raise bad(key, "[cin, cout] of positive ints")
            elif t in ("maxpool", "avgpool"):
                if not _int_list(v, 4, 1) or v[0] != 1 or v[3] != 1:
                    raise bad(key, "[1, kh, kw, 1] of positive ints")
            elif not _int_list(v, 4, 1):
                raise bad(key, "[kh, kw, cin, cout] of 4 positive ints" if t != "dw" else
                          "[kh, kw, cin, multiplier] of 4 positive ints")
        elif key in ("strides", "dilations"):
            if not _int_list(v, 4, 1) or v[0] != 1 or v[3] != 1:
                raise bad(key, "[1, h, w, 1] of positive ints")
        elif key == "padding":
            if not isinstance(v, str) or v not in PADDINGS:
                raise bad(key, f"one of {list(PADDINGS)}")
        elif key == "groups":
            if not _is_int(v) or v < 1:
                raise bad(key, "a positive int")
        elif key == "activation":
            if not isinstance(v, str) or v not in ACTIVATIONS:
                raise HNError(f"{where}: unknown activation {_short(v)} (known: {', '.join(ACTIVATIONS)})")
        elif key in ("leaky_alpha", "constant_value"):
            if not _is_real(v):
                raise bad(key, "a finite number")
        elif key in ("elementwise_add", "batch_norm", "count_include_pad", "align_corners", "half_pixel"):
            if not isinstance(v, bool):
                raise bad(key, "true or false")
        elif key in ("concat_axis", "axis"):
            if not _is_int(v) or not 1 <= v < rank:
                raise bad(key, f"an int in 1..{rank - 1}: an index into the input shape "
                               f"{l.input_shapes[0]} other than the batch axis 0 (the last axis "
                               f"is {rank - 1})")
        elif key == "axes":
            if not _int_list(v) or not v or len(set(v)) != len(v) or not all(1 <= a < rank for a in v):
                raise bad(key, f"a non-empty list of distinct ints in 1..{rank - 1} (indices into "
                               f"the input shape {l.input_shapes[0]}, batch axis 0 excluded)")
        elif key in ("begin", "end"):
            if not _int_list(v, rank - 1, 0):
                raise bad(key, f"a list of {rank - 1} non-negative ints (one per non-batch axis)")
        elif key == "method":
            if not isinstance(v, str) or v not in ("nearest", "bilinear"):
                raise bad(key, "'nearest' or 'bilinear'")
        elif key == "output_shape":
            if not _int_list(v) or len(v) < 2 or any(d < 1 for d in v[1:]):
                raise bad(key, "a shape [-1, d1, ...] of positive ints")
            if t == "resize" and (len(v) != 4 or v[3] != l.input_shapes[0][3]):
                raise bad(key, f"[-1, H, W, {l.input_shapes[0][3]}] (a resize keeps the channels)")
        elif key == "pads":
            if not (isinstance(v, (list, tuple)) and len(v) == 3 and all(_int_list(pp, 2, 0) for pp in v)):
                raise bad(key, "[[top, bottom], [left, right], [front, back]] of non-negative ints")
        elif key == "block_size":
            if not _is_int(v) or v < 1:
                raise bad(key, "a positive int")
        elif key == "mode":
            if not isinstance(v, str) or v not in ("DCR", "CRD"):
                raise bad(key, "'DCR' or 'CRD'")
    if t == "resize" and p.get("align_corners") is True and p.get("half_pixel") is True:
        raise HNError(f"{where}: a resize with both align_corners and half_pixel true is not "
                      f"defined (TensorFlow refuses it); set one of them to false")


def _check_quantization_params(l: Layer, where: str) -> None:
    """The keys the quantization toolchain reads from layer.quantization_params, with their rules
    (quantization_value_problem); other keys are left alone."""
    qp = l.quantization_params
    if not isinstance(qp, dict) or not all(isinstance(k, str) for k in qp):
        raise HNError(f"{where}: 'quantization_params' must be an object, got {_short(qp)}")
    for k, v in qp.items():
        problem = quantization_value_problem(k, v) if k in QUANTIZATION_KEYS else None
        if problem:
            raise HNError(f"{where}: quantization_params {problem}")


def _bare(net: str, name: Any, where: str) -> str:
    if not isinstance(name, str) or not name:
        raise HNError(f"{where}: layer reference {name!r} is not a name")
    return name.split("/", 1)[1] if name.startswith(net + "/") else name


def _shape(v: Any, where: str) -> list[int]:
    if (not isinstance(v, list) or len(v) < 2 or not all(_is_int(x) for x in v)
            or any(x <= 0 for x in v[1:])):
        raise HNError(f"{where}: {v!r} is not a shape [-1, d1, ...] of positive ints")
    return [-1] + list(v[1:])


def _from_dict(d: Any, source: str) -> HNGraph:
    if not isinstance(d, dict):
        raise HNError(f"{source}: top level must be a JSON object with name, net_params, layers")
    name = d.get("name")
    if not isinstance(name, str) or not name or "/" in name:
        raise HNError(f"{source}: 'name' must be a non-empty network name without '/'")
    layers_d = d.get("layers")
    if not isinstance(layers_d, dict) or not layers_d:
        raise HNError(f"{source}: 'layers' must be a non-empty object keyed by '<net>/<layer>'")
    net_params = d.get("net_params", {})
    if not isinstance(net_params, dict):
        raise HNError(f"{source}: 'net_params' must be an object")
    _check_layer_count(len(layers_d), name, source)
    layers: dict[str, Layer] = {}
    for key, ld in layers_d.items():
        if not key.startswith(name + "/") or key.count("/") != 1 or key == name + "/":
            raise HNError(f"{source}: layer key '{key}' must be '{name}/<layer>'")
        bare = key.split("/", 1)[1]
        where = f"{source}: layer '{key}'"
        if not isinstance(ld, dict):
            raise HNError(f"{where}: must be an object")
        for k in ("type", "input", "output", "input_shapes", "output_shapes"):
            if k not in ld:
                raise HNError(f"{where}: missing key '{k}'")
        for k in ("input", "output", "input_shapes", "output_shapes"):
            if not isinstance(ld[k], list):
                raise HNError(f"{where}: '{k}' must be a list")
        params = ld.get("params", {})
        if not isinstance(params, dict):
            raise HNError(f"{where}: 'params' must be an object")
        if not isinstance(ld["type"], str):
            raise HNError(f"{where}: 'type' must be a layer type name, got {_short(ld['type'])}")
        names = ld.get("original_names", [])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise HNError(f"{where}: 'original_names' must be a list of names, got {_short(names)}")
        qparams = ld.get("quantization_params", {})
        if not isinstance(qparams, dict):
            raise HNError(f"{where}: 'quantization_params' must be an object (e.g. "
                          f"{{\"precision_mode\": \"a8_w8\"}}), got {_short(qparams)}")
        layers[bare] = Layer(
            name=bare, type=ld["type"],
            input=[_bare(name, i, where) for i in ld["input"]],
            output=[_bare(name, o, where) for o in ld["output"]],
            input_shapes=[_shape(s, f"{where} input_shapes") for s in ld["input_shapes"]],
            output_shapes=[_shape(s, f"{where} output_shapes") for s in ld["output_shapes"]],
            params=params,
            original_names=list(names),
            quantization_params=dict(qparams),
        )
    g = HNGraph(name=name, layers=layers, net_params=net_params)
    validate_graph(g, source)
    return g


def validate_graph(g: HNGraph, source: str = "HN") -> None:
    """Check a graph and re-order g.layers topologically. Errors name the layer.

    Checks, each error naming the layer (and the key): the layer count and every layer's output
    elements (one frame) within emulator.limits.LIMITS (else LimitError); known type and params
    (required ones present, each of its type and in its range: ints, axes inside the shape,
    known activation / padding / method / mode, finite numbers, booleans; no fused
    elementwise_add); quantization_params an object whose toolchain keys are valid; the number
    of inputs the type takes; edges exist and agree both ways (A lists B as output iff B lists
    A as input; the error names the layer missing the reference); input_shapes equal the
    producers' output shapes; each output shape equals the one inferred from the layer's
    inputs and params; no cycle; output_layers_order names each output layer once.
    """
    _check_layer_count(len(g.layers), g.name, source)
    # each layer on its own first, so that an error names the layer that is wrong
    for l in g.layers.values():
        where = f"{source}: layer '{g.scoped(l.name)}'"
        if not l.name or "/" in l.name:
            raise HNError(f"{where}: a layer name is non-empty and has no '/'")
        if l.type not in LAYER_PARAMS:
            raise HNError(f"{where}: unknown layer type '{l.type}' (known: {', '.join(LAYER_PARAMS)})")
        if not isinstance(l.params, dict):
            raise HNError(f"{where}: 'params' must be an object")
        unknown = set(l.params) - set(LAYER_PARAMS[l.type])
        if unknown:
            raise HNError(f"{where}: unknown params {sorted(unknown)} for type {l.type} "
                          f"(allowed: {list(LAYER_PARAMS[l.type])})")
        for k in REQUIRED_PARAMS.get(l.type, ()):
            if k not in l.params:
                raise HNError(f"{where}: type {l.type} needs param '{k}'")
        if l.type == "input_layer" and l.input:
            raise HNError(f"{where}: an input_layer has no inputs")
        if l.type == "output_layer" and (len(l.input) != 1 or l.output):
            raise HNError(f"{where}: an output_layer has exactly one input and no outputs")
        if l.type not in ("input_layer", "output_layer") and not l.input:
            raise HNError(f"{where}: type {l.type} needs at least one input")
        if l.type != "output_layer" and not l.output:
            raise HNError(f"{where}: output of a {l.type} goes nowhere; connect it to a consumer "
                          f"or an output_layer")
        if len(l.input_shapes) != max(len(l.input), 1 if l.type == "input_layer" else 0):
            raise HNError(f"{where}: {len(l.input_shapes)} input_shapes for {len(l.input)} inputs")
        if not l.output_shapes:
            raise HNError(f"{where}: output_shapes is empty")
        if any(s != l.output_shapes[0] for s in l.output_shapes):
            raise HNError(f"{where}: output_shapes differ {l.output_shapes}; a layer has one output")
        _check_limits_layer(g, l, source)
        _check_params(g, l, where)
        _check_quantization_params(l, where)
    # then the edges between them
    for l in g.layers.values():
        where = f"{source}: layer '{g.scoped(l.name)}'"
        for ref in l.input + l.output:
            if ref not in g.layers:
                raise HNError(f"{where}: dangling edge to '{g.scoped(ref)}', which is not a layer")
        for i in l.input:
            if l.name not in g.layers[i].output:
                raise HNError(f"{source}: layer '{g.scoped(i)}' is missing the output "
                              f"'{g.scoped(l.name)}': '{g.scoped(l.name)}' lists '{g.scoped(i)}' "
                              f"among its inputs, but '{g.scoped(i)}' does not list it among its "
                              f"outputs; add it there or remove the input")
        for o in l.output:
            if l.name not in g.layers[o].input:
                raise HNError(f"{source}: layer '{g.scoped(o)}' is missing the input "
                              f"'{g.scoped(l.name)}': '{g.scoped(l.name)}' lists '{g.scoped(o)}' "
                              f"among its outputs, but '{g.scoped(o)}' does not list it among its "
                              f"inputs; add it there (with its input_shapes entry) or remove the "
                              f"output")
    _toposort(g, source)
    for l in g.layers.values():
        where = f"{source}: layer '{g.scoped(l.name)}'"
        if l.type in ONE_INPUT_TYPES and len(l.input) > 1:
            raise HNError(f"{where}: type {l.type} takes one input, got {len(l.input)} "
                          f"({', '.join(g.scoped(i) for i in l.input)}); combine tensors with "
                          f"concat or ew_add / ew_sub / ew_mult layers")
        if l.params.get("elementwise_add"):
            raise HNError(f"{where}: a fused elementwise_add is not supported; express it as the "
                          f"conv followed by an ew_add layer (and set elementwise_add to false)")
        for i, (src, shp) in enumerate(zip(l.input, l.input_shapes)):
            if g.layers[src].output_shape != shp:
                raise HNError(f"{where}: shape mismatch on input {i}: input_shapes says {shp}, "
                              f"producer '{g.scoped(src)}' outputs {g.layers[src].output_shape}")
        try:
            inferred = infer_output_shape(l)
        except HNError as e:
            raise HNError(f"{where}: {e}") from None
        except (TypeError, ValueError, IndexError, KeyError, ZeroDivisionError) as e:
            raise HNError(f"{where}: params {l.params} do not fit input shapes "
                          f"{l.input_shapes}: {e}") from None
        if inferred is not None and not _shape_ok(l, inferred):
            raise HNError(f"{where}: shape mismatch: output_shapes says {l.output_shape}, "
                          f"but {l.type} of {l.input_shapes} with {l.params} gives {inferred}")
    order = g.net_params.get("output_layers_order")
    if order is not None:
        if not isinstance(order, list):
            raise HNError(f"{source}: net_params.output_layers_order must be a list of names")
        outs = {l.name for l in g.layers.values() if l.type == "output_layer"}
        names = [_bare(g.name, n, f"{source}: output_layers_order") for n in order]
        for n in names:
            if n not in outs:
                raise HNError(f"{source}: output_layers_order names '{n}', which is not an output_layer")
        if set(names) != outs or len(names) != len(outs):
            raise HNError(f"{source}: output_layers_order {order} must list each output layer once "
                          f"({sorted(outs)})")
    if not g.input_layers:
        raise HNError(f"{source}: the network has no input_layer")
    if not any(l.type == "output_layer" for l in g.layers.values()):
        raise HNError(f"{source}: the network has no output_layer")


def _toposort(g: HNGraph, source: str) -> None:
    # Kahn's algorithm, ties broken by position in the file: a file already in topological
    # order keeps its order exactly
    import heapq

    pos = {n: i for i, n in enumerate(g.layers)}
    indeg = {n: len(set(l.input)) for n, l in g.layers.items()}
    ready = [pos[n] for n in g.layers if indeg[n] == 0]
    heapq.heapify(ready)
    names = list(g.layers)
    out: list[str] = []
    while ready:
        n = names[heapq.heappop(ready)]
        out.append(n)
        for c in dict.fromkeys(g.layers[n].output):
            indeg[c] -= 1
            if indeg[c] == 0:
                heapq.heappush(ready, pos[c])
    if len(out) != len(g.layers):
        stuck = [g.scoped(n) for n in g.layers if n not in out]
        raise HNError(f"{source}: cycle in the graph through layers {stuck}")
    g.layers = {n: g.layers[n] for n in out}


def _shape_ok(l: Layer, inferred: list[int]) -> bool:
    if l.output_shape == inferred:
        return True
    # reductions may keep the reduced axes as 1 or drop them: accept either
    if l.type in ("global_avg_pool", "reduce_max", "reduce_sum", "argmax"):
        return [d for d in l.output_shape[1:] if d != 1] == [d for d in inferred[1:] if d != 1] \
            and math.prod(l.output_shape[1:]) == math.prod(inferred[1:])
    return False


def _conv_out(n: int, k: int, s: int, d: int, padding: str) -> int:
    if padding == "VALID":
        eff = (k - 1) * d + 1
        if n < eff:
            raise HNError(f"input size {n} is smaller than the kernel extent {eff}")
        return (n - eff) // s + 1
    return -(-n // s)


def infer_output_shape(l: Layer) -> list[int] | None:
    """The output shape a layer computes from its input shapes and params (None: not
    derivable from the inputs alone, e.g. input_layer)."""
    p, ins = l.params, l.input_shapes
    t = l.type
    if t == "input_layer":
        return None
    x = ins[0]
    if t in ("output_layer", "activation", "normalization", "softmax"):
        return list(x)
    if t in ("conv", "dw", "maxpool", "avgpool"):
        if len(x) != 4:
            raise HNError(f"{t} needs a [-1, H, W, C] input, got {x}")
        k = p["kernel_shape"]
        s = p["strides"]
        d = p.get("dilations", [1, 1, 1, 1])
        if t in ("maxpool", "avgpool"):
            kh, kw, cout = k[1], k[2], x[3]
        elif t == "conv":
            groups = p.get("groups", 1)
            if k[2] * groups != x[3]:
                raise HNError(f"kernel_shape {k} (cin/groups = {k[2]}) with groups={groups} "
                              f"expects {k[2] * groups} input channels, but the input {x} has {x[3]}")
            if k[3] % groups:
                raise HNError(f"{k[3]} output channels do not split into {groups} groups")
            kh, kw, cout = k[0], k[1], k[3]
        else:
            if k[2] != x[3]:
                raise HNError(f"kernel_shape {k} expects {k[2]} input channels, but the input {x} has {x[3]}")
            kh, kw, cout = k[0], k[1], k[2] * k[3]
        return [-1, _conv_out(x[1], kh, s[1], d[1], p["padding"]),
                _conv_out(x[2], kw, s[2], d[2], p["padding"]), cout]
    if t == "deconv":
        k, s = p["kernel_shape"], p["strides"]
        if k[2] != x[3]:
            raise HNError(f"kernel_shape {k} expects {k[2]} input channels, but the input {x} has {x[3]}")
        if p["padding"] == "VALID":
            return [-1, (x[1] - 1) * s[1] + k[0], (x[2] - 1) * s[2] + k[1], k[3]]
        return [-1, x[1] * s[1], x[2] * s[2], k[3]]
    if t == "dense":
        k = p["kernel_shape"]
        if k[0] != math.prod(x[1:]):
            raise HNError(f"kernel_shape {k} expects {k[0]} input features, input {x} has "
                          f"{math.prod(x[1:])}")
        return [-1, k[1]]
    if t == "global_avg_pool":
        return [-1, 1, 1, x[3]]
    if t == "concat":
        ax = p["concat_axis"]
        if not 1 <= ax < len(x):
            raise HNError(f"concat_axis {ax} is not a non-batch axis of {x}")
        for y in ins[1:]:
            if len(y) != len(x) or any(a != b for i, (a, b) in enumerate(zip(x, y)) if i != ax):
                raise HNError(f"inputs {ins} differ outside concat_axis {ax}")
        out = list(x)
        out[ax] = sum(y[ax] for y in ins)
        return out
    if t == "slice":
        b, e = p["begin"], p["end"]
        if len(b) != len(x) - 1 or len(e) != len(x) - 1:
            raise HNError(f"begin/end need {len(x) - 1} entries for input {x}")
        for i, (bb, ee) in enumerate(zip(b, e)):
            if not 0 <= bb < ee <= x[i + 1]:
                raise HNError(f"crop [{bb}, {ee}) is outside axis {i + 1} of size {x[i + 1]}")
        return [-1] + [ee - bb for bb, ee in zip(b, e)]
    if t == "resize":
        o = p["output_shape"]
        return [-1, o[1], o[2], x[3]]
    if t in ("ew_add", "ew_sub", "ew_mult"):
        if len(ins) != 2:
            raise HNError(f"{t} takes two inputs, got {len(ins)}")
        a, b = ins
        if len(a) != len(b):
            raise HNError(f"operands {a} and {b} differ in rank")
        out = [-1]
        for da, db in zip(a[1:], b[1:]):
            if da != db and 1 not in (da, db):
                raise HNError(f"operands {a} and {b} do not broadcast")
            out.append(max(da, db))
        return out
    if t == "pad":
        pads = p["pads"]
        if len(x) != 4 or len(pads) != 3:
            raise HNError("pad needs a 4-D input and pads [[t, b], [l, r], [front, back]]")
        return [-1] + [x[i + 1] + pads[i][0] + pads[i][1] for i in range(3)]
    if t == "reshape":
        o = list(p["output_shape"])
        if math.prod(o[1:]) != math.prod(x[1:]):
            raise HNError(f"cannot reshape {x} to {o}")
        return [-1] + o[1:]
    if t in ("space_to_depth", "depth_to_space"):
        bs = p["block_size"]
        if t == "space_to_depth":
            if x[1] % bs or x[2] % bs:
                raise HNError(f"H, W of {x} are not multiples of block_size {bs}")
            return [-1, x[1] // bs, x[2] // bs, x[3] * bs * bs]
        if x[3] % (bs * bs):
            raise HNError(f"C of {x} is not a multiple of block_size^2 = {bs * bs}")
        return [-1, x[1] * bs, x[2] * bs, x[3] // (bs * bs)]
    if t == "feature_shuffle":
        if x[-1] % p["groups"]:
            raise HNError(f"{x[-1]} channels do not split into {p['groups']} groups")
        return list(x)
    if t in ("reduce_max", "reduce_sum"):
        axes = p["axes"]
        return [1 if i in axes else d for i, d in enumerate(x)]
    if t == "argmax":
        return [1 if i == p["axis"] else d for i, d in enumerate(x)]
    return None


def normalization_fold_target(hn: HNGraph, layer: Layer) -> Layer | None:
    """The layer a normalization folds into (docs/numerics.md): a normalization right after an
    input layer, each with one consumer, before an ungrouped conv / dw / dense that adds no
    padding; None for any other layer. (Calibration adds one condition: the input's range must
    fit the input codes.)"""
    from .numerics.geometry import spatial_pads

    if layer.type != "normalization":
        return None
    src = hn.layers[layer.input[0]]
    if src.type != "input_layer" or len(src.output) != 1 or len(layer.output) != 1:
        return None
    cons = hn.layers[layer.output[0]]
    if cons.type not in ("conv", "dw", "dense") or int(cons.params.get("groups", 1)) != 1:
        return None
    if cons.type in ("conv", "dw"):
        p = cons.params
        d = p.get("dilations", [1, 1, 1, 1])
        pads = spatial_pads(cons.input_shapes[0][1:3], p["kernel_shape"][:2], p["strides"][1:3],
                            d[1:3], p["padding"])
        if any(v for pp in pads for v in pp):
            return None
    return cons
