"""The device protocol's encoding (hailort_py.protocol) against docs/device-protocol.md, and the
server and client on a pure-runtime echo device (no TensorFlow: these run in the fast suite)."""
from __future__ import annotations

import pathlib
import re

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import hailort_py as hrt
from hailort_py import protocol as P
from hailort_py.device import Device
from hailort_py.errors import STATUS_NAMES, error_class
from hailort_py.remote import RemoteDevice
from hailort_py.server import DeviceServer

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "device-protocol.md"


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=20),
                       hnp.arrays(st.sampled_from([np.uint8, np.dtype("<u2"), np.dtype("<f4"),
                                                   np.dtype(">u2")]),
                                  hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=7)),
                       max_size=4))
def test_tensors_round_trip_through_parts(arrays):
    header = {"v": 1, "verb": "infer", "id": 1, "tensors": P.tensor_descs(arrays)}
    header = msgpack.unpackb(P.pack_header(header))
    parts = [bytes(p) for p in P.tensor_parts(arrays)]
    got = P.decode_tensors(header, parts)
    assert list(got) == list(arrays)
    for name, a in arrays.items():
        assert got[name].shape == a.shape
        assert got[name].dtype == a.dtype.newbyteorder("<")
        assert np.array_equal(got[name], a, equal_nan=a.dtype.kind == "f")


def test_decoded_tensors_view_the_received_buffer():
    raw = bytearray(np.arange(12, dtype=np.uint8).tobytes())
    got = P.decode_tensors({"tensors": [{"name": "s", "dtype": "uint8", "shape": [3, 4]}]},
                           [memoryview(raw)])
    raw[0] = 99
    assert got["s"][0, 0] == 99  # a view, not a copy


@pytest.mark.parametrize("desc, parts, match", [
    ([{"name": "s", "dtype": "uint8", "shape": [2]}], [], "describes 1 tensors but 0"),
    ([{"name": "s", "dtype": "uint8", "shape": [2]}], [b"abc"], "its data part has 3"),
    ([{"name": "s", "dtype": "int64", "shape": [2]}], [b"12"], "dtype 'int64'"),
    ([{"name": "s", "dtype": "uint8", "shape": [-1]}], [b""], "non-negative"),
    ([{"name": "s", "dtype": "uint8", "shape": [1] * 9}], [b"1"], "1 to 8"),
    ([{"name": "", "dtype": "uint8", "shape": [1]}], [b"1"], "non-empty string"),
    ([{"name": "s", "dtype": "uint8", "shape": [1]}] * 2, [b"1"] * 2, "appears twice"),
    (["s"], [b"1"], "not a map"),
    ("s", [], "must be a list"),
    ([{"name": "s", "dtype": "uint8", "shape": [1]}] * 300, [b"1"] * 300, "at most 256"),
])
def test_bad_tensor_descriptions_are_invalid_argument(desc, parts, match):
    with pytest.raises(P.ProtocolError, match=match) as e:
        P.decode_tensors({"id": 3, "verb": "infer", "tensors": desc}, parts)
    assert e.value.status == hrt.HailoInvalidArgumentError.status and e.value.request_id == 3


@pytest.mark.parametrize("header, status, match", [
    ({"v": 1, "verb": "ping"}, 2, "no request id"),
    ({"v": 1, "verb": "ping", "id": -1}, 2, "no request id"),
    ({"v": 1, "verb": "ping", "id": True}, 2, "no request id"),
    ({"v": 2, "verb": "ping", "id": 1}, 78, "version 2"),
    ({"verb": "ping", "id": 1}, 78, "version None"),
    ({"v": 1, "verb": "format_disk", "id": 1}, 79, "unknown verb"),
    ({"v": 1, "verb": "infer", "id": 1, "network": 5}, 2, "network"),
])
def test_bad_request_headers(header, status, match):
    with pytest.raises(P.ProtocolError, match=match) as e:
        P.check_request(header)
    assert e.value.status == status


