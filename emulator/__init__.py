"""The chip emulator: HN graphs, importers, emulation targets and the ClientRunner.

Public names mirror the seed's SDK:
    from emulator import ClientRunner, parse_keras, parse_tflite
    from emulator import SdkNative, SdkFPOptimized, SdkQuantized, SdkNumeric
    from emulator import run_quantization_from_np, EmulatedDevice
Names resolve lazily, so `import emulator.hn` (or the runtime on a device host) does not pull
in TensorFlow until a name that needs it is used.
"""
from __future__ import annotations

import importlib
from typing import Any

from . import errors  # noqa: F401  (no TensorFlow inside)

_LAZY = {
    "ClientRunner": ("emulator.runner", "ClientRunner"),
    "parse_keras": ("emulator.importers.keras", "parse_keras"),
    "parse_tflite": ("emulator.importers.tflite", "parse_tflite"),
    "SdkNative": ("emulator.targets", "SdkNative"),
    "SdkFPOptimized": ("emulator.targets", "SdkFPOptimized"),
    "SdkQuantized": ("emulator.targets", "SdkQuantized"),
    "SdkNumeric": ("emulator.targets", "SdkNumeric"),
    "run_quantization_from_np": ("emulator.quantization", "run_quantization_from_np"),
    "EmulatedDevice": ("emulator.device", "EmulatedDevice"),
}

__all__ = sorted(_LAZY) + ["errors"]


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'emulator' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
