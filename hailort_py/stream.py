"""What a stream is and what a user sends or wants back: the typed mirror of the C structs
of native/include/hailo_stream.h, with HailoRT / pyhailort names.

Every value type here is an immutable dataclass with ``to_dict()`` / ``from_dict()``. The
dicts are JSON-safe (str, int, float, list, dict, None) and exact: enums travel by name,
floats as the Python float equal to the float32 value, so a ``QuantInfo`` survives
``json.dumps`` / ``json.loads`` bit for bit (non-finite values travel as the strings
"inf", "-inf", "nan"). The device protocol and the HAR archive carry them.

Enum fields accept the enum, its int value or its name. An int the enum does not know is
kept as a plain int (a newer device may report a value this runtime does not know) and is
rejected by the C layer with ``HailoInvalidArgumentError`` when a context is made.
"""
from __future__ import annotations

import dataclasses
import enum
import functools
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence, TypeVar

import numpy as np

from ._raw import ffi, lib
from .errors import HailoInvalidArgumentError

__all__ = [
    "FormatType",
    "FormatOrder",
    "FormatFlags",
    "StreamDirection",
    "StreamTransformMode",
    "Format",
    "UserBufferFormat",
    "TransformParams",
    "VStreamParams",
    "QuantInfo",
    "ImageShape",
    "NmsBurstType",
    "NmsDefuseInfo",
    "NmsInfo",
    "NmsShape",
    "StreamInfo",
    "DEFAULT_VSTREAM_QUEUE_SIZE",
    "DEFAULT_VSTREAM_TIMEOUT_MS",
]

DEFAULT_VSTREAM_QUEUE_SIZE = 2  # HailoRT's defaults for a vstream
DEFAULT_VSTREAM_TIMEOUT_MS = 10000

_UINT32_MAX = 2**32 - 1


# ----------------------------------------------------------------------------- enums ---
class FormatType(enum.IntEnum):
    """hailo_format_type_t. The device side is UINT8 or UINT16; FLOAT32 is host only."""

    AUTO = 0
    UINT8 = 1
    UINT16 = 2
    FLOAT32 = 3


class FormatOrder(enum.IntEnum):
    """hailo_format_order_t, HAILO_FORMAT_ORDER_ dropped. The one C name that starts with a
    digit, HAILO_FORMAT_ORDER_12_BIT_BAYER_RGB, is ``BAYER_RGB_12_BIT`` here."""

    AUTO = 0
    NHWC = 1
    NHCW = 2
    FCR = 3
    F8CR = 4
    NHW = 5
    NC = 6
    BAYER_RGB = 7
    BAYER_RGB_12_BIT = 8
    HAILO_NMS = 9  # deprecated
    RGB888 = 10
    NCHW = 11
    YUY2 = 12
    NV12 = 13
    NV21 = 14
    HAILO_YYUV = 15
    HAILO_YYVU = 16
    RGB4 = 17
    I420 = 18
    HAILO_YYYYUV = 19
    HAILO_NMS_WITH_BYTE_MASK = 20
    HAILO_NMS_ON_CHIP = 21
    HAILO_NMS_BY_CLASS = 22
    HAILO_NMS_BY_SCORE = 23


class FormatFlags(enum.IntFlag):
    """hailo_format_flags_t. QUANTIZED is legacy and ignored for every decision; TRANSPOSED
    on a user format means the host buffer holds (W, H, C)."""

    NONE = 0
    QUANTIZED = 1
    TRANSPOSED = 2


class StreamDirection(enum.IntEnum):
    """hailo_stream_direction_t: H2D is an input stream, D2H an output stream."""

    H2D = 0
    D2H = 1


class StreamTransformMode(enum.IntEnum):
    """hailo_stream_transform_mode_t."""

    NO_TRANSFORM = 0
    TRANSFORM_COPY = 1


class NmsBurstType(enum.IntEnum):
    """hailo_nms_burst_type_t, HAILO_BURST_TYPE_ dropped: how the device delivers NMS
    proposals. It changes the transfers, not the frame a transform reads."""

    H8_BBOX = 0
    H15_BBOX = 1
    H8_PER_CLASS = 2
    H15_PER_CLASS = 3
    H15_PER_FRAME = 4


