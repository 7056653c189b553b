/*
 * frame_size.c - frame sizes, AUTO resolution, the step decisions, and the validation of a
 * (stream info, user params) pair into an hs_plan. The order of the checks follows the
 * status table of docs/stream-layer.md and the numpy reference (tests/reference_stream.py),
 * so a stream with several faults reports the same status from C and from Python.
 */
#include "hs_internal.h"

#include <math.h>
#include <stdio.h>

/* hw_frame_size is a uint32_t in hailo_stream_info_t; host frames get the same bound. */
#define HS_MAX_FRAME_BYTES ((size_t)UINT32_MAX)
#define HS_MAX_NMS_BY_SCORE ((uint32_t)HAILO_NMS_BY_SCORE_MAX_DETECTIONS)
#define HS_MAX_NMS_BY_SCORE_CLASSES 65536u /* class ids 0..65535 (a uint16) */

/* ------------------------------------------------------------------- names --- */
const char *hs_type_name(hailo_format_type_t t)
{
    switch (t) {
    case HAILO_FORMAT_TYPE_AUTO: return "AUTO";
    case HAILO_FORMAT_TYPE_UINT8: return "UINT8";
    case HAILO_FORMAT_TYPE_UINT16: return "UINT16";
    case HAILO_FORMAT_TYPE_FLOAT32: return "FLOAT32";
    case HAILO_FORMAT_TYPE_MAX_ENUM: break;
    }
    return "UNKNOWN_TYPE";
}

const char *hs_order_name(hailo_format_order_t o)
{
    switch (o) {
    case HAILO_FORMAT_ORDER_AUTO: return "AUTO";
    case HAILO_FORMAT_ORDER_NHWC: return "NHWC";
    case HAILO_FORMAT_ORDER_NHCW: return "NHCW";
    case HAILO_FORMAT_ORDER_FCR: return "FCR";
    case HAILO_FORMAT_ORDER_F8CR: return "F8CR";
    case HAILO_FORMAT_ORDER_NHW: return "NHW";
    case HAILO_FORMAT_ORDER_NC: return "NC";
    case HAILO_FORMAT_ORDER_BAYER_RGB: return "BAYER_RGB";
    case HAILO_FORMAT_ORDER_12_BIT_BAYER_RGB: return "12_BIT_BAYER_RGB";
    case HAILO_FORMAT_ORDER_HAILO_NMS: return "HAILO_NMS";
    case HAILO_FORMAT_ORDER_RGB888: return "RGB888";
    case HAILO_FORMAT_ORDER_NCHW: return "NCHW";
    case HAILO_FORMAT_ORDER_YUY2: return "YUY2";
    case HAILO_FORMAT_ORDER_NV12: return "NV12";
    case HAILO_FORMAT_ORDER_NV21: return "NV21";
    case HAILO_FORMAT_ORDER_HAILO_YYUV: return "HAILO_YYUV";
    case HAILO_FORMAT_ORDER_HAILO_YYVU: return "HAILO_YYVU";
    case HAILO_FORMAT_ORDER_RGB4: return "RGB4";
    case HAILO_FORMAT_ORDER_I420: return "I420";
    case HAILO_FORMAT_ORDER_HAILO_YYYYUV: return "HAILO_YYYYUV";
    case HAILO_FORMAT_ORDER_HAILO_NMS_WITH_BYTE_MASK: return "HAILO_NMS_WITH_BYTE_MASK";
    case HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP: return "HAILO_NMS_ON_CHIP";
    case HAILO_FORMAT_ORDER_HAILO_NMS_BY_CLASS: return "HAILO_NMS_BY_CLASS";
    case HAILO_FORMAT_ORDER_HAILO_NMS_BY_SCORE: return "HAILO_NMS_BY_SCORE";
    case HAILO_FORMAT_ORDER_MAX_ENUM: break;
    }
    return "UNKNOWN_ORDER";
}

/* Enum values arrive from C callers, cffi and fuzzers: compare as unsigned. */
static int type_known(hailo_format_type_t t) { return (uint32_t)t <= 3u; }
static int order_known(hailo_format_order_t o) { return (uint32_t)o <= 23u; }
static int flags_known(hailo_format_flags_t f) { return ((uint32_t)f & ~3u) == 0u; }
static int is_transposed(hailo_format_flags_t f)
{
    return ((uint32_t)f & (uint32_t)HAILO_FORMAT_FLAGS_TRANSPOSED) != 0u;
}
static int format_known(const hailo_format_t *f)
{
    return type_known(f->type) && order_known(f->order) && flags_known(f->flags);
}

/* ---------------------------------------------------------- order pairs --- */
#define DIR_IN 1u
#define DIR_OUT 2u

typedef struct {
    hailo_format_order_t device;
    unsigned directions;
    hailo_format_order_t hosts[4]; /* the first is what AUTO resolves to */
    unsigned host_count;
} order_pair;

static const order_pair ORDER_PAIRS[] = {
    {HAILO_FORMAT_ORDER_NHCW, DIR_IN | DIR_OUT,
     {HAILO_FORMAT_ORDER_NHWC, HAILO_FORMAT_ORDER_NCHW, HAILO_FORMAT_ORDER_NHCW,
      HAILO_FORMAT_ORDER_RGB4}, 4},
    {HAILO_FORMAT_ORDER_NHWC, DIR_IN | DIR_OUT,
     {HAILO_FORMAT_ORDER_NHWC, HAILO_FORMAT_ORDER_RGB4}, 2},
    {HAILO_FORMAT_ORDER_FCR, DIR_IN | DIR_OUT,
     {HAILO_FORMAT_ORDER_NHWC, HAILO_FORMAT_ORDER_FCR}, 2},
    {HAILO_FORMAT_ORDER_F8CR, DIR_IN | DIR_OUT,
     {HAILO_FORMAT_ORDER_NHWC, HAILO_FORMAT_ORDER_F8CR}, 2},
    {HAILO_FORMAT_ORDER_NC, DIR_IN | DIR_OUT, {HAILO_FORMAT_ORDER_NC}, 1},
    {HAILO_FORMAT_ORDER_NHW, DIR_OUT, {HAILO_FORMAT_ORDER_NHW}, 1},
    {HAILO_FORMAT_ORDER_RGB888, DIR_IN, {HAILO_FORMAT_ORDER_NHWC}, 1},
    {HAILO_FORMAT_ORDER_YUY2, DIR_IN, {HAILO_FORMAT_ORDER_YUY2}, 1},
    {HAILO_FORMAT_ORDER_HAILO_YYUV, DIR_IN, {HAILO_FORMAT_ORDER_NV12}, 1},
    {HAILO_FORMAT_ORDER_HAILO_YYVU, DIR_IN, {HAILO_FORMAT_ORDER_NV21}, 1},
    {HAILO_FORMAT_ORDER_HAILO_YYYYUV, DIR_IN, {HAILO_FORMAT_ORDER_I420}, 1},
    {HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP, DIR_OUT,
     {HAILO_FORMAT_ORDER_HAILO_NMS_BY_CLASS, HAILO_FORMAT_ORDER_HAILO_NMS_BY_SCORE,
      HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP}, 3},
};

