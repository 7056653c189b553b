/*
 * test_api.c - frame sizes, AUTO resolution, the decision functions, version and status
 * strings, NO_TRANSFORM, plain-copy contexts, descriptions, ownership of the stream info,
 * and distinct contexts used from several threads at once.
 */
#define _POSIX_C_SOURCE 200809L
#include "hs_internal.h"
#include "hs_test.h"
#include "ref_model.h"

#include <pthread.h>

#define U8 HAILO_FORMAT_TYPE_UINT8
#define U16 HAILO_FORMAT_TYPE_UINT16
#define F32 HAILO_FORMAT_TYPE_FLOAT32
#define AUTO_T HAILO_FORMAT_TYPE_AUTO

static hailo_3d_image_shape_t shp(uint32_t h, uint32_t w, uint32_t c)
{
    hailo_3d_image_shape_t s = {h, w, c};
    return s;
}

static hailo_stream_info_t stream(hailo_stream_direction_t dir, hailo_format_type_t t,
                                  hailo_format_order_t o, hailo_3d_image_shape_t s,
                                  hailo_3d_image_shape_t hw)
{
    hailo_stream_info_t si;
    memset(&si, 0, sizeof si);
    strcpy(si.name, "api");
    si.direction = dir;
    si.format = (hailo_format_t){t, o, HAILO_FORMAT_FLAGS_NONE};
    si.shape = s;
    si.hw_shape = hw;
    si.quant_info = (hailo_quant_info_t){128.0f, 0.0078125f, -1.0f, 127.0f / 128.0f};
    return si;
}

static hailo_transform_params_t params(hailo_format_type_t t, hailo_format_order_t o, int flags)
{
    hailo_transform_params_t p = {HAILO_STREAM_TRANSFORM_COPY, {t, o, (hailo_format_flags_t)flags}};
    return p;
}

static void test_version_and_status(void)
{
    hailo_version_t v;
    CHECK_OK(hailo_get_library_version(&v));
    CHECK(v.major == HAILO_STREAM_LAYER_VERSION_MAJOR && v.minor == HAILO_STREAM_LAYER_VERSION_MINOR &&
          v.revision == HAILO_STREAM_LAYER_VERSION_REVISION);
    CHECK_STATUS(hailo_get_library_version(NULL), HAILO_INVALID_ARGUMENT);
    const hailo_status all[] = {HAILO_SUCCESS, HAILO_UNINITIALIZED, HAILO_INVALID_ARGUMENT,
                                HAILO_OUT_OF_HOST_MEMORY, HAILO_TIMEOUT, HAILO_INSUFFICIENT_BUFFER,
                                HAILO_INVALID_OPERATION, HAILO_NOT_IMPLEMENTED, HAILO_INTERNAL_FAILURE,
                                HAILO_DATA_ALIGNMENT_FAILURE, HAILO_INVALID_FRAME, HAILO_NOT_FOUND,
                                HAILO_COMMUNICATION_CLOSED, HAILO_RPC_FAILED,
                                HAILO_INVALID_SERVICE_VERSION, HAILO_NOT_SUPPORTED,
                                HAILO_QUEUE_IS_FULL};
    const char *names[] = {"HAILO_SUCCESS", "HAILO_UNINITIALIZED", "HAILO_INVALID_ARGUMENT",
                           "HAILO_OUT_OF_HOST_MEMORY", "HAILO_TIMEOUT", "HAILO_INSUFFICIENT_BUFFER",
                           "HAILO_INVALID_OPERATION", "HAILO_NOT_IMPLEMENTED", "HAILO_INTERNAL_FAILURE",
                           "HAILO_DATA_ALIGNMENT_FAILURE", "HAILO_INVALID_FRAME", "HAILO_NOT_FOUND",
                           "HAILO_COMMUNICATION_CLOSED", "HAILO_RPC_FAILED",
                           "HAILO_INVALID_SERVICE_VERSION", "HAILO_NOT_SUPPORTED",
                           "HAILO_QUEUE_IS_FULL"};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        const char *m = hailo_get_status_message(all[i]);
        CHECK(m != NULL && strncmp(m, names[i], strlen(names[i])) == 0 && m[strlen(names[i])] == ':');
    }
    CHECK(strcmp(hailo_get_status_message((hailo_status)12345), "HAILO_UNKNOWN_STATUS") == 0);
    CHECK(strcmp(hailo_get_status_message(HAILO_STATUS_MAX_ENUM), "HAILO_UNKNOWN_STATUS") == 0);
    CHECK(strcmp(hailo_get_status_message((hailo_status)-1), "HAILO_UNKNOWN_STATUS") == 0);
}

