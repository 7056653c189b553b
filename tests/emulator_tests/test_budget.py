"""The memory budget checked before running (emulator.limits.check_batch), and the host app's
.npy inputs that are not what they say."""
from __future__ import annotations

import numpy as np
import pytest

from emulator import ClientRunner, SdkNative, SdkNumeric
from emulator.importers.builder import GraphBuilder
from emulator.limits import LIMITS, LimitError, frame_bytes


def _wide_net(side: int, channels: int = 2):
    g = GraphBuilder("wide")
    x = g.add_input([-1, side, side, 1], "in")
    c = g.add("conv", [x], [-1, side, side, channels],
              {"strides": [1, 1, 1, 1], "dilations": [1, 1, 1, 1], "padding": "SAME", "groups": 1,
               "activation": "relu"},
              {"kernel": np.ones((3, 3, 1, channels), np.float32) / 9,
               "bias": np.zeros(channels, np.float32)}, "c")
    g.add_output(c)
    hn, params = g.build("wide")
    r = ClientRunner(hn=hn)
    r.load_params(params)
    return r


def test_a_batch_over_the_budget_is_refused_before_running_with_a_batch_that_fits(monkeypatch):
    r = _wide_net(64)
    per_frame, layer = frame_bytes(r.hn)
    assert per_frame == (64 * 64 * 2 * 2) * 4 and layer  # the largest layer's input + output
    monkeypatch.setattr(LIMITS, "memory_budget_bytes", per_frame * 10)
    x = np.zeros((40, 64, 64, 1), np.float32)
    assert r.infer(SdkNative(), x, batch_size=10)["output_layer1"].shape == (40, 64, 64, 2)
    with pytest.raises(LimitError, match=r"batch of 16 .* batch_size=10 fits") as e:
        r.infer(SdkNative(), x, batch_size=16)
    assert "memory_budget_bytes" in str(e.value)
    # keeping every layer's output keeps them for the whole batch
    with pytest.raises(LimitError, match="batch of 40"):
        r.infer(SdkNative(), x, batch_size=10, inter_layers=True)


def test_not_even_one_frame_fits(monkeypatch):
    r = _wide_net(32)
    monkeypatch.setattr(LIMITS, "memory_budget_bytes", 1000)
    with pytest.raises(LimitError, match="not even one frame fits"):
        r.infer(SdkNative(), np.zeros((1, 32, 32, 1), np.float32))
    from emulator import run_quantization_from_np

    with pytest.raises(LimitError, match="calibration"):
        run_quantization_from_np(r, np.zeros((8, 32, 32, 1), np.float32), 1, 8)


def test_the_numeric_target_counts_its_wider_accumulators(monkeypatch):
    from emulator import run_quantization_from_np

    r = _wide_net(16)
    x = np.random.default_rng(0).uniform(0, 1, (8, 16, 16, 1)).astype(np.float32)
    run_quantization_from_np(r, x, 1, 8)
    per_float, _ = frame_bytes(r.hn)
    monkeypatch.setattr(LIMITS, "memory_budget_bytes", per_float * 8 * 3 // 2)
    r.infer(SdkNative(), x, batch_size=8)  # 8 frames of float32 fit
    with pytest.raises(LimitError, match="SdkNumeric"):
        r.infer(SdkNumeric(), x, batch_size=8)  # not at 8 bytes an element


def test_npz_named_npy_and_values_beyond_float32(tmp_path):
    from host_app.errors import UsageError
    from host_app.images import load_inputs

    with open(tmp_path / "a.npy", "wb") as f:
        np.savez(f, x=np.zeros((2, 4, 4, 1), np.float32))
    with pytest.raises(UsageError, match=r"is an \.npz archive \(arrays \['x'\]\)"):
        load_inputs([tmp_path / "a.npy"], (4, 4, 1), None)
    np.save(tmp_path / "b.npy", np.full((2, 4, 4, 1), 1e300))
    with pytest.raises(UsageError, match="beyond float32's range"):
        load_inputs([tmp_path / "b.npy"], (4, 4, 1), None)
    np.save(tmp_path / "c.npy", np.full((2, 4, 4, 1), 0.5))
    assert load_inputs([tmp_path / "c.npy"], (4, 4, 1), None).x.dtype == np.float32


def test_inputs_over_the_budget_are_refused_before_they_are_read(tmp_path, monkeypatch):
    from host_app.errors import UsageError
    from host_app.images import load_inputs

    np.save(tmp_path / "c.npy", np.zeros((64, 16, 16, 1), np.float32))
    monkeypatch.setattr(LIMITS, "memory_budget_bytes", 1024)
    with pytest.raises(UsageError, match="over the memory budget"):
        load_inputs([tmp_path / "c.npy"], (16, 16, 1), None)


def test_limits_from_the_environment():
    from emulator.limits import _parse

    lim = _parse("max_member_bytes=8G, memory_budget_bytes=1.5g,max_json_depth=10")
    assert lim.max_member_bytes == 8 << 30 and lim.memory_budget_bytes == 3 << 29
    assert lim.max_json_depth == 10
    with pytest.raises(LimitError, match="unknown limit 'max_fun'"):
        _parse("max_fun=1")
    with pytest.raises(LimitError, match="not name=number"):
        _parse("max_json_depth=deep")
