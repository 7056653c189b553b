"""The per-layer quantization configuration: what a model script (or `config=`) sets in each HN
layer's quantization_params, validated, and the effective config of a layer (docs/numerics.md,
"Precision modes and per-layer configuration").

  precision_mode       aX_wY[_aZ]: weights Y bits (4, 8, 16), output Z bits (= X when absent;
                       8 or 16)
  bias_mode            single_scale_decomposition (int8 bias mantissa) |
                       double_scale_initialization (int16)
  quantization_groups  1..4 weight scales per layer (contiguous groups of output channels)
  force_range_in       [lo, hi]: the range of the layer's input tensor, instead of calibration
  force_range_out      [lo, hi]: the range of its output tensor
  range_margin         F in [1, 64]: its calibrated output range times F (zero kept inside), so
                       that values the calibration set did not reach are not clipped; F = 2
                       spends one bit on headroom (cheap at 16 bits, 6 dB of resolution at 8)
  activation_clipping  {"mode": manual | percentile, "values": [lo, hi]}: its output range
                       clipped (manual: to [lo, hi]; percentile: to those percentiles of its
                       calibration values)
  weights_clipping     {"mode": manual | percentile | mmse, "values": [...]}: its weights clipped
                       before they are quantized (manual: at a magnitude; percentile: at that
                       percentile of |W| per group; mmse: at the magnitude of least squared error)
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import numpy as np

from ..hn import MAC_TYPES, PRECISION_MODE_RE, QUANTIZATION_KEYS, HNGraph, Layer, quantization_value_problem
from ..layers import HOST_OPS, PASSTHROUGH
from ..numerics.params import BIAS_MANTISSA_BITS
from ..quant_errors import QuantizationConfigError

DEFAULTS = {"precision_mode": "a8_w8", "bias_mode": "single_scale_decomposition",
            "quantization_groups": 1, "force_range_in": None, "force_range_out": None,
            "range_margin": 1.0, "activation_clipping": None, "weights_clipping": None}  # when nothing sets them
CONFIG_KEYS = QUANTIZATION_KEYS


def parse_precision_mode(mode: str) -> tuple[int, int]:
    """'aX_wY[_aZ]' -> (output bits, weight bits): weights Y bits, output Z (= X when absent)."""
    m = PRECISION_MODE_RE.match(str(mode))
    if not m:
        raise QuantizationConfigError(
            f"precision_mode '{mode}' is not aX_wY[_aZ] with X, Z in {{8, 16}} and Y in {{4, 8, 16}} "
            f"(e.g. a8_w8, a8_w4, a16_w16, a16_w8, a8_w8_a16)")
    return int(m.group(3) or m.group(1)), int(m.group(2))


@dataclasses.dataclass(frozen=True)
class LayerConfig:
    """The effective configuration of one layer. `explicit_mode`: the layer (or an output layer
    it produces) sets its precision mode; `valid`: the mode parses (a loaded file's HN may hold
    anything; the derivation validates first)."""

    precision_mode: str
    bias_mode: str
    quantization_groups: int
    force_range_in: list | None = None
    force_range_out: list | None = None
    range_margin: float = 1.0
    activation_clipping: dict | None = None
    weights_clipping: dict | None = None
    explicit_mode: bool = False

    @property
    def valid(self) -> bool:
        return PRECISION_MODE_RE.match(str(self.precision_mode)) is not None

    @property
    def out_bits(self) -> int:
        return parse_precision_mode(self.precision_mode)[0]

    @property
    def w_bits(self) -> int:
        return parse_precision_mode(self.precision_mode)[1]

    @property
    def groups(self) -> int:
        return int(self.quantization_groups)

    @property
    def bias_mantissa_bits(self) -> int:
        return BIAS_MANTISSA_BITS[self.bias_mode]

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in CONFIG_KEYS}


def _chip_producer(hn: HNGraph, name: str) -> str:
    """The on-chip layer that writes tensor `name` (back through host ops and layers that keep
    their input's tensor)."""
    while hn.layers[name].type in HOST_OPS + PASSTHROUGH and hn.layers[name].input:
        name = hn.layers[name].input[0]
    return name


def _concat_feeders(hn: HNGraph, name: str) -> list[str]:
    """The on-chip producers of a concat's inputs (through nested concats): they must share its
    width, so an output's precision mode reaches them too."""
    out = []
    for src in hn.layers[name].input:
        p = _chip_producer(hn, src)
        out.extend(_concat_feeders(hn, p) if hn.layers[p].type == "concat" else [p])
    return out


def layer_config(hn: HNGraph, layer: Layer) -> LayerConfig:
    """The effective config of a layer: its own entries, over those of the output layers it
    produces (directly or through layers that keep its tensor and host ops: the seed's
    `quantization_param(output_layer*, precision_mode=a16_w16)`), over the defaults. When that
    producer is a concat, the output's precision mode also reaches the layers feeding the concat
    (a concat's inputs share its width: detector heads concatenate per-scale convs)."""
    cfg = dict(DEFAULTS)
    explicit = False
    for out in hn.layers.values():
        if out.type != "output_layer":
            continue
        name = _chip_producer(hn, out.input[0])
        if name == layer.name:
            own = {k: v for k, v in out.quantization_params.items() if k in CONFIG_KEYS}
        elif hn.layers[name].type == "concat" and "precision_mode" in out.quantization_params \
                and layer.name in _concat_feeders(hn, name):
            own = {"precision_mode": out.quantization_params["precision_mode"]}
        else:
            continue
        explicit = explicit or "precision_mode" in own
        cfg.update(own)
    own = {k: v for k, v in layer.quantization_params.items() if k in CONFIG_KEYS}
    cfg.update(own)
    return LayerConfig(**{**cfg, "precision_mode": str(cfg["precision_mode"]),
                          "bias_mode": str(cfg["bias_mode"])},
                       explicit_mode=explicit or "precision_mode" in own)


def validate_entry(where: str, entry: Mapping[str, Any]) -> dict:
    """One {key: value} of the configuration, checked; returns it normalized."""
    if not isinstance(entry, Mapping):
        raise QuantizationConfigError(f"{where}: expected a dict of {list(CONFIG_KEYS)}, got {entry!r}")
    out = {}
    for k, v in entry.items():
        if k not in CONFIG_KEYS:
            raise QuantizationConfigError(f"{where}: unknown key '{k}'; the per-layer configuration "
                                          f"takes {list(CONFIG_KEYS)}")
        if isinstance(v, np.integer):
            v = int(v)
        problem = quantization_value_problem(k, v)
        if problem:
            raise QuantizationConfigError(f"{where}: {problem}")
        out[k] = [float(x) for x in v] if k.startswith("force_range") else float(v) if k == "range_margin" else \
            ({"mode": v["mode"], "values": [float(x) for x in v.get("values") or []]}
             if k.endswith("_clipping") else v)
    return out


def apply_config(hn: HNGraph, config: Mapping[str, Mapping[str, Any]] | None) -> None:
    """Write `config` ({layer name or glob: {key: value}}; later entries win) into the layers'
    quantization_params, validating every key and value; existing entries (a model script's)
    are validated too."""
    for layer in hn.layers.values():
        validate_entry(f"layer '{layer.name}' quantization_params",
                       {k: v for k, v in layer.quantization_params.items() if k in CONFIG_KEYS})
    for pattern, entry in (config or {}).items():
        entry = validate_entry(f"config['{pattern}']", entry)
        found = hn.find(pattern)
        layers = hn.match(pattern) if any(c in pattern for c in "*?[") else ([found] if found else [])
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