static void test_shape_and_type_sizes(void)
{
    CHECK_EQ_INT(hailo_get_format_type_size(U8), 1);
    CHECK_EQ_INT(hailo_get_format_type_size(U16), 2);
    CHECK_EQ_INT(hailo_get_format_type_size(F32), 4);
    CHECK_EQ_INT(hailo_get_format_type_size(AUTO_T), 0);
    CHECK_EQ_INT(hailo_get_format_type_size((hailo_format_type_t)9), 0);
    hailo_3d_image_shape_t s = shp(5, 7, 3);
    CHECK_EQ_INT(hailo_get_shape_size(&s, HAILO_FORMAT_ORDER_NHWC), 105);
    CHECK_EQ_INT(hailo_get_shape_size(&s, HAILO_FORMAT_ORDER_NHCW), 105);
    CHECK_EQ_INT(hailo_get_shape_size(&s, HAILO_FORMAT_ORDER_NCHW), 105);
    CHECK_EQ_INT(hailo_get_shape_size(&s, HAILO_FORMAT_ORDER_FCR), 105);
    CHECK_EQ_INT(hailo_get_shape_size(&s, HAILO_FORMAT_ORDER_F8CR), 105);
    CHECK_EQ_INT(hailo_get_shape_size(&s, HAILO_FORMAT_ORDER_RGB4), 5 * 24);
    CHECK_EQ_INT(hailo_get_shape_size(&s, HAILO_FORMAT_ORDER_NHW), 35);
    CHECK_EQ_INT(hailo_get_shape_size(&s, HAILO_FORMAT_ORDER_NC), 0); /* H = W = 1 required */
    CHECK_EQ_INT(hailo_get_shape_size(&s, HAILO_FORMAT_ORDER_NV12), 0); /* odd */
    CHECK_EQ_INT(hailo_get_shape_size(&s, HAILO_FORMAT_ORDER_AUTO), 0);
    CHECK_EQ_INT(hailo_get_shape_size(&s, HAILO_FORMAT_ORDER_HAILO_NMS_BY_CLASS), 0);
    CHECK_EQ_INT(hailo_get_shape_size(&s, (hailo_format_order_t)1000), 0);
    CHECK_EQ_INT(hailo_get_shape_size(NULL, HAILO_FORMAT_ORDER_NHWC), 0);
    hailo_3d_image_shape_t nc = shp(1, 1, 13);
    CHECK_EQ_INT(hailo_get_shape_size(&nc, HAILO_FORMAT_ORDER_NC), 13);
    hailo_3d_image_shape_t yuv = shp(4, 6, 3);
    CHECK_EQ_INT(hailo_get_shape_size(&yuv, HAILO_FORMAT_ORDER_NV12), 36);
    CHECK_EQ_INT(hailo_get_shape_size(&yuv, HAILO_FORMAT_ORDER_I420), 36);
    CHECK_EQ_INT(hailo_get_shape_size(&yuv, HAILO_FORMAT_ORDER_HAILO_YYYYUV), 36);
    CHECK_EQ_INT(hailo_get_shape_size(&yuv, HAILO_FORMAT_ORDER_RGB888), 96);
    hailo_3d_image_shape_t yuy2 = shp(2, 3, 2);
    CHECK_EQ_INT(hailo_get_shape_size(&yuy2, HAILO_FORMAT_ORDER_YUY2), 12);
    hailo_3d_image_shape_t zero = shp(2, 0, 2);
    CHECK_EQ_INT(hailo_get_shape_size(&zero, HAILO_FORMAT_ORDER_NHWC), 0);
    hailo_3d_image_shape_t huge = shp(0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu);
    CHECK_EQ_INT(hailo_get_shape_size(&huge, HAILO_FORMAT_ORDER_NHWC), 0); /* overflow */
}

