"""Device server throughput and latency against raw pyzmq on loopback, measured in the same run.

Part 1, transport: 640x640x3 uint8 frames (1,228,800 bytes), one frame per request, an
echo-sized reply, through three clients:
  raw       a pyzmq DEALER sending [header, frame] (copy=False) to a ROUTER that sends every
            multipart message back as received (copy=False): the baseline; the header part is
            a msgpack infer header of the size of ours
  protocol  the same DEALER loop speaking the device protocol (a fresh header per request, the
            reply header unpacked) to a DeviceServer serving an echo device (one input and one
            output stream of 640x640x3 uint8; the output is the received frame): protocol - raw
            is the server's cost
  remote    RemoteDevice.submit / RemoteRequest.result to the same server: remote - protocol is
            the client library's cost
with 1 and 4 requests in flight, with and without CURVE (the same key directory, and a ZAP
allow-list on both servers). The echo ROUTER and the device server run in the same layout
(`--layout thread`: a thread of this process, the default; `--layout process`: a child process
each). For each config: frames/s; GB/s counting the frame bytes both ways (request + reply,
headers left out); latency p50/p99 per request (send to reply taken, so at 4 in flight it includes
waiting behind the other three); "send us", the mean time in the send / submit() call (on few
cores it includes being preempted by libzmq's I/O thread as it starts writing); the ratio to raw;
the per-request overhead over raw (mean latency difference at 1 in flight, split into server and
client; 1/rate difference at 4 in flight); the server's own timings from the reply headers.
Targets: pipelined (4 in flight) >= 80 % of raw throughput (>= 70 % with CURVE); per-request
overhead over raw < 100 us.

Part 2, the full host pipeline: FER (mini-Xception, 64x64x1 FLOAT32 in, 7 FLOAT32 out) through
InferVStreams on the in-process EmulatedDevice and on a RemoteDevice to a DeviceServer (a thread
of this process) serving another EmulatedDevice of the same runner, batches of --fer-batch real
images; RemoteDevice.map with the same host transforms, pipelined; then where the time goes,
each step timed alone: host input transform, device (local EmulatedDevice.infer; the server's
queue_us and device_us), host output transform, and transport = remote round trip - queue -
device; with ping round trips back to back and after 50 ms idle (thread wake-up costs).

Every number is the median of --repeats timed passes (after a warm-up pass); the clients' passes
alternate, so drift hits all of them. Not a test: no pass/fail, the targets are printed next to
the ratios.

    python bench/bench_device_server.py [--frames 300] [--repeats 5] [--layout thread|process]
                                        [--no-curve] [--fer-frames 256] [--fer-batch 32]
                                        [--fer-in-flight 4] [--skip-fer]
"""
from __future__ import annotations

import argparse
import collections
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import zmq  # noqa: E402

import hailort_py as hrt  # noqa: E402
from hailort_py import protocol as P  # noqa: E402
from hailort_py.device import Device  # noqa: E402

FRAME_SHAPE = (640, 640, 3)
FRAME_BYTES = 640 * 640 * 3
NETWORK = "echo"
IN_STREAM, OUT_STREAM = "echo/input_layer1", "echo/output_layer1"
IN_FLIGHT = (1, 4)
TARGET_RATIO = {False: 0.80, True: 0.70}
TARGET_OVERHEAD_US = 100.0


# --- the echo device and the raw echo ROUTER --------------------------------------------------

def _stream(name: str, direction) -> hrt.StreamInfo:
    fmt = hrt.Format(hrt.FormatType.UINT8, hrt.FormatOrder.NHCW)
    return hrt.StreamInfo(name=name, direction=direction, format=fmt,
                          shape=hrt.ImageShape(*FRAME_SHAPE), hw_shape=hrt.ImageShape(*FRAME_SHAPE))


