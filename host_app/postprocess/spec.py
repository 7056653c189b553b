"""The post-processing spec: its items, typed values, the base class of the kinds, and what a
post-processing knows of the network it is bound to.

    spec  := PRESET ("," item)* | kind ("," item)*
    kind  := classify | ssd | yolo | mtcnn | hook:MODULE:FUNCTION
    item  := key:value
    value := number | a/b | word | yes|no | HxW | [v, v, ...] | [[...], [...]] | path

Every problem is a UsageError that names the spec, the item and what to write instead.
"""
from __future__ import annotations

import copy
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np

from ..errors import UsageError
from .results import InputMapping, Result, image_shapes_for

_YES = ("yes", "true", "on", "1")
_NO = ("no", "false", "off", "0")


def split_items(text: str) -> list[str]:
    """Split on the commas outside brackets; UsageError-free (brackets are checked by values)."""
    items, depth, cur = [], 0, []
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "," and depth == 0:
            items.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    items.append("".join(cur).strip())
    return items


def parse_number(tok: str) -> float | None:
    """A number (0.5, -1, 1e-3) or a fraction a/b; None when `tok` is neither."""
    tok = tok.strip()
    m = re.fullmatch(r"([^/]+)/([^/]+)", tok)
    try:
        v = float(m.group(1)) / float(m.group(2)) if m else float(tok)
    except (ValueError, ZeroDivisionError):
        return None
    return v if math.isfinite(v) else None


def parse_list(text: str) -> list | None:
    """'[a, b, [c, d]]' -> nested lists of stripped strings; None when the brackets are wrong."""
    text = text.strip()
    if not (text.startswith("[") and text.endswith("]")):
        return None
    inner = text[1:-1].strip()
    if not inner:
        return []
    out = []
    for part in split_items(inner):
        if part.startswith("["):
            sub = parse_list(part)
            if sub is None:
                return None
            out.append(sub)
        elif "[" in part or "]" in part or not part:
            return None
        else:
            out.append(part)
    return out


