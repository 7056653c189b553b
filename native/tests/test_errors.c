/*
 * test_errors.c - every error path: the status (docs/stream-layer.md, status table), the
 * message of hailo_check_transform_params (names the stream and the fault), and that a
 * failing call leaves its outputs alone.
 */
#include "hs_internal.h"
#include "hs_test.h"
#include "ref_model.h"

#include <math.h>

#define U8 HAILO_FORMAT_TYPE_UINT8
#define U16 HAILO_FORMAT_TYPE_UINT16
#define F32 HAILO_FORMAT_TYPE_FLOAT32

static hailo_stream_info_t base_stream(hailo_stream_direction_t dir)
{
    hailo_stream_info_t si;
    memset(&si, 0, sizeof si);
    strcpy(si.name, "conv5");
    si.direction = dir;
    si.format = (hailo_format_t){U8, HAILO_FORMAT_ORDER_NHCW, HAILO_FORMAT_FLAGS_NONE};
    si.shape = (hailo_3d_image_shape_t){4, 6, 3};
    si.hw_shape = (hailo_3d_image_shape_t){4, 8, 3};
    si.quant_info = (hailo_quant_info_t){128.0f, 0.5f, -64.0f, 63.5f};
    return si;
}

static hailo_transform_params_t params(hailo_format_type_t t, hailo_format_order_t o, int flags)
{
    hailo_transform_params_t p = {HAILO_STREAM_TRANSFORM_COPY, {t, o, (hailo_format_flags_t)flags}};
    return p;
}

/* The status of check, the check of the stream's direction, create (of that direction) and
 * the size query agree; the check of the other direction is HAILO_INVALID_ARGUMENT. */
static hailo_status expect(const hailo_stream_info_t *si, const hailo_transform_params_t *p,
                           hailo_status want, const char *needle, char *msg)
{
    char buf[HAILO_MAX_MESSAGE_SIZE], same[HAILO_MAX_MESSAGE_SIZE];
    hailo_status st = hailo_check_transform_params(si, p, buf, sizeof buf);
    if (msg) strcpy(msg, buf);
    if (st != want) {
        fprintf(stderr, "    check: status %d, want %d (%s)\n", (int)st, (int)want, buf);
        return HAILO_INTERNAL_FAILURE;
    }
    if (si && (uint32_t)si->direction <= 1u) {
        int in = si->direction == HAILO_H2D_STREAM;
        hailo_status own = in ? hailo_check_input_transform_params(si, p, same, sizeof same)
                              : hailo_check_output_transform_params(si, p, same, sizeof same);
        hailo_status other = in ? hailo_check_output_transform_params(si, p, NULL, 0)
                                : hailo_check_input_transform_params(si, p, NULL, 0);
        if (own != want || strcmp(same, buf) != 0 || other != HAILO_INVALID_ARGUMENT) {
            fprintf(stderr, "    directed checks: %d (%s) and %d\n", (int)own, same, (int)other);
            return HAILO_INTERNAL_FAILURE;
        }
    }
    if (st != HAILO_SUCCESS) {
        if (strstr(buf, "stream 'conv5'") == NULL && si != NULL && p != NULL &&
            strncmp(si->name, "conv5", 5) == 0) {
            fprintf(stderr, "    message does not name the stream: %s\n", buf);
            return HAILO_INTERNAL_FAILURE;
        }
        if (needle && strstr(buf, needle) == NULL) {
            fprintf(stderr, "    message \"%s\" lacks \"%s\"\n", buf, needle);
            return HAILO_INTERNAL_FAILURE;
        }
        if (si && p && hailo_get_host_frame_size(si, p) != 0) return HAILO_INTERNAL_FAILURE;
    }
    if (si && (uint32_t)si->direction <= 1u) {
        if (si->direction == HAILO_H2D_STREAM) {
            hailo_input_transform_context c = (hailo_input_transform_context)(void *)&buf;
            hailo_status cs = hailo_create_input_transform_context(si, p, &c);
            if (cs != want) return HAILO_INTERNAL_FAILURE;
            if (cs != HAILO_SUCCESS && c != NULL) return HAILO_INTERNAL_FAILURE; /* NULLed */
            hailo_release_input_transform_context(c);
        } else {
            hailo_output_transform_context c = (hailo_output_transform_context)(void *)&buf;
            hailo_status cs = hailo_create_output_transform_context(si, p, &c);
            if (cs != want) return HAILO_INTERNAL_FAILURE;
            if (cs != HAILO_SUCCESS && c != NULL) return HAILO_INTERNAL_FAILURE;
            hailo_release_output_transform_context(c);
        }
    }
    return HAILO_SUCCESS;
}

#define EXPECT(si, p, want, needle) CHECK_OK(expect((si), (p), (want), (needle), NULL))