class EchoDevice(Device):
    """One input and one output stream of 640x640x3 uint8; the output frames are the input's
    (the received buffer itself: the reply is echo-sized and nothing is copied)."""

    def __init__(self):
        self._infos = [_stream(IN_STREAM, hrt.StreamDirection.H2D),
                       _stream(OUT_STREAM, hrt.StreamDirection.D2H)]
        for s in self._infos:
            assert s.hw_frame_size == FRAME_BYTES, (s, s.hw_frame_size)

    def network_names(self) -> list[str]:
        return [NETWORK]

    def stream_infos(self, network_name: str | None = None) -> list[hrt.StreamInfo]:
        self._network_name(network_name)
        return list(self._infos)

    def _infer(self, network_name: str, raw_inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {OUT_STREAM: raw_inputs[IN_STREAM]}


class RawEcho:
    """A ROUTER socket in a thread sending every multipart message back as it came (copy=False:
    the received frames themselves). CURVE with the same keys and ZAP allow-list as the server."""

    def __init__(self, keys: str | None):
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self._auth = None
        if keys is not None:
            from hailort_py.keys import load_server_keys, start_authenticator

            public, secret, allowed = load_server_keys(keys)
            self._auth = start_authenticator(self.ctx, allowed)
            self.sock.curve_server = True
            self.sock.curve_publickey, self.sock.curve_secretkey = public, secret
        self.sock.bind("tcp://127.0.0.1:*")
        self.endpoints = [self.sock.getsockopt_string(zmq.LAST_ENDPOINT)]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="raw-echo", daemon=True)

    def start(self) -> RawEcho:
        self._thread.start()
        return self

    def _loop(self) -> None:
        s = self.sock
        while not self._stop.is_set():
            if s.poll(100):
                while True:
                    try:
                        parts = s.recv_multipart(zmq.NOBLOCK, copy=False)
                    except zmq.Again:
                        break
                    s.send_multipart(parts, copy=False)
        s.close()
        if self._auth is not None:
            self._auth.stop()
        self.ctx.term()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _make_endpoint_server(kind: str, keys: str | None):
    if kind == "raw":
        return RawEcho(keys).start()
    from hailort_py.server import DeviceServer

    return DeviceServer(EchoDevice(), "tcp://127.0.0.1:*", keys=keys,
                        insecure=keys is None).start()


def _child_main(kind: str, keys: str | None, conn) -> None:
    """--layout process: one server (raw or device server) in a child process."""
    srv = _make_endpoint_server(kind, keys)
    conn.send(srv.endpoints[0])
    conn.recv()  # until the parent says stop
    srv.stop()
    conn.send("stopped")


class Served:
    """A raw echo ROUTER or a device server, in a thread here or in a child process."""

    def __init__(self, kind: str, keys: str | None, layout: str):
        self.layout = layout
        if layout == "thread":
            self._srv = _make_endpoint_server(kind, keys)
            self.endpoint = self._srv.endpoints[0]
        else:
            mp = multiprocessing.get_context("spawn")
            self._conn, child = mp.Pipe()
            self._proc = mp.Process(target=_child_main, args=(kind, keys, child), daemon=True)
            self._proc.start()
            if not self._conn.poll(120):
                raise RuntimeError(f"the {kind} server process did not start")
            self.endpoint = self._conn.recv()

    def stop(self) -> None:
        if self.layout == "thread":
            self._srv.stop()
        else:
            self._conn.send("stop")
            if self._conn.poll(30):
                self._conn.recv()
            self._proc.join(30)


# --- clients ----------------------------------------------------------------------------------

class RawClient:
    """A DEALER sending [header, frame] with copy=False and receiving with copy=False."""

    def __init__(self, endpoint: str, keys: str | None):
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        if keys is not None:
            from hailort_py.keys import load_client_keys

            s = self.sock
            s.curve_publickey, s.curve_secretkey, s.curve_serverkey = load_client_keys(keys)
        self.sock.connect(endpoint)

    def run(self, header: bytes, frame: np.ndarray, n: int, in_flight: int) -> dict:
        s, payload = self.sock, memoryview(frame).cast("B")
        sent: collections.deque[float] = collections.deque()
        lat, send_s = np.empty(n), np.empty(n)
        t0 = time.perf_counter()
        for i in range(n + min(in_flight, n)):
            if i >= in_flight:  # the oldest reply
                parts = s.recv_multipart(copy=False)
                lat[i - in_flight] = time.perf_counter() - sent.popleft()
                self.check(parts)
            if i < n:
                t = time.perf_counter()
                sent.append(t)
                s.send_multipart(self.request(header, payload), copy=False)
                send_s[i] = time.perf_counter() - t
        out = {"seconds": time.perf_counter() - t0, "latency": lat, "send": send_s}
        out.update(self.extras())
        return out

    def request(self, header: bytes, payload) -> list:
        return [header, payload]

    def check(self, parts: list) -> None:
        assert len(parts) == 2 and len(parts[1]) == FRAME_BYTES

    def extras(self) -> dict:
        return {}

    def close(self) -> None:
        self.sock.close()
        self.ctx.term()


