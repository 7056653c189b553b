"""The HN: the network graph as Hailo's toolchain writes it (JSON), loaded into plain objects.

This module is the contract between the importers, the float emulation and the quantizer: every
part of the emulator reads and writes networks through `HNGraph` and `Layer`. Keys are those of
docs/file-formats.md; per-type `params` are listed in LAYER_PARAMS below.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any

# Per layer type: the keys its `params` may hold (validation rejects others).
# Shapes are NHWC; kernels HWIO (dense [cin, cout], dw [kh, kw, cin, multiplier],
# deconv [kh, kw, cin, cout]); strides / dilations / pool kernels [1, h, w, 1];
# padding VALID | SAME (symmetric) | SAME_TENSORFLOW (TF's: the extra row/column at the end).
# `activation`: linear relu relu6 leaky prelu sigmoid tanh silu hardswish hardsigmoid gelu elu exp
# mish (leaky: `leaky_alpha`; prelu: per-channel alphas in the NPZ key `alpha:0`).
LAYER_PARAMS: dict[str, tuple[str, ...]] = {
    "input_layer": (),
    "output_layer": (),
    "conv": ("kernel_shape", "strides", "dilations", "padding", "groups", "activation",
             "leaky_alpha", "elementwise_add", "batch_norm"),
    "dw": ("kernel_shape", "strides", "dilations", "padding", "activation", "leaky_alpha",
           "batch_norm"),
    "deconv": ("kernel_shape", "strides", "padding", "activation", "leaky_alpha", "batch_norm"),
    "dense": ("kernel_shape", "activation", "leaky_alpha", "batch_norm"),
    "activation": ("activation", "leaky_alpha"),
    "maxpool": ("kernel_shape", "strides", "padding"),
    "avgpool": ("kernel_shape", "strides", "padding", "count_include_pad"),
    "global_avg_pool": (),
    "concat": ("concat_axis",),
    "slice": ("begin", "end"),  # [h, w, c] each; a plain crop
    "resize": ("method", "output_shape", "align_corners", "half_pixel"),  # method nearest|bilinear
    "ew_add": ("activation", "leaky_alpha"),
    "ew_sub": ("activation", "leaky_alpha"),
    "ew_mult": ("activation", "leaky_alpha"),
    "normalization": (),  # mean / std per channel in the NPZ keys mean:0 / std:0
    "pad": ("pads", "constant_value"),  # pads [[top, bottom], [left, right], [front, back]]
    "reshape": ("output_shape",),  # [-1, h, w, c]; flatten is a reshape to [-1, 1, 1, n]
    "space_to_depth": ("block_size",),
    "depth_to_space": ("block_size", "mode"),  # mode DCR (TF) | CRD
    "feature_shuffle": ("groups",),
    "reduce_max": ("axes",),
    "reduce_sum": ("axes",),
    "softmax": ("axis",),
    "argmax": ("axis",),
}


class HNError(ValueError):
    """A malformed HN; the message names the layer and what is wrong."""


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


@dataclasses.dataclass
class HNGraph:
    name: str
    layers: dict[str, Layer]  # bare name -> layer, in topological order
    net_params: dict[str, Any] = dataclasses.field(default_factory=dict)

    # --- lookups -------------------------------------------------------------------------
    def scoped(self, bare: str) -> str:
        return f"{self.name}/{bare}"

    def layer(self, name: str) -> Layer:
        bare = name.split("/", 1)[1] if name.startswith(self.name + "/") else name
        try:
            return self.layers[bare]
        except KeyError:
            raise HNError(f"network '{self.name}' has no layer '{name}'") from None

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