static void test_null_and_unknown_enums(void)
{
    hailo_stream_info_t si = base_stream(HAILO_H2D_STREAM);
    hailo_transform_params_t p = params(F32, HAILO_FORMAT_ORDER_NHWC, 0);
    char msg[HAILO_MAX_MESSAGE_SIZE];
    CHECK_STATUS(hailo_check_transform_params(NULL, &p, msg, sizeof msg), HAILO_INVALID_ARGUMENT);
    CHECK_CONTAINS(msg, "stream info is NULL");
    CHECK_STATUS(hailo_check_transform_params(&si, NULL, msg, sizeof msg), HAILO_INVALID_ARGUMENT);
    CHECK_CONTAINS(msg, "params are NULL");
    hailo_input_transform_context ic;
    CHECK_STATUS(hailo_create_input_transform_context(NULL, &p, &ic), HAILO_INVALID_ARGUMENT);
    CHECK_STATUS(hailo_create_input_transform_context(&si, NULL, &ic), HAILO_INVALID_ARGUMENT);
    CHECK_STATUS(hailo_create_input_transform_context(&si, &p, NULL), HAILO_INVALID_ARGUMENT);
    hailo_output_transform_context oc;
    CHECK_STATUS(hailo_create_output_transform_context(NULL, &p, &oc), HAILO_INVALID_ARGUMENT);
    CHECK_STATUS(hailo_create_output_transform_context(&si, &p, NULL), HAILO_INVALID_ARGUMENT);

    hailo_stream_info_t bad = si;
    bad.direction = (hailo_stream_direction_t)5;
    CHECK_STATUS(hailo_check_transform_params(&bad, &p, msg, sizeof msg), HAILO_INVALID_ARGUMENT);
    CHECK_CONTAINS(msg, "direction 5");
    bad = si;
    bad.format.type = (hailo_format_type_t)9;
    EXPECT(&bad, &p, HAILO_INVALID_ARGUMENT, "device format");
    bad = si;
    bad.format.order = (hailo_format_order_t)99;
    EXPECT(&bad, &p, HAILO_INVALID_ARGUMENT, "unknown value");
    bad = si;
    bad.format.order = (hailo_format_order_t)-1;
    EXPECT(&bad, &p, HAILO_INVALID_ARGUMENT, "unknown value");
    bad = si;
    bad.format.flags = (hailo_format_flags_t)8;
    EXPECT(&bad, &p, HAILO_INVALID_ARGUMENT, "unknown value");
    hailo_transform_params_t bp = params((hailo_format_type_t)4, HAILO_FORMAT_ORDER_NHWC, 0);
    EXPECT(&si, &bp, HAILO_INVALID_ARGUMENT, "user format");
    bp = params(F32, (hailo_format_order_t)24, 0);
    EXPECT(&si, &bp, HAILO_INVALID_ARGUMENT, "user format");
    bp = params(F32, HAILO_FORMAT_ORDER_NHWC, 4);
    EXPECT(&si, &bp, HAILO_INVALID_ARGUMENT, "user format");
    bp = p;
    bp.transform_mode = (hailo_stream_transform_mode_t)3;
    EXPECT(&si, &bp, HAILO_INVALID_ARGUMENT, "transform mode 3");
}

static void test_wrong_direction(void)
{
    hailo_stream_info_t si = base_stream(HAILO_D2H_STREAM);
    hailo_transform_params_t p = params(F32, HAILO_FORMAT_ORDER_NHWC, 0);
    hailo_input_transform_context ic;
    CHECK_STATUS(hailo_create_input_transform_context(&si, &p, &ic), HAILO_INVALID_ARGUMENT);
    bool req;
    CHECK_STATUS(hailo_is_input_transformation_required(&si, &p, &req), HAILO_INVALID_ARGUMENT);
    si.direction = HAILO_H2D_STREAM;
    hailo_output_transform_context oc;
    CHECK_STATUS(hailo_create_output_transform_context(&si, &p, &oc), HAILO_INVALID_ARGUMENT);
    CHECK_STATUS(hailo_is_output_transformation_required(&si, &p, &req), HAILO_INVALID_ARGUMENT);
    /* the directed checks say what creation says, and why; the undirected one checks the
     * stream against its own direction */
    char msg[HAILO_MAX_MESSAGE_SIZE];
    CHECK_OK(hailo_check_transform_params(&si, &p, msg, sizeof msg));
    CHECK_OK(hailo_check_input_transform_params(&si, &p, msg, sizeof msg));
    CHECK(msg[0] == '\0');
    CHECK_STATUS(hailo_check_output_transform_params(&si, &p, msg, sizeof msg), HAILO_INVALID_ARGUMENT);
    CHECK_CONTAINS(msg, "stream 'conv5': the stream is an input (H2D), but this is an output transform context");
    si.direction = HAILO_D2H_STREAM;
    CHECK_STATUS(hailo_check_input_transform_params(&si, &p, msg, sizeof msg), HAILO_INVALID_ARGUMENT);
    CHECK_CONTAINS(msg, "is an output (D2H), but this is an input transform context");
    CHECK_OK(hailo_check_output_transform_params(&si, &p, msg, sizeof msg));
    CHECK_STATUS(hailo_check_input_transform_params(NULL, &p, msg, sizeof msg), HAILO_INVALID_ARGUMENT);
    CHECK_STATUS(hailo_check_output_transform_params(&si, NULL, NULL, 0), HAILO_INVALID_ARGUMENT);
    /* a device order that exists in the other direction only */
    hailo_stream_info_t o = base_stream(HAILO_D2H_STREAM);
    o.format.order = HAILO_FORMAT_ORDER_RGB888;
    o.shape.features = 3;
    o.hw_shape = (hailo_3d_image_shape_t){4, 6, 4};
    hailo_transform_params_t u8 = params(U8, HAILO_FORMAT_ORDER_NHWC, 0);
    EXPECT(&o, &u8, HAILO_INVALID_OPERATION, "exists only on inputs");
    hailo_stream_info_t i = base_stream(HAILO_H2D_STREAM);
    i.format.order = HAILO_FORMAT_ORDER_NHW;
    i.shape.features = i.hw_shape.features = 1;
    hailo_transform_params_t nhw = params(U8, HAILO_FORMAT_ORDER_NHW, 0);
    EXPECT(&i, &nhw, HAILO_INVALID_OPERATION, "exists only on outputs");
    /* RGB4 is an input-only host order */
    hailo_transform_params_t rgb4 = params(U8, HAILO_FORMAT_ORDER_RGB4, 0);
    hailo_stream_info_t out = base_stream(HAILO_D2H_STREAM);
    EXPECT(&out, &rgb4, HAILO_INVALID_OPERATION, "RGB4 cannot become device order NHCW on an output");
}

