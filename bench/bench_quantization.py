"""Quantization accuracy of our flows against TFLite's post-training quantization, one run.

For FER (mini-Xception, 64x64x1 faces and photo crops), MTCNN-ONet (48x48x3 crops) and the
MobileNet-style net of tests/mobilenet_style.py (28x28x1 MNIST digits), every flow is calibrated
with the SAME 64 real images and evaluated on the same held-out real images (disjoint from the
calibration set; checked). Each row compares a quantized network's outputs with the float
reference, SdkNative (checked against Keras first):

  SNR      10 log10(sum ref^2 / sum (ref - q)^2) in dB (emulator.analysis.metrics.snr_db);
           on a network with several outputs (ONet: bbox, landmarks, prob) the worst output,
           and each output's at the end of the row
  cos      cosine similarity (the worst output)
  top-1    share of held-out images whose argmax agrees with the reference's (FER: the 7
           emotions; ONet: face / not face; MobileNet-style: the 10 digits)
  acc      top-1 accuracy against the true labels (MobileNet-style only: MNIST has labels)
  SNR fq   SNR of SdkQuantized (fake-quant, what QFT trains through); the other columns are
           SdkNumeric, the bit-exact chip
  quant s  seconds of run_quantization_from_np (our flows) / of the TFLite conversion

Our flows (a fresh runner each, parsed from the same HN and native params):
  a8_w8                   run_quantization_from_np(runner, calib, 2, 32)
  a8_w8 +eq               equalize=True
  a8_w8 +eq +IBC          equalize=True, ibc=True
  a8_w8 +eq +IBC +b16     the same, config={"*": {"bias_mode": "double_scale_initialization"}}
  a8_w8 +eq +QFT          equalize=True, finetune=True: QFT (weights and biases) on the same 64
                          calibration images (dataset_size 64, 8 epochs of 16, the default
                          learning rate 1e-4: 1e-3 diverges on these 8-bit networks)
  ... +margin             the same with config={"output_layer*": {"range_margin": 2}}: one bit
                          of headroom on the outputs (docs/model-script.md), for the values of
                          held-out images beyond the calibrated range
  ... +clip               the same with every layer's activation range clipped to the
                          0.001 / 99.999 percentiles of its calibration values
  a16_w16 (+IBC)          config={"*": {"precision_mode": "a16_w16", "bias_mode":
                          "double_scale_initialization"}} (and ibc=True)
TFLite (TFLiteConverter.from_keras_model, representative_dataset = the same 64 images, float
input / output kept, run by the TFLite interpreter on the held-out images):
  tflite int8 per-ch      full-integer int8, per-channel weights (TFLite's default)
  tflite int8 per-tensor  the same with converter._experimental_disable_per_channel = True
  tflite 16x8             EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
  tflite 16x8 +float ops  only when 16x8 alone refuses the model (ONet: PReLU has no 16x8
                          kernel): the same plus TFLITE_BUILTINS, those ops stay float

Goals, printed beside the numbers: our best a8_w8 flow (per-tensor weights) >= TFLite
per-channel int8 + 3 dB; our best a16_w16 flow >= TFLite 16x8 + 10 dB; equalization + IBC on
FER with 64 images in under 60 s on 2 cores; SdkQuantized images/s >= SdkNumeric images/s (every
network, batch 32, median of --repeats passes over the held-out images, the two timed in turns
so that a shared machine's load falls on both alike), printed with the images/s of a QFT
training step on the same network.
A flow whose step does not exist yet prints "n/a (not available)"; a flow that fails prints its
error and the run goes on. Not a test: no pass / fail.

    python bench/bench_quantization.py [--images 256] [--repeats 3] [--nets fer,onet,mobilenet]
    python bench/bench_quantization.py --quick        # 32 held-out images, FER and ONet only
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import os
import sys
import time
import warnings

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import data_sources as ds  # noqa: E402
from bench_emulator import _quiet_fd, alternating_rates, qft_step_rate  # noqa: E402

N_CALIB = 64
BATCH = 32
FER_MAX_HELD_OUT = 2 * 100 - N_CALIB  # fer_inputs is half lfw faces and lfw_subset has 100: all distinct

BIAS16 = {"*": {"bias_mode": "double_scale_initialization"}}
A16 = {"*": {"precision_mode": "a16_w16", "bias_mode": "double_scale_initialization"}}
MARGIN = {"output_layer*": {"range_margin": 2}}
CLIP = {"*": {"activation_clipping": {"mode": "percentile", "values": [0.001, 99.999]}}}
QFT = {"equalize": True, "finetune": True, "finetune_options": {
    "dataset_size": N_CALIB, "epochs": 8, "batch_size": 16}}

# (label, run_quantization_from_np keyword arguments, family)
FLOWS = [
    ("a8_w8", {}, "a8"),
    ("a8_w8 +eq", {"equalize": True}, "a8"),
    ("a8_w8 +eq +IBC", {"equalize": True, "ibc": True}, "a8"),
    ("a8_w8 +eq +IBC +b16", {"equalize": True, "ibc": True, "config": BIAS16}, "a8"),
    ("a8_w8 +eq +QFT", QFT, "a8"),
    ("a8_w8 +eq +IBC +b16 +margin", {"equalize": True, "ibc": True, "config": {**BIAS16, **MARGIN}}, "a8"),
    ("a8_w8 +eq +QFT +margin", {**QFT, "config": MARGIN}, "a8"),
    ("a8_w8 +eq +IBC +b16 +clip", {"equalize": True, "ibc": True, "config": {**BIAS16, **CLIP}}, "a8"),
    ("a16_w16", {"config": A16}, "a16"),
    ("a16_w16 +IBC", {"ibc": True, "config": A16}, "a16"),
    ("a16_w16 +margin", {"config": {**A16, **MARGIN}}, "a16"),
]
TFLITE = [("tflite int8 per-ch", "int8"), ("tflite int8 per-tensor", "int8-per-tensor"),
          ("tflite 16x8", "16x8")]
FALLBACK_16X8 = "tflite 16x8 +float ops"  # only when 16x8 alone refuses the model


# --- data: the same 64 calibration images for every flow, disjoint held-out images -------------

def _digest(a: np.ndarray) -> set[bytes]:
    return {hashlib.sha1(np.ascontiguousarray(x).tobytes()).digest() for x in a}


def _split(x: np.ndarray, n_eval: int) -> tuple[np.ndarray, np.ndarray]:
    """The first N_CALIB images for calibration, the next n_eval held out."""
    return x[:N_CALIB], x[N_CALIB:N_CALIB + n_eval]


def load_cases(nets: list[str], n_eval: int) -> list[dict]:
    cases = []
    for net in nets:
        labels = None
        if net == "fer":
            n = min(n_eval, FER_MAX_HELD_OUT)
            if n < n_eval:
                print(f"fer: {n} held-out images (not {n_eval}): lfw_subset has 100 faces, and FER's "
                      f"set is half faces", flush=True)
            # one fixed pool of 200 (the 100 lfw faces, 100 distinct photo crops), shuffled with a
            # fixed seed: the calibration set does not depend on --images
            model, pool = ds.fer_model(), ds.fer_inputs(200, seed=21)
            calib, x = _split(pool[np.random.default_rng(21).permutation(len(pool))], n)
            case = dict(name="fer", what="FER mini-Xception, 64x64x1", top1_dim=7)
        elif net == "onet":
            model = ds.mtcnn_net("onet")
            # seeded crops come in a fixed order (cycling through the photos): the first 64 are
            # the same whatever n_eval is
            calib, x = _split(ds.mtcnn_inputs(N_CALIB + n_eval, (48, 48), seed=22), n_eval)
            case = dict(name="onet", what="MTCNN O-Net, 48x48x3", top1_dim=2)
        elif net == "mobilenet":
            from mobilenet_style import accuracy, mobilenet_style_model

            t = time.perf_counter()
            model, x_train, _, x_test, y_test = mobilenet_style_model()
            print(f"mobilenet: trained in {time.perf_counter() - t:.1f} s, float test accuracy "
                  f"{accuracy(model, x_test, y_test):.4f} on {len(y_test)} digits", flush=True)
            calib, x, labels = np.array(x_train[:N_CALIB]), np.array(x_test[:n_eval]), y_test[:n_eval]
            case = dict(name="mobilenet", what="MobileNet-style (MNIST), 28x28x1", top1_dim=10)
        else:
            raise SystemExit(f"unknown network {net!r}: fer, onet, mobilenet")
        if _digest(calib) & _digest(x):
            raise SystemExit(f"{net}: calibration and held-out images overlap")
        case.update(model=model, calib=calib, x=x, labels=labels)
        cases.append(case)
    return cases


# --- metrics over a network's outputs ---------------------------------------------------------

def metrics(ref: dict, out: dict, top1_key: str, labels) -> dict:
    from emulator.analysis.metrics import cosine_similarity, snr_db, top1_agreement

    per = [snr_db(ref[k], out[k]) for k in ref]
    res = {"snr": min(per), "per_output": per,
           "cos": min(cosine_similarity(ref[k], out[k]) for k in ref),
           "top1": top1_agreement(ref[top1_key], out[top1_key])}
    if labels is not None:
        res["acc"] = float(np.mean(np.argmax(out[top1_key], axis=-1) == labels))
    return res


def match_outputs(ref: dict, outs: list[np.ndarray]) -> dict:
    """Outputs of another framework matched to the reference's output layers by shape."""
    res = {}
    for k, v in ref.items():
        same = [o for o in outs if o.shape == v.shape]
        if len(same) != 1:
            raise RuntimeError(f"cannot match output {k} {v.shape} among {[o.shape for o in outs]}")
        res[k] = same[0]
    return res


