"""parse_tflite: a float (or float16-weight) TFLite flatbuffer -> ClientRunner.

Reads the model with the flatbuffers schema TensorFlow ships
(tensorflow.lite.python.schema_py_generated), translates each builtin op of the main subgraph
into builder nodes (importers/builder.py folds and names them), and folds constant-only ops
(DENSIFY of sparse weights, DEQUANTIZE of float16 / int8 weights, TRANSPOSE / RESHAPE / CAST of
constants) into the constants they produce; sparse constants (Tensor.sparsity) are decoded into
dense arrays by `_densify`. An op that is not mapped is an UnsupportedOpError naming the op, its
index and output tensor, never skipped. Integer-quantized activations (QUANTIZE, int8 tensors)
are refused: parse the float model and quantize it with run_quantization_from_np.

The file is untrusted. Before the schema's unpacker runs, `_verify_flatbuffer` checks that every
table, vtable, field, vector and string of the model, its operator codes, subgraphs, tensors,
quantization, sparsity, operators and buffers lies inside the file (what the unpacker trips on
beyond them, in options tables, is caught as a corrupt file); `_Importer._validate` then checks the
indices (tensor, buffer, opcode), shapes (non-negative, bounded by _MAX_RANK / _MAX_DIM /
LIMITS.max_tensor_elements) and constant buffer sizes (prod(shape) * itemsize) before any array is built, and
each op checks its arity, options and weight shapes; sparse metadata is checked level by level
(sizes, segments, indices) before a dense array is built, and what sparse constants expand to is
bounded in proportion to the file's size. A corrupt file is a ModelImportError naming the source
and what is wrong, never another exception, never a huge allocation.
"""
from __future__ import annotations

import os
import re
import struct
from typing import Any

import numpy as np

from ..errors import EmulatorError, HNError, ModelImportError, ParamsError, UnsupportedOpError
from ..limits import LIMITS, LimitError
from .builder import GraphBuilder

_FUSED = {0: "linear", 1: "relu", 3: "relu6", 4: "tanh"}  # ActivationFunctionType
_NP_TYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 6: np.bool_,
             7: np.int16, 9: np.int8, 10: np.float64}
_QUANT_ADVICE = ("this is an integer-quantized (or hybrid int8-weight) TFLite model; parse the "
                 "float model and quantize it here with run_quantization_from_np")


# sane bounds on declared shapes, checked before any array is built: TFLite's own flat sizes are
# int32, and a per-channel vector (bias, PReLU alpha, affine scale) of _MAX_DIM floats is 128 MB
_MAX_RANK = 16
_MAX_DIM = 1 << 24
# sparse constants may expand to this many dense elements in all, or to _SPARSE_PER_BYTE per byte
# of the file if that is more: real sparse weights are >= ~0.4 file bytes per element at 90% zeros
# (float16 value + 16-bit index per non-zero), so only near-empty tensors come close, while a
# forged shape over a few stored values is refused before its dense array is allocated
_SPARSE_MIN_ELEMENTS = 1 << 24
_SPARSE_PER_BYTE = 64
# exceptions that malformed data makes the translation of an op raise (a safety net behind the
# explicit checks: they become ModelImportError naming the op)
_MALFORMED = (IndexError, KeyError, TypeError, ValueError, AttributeError, struct.error,
              ZeroDivisionError, OverflowError)
# the options table each op reads (a missing table reads as the defaults, as in TFLite)
_OPTIONS = {"CONV_2D": "Conv2DOptions", "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
            "TRANSPOSE_CONV": "TransposeConvOptions", "FULLY_CONNECTED": "FullyConnectedOptions",
            "BATCH_MATMUL": "BatchMatMulOptions", "ADD": "AddOptions", "SUB": "SubOptions",
            "MUL": "MulOptions", "DIV": "DivOptions", "GELU": "GeluOptions",
            "LEAKY_RELU": "LeakyReluOptions", "MAX_POOL_2D": "Pool2DOptions",
            "AVERAGE_POOL_2D": "Pool2DOptions", "CONCATENATION": "ConcatenationOptions",
            "RESIZE_BILINEAR": "ResizeBilinearOptions",
            "RESIZE_NEAREST_NEIGHBOR": "ResizeNearestNeighborOptions",
            "DEPTH_TO_SPACE": "DepthToSpaceOptions", "SPACE_TO_DEPTH": "SpaceToDepthOptions",
            "STRIDED_SLICE": "StridedSliceOptions", "SOFTMAX": "SoftmaxOptions"}
# inputs an op needs (all present, none -1): the first N of its input list
_MIN_INPUTS = {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 2, "TRANSPOSE_CONV": 3, "FULLY_CONNECTED": 2,
               "BATCH_MATMUL": 2, "ADD": 2, "SUB": 2, "MUL": 2, "DIV": 2, "PRELU": 2, "MEAN": 2,
               "SUM": 2, "REDUCE_MAX": 2, "PAD": 2, "PADV2": 2, "STRIDED_SLICE": 4, "SLICE": 3,
               "ARG_MAX": 2, "TRANSPOSE": 2}