static const order_pair *find_pair(hailo_format_order_t device)
{
    for (size_t i = 0; i < sizeof ORDER_PAIRS / sizeof ORDER_PAIRS[0]; i++)
        if (ORDER_PAIRS[i].device == device) return &ORDER_PAIRS[i];
    return NULL;
}

static int is_yuv_device(hailo_format_order_t o)
{
    return o == HAILO_FORMAT_ORDER_YUY2 || o == HAILO_FORMAT_ORDER_HAILO_YYUV ||
           o == HAILO_FORMAT_ORDER_HAILO_YYVU || o == HAILO_FORMAT_ORDER_HAILO_YYYYUV;
}

/* --------------------------------------------------------------- sizes --- */
size_t hailo_get_format_type_size(hailo_format_type_t type)
{
    switch (type) {
    case HAILO_FORMAT_TYPE_UINT8: return 1;
    case HAILO_FORMAT_TYPE_UINT16: return 2;
    case HAILO_FORMAT_TYPE_FLOAT32: return 4;
    default: return 0;
    }
}

/* Product of up to four factors; 0 on overflow (a frame can never be 0 elements otherwise,
 * since every dimension is checked to be nonzero first). */
static size_t prod(size_t a, size_t b, size_t c, size_t d)
{
    size_t r;
    if (!hs_mul(a, b, &r) || !hs_mul(r, c, &r) || !hs_mul(r, d, &r)) return 0;
    return r;
}

/* Elements of a frame with rows h, width w, features c in `order` (host table, and the
 * device table for the device-only orders). 0 on bad arguments. */
static size_t order_elements(hailo_format_order_t order, size_t h, size_t w, size_t c)
{
    if (h == 0 || w == 0 || c == 0) return 0;
    switch (order) {
    case HAILO_FORMAT_ORDER_NHWC:
    case HAILO_FORMAT_ORDER_NHCW:
    case HAILO_FORMAT_ORDER_NCHW:
    case HAILO_FORMAT_ORDER_FCR:
    case HAILO_FORMAT_ORDER_F8CR:
    case HAILO_FORMAT_ORDER_YUY2:
        return prod(h, w, c, 1);
    case HAILO_FORMAT_ORDER_RGB4: {
        size_t row = prod(w, c, 1, 1);
        if (row == 0 || row > SIZE_MAX - 3) return 0;
        return prod(h, hs_align_up(row, 4), 1, 1);
    }
    case HAILO_FORMAT_ORDER_NHW: return prod(h, w, 1, 1);
    case HAILO_FORMAT_ORDER_NC: return (h == 1 && w == 1) ? c : 0;
    case HAILO_FORMAT_ORDER_RGB888: return prod(h, w, 4, 1);
    case HAILO_FORMAT_ORDER_NV12:
    case HAILO_FORMAT_ORDER_NV21:
    case HAILO_FORMAT_ORDER_I420:
    case HAILO_FORMAT_ORDER_HAILO_YYUV:
    case HAILO_FORMAT_ORDER_HAILO_YYVU:
    case HAILO_FORMAT_ORDER_HAILO_YYYYUV:
        if (h % 2 != 0 || w % 2 != 0) return 0;
        return prod(h / 2, 3, w, 1);
    default: return 0;
    }
}

size_t hailo_get_shape_size(const hailo_3d_image_shape_t *shape, hailo_format_order_t order)
{
    if (shape == NULL) return 0;
    return order_elements(order, shape->height, shape->width, shape->features);
}

/* Device payload in elements: the hw_shape in the device order (docs, second table). */
static size_t device_elements(hailo_format_order_t order, const hailo_3d_image_shape_t *hw)
{
    size_t hh = hw->height, hw_ = hw->width, hc = hw->features;
    if (hh == 0 || hw_ == 0 || hc == 0) return 0;
    switch (order) {
    case HAILO_FORMAT_ORDER_NHCW:
    case HAILO_FORMAT_ORDER_NHWC:
    case HAILO_FORMAT_ORDER_FCR: return prod(hh, hw_, hc, 1);
    case HAILO_FORMAT_ORDER_F8CR: return prod(hh, hs_align_up(hc, 8), hw_, 1);
    case HAILO_FORMAT_ORDER_NC: return hc;
    case HAILO_FORMAT_ORDER_NHW: return prod(hh, hw_, 1, 1);
    case HAILO_FORMAT_ORDER_RGB888: return prod(hh, hw_, 4, 1);
    case HAILO_FORMAT_ORDER_YUY2: return prod(hh, hw_, 2, 1);
    case HAILO_FORMAT_ORDER_HAILO_YYUV:
    case HAILO_FORMAT_ORDER_HAILO_YYVU:
    case HAILO_FORMAT_ORDER_HAILO_YYYYUV: return prod(hh / 2, 3, hw_, 1);
    default: return 0;
    }
}

/* chunks * classes * (2 + per_class * bbox_size) + extra * bbox_size; 0 on overflow. */
static size_t nms_bytes(const hailo_nms_info_t *nms, size_t per_class, size_t extra)
{
    size_t slot, body, tail;
    if (!hs_mul(per_class, nms->bbox_size, &slot) || slot > SIZE_MAX - 2) return 0;
    body = prod(nms->chunks_per_frame, nms->number_of_classes, slot + 2, 1);
    if (body == 0 || !hs_mul(extra, nms->bbox_size, &tail) || tail > SIZE_MAX - body) return 0;
    return body + tail;
}

size_t hs_nms_payload_bytes(const hailo_nms_info_t *nms)
{
    return nms_bytes(nms, nms->max_bboxes_per_class, 0);
}

/* HailoRT's HailoRTCommon::get_nms_hw_frame_size (hailort_common.hpp): every class slot
 * has room for max(burst_size, max_bboxes_per_class) proposals, and the frame for one more
 * burst (the device may write a whole burst past the last class). */
