"""The device interface, vstream-style inference, and the emulated chip behind them.

The host pipeline (float32 -> C input transform -> EmulatedDevice on raw frames -> C output
transform -> float32) must give the same bytes as the emulator's SdkNumeric in-process, on a real
network and real faces; bad frames and bad names are errors naming the stream.
"""
from __future__ import annotations

import numpy as np
import pytest

import hailort_py as hrt
from hailort_py.device import Device, check_raw_frames
from hailort_py.vstreams import InferVStreams, InputVStreamParams, OutputVStreamParams, VDevice

import data_sources as ds

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def onet_quantized(onet_keras):
    from emulator import parse_keras, run_quantization_from_np

    runner = parse_keras(onet_keras, net_name="onet")
    run_quantization_from_np(runner, ds.mtcnn_inputs(64, (48, 48), seed=11), calib_num_batch=2,
                             batch_size=32)
    return runner


@pytest.fixture(scope="module")
def device(onet_quantized):
    from emulator import EmulatedDevice

    with EmulatedDevice(onet_quantized) as dev:
        yield dev


@pytest.fixture(scope="module")
def faces():
    return ds.mtcnn_inputs(12, (48, 48), seed=12)


def _pipeline_outputs(device, images, format_type=hrt.FormatType.FLOAT32):
    # no `with VDevice`: leaving it closes the (shared) device
    network = VDevice(device).configure()
    in_params = InputVStreamParams.make(network, format_type=hrt.FormatType.FLOAT32)
    out_params = OutputVStreamParams.make(network, format_type=format_type)
    name = network.get_input_stream_infos()[0].name
    with InferVStreams(network, in_params, out_params) as pipeline:
        return pipeline.infer({name: images})


def test_host_pipeline_through_the_emulated_chip_is_byte_identical_to_sdk_numeric(
        onet_quantized, device, faces):
    from emulator import SdkNumeric

    from emulator.quantized_exec import host_op_numpy
    from emulator.stream_export import chip_source

    through_device = _pipeline_outputs(device, faces)
    in_process = onet_quantized.infer(SdkNumeric(), faces)
    assert len(through_device) == len(in_process) == 3
    with_host_ops = 0
    for info in device.stream_infos():
        if info.is_input:
            continue
        layer = onet_quantized.hn.layer(info.name)
        host = through_device[info.name]
        # softmax at an output runs on the host after dequantization, as an application does
        for op in chip_source(onet_quantized, layer)[1]:
            host = host_op_numpy(op, host.reshape(-1, *op.output_shape[1:]))
            with_host_ops += 1
        expected = in_process[layer.name]
        assert host.reshape(expected.shape).tobytes() == expected.tobytes(), info.name
    assert with_host_ops == 1  # the face score's softmax


def test_raw_output_codes_match_the_numeric_codes(onet_quantized, device, faces):
    from emulator import SdkNumeric

    _, layers = onet_quantized.infer(SdkNumeric(), faces, inter_layers=True)
    raw = _pipeline_outputs(device, faces, format_type=hrt.FormatType.AUTO)
    from emulator.stream_export import chip_source

    for info in device.stream_infos():
        if info.is_input:
            continue
        source, _ = chip_source(onet_quantized, onet_quantized.hn.layer(info.name))
        codes = layers[source + ":codes"].reshape(raw[info.name].shape)
        np.testing.assert_array_equal(raw[info.name], codes, err_msg=info.name)


def test_two_output_streams_of_one_tensor():
    """Logits and their (host) softmax are two output streams carrying the same chip tensor:
    each gets its own frames, byte-identical to SdkNumeric."""
    from emulator import ClientRunner, EmulatedDevice, SdkNumeric, run_quantization_from_np
    from emulator.importers.builder import GraphBuilder

    g = GraphBuilder("two")
    x = g.add_input([-1, 6, 6, 3], "in")
    gp = g.add("global_avg_pool", [x], [-1, 1, 1, 3], {}, source="gap")
    d = g.add("dense", [gp], [-1, 4], {"activation": "linear"},
              {"kernel": np.arange(12, dtype=np.float32).reshape(3, 4) / 10 - 0.5,
               "bias": np.zeros(4, np.float32)}, "fc")
    g.add_output(d)
    g.add_output(g.add("softmax", [d], [-1, 4], {"axis": 1}, source="sm"))
    hn, params = g.build("two")
    runner = ClientRunner(hn=hn)
    runner.load_params(params)
    images = ds.random_crops(16, (6, 6), seed=1).astype(np.float32) / 255.0
    run_quantization_from_np(runner, images, 1, 16)
    with EmulatedDevice(runner) as dev:
        got = _pipeline_outputs(dev, images[:5])
    ref = runner.infer(SdkNumeric(), images[:5])
    assert got["two/output_layer1"].tobytes() == ref["output_layer1"].tobytes()
    # the second stream carries the same tensor (the host applies the softmax after it)
    assert got["two/output_layer2"].tobytes() == ref["output_layer1"].tobytes()


def test_device_rejects_wrong_frames_naming_the_stream(device):
    info = next(s for s in device.stream_infos() if s.is_input)
    good = np.zeros((2, info.hw_frame_size), np.uint8)
    with pytest.raises(hrt.HailoInvalidArgumentError, match=info.name):
        device.infer({info.name: good[:, :-8]})
    with pytest.raises(hrt.HailoInvalidArgumentError, match="dtype"):
        device.infer({info.name: good.astype(np.float32)})
    with pytest.raises(hrt.HailoNotFoundError, match="no input stream"):
        device.infer({info.name: good, "onet/nope": good})
    with pytest.raises(hrt.HailoInvalidArgumentError, match="no frames given"):
        device.infer({})
    with pytest.raises(hrt.HailoNotFoundError, match="no network 'other'"):
        device.infer({info.name: good}, network_name="other")


