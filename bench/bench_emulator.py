"""Emulator throughput on real networks, every target and its peers in the same run.

For FER (mini-Xception) and MTCNN-ONet at batch 32, images per second of:
  keras        model.predict (the source model, float32)
  native       runner.infer(SdkNative())       float emulation (one tf.function)
  quantized    runner.infer(SdkQuantized())    fake-quant, exact grids, differentiable
  numeric      runner.infer(SdkNumeric())      the chip, bit-exact integers
  tflite-ref   TFLite full-int8 model, BUILTIN_REF kernels (TensorFlow's reference numerics)
  tflite       the same model, default kernels (XNNPACK / optimized)
and the ratios numeric / native (target: >= 1/3) and numeric / tflite-ref (target: > 1).
Each number is the median of `--repeats` timed passes over `--images` real images (after a
warm-up pass). Not a test: no pass/fail, the targets are printed next to the ratios.

    python bench/bench_emulator.py [--images 256] [--repeats 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import data_sources as ds  # noqa: E402

BATCH = 32


def rate(fn, n_images: int, repeats: int) -> float:
    fn()  # warm-up (tracing, allocation)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return n_images / statistics.median(times)


class _quiet_fd:
    """Silence a file descriptor (the TFLite converter prints its graph on stdout)."""

    def __init__(self, fd: int):
        self.fd = fd

    def __enter__(self):
        sys.stdout.flush()
        self.saved = os.dup(self.fd)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self.fd)
        os.close(devnull)

    def __exit__(self, *exc):
        sys.stdout.flush()
        os.dup2(self.saved, self.fd)
        os.close(self.saved)


def tflite_int8(model, calib: np.ndarray) -> bytes:
    """Full-int8 post-training quantization (per-channel weights, TFLite's default)."""
    with _quiet_fd(1), _quiet_fd(2):
        return _tflite_int8(model, calib)


def _tflite_int8(model, calib: np.ndarray) -> bytes:
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([calib[i:i + 1]] for i in range(len(calib)))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv.convert()


def tflite_runner(blob: bytes, reference: bool):
    import tensorflow as tf

    kind = tf.lite.experimental.OpResolverType
    import warnings

    warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
    interp = tf.lite.Interpreter(model_content=blob, num_threads=os.cpu_count(),
                                 experimental_op_resolver_type=kind.BUILTIN_REF if reference
                                 else kind.AUTO)
    inp = interp.get_input_details()[0]
    interp.resize_tensor_input(inp["index"], [BATCH, *inp["shape"][1:]])
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    scale, zp = inp["quantization"]
    outs = [o["index"] for o in interp.get_output_details()]

    def run(x: np.ndarray):
        res = []
        for s in range(0, len(x), BATCH):
            q = np.clip(np.round(x[s:s + BATCH] / scale + zp), -128, 127).astype(np.int8)
            interp.set_tensor(inp["index"], q)
            interp.invoke()
            res.append([interp.get_tensor(o) for o in outs])
        return res

    return run


def bench(name: str, model, calib: np.ndarray, x: np.ndarray, repeats: int, **parse_kw) -> dict:
    from emulator import SdkNative, SdkNumeric, SdkQuantized, parse_keras, run_quantization_from_np

    runner = parse_keras(model, net_name=name, **parse_kw)
    run_quantization_from_np(runner, calib, calib_num_batch=len(calib) // BATCH, batch_size=BATCH)
    n = len(x)
    res = {"keras": rate(lambda: model.predict(x, batch_size=BATCH, verbose=0), n, repeats)}
    for label, target in (("native", SdkNative()), ("quantized", SdkQuantized()), ("numeric", SdkNumeric())):
        res[label] = rate(lambda: runner.infer(target, x, batch_size=BATCH), n, repeats)
    blob = tflite_int8(model, calib)
    res["tflite-ref"] = rate(lambda r=tflite_runner(blob, True): r(x), n, max(1, repeats // 2))
    res["tflite"] = rate(lambda r=tflite_runner(blob, False): r(x), n, repeats)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    import tensorflow as tf

    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPU threads, batch {BATCH}, "
          f"{a.images} real images per pass, median of {a.repeats}")
    cases = [
        ("fer", ds.fer_model(), ds.fer_inputs(64, seed=4), ds.fer_inputs(a.images, seed=11)),
        ("onet", ds.mtcnn_net("onet"), ds.mtcnn_inputs(64, (48, 48), seed=3),
         ds.mtcnn_inputs(a.images, (48, 48), seed=12)),
    ]
    cols = ["keras", "native", "quantized", "numeric", "tflite-ref", "tflite"]
    print(f"{'network':8s}" + "".join(f"{c:>12s}" for c in cols) + "   (images/s)")
    rows = {}
    for name, model, calib, x in cases:
        rows[name] = r = bench(name, model, calib, x, a.repeats)
        print(f"{name:8s}" + "".join(f"{r[c]:12.0f}" for c in cols), flush=True)
    print()
    for name, r in rows.items():
        print(f"{name}: numeric/native {r['numeric'] / r['native']:.2f}x (target >= 0.33), "
              f"numeric/tflite-ref {r['numeric'] / r['tflite-ref']:.1f}x (target > 1), "
              f"numeric/tflite {r['numeric'] / r['tflite']:.2f}x, numeric/keras "
              f"{r['numeric'] / r['keras']:.2f}x, quantized/native {r['quantized'] / r['native']:.2f}x")


if __name__ == "__main__":
    main()