static void test_type_pairs(void)
{
    char msg[HAILO_MAX_MESSAGE_SIZE];
    hailo_stream_info_t si = base_stream(HAILO_H2D_STREAM);
    hailo_transform_params_t p = params(U16, HAILO_FORMAT_ORDER_NHWC, 0);
    CHECK_OK(expect(&si, &p, HAILO_INVALID_OPERATION, NULL, msg));
    CHECK(strcmp(msg, "stream 'conv5': user type UINT16 cannot become device type UINT8 "
                      "(narrowing); use UINT8 or FLOAT32") == 0);
    hailo_stream_info_t o = base_stream(HAILO_D2H_STREAM);
    o.format.type = U16;
    hailo_transform_params_t u8 = params(U8, HAILO_FORMAT_ORDER_NHWC, 0);
    CHECK_OK(expect(&o, &u8, HAILO_INVALID_OPERATION, NULL, msg));
    CHECK(strcmp(msg, "stream 'conv5': device type UINT16 cannot become user type UINT8 "
                      "(narrowing); use UINT16 or FLOAT32") == 0);
    /* FLOAT32 and AUTO as device types */
    si.format.type = F32;
    hailo_transform_params_t f = params(F32, HAILO_FORMAT_ORDER_AUTO, 0);
    EXPECT(&si, &f, HAILO_INVALID_OPERATION, "device type FLOAT32");
    CHECK_STATUS(hailo_fill_hw_frame_size(&si), HAILO_INVALID_OPERATION);
    si.format.type = HAILO_FORMAT_TYPE_AUTO;
    EXPECT(&si, &f, HAILO_INVALID_ARGUMENT, "device type AUTO");
    CHECK_STATUS(hailo_fill_hw_frame_size(&si), HAILO_INVALID_ARGUMENT);
    /* YUV: no quantization */
    hailo_stream_info_t y = base_stream(HAILO_H2D_STREAM);
    y.format.order = HAILO_FORMAT_ORDER_HAILO_YYUV;
    hailo_transform_params_t nv = params(F32, HAILO_FORMAT_ORDER_NV12, 0);
    EXPECT(&y, &nv, HAILO_INVALID_OPERATION, "must equal the device type");
    /* NMS: by class is FLOAT32; by score UINT8 (HailoRT) or FLOAT32 (the same bytes) */
    hailo_stream_info_t n = base_stream(HAILO_D2H_STREAM);
    n.format = (hailo_format_t){U16, HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP, HAILO_FORMAT_FLAGS_NONE};
    n.nms_info = ref_nms_info(3, 4, 0, 1);
    hailo_transform_params_t bc = params(U16, HAILO_FORMAT_ORDER_HAILO_NMS_BY_CLASS, 0);
    EXPECT(&n, &bc, HAILO_INVALID_OPERATION, "FLOAT32 only");
    bc = params(U8, HAILO_FORMAT_ORDER_HAILO_NMS_BY_CLASS, 0);
    EXPECT(&n, &bc, HAILO_INVALID_OPERATION, "FLOAT32 only");
    hailo_transform_params_t bs = params(U16, HAILO_FORMAT_ORDER_HAILO_NMS_BY_SCORE, 0);
    EXPECT(&n, &bs, HAILO_INVALID_OPERATION, "UINT8 (or FLOAT32, the same bytes), not UINT16");
    bs = params(U8, HAILO_FORMAT_ORDER_HAILO_NMS_BY_SCORE, 0);
    EXPECT(&n, &bs, HAILO_SUCCESS, NULL);
    bs = params(F32, HAILO_FORMAT_ORDER_HAILO_NMS_BY_SCORE, 0);
    EXPECT(&n, &bs, HAILO_SUCCESS, NULL);
    n.format.type = U8; /* the device type does not matter */
    bs = params(U8, HAILO_FORMAT_ORDER_HAILO_NMS_BY_SCORE, 0);
    EXPECT(&n, &bs, HAILO_SUCCESS, NULL);
    n.format.type = U16;
    hailo_transform_params_t raw = params(F32, HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP, 0);
    EXPECT(&n, &raw, HAILO_INVALID_OPERATION, "must equal the device type");
}

