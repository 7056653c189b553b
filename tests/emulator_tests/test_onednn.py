"""TensorFlow's oneDNN graph rewrites and the emulator's graphs.

TensorFlow turns its oneDNN rewrites (MklLayoutRewritePass, the remapper's oneDNN fusions) on by
default only on x86 CPUs with AVX512_VNNI / AVX512_BF16 / AMX; TF_ENABLE_ONEDNN_OPTS=1 forces them
on, =0 off. One of them crashed the process on BlazeFace: it merges a zero `Pad` found among any
inputs of a VALID `_FusedConv2D` into it, also when the Pad is the residual addend that the
remapper fused in (conv + bias + add), and the node it builds is malformed (SIGSEGV). The emulator
therefore emits every pad as `PadV2` (emulator.numerics.kernels.pad_const; docs/numerics.md,
"TensorFlow and oneDNN").

TensorFlow reads the setting once per process, so the setting this pytest run does not have runs
in a subprocess. A subprocess that dies fails its test with the signal and its last lines; it
never takes pytest down with it.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import numerics_nets as nets

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(TESTS)

# the real-model emulator tests: every target's TensorFlow graphs on FER, MTCNN, BlazeFace
REAL_MODEL_TESTS = ["emulator_tests/test_importers.py", "emulator_tests/test_runner_native.py",
                    "emulator_tests/test_quantization.py", "device/test_device.py", "host_app_tests/test_host_app.py"]


def onednn_on_here() -> bool:
    """Whether TensorFlow's oneDNN rewrites are on in this process."""
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())


def other_setting() -> str:
    return "0" if onednn_on_here() else "1"


