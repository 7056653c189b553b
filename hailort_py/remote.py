"""RemoteDevice: a `Device` behind the device server, over ZeroMQ DEALER sockets.

    device = RemoteDevice("tcp://board:5555", timeout_ms=10000, keys="keys/")
    with VDevice(device) as vdevice: ...            # exactly as with an in-process device

Stream infos come from the server, so the host side (transform contexts, vstreams) is the same as
with a local device. How calls behave (docs/device-protocol.md, "Faults"):

- Every request has an id and a deadline (timeout_ms). It is answered once, or raises once: a
  HailoRTError naming its id and endpoint (the server's status, or HailoTimeoutError).
- After a timeout the endpoint's socket is closed and a new one connects (the Lazy Pirate
  pattern): requests still pending on it fail then, and the next request reconnects by itself, so
  the same object recovers when the server restarts. Replies to abandoned requests are dropped.
- Several requests in flight: `submit()` returns a RemoteRequest at once; `map()` keeps
  `in_flight` batches outstanding and yields results in order.
- Several endpoints: a batch is split over them (contiguous chunks), results are put back in
  order; `submit()` picks the endpoint with the fewest pending requests.

Output frames are numpy views of the received messages (no copy). One RemoteDevice is
meant for one thread at a time; a lock makes concurrent use safe, not parallel.
"""
from __future__ import annotations

import itertools
import os
import threading
import time
import weakref
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np
import zmq

from . import protocol as P
from .device import Device
from .errors import (HailoCommunicationClosedError, HailoInvalidArgumentError,
                     HailoInvalidOperationError, HailoRTError, HailoTimeoutError)
from .server import HEARTBEAT_IVL_MS, HEARTBEAT_TIMEOUT_MS
from .stream import StreamInfo

DEFAULT_TIMEOUT_MS = 10000


def _positive_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) \
        and v > 0


class RemoteRequest:
    """One request in flight. `result()` waits for its reply (or its error)."""

    def __init__(self, device: RemoteDevice, rid: int, verb: str, endpoint: _Endpoint,
                 deadline: float):
        self.id, self.verb, self.endpoint = rid, verb, endpoint.address
        self._device, self._ep, self.deadline = device, endpoint, deadline
        self.header: dict[str, Any] | None = None
        self.tensors: dict[str, np.ndarray] | None = None
        self.error: HailoRTError | None = None
        self._delivered = False

    @property
    def done(self) -> bool:
        return self.header is not None or self.error is not None

    def _fail(self, error: HailoRTError) -> None:
        if not self.done:
            self.error = error

    def result(self) -> dict[str, np.ndarray]:
        """The output tensors ({stream name: frames}); raises the request's error. Waits at most
        until the request's deadline."""
        self._device._wait(self)
        if self._delivered:
            raise HailoInvalidOperationError(f"request {self.id} to {self.endpoint}: its result "
                                             f"was already taken")
        self._delivered = True
        if self.error is not None:
            raise self.error
        return self.tensors or {}

    def __repr__(self) -> str:
        state = "failed" if self.error else "done" if self.done else "pending"
        return f"<RemoteRequest {self.id} {self.verb} to {self.endpoint}: {state}>"


# the handshake failures a client can tell its caller about at once instead of at the deadline
_HANDSHAKE_HINT = ("the security handshake failed: both sides must use CURVE (keys) or neither, "
                   "and this client needs the server's public key (server.key) and a key pair "
                   "the server allows")
_HANDSHAKE_FAILED = {
    zmq.EVENT_HANDSHAKE_FAILED_AUTH: "the server refused this client's CURVE key (it is not in "
                                     "the server's authorized_clients)",
    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: _HANDSHAKE_HINT,
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: _HANDSHAKE_HINT,
}


