"""parse_keras: a Keras 3 model (functional, sequential, subclassed, nested) -> ClientRunner.

The model's graph is walked symbolically; each Keras layer or op maps onto builder nodes
(importers/builder.py does the folding and the Hailo-style naming). Subclassed models are traced
first: their `call` is run on symbolic Keras inputs, which records the graph of the layers it
uses (as for MTCNN's nets); nested models are expanded in place. Layer source names (with the
nesting path) go to original_names. Anything that is not mapped is an UnsupportedOpError naming
the layer class and the layer, never skipped.
"""
from __future__ import annotations

import re
from typing import Any

import numpy as np

from ..errors import ModelImportError, UnsupportedOpError
from .builder import GraphBuilder

_ADVICE = ("replace it with built-in Keras layers, or convert the model to a float TFLite file "
           "with builtin ops only and use parse_tflite")

# Keras activation function names -> HN activation names ("softmax" becomes a softmax layer)
_ACT = {"linear": "linear", "relu": "relu", "relu6": "relu6", "sigmoid": "sigmoid", "tanh": "tanh",
        "swish": "silu", "silu": "silu", "hard_swish": "hardswish", "hard_silu": "hardswish",
        "hard_sigmoid": "hardsigmoid", "gelu": "gelu", "elu": "elu", "exponential": "exp",
        "mish": "mish", "softplus": "softplus", "leaky_relu": "leaky", "softmax": "softmax"}


class _T:
    """A symbolic tensor during the walk: a builder node id (and its shape)."""

    __slots__ = ("id",)

    def __init__(self, nid: int):
        self.id = nid


def parse_keras(model: Any, net_name: str | None = None, input_shape: Any = None):
    """Parse a Keras 3 model into a ClientRunner holding the HN and native params.

    input_shape: (H, W, C), or a list of them for several inputs, without the batch axis.
    Needed when the model's own input shape has unknown dimensions (e.g. MTCNN's PNet) or is
    not recorded (a subclassed model never built); overrides it otherwise.
    """
    import keras

    from ..runner import ClientRunner

    if not isinstance(model, keras.Model):
        raise ModelImportError(f"parse_keras needs a keras.Model, got {type(model).__name__}")
    source = f"Keras model '{model.name}'"
    shapes = _input_shapes(model, input_shape, source)
    b = GraphBuilder(source)
    names = _input_names(model, len(shapes))
    handles = [_T(b.add_input([-1, *s], names[i])) for i, s in enumerate(shapes)]
    walker = _Walker(b, source)
    outs = walker.call(model, [handles[0] if len(handles) == 1 else handles], {}, prefix="")
    import keras.src.tree as tree

    for o in tree.flatten(outs):
        if not isinstance(o, _T):
            raise ModelImportError(f"{source}: an output is not a tensor computed from the inputs")
        b.add_output(o.id)
    hn, params = b.build(_net_name(net_name or model.name))
    runner = ClientRunner(hn=hn)
    runner.load_params(params)
    return runner


def _net_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name) or "net"


def _input_names(model: Any, n: int) -> list[str]:
    try:
        return [t.name for t in model.inputs][:n] if len(model.inputs) == n else [f"input_{i}" for i in range(n)]
    except (AttributeError, ValueError, TypeError):
        return [f"input_{i}" for i in range(n)]


def _declared_shapes(model: Any) -> list[tuple] | None:
    try:
        return [tuple(t.shape[1:]) for t in model.inputs] or None
    except (AttributeError, ValueError, TypeError):  # a subclassed model has no recorded inputs
        return None


def _given_shapes(given: Any, declared: list[tuple] | None, source: str) -> list[tuple[int, ...]]:
    """input_shape as a list of shapes, checked against the model's declared inputs."""
    bad = ModelImportError(f"{source}: input_shape={given!r} is not (H, W, C) or a list of such "
                           f"tuples of positive ints")
    if isinstance(given, (str, bytes)) or not isinstance(given, (list, tuple)) or not given:
        raise bad
    shapes = [given] if all(isinstance(d, (int, np.integer)) for d in given) else list(given)
    if not all(isinstance(s, (list, tuple)) and s and all(isinstance(d, (int, np.integer)) for d in s)
               for s in shapes):
        raise bad
    shapes = [tuple(int(d) for d in s) for s in shapes]
    if declared is not None:
        if len(shapes) != len(declared):
            raise ModelImportError(f"{source}: the model has {len(declared)} input(s) {declared}, "
                                   f"input_shape gives {len(shapes)}")
        for s, d in zip(shapes, declared):
            if len(s) != len(d) or any(dd is not None and int(dd) != ss for ss, dd in zip(s, d)):
                raise ModelImportError(f"{source}: input_shape {s} does not fit the model's input "
                                       f"{d} (None: free); give a shape of that rank with the fixed "
                                       f"dimensions kept")
    return shapes