def test_raw_frames_shape_checks():
    info = hrt.StreamInfo(name="s", direction=hrt.StreamDirection.H2D,
                          format=hrt.Format(hrt.FormatType.UINT8, hrt.FormatOrder.NHCW),
                          shape=hrt.ImageShape(2, 3, 1), hw_shape=hrt.ImageShape(2, 8, 1))
    assert check_raw_frames(info, np.zeros(16, np.uint8)).shape == (1, 16)
    with pytest.raises(hrt.HailoInvalidArgumentError, match=r"expected \(N, 16\)"):
        check_raw_frames(info, np.zeros((1, 2, 8), np.uint8))
    with pytest.raises(hrt.HailoInvalidArgumentError, match="numpy array"):
        check_raw_frames(info, b"\0" * 16)


def test_vstreams_name_unknown_streams_and_missing_inputs(device, faces):
    vdevice = VDevice(device)
    network = vdevice.configure()
    in_params = InputVStreamParams.make(network, format_type=hrt.FormatType.FLOAT32)
    out_params = OutputVStreamParams.make(network)
    with pytest.raises(hrt.HailoNotFoundError, match="not input streams"):
        InferVStreams(network, {**in_params, "onet/ghost": next(iter(in_params.values()))},
                      out_params)
    pipeline = InferVStreams(network, in_params, out_params)
    with pytest.raises(hrt.HailoInvalidArgumentError, match="no data given"):
        pipeline.infer({})
    name = next(iter(in_params))
    with pytest.raises(hrt.HailoInvalidArgumentError, match="expected a batch"):
        pipeline.infer({name: faces[0]})
    with pytest.raises(hrt.HailoNotFoundError, match="no network"):
        vdevice.configure("nope")


def test_leaving_a_vdevice_closes_its_device(onet_quantized):
    from emulator import EmulatedDevice

    dev = EmulatedDevice(onet_quantized)
    with VDevice(dev) as vdevice:
        info = vdevice.configure().get_input_stream_infos()[0]
    with pytest.raises(hrt.HailoCommunicationClosedError):
        dev.infer({info.name: np.zeros((1, info.hw_frame_size), np.uint8)})


def test_vdevice_needs_a_device():
    with pytest.raises(hrt.HailoInvalidArgumentError, match="hailort_py.Device"):
        VDevice(object())


def test_emulated_device_from_a_har_and_after_close(onet_quantized, faces, tmp_path):
    from emulator import EmulatedDevice

    path = tmp_path / "onet.har"
    onet_quantized.save_har(path)
    dev = EmulatedDevice(path)
    assert isinstance(dev, Device) and dev.network_names() == ["onet"]
    first = _pipeline_outputs(dev, faces[:2])
    dev.close()
    info = next(s for s in dev.stream_infos() if s.is_input)
    with pytest.raises(hrt.HailoCommunicationClosedError, match="closed"):
        dev.infer({info.name: np.zeros((1, info.hw_frame_size), np.uint8)})
    again = _pipeline_outputs(EmulatedDevice(path), faces[:2])
    for name in first:
        assert first[name].tobytes() == again[name].tobytes()


def test_emulated_device_needs_a_quantized_network(onet_keras):
    from emulator import EmulatedDevice, parse_keras
    from emulator.errors import NotQuantizedError

    with pytest.raises(NotQuantizedError):
        EmulatedDevice(parse_keras(onet_keras, net_name="onet"))
    with pytest.raises(hrt.HailoInvalidArgumentError, match="ClientRunner or a HAR path"):
        EmulatedDevice(42)


def test_the_emulator_driver_names_what_is_wrong(onet_keras, tmp_path):
    from emulator import parse_keras
    from emulator.device import open_emulated_device

    with pytest.raises(hrt.HailoInvalidArgumentError, match="needs --model"):
        open_emulated_device([])
    path = tmp_path / "float.har"
    parse_keras(onet_keras, net_name="onet").save_har(path)
    with pytest.raises(hrt.HailoInvalidArgumentError, match=f"{path}: .*quantized params"):
        open_emulated_device([path])
    notes = tmp_path / "notes.har"
    notes.write_text("not a HAR")
    with pytest.raises(hrt.HailoInvalidArgumentError, match="notes.har"):
        open_emulated_device([notes])


def test_compare_reads_device_frames_with_the_chip_side_transform(onet_quantized, device, faces):
    """host_app.compare's logical codes of the frames a device got and returned are
    hailort_py.device.device_side_context's, the transform EmulatedDevice runs on its side."""
    from hailort_py.device import device_side_context
    from host_app.compare import _logical_codes

    info = next(s for s in device.stream_infos() if s.is_input)
    ctx = hrt.InputTransformContext(info, hrt.Format(hrt.FormatType.FLOAT32, hrt.FormatOrder.NHWC))
    frames = ctx.transform(faces[:3])
    codes = _logical_codes(info, frames)
    assert codes.tobytes() == hrt.quantize(faces[:3], info.quant_info).tobytes()
    pack = device_side_context(info, hrt.StreamDirection.H2D)
    assert pack.transform(codes).tobytes() == frames.tobytes()
