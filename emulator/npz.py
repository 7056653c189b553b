"""Native params (NPZ): load, validate against the HN, save.

Keys are "<net>/<layer>/<name>:0" (see docs/file-formats.md):
  kernel:0  conv HWIO [kh, kw, cin/groups, cout]; dw [kh, kw, cin, multiplier];
            deconv [kh, kw, cin, cout]; dense [cin, cout]
  bias:0    [cout] (conv / dw / deconv / dense)
  alpha:0   [C] per-channel PReLU slopes (any layer whose activation is prelu)
  mean:0, std:0   [C] normalization layers: y = (x - mean) / std
Everything is float32. A missing key, a wrong shape, a non-finite value or a key of no layer is a
ParamsError naming the key, the expected and the actual shape.
"""
from __future__ import annotations

import io
import os
from typing import Any, Mapping

import numpy as np

from .errors import ParamsError
from .hn import MAC_TYPES, HNGraph, Layer


def expected_params(layer: Layer) -> dict[str, tuple[int, ...]]:
    """Bare param key -> shape the layer needs."""
    p = layer.params
    out: dict[str, tuple[int, ...]] = {}
    if layer.type in MAC_TYPES:
        k = tuple(int(d) for d in p["kernel_shape"])
        out["kernel"] = k
        cout = k[2] * k[3] if layer.type == "dw" else k[-1]
        out["bias"] = (cout,)
    if p.get("activation") == "prelu":
        out["alpha"] = (int(layer.output_shape[-1]),)
    if layer.type == "normalization":
        c = int(layer.output_shape[-1])
        out["mean"] = (c,)
        out["std"] = (c,)
    return out


def read_npz(path_or_bytes: str | os.PathLike | bytes) -> dict[str, np.ndarray]:
    """All arrays of an .npz file (path or bytes), keys as stored, values loaded eagerly."""
    src = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, (bytes, bytearray)) else path_or_bytes
    try:
        with np.load(src, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise ParamsError(f"params file '{path_or_bytes}' does not exist") from None
    except (OSError, ValueError) as e:
        where = "params data" if isinstance(path_or_bytes, (bytes, bytearray)) else f"'{path_or_bytes}'"
        raise ParamsError(f"{where} is not a readable .npz file: {e}") from None


def npz_bytes(params: Mapping[str, np.ndarray]) -> bytes:
    """Serialize to .npz bytes (uncompressed; dtypes and bytes kept as they are)."""
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in params.items()})
    return buf.getvalue()


def save_npz(path: str | os.PathLike, params: Mapping[str, np.ndarray]) -> None:
    with open(path, "wb") as f:
        f.write(npz_bytes(params))


def validate_params(hn: HNGraph, params: Mapping[str, Any], source: str = "params") -> dict[str, np.ndarray]:
    """Check params against the HN and return them as float32 arrays (scoped keys).

    Accepts scoped keys ("<net>/<layer>/kernel:0") or keys without the net prefix
    ("<layer>/kernel:0"); returns scoped keys.
    """
    out: dict[str, np.ndarray] = {}
    prefix = hn.name + "/"
    for key, v in params.items():
        full = key if key.startswith(prefix) else prefix + key
        parts = full[len(prefix):].split("/")
        if len(parts) != 2 or not parts[1].endswith(":0"):
            raise ParamsError(f"{source}: key '{key}' is not '<net>/<layer>/<param>:0'")
        if parts[0] not in hn.layers:
            raise ParamsError(f"{source}: key '{key}' names layer '{parts[0]}', which is not in "
                              f"network '{hn.name}'; are these the params of another network?")
        out[full] = v
    checked: dict[str, np.ndarray] = {}
    for layer in hn.layers.values():
        for name, shape in expected_params(layer).items():
            key = f"{prefix}{layer.name}/{name}:0"
            if key not in out:
                raise ParamsError(f"{source}: missing '{key}' (expected shape {list(shape)}) for "
                                  f"{layer.type} layer '{layer.name}'")
            arr = np.asarray(out.pop(key))
            if tuple(arr.shape) != shape:
                raise ParamsError(f"{source}: '{key}' has shape {list(arr.shape)}, expected "
                                  f"{list(shape)} for {layer.type} layer '{layer.name}'")
            if not np.issubdtype(arr.dtype, np.floating):
                raise ParamsError(f"{source}: '{key}' has dtype {arr.dtype}, expected float32")
            arr = arr.astype(np.float32)
            if not np.all(np.isfinite(arr)):
                raise ParamsError(f"{source}: '{key}' holds NaN or inf values")
            if name == "std" and np.any(arr == 0):
                raise ParamsError(f"{source}: '{key}' has zeros; a normalization std must be non-zero")
            checked[key] = arr
    if out:
        k = sorted(out)[0]
        raise ParamsError(f"{source}: key '{k}' is not a param of layer '{k.split('/')[1]}' "
                          f"({hn.layer(k.split('/')[1]).type}); expected only "
                          f"{sorted(expected_params(hn.layer(k.split('/')[1])))}")
    return checked


def load_params(hn: HNGraph, path_or_dict: Any) -> dict[str, np.ndarray]:
    """Read (if a path or bytes) and validate native params for `hn`."""
    if isinstance(path_or_dict, Mapping):
        return validate_params(hn, path_or_dict)
    source = "params data" if isinstance(path_or_dict, (bytes, bytearray)) else f"'{path_or_dict}'"
    return validate_params(hn, read_npz(path_or_dict), source)


def layer_params(hn: HNGraph, params: Mapping[str, np.ndarray], name: str) -> dict[str, np.ndarray]:
    """Bare-key view of one layer's params ({"kernel": ..., "bias": ...})."""
    layer = hn.layer(name)
    prefix = f"{hn.name}/{layer.name}/"
    return {k[len(prefix):-2]: v for k, v in params.items() if k.startswith(prefix)}