static void test_hw_frame_sizes(void)
{
    struct {
        hailo_format_order_t o;
        hailo_format_type_t t;
        hailo_3d_image_shape_t hw;
        size_t want;
    } cases[] = {
        {HAILO_FORMAT_ORDER_NHCW, U8, {224, 224, 3}, 150528},
        {HAILO_FORMAT_ORDER_NHCW, U8, {3, 5, 3}, 48},   /* 45 -> 48 */
        {HAILO_FORMAT_ORDER_NHWC, U16, {3, 5, 3}, 96},  /* 90 -> 96 */
        {HAILO_FORMAT_ORDER_FCR, U8, {2, 3, 8}, 48},
        {HAILO_FORMAT_ORDER_F8CR, U8, {2, 3, 16}, 96},
        {HAILO_FORMAT_ORDER_NC, U8, {1, 1, 13}, 16},
        {HAILO_FORMAT_ORDER_NHW, U16, {3, 5, 1}, 32},
        {HAILO_FORMAT_ORDER_RGB888, U8, {3, 5, 4}, 64},
        {HAILO_FORMAT_ORDER_YUY2, U8, {2, 6, 2}, 24},
        {HAILO_FORMAT_ORDER_HAILO_YYUV, U8, {4, 6, 3}, 40},
        {HAILO_FORMAT_ORDER_HAILO_YYYYUV, U16, {2, 6, 3}, 40},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hailo_stream_info_t si = stream(HAILO_H2D_STREAM, cases[i].t, cases[i].o, cases[i].hw, cases[i].hw);
        CHECK_MSG(hailo_get_hw_frame_size(&si) == cases[i].want, "case %zu: %zu", i, hailo_get_hw_frame_size(&si));
        CHECK_OK(hailo_fill_hw_frame_size(&si));
        CHECK_EQ_INT(si.hw_frame_size, cases[i].want);
        CHECK_EQ_INT(si.hw_data_bytes, hailo_get_format_type_size(cases[i].t));
    }
    hailo_stream_info_t n = stream(HAILO_D2H_STREAM, U16, HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP, shp(1, 1, 1), shp(1, 1, 1));
    n.nms_info = ref_nms_info(80, 100, 0, 1);
    CHECK_EQ_INT(hailo_get_hw_frame_size(&n), 80 * 802);
    n.nms_info = ref_nms_info(3, 4, 5, 2);
    CHECK_EQ_INT(hailo_get_hw_frame_size(&n), 204); /* 2*3*34, not padded (HailoRT) */
    n.nms_info = ref_nms_info(1, 1, 0, 1);
    CHECK_EQ_INT(hailo_get_hw_frame_size(&n), 10);
    CHECK_OK(hailo_fill_hw_frame_size(&n));
    CHECK_EQ_INT(n.hw_frame_size, 10);
    /* bursts: slots of max(burst_size, max_bboxes_per_class), then one more burst */
    n.nms_info = ref_nms_info(3, 4, 0, 2);
    n.nms_info.burst_size = 7;
    CHECK_EQ_INT(hailo_get_hw_frame_size(&n), 2 * 3 * (2 + 8 * 7) + 8 * 7);
    n.nms_info.burst_size = 2;
    CHECK_EQ_INT(hailo_get_hw_frame_size(&n), 2 * 3 * (2 + 8 * 4) + 8 * 2);
    n.nms_info.burst_type = HAILO_BURST_TYPE_H15_PER_CLASS; /* the type does not change it */
    CHECK_EQ_INT(hailo_get_hw_frame_size(&n), 2 * 3 * (2 + 8 * 4) + 8 * 2);
    n.nms_info.burst_size = 0xFFFFFFFFu; /* beyond 4 GiB */
    CHECK_EQ_INT(hailo_get_hw_frame_size(&n), 0);
    CHECK_STATUS(hailo_fill_hw_frame_size(&n), HAILO_INVALID_ARGUMENT);
    CHECK_EQ_INT(hailo_get_hw_frame_size(NULL), 0);
    CHECK_STATUS(hailo_fill_hw_frame_size(NULL), HAILO_INVALID_ARGUMENT);
    hailo_stream_info_t bad = stream(HAILO_H2D_STREAM, U8, HAILO_FORMAT_ORDER_NCHW, shp(2, 2, 2), shp(2, 2, 2));
    CHECK_EQ_INT(hailo_get_hw_frame_size(&bad), 0);
    CHECK_STATUS(hailo_fill_hw_frame_size(&bad), HAILO_INVALID_ARGUMENT);
}

static void test_host_frame_sizes(void)
{
    hailo_stream_info_t si = stream(HAILO_H2D_STREAM, U8, HAILO_FORMAT_ORDER_NHCW, shp(3, 5, 3), shp(3, 8, 3));
    hailo_transform_params_t p = params(F32, HAILO_FORMAT_ORDER_AUTO, 0);
    CHECK_EQ_INT(hailo_get_host_frame_size(&si, &p), 3 * 5 * 3 * 4);
    p = params(AUTO_T, HAILO_FORMAT_ORDER_RGB4, 0);
    CHECK_EQ_INT(hailo_get_host_frame_size(&si, &p), 3 * 16);
    p = params(AUTO_T, HAILO_FORMAT_ORDER_RGB4, HAILO_FORMAT_FLAGS_TRANSPOSED);
    CHECK_EQ_INT(hailo_get_host_frame_size(&si, &p), 5 * 12); /* W rows of align4(H * C) */
    p = params(U16, HAILO_FORMAT_ORDER_NHWC, 0);
    CHECK_EQ_INT(hailo_get_host_frame_size(&si, &p), 0); /* unsupported */
    CHECK_EQ_INT(hailo_get_host_frame_size(NULL, &p), 0);
    CHECK_EQ_INT(hailo_get_host_frame_size(&si, NULL), 0);
    hailo_stream_info_t n = stream(HAILO_D2H_STREAM, U16, HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP, shp(1, 1, 1), shp(1, 1, 1));
    n.nms_info = ref_nms_info(3, 4, 5, 2);
    p = params(AUTO_T, HAILO_FORMAT_ORDER_AUTO, 0);
    CHECK_EQ_INT(hailo_get_host_frame_size(&n, &p), 3 * (1 + 5 * 2 * 4) * 4); /* every chunk's */
    p = params(F32, HAILO_FORMAT_ORDER_HAILO_NMS_BY_SCORE, 0);
    CHECK_EQ_INT(hailo_get_host_frame_size(&n, &p), 2 + 5 * 22);
    p = params(U8, HAILO_FORMAT_ORDER_HAILO_NMS_BY_SCORE, 0);
    CHECK_EQ_INT(hailo_get_host_frame_size(&n, &p), 2 + 5 * 22);
    n.nms_info.max_bboxes_total = 0; /* classes * chunks * per class */
    CHECK_EQ_INT(hailo_get_host_frame_size(&n, &p), 2 + 3 * 2 * 4 * 22);
    p = params(AUTO_T, HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP, 0);
    CHECK_EQ_INT(hailo_get_host_frame_size(&n, &p), 204); /* the device frame */
    /* the example: 1 class, 1 per class, 2 chunks -> 11 floats */
    n.nms_info = ref_nms_info(1, 1, 0, 2);
    p = params(AUTO_T, HAILO_FORMAT_ORDER_HAILO_NMS_BY_CLASS, 0);
    CHECK_EQ_INT(hailo_get_host_frame_size(&n, &p), 11 * 4);
}