# --- our flows ---------------------------------------------------------------------------------

class NotAvailable(Exception):
    pass


def quantize_flow(base, calib: np.ndarray, kwargs: dict):
    """A fresh runner quantized with `kwargs`; (runner, seconds of run_quantization_from_np)."""
    from emulator import ClientRunner, run_quantization_from_np
    from emulator.quant_errors import QuantizationConfigError

    runner = ClientRunner(hn=base.hn.to_dict())
    runner.load_params(base.native_params)
    t = time.perf_counter()
    try:
        run_quantization_from_np(runner, calib, calib_num_batch=N_CALIB // BATCH, batch_size=BATCH,
                                 **kwargs)
    except (ImportError, NotImplementedError) as e:
        raise NotAvailable(f"{type(e).__name__}: {e}") from None
    except QuantizationConfigError as e:
        if "not available" in str(e):
            raise NotAvailable(str(e).split(";")[0]) from None
        raise
    return runner, time.perf_counter() - t


# --- TFLite -------------------------------------------------------------------------------------

def tflite_convert(model, calib: np.ndarray, mode: str) -> bytes:
    import tensorflow as tf

    with _quiet_fd(1), _quiet_fd(2):
        conv = tf.lite.TFLiteConverter.from_keras_model(model)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([calib[i:i + 1]] for i in range(len(calib)))
        if mode.startswith("16x8"):
            conv.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
            if mode == "16x8+float":  # ops without a 16x8 kernel stay float
                conv.target_spec.supported_ops.append(tf.lite.OpsSet.TFLITE_BUILTINS)
        else:
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if mode == "int8-per-tensor":
            conv._experimental_disable_per_channel = True
        # inference_input_type / inference_output_type stay float32: the outputs compare directly
        return conv.convert()