class ProtocolClient(RawClient):
    """The device protocol spoken over a plain DEALER (header packed, reply header unpacked, no
    RemoteDevice): the same client loop as raw, so its difference to raw is the server's."""

    def __init__(self, endpoint: str, keys: str | None):
        super().__init__(endpoint, keys)
        self._ids = iter(range(1, 2**62))
        self._timings: list[tuple[int, int]] = []

    def request(self, header: bytes, payload) -> list:
        head = {"v": P.PROTOCOL_VERSION, "verb": "infer", "id": next(self._ids),
                "network": NETWORK, "tensors": [{"name": IN_STREAM, "dtype": "uint8",
                                                 "shape": [1, FRAME_BYTES]}]}
        return [P.pack_header(head), payload]

    def check(self, parts: list) -> None:
        head = P.unpack_header(parts[0].buffer)
        assert head["status"] == 0 and len(parts[1]) == FRAME_BYTES, head
        self._timings.append((head["timings"]["queue_us"], head["timings"]["device_us"]))

    def extras(self) -> dict:
        t = np.array(self._timings, np.float64).reshape(-1, 2)
        self._timings = []
        return {"queue_us": t[:, 0], "device_us": t[:, 1]}


class RemoteClient:
    """RemoteDevice.submit / RemoteRequest.result with `in_flight` requests outstanding (the
    same loop as raw; "send" is the submit() call)."""

    def __init__(self, endpoint: str, keys: str | None):
        from hailort_py.remote import RemoteDevice

        self.dev = RemoteDevice(endpoint, timeout_ms=30000, keys=keys)

    def run(self, header: bytes, frame: np.ndarray, n: int, in_flight: int) -> dict:
        dev, batch = self.dev, {IN_STREAM: frame.reshape(1, -1)}
        window: collections.deque = collections.deque()
        lat, send_s = np.empty(n), np.empty(n)
        queue_us, device_us = np.empty(n), np.empty(n)
        t0 = time.perf_counter()
        for i in range(n + min(in_flight, n)):
            if i >= in_flight:
                j = i - in_flight
                t_sent, req = window.popleft()
                out = req.result()
                lat[j] = time.perf_counter() - t_sent
                assert out[OUT_STREAM].nbytes == FRAME_BYTES
                queue_us[j] = req.header["timings"]["queue_us"]
                device_us[j] = req.header["timings"]["device_us"]
            if i < n:
                t = time.perf_counter()
                window.append((t, dev.submit(batch, NETWORK)))
                send_s[i] = time.perf_counter() - t
        return {"seconds": time.perf_counter() - t0, "latency": lat, "send": send_s,
                "queue_us": queue_us, "device_us": device_us}

    def close(self) -> None:
        self.dev.close()


# --- part 1 -----------------------------------------------------------------------------------

CLIENTS = {"raw": ("raw", RawClient), "protocol": ("server", ProtocolClient),
           "remote": ("server", RemoteClient)}
CLIENT_DOC = {"raw": "raw pyzmq DEALER -> echoing ROUTER",
              "protocol": "plain DEALER speaking the protocol -> DeviceServer(echo device)",
              "remote": "RemoteDevice.submit/result -> DeviceServer(echo device)"}


def _summary(runs: list[dict], n: int) -> dict:
    """Medians over the passes of: rate, mean / p50 / p99 latency, mean send time, and the
    server's own timings when the client reads them."""
    med = statistics.median
    out = {"fps": med(n / r["seconds"] for r in runs),
           "mean_us": med(float(r["latency"].mean()) * 1e6 for r in runs),
           "p50_us": med(float(np.percentile(r["latency"], 50)) * 1e6 for r in runs),
           "p99_us": med(float(np.percentile(r["latency"], 99)) * 1e6 for r in runs),
           "send_us": med(float(r["send"].mean()) * 1e6 for r in runs)}
    if "queue_us" in runs[0]:
        out["queue_us"] = med(float(r["queue_us"].mean()) for r in runs)
        out["device_us"] = med(float(r["device_us"].mean()) for r in runs)
    return out