class Items:
    """The key:value items of one spec, read by typed getters that consume them; `done()`
    refuses what no getter read. Every error names the spec and the item."""

    def __init__(self, where: str, kind: str, items: dict[str, tuple[str, str]], keys: str):
        self.where = where
        self.kind = kind
        self._items = dict(items)  # key -> (value, the item as written)
        self._keys = keys  # the kind's keys, for messages

    def error(self, key: str, problem: str) -> UsageError:
        item = self._items.get(key, (None, key))[1]
        return UsageError(f"{self.where}: item '{item}': {problem}")

    def has(self, key: str) -> bool:
        return key in self._items

    def raw(self, key: str, default: str | None = None) -> str | None:
        if key not in self._items:
            return default
        return self._items[key][0]

    def _take(self, key: str) -> str | None:
        v = self._items.get(key)
        return None if v is None else v[0]

    def number(self, key: str, default: float | None, *, lo: float | None = None,
               hi: float | None = None, integer: bool = False, open_lo: bool = False):
        text = self._take(key)
        if text is None:
            return default
        v = parse_number(text)
        if v is None:
            raise self.error(key, f"'{text}' is not a number (write e.g. {key}:"
                                  f"{'3' if integer else '0.5'})")
        if integer:
            if v != int(v):
                raise self.error(key, f"{key} must be a whole number, not {text}")
            v = int(v)
        if lo is not None and (v < lo or (open_lo and v == lo)):
            raise self.error(key, f"{key} must be {'above' if open_lo else 'at least'} {lo:g}, "
                                  f"not {text}")
        if hi is not None and v > hi:
            raise self.error(key, f"{key} must be at most {hi:g}, not {text}")
        return v

    def numbers(self, key: str, default, *, count: int | None = None, lo: float | None = None,
                hi: float | None = None, integer: bool = False, scalar_ok: bool = True):
        """A list [a, b, ...] (or one number when scalar_ok) of numbers."""
        text = self._take(key)
        if text is None:
            return default
        if not text.startswith("[") and scalar_ok:
            vals = [text]
        else:
            vals = parse_list(text)
            if vals is None or any(isinstance(v, list) for v in vals) or not vals:
                raise self.error(key, f"'{text}' is not a list of numbers like [8, 16, 16, 16]")
        out = []
        for t in vals:
            v = parse_number(t)
            if v is None:
                raise self.error(key, f"'{t}' is not a number")
            if integer and v != int(v):
                raise self.error(key, f"'{t}' must be a whole number")
            if (lo is not None and v < lo) or (hi is not None and v > hi):
                rng = f"from {lo:g}" if hi is None else f"in [{lo:g}, {hi:g}]" if lo is not None \
                    else f"up to {hi:g}"
                raise self.error(key, f"{key} values must be {rng}, not {t}")
            out.append(int(v) if integer else v)
        if count is not None and len(out) not in (1, count):
            raise self.error(key, f"give one value or {count}, not {len(out)}")
        if count is not None and len(out) == 1:
            out = out * count
        return out

    def nested_numbers(self, key: str, default):
        """[[a, b, ...], [c, d, ...]] -> list of lists of floats."""
        text = self._take(key)
        if text is None:
            return default
        vals = parse_list(text)
        if vals is None or not vals or not all(isinstance(v, list) and v for v in vals):
            raise self.error(key, f"'{text}' is not a list of lists of numbers like "
                                  f"[[10,13, 16,30], [30,61, 62,45]]")
        out = []
        for group in vals:
            g = []
            for t in group:
                v = parse_number(t) if isinstance(t, str) else None
                if v is None:
                    raise self.error(key, f"'{t}' is not a number")
                g.append(v)
            out.append(g)
        return out

    def word(self, key: str, default: str | None, choices: Sequence[str] | None = None):
        text = self._take(key)
        if text is None:
            return default
        if choices is not None:
            low = text.lower()
            if low not in choices:
                raise self.error(key, f"{key} must be one of {', '.join(choices)}, not '{text}'")
            return low
        return text

    def words(self, key: str, default):
        """[a, b, c] (or one word) -> list of strings."""
        text = self._take(key)
        if text is None:
            return default
        if not text.startswith("["):
            return [text]
        vals = parse_list(text)
        if vals is None or any(isinstance(v, list) for v in vals):
            raise self.error(key, f"'{text}' is not a list like [a, b, c]")
        return list(vals)

    def flag(self, key: str, default: bool) -> bool:
        text = self._take(key)
        if text is None:
            return default
        if text.lower() in _YES:
            return True
        if text.lower() in _NO:
            return False
        raise self.error(key, f"{key} is yes or no, not '{text}'")

    def size(self, key: str, default):
        """HxW (or one number for a square) -> (H, W)."""
        text = self._take(key)
        if text is None:
            return default
        m = re.fullmatch(r"\s*(\d+)\s*(?:[xX,]\s*(\d+))?\s*", text)
        if not m or int(m.group(1)) < 1 or (m.group(2) is not None and int(m.group(2)) < 1):
            raise self.error(key, f"'{text}' is not a size like 128x128 (height x width)")
        h = int(m.group(1))
        return (h, int(m.group(2)) if m.group(2) else h)

    def done(self, consumed: Sequence[str]) -> None:
        extra = [k for k in self._items if k not in consumed]
        if extra:
            raise self.error(extra[0], f"unknown key '{extra[0]}' for {self.kind}; its keys are "
                                       f"{self._keys}")


# ==== the network a post-processing is bound to ==================================================