size_t hs_nms_frame_bytes(const hailo_nms_info_t *nms)
{
    uint32_t slot = nms->burst_size > nms->max_bboxes_per_class ? nms->burst_size
                                                               : nms->max_bboxes_per_class;
    return nms_bytes(nms, slot, nms->burst_size);
}

/* layer_info.hpp (get_vstream_info_from_layer_info_impl): the host's nms_shape has
 * max_bboxes_per_class * chunks_per_frame per class. */
uint64_t hs_nms_host_per_class(const hailo_nms_info_t *nms)
{
    return (uint64_t)nms->max_bboxes_per_class * nms->chunks_per_frame;
}

uint64_t hs_nms_total(const hailo_nms_info_t *nms)
{
    if (nms->max_bboxes_total != 0) return nms->max_bboxes_total;
    uint64_t per_class = hs_nms_host_per_class(nms);
    /* both factors < 2^64 / 2^32: cap instead of overflowing */
    if (per_class > UINT64_MAX / (nms->number_of_classes ? nms->number_of_classes : 1))
        return UINT64_MAX;
    return per_class * nms->number_of_classes;
}

size_t hs_nms_by_class_bytes(const hailo_nms_info_t *nms)
{
    uint64_t per_class = hs_nms_host_per_class(nms);
    size_t floats;
    if (per_class > (SIZE_MAX - 1) / 5) return 0;
    if (!hs_mul(nms->number_of_classes, (size_t)per_class * 5 + 1, &floats)) return 0;
    return prod(floats, 4, 1, 1);
}

hailo_status hailo_get_nms_shape(const hailo_nms_info_t *nms_info, hailo_nms_shape_t *nms_shape)
{
    if (nms_info == NULL || nms_shape == NULL) return HAILO_INVALID_ARGUMENT;
    if (nms_info->number_of_classes == 0 || nms_info->max_bboxes_per_class == 0 ||
        nms_info->chunks_per_frame == 0)
        return HAILO_INVALID_ARGUMENT;
    uint64_t per_class = hs_nms_host_per_class(nms_info), total = hs_nms_total(nms_info);
    if (per_class > UINT32_MAX || total > UINT32_MAX) return HAILO_INVALID_ARGUMENT;
    nms_shape->number_of_classes = nms_info->number_of_classes;
    nms_shape->max_bboxes_per_class = (uint32_t)per_class;
    nms_shape->max_bboxes_total = (uint32_t)total;
    nms_shape->max_accumulated_mask_size = 0;
    return HAILO_SUCCESS;
}

/* Device payload bytes (before periph padding; NMS: the whole frame, never padded); 0 on
 * bad arguments. */
static size_t device_payload_bytes(const hailo_stream_info_t *si)
{
    size_t ts = hailo_get_format_type_size(si->format.type);
    if (ts == 0 || ts > 2) return 0;
    if (si->format.order == HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP)
        return hs_nms_frame_bytes(&si->nms_info);
    return prod(device_elements(si->format.order, &si->hw_shape), ts, 1, 1);
}

size_t hailo_get_hw_frame_size(const hailo_stream_info_t *stream_info)
{
    if (stream_info == NULL) return 0;
    size_t payload = device_payload_bytes(stream_info);
    if (payload == 0 || payload > HS_MAX_FRAME_BYTES) return 0;
    if (stream_info->format.order == HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP) return payload;
    if (payload > HS_MAX_FRAME_BYTES - (HAILO_HW_FRAME_ALIGNMENT - 1)) return 0;
    return hs_align_up(payload, HAILO_HW_FRAME_ALIGNMENT);
}

hailo_status hailo_fill_hw_frame_size(hailo_stream_info_t *stream_info)
{
    if (stream_info == NULL) return HAILO_INVALID_ARGUMENT;
    hailo_format_type_t t = stream_info->format.type;
    if (t == HAILO_FORMAT_TYPE_FLOAT32) return HAILO_INVALID_OPERATION;
    if (t != HAILO_FORMAT_TYPE_UINT8 && t != HAILO_FORMAT_TYPE_UINT16) return HAILO_INVALID_ARGUMENT;
    size_t size = hailo_get_hw_frame_size(stream_info);
    if (size == 0) return HAILO_INVALID_ARGUMENT;
    stream_info->hw_data_bytes = (uint32_t)hailo_get_format_type_size(t);
    stream_info->hw_frame_size = (uint32_t)size;
    return HAILO_SUCCESS;
}

size_t hailo_get_host_frame_size(const hailo_stream_info_t *stream_info,
                                 const hailo_transform_params_t *transform_params)
{
    hs_plan plan;
    if (hs_plan_build(stream_info, transform_params, -1, &plan, NULL, 0) != HAILO_SUCCESS) return 0;
    return plan.host_bytes;
}

/* ----------------------------------------------------------- resolution --- */
static hailo_format_t resolve(const hailo_format_t *device, const order_pair *pair,
                              const hailo_format_t *user)
{
    hailo_format_t r = *user;
    if (r.order == HAILO_FORMAT_ORDER_AUTO && pair != NULL) r.order = pair->hosts[0];
    /* HailoRTDefaults::get_default_nms_format_type (hailort_defaults.cpp): by-score frames
     * are bytes (UINT8), by-class frames float32 */
    if (r.type == HAILO_FORMAT_TYPE_AUTO) {
        if (r.order == HAILO_FORMAT_ORDER_HAILO_NMS_BY_SCORE) r.type = HAILO_FORMAT_TYPE_UINT8;
        else if (r.order == HAILO_FORMAT_ORDER_HAILO_NMS_BY_CLASS) r.type = HAILO_FORMAT_TYPE_FLOAT32;
        else r.type = device->type;
    }
    return r;
}

hailo_status hailo_resolve_user_format(const hailo_stream_info_t *stream_info,
                                       const hailo_format_t *user_format,
                                       hailo_format_t *resolved)
{
    if (stream_info == NULL || user_format == NULL || resolved == NULL)
        return HAILO_INVALID_ARGUMENT;
    const hailo_format_t *dev = &stream_info->format;
    if (!type_known(dev->type) || !order_known(dev->order) || !flags_known(dev->flags) ||
        !type_known(user_format->type) || !order_known(user_format->order) ||
        !flags_known(user_format->flags))
        return HAILO_INVALID_ARGUMENT;
    const order_pair *pair = find_pair(dev->order);
    if (user_format->order == HAILO_FORMAT_ORDER_AUTO && pair == NULL)
        return HAILO_INVALID_OPERATION;
    hailo_format_t r = resolve(dev, pair, user_format);
    if (r.type == HAILO_FORMAT_TYPE_AUTO) return HAILO_INVALID_ARGUMENT; /* device type AUTO */
    *resolved = r;
    return HAILO_SUCCESS;
}