static void test_order_pairs(void)
{
    char msg[HAILO_MAX_MESSAGE_SIZE];
    hailo_stream_info_t si = base_stream(HAILO_H2D_STREAM);
    hailo_transform_params_t nv12 = params(U8, HAILO_FORMAT_ORDER_NV12, 0);
    CHECK_OK(expect(&si, &nv12, HAILO_INVALID_OPERATION, NULL, msg));
    CHECK(strcmp(msg, "stream 'conv5': user order NV12 cannot become device order NHCW; use NHWC, "
                      "NCHW, NHCW or RGB4") == 0);
    /* device orders that are not device orders here */
    const hailo_format_order_t not_device[] = {
        HAILO_FORMAT_ORDER_AUTO, HAILO_FORMAT_ORDER_NCHW, HAILO_FORMAT_ORDER_NV12,
        HAILO_FORMAT_ORDER_BAYER_RGB, HAILO_FORMAT_ORDER_12_BIT_BAYER_RGB, HAILO_FORMAT_ORDER_HAILO_NMS,
        HAILO_FORMAT_ORDER_RGB4, HAILO_FORMAT_ORDER_HAILO_NMS_WITH_BYTE_MASK,
        HAILO_FORMAT_ORDER_HAILO_NMS_BY_CLASS, HAILO_FORMAT_ORDER_I420};
    for (size_t i = 0; i < sizeof not_device / sizeof not_device[0]; i++) {
        hailo_stream_info_t d = si;
        d.format.order = not_device[i];
        hailo_transform_params_t u = params(U8, HAILO_FORMAT_ORDER_NHWC, 0);
        EXPECT(&d, &u, HAILO_INVALID_OPERATION, "is not supported");
    }
}

static void test_shapes(void)
{
    hailo_stream_info_t si = base_stream(HAILO_H2D_STREAM);
    hailo_transform_params_t p = params(F32, HAILO_FORMAT_ORDER_NHWC, 0);
    hailo_stream_info_t s = si;
    s.shape.width = 0;
    EXPECT(&s, &p, HAILO_INVALID_ARGUMENT, "shape 4x0x3 has a zero dimension");
    s = si;
    s.hw_shape.height = 3;
    EXPECT(&s, &p, HAILO_INVALID_ARGUMENT, "hw_shape 3x8x3 is smaller than shape 4x6x3");
    s = si;
    s.hw_shape.features = 0;
    EXPECT(&s, &p, HAILO_INVALID_ARGUMENT, "smaller");
    /* NC needs 1x1 */
    s = si;
    s.format.order = HAILO_FORMAT_ORDER_NC;
    hailo_transform_params_t nc = params(F32, HAILO_FORMAT_ORDER_NC, 0);
    EXPECT(&s, &nc, HAILO_INVALID_ARGUMENT, "NC needs height = width = 1");
    /* NHW needs 1 feature */
    s = base_stream(HAILO_D2H_STREAM);
    s.format.order = HAILO_FORMAT_ORDER_NHW;
    hailo_transform_params_t nhw = params(U8, HAILO_FORMAT_ORDER_NHW, 0);
    EXPECT(&s, &nhw, HAILO_INVALID_ARGUMENT, "NHW needs 1 feature");
    /* F8CR hw features multiple of 8 */
    s = si;
    s.format.order = HAILO_FORMAT_ORDER_F8CR;
    s.hw_shape.features = 12;
    EXPECT(&s, &p, HAILO_INVALID_ARGUMENT, "multiple of 8");
    /* RGB888 */
    s = si;
    s.format.order = HAILO_FORMAT_ORDER_RGB888;
    s.hw_shape.features = 3;
    EXPECT(&s, &p, HAILO_INVALID_ARGUMENT, "RGB888 needs 3 features and 4 hw features");
    /* YUY2 */
    s = si;
    s.format.order = HAILO_FORMAT_ORDER_YUY2;
    s.shape = (hailo_3d_image_shape_t){1, 3, 2};
    s.hw_shape = (hailo_3d_image_shape_t){1, 3, 2};
    hailo_transform_params_t yuy2 = params(U8, HAILO_FORMAT_ORDER_YUY2, 0);
    EXPECT(&s, &yuy2, HAILO_INVALID_ARGUMENT, "multiple of 8 bytes");
    s.hw_shape.width = 4;
    EXPECT(&s, &yuy2, HAILO_SUCCESS, NULL);
    /* NV12 odd sizes */
    s = si;
    s.format.order = HAILO_FORMAT_ORDER_HAILO_YYUV;
    s.shape = (hailo_3d_image_shape_t){3, 4, 3};
    s.hw_shape = (hailo_3d_image_shape_t){4, 4, 3};
    hailo_transform_params_t nv = params(U8, HAILO_FORMAT_ORDER_NV12, 0);
    EXPECT(&s, &nv, HAILO_INVALID_ARGUMENT, "even height and width");
    /* frames too large for a uint32 hw_frame_size */
    s = si;
    s.shape = (hailo_3d_image_shape_t){65536, 65536, 2};
    s.hw_shape = s.shape;
    EXPECT(&s, &p, HAILO_INVALID_ARGUMENT, "does not fit");
    s.shape = (hailo_3d_image_shape_t){0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu};
    s.hw_shape = s.shape;
    EXPECT(&s, &p, HAILO_INVALID_ARGUMENT, "does not fit");
    /* hw_frame_size / hw_data_bytes that contradict the hw_shape */
    s = si;
    CHECK_OK(hailo_fill_hw_frame_size(&s));
    CHECK_EQ_INT(s.hw_frame_size, 4 * 8 * 3);
    EXPECT(&s, &p, HAILO_SUCCESS, NULL);
    s.hw_frame_size = 100;
    EXPECT(&s, &p, HAILO_INVALID_ARGUMENT, "hw_frame_size is 100");
    s.hw_frame_size = 0;
    s.hw_data_bytes = 2;
    EXPECT(&s, &p, HAILO_INVALID_ARGUMENT, "hw_data_bytes is 2");
    /* TRANSPOSED where it has no meaning */
    s = si;
    s.format.order = HAILO_FORMAT_ORDER_RGB888;
    s.hw_shape.features = 4;
    hailo_transform_params_t t = params(U8, HAILO_FORMAT_ORDER_NHWC, HAILO_FORMAT_FLAGS_TRANSPOSED);
    EXPECT(&s, &t, HAILO_INVALID_OPERATION, "TRANSPOSED");
}

