/*
 * hailo_stream.h - the host side of a Hailo-style device stream, in C11.
 *
 * What a stream is (hailo_stream_info_t: what the network expects or returns) and how a
 * user's buffer (hailo_transform_params_t: what the user sends or wants back) becomes a
 * device frame and back: quantize / dequantize, reorder, transpose, periph padding, NMS.
 *
 * Names and enum values follow HailoRT's public hailort.h so host code can move between
 * the two. Implemented from scratch; see docs/stream-layer.md for every layout.
 *
 * Conventions
 * - Every function that can fail returns a hailo_status. No function aborts, prints or
 *   writes outside the buffers it was given.
 * - Ownership is written on every function: "borrowed" arguments are only read during the
 *   call; "owned by the caller" results must be released with the named release function.
 * - No global mutable state. Distinct contexts may be used from distinct threads at once;
 *   one context must not be used from two threads at the same time.
 */
#ifndef HAILO_STREAM_H
#define HAILO_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HAILO_STREAM_LAYER_VERSION_MAJOR 0
#define HAILO_STREAM_LAYER_VERSION_MINOR 1
#define HAILO_STREAM_LAYER_VERSION_REVISION 0

#define HAILO_MAX_STREAM_NAME_SIZE 128
/* Every device frame is padded up to a multiple of this many bytes (periph padding). */
#define HAILO_HW_FRAME_ALIGNMENT 8
/* Largest number of per-feature quant infos an output stream may carry. */
#define HAILO_MAX_QUANT_INFOS 4096
/* Size of a device NMS proposal (score, y_min, x_min, y_max, x_max packed in 64 bits). */
#define HAILO_NMS_ON_CHIP_BBOX_SIZE 8
/* Size of one HAILO_NMS_BY_SCORE detection: 5 float32 + uint16 class id, packed. */
#define HAILO_NMS_BY_SCORE_DETECTION_SIZE 22
/* Room for a human-readable message (errors, step descriptions), NUL included. */
#define HAILO_MAX_MESSAGE_SIZE 512

/* ---------------------------------------------------------------- status codes --- */
/* Values are HailoRT's. */
typedef enum {
    HAILO_SUCCESS = 0,
    HAILO_UNINITIALIZED = 1,
    HAILO_INVALID_ARGUMENT = 2,
    HAILO_OUT_OF_HOST_MEMORY = 3,
    HAILO_TIMEOUT = 4,
    HAILO_INSUFFICIENT_BUFFER = 5,
    HAILO_INVALID_OPERATION = 6,
    HAILO_NOT_IMPLEMENTED = 7,
    HAILO_INTERNAL_FAILURE = 8,
    HAILO_DATA_ALIGNMENT_FAILURE = 9,
    HAILO_INVALID_FRAME = 25,
    HAILO_NOT_FOUND = 61,
    HAILO_COMMUNICATION_CLOSED = 62,
    HAILO_RPC_FAILED = 77,              /* the device server or its protocol failed */
    HAILO_INVALID_SERVICE_VERSION = 78, /* a device-protocol version the peer does not speak */
    HAILO_NOT_SUPPORTED = 79,
    HAILO_QUEUE_IS_FULL = 82,           /* the device server's work queue is full: retry later */
    HAILO_STATUS_MAX_ENUM = 0x7fffffff
} hailo_status;

/* A static, NUL-terminated name and meaning of a status ("HAILO_INVALID_ARGUMENT: ...").
 * Unknown values give "HAILO_UNKNOWN_STATUS". Never NULL; not to be freed. */
const char *hailo_get_status_message(hailo_status status);

/* ---------------------------------------------------------------------- version --- */
typedef struct {
    uint32_t major;
    uint32_t minor;
    uint32_t revision;
} hailo_version_t;

/* Writes the library's version. HAILO_INVALID_ARGUMENT if version is NULL. */
hailo_status hailo_get_library_version(hailo_version_t *version);

