"""From calibration statistics and float params to the chip's integer params
(docs/numerics.md). Three passes over the network in topological order:

  1. placements  where each layer runs: host ops (softmax / argmax and the output layers after
                 them) on the host, normalizations that fold into the next MAC layer folded,
                 everything else on the chip
  2. tensors     (s, z, b) of every on-chip tensor (layer kinds: passthrough kinds keep their
                 input's, the input layer takes the identity QP before a folded normalization)
  3. params      each layer kind's `derive` (weights, bias, rescales, tables...)

`Derivation` is the state the kinds derive from and write into. `rederive_layer` re-derives one
layer of an already quantized runner from its stored tensors and the current float params (what
bias correction and finetuning do after changing a layer's float weights or bias).
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Any, Callable

import numpy as np

from ..hn import HNGraph, Layer
from ..layers import kind_of
from ..numerics.params import LIMVALS_MIN_WIDTH, PRE_ACT_BITS, TensorQ, tensor_params
from ..quant_errors import LimvalsOutSmallRangeError, QuantizationError, UnsupportedLayerError
from .clipping import describe as describe_clips
from .clipping import weight_clips
from .config import LayerConfig, layer_config
from .folding import fold_normalization, folding_target
from .keys import Placement, qkey, read_placement, split_key

log = logging.getLogger(__name__)

NUMERICS_VERSION = 2  # 2: "kind" stored by name (version 1 stored int32 codes; both load)
TENSOR_FIELDS = ("kind", "out_scale", "out_zp", "out_bits", "limvals", "range")


@dataclasses.dataclass
class Derivation:
    """What the layer kinds derive from (hn, stats, float params, configs, placements, tensors)
    and write into (qp)."""

    hn: HNGraph
    stats: dict                           # name or "<name>/pre" -> [min, max]
    params: Callable[[str], dict]         # layer name -> bare float params
    configs: dict[str, LayerConfig]
    qp: dict = dataclasses.field(default_factory=dict)
    placement: dict[str, Placement] = dataclasses.field(default_factory=dict)
    tq: dict[str, TensorQ] = dataclasses.field(default_factory=dict)
    pre: dict[str, TensorQ] = dataclasses.field(default_factory=dict)

    @property
    def net(self) -> str:
        return self.hn.name

    def put(self, layer: str, field: str, value: np.ndarray) -> None:
        self.qp[qkey(self.net, layer, field)] = value

    def source(self, layer: Layer, i: int = 0) -> str:
        """The on-chip tensor feeding input i of `layer` (skipping folded normalizations)."""
        name = layer.input[i]
        while self.placement.get(name) == Placement.FOLDED:
            name = self.hn.layers[name].input[0]
        return name

    def feeds_folded(self, layer: Layer) -> bool:
        return any(self.placement.get(c) == Placement.FOLDED for c in layer.output)

    def tensor_from_range(self, name: str, bits: int, what: str = "output") -> TensorQ:
        try:
            return tensor_params(*self.stats[name], bits, name, what)
        except LimvalsOutSmallRangeError as e:  # the same error, naming the outputs it feeds
            raise LimvalsOutSmallRangeError(name, e.lo, e.hi, LIMVALS_MIN_WIDTH, what,
                                            branch=self.outputs_fed(name)) from None

    def outputs_fed(self, name: str) -> list[str]:
        """The output layers a layer's tensor reaches (its branch of the network)."""
        seen, todo, outs = set(), [name], []
        while todo:
            n = todo.pop()
            if n in seen:
                continue
            seen.add(n)
            layer = self.hn.layers[n]
            if layer.type == "output_layer":
                outs.append(n)
            todo.extend(layer.output)
        return sorted(outs)

    def pre_tensor(self, name: str) -> TensorQ:
        """The 16-bit pre-activation tensor of a table (LUT) activation, from its calibrated range."""
        if name not in self.pre:
            lo, hi = self.stats[name + "/pre"]
            self.pre[name] = tensor_params(lo, hi, PRE_ACT_BITS, name, "pre-activation")
        return self.pre[name]

    def kernel_bias(self, layer: Layer) -> tuple[np.ndarray, np.ndarray]:
        """A MAC layer's float64 kernel and bias, with a normalization folded into it applied."""
        prm = self.params(layer.name)
        kernel, bias = np.asarray(prm["kernel"], np.float64), np.asarray(prm["bias"], np.float64)
        if self.source(layer) != layer.input[0]:
            norm = self.params(layer.input[0])
            kernel, bias = fold_normalization(kernel, bias, norm["mean"], norm["std"], layer.type)
        return kernel, bias

    def weight_clips(self, layer: Layer, w2d: np.ndarray, cfg: LayerConfig) -> np.ndarray | None:
        """Per-group clip magnitudes of a MAC layer's weights (its weights_clipping), or None."""
        clips = weight_clips(w2d, cfg.w_bits, cfg.groups, cfg.weights_clipping)
        if clips is not None:
            log.info("%s: %s", layer.name, describe_clips(clips, w2d))
        return clips

    def store_tensor(self, name: str, t: TensorQ) -> None:
        self.put(name, "out_scale", np.array(t.scale, np.float32))
        self.put(name, "out_zp", np.array(t.zp, np.int32))
        self.put(name, "out_bits", np.array(t.bits, np.int32))
        self.put(name, "limvals", np.array(t.limvals, np.float32))
        if name in self.stats:
            self.put(name, "range", np.asarray(self.stats[name], np.float64))