def tflite_infer(blob: bytes, x: np.ndarray) -> list[np.ndarray]:
    with _quiet_fd(2):  # "Created TensorFlow Lite XNNPACK delegate"
        return _tflite_infer(blob, x)


def _tflite_infer(blob: bytes, x: np.ndarray) -> list[np.ndarray]:
    import tensorflow as tf

    warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
    interp = tf.lite.Interpreter(model_content=blob, num_threads=os.cpu_count())
    inp = interp.get_input_details()[0]
    interp.resize_tensor_input(inp["index"], [len(x), *inp["shape"][1:]])
    interp.allocate_tensors()
    interp.set_tensor(inp["index"], x.astype(np.float32))
    interp.invoke()
    return [np.array(interp.get_tensor(o["index"])) for o in interp.get_output_details()]


# --- one network --------------------------------------------------------------------------------

def fmt_row(label: str, r: dict) -> str:
    if "na" in r:
        return f"  {label:28s} {r['na']}"

    def f(v, spec):
        return "-" if v is None else format(v, spec)

    per = r.get("per_output") or []
    return (f"  {label:28s}{f(r.get('snr'), '8.2f')}{f(r.get('cos'), '10.5f')}{f(r.get('top1'), '8.3f')}"
            f"{f(r.get('acc'), '8.3f'):>8s}{f(r.get('snr_fq'), '8.2f'):>8s}{f(r.get('seconds'), '9.1f'):>9s}"
            + ("   " + " / ".join(f"{v:.1f}" for v in per) if len(per) > 1 else ""))


