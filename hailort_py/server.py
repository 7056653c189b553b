"""The device server: one ZeroMQ ROUTER socket in front of any `hailort_py.Device`.

    server = DeviceServer(device, bind="tcp://127.0.0.1:5555", keys="keys/")
    server.serve_forever()            # until SIGINT / SIGTERM or server.stop()

or `python -m hailort_py.server --driver emulator --model net.har` (the same as `host-app serve`).
The protocol is docs/device-protocol.md. How it is built:

- One I/O thread (the caller of serve_forever) owns the ROUTER socket. It answers the cheap verbs
  (hello, stream_infos, stats, ping) itself and puts `infer` requests on a bounded queue; a full
  queue is answered HAILO_QUEUE_IS_FULL at once, so memory never grows with the load.
- Worker threads (one by default: a chip runs one batch at a time) run Device.infer on the
  request's frames, viewed in place in the received parts (no copy), and hand the reply to the
  I/O thread over an inproc socket. The frames of one message are one batch.
- Limits: a request larger than max_message_bytes (all parts) gets an error reply; a part larger
  than twice that (ZMQ_MAXMSGSIZE) makes ZeroMQ disconnect the peer before buffering it;
  high-water marks both ways bound how many messages wait in ZeroMQ; heartbeats on idle
  connections. ZeroMQ has no limit on the number of parts of one message and holds a whole
  message before handing it over, so a client that may connect can make the server hold one
  oversized many-part message before it is refused: CURVE's allow-list is what bounds who can.
- Security: binds to loopback unless told otherwise; CURVE with an allow-list of client keys
  through ZAP unless `insecure=True`, which the server announces. Requests name networks, which
  are looked up in what the device serves; nothing in a request reaches the filesystem.
"""
from __future__ import annotations

import collections
import logging
import os
import queue
import signal
import sys
import threading
import time
from typing import Any, Callable

import numpy as np
import zmq

from . import protocol as P
from .device import Device
from .errors import (HailoCommunicationClosedError, HailoInternalFailureError,
                     HailoInvalidArgumentError, HailoQueueIsFullError, HailoRTError)

log = logging.getLogger("hailort_py.server")

DEFAULT_BIND = "tcp://127.0.0.1:5555"
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
DEFAULT_QUEUE_SIZE = 16
HEARTBEAT_IVL_MS = 2000
HEARTBEAT_TIMEOUT_MS = 6000
_LATENCY_WINDOW = 4096


class ServerStats:
    """Counters and a window of per-request latencies, shared by the I/O and worker threads."""

    def __init__(self):
        self._lock = threading.Lock()
        self.started = time.time()
        self.requests = 0
        self.frames = 0
        self.errors = 0
        self.busy = 0
        self.dropped_replies = 0
        self._latency_us: collections.deque[float] = collections.deque(maxlen=_LATENCY_WINDOW)

    def count(self, **kw: int) -> None:
        with self._lock:
            for k, v in kw.items():
                setattr(self, k, getattr(self, k) + v)

    def infer_done(self, frames: int, latency_us: float) -> None:
        with self._lock:
            self.frames += frames
            self._latency_us.append(latency_us)

    def snapshot(self, queue_depth: int, in_flight: int) -> dict[str, Any]:
        with self._lock:
            lat = np.array(self._latency_us, np.float64)
            return {
                "uptime_s": time.time() - self.started,
                "requests": self.requests, "frames": self.frames, "errors": self.errors,
                "busy": self.busy, "dropped_replies": self.dropped_replies,
                "queue_depth": queue_depth, "in_flight": in_flight,
                "latency_us_p50": float(np.percentile(lat, 50)) if lat.size else None,
                "latency_us_p99": float(np.percentile(lat, 99)) if lat.size else None,
                "latency_window": int(lat.size),
            }


