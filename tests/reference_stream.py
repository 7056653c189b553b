"""Plain-numpy reference of the stream layer, written from docs/stream-layer.md alone.

Independent of the C code: it never calls the native module (it only reads the plain data
of hailort_py's StreamInfo / Format dataclasses, never their C-computed properties). Every
layout is expressed as "logical (H, W, C) tensor <-> device array", so a bug would have to be
made twice, in two different styles, to go unnoticed.

Entry points:
  check(stream, user_format)             -> (status, resolved user Format)
  host_shape / host_dtype                -> the numpy shape/dtype of one host frame
  hw_frame_size(stream), host_frame_size(stream, user_format)
  input_frame(stream, user_format, host) -> device frame bytes (hw_frame_size long)
  output_frame(stream, user_format, dev) -> host frame (numpy array of host_shape)
  quantize / dequantize                  -> element-wise arithmetic
  nms_encode(...)                        -> a device NMS frame from proposals (for tests)

NMS follows HailoRT (docs/stream-layer.md, "NMS"): the device frame has the size of
hailort_common.hpp's get_nms_hw_frame_size, a by-class host frame keeps every proposal of
every chunk (transform.cpp, transform__d2h_NMS), a by-score frame is bytes (user type UINT8).
"""
from __future__ import annotations

import math

import numpy as np

from hailort_py.stream import (Format, FormatFlags, FormatOrder as O, FormatType as T,
                               NmsBurstType, StreamDirection, StreamInfo)

# hailo_status values (docs/stream-layer.md, "Status codes")
SUCCESS = 0
INVALID_ARGUMENT = 2
INSUFFICIENT_BUFFER = 5
INVALID_OPERATION = 6
INVALID_FRAME = 25

ALIGN = 8  # periph padding: device frames (except NMS) are a multiple of this many bytes
MAX_FRAME = 2**32 - 1  # hw_frame_size is a uint32; host frames get the same bound
NMS_BBOX_SIZE = 8
NMS_BY_SCORE_MAX = 65535  # the by-score count is a uint16
NMS_BY_SCORE_MAX_CLASSES = 65536  # and so are its class ids
NMS_BY_SCORE_DETECTION = np.dtype([("y_min", "<f4"), ("x_min", "<f4"), ("y_max", "<f4"),
                                   ("x_max", "<f4"), ("score", "<f4"), ("class_id", "<u2")])
assert NMS_BY_SCORE_DETECTION.itemsize == 22

TYPE_BYTES = {T.UINT8: 1, T.UINT16: 2, T.FLOAT32: 4}
NP_TYPE = {T.UINT8: np.dtype(np.uint8), T.UINT16: np.dtype(np.uint16),
           T.FLOAT32: np.dtype(np.float32)}

# device order -> (host orders, the first is what AUTO resolves to; directions)
IN, OUT = StreamDirection.H2D, StreamDirection.D2H
ORDER_PAIRS = {
    O.NHCW: ((O.NHWC, O.NCHW, O.NHCW, O.RGB4), (IN, OUT)),
    O.NHWC: ((O.NHWC, O.RGB4), (IN, OUT)),
    O.FCR: ((O.NHWC, O.FCR), (IN, OUT)),
    O.F8CR: ((O.NHWC, O.F8CR), (IN, OUT)),
    O.NC: ((O.NC,), (IN, OUT)),
    O.NHW: ((O.NHW,), (OUT,)),
    O.RGB888: ((O.NHWC,), (IN,)),
    O.YUY2: ((O.YUY2,), (IN,)),
    O.HAILO_YYUV: ((O.NV12,), (IN,)),
    O.HAILO_YYVU: ((O.NV21,), (IN,)),
    O.HAILO_YYYYUV: ((O.I420,), (IN,)),
    O.HAILO_NMS_ON_CHIP: ((O.HAILO_NMS_BY_CLASS, O.HAILO_NMS_BY_SCORE, O.HAILO_NMS_ON_CHIP),
                          (OUT,)),
}
INPUT_ONLY_HOST_ORDERS = {O.RGB4}
YUV_DEVICE_ORDERS = {O.YUY2, O.HAILO_YYUV, O.HAILO_YYVU, O.HAILO_YYYYUV}
NV_DEVICE_ORDERS = {O.HAILO_YYUV, O.HAILO_YYVU, O.HAILO_YYYYUV}
NMS_HOST_FLOAT_ORDERS = {O.HAILO_NMS_BY_CLASS, O.HAILO_NMS_BY_SCORE}  # the decoded NMS orders
# user types of the decoded NMS orders; AUTO resolves to the first (HailoRT's
# get_default_nms_format_type: a by-score frame is bytes)
NMS_HOST_TYPES = {O.HAILO_NMS_BY_CLASS: (T.FLOAT32,), O.HAILO_NMS_BY_SCORE: (T.UINT8, T.FLOAT32)}


