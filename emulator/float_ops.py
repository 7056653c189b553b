"""Float32 TensorFlow implementations of every HN layer type (the native / fp-optimized math).

Contract (the fake-quant target builds on it):
  run_float_layer(layer, inputs, params) -> Tensor     the layer, fused activation included
  pre_activation(layer, inputs, params) -> Tensor      the MAC / affine / op result before it
  apply_activation(x, layer, params=None) -> Tensor    the fused activation alone
`params` hold BARE keys: "kernel", "bias", "alpha", "mean", "std" (numpy arrays or tensors).
Only TF ops are used, so all three work eagerly, inside tf.function and in tf.compat.v1 graphs.
Where Keras or TFLite define an op, the same TF kernel is used so native results match them.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import tensorflow as tf

from .errors import HNError, ParamsError
from .hn import Layer
from .numerics.kernels import depthwise_op, pad_const, spatial_pads, tf_pads

Tensor = Any


def _p(params: dict[str, Any], key: str, layer: Layer) -> tf.Tensor:
    try:
        v = params[key]
    except KeyError:
        raise ParamsError(f"layer '{layer.name}' ({layer.type}) needs param '{key}:0', which is "
                          f"not loaded; load the network's NPZ with runner.load_params") from None
    return tf.cast(v, tf.float32) if isinstance(v, tf.Tensor) else tf.constant(np.asarray(v, np.float32))


# --- activations -----------------------------------------------------------------------------

def apply_activation(x: Tensor, layer: Layer, params: dict[str, Any] | None = None) -> Tensor:
    """The layer's activation (params['activation'], default linear) applied to x.
    `prelu` needs params['alpha'] (per channel, last axis)."""
    act = layer.params.get("activation", "linear")
    return activation_fn(act, x, leaky_alpha=layer.params.get("leaky_alpha", 0.2),
                         alpha=(_p(params or {}, "alpha", layer) if act == "prelu" else None))


def activation_fn(act: str, x: Tensor, leaky_alpha: float = 0.2, alpha: Tensor | None = None) -> Tensor:
    """One activation by HN name, as Keras 3 computes it on the TF backend (float32)."""
    if act == "linear":
        return x
    if act == "relu":
        return tf.nn.relu(x)
    if act == "relu6":
        return tf.nn.relu6(x)
    if act == "leaky":
        return tf.nn.leaky_relu(x, alpha=float(leaky_alpha))
    if act == "prelu":
        # Keras PReLU: relu(x) - alpha * relu(-x)
        return tf.nn.relu(x) - alpha * tf.nn.relu(-x)
    if act == "sigmoid":
        return tf.nn.sigmoid(x)
    if act == "tanh":
        return tf.nn.tanh(x)
    if act == "silu":
        return tf.nn.silu(x)
    if act == "hardsigmoid":
        return tf.nn.relu6(x + 3.0) / 6.0
    if act == "hardswish":
        return x * (tf.nn.relu6(x + 3.0) / 6.0)
    if act == "gelu":
        return tf.nn.gelu(x, approximate=False)
    if act == "gelu_tanh":
        return tf.nn.gelu(x, approximate=True)
    if act == "elu":
        return tf.nn.elu(x)
    if act == "exp":
        return tf.exp(x)
    if act == "mish":
        return x * tf.nn.tanh(tf.math.softplus(x))
    if act == "softplus":
        return tf.math.softplus(x)
    raise HNError(f"unknown activation '{act}'")


# --- helpers ---------------------------------------------------------------------------------

def _spatial(layer: Layer) -> tuple[list[int], list[int], list[int], str]:
    p = layer.params
    return (p["kernel_shape"], p["strides"], p.get("dilations", [1, 1, 1, 1]), p["padding"])


def _explicit_same(x: Tensor, layer: Layer, kh: int, kw: int, value: float = 0.0) -> Tensor:
    """Hailo's symmetric SAME: the odd extra row / column goes first (top / left)."""
    _, s, d, _ = _spatial(layer)
    h, w = layer.input_shapes[0][1], layer.input_shapes[0][2]
    pads = spatial_pads((h, w), (kh, kw), s[1:3], d[1:3], "SAME")
    return pad_const(x, [[0, 0], list(pads[0]), list(pads[1]), [0, 0]], value)


def _conv(layer: Layer, x: Tensor, kernel: Tensor) -> Tensor:
    k, s, d, pad = _spatial(layer)
    if pad == "SAME":  # Hailo's SAME as the convolution's own explicit padding (no pad op)
        h, w = layer.input_shapes[0][1:3]
        tfpad = tf_pads(spatial_pads((h, w), k[:2], s[1:3], d[1:3], "SAME"))
    else:
        tfpad = "SAME" if pad == "SAME_TENSORFLOW" else "VALID"
    groups = int(layer.params.get("groups", 1))
    if groups == 1:
        return tf.nn.conv2d(x, kernel, strides=s, padding=tfpad, dilations=d)
    # grouped conv as split / concat: TF's native grouped conv is not available on every CPU build
    xs = tf.split(x, groups, axis=3)
    ks = tf.split(kernel, groups, axis=3)
    return tf.concat([tf.nn.conv2d(a, b, strides=s, padding=tfpad, dilations=d)
                      for a, b in zip(xs, ks)], axis=3)


