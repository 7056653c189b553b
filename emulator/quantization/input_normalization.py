"""A model script's `name = normalization(mean, std)`: a normalization layer added after an
input layer (docs/model-script.md).

The layer computes (x - mean) / std per channel, float32, on every target: from then on the
network takes raw inputs (e.g. pixels 0..255) and normalizes them itself, so calibration images
and inference data are given raw. When the raw inputs fit the input codes and the next layer
allows it, the quantization folds the normalization into that layer (docs/numerics.md,
"Normalization"), as it folds one that came with the model.

The layer goes after the first input layer whose channel count is the normalization's, takes
over every consumer of that input, and gets the assigned name. Applying the same script again
finds the layer there with the same mean and std and changes nothing; anything else already
named so is an error.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..hn import HNGraph
from ..quant_errors import QuantizationConfigError


def _where(source: str, line: int, name: str) -> str:
    return f"{source}, line {line}: '{name} = normalization(...)'"


def add_input_normalization(runner: Any, name: str, mean: list[float], std: list[float],
                            source: str = "<script>", line: int = 0) -> bool:
    """Add the layer to runner.hn and its mean / std to the native (and fp-optimized) params.
    Returns False when the runner already has exactly this layer (nothing to do)."""
    hn = runner.hn
    mean64, std64 = np.asarray(mean, np.float64), np.asarray(std, np.float64)
    key = lambda field: f"{hn.name}/{name}/{field}:0"  # noqa: E731 (the NPZ's key form)
    if name in hn.layers:
        layer = hn.layers[name]
        params = runner.native_params or {}
        same = (layer.type == "normalization" and key("mean") in params and key("std") in params
                and np.allclose(params[key("mean")], mean64, rtol=0, atol=1e-6 * np.abs(mean64).max(initial=1))
                and np.allclose(params[key("std")], std64, rtol=1e-6))
        if same and hn.layers[layer.input[0]].type == "input_layer":
            return False
        raise QuantizationConfigError(
            f"{_where(source, line, name)}: the network already has a layer '{name}' "
            f"({layer.type}{', with another mean / std' if layer.type == 'normalization' else ''}); "
            f"assign the normalization another name")
    channels = len(mean64)
    inputs = [l for l in hn.input_layers if int(l.output_shape[-1]) == channels]
    if not inputs:
        shapes = ", ".join(f"'{l.name}' {l.output_shape[1:]}" for l in hn.input_layers)
        raise QuantizationConfigError(
            f"{_where(source, line, name)} has {channels} channels, and no input layer has "
            f"{channels} ({shapes})")
    src = inputs[0]
    d = hn.to_dict()
    layers = d["layers"]
    scoped, src_scoped = hn.scoped(name), hn.scoped(src.name)
    consumers = list(layers[src_scoped]["output"])
    new_layers: dict[str, Any] = {}
    for k, v in layers.items():
        new_layers[k] = v
        if k == src_scoped:
            shape = list(src.output_shape)
            new_layers[scoped] = {"type": "normalization", "input": [src_scoped],
                                  "output": consumers, "input_shapes": [shape],
                                  "output_shapes": [shape] * max(1, len(consumers)),
                                  "original_names": [f"{source}:{line}"], "params": {}}
    new_layers[src_scoped]["output"] = [scoped]
    new_layers[src_scoped]["output_shapes"] = [list(src.output_shape)]
    for c in consumers:
        new_layers[c]["input"] = [scoped if i == src_scoped else i for i in new_layers[c]["input"]]
    d["layers"] = new_layers
    runner.hn = HNGraph.from_dict(d, source=f"network '{hn.name}' with {_where(source, line, name)}")
    added = {key("mean"): mean64.astype(np.float32), key("std"): std64.astype(np.float32)}
    # new dicts: the compiled float targets are keyed by the identity of the HN and the params
    runner.native_params = {**runner.native_params, **added}
    if runner.fp_optimized_params is not None:
        runner.fp_optimized_params = {**runner.fp_optimized_params, **added}
    runner.quantized_params = None
    runner.stream_infos = None
    return True