static void test_nms_shape(void)
{
    hailo_nms_info_t n = ref_nms_info(80, 100, 0, 3);
    hailo_nms_shape_t s;
    memset(&s, 0xCC, sizeof s);
    CHECK_OK(hailo_get_nms_shape(&n, &s));
    CHECK(s.number_of_classes == 80 && s.max_bboxes_per_class == 300 && s.max_bboxes_total == 24000 &&
          s.max_accumulated_mask_size == 0);
    n.max_bboxes_total = 17;
    CHECK_OK(hailo_get_nms_shape(&n, &s));
    CHECK(s.max_bboxes_per_class == 300 && s.max_bboxes_total == 17);
    CHECK_STATUS(hailo_get_nms_shape(NULL, &s), HAILO_INVALID_ARGUMENT);
    CHECK_STATUS(hailo_get_nms_shape(&n, NULL), HAILO_INVALID_ARGUMENT);
    n.chunks_per_frame = 0;
    CHECK_STATUS(hailo_get_nms_shape(&n, &s), HAILO_INVALID_ARGUMENT);
    n = ref_nms_info(2, 0x10000u, 0, 0x10000u); /* 2^32 per class */
    CHECK_STATUS(hailo_get_nms_shape(&n, &s), HAILO_INVALID_ARGUMENT);
    n = ref_nms_info(0x10000u, 0x100u, 0, 0x100u); /* 2^32 in total */
    CHECK_STATUS(hailo_get_nms_shape(&n, &s), HAILO_INVALID_ARGUMENT);
    n.max_bboxes_total = 5; /* a given total is what counts */
    CHECK_OK(hailo_get_nms_shape(&n, &s));
    CHECK(s.max_bboxes_total == 5 && s.max_bboxes_per_class == 0x10000u);
}

static void test_default_transform_params(void)
{
    const hailo_transform_params_t p = HAILO_DEFAULT_TRANSFORM_PARAMS;
    CHECK(p.transform_mode == HAILO_STREAM_TRANSFORM_COPY);
    CHECK(p.user_buffer_format.type == AUTO_T && p.user_buffer_format.order == HAILO_FORMAT_ORDER_AUTO &&
          p.user_buffer_format.flags == HAILO_FORMAT_FLAGS_QUANTIZED);
    /* the legacy QUANTIZED flag changes nothing: the same plan as no flag at all */
    hailo_stream_info_t si = stream(HAILO_H2D_STREAM, U8, HAILO_FORMAT_ORDER_NHCW, shp(3, 5, 3), shp(3, 8, 3));
    hailo_transform_params_t plain = params(AUTO_T, HAILO_FORMAT_ORDER_AUTO, 0);
    CHECK_EQ_INT(hailo_get_host_frame_size(&si, &p), hailo_get_host_frame_size(&si, &plain));
    hailo_input_transform_context c;
    CHECK_OK(hailo_create_input_transform_context(&si, &p, &c));
    char a[HAILO_MAX_MESSAGE_SIZE], b[HAILO_MAX_MESSAGE_SIZE];
    CHECK_OK(hailo_describe_input_transform_context(c, a, sizeof a));
    hailo_release_input_transform_context(c);
    CHECK_OK(hailo_create_input_transform_context(&si, &plain, &c));
    CHECK_OK(hailo_describe_input_transform_context(c, b, sizeof b));
    hailo_release_input_transform_context(c);
    CHECK(strcmp(a, b) == 0);
}

