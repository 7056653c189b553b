"""The inter-layer tensors of a noise analysis, in one `.npz` for offline work.

Keys (bare layer names; arrays keep the batch axis first):
  input/<input layer>           the data analysed, float32
  native/<layer>                every layer's float output (fp-optimized params: the float
                                network the quantized one was derived from), float32
  quantized/<layer>             every layer's SdkNumeric output, dequantized, float32
  codes/<layer>                 the raw codes of every on-chip layer, uint8 / uint16
  local/<layer>                 (c) the layer's chip op fed the float inputs, dequantized
  local_ref/<layer>             its reference: the layer in float on the same inputs snapped to
                                the grids the chip reads
  alone/<layer>/<output>        (a) the model output with only that layer quantized
  alone_ref/<layer>/<output>    its reference: only that layer's inputs snapped, all float
  lerr/<output>                 the model output with the flagged layers kept float
  __meta__                      JSON (a 0-d unicode array): network, reference, outputs, and per
                                layer its type, quantization (scale, zero point, bits) and
                                whether it is analysed
Saved without pickles and written atomically; `load_tensors` refuses anything else by name.
"""
from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import EmulatorError

FORMAT = "hailo-toolkit noise-analysis tensors 1"


class TensorDumpError(EmulatorError, ValueError):
    """A tensor dump that cannot be read: the message names the file and what is wrong."""


@dataclass
class TensorDump:
    arrays: dict[str, np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def layers(self) -> list[str]:
        """Every layer, in topological order."""
        return list(self.meta.get("layers", {}))

    @property
    def outputs(self) -> list[str]:
        return list(self.meta.get("outputs", []))

    def layer_meta(self, layer: str) -> dict[str, Any]:
        return self.meta["layers"][layer]

    def _get(self, key: str) -> np.ndarray:
        try:
            return self.arrays[key]
        except KeyError:
            raise KeyError(f"the tensor dump has no '{key}'") from None

    def native(self, layer: str) -> np.ndarray:
        return self._get(f"native/{layer}")

    def quantized(self, layer: str) -> np.ndarray:
        return self._get(f"quantized/{layer}")

    def codes(self, layer: str) -> np.ndarray:
        return self._get(f"codes/{layer}")

    def local(self, layer: str) -> np.ndarray:
        return self._get(f"local/{layer}")

    def local_ref(self, layer: str) -> np.ndarray:
        return self._get(f"local_ref/{layer}")

    def alone(self, layer: str, output: str) -> np.ndarray:
        return self._get(f"alone/{layer}/{output}")

    def alone_ref(self, layer: str, output: str) -> np.ndarray:
        return self._get(f"alone_ref/{layer}/{output}")

    def lerr(self, output: str) -> np.ndarray:
        return self._get(f"lerr/{output}")

    def has(self, key: str) -> bool:
        return key in self.arrays

    def save(self, path: str | os.PathLike) -> None:
        """Write the dump to `path` (.npz, uncompressed: the tensors are floats and codes that
        do not compress much, and loading stays fast)."""
        from ..files import write_bytes

        buf = io.BytesIO()
        np.savez(buf, __meta__=np.array(json.dumps({"format": FORMAT, **self.meta})),
                 **self.arrays)
        write_bytes(path, buf.getvalue())


def load_tensors(path: str | os.PathLike) -> TensorDump:
    """A dump written by `TensorDump.save` (or `analyze_noise(..., dump=path)`)."""
    where = os.fspath(path)
    try:
        with np.load(where, allow_pickle=False) as z:
            if "__meta__" not in z.files:
                raise TensorDumpError(f"{where}: not a noise-analysis tensor dump (no __meta__ "
                                      f"entry); write one with analyze_noise(..., dump=PATH) or "
                                      f"`host-app analyze --dump PATH`")
            meta = json.loads(str(z["__meta__"]))
            arrays = {k: z[k] for k in z.files if k != "__meta__"}
    except FileNotFoundError:
        raise TensorDumpError(f"{where}: no such file") from None
    except TensorDumpError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise TensorDumpError(f"{where}: not a readable .npz tensor dump ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise TensorDumpError(f"{where}: __meta__ is not a '{FORMAT}' header; the file was not "
                              f"written by the noise analysis")
    meta.pop("format")
    return TensorDump(arrays, meta)
