"""User hooks: `hook:MODULE:FUNCTION[,key:value...]`, a function of the user's own.

MODULE is a module importable from the current directory (`mypackage.post`) or a `.py` file
(relative paths from the current directory, or from the HAR's directory for a recorded spec).
It is imported when the post-processing first runs. The function is called once per batch:

    FUNCTION(outputs, image_shapes, **params) -> one entry per image

`outputs`: {bare output-layer name: float32 array (N, ...)} (native, emulator or device alike);
`image_shapes`: N (H, W) of the original images; `params`: the spec's other items (numbers as
float or int, [lists], the rest as strings); a parameter named `network` receives the
NetworkInfo (input shape, outputs, labels, resize mode) when the function declares one.
Each entry is a `Result`, or a list of detections: `Detection`s or dicts
{"box": [x0, y0, x1, y1] (pixels of the original image), "score": 0.9, "label": "cat",
"class_id": 0, "keypoints": [[x, y], ...]} (score defaults to 1, the rest is optional).
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import re
import sys
from pathlib import Path

import numpy as np

from ..errors import AppError, UsageError
from .results import Detection, Result
from .spec import Items, PostProcess, parse_list, parse_number


def _value(text: str):
    v = parse_number(text)
    if v is not None:
        return int(v) if re.fullmatch(r"[-+]?\d+", text.strip()) else v
    if text.startswith("["):
        lst = parse_list(text)
        if lst is not None:
            return [_value(t) if isinstance(t, str) else [_value(u) for u in t] for t in lst]
    return text


class Hook(PostProcess):
    kind = "hook"
    keys = "any key:value, passed to the function as keyword arguments"

    @classmethod
    def from_items(cls, text, where, preset, items: Items, base_dir=None, head: str = "") -> Hook:
        target = head[len("hook:"):].strip()
        module, sep, func = target.rpartition(":")
        if not sep or not module or not func.isidentifier():
            raise UsageError(f"{where}: item '{head}': write hook:MODULE:FUNCTION (a module "
                             f"importable from here, such as mypackage.post, or a .py file, and "
                             f"the function's name)")
        p = cls(text, where, preset)
        p.module = module
        p.function = func
        p.base_dir = base_dir
        p.params = {k: _value(v) for k, (v, _) in items._items.items()}
        p._fn = None
        return p

    @property
    def is_file(self) -> bool:
        return self.module.endswith(".py") or os.sep in self.module or "/" in self.module

    def path(self) -> Path:
        p = Path(self.module)
        if not p.is_absolute() and self.base_dir is not None and not p.is_file():
            p = Path(self.base_dir) / p
        return p

    def stored_for(self, har_dir, cwd=None) -> str:
        """The spec to record in a HAR written in `har_dir`: a relative .py path made relative
        to it."""
        if not self.is_file or Path(self.module).is_absolute():
            return self.text
        from .spec import split_items

        absolute = (Path(cwd or Path.cwd()) / self.path()).resolve()
        try:
            rel = os.path.relpath(absolute, Path(har_dir).resolve())
        except ValueError:
            rel = str(absolute)
        items = split_items(self.text)
        return ",".join([f"hook:{rel}:{self.function}"] + items[1:])

    def check_available(self) -> None:
        """The module can be found (a file that exists, or a top-level package importable from
        here), without importing it: UsageError otherwise."""
        if self.is_file:
            if not self.path().is_file():
                raise self.error(f"hook module file '{self.module}' does not exist; give a .py "
                                 f"file or an importable module")
            return
        top = self.module.split(".")[0]
        added = os.getcwd() not in sys.path
        if added:
            sys.path.insert(0, os.getcwd())
        try:
            found = importlib.util.find_spec(top) is not None
        except (ImportError, ValueError):
            found = False
        finally:
            if added:
                sys.path.remove(os.getcwd())
        if not found:
            raise self.error(f"hook: no module named '{top}' here; give a module importable from "
                             f"the current directory, or a .py file")

    def function_object(self):
        if self._fn is not None:
            return self._fn
        self.check_available()
        name = f"{self.module}:{self.function}"
        try:
            if self.is_file:
                path = self.path()
                spec = importlib.util.spec_from_file_location(f"_host_app_hook_{path.stem}", path)
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
            else:
                added = os.getcwd() not in sys.path
                if added:
                    sys.path.insert(0, os.getcwd())
                try:
                    module = importlib.import_module(self.module)
                finally:
                    if added:
                        sys.path.remove(os.getcwd())
        except ModuleNotFoundError as e:
            raise self.error(f"hook '{name}': {e}; give a module importable from here") from None
        except Exception as e:  # the user's module failed: say so in its own words
            raise AppError(f"{self.where}: importing hook module '{self.module}' failed: "
                           f"{type(e).__name__}: {e}") from None
        fn = getattr(module, self.function, None)
        if fn is None or not callable(fn):
            what = "is not callable" if fn is not None else "does not exist"
            raise self.error(f"hook: '{self.function}' in module '{self.module}' {what}; give the "
                             f"name of a function defined there")
        self._fn = fn
        return fn

    def _apply(self, outputs, n, maps) -> list[Result]:
        fn = self.function_object()
        shapes = [m.image_hw for m in maps]
        kwargs = dict(self.params)
        try:
            if "network" in inspect.signature(fn).parameters:
                kwargs["network"] = self.network
        except (TypeError, ValueError):
            pass
        try:
            got = fn(outputs, shapes, **kwargs)
        except Exception as e:
            raise AppError(f"hook '{self.module}:{self.function}' raised {type(e).__name__}: {e}") \
                from None
        return self._results(got, n)

    def _results(self, got, n: int) -> list[Result]:
        name = f"hook '{self.module}:{self.function}'"
        if not isinstance(got, (list, tuple)) or len(got) != n:
            raise AppError(f"{name} returned {type(got).__name__}"
                           f"{f' of {len(got)}' if isinstance(got, (list, tuple)) else ''}; it "
                           f"must return a list of {n} entries, one per image")
        out = []
        for i, entry in enumerate(got):
            if isinstance(entry, Result):
                out.append(entry)
                continue
            if isinstance(entry, dict) and "detections" in entry:
                extra = {k: v for k, v in entry.items() if k != "detections"}
                entry = entry["detections"]
            else:
                extra = {}
            if not isinstance(entry, (list, tuple)):
                raise AppError(f"{name}: entry {i} is {type(entry).__name__}; give a Result or a "
                               f"list of detections")
            out.append(Result([self._detection(d, f"{name}: image {i}, detection {j}")
                               for j, d in enumerate(entry)], extra=extra))
        return out

    @staticmethod
    def _detection(d, where: str) -> Detection:
        if isinstance(d, Detection):
            return d
        if not isinstance(d, dict) or "box" not in d:
            raise AppError(f"{where} is {type(d).__name__}; give a Detection or a dict with a "
                           f"'box' [x0, y0, x1, y1]")
        box = np.asarray(d["box"], np.float64).reshape(-1)
        if box.size != 4 or not np.all(np.isfinite(box)):
            raise AppError(f"{where}: box {d['box']!r} is not 4 finite numbers x0, y0, x1, y1")
        kp = d.get("keypoints")
        kp = None if kp is None else np.asarray(kp, np.float64).reshape(-1, 2)
        cid = int(d.get("class_id", 0))
        return Detection(tuple(float(v) for v in box), float(d.get("score", 1.0)), cid,
                         str(d.get("label", f"class {cid}")), kp)
