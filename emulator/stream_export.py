"""Stream infos of a quantized network: what the emulated chip expects and returns
(hailort_py.StreamInfo, the typed mirror of hailo_stream_info_t).

Decisions (docs/numerics.md, "Streams"):
- one input stream per input layer, H2D, device format UINT8 / UINT16 (the input tensor's
  width), order NHCW, shape (H, W, C), quant info = the input tensor's (s, z, limvals), or the
  identity QP when a normalization was folded into the first layer (raw pixels go in);
- one output stream per output layer, in output_layers_order, D2H, carrying the codes of the last
  on-chip tensor before it: order NHCW with shape (H, W, C) for a rank-4 tensor, NC with shape
  (1, 1, C) for a vector, (1, A, B) NHCW for a rank-3 tensor; one QP (per tensor);
- hw_shape: every W-run (NHCW) or the feature vector (NC) padded to a multiple of 8 bytes, which
  makes each device row 8-byte aligned (the stream layer then adds no periph padding);
- stream names are the scoped input / output layer names ("net/input_layer1", "net/output_layer1");
  index: inputs first, then outputs, in order;
- softmax / argmax at an output run on the host after dequantization: chip_source() gives an
  output's on-chip tensor and its host layers (what the host pipeline applies), host_ops_of()
  their types, which the runner's stream_infos dicts carry under "host_ops" (StreamInfo itself
  has no such field). SdkNumeric's outputs, EmulatedDevice and host_app all take an output's
  on-chip tensor and host layers from chip_source.
"""
from __future__ import annotations

from typing import Any

from .errors import NotQuantizedError
from .quant_errors import UnsupportedLayerError
from .quantization.keys import Placement, qkey, read_placement


def _align_elems(n: int, nbytes: int) -> int:
    """Smallest m >= n with m * nbytes a multiple of 8."""
    step = 8 // nbytes
    return -(-n // step) * step


def chip_source(runner: Any, out_layer) -> tuple[str, list]:
    """(on-chip tensor name, host layers) of an output layer of a quantized runner: the layer
    whose codes the output stream carries, and the softmax / argmax layers (HN Layer objects,
    with their params) the host applies after dequantizing, in the order it applies them."""
    hn, qp, net = runner.hn, runner.quantized_params, runner.hn.name
    if qp is None:
        raise NotQuantizedError("the output streams (they carry the quantized tensors)")
    host: list = []
    name = out_layer.input[0]
    while (place := read_placement(qp[qkey(net, name, "kind")])) != Placement.CHIP:
        layer = hn.layers[name]
        if place == Placement.HOST:
            host.insert(0, layer)
        name = layer.input[0]
    return name, host


def tensor_quant_info(qp: dict, net: str, name: str):
    """The hailort_py.QuantInfo of an on-chip tensor's stored (s, z, limvals); the identity QP
    (s = 1, z = 0: raw pixels after a folded normalization) as QuantInfo.identity()."""
    import hailort_py as hrt

    s = float(qp[qkey(net, name, "out_scale")])
    z = int(qp[qkey(net, name, "out_zp")])
    if s == 1.0 and z == 0:
        return hrt.QuantInfo.identity()
    lim = qp[qkey(net, name, "limvals")]
    return hrt.QuantInfo(qp_zp=float(z), qp_scale=s, limvals_min=float(lim[0]),
                         limvals_max=float(lim[1]))


def _shapes(shape: list[int], nbytes: int, stream: str = "?"):
    """(order, shape (h, w, c), hw_shape) of a tensor shape [-1, ...]."""
    import hailort_py as hrt

    dims = list(shape[1:])
    if len(dims) == 1:
        c = dims[0]
        return hrt.FormatOrder.NC, hrt.ImageShape(1, 1, c), hrt.ImageShape(1, 1, _align_elems(c, nbytes))
    if len(dims) == 2:
        h, w, c = 1, dims[0], dims[1]
    elif len(dims) == 3:
        h, w, c = dims
    else:
        raise UnsupportedLayerError(
            f"stream '{stream}': its tensor of shape {shape} (rank {len(shape)}) has no stream "
            f"layout; streams carry rank 2 to 4 tensors. Reshape it to [-1, H, W, C] before the output")
    return (hrt.FormatOrder.NHCW, hrt.ImageShape(h, w, c),
            hrt.ImageShape(h, _align_elems(w, nbytes), c))


def _stream_info(runner: Any, stream: str, tensor: str, direction, index: int):
    """The StreamInfo of a stream carrying the codes of the on-chip tensor `tensor`."""
    import hailort_py as hrt

    hn, qp = runner.hn, runner.quantized_params
    bits = int(qp[qkey(hn.name, tensor, "out_bits")])
    order, shape, hw = _shapes(hn.layers[tensor].output_shape, bits // 8, stream)
    ftype = hrt.FormatType.UINT8 if bits == 8 else hrt.FormatType.UINT16
    return hrt.StreamInfo(name=stream, direction=direction,
                          format=hrt.Format(ftype, order, hrt.FormatFlags.NONE), shape=shape,
                          hw_shape=hw, quant_info=tensor_quant_info(qp, hn.name, tensor), index=index)


def get_stream_infos(runner: Any) -> list:
    """The network's streams as a list of hailort_py.StreamInfo (inputs, then outputs)."""
    import hailort_py as hrt

    if runner.quantized_params is None:
        raise NotQuantizedError("get_stream_infos (the streams carry the quantized tensors)")
    hn = runner.hn
    ins, outs = hn.input_layers, hn.output_layers
    return ([_stream_info(runner, hn.scoped(l.name), l.name, hrt.StreamDirection.H2D, i)
             for i, l in enumerate(ins)]
            + [_stream_info(runner, hn.scoped(l.name), chip_source(runner, l)[0],
                            hrt.StreamDirection.D2H, len(ins) + i) for i, l in enumerate(outs)])


def host_ops_of(runner: Any, stream_name: str) -> list[str]:
    """Types of the host-side ops (softmax / argmax) applied after dequantizing a stream, in
    order ([] for input streams and outputs without host ops): the "host_ops" of its dict."""
    layer = runner.hn.layer(stream_name)
    if layer.type != "output_layer":
        return []
    return [h.type for h in chip_source(runner, layer)[1]]