static void test_quant_infos(void)
{
    hailo_stream_info_t si = base_stream(HAILO_D2H_STREAM);
    hailo_transform_params_t p = params(F32, HAILO_FORMAT_ORDER_NHWC, 0);
    hailo_quant_info_t qps[4] = {{0, 1, 0, 1}, {0, 2, 0, 1}, {0, 3, 0, 1}, {0, 4, 0, 1}};
    hailo_stream_info_t s = si;
    s.quant_infos = qps;
    s.quant_infos_count = 2;
    EXPECT(&s, &p, HAILO_INVALID_ARGUMENT, "2 per-feature quant infos for 3 features");
    s.quant_infos_count = 3;
    EXPECT(&s, &p, HAILO_SUCCESS, NULL);
    s.quant_infos_count = 1;
    EXPECT(&s, &p, HAILO_SUCCESS, NULL);
    s.quant_infos = NULL;
    EXPECT(&s, &p, HAILO_INVALID_ARGUMENT, "quant_infos is NULL");
    s.quant_infos_count = HAILO_MAX_QUANT_INFOS + 1;
    EXPECT(&s, &p, HAILO_INVALID_ARGUMENT, "at most");
    const float bad[] = {0.0f, -1.0f, NAN, INFINITY};
    for (size_t i = 0; i < 4; i++) {
        s = si;
        s.quant_info.qp_scale = bad[i];
        EXPECT(&s, &p, HAILO_INVALID_ARGUMENT, "quant_info scale");
        /* validated even when the QP is not used (a copy) */
        hailo_transform_params_t u8 = params(U8, HAILO_FORMAT_ORDER_NHCW, 0);
        EXPECT(&s, &u8, HAILO_INVALID_ARGUMENT, "quant_info scale");
        s = si;
        hailo_quant_info_t q3[3] = {{0, 1, 0, 1}, {0, bad[i], 0, 1}, {0, 1, 0, 1}};
        s.quant_infos = q3;
        s.quant_infos_count = 3;
        EXPECT(&s, &p, HAILO_INVALID_ARGUMENT, "quant_infos[1] scale");
    }
}

/* limvals_min > limvals_max (or a NaN bound): HailoRT's clip and this layer's disagree, so a
 * context that quantizes with them is refused; where they are not used, they do not matter. */
static void test_unordered_limvals(void)
{
    hailo_stream_info_t si = base_stream(HAILO_H2D_STREAM);
    hailo_transform_params_t f32 = params(F32, HAILO_FORMAT_ORDER_NHWC, 0);
    const float lims[][2] = {{10.0f, -10.0f}, {NAN, 1.0f}, {-1.0f, NAN}, {NAN, NAN}};
    char msg[HAILO_MAX_MESSAGE_SIZE];
    for (size_t i = 0; i < sizeof lims / sizeof lims[0]; i++) {
        hailo_stream_info_t s = si;
        s.quant_info.limvals_min = lims[i][0];
        s.quant_info.limvals_max = lims[i][1];
        CHECK_OK(expect(&s, &f32, HAILO_INVALID_ARGUMENT, "limvals", msg));
        CHECK_CONTAINS(msg, "stream 'conv5': quant_info limvals [");
        CHECK_CONTAINS(msg, "are not ordered");
        /* no quantize step: not used */
        hailo_transform_params_t u8 = params(U8, HAILO_FORMAT_ORDER_NHWC, 0);
        EXPECT(&s, &u8, HAILO_SUCCESS, NULL);
        hailo_transform_params_t raw = f32;
        raw.transform_mode = HAILO_STREAM_NO_TRANSFORM;
        EXPECT(&s, &raw, HAILO_SUCCESS, NULL);
        /* the identity QP never clips */
        hailo_stream_info_t id = s;
        id.quant_info.qp_zp = 0.0f;
        id.quant_info.qp_scale = 1.0f;
        EXPECT(&id, &f32, HAILO_SUCCESS, NULL);
        /* outputs only dequantize */
        hailo_stream_info_t o = s;
        o.direction = HAILO_D2H_STREAM;
        EXPECT(&o, &f32, HAILO_SUCCESS, NULL);
        /* the standalone quantize refuses them too (not for the identity) */
        float x = 1.0f;
        unsigned char q = 0x77;
        CHECK_STATUS(hailo_quantize_input_buffer(&x, &q, 1, U8, &s.quant_info), HAILO_INVALID_ARGUMENT);
        CHECK(q == 0x77);
        CHECK_OK(hailo_quantize_input_buffer(&x, &q, 1, U8, &id.quant_info));
        CHECK(q == 1);
        /* dequantize does not use them */
        float y = 0.0f;
        CHECK_OK(hailo_dequantize_output_buffer(&q, &y, 1, U8, &s.quant_info));
    }
    /* equal limvals are ordered: every x becomes that value */
    hailo_stream_info_t s = si;
    s.quant_info.limvals_min = s.quant_info.limvals_max = 1.0f;
    EXPECT(&s, &f32, HAILO_SUCCESS, NULL);
    /* infinite limvals are ordered too */
    s.quant_info.limvals_min = -INFINITY;
    s.quant_info.limvals_max = INFINITY;
    EXPECT(&s, &f32, HAILO_SUCCESS, NULL);
}

