"""CURVE keys for the device server and its clients (ZeroMQ's ZPL key files).

A key directory, as `host-app keys DIR` makes it:

    DIR/server.key             the server's public key (clients need it)
    DIR/server.key_secret      the server's key pair (mode 0600; the server needs it)
    DIR/client.key             a client's public key
    DIR/client.key_secret      that client's key pair (mode 0600)
    DIR/authorized_clients/    the public keys the server accepts (the allow-list)

The server reads server.key_secret and authorized_clients/; a client reads client.key_secret and
server.key. Copy only what each side needs to its machine. More clients: `create_keys(DIR,
clients=["board2"])` adds board2.key / board2.key_secret and allows board2.
"""
from __future__ import annotations

import os
import pathlib
import shutil
from typing import Iterable

import zmq
import zmq.auth

from .errors import HailoInvalidArgumentError, HailoNotFoundError

ALLOWED_DIR = "authorized_clients"


def create_keys(directory: str | os.PathLike, clients: Iterable[str] = ("client",),
                server: bool = True) -> list[pathlib.Path]:
    """Creates the server key pair (unless it exists or server=False) and one key pair per
    client name, each client allowed. Secret files are mode 0600. Returns the files written."""
    if not zmq.has("curve"):
        raise HailoInvalidArgumentError("this libzmq was built without CURVE support")
    d = pathlib.Path(directory)
    allowed = d / ALLOWED_DIR
    allowed.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    written = []
    names = (["server"] if server and not (d / "server.key_secret").exists() else []) + list(clients)
    for name in names:
        if not name or any(c in name for c in "/\\") or name.startswith("."):
            raise HailoInvalidArgumentError(f"key name {name!r} must be a plain file name")
        if (d / f"{name}.key_secret").exists():
            raise HailoInvalidArgumentError(f"{d / (name + '.key_secret')} exists: keys are never "
                                            f"overwritten; choose another name or remove it")
        old = os.umask(0o077)  # the secret file is never readable by others, not even briefly
        try:
            public, secret = zmq.auth.create_certificates(str(d), name)
        finally:
            os.umask(old)
        os.chmod(secret, 0o600)
        os.chmod(public, 0o644)
        written += [pathlib.Path(public), pathlib.Path(secret)]
        if name != "server":
            shutil.copyfile(public, allowed / f"{name}.key")
            written.append(allowed / f"{name}.key")
    return written


def _load(path: pathlib.Path, what: str) -> tuple[bytes, bytes | None]:
    if not path.is_file():
        raise HailoNotFoundError(f"{what}: no key file {path}; make keys with `host-app keys "
                                 f"{path.parent}`")
    try:
        return zmq.auth.load_certificate(str(path))
    except (ValueError, OSError) as e:
        raise HailoInvalidArgumentError(f"{what}: {path} is not a ZeroMQ key file: {e}") from None


def load_server_keys(directory: str | os.PathLike) -> tuple[bytes, bytes, pathlib.Path]:
    """(public, secret, allow-list directory) of a key directory, for the server."""
    d = pathlib.Path(directory)
    public, secret = _load(d / "server.key_secret", "device server")
    if secret is None:
        raise HailoInvalidArgumentError(f"{d / 'server.key_secret'} holds no secret key")
    allowed = d / ALLOWED_DIR
    if not allowed.is_dir() or not any(allowed.glob("*.key")):
        raise HailoNotFoundError(f"device server: no client is allowed: {allowed} holds no "
                                 f"*.key file (add clients with `host-app keys {d} --client NAME`)")
    return public, secret, allowed


def load_client_keys(directory: str | os.PathLike, name: str = "client") -> tuple[bytes, bytes, bytes]:
    """(client public, client secret, server public) of a key directory, for a client."""
    d = pathlib.Path(directory)
    public, secret = _load(d / f"{name}.key_secret", "device client")
    if secret is None:
        raise HailoInvalidArgumentError(f"{d / (name + '.key_secret')} holds no secret key")
    server_public, _ = _load(d / "server.key", "device client")
    return public, secret, server_public


def start_authenticator(ctx: zmq.Context, allowed_dir: pathlib.Path):
    """A ZAP handler thread accepting exactly the CURVE keys in allowed_dir."""
    from zmq.auth.thread import ThreadAuthenticator

    auth = ThreadAuthenticator(ctx, log=None)
    auth.start()
    auth.configure_curve(domain="*", location=str(allowed_dir))
    return auth
