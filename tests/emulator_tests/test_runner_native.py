"""ClientRunner on the float targets: infer, inter-layer tensors, Keras and TF1 exports (the seed's
Listings 7 and 8), HAR round trips, and the errors a user meets."""
from __future__ import annotations

import sys
import tarfile
import types

import numpy as np
import pytest

import data_sources as ds
from emulator import ClientRunner, SdkFPOptimized, SdkNative, SdkNumeric, SdkQuantized
from emulator.errors import HarError, HNError, NoParamsError, NotQuantizedError


def _fresh(runner: ClientRunner) -> ClientRunner:
    """A private copy (session fixtures must not be mutated)."""
    r = ClientRunner(hn=runner.hn.to_json())
    r.load_params(dict(runner.native_params))
    return r


def test_infer_outputs_and_inter_layers(onet_runner, mtcnn_images_48):
    x = mtcnn_images_48[:10]
    out = onet_runner.infer(SdkNative(), x)
    assert list(out) == ["output_layer1", "output_layer2", "output_layer3"]
    assert [v.shape for v in out.values()] == [(10, 4), (10, 10), (10, 2)]
    out2, layers = onet_runner.infer(SdkNative(), x, inter_layers=True)
    assert list(layers) == [l.name for l in onet_runner.hn.topological()]
    for k in out:
        assert np.array_equal(out[k], out2[k])
        assert np.array_equal(layers[k], out[k])
    assert layers["conv1"].shape == (10, 46, 46, 32)
    np.testing.assert_allclose(layers["softmax1"].sum(1), 1.0, rtol=1e-6)
    # batching does not change results
    small = onet_runner.infer(SdkNative(), x, batch_size=3)
    for k in out:
        np.testing.assert_allclose(small[k], out[k], rtol=1e-6, atol=1e-7)


def test_targets_accept_instances_classes_names(onet_runner, mtcnn_images_48):
    x = mtcnn_images_48[:2]
    a = onet_runner.infer(SdkNative(), x)
    for t in (SdkNative, "native", "SdkNative"):
        b = onet_runner.infer(t, x)
        assert all(np.array_equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="unknown emulation target"):
        onet_runner.infer("gpu", x)


def test_fp_optimized_uses_its_params_or_native(onet_runner, mtcnn_images_48):
    r = _fresh(onet_runner)
    x = mtcnn_images_48[:4]
    native = r.infer(SdkNative(), x)
    fp = r.infer(SdkFPOptimized(), x)
    assert all(np.array_equal(native[k], fp[k]) for k in native)
    p = dict(r.native_params)
    p["onet/dense2/bias:0"] = p["onet/dense2/bias:0"] + 1.0
    r.set_fp_optimized_params(p)
    fp = r.infer(SdkFPOptimized(), x)
    np.testing.assert_allclose(fp["output_layer1"], native["output_layer1"] + 1.0, rtol=1e-5, atol=1e-5)
    assert np.array_equal(r.infer(SdkNative(), x)["output_layer1"], native["output_layer1"])
    assert r.layer_params("dense2", which="fp_optimized")["bias"][0] == pytest.approx(
        r.layer_params("dense2")["bias"][0] + 1.0)
    r.set_fp_optimized_params(None)
    assert np.array_equal(r.infer(SdkFPOptimized(), x)["output_layer1"], native["output_layer1"])
    # assigning the attribute directly (as a pre-quantization step may) is picked up too
    p2 = dict(r.native_params)
    p2["onet/dense2/bias:0"] = p2["onet/dense2/bias:0"] - 2.0
    r.fp_optimized_params = p2
    np.testing.assert_allclose(r.infer(SdkFPOptimized(), x)["output_layer1"],
                               native["output_layer1"] - 2.0, rtol=1e-5, atol=1e-5)