@dataclass(frozen=True)
class NetworkInfo:
    """What a post-processing needs to know of its network: the input (H, W, C), the output
    shapes without the batch axis (bare output-layer names, in output order), recorded labels,
    which outputs are classifiers, the pre-processing's resize mode and the HAR's path."""

    name: str
    input_shape: tuple[int, ...]
    outputs: dict[str, tuple[int, ...]]
    labels: dict[str, list[str]] = field(default_factory=dict)
    classifiers: tuple[str, ...] = ()
    resize: str = "stretch"
    har: Path | None = None

    @classmethod
    def from_runner(cls, runner, preprocess=None, har: str | os.PathLike | None = None) -> NetworkInfo:
        from ..pipeline import is_classifier, labels_for

        hn = runner.hn
        ins = hn.input_layers
        shape = tuple(int(v) for v in ins[0].output_shape[1:]) if len(ins) == 1 else ()
        outputs = {l.name: tuple(int(v) for v in l.output_shape[1:]) for l in hn.output_layers}
        labels = {n: labels_for(runner, n) for n in outputs if labels_for(runner, n)}
        classifiers = tuple(n for n in outputs if is_classifier(runner, n))
        resize = getattr(preprocess, "resize", None) or "stretch"
        return cls(hn.name, shape, outputs, labels, classifiers, resize,
                   Path(har) if har is not None else None)

    @property
    def input_hw(self) -> tuple[int, int] | None:
        return (self.input_shape[0], self.input_shape[1]) if len(self.input_shape) == 3 else None


# ==== the base of the kinds ======================================================================

class PostProcess:
    """A parsed post-processing. `apply(outputs, image_shape)` turns a batch of float outputs
    ({bare output name: (N, ...)}, from any target: native, emulator or device) into one Result
    per image, coordinates in pixels of the original images. `bind(network)` checks the spec
    against a network and fills what the spec left to it (input size, output names, labels)."""

    kind: ClassVar[str] = ""
    keys: ClassVar[str] = ""  # for messages: "key, key, ..."
    detector: ClassVar[bool] = True  # gives boxes (compare measures box agreement)
    needs_images: ClassVar[bool] = False  # runs its own networks on the images (a cascade)

    def __init__(self, text: str, where: str, preset: str | None = None):
        self.text = text
        self.where = where
        self.preset = preset
        self.network: NetworkInfo | None = None

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self}>"

    @property
    def stored(self) -> str:
        """What is recorded in a HAR's metadata."""
        return self.text

    def bind(self, network: NetworkInfo) -> PostProcess:
        bound = copy.copy(self)
        bound.network = network
        bound._check(network)
        return bound

    def _check(self, network: NetworkInfo) -> None:
        """UsageError when the spec does not fit the network (overridden by the kinds)."""

    def outputs_used(self) -> list[str]:
        """The output layers this post-processing reads (the others are shown raw)."""
        return []

    def apply(self, outputs: dict[str, np.ndarray], image_shape, *,
              resize: str | None = None) -> list[Result]:
        """One Result per image. `image_shape`: one (H, W[, C]) for every image, or one per
        image. `resize` overrides the bound network's pre-processing resize mode."""
        n = _batch_size(outputs)
        shapes = image_shapes_for(image_shape, n)
        resize = resize or (self.network.resize if self.network else "stretch")
        input_hw = self.network.input_hw if self.network else None
        maps = [InputMapping.for_image(hw, input_hw, resize) for hw in shapes]
        results = self._apply(outputs, n, maps)
        for r, hw in zip(results, shapes):
            r.image_shape = hw
        return results

    def _apply(self, outputs, n: int, maps: list[InputMapping]) -> list[Result]:
        raise NotImplementedError

    def error(self, problem: str) -> UsageError:
        return UsageError(f"{self.where}: {problem}")


def _batch_size(outputs: dict[str, np.ndarray]) -> int:
    sizes = {int(np.shape(v)[0]) for v in outputs.values() if np.ndim(v)}
    if len(sizes) != 1:
        raise ValueError(f"outputs of different batch sizes: "
                         f"{ {k: np.shape(v) for k, v in outputs.items()} }")
    return sizes.pop()


def output_array(post: PostProcess, outputs: dict[str, np.ndarray], name: str) -> np.ndarray:
    """An output by its bare layer name (or a scoped name ending in /name), float32."""
    if name in outputs:
        return np.asarray(outputs[name], np.float32)
    for k, v in outputs.items():
        if k.split("/")[-1] == name:
            return np.asarray(v, np.float32)
    raise post.error(f"no output '{name}' among {', '.join(outputs)}; name one of these")


def sigmoid(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # = 1 / (1 + exp(-x)), without overflow
