"""The calibration data: checked against the network's inputs before anything runs (a failure
changes nothing). The FAQ's OutOfRange (fewer images than calib_num_batch * batch_size) and a
calibration array not shaped like the network's input are named errors with the fix."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..quant_errors import CalibrationOutOfRangeError, CalibrationShapeError, QuantizationConfigError


def check_calibration(runner: Any, np_array: Any, calib_num_batch: int, batch_size: int) -> dict[str, np.ndarray]:
    """Validate the calibration array(s) and return {input layer: float32 (n, ...)} with
    n = calib_num_batch * batch_size."""
    hn = runner.hn
    for name, v in (("calib_num_batch", calib_num_batch), ("batch_size", batch_size)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise QuantizationConfigError(f"{name} must be a positive int, got {v!r}")
    ins = hn.input_layers
    if isinstance(np_array, Mapping):
        data = {}
        for k, v in np_array.items():
            layer = hn.find(k) if isinstance(k, str) else None
            if layer is None or layer.type != "input_layer":
                raise CalibrationShapeError(f"calibration dict key '{k}' is not an input layer of "
                                            f"'{hn.name}' (inputs: {[l.name for l in ins]})")
            data[layer.name] = v
        missing = [l.name for l in ins if l.name not in data]
        if missing:
            raise CalibrationShapeError(f"no calibration data for input layer(s) {missing}")
    else:
        if len(ins) != 1:
            raise CalibrationShapeError(f"network '{hn.name}' has {len(ins)} inputs "
                                        f"{[l.name for l in ins]}; pass a dict")
        data = {ins[0].name: np_array}
    need = int(calib_num_batch) * int(batch_size)
    out = {}
    for l in ins:
        a = data[l.name]
        if not isinstance(a, np.ndarray):
            a = np.asarray(a)
        want = tuple(l.output_shape[1:])
        if a.ndim != len(want) + 1 or tuple(a.shape[1:]) != want:
            hint = ""
            if a.ndim == len(want) and tuple(a.shape) == want:
                hint = " (a single image: add the batch axis, np_array[None])"
            elif a.ndim == len(want) + 1 and a.ndim == 4 and tuple(a.shape[1:]) == (want[2], want[0], want[1]):
                hint = " (channels first: transpose to NHWC, np.transpose(x, (0, 2, 3, 1)))"
            raise CalibrationShapeError(
                f"calibration array for input layer '{l.name}' has shape {a.shape}, expected "
                f"(N, {', '.join(map(str, want))}){hint}")
        if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
            raise CalibrationShapeError(f"calibration array for '{l.name}' has dtype {a.dtype}; "
                                        f"expected real numbers (float32 pre-processed images)")
        if a.shape[0] < need:
            raise CalibrationOutOfRangeError(need, int(a.shape[0]), int(calib_num_batch), int(batch_size))
        a = np.asarray(a[:need], np.float32)
        if not np.all(np.isfinite(a)):
            raise CalibrationShapeError(f"calibration array for '{l.name}' holds NaN or inf")
        out[l.name] = a
    return out