def header(n_outputs: int) -> str:
    return (f"  {'flow':28s}{'SNR dB':>8s}{'cos':>10s}{'top-1':>8s}{'acc':>8s}{'SNR fq':>8s}{'quant s':>9s}"
            + ("   SNR dB of each output" if n_outputs > 1 else ""))


def bench_net(case: dict, repeats: int, throughput: bool) -> dict:
    from emulator import SdkNative, SdkNumeric, SdkQuantized, parse_keras
    from emulator.analysis.metrics import snr_db
    from emulator.errors import EmulatorError

    name, model, calib, x, labels = case["name"], case["model"], case["calib"], case["x"], case["labels"]
    base = parse_keras(model, net_name=name)
    ref = base.infer(SdkNative(), x, batch_size=BATCH)
    keras_out = model.predict(x, batch_size=BATCH, verbose=0)
    keras_out = match_outputs(ref, [np.asarray(o) for o in (keras_out if isinstance(keras_out, (list, tuple))
                                                             else [keras_out])])
    top1_key = next(k for k, v in ref.items() if v.shape[-1] == case["top1_dim"])
    print(f"\n{name}: {case['what']}; {len(calib)} calibration + {len(x)} held-out real images; "
          f"outputs {', '.join(f'{k} {list(v.shape[1:])}' for k, v in ref.items())}; SdkNative vs "
          f"Keras {min(snr_db(keras_out[k], ref[k]) for k in ref):.1f} dB", flush=True)
    if labels is not None:
        print(f"  float (SdkNative) accuracy on the held-out digits: "
              f"{np.mean(np.argmax(ref[top1_key], -1) == labels):.3f}", flush=True)
    print(header(len(ref)), flush=True)
    rows: dict = {}
    basic = None
    for label, kwargs, family in FLOWS:
        try:
            runner, secs = quantize_flow(base, calib, kwargs)
            r = metrics(ref, runner.infer(SdkNumeric(), x, batch_size=BATCH), top1_key, labels)
            fq = runner.infer(SdkQuantized(), x, batch_size=BATCH)
            r["snr_fq"] = metrics(ref, fq, top1_key, None)["snr"]
            r["seconds"] = secs
            if basic is None and not kwargs:
                basic = runner
        except NotAvailable as e:
            r = {"na": "n/a (not available)", "why": str(e)}
        except EmulatorError as e:
            r = {"na": f"failed: {type(e).__name__}: {str(e).splitlines()[0][:150]}"}
        r["family"] = family
        rows[label] = r
        print(fmt_row(label, r), flush=True)
    tflite = list(TFLITE)
    for label, mode in tflite:
        try:
            t = time.perf_counter()
            blob = tflite_convert(model, calib, mode)
            secs = time.perf_counter() - t
            r = metrics(ref, match_outputs(ref, tflite_infer(blob, x)), top1_key, labels)
            r["seconds"] = secs
        except Exception as e:  # noqa: BLE001  (a converter that refuses a model is a result)
            r = {"na": f"failed: {type(e).__name__}: {str(e).splitlines()[0][:150] if str(e) else ''}"}
            if mode == "16x8":
                tflite.append((FALLBACK_16X8, "16x8+float"))
        r["family"] = "tflite"
        rows[label] = r
        print(fmt_row(label, r), flush=True)
    res = {"rows": rows}
    if throughput and basic is not None:
        ips = alternating_rates({"quantized": lambda: basic.infer(SdkQuantized(), x, batch_size=BATCH),
                                 "numeric": lambda: basic.infer(SdkNumeric(), x, batch_size=BATCH)},
                                len(x), repeats)
        res["quantized_ips"], res["numeric_ips"] = ips["quantized"], ips["numeric"]
        res["qft_step_ips"] = qft_step_rate(basic, np.concatenate([calib, x]))
        print(f"  throughput (a8_w8 runner, batch {BATCH}, {len(x)} images, median of {repeats}, in turns): "
              f"SdkQuantized {res['quantized_ips']:.0f} img/s, SdkNumeric {res['numeric_ips']:.0f} img/s; "
              f"a QFT training step {res['qft_step_ips']:.0f} img/s", flush=True)
    goals(name, res)
    return res