def bench_transport(curve: bool, keys_dir: str, args) -> dict:
    keys = keys_dir if curve else None
    frame = np.random.default_rng(0).integers(0, 256, FRAME_BYTES, dtype=np.uint8)
    header = P.pack_header({"v": P.PROTOCOL_VERSION, "verb": "infer", "id": 1234567,
                            "network": NETWORK,
                            "tensors": P.tensor_descs({IN_STREAM: frame.reshape(1, -1)})})
    served = {k: Served(k, keys, args.layout) for k in ("raw", "server")}
    clients = {}
    try:
        for name, (kind, cls) in CLIENTS.items():
            clients[name] = cls(served[kind].endpoint, keys)
        # sanity: the echo device sends the frame back unchanged
        got = clients["remote"].dev.infer({IN_STREAM: frame.reshape(1, -1)}, NETWORK)[OUT_STREAM]
        assert got.tobytes() == frame.tobytes()
        runs = {(k, f): [] for k in clients for f in IN_FLIGHT}
        for c in clients.values():  # warm-up: connections, allocator, CURVE handshake
            for f in IN_FLIGHT:
                c.run(header, frame, max(20, args.frames // 10), f)
        for _ in range(args.repeats):
            for f in IN_FLIGHT:
                for k, c in clients.items():
                    runs[k, f].append(c.run(header, frame, args.frames, f))
        stats = clients["remote"].dev.stats()
    finally:
        for c in clients.values():
            c.close()
        for s in served.values():
            s.stop()
    res = {key: _summary(r, args.frames) for key, r in runs.items()}
    res["server_stats"] = next(iter(stats.values()))
    return res


def print_transport(curve: bool, res: dict) -> None:
    gb = 2 * FRAME_BYTES / 1e9
    target = TARGET_RATIO[curve]
    label = "CURVE" if curve else "plain TCP"
    print(f"\n{label}: {FRAME_SHAPE[0]}x{FRAME_SHAPE[1]}x{FRAME_SHAPE[2]} uint8, one frame a "
          f"request, echo-sized reply (GB/s: request + reply frame bytes, headers left out)")
    head = (f"{'client':8} {'in flight':>9} {'frames/s':>9} {'GB/s':>6} {'mean us':>8} "
            f"{'p50 us':>8} {'p99 us':>8} {'send us':>8} {'/raw':>6}")
    print(head)
    print("-" * len(head))
    for f in IN_FLIGHT:
        raw = res["raw", f]
        for k in CLIENTS:
            r = res[k, f]
            ratio = f"{r['fps'] / raw['fps']:5.2f}x" if k != "raw" else ""
            print(f"{k:8} {f:9d} {r['fps']:9.0f} {r['fps'] * gb:6.2f} {r['mean_us']:8.0f} "
                  f"{r['p50_us']:8.0f} {r['p99_us']:8.0f} {r['send_us']:8.0f} {ratio:>6}")
    pipe = IN_FLIGHT[-1]
    ratio = res["remote", pipe]["fps"] / res["raw", pipe]["fps"]
    ratio_p = res["protocol", pipe]["fps"] / res["raw", pipe]["fps"]
    print(f"pipelined ({pipe} in flight) RemoteDevice/raw throughput: {ratio:.2f}x (target >= "
          f"{target:.2f}); plain-DEALER protocol client/raw {ratio_p:.2f}x")
    over = {k: res[k, 1]["mean_us"] - res["raw", 1]["mean_us"] for k in ("protocol", "remote")}
    pipe_over = (1 / res["remote", pipe]["fps"] - 1 / res["raw", pipe]["fps"]) * 1e6
    print(f"per-request overhead over raw, 1 in flight (mean latency difference): RemoteDevice "
          f"{over['remote']:.0f} us (target < {TARGET_OVERHEAD_US:.0f}) = server "
          f"{over['protocol']:.0f} us (plain-DEALER protocol client - raw) + RemoteDevice client "
          f"{over['remote'] - over['protocol']:.0f} us (RemoteDevice - plain-DEALER client); "
          f"{pipe} in flight (1/rate difference): {pipe_over:.0f} us")
    one = res["remote", 1]
    print(f"  inside the server at 1 in flight (reply header timings, means): queue_us "
          f"{one['queue_us']:.0f} (I/O thread -> worker hand-off), device_us "
          f"{one['device_us']:.0f} (decode_tensors + EchoDevice.infer: checks and a view); the "
          f"rest of the server's share: the worker -> I/O thread hand-off, headers, the ROUTER")
    st = res["server_stats"]
    print(f"  server stats: {st['requests']} requests, {st['frames']} frames, errors "
          f"{st['errors']}, busy {st['busy']}, dropped replies {st['dropped_replies']}, "
          f"recv-to-done p50 {st['latency_us_p50']:.0f} us p99 {st['latency_us_p99']:.0f} us")


# --- part 2 -----------------------------------------------------------------------------------

def bench_fer(args) -> None:
    t = time.perf_counter()
    import data_sources as ds
    from emulator import EmulatedDevice, parse_keras, run_quantization_from_np

    from hailort_py.remote import RemoteDevice
    from hailort_py.server import DeviceServer
    from hailort_py.vstreams import (InferVStreams, InputVStreamParams, OutputVStreamParams,
                                     VDevice)

    runner = parse_keras(ds.fer_model(), net_name="fer")
    run_quantization_from_np(runner, ds.fer_inputs(64, seed=1), calib_num_batch=4, batch_size=16)
    x = ds.fer_inputs(args.fer_frames, seed=11)
    bs = args.fer_batch
    batches = [x[i:i + bs] for i in range(0, len(x), bs)]
    n = len(x)
    print(f"\nFER host pipeline: {n} real images in batches of {bs}, FLOAT32 in and out "
          f"(setup {time.perf_counter() - t:.1f} s)")

    local_dev = EmulatedDevice(runner)
    server = DeviceServer(EmulatedDevice(runner), "tcp://127.0.0.1:*", insecure=True).start()
    remote = RemoteDevice(server.endpoints[0], timeout_ms=60000)

    def pipeline(device):
        net = VDevice(device).configure("fer")
        ins = InputVStreamParams.make(net, format_type=hrt.FormatType.FLOAT32)
        outs = OutputVStreamParams.make(net, format_type=hrt.FormatType.FLOAT32)
        name = net.get_input_stream_infos()[0].name
        p = InferVStreams(net, ins, outs)
        in_ctx = {s.name: hrt.InputTransformContext(s, ins[s.name])
                  for s in net.get_input_stream_infos()}
        out_ctx = {s.name: hrt.OutputTransformContext(s, outs[s.name])
                   for s in net.get_output_stream_infos()}
        return p, name, in_ctx, out_ctx

    try:
        p_local, name, in_ctx, out_ctx = pipeline(local_dev)
        p_remote, *_ = pipeline(remote)

        def run_pipeline(p):
            for b in batches:
                p.infer({name: b})

        def to_raw(b):
            return {s: c.transform(b).reshape(len(b), -1) for s, c in in_ctx.items()}

        def from_raw(raw):
            return {s: c.transform(raw[s]) for s, c in out_ctx.items()}

        def run_staged(device):
            """The pipeline's steps timed one by one (one batch in flight)."""
            t_in = t_dev = t_out = q_us = d_us = 0.0
            for b in batches:
                t0 = time.perf_counter()
                raw = to_raw(b)
                t1 = time.perf_counter()
                if device is remote:
                    req = remote.submit(raw, "fer")
                    out = req.result()
                    q_us += req.header["timings"]["queue_us"]
                    d_us += req.header["timings"]["device_us"]
                else:
                    out = device.infer(raw, "fer")
                t2 = time.perf_counter()
                from_raw(out)
                t3 = time.perf_counter()
                t_in, t_dev, t_out = t_in + t1 - t0, t_dev + t2 - t1, t_out + t3 - t2
            return {"in": t_in, "dev": t_dev, "out": t_out, "queue": q_us * 1e-6,
                    "server_dev": d_us * 1e-6}

        def run_pipelined():
            raws = (to_raw(b) for b in batches)
            for out in remote.map(raws, "fer", in_flight=args.fer_in_flight):
                from_raw(out)

        # the same results either way
        a = p_local.infer({name: batches[0]})
        b = p_remote.infer({name: batches[0]})
        assert all(a[k].tobytes() == b[k].tobytes() for k in a)

        timed = {k: [] for k in ("local", "remote", "pipelined")}
        staged = {k: [] for k in ("local", "remote")}
        fns = {"local": lambda: run_pipeline(p_local), "remote": lambda: run_pipeline(p_remote),
               "pipelined": run_pipelined}
        for fn in fns.values():
            fn()  # warm-up
        for _ in range(args.repeats):
            for k, fn in fns.items():
                t0 = time.perf_counter()
                fn()
                timed[k].append(time.perf_counter() - t0)
            staged["local"].append(run_staged(local_dev))
            staged["remote"].append(run_staged(remote))
        pings = [remote.ping() for _ in range(200)]
        idle_pings = []
        for _ in range(20):
            time.sleep(0.05)
            idle_pings.append(remote.ping())
    finally:
        remote.close()
        server.stop()

    med = statistics.median
    fps = {k: n / med(v) for k, v in timed.items()}
    rows = [("InferVStreams on EmulatedDevice (in process)", fps["local"], ""),
            ("InferVStreams on RemoteDevice (server thread)", fps["remote"],
             f"remote/local {fps['remote'] / fps['local']:.2f}x"),
            (f"RemoteDevice.map, {args.fer_in_flight} in flight, same transforms",
             fps["pipelined"], f"pipelined/local {fps['pipelined'] / fps['local']:.2f}x")]
    for label, v, extra in rows:
        print(f"{label:52} {v:8.0f} frames/s  {extra}")
    print(f"ping round trip to the server thread (no device, no payload), median: "
          f"{statistics.median(pings) * 1e6:.0f} us back to back, "
          f"{statistics.median(idle_pings) * 1e6:.0f} us after 50 ms idle")

    nb = len(batches)

    def per_batch(k, field):
        return med(s[field] for s in staged[k]) / nb * 1e3  # ms per batch

    loc = {f: per_batch("local", f) for f in ("in", "dev", "out")}
    rem = {f: per_batch("remote", f) for f in ("in", "dev", "out", "queue", "server_dev")}
    transport = rem["dev"] - rem["queue"] - rem["server_dev"]
    print(f"where the time goes, ms per batch of {bs} (median of {args.repeats}; steps timed one "
          f"by one, one batch in flight):")
    head = f"{'step':52} {'local':>8} {'remote':>8}"
    print(head)
    print("-" * len(head))
    rows = [("host input transform (FLOAT32 -> device frames)", loc["in"], rem["in"]),
            ("device infer, as the caller sees it", loc["dev"], rem["dev"]),
            ("  server: waiting in its queue (queue_us)", None, rem["queue"]),
            ("  server: EmulatedDevice.infer (device_us)", None, rem["server_dev"]),
            ("  transport + protocol (round trip - queue - device)", None, transport),
            ("host output transform (device frames -> FLOAT32)", loc["out"], rem["out"])]
    for label, lv, rv in rows:
        ls = f"{lv:8.3f}" if lv is not None else f"{'':8}"
        print(f"{label:52} {ls} {rv:8.3f}")
    tot_l, tot_r = sum(loc.values()), rem["in"] + rem["dev"] + rem["out"]
    print(f"{'total (staged)':52} {tot_l:8.3f} {tot_r:8.3f}")
    print(f"transport + protocol per batch: {transport * 1e3:.0f} us "
          f"({transport / tot_r * 100:.1f} % of the remote total); the emulated chip itself: "
          f"{rem['server_dev'] / tot_r * 100:.1f} %")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=300, help="640x640x3 frames per timed pass")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--layout", choices=("thread", "process"), default="thread",
                    help="where the raw ROUTER and the device server run (the same for both)")
    ap.add_argument("--no-curve", action="store_true", help="plain TCP only")
    ap.add_argument("--fer-frames", type=int, default=256)
    ap.add_argument("--fer-batch", type=int, default=32)
    ap.add_argument("--fer-in-flight", type=int, default=4)
    ap.add_argument("--skip-fer", action="store_true")
    args = ap.parse_args(argv)
    print(f"pyzmq {zmq.pyzmq_version()}, libzmq {zmq.zmq_version()}, CURVE "
          f"{'available' if zmq.has('curve') else 'missing'}, {os.cpu_count()} CPUs, layout "
          f"'{args.layout}' (server and raw ROUTER alike), {args.frames} frames per pass, "
          f"median of {args.repeats}")
    with tempfile.TemporaryDirectory(prefix="bench-device-server-") as tmp:
        keys_dir = os.path.join(tmp, "keys")
        from hailort_py.keys import create_keys

        create_keys(keys_dir)
        results = {}
        for curve in ((False,) if args.no_curve else (False, True)):
            results[curve] = bench_transport(curve, keys_dir, args)
            print_transport(curve, results[curve])
    if not args.skip_fer:
        bench_fer(args)


if __name__ == "__main__":
    main()