static void test_resolve(void)
{
    hailo_stream_info_t si = stream(HAILO_H2D_STREAM, U16, HAILO_FORMAT_ORDER_NHCW, shp(2, 2, 2), shp(2, 2, 2));
    hailo_format_t u = {AUTO_T, HAILO_FORMAT_ORDER_AUTO, HAILO_FORMAT_FLAGS_TRANSPOSED}, r;
    CHECK_OK(hailo_resolve_user_format(&si, &u, &r));
    CHECK(r.type == U16 && r.order == HAILO_FORMAT_ORDER_NHWC && r.flags == HAILO_FORMAT_FLAGS_TRANSPOSED);
    const struct {
        hailo_format_order_t dev, host;
    } first[] = {{HAILO_FORMAT_ORDER_NHWC, HAILO_FORMAT_ORDER_NHWC},
                 {HAILO_FORMAT_ORDER_FCR, HAILO_FORMAT_ORDER_NHWC},
                 {HAILO_FORMAT_ORDER_F8CR, HAILO_FORMAT_ORDER_NHWC},
                 {HAILO_FORMAT_ORDER_NC, HAILO_FORMAT_ORDER_NC},
                 {HAILO_FORMAT_ORDER_NHW, HAILO_FORMAT_ORDER_NHW},
                 {HAILO_FORMAT_ORDER_RGB888, HAILO_FORMAT_ORDER_NHWC},
                 {HAILO_FORMAT_ORDER_YUY2, HAILO_FORMAT_ORDER_YUY2},
                 {HAILO_FORMAT_ORDER_HAILO_YYUV, HAILO_FORMAT_ORDER_NV12},
                 {HAILO_FORMAT_ORDER_HAILO_YYVU, HAILO_FORMAT_ORDER_NV21},
                 {HAILO_FORMAT_ORDER_HAILO_YYYYUV, HAILO_FORMAT_ORDER_I420},
                 {HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP, HAILO_FORMAT_ORDER_HAILO_NMS_BY_CLASS}};
    for (size_t i = 0; i < sizeof first / sizeof first[0]; i++) {
        si.format.order = first[i].dev;
        u.flags = HAILO_FORMAT_FLAGS_NONE;
        CHECK_OK(hailo_resolve_user_format(&si, &u, &r));
        CHECK(r.order == first[i].host);
        CHECK(r.type == (first[i].dev == HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP ? F32 : U16));
    }
    si.format.order = HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP;
    u.order = HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP;
    CHECK_OK(hailo_resolve_user_format(&si, &u, &r));
    CHECK(r.type == U16);
    u.order = HAILO_FORMAT_ORDER_HAILO_NMS_BY_SCORE; /* HailoRT: by-score frames are UINT8 */
    CHECK_OK(hailo_resolve_user_format(&si, &u, &r));
    CHECK(r.type == U8);
    u.order = HAILO_FORMAT_ORDER_HAILO_NMS_BY_CLASS;
    CHECK_OK(hailo_resolve_user_format(&si, &u, &r));
    CHECK(r.type == F32);
    u.order = HAILO_FORMAT_ORDER_AUTO;
    si.format.order = HAILO_FORMAT_ORDER_NCHW; /* not a device order: AUTO has no meaning */
    u.order = HAILO_FORMAT_ORDER_AUTO;
    CHECK_STATUS(hailo_resolve_user_format(&si, &u, &r), HAILO_INVALID_OPERATION);
    u.order = HAILO_FORMAT_ORDER_NHWC; /* an explicit order is kept */
    CHECK_OK(hailo_resolve_user_format(&si, &u, &r));
    CHECK_STATUS(hailo_resolve_user_format(NULL, &u, &r), HAILO_INVALID_ARGUMENT);
    CHECK_STATUS(hailo_resolve_user_format(&si, NULL, &r), HAILO_INVALID_ARGUMENT);
    CHECK_STATUS(hailo_resolve_user_format(&si, &u, NULL), HAILO_INVALID_ARGUMENT);
    u.type = (hailo_format_type_t)8;
    CHECK_STATUS(hailo_resolve_user_format(&si, &u, &r), HAILO_INVALID_ARGUMENT);
    u.type = AUTO_T;
    si.format.type = AUTO_T;
    CHECK_STATUS(hailo_resolve_user_format(&si, &u, &r), HAILO_INVALID_ARGUMENT);
}

static void test_decisions(void)
{
    bool b = false;
    CHECK_OK(hailo_is_quantization_required(F32, U8, &b));
    CHECK(b);
    CHECK_OK(hailo_is_quantization_required(U8, U8, &b));
    CHECK(!b);
    CHECK_OK(hailo_is_quantization_required(AUTO_T, U16, &b));
    CHECK(!b);
    CHECK_OK(hailo_is_quantization_required(U8, U16, &b));
    CHECK(b);
    CHECK_STATUS(hailo_is_quantization_required((hailo_format_type_t)5, U8, &b), HAILO_INVALID_ARGUMENT);
    CHECK_STATUS(hailo_is_quantization_required(U8, U8, NULL), HAILO_INVALID_ARGUMENT);

    hailo_format_t a = {U8, HAILO_FORMAT_ORDER_NHWC, HAILO_FORMAT_FLAGS_NONE};
    hailo_format_t t = {U8, HAILO_FORMAT_ORDER_NHWC, (hailo_format_flags_t)(HAILO_FORMAT_FLAGS_TRANSPOSED | HAILO_FORMAT_FLAGS_QUANTIZED)};
    hailo_format_t q = {U8, HAILO_FORMAT_ORDER_NHWC, HAILO_FORMAT_FLAGS_QUANTIZED};
    CHECK_OK(hailo_is_transpose_required(&a, &t, &b));
    CHECK(b);
    CHECK_OK(hailo_is_transpose_required(&a, &q, &b));
    CHECK(!b); /* QUANTIZED is ignored */
    CHECK_OK(hailo_is_transpose_required(&t, &t, &b));
    CHECK(!b);
    hailo_format_t bad = {U8, HAILO_FORMAT_ORDER_NHWC, (hailo_format_flags_t)16};
    CHECK_STATUS(hailo_is_transpose_required(&a, &bad, &b), HAILO_INVALID_ARGUMENT);
    hailo_format_t bad_order = {U8, (hailo_format_order_t)55, HAILO_FORMAT_FLAGS_NONE};
    hailo_format_t bad_type = {(hailo_format_type_t)9, HAILO_FORMAT_ORDER_NHWC, HAILO_FORMAT_FLAGS_NONE};
    CHECK_STATUS(hailo_is_transpose_required(&bad_order, &a, &b), HAILO_INVALID_ARGUMENT);
    CHECK_STATUS(hailo_is_transpose_required(&a, &bad_type, &b), HAILO_INVALID_ARGUMENT);
    hailo_3d_image_shape_t s1 = shp(1, 1, 1);
    CHECK_STATUS(hailo_is_reorder_required(&s1, &bad_type, &s1, &a, &b), HAILO_INVALID_ARGUMENT);
    CHECK_STATUS(hailo_is_reorder_required(&s1, &a, &s1, &bad, &b), HAILO_INVALID_ARGUMENT);
    CHECK_STATUS(hailo_is_transpose_required(NULL, &a, &b), HAILO_INVALID_ARGUMENT);

    hailo_3d_image_shape_t s = shp(4, 4, 3), s2 = shp(4, 8, 3), s16 = shp(4, 4, 16), s8 = shp(4, 4, 8);
    hailo_format_t nhcw = {U8, HAILO_FORMAT_ORDER_NHCW, HAILO_FORMAT_FLAGS_NONE};
    hailo_format_t f8 = {U8, HAILO_FORMAT_ORDER_F8CR, HAILO_FORMAT_FLAGS_NONE};
    CHECK_OK(hailo_is_reorder_required(&s, &a, &s, &a, &b));
    CHECK(!b);
    CHECK_OK(hailo_is_reorder_required(&s, &a, &s, &nhcw, &b));
    CHECK(b);
    CHECK_OK(hailo_is_reorder_required(&s, &a, &s2, &a, &b));
    CHECK(b);
    CHECK_OK(hailo_is_reorder_required(&s16, &f8, &s16, &f8, &b));
    CHECK(b); /* F8CR with C > 8 */
    CHECK_OK(hailo_is_reorder_required(&s8, &f8, &s8, &f8, &b));
    CHECK(!b);
    CHECK_STATUS(hailo_is_reorder_required(&s, &bad, &s, &a, NULL), HAILO_INVALID_ARGUMENT);
    CHECK_STATUS(hailo_is_reorder_required(NULL, &a, &s, &a, &b), HAILO_INVALID_ARGUMENT);

    CHECK_OK(hailo_is_periph_padding_required(150528, &b));
    CHECK(!b);
    CHECK_OK(hailo_is_periph_padding_required(45, &b));
    CHECK(b);
    CHECK_STATUS(hailo_is_periph_padding_required(8, NULL), HAILO_INVALID_ARGUMENT);
}