# --- flatbuffer bounds ---------------------------------------------------------------------------
# The tables of the TFLite schema whose fields are read: slot -> (field, kind[, table]). Kinds: "1",
# "2", "4", "8" scalars of that many bytes; "string"; "[n]" a vector of n-byte scalars; "[table]"
# a vector of tables; "table"; "union" a table whose kind the union type in slot spec[2] names
# (_UNIONS). Tables not listed (options, metadata, signatures) have their header checked; the
# schema's unpacker then reads their fields, and anything it trips on is caught as a corrupt file.
_LAYOUT: dict[str, dict[int, tuple]] = {
    "Model": {4: ("version", "4"), 6: ("operator_codes", "[table]", "OperatorCode"),
              8: ("subgraphs", "[table]", "SubGraph"), 10: ("description", "string"),
              12: ("buffers", "[table]", "Buffer"), 14: ("metadata_buffer", "[4]"),
              16: ("metadata", "[table]", "Metadata"), 18: ("signature_defs", "[table]", None),
              20: ("external_buffer_groups", "[table]", None),
              22: ("external_buffers", "[table]", None)},
    "OperatorCode": {4: ("deprecated_builtin_code", "1"), 6: ("custom_code", "string"),
                     8: ("version", "4"), 10: ("builtin_code", "4")},
    "SubGraph": {4: ("tensors", "[table]", "Tensor"), 6: ("inputs", "[4]"), 8: ("outputs", "[4]"),
                 10: ("operators", "[table]", "Operator"), 12: ("name", "string")},
    "Tensor": {4: ("shape", "[4]"), 6: ("type", "1"), 8: ("buffer", "4"), 10: ("name", "string"),
               12: ("quantization", "table", "QuantizationParameters"), 14: ("is_variable", "1"),
               16: ("sparsity", "table", "SparsityParameters"), 18: ("shape_signature", "[4]"),
               20: ("has_rank", "1"), 22: ("variant_tensors", "[table]", None)},
    "QuantizationParameters": {4: ("min", "[4]"), 6: ("max", "[4]"), 8: ("scale", "[4]"),
                               10: ("zero_point", "[8]"), 12: ("details_type", "1"),
                               14: ("details", "table", None), 16: ("quantized_dimension", "4")},
    "Operator": {4: ("opcode_index", "4"), 6: ("inputs", "[4]"), 8: ("outputs", "[4]"),
                 10: ("builtin_options_type", "1"), 12: ("builtin_options", "table", None),
                 14: ("custom_options", "[1]"), 16: ("custom_options_format", "1"),
                 18: ("mutating_variable_inputs", "[1]"), 20: ("intermediates", "[4]"),
                 22: ("large_custom_options_offset", "8"), 24: ("large_custom_options_size", "8"),
                 26: ("builtin_options_2_type", "1"), 28: ("builtin_options_2", "table", None)},
    "Buffer": {4: ("data", "[1]"), 6: ("offset", "8"), 8: ("size", "8")},
    "Metadata": {4: ("name", "string"), 6: ("buffer", "4")},
    "SparsityParameters": {4: ("traversal_order", "[4]"), 6: ("block_map", "[4]"),
                           8: ("dim_metadata", "[table]", "DimensionMetadata")},
    "DimensionMetadata": {4: ("format", "1"), 6: ("dense_size", "4"),
                          8: ("array_segments_type", "1"), 10: ("array_segments", "union", 8),
                          12: ("array_indices_type", "1"), 14: ("array_indices", "union", 12)},
    "Int32Vector": {4: ("values", "[4]")},
    "Uint16Vector": {4: ("values", "[2]")},
    "Uint8Vector": {4: ("values", "[1]")},
}
# the SparseIndexVector union (the only union whose tables are walked): type -> table
_UNIONS = {1: "Int32Vector", 2: "Uint16Vector", 3: "Uint8Vector"}


def _verify_flatbuffer(buf: bytes, source: str) -> None:
    """Every offset and length of the tables in _LAYOUT stays inside the file (the flatbuffers
    Python reader checks none of them: a string past the end is silently cut short, a vector
    length is taken as given)."""
    n = len(buf)

    def bad(what: str, msg: str) -> None:
        raise ModelImportError(f"'{source}' is a corrupt or truncated TFLite file: {what} {msg} "
                               f"(the file has {n} bytes)")

    def u16(p: int) -> int:
        return int.from_bytes(buf[p:p + 2], "little")

    def u32(p: int) -> int:
        return int.from_bytes(buf[p:p + 4], "little")

    def table(pos: int, kind: str | None, what: str) -> None:
        if not 0 <= pos <= n - 4:
            bad(what, f"starts at byte {pos}, outside the file")
        vt = pos - int.from_bytes(buf[pos:pos + 4], "little", signed=True)
        if not 0 <= vt <= n - 4:
            bad(what, f"has its vtable at byte {vt}, outside the file")
        vsize, tsize = u16(vt), u16(vt + 2)
        if vsize < 4 or vsize % 2 or vt + vsize > n:
            bad(what, f"has a malformed vtable at byte {vt} (declared size {vsize})")
        if tsize < 4 or pos + tsize > n:
            bad(what, f"at byte {pos} declares a size of {tsize} bytes, past the end of the file")
        for slot in range(4, vsize, 2):
            off = u16(vt + slot)
            if not off:
                continue
            spec = _LAYOUT.get(kind or "", {}).get(slot)
            name, typ = (spec[0], spec[1]) if spec else (f"field {slot // 2 - 2}", "1")
            f, fw = pos + off, f"{what}.{name}"
            if f + (int(typ) if typ.isdigit() else 4) > n:
                bad(fw, f"at byte {f} lies outside the file")
            if typ.isdigit():
                continue
            target = f + u32(f)
            if target > n - 4:
                bad(fw, f"points to byte {target}, outside the file")
            if typ == "table":
                table(target, spec[2], fw)
                continue
            if typ == "union":  # its type field (a lower slot) was bounds-checked above
                toff = u16(vt + spec[2]) if spec[2] < vsize else 0
                table(target, _UNIONS.get(buf[pos + toff] if toff else 0), fw)
                continue
            count = u32(target)
            elem = 1 if typ == "string" else 4 if typ == "[table]" else int(typ[1:-1])
            if target + 4 + count * elem > n:
                bad(fw, f"declares {count} elements ({count * elem} bytes) at byte {target}, past "
                        f"the end of the file")
            if typ == "[table]":
                for j in range(count):
                    e = target + 4 + 4 * j
                    table(e + u32(e), spec[2], f"{fw}[{j}]")

    if n < 8:
        bad("the root offset", "is missing")
    table(u32(0), "Model", "model")


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
    try:
        runner.load_params(params)
    except ParamsError as e:  # e.g. weights that hold NaN / inf
        raise ModelImportError(f"{source}: the model's weights are not usable: {e}") from None
    return runner