def _best(rows: dict, family: str):
    got = [(r["snr"], k) for k, r in rows.items() if r.get("family") == family and "snr" in r]
    return max(got) if got else None


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def goals(name: str, res: dict) -> None:
    rows = res["rows"]
    best8, best16 = _best(rows, "a8"), _best(rows, "a16")
    x16_label = "tflite 16x8" if "snr" in rows["tflite 16x8"] else FALLBACK_16X8
    print(f"  goals ({name}; SNR of the worst output):")
    for best, peer, goal in ((best8, "tflite int8 per-ch", 3.0), (best16, x16_label, 10.0)):
        p = rows.get(peer, {})
        if not best or "snr" not in p:
            print(f"    best {'a8_w8' if goal == 3 else 'a16_w16'} vs {peer}: n/a")
            continue
        d = best[0] - p["snr"]
        per = ""
        if len(p["per_output"]) > 1:
            per = ", each output " + " / ".join(
                f"{a - b:+.1f}" for a, b in zip(rows[best[1]]["per_output"], p["per_output"]))
        print(f"    best {best[1]} {best[0]:.2f} dB vs {peer} {p['snr']:.2f} dB: {d:+.2f} dB{per} "
              f"(goal >= +{goal:.0f} dB: {_verdict(d >= goal)})")
    eq_ibc = rows.get("a8_w8 +eq +IBC", {})
    if name == "fer":
        if "seconds" in eq_ibc:
            s = eq_ibc["seconds"]
            print(f"    equalization + IBC, {N_CALIB} images: {s:.1f} s on {os.cpu_count()} CPU threads "
                  f"(goal < 60 s on 2 cores: {_verdict(s < 60)})")
        else:
            print("    equalization + IBC time: n/a (not available)")
    if "quantized_ips" in res:
        q = res["quantized_ips"] / res["numeric_ips"]
        print(f"    SdkQuantized / SdkNumeric images/s: {q:.2f}x (goal >= 1: {_verdict(q >= 1)}); "
              f"a QFT step {res['qft_step_ips']:.0f} images/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=256,
                    help=f"held-out images per network (FER: at most {FER_MAX_HELD_OUT})")
    ap.add_argument("--repeats", type=int, default=3, help="timed passes for images/s (median)")
    ap.add_argument("--nets", default=None, help="fer,onet,mobilenet (all three unless --quick)")
    ap.add_argument("--quick", action="store_true", help="32 held-out images, FER and ONet, 1 repeat")
    a = ap.parse_args()
    if a.quick:
        a.images, a.repeats, a.nets = 32, 1, a.nets or "fer,onet"
    import tensorflow as tf

    tf.get_logger().setLevel(logging.ERROR)  # retracing notices would break up the table
    t0 = time.perf_counter()
    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPU threads; {N_CALIB} calibration images "
          f"(calib_num_batch {N_CALIB // BATCH}, batch_size {BATCH}); our outputs: SdkNumeric (SNR fq: "
          f"SdkQuantized); reference: SdkNative", flush=True)
    nets = [n.strip() for n in (a.nets or "fer,onet,mobilenet").split(",") if n.strip()]
    cases = load_cases(nets, a.images)
    results = {}
    for case in cases:
        results[case["name"]] = bench_net(case, a.repeats, throughput=True)
    na = {r["why"] for res in results.values() for r in res["rows"].values() if "why" in r}
    for why in sorted(na):
        print(f"n/a: {why}")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
