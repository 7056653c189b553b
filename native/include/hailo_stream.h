/*
 * hailo_stream.h - the host side of a Hailo-style device stream, in C11.
 *
 * What a stream is (hailo_stream_info_t: what the network expects or returns) and how a
 * user's buffer (hailo_transform_params_t: what the user sends or wants back) becomes a
 * device frame and back: quantize / dequantize, reorder, transpose, periph padding, NMS.
 *
 * Implemented from scratch; see docs/stream-layer.md for every layout.
 *
 * This library and HailoRT's libhailort (hailo/hailort.h)
 * - Same names: where HailoRT has the concept, the type, enum value, status or function
 *   carries HailoRT's name (enum values and statuses their values too), so host code reads
 *   the same. What HailoRT lacks (hailo_check_*, hailo_describe_*, ...) is this library's own.
 * - Different struct layouts: the structs are this library's own and some differ from
 *   HailoRT's (hailo_stream_info_t: other fields, in another order), so code compiled
 *   against one header works only with that header's library.
 * - A program links one of them: this library (libhailo_stream.a or .so, with this header)
 *   or libhailort (with hailort.h). Never both in one link, nor both headers in one
 *   translation unit: the function names collide, so the link fails or calls bind to
 *   whichever library comes first, passing it the other one's structs.
 * - Only the functions marked HAILO_STREAM_API are exported. The Python extension
 *   (hailort_py._native) compiles this library in and exports none of them, so it may share
 *   a process with pyhailort / libhailort.
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

/* Marks the public functions: the shared library is built with -fvisibility=hidden, so
 * these are its only exports. HAILO_STREAM_STATIC (the library compiled into another module,
 * or a static link on Windows): no export, no import. HAILO_STREAM_BUILD: building the DLL. */
#if defined(HAILO_STREAM_STATIC)
#define HAILO_STREAM_API
#elif defined(_WIN32) || defined(__CYGWIN__)
#if defined(HAILO_STREAM_BUILD)
#define HAILO_STREAM_API __declspec(dllexport)
#else
#define HAILO_STREAM_API __declspec(dllimport)
#endif
#elif defined(__GNUC__) || defined(__clang__)
#define HAILO_STREAM_API __attribute__((visibility("default")))
#else
#define HAILO_STREAM_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define HAILO_STREAM_LAYER_VERSION_MAJOR 0
#define HAILO_STREAM_LAYER_VERSION_MINOR 2
#define HAILO_STREAM_LAYER_VERSION_REVISION 0

#define HAILO_MAX_STREAM_NAME_SIZE 128
/* Every device frame except NMS is padded up to a multiple of this many bytes (periph
 * padding). NMS frames have HailoRT's size (hailo_get_hw_frame_size), unpadded. */
#define HAILO_HW_FRAME_ALIGNMENT 8
/* Largest number of per-feature quant infos an output stream may carry. */
#define HAILO_MAX_QUANT_INFOS 4096
/* Size of a device NMS proposal (score, y_min, x_min, y_max, x_max packed in 64 bits). */
#define HAILO_NMS_ON_CHIP_BBOX_SIZE 8
/* Size of one HAILO_NMS_BY_SCORE detection: 5 float32 + uint16 class id, packed. */
#define HAILO_NMS_BY_SCORE_DETECTION_SIZE 22
/* A HAILO_NMS_BY_SCORE frame counts its detections in a uint16. */
#define HAILO_NMS_BY_SCORE_MAX_DETECTIONS 65535
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
HAILO_STREAM_API
const char *hailo_get_status_message(hailo_status status);

/* ---------------------------------------------------------------------- version --- */
typedef struct {
    uint32_t major;
    uint32_t minor;
    uint32_t revision;
} hailo_version_t;

/* Writes the library's version. HAILO_INVALID_ARGUMENT if version is NULL. */
HAILO_STREAM_API
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

/* Where a defused NMS output came from (HailoRT's hailo_nms_defuse_info_t). Carried, never
 * used by a transform: hailo_fuse_nms_frames is not part of this layer. */