def _dw(layer: Layer, x: Tensor, kernel: Tensor) -> Tensor:
    k, s, d, pad = _spatial(layer)
    if s[1] != s[2]:
        # TF's depthwise kernel refuses unequal strides (Keras on TF cannot run such a layer;
        # TFLite can): the padding of the real strides made explicit, then stride 1 and a
        # subsample, which evaluates the same windows
        pads = spatial_pads(layer.input_shapes[0][1:3], k[:2], s[1:3], d[1:3], pad)
        return depthwise_op(s[1:3], d[1:3], pads)(x, kernel)
    if pad == "SAME":
        x = _explicit_same(x, layer, k[0], k[1])
    tfpad = "SAME" if pad == "SAME_TENSORFLOW" else "VALID"
    return tf.nn.depthwise_conv2d(x, kernel, strides=s, padding=tfpad, dilations=d[1:3])


def _deconv(layer: Layer, x: Tensor, kernel: Tensor) -> Tensor:
    k, s, _, pad = _spatial(layer)
    kt = tf.transpose(kernel, [0, 1, 3, 2])  # HN [kh, kw, cin, cout] -> TF [kh, kw, cout, cin]
    n = tf.shape(x)[0]
    _, oh, ow, oc = layer.output_shape
    if pad in ("VALID", "SAME_TENSORFLOW"):
        return tf.nn.conv2d_transpose(x, kt, tf.stack([n, oh, ow, oc]), strides=s,
                                      padding="SAME" if pad == "SAME_TENSORFLOW" else "VALID")
    ih, iw = layer.input_shapes[0][1:3]
    fh, fw = (ih - 1) * s[1] + k[0], (iw - 1) * s[2] + k[1]
    full = tf.nn.conv2d_transpose(x, kt, tf.stack([n, fh, fw, oc]), strides=s, padding="VALID")
    th, tw = fh - oh, fw - ow
    if th < 0 or tw < 0:
        raise HNError(f"layer '{layer.name}': SAME deconv needs kernel >= stride")
    top, left = th - th // 2, tw - tw // 2  # extra first, as for SAME convs
    return full[:, top:top + oh, left:left + ow, :]


def _pool(layer: Layer, x: Tensor, kind: str) -> Tensor:
    k, s, _, pad = _spatial(layer)
    ksize = [1, k[1], k[2], 1]
    if kind == "max":
        if pad == "SAME":
            x = _explicit_same(x, layer, k[1], k[2], value=-np.inf)  # padding never wins
            pad = "VALID"
        return tf.nn.max_pool2d(x, ksize, s, "SAME" if pad == "SAME_TENSORFLOW" else "VALID")
    include = bool(layer.params.get("count_include_pad", False))
    if pad == "SAME" or (pad == "SAME_TENSORFLOW" and include):
        ph, pw = spatial_pads(layer.input_shapes[0][1:3], k[1:3], s[1:3], (1, 1), pad)
        pads = [[0, 0], list(ph), list(pw), [0, 0]]
        xs = pad_const(x, pads)
        summed = tf.nn.avg_pool2d(xs, ksize, s, "VALID") * float(k[1] * k[2])
        if include:
            return summed / float(k[1] * k[2])
        ones = pad_const(tf.ones_like(x[:1, :, :, :1]), pads)
        count = tf.nn.avg_pool2d(ones, ksize, s, "VALID") * float(k[1] * k[2])
        return summed / count
    # TF's SAME average excludes the padding (as TFLite and Keras do)
    return tf.nn.avg_pool2d(x, ksize, s, "SAME" if pad == "SAME_TENSORFLOW" else "VALID")


def _reshape_to(x: Tensor, shape: list[int]) -> Tensor:
    return tf.reshape(x, [-1] + list(shape[1:]))


def _resize(layer: Layer, x: Tensor) -> Tensor:
    p = layer.params
    size = tf.constant(p["output_shape"][1:3], tf.int32)
    align = bool(p.get("align_corners", False))
    half = bool(p.get("half_pixel", not align))
    if p["method"] == "nearest":
        return tf.raw_ops.ResizeNearestNeighbor(images=x, size=size, align_corners=align,
                                                half_pixel_centers=half)
    if p["method"] == "bilinear":
        return tf.raw_ops.ResizeBilinear(images=x, size=size, align_corners=align,
                                         half_pixel_centers=half)
    raise HNError(f"layer '{layer.name}': resize method '{p['method']}' is not nearest|bilinear")