class _Importer:
    def __init__(self, buf: bytes, source: str):
        from tensorflow.lite.python import schema_py_generated as schema

        self.schema = schema
        self.source = source
        self.buf = buf
        if len(buf) < 8 or buf[4:8] != b"TFL3":
            raise ModelImportError(f"'{source}' is not a TFLite flatbuffer (no TFL3 identifier)")
        _verify_flatbuffer(buf, source)
        try:
            self.model = schema.ModelT.InitFromPackedBuf(buf, 0)
        except Exception as e:  # what the bounds check above does not cover (options tables...)
            raise ModelImportError(f"'{source}' is not a readable TFLite model (corrupt flatbuffer: "
                                   f"{type(e).__name__}: {e})") from None
        if not self.model.subgraphs:
            raise ModelImportError(f"'{source}' has no subgraph")
        self.sg = self.model.subgraphs[0]
        self.opnames = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
        self.b = GraphBuilder(source)
        self.consts: dict[int, np.ndarray] = {}  # tensor index -> value
        self.densified = 0  # dense elements the sparse constants read so far expand to
        self.acts: dict[int, int] = {}  # tensor index -> builder node id
        self._validate()

    # --- structural validation -------------------------------------------------------------
    def bad(self, msg: str) -> ModelImportError:
        return ModelImportError(f"{self.source}: {msg}; the file is corrupt")

    def _validate(self) -> None:
        """Indices, shapes and constant sizes of the main subgraph, before anything is built."""
        m, sg = self.model, self.sg
        m.buffers, m.operatorCodes = list(m.buffers or []), list(m.operatorCodes or [])
        sg.tensors, sg.operators = list(sg.tensors or []), list(sg.operators or [])
        nt, nb = len(sg.tensors), len(m.buffers)
        for i, t in enumerate(sg.tensors):
            what = f"tensor #{i} '{self.tname(i)}'"
            shape = self._ints(t.shape, f"the shape of {what}")
            if len(shape) > _MAX_RANK or any(not 0 <= d <= _MAX_DIM for d in shape):
                raise self.bad(f"{what} declares the shape {shape[:_MAX_RANK + 1]} (dimensions must "
                               f"be in [0, {_MAX_DIM}], at most {_MAX_RANK} of them)")
            if int(np.prod(shape, dtype=object)) > LIMITS.max_tensor_elements:
                raise LimitError(f"{self.source}: {what} declares the shape {shape} "
                                 f"({int(np.prod(shape, dtype=object)):,} elements), more than "
                                 f"the limit; {LIMITS.describe('max_tensor_elements')}")
            t.shape = shape
            if t.shapeSignature is not None:
                t.shapeSignature = self._ints(t.shapeSignature, f"the shape signature of {what}")
            if not isinstance(t.buffer, int) or not 0 <= t.buffer < nb:
                raise self.bad(f"{what} refers to buffer #{t.buffer}, but the model has {nb} buffers")
            size = self.buffer_span(t.buffer, what)[1]
            if size and t.sparsity is None and t.type in _NP_TYPES:
                need = int(np.prod(shape, dtype=np.int64)) * np.dtype(_NP_TYPES[t.type]).itemsize
                if size != need:
                    raise self.bad(f"constant {what} of shape {shape} and type "
                                   f"{np.dtype(_NP_TYPES[t.type]).name} needs {need} bytes, but its "
                                   f"buffer #{t.buffer} holds {size}")
        for what, idx in (("input", sg.inputs), ("output", sg.outputs)):
            idx = self._ints(idx, f"the subgraph's {what}s")
            for i in idx:
                if not 0 <= i < nt:
                    raise self.bad(f"the subgraph's {what} refers to tensor #{i}, but the subgraph "
                                   f"has {nt} tensors")
            setattr(sg, what + "s", idx)
        for k, code in enumerate(m.operatorCodes):
            bc = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
            if bc < 0:
                raise self.bad(f"operator code #{k} has the builtin code {bc}")
        for idx, op in enumerate(sg.operators):
            if not isinstance(op.opcodeIndex, int) or not 0 <= op.opcodeIndex < len(m.operatorCodes):
                raise self.bad(f"operator #{idx} refers to operator code #{op.opcodeIndex}, but the "
                               f"model has {len(m.operatorCodes)}")
            for what in ("inputs", "outputs"):
                lst = self._ints(getattr(op, what), f"the {what} of operator #{idx}")
                for pos, i in enumerate(lst):
                    if not -1 <= i < nt:  # -1: an optional tensor left out
                        raise self.bad(f"operator #{idx} ({self.opname(op)}) {what[:-1]} {pos} refers "
                                       f"to tensor #{i}, but the subgraph has {nt} tensors")
                setattr(op, what, lst)

    def _ints(self, v: Any, what: str) -> list[int]:
        """An int vector of the file (numpy array, list or absent) as a list of ints."""
        if v is None:
            return []
        a = np.asarray(v)
        if a.ndim != 1 or a.dtype.kind not in "iu":
            raise self.bad(f"{what} is not a vector of integers")
        return [int(x) for x in a]

    def buffer_span(self, b: int, what: str) -> tuple[str, int]:
        """Where buffer #b's bytes are and how many: ("data", n) inside the flatbuffer,
        ("file", n) at its offset in the file (the >2 GB layout), ("", 0) when it is empty."""
        buf = self.model.buffers[b]
        if buf.data is not None and len(buf.data):
            return "data", len(buf.data)
        if buf.offset > 1 and buf.size:  # 1: the schema's marker of an empty external buffer
            if buf.offset + buf.size > len(self.buf):
                raise self.bad(f"{what}: buffer #{b} lies at bytes {buf.offset}..{buf.offset + buf.size}"
                               f", past the end of the file ({len(self.buf)} bytes)")
            return "file", int(buf.size)
        return "", 0

    def buffer_bytes(self, b: int, what: str) -> bytes | None:
        """The bytes of buffer #b, or None when it is empty."""
        where, size = self.buffer_span(b, what)
        buf = self.model.buffers[b]
        if where == "data":
            return np.asarray(buf.data, np.uint8).tobytes()
        if where == "file":
            return self.buf[buf.offset:buf.offset + size]
        return None

    def opname(self, op: Any) -> str:
        code = self.model.operatorCodes[op.opcodeIndex]
        bc = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
        name = self.opnames.get(bc, f"builtin#{bc}")
        if name == "CUSTOM":
            cc = code.customCode
            name = f"CUSTOM({cc.decode('utf-8', 'replace') if isinstance(cc, bytes) else cc})"
        return name

    # --- tensors ---------------------------------------------------------------------------
    def tname(self, i: int) -> str:
        n = self.sg.tensors[i].name
        return n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n)

    def tshape(self, i: int) -> list[int]:
        t = self.sg.tensors[i]
        shape = list(t.shape)  # validated: a list of ints
        sig = t.shapeSignature
        if sig is not None and len(sig) and any(int(d) < 0 for d in list(sig)[1:]):
            raise ModelImportError(f"{self.source}: tensor '{self.tname(i)}' has a dynamic shape "
                                   f"{list(sig)}; re-export the model with a fixed input size")
        return shape

    def const(self, i: int) -> np.ndarray | None:
        if i in self.consts:
            return self.consts[i]
        t = self.sg.tensors[i]
        data = self.buffer_bytes(t.buffer, f"tensor #{i} '{self.tname(i)}'")
        if data is None:
            return None
        if t.type not in _NP_TYPES:
            raise ModelImportError(f"{self.source}: constant '{self.tname(i)}' has tensor type "
                                   f"{t.type}, which the importer does not read")
        if t.sparsity is not None:
            arr = self.sparse_const(i, data)
        else:
            arr = np.frombuffer(data, _NP_TYPES[t.type]).reshape(t.shape)  # size checked in _validate
        self.consts[i] = arr
        return arr

    def sparse_const(self, i: int, data: bytes) -> np.ndarray:
        """The dense value of sparse constant #i (its stored values are `data`)."""
        t, name = self.sg.tensors[i], self.tname(i)
        dtype = np.dtype(_NP_TYPES[t.type])
        what = f"sparse constant '{name}' of shape {t.shape}"
        if len(data) % dtype.itemsize:
            raise self.bad(f"{what} has a buffer of {len(data)} bytes, not a whole number of "
                           f"{dtype.name} values")
        n = int(np.prod(t.shape, dtype=object))
        cap = max(_SPARSE_MIN_ELEMENTS, _SPARSE_PER_BYTE * len(self.buf))
        if self.densified + n > cap:  # before anything of that size is allocated
            raise ModelImportError(
                f"{self.source}: {what} would bring the dense weights of the model's sparse "
                f"constants to {self.densified + n:,} elements, more than the {cap:,} the importer "
                f"expands a file of {len(self.buf):,} bytes to; the file is corrupt, or convert the "
                f"model without tf.lite.Optimize.EXPERIMENTAL_SPARSITY (dense weights)")
        try:
            arr = _densify(t.shape, np.frombuffer(data, dtype), t.sparsity)
        except _SparseUnsupported as e:
            raise UnsupportedOpError(
                f"sparse constant tensor (DENSIFY) with {e}", name, self.source,
                "this sparsity format is not read; convert the model without "
                "tf.lite.Optimize.EXPERIMENTAL_SPARSITY (dense weights)") from None
        except _SparseError as e:
            raise self.bad(f"{what}: {e}") from None
        self.densified += n
        return arr

    def fconst(self, i: int, op: str, node: str, ndim: int | None = None) -> np.ndarray:
        """A float constant (weights); int8 weights are a quantized model."""
        v = self.const(i)
        if v is None:
            raise UnsupportedOpError(f"{op} with a computed (non-constant) weight tensor "
                                     f"'{self.tname(i)}'", node, self.source,
                                     "weights must be constants")
        if v.dtype in (np.int8, np.uint8, np.int16):
            raise UnsupportedOpError(f"{op} with {v.dtype} weights", node, self.source, _QUANT_ADVICE)
        if ndim is not None and v.ndim != ndim:
            raise self.bad(f"operator {node} ({op}) has weights '{self.tname(i)}' of shape "
                           f"{list(v.shape)}, not of rank {ndim}")
        v = v.astype(np.float32)
        if not np.all(np.isfinite(v)):
            raise self.bad(f"operator {node} ({op}) has weights '{self.tname(i)}' that hold NaN or "
                           f"inf values")
        return v

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
            try:
                self.translate(name, node, op)
            except EmulatorError:  # ModelImportError, UnsupportedOpError: already precise
                raise
            except _MALFORMED as e:  # malformed data the explicit checks did not foresee
                raise self.bad(f"operator {node} ({name}) is malformed ({type(e).__name__}: {e})") \
                    from None
        for o in self.sg.outputs:
            if o not in self.acts:
                raise ModelImportError(f"{self.source}: output '{self.tname(o)}' is a constant or "
                                       f"not computed from the inputs")
            self.b.add_output(self.acts[o])
        try:
            return self.b.build(net_name)
        except HNError as e:  # shapes / options of the file that do not fit together
            raise ModelImportError(f"{self.source}: the model's shapes or options are inconsistent "
                                   f"({e})") from None
        except EmulatorError:  # ModelImportError, UnsupportedOpError, a limit of the toolkit
            raise
        except _MALFORMED as e:
            raise self.bad(f"its layers cannot be folded ({type(e).__name__}: {e})") from None

    def translate(self, name: str, node: str, op: Any) -> None:
        """One operator: folded into a constant, or builder nodes for its first output."""
        outs = [o for o in op.outputs if o >= 0]
        ins = list(op.inputs)
        need = _MIN_INPUTS.get(name, 1)
        if len(ins) < need or any(i < 0 for i in ins[:need]) or not outs:
            raise self.bad(f"operator {node} ({name}) has inputs {ins} and outputs {list(op.outputs)}; "
                           f"it needs {need} input(s) and an output")
        if name == "CONCATENATION" and any(i < 0 for i in ins):
            raise self.bad(f"operator {node} ({name}) has a missing input (-1) in {ins}")
        if name in _OPTIONS:
            op.builtinOptions = self.options(op, _OPTIONS[name], node, name)
        if all(i < 0 or self.const(i) is not None for i in ins) and name in _CONST_FOLD:
            self.consts[outs[0]] = _CONST_FOLD[name](self, op, ins, outs[0])
            return
        fn = getattr(self, "_op_" + name, None)
        if fn is None:
            raise UnsupportedOpError(f"{name} of a computed tensor", node, self.source,
                                     "only constant inputs of this op are folded")
        y = fn(op, ins, outs, node, name)
        if y is not None:
            self.acts[outs[0]] = y

    def options(self, op: Any, cls: str, node: str, name: str) -> Any:
        """The op's options table, checked: of its type (absent: the defaults, as TFLite reads
        it), strides / dilations / filter and block sizes >= 1, a known padding."""
        typ = getattr(self.schema, cls + "T")
        o = op.builtinOptions
        if o is None:
            o = typ()
        elif not isinstance(o, typ):
            raise self.bad(f"operator {node} ({name}) carries {type(o).__name__[:-1]} options instead "
                           f"of {cls}")
        for attr in ("strideH", "strideW", "dilationHFactor", "dilationWFactor", "filterHeight",
                     "filterWidth", "blockSize"):
            v = getattr(o, attr, None)
            if v is not None and not 1 <= int(v) <= _MAX_DIM:
                raise self.bad(f"operator {node} ({name}) has {attr} = {v}")
        if hasattr(o, "padding") and int(o.padding) not in (0, 1):
            raise self.bad(f"operator {node} ({name}) has the unknown padding {o.padding}")
        return o

    # --- helpers ---------------------------------------------------------------------------
    def describe(self, idx: int, op: Any) -> tuple[str, str, Any]:
        """(op name, node description for messages, op)."""
        name = self.opname(op)
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
        w = self.fconst(ins[1], name, node, 4)  # [O, H, W, I]
        o = op.builtinOptions
        weights = {"kernel": np.transpose(w, (1, 2, 3, 0))}
        if len(ins) > 2 and ins[2] >= 0:
            weights["bias"] = self.fconst(ins[2], name, node, 1)
        cin = self.b.shape(x)[-1]
        if w.shape[3] == 0 or cin % w.shape[3]:
            raise self.bad(f"operator {node} ({name}) has weights of shape {list(w.shape)} for "
                           f"{cin} input channels")
        p = {"strides": [1, o.strideH, o.strideW, 1],
             "dilations": [1, o.dilationHFactor, o.dilationWFactor, 1],
             "padding": self.padding(o), "groups": cin // w.shape[3]}
        y = self.b.add("conv", [x], self.out_shape(outs[0]), p, weights, self.tname(outs[0]))
        return self.fused(y, o, node)

    def _op_DEPTHWISE_CONV_2D(self, op, ins, outs, node, name):
        x = self.act(ins[0], name, node)
        w = self.fconst(ins[1], name, node, 4)  # [1, H, W, C * M]
        o = op.builtinOptions
        cin = self.b.shape(x)[-1]
        if w.shape[0] != 1 or w.shape[3] == 0 or w.shape[3] % cin:
            raise self.bad(f"operator {node} ({name}) has weights of shape {list(w.shape)} for "
                           f"{cin} input channels")
        weights = {"kernel": w.reshape(w.shape[1], w.shape[2], cin, w.shape[3] // cin)}
        if len(ins) > 2 and ins[2] >= 0:
            weights["bias"] = self.fconst(ins[2], name, node, 1)
        p = {"strides": [1, o.strideH, o.strideW, 1],
             "dilations": [1, o.dilationHFactor, o.dilationWFactor, 1], "padding": self.padding(o)}
        y = self.b.add("dw", [x], self.out_shape(outs[0]), p, weights, self.tname(outs[0]))
        return self.fused(y, o, node)

    def _op_TRANSPOSE_CONV(self, op, ins, outs, node, name):
        x = self.act(ins[2], name, node)
        w = self.fconst(ins[1], name, node, 4)  # [O, H, W, I]
        o = op.builtinOptions
        weights = {"kernel": np.transpose(w, (1, 2, 3, 0))}
        if len(ins) > 3 and ins[3] >= 0:
            weights["bias"] = self.fconst(ins[3], name, node, 1)
        p = {"strides": [1, o.strideH, o.strideW, 1], "padding": self.padding(o)}
        y = self.b.add("deconv", [x], self.out_shape(outs[0]), p, weights, self.tname(outs[0]))
        return self.fused(y, o, node)

    def _op_FULLY_CONNECTED(self, op, ins, outs, node, name):
        x = self.act(ins[0], name, node)
        w = self.fconst(ins[1], name, node, 2)  # [O, I]
        o = op.builtinOptions
        weights = {"kernel": w.T.copy()}
        if len(ins) > 2 and ins[2] >= 0:
            weights["bias"] = self.fconst(ins[2], name, node, 1)
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
        if a.size > rank or a.dtype.kind not in "iu":
            raise self.bad(f"operator {node} ({name}) has the axes {np.ravel(a)[:rank + 1].tolist()} "
                           f"for a tensor of rank {rank}")
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
        if pads is not None and pads.shape != (len(self.b.shape(x)), 2):
            raise self.bad(f"operator {node} ({name}) has paddings of shape {list(pads.shape)} for "
                           f"a tensor of rank {len(self.b.shape(x))}")
        if pads is None or len(self.b.shape(x)) != 4 or np.any(pads[0] != 0):
            raise UnsupportedOpError(f"{name} of {self.b.shape(x)}", node, self.source,
                                     "constant padding of H, W, C of a 4-D tensor only")
        p = {"pads": [[int(a), int(b)] for a, b in pads[1:]], "constant_value": float(value)}
        return self.b.add("pad", [x], self.out_shape(outs[0]), p, source=self.tname(outs[0]))

    def _op_PADV2(self, op, ins, outs, node, name):
        v = self.const(ins[2]) if len(ins) > 2 and ins[2] >= 0 else np.zeros(())
        if v is None or v.size != 1:
            raise UnsupportedOpError(f"{name} with a computed or non-scalar pad value", node,
                                     self.source, "")
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
        if min(begin.size, end.size) < rank or begin.ndim != 1 or end.ndim != 1:
            raise self.bad(f"operator {node} ({name}) has bounds {list(begin.shape)} / "
                           f"{list(end.shape)} for a tensor of rank {rank}")
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
        if begin.shape != (len(shp),) or size.shape != (len(shp),):
            raise self.bad(f"operator {node} ({name}) has begin / size of shapes "
                           f"{list(begin.shape)} / {list(size.shape)} for a tensor of rank {len(shp)}")
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
        axes = self._axes(ins[1], len(self.b.shape(x)), name, node)
        if len(axes) != 1:
            raise self.bad(f"operator {node} ({name}) has the axes {axes}; it takes one")
        axis = axes[0]
        if axis == 0:
            raise UnsupportedOpError(f"{name} over the batch axis", node, self.source, "")
        return self.b.add("argmax", [x], self.out_shape(outs[0]), {"axis": axis}, source=self.tname(outs[0]))

    def _op_TRANSPOSE(self, op, ins, outs, node, name):
        perm = self.const(ins[1])
        if perm is not None:
            rank = len(self.b.shape(self.act(ins[0], name, node)))
            if sorted(int(p) for p in np.ravel(perm)) != list(range(rank)):
                raise self.bad(f"operator {node} ({name}) has the permutation "
                               f"{np.ravel(perm)[:rank + 1].tolist()} for a tensor of rank {rank}")
        if perm is None or int(perm[0]) != 0:
            raise UnsupportedOpError(f"{name} moving the batch axis", node, self.source, "")
        return self.b.add("transpose", [self.act(ins[0], name, node)], self.out_shape(outs[0]),
                          {"perm": [int(p) for p in perm]}, source=self.tname(outs[0]))

    def _op_DEQUANTIZE(self, op, ins, outs, node, name):
        raise UnsupportedOpError(name + " of a computed tensor", node, self.source, _QUANT_ADVICE)

    def _op_QUANTIZE(self, op, ins, outs, node, name):
        raise UnsupportedOpError(name, node, self.source, _QUANT_ADVICE)


# --- constant folding: ops whose inputs are all constants become constants --------------------

def _fold_input(imp: _Importer, ins: list[int], k: int, name: str) -> np.ndarray:
    """Input k of a folded op: present (the fold runs when every input present is constant)."""
    if len(ins) <= k or ins[k] < 0:
        raise imp.bad(f"{name} of constant '{imp.tname(ins[0])}' lacks its input {k}")
    return imp.const(ins[k])


def _dequantize(imp: _Importer, op: Any, ins: list[int], out: int) -> np.ndarray:
    v = imp.const(ins[0])
    if v.dtype == np.float16:
        return v.astype(np.float32)
    what = f"DEQUANTIZE of '{imp.tname(ins[0])}'"
    if v.dtype.kind not in "iu":
        raise imp.bad(f"{what}: a {v.dtype} tensor")
    q = imp.sg.tensors[ins[0]].quantization
    if q is None or q.scale is None or not len(q.scale):
        raise ModelImportError(f"{imp.source}: {what} without scales")
    scale = np.asarray(q.scale, np.float32).reshape(-1)
    zp = np.asarray(q.zeroPoint if q.zeroPoint is not None else [0], np.float32).reshape(-1)
    if zp.size not in (1, scale.size):
        raise imp.bad(f"{what}: {scale.size} scales and {zp.size} zero points")
    if scale.size > 1:  # per-axis
        axis = int(q.quantizedDimension)
        if not 0 <= axis < v.ndim or v.shape[axis] != scale.size:
            raise imp.bad(f"{what}: {scale.size} per-axis scales on axis {axis} of shape "
                          f"{list(v.shape)}")
        shape = [1] * v.ndim
        shape[axis] = -1
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    return ((v.astype(np.float32) - zp) * scale).astype(np.float32)


def _densify_op(imp: _Importer, op: Any, ins: list[int], out: int) -> np.ndarray:
    v = imp.const(ins[0])  # const() has decoded a sparse input already: DENSIFY is the identity
    t, o = imp.sg.tensors[ins[0]], imp.sg.tensors[out]
    if list(v.shape) != o.shape or o.type != t.type:
        raise imp.bad(f"DENSIFY of constant '{imp.tname(ins[0])}' of shape {list(v.shape)} and type "
                      f"{t.type} into '{imp.tname(out)}' of shape {o.shape} and type {o.type}")
    return v


def _transpose(imp: _Importer, op: Any, ins: list[int], out: int) -> np.ndarray:
    v, perm = imp.const(ins[0]), _fold_input(imp, ins, 1, "TRANSPOSE")
    perm = [int(p) for p in np.ravel(perm)]
    if sorted(perm) != list(range(v.ndim)):
        raise imp.bad(f"TRANSPOSE of constant '{imp.tname(ins[0])}' of shape {list(v.shape)} by "
                      f"{perm[:v.ndim + 1]}")
    return np.transpose(v, perm)


def _reshape(imp: _Importer, op: Any, ins: list[int], out: int) -> np.ndarray:
    v, shape = imp.const(ins[0]), imp.sg.tensors[out].shape  # shape validated in _validate
    if int(np.prod(shape, dtype=np.int64)) != v.size:
        raise imp.bad(f"reshape of constant '{imp.tname(ins[0])}' of shape {list(v.shape)} into "
                      f"'{imp.tname(out)}' of shape {shape}")
    return v.reshape(shape)


def _cast(imp: _Importer, op: Any, ins: list[int], out: int) -> np.ndarray:
    t = imp.sg.tensors[out].type
    if t not in _NP_TYPES:
        raise imp.bad(f"CAST of constant '{imp.tname(ins[0])}' to tensor type {t}")
    return imp.const(ins[0]).astype(_NP_TYPES[t])


_CONST_FOLD = {"DENSIFY": _densify_op, "DEQUANTIZE": _dequantize, "TRANSPOSE": _transpose,
               "RESHAPE": _reshape, "CAST": _cast, "SQUEEZE": _reshape, "EXPAND_DIMS": _reshape}


# --- sparse tensors ------------------------------------------------------------------------------
# TFLite's sparsity (schema.fbs, SparsityParameters): the dense shape's n dimensions, k of them cut
# into blocks (block_map[b] is the dimension block b cuts), are traversed in traversal_order: a
# permutation of the n (outer) dimensions, then one of the k block dimensions. dim_metadata gives
# one level per traversed dimension: DENSE (dense_size coordinates under each parent position) or
# SPARSE_CSR (the parent at position p holds array_indices[array_segments[p]:array_segments[p+1]],
# and each of those is a position of its own). The buffer stores the values of the last level's
# positions in traversal order; everything not stored is zero.

class _SparseError(ValueError):
    """Sparsity metadata that does not describe the tensor (a corrupt file)."""


class _SparseUnsupported(Exception):
    """A well-formed sparsity format this decoder does not read."""


_DENSE, _CSR = 0, 1  # DimensionType


def _sparse_ints(v: Any, what: str) -> np.ndarray:
    a = np.zeros(0, np.int64) if v is None else np.asarray(v)
    if a.ndim != 1 or (a.size and a.dtype.kind not in "iu"):
        raise _SparseError(f"{what} is not a vector of integers")
    return a.astype(np.int64)


def _index_vector(m: Any, field: str, level: int) -> np.ndarray:
    """A CSR level's segments (field "arraySegments") or indices ("arrayIndices") as int64."""
    kind = int(getattr(m, field + "Type") or 0)
    what = f"level {level}'s " + ("array_segments" if field == "arraySegments" else "array_indices")
    if kind == 0:
        raise _SparseError(f"{what} is missing (a SPARSE_CSR level needs segments and indices)")
    if kind not in _UNIONS:  # the SparseIndexVector types
        raise _SparseUnsupported(f"index vector type {kind} ({what})")
    vec = getattr(m, field)
    return _sparse_ints(None if vec is None else vec.values, what)


def _densify(shape: list[int], values: np.ndarray, sp: Any) -> np.ndarray:
    """The dense array of `shape` whose sparse encoding is SparsityParametersT `sp` and the stored
    `values`. Raises _SparseError (inconsistent metadata) or _SparseUnsupported; allocates only
    arrays bounded by the file's vectors, the stored values and prod(shape) (the caller's bound)."""
    n = len(shape)
    order = [int(d) for d in _sparse_ints(sp.traversalOrder, "traversal_order")]
    bmap = [int(d) for d in _sparse_ints(sp.blockMap, "block_map")]
    dims = list(sp.dimMetadata or [])
    k = len(bmap)
    if len(set(bmap)) != k or any(not 0 <= d < n for d in bmap):
        raise _SparseError(f"block_map {bmap[:n + 1]} does not name distinct dimensions of the {n}")
    if len(order) != n + k or sorted(order[:n]) != list(range(n)) or \
            sorted(order[n:]) != list(range(n, n + k)):
        raise _SparseError(f"traversal_order {order[:n + k + 1]} is not a permutation of the {n} "
                           f"dimensions" + (f" followed by one of the {k} block dimensions" if k else ""))
    if bmap != sorted(bmap):  # valid per the schema, but TFLite's runtime decodes it otherwise
        raise _SparseUnsupported(f"the block_map {bmap}, not in ascending dimension order")
    if len(dims) != n + k or any(m is None for m in dims):
        raise _SparseError(f"it has {len(dims)} dim_metadata entries for {n + k} traversed "
                           f"dimensions")
    for lvl, m in enumerate(dims):
        if int(m.format) not in (_DENSE, _CSR):
            raise _SparseUnsupported(f"dimension type {int(m.format)} (level {lvl})")
    # block sizes: the dense_size of the level that traverses each block dimension
    block = [1] * n
    for b, d in enumerate(bmap):
        lvl = order.index(n + b)
        if int(dims[lvl].format) != _DENSE:
            raise _SparseUnsupported(f"a block dimension stored SPARSE_CSR (level {lvl})")
        size = int(dims[lvl].denseSize)
        if size < 1 or shape[d] % size:
            raise _SparseError(f"block dimension {b} has size {size}, which does not divide "
                               f"dimension {d} of size {shape[d]}")
        block[d] = size
    # each level's coordinate count and its step in the row-major flat index of the dense array
    strides = [int(np.prod(shape[d + 1:], dtype=np.int64)) for d in range(n)]
    sizes, steps = [], []
    for dim in order:
        d = dim if dim < n else bmap[dim - n]
        sizes.append(shape[d] // block[d] if dim < n else block[d])
        steps.append(strides[d] * block[d] if dim < n else strides[d])
    # first pass, lengths only: positions per level must chain (segments = parents + 1, the last
    # level's positions = the stored values); no array is built from the declared sizes yet
    count, index = 1, []
    for lvl, m in enumerate(dims):
        if int(m.format) == _DENSE:
            if int(m.denseSize) != sizes[lvl]:
                raise _SparseError(f"level {lvl} is dense of size {int(m.denseSize)}, but the shape "
                                   f"and blocks give {sizes[lvl]}")
            count *= sizes[lvl]
            index.append(None)
            continue
        seg = _index_vector(m, "arraySegments", lvl)
        idx = _index_vector(m, "arrayIndices", lvl)
        if len(seg) != count + 1:
            raise _SparseError(f"level {lvl} has {len(seg)} array_segments for {count} parent "
                               f"positions (it needs {count + 1})")
        count = len(idx)
        index.append((seg, idx))
    if count != len(values):
        raise _SparseError(f"its metadata describes {count} stored values, but the buffer holds "
                           f"{len(values)}")
    if 0 in shape:  # nothing to place (and a level of size 0 would not bound the levels above it)
        return np.zeros(shape, values.dtype)
    # second pass: the flat dense index of every position, level by level
    flat = np.zeros(1, np.int64)
    for lvl, (size, step) in enumerate(zip(sizes, steps)):
        if index[lvl] is None:
            flat = (flat[:, None] + np.arange(size, dtype=np.int64) * step).reshape(-1)
            continue
        seg, idx = index[lvl]
        per = np.diff(seg)
        if seg[0] != 0 or seg[-1] != len(idx) or np.any(per < 0):
            raise _SparseError(f"level {lvl}'s array_segments do not rise monotonically from 0 to "
                               f"the number of its array_indices ({len(idx)})")
        if len(idx) and (idx.min() < 0 or idx.max() >= size):
            raise _SparseError(f"level {lvl}'s array_indices run from {idx.min()} to {idx.max()}, "
                               f"outside [0, {size})")
        # indices rise strictly inside a segment: no element is stored twice (and no parent holds
        # more than `size` children, which keeps every level within prod(shape))
        first = np.zeros(len(idx), bool)
        first[seg[:-1][per > 0]] = True
        if np.any((np.diff(idx) <= 0) & ~first[1:]):
            raise _SparseError(f"level {lvl}'s array_indices do not rise strictly within a segment")
        flat = np.repeat(flat, per) + idx * step
    dense = np.zeros(int(np.prod(shape, dtype=np.int64)), values.dtype)
    dense[flat] = values
    return dense.reshape(shape)