@pytest.mark.parametrize("part, match", [
    (b"\xc1", "not msgpack"), (msgpack.packb([1, 2]), "not a map"),
    (msgpack.packb({1: 2}), "not msgpack"), (b"\x91" * 5000 + b"\xc0", "not msgpack"),
    (msgpack.packb({"pad": "x" * 70_000}), "larger than"),
])
def test_unreadable_headers(part, match):
    with pytest.raises(P.ProtocolError, match=match):
        P.unpack_header(part)


def test_reply_statuses_become_the_named_exceptions():
    for status in (2, 4, 61, 62, 78, 79, 82):
        err = P.error_of_reply({"status": status, "error": "why"}, "request 9 to ep")
        assert type(err) is error_class(status) and "request 9 to ep: why" in str(err)
    assert P.error_of_reply({"status": 0}, "x") is None


def test_the_documented_statuses_are_the_c_headers():
    rows = re.findall(r"^\| `(HAILO_[A-Z_]+)` \| (\d+) \|", DOC.read_text(), re.M)
    assert len(rows) >= 9
    for name, value in rows:
        assert STATUS_NAMES[int(value)] == name


# --- a server and a client on an echo device (no emulator) -------------------------------------

class EchoDevice(Device):
    """One uint8 input stream and one output stream of the same frame size; the output is the
    input plus one (so a reply cannot be mistaken for the request)."""

    def __init__(self):
        fmt = hrt.Format(hrt.FormatType.UINT8, hrt.FormatOrder.NHCW)
        shape = hrt.ImageShape(4, 8, 3)
        self.infos = [hrt.StreamInfo("echo/in", hrt.StreamDirection.H2D, fmt, shape, shape),
                      hrt.StreamInfo("echo/out", hrt.StreamDirection.D2H, fmt, shape, shape, index=1)]

    def network_names(self):
        return ["echo"]

    def stream_infos(self, network_name=None):
        self._network_name(network_name)
        return list(self.infos)

    def _infer(self, network_name, raw_inputs):
        return {"echo/out": raw_inputs["echo/in"] + np.uint8(1)}


@pytest.fixture(scope="module")
def echo_server():
    with DeviceServer(EchoDevice(), "tcp://127.0.0.1:*", insecure=True) as srv:
        yield srv


def test_remote_echo_device_round_trip(echo_server):
    frames = np.random.default_rng(0).integers(0, 255, (5, 96), np.uint8)
    with RemoteDevice(echo_server.endpoints[0], timeout_ms=10000) as remote:
        assert remote.network_names() == ["echo"]
        assert remote.stream_infos() == EchoDevice().infos
        out = remote.infer({"echo/in": frames})
        assert np.array_equal(out["echo/out"], frames + 1)
        assert not out["echo/out"].flags.owndata  # a view of the received message, no copy
        reqs = [remote.submit({"echo/in": frames[i:i + 1]}) for i in range(5)]
        assert [r.id for r in reqs] == sorted({r.id for r in reqs})
        for i, r in enumerate(reqs):
            assert np.array_equal(r.result()["echo/out"], frames[i:i + 1] + 1)
            assert r.header["timings"]["device_us"] >= 0
        outs = list(remote.map(({"echo/in": frames[i:i + 1]} for i in range(5)), in_flight=3))
        assert np.array_equal(np.concatenate([o["echo/out"] for o in outs]), frames + 1)
        with pytest.raises(hrt.HailoInvalidArgumentError, match="echo/in"):
            remote.infer({"echo/in": frames[:, :50]})  # checked before sending
        with pytest.raises(hrt.HailoNotFoundError, match="no network 'x'"):
            remote.infer({"echo/in": frames}, "x")
    with pytest.raises(hrt.HailoCommunicationClosedError, match="closed"):
        remote.infer({"echo/in": frames})


def test_remote_device_argument_errors():
    with pytest.raises(hrt.HailoInvalidArgumentError, match="endpoint"):
        RemoteDevice([])
    with pytest.raises(hrt.HailoInvalidArgumentError, match="timeout_ms"):
        RemoteDevice("tcp://127.0.0.1:1", timeout_ms=0)
    with pytest.raises(hrt.HailoInvalidArgumentError, match="tcp://HOST:PORT"):
        RemoteDevice("board:5555")
    with pytest.raises(hrt.HailoNotFoundError, match="host-app keys"):
        RemoteDevice("tcp://127.0.0.1:1", keys="/nonexistent-keys")