def test_quantized_targets_without_quantization(onet_runner, mtcnn_images_48):
    import tensorflow as tf

    for t in (SdkQuantized(), SdkNumeric()):
        with pytest.raises(NotQuantizedError, match="run_quantization_from_np"):
            onet_runner.infer(t, mtcnn_images_48[:1])
        with pytest.raises(NotQuantizedError, match=r"^target Sdk\w+\(\) needs quantized params"):
            onet_runner.get_keras_model(t)
        with tf.Graph().as_default(), pytest.raises(NotQuantizedError):
            onet_runner.get_tf_graph(t, tf.compat.v1.placeholder(tf.float32))


def test_quantized_targets_dispatch_to_quantized_exec(onet_runner, mtcnn_images_48, monkeypatch):
    """The runner hands quantized targets to emulator.quantized_exec.infer (the numerics
    engineer's module); here a stand-in that records the call and answers with native math
    checks the plumbing of infer, get_tf_graph and get_keras_model."""
    import emulator
    import tensorflow as tf

    r = _fresh(onet_runner)
    r.quantized_params = {"onet/conv1/q_kernel": np.zeros(3, np.int8)}
    calls = []

    def infer(runner, target, data, inter_layers=False, batch_size=32):
        calls.append((type(target).__name__, inter_layers, batch_size))
        return runner.infer(SdkNative(), data, inter_layers=inter_layers, batch_size=batch_size)

    stub = types.ModuleType("emulator.quantized_exec")
    stub.infer = infer
    monkeypatch.setitem(sys.modules, "emulator.quantized_exec", stub)
    monkeypatch.setattr(emulator, "quantized_exec", stub, raising=False)
    x = mtcnn_images_48[:3]
    ref = r.infer(SdkNative(), x)
    got = r.infer(SdkNumeric(), x, batch_size=7)
    assert calls[-1] == ("SdkNumeric", False, 7)
    assert all(np.array_equal(got[k], ref[k]) for k in ref)
    with tf.Graph().as_default():
        inp = tf.compat.v1.placeholder(tf.float32)
        g = r.get_tf_graph(SdkQuantized(), inp)
        outs = g.session.run(g.output_tensors, {inp: x})
        layers = g.session.run(dict(zip(g.all_layers_names, g.all_layers)), {inp: x})
    assert all(np.array_equal(o, ref[k]) for o, k in zip(outs, ref))
    assert layers["onet/output_layer2"].shape == (3, 10)
    km = r.get_keras_model(SdkNumeric())
    kouts = km.predict(x, verbose=0)
    assert all(np.array_equal(o, ref[k]) for o, k in zip(kouts, ref))


def test_input_errors(onet_runner, mtcnn_images_24):
    with pytest.raises(HNError, match=r"expects shape \(N, 48, 48, 3\)"):
        onet_runner.infer(SdkNative(), mtcnn_images_24)
    with pytest.raises(HNError, match="input_layer7"):
        onet_runner.infer(SdkNative(), {"input_layer7": mtcnn_images_24})
    with pytest.raises(HNError, match=r"\['conv1'\] are not input layers"):
        onet_runner.infer(SdkNative(), {"input_layer1": mtcnn_images_24, "conv1": mtcnn_images_24})
    r = ClientRunner(hn=onet_runner.hn.to_json())
    with pytest.raises(NoParamsError, match="load_params"):
        r.infer(SdkNative(), np.zeros((1, 48, 48, 3), np.float32))
    with pytest.raises(ValueError, match="exactly one"):
        ClientRunner()
    with pytest.raises(HNError, match="np.stack"):
        onet_runner.infer(SdkNative(), list(mtcnn_images_24[:3]))
    with pytest.raises(HNError, match="'missing.hn' is not HN JSON text"):
        ClientRunner(hn="missing.hn")


def test_get_keras_model_native(fer_runner, fer_images):
    km = fer_runner.get_keras_model(SdkNative())
    got = km.predict(fer_images, verbose=0)
    ref = fer_runner.infer(SdkNative(), fer_images)["output_layer1"]
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-7)
    assert km.input_shape == (None, 64, 64, 1) and km.output_shape == (None, 7)