static void test_nms_info(void)
{
    hailo_stream_info_t si = base_stream(HAILO_D2H_STREAM);
    si.format = (hailo_format_t){U16, HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP, HAILO_FORMAT_FLAGS_NONE};
    si.shape = si.hw_shape = (hailo_3d_image_shape_t){0, 0, 0}; /* not used for NMS */
    si.nms_info = ref_nms_info(3, 4, 0, 1);
    hailo_transform_params_t p = params(F32, HAILO_FORMAT_ORDER_HAILO_NMS_BY_CLASS, 0);
    EXPECT(&si, &p, HAILO_SUCCESS, NULL);
    hailo_stream_info_t s = si;
    s.nms_info.number_of_classes = 0;
    EXPECT(&s, &p, HAILO_INVALID_ARGUMENT, "nms_info");
    s = si;
    s.nms_info.max_bboxes_per_class = 0;
    EXPECT(&s, &p, HAILO_INVALID_ARGUMENT, "nms_info");
    s = si;
    s.nms_info.chunks_per_frame = 0;
    EXPECT(&s, &p, HAILO_INVALID_ARGUMENT, "nms_info");
    s = si;
    s.nms_info.bbox_size = 16;
    EXPECT(&s, &p, HAILO_INVALID_ARGUMENT, "bbox_size 16");
    s = si;
    s.nms_info.burst_type = HAILO_BURST_TYPE_COUNT;
    EXPECT(&s, &p, HAILO_INVALID_ARGUMENT, "burst_type 5 is unknown");
    s.nms_info.burst_type = (hailo_nms_burst_type_t)-1;
    EXPECT(&s, &p, HAILO_INVALID_ARGUMENT, "burst_type");
    for (int b = 0; b < (int)HAILO_BURST_TYPE_COUNT; b++) {
        s.nms_info.burst_type = (hailo_nms_burst_type_t)b;
        s.nms_info.burst_size = (uint32_t)b * 3;
        EXPECT(&s, &p, HAILO_SUCCESS, NULL);
    }
    /* carried, not used: any defuse info */
    s = si;
    s.nms_info.is_defused = true;
    s.nms_info.defuse_info.class_group_index = 7;
    memset(s.nms_info.defuse_info.original_name, 'x', sizeof s.nms_info.defuse_info.original_name);
    EXPECT(&s, &p, HAILO_SUCCESS, NULL);
    s = si;
    s.nms_info.max_bboxes_total = 70000;
    hailo_transform_params_t bs = params(U8, HAILO_FORMAT_ORDER_HAILO_NMS_BY_SCORE, 0);
    EXPECT(&s, &bs, HAILO_INVALID_ARGUMENT, "at most 65535");
    EXPECT(&s, &p, HAILO_SUCCESS, NULL); /* by class does not care */
    /* the default total counts every chunk: 100 classes x 3 chunks x 300 > 65535 */
    s.nms_info = ref_nms_info(100, 300, 0, 3);
    EXPECT(&s, &bs, HAILO_INVALID_ARGUMENT, "(classes x chunks x max_bboxes_per_class)");
    s.nms_info.max_bboxes_total = 65535;
    EXPECT(&s, &bs, HAILO_SUCCESS, NULL);
    /* class ids are uint16 */
    s.nms_info = ref_nms_info(65537, 1, 10, 1);
    EXPECT(&s, &bs, HAILO_INVALID_ARGUMENT, "at most 65536 classes");
    s.nms_info.number_of_classes = 65536;
    EXPECT(&s, &bs, HAILO_SUCCESS, NULL);
    s = si;
    s.nms_info = ref_nms_info(0xFFFFFFFFu, 0xFFFFFFFFu, 0, 0xFFFFFFFFu);
    EXPECT(&s, &p, HAILO_INVALID_ARGUMENT, "does not fit");
    s.nms_info = ref_nms_info(1, 1, 0, 1);
    s.nms_info.burst_size = 0x20000000u; /* 8 * burst alone is 4 GiB */
    EXPECT(&s, &p, HAILO_INVALID_ARGUMENT, "(burst_size 536870912) does not fit");
    /* a host frame beyond 4 GiB: the device frame fits, its every-chunk by-class frame not */
    s.nms_info = ref_nms_info(1, 0x4000000u, 0, 4); /* 4 * (2 + 2^29) bytes; 4 * (1 + 20 * 2^26) */
    EXPECT(&s, &p, HAILO_INVALID_ARGUMENT, "host frame");
}

