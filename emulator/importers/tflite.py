"""parse_tflite: a float (or float16-weight) TFLite flatbuffer -> ClientRunner.

Reads the model with the flatbuffers schema TensorFlow ships
(tensorflow.lite.python.schema_py_generated), translates each builtin op of the main subgraph
into builder nodes (importers/builder.py folds and names them), and folds constant-only ops
(DEQUANTIZE of float16 / int8 weights, TRANSPOSE / RESHAPE / CAST of constants) into the
constants they produce. An op that is not mapped is an UnsupportedOpError naming the op, its
index and output tensor, never skipped. Integer-quantized activations (QUANTIZE, int8 tensors)
are refused: parse the float model and quantize it with run_quantization_from_np.
"""
from __future__ import annotations

import os
import re
from typing import Any

import numpy as np

from ..errors import ModelImportError, UnsupportedOpError
from .builder import GraphBuilder

_FUSED = {0: "linear", 1: "relu", 3: "relu6", 4: "tanh"}  # ActivationFunctionType
_NP_TYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 6: np.bool_,
             7: np.int16, 9: np.int8, 10: np.float64}
_QUANT_ADVICE = ("this is an integer-quantized (or hybrid int8-weight) TFLite model; parse the "
                 "float model and quantize it here with run_quantization_from_np")


def parse_tflite(path: str | os.PathLike | bytes, net_name: str | None = None):
    """Parse a .tflite file (path or its bytes) into a ClientRunner with HN and native params."""
    from ..runner import ClientRunner

    if isinstance(path, (bytes, bytearray)):
        buf, source, stem = bytes(path), "TFLite model (bytes)", "net"
    else:
        source = os.fspath(path)
        stem = os.path.splitext(os.path.basename(source))[0]
        try:
            with open(source, "rb") as f:
                buf = f.read()
        except OSError as e:
            raise ModelImportError(f"cannot read TFLite file '{source}': {e}") from None
    hn, params = _Importer(buf, source).run(net_name or re.sub(r"[^A-Za-z0-9_]", "_", stem))
    runner = ClientRunner(hn=hn)
    runner.load_params(params)
    return runner