# --- the seed's Listings 7 and 8 (tf -> tf.compat.v1, nothing else changed) ---------------

def test_seed_listing_7_eval_function(onet_runner, mtcnn_images_48):
    import tensorflow as tf1
    tf = tf1.compat.v1

    def eval(runner, target, images):  # noqa: A001 - the seed's name
        results = []
        with tf.Graph().as_default():
            network_input = tf.placeholder(dtype=tf.float32)
            sdk_export = runner.get_tf_graph(target, network_input)
            output_tensors = sdk_export.output_tensors
            with sdk_export.session.as_default() as sess:
                sess.run(tf.local_variables_initializer())
                for img in images:
                    feed = {network_input: np.expand_dims(img, axis=0)}
                    logits = sess.run(output_tensors, feed_dict=feed)
                    results.append(logits)
        return results

    images = mtcnn_images_48[:5]
    results = eval(onet_runner, SdkNative(), images)
    ref = onet_runner.infer(SdkNative(), images)
    assert len(results) == 5 and len(results[0]) == 3
    for i in range(5):
        for j, k in enumerate(ref):
            np.testing.assert_allclose(results[i][j][0], ref[k][i], rtol=1e-5, atol=1e-6)


def test_seed_listing_8_inter_layer_tensors(onet_runner, mtcnn_images_48, tmp_path):
    import tensorflow as tf1
    tf = tf1.compat.v1

    onet_runner.save_hn(tmp_path / "onet.hn")
    onet_runner.save_params(tmp_path / "onet.npz")
    hn = str(tmp_path / "onet.hn")
    fps = 30
    image = mtcnn_images_48[0]
    with tf.Graph().as_default():
        runner = ClientRunner(hn=open(hn).read())
        runner.load_params(str(tmp_path / "onet.npz"))  # the listing assumes params are loaded
        input_tensor = tf.placeholder(dtype=tf.float32)
        g = runner.get_tf_graph(SdkNative(), input_tensor, fps=fps)
        inter_layers = {x: y for x, y in zip(g.all_layers_names, g.all_layers)}
        # Running the session
        feed_dict = {input_tensor: np.expand_dims(image, axis=0)}
        output = g.session.run(inter_layers, feed_dict=feed_dict)
    names = [onet_runner.hn.scoped(l.name) for l in onet_runner.hn.topological()]
    assert list(output) == names
    _, ref = onet_runner.infer(SdkNative(), image[None], inter_layers=True)
    for name in names:
        bare = name.split("/", 1)[1]
        np.testing.assert_allclose(output[name], ref[bare], rtol=1e-5, atol=1e-5)
    np.save(tmp_path / "conv1.npy", output["onet/conv1"])  # "save the results as an npy"


def test_get_tf_graph_creates_its_own_placeholder(rnet_runner, mtcnn_images_24):
    g = rnet_runner.get_tf_graph(SdkNative())
    out = g.session.run(g.output_tensors, {g.input_tensors[0]: mtcnn_images_24[:2]})
    ref = rnet_runner.infer(SdkNative(), mtcnn_images_24[:2])
    for o, k in zip(out, ref):
        np.testing.assert_allclose(o, ref[k], rtol=1e-5, atol=1e-6)


# --- HAR -----------------------------------------------------------------------------------

def _arrays_identical(a: dict, b: dict) -> bool:
    return list(a) == list(b) and all(
        a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and a[k].tobytes() == b[k].tobytes() for k in a)