/* ----------------------------------------------------------- decisions --- */
hailo_status hailo_is_quantization_required(hailo_format_type_t src_type,
                                            hailo_format_type_t dst_type, bool *required)
{
    if (required == NULL || !type_known(src_type) || !type_known(dst_type))
        return HAILO_INVALID_ARGUMENT;
    /* AUTO stands for "the same type as the other side". */
    *required = src_type != HAILO_FORMAT_TYPE_AUTO && dst_type != HAILO_FORMAT_TYPE_AUTO &&
                src_type != dst_type;
    return HAILO_SUCCESS;
}

hailo_status hailo_is_transpose_required(const hailo_format_t *src_format,
                                         const hailo_format_t *dst_format, bool *required)
{
    if (src_format == NULL || dst_format == NULL || required == NULL ||
        !format_known(src_format) || !format_known(dst_format))
        return HAILO_INVALID_ARGUMENT;
    *required = is_transposed(src_format->flags) != is_transposed(dst_format->flags);
    return HAILO_SUCCESS;
}

hailo_status hailo_is_reorder_required(const hailo_3d_image_shape_t *src_shape,
                                       const hailo_format_t *src_format,
                                       const hailo_3d_image_shape_t *dst_shape,
                                       const hailo_format_t *dst_format, bool *required)
{
    if (src_shape == NULL || src_format == NULL || dst_shape == NULL || dst_format == NULL ||
        required == NULL || !format_known(src_format) || !format_known(dst_format))
        return HAILO_INVALID_ARGUMENT;
    hailo_format_order_t a = src_format->order, b = dst_format->order;
    int orders_differ = a != b && a != HAILO_FORMAT_ORDER_AUTO && b != HAILO_FORMAT_ORDER_AUTO;
    int shapes_differ = src_shape->height != dst_shape->height ||
                        src_shape->width != dst_shape->width ||
                        src_shape->features != dst_shape->features;
    /* F8CR with more than 8 features interleaves groups of 8: never the host layout. */
    int f8cr = (a == HAILO_FORMAT_ORDER_F8CR || b == HAILO_FORMAT_ORDER_F8CR) &&
               (src_shape->features > 8 || dst_shape->features > 8);
    *required = orders_differ || shapes_differ || f8cr;
    return HAILO_SUCCESS;
}

hailo_status hailo_is_periph_padding_required(size_t frame_bytes, bool *required)
{
    if (required == NULL) return HAILO_INVALID_ARGUMENT;
    *required = frame_bytes % HAILO_HW_FRAME_ALIGNMENT != 0;
    return HAILO_SUCCESS;
}

static hailo_status transformation_required(const hailo_stream_info_t *si,
                                            const hailo_transform_params_t *params,
                                            int direction, bool *required)
{
    if (required == NULL) return HAILO_INVALID_ARGUMENT;
    hs_plan plan;
    hailo_status st = hs_plan_build(si, params, direction, &plan, NULL, 0);
    if (st != HAILO_SUCCESS) return st;
    *required = !plan.no_transform &&
                (plan.quantize || plan.transpose || plan.reorder || plan.pad);
    return HAILO_SUCCESS;
}

hailo_status hailo_is_input_transformation_required(const hailo_stream_info_t *stream_info,
                                                    const hailo_transform_params_t *params,
                                                    bool *required)
{
    return transformation_required(stream_info, params, HAILO_H2D_STREAM, required);
}

hailo_status hailo_is_output_transformation_required(const hailo_stream_info_t *stream_info,
                                                     const hailo_transform_params_t *params,
                                                     bool *required)
{
    return transformation_required(stream_info, params, HAILO_D2H_STREAM, required);
}

static hailo_status check_params(const hailo_stream_info_t *stream_info,
                                 const hailo_transform_params_t *params, int direction,
                                 char *msg, size_t msg_size)
{
    hs_plan plan;
    if (msg != NULL && msg_size > 0) msg[0] = '\0';
    return hs_plan_build(stream_info, params, direction, &plan, msg, msg_size);
}

hailo_status hailo_check_transform_params(const hailo_stream_info_t *stream_info,
                                          const hailo_transform_params_t *params, char *msg,
                                          size_t msg_size)
{
    return check_params(stream_info, params, -1, msg, msg_size);
}

hailo_status hailo_check_input_transform_params(const hailo_stream_info_t *stream_info,
                                                const hailo_transform_params_t *params,
                                                char *msg, size_t msg_size)
{
    return check_params(stream_info, params, HAILO_H2D_STREAM, msg, msg_size);
}

hailo_status hailo_check_output_transform_params(const hailo_stream_info_t *stream_info,
                                                 const hailo_transform_params_t *params,
                                                 char *msg, size_t msg_size)
{
    return check_params(stream_info, params, HAILO_D2H_STREAM, msg, msg_size);
}

/* ------------------------------------------------------------- planning --- */
int hs_qp_valid(const hailo_quant_info_t *qi)
{
    return isfinite(qi->qp_scale) && qi->qp_scale > 0.0f;
}

int hs_qp_is_identity(const hailo_quant_info_t *qi)
{
    return qi->qp_scale == 1.0f && qi->qp_zp == 0.0f;
}

int hs_qp_limvals_ordered(const hailo_quant_info_t *qi)
{
    return qi->limvals_min <= qi->limvals_max; /* false for a NaN */
}

/* "stream '<name>': <what>" into msg; returns status. */
static hailo_status fail(hailo_status status, char *msg, size_t msg_size,
                         const hailo_stream_info_t *si, const char *fmt, ...) HS_PRINTF(5, 6);
static hailo_status fail(hailo_status status, char *msg, size_t msg_size,
                         const hailo_stream_info_t *si, const char *fmt, ...)
{
    if (msg == NULL || msg_size == 0) return status;
    int n = snprintf(msg, msg_size, "stream '%.*s': ",
                     (int)hs_strnlen(si->name, HAILO_MAX_STREAM_NAME_SIZE), si->name);
    if (n < 0 || (size_t)n >= msg_size) return status;
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(msg + n, msg_size - (size_t)n, fmt, ap);
    va_end(ap);
    return status;
}