/* ---------------------------------------------------------------------- formats --- */
typedef enum {
    HAILO_FORMAT_TYPE_AUTO = 0,
    HAILO_FORMAT_TYPE_UINT8 = 1,
    HAILO_FORMAT_TYPE_UINT16 = 2,
    HAILO_FORMAT_TYPE_FLOAT32 = 3,
    HAILO_FORMAT_TYPE_MAX_ENUM = 0x7fffffff
} hailo_format_type_t;

typedef enum {
    HAILO_FORMAT_ORDER_AUTO = 0,
    HAILO_FORMAT_ORDER_NHWC = 1,
    HAILO_FORMAT_ORDER_NHCW = 2,
    HAILO_FORMAT_ORDER_FCR = 3,
    HAILO_FORMAT_ORDER_F8CR = 4,
    HAILO_FORMAT_ORDER_NHW = 5,
    HAILO_FORMAT_ORDER_NC = 6,
    HAILO_FORMAT_ORDER_BAYER_RGB = 7,
    HAILO_FORMAT_ORDER_12_BIT_BAYER_RGB = 8,
    HAILO_FORMAT_ORDER_HAILO_NMS = 9, /* deprecated */
    HAILO_FORMAT_ORDER_RGB888 = 10,
    HAILO_FORMAT_ORDER_NCHW = 11,
    HAILO_FORMAT_ORDER_YUY2 = 12,
    HAILO_FORMAT_ORDER_NV12 = 13,
    HAILO_FORMAT_ORDER_NV21 = 14,
    HAILO_FORMAT_ORDER_HAILO_YYUV = 15,
    HAILO_FORMAT_ORDER_HAILO_YYVU = 16,
    HAILO_FORMAT_ORDER_RGB4 = 17,
    HAILO_FORMAT_ORDER_I420 = 18,
    HAILO_FORMAT_ORDER_HAILO_YYYYUV = 19,
    HAILO_FORMAT_ORDER_HAILO_NMS_WITH_BYTE_MASK = 20,
    HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP = 21,
    HAILO_FORMAT_ORDER_HAILO_NMS_BY_CLASS = 22,
    HAILO_FORMAT_ORDER_HAILO_NMS_BY_SCORE = 23,
    HAILO_FORMAT_ORDER_MAX_ENUM = 0x7fffffff
} hailo_format_order_t;

typedef enum {
    HAILO_FORMAT_FLAGS_NONE = 0,
    HAILO_FORMAT_FLAGS_QUANTIZED = 1, /* legacy; ignored for every decision */
    HAILO_FORMAT_FLAGS_TRANSPOSED = 2,
    HAILO_FORMAT_FLAGS_MAX_ENUM = 0x7fffffff
} hailo_format_flags_t;

typedef struct {
    hailo_format_type_t type;
    hailo_format_order_t order;
    hailo_format_flags_t flags; /* bitwise OR of hailo_format_flags_t values */
} hailo_format_t;

typedef enum {
    HAILO_H2D_STREAM = 0,
    HAILO_D2H_STREAM = 1,
    HAILO_STREAM_DIRECTION_MAX_ENUM = 0x7fffffff
} hailo_stream_direction_t;

typedef enum {
    HAILO_STREAM_NO_TRANSFORM = 0,
    HAILO_STREAM_TRANSFORM_COPY = 1,
    HAILO_STREAM_TRANSFORM_MODE_MAX_ENUM = 0x7fffffff
} hailo_stream_transform_mode_t;

typedef struct {
    uint32_t height;
    uint32_t width;
    uint32_t features;
} hailo_3d_image_shape_t;

/* A tensor's quantization: real = (code - qp_zp) * qp_scale; limvals are the real range. */
typedef struct {
    float qp_zp;
    float qp_scale;
    float limvals_min;
    float limvals_max;
} hailo_quant_info_t;