def run_python(args: list[str], onednn: str, timeout: float) -> subprocess.CompletedProcess:
    """`python -X faulthandler ARGS` with TF_ENABLE_ONEDNN_OPTS=onednn; a crash or a failure is a
    test failure that names the setting, the signal and the last lines of output."""
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=onednn, TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=os.pathsep.join([TESTS, ROOT, os.environ.get("PYTHONPATH", "")]))
    try:
        proc = subprocess.run([sys.executable, "-X", "faulthandler", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"TF_ENABLE_ONEDNN_OPTS={onednn}: {args} did not finish in {timeout:.0f} s;"
                    f" last output:\n{_tail(e.stdout, e.stderr)}")
    if proc.returncode < 0:
        name = signal.Signals(-proc.returncode).name
        pytest.fail(f"TF_ENABLE_ONEDNN_OPTS={onednn}: the subprocess was killed by {name}; "
                    f"last output:\n{_tail(proc.stdout, proc.stderr)}")
    if proc.returncode != 0:
        pytest.fail(f"TF_ENABLE_ONEDNN_OPTS={onednn}: exit code {proc.returncode}; "
                    f"last output:\n{_tail(proc.stdout, proc.stderr)}")
    return proc


def _tail(out, err, lines: int = 40) -> str:
    text = "".join(s if isinstance(s, str) else (s or b"").decode("utf-8", "replace")
                   for s in (out, err))
    return "\n".join(text.splitlines()[-lines:])


# --- the minimal reproduction -----------------------------------------------------------------

MINIMAL_EMULATOR = textwrap.dedent("""
    import numpy as np
    import numerics_nets as nets
    from emulator import ClientRunner, SdkFPOptimized, SdkNative, SdkNumeric, SdkQuantized
    from emulator import run_quantization_from_np
    from tensorflow.python.util import _pywrap_util_port
    assert _pywrap_util_port.IsMklEnabled() == ({on!r} == "1")
    hn, params = nets.pad_residual_net()
    r = ClientRunner(hn=hn)
    r.load_params(params)
    x = np.random.default_rng(0).uniform(-1, 1, (16, 8, 8, 4)).astype(np.float32)
    k, b = params["pad_residual/conv1/kernel:0"], params["pad_residual/conv1/bias:0"]
    want = np.maximum(np.pad(x, [(0, 0), (0, 0), (0, 0), (0, 4)]) + x @ k[0, 0] + b, 0)
    for target in (SdkNative(), SdkFPOptimized()):
        got = r.infer(target, x)["output_layer1"]
        assert np.allclose(got, want, atol=1e-5), target
    run_quantization_from_np(r, x, calib_num_batch=2, batch_size=8)
    q = r.infer(SdkNumeric(), x)["output_layer1"]
    fq = r.infer(SdkQuantized(), x)["output_layer1"]
    assert np.abs(q - want).max() < 0.05 and np.abs(fq - want).max() < 0.05
    np.save({out!r}, q)
""")


def test_minimal_pad_residual_runs_under_both_settings(tmp_path):
    """The pattern that crashed (zero channel pad + 1x1 VALID conv with bias, added) runs on
    every target with oneDNN forced on and off, and the chip's integers are the same in both."""
    codes = {}
    for onednn in ("1", "0"):
        out = tmp_path / f"numeric_{onednn}.npy"
        run_python(["-c", MINIMAL_EMULATOR.format(on=onednn, out=str(out))], onednn, timeout=300)
        codes[onednn] = np.load(out)
    assert codes["1"].shape == (16, 8, 8, 8)
    assert np.array_equal(codes["1"], codes["0"])


def _op_types(concrete) -> set[str]:
    """Op types of a concrete function's graph, the functions it calls included."""
    gd = concrete.graph.as_graph_def()
    types = {n.op for n in gd.node}
    for f in gd.library.function:
        types |= {n.op for n in f.node_def}
    return types


def test_emulator_graphs_hold_no_pad_op():
    """Every target's compiled graph pads with PadV2 only, whatever the CPU: the guard that keeps
    the crash away on machines where oneDNN is off by default."""
    from emulator import ClientRunner, SdkNative, run_quantization_from_np
    from emulator.quantized_exec import executor

    hn, params = nets.all_ops_net()
    r = ClientRunner(hn=hn)
    r.load_params(params)
    x = np.random.default_rng(0).uniform(-1, 1, (8, 13, 11, 3)).astype(np.float32)
    run_quantization_from_np(r, x, calib_num_batch=1, batch_size=8)
    fns = {"native": r._executor(SdkNative())._fn, "quantized": executor(r, numeric=False)._fn,
           "numeric": executor(r, numeric=True)._fn}
    for name, fn in fns.items():
        ops = _op_types(fn.get_concrete_function())
        assert "PadV2" in ops, f"{name}: the net pads, the check must see its pads"
        assert "Pad" not in ops, f"{name}: a zero Pad op reached an emulator graph"


@pytest.mark.xfail(reason="TensorFlow's own bug, kept as the minimal reproduction: a zero Pad "
                          "added to a VALID conv + bias crashes MklLayoutRewritePass; XPASS "
                          "means TensorFlow fixed it", strict=False)
def test_tensorflow_pad_into_fused_conv_crashes_with_onednn():
    code = textwrap.dedent("""
        import numpy as np, tensorflow as tf
        k = tf.constant(np.ones((1, 1, 4, 8), np.float32)); b = tf.constant(np.ones(8, np.float32))
        @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 4], tf.float32)])
        def f(x):
            return tf.pad(x, [[0, 0], [0, 0], [0, 0], [0, 4]]) + tf.nn.bias_add(
                tf.nn.conv2d(x, k, 1, "VALID"), b)
        f(np.ones((1, 8, 8, 4), np.float32))
    """)
    run_python(["-c", code], "1", timeout=120)


# --- the real-model tests under the other setting ----------------------------------------------

@pytest.mark.slow
def test_real_model_emulator_tests_under_the_other_onednn_setting():
    """The real-model emulator tests (Keras / TFLite agreement of SdkNative on FER, MTCNN and
    BlazeFace, bit-exactness, the device, the host app's infer and compare) again, in a pytest subprocess with oneDNN flipped, so
    a machine without AVX512_VNNI / BF16 / AMX still exercises TensorFlow's oneDNN paths."""
    setting = other_setting()
    proc = run_python(["-m", "pytest", "-q", "-p", "no:cacheprovider",
                       *[os.path.join(TESTS, f) for f in REAL_MODEL_TESTS]], setting, timeout=1800)
    summary = proc.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary, summary