typedef struct {
    uint32_t class_group_index;
    char original_name[HAILO_MAX_STREAM_NAME_SIZE];
} hailo_nms_defuse_info_t;

/* How the device delivers NMS proposals (HailoRT's values). It changes the transfers, not
 * the frame a transform reads; any of these is accepted. */
typedef enum {
    HAILO_BURST_TYPE_H8_BBOX = 0,
    HAILO_BURST_TYPE_H15_BBOX = 1,
    HAILO_BURST_TYPE_H8_PER_CLASS = 2,
    HAILO_BURST_TYPE_H15_PER_CLASS = 3,
    HAILO_BURST_TYPE_H15_PER_FRAME = 4,
    HAILO_BURST_TYPE_COUNT = 5
} hailo_nms_burst_type_t;

/*
 * NMS output description (device order HAILO_NMS_ON_CHIP), field for field HailoRT's
 * hailo_nms_info_t. A device frame is chunks_per_frame chunks; a chunk holds, for every
 * class, a uint16 count (at most max_bboxes_per_class) then that many proposals. The host
 * frame keeps every proposal of every chunk: a class holds up to
 * chunks_per_frame * max_bboxes_per_class of them (hailo_get_nms_shape).
 */
typedef struct {
    uint32_t number_of_classes;
    uint32_t max_bboxes_per_class; /* per class and chunk, on the device                     */
    uint32_t max_bboxes_total;     /* cap of HAILO_NMS_BY_SCORE; 0: classes * chunks * per class */
    uint32_t bbox_size;            /* bytes per device proposal: HAILO_NMS_ON_CHIP_BBOX_SIZE  */
    uint32_t chunks_per_frame;
    bool is_defused;               /* carried, not used by a transform                        */
    hailo_nms_defuse_info_t defuse_info;
    uint32_t burst_size;           /* proposals per burst; 0 or 1 when the device sends no bursts */
    hailo_nms_burst_type_t burst_type;
} hailo_nms_info_t;

/* The host side of an NMS output (HailoRT's hailo_nms_shape_t, as in its vstream info). */
typedef struct {
    uint32_t number_of_classes;
    uint32_t max_bboxes_per_class; /* nms_info's times chunks_per_frame                     */
    uint32_t max_bboxes_total;     /* nms_info's, or number_of_classes * the above when 0     */
    uint32_t max_accumulated_mask_size; /* HAILO_NMS_WITH_BYTE_MASK only: always 0 here       */
} hailo_nms_shape_t;

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

/* HailoRT's default transform params: copy with AUTO type and order (the legacy QUANTIZED
 * flag is ignored here). An initializer for C and C++:
 *   hailo_transform_params_t params = HAILO_DEFAULT_TRANSFORM_PARAMS; */
#define HAILO_DEFAULT_TRANSFORM_PARAMS { HAILO_STREAM_TRANSFORM_COPY, { HAILO_FORMAT_TYPE_AUTO, HAILO_FORMAT_ORDER_AUTO, HAILO_FORMAT_FLAGS_QUANTIZED } }

/* The part of a vstream's params a host program sets. */
typedef struct {
    hailo_format_t user_buffer_format;
    uint32_t queue_size;
    uint32_t timeout_ms;
} hailo_vstream_params_t;

/* ------------------------------------------------------------------ frame sizes --- */

/* Bytes of one element of `type` (1, 2, 4); 0 for AUTO or an unknown type. */
HAILO_STREAM_API
size_t hailo_get_format_type_size(hailo_format_type_t type);

/* Elements of one host frame of `shape` in `order`:
 * H * align_up(W * C, row_align) with row_align 4 for RGB4 and 1 otherwise; NC: C; NHW: H*W;
 * NV12/NV21/I420: H*W*3/2; NMS orders: see hailo_get_host_frame_size. 0 on bad arguments. */
HAILO_STREAM_API
size_t hailo_get_shape_size(const hailo_3d_image_shape_t *shape, hailo_format_order_t order);