static void test_transform_buffers(void)
{
    hailo_stream_info_t si = base_stream(HAILO_H2D_STREAM);
    hailo_transform_params_t p = params(F32, HAILO_FORMAT_ORDER_NHWC, 0);
    hailo_input_transform_context c;
    CHECK_OK(hailo_create_input_transform_context(&si, &p, &c));
    size_t sn = hailo_input_transform_context_get_src_frame_size(c);
    size_t dn = hailo_input_transform_context_get_dst_frame_size(c);
    CHECK_EQ_INT(sn, 4 * 6 * 3 * 4);
    CHECK_EQ_INT(dn, 4 * 3 * 8);
    float src[72] = {0};
    unsigned char dst[96 + 8];
    memset(dst, 0x5A, sizeof dst);
    CHECK_STATUS(hailo_transform_frame_by_input_transform_context(c, src, sn - 1, dst, dn), HAILO_INSUFFICIENT_BUFFER);
    CHECK_STATUS(hailo_transform_frame_by_input_transform_context(c, src, sn + 4, dst, dn), HAILO_INSUFFICIENT_BUFFER);
    CHECK_STATUS(hailo_transform_frame_by_input_transform_context(c, src, sn, dst, dn - 8), HAILO_INSUFFICIENT_BUFFER);
    CHECK_STATUS(hailo_transform_frame_by_input_transform_context(c, src, sn, dst, dn + 8), HAILO_INSUFFICIENT_BUFFER);
    for (size_t i = 0; i < sizeof dst; i++) CHECK(dst[i] == 0x5A); /* nothing written */
    CHECK_STATUS(hailo_transform_frame_by_input_transform_context(c, NULL, sn, dst, dn), HAILO_INVALID_ARGUMENT);
    CHECK_STATUS(hailo_transform_frame_by_input_transform_context(c, src, sn, NULL, dn), HAILO_INVALID_ARGUMENT);
    CHECK_STATUS(hailo_transform_frame_by_input_transform_context(NULL, src, sn, dst, dn), HAILO_INVALID_ARGUMENT);
    /* overlapping buffers */
    unsigned char *big = malloc(sn + dn);
    CHECK_STATUS(hailo_transform_frame_by_input_transform_context(c, big, sn, big + sn - 1, dn), HAILO_INVALID_ARGUMENT);
    CHECK_OK(hailo_transform_frame_by_input_transform_context(c, big, sn, big + sn, dn));
    free(big);
    CHECK_OK(hailo_transform_frame_by_input_transform_context(c, src, sn, dst, dn));
    CHECK(dst[dn] == 0x5A);
    CHECK_EQ_INT(hailo_input_transform_context_get_src_frame_size(NULL), 0);
    CHECK_EQ_INT(hailo_input_transform_context_get_dst_frame_size(NULL), 0);
    char msg[8];
    CHECK_STATUS(hailo_describe_input_transform_context(NULL, msg, sizeof msg), HAILO_INVALID_ARGUMENT);
    CHECK_STATUS(hailo_describe_input_transform_context(c, NULL, 8), HAILO_INVALID_ARGUMENT);
    CHECK_STATUS(hailo_describe_input_transform_context(c, msg, 0), HAILO_INVALID_ARGUMENT);
    CHECK_OK(hailo_describe_input_transform_context(c, msg, sizeof msg)); /* truncated */
    CHECK_EQ_INT(strlen(msg), 7);
    CHECK_OK(hailo_release_input_transform_context(c));
    CHECK_OK(hailo_release_input_transform_context(NULL));
    CHECK_OK(hailo_release_output_transform_context(NULL));
    CHECK_STATUS(hailo_transform_frame_by_output_transform_context(NULL, src, 1, dst, 1), HAILO_INVALID_ARGUMENT);
    CHECK_EQ_INT(hailo_output_transform_context_get_src_frame_size(NULL), 0);
    CHECK_EQ_INT(hailo_output_transform_context_get_dst_frame_size(NULL), 0);
    CHECK_STATUS(hailo_describe_output_transform_context(NULL, msg, sizeof msg), HAILO_INVALID_ARGUMENT);
}