/* NMS output description (device order HAILO_NMS_ON_CHIP). */
typedef struct {
    uint32_t number_of_classes;
    uint32_t max_bboxes_per_class;
    uint32_t max_bboxes_total;  /* cap for HAILO_NMS_BY_SCORE; 0 means classes * per class */
    uint32_t bbox_size;         /* bytes per device proposal: HAILO_NMS_ON_CHIP_BBOX_SIZE */
    uint32_t chunks_per_frame;  /* the device frame holds this many per-class blocks, merged */
} hailo_nms_info_t;

/*
 * What the network expects (H2D) or returns (D2H). `shape` is the logical shape, `hw_shape`
 * the padded device shape. `quant_info` is the stream's QP; output streams may instead carry
 * per-feature QPs in `quant_infos[0 .. quant_infos_count)` (borrowed: they must stay valid
 * while a call that takes this stream info runs; contexts copy them). `nms_info` is used
 * when format.order is HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP.
 */
typedef struct {
    char name[HAILO_MAX_STREAM_NAME_SIZE];
    hailo_stream_direction_t direction;
    hailo_format_t format;
    hailo_3d_image_shape_t shape;
    hailo_3d_image_shape_t hw_shape;
    uint32_t hw_data_bytes;
    uint32_t hw_frame_size;
    hailo_quant_info_t quant_info;
    const hailo_quant_info_t *quant_infos;
    uint32_t quant_infos_count;
    hailo_nms_info_t nms_info;
    uint8_t index;
} hailo_stream_info_t;

/* What the user sends (input) or wants back (output): HailoRT's user buffer format. */
typedef struct {
    hailo_stream_transform_mode_t transform_mode;
    hailo_format_t user_buffer_format;
} hailo_transform_params_t;

/* The part of a vstream's params a host program sets. */
typedef struct {
    hailo_format_t user_buffer_format;
    uint32_t queue_size;
    uint32_t timeout_ms;
} hailo_vstream_params_t;

/* ------------------------------------------------------------------ frame sizes --- */

/* Bytes of one element of `type` (1, 2, 4); 0 for AUTO or an unknown type. */
size_t hailo_get_format_type_size(hailo_format_type_t type);

/* Elements of one host frame of `shape` in `order`:
 * H * align_up(W * C, row_align) with row_align 4 for RGB4 and 1 otherwise; NC: C; NHW: H*W;
 * NV12/NV21/I420: H*W*3/2; NMS orders: see hailo_get_host_frame_size. 0 on bad arguments. */
size_t hailo_get_shape_size(const hailo_3d_image_shape_t *shape, hailo_format_order_t order);

/* Bytes of one device frame of the stream: its hw_shape in its device order, times
 * hw_data_bytes, padded up to HAILO_HW_FRAME_ALIGNMENT. For NMS: chunks * classes *
 * (2 + max_bboxes_per_class * bbox_size), padded. 0 on bad arguments. */
size_t hailo_get_hw_frame_size(const hailo_stream_info_t *stream_info);

/* Fills stream_info->hw_data_bytes and hw_frame_size from its format and hw_shape. */
hailo_status hailo_fill_hw_frame_size(hailo_stream_info_t *stream_info);

/* Bytes of one host frame the user passes for this stream with these params (AUTO
 * resolved). NMS by class: classes * (1 + 5 * max_bboxes_per_class) * 4. NMS by score:
 * 2 + max_bboxes_total * 22. 0 when the pair is not supported. */
size_t hailo_get_host_frame_size(const hailo_stream_info_t *stream_info,
                                 const hailo_transform_params_t *transform_params);

/* AUTO type/order of the user format replaced by what the stream resolves them to. */
hailo_status hailo_resolve_user_format(const hailo_stream_info_t *stream_info,
                                       const hailo_format_t *user_format,
                                       hailo_format_t *resolved);

/* ------------------------------------------------------------ decision functions --- */
/* Each writes *required. HAILO_INVALID_ARGUMENT for NULL or unknown enum values. */
hailo_status hailo_is_quantization_required(hailo_format_type_t src_type,
                                            hailo_format_type_t dst_type, bool *required);