class _Importer:
    def __init__(self, buf: bytes, source: str):
        from tensorflow.lite.python import schema_py_generated as schema

        self.schema = schema
        self.source = source
        self.buf = buf
        if len(buf) < 8 or buf[4:8] != b"TFL3":
            raise ModelImportError(f"'{source}' is not a TFLite flatbuffer (no TFL3 identifier)")
        try:
            self.model = schema.ModelT.InitFromPackedBuf(buf, 0)
        except Exception as e:  # a truncated or corrupt flatbuffer raises anything
            raise ModelImportError(f"'{source}' is not a readable TFLite model: {e}") from None
        if not self.model.subgraphs:
            raise ModelImportError(f"'{source}' has no subgraph")
        self.sg = self.model.subgraphs[0]
        self.opnames = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
        self.b = GraphBuilder(source)
        self.consts: dict[int, np.ndarray] = {}  # tensor index -> value
        self.acts: dict[int, int] = {}  # tensor index -> builder node id

    # --- tensors ---------------------------------------------------------------------------
    def tname(self, i: int) -> str:
        n = self.sg.tensors[i].name
        return n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n)

    def tshape(self, i: int) -> list[int]:
        t = self.sg.tensors[i]
        shape = [int(d) for d in (t.shape if t.shape is not None else [])]
        sig = t.shapeSignature
        if sig is not None and len(sig) and any(int(d) < 0 for d in list(sig)[1:]):
            raise ModelImportError(f"{self.source}: tensor '{self.tname(i)}' has a dynamic shape "
                                   f"{list(sig)}; re-export the model with a fixed input size")
        return shape

    def const(self, i: int) -> np.ndarray | None:
        if i in self.consts:
            return self.consts[i]
        t = self.sg.tensors[i]
        buf = self.model.buffers[t.buffer] if t.buffer < len(self.model.buffers) else None
        data = None
        if buf is not None:
            if buf.data is not None and len(buf.data):
                data = np.asarray(buf.data, np.uint8).tobytes()
            elif buf.offset and buf.size:
                data = self.buf[buf.offset:buf.offset + buf.size]
        if data is None:
            return None
        if t.sparsity is not None:
            raise UnsupportedOpError(
                "sparse constant tensor (DENSIFY)", f"'{self.tname(i)}'", self.source,
                "sparse weights are not read; export the model with dense weights")
        if t.type not in _NP_TYPES:
            raise ModelImportError(f"{self.source}: constant '{self.tname(i)}' has tensor type "
                                   f"{t.type}, which the importer does not read")
        arr = np.frombuffer(data, _NP_TYPES[t.type]).reshape([int(d) for d in t.shape])
        self.consts[i] = arr
        return arr

    def fconst(self, i: int, op: str, node: str) -> np.ndarray:
        """A float constant (weights); int8 weights are a quantized model."""
        v = self.const(i)
        if v is None:
            raise UnsupportedOpError(f"{op} with a computed (non-constant) weight tensor "
                                     f"'{self.tname(i)}'", node, self.source,
                                     "weights must be constants")
        if v.dtype in (np.int8, np.uint8, np.int16):
            raise UnsupportedOpError(f"{op} with {v.dtype} weights", node, self.source, _QUANT_ADVICE)
        return v.astype(np.float32)

    def act(self, i: int, op: str, node: str) -> int:
        if i in self.acts:
            return self.acts[i]
        raise UnsupportedOpError(f"{op} on tensor '{self.tname(i)}', which is neither an input "
                                 f"nor computed by a supported op", node, self.source, "")

    # --- main loop -------------------------------------------------------------------------
    def run(self, net_name: str):
        for i in self.sg.inputs:
            t = self.sg.tensors[i]
            if t.type != 0:
                raise UnsupportedOpError(f"input of type {_NP_TYPES.get(t.type, t.type)}",
                                         self.tname(i), self.source, _QUANT_ADVICE)
            self.acts[i] = self.b.add_input([-1, *self.tshape(i)[1:]], self.tname(i))
        ops = [self.describe(idx, op) for idx, op in enumerate(self.sg.operators)]
        # an op type with no mapping at all is reported first, whatever precedes it
        for name, node, op in ops:
            if not hasattr(self, "_op_" + name) and name not in _CONST_FOLD:
                raise UnsupportedOpError(name, node, self.source,
                                         "the emulator has no HN layer for it; remove it from the "
                                         "exported graph or replace it with supported ops")
        for name, node, op in ops:
            outs = [o for o in op.outputs if o >= 0]
            ins = list(op.inputs)
            if all(i < 0 or self.const(i) is not None for i in ins) and name in _CONST_FOLD:
                self.consts[outs[0]] = _CONST_FOLD[name](self, op, ins, outs[0])
                continue
            fn = getattr(self, "_op_" + name, None)
            if fn is None:
                raise UnsupportedOpError(f"{name} of a computed tensor", node, self.source,
                                         "only constant inputs of this op are folded")
            y = fn(op, ins, outs, node, name)
            if y is not None:
                self.acts[outs[0]] = y
        for o in self.sg.outputs:
            if o not in self.acts:
                raise ModelImportError(f"{self.source}: output '{self.tname(o)}' is a constant or "
                                       f"not computed from the inputs")
            self.b.add_output(self.acts[o])
        return self.b.build(net_name)

    # --- helpers ---------------------------------------------------------------------------
    def describe(self, idx: int, op: Any) -> tuple[str, str, Any]:
        """(op name, node description for messages, op)."""
        code = self.model.operatorCodes[op.opcodeIndex]
        bc = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
        name = self.opnames.get(bc, f"builtin#{bc}")
        if name == "CUSTOM":
            cc = code.customCode
            name = f"CUSTOM({cc.decode() if isinstance(cc, bytes) else cc})"
        outs = [o for o in op.outputs if o >= 0]
        node = f"#{idx} -> '{self.tname(outs[0])}'" if outs else f"#{idx}"
        return name, node, op

    def fused(self, y: int, opts: Any, node: str) -> int:
        f = int(getattr(opts, "fusedActivationFunction", 0) or 0)
        if f not in _FUSED:
            raise UnsupportedOpError(f"fused activation type {f}", node, self.source,
                                     "supported fused activations: none, RELU, RELU6, TANH")
        return self.b.add_activation(y, _FUSED[f], node)

    def out_shape(self, o: int) -> list[int]:
        return [-1, *self.tshape(o)[1:]]

    @staticmethod
    def padding(opts: Any) -> str:
        return "SAME_TENSORFLOW" if int(opts.padding) == 0 else "VALID"

    # --- ops -------------------------------------------------------------------------------
    def _op_CONV_2D(self, op, ins, outs, node, name):
        x = self.act(ins[0], name, node)
        w = self.fconst(ins[1], name, node)  # [O, H, W, I]
        o = op.builtinOptions
        weights = {"kernel": np.transpose(w, (1, 2, 3, 0))}
        if len(ins) > 2 and ins[2] >= 0:
            weights["bias"] = self.fconst(ins[2], name, node)
        cin = self.b.shape(x)[-1]
        p = {"strides": [1, o.strideH, o.strideW, 1],
             "dilations": [1, o.dilationHFactor, o.dilationWFactor, 1],
             "padding": self.padding(o), "groups": cin // w.shape[3]}
        y = self.b.add("conv", [x], self.out_shape(outs[0]), p, weights, self.tname(outs[0]))
        return self.fused(y, o, node)

    def _op_DEPTHWISE_CONV_2D(self, op, ins, outs, node, name):
        x = self.act(ins[0], name, node)
        w = self.fconst(ins[1], name, node)  # [1, H, W, C * M]
        o = op.builtinOptions
        cin = self.b.shape(x)[-1]
        weights = {"kernel": w.reshape(w.shape[1], w.shape[2], cin, w.shape[3] // cin)}
        if len(ins) > 2 and ins[2] >= 0:
            weights["bias"] = self.fconst(ins[2], name, node)
        p = {"strides": [1, o.strideH, o.strideW, 1],
             "dilations": [1, o.dilationHFactor, o.dilationWFactor, 1], "padding": self.padding(o)}
        y = self.b.add("dw", [x], self.out_shape(outs[0]), p, weights, self.tname(outs[0]))
        return self.fused(y, o, node)

    def _op_TRANSPOSE_CONV(self, op, ins, outs, node, name):
        x = self.act(ins[2], name, node)
        w = self.fconst(ins[1], name, node)  # [O, H, W, I]
        o = op.builtinOptions
        weights = {"kernel": np.transpose(w, (1, 2, 3, 0))}
        if len(ins) > 3 and ins[3] >= 0:
            weights["bias"] = self.fconst(ins[3], name, node)
        p = {"strides": [1, o.strideH, o.strideW, 1], "padding": self.padding(o)}
        y = self.b.add("deconv", [x], self.out_shape(outs[0]), p, weights, self.tname(outs[0]))
        return self.fused(y, o, node)

    def _op_FULLY_CONNECTED(self, op, ins, outs, node, name):
        x = self.act(ins[0], name, node)
        w = self.fconst(ins[1], name, node)  # [O, I]
        o = op.builtinOptions
        weights = {"kernel": w.T.copy()}
        if len(ins) > 2 and ins[2] >= 0:
            weights["bias"] = self.fconst(ins[2], name, node)
        shp = self.b.shape(x)
        out = self.out_shape(outs[0])
        if int(np.prod(shp[1:])) == w.shape[1] and (len(out) == 2 or not o.keepNumDims):
            y = self.b.add("dense", [x], [-1, w.shape[0]], {}, weights, self.tname(outs[0]))
            if len(out) != 2:  # keep the file's output shape
                y = self.b.add("reshape", [y], out, {"output_shape": out}, source=self.tname(outs[0]))
        elif len(shp) == 4 and shp[-1] == w.shape[1] and o.keepNumDims:
            weights["kernel"] = weights["kernel"].reshape(1, 1, *weights["kernel"].shape)
            p = {"strides": [1, 1, 1, 1], "dilations": [1, 1, 1, 1], "padding": "VALID", "groups": 1}
            y = self.b.add("conv", [x], out, p, weights, self.tname(outs[0]))
        else:
            raise UnsupportedOpError(f"{name} of input {shp} with weights {list(w.shape)} "
                                     f"(keep_num_dims={bool(o.keepNumDims)})", node, self.source,
                                     "a fully-connected layer must consume its whole input per frame")
        return self.fused(y, o, node)

    def _op_BATCH_MATMUL(self, op, ins, outs, node, name):
        x = self.act(ins[0], name, node)
        o = op.builtinOptions
        w = self.const(ins[1])
        if w is None or o.adjX or len(self.b.shape(x)) != 2 or w.ndim != 2:
            raise UnsupportedOpError(name, node, self.source,
                                     "only a 2-D input times a constant matrix (a dense layer)")
        w = self.fconst(ins[1], name, node)
        if o.adjY:
            w = w.T
        return self.b.add("dense", [x], [-1, w.shape[1]], {}, {"kernel": w.copy()}, self.tname(outs[0]))

    def _binary(self, op, ins, outs, node, name, kind):
        a, b = ins[0], ins[1]
        ca, cb = self.const(a), self.const(b)
        src = self.tname(outs[0])
        o = op.builtinOptions
        if ca is None and cb is None:
            y = self.b.add(kind, [self.act(a, name, node), self.act(b, name, node)],
                           self.out_shape(outs[0]), {}, source=src)
            return self.fused(y, o, node)
        if ca is not None and cb is not None:
            raise UnsupportedOpError(f"{name} of two constants", node, self.source, "")
        t, c, first = (a, cb, True) if cb is not None else (b, ca, False)
        x = self.act(t, name, node)
        if self.out_shape(outs[0]) != self.b.shape(x):
            raise UnsupportedOpError(f"{name} with a constant that broadcasts the tensor "
                                     f"{self.b.shape(x)} to {self.out_shape(outs[0])}", node, self.source, "")
        c = c.astype(np.float64)
        if kind == "ew_add":
            y = self.b.add_affine(x, 1.0, c, src)
        elif kind == "ew_sub":
            y = self.b.add_affine(x, 1.0, -c, src) if first else self.b.add_affine(x, -1.0, c, src)
        elif kind == "ew_mult":
            y = self.b.add_affine(x, c, 0.0, src)
        else:  # div
            if not first:
                raise UnsupportedOpError(f"{name} of a constant by a tensor", node, self.source, "")
            y = self.b.add_affine(x, 1.0 / c, 0.0, src)
        return self.fused(y, o, node)

    def _op_ADD(self, op, ins, outs, node, name):
        return self._binary(op, ins, outs, node, name, "ew_add")

    def _op_SUB(self, op, ins, outs, node, name):
        return self._binary(op, ins, outs, node, name, "ew_sub")

    def _op_MUL(self, op, ins, outs, node, name):
        return self._binary(op, ins, outs, node, name, "ew_mult")

    def _op_DIV(self, op, ins, outs, node, name):
        if self.const(ins[1]) is None:
            raise UnsupportedOpError("DIV by a tensor", node, self.source, "")
        return self._binary(op, ins, outs, node, name, "div")

    def _op_NEG(self, op, ins, outs, node, name):
        return self.b.add_affine(self.act(ins[0], name, node), -1.0, 0.0, self.tname(outs[0]))

    def _activation(self, ins, outs, node, name, act, **kw):
        return self.b.add_activation(self.act(ins[0], name, node), act, self.tname(outs[0]), **kw)

    def _op_RELU(self, op, ins, outs, node, name):
        return self._activation(ins, outs, node, name, "relu")

    def _op_RELU6(self, op, ins, outs, node, name):
        return self._activation(ins, outs, node, name, "relu6")

    def _op_LOGISTIC(self, op, ins, outs, node, name):
        return self._activation(ins, outs, node, name, "sigmoid")

    def _op_TANH(self, op, ins, outs, node, name):
        return self._activation(ins, outs, node, name, "tanh")

    def _op_HARD_SWISH(self, op, ins, outs, node, name):
        return self._activation(ins, outs, node, name, "hardswish")

    def _op_ELU(self, op, ins, outs, node, name):
        return self._activation(ins, outs, node, name, "elu")

    def _op_EXP(self, op, ins, outs, node, name):
        return self._activation(ins, outs, node, name, "exp")

    def _op_GELU(self, op, ins, outs, node, name):
        approx = bool(getattr(op.builtinOptions, "approximate", False))
        return self._activation(ins, outs, node, name, "gelu_tanh" if approx else "gelu")

    def _op_LEAKY_RELU(self, op, ins, outs, node, name):
        return self._activation(ins, outs, node, name, "leaky", leaky_alpha=float(op.builtinOptions.alpha))

    def _op_PRELU(self, op, ins, outs, node, name):
        alpha = self.fconst(ins[1], name, node)
        x = self.act(ins[0], name, node)
        c = self.b.shape(x)[-1]
        flat = alpha.reshape(-1, alpha.shape[-1]) if alpha.ndim else alpha.reshape(1, 1)
        if flat.shape[-1] not in (1, c) or not np.all(flat == flat[:1]):
            raise UnsupportedOpError(f"PRELU with alphas of shape {list(alpha.shape)}", node, self.source,
                                     "alphas must be shared over H and W (one per channel)")
        return self.b.add_activation(x, "prelu", self.tname(outs[0]), alpha=flat[0])

    def _pool(self, op, ins, outs, node, name, kind):
        o = op.builtinOptions
        p = {"kernel_shape": [1, o.filterHeight, o.filterWidth, 1], "strides": [1, o.strideH, o.strideW, 1],
             "padding": self.padding(o)}
        if kind == "avgpool":
            p["count_include_pad"] = False
        y = self.b.add(kind, [self.act(ins[0], name, node)], self.out_shape(outs[0]), p,
                       source=self.tname(outs[0]))
        return self.fused(y, o, node)

    def _op_MAX_POOL_2D(self, op, ins, outs, node, name):
        return self._pool(op, ins, outs, node, name, "maxpool")

    def _op_AVERAGE_POOL_2D(self, op, ins, outs, node, name):
        return self._pool(op, ins, outs, node, name, "avgpool")

    def _axes(self, i: int, rank: int, name: str, node: str) -> list[int]:
        a = self.const(i)
        if a is None:
            raise UnsupportedOpError(f"{name} with computed axes", node, self.source, "")
        return sorted(int(v) % rank for v in np.ravel(a))

    def _op_MEAN(self, op, ins, outs, node, name):
        x = self.act(ins[0], name, node)
        shp = self.b.shape(x)
        axes = self._axes(ins[1], len(shp), name, node)
        if len(shp) != 4 or axes != [1, 2]:
            raise UnsupportedOpError(f"MEAN over axes {axes} of {shp}", node, self.source,
                                     "only the mean over H and W (global average pool)")
        return self.b.add("global_avg_pool", [x], self.out_shape(outs[0]), source=self.tname(outs[0]))

    def _reduce(self, ins, outs, node, name, kind):
        x = self.act(ins[0], name, node)
        axes = self._axes(ins[1], len(self.b.shape(x)), name, node)
        if 0 in axes:
            raise UnsupportedOpError(f"{name} over the batch axis", node, self.source, "")
        return self.b.add(kind, [x], self.out_shape(outs[0]), {"axes": axes}, source=self.tname(outs[0]))

    def _op_SUM(self, op, ins, outs, node, name):
        return self._reduce(ins, outs, node, name, "reduce_sum")

    def _op_REDUCE_MAX(self, op, ins, outs, node, name):
        return self._reduce(ins, outs, node, name, "reduce_max")

    def _op_PAD(self, op, ins, outs, node, name, value=0.0):
        x = self.act(ins[0], name, node)
        pads = self.const(ins[1])
        if pads is None or len(self.b.shape(x)) != 4 or np.any(pads[0] != 0):
            raise UnsupportedOpError(f"{name} of {self.b.shape(x)}", node, self.source,
                                     "constant padding of H, W, C of a 4-D tensor only")
        p = {"pads": [[int(a), int(b)] for a, b in pads[1:]], "constant_value": float(value)}
        return self.b.add("pad", [x], self.out_shape(outs[0]), p, source=self.tname(outs[0]))

    def _op_PADV2(self, op, ins, outs, node, name):
        v = self.const(ins[2]) if len(ins) > 2 and ins[2] >= 0 else np.zeros(())
        return self._op_PAD(op, ins, outs, node, name, value=float(np.ravel(v)[0]))

    def _op_CONCATENATION(self, op, ins, outs, node, name):
        xs = [self.act(i, name, node) for i in ins]
        rank = len(self.b.shape(xs[0]))
        axis = int(op.builtinOptions.axis) % rank
        if axis == 0:
            raise UnsupportedOpError(f"{name} over the batch axis", node, self.source, "")
        y = self.b.add("concat", xs, self.out_shape(outs[0]), {"concat_axis": axis},
                       source=self.tname(outs[0]))
        return self.fused(y, op.builtinOptions, node)

    def _reshape(self, ins, outs, node, name):
        x = self.act(ins[0], name, node)
        out = self.out_shape(outs[0])
        if self.tshape(outs[0])[:1] != self.tshape(ins[0])[:1]:
            raise UnsupportedOpError(f"{name} that changes the batch axis", node, self.source, "")
        return self.b.add("reshape", [x], out, {"output_shape": out}, source=self.tname(outs[0]))

    def _op_RESHAPE(self, op, ins, outs, node, name):
        return self._reshape(ins, outs, node, name)

    _op_SQUEEZE = _op_EXPAND_DIMS = _op_RESHAPE

    def _resize(self, op, ins, outs, node, name, method):
        o = op.builtinOptions
        out = self.out_shape(outs[0])
        p = {"method": method, "output_shape": out, "align_corners": bool(o.alignCorners),
             "half_pixel": bool(o.halfPixelCenters)}
        return self.b.add("resize", [self.act(ins[0], name, node)], out, p, source=self.tname(outs[0]))

    def _op_RESIZE_BILINEAR(self, op, ins, outs, node, name):
        return self._resize(op, ins, outs, node, name, "bilinear")

    def _op_RESIZE_NEAREST_NEIGHBOR(self, op, ins, outs, node, name):
        return self._resize(op, ins, outs, node, name, "nearest")

    def _op_DEPTH_TO_SPACE(self, op, ins, outs, node, name):
        return self.b.add("depth_to_space", [self.act(ins[0], name, node)], self.out_shape(outs[0]),
                          {"block_size": int(op.builtinOptions.blockSize), "mode": "DCR"},
                          source=self.tname(outs[0]))

    def _op_SPACE_TO_DEPTH(self, op, ins, outs, node, name):
        return self.b.add("space_to_depth", [self.act(ins[0], name, node)], self.out_shape(outs[0]),
                          {"block_size": int(op.builtinOptions.blockSize)}, source=self.tname(outs[0]))

    def _crop(self, x, begin, end, outs, node, name):
        shp = self.b.shape(x)
        b2, e2 = [], []
        for ax, (bb, ee) in enumerate(zip(begin, end)):
            d = shp[ax] if ax else 1
            bb, ee = (bb + d if bb < 0 else bb), (ee + d if ee < 0 else ee)
            bb, ee = max(0, min(bb, d)), max(0, min(ee, d))
            if ax == 0:
                if (bb, ee) != (0, 1):
                    raise UnsupportedOpError(f"{name} across the batch axis", node, self.source, "")
                continue
            b2.append(bb)
            e2.append(ee)
        out = self.out_shape(outs[0])
        if [-1] + [e - b for b, e in zip(b2, e2)] != out:
            raise UnsupportedOpError(f"{name} that is not a plain crop", node, self.source, "")
        return self.b.add("slice", [x], out, {"begin": b2, "end": e2}, source=self.tname(outs[0]))

    def _op_STRIDED_SLICE(self, op, ins, outs, node, name):
        x = self.act(ins[0], name, node)
        o = op.builtinOptions
        begin, end, strides = (self.const(i) for i in ins[1:4])
        if begin is None or end is None or strides is None or np.any(strides != 1) or \
                o.ellipsisMask or o.newAxisMask or o.shrinkAxisMask or getattr(o, "offset", False):
            raise UnsupportedOpError(name, node, self.source,
                                     "only plain crops are supported (constant bounds, stride 1, no "
                                     "ellipsis / new / shrunk axes)")
        rank = len(self.b.shape(x))
        shp = [1] + self.b.shape(x)[1:]
        bs = [0 if (o.beginMask >> a) & 1 else int(begin[a]) for a in range(rank)]
        es = [shp[a] if (o.endMask >> a) & 1 else int(end[a]) for a in range(rank)]
        return self._crop(x, bs, es, outs, node, name)

    def _op_SLICE(self, op, ins, outs, node, name):
        x = self.act(ins[0], name, node)
        begin, size = self.const(ins[1]), self.const(ins[2])
        if begin is None or size is None:
            raise UnsupportedOpError(f"{name} with computed bounds", node, self.source, "")
        shp = [1] + self.b.shape(x)[1:]
        es = [shp[a] if int(s) == -1 else int(b) + int(s) for a, (b, s) in enumerate(zip(begin, size))]
        return self._crop(x, [int(b) for b in begin], es, outs, node, name)

    def _op_SOFTMAX(self, op, ins, outs, node, name):
        if float(op.builtinOptions.beta) != 1.0:
            raise UnsupportedOpError(f"SOFTMAX with beta={op.builtinOptions.beta}", node, self.source,
                                     "only beta = 1")
        x = self.act(ins[0], name, node)
        rank = len(self.b.shape(x))
        return self.b.add("softmax", [x], self.b.shape(x), {"axis": rank - 1}, source=self.tname(outs[0]))

    def _op_ARG_MAX(self, op, ins, outs, node, name):
        x = self.act(ins[0], name, node)
        axis = self._axes(ins[1], len(self.b.shape(x)), name, node)[0]
        if axis == 0:
            raise UnsupportedOpError(f"{name} over the batch axis", node, self.source, "")
        return self.b.add("argmax", [x], self.out_shape(outs[0]), {"axis": axis}, source=self.tname(outs[0]))

    def _op_TRANSPOSE(self, op, ins, outs, node, name):
        perm = self.const(ins[1])
        if perm is None or int(perm[0]) != 0:
            raise UnsupportedOpError(f"{name} moving the batch axis", node, self.source, "")
        return self.b.add("transpose", [self.act(ins[0], name, node)], self.out_shape(outs[0]),
                          {"perm": [int(p) for p in perm]}, source=self.tname(outs[0]))

    def _op_DEQUANTIZE(self, op, ins, outs, node, name):
        raise UnsupportedOpError(name + " of a computed tensor", node, self.source, _QUANT_ADVICE)

    def _op_QUANTIZE(self, op, ins, outs, node, name):
        raise UnsupportedOpError(name, node, self.source, _QUANT_ADVICE)


# --- constant folding: ops whose inputs are all constants become constants --------------------

def _dequantize(imp: _Importer, op: Any, ins: list[int], out: int) -> np.ndarray:
    v = imp.const(ins[0])
    if v.dtype == np.float16:
        return v.astype(np.float32)
    q = imp.sg.tensors[ins[0]].quantization
    if q is None or q.scale is None or not len(q.scale):
        raise ModelImportError(f"{imp.source}: DEQUANTIZE of '{imp.tname(ins[0])}' without scales")
    scale = np.asarray(q.scale, np.float32)
    zp = np.asarray(q.zeroPoint if q.zeroPoint is not None else [0], np.float32)
    if scale.size > 1:  # per-axis
        shape = [1] * v.ndim
        shape[int(q.quantizedDimension)] = -1
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    return ((v.astype(np.float32) - zp) * scale).astype(np.float32)


def _transpose(imp: _Importer, op: Any, ins: list[int], out: int) -> np.ndarray:
    return np.transpose(imp.const(ins[0]), [int(p) for p in imp.const(ins[1])])


def _reshape(imp: _Importer, op: Any, ins: list[int], out: int) -> np.ndarray:
    return imp.const(ins[0]).reshape([int(d) for d in imp.sg.tensors[out].shape])


def _cast(imp: _Importer, op: Any, ins: list[int], out: int) -> np.ndarray:
    return imp.const(ins[0]).astype(_NP_TYPES[imp.sg.tensors[out].type])


_CONST_FOLD = {"DEQUANTIZE": _dequantize, "TRANSPOSE": _transpose, "RESHAPE": _reshape,
               "CAST": _cast, "SQUEEZE": _reshape, "EXPAND_DIMS": _reshape}