/* When no step is needed the context is a plain copy and says so; sizes are equal. */
static void test_transformation_required_and_copy(void)
{
    bool b2 = false;
    hailo_stream_info_t si = stream(HAILO_H2D_STREAM, U8, HAILO_FORMAT_ORDER_NHCW, shp(4, 8, 3), shp(4, 8, 3));
    hailo_transform_params_t p = params(AUTO_T, HAILO_FORMAT_ORDER_NHCW, 0);
    bool req = true;
    CHECK_OK(hailo_is_input_transformation_required(&si, &p, &req));
    CHECK(!req);
    hailo_input_transform_context c;
    CHECK_OK(hailo_create_input_transform_context(&si, &p, &c));
    char msg[HAILO_MAX_MESSAGE_SIZE];
    CHECK_OK(hailo_describe_input_transform_context(c, msg, sizeof msg));
    CHECK(strcmp(msg, "copy") == 0);
    unsigned char src[96], dst[96];
    for (int i = 0; i < 96; i++) src[i] = (unsigned char)(i * 7);
    CHECK_OK(hailo_transform_frame_by_input_transform_context(c, src, 96, dst, 96));
    CHECK(memcmp(src, dst, 96) == 0);
    hailo_release_input_transform_context(c);
    /* each step alone makes it required */
    p = params(F32, HAILO_FORMAT_ORDER_NHCW, 0);
    CHECK_OK(hailo_is_input_transformation_required(&si, &p, &req));
    CHECK(req);
    p = params(U8, HAILO_FORMAT_ORDER_NHWC, 0);
    CHECK_OK(hailo_is_input_transformation_required(&si, &p, &req));
    CHECK(req);
    p = params(U8, HAILO_FORMAT_ORDER_NHCW, HAILO_FORMAT_FLAGS_TRANSPOSED);
    CHECK_OK(hailo_is_input_transformation_required(&si, &p, &req));
    CHECK(req);
    p = params(U8, HAILO_FORMAT_ORDER_NHCW, HAILO_FORMAT_FLAGS_QUANTIZED);
    CHECK_OK(hailo_is_input_transformation_required(&si, &p, &req));
    CHECK(!req);
    hailo_stream_info_t odd = stream(HAILO_H2D_STREAM, U8, HAILO_FORMAT_ORDER_NHCW, shp(3, 5, 3), shp(3, 5, 3));
    p = params(U8, HAILO_FORMAT_ORDER_NHCW, 0);
    CHECK_OK(hailo_is_input_transformation_required(&odd, &p, &req));
    CHECK(req); /* periph padding: 45 bytes */
    CHECK_OK(hailo_create_input_transform_context(&odd, &p, &c));
    CHECK_OK(hailo_describe_input_transform_context(c, msg, sizeof msg));
    CHECK_CONTAINS(msg, "periph padding 45->48");
    hailo_release_input_transform_context(c);
    CHECK_STATUS(hailo_is_input_transformation_required(&si, &p, NULL), HAILO_INVALID_ARGUMENT);
    /* outputs */
    hailo_stream_info_t o = stream(HAILO_D2H_STREAM, U8, HAILO_FORMAT_ORDER_NHW, shp(4, 8, 1), shp(4, 8, 1));
    p = params(AUTO_T, HAILO_FORMAT_ORDER_AUTO, 0);
    CHECK_OK(hailo_is_output_transformation_required(&o, &p, &req));
    CHECK(!req);
    p = params(F32, HAILO_FORMAT_ORDER_AUTO, 0);
    CHECK_OK(hailo_is_output_transformation_required(&o, &p, &req));
    CHECK(req);
    hailo_output_transform_context oc;
    CHECK_OK(hailo_create_output_transform_context(&o, &p, &oc));
    CHECK_OK(hailo_describe_output_transform_context(oc, msg, sizeof msg));
    CHECK_CONTAINS(msg, "cast UINT8->FLOAT32");
    /* a transpose runs iff the TRANSPOSED flags of the user and device formats differ */
    const int flag_cases[4][2] = {{0, 0}, {0, 1}, {1, 0}, {1, 1}};
    for (int i = 0; i < 4; i++) {
        hailo_stream_info_t t = stream(HAILO_H2D_STREAM, U8, HAILO_FORMAT_ORDER_NHWC, shp(2, 4, 1), shp(2, 4, 1));
        t.format.flags = flag_cases[i][0] ? HAILO_FORMAT_FLAGS_TRANSPOSED : HAILO_FORMAT_FLAGS_NONE;
        hailo_transform_params_t tp = params(U8, HAILO_FORMAT_ORDER_NHWC, flag_cases[i][1] ? HAILO_FORMAT_FLAGS_TRANSPOSED : 0);
        CHECK_OK(hailo_is_transpose_required(&tp.user_buffer_format, &t.format, &b2));
        CHECK_OK(hailo_is_input_transformation_required(&t, &tp, &req));
        CHECK(req == b2 && b2 == (flag_cases[i][0] != flag_cases[i][1]));
        hailo_input_transform_context tc;
        CHECK_OK(hailo_create_input_transform_context(&t, &tp, &tc));
        CHECK_OK(hailo_describe_input_transform_context(tc, msg, sizeof msg));
        CHECK((strstr(msg, "transpose") != NULL) == b2);
        unsigned char x[8] = {0, 1, 2, 3, 4, 5, 6, 7}, z[8];
        CHECK_OK(hailo_transform_frame_by_input_transform_context(tc, x, 8, z, 8));
        CHECK(z[1] == (b2 ? 2 : 1)); /* host (W=4, H=2) when transposed: z[h=0][w=1] = x[w=1][h=0] */
        hailo_release_input_transform_context(tc);
    }
    float y[32];
    unsigned char q[32];
    for (int i = 0; i < 32; i++) q[i] = (unsigned char)(200 + i);
    CHECK_OK(hailo_transform_frame_by_output_transform_context(oc, q, 32, y, sizeof y));
    CHECK(y[0] == 200.0f && y[31] == 231.0f); /* cast, never dequantized */
    hailo_release_output_transform_context(oc);
}