def _is_host(hn: HNGraph, layer: Layer) -> bool:
    return kind_of(layer).host or (layer.type == "output_layer" and _is_host(hn, hn.layers[layer.input[0]]))


def _check_host_op(hn: HNGraph, layer: Layer) -> None:
    for c in layer.output:
        cl = hn.layers[c]
        if cl.type != "output_layer" and not kind_of(cl).host:
            raise UnsupportedLayerError(
                f"layer '{layer.name}' ({layer.type}) feeds the on-chip layer '{c}' ({cl.type}); "
                f"{layer.type} runs on the host after dequantization, so it may only feed output "
                f"layers. Move it to the end of the network or remove it before quantizing.")


def place_layers(d: Derivation) -> dict[str, str]:
    """Pass 1: d.placement for every layer; returns {folded normalization: MAC layer}."""
    hn, folded = d.hn, {}
    for layer in hn.topological():
        if _is_host(hn, layer):
            if kind_of(layer).host:
                _check_host_op(hn, layer)
            d.placement[layer.name] = Placement.HOST
            continue
        d.placement[layer.name] = Placement.CHIP
        if layer.type == "normalization":
            tgt = folding_target(hn, layer, d.stats, d.configs[layer.input[0]].out_bits)
            if tgt is not None:
                d.placement[layer.name] = Placement.FOLDED
                folded[layer.name] = tgt.name
    return folded


def derive_quantized_params(runner: Any, stats: dict, which: str = "fp_optimized") -> tuple[dict, dict]:
    """All quantized params from the statistics. Returns (quantized_params, summary)."""
    hn = runner.hn
    d = Derivation(hn=hn, stats=stats, params=lambda n: runner.layer_params(n, which),
                   configs={l.name: layer_config(hn, l) for l in hn.topological()})
    folded = place_layers(d)
    for layer in hn.topological():
        name = layer.name
        d.put(name, "kind", d.placement[name].stored())
        if d.placement[name] == Placement.CHIP:
            d.tq[name] = kind_of(layer).tensor(d, layer, d.configs[name])
            d.store_tensor(name, d.tq[name])
    for layer in hn.topological():
        if d.placement[layer.name] == Placement.CHIP:
            kind_of(layer).derive(d, layer, d.configs[layer.name])
            log.debug("quantized %s (%s): %s", layer.name, layer.type, d.tq[layer.name])
    summary = {
        "numerics_version": NUMERICS_VERSION,
        "folded_normalization": folded,
        "layers": {n: {"scale": float(t.scale), "zp": int(t.zp), "bits": int(t.bits),
                       "range": [float(v) for v in stats[n]] if n in stats else None,
                       **d.configs[n].as_dict()}
                   for n, t in d.tq.items()},
    }
    return d.qp, summary


def stored_derivation(runner: Any, which: str = "fp_optimized", stats: dict | None = None) -> Derivation:
    """A Derivation rebuilt from a quantized runner's stored params: placements, tensors, and
    the calibrated ranges ("range", "pre_range"), overridden by `stats` where given."""
    from ..errors import NotQuantizedError

    if runner.quantized_params is None:
        raise NotQuantizedError("re-deriving a layer (quantize the network first)")
    hn, qp = runner.hn, runner.quantized_params
    d = Derivation(hn=hn, stats={}, params=lambda n: runner.layer_params(n, which),
                   configs={l.name: layer_config(hn, l) for l in hn.topological()}, qp=qp)
    for key, v in qp.items():
        parts = split_key(key)
        if parts is None:
            continue
        _, layer, field = parts
        if field == "kind":
            d.placement[layer] = read_placement(v)
        elif field == "range":
            d.stats[layer] = np.asarray(v, np.float64)
        elif field == "pre_range":
            d.stats[layer + "/pre"] = np.asarray(v, np.float64)
    for name, p in d.placement.items():
        if p == Placement.CHIP:
            g = lambda f: qp[qkey(hn.name, name, f)]  # noqa: E731
            d.tq[name] = TensorQ(float(g("out_scale")), int(g("out_zp")), int(g("out_bits")))
    d.stats.update(stats or {})
    return d


def rederive_layer(runner: Any, name: str, *, which: str = "fp_optimized", stats: dict | None = None) -> dict:
    """Re-derive one on-chip layer's integer params (weights, bias, rescales, tables) from the
    runner's current float params (`which`) and the stored tensors; `stats` may give new ranges
    (e.g. "<layer>/pre" of a table activation). The layer's output tensor is kept: its consumers
    were derived on it. runner.quantized_params becomes a new dict (compiled targets follow).
    Returns the layer's new params {key: array}."""
    layer = runner.hn.layer(name)
    d = stored_derivation(runner, which, stats)
    if d.placement.get(layer.name) != Placement.CHIP:
        raise QuantizationError(f"layer '{layer.name}' is not an on-chip layer "
                                f"({d.placement.get(layer.name, 'unplaced')}): nothing to re-derive")
    prefix = qkey(d.net, layer.name, "")[:-2]
    d.qp = {k: v for k, v in runner.quantized_params.items()
            if not k.startswith(prefix) or split_key(k)[2] in TENSOR_FIELDS}
    kind_of(layer).derive(d, layer, d.configs[layer.name])
    runner.quantized_params = d.qp
    return {k: v for k, v in d.qp.items() if k.startswith(prefix)}
