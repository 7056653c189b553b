"""Drivers: the devices a device server can open, found by name.

A driver is a callable `factory(models: list[str]) -> hailort_py.Device` registered under the
entry-point group `hailort_py.drivers`. This project registers two (setup.py):

    emulator = emulator.device:open_emulated_device        quantized HARs, the emulated chip
    hailort  = hailort_py.hailort_driver:open_hailort_device  HEFs on a real chip (HailoRT)

so the runtime finds the emulator without importing it, and installs and runs without TensorFlow
on a device host that only serves hardware. Another package adds a driver by declaring an entry
point in the same group; `register_driver` adds one in-process (tests, embedding).
"""
from __future__ import annotations

import importlib.metadata
import os
from typing import Callable, Sequence

from .device import Device
from .errors import HailoInvalidArgumentError, HailoNotFoundError

ENTRY_POINT_GROUP = "hailort_py.drivers"
DriverFactory = Callable[[Sequence[str]], Device]

_registered: dict[str, DriverFactory] = {}


class DriverError(HailoNotFoundError):
    """A driver that cannot be found or loaded; the message says what to install."""


def register_driver(name: str, factory: DriverFactory) -> None:
    """Makes `factory` the driver called `name` in this process (it wins over entry points)."""
    if not isinstance(name, str) or not name or not callable(factory):
        raise HailoInvalidArgumentError(f"register_driver needs a name and a callable factory, "
                                        f"got {name!r} and {type(factory).__name__}")
    _registered[name] = factory


def driver_names() -> list[str]:
    eps = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    return sorted(set(_registered) | {ep.name for ep in eps})


def find_driver(name: str) -> DriverFactory:
    if name in _registered:
        return _registered[name]
    eps = [ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not eps:
        raise DriverError(f"no device driver '{name}'; the drivers here are {driver_names()} "
                          f"(drivers register under the entry-point group '{ENTRY_POINT_GROUP}': "
                          f"install the toolkit with `pip install .[emulator]` for 'emulator')")
    try:
        return eps[0].load()
    except (ImportError, AttributeError) as e:  # its module, or the name in it, is missing
        raise DriverError(f"device driver '{name}' ({eps[0].value}) cannot be loaded: {e}; "
                          f"install what it needs (the emulator: `pip install .[emulator]`)") from None


def open_driver(name: str, models: Sequence[str | os.PathLike]) -> Device:
    """The device of driver `name` serving `models` (a list of paths on this machine)."""
    if isinstance(models, (str, bytes, os.PathLike)):
        raise HailoInvalidArgumentError(f"models is a list of paths, not one path: give "
                                        f"[{os.fspath(models)!r}]")
    try:
        models = [os.fspath(m) for m in models or ()]
    except TypeError as e:
        raise HailoInvalidArgumentError(f"models must be paths: {e}") from None
    for m in models:
        if not os.path.isfile(m):
            raise HailoInvalidArgumentError(f"model file {m} does not exist")
    device = find_driver(name)(models)
    if not isinstance(device, Device):
        raise DriverError(f"device driver '{name}' returned a {type(device).__name__}, "
                          f"not a hailort_py.Device")
    return device