def test_a_driver_returning_junk_gets_an_error_reply_and_the_worker_lives_on():
    """Outputs that cannot travel (an int32 array) are HAILO_INTERNAL_FAILURE for that request;
    the next request is served (the worker thread survived)."""

    class Flaky(EchoDevice):
        calls = 0

        def _infer(self, network_name, raw_inputs):
            Flaky.calls += 1
            if Flaky.calls == 1:
                return {"echo/out": raw_inputs["echo/in"].astype(np.int32)}
            return super()._infer(network_name, raw_inputs)

    frames = np.zeros((2, 96), np.uint8)
    with DeviceServer(Flaky(), "tcp://127.0.0.1:*", insecure=True) as srv:
        with RemoteDevice(srv.endpoints[0], timeout_ms=10000) as remote:
            with pytest.raises(hrt.HailoInternalFailureError, match="device failed"):
                remote.infer({"echo/in": frames})
            assert np.array_equal(remote.infer({"echo/in": frames})["echo/out"], frames + 1)
            assert remote.stats()[srv.endpoints[0]]["errors"] == 1


def test_close_from_another_thread_stops_the_server_first():
    srv = DeviceServer(EchoDevice(), "tcp://127.0.0.1:*", insecure=True).start()
    with RemoteDevice(srv.endpoints[0], timeout_ms=10000) as remote:
        assert remote.ping() > 0
    srv.close()  # the serving thread owns the sockets: close() stops it, and it closes them
    assert not srv._thread.is_alive() and srv._closed


def test_a_device_that_raises_any_error_fails_that_request_only():
    """A driver's exception of any type is an error reply naming it (HAILO_INTERNAL_FAILURE),
    never a silent timeout; a device's own HailoRTError keeps its status; the worker lives on."""

    class Moody(EchoDevice):
        def __init__(self):
            super().__init__()
            self.mood = None

        def _infer(self, network_name, raw_inputs):
            if self.mood == "bug":
                raise ZeroDivisionError("a driver bug")
            if self.mood == "status":
                raise hrt.HailoTimeoutError("the chip did not answer")
            if self.mood == "junk":
                return [raw_inputs["echo/in"]]  # not {stream: frames}
            return super()._infer(network_name, raw_inputs)

    dev = Moody()
    frames = np.zeros((1, 96), np.uint8)
    with DeviceServer(dev, "tcp://127.0.0.1:*", insecure=True) as srv:
        with RemoteDevice(srv.endpoints[0], timeout_ms=10000) as remote:
            dev.mood = "bug"
            with pytest.raises(hrt.HailoInternalFailureError,
                               match="device failed: ZeroDivisionError: a driver bug"):
                remote.infer({"echo/in": frames})
            dev.mood = "status"
            with pytest.raises(hrt.HailoTimeoutError, match="the chip did not answer"):
                remote.infer({"echo/in": frames})
            dev.mood = "junk"
            with pytest.raises(hrt.HailoInternalFailureError,
                               match="outputs cannot be sent: the device returned a list"):
                remote.infer({"echo/in": frames})
            dev.mood = None
            assert np.array_equal(remote.infer({"echo/in": frames})["echo/out"], frames + 1)
            assert remote.stats()[srv.endpoints[0]]["errors"] == 3


def test_a_bug_in_the_servers_reply_path_is_an_error_reply_not_a_timeout(monkeypatch):
    frames = np.zeros((1, 96), np.uint8)
    with DeviceServer(EchoDevice(), "tcp://127.0.0.1:*", insecure=True) as srv:
        real = srv._run
        calls = []

        def broken(*job):
            calls.append(job[1])
            if len(calls) == 1:
                raise KeyError("a server bug")
            return real(*job)

        monkeypatch.setattr(srv, "_run", broken)
        with RemoteDevice(srv.endpoints[0], timeout_ms=10000) as remote:
            with pytest.raises(hrt.HailoInternalFailureError,
                               match="device server failed: KeyError: 'a server bug'"):
                remote.infer({"echo/in": frames})
            assert np.array_equal(remote.infer({"echo/in": frames})["echo/out"], frames + 1)