class _Endpoint:
    """One server: its DEALER socket (remade after a timeout), a monitor of its handshakes,
    and its pending requests. Its open sockets are also in `sockets`, a set the device shares
    between its endpoints (what the device's finalizer closes)."""

    def __init__(self, address: str, ctx: zmq.Context, keys: tuple | None, sockets: set):
        self.address, self.ctx, self.keys, self.sockets = address, ctx, keys, sockets
        self.pending: dict[int, RemoteRequest] = {}
        self.resets = 0
        self.refused: str | None = None  # why the last handshake failed, if it did
        self._open()

    def _open(self) -> None:
        self.sock = self._connect()
        self.monitor = self.sock.get_monitor_socket(sum(_HANDSHAKE_FAILED))
        self.sockets.add(self.monitor)

    def _connect(self) -> zmq.Socket:
        s = self.ctx.socket(zmq.DEALER)
        self.sockets.add(s)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_IVL_MS)
        s.setsockopt(zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)
        s.setsockopt(zmq.RECONNECT_IVL, 100)
        s.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)
        if self.keys is not None:
            public, secret, server_public = self.keys
            s.curve_publickey, s.curve_secretkey, s.curve_serverkey = public, secret, server_public
        try:
            s.connect(self.address)
        except zmq.ZMQError as e:
            s.close()
            self.sockets.discard(s)
            raise HailoInvalidArgumentError(f"cannot connect to {self.address!r}: {e} (an endpoint "
                                            f"looks like tcp://HOST:PORT)") from None
        return s

    def fail_pending(self, error_class: type[HailoRTError], reason: str) -> None:
        """Every request pending here fails now, once, naming its id and this endpoint."""
        for req in self.pending.values():
            req._fail(error_class(f"request {req.id} ({req.verb}) to {self.address}: {reason}"))
        self.pending.clear()

    def reset(self, reason: str) -> None:
        """Lazy Pirate: a new socket; every request pending on the old one fails now."""
        self.fail_pending(HailoTimeoutError, f"abandoned, {reason}")
        self.close()
        self.resets += 1
        self._open()

    def handshake_failure(self) -> str | None:
        """Why a handshake failed since the last look, or None."""
        from zmq.utils.monitor import recv_monitor_message

        why = None
        while self.monitor.poll(0):
            event = recv_monitor_message(self.monitor)["event"]
            why = _HANDSHAKE_FAILED.get(event, why)
        return why

    def close(self) -> None:
        """Closes the socket and its monitor; closing twice is harmless."""
        if not self.sock.closed:
            self.sock.disable_monitor()
        for s in (self.monitor, self.sock):
            s.close(linger=0)
            self.sockets.discard(s)


def _release(sockets: set, own_context: zmq.Context | None) -> None:
    """Closes the sockets, then terminates the context the device made (if any)."""
    for s in list(sockets):
        s.close(linger=0)
    sockets.clear()
    if own_context is not None:
        own_context.term()