static const char *direction_word(unsigned dirs)
{
    return dirs == DIR_IN ? "inputs (H2D)" : "outputs (D2H)";
}

#define SHAPE_FMT "%ux%ux%u"
#define SHAPE_ARGS(s) (unsigned)(s).height, (unsigned)(s).width, (unsigned)(s).features

static void host_orders_list(const order_pair *pair, int output, char *buf, size_t size)
{
    buf[0] = '\0';
    unsigned listed = 0;
    for (unsigned i = 0; i < pair->host_count; i++) {
        if (output && pair->hosts[i] == HAILO_FORMAT_ORDER_RGB4) continue;
        listed++;
    }
    unsigned k = 0;
    for (unsigned i = 0; i < pair->host_count; i++) {
        if (output && pair->hosts[i] == HAILO_FORMAT_ORDER_RGB4) continue;
        const char *sep = k == 0 ? "" : (k + 1 == listed ? " or " : ", ");
        hs_msg_append(buf, size, "%s%s", sep, hs_order_name(pair->hosts[i]));
        k++;
    }
}

hailo_status hs_plan_build(const hailo_stream_info_t *si, const hailo_transform_params_t *params,
                           int want_direction, hs_plan *plan, char *msg, size_t msg_size)
{
    if (si == NULL) return hs_msg(HAILO_INVALID_ARGUMENT, msg, msg_size, "stream info is NULL");
    if (params == NULL)
        return fail(HAILO_INVALID_ARGUMENT, msg, msg_size, si, "transform params are NULL");
    if (plan == NULL) return HAILO_INVALID_ARGUMENT;
    memset(plan, 0, sizeof *plan);

    const hailo_format_t *dev = &si->format;
    const hailo_format_t *user = &params->user_buffer_format;

    /* 1. enum values */
    if ((uint32_t)si->direction > 1u)
        return fail(HAILO_INVALID_ARGUMENT, msg, msg_size, si,
                    "direction %u is neither H2D (0) nor D2H (1)", (unsigned)si->direction);
    if (!type_known(dev->type) || !order_known(dev->order) || !flags_known(dev->flags))
        return fail(HAILO_INVALID_ARGUMENT, msg, msg_size, si,
                    "device format {type %u, order %u, flags %u} has an unknown value",
                    (unsigned)dev->type, (unsigned)dev->order, (unsigned)dev->flags);
    if (!type_known(user->type) || !order_known(user->order) || !flags_known(user->flags))
        return fail(HAILO_INVALID_ARGUMENT, msg, msg_size, si,
                    "user format {type %u, order %u, flags %u} has an unknown value",
                    (unsigned)user->type, (unsigned)user->order, (unsigned)user->flags);
    if ((uint32_t)params->transform_mode > 1u)
        return fail(HAILO_INVALID_ARGUMENT, msg, msg_size, si,
                    "transform mode %u is neither NO_TRANSFORM (0) nor COPY (1)",
                    (unsigned)params->transform_mode);
    int output = si->direction == HAILO_D2H_STREAM;
    if (want_direction >= 0 && want_direction != (int)si->direction)
        return fail(HAILO_INVALID_ARGUMENT, msg, msg_size, si,
                    "the stream is an %s, but this is an %s transform context",
                    output ? "output (D2H)" : "input (H2D)", output ? "input" : "output");

    /* 2. device type */
    if (dev->type == HAILO_FORMAT_TYPE_AUTO)
        return fail(HAILO_INVALID_ARGUMENT, msg, msg_size, si,
                    "device type AUTO: a stream's device type is UINT8 or UINT16");
    if (dev->type == HAILO_FORMAT_TYPE_FLOAT32)
        return fail(HAILO_INVALID_OPERATION, msg, msg_size, si,
                    "device type FLOAT32 is not supported: device frames are UINT8 or UINT16; "
                    "FLOAT32 exists only on the host");

    /* 3. shapes / NMS info */
    int nms = dev->order == HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP;
    const hailo_3d_image_shape_t *s = &si->shape, *hw = &si->hw_shape;
    if (nms) {
        const hailo_nms_info_t *n = &si->nms_info;
        if (n->number_of_classes == 0 || n->max_bboxes_per_class == 0 || n->chunks_per_frame == 0)
            return fail(HAILO_INVALID_ARGUMENT, msg, msg_size, si,
                        "nms_info needs classes, max_bboxes_per_class and chunks_per_frame > 0 "
                        "(got %u, %u, %u)", (unsigned)n->number_of_classes,
                        (unsigned)n->max_bboxes_per_class, (unsigned)n->chunks_per_frame);
        if (n->bbox_size != HAILO_NMS_ON_CHIP_BBOX_SIZE)
            return fail(HAILO_INVALID_ARGUMENT, msg, msg_size, si,
                        "nms_info bbox_size %u: device proposals are %u bytes",
                        (unsigned)n->bbox_size, (unsigned)HAILO_NMS_ON_CHIP_BBOX_SIZE);
        if ((uint32_t)n->burst_type >= (uint32_t)HAILO_BURST_TYPE_COUNT)
            return fail(HAILO_INVALID_ARGUMENT, msg, msg_size, si,
                        "nms_info burst_type %u is unknown (0 to %u)", (unsigned)n->burst_type,
                        (unsigned)HAILO_BURST_TYPE_COUNT - 1u);
    } else {
        if (s->height == 0 || s->width == 0 || s->features == 0)
            return fail(HAILO_INVALID_ARGUMENT, msg, msg_size, si,
                        "shape " SHAPE_FMT " has a zero dimension", SHAPE_ARGS(*s));
        if (hw->height < s->height || hw->width < s->width || hw->features < s->features)
            return fail(HAILO_INVALID_ARGUMENT, msg, msg_size, si,
                        "hw_shape " SHAPE_FMT " is smaller than shape " SHAPE_FMT,
                        SHAPE_ARGS(*hw), SHAPE_ARGS(*s));
    }

    /* 4. quantization infos: every QP the stream carries must be usable */
    if (!hs_qp_valid(&si->quant_info))
        return fail(HAILO_INVALID_ARGUMENT, msg, msg_size, si,
                    "quant_info scale %g must be finite and > 0", (double)si->quant_info.qp_scale);
    if (si->quant_infos_count > HAILO_MAX_QUANT_INFOS)
        return fail(HAILO_INVALID_ARGUMENT, msg, msg_size, si,
                    "%u per-feature quant infos (at most %u)", (unsigned)si->quant_infos_count,
                    (unsigned)HAILO_MAX_QUANT_INFOS);
    if (si->quant_infos_count > 0 && si->quant_infos == NULL)
        return fail(HAILO_INVALID_ARGUMENT, msg, msg_size, si,
                    "quant_infos_count is %u but quant_infos is NULL",
                    (unsigned)si->quant_infos_count);
    for (uint32_t i = 0; i < si->quant_infos_count; i++)
        if (!hs_qp_valid(&si->quant_infos[i]))
            return fail(HAILO_INVALID_ARGUMENT, msg, msg_size, si,
                        "quant_infos[%u] scale %g must be finite and > 0", (unsigned)i,
                        (double)si->quant_infos[i].qp_scale);
    if (si->quant_infos_count > 1 && si->quant_infos_count != s->features)
        return fail(HAILO_INVALID_ARGUMENT, msg, msg_size, si,
                    "%u per-feature quant infos for %u features: give 0, 1 or one per feature",
                    (unsigned)si->quant_infos_count, (unsigned)s->features);

    /* 5. device order and direction */
    const order_pair *pair = find_pair(dev->order);
    if (pair == NULL)
        return fail(HAILO_INVALID_OPERATION, msg, msg_size, si,
                    "device order %s is not supported (device orders: NHCW, NHWC, FCR, F8CR, NC, "
                    "NHW, RGB888, YUY2, HAILO_YYUV, HAILO_YYVU, HAILO_YYYYUV, HAILO_NMS_ON_CHIP)",
                    hs_order_name(dev->order));
    unsigned dir_bit = output ? DIR_OUT : DIR_IN;
    if ((pair->directions & dir_bit) == 0)
        return fail(HAILO_INVALID_OPERATION, msg, msg_size, si,
                    "device order %s exists only on %s, and this stream is an %s",
                    hs_order_name(dev->order), direction_word(pair->directions),
                    output ? "output" : "input");

    plan->device = *dev;
    plan->shape = *s;
    plan->hw = *hw;
    plan->no_transform = params->transform_mode == HAILO_STREAM_NO_TRANSFORM;

    /* 6. user order, 7. user type (skipped for NO_TRANSFORM: the user sends device frames) */
    hailo_format_t r = resolve(dev, pair, user);
    if (plan->no_transform) r = *dev;
    if (!plan->no_transform) {
        int allowed = 0;
        for (unsigned i = 0; i < pair->host_count; i++) allowed |= pair->hosts[i] == r.order;
        if (!allowed || (output && r.order == HAILO_FORMAT_ORDER_RGB4)) {
            char list[128];
            host_orders_list(pair, output, list, sizeof list);
            return fail(HAILO_INVALID_OPERATION, msg, msg_size, si,
                        "user order %s cannot become device order %s%s; use %s",
                        hs_order_name(r.order), hs_order_name(dev->order),
                        (output && r.order == HAILO_FORMAT_ORDER_RGB4) ? " on an output" : "",
                        list);
        }
        if (is_yuv_device(dev->order) || r.order == HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP) {
            if (r.type != dev->type)
                return fail(HAILO_INVALID_OPERATION, msg, msg_size, si,
                            "user type %s must equal the device type %s for order %s "
                            "(no quantization)", hs_type_name(r.type), hs_type_name(dev->type),
                            hs_order_name(r.order));
        } else if (r.order == HAILO_FORMAT_ORDER_HAILO_NMS_BY_CLASS) {
            if (r.type != HAILO_FORMAT_TYPE_FLOAT32)
                return fail(HAILO_INVALID_OPERATION, msg, msg_size, si,
                            "user order %s is FLOAT32 only, not %s", hs_order_name(r.order),
                            hs_type_name(r.type));
        } else if (r.order == HAILO_FORMAT_ORDER_HAILO_NMS_BY_SCORE) {
            /* HailoRT: UINT8 (the frame is raw bytes); FLOAT32 is this layer's older
             * spelling of the same bytes */
            if (r.type != HAILO_FORMAT_TYPE_UINT8 && r.type != HAILO_FORMAT_TYPE_FLOAT32)
                return fail(HAILO_INVALID_OPERATION, msg, msg_size, si,
                            "user order %s is a byte frame: UINT8 (or FLOAT32, the same bytes), "
                            "not %s", hs_order_name(r.order), hs_type_name(r.type));
        } else if (!output && r.type == HAILO_FORMAT_TYPE_UINT16 &&
                   dev->type == HAILO_FORMAT_TYPE_UINT8) {
            return fail(HAILO_INVALID_OPERATION, msg, msg_size, si,
                        "user type UINT16 cannot become device type UINT8 (narrowing); "
                        "use UINT8 or FLOAT32");
        } else if (output && r.type == HAILO_FORMAT_TYPE_UINT8 &&
                   dev->type == HAILO_FORMAT_TYPE_UINT16) {
            return fail(HAILO_INVALID_OPERATION, msg, msg_size, si,
                        "device type UINT16 cannot become user type UINT8 (narrowing); "
                        "use UINT16 or FLOAT32");
        }
    }
    plan->user = r;

    /* 8. what particular device orders need of the shapes */
    size_t dts = hailo_get_format_type_size(dev->type);
    switch (dev->order) {
    case HAILO_FORMAT_ORDER_NC:
        if (s->height != 1 || s->width != 1 || hw->height != 1 || hw->width != 1)
            return fail(HAILO_INVALID_ARGUMENT, msg, msg_size, si,
                        "NC needs height = width = 1 in shape and hw_shape (got " SHAPE_FMT
                        " and " SHAPE_FMT ")", SHAPE_ARGS(*s), SHAPE_ARGS(*hw));
        break;
    case HAILO_FORMAT_ORDER_NHW:
        if (s->features != 1 || hw->features != 1)
            return fail(HAILO_INVALID_ARGUMENT, msg, msg_size, si,
                        "NHW needs 1 feature in shape and hw_shape (got %u and %u)",
                        (unsigned)s->features, (unsigned)hw->features);
        break;
    case HAILO_FORMAT_ORDER_F8CR:
        if (hw->features % 8 != 0)
            return fail(HAILO_INVALID_ARGUMENT, msg, msg_size, si,
                        "F8CR needs hw features that are a multiple of 8 (got %u)",
                        (unsigned)hw->features);
        break;
    case HAILO_FORMAT_ORDER_RGB888:
        if (s->features != 3 || hw->features != 4)
            return fail(HAILO_INVALID_ARGUMENT, msg, msg_size, si,
                        "RGB888 needs 3 features and 4 hw features (got %u and %u)",
                        (unsigned)s->features, (unsigned)hw->features);
        break;
    case HAILO_FORMAT_ORDER_YUY2: {
        size_t bytes = prod(hw->height, hw->width, 2, dts);
        if (s->features != 2 || hw->features != 2 || bytes % HAILO_HW_FRAME_ALIGNMENT != 0)
            return fail(HAILO_INVALID_ARGUMENT, msg, msg_size, si,
                        "YUY2 needs 2 features in shape and hw_shape and a device frame that is "
                        "a multiple of %u bytes (got " SHAPE_FMT ", " SHAPE_FMT ")",
                        (unsigned)HAILO_HW_FRAME_ALIGNMENT, SHAPE_ARGS(*s), SHAPE_ARGS(*hw));
        break;
    }
    case HAILO_FORMAT_ORDER_HAILO_YYUV:
    case HAILO_FORMAT_ORDER_HAILO_YYVU:
    case HAILO_FORMAT_ORDER_HAILO_YYYYUV:
        if (s->height % 2 || s->width % 2 || hw->height % 2 || hw->width % 2)
            return fail(HAILO_INVALID_ARGUMENT, msg, msg_size, si,
                        "%s needs an even height and width in shape and hw_shape (got " SHAPE_FMT
                        " and " SHAPE_FMT ")", hs_order_name(dev->order), SHAPE_ARGS(*s),
                        SHAPE_ARGS(*hw));
        break;
    default: break;
    }

    /* 9. TRANSPOSED where a transpose has a meaning. A transpose runs when the flags of the
     * user and device formats differ (hailo_is_transpose_required); then the host frame
     * holds (W, H, C) of the stream's shape. */
    int transposed = !plan->no_transform && is_transposed(r.flags) != is_transposed(dev->flags);
    if (transposed && (is_yuv_device(dev->order) || nms || dev->order == HAILO_FORMAT_ORDER_NC ||
                       dev->order == HAILO_FORMAT_ORDER_RGB888))
        return fail(HAILO_INVALID_OPERATION, msg, msg_size, si,
                    "the TRANSPOSED flag is not supported with device order %s",
                    hs_order_name(dev->order));

    /* 10. sizes */
    size_t uts = hailo_get_format_type_size(r.type);
    plan->dev_data_bytes = device_payload_bytes(si);
    plan->dev_bytes = hailo_get_hw_frame_size(si);
    if (plan->dev_data_bytes == 0 || plan->dev_bytes == 0) {
        if (nms)
            return fail(HAILO_INVALID_ARGUMENT, msg, msg_size, si,
                        "the device frame of %u chunks x %u classes x %u proposals (burst_size "
                        "%u) does not fit in %zu bytes", (unsigned)si->nms_info.chunks_per_frame,
                        (unsigned)si->nms_info.number_of_classes,
                        (unsigned)si->nms_info.max_bboxes_per_class,
                        (unsigned)si->nms_info.burst_size, HS_MAX_FRAME_BYTES);
        return fail(HAILO_INVALID_ARGUMENT, msg, msg_size, si,
                    "the device frame of hw_shape " SHAPE_FMT " does not fit in %zu bytes",
                    SHAPE_ARGS(*hw), HS_MAX_FRAME_BYTES);
    }
    size_t H = s->height, W = s->width, C = s->features;
    if (plan->no_transform || r.order == HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP) {
        plan->host_bytes = plan->dev_bytes;
    } else if (r.order == HAILO_FORMAT_ORDER_HAILO_NMS_BY_CLASS) {
        plan->host_bytes = hs_nms_by_class_bytes(&si->nms_info);
    } else if (r.order == HAILO_FORMAT_ORDER_HAILO_NMS_BY_SCORE) {
        const hailo_nms_info_t *n = &si->nms_info;
        uint64_t total = hs_nms_total(n);
        if (total > HS_MAX_NMS_BY_SCORE)
            return fail(HAILO_INVALID_ARGUMENT, msg, msg_size, si,
                        "HAILO_NMS_BY_SCORE holds at most %u detections (a uint16 count); "
                        "max_bboxes_total is %llu%s", (unsigned)HS_MAX_NMS_BY_SCORE,
                        (unsigned long long)total,
                        n->max_bboxes_total == 0 ? " (classes x chunks x max_bboxes_per_class)"
                                                 : "");
        if (n->number_of_classes > HS_MAX_NMS_BY_SCORE_CLASSES)
            return fail(HAILO_INVALID_ARGUMENT, msg, msg_size, si,
                        "HAILO_NMS_BY_SCORE class ids are uint16: at most %u classes, not %u",
                        (unsigned)HS_MAX_NMS_BY_SCORE_CLASSES, (unsigned)n->number_of_classes);
        plan->nms_total = (uint32_t)total;
        plan->host_bytes = 2 + (size_t)total * HAILO_NMS_BY_SCORE_DETECTION_SIZE;
    } else {
        /* a TRANSPOSED host frame holds (W, H, C); only RGB4's row padding notices */
        size_t hh = transposed ? W : H, ww = transposed ? H : W;
        plan->host_bytes = prod(order_elements(r.order, hh, ww, C), uts, 1, 1);
    }
    if (plan->host_bytes == 0 || plan->host_bytes > HS_MAX_FRAME_BYTES)
        return fail(HAILO_INVALID_ARGUMENT, msg, msg_size, si,
                    "the host frame of shape " SHAPE_FMT " in %s does not fit in %zu bytes",
                    SHAPE_ARGS(*s), hs_order_name(r.order), HS_MAX_FRAME_BYTES);
    if (si->hw_data_bytes != 0 && si->hw_data_bytes != dts)
        return fail(HAILO_INVALID_ARGUMENT, msg, msg_size, si,
                    "hw_data_bytes is %u but the device type %s has %zu",
                    (unsigned)si->hw_data_bytes, hs_type_name(dev->type), dts);
    if (si->hw_frame_size != 0 && si->hw_frame_size != plan->dev_bytes)
        return fail(HAILO_INVALID_ARGUMENT, msg, msg_size, si,
                    "hw_frame_size is %u but hw_shape " SHAPE_FMT " in %s makes %zu bytes "
                    "(hailo_fill_hw_frame_size computes it)", (unsigned)si->hw_frame_size,
                    SHAPE_ARGS(*hw), hs_order_name(dev->order), plan->dev_bytes);

    /* 11. the QP that applies: inputs and NMS use quant_info; outputs their per-feature QPs */
    plan->qp = si->quant_info;
    plan->nms = si->nms_info;
    if (output && !nms && si->quant_infos_count == 1) plan->qp = si->quant_infos[0];
    if (output && !nms && si->quant_infos_count > 1) {
        plan->qps = si->quant_infos;
        plan->qps_count = si->quant_infos_count;
    }
    /* HailoRT's Quantization::clip (quantization.hpp) tests x >= max first, then x <= min;
     * this layer clips x to lo, then to hi. They agree whenever lo <= hi; with lo > hi (or a
     * NaN bound) both results are meaningless and differ, so a context that would quantize
     * with such limvals is refused rather than pick one. The identity QP never clips. */
    if (!output && !plan->no_transform && r.type == HAILO_FORMAT_TYPE_FLOAT32 &&
        !hs_qp_is_identity(&plan->qp) && !hs_qp_limvals_ordered(&plan->qp))
        return fail(HAILO_INVALID_ARGUMENT, msg, msg_size, si,
                    "quant_info limvals [%g, %g] are not ordered: quantizing needs limvals_min "
                    "<= limvals_max (neither NaN)", (double)plan->qp.limvals_min,
                    (double)plan->qp.limvals_max);

    /* 12. steps */
    if (plan->no_transform) {
        plan->kind = HS_KIND_COPY;
        return HAILO_SUCCESS;
    }
    plan->quantize = r.type != dev->type;
    plan->transpose = transposed;
    plan->reorder = r.order != dev->order || s->height != hw->height || s->width != hw->width ||
                    s->features != hw->features ||
                    (dev->order == HAILO_FORMAT_ORDER_F8CR && s->features > 8);
    plan->pad = !nms && plan->dev_data_bytes % HAILO_HW_FRAME_ALIGNMENT != 0;

    if (nms) {
        if (r.order == HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP) {
            plan->kind = HS_KIND_COPY;
        } else {
            plan->kind = r.order == HAILO_FORMAT_ORDER_HAILO_NMS_BY_CLASS ? HS_KIND_NMS_BY_CLASS
                                                                          : HS_KIND_NMS_BY_SCORE;
        }
        return HAILO_SUCCESS;
    }
    if (!plan->quantize && !plan->transpose && !plan->reorder && !plan->pad &&
        plan->host_bytes == plan->dev_bytes) {
        plan->kind = HS_KIND_COPY;
        return HAILO_SUCCESS;
    }
    plan->kind = HS_KIND_PIXELS;

    /* element op */
    hailo_format_type_t ut = r.type, dt = dev->type;
    if (!output) {
        if (ut == HAILO_FORMAT_TYPE_FLOAT32) {
            hs_quant q;
            hs_quant_setup(&plan->qp, dt, &q, &plan->op);
        } else if (ut == dt) {
            plan->op = dt == HAILO_FORMAT_TYPE_UINT8 ? HS_OP_COPY8 : HS_OP_COPY16;
        } else {
            plan->op = HS_OP_WIDEN;
        }
    } else {
        if (ut == HAILO_FORMAT_TYPE_FLOAT32)
            plan->op = dt == HAILO_FORMAT_TYPE_UINT8 ? HS_OP_DQ8 : HS_OP_DQ16;
        else if (ut == dt)
            plan->op = dt == HAILO_FORMAT_TYPE_UINT8 ? HS_OP_COPY8 : HS_OP_COPY16;
        else
            plan->op = HS_OP_WIDEN;
    }

    /* layout kernel and host strides (of the logical, untransposed host frame) */
    hailo_format_order_t ho = r.order;
    plan->host_row = W * C;
    if (ho == HAILO_FORMAT_ORDER_RGB4 && !transposed) plan->host_row = hs_align_up(W * C, 4);
    if (ho == HAILO_FORMAT_ORDER_NCHW) {
        plan->host_hs = W;
        plan->host_cs = H * W;
    } else if (ho == HAILO_FORMAT_ORDER_NHCW) {
        plan->host_hs = C * W;
        plan->host_cs = W;
    }
    int planar = ho == HAILO_FORMAT_ORDER_NCHW || ho == HAILO_FORMAT_ORDER_NHCW;
    switch (dev->order) {
    case HAILO_FORMAT_ORDER_NHCW:
        plan->layout = output ? (planar ? HS_OUT_PLANAR : HS_OUT_NHCW)
                              : (planar ? HS_IN_PLANAR : HS_IN_NHCW);
        break;
    case HAILO_FORMAT_ORDER_NHWC:
    case HAILO_FORMAT_ORDER_FCR:
    case HAILO_FORMAT_ORDER_NC:
    case HAILO_FORMAT_ORDER_NHW:
    case HAILO_FORMAT_ORDER_YUY2: plan->layout = output ? HS_OUT_CL : HS_IN_CL; break;
    case HAILO_FORMAT_ORDER_F8CR: plan->layout = output ? HS_OUT_F8CR : HS_IN_F8CR; break;
    case HAILO_FORMAT_ORDER_RGB888: plan->layout = HS_IN_RGB888; break;
    case HAILO_FORMAT_ORDER_HAILO_YYUV:
    case HAILO_FORMAT_ORDER_HAILO_YYVU: plan->layout = HS_IN_NV; break;
    case HAILO_FORMAT_ORDER_HAILO_YYYYUV: plan->layout = HS_IN_I420; break;
    default:
        return fail(HAILO_INTERNAL_FAILURE, msg, msg_size, si, "no kernel for device order %s",
                    hs_order_name(dev->order));
    }

    /* TRANSPOSED geometry: host (planes, A, M, B) <-> logical (planes, B, M, A) */
    if (transposed) {
        size_t es = uts, m = 1, planes = 1;
        if (ho == HAILO_FORMAT_ORDER_NHCW) m = C;
        else if (ho == HAILO_FORMAT_ORDER_NCHW) planes = C;
        else es = uts * C; /* channel-last: a pixel moves as one element */
        plan->tr_planes = planes;
        plan->tr_m = m;
        plan->tr_es = es;
        if (!output) { /* host (W, H) rows of H pixels, RGB4 rows aligned to 4 elements */
            plan->tr_a = W;
            plan->tr_b = H;
            plan->tr_row_bytes = ho == HAILO_FORMAT_ORDER_RGB4 ? hs_align_up(H * C, 4) * uts
                                                               : m * H * es;
        } else { /* logical scratch (H, W) -> host (W, H) */
            plan->tr_a = H;
            plan->tr_b = W;
            plan->tr_row_bytes = m * W * es;
        }
    }
    return HAILO_SUCCESS;
}
