"""Limits on what the toolkit reads from files, so that a small hostile file cannot make it
allocate gigabytes or recurse without end. Every check names the file, the member or the layer,
the figure, and the limit, and says how to raise it.

The limits are attributes of `LIMITS`; a user who needs bigger ones sets them in Python
(`emulator.limits.LIMITS.max_member_bytes = 8 << 30`) or through the environment variable
`EMULATOR_LIMITS`, e.g. `EMULATOR_LIMITS="max_member_bytes=8G,max_tensor_elements=4e9"`.
docs/file-formats.md, "Limits", lists them.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from .errors import EmulatorError


class LimitError(EmulatorError, ValueError):
    """A file or a network larger than the toolkit's limits (emulator.limits.LIMITS)."""


@dataclasses.dataclass
class Limits:
    max_member_bytes: int = 2 << 30         # one HAR member (an NPZ of weights), uncompressed
    max_har_bytes: int = 4 << 30            # all HAR members together
    max_json_bytes: int = 64 << 20          # hn.json, metadata.json, stream_infos.json
    max_json_depth: int = 64                # nesting of JSON arrays / objects
    max_tensor_elements: int = 1 << 31      # one array in an NPZ, one layer's output (a frame)
    max_layers: int = 100_000               # layers of one HN
    memory_budget_bytes: int = 8 << 30      # what one inference / calibration batch may need

    def describe(self, name: str) -> str:
        return f"emulator.limits.LIMITS.{name} = {getattr(self, name):,} (or EMULATOR_LIMITS=\"{name}=...\")"


_UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def _parse(text: str) -> Limits:
    limits = Limits()
    for item in filter(None, (s.strip() for s in text.split(","))):
        name, _, value = item.partition("=")
        name, value = name.strip(), value.strip().lower()
        if not hasattr(limits, name):
            raise LimitError(f"EMULATOR_LIMITS: unknown limit '{name}'; the limits are "
                             f"{[f.name for f in dataclasses.fields(Limits)]}")
        scale = _UNITS.get(value[-1:], 1)
        try:
            number = float(value[:-1] if scale > 1 else value) * scale
        except ValueError:
            raise LimitError(f"EMULATOR_LIMITS: '{item}' is not name=number (e.g. 8G)") from None
        setattr(limits, name, int(number))
    return limits


LIMITS = _parse(os.environ.get("EMULATOR_LIMITS", ""))


def json_depth(text: str | bytes) -> int:
    """The deepest nesting of arrays / objects in JSON text, counted without parsing it (so a
    deeply nested file cannot exhaust the parser's recursion)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


class _DuplicateKey(Exception):
    pass


def load_json(text: str | bytes, what: str) -> Any:
    """JSON of at most max_json_bytes and max_json_depth, without duplicate keys in any object.
    `what` names the file or member in the error (a LimitError or a ValueError subclass of the
    caller's choosing is raised by the caller; here: LimitError / json.JSONDecodeError /
    ValueError('duplicate key'))."""
    size = len(text)
    if size > LIMITS.max_json_bytes:
        raise LimitError(f"{what}: {size:,} bytes of JSON is more than the limit; "
                         f"{LIMITS.describe('max_json_bytes')}")
    depth = json_depth(text)
    if depth > LIMITS.max_json_depth:
        raise LimitError(f"{what}: JSON nested {depth} levels deep, more than the limit; "
                         f"{LIMITS.describe('max_json_depth')}")
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as e:
        raise ValueError(f"{what}: the key '{e.args[0]}' appears twice in one object (which "
                         f"one would win is not defined); remove one") from None


def frame_bytes(hn: Any, bytes_per_element: int = 4, keep_all: bool = False) -> tuple[int, str]:
    """An estimate of the memory one frame needs as it runs through the network: the largest
    layer's inputs plus output (every layer's output when all are kept), in bytes; and the name
    of the layer that sets it."""
    worst, where, total = 0, "", 0
    for layer in hn.topological():
        out = _elements(layer.output_shape)
        ins = sum(_elements(s) for s in layer.input_shapes)
        total += out
        if ins + out > worst:
            worst, where = ins + out, layer.name
    need = total if keep_all else worst
    return need * bytes_per_element, where


def _elements(shape: Any) -> int:
    n = 1
    for d in list(shape)[1:]:
        n *= max(int(d), 1)
    return n


def check_batch(hn: Any, batch: int, what: str, bytes_per_element: int = 4,
                keep_all: bool = False) -> None:
    """A LimitError before running when a batch of `batch` frames would need more than
    LIMITS.memory_budget_bytes; it gives the figure and the batch size that fits."""
    per_frame, layer = frame_bytes(hn, bytes_per_element, keep_all)
    need = per_frame * max(batch, 1)
    budget = LIMITS.memory_budget_bytes
    if need <= budget:
        return
    fits = budget // per_frame if per_frame else 0
    advice = (f"batch_size={fits} fits" if fits >= 1 else
              f"not even one frame fits (layer '{layer}' alone needs {per_frame / 2**30:.1f} GiB)")
    raise LimitError(f"{what}: network '{hn.name}' would need about {need / 2**30:.1f} GiB for a "
                     f"batch of {batch} ({per_frame / 2**20:,.1f} MiB a frame, largest at layer "
                     f"'{layer}'), over the memory budget of {budget / 2**30:.1f} GiB; {advice}, "
                     f"or raise {LIMITS.describe('memory_budget_bytes')}")
