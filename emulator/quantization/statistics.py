"""Calibration statistics: the float network run over the calibration images, recording the
min / max of every layer's output and, for layers with a table (LUT) activation, of the
pre-activation ("<layer>/pre"), whose 16-bit grid the table is indexed by."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..numerics.activations import LUT_ACTS


SAMPLES_PER_BATCH = 1 << 18  # values kept per layer and batch for percentiles (evenly strided)


def collect_statistics(runner: Any, data: Mapping[str, np.ndarray], batch_size: int,
                       which: str = "fp_optimized", samples: dict | None = None,
                       progress: Any = None) -> dict[str, np.ndarray]:
    """Min / max of every layer's output over `data` ({input layer: float32 (N, ...)}), and of
    the pre-activation of table activations. Returns {name: float64 [min, max]}. With
    `samples` ({layer: None}), fills it with up to SAMPLES_PER_BATCH values per batch of each
    named layer's output (what percentile clipping needs). `progress(n)` is called per batch."""
    import tensorflow as tf

    from ..float_ops import apply_activation, pre_activation, run_float_layer
    from ..graph_exec import execute

    hn = runner.hn
    consts = {l.name: {k: tf.constant(v) for k, v in runner.layer_params(l.name, which).items()}
              for l in hn.topological()}
    names = [l.name for l in hn.input_layers]
    keep = sorted(samples or {})
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

        _, kept = execute(hn, dict(zip(names, xs)), fn, keep_all=bool(keep))
        return rec, [tf.reshape(kept[k], [-1]) for k in keep]

    n = next(iter(data.values())).shape[0]
    acc: dict[str, np.ndarray] = {}
    parts: dict[str, list] = {k: [] for k in keep}
    for s in range(0, n, batch_size):
        r, vals = stats(*[data[k][s:s + batch_size] for k in names])
        for k, v in r.items():
            v = v.numpy().astype(np.float64)
            acc[k] = v if k not in acc else np.array([min(acc[k][0], v[0]), max(acc[k][1], v[1])])
        for k, v in zip(keep, vals):
            v = v.numpy()
            parts[k].append(v[::max(1, v.size // SAMPLES_PER_BATCH)])
        if progress is not None:
            progress(min(batch_size, n - s))
    if samples is not None:
        samples.update({k: np.concatenate(v) for k, v in parts.items()})
    return acc