def _input_shapes(model: Any, given: Any, source: str) -> list[tuple[int, ...]]:
    if given is not None:
        shapes = _given_shapes(given, _declared_shapes(model), source)
    else:
        shapes = _declared_shapes(model)
        if not shapes:
            bs = getattr(model, "_build_shapes_dict", None) or {}
            vals = list(bs.values())
            if vals:
                v = vals[0]
                shapes = [tuple(v[1:])] if all(d is None or isinstance(d, int) for d in v) \
                    else [tuple(s[1:]) for s in v]
    if not shapes:
        raise ModelImportError(f"{source}: input shape unknown (the model was never built); "
                               f"pass input_shape=(H, W, C) to parse_keras")
    for s in shapes:
        if any(d is None or int(d) <= 0 for d in s):
            raise ModelImportError(f"{source}: input shape {s} has unknown dimensions (a fully "
                                   f"convolutional model?); pass input_shape=(H, W, C) to parse_keras")
    return [tuple(int(d) for d in s) for s in shapes]


class _Walker:
    def __init__(self, b: GraphBuilder, source: str):
        self.b = b
        self.source = source

    # --- graph traversal -------------------------------------------------------------------
    def call(self, op: Any, args: list, kwargs: dict, prefix: str) -> Any:
        import keras
        from keras.src.models.functional import Functional

        if isinstance(op, keras.Sequential):
            x = args[0]
            for layer in op.layers:
                x = self.call(layer, [x], {}, prefix + op.name + "/")
            return x
        if isinstance(op, Functional):
            inner = prefix + op.name + "/"  # nesting path, kept in original_names
            return op._run_through_graph(
                args[0] if len(args) == 1 else list(args), operation_fn=lambda o: o,
                call_fn=lambda o, *a, **k: self.call(o, list(a), k, inner))
        if isinstance(op, keras.Model):
            return self.call(self._trace(op, args), args, kwargs, prefix)
        if isinstance(op, keras.layers.Layer):
            return self.layer(op, args, kwargs, prefix + op.name)
        return self.operation(op, args, kwargs, prefix + getattr(op, "name", type(op).__name__))

    def _trace(self, model: Any, args: list) -> Any:
        """A functional twin of a subclassed model: its call() run on symbolic inputs."""
        import keras
        import keras.src.tree as tree

        flat = tree.flatten(args)
        ins = [keras.Input(shape=tuple(self.b.shape(h.id)[1:]), batch_size=None) for h in flat]
        try:
            out = model.call(ins[0] if len(ins) == 1 else ins)
            fm = keras.Model(ins[0] if len(ins) == 1 else ins, out, name=model.name)
        except UnsupportedOpError:
            raise
        except Exception as e:  # the call() uses something that is not a Keras layer / op
            raise UnsupportedOpError(
                f"subclassed model {type(model).__name__}", model.name, self.source,
                f"its call() could not be traced on symbolic Keras inputs ({type(e).__name__}: "
                f"{e}); use only Keras layers and keras.ops in call(), or {_ADVICE}") from None
        return fm

    def _shape(self, t: _T) -> list[int]:
        return self.b.shape(t.id)

    def _out_shape(self, op: Any, args: list, kwargs: dict) -> list[int]:
        """Output shape as Keras computes it for the concrete input shapes."""
        import keras
        import keras.src.tree as tree

        def to_kt(v):
            return keras.KerasTensor((None, *self._shape(v)[1:])) if isinstance(v, _T) else v

        a = tree.map_structure(to_kt, args)
        k = tree.map_structure(to_kt, kwargs)
        try:
            spec = op.compute_output_spec(*a, **k)
        except (ValueError, TypeError) as e:  # Keras's own check of the input shapes
            shapes = [self._shape(v) for v in tree.flatten(args) if isinstance(v, _T)]
            raise ModelImportError(
                f"{self.source}: {type(op).__name__} '{getattr(op, 'name', '?')}' cannot take "
                f"inputs of shape {shapes}: {e}. Check input_shape against the model") from None
        flat = tree.flatten(spec)
        return [-1, *[int(d) for d in flat[0].shape[1:]]]

    # --- layers ----------------------------------------------------------------------------
    def layer(self, layer: Any, args: list, kwargs: dict, name: str) -> Any:
        cls = type(layer).__name__
        fn = getattr(self, "_l_" + cls, None)
        if fn is None:
            raise UnsupportedOpError(f"Keras layer {cls}", name, self.source, _ADVICE)
        if getattr(layer, "data_format", "channels_last") not in (None, "channels_last"):
            raise UnsupportedOpError(f"{cls} with data_format={layer.data_format}", name,
                                     self.source, "use channels_last (NHWC)")
        ts = [a for a in _flat(args) if isinstance(a, _T)]
        return fn(layer, ts, args, kwargs, name)

    def _act(self, x: int, act_fn: Any, name: str) -> _T:
        aname = _act_name(act_fn, name, self.source)
        if aname == "softmax":
            shp = self.b.shape(x)
            return _T(self.b.add("softmax", [x], shp, {"axis": len(shp) - 1}, source=name))
        return _T(self.b.add_activation(x, aname, name, leaky_alpha=0.2))

    def _conv_params(self, layer: Any, name: str) -> dict:
        pad = layer.padding.lower()
        if pad not in ("valid", "same"):
            raise UnsupportedOpError(f"{type(layer).__name__} padding={pad}", name, self.source,
                                     "use padding 'valid' or 'same'")
        s = layer.strides
        d = getattr(layer, "dilation_rate", (1, 1))
        return {"strides": [1, s[0], s[1], 1], "dilations": [1, d[0], d[1], 1],
                "padding": "VALID" if pad == "valid" else "SAME_TENSORFLOW"}

    def _l_InputLayer(self, layer, ts, args, kwargs, name):
        return ts[0]

    def _identity(self, layer, ts, args, kwargs, name):
        return ts[0]

    _l_Dropout = _l_SpatialDropout1D = _l_SpatialDropout2D = _l_GaussianNoise = _identity
    _l_GaussianDropout = _l_AlphaDropout = _l_ActivityRegularization = _l_Identity = _identity

    def _l_Conv2D(self, layer, ts, args, kwargs, name):
        x = ts[0].id
        k = np.asarray(layer.kernel.numpy())
        w = {"kernel": k}
        if layer.use_bias:
            w["bias"] = layer.bias.numpy()
        p = self._conv_params(layer, name)
        p["groups"] = int(getattr(layer, "groups", 1))
        y = self.b.add("conv", [x], self._out_shape(layer, args, kwargs), p, w, name)
        return self._act(y, layer.activation, name)

    def _l_DepthwiseConv2D(self, layer, ts, args, kwargs, name):
        w = {"kernel": layer.kernel.numpy()}
        if layer.use_bias:
            w["bias"] = layer.bias.numpy()
        y = self.b.add("dw", [ts[0].id], self._out_shape(layer, args, kwargs),
                       self._conv_params(layer, name), w, name)
        return self._act(y, layer.activation, name)

    def _l_SeparableConv2D(self, layer, ts, args, kwargs, name):
        dk = layer.depthwise_kernel.numpy()
        pk = layer.pointwise_kernel.numpy()
        out = self._out_shape(layer, args, kwargs)
        dshape = [-1, out[1], out[2], dk.shape[2] * dk.shape[3]]
        d = self.b.add("dw", [ts[0].id], dshape, self._conv_params(layer, name), {"kernel": dk}, name)
        w = {"kernel": pk}
        if layer.use_bias:
            w["bias"] = layer.bias.numpy()
        p = {"strides": [1, 1, 1, 1], "dilations": [1, 1, 1, 1], "padding": "VALID", "groups": 1}
        y = self.b.add("conv", [d], out, p, w, name)
        return self._act(y, layer.activation, name)

    def _l_Conv2DTranspose(self, layer, ts, args, kwargs, name):
        if getattr(layer, "output_padding", None) not in (None, (0, 0), [0, 0]):
            raise UnsupportedOpError("Conv2DTranspose with output_padding", name, self.source,
                                     "leave output_padding=None")
        if tuple(layer.dilation_rate) != (1, 1):
            raise UnsupportedOpError("Conv2DTranspose with dilation", name, self.source,
                                     "use dilation_rate=1")
        k = layer.kernel.numpy()  # Keras: [kh, kw, cout, cin]
        w = {"kernel": np.transpose(k, (0, 1, 3, 2))}
        if layer.use_bias:
            w["bias"] = layer.bias.numpy()
        p = self._conv_params(layer, name)
        p.pop("dilations")
        y = self.b.add("deconv", [ts[0].id], self._out_shape(layer, args, kwargs), p, w, name)
        return self._act(y, layer.activation, name)

    def _l_Dense(self, layer, ts, args, kwargs, name):
        x = ts[0].id
        shp = self.b.shape(x)
        k = layer.kernel.numpy()
        w = {"kernel": k}
        if layer.use_bias:
            w["bias"] = layer.bias.numpy()
        if len(shp) == 2:
            y = self.b.add("dense", [x], [-1, k.shape[1]], {}, w, name)
        elif len(shp) == 4:
            # Keras Dense acts on the last axis: on a feature map that is a 1x1 conv
            w["kernel"] = k.reshape(1, 1, *k.shape)
            p = {"strides": [1, 1, 1, 1], "dilations": [1, 1, 1, 1], "padding": "VALID", "groups": 1}
            y = self.b.add("conv", [x], shp[:3] + [k.shape[1]], p, w, name)
        else:
            raise UnsupportedOpError(f"Dense on a rank-{len(shp)} input", name, self.source,
                                     "flatten the input first, or use a 2-D / 4-D input")
        return self._act(y, layer.activation, name)

    def _l_BatchNormalization(self, layer, ts, args, kwargs, name):
        x = ts[0].id
        rank = len(self.b.shape(x))
        axis = layer.axis if isinstance(layer.axis, int) else layer.axis[0]
        if axis not in (-1, rank - 1):
            raise UnsupportedOpError(f"BatchNormalization over axis {axis}", name, self.source,
                                     "normalize over the channel (last) axis")
        mean = layer.moving_mean.numpy().astype(np.float64)
        var = layer.moving_variance.numpy().astype(np.float64)
        gamma = layer.gamma.numpy().astype(np.float64) if layer.scale else 1.0
        beta = layer.beta.numpy().astype(np.float64) if layer.center else 0.0
        scale = gamma / np.sqrt(var + layer.epsilon)
        return _T(self.b.add_affine(x, scale, beta - mean * scale, name))

    def _l_Activation(self, layer, ts, args, kwargs, name):
        return self._act(ts[0].id, layer.activation, name)

    def _l_ReLU(self, layer, ts, args, kwargs, name):
        mv = layer.max_value
        ns = float(layer.negative_slope)
        th = float(layer.threshold)
        if th == 0 and ns == 0 and mv is None:
            act = "relu"
        elif th == 0 and ns == 0 and mv is not None and float(mv) == 6.0:
            act = "relu6"
        elif th == 0 and mv is None and ns > 0:
            return _T(self.b.add_activation(ts[0].id, "leaky", name, leaky_alpha=ns))
        else:
            raise UnsupportedOpError(f"ReLU(max_value={mv}, negative_slope={ns}, threshold={th})",
                                     name, self.source, "supported: plain ReLU, ReLU6, leaky ReLU")
        return _T(self.b.add_activation(ts[0].id, act, name))

    def _l_LeakyReLU(self, layer, ts, args, kwargs, name):
        return _T(self.b.add_activation(ts[0].id, "leaky", name, leaky_alpha=float(layer.negative_slope)))

    def _l_PReLU(self, layer, ts, args, kwargs, name):
        x = ts[0].id
        c = self.b.shape(x)[-1]
        a = layer.alpha.numpy()
        flat = a.reshape(-1, a.shape[-1]) if a.ndim > 1 else a.reshape(1, -1)
        if flat.shape[-1] != c or not np.all(flat == flat[:1]):
            raise UnsupportedOpError(f"PReLU with alphas of shape {list(a.shape)}", name, self.source,
                                     "alphas must be shared over H and W: use shared_axes=[1, 2]")
        return _T(self.b.add_activation(x, "prelu", name, alpha=flat[0]))

    def _l_ELU(self, layer, ts, args, kwargs, name):
        if float(layer.alpha) != 1.0:
            raise UnsupportedOpError(f"ELU(alpha={layer.alpha})", name, self.source, "only alpha=1")
        return _T(self.b.add_activation(ts[0].id, "elu", name))

    def _l_Softmax(self, layer, ts, args, kwargs, name):
        shp = self.b.shape(ts[0].id)
        axis = layer.axis if isinstance(layer.axis, int) else list(layer.axis)
        if axis not in (-1, len(shp) - 1, [-1], [len(shp) - 1]):
            raise UnsupportedOpError(f"Softmax over axis {axis}", name, self.source,
                                     "softmax over the last axis only")
        return _T(self.b.add("softmax", [ts[0].id], shp, {"axis": len(shp) - 1}, source=name))

    def _ew(self, kind: str, ts: list[_T], name: str) -> _T:
        if len(ts) < 2:
            raise UnsupportedOpError(f"{kind} with {len(ts)} input", name, self.source, "needs two inputs")
        y = ts[0].id
        for t in ts[1:]:
            shp = [-1] + [max(a, b) for a, b in zip(self.b.shape(y)[1:], self.b.shape(t.id)[1:])]
            y = self.b.add(kind, [y, t.id], shp, {}, source=name)
        return _T(y)

    def _l_Add(self, layer, ts, args, kwargs, name):
        return self._ew("ew_add", ts, name)

    def _l_Subtract(self, layer, ts, args, kwargs, name):
        return self._ew("ew_sub", ts, name)

    def _l_Multiply(self, layer, ts, args, kwargs, name):
        return self._ew("ew_mult", ts, name)

    def _l_Concatenate(self, layer, ts, args, kwargs, name):
        rank = len(self.b.shape(ts[0].id))
        axis = layer.axis % rank
        if axis == 0:
            raise UnsupportedOpError("Concatenate over the batch axis", name, self.source, "")
        return _T(self.b.add("concat", [t.id for t in ts], self._out_shape(layer, args, kwargs),
                             {"concat_axis": axis}, source=name))

    def _pool(self, layer, ts, args, kwargs, name, kind):
        pad = layer.padding.lower()
        p = {"kernel_shape": [1, *layer.pool_size, 1], "strides": [1, *layer.strides, 1],
             "padding": "VALID" if pad == "valid" else "SAME_TENSORFLOW"}
        if kind == "avgpool":
            p["count_include_pad"] = False
        return _T(self.b.add(kind, [ts[0].id], self._out_shape(layer, args, kwargs), p, source=name))

    def _l_MaxPooling2D(self, layer, ts, args, kwargs, name):
        return self._pool(layer, ts, args, kwargs, name, "maxpool")

    def _l_AveragePooling2D(self, layer, ts, args, kwargs, name):
        return self._pool(layer, ts, args, kwargs, name, "avgpool")

    def _l_GlobalAveragePooling2D(self, layer, ts, args, kwargs, name):
        return _T(self.b.add("global_avg_pool", [ts[0].id], self._out_shape(layer, args, kwargs),
                             source=name))

    def _l_GlobalMaxPooling2D(self, layer, ts, args, kwargs, name):
        return _T(self.b.add("reduce_max", [ts[0].id], self._out_shape(layer, args, kwargs),
                             {"axes": [1, 2]}, source=name))

    def _l_ZeroPadding2D(self, layer, ts, args, kwargs, name):
        (t, b_), (l, r) = layer.padding
        return _T(self.b.add("pad", [ts[0].id], self._out_shape(layer, args, kwargs),
                             {"pads": [[t, b_], [l, r], [0, 0]], "constant_value": 0.0}, source=name))

    def _l_Cropping2D(self, layer, ts, args, kwargs, name):
        (t, b_), (l, r) = layer.cropping
        _, h, w, c = self.b.shape(ts[0].id)
        return _T(self.b.add("slice", [ts[0].id], self._out_shape(layer, args, kwargs),
                             {"begin": [t, l, 0], "end": [h - b_, w - r, c]}, source=name))

    def _l_Reshape(self, layer, ts, args, kwargs, name):
        out = self._out_shape(layer, args, kwargs)
        return _T(self.b.add("reshape", [ts[0].id], out, {"output_shape": out}, source=name))

    def _l_Flatten(self, layer, ts, args, kwargs, name):
        return self._l_Reshape(layer, ts, args, kwargs, name)

    def _l_Permute(self, layer, ts, args, kwargs, name):
        perm = [0] + list(layer.dims)
        return _T(self.b.add("transpose", [ts[0].id], self._out_shape(layer, args, kwargs),
                             {"perm": perm}, source=name))

    def _l_UpSampling2D(self, layer, ts, args, kwargs, name):
        interp = layer.interpolation
        if interp not in ("nearest", "bilinear"):
            raise UnsupportedOpError(f"UpSampling2D interpolation={interp}", name, self.source,
                                     "use nearest or bilinear")
        out = self._out_shape(layer, args, kwargs)
        # Keras resizes with half-pixel centres (tf.image.resize); nearest by repetition is the same
        return _T(self.b.add("resize", [ts[0].id], out,
                             {"method": interp, "output_shape": out, "align_corners": False,
                              "half_pixel": True}, source=name))

    def _l_Resizing(self, layer, ts, args, kwargs, name):
        interp = layer.interpolation
        if interp not in ("nearest", "bilinear") or layer.crop_to_aspect_ratio or \
                getattr(layer, "pad_to_aspect_ratio", False) or getattr(layer, "antialias", False):
            raise UnsupportedOpError(f"Resizing({interp}, crop/pad to aspect ratio, antialias)", name,
                                     self.source, "plain nearest or bilinear resizing only")
        out = self._out_shape(layer, args, kwargs)
        return _T(self.b.add("resize", [ts[0].id], out,
                             {"method": interp, "output_shape": out, "align_corners": False,
                              "half_pixel": True}, source=name))

    def _l_Rescaling(self, layer, ts, args, kwargs, name):
        return _T(self.b.add_affine(ts[0].id, np.asarray(layer.scale, np.float64),
                                    np.asarray(layer.offset, np.float64), name))

    def _l_Normalization(self, layer, ts, args, kwargs, name):
        if getattr(layer, "invert", False):
            raise UnsupportedOpError("Normalization(invert=True)", name, self.source, "")
        mean = np.asarray(layer.mean, np.float64).reshape(-1)
        var = np.asarray(layer.variance, np.float64).reshape(-1)
        std = np.sqrt(np.maximum(var, 1e-7))  # Keras's epsilon floor on the variance
        return _T(self.b.add_affine(ts[0].id, 1.0 / std, -mean / std, name))

    # --- keras.ops operations (functional graphs may hold them between layers) -------------
    def operation(self, op: Any, args: list, kwargs: dict, name: str) -> Any:
        cls = type(op).__name__
        ts = [a for a in _flat(args) if isinstance(a, _T)]
        if not ts:
            raise UnsupportedOpError(f"keras op {cls} on constants only", name, self.source, _ADVICE)
        x = ts[0].id
        if cls in ("Add", "Subtract", "Multiply", "Divide", "TrueDivide"):
            return self._op_arith(cls, op, args, name)
        act = {"Relu": "relu", "Relu6": "relu6", "Sigmoid": "sigmoid", "Tanh": "tanh", "Silu": "silu",
               "Swish": "silu", "HardSigmoid": "hardsigmoid", "HardSilu": "hardswish",
               "HardSwish": "hardswish", "Elu": "elu", "Exp": "exp", "Mish": "mish",
               "Softplus": "softplus"}.get(cls)
        if act == "elu" and float(getattr(op, "alpha", 1.0)) != 1.0:
            act = None
        if act:
            return _T(self.b.add_activation(x, act, name))
        if cls == "Gelu":
            return _T(self.b.add_activation(x, "gelu_tanh" if op.approximate else "gelu", name))
        if cls == "LeakyRelu":
            return _T(self.b.add_activation(x, "leaky", name, leaky_alpha=float(op.negative_slope)))
        out = self._out_shape(op, args, kwargs)
        shp = self.b.shape(x)
        axes = np.ravel([op.axis]) if cls == "Softmax" else None
        if cls == "Softmax" and axes.size == 1 and int(axes[0]) % len(shp) == len(shp) - 1:
            return _T(self.b.add("softmax", [x], shp, {"axis": len(shp) - 1}, source=name))
        if cls == "Mean" and op.axis is not None and sorted(a % len(shp) for a in op.axis) == [1, 2] \
                and len(shp) == 4:
            return _T(self.b.add("global_avg_pool", [x], out, source=name))
        if cls in ("Max", "Sum") and op.axis is not None:
            axes = sorted(int(a) % len(shp) for a in np.ravel([op.axis]))
            if 0 in axes:
                raise UnsupportedOpError(f"keras op {cls} over the batch axis", name, self.source,
                                         "reduce over the non-batch axes only")
            return _T(self.b.add("reduce_max" if cls == "Max" else "reduce_sum", [x], out,
                                 {"axes": axes}, source=name))
        if cls == "Reshape":
            return _T(self.b.add("reshape", [x], out, {"output_shape": out}, source=name))
        if cls == "Transpose":
            perm = list(op.axes) if op.axes is not None else None
            if perm is None or perm[0] != 0:
                raise UnsupportedOpError("keras.ops.transpose moving the batch axis", name, self.source, "")
            return _T(self.b.add("transpose", [x], out, {"perm": perm}, source=name))
        if cls == "Concatenate":
            axis = op.axis % len(shp)
            return _T(self.b.add("concat", [t.id for t in ts], out, {"concat_axis": axis}, source=name))
        if cls == "GetItem":
            crop = _plain_crop(args[1], shp)
            if crop is None:
                raise UnsupportedOpError(f"slice {args[1]!r}", name, self.source,
                                         "only plain crops (step 1, batch axis whole, no new or "
                                         "dropped axes) are supported")
            return _T(self.b.add("slice", [x], out, {"begin": crop[0], "end": crop[1]}, source=name))
        raise UnsupportedOpError(f"keras op {cls}", name, self.source, _ADVICE)

    def _op_arith(self, cls: str, op: Any, args: list, name: str) -> _T:
        a, b = args[0], args[1]
        kind = {"Add": "ew_add", "Subtract": "ew_sub", "Multiply": "ew_mult"}.get(cls)
        if isinstance(a, _T) and isinstance(b, _T):
            if kind is None:
                raise UnsupportedOpError(f"keras op {cls} of two tensors", name, self.source, _ADVICE)
            return self._ew(kind, [a, b], name)
        t, c, t_first = (a, b, True) if isinstance(a, _T) else (b, a, False)
        c = np.asarray(c, np.float64)
        if cls == "Add":
            return _T(self.b.add_affine(t.id, 1.0, c, name))
        if cls == "Subtract":
            return _T(self.b.add_affine(t.id, 1.0, -c, name) if t_first
                      else self.b.add_affine(t.id, -1.0, c, name))
        if cls == "Multiply":
            return _T(self.b.add_affine(t.id, c, 0.0, name))
        if t_first:  # x / c
            return _T(self.b.add_affine(t.id, 1.0 / c, 0.0, name))
        raise UnsupportedOpError(f"keras op {cls} (constant / tensor)", name, self.source, _ADVICE)


def _flat(v: Any) -> list:
    import keras.src.tree as tree

    return tree.flatten(v)


def _act_name(fn: Any, node: str, source: str) -> str:
    name = getattr(fn, "__name__", str(fn))
    if name not in _ACT:
        raise UnsupportedOpError(f"activation '{name}'", node, source,
                                 f"supported: {', '.join(sorted(_ACT))}")
    return _ACT[name]


def _plain_crop(key: Any, shape: list[int]) -> tuple[list[int], list[int]] | None:
    key = tuple(key) if isinstance(key, (list, tuple)) else (key,)
    if any(k is None or k is Ellipsis and i != len(key) - 1 for i, k in enumerate(key)):
        return None
    key = tuple(k for k in key if k is not Ellipsis)
    if len(key) > len(shape) or not all(isinstance(k, slice) for k in key):
        return None
    if key and key[0] != slice(None):
        return None
    begin, end = [], []
    for i, d in enumerate(shape[1:], start=1):
        k = key[i] if i < len(key) else slice(None)
        if k.step not in (None, 1):
            return None
        s, e, _ = k.indices(d)
        if e <= s:
            return None
        begin.append(s)
        end.append(e)
    return begin, end