def test_har_round_trip_is_exact(onet_runner, mtcnn_images_48, tmp_path):
    r = _fresh(onet_runner)
    fp = {k: (v * 1.01).astype(np.float32) for k, v in r.native_params.items()}
    r.set_fp_optimized_params(fp)
    from emulator import run_quantization_from_np

    # real quantized params (checked against the HN when the HAR loads): int8 / int16 weights,
    # int32 mantissas, float scales, tables... every dtype, shape and byte must survive
    run_quantization_from_np(r, mtcnn_images_48, calib_num_batch=2, batch_size=16)
    r.model_script = "quantization_param({conv*}, bias_mode=double_scale_initialization)\n"
    r.stream_infos = [{"name": "onet/input_layer1", "direction": "h2d", "shape": [48, 48, 3],
                       "quant_info": {"qp_scale": 0.0078125, "qp_zp": 128.0}}]
    r.metadata = {"calibration": {"images": 64, "batch_size": 8}, "note": "täst"}
    path = tmp_path / "onet.har"
    r.save_har(path)
    with tarfile.open(path) as t:
        assert [m.name for m in t.getmembers()] == [
            "hn.json", "native.npz", "fp_optimized.npz", "quantized.npz", "model_script.alls",
            "stream_infos.json", "metadata.json"]
    back = ClientRunner(har=str(path))
    assert back.hn.to_dict() == r.hn.to_dict()
    assert _arrays_identical(back.native_params, r.native_params)
    assert _arrays_identical(back.fp_optimized_params, r.fp_optimized_params)
    assert _arrays_identical(back.quantized_params, {k: np.asarray(v) for k, v in r.quantized_params.items()})
    assert back.model_script == r.model_script
    assert back.stream_infos == r.stream_infos
    assert back.metadata == r.metadata
    assert back.har_info["tool"] and back.har_info["created"] and back.har_info["network"] == "onet"
    x = mtcnn_images_48[:4]
    for t in (SdkNative(), SdkFPOptimized()):
        a, b = r.infer(t, x), back.infer(t, x)
        assert all(np.array_equal(a[k], b[k]) for k in a)
    # saving the restored runner again gives the same members byte for byte (except metadata's time)
    back.save_har(tmp_path / "again.har")
    with tarfile.open(path) as t1, tarfile.open(tmp_path / "again.har") as t2:
        for m in ("hn.json", "native.npz", "fp_optimized.npz", "quantized.npz", "model_script.alls",
                  "stream_infos.json"):
            assert t1.extractfile(m).read() == t2.extractfile(m).read(), m


def test_har_of_parsed_model_only(blazeface_runner, blazeface_images, tmp_path):
    blazeface_runner.save_har(tmp_path / "bf.har")
    back = ClientRunner(har=tmp_path / "bf.har")
    assert back.quantized_params is None and back.fp_optimized_params is None and back.stream_infos is None
    a = blazeface_runner.infer(SdkNative(), blazeface_images[:2])
    b = back.infer(SdkNative(), blazeface_images[:2])
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert ds.rel_error(a["output_layer1"], b["output_layer1"]) == 0.0


def test_har_errors(tmp_path, onet_runner):
    with pytest.raises(HarError, match="does not exist"):
        ClientRunner(har=tmp_path / "none.har")
    (tmp_path / "bad.har").write_bytes(b"garbage" * 100)
    with pytest.raises(HarError, match="not a readable HAR"):
        ClientRunner(har=tmp_path / "bad.har")
    with tarfile.open(tmp_path / "partial.har", "w") as t:
        import io

        data = onet_runner.hn.to_json().encode()
        info = tarfile.TarInfo("hn.json")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    with pytest.raises(HarError, match="metadata.json"):
        ClientRunner(har=tmp_path / "partial.har")
    with tarfile.open(tmp_path / "badmeta.har", "w") as t:
        for name, data in (("hn.json", onet_runner.hn.to_json().encode()), ("metadata.json", b"[1, 2]")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    with pytest.raises(HarError, match="metadata.json must be an object"):
        ClientRunner(har=tmp_path / "badmeta.har")
    # a failed save (the path is a directory) leaves no temporary file behind
    (tmp_path / "dir.har").mkdir()
    with pytest.raises(OSError):
        onet_runner.save_har(tmp_path / "dir.har")
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]
