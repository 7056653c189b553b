"""Small hand-built networks that exercise every quantized layer type (odd sizes, SAME padding
at borders, strides, dilations, groups, broadcasting, tables, host ops). Their weights are
random: they serve bit-exactness tests only, never accuracy claims."""
from __future__ import annotations

import numpy as np

from emulator.importers.builder import GraphBuilder


def _w(rng, *shape, fan_in=None):
    fan_in = fan_in or int(np.prod(shape[:-1]))
    return (rng.normal(size=shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def _b(rng, n, scale=0.1):
    return (rng.normal(size=n) * scale).astype(np.float32)


def all_ops_net(seed: int = 0):
    """Input 13x11x3 in [-1, 1]: on-chip normalization, SAME/SAME_TENSORFLOW/VALID convs with
    strides, dilation and groups, depthwise, every activation class (clamp, two-slope, tables),
    pools, both resizes, concat with requantization, ew add/sub/mult with broadcasting,
    standalone activations, deconv, data movement, GAP, dense, reductions, softmax at an output.
    Returns (hn, native params)."""
    rng = np.random.default_rng(seed)
    g = GraphBuilder("all_ops_net")
    x = g.add_input([-1, 13, 11, 3], "in")
    n = g.add("normalization", [x], [-1, 13, 11, 3], {},
              {"mean": np.array([0.1, -0.2, 0.05]), "std": np.array([0.5, 0.7, 0.9])}, "norm")
    c1 = g.add("conv", [n], [-1, 7, 6, 8], {"strides": [1, 2, 2, 1], "dilations": [1, 1, 1, 1],
               "padding": "SAME", "groups": 1, "activation": "relu6"},
               {"kernel": _w(rng, 3, 3, 3, 8), "bias": _b(rng, 8)}, "conv1")
    d1 = g.add("dw", [c1], [-1, 7, 6, 8], {"strides": [1, 1, 1, 1], "dilations": [1, 1, 1, 1],
               "padding": "SAME_TENSORFLOW", "activation": "leaky", "leaky_alpha": 0.1},
               {"kernel": _w(rng, 3, 3, 8, 1, fan_in=9), "bias": _b(rng, 8)}, "dw1")
    c2 = g.add("conv", [d1], [-1, 7, 6, 12], {"strides": [1, 1, 1, 1], "dilations": [1, 1, 1, 1],
               "padding": "VALID", "groups": 1, "activation": "silu"},
               {"kernel": _w(rng, 1, 1, 8, 12), "bias": _b(rng, 12)}, "conv2")
    ap = g.add("avgpool", [c2], [-1, 7, 6, 12], {"kernel_shape": [1, 3, 3, 1], "strides": [1, 1, 1, 1],
               "padding": "SAME", "count_include_pad": False}, source="avgpool")
    rb = g.add("resize", [ap], [-1, 14, 12, 12], {"method": "bilinear", "output_shape": [-1, 14, 12, 12],
               "align_corners": False, "half_pixel": True}, source="up_bilinear")
    rn = g.add("resize", [c2], [-1, 14, 12, 12], {"method": "nearest", "output_shape": [-1, 14, 12, 12],
               "align_corners": True, "half_pixel": False}, source="up_nearest")
    cat = g.add("concat", [rb, rn], [-1, 14, 12, 24], {"concat_axis": 3}, source="concat")
    c3 = g.add("conv", [cat], [-1, 7, 6, 16], {"strides": [1, 2, 2, 1], "dilations": [1, 1, 1, 1],
               "padding": "SAME_TENSORFLOW", "groups": 1, "activation": "gelu"},
               {"kernel": _w(rng, 3, 3, 24, 16), "bias": _b(rng, 16)}, "conv3")
    c4 = g.add("conv", [c2], [-1, 7, 6, 16], {"strides": [1, 1, 1, 1], "dilations": [1, 1, 1, 1],
               "padding": "VALID", "groups": 1, "activation": "tanh"},
               {"kernel": _w(rng, 1, 1, 12, 16), "bias": _b(rng, 16)}, "conv4")
    ea = g.add("ew_add", [c3, c4], [-1, 7, 6, 16], {"activation": "relu"}, source="add")
    es = g.add("ew_sub", [c3, c4], [-1, 7, 6, 16], {"activation": "linear"}, source="sub")
    sg = g.add("activation", [es], [-1, 7, 6, 16], {"activation": "sigmoid"}, source="sigmoid")
    mp = g.add("maxpool", [ea], [-1, 1, 1, 16], {"kernel_shape": [1, 7, 6, 1], "strides": [1, 7, 6, 1],
               "padding": "VALID"}, source="se_pool")
    em = g.add("ew_mult", [sg, mp], [-1, 7, 6, 16], {"activation": "linear"}, source="mult")
    dc = g.add("deconv", [em], [-1, 14, 12, 8], {"strides": [1, 2, 2, 1], "padding": "SAME",
               "activation": "hardswish"}, {"kernel": _w(rng, 3, 3, 16, 8, fan_in=36), "bias": _b(rng, 8)},
               "deconv")
    pd = g.add("pad", [dc], [-1, 16, 14, 8], {"pads": [[1, 1], [0, 2], [0, 0]], "constant_value": 0.0}, source="pad")
    sl = g.add("slice", [pd], [-1, 14, 12, 8], {"begin": [1, 1, 0], "end": [15, 13, 8]}, source="slice")
    s2d = g.add("space_to_depth", [sl], [-1, 7, 6, 32], {"block_size": 2}, source="s2d")
    fs = g.add("feature_shuffle", [s2d], [-1, 7, 6, 32], {"groups": 4}, source="shuffle")
    d2s = g.add("depth_to_space", [fs], [-1, 14, 12, 8], {"block_size": 2, "mode": "CRD"}, source="d2s")
    c5 = g.add("conv", [d2s], [-1, 14, 12, 8], {"strides": [1, 1, 1, 1], "dilations": [1, 2, 2, 1],
               "padding": "SAME", "groups": 2, "activation": "elu"},
               {"kernel": _w(rng, 3, 3, 4, 8), "bias": _b(rng, 8)}, "conv5")
    act = g.add("activation", [c5], [-1, 14, 12, 8], {"activation": "prelu"},
                {"alpha": rng.uniform(-0.3, 0.6, 8)}, "prelu")
    gp = g.add("global_avg_pool", [act], [-1, 1, 1, 8], {}, source="gap")
    de1 = g.add("dense", [gp], [-1, 10], {"activation": "prelu"},
                {"kernel": _w(rng, 8, 10), "bias": _b(rng, 10), "alpha": rng.uniform(0, 0.5, 10)}, "fc1")
    de2 = g.add("dense", [de1], [-1, 5], {"activation": "linear"},
                {"kernel": _w(rng, 10, 5), "bias": _b(rng, 5)}, "fc2")
    sm = g.add("softmax", [de2], [-1, 5], {"axis": 1}, source="softmax")
    rmax = g.add("reduce_max", [c5], [-1, 14, 12, 1], {"axes": [3]}, source="rmax")
    rsum = g.add("reduce_sum", [act], [-1, 1, 1, 8], {"axes": [1, 2]}, source="rsum")
    for o in (sm, rmax, rsum, c4):
        g.add_output(o)
    return g.build("allops")


def folded_norm_net(seed: int = 1, same: bool = False):
    """Raw 0..255 pixels -> normalization -> conv (VALID: folded; SAME: on chip) -> ... -> dense."""
    rng = np.random.default_rng(seed)
    g = GraphBuilder("norm_net")
    x = g.add_input([-1, 12, 12, 3], "in")
    n = g.add("normalization", [x], [-1, 12, 12, 3], {},
              {"mean": np.array([123.7, 116.3, 103.5]), "std": np.array([58.4, 57.1, 57.4])}, "norm")
    c1 = g.add("conv", [n], [-1, 12 if same else 10, 12 if same else 10, 8],
               {"strides": [1, 1, 1, 1], "dilations": [1, 1, 1, 1], "padding": "SAME" if same else "VALID",
                "groups": 1, "activation": "relu"}, {"kernel": _w(rng, 3, 3, 3, 8), "bias": _b(rng, 8)}, "conv1")
    gp = g.add("global_avg_pool", [c1], [-1, 1, 1, 8], {}, source="gap")
    d = g.add("dense", [gp], [-1, 4], {"activation": "linear"},
              {"kernel": _w(rng, 8, 4), "bias": _b(rng, 4)}, "fc")
    g.add_output(d)
    g.add_output(c1)
    return g.build("normnet")


def unequal_strides_net(seed: int = 2):
    """Input 12x13x3: depthwise with strides (1, 2) and (2, 1) (SAME, SAME_TENSORFLOW), and an
    average pool with strides (2, 1) (SAME, padding excluded from the count)."""
    rng = np.random.default_rng(seed)
    g = GraphBuilder("unequal_strides_net")
    x = g.add_input([-1, 12, 13, 3], "in")
    d1 = g.add("dw", [x], [-1, 12, 7, 6], {"strides": [1, 1, 2, 1], "dilations": [1, 1, 1, 1],
               "padding": "SAME", "activation": "relu"},
               {"kernel": _w(rng, 3, 3, 3, 2, fan_in=9), "bias": _b(rng, 6)}, "dw_1x2")
    d2 = g.add("dw", [d1], [-1, 6, 7, 6], {"strides": [1, 2, 1, 1], "dilations": [1, 1, 1, 1],
               "padding": "SAME_TENSORFLOW", "activation": "linear"},
               {"kernel": _w(rng, 3, 2, 6, 1, fan_in=6), "bias": _b(rng, 6)}, "dw_2x1")
    ap = g.add("avgpool", [d2], [-1, 3, 7, 6], {"kernel_shape": [1, 3, 2, 1], "strides": [1, 2, 1, 1],
               "padding": "SAME", "count_include_pad": False}, source="avgpool_2x1")
    g.add_output(ap)
    return g.build("unequal")


def pad_residual_net(seed: int = 3):
    """The smallest graph that crashed TensorFlow's oneDNN layout pass (SIGSEGV in
    MklLayoutRewritePass, BlazeFace's channel-padded residual): input 8x8x4 -> zero channel
    pad to 8 -> added to a 1x1 VALID conv with bias of the same input. Returns (hn, params)."""
    rng = np.random.default_rng(seed)
    g = GraphBuilder("pad_residual_net")
    x = g.add_input([-1, 8, 8, 4], "in")
    pd = g.add("pad", [x], [-1, 8, 8, 8], {"pads": [[0, 0], [0, 0], [0, 4]], "constant_value": 0.0},
               source="channel_pad")
    c = g.add("conv", [x], [-1, 8, 8, 8], {"strides": [1, 1, 1, 1], "dilations": [1, 1, 1, 1],
              "padding": "VALID", "groups": 1, "activation": "linear"},
              {"kernel": _w(rng, 1, 1, 4, 8), "bias": _b(rng, 8)}, "conv")
    add = g.add("ew_add", [pd, c], [-1, 8, 8, 8], {"activation": "relu"}, source="add")
    g.add_output(add)
    return g.build("pad_residual")