def _depth_to_space(layer: Layer, x: Tensor) -> Tensor:
    bs = int(layer.params["block_size"])
    if layer.params.get("mode", "DCR") == "DCR":
        return tf.nn.depth_to_space(x, bs)
    _, h, w, c = layer.input_shapes[0]
    co = c // (bs * bs)
    y = tf.reshape(x, [-1, h, w, co, bs, bs])  # CRD: channel index = c * bs^2 + r * bs + s
    y = tf.transpose(y, [0, 1, 4, 2, 5, 3])
    return tf.reshape(y, [-1, h * bs, w * bs, co])


def _feature_shuffle(layer: Layer, x: Tensor) -> Tensor:
    g = int(layer.params["groups"])
    shp = layer.input_shapes[0]
    c = shp[-1]
    y = tf.reshape(x, [-1] + shp[1:-1] + [g, c // g])
    perm = list(range(len(shp) + 1))
    perm[-2], perm[-1] = perm[-1], perm[-2]
    y = tf.transpose(y, perm)
    return tf.reshape(y, [-1] + shp[1:])


# --- the layers ------------------------------------------------------------------------------

def pre_activation(layer: Layer, inputs: list[Tensor], params: dict[str, Any]) -> Tensor:
    """The layer's result before its fused activation: conv / dw / deconv / dense return
    MAC + bias; ew_* the element-wise result; `activation` its input; every other type its
    full result (they have no activation)."""
    t = layer.type
    x = inputs[0]
    if t in ("input_layer", "output_layer", "activation"):
        return x
    if t in ("conv", "dw", "deconv", "dense"):
        kernel = _p(params, "kernel", layer)
        bias = _p(params, "bias", layer)
        if t == "conv":
            y = _conv(layer, x, kernel)
        elif t == "dw":
            y = _dw(layer, x, kernel)
        elif t == "deconv":
            y = _deconv(layer, x, kernel)
        else:
            y = tf.matmul(tf.reshape(x, [-1, int(layer.params["kernel_shape"][0])]), kernel)
        return tf.nn.bias_add(y, bias)
    if t == "ew_add":
        return inputs[0] + inputs[1]
    if t == "ew_sub":
        return inputs[0] - inputs[1]
    if t == "ew_mult":
        return inputs[0] * inputs[1]
    if t == "normalization":
        return (x - _p(params, "mean", layer)) / _p(params, "std", layer)
    if t == "maxpool":
        return _pool(layer, x, "max")
    if t == "avgpool":
        return _pool(layer, x, "avg")
    if t == "global_avg_pool":
        return _reshape_to(tf.reduce_mean(x, axis=[1, 2], keepdims=True), layer.output_shape)
    if t == "concat":
        return tf.concat(inputs, axis=int(layer.params["concat_axis"]))
    if t == "slice":
        b, e = layer.params["begin"], layer.params["end"]
        return x[(slice(None),) + tuple(slice(bb, ee) for bb, ee in zip(b, e))]
    if t == "resize":
        return _resize(layer, x)
    if t == "pad":
        pads = [[0, 0]] + [list(p) for p in layer.params["pads"]]
        return pad_const(x, pads, float(layer.params.get("constant_value", 0.0)))
    if t == "reshape":
        return _reshape_to(x, layer.output_shape)
    if t == "space_to_depth":
        return tf.nn.space_to_depth(x, int(layer.params["block_size"]))
    if t == "depth_to_space":
        return _depth_to_space(layer, x)
    if t == "feature_shuffle":
        return _feature_shuffle(layer, x)
    if t == "reduce_max":
        return _reshape_to(tf.reduce_max(x, axis=layer.params["axes"], keepdims=True), layer.output_shape)
    if t == "reduce_sum":
        return _reshape_to(tf.reduce_sum(x, axis=layer.params["axes"], keepdims=True), layer.output_shape)
    if t == "softmax":
        return tf.nn.softmax(x, axis=int(layer.params.get("axis", -1)))
    if t == "argmax":
        idx = tf.argmax(x, axis=int(layer.params["axis"]), output_type=tf.int32)
        return _reshape_to(tf.cast(idx, tf.float32), layer.output_shape)
    raise HNError(f"layer '{layer.name}': no float implementation for type '{t}'")


def run_float_layer(layer: Layer, inputs: list[Tensor], params: dict[str, Any]) -> Tensor:
    """One HN layer in float32, fused activation included (see module doc)."""
    return apply_activation(pre_activation(layer, inputs, params), layer, params)


def layer_macs(layer: Layer) -> int:
    """Multiply-accumulates of one frame through the layer (for reports and estimates)."""
    p, t = layer.params, layer.type
    out = layer.output_shape
    if t == "conv":
        k = p["kernel_shape"]
        return math.prod(out[1:]) * k[0] * k[1] * k[2]
    if t == "dw":
        k = p["kernel_shape"]
        return math.prod(out[1:]) * k[0] * k[1]
    if t == "deconv":
        k = p["kernel_shape"]
        return math.prod(layer.input_shapes[0][1:]) * k[0] * k[1] * k[3]
    if t == "dense":
        return int(np.prod(p["kernel_shape"]))
    return 0
