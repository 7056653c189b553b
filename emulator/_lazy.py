"""A module imported on first use: the layer kinds name TensorFlow and the integer kernels at
module level, but loading a HAR (which checks params through the same kinds) must not import
TensorFlow."""
from __future__ import annotations

import importlib
import types
from typing import Any


class LazyModule(types.ModuleType):
    def __init__(self, name: str):
        super().__init__(name)
        self.__dict__["_target"] = None

    def __getattr__(self, attr: str) -> Any:
        target = self.__dict__["_target"]
        if target is None:
            target = self.__dict__["_target"] = importlib.import_module(self.__name__)
        return getattr(target, attr)


tf: Any = LazyModule("tensorflow")
kernels: Any = LazyModule("emulator.numerics.kernels")
