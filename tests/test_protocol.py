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

DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "device-protocol.md"


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