class RemoteDevice(Device):
    """A device served by a DeviceServer at `endpoint` (or several endpoints serving the same
    networks). timeout_ms: the deadline of every call. keys: a key directory of `host-app keys`
    (this client's key pair and the server's public key; `client_name` picks the pair), or None
    for a server started with --insecure."""

    def __init__(self, endpoint: str | Sequence[str], timeout_ms: int = DEFAULT_TIMEOUT_MS,
                 keys: str | os.PathLike | None = None, *, client_name: str = "client",
                 context: zmq.Context | None = None):
        addresses = [endpoint] if isinstance(endpoint, str) else list(endpoint)
        if not addresses or not all(isinstance(a, str) and a for a in addresses):
            raise HailoInvalidArgumentError(f"RemoteDevice needs an endpoint such as "
                                            f"'tcp://127.0.0.1:5555', got {endpoint!r}")
        if not _positive_number(timeout_ms):
            raise HailoInvalidArgumentError(f"timeout_ms must be a positive number, got "
                                            f"{timeout_ms!r}")
        self.timeout_ms = int(timeout_ms)
        curve = None
        if keys is not None:
            from .keys import load_client_keys

            curve = load_client_keys(keys, client_name)  # before any context or socket
        self._curve = curve is not None
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._own_ctx = context is None
        self.ctx = context or zmq.Context()
        self._closed = False
        self.stale_replies = 0  # replies to abandoned requests, dropped
        self._polled: tuple = ()
        self._poll = zmq.Poller()
        self._eps: list[_Endpoint] = []
        # Closes the sockets (and terminates the own context) when close() is not called too.
        # Pending requests refer back to their device, so an unclosed RemoteDevice is freed by
        # the cyclic garbage collector, which would otherwise run pyzmq's Context.__del__ while
        # the sockets are open: its term() then waits for them forever. The collector runs
        # weakref callbacks before any __del__, so this closes them first. Its arguments (the
        # sockets, the context) must not lead back to the device, or it would never be freed.
        self._sockets: set = set()
        self._release = weakref.finalize(self, _release, self._sockets,
                                         self.ctx if self._own_ctx else None)
        try:
            for a in addresses:  # inside the try: a bad second endpoint closes the first
                self._eps.append(_Endpoint(a, self.ctx, curve, self._sockets))
            self.server_info = {ep.address: self._call(ep, "hello") for ep in self._eps}
            self._networks, self._infos = self._fetch_stream_infos()
        except BaseException:
            self.close()
            raise

    @property
    def endpoints(self) -> list[str]:
        return [ep.address for ep in self._eps]

    def _fetch_stream_infos(self) -> tuple[list[str], dict[str, list[StreamInfo]]]:
        first, *others = self._eps
        networks = list(self.server_info[first.address]["networks"])
        for ep in others:
            if list(self.server_info[ep.address]["networks"]) != networks:
                raise HailoInvalidOperationError(
                    f"{ep.address} serves {self.server_info[ep.address]['networks']}, "
                    f"{first.address} serves {networks}: endpoints of one RemoteDevice must serve "
                    f"the same networks")
        infos = {}
        for net in networks:
            dicts = [self._call(ep, "stream_infos", network=net)["stream_infos"] for ep in self._eps]
            for ep, d in zip(others, dicts[1:]):
                if d != dicts[0]:
                    raise HailoInvalidOperationError(
                        f"network '{net}' has other streams on {ep.address} than on "
                        f"{first.address}: endpoints of one RemoteDevice must serve the same model")
            try:
                infos[net] = [StreamInfo.from_dict(d) for d in dicts[0]]
            except HailoRTError as e:  # from_dict checks every field, keys and types included
                raise HailoInvalidOperationError(f"{first.address}: the stream infos of '{net}' "
                                                 f"are not valid: {e}") from None
        return networks, infos

    # --- the Device interface ---------------------------------------------------------------
    def network_names(self) -> list[str]:
        return list(self._networks)

    def stream_infos(self, network_name: str | None = None) -> list[StreamInfo]:
        return list(self._infos[self._network_name(network_name)])

    def _infer(self, network_name: str, raw_inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = next(iter(raw_inputs.values())).shape[0]
        k = max(1, min(len(self._eps), n))
        bounds = np.linspace(0, n, k + 1).astype(int)
        reqs = [self._submit_checked(network_name, {s: a[b0:b1] for s, a in raw_inputs.items()})
                for b0, b1 in zip(bounds[:-1], bounds[1:])]
        results = [r.result() for r in reqs]
        if len(results) == 1:
            return results[0]
        return {name: np.concatenate([r[name] for r in results]) for name in results[0]}

    # --- pipelining -------------------------------------------------------------------------
    def submit(self, raw_inputs: Mapping[str, np.ndarray],
               network_name: str | None = None) -> RemoteRequest:
        """Sends one batch (validated as Device.infer validates) and returns at once. Do not
        change the input arrays until the request is done: they are sent without a copy."""
        network, checked = self.check_inputs(raw_inputs, network_name)
        return self._submit_checked(network, checked)

    def map(self, batches: Iterable[Mapping[str, np.ndarray]], network_name: str | None = None,
            in_flight: int = 4) -> Iterator[dict[str, np.ndarray]]:
        """Results of each batch, in order, with up to `in_flight` requests outstanding."""
        if not _positive_number(in_flight) or in_flight != int(in_flight):
            raise HailoInvalidArgumentError(f"in_flight must be an integer of at least 1, got "
                                            f"{in_flight!r}")
        window: list[RemoteRequest] = []
        for batch in batches:
            window.append(self.submit(batch, network_name))
            if len(window) >= in_flight:
                yield window.pop(0).result()
        for req in window:
            yield req.result()

    def ping(self) -> float:
        """Round-trip seconds of a `ping` to the first endpoint."""
        t = time.perf_counter()
        self._call(self._eps[0], "ping")
        return time.perf_counter() - t

    def stats(self) -> dict[str, dict[str, Any]]:
        """The `stats` of every endpoint's server."""
        return {ep.address: self._call(ep, "stats")["stats"] for ep in self._eps}

    # --- requests ---------------------------------------------------------------------------
    def _submit_checked(self, network: str, arrays: Mapping[str, np.ndarray]) -> RemoteRequest:
        with self._lock:
            ep = min(self._eps, key=lambda e: len(e.pending))
            return self._send(ep, "infer", network, arrays)

    def _send(self, ep: _Endpoint, verb: str, network: str | None = None,
              arrays: Mapping[str, np.ndarray] | None = None) -> RemoteRequest:
        if self._closed:
            raise HailoCommunicationClosedError(f"RemoteDevice {self.endpoints} is closed")
        rid = next(self._ids)
        header: dict[str, Any] = {"v": P.PROTOCOL_VERSION, "verb": verb, "id": rid}
        if network is not None:
            header["network"] = network
        parts: list[Any] = []
        if arrays is not None:
            header["tensors"] = P.tensor_descs(arrays)
            parts = P.tensor_parts(arrays)
        req = RemoteRequest(self, rid, verb, ep, time.monotonic() + self.timeout_ms / 1000)
        try:
            ep.sock.send_multipart([P.pack_header(header), *parts], zmq.NOBLOCK, copy=False)
        except zmq.Again:
            raise HailoTimeoutError(f"request {rid} ({verb}) to {ep.address}: not sent, the "
                                    f"connection's send queue is full (the server is not "
                                    f"reading); keep fewer requests in flight") from None
        ep.pending[rid] = req
        return req

    def _call(self, ep: _Endpoint, verb: str, **header: Any) -> dict[str, Any]:
        with self._lock:
            req = self._send(ep, verb, header.get("network"))
        self._wait(req)
        req._delivered = True
        if req.error is not None:
            raise req.error
        return req.header or {}

    def _wait(self, req: RemoteRequest) -> None:
        with self._lock:
            while not req.done:
                self._pump(req.deadline)

    def _pump(self, until: float) -> None:
        """Receives what has arrived (at most until `until`) and fails expired requests."""
        now = time.monotonic()
        wait_ms = max(0, min(until - now, 0.1)) * 1000
        for sock, _ in self._poller().poll(wait_ms):
            ep = next(e for e in self._eps if sock in (e.sock, e.monitor))
            if sock is ep.monitor:
                why = ep.handshake_failure()
                if why is not None:
                    ep.fail_pending(HailoCommunicationClosedError, why)
                continue
            while True:
                try:
                    parts = sock.recv_multipart(zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                self._deliver(ep, parts)
        now = time.monotonic()
        for ep in self._eps:
            expired = [r for r in ep.pending.values() if r.deadline <= now]
            if expired:
                first = min(expired, key=lambda r: r.id)
                hint = (" (with CURVE: is this client's public key in the server's "
                        "authorized_clients?)" if self._curve else "")
                first._fail(HailoTimeoutError(
                    f"request {first.id} ({first.verb}) to {ep.address}: no reply within "
                    f"{self.timeout_ms} ms; the server is down, restarting or overloaded{hint}. "
                    f"The connection is reset and the next request reconnects"))
                ep.pending.pop(first.id)
                ep.reset(f"the connection was reset after request {first.id} timed out")

    def _poller(self) -> zmq.Poller:
        """One poller over every endpoint's socket and monitor, remade only after a reset."""
        socks = tuple(s for ep in self._eps for s in (ep.sock, ep.monitor))
        if self._polled != socks:
            self._polled, self._poll = socks, zmq.Poller()
            for s in socks:
                self._poll.register(s, zmq.POLLIN)
        return self._poll

    def _deliver(self, ep: _Endpoint, parts: list) -> None:
        try:
            header = P.unpack_header(parts[0].buffer)
        except P.ProtocolError:
            self.stale_replies += 1
            return
        rid = header.get("id")
        req = ep.pending.pop(rid, None) if isinstance(rid, int) else None
        if req is None:  # a reply to an abandoned (timed out) request, or junk: never delivered
            self.stale_replies += 1
            return
        where = f"request {req.id} ({req.verb}) to {ep.address}"
        error = P.error_of_reply(header, where)
        if error is not None:
            req.error = error
            return
        try:
            req.tensors = P.decode_tensors(header, [p.buffer for p in parts[1:]])
        except P.ProtocolError as e:
            req.error = HailoInvalidOperationError(f"{where}: malformed reply: {e}")
            return
        req.header = header

    def close(self) -> None:
        """Fails pending requests (HailoCommunicationClosedError) and closes the sockets."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for ep in self._eps:
                ep.fail_pending(HailoCommunicationClosedError, "the RemoteDevice was closed")
            self._release()

    def __repr__(self) -> str:
        return f"RemoteDevice({self.endpoints!r}, timeout_ms={self.timeout_ms})"
