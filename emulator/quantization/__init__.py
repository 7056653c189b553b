"""The quantization toolchain, one step a module (the order of docs/numerics.md):

  keys         stored param keys and where a layer runs (Placement): the leaf every part imports
  config       per-layer configuration (precision mode, bias mode, groups), validated
  calibration  the calibration data checked against the network's inputs
  statistics   calibrated ranges from the float network
  folding      normalization folding into the next MAC layer
  clipping     forced ranges, activation and weight clipping
  dead_channels, equalization   function-preserving rewrites of the float params
  bias_correction               IBC after derivation
  finetune                      QFT: distillation through the fake-quant network (weights)
  derivation   placements, tensors and each layer kind's integer params; rederive_layer
  stored       read access to stored params (QParams)
  pipeline     run_quantization_from_np, the steps in order
Names resolve lazily: importing one module does not import the others (nor TensorFlow).
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "run_quantization_from_np": "pipeline", "stream_infos_dicts": "pipeline",
    "collect_statistics": "statistics", "check_calibration": "calibration",
    "derive_quantized_params": "derivation", "rederive_layer": "derivation",
    "Derivation": "derivation", "NUMERICS_VERSION": "derivation",
    "apply_config": "config", "layer_config": "config", "parse_precision_mode": "config",
    "LayerConfig": "config", "DEFAULTS": "config", "CONFIG_KEYS": "config",
    "qkey": "keys", "Placement": "keys",
    "fold_normalization": "folding",
    "equalize": "equalization", "activation_ranges": "equalization",
    "clean_dead_channels": "dead_channels",
    "correct_biases": "bias_correction", "BiasCorrectionReport": "bias_correction",
    "finetune": "finetune", "FinetuneReport": "finetune", "FinetuneOutOfDataError": "finetune",
    "QParams": "stored",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'emulator.quantization' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