/* Bytes of one device frame of the stream: its hw_shape in its device order, times
 * hw_data_bytes, padded up to HAILO_HW_FRAME_ALIGNMENT. For NMS, HailoRT's
 * get_nms_hw_frame_size, not padded: chunks * classes * (2 + bbox_size * max(burst_size,
 * max_bboxes_per_class)) + bbox_size * burst_size. 0 on bad arguments or above 4 GiB - 1. */
HAILO_STREAM_API
size_t hailo_get_hw_frame_size(const hailo_stream_info_t *stream_info);

/* Fills stream_info->hw_data_bytes and hw_frame_size from its format and hw_shape. */
HAILO_STREAM_API
hailo_status hailo_fill_hw_frame_size(hailo_stream_info_t *stream_info);

/* Bytes of one host frame the user passes for this stream with these params (AUTO
 * resolved). NMS by class: classes * (1 + 5 * chunks * max_bboxes_per_class) * 4. NMS by
 * score: 2 + total * 22, total from hailo_get_nms_shape. 0 when the pair is not supported. */
HAILO_STREAM_API
size_t hailo_get_host_frame_size(const hailo_stream_info_t *stream_info,
                                 const hailo_transform_params_t *transform_params);

/* The host shape of an NMS output: per-class maximum chunks_per_frame * max_bboxes_per_class,
 * total maximum max_bboxes_total or classes * that. HAILO_INVALID_ARGUMENT: NULL, a zero
 * classes / max_bboxes_per_class / chunks_per_frame, or a maximum above UINT32_MAX. */
HAILO_STREAM_API
hailo_status hailo_get_nms_shape(const hailo_nms_info_t *nms_info, hailo_nms_shape_t *nms_shape);

/* AUTO type/order of the user format replaced by what the stream resolves them to: the
 * first host order of the device order; the device type, except FLOAT32 for
 * HAILO_NMS_BY_CLASS and UINT8 for HAILO_NMS_BY_SCORE (HailoRT's defaults). */
HAILO_STREAM_API
hailo_status hailo_resolve_user_format(const hailo_stream_info_t *stream_info,
                                       const hailo_format_t *user_format,
                                       hailo_format_t *resolved);

/* ------------------------------------------------------------ decision functions --- */
/* Each writes *required. HAILO_INVALID_ARGUMENT for NULL or unknown enum values. */
HAILO_STREAM_API
hailo_status hailo_is_quantization_required(hailo_format_type_t src_type,
                                            hailo_format_type_t dst_type, bool *required);
HAILO_STREAM_API
hailo_status hailo_is_transpose_required(const hailo_format_t *src_format,
                                         const hailo_format_t *dst_format, bool *required);
HAILO_STREAM_API
hailo_status hailo_is_reorder_required(const hailo_3d_image_shape_t *src_shape,
                                       const hailo_format_t *src_format,
                                       const hailo_3d_image_shape_t *dst_shape,
                                       const hailo_format_t *dst_format, bool *required);
HAILO_STREAM_API
hailo_status hailo_is_periph_padding_required(size_t frame_bytes, bool *required);

/* Whether any step at all runs between the user format and the device format. */
HAILO_STREAM_API
hailo_status hailo_is_input_transformation_required(const hailo_stream_info_t *stream_info,
                                                    const hailo_transform_params_t *params,
                                                    bool *required);
HAILO_STREAM_API
hailo_status hailo_is_output_transformation_required(const hailo_stream_info_t *stream_info,
                                                     const hailo_transform_params_t *params,
                                                     bool *required);

/*
 * Check a (stream, user params) pair without making a context: the status that
 * hailo_create_input_transform_context / hailo_create_output_transform_context gives for
 * it (HAILO_OUT_OF_HOST_MEMORY aside), so an output stream checked as an input is
 * HAILO_INVALID_ARGUMENT. On failure writes a message naming the stream and what is wrong
 * into msg (at most msg_size bytes, NUL-terminated; msg may be NULL); on success msg is "".
 * Borrowed arguments.
 */
HAILO_STREAM_API
hailo_status hailo_check_input_transform_params(const hailo_stream_info_t *stream_info,
                                                const hailo_transform_params_t *params,
                                                char *msg, size_t msg_size);