_E = TypeVar("_E", bound=enum.IntEnum)


def _enum_value(enum_cls: type[_E], value: Any, what: str) -> _E | int:
    """The member of enum_cls for a member, int or name; an unknown int stays an int."""
    if isinstance(value, enum_cls):
        return value
    if isinstance(value, str):
        try:
            return enum_cls[value]
        except KeyError:
            raise HailoInvalidArgumentError(
                f"{what}: unknown {enum_cls.__name__} name {value!r}") from None
    if isinstance(value, (bool, float)) or not isinstance(value, (int, np.integer)):
        raise HailoInvalidArgumentError(
            f"{what}: expected a {enum_cls.__name__}, got {type(value).__name__} {value!r}")
    value = int(value)
    if not 0 <= value <= _UINT32_MAX:
        raise HailoInvalidArgumentError(f"{what}: {enum_cls.__name__} value {value} out of range")
    try:
        return enum_cls(value)
    except ValueError:
        return value


def _enum_to_json(value: enum.IntEnum | int) -> str | int:
    return value.name if isinstance(value, enum.Enum) and value.name else int(value)


def _flags_value(value: Any, what: str) -> FormatFlags | int:
    if isinstance(value, str):
        return _enum_value(FormatFlags, value, what)
    if isinstance(value, (list, tuple)):
        flags = FormatFlags.NONE
        for name in value:
            flags |= _enum_value(FormatFlags, name, what)
        return flags
    if isinstance(value, (bool, float)) or not isinstance(value, (int, np.integer)):
        raise HailoInvalidArgumentError(f"{what}: expected FormatFlags, got {value!r}")
    value = int(value)
    if not 0 <= value <= _UINT32_MAX:
        raise HailoInvalidArgumentError(f"{what}: FormatFlags value {value} out of range")
    known = int(FormatFlags.QUANTIZED | FormatFlags.TRANSPOSED)
    return FormatFlags(value) if value & ~known == 0 else value


def _uint32(value: Any, what: str) -> int:
    if isinstance(value, (bool, float)) or not isinstance(value, (int, np.integer)):
        raise HailoInvalidArgumentError(f"{what}: expected an integer, got {value!r}")
    value = int(value)
    if not 0 <= value <= _UINT32_MAX:
        raise HailoInvalidArgumentError(f"{what}: {value} is not a uint32")
    return value


def _float32(value: Any, what: str) -> float:
    """The Python float equal to value rounded to float32 (accepts "inf", "-inf", "nan")."""
    if isinstance(value, str):
        if value not in ("inf", "-inf", "nan"):
            raise HailoInvalidArgumentError(f"{what}: expected a number, got {value!r}")
        return float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise HailoInvalidArgumentError(f"{what}: expected a number, got {value!r}")
    with np.errstate(over="ignore"):
        try:
            return float(np.float32(value))
        except OverflowError:  # an int beyond float64's range
            raise HailoInvalidArgumentError(f"{what}: {value!r} is out of range") from None