# --- errors of the runtime's public API: its own classes, never a bare ValueError / TypeError -

@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_header_bytes_are_a_protocol_error_or_a_map(data):
    try:
        assert isinstance(P.unpack_header(data), dict)
    except P.ProtocolError as e:
        assert e.status == hrt.HailoInvalidArgumentError.status


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.text(max_size=12) | st.integers(0, 3), inner, max_size=5),
    max_leaves=12)
STREAM_KEYS = ("name", "direction", "format", "shape", "hw_shape", "quant_info", "quant_infos",
               "nms_info", "index", "hw_data_bytes", "hw_frame_size")


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_stream_info_from_any_dict_is_a_stream_info_or_a_hailort_error(data):
    """What a server sends as stream infos: anything wrong in it is a HailoInvalidArgumentError
    (RemoteDevice reports it as the server's fault), never a bare TypeError / KeyError."""
    base = EchoDevice().infos[0].to_dict()
    if data.draw(st.booleans()):
        d = data.draw(JSONISH)
    else:  # a valid dict with some fields replaced, dropped, or nested junk
        d = dict(base)
        for key in data.draw(st.lists(st.sampled_from(STREAM_KEYS), max_size=3)):
            if data.draw(st.booleans()):
                d.pop(key, None)
            else:
                d[key] = data.draw(JSONISH)
        if data.draw(st.booleans()):
            d["nms_info"] = data.draw(st.dictionaries(
                st.sampled_from(["number_of_classes", "max_bboxes_per_class", "bbox_size",
                                 "defuse_info", "burst_type", "is_defused"]), JSONISH, max_size=4))
    try:
        info = hrt.StreamInfo.from_dict(d)
    except hrt.HailoRTError:
        return
    assert isinstance(info, hrt.StreamInfo)


def test_runtime_argument_errors_are_hailort_errors(tmp_path):
    from hailort_py.device import device_side_context
    from hailort_py.drivers import DriverError, find_driver, open_driver, register_driver
    from hailort_py.vstreams import InferVStreams, InputVStreamParams, OutputVStreamParams, VDevice

    dev = EchoDevice()
    with pytest.raises(hrt.HailoInvalidArgumentError, match="mapping"):
        dev.infer([np.zeros((1, 96), np.uint8)])
    net = VDevice(dev).configure()
    with pytest.raises(hrt.HailoInvalidArgumentError, match="input vstream params must be a mapping"):
        InferVStreams(net, [], OutputVStreamParams.make(net))
    pipeline = InferVStreams(net, InputVStreamParams.make(net), OutputVStreamParams.make(net))
    with pytest.raises(hrt.HailoInvalidArgumentError, match="input data must be a mapping"):
        pipeline.infer(np.zeros((1, 4, 8, 3), np.uint8))
    nhwc = hrt.Format(hrt.FormatType.FLOAT32, hrt.FormatOrder.NHWC)
    f32 = hrt.StreamInfo("f", hrt.StreamDirection.H2D, nhwc, hrt.ImageShape(1, 2, 3),
                         hrt.ImageShape(1, 2, 3))
    with pytest.raises(hrt.HailoNotSupportedError, match="UINT8 / UINT16 codes"):
        device_side_context(f32, hrt.StreamDirection.D2H)
    with pytest.raises(hrt.HailoInvalidArgumentError, match="missing key.*max_bboxes_per_class"):
        hrt.NmsInfo.from_dict({"number_of_classes": 1})
    with pytest.raises(hrt.HailoInvalidArgumentError, match="quant_infos: expected a list"):
        hrt.StreamInfo.from_dict(dict(dev.infos[0].to_dict(), quant_infos=5))
    with pytest.raises(hrt.HailoInvalidArgumentError, match="out of range"):
        hrt.QuantInfo(10**400, 1.0, 0.0, 1.0)
    with pytest.raises(hrt.HailoInvalidArgumentError, match="device dtype"):
        hrt.quantize([1.0], hrt.QuantInfo.identity(), dtype="no such dtype")
    with pytest.raises(hrt.HailoInvalidArgumentError, match="float32-convertible"):
        hrt.quantize(["a"], hrt.QuantInfo.identity())
    with pytest.raises(hrt.HailoInvalidArgumentError, match="tensor 's': a list"):
        P.tensor_descs({"s": [1, 2]})
    with pytest.raises(hrt.HailoInvalidArgumentError, match="tensor name 3"):
        P.tensor_descs({3: np.zeros(2, np.uint8)})
    for bad in ("x", 0, -1.5, True, None):
        with pytest.raises(hrt.HailoInvalidArgumentError, match="timeout_ms"):
            RemoteDevice("tcp://127.0.0.1:1", timeout_ms=bad)
    for bad in ("2", 0, 1.5, None):
        with pytest.raises(hrt.HailoInvalidArgumentError, match="queue_size"):
            DeviceServer(dev, "tcp://127.0.0.1:*", insecure=True, queue_size=bad)
    with pytest.raises(hrt.HailoInvalidArgumentError, match="callable factory"):
        register_driver("x", "not callable")
    with pytest.raises(hrt.HailoInvalidArgumentError, match="a list of paths, not one path"):
        open_driver("emulator", str(tmp_path / "net.har"))
    with pytest.raises(hrt.HailoInvalidArgumentError, match="models must be paths"):
        open_driver("emulator", [42])