def align_up(n: int, a: int) -> int:
    return (n + a - 1) // a * a


# ----------------------------------------------------------------------- arithmetic ---
def _type_max(dtype) -> int:
    return int(np.iinfo(dtype).max)


def quantize(x, qp, dtype) -> np.ndarray:
    """float32 -> codes: clip to limvals (NaN -> lo), / scale, + zp, clamp, round half even.
    Identity QP: the same with lo = 0, hi = type max."""
    x = np.asarray(x, dtype=np.float32)
    dtype = np.dtype(dtype)
    top = np.float32(_type_max(dtype))
    zp, scale = np.float32(qp.qp_zp), np.float32(qp.qp_scale)
    if qp.qp_scale == 1.0 and qp.qp_zp == 0.0:
        lo, hi = np.float32(0.0), top
    else:
        lo, hi = np.float32(qp.limvals_min), np.float32(qp.limvals_max)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        c = np.where(x > lo, x, lo).astype(np.float32)
        c = np.where(c < hi, c, hi).astype(np.float32)
        v = (c / scale).astype(np.float32) + zp
        v = np.where(v > np.float32(0.0), v, np.float32(0.0)).astype(np.float32)
        v = np.where(v < top, v, top).astype(np.float32)
    return np.rint(v).astype(dtype)