static void test_no_transform_mode(void)
{
    hailo_stream_info_t si = stream(HAILO_H2D_STREAM, U8, HAILO_FORMAT_ORDER_NHCW, shp(3, 5, 3), shp(3, 6, 3));
    hailo_transform_params_t p = params(F32, HAILO_FORMAT_ORDER_NV12, 0); /* ignored */
    p.transform_mode = HAILO_STREAM_NO_TRANSFORM;
    bool req = true;
    CHECK_OK(hailo_is_input_transformation_required(&si, &p, &req));
    CHECK(!req);
    CHECK_EQ_INT(hailo_get_host_frame_size(&si, &p), 56);
    hailo_input_transform_context c;
    CHECK_OK(hailo_create_input_transform_context(&si, &p, &c));
    CHECK_EQ_INT(hailo_input_transform_context_get_src_frame_size(c), 56);
    CHECK_EQ_INT(hailo_input_transform_context_get_dst_frame_size(c), 56);
    char msg[HAILO_MAX_MESSAGE_SIZE];
    CHECK_OK(hailo_describe_input_transform_context(c, msg, sizeof msg));
    CHECK_CONTAINS(msg, "NO_TRANSFORM");
    hailo_release_input_transform_context(c);
    /* the stream itself is still checked */
    si.format.type = F32;
    CHECK_STATUS(hailo_create_input_transform_context(&si, &p, &c), HAILO_INVALID_OPERATION);
}