def test_in_flight_must_be_a_positive_integer(echo_server):
    with RemoteDevice(echo_server.endpoints[0], timeout_ms=10000) as remote:
        for bad in (0, "4", 1.5):
            with pytest.raises(hrt.HailoInvalidArgumentError, match="in_flight"):
                next(remote.map([{"echo/in": np.zeros((1, 96), np.uint8)}], in_flight=bad))


def test_a_driver_entry_point_that_does_not_load_is_a_driver_error(monkeypatch):
    import importlib.metadata

    from hailort_py import drivers

    broken = [importlib.metadata.EntryPoint("ghost", "hailort_py.device:no_such_factory",
                                            drivers.ENTRY_POINT_GROUP),
              importlib.metadata.EntryPoint("gone", "no_such_module_here:factory",
                                            drivers.ENTRY_POINT_GROUP)]
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: broken)
    for name, words in (("ghost", "no_such_factory"), ("gone", "no_such_module_here")):
        with pytest.raises(drivers.DriverError, match=f"driver '{name}' .*cannot be loaded.*{words}"):
            drivers.find_driver(name)


def test_an_unclosed_remote_device_is_freed_without_hanging(tmp_path):
    """A RemoteDevice dropped without close(), with a request pending on a server that is gone:
    the garbage collector frees it (its requests refer back to it) without pyzmq's
    Context.__del__ waiting forever for its sockets. In a subprocess: a hang is a failure, not
    a stuck test run."""
    import subprocess
    import sys

    script = tmp_path / "drop.py"
    script.write_text(f"""
import gc, sys
sys.path[:0] = [{str(pathlib.Path(__file__).parent)!r}, {str(pathlib.Path(__file__).parents[1])!r}]
import numpy as np
from hailort_py.remote import RemoteDevice
from hailort_py.server import DeviceServer
from test_protocol import EchoDevice

srv = DeviceServer(EchoDevice(), "tcp://127.0.0.1:*", insecure=True).start()
remote = RemoteDevice(srv.endpoints[0], timeout_ms=5000)
remote.infer({{"echo/in": np.zeros((1, 96), np.uint8)}})
srv.stop()
remote.submit({{"echo/in": np.zeros((1, 96), np.uint8)}})  # pending, never answered
ctx = remote.ctx
del remote
gc.collect()
assert ctx.closed, "the device's own context is terminated"
print("freed")
""")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and "freed" in done.stdout, done.stderr[-2000:]
