"""Keys of the stored quantized params and where each layer runs: the leaf every part of the
emulator imports (numpy only, nothing of the emulator), so nothing imports in a circle.

A stored param is "<net>/<layer>/<field>:0" (docs/numerics.md, "Stored parameters"). Every layer
has a "kind" field saying where it runs (`Placement`); it is stored by name ("chip", "host",
"folded"). HARs written before version 2 of the params store it as int32 0 / 1 / 2; loading
accepts both and keeps the names.
"""
from __future__ import annotations

import enum
import re
from typing import Any

import numpy as np

KEY_RE = re.compile(r"^([^/]+)/([^/]+)/([^/]+):0$")


def qkey(net: str, layer: str, field: str) -> str:
    """Key of a stored quantized param: "<net>/<layer>/<field>:0"."""
    return f"{net}/{layer}/{field}:0"


def split_key(key: Any) -> tuple[str, str, str] | None:
    """(net, layer, field) of a stored key, or None when it is not of that form."""
    m = KEY_RE.match(key) if isinstance(key, str) else None
    return m.groups() if m else None  # type: ignore[return-value]


class Placement(str, enum.Enum):
    """Where a layer of a quantized network runs (its stored "kind")."""

    CHIP = "chip"      # an on-chip layer: integer tensors and params
    HOST = "host"      # softmax / argmax (and the output layers after them): float32 on the host
    FOLDED = "folded"  # a normalization folded into the MAC layer after it: no tensor of its own

    @property
    def description(self) -> str:
        return {"chip": "on-chip layer", "host": "host op", "folded": "folded normalization"}[self.value]

    def stored(self) -> np.ndarray:
        """The array stored under the "kind" field."""
        return np.array(self.value)


# the int32 codes of HARs written before the names (numerics params version 1)
LEGACY_CODES = {0: Placement.CHIP, 1: Placement.HOST, 2: Placement.FOLDED}
KIND_DOC = "'chip' (on-chip layer), 'host' (softmax / argmax on the host) or 'folded' (folded normalization)"


def read_placement(value: Any) -> Placement:
    """The Placement of a stored "kind" value: a name, or a legacy int32 code. ValueError when it
    is neither (the load-time check reports it with the file and layer)."""
    a = np.asarray(value)
    if a.shape != ():
        raise ValueError(f"expected a scalar, found shape {list(a.shape)}")
    if a.dtype.kind == "U":
        try:
            return Placement(str(a))
        except ValueError:
            raise ValueError(f"expected {KIND_DOC}, found {str(a)!r}") from None
    if a.dtype == np.int32:
        code = int(a)
        if code in LEGACY_CODES:
            return LEGACY_CODES[code]
        raise ValueError(f"expected {KIND_DOC} (or a version 1 code 0, 1, 2), found {code}")
    raise ValueError(f"expected {KIND_DOC} as a string, found dtype {a.dtype}")


def upgrade_kinds(qp: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The params with every legacy int32 "kind" replaced by its name (in place; returned)."""
    for k, v in qp.items():
        parts = split_key(k)
        if parts and parts[2] == "kind" and np.asarray(v).dtype.kind != "U":
            qp[k] = read_placement(v).stored()
    return qp