class DeviceServer:
    """Serves `device` on a ROUTER socket (see the module doc).

    bind: one endpoint or a list ("tcp://127.0.0.1:5555"; "tcp://*:5555" to listen everywhere).
    keys: a key directory of `create_keys` (server secret key + authorized_clients/), or None
      with insecure=True for plain TCP. One of the two is required.
    queue_size: infer requests waiting for the device before "busy" is answered.
    workers: threads calling device.infer (1: requests run one at a time, in arrival order).
    max_message_bytes: the largest request (all parts); ZMQ_MAXMSGSIZE is twice it.
    rcvhwm / sndhwm: ZeroMQ's high-water marks, in messages per connection; replies to a client
      that does not read them are dropped (and counted) after sndhwm.
    driver: the driver's name, reported by `hello`. close_device: close() closes the device too.
    """

    def __init__(self, device: Device, bind: str | list[str] = DEFAULT_BIND, *,
                 keys: str | os.PathLike | None = None, insecure: bool = False,
                 queue_size: int = DEFAULT_QUEUE_SIZE, workers: int = 1,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, rcvhwm: int = 8,
                 sndhwm: int = 1000,
                 driver: str = "", close_device: bool = False,
                 context: zmq.Context | None = None):
        if not isinstance(device, Device):
            raise HailoInvalidArgumentError(
                f"DeviceServer needs a hailort_py.Device, got {type(device).__name__}")
        if keys is None and not insecure:
            raise HailoInvalidArgumentError(
                "the device server runs with CURVE by default: pass keys=DIR (made by "
                "`host-app keys DIR`) or insecure=True to serve plain TCP")
        for what, v in (("queue_size", queue_size), ("workers", workers)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise HailoInvalidArgumentError(f"{what} must be an integer of at least 1, got "
                                                f"{v!r}")
        self.device = device
        self.driver = driver
        self._close_device = close_device
        self.insecure = keys is None
        self.stats = ServerStats()
        self._networks = list(device.network_names())
        self._infos = {n: device.stream_infos(n) for n in self._networks}
        self._info_dicts = {n: [s.to_dict() for s in infos] for n, infos in self._infos.items()}
        self._max_bytes = int(max_message_bytes)
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._in_flight = 0  # infer requests queued or running: +1 at put, -1 once replied
        self._in_flight_lock = threading.Lock()
        self._stop = threading.Event()
        self._closed = False
        self._own_ctx = context is None
        self.ctx = context or zmq.Context()
        self._auth = None
        self._results_addr = f"inproc://hailort-server-results-{id(self)}"
        curve = None
        if keys is not None:
            from .keys import load_server_keys

            curve = load_server_keys(keys)  # before any socket: a bad key directory leaks nothing
        self.sock = self.ctx.socket(zmq.ROUTER)
        s = self.sock
        s.setsockopt(zmq.LINGER, 1000)
        s.setsockopt(zmq.MAXMSGSIZE, 2 * self._max_bytes)  # above it ZeroMQ drops the peer
        s.setsockopt(zmq.RCVHWM, rcvhwm)
        s.setsockopt(zmq.SNDHWM, sndhwm)
        s.setsockopt(zmq.ROUTER_MANDATORY, 1)  # a reply to a vanished client raises, is counted
        s.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_IVL_MS)
        s.setsockopt(zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)
        s.setsockopt(zmq.HEARTBEAT_TTL, HEARTBEAT_TIMEOUT_MS)
        if curve is not None:
            from .keys import start_authenticator

            public, secret, allowed_dir = curve
            self._auth = start_authenticator(self.ctx, allowed_dir)
            s.curve_server = True
            s.curve_publickey, s.curve_secretkey = public, secret
        self.endpoints: list[str] = []
        try:
            for ep in [bind] if isinstance(bind, str) else list(bind):
                s.bind(ep)
                self.endpoints.append(s.getsockopt_string(zmq.LAST_ENDPOINT))
        except zmq.ZMQError as e:
            self._close_sockets()
            raise HailoInvalidArgumentError(f"cannot listen on {bind}: {e}") from None
        self._results = self.ctx.socket(zmq.PULL)
        self._results.bind(self._results_addr)
        self._workers = [threading.Thread(target=self._work, name=f"hailort-server-worker-{i}",
                                          daemon=True) for i in range(workers)]
        for w in self._workers:
            w.start()
        self._thread: threading.Thread | None = None

    # --- running ----------------------------------------------------------------------------
    def describe(self) -> str:
        """What `serve` prints at start: where, which driver and networks, whether CURVE is on."""
        security = ("INSECURE: plain TCP, no encryption, any client may connect"
                    if self.insecure else "CURVE on: encrypted, allow-listed clients only")
        driver = f"driver '{self.driver}', " if self.driver else ""
        return (f"device server listening on {', '.join(self.endpoints)}; {driver}"
                f"networks {self._networks}; {security}")

    def serve_forever(self, install_signal_handlers: bool | None = None,
                      drain_timeout_s: float = 10.0, ready: Callable[[], Any] | None = None) -> None:
        """Serves until stop(), SIGINT or SIGTERM; then finishes the queued requests (at most
        drain_timeout_s), fails what is left with HAILO_COMMUNICATION_CLOSED and closes.
        ready() is called once the signal handlers are in place (where `serve` announces itself:
        a supervisor that signals as soon as it reads the line gets a graceful stop)."""
        if install_signal_handlers is None:
            install_signal_handlers = threading.current_thread() is threading.main_thread()
        previous = {}
        if install_signal_handlers:
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, lambda *_: self._stop.set())
        try:
            if ready is not None:
                ready()
            self._loop(drain_timeout_s)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.close()

    def start(self) -> DeviceServer:
        """serve_forever in a background thread (for tests and embedding); returns self."""
        self._thread = threading.Thread(target=self.serve_forever, kwargs={
            "install_signal_handlers": False}, name="hailort-server", daemon=True)
        self._thread.start()
        return self

    def stop(self, wait: bool = True) -> None:
        """Asks the server to shut down (thread-safe); with wait, until it has."""
        self._stop.set()
        if wait and self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def __enter__(self) -> DeviceServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- the I/O thread ---------------------------------------------------------------------
    def _loop(self, drain_timeout_s: float) -> None:
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        poller.register(self._results, zmq.POLLIN)
        while not self._stop.is_set():
            ready = dict(poller.poll(100))
            if self._results in ready:
                self._forward_results()
            if self.sock in ready:
                for _ in range(64):  # a burst, then look at the results again
                    try:
                        parts = self.sock.recv_multipart(zmq.NOBLOCK, copy=False)
                    except zmq.Again:
                        break
                    self._handle(parts)
        self._drain(drain_timeout_s)

    def _drain(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self._busy_workers():
            if self._results.poll(50):
                self._forward_results()
        left = []
        while True:
            try:
                left.append(self._queue.get_nowait())
            except queue.Empty:
                break
        for job in left:
            if job is not None:
                ident, rid, verb = job[0], job[1], "infer"
                with self._in_flight_lock:
                    self._in_flight -= 1
                self._send_error(ident, rid, verb, HailoCommunicationClosedError.status,
                                 "the device server is shutting down")
        self._forward_results()

    def _busy_workers(self) -> int:
        """Infer requests queued or running, not yet replied to."""
        with self._in_flight_lock:
            return self._in_flight

    def _forward_results(self) -> None:
        while True:
            try:
                parts = self._results.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            self._send(parts)

    def _send(self, parts: list) -> None:
        try:
            self.sock.send_multipart(parts, zmq.NOBLOCK, copy=False)
        except zmq.ZMQError as e:  # EHOSTUNREACH (client gone) or EAGAIN (its queue is full)
            self.stats.count(dropped_replies=1)
            log.debug("reply dropped: %s", e)

    def _error_reply(self, ident, rid: int | None, verb: str | None, status: int,
                     message: str) -> list:
        """The parts of an error reply (counted in the stats)."""
        self.stats.count(errors=1)
        return [ident, P.pack_header({"v": P.PROTOCOL_VERSION, "id": rid, "verb": verb,
                                      "status": int(status), "error": message})]

    def _send_error(self, ident, rid: int | None, verb: str | None, status: int, message: str):
        self._send(self._error_reply(ident, rid, verb, status, message))

    def _handle(self, parts: list) -> None:
        ident = parts[0]
        self.stats.count(requests=1)
        if len(parts) < 2:
            return self._send_error(ident, None, None, HailoInvalidArgumentError.status,
                                    "empty message: a request is a header part and data parts")
        try:
            header = P.unpack_header(parts[1].buffer)
            rid, verb = P.check_request(header)
            total = sum(len(p) for p in parts[1:])
            if total > self._max_bytes:
                raise P.ProtocolError(f"message of {total} bytes is larger than this server's "
                                      f"limit of {self._max_bytes}",
                                      HailoInvalidArgumentError.status, rid, verb)
            if verb == "infer":
                return self._enqueue(ident, rid, header, parts[2:])
            if len(parts) > 2:
                raise P.ProtocolError(f"'{verb}' takes no data parts, {len(parts) - 2} given",
                                      HailoInvalidArgumentError.status, rid, verb)
            reply = self._answer(verb, header)
        except P.ProtocolError as e:
            return self._send_error(ident, e.request_id, e.verb, e.status, str(e))
        except HailoRTError as e:
            return self._send_error(ident, rid, verb, e.status, str(e))
        head = {"v": P.PROTOCOL_VERSION, "id": rid, "verb": verb, "status": 0, **reply}
        self._send([ident, P.pack_header(head)])

    def _network(self, header: dict) -> str:
        # looked up among the served networks only: a name never reaches the filesystem
        return self.device._network_name(header.get("network"))

    def _answer(self, verb: str, header: dict) -> dict[str, Any]:
        if verb == "ping":
            return {"time_ns": time.time_ns()}
        if verb == "hello":
            from . import __version__, library_version

            return {"server": "hailort_py", "version": __version__,
                    "library_version": ".".join(map(str, library_version())),
                    "protocols": [P.PROTOCOL_VERSION], "driver": self.driver,
                    "device_kind": type(self.device).__name__, "device_id": self.device_id,
                    "networks": list(self._networks)}
        if verb == "stream_infos":
            net = self._network(header)
            return {"network": net, "stream_infos": self._info_dicts[net]}
        assert verb == "stats"
        queued = self._queue.qsize()
        return {"stats": self.stats.snapshot(queued, max(self._busy_workers() - queued, 0))}

    @property
    def device_id(self) -> str:
        return str(getattr(self.device, "device_id", f"{type(self.device).__name__}-{os.getpid()}"))

    def _enqueue(self, ident, rid: int, header: dict, data: list) -> None:
        network = self._network(header)
        with self._in_flight_lock:  # counted before the worker can take it (and count it down)
            self._in_flight += 1
        try:
            self._queue.put_nowait((ident, rid, network, header, data, time.perf_counter()))
        except queue.Full:
            with self._in_flight_lock:
                self._in_flight -= 1
            self.stats.count(busy=1)
            raise P.ProtocolError(f"the device is busy: {self._queue.maxsize} requests are waiting; "
                                  f"retry later or keep fewer requests in flight",
                                  HailoQueueIsFullError.status, rid, "infer") from None

    # --- the workers ------------------------------------------------------------------------
    def _work(self) -> None:
        out = self.ctx.socket(zmq.PUSH)
        out.setsockopt(zmq.LINGER, 0)
        out.connect(self._results_addr)
        try:
            while True:
                job = self._queue.get()
                if job is None:
                    return
                try:
                    reply = self._run(*job)
                except Exception as e:
                    # Broad on purpose: a bug in this server's own reply path must neither end
                    # the worker (the next request must still run) nor leave the client waiting
                    # for its deadline: it is logged with its traceback and answered as an
                    # error reply.
                    log.exception("request %s: the server failed", job[1])
                    reply = self._error_reply(job[0], job[1], "infer",
                                              HailoInternalFailureError.status,
                                              f"the device server failed: {type(e).__name__}: {e}")
                try:
                    out.send_multipart(reply, copy=False)
                except zmq.ContextTerminated:
                    return
                except zmq.ZMQError as e:  # the inproc hand-over failed: the reply is lost
                    self.stats.count(dropped_replies=1)
                    log.error("request %s: the reply could not be handed over: %s", job[1], e)
                finally:
                    with self._in_flight_lock:
                        self._in_flight -= 1
        finally:
            out.close()

    def _run(self, ident, rid: int, network: str, header: dict, data: list, t_recv: float) -> list:
        """The reply to one infer request; every failure, the driver's output included, is an
        error reply (a driver's bug must not take the worker, or the server, down)."""
        t_start = time.perf_counter()
        try:
            inputs = P.decode_tensors(header, [f.buffer for f in data])
            outputs = self.device.infer(inputs, network)
        except HailoRTError as e:  # the request's fault, or the device's own status
            return self._error_reply(ident, rid, "infer", e.status, str(e))
        except Exception as e:
            # Broad on purpose: the device is a driver's code (any package, any chip runtime),
            # and whatever it raises fails this request only. It is logged with its traceback
            # and reported to the client as HAILO_INTERNAL_FAILURE with its type and message.
            log.exception("request %s: the device failed", rid)
            return self._error_reply(ident, rid, "infer", HailoInternalFailureError.status,
                                     f"the device failed: {type(e).__name__}: {e}")
        t_done = time.perf_counter()
        try:
            if not isinstance(outputs, dict):
                raise HailoInvalidArgumentError(f"the device returned a {type(outputs).__name__}, "
                                                f"not {{output stream: frames}}")
            head = {"v": P.PROTOCOL_VERSION, "id": rid, "verb": "infer", "status": 0,
                    "network": network, "tensors": P.tensor_descs(outputs),
                    "timings": {"queue_us": int((t_start - t_recv) * 1e6),
                                "device_us": int((t_done - t_start) * 1e6)}}
            reply = [ident, P.pack_header(head), *P.tensor_parts(outputs)]
        except HailoRTError as e:  # the device's fault, not the request's: an internal failure
            log.error("request %s: the device's outputs cannot be sent: %s", rid, e)
            return self._error_reply(ident, rid, "infer", HailoInternalFailureError.status,
                                     f"the device failed: its outputs cannot be sent: {e}")
        frames = next(iter(inputs.values())).shape[0] if inputs else 0
        self.stats.infer_done(frames, (t_done - t_recv) * 1e6)
        return reply

    # --- closing ----------------------------------------------------------------------------
    def close(self) -> None:
        """Stops the workers and closes the sockets (linger 1 s). Closing twice is harmless."""
        serving = self._thread
        if serving is not None and serving.is_alive() and serving is not threading.current_thread():
            self.stop(wait=True)  # the serving thread owns the sockets; it closes them
            return
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        for _ in self._workers:
            self._queue.put(None)
        for w in self._workers:
            w.join(timeout=30)
        if not any(w.is_alive() for w in self._workers):
            self._forward_results()  # replies of requests that finished during the drain
        self._close_sockets()
        if self._close_device:
            self.device.close()

    def _close_sockets(self) -> None:
        for s in (getattr(self, "_results", None), self.sock):
            if s is not None:
                s.close()
        if self._auth is not None:
            self._auth.stop()
        if self._own_ctx:
            self.ctx.term()


def server_from_args(args: Any) -> DeviceServer:
    """The server that the options of add_serve_arguments describe, with the driver's device
    (closed with the server). DriverError / HailoRTError name what is wrong."""
    from .drivers import open_driver

    device = open_driver(args.driver, args.model)
    try:
        return DeviceServer(device, args.bind or DEFAULT_BIND, keys=args.keys,
                            insecure=args.insecure, queue_size=args.queue_size,
                            max_message_bytes=int(args.max_message_mb * 2**20),
                            driver=args.driver, close_device=True)
    except BaseException:
        device.close()
        raise


def main(argv: list[str] | None = None) -> int:
    """`python -m hailort_py.server`: the same options as `host-app serve`."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m hailort_py.server",
                                description="Serve a device over ZeroMQ (docs/device-protocol.md).")
    add_serve_arguments(p)
    args = p.parse_args(argv)
    try:
        server = server_from_args(args)
    except HailoRTError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    server.serve_forever(ready=lambda: print(server.describe(), flush=True))
    print("device server stopped", flush=True)
    return 0


def add_serve_arguments(p: Any, *, require_model: bool = True) -> None:
    """The options of `host-app serve` and `python -m hailort_py.server`."""
    p.add_argument("--driver", default="emulator",
                   help="the driver behind the server: emulator (a HAR) or hailort (a HEF); "
                        "others register under the 'hailort_py.drivers' entry-point group")
    p.add_argument("--model", action="append", required=require_model, metavar="PATH",
                   help="a model the driver loads (repeat for several networks)")
    p.add_argument("--bind", action="append", metavar="ENDPOINT",
                   help=f"where to listen (default {DEFAULT_BIND}; tcp://*:PORT listens on every "
                        f"interface)")
    sec = p.add_mutually_exclusive_group(required=True)
    sec.add_argument("--keys", metavar="DIR", help="CURVE keys made by `host-app keys DIR`")
    sec.add_argument("--insecure", action="store_true",
                     help="serve plain TCP without encryption or client authentication")
    p.add_argument("--queue-size", type=int, default=DEFAULT_QUEUE_SIZE,
                   help=f"infer requests waiting before the server answers busy (default "
                        f"{DEFAULT_QUEUE_SIZE})")
    p.add_argument("--max-message-mb", type=float, default=DEFAULT_MAX_MESSAGE_BYTES / 2**20,
                   help=f"the largest request accepted, in MiB (default "
                        f"{DEFAULT_MAX_MESSAGE_BYTES // 2**20}); a larger one is refused")
    p.set_defaults(bind=None)


if __name__ == "__main__":
    sys.exit(main())