static void test_nms_overrun(void)
{
    hailo_stream_info_t si = base_stream(HAILO_D2H_STREAM);
    si.format = (hailo_format_t){U16, HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP, HAILO_FORMAT_FLAGS_NONE};
    si.nms_info = ref_nms_info(2, 3, 0, 1);
    si.quant_info = (hailo_quant_info_t){0.0f, 1.0f / 4096.0f, 0.0f, 16.0f};
    CHECK_OK(hailo_fill_hw_frame_size(&si));
    CHECK_EQ_INT(si.hw_frame_size, 52); /* 2 * (2 + 24), not padded */
    hailo_transform_params_t p = params(F32, HAILO_FORMAT_ORDER_HAILO_NMS_BY_CLASS, 0);
    hailo_output_transform_context c;
    CHECK_OK(hailo_create_output_transform_context(&si, &p, &c));
    CHECK_EQ_INT(hailo_output_transform_context_get_src_frame_size(c), 52);
    CHECK_EQ_INT(hailo_output_transform_context_get_dst_frame_size(c), 2 * 16 * 4);
    unsigned char src[56];
    float dst[32];
    /* a count above max_bboxes_per_class */
    memset(src, 0, sizeof src);
    src[0] = 4;
    for (size_t i = 0; i < 32; i++) dst[i] = 7.0f;
    CHECK_STATUS(hailo_transform_frame_by_output_transform_context(c, src, 52, dst, sizeof dst), HAILO_INVALID_FRAME);
    for (size_t i = 0; i < 32; i++) CHECK(dst[i] == 7.0f); /* nothing written */
    /* the old padded size is not the frame size any more */
    CHECK_STATUS(hailo_transform_frame_by_output_transform_context(c, src, 56, dst, sizeof dst), HAILO_INSUFFICIENT_BUFFER);
    /* class 0 uses the whole capacity of 3, class 1 claims 3 more: fits exactly (payload 52) */
    memset(src, 0, sizeof src);
    src[0] = 3;
    src[26] = 3;
    CHECK_OK(hailo_transform_frame_by_output_transform_context(c, src, 52, dst, sizeof dst));
    /* counts at most max_bboxes_per_class always fit the payload, which has room for the
     * maximum in every class and chunk; a short buffer is refused before parsing */
    CHECK_STATUS(hailo_nms_decode_by_class(src, 40, dst, sizeof dst, &si.nms_info, &si.quant_info),
                 HAILO_INSUFFICIENT_BUFFER);
    /* two chunks: a class holds the proposals of both (up to 2 * 3) */
    hailo_nms_info_t two = ref_nms_info(2, 3, 0, 2); /* payload 104 */
    unsigned char f2[104];
    memset(f2, 0, sizeof f2);
    f2[0] = 3;  /* chunk 0, class 0 */
    f2[26] = 3; /* chunk 0, class 1 */
    f2[52] = 3; /* chunk 1, class 0 */
    f2[78] = 3; /* chunk 1, class 1 */
    float d2[2 * (1 + 30)];
    CHECK_OK(hailo_nms_decode_by_class(f2, 104, d2, sizeof d2, &two, &si.quant_info));
    CHECK(d2[0] == 6.0f && d2[31] == 6.0f);
    /* a bad count in the second chunk: INVALID_FRAME, nothing written */
    f2[78] = 4;
    for (size_t i = 0; i < 62; i++) d2[i] = -1.0f;
    CHECK_STATUS(hailo_nms_decode_by_class(f2, 104, d2, sizeof d2, &two, &si.quant_info), HAILO_INVALID_FRAME);
    for (size_t i = 0; i < 62; i++) CHECK(d2[i] == -1.0f);
    unsigned char s2[2 + 12 * 22];
    memset(s2, 0x3C, sizeof s2);
    CHECK_STATUS(hailo_nms_decode_by_score(f2, 104, s2, sizeof s2, &two, &si.quant_info), HAILO_INVALID_FRAME);
    for (size_t i = 0; i < sizeof s2; i++) CHECK(s2[i] == 0x3C);
    hailo_release_output_transform_context(c);
}

static void test_message_buffer_handling(void)
{
    hailo_stream_info_t si = base_stream(HAILO_H2D_STREAM);
    hailo_transform_params_t p = params(U16, HAILO_FORMAT_ORDER_NHWC, 0);
    CHECK_STATUS(hailo_check_transform_params(&si, &p, NULL, 0), HAILO_INVALID_OPERATION);
    CHECK_STATUS(hailo_check_transform_params(&si, &p, NULL, 100), HAILO_INVALID_OPERATION);
    char small[10];
    memset(small, 'x', sizeof small);
    CHECK_STATUS(hailo_check_transform_params(&si, &p, small, sizeof small), HAILO_INVALID_OPERATION);
    CHECK(strcmp(small, "stream 'c") == 0);
    char one[1] = {'x'};
    CHECK_STATUS(hailo_check_transform_params(&si, &p, one, 1), HAILO_INVALID_OPERATION);
    CHECK(one[0] == '\0');
    /* a name without a NUL in its 128 bytes is printed bounded */
    memset(si.name, 'n', sizeof si.name);
    char msg[HAILO_MAX_MESSAGE_SIZE];
    CHECK_STATUS(hailo_check_transform_params(&si, &p, msg, sizeof msg), HAILO_INVALID_OPERATION);
    CHECK(strlen(msg) > 128 && strncmp(msg + 8, "nnnn", 4) == 0);
    /* success clears the message */
    hailo_transform_params_t ok = params(F32, HAILO_FORMAT_ORDER_NHWC, 0);
    msg[0] = 'z';
    CHECK_OK(hailo_check_transform_params(&si, &ok, msg, sizeof msg));
    CHECK(msg[0] == '\0');
}

HS_TESTS(test_null_and_unknown_enums, test_wrong_direction, test_type_pairs, test_order_pairs,
         test_shapes, test_quant_infos, test_unordered_limvals, test_nms_info, test_transform_buffers, test_nms_overrun,
         test_message_buffer_handling)
