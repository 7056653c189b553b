"""Walk an HN graph with a per-layer function: the one traversal every emulation target shares.

Native and fp-optimized float pass `float_ops.run_float_layer`; fake-quant and bit-exact targets
pass their own layer functions. The walk is plain Python over tensors, so it works eagerly, inside
tf.function and in tf.compat.v1 graph mode alike.
"""
from __future__ import annotations

from typing import Any, Callable

from .errors import HNError
from .hn import HNGraph, Layer

Tensor = Any  # tf.Tensor, np.ndarray, or whatever the layer function works on


def execute(hn: HNGraph, inputs: dict[str, Tensor],
            layer_fn: Callable[[Layer, list[Tensor]], Tensor],
            keep_all: bool = False) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Run `layer_fn(layer, input_tensors)` over the layers in topological order.

    inputs: input-layer bare name -> tensor (an input layer's function receives [that tensor]).
    Returns (outputs, all_layers): outputs keyed by output-layer bare name, in
    net_params.output_layers_order; all_layers holds every layer's output keyed by bare name
    when keep_all, else it is {}. Tensors no consumer still needs are released as the walk goes,
    unless keep_all.
    """
    missing = [l.name for l in hn.input_layers if l.name not in inputs]
    if missing:
        raise HNError(f"network '{hn.name}': no data given for input layer(s) {missing} "
                      f"(inputs given: {sorted(inputs)})")
    extra = set(inputs) - {l.name for l in hn.input_layers}
    if extra:
        raise HNError(f"network '{hn.name}': {sorted(extra)} are not input layers "
                      f"(input layers: {[l.name for l in hn.input_layers]})")
    order = hn.topological()
    # how many consumers still need each tensor, to free intermediates early
    pending = {l.name: len(l.output) for l in order}
    values: dict[str, Tensor] = {}
    kept: dict[str, Tensor] = {}
    output_names = {l.name for l in hn.output_layers}
    for layer in order:
        if layer.type == "input_layer":
            args = [inputs[layer.name]]
        else:
            args = [values[i] for i in layer.input]
        out = layer_fn(layer, args)
        values[layer.name] = out
        if keep_all:
            kept[layer.name] = out
        else:
            for i in dict.fromkeys(layer.input):
                pending[i] -= layer.input.count(i)
                if pending[i] <= 0 and i not in output_names:
                    values.pop(i, None)
    outputs = {l.name: values[l.name] for l in hn.output_layers}
    return outputs, kept