static void test_describe_steps(void)
{
    hailo_stream_info_t si = stream(HAILO_H2D_STREAM, U8, HAILO_FORMAT_ORDER_NHCW, shp(224, 224, 3), shp(224, 224, 3));
    hailo_transform_params_t p = params(F32, HAILO_FORMAT_ORDER_NHWC, 0);
    hailo_input_transform_context c;
    CHECK_OK(hailo_create_input_transform_context(&si, &p, &c));
    char msg[HAILO_MAX_MESSAGE_SIZE];
    CHECK_OK(hailo_describe_input_transform_context(c, msg, sizeof msg));
    CHECK_CONTAINS(msg, "quantize FLOAT32->UINT8 (scale=0.0078125, zp=128) | reorder NHWC(224x224x3) -> "
                        "NHCW(224x224x3 hw 224x224x3)");
    hailo_release_input_transform_context(c);
    p = params(U8, HAILO_FORMAT_ORDER_NHWC, 0);
    si.format.type = U16;
    CHECK_OK(hailo_create_input_transform_context(&si, &p, &c));
    CHECK_OK(hailo_describe_input_transform_context(c, msg, sizeof msg));
    CHECK_CONTAINS(msg, "widen UINT8->UINT16 | reorder");
    hailo_release_input_transform_context(c);
    hailo_stream_info_t o = stream(HAILO_D2H_STREAM, U8, HAILO_FORMAT_ORDER_NHCW, shp(3, 5, 3), shp(3, 5, 3));
    p = params(F32, HAILO_FORMAT_ORDER_NHWC, HAILO_FORMAT_FLAGS_TRANSPOSED);
    hailo_output_transform_context oc;
    CHECK_OK(hailo_create_output_transform_context(&o, &p, &oc));
    CHECK_OK(hailo_describe_output_transform_context(oc, msg, sizeof msg));
    CHECK_CONTAINS(msg, "periph padding 48->45 | reorder NHWC(3x5x3) <- NHCW(3x5x3 hw 3x5x3) | transpose 5x3x3 <-> 3x5x3 | dequantize UINT8->FLOAT32 (scale=0.0078125, zp=128)");
    hailo_release_output_transform_context(oc);
}

/* A context copies what it needs: the caller's stream info and QP array may be reused. */
static void test_context_owns_its_copy(void)
{
    hailo_stream_info_t *si = malloc(sizeof *si);
    *si = stream(HAILO_D2H_STREAM, U8, HAILO_FORMAT_ORDER_NHCW, shp(1, 2, 2), shp(1, 2, 2));
    hailo_quant_info_t *qps = malloc(2 * sizeof *qps);
    qps[0] = (hailo_quant_info_t){0.0f, 1.0f, 0, 0};
    qps[1] = (hailo_quant_info_t){0.0f, 2.0f, 0, 0};
    si->quant_infos = qps;
    si->quant_infos_count = 2;
    hailo_transform_params_t p = params(F32, HAILO_FORMAT_ORDER_NHWC, 0);
    hailo_output_transform_context c;
    CHECK_OK(hailo_create_output_transform_context(si, &p, &c));
    memset(qps, 0xFF, 2 * sizeof *qps);
    free(qps);
    memset(si, 0xFF, sizeof *si);
    free(si);
    unsigned char src[8] = {1, 2, 3, 4, 0, 0, 0, 0};
    float y[4];
    CHECK_OK(hailo_transform_frame_by_output_transform_context(c, src, 8, y, sizeof y));
    CHECK(y[0] == 1.0f && y[1] == 6.0f && y[2] == 2.0f && y[3] == 8.0f);
    hailo_release_output_transform_context(c);
}

/* Distinct contexts, one per thread, at the same time. */
typedef struct {
    int seed;
    int ok;
} thread_arg;

static void *worker(void *arg)
{
    thread_arg *t = (thread_arg *)arg;
    ref_rng r = {(uint64_t)t->seed * 7919u + 1};
    hailo_stream_info_t si = stream(HAILO_H2D_STREAM, U8, HAILO_FORMAT_ORDER_NHCW, shp(64, 100, 3), shp(64, 104, 3));
    hailo_transform_params_t p = params(F32, HAILO_FORMAT_ORDER_NHWC, t->seed % 2 ? HAILO_FORMAT_FLAGS_TRANSPOSED : 0);
    hailo_input_transform_context c;
    t->ok = hailo_create_input_transform_context(&si, &p, &c) == HAILO_SUCCESS;
    size_t sn = hailo_input_transform_context_get_src_frame_size(c), dn = hailo_input_transform_context_get_dst_frame_size(c);
    float *src = malloc(sn);
    unsigned char *dst = malloc(dn), *want = malloc(dn);
    for (int it = 0; it < 50 && t->ok; it++) {
        ref_random_host(&r, &si, &p.user_buffer_format, src, sn, 1);
        t->ok = hailo_transform_frame_by_input_transform_context(c, src, sn, dst, dn) == HAILO_SUCCESS;
        ref_input(&si, &p.user_buffer_format, src, want);
        t->ok = t->ok && memcmp(dst, want, dn) == 0;
    }
    free(src);
    free(dst);
    free(want);
    hailo_release_input_transform_context(c);
    return NULL;
}

static void test_threads_distinct_contexts(void)
{
    pthread_t th[4];
    thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i].seed = i;
        args[i].ok = 0;
        CHECK(pthread_create(&th[i], NULL, worker, &args[i]) == 0);
    }
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++) CHECK(args[i].ok);
}

HS_TESTS(test_version_and_status, test_shape_and_type_sizes, test_hw_frame_sizes,
         test_host_frame_sizes, test_nms_shape, test_default_transform_params, test_resolve, test_decisions, test_transformation_required_and_copy,
         test_no_transform_mode, test_describe_steps, test_context_owns_its_copy,
         test_threads_distinct_contexts)