HAILO_STREAM_API
hailo_status hailo_check_output_transform_params(const hailo_stream_info_t *stream_info,
                                                 const hailo_transform_params_t *params,
                                                 char *msg, size_t msg_size);
/* The same for the stream's own direction (stream_info->direction): what creating the
 * context of that direction gives. */
HAILO_STREAM_API
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
 * a QP other than the identity whose limvals are not ordered (limvals_min > limvals_max
 * or a NaN: HailoRT's clip and this one disagree there), overlapping buffers.
 */
HAILO_STREAM_API
hailo_status hailo_quantize_input_buffer(const float *src, void *dst, size_t count,
                                         hailo_format_type_t dst_type,
                                         const hailo_quant_info_t *quant_info);

/* Device codes -> float32: y = (float(q) - zp) * scale. src_type UINT8 or UINT16.
 * HAILO_INVALID_ARGUMENT as for hailo_quantize_input_buffer. */
HAILO_STREAM_API
hailo_status hailo_dequantize_output_buffer(const void *src, float *dst, size_t count,
                                            hailo_format_type_t src_type,
                                            const hailo_quant_info_t *quant_info);

/* ---------------------------------------------------------- transform contexts --- */
typedef struct hailo_input_transform_context_s *hailo_input_transform_context;
typedef struct hailo_output_transform_context_s *hailo_output_transform_context;

/*
 * Creates a context turning user frames into device frames of stream_info. stream_info and
 * params are borrowed (copied, with any per-feature QPs). On success *context is owned by
 * the caller: release it with hailo_release_input_transform_context. On failure *context
 * is set to NULL (when context itself is not NULL).
 * HAILO_INVALID_ARGUMENT: NULL, unknown enum, inconsistent shapes, wrong direction, an
 * unusable QP (scale not finite and > 0; for the quantize step, limvals not ordered);
 * HAILO_INVALID_OPERATION: a type/order pair that is not supported;
 * hailo_check_input_transform_params gives the same status and says why;
 * HAILO_OUT_OF_HOST_MEMORY.
 */
HAILO_STREAM_API
hailo_status hailo_create_input_transform_context(const hailo_stream_info_t *stream_info,
                                                  const hailo_transform_params_t *params,
                                                  hailo_input_transform_context *context);

/* Releases a context (NULL is allowed and does nothing). */
HAILO_STREAM_API
hailo_status hailo_release_input_transform_context(hailo_input_transform_context context);

/*
 * One user frame (src, src_size bytes) -> one device frame (dst, dst_size bytes). Checked
 * in this order, and on any failure nothing is written:
 *   context, src or dst NULL                                   HAILO_INVALID_ARGUMENT
 *   src_size / dst_size not the context's host / device frame  HAILO_INSUFFICIENT_BUFFER
 *   src and dst share a byte                                   HAILO_INVALID_ARGUMENT
 * Buffers are borrowed. Padding bytes in dst are written as zeros.
 */
HAILO_STREAM_API
hailo_status hailo_transform_frame_by_input_transform_context(
    hailo_input_transform_context context, const void *src, size_t src_size, void *dst,
    size_t dst_size);

/* The context's host (user) and device frame sizes in bytes. */
HAILO_STREAM_API
size_t hailo_input_transform_context_get_src_frame_size(hailo_input_transform_context context);
HAILO_STREAM_API
size_t hailo_input_transform_context_get_dst_frame_size(hailo_input_transform_context context);

/*
 * Writes into msg (NUL-terminated, at most msg_size bytes) the steps the context runs, e.g.
 * "quantize FLOAT32->UINT8 (scale=0.0078125, zp=128) | reorder NHWC(224x224x3) ->
 * NHCW(224x224x3 hw 224x224x3) | periph padding 150528->150528", or "copy" when none.
 */
HAILO_STREAM_API
hailo_status hailo_describe_input_transform_context(hailo_input_transform_context context,
                                                    char *msg, size_t msg_size);

/* Output direction: device frame -> user frame. Same contracts as the input functions;
 * an NMS decode also gives HAILO_INVALID_FRAME (nothing written) for a malformed frame. */
HAILO_STREAM_API
hailo_status hailo_create_output_transform_context(const hailo_stream_info_t *stream_info,
                                                   const hailo_transform_params_t *params,
                                                   hailo_output_transform_context *context);
HAILO_STREAM_API
hailo_status hailo_release_output_transform_context(hailo_output_transform_context context);
HAILO_STREAM_API
hailo_status hailo_transform_frame_by_output_transform_context(
    hailo_output_transform_context context, const void *src, size_t src_size, void *dst,
    size_t dst_size);
HAILO_STREAM_API
size_t hailo_output_transform_context_get_src_frame_size(hailo_output_transform_context context);
HAILO_STREAM_API
size_t hailo_output_transform_context_get_dst_frame_size(hailo_output_transform_context context);
HAILO_STREAM_API
hailo_status hailo_describe_output_transform_context(hailo_output_transform_context context,
                                                     char *msg, size_t msg_size);

/* ---------------------------------------------------------------------- NMS --- */
/*
 * Device HAILO_NMS_ON_CHIP frame -> host HAILO_NMS_BY_CLASS float32 frame (HailoRT's
 * transform__d2h_NMS, then the dequantize).
 * Device frame: chunks_per_frame chunks, each: for every class a uint16 count (at most
 * max_bboxes_per_class) then count 64-bit proposals (score bits 48-63, y_min 36-47, x_min
 * 24-35, y_max 12-23, x_max 0-11), packed back to back, little endian.
 * Host frame: for every class, packed back to back: count (as float), then count x
 * [y_min, x_min, y_max, x_max, score] dequantized with quant_info, where a class holds every
 * proposal of that class of every chunk, in chunk order (count up to chunks *
 * max_bboxes_per_class); the rest zero.
 * src_size: at least what the counts can reach, chunks * classes * (2 + max_bboxes_per_class
 * * 8) (a frame of hailo_get_hw_frame_size bytes is more); dst_size: exactly
 * classes * (1 + 5 * chunks * max_bboxes_per_class) * 4; else HAILO_INSUFFICIENT_BUFFER.
 * HAILO_INVALID_FRAME (nothing written) when a count is above max_bboxes_per_class.
 * HAILO_INVALID_ARGUMENT: NULL, a zero field, a bbox_size other than 8 or an unknown
 * burst_type in nms_info, an invalid scale, overlapping buffers. Each call allocates its
 * workspace (HAILO_OUT_OF_HOST_MEMORY); an output context does that once. Buffers borrowed.
 */
HAILO_STREAM_API
hailo_status hailo_nms_decode_by_class(const void *src, size_t src_size, float *dst,
                                       size_t dst_size, const hailo_nms_info_t *nms_info,
                                       const hailo_quant_info_t *quant_info);

/*
 * Device HAILO_NMS_ON_CHIP frame -> host HAILO_NMS_BY_SCORE frame (raw bytes, user type
 * UINT8 in HailoRT): uint16 count, then count detections {y_min, x_min, y_max, x_max,
 * score: float32; class_id: uint16} (22 bytes, packed, little endian): the proposals of
 * the by-class frame, sorted by score (descending; ties keep class, then chunk, then
 * device order), the first `total` of them; the rest zero. total: max_bboxes_total, or
 * when 0 classes * chunks * max_bboxes_per_class; at most 65535, and at most 65536 classes
 * (class ids are uint16), else HAILO_INVALID_ARGUMENT. dst_size: exactly 2 + total * 22;
 * otherwise the statuses of hailo_nms_decode_by_class.
 */
HAILO_STREAM_API
hailo_status hailo_nms_decode_by_score(const void *src, size_t src_size, void *dst,
                                       size_t dst_size, const hailo_nms_info_t *nms_info,
                                       const hailo_quant_info_t *quant_info);

#ifdef __cplusplus
}
#endif

#endif /* HAILO_STREAM_H */