def dequantize(q, qp) -> np.ndarray:
    """codes -> float32: (float(q) - zp) * scale, in float32."""
    q = np.asarray(q).astype(np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        return ((q - np.float32(qp.qp_zp)).astype(np.float32) * np.float32(qp.qp_scale)).astype(
            np.float32)


def dequantize_per_feature(t: np.ndarray, qps) -> np.ndarray:
    """Dequantizes a (..., C) tensor with QP[c] for feature c."""
    out = np.empty(t.shape, np.float32)
    for c in range(t.shape[-1]):
        out[..., c] = dequantize(t[..., c], qps[c if len(qps) > 1 else 0])
    return out


# -------------------------------------------------------------------------- decisions ---
def _known(enum_cls, value) -> bool:
    return isinstance(value, enum_cls)


def resolve(stream: StreamInfo, user: Format) -> Format:
    """AUTO type/order of the user format replaced by what the stream resolves them to
    (valid only after check() said SUCCESS for the order)."""
    order = user.order
    if order == O.AUTO:
        order = ORDER_PAIRS[stream.format.order][0][0]
    utype = user.type
    if utype == T.AUTO:
        utype = NMS_HOST_TYPES[order][0] if order in NMS_HOST_TYPES else stream.format.type
    return Format(utype, order, user.flags)


def _qp_ok(qp) -> bool:
    return math.isfinite(qp.qp_scale) and qp.qp_scale > 0


def _limvals_usable(qp) -> bool:
    """A quantize clips with the limvals unless the QP is the identity; HailoRT's clip and
    this layer's agree only when limvals_min <= limvals_max (neither NaN)."""
    return (qp.qp_scale == 1.0 and qp.qp_zp == 0.0) or qp.limvals_min <= qp.limvals_max


def check(stream: StreamInfo, user: Format) -> tuple[int, Format | None]:
    """The status that making a context for (stream, user format) must give, and the
    resolved user format when it succeeds. Written from the doc's tables."""
    dev = stream.format
    if not (_known(StreamDirection, stream.direction) and _known(T, dev.type)
            and _known(O, dev.order) and _known(FormatFlags, dev.flags)
            and _known(T, user.type) and _known(O, user.order) and _known(FormatFlags, user.flags)):
        return INVALID_ARGUMENT, None
    if dev.type == T.AUTO:
        return INVALID_ARGUMENT, None
    if dev.type == T.FLOAT32:
        return INVALID_OPERATION, None
    is_nms = dev.order == O.HAILO_NMS_ON_CHIP
    if is_nms:
        n = stream.nms_info
        if (n is None or n.number_of_classes == 0 or n.max_bboxes_per_class == 0
                or n.bbox_size != NMS_BBOX_SIZE or n.chunks_per_frame == 0
                or not _known(NmsBurstType, n.burst_type)):
            return INVALID_ARGUMENT, None
    else:
        if 0 in tuple(stream.shape) or any(hw < s for hw, s in zip(stream.hw_shape, stream.shape)):
            return INVALID_ARGUMENT, None
    if not _qp_ok(stream.quant_info) or not all(_qp_ok(q) for q in stream.quant_infos):
        return INVALID_ARGUMENT, None
    if len(stream.quant_infos) not in (0, 1, stream.shape.features):
        return INVALID_ARGUMENT, None
    if dev.order not in ORDER_PAIRS:
        return INVALID_OPERATION, None
    host_orders, directions = ORDER_PAIRS[dev.order]
    if stream.direction not in directions:
        return INVALID_OPERATION, None
    resolved = resolve(stream, user)
    if resolved.order not in host_orders:
        return INVALID_OPERATION, None
    if stream.direction == OUT and resolved.order in INPUT_ONLY_HOST_ORDERS:
        return INVALID_OPERATION, None
    # types
    dtype, utype = dev.type, resolved.type
    if dev.order in YUV_DEVICE_ORDERS or resolved.order == O.HAILO_NMS_ON_CHIP:
        if utype != dtype:
            return INVALID_OPERATION, None
    elif resolved.order in NMS_HOST_TYPES:
        if utype not in NMS_HOST_TYPES[resolved.order]:
            return INVALID_OPERATION, None
    elif utype == T.UINT16 and dtype == T.UINT8 and stream.direction == IN:
        return INVALID_OPERATION, None  # narrowing user UINT16 -> device UINT8
    elif utype == T.UINT8 and dtype == T.UINT16 and stream.direction == OUT:
        return INVALID_OPERATION, None  # narrowing device UINT16 -> user UINT8
    # shape constraints of particular orders
    h, w, c = stream.shape
    hh, hw, hc = stream.hw_shape
    if dev.order == O.NC and not (h == w == hh == hw == 1):
        return INVALID_ARGUMENT, None
    if dev.order == O.NHW and not (c == hc == 1):
        return INVALID_ARGUMENT, None
    if dev.order == O.F8CR and hc % 8:
        return INVALID_ARGUMENT, None
    if dev.order == O.RGB888 and not (c == 3 and hc == 4):
        return INVALID_ARGUMENT, None
    if dev.order == O.YUY2 and not (c == hc == 2 and (hh * hw * 2 * TYPE_BYTES[dtype]) % ALIGN == 0):
        return INVALID_ARGUMENT, None
    if dev.order in NV_DEVICE_ORDERS and (h % 2 or w % 2 or hh % 2 or hw % 2):
        return INVALID_ARGUMENT, None
    if host_transposed(stream, resolved) and (
            dev.order in YUV_DEVICE_ORDERS or is_nms or dev.order in (O.NC, O.RGB888)):
        return INVALID_OPERATION, None
    # sizes (NMS: the counts that can make a frame too big)
    if is_nms:
        n = stream.nms_info
        if hw_frame_size(stream) > MAX_FRAME:
            return INVALID_ARGUMENT, None
        if resolved.order == O.HAILO_NMS_BY_SCORE and (
                _nms_total(n) > NMS_BY_SCORE_MAX or n.number_of_classes > NMS_BY_SCORE_MAX_CLASSES):
            return INVALID_ARGUMENT, None
        if resolved.order == O.HAILO_NMS_BY_CLASS and host_frame_size(stream, resolved) > MAX_FRAME:
            return INVALID_ARGUMENT, None
    # the quantize step needs usable limvals (an input's QP, user type FLOAT32)
    if stream.direction == IN and utype == T.FLOAT32 and not _limvals_usable(stream.quant_info):
        return INVALID_ARGUMENT, None
    return SUCCESS, resolved


def is_transformation_required(stream: StreamInfo, user: Format) -> bool:
    """Whether any step runs (quantize, transpose, reorder, periph padding)."""
    r = resolve(stream, user)
    dev = stream.format
    if r.type != dev.type:
        return True
    if host_transposed(stream, r):
        return True
    if r.order != dev.order or tuple(stream.shape) != tuple(stream.hw_shape):
        return True
    if dev.order == O.F8CR and stream.shape.features > 8:
        return True
    if dev.order == O.HAILO_NMS_ON_CHIP:
        return False  # raw NMS: never padded, a copy
    return _device_payload_bytes(stream) % ALIGN != 0


# ---------------------------------------------------------------------------- sizes ---
def nms_host_per_class(n) -> int:
    """Most proposals of one class in a host frame: every chunk's (layer_info.hpp: the
    vstream's nms_shape.max_bboxes_per_class is max_bboxes_per_class * chunks_per_frame)."""
    return n.max_bboxes_per_class * n.chunks_per_frame


def _nms_total(n) -> int:
    return n.max_bboxes_total or n.number_of_classes * nms_host_per_class(n)


def nms_reach(n) -> int:
    """The bytes the counts of a valid device frame can reach."""
    return n.chunks_per_frame * n.number_of_classes * (2 + n.max_bboxes_per_class * NMS_BBOX_SIZE)


def nms_frame_size(n) -> int:
    """hailort_common.hpp, get_nms_hw_frame_size: every class slot has room for
    max(burst_size, max_bboxes_per_class) proposals, and the frame for one more burst."""
    slot = max(n.burst_size, n.max_bboxes_per_class)
    return (n.chunks_per_frame * n.number_of_classes * (2 + n.bbox_size * slot)
            + n.bbox_size * n.burst_size)


def _device_payload_bytes(stream: StreamInfo) -> int:
    dev = stream.format
    if dev.order == O.HAILO_NMS_ON_CHIP:
        return nms_frame_size(stream.nms_info)
    hh, hw, hc = stream.hw_shape
    elements = {
        O.NHCW: hh * hc * hw, O.NHWC: hh * hw * hc, O.FCR: hh * hw * hc,
        O.F8CR: hh * align_up(hc, 8) * hw, O.NC: hc, O.NHW: hh * hw, O.RGB888: hh * hw * 4,
        O.YUY2: hh * hw * 2, O.HAILO_YYUV: hh // 2 * 3 * hw, O.HAILO_YYVU: hh // 2 * 3 * hw,
        O.HAILO_YYYYUV: hh // 2 * 3 * hw,
    }[dev.order]
    return elements * TYPE_BYTES[dev.type]


def hw_frame_size(stream: StreamInfo) -> int:
    if stream.format.order == O.HAILO_NMS_ON_CHIP:
        return _device_payload_bytes(stream)  # HailoRT's size, not padded
    return align_up(_device_payload_bytes(stream), ALIGN)


def host_transposed(stream: StreamInfo, user: Format) -> bool:
    """A transpose runs when the TRANSPOSED flags of the user and device formats differ; the
    host frame then holds (W, H, C)."""
    return bool((int(user.flags) ^ int(stream.format.flags)) & FormatFlags.TRANSPOSED)


def _hw(stream: StreamInfo, user: Format) -> tuple[int, int]:
    h, w = stream.shape.height, stream.shape.width
    return (w, h) if host_transposed(stream, user) else (h, w)


def host_shape(stream: StreamInfo, user: Format) -> tuple[int, ...]:
    """The numpy shape of one host frame of the resolved user format."""
    order = user.order
    c = stream.shape.features
    h, w = _hw(stream, user)
    if order == O.HAILO_NMS_BY_CLASS:
        n = stream.nms_info
        return (n.number_of_classes * (1 + 5 * nms_host_per_class(n)),)
    if order == O.HAILO_NMS_BY_SCORE:
        return ()
    if order == O.HAILO_NMS_ON_CHIP:
        return (hw_frame_size(stream),)
    return {
        O.NHWC: (h, w, c), O.FCR: (h, w, c), O.F8CR: (h, w, c), O.NHCW: (h, c, w),
        O.NCHW: (c, h, w), O.RGB4: (h, align_up(w * c, 4)), O.NHW: (h, w), O.NC: (c,),
        O.YUY2: (h, w, 2), O.NV12: (h * 3 // 2, w), O.NV21: (h * 3 // 2, w),
        O.I420: (h * 3 // 2, w),
    }[order]


def host_dtype(stream: StreamInfo, user: Format) -> np.dtype:
    if user.order == O.HAILO_NMS_BY_SCORE:
        return nms_by_score_frame_dtype(_nms_total(stream.nms_info))
    if user.order == O.HAILO_NMS_ON_CHIP:
        return np.dtype(np.uint8)
    return NP_TYPE[user.type]


def host_frame_size(stream: StreamInfo, user: Format) -> int:
    return int(np.prod(host_shape(stream, user), dtype=np.int64)) * host_dtype(stream, user).itemsize


def nms_by_score_frame_dtype(max_bboxes_total: int) -> np.dtype:
    return np.dtype([("count", "<u2"), ("detections", NMS_BY_SCORE_DETECTION, (max_bboxes_total,))])


# ------------------------------------------------------------------- host <-> logical ---
def host_to_logical(stream: StreamInfo, user: Format, host: np.ndarray) -> np.ndarray:
    """A host frame of a numeric order -> the logical (H, W, C) tensor."""
    order = user.order
    c = stream.shape.features
    h, w = _hw(stream, user)
    if order in (O.NHWC, O.FCR, O.F8CR, O.YUY2):
        t = host.reshape(h, w, c)
    elif order == O.NHCW:
        t = host.reshape(h, c, w).transpose(0, 2, 1)
    elif order == O.NCHW:
        t = host.reshape(c, h, w).transpose(1, 2, 0)
    elif order == O.RGB4:
        t = host.reshape(h, -1)[:, : w * c].reshape(h, w, c)
    elif order == O.NHW:
        t = host.reshape(h, w, 1)
    elif order == O.NC:
        t = host.reshape(1, 1, c)
    else:
        raise AssertionError(order)
    if host_transposed(stream, user):
        t = t.transpose(1, 0, 2)
    return t


def logical_to_host(stream: StreamInfo, user: Format, t: np.ndarray) -> np.ndarray:
    """The logical (H, W, C) tensor -> a host frame of a numeric order."""
    if host_transposed(stream, user):
        t = t.transpose(1, 0, 2)
    order = user.order
    if order in (O.NHWC, O.FCR, O.F8CR):
        host = t
    elif order == O.NHCW:
        host = t.transpose(0, 2, 1)
    elif order == O.NCHW:
        host = t.transpose(2, 0, 1)
    elif order == O.NHW:
        host = t[:, :, 0]
    elif order == O.NC:
        host = t[0, 0, :]
    else:
        raise AssertionError(order)
    return np.ascontiguousarray(host)


# ---------------------------------------------------------------- logical <-> device ---
def _device_zeros(stream: StreamInfo) -> np.ndarray:
    return np.zeros(_device_payload_bytes(stream) // TYPE_BYTES[stream.format.type],
                    NP_TYPE[stream.format.type])


def logical_to_device(stream: StreamInfo, t: np.ndarray) -> np.ndarray:
    """Logical (H, W, C) tensor of device codes -> the device layout (flat, unpadded)."""
    h, w, c = stream.shape
    hh, hw, hc = stream.hw_shape
    order = stream.format.order
    flat = _device_zeros(stream)
    if order == O.NHCW:
        dev = flat.reshape(hh, hc, hw)
        dev[:h, :c, :w] = t.transpose(0, 2, 1)
    elif order in (O.NHWC, O.FCR, O.YUY2):
        dev = flat.reshape(hh, hw, hc)
        dev[:h, :w, :c] = t
    elif order == O.F8CR:
        groups = hc // 8
        padded = np.zeros((h, w, groups * 8), flat.dtype)
        padded[:, :, :c] = t
        dev = flat.reshape(hh, groups, hw, 8)
        dev[:h, :, :w, :] = padded.reshape(h, w, groups, 8).transpose(0, 2, 1, 3)
    elif order == O.NC:
        flat[:c] = t[0, 0, :]
    elif order == O.RGB888:
        dev = flat.reshape(hh, hw, 4)
        dev[:h, :w, :3] = t[:, :, ::-1]
    else:
        raise AssertionError(order)
    return flat


def device_to_logical(stream: StreamInfo, flat: np.ndarray) -> np.ndarray:
    """Device layout (flat, at least the unpadded payload) -> logical (H, W, C) codes."""
    h, w, c = stream.shape
    hh, hw, hc = stream.hw_shape
    order = stream.format.order
    if order == O.NHCW:
        return flat[: hh * hc * hw].reshape(hh, hc, hw)[:h, :c, :w].transpose(0, 2, 1)
    if order in (O.NHWC, O.FCR):
        return flat[: hh * hw * hc].reshape(hh, hw, hc)[:h, :w, :c]
    if order == O.F8CR:
        groups = hc // 8
        dev = flat[: hh * groups * hw * 8].reshape(hh, groups, hw, 8)[:h, :, :w, :]
        return dev.transpose(0, 2, 1, 3).reshape(h, w, groups * 8)[:, :, :c]
    if order == O.NC:
        return flat[:c].reshape(1, 1, c)
    if order == O.NHW:
        return flat[: hh * hw].reshape(hh, hw)[:h, :w].reshape(h, w, 1)
    raise AssertionError(order)


def _yuv_to_device(stream: StreamInfo, user: Format, host: np.ndarray) -> np.ndarray:
    h, w, _ = stream.shape
    hh, hw, _ = stream.hw_shape
    flat = _device_zeros(stream)
    if stream.format.order == O.YUY2:
        dev = flat.reshape(hh, hw, 2)
        dev[:h, :w, :] = host.reshape(h, w, 2)
        return flat
    plane = host.reshape(-1)
    y = plane[: h * w].reshape(h, w)
    dev = flat.reshape(hh // 2, 3, hw)
    dev[: h // 2, 0, :w] = y[0::2]
    dev[: h // 2, 1, :w] = y[1::2]
    if stream.format.order in (O.HAILO_YYUV, O.HAILO_YYVU):
        # NV12 / NV21: the interleaved chroma plane, (H/2) rows of W values, copied as is
        dev[: h // 2, 2, :w] = plane[h * w:].reshape(h // 2, w)
    else:
        quarter = (h // 2) * (w // 2)
        u = plane[h * w: h * w + quarter].reshape(h // 2, w // 2)
        v = plane[h * w + quarter:].reshape(h // 2, w // 2)
        dev[: h // 2, 2, : w // 2] = u
        dev[: h // 2, 2, hw // 2: hw // 2 + w // 2] = v
    return flat


def _to_frame(stream: StreamInfo, payload: np.ndarray) -> bytes:
    raw = payload.astype(payload.dtype.newbyteorder("<"), copy=False).tobytes()
    return raw + bytes(hw_frame_size(stream) - len(raw))


# -------------------------------------------------------------------- transforms ---
def input_frame(stream: StreamInfo, user: Format, host: np.ndarray) -> bytes:
    """One host frame (resolved user format) -> the device frame bytes."""
    dev_dtype = NP_TYPE[stream.format.type]
    if stream.format.order in YUV_DEVICE_ORDERS:
        return _to_frame(stream, _yuv_to_device(stream, user, host))
    t = host_to_logical(stream, user, host)
    if user.type == T.FLOAT32:
        codes = quantize(t, stream.quant_info, dev_dtype)
    else:
        codes = t.astype(dev_dtype)
    return _to_frame(stream, logical_to_device(stream, codes))


def output_frame(stream: StreamInfo, user: Format, device: bytes) -> np.ndarray:
    """One device frame (bytes) -> the host frame of the resolved user format."""
    if stream.format.order == O.HAILO_NMS_ON_CHIP:
        return _nms_output(stream, user, device)
    dev_dtype = NP_TYPE[stream.format.type].newbyteorder("<")
    codes = device_to_logical(stream, np.frombuffer(device, dev_dtype))
    if user.type == T.FLOAT32 and stream.format.order != O.NHW:
        t = dequantize_per_feature(codes, stream.per_feature_quant_infos())
    else:
        t = codes.astype(NP_TYPE[user.type])
    return logical_to_host(stream, user, t)


# --------------------------------------------------------------------------- NMS ---
class NmsFrameError(ValueError):
    """The device NMS frame is malformed (HAILO_INVALID_FRAME)."""


def nms_pack(score, y_min, x_min, y_max, x_max) -> int:
    return (score << 48) | (y_min << 36) | (x_min << 24) | (y_max << 12) | x_max


def nms_unpack(p: int) -> tuple[int, int, int, int, int]:
    """-> (y_min, x_min, y_max, x_max, score) codes."""
    return ((p >> 36) & 0xFFF, (p >> 24) & 0xFFF, (p >> 12) & 0xFFF, p & 0xFFF, p >> 48)


def nms_encode(stream: StreamInfo, chunks: list[list[list[int]]]) -> bytes:
    """A device frame from chunks[k][class] = list of packed 64-bit proposals; unused bytes
    zero. Counts are written as given (a test may write a bad one on purpose)."""
    out = bytearray()
    for chunk in chunks:
        for proposals in chunk:
            out += len(proposals).to_bytes(2, "little")
            for p in proposals:
                out += int(p).to_bytes(8, "little")
    size = hw_frame_size(stream)
    if len(out) > size:
        raise ValueError("proposals do not fit the device frame")
    return bytes(out) + bytes(size - len(out))


def nms_decode(stream: StreamInfo, device: bytes) -> list[list[int]]:
    """Device frame -> per class, every proposal of that class of every chunk, in chunk
    order (HailoRT's transform__d2h_NMS keeps them all)."""
    n = stream.nms_info
    payload = nms_reach(n)
    merged: list[list[int]] = [[] for _ in range(n.number_of_classes)]
    offset = 0
    for _ in range(n.chunks_per_frame):
        for cls in range(n.number_of_classes):
            if offset + 2 > payload:
                raise NmsFrameError("count past the frame")
            count = int.from_bytes(device[offset: offset + 2], "little")
            offset += 2
            if count > n.max_bboxes_per_class or offset + count * NMS_BBOX_SIZE > payload:
                raise NmsFrameError(f"class {cls}: count {count}")
            for i in range(count):
                merged[cls].append(int.from_bytes(device[offset + 8 * i: offset + 8 * i + 8],
                                                  "little"))
            offset += count * NMS_BBOX_SIZE
    return merged


def _nms_output(stream: StreamInfo, user: Format, device: bytes) -> np.ndarray:
    if user.order == O.HAILO_NMS_ON_CHIP:
        return np.frombuffer(device, np.uint8).copy()
    n = stream.nms_info
    merged = nms_decode(stream, device)
    qp = stream.quant_info
    if user.order == O.HAILO_NMS_BY_CLASS:
        out = np.zeros(host_shape(stream, user), np.float32)
        pos = 0
        for proposals in merged:
            out[pos] = np.float32(len(proposals))
            pos += 1
            for p in proposals:
                out[pos: pos + 5] = dequantize(np.array(nms_unpack(p)), qp)
                pos += 5
        return out
    total = _nms_total(n)
    detections = [(nms_unpack(p), cls) for cls, proposals in enumerate(merged) for p in proposals]
    detections.sort(key=lambda d: -d[0][4])  # stable: ties keep class, chunk, device order
    detections = detections[:total]
    out = np.zeros((), nms_by_score_frame_dtype(total))
    out["count"] = len(detections)
    for i, (codes, cls) in enumerate(detections):
        y0, x0, y1, x1, score = dequantize(np.array(codes), qp)
        out["detections"][i] = (y0, x0, y1, x1, score, cls)
    return out