hailo_status hailo_is_transpose_required(const hailo_format_t *src_format,
                                         const hailo_format_t *dst_format, bool *required);
hailo_status hailo_is_reorder_required(const hailo_3d_image_shape_t *src_shape,
                                       const hailo_format_t *src_format,
                                       const hailo_3d_image_shape_t *dst_shape,
                                       const hailo_format_t *dst_format, bool *required);
hailo_status hailo_is_periph_padding_required(size_t frame_bytes, bool *required);

/* Whether any step at all runs between the user format and the device format. */
hailo_status hailo_is_input_transformation_required(const hailo_stream_info_t *stream_info,
                                                    const hailo_transform_params_t *params,
                                                    bool *required);
hailo_status hailo_is_output_transformation_required(const hailo_stream_info_t *stream_info,
                                                     const hailo_transform_params_t *params,
                                                     bool *required);

/*
 * Checks that a context can be made for this stream and user params, without making one.
 * On failure writes a message naming the stream and what is wrong into msg (at most
 * msg_size bytes, NUL-terminated; msg may be NULL). Borrowed arguments.
 */
hailo_status hailo_check_transform_params(const hailo_stream_info_t *stream_info,
                                          const hailo_transform_params_t *params,
                                          char *msg, size_t msg_size);

/* ------------------------------------------------------ quantize / dequantize --- */
/*
 * Host float32 -> device codes, HailoRT's arithmetic (see docs/stream-layer.md):
 * identity QP (scale 1, zp 0): q = round_half_even(x), saturated to the type's range;
 * otherwise q = round_half_even(clip(x, lo, hi) / scale + zp), saturated. NaN -> lo.
 * `count` elements; src and dst must not overlap. dst_type UINT8 or UINT16.
 * HAILO_INVALID_ARGUMENT: NULL, another dst_type, a scale that is not finite and > 0,
 * overlapping buffers.
 */
hailo_status hailo_quantize_input_buffer(const float *src, void *dst, size_t count,
                                         hailo_format_type_t dst_type,
                                         const hailo_quant_info_t *quant_info);

/* Device codes -> float32: y = (float(q) - zp) * scale. src_type UINT8 or UINT16.
 * HAILO_INVALID_ARGUMENT as for hailo_quantize_input_buffer. */
hailo_status hailo_dequantize_output_buffer(const void *src, float *dst, size_t count,
                                            hailo_format_type_t src_type,
                                            const hailo_quant_info_t *quant_info);

/* ---------------------------------------------------------- transform contexts --- */
typedef struct hailo_input_transform_context_s *hailo_input_transform_context;
typedef struct hailo_output_transform_context_s *hailo_output_transform_context;

/*
 * Creates a context turning user frames into device frames of stream_info. stream_info and
 * params are borrowed (copied, with any per-feature QPs). On success *context is owned by
 * the caller: release it with hailo_release_input_transform_context.
 * HAILO_INVALID_ARGUMENT: NULL, unknown enum, inconsistent shapes, wrong direction;
 * HAILO_INVALID_OPERATION: a type/order pair that is not supported (hailo_check_transform_params
 * says which); HAILO_OUT_OF_HOST_MEMORY.
 */
hailo_status hailo_create_input_transform_context(const hailo_stream_info_t *stream_info,
                                                  const hailo_transform_params_t *params,
                                                  hailo_input_transform_context *context);

/* Releases a context (NULL is allowed and does nothing). */
hailo_status hailo_release_input_transform_context(hailo_input_transform_context context);

/*
 * One user frame (src, src_size bytes) -> one device frame (dst, dst_size bytes).
 * Sizes must equal the context's host and device frame sizes exactly, else
 * HAILO_INSUFFICIENT_BUFFER and nothing is written. Buffers are borrowed and must not
 * overlap. Padding bytes in dst are written as zeros.
 */
hailo_status hailo_transform_frame_by_input_transform_context(
    hailo_input_transform_context context, const void *src, size_t src_size, void *dst,
    size_t dst_size);