def _float_to_json(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


def _mapping(data: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise HailoInvalidArgumentError(f"{what}: expected a dict, got {type(data).__name__}")
    return data


def _list(data: Any, what: str) -> Sequence[Any]:
    if not isinstance(data, (list, tuple)):
        raise HailoInvalidArgumentError(f"{what}: expected a list, got {type(data).__name__}")
    return data


def _required(data: Mapping[str, Any], key: str, what: str) -> Any:
    try:
        return data[key]
    except KeyError:
        raise HailoInvalidArgumentError(f"{what}: missing key {key!r}") from None


# --------------------------------------------------------------------------- formats ---
@dataclass(frozen=True)
class Format:
    """hailo_format_t: element type, order and flags of a buffer. A stream's device format
    and a user's buffer format are both Formats (``UserBufferFormat`` is this class)."""

    type: FormatType = FormatType.AUTO
    order: FormatOrder = FormatOrder.AUTO
    flags: FormatFlags = FormatFlags.NONE

    def __post_init__(self):
        object.__setattr__(self, "type", _enum_value(FormatType, self.type, "format type"))
        object.__setattr__(self, "order", _enum_value(FormatOrder, self.order, "format order"))
        object.__setattr__(self, "flags", _flags_value(self.flags, "format flags"))

    @property
    def is_transposed(self) -> bool:
        return bool(int(self.flags) & FormatFlags.TRANSPOSED)

    def __str__(self) -> str:
        parts = [_name(self.type), _name(self.order)]
        if self.flags:
            parts.append(_name(self.flags))
        return " ".join(str(p) for p in parts)

    def to_dict(self) -> dict[str, Any]:
        return {"type": _enum_to_json(self.type), "order": _enum_to_json(self.order),
                "flags": int(self.flags)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Format:
        data = _mapping(data, "format")
        return cls(type=data.get("type", FormatType.AUTO), order=data.get("order", FormatOrder.AUTO),
                   flags=data.get("flags", FormatFlags.NONE))

    def _fill_c(self, c_format) -> None:
        c_format.type = int(self.type)
        c_format.order = int(self.order)
        c_format.flags = int(self.flags)

    @classmethod
    def _from_c(cls, c_format) -> Format:
        return cls(type=c_format.type, order=c_format.order, flags=c_format.flags)


UserBufferFormat = Format


def _name(value) -> str:
    if isinstance(value, enum.Flag):
        return value.name or str(int(value))
    return value.name if isinstance(value, enum.Enum) else str(value)


@dataclass(frozen=True)
class TransformParams:
    """hailo_transform_params_t: the user buffer format of one stream (AUTO fields resolve
    to what the stream needs) and the transform mode."""

    user_buffer_format: Format = field(default_factory=Format)
    transform_mode: StreamTransformMode = StreamTransformMode.TRANSFORM_COPY

    def __post_init__(self):
        if not isinstance(self.user_buffer_format, Format):
            raise HailoInvalidArgumentError(
                f"user_buffer_format: expected a Format, got {self.user_buffer_format!r}")
        object.__setattr__(self, "transform_mode",
                           _enum_value(StreamTransformMode, self.transform_mode, "transform mode"))

    def to_dict(self) -> dict[str, Any]:
        return {"user_buffer_format": self.user_buffer_format.to_dict(),
                "transform_mode": _enum_to_json(self.transform_mode)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TransformParams:
        data = _mapping(data, "transform params")
        return cls(Format.from_dict(data.get("user_buffer_format", {})),
                   data.get("transform_mode", StreamTransformMode.TRANSFORM_COPY))

    def _to_c(self):
        c_params = ffi.new("hailo_transform_params_t *")
        c_params.transform_mode = int(self.transform_mode)
        self.user_buffer_format._fill_c(c_params.user_buffer_format)
        return c_params


@dataclass(frozen=True)
class VStreamParams:
    """The per-stream params a host program sets for a virtual stream (hailo_vstream_params_t):
    the user buffer format, queue size and timeout. ``InputVStreamParams.make(network, ...)``
    / ``OutputVStreamParams.make(...)`` build dicts of these, one per stream."""

    format_type: FormatType = FormatType.AUTO
    format_order: FormatOrder = FormatOrder.AUTO
    format_flags: FormatFlags = FormatFlags.NONE
    queue_size: int = DEFAULT_VSTREAM_QUEUE_SIZE
    timeout_ms: int = DEFAULT_VSTREAM_TIMEOUT_MS

    def __post_init__(self):
        fmt = Format(self.format_type, self.format_order, self.format_flags)
        object.__setattr__(self, "format_type", fmt.type)
        object.__setattr__(self, "format_order", fmt.order)
        object.__setattr__(self, "format_flags", fmt.flags)
        object.__setattr__(self, "queue_size", _uint32(self.queue_size, "queue_size"))
        object.__setattr__(self, "timeout_ms", _uint32(self.timeout_ms, "timeout_ms"))

    @property
    def user_buffer_format(self) -> Format:
        return Format(self.format_type, self.format_order, self.format_flags)

    @property
    def transform_params(self) -> TransformParams:
        return TransformParams(self.user_buffer_format)

    def to_dict(self) -> dict[str, Any]:
        return {"user_buffer_format": self.user_buffer_format.to_dict(),
                "queue_size": self.queue_size, "timeout_ms": self.timeout_ms}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VStreamParams:
        data = _mapping(data, "vstream params")
        fmt = Format.from_dict(data.get("user_buffer_format", {}))
        return cls(fmt.type, fmt.order, fmt.flags,
                   data.get("queue_size", DEFAULT_VSTREAM_QUEUE_SIZE),
                   data.get("timeout_ms", DEFAULT_VSTREAM_TIMEOUT_MS))


# ----------------------------------------------------------------------- stream info ---
@dataclass(frozen=True)
class QuantInfo:
    """hailo_quant_info_t: real = (code - qp_zp) * qp_scale; limvals are the real range.
    Fields are stored as the Python float equal to their float32 value."""

    qp_zp: float
    qp_scale: float
    limvals_min: float
    limvals_max: float

    def __post_init__(self):
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _float32(getattr(self, f.name), f"quant info {f.name}"))

    @classmethod
    def identity(cls) -> QuantInfo:
        """scale 1, zp 0: quantization is a rounding cast (limvals unused)."""
        return cls(0.0, 1.0, 0.0, 65535.0)

    @property
    def is_identity(self) -> bool:
        return self.qp_scale == 1.0 and self.qp_zp == 0.0

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _float_to_json(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QuantInfo:
        data = _mapping(data, "quant info")
        return cls(**{f.name: _required(data, f.name, "quant info") for f in dataclasses.fields(cls)})

    def _fill_c(self, c_qp) -> None:
        c_qp.qp_zp = self.qp_zp
        c_qp.qp_scale = self.qp_scale
        c_qp.limvals_min = self.limvals_min
        c_qp.limvals_max = self.limvals_max

    def _to_c(self):
        c_qp = ffi.new("hailo_quant_info_t *")
        self._fill_c(c_qp)
        return c_qp


@dataclass(frozen=True)
class ImageShape:
    """hailo_3d_image_shape_t."""

    height: int
    width: int
    features: int

    def __post_init__(self):
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _uint32(getattr(self, f.name), f"shape {f.name}"))

    def __iter__(self):
        return iter((self.height, self.width, self.features))

    def __str__(self) -> str:
        return f"{self.height}x{self.width}x{self.features}"

    def to_dict(self) -> list[int]:
        return [self.height, self.width, self.features]

    @classmethod
    def from_dict(cls, data: Sequence[int] | Mapping[str, int]) -> ImageShape:
        if isinstance(data, Mapping):
            return cls(*(_required(data, k, "shape") for k in ("height", "width", "features")))
        if not isinstance(data, (list, tuple)) or len(data) != 3:
            raise HailoInvalidArgumentError(f"shape: expected [height, width, features], got {data!r}")
        return cls(*data)

    def _fill_c(self, c_shape) -> None:
        c_shape.height, c_shape.width, c_shape.features = self.height, self.width, self.features


def _check_keys(data: Mapping[str, Any], cls, what: str) -> None:
    """Every key a field of the dataclass cls, every field without a default present."""
    fields = dataclasses.fields(cls)
    unknown = set(data) - {f.name for f in fields}
    if unknown:
        raise HailoInvalidArgumentError(f"{what}: unknown keys {sorted(unknown, key=repr)}")
    missing = [f.name for f in fields if f.name not in data and
               f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise HailoInvalidArgumentError(f"{what}: missing key(s) {missing}")


@dataclass(frozen=True)
class NmsDefuseInfo:
    """hailo_nms_defuse_info_t: where a defused NMS output came from. Carried (and sent
    over the device protocol), never used by a transform."""

    class_group_index: int = 0
    original_name: str = ""

    def __post_init__(self):
        object.__setattr__(self, "class_group_index",
                           _uint32(self.class_group_index, "nms defuse info class_group_index"))
        name = self.original_name
        if not isinstance(name, str) or "\0" in name or \
                len(name.encode("utf-8")) >= lib.HAILO_MAX_STREAM_NAME_SIZE:
            raise HailoInvalidArgumentError(
                f"nms defuse info original_name: a str of at most "
                f"{lib.HAILO_MAX_STREAM_NAME_SIZE - 1} UTF-8 bytes without NUL, got {name!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"class_group_index": self.class_group_index, "original_name": self.original_name}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NmsDefuseInfo:
        data = _mapping(data, "nms defuse info")
        _check_keys(data, cls, "nms defuse info")
        return cls(**data)


@dataclass(frozen=True)
class NmsShape:
    """hailo_nms_shape_t: the host side of an NMS output. A class holds up to
    ``max_bboxes_per_class`` detections (the device's per-chunk maximum times
    chunks_per_frame), a by-score frame up to ``max_bboxes_total``."""

    number_of_classes: int
    max_bboxes_per_class: int
    max_bboxes_total: int
    max_accumulated_mask_size: int = 0


@dataclass(frozen=True)
class NmsInfo:
    """hailo_nms_info_t, for device order HAILO_NMS_ON_CHIP, HailoRT's fields in HailoRT's
    order. A device frame is ``chunks_per_frame`` chunks of, per class, a count (at most
    ``max_bboxes_per_class``) and that many proposals; the host frame keeps every chunk's
    (``nms_shape``). ``max_bboxes_total`` 0 means number_of_classes * chunks_per_frame *
    max_bboxes_per_class. ``burst_size`` / ``burst_type`` change the device frame's size
    (HailoRT's get_nms_hw_frame_size), ``is_defused`` / ``defuse_info`` are carried only."""

    number_of_classes: int
    max_bboxes_per_class: int
    max_bboxes_total: int = 0
    bbox_size: int = 8
    chunks_per_frame: int = 1
    is_defused: bool = False
    defuse_info: NmsDefuseInfo = field(default_factory=NmsDefuseInfo)
    burst_size: int = 0
    burst_type: NmsBurstType = NmsBurstType.H8_BBOX

    _UINT32_FIELDS = ("number_of_classes", "max_bboxes_per_class", "max_bboxes_total",
                      "bbox_size", "chunks_per_frame", "burst_size")

    def __post_init__(self):
        for name in self._UINT32_FIELDS:
            object.__setattr__(self, name, _uint32(getattr(self, name), f"nms info {name}"))
        if not isinstance(self.is_defused, (bool, np.bool_)):
            raise HailoInvalidArgumentError(
                f"nms info is_defused: expected a bool, got {self.is_defused!r}")
        object.__setattr__(self, "is_defused", bool(self.is_defused))
        defuse = self.defuse_info
        if isinstance(defuse, Mapping):
            defuse = NmsDefuseInfo.from_dict(defuse)
        if not isinstance(defuse, NmsDefuseInfo):
            raise HailoInvalidArgumentError(
                f"nms info defuse_info: expected an NmsDefuseInfo, got {defuse!r}")
        object.__setattr__(self, "defuse_info", defuse)
        object.__setattr__(self, "burst_type",
                           _enum_value(NmsBurstType, self.burst_type, "nms info burst_type"))

    @property
    def nms_shape(self) -> NmsShape:
        """The host-side maxima (hailo_get_nms_shape); HailoInvalidArgumentError when a
        count is 0 or a maximum is beyond a uint32."""
        c_nms = ffi.new("hailo_nms_info_t *")
        self._fill_c(c_nms)
        shape = ffi.new("hailo_nms_shape_t *")
        if lib.hailo_get_nms_shape(c_nms, shape) != lib.HAILO_SUCCESS:
            raise HailoInvalidArgumentError(f"{self}: no NMS host shape (a count is 0, or a "
                                            "maximum does not fit a uint32)")
        return NmsShape(shape.number_of_classes, shape.max_bboxes_per_class,
                        shape.max_bboxes_total, shape.max_accumulated_mask_size)

    def to_dict(self) -> dict[str, Any]:
        """The five fields every reader knows, then those after chunks_per_frame that differ
        from their defaults (so a reader written before they existed still reads every
        stream that does not use them); the C field order."""
        data: dict[str, Any] = {name: getattr(self, name) for name in self._UINT32_FIELDS}
        data.update(is_defused=self.is_defused, defuse_info=self.defuse_info.to_dict(),
                    burst_type=_enum_to_json(self.burst_type))
        default = NmsInfo(1, 1)
        return {f.name: data[f.name] for i, f in enumerate(dataclasses.fields(self))
                if i < 5 or getattr(self, f.name) != getattr(default, f.name)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NmsInfo:
        """The inverse of to_dict; the fields after chunks_per_frame may be missing (dicts
        written before they existed) and take their defaults."""
        data = _mapping(data, "nms info")
        _check_keys(data, cls, "nms info")
        return cls(**data)

    def _fill_c(self, c_nms) -> None:
        for name in self._UINT32_FIELDS:
            setattr(c_nms, name, getattr(self, name))
        c_nms.is_defused = self.is_defused
        c_nms.defuse_info.class_group_index = self.defuse_info.class_group_index
        c_nms.defuse_info.original_name = self.defuse_info.original_name.encode("utf-8")
        c_nms.burst_type = int(self.burst_type)


class _CStreamInfo:
    """A hailo_stream_info_t and the per-feature QP array its `quant_infos` points to."""

    __slots__ = ("ptr", "_quant_infos")

    def __init__(self, ptr, quant_infos):
        self.ptr = ptr
        self._quant_infos = quant_infos


@dataclass(frozen=True, eq=True)
class StreamInfo:
    """hailo_stream_info_t: what the network expects (H2D) or returns (D2H).

    ``shape`` is the logical shape, ``hw_shape`` the padded device shape, ``format`` the
    device format. ``quant_infos`` are per-feature QPs (outputs; empty when the stream has
    one QP, ``quant_info``). ``hw_data_bytes`` and ``hw_frame_size`` are computed by the C
    library from the format and hw_shape (and nms_info).
    """

    name: str
    direction: StreamDirection
    format: Format
    shape: ImageShape
    hw_shape: ImageShape
    quant_info: QuantInfo = field(default_factory=QuantInfo.identity)
    quant_infos: tuple[QuantInfo, ...] = ()
    nms_info: NmsInfo | None = None
    index: int = 0

    def __post_init__(self):
        if not isinstance(self.name, str):
            raise HailoInvalidArgumentError(f"stream name: expected str, got {self.name!r}")
        if len(self.name.encode("utf-8")) >= lib.HAILO_MAX_STREAM_NAME_SIZE or "\0" in self.name:
            raise HailoInvalidArgumentError(
                f"stream {self.name!r}: the name must be at most "
                f"{lib.HAILO_MAX_STREAM_NAME_SIZE - 1} UTF-8 bytes without NUL")
        what = f"stream {self.name!r}"
        object.__setattr__(self, "direction", _enum_value(StreamDirection, self.direction,
                                                          f"{what} direction"))
        for name, cls in (("format", Format), ("shape", ImageShape), ("hw_shape", ImageShape),
                          ("quant_info", QuantInfo)):
            if not isinstance(getattr(self, name), cls):
                raise HailoInvalidArgumentError(
                    f"{what}: {name} must be a {cls.__name__}, got {getattr(self, name)!r}")
        quant_infos = tuple(self.quant_infos)
        if not all(isinstance(qp, QuantInfo) for qp in quant_infos):
            raise HailoInvalidArgumentError(f"{what}: quant_infos must be QuantInfo values")
        if len(quant_infos) > lib.HAILO_MAX_QUANT_INFOS:
            raise HailoInvalidArgumentError(
                f"{what}: {len(quant_infos)} quant infos, at most {lib.HAILO_MAX_QUANT_INFOS}")
        object.__setattr__(self, "quant_infos", quant_infos)
        if self.nms_info is not None and not isinstance(self.nms_info, NmsInfo):
            raise HailoInvalidArgumentError(f"{what}: nms_info must be an NmsInfo or None")
        index = _uint32(self.index, f"{what} index")
        if index > 255:
            raise HailoInvalidArgumentError(f"{what}: index {index} does not fit a uint8")
        object.__setattr__(self, "index", index)

    # Computed by C. A frozen dataclass keeps them valid once computed.
    @functools.cached_property
    def hw_data_bytes(self) -> int:
        """Bytes of one device element (1 for UINT8, 2 for UINT16; 0 for AUTO/unknown)."""
        return int(lib.hailo_get_format_type_size(int(self.format.type)))

    @functools.cached_property
    def hw_frame_size(self) -> int:
        """Bytes of one device frame, padded to a multiple of 8 (0 if the info is invalid)."""
        return int(lib.hailo_get_hw_frame_size(self._to_c().ptr))

    @property
    def is_input(self) -> bool:
        return self.direction == StreamDirection.H2D

    @property
    def is_nms(self) -> bool:
        return self.format.order == FormatOrder.HAILO_NMS_ON_CHIP

    def per_feature_quant_infos(self) -> tuple[QuantInfo, ...]:
        """The QP of every feature: quant_infos when given, else quant_info repeated."""
        return self.quant_infos or (self.quant_info,) * self.shape.features

    def __str__(self) -> str:
        return (f"stream '{self.name}' ({'input' if self.is_input else 'output'}, "
                f"{self.format} {self.shape} hw {self.hw_shape})")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "direction": _enum_to_json(self.direction),
            "format": self.format.to_dict(),
            "shape": self.shape.to_dict(),
            "hw_shape": self.hw_shape.to_dict(),
            "quant_info": self.quant_info.to_dict(),
            "quant_infos": [qp.to_dict() for qp in self.quant_infos],
            "nms_info": None if self.nms_info is None else self.nms_info.to_dict(),
            "index": self.index,
            "hw_data_bytes": self.hw_data_bytes,
            "hw_frame_size": self.hw_frame_size,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StreamInfo:
        """The inverse of to_dict. hw_data_bytes / hw_frame_size, when present, must equal what
        this runtime computes (a mismatch means the two sides disagree on the layout)."""
        data = _mapping(data, "stream info")
        name = _required(data, "name", "stream info")
        what = f"stream info of {name!r}"
        nms = data.get("nms_info")
        info = cls(
            name=name,
            direction=_required(data, "direction", what),
            format=Format.from_dict(_required(data, "format", what)),
            shape=ImageShape.from_dict(_required(data, "shape", what)),
            hw_shape=ImageShape.from_dict(_required(data, "hw_shape", what)),
            quant_info=QuantInfo.from_dict(_required(data, "quant_info", what)),
            quant_infos=tuple(QuantInfo.from_dict(qp) for qp in _list(data.get("quant_infos", ()),
                                                                        f"{what}: quant_infos")),
            nms_info=None if nms is None else NmsInfo.from_dict(nms),
            index=data.get("index", 0),
        )
        for key in ("hw_data_bytes", "hw_frame_size"):
            if key in data and data[key] != getattr(info, key):
                raise HailoInvalidArgumentError(
                    f"{what}: {key} is {data[key]!r} but this runtime computes "
                    f"{getattr(info, key)} from its format and hw_shape")
        return info

    def _to_c(self) -> _CStreamInfo:
        """A C hailo_stream_info_t (and the QP array it points to); hw_data_bytes and
        hw_frame_size filled by the C library."""
        ptr = ffi.new("hailo_stream_info_t *")
        ptr.name = self.name.encode("utf-8")
        ptr.direction = int(self.direction)
        self.format._fill_c(ptr.format)
        self.shape._fill_c(ptr.shape)
        self.hw_shape._fill_c(ptr.hw_shape)
        self.quant_info._fill_c(ptr.quant_info)
        quant_infos = ffi.NULL
        if self.quant_infos:
            quant_infos = ffi.new("hailo_quant_info_t[]", len(self.quant_infos))
            for c_qp, qp in zip(quant_infos, self.quant_infos):
                qp._fill_c(c_qp)
        ptr.quant_infos = quant_infos
        ptr.quant_infos_count = len(self.quant_infos)
        if self.nms_info is not None:
            self.nms_info._fill_c(ptr.nms_info)
        ptr.index = self.index
        ptr.hw_data_bytes = lib.hailo_get_format_type_size(int(self.format.type))
        ptr.hw_frame_size = lib.hailo_get_hw_frame_size(ptr)
        return _CStreamInfo(ptr, quant_infos)


def _as_quant_infos(quant_info: QuantInfo | Iterable[QuantInfo]) -> tuple[QuantInfo, ...]:
    if isinstance(quant_info, QuantInfo):
        return (quant_info,)
    qps = tuple(quant_info)
    if not qps or not all(isinstance(qp, QuantInfo) for qp in qps):
        raise HailoInvalidArgumentError("expected a QuantInfo or a non-empty list of QuantInfo")
    return qps
