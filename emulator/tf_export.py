"""TensorFlow views of a runner: a keras.Model, and a TF1-compat graph + session (the seed's
Listings 7 and 8 under tf.compat.v1).

Float targets are built from TF ops (graph_exec + float_ops), so the exported graph is the
emulation itself. Quantized targets wrap runner.infer in tf.numpy_function: same numbers as
runner.infer, not differentiable (QFT trains its own fake-quant graph).
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import tensorflow as tf

from .errors import HNError
from .graph_exec import execute
from .targets import Target


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "_-." else "_" for c in name)


def _numpy_runner(runner: Any, target: Target, inter_layers: bool):
    outs = [l.name for l in runner.hn.output_layers]
    names = [l.name for l in runner.hn.topological()]
    ins = [l.name for l in runner.hn.input_layers]

    def run(*xs):
        res = runner.infer(target, dict(zip(ins, xs)), inter_layers=inter_layers)
        if inter_layers:
            o, a = res
            return [np.asarray(a[n], np.float32) for n in names]
        return [np.asarray(res[n], np.float32) for n in outs]

    return run


@dataclasses.dataclass
class TFGraphExport:
    """What get_tf_graph returns (names as in the seed's listings)."""

    graph: Any
    session: Any
    input_tensors: list
    output_tensors: list
    output_names: list  # scoped output-layer names, same order as output_tensors
    all_layers_names: list  # scoped names of every layer, topological
    all_layers: list  # their output tensors


def tf_graph(runner: Any, target: Target, input_tensor: Any = None) -> TFGraphExport:
    hn = runner.hn
    in_layers = hn.input_layers
    if input_tensor is None:
        graph = tf.compat.v1.get_default_graph() if not tf.executing_eagerly() else tf.Graph()
        given = None
    else:
        flat = list(input_tensor.values()) if isinstance(input_tensor, dict) else \
            list(input_tensor) if isinstance(input_tensor, (list, tuple)) else [input_tensor]
        if not all(hasattr(t, "graph") for t in flat):
            raise HNError("get_tf_graph needs graph-mode tensors (tf.compat.v1.placeholder inside "
                          "`with tf.Graph().as_default():`), not eager tensors")
        graph = flat[0].graph
        if isinstance(input_tensor, dict):
            given = {hn.layer(k).name: v for k, v in input_tensor.items()}
        else:
            if len(flat) != len(in_layers):
                raise HNError(f"network '{hn.name}' has {len(in_layers)} inputs, "
                              f"{len(flat)} input tensors given")
            given = {l.name: t for l, t in zip(in_layers, flat)}
    with graph.as_default(), tf.name_scope(_safe(hn.name)):
        if given is None:
            given = {l.name: tf.compat.v1.placeholder(tf.float32, [None, *l.output_shape[1:]],
                                                      name=_safe(l.name)) for l in in_layers}
        # the seed's placeholder has no shape: give it the input layer's
        xs = {n: tf.reshape(tf.cast(t, tf.float32), [-1, *hn.layer(n).output_shape[1:]])
              for n, t in given.items()}
        names = [l.name for l in hn.topological()]
        if target.quantized:
            if runner.quantized_params is None:
                from .errors import NotQuantizedError

                raise NotQuantizedError(repr(target))
            order = [xs[l.name] for l in in_layers]
            outs = tf.compat.v1.numpy_function(_numpy_runner(runner, target, False), order,
                                               [tf.float32] * len(hn.output_layers))
            alls = tf.compat.v1.numpy_function(_numpy_runner(runner, target, True), order,
                                               [tf.float32] * len(names))
            for t, l in zip(outs, hn.output_layers):
                t.set_shape([None, *l.output_shape[1:]])
            for t, n in zip(alls, names):
                t.set_shape([None, *hn.layer(n).output_shape[1:]])
            out_t = [tf.identity(t, name=_safe(l.name)) for t, l in zip(outs, hn.output_layers)]
            all_t = [tf.identity(t, name=_safe(n) + "_all") for t, n in zip(alls, names)]
        else:
            ex = runner._executor(target)
            layer_t: dict[str, Any] = {}

            def fn(layer, args):
                with tf.name_scope(_safe(layer.name)):
                    y = ex.layer_fn(layer, args)
                    y = tf.identity(y, name="output")
                layer_t[layer.name] = y
                return y

            outs_d, _ = execute(hn, xs, fn, keep_all=True)
            out_t = [outs_d[l.name] for l in hn.output_layers]
            all_t = [layer_t[n] for n in names]
        session = tf.compat.v1.Session(graph=graph)
    return TFGraphExport(
        graph=graph, session=session, input_tensors=[given[l.name] for l in in_layers],
        output_tensors=out_t, output_names=[hn.scoped(l.name) for l in hn.output_layers],
        all_layers_names=[hn.scoped(n) for n in names], all_layers=all_t)


def keras_model(runner: Any, target: Target):
    """A keras.Model (functional, one custom layer holding the whole network)."""
    import keras

    hn = runner.hn
    in_layers = hn.input_layers
    out_layers = hn.output_layers
    if target.quantized and runner.quantized_params is None:  # before Keras wraps the error
        from .errors import NotQuantizedError

        raise NotQuantizedError(repr(target))

    class HNNetwork(keras.layers.Layer):
        """The HN network as one Keras layer (float targets: TF ops; quantized: numpy_function)."""

        def __init__(self, **kw):
            super().__init__(name=_safe(hn.name), trainable=False, **kw)

        def call(self, *xs):
            xs = list(xs[0]) if len(xs) == 1 and isinstance(xs[0], (list, tuple)) else list(xs)
            if target.quantized:
                outs = tf.numpy_function(_numpy_runner(runner, target, False), xs,
                                         [tf.float32] * len(out_layers))
                return [tf.ensure_shape(o, [None, *l.output_shape[1:]]) for o, l in zip(outs, out_layers)]
            ex = runner._executor(target)
            d, _ = execute(hn, {l.name: x for l, x in zip(in_layers, xs)}, ex.layer_fn)
            return [d[l.name] for l in out_layers]

        def compute_output_spec(self, *xs):
            return [keras.KerasTensor((None, *l.output_shape[1:]), dtype="float32") for l in out_layers]

    inputs = [keras.Input(shape=tuple(l.output_shape[1:]), name=_safe(l.name)) for l in in_layers]
    outs = HNNetwork()(inputs if len(inputs) > 1 else inputs[0])
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    return keras.Model(inputs if len(inputs) > 1 else inputs[0],
                       list(outs) if len(outs) > 1 else outs[0], name=_safe(hn.name))