/* The context's host (user) and device frame sizes in bytes. */
size_t hailo_input_transform_context_get_src_frame_size(hailo_input_transform_context context);
size_t hailo_input_transform_context_get_dst_frame_size(hailo_input_transform_context context);

/*
 * Writes into msg (NUL-terminated, at most msg_size bytes) the steps the context runs, e.g.
 * "quantize FLOAT32->UINT8 (scale=0.0078125, zp=128) | reorder NHWC(224x224x3) ->
 * NHCW(224x224x3 hw 224x224x3) | periph padding 150528->150528", or "copy" when none.
 */
hailo_status hailo_describe_input_transform_context(hailo_input_transform_context context,
                                                    char *msg, size_t msg_size);

/* Output direction: device frame -> user frame. Same contracts as the input functions. */
hailo_status hailo_create_output_transform_context(const hailo_stream_info_t *stream_info,
                                                   const hailo_transform_params_t *params,
                                                   hailo_output_transform_context *context);
hailo_status hailo_release_output_transform_context(hailo_output_transform_context context);
hailo_status hailo_transform_frame_by_output_transform_context(
    hailo_output_transform_context context, const void *src, size_t src_size, void *dst,
    size_t dst_size);
size_t hailo_output_transform_context_get_src_frame_size(hailo_output_transform_context context);
size_t hailo_output_transform_context_get_dst_frame_size(hailo_output_transform_context context);
hailo_status hailo_describe_output_transform_context(hailo_output_transform_context context,
                                                     char *msg, size_t msg_size);

/* ---------------------------------------------------------------------- NMS --- */
/*
 * Device HAILO_NMS_ON_CHIP frame -> host HAILO_NMS_BY_CLASS float32 frame.
 * Device frame: chunks_per_frame blocks, each: for every class a uint16 count then count
 * 64-bit proposals (score bits 48-63, y_min 36-47, x_min 24-35, y_max 12-23, x_max 0-11),
 * little endian; counts of a class across chunks are merged (capped at max_bboxes_per_class).
 * Host frame: for every class, packed back to back: count (as float), then count x
 * [y_min, x_min, y_max, x_max, score], dequantized with quant_info; the rest zero.
 * src_size: at least the payload, chunks * classes * (2 + max_bboxes_per_class * 8);
 * dst_size: exactly classes * (1 + 5 * max_bboxes_per_class) * 4; else
 * HAILO_INSUFFICIENT_BUFFER. HAILO_INVALID_FRAME (nothing written) when a count is above
 * max_bboxes_per_class. HAILO_INVALID_ARGUMENT: NULL, a zero field or a bbox_size other
 * than 8 in nms_info, an invalid scale, overlapping buffers. Each call allocates its
 * workspace (HAILO_OUT_OF_HOST_MEMORY); an output context does that once. Buffers borrowed.
 */
hailo_status hailo_nms_decode_by_class(const void *src, size_t src_size, float *dst,
                                       size_t dst_size, const hailo_nms_info_t *nms_info,
                                       const hailo_quant_info_t *quant_info);

/*
 * Device HAILO_NMS_ON_CHIP frame -> host HAILO_NMS_BY_SCORE frame: uint16 count, then
 * count detections {y_min, x_min, y_max, x_max, score: float32; class_id: uint16}
 * (22 bytes, packed, little endian) over all classes, sorted by score (descending; ties
 * keep class then device order), capped at max_bboxes_total; the rest zero. dst_size:
 * exactly 2 + max_bboxes_total * 22 (0 total: classes * max_bboxes_per_class, at most
 * 65535); otherwise the statuses of hailo_nms_decode_by_class.
 */
hailo_status hailo_nms_decode_by_score(const void *src, size_t src_size, void *dst,
                                       size_t dst_size, const hailo_nms_info_t *nms_info,
                                       const hailo_quant_info_t *quant_info);

#ifdef __cplusplus
}
#endif

#endif /* HAILO_STREAM_H */
