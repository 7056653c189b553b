"""HAR: one tar archive holding a runner's whole state (see docs/file-formats.md).

Members (uncompressed tar, in this order):
  hn.json              the HN
  native.npz           native params (absent if never loaded)
  fp_optimized.npz     fp-optimized params (absent while None)
  quantized.npz        quantized params, opaque here, stored and restored byte for byte
                       (dtype, shape, bytes, key order); absent while None
  model_script.alls    the model script text (may be empty)
  stream_infos.json    list of dicts, or null
  metadata.json        {"har_format": 1, "tool", "tool_version", "created", "network",
                        "metadata": runner.metadata}
ClientRunner(har=path) restores every attribute exactly; the tool / creation fields go to
runner.har_info.
"""
from __future__ import annotations

import datetime
import io
import json
import os
import tarfile
import time
from typing import Any

HAR_FORMAT = 1
TOOL = "hailo-toolkit emulator"


def _tool_version() -> str:
    try:
        import importlib.metadata

        return importlib.metadata.version("hailo-toolkit")
    except Exception:  # running from a source tree that is not installed
        return "0.1.0+source"


def _add(tar: tarfile.TarFile, name: str, data: bytes, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(mtime)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def save_har(runner: Any, path: str | os.PathLike) -> None:
    from .npz import npz_bytes

    now = time.time()
    meta = {
        "har_format": HAR_FORMAT, "tool": TOOL, "tool_version": _tool_version(),
        "created": datetime.datetime.fromtimestamp(now, datetime.timezone.utc).isoformat(),
        "network": runner.hn.name, "metadata": runner.metadata,
    }
    try:
        meta_bytes = json.dumps(meta, indent=2, sort_keys=False).encode()
    except TypeError as e:
        raise TypeError(f"runner.metadata must be JSON-serializable to save a HAR: {e}") from None
    tmp = f"{os.fspath(path)}.tmp{os.getpid()}"
    try:
        with tarfile.open(tmp, "w") as tar:
            _add(tar, "hn.json", runner.hn.to_json().encode(), now)
            if runner.native_params is not None:
                _add(tar, "native.npz", npz_bytes(runner.native_params), now)
            if runner.fp_optimized_params is not None:
                _add(tar, "fp_optimized.npz", npz_bytes(runner.fp_optimized_params), now)
            if runner.quantized_params is not None:
                _add(tar, "quantized.npz", npz_bytes(runner.quantized_params), now)
            _add(tar, "model_script.alls", (runner.model_script or "").encode(), now)
            _add(tar, "stream_infos.json", json.dumps(runner.stream_infos, indent=2).encode(), now)
            _add(tar, "metadata.json", meta_bytes, now)
        os.replace(tmp, path)  # never leave a half-written HAR under the final name
    finally:
        if os.path.exists(tmp):  # a failed write (e.g. path is a directory) leaves nothing behind
            os.remove(tmp)


def load_har(runner: Any, path: str | os.PathLike) -> None:
    """Fill `runner` from a HAR (validating the HN and the native params against it)."""
    from .errors import HarError
    from .hn import HNGraph
    from .npz import load_params, read_npz

    try:
        with tarfile.open(path, "r") as tar:
            members = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    except FileNotFoundError:
        raise HarError(f"HAR '{path}' does not exist") from None
    except (tarfile.TarError, OSError) as e:
        raise HarError(f"'{path}' is not a readable HAR (tar) archive: {e}") from None
    for need in ("hn.json", "metadata.json"):
        if need not in members:
            raise HarError(f"HAR '{path}' has no '{need}' (members: {sorted(members)}); was it "
                           f"written by ClientRunner.save_har?")
    try:
        meta = json.loads(members["metadata.json"])
    except json.JSONDecodeError as e:
        raise HarError(f"HAR '{path}': metadata.json is not valid JSON: {e}") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("har_format", 0), int) \
            or not isinstance(meta.get("metadata", {}), dict):
        raise HarError(f"HAR '{path}': metadata.json must be an object with an integer "
                       f"'har_format' and a 'metadata' object; was it written by ClientRunner.save_har?")
    if meta.get("har_format", 0) > HAR_FORMAT:
        raise HarError(f"HAR '{path}' has format {meta.get('har_format')}, newer than this tool "
                       f"reads ({HAR_FORMAT}); upgrade the toolkit")
    runner.hn = HNGraph.from_json(members["hn.json"], source=f"{path}:hn.json")
    if "native.npz" in members:
        runner.native_params = load_params(runner.hn, members["native.npz"])
    if "fp_optimized.npz" in members:
        runner.fp_optimized_params = load_params(runner.hn, members["fp_optimized.npz"])
    if "quantized.npz" in members:
        runner.quantized_params = read_npz(members["quantized.npz"])
    try:
        runner.model_script = members.get("model_script.alls", b"").decode("utf-8")
    except UnicodeDecodeError as e:
        raise HarError(f"HAR '{path}': model_script.alls is not UTF-8 text: {e}") from None
    try:
        runner.stream_infos = json.loads(members.get("stream_infos.json", b"null"))
    except json.JSONDecodeError as e:
        raise HarError(f"HAR '{path}': stream_infos.json is not valid JSON: {e}") from None
    runner.metadata = meta.get("metadata", {})
    runner.har_info = {k: v for k, v in meta.items() if k != "metadata"}
