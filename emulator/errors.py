"""Exceptions of the float half of the emulator (HN, params, importers, runner, HAR).

Every message names the file, layer, key or op involved and says what to do. The quantization
toolchain defines its own exceptions (from the seed's FAQ) in its own module, deriving from
`EmulatorError` so a caller can catch both families at once.
"""
from __future__ import annotations


class EmulatorError(Exception):
    """Base of every error the emulator raises on purpose."""


class HNError(EmulatorError, ValueError):
    """A malformed HN: unknown layer type or param, dangling edge, shape mismatch, cycle.
    The message names the layer and what is wrong."""


class ParamsError(EmulatorError, ValueError):
    """Native params that do not fit the HN: missing key, wrong shape or dtype, unknown key."""


class UnsupportedOpError(EmulatorError, NotImplementedError):
    """An op of the source model that the importer cannot map onto HN layers.

    Attributes: `op` (the source op or layer class), `node` (its name in the source model),
    `source` (file or model name)."""

    def __init__(self, op: str, node: str, source: str = "", advice: str = ""):
        self.op, self.node, self.source = op, node, source
        where = f" in {source}" if source else ""
        msg = f"unsupported op {op} at node '{node}'{where}"
        if advice:
            msg += f": {advice}"
        super().__init__(msg)


class ModelImportError(EmulatorError, ValueError):
    """A source model that cannot be parsed as a whole (unreadable file, dynamic shapes...)."""


class HarError(EmulatorError, ValueError):
    """A HAR archive that is unreadable or lacks a member."""


class NotQuantizedError(EmulatorError, RuntimeError):
    """A quantized target was asked for on a runner without quantized params."""

    def __init__(self, target: str):
        super().__init__(
            f"target {target} needs quantized params, and this runner has none: run "
            f"run_quantization_from_np(runner, calib_images, ...) first, or load a HAR saved "
            f"after quantization (ClientRunner(har=path))")


class NoParamsError(EmulatorError, RuntimeError):
    """Inference asked of a runner whose native params were never loaded."""

    def __init__(self, net: str):
        super().__init__(
            f"network '{net}' has no native params: call runner.load_params('net.npz') "
            f"(or parse the model with parse_keras / parse_tflite, which loads them)")


class InferenceInputError(EmulatorError, ValueError):
    """Data given to inference that does not fit the network or the call: a missing input, codes
    of the wrong type, a tensor that is not on the chip, a batch size below 1."""


class RunnerUsageError(EmulatorError, ValueError):
    """A ClientRunner method called with arguments it does not take (both or neither of hn= and
    har=, an unknown params stage, a str where a path must be a pathlib.Path...)."""
