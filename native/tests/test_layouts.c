/*
 * test_layouts.c - every supported (direction, device format, user format) configuration,
 * on random streams and frames, through both kernel sets (baseline and AVX2 when the CPU
 * has it), compared byte for byte with the reference model; plus hand-written frames.
 */
#include "hs_internal.h"
#include "hs_test.h"
#include "ref_model.h"

#include <math.h>

#define U8 HAILO_FORMAT_TYPE_UINT8
#define U16 HAILO_FORMAT_TYPE_UINT16
#define F32 HAILO_FORMAT_TYPE_FLOAT32
#define AUTO_T HAILO_FORMAT_TYPE_AUTO
#define IN HAILO_H2D_STREAM
#define OUT HAILO_D2H_STREAM

typedef struct {
    hailo_format_order_t device;
    int in, out;
    hailo_format_order_t hosts[4];
    int nhosts;
} pair_t;

static const pair_t PAIRS[] = {
    {HAILO_FORMAT_ORDER_NHCW, 1, 1, {HAILO_FORMAT_ORDER_NHWC, HAILO_FORMAT_ORDER_NCHW, HAILO_FORMAT_ORDER_NHCW, HAILO_FORMAT_ORDER_RGB4}, 4},
    {HAILO_FORMAT_ORDER_NHWC, 1, 1, {HAILO_FORMAT_ORDER_NHWC, HAILO_FORMAT_ORDER_RGB4}, 2},
    {HAILO_FORMAT_ORDER_FCR, 1, 1, {HAILO_FORMAT_ORDER_NHWC, HAILO_FORMAT_ORDER_FCR}, 2},
    {HAILO_FORMAT_ORDER_F8CR, 1, 1, {HAILO_FORMAT_ORDER_NHWC, HAILO_FORMAT_ORDER_F8CR}, 2},
    {HAILO_FORMAT_ORDER_NC, 1, 1, {HAILO_FORMAT_ORDER_NC}, 1},
    {HAILO_FORMAT_ORDER_NHW, 0, 1, {HAILO_FORMAT_ORDER_NHW}, 1},
    {HAILO_FORMAT_ORDER_RGB888, 1, 0, {HAILO_FORMAT_ORDER_NHWC}, 1},
    {HAILO_FORMAT_ORDER_YUY2, 1, 0, {HAILO_FORMAT_ORDER_YUY2}, 1},
    {HAILO_FORMAT_ORDER_HAILO_YYUV, 1, 0, {HAILO_FORMAT_ORDER_NV12}, 1},
    {HAILO_FORMAT_ORDER_HAILO_YYVU, 1, 0, {HAILO_FORMAT_ORDER_NV21}, 1},
    {HAILO_FORMAT_ORDER_HAILO_YYYYUV, 1, 0, {HAILO_FORMAT_ORDER_I420}, 1},
    {HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP, 0, 1, {HAILO_FORMAT_ORDER_HAILO_NMS_BY_CLASS, HAILO_FORMAT_ORDER_HAILO_NMS_BY_SCORE, HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP}, 3},
};

static int is_yuv(hailo_format_order_t o)
{
    return o == HAILO_FORMAT_ORDER_YUY2 || o == HAILO_FORMAT_ORDER_HAILO_YYUV ||
           o == HAILO_FORMAT_ORDER_HAILO_YYVU || o == HAILO_FORMAT_ORDER_HAILO_YYYYUV;
}

static hailo_quant_info_t random_qp(ref_rng *r, hailo_format_type_t dt)
{
    float top = dt == U16 ? 65535.0f : 255.0f;
    hailo_quant_info_t q;
    q.qp_zp = ref_range(r, 0, 9) < 8 ? (float)ref_range(r, 0, (uint32_t)top) : ref_unif(r, 0, top);
    q.qp_scale = ref_range(r, 0, 1) ? ldexpf(1.0f, -(int)ref_range(r, 0, 11)) : ref_unif(r, 1e-4f, 4.0f);
    q.limvals_min = (0.0f - q.qp_zp) * q.qp_scale;
    q.limvals_max = (top - q.qp_zp) * q.qp_scale;
    if (ref_range(r, 0, 9) < 3) {
        q.limvals_min /= 2;
        q.limvals_max /= 2;
    }
    if (ref_range(r, 0, 9) == 0) {
        q.qp_zp = 0.0f;
        q.qp_scale = 1.0f;
    }
    return q;
}

static uint32_t pad(ref_rng *r) { return ref_range(r, 0, 9) < 6 ? ref_range(r, 0, 3) : 0; }

/* Shapes that satisfy the device order; `big` makes rows long enough for the SIMD paths. */
static void random_shapes(ref_rng *r, hailo_format_order_t o, hailo_format_type_t dt, int big,
                          hailo_3d_image_shape_t *s, hailo_3d_image_shape_t *hw)
{
    uint32_t wmax = big ? 70 : 11;
    switch (o) {
    case HAILO_FORMAT_ORDER_NC: {
        uint32_t c = ref_range(r, 1, big ? 300 : 40);
        *s = (hailo_3d_image_shape_t){1, 1, c};
        *hw = (hailo_3d_image_shape_t){1, 1, c + pad(r)};
        return;
    }
    case HAILO_FORMAT_ORDER_NHW: {
        uint32_t h = ref_range(r, 1, 6), w = ref_range(r, 1, wmax);
        *s = (hailo_3d_image_shape_t){h, w, 1};
        *hw = (hailo_3d_image_shape_t){h + pad(r), w + pad(r), 1};
        return;
    }
    case HAILO_FORMAT_ORDER_RGB888: {
        uint32_t h = ref_range(r, 1, 5), w = ref_range(r, 1, wmax);
        *s = (hailo_3d_image_shape_t){h, w, 3};
        *hw = (hailo_3d_image_shape_t){h + pad(r), w + pad(r), 4};
        return;
    }
    case HAILO_FORMAT_ORDER_YUY2: {
        uint32_t h = ref_range(r, 1, 5), w = ref_range(r, 1, wmax), hh = h + pad(r), hw_ = w + pad(r);
        while ((hh * hw_ * 2 * (dt == U16 ? 2 : 1)) % 8) hw_++;
        *s = (hailo_3d_image_shape_t){h, w, 2};
        *hw = (hailo_3d_image_shape_t){hh, hw_, 2};
        return;
    }
    case HAILO_FORMAT_ORDER_HAILO_YYUV:
    case HAILO_FORMAT_ORDER_HAILO_YYVU:
    case HAILO_FORMAT_ORDER_HAILO_YYYYUV: {
        uint32_t h = 2 * ref_range(r, 1, 3), w = 2 * ref_range(r, 1, big ? 30 : 5);
        *s = (hailo_3d_image_shape_t){h, w, 3};
        *hw = (hailo_3d_image_shape_t){h + 2 * ref_range(r, 0, 1), w + 2 * ref_range(r, 0, 2), 3};
        return;
    }
    case HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP:
        *s = *hw = (hailo_3d_image_shape_t){1, 1, 1};
        return;
    default: break;
    }
    uint32_t h = ref_range(r, 1, 5), w = ref_range(r, 1, wmax);
    uint32_t c = ref_range(r, 0, 3) == 0 ? 3 : ref_range(r, 1, o == HAILO_FORMAT_ORDER_F8CR ? 20 : (big ? 40 : 9));
    *s = (hailo_3d_image_shape_t){h, w, c};
    *hw = (hailo_3d_image_shape_t){h + pad(r), w + pad(r), c + pad(r)};
    if (o == HAILO_FORMAT_ORDER_F8CR)
        hw->features = (c + 7) / 8 * 8 + 8 * (ref_range(r, 0, 4) == 0);
    if (ref_range(r, 0, 3) == 0) {
        hw->height = h;
        hw->width = w;
        if (o != HAILO_FORMAT_ORDER_F8CR) hw->features = c;
    }
}

static int user_types(int dir, hailo_format_type_t dt, hailo_format_order_t dev, hailo_format_order_t host,
                      hailo_format_type_t out[4])
{
    if (is_yuv(dev) || host == HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP) {
        out[0] = dt;
        return 1;
    }
    if (host == HAILO_FORMAT_ORDER_HAILO_NMS_BY_CLASS) {
        out[0] = F32;
        out[1] = AUTO_T;
        return 2;
    }
    if (host == HAILO_FORMAT_ORDER_HAILO_NMS_BY_SCORE) { /* bytes: UINT8 (HailoRT), FLOAT32 */
        out[0] = U8;
        out[1] = F32;
        out[2] = AUTO_T;
        return 3;
    }
    int n = 0;
    out[n++] = F32;
    out[n++] = dt;
    out[n++] = AUTO_T;
    if (dir == IN && dt == U16) out[n++] = U8;
    if (dir == OUT && dt == U8) out[n++] = U16;
    return n;
}

static hailo_quant_info_t g_qps[512];

/* Runs one case through one ISA; returns 0 on success, prints the difference otherwise. */
static int run_case(const hailo_stream_info_t *si, const hailo_transform_params_t *tp,
                    const hailo_format_t *resolved, hs_isa isa, ref_rng *r, const char *what)
{
    size_t hb = ref_host_bytes(si, resolved), db = ref_dev_bytes(si);
    int out = si->direction == OUT;
    size_t src_n = out ? db : hb, dst_n = out ? hb : db;
    unsigned char *src = malloc(src_n), *dst = malloc(dst_n + 64), *want = malloc(dst_n);
    int fail = 0;
    if (!out) ref_random_host(r, si, resolved, src, src_n, 1);
    else if (si->format.order == HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP) ref_random_nms(r, si, src, src_n);
    else for (size_t i = 0; i < src_n; i++) src[i] = (unsigned char)ref_rand(r);
    memset(dst, 0xA5, dst_n + 64);
    hailo_status st;
    if (!out) {
        hailo_input_transform_context ctx = NULL;
        st = hs_create_input_context_isa(si, tp, isa, &ctx);
        if (st == HAILO_SUCCESS) {
            if (hailo_input_transform_context_get_src_frame_size(ctx) != hb ||
                hailo_input_transform_context_get_dst_frame_size(ctx) != db) {
                fprintf(stderr, "%s: sizes %zu/%zu, want %zu/%zu\n", what,
                        hailo_input_transform_context_get_src_frame_size(ctx),
                        hailo_input_transform_context_get_dst_frame_size(ctx), hb, db);
                fail = 1;
            } else {
                st = hailo_transform_frame_by_input_transform_context(ctx, src, src_n, dst + 32, dst_n);
            }
            hailo_release_input_transform_context(ctx);
        }
        ref_input(si, resolved, src, want);
    } else {
        hailo_output_transform_context ctx = NULL;
        st = hs_create_output_context_isa(si, tp, isa, &ctx);
        if (st == HAILO_SUCCESS) {
            if (hailo_output_transform_context_get_src_frame_size(ctx) != db ||
                hailo_output_transform_context_get_dst_frame_size(ctx) != hb) {
                fprintf(stderr, "%s: sizes %zu/%zu, want %zu/%zu\n", what,
                        hailo_output_transform_context_get_src_frame_size(ctx),
                        hailo_output_transform_context_get_dst_frame_size(ctx), db, hb);
                fail = 1;
            } else {
                st = hailo_transform_frame_by_output_transform_context(ctx, src, src_n, dst + 32, dst_n);
            }
            hailo_release_output_transform_context(ctx);
        }
        int rst = ref_output(si, resolved, src, want);
        if (rst != HAILO_SUCCESS) {
            fprintf(stderr, "%s: reference says %d\n", what, rst);
            fail = 1; /* `want` was not written */
        }
    }
    if (!fail && st != HAILO_SUCCESS) {
        char msg[HAILO_MAX_MESSAGE_SIZE];
        hailo_check_transform_params(si, tp, msg, sizeof msg);
        fprintf(stderr, "%s: status %d (%s)\n", what, (int)st, msg);
        fail = 1;
    }
    if (!fail) {
        for (size_t i = 0; i < 32; i++)
            if (dst[i] != 0xA5 || dst[32 + dst_n + i] != 0xA5) {
                fprintf(stderr, "%s: wrote outside the destination\n", what);
                fail = 1;
                break;
            }
    }
    if (!fail && memcmp(dst + 32, want, dst_n) != 0) {
        size_t i = 0;
        while (dst[32 + i] == want[i]) i++;
        fprintf(stderr, "%s: byte %zu of %zu differs: got %02x want %02x\n", what, i, dst_n,
                dst[32 + i], want[i]);
        fail = 1;
    }
    free(src);
    free(dst);
    free(want);
    return fail;
}

static void describe_stream(char *buf, size_t n, const hailo_stream_info_t *si, const hailo_format_t *u, hs_isa isa)
{
    snprintf(buf, n, "%s dev %s/%s%s user %s/%s%s shape %ux%ux%u hw %ux%ux%u qps %u isa %s",
             si->direction == IN ? "in" : "out", hs_type_name(si->format.type),
             hs_order_name(si->format.order), (si->format.flags & HAILO_FORMAT_FLAGS_TRANSPOSED) ? " T" : "",
             hs_type_name(u->type), hs_order_name(u->order),
             (u->flags & HAILO_FORMAT_FLAGS_TRANSPOSED) ? " T" : "", si->shape.height,
             si->shape.width, si->shape.features, si->hw_shape.height, si->hw_shape.width,
             si->hw_shape.features, si->quant_infos_count, hs_isa_name(isa));
}

static void sweep(int big, int per_config, uint64_t seed)
{
    ref_rng r = {seed};
    int isa_count = hs_detect_isa() == HS_ISA_AVX2 ? 2 : 1;
    int cases = 0, failures = 0;
    for (size_t p = 0; p < sizeof PAIRS / sizeof PAIRS[0]; p++) {
        const pair_t *pr = &PAIRS[p];
        for (int dir = 0; dir < 2; dir++) {
            if ((dir == IN && !pr->in) || (dir == OUT && !pr->out)) continue;
            for (int t = 0; t < 2; t++) {
                hailo_format_type_t dt = t ? U16 : U8;
                for (int hi = 0; hi < pr->nhosts; hi++) {
                    hailo_format_order_t ho = pr->hosts[hi];
                    if (dir == OUT && ho == HAILO_FORMAT_ORDER_RGB4) continue;
                    hailo_format_type_t uts[4];
                    int nut = user_types(dir, dt, pr->device, ho, uts);
                    int can_t = !(is_yuv(pr->device) || pr->device == HAILO_FORMAT_ORDER_NC ||
                                  pr->device == HAILO_FORMAT_ORDER_RGB888 ||
                                  pr->device == HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP);
                    for (int ui = 0; ui < nut; ui++)
                        for (int tr = 0; tr <= can_t; tr++)
                            for (int k = 0; k < per_config; k++) {
                                hailo_stream_info_t si;
                                memset(&si, 0, sizeof si);
                                snprintf(si.name, sizeof si.name, "sweep%d", cases);
                                si.direction = (hailo_stream_direction_t)dir;
                                si.format.type = dt;
                                si.format.order = pr->device;
                                si.format.flags = ref_range(&r, 0, 4) == 0 ? HAILO_FORMAT_FLAGS_QUANTIZED : HAILO_FORMAT_FLAGS_NONE;
                                /* a transposed device format: the host frame is transposed
                                 * when the flags differ */
                                int dev_t = can_t && ref_range(&r, 0, 3) == 0;
                                if (dev_t) si.format.flags = (hailo_format_flags_t)(si.format.flags | HAILO_FORMAT_FLAGS_TRANSPOSED);
                                random_shapes(&r, pr->device, dt, big, &si.shape, &si.hw_shape);
                                si.quant_info = random_qp(&r, dt);
                                if (pr->device == HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP) {
                                    si.nms_info.number_of_classes = ref_range(&r, 1, 6);
                                    si.nms_info.max_bboxes_per_class = ref_range(&r, 1, 6);
                                    si.nms_info.max_bboxes_total = ref_range(&r, 0, 2) == 0 ? 0 : ref_range(&r, 1, si.nms_info.number_of_classes * si.nms_info.max_bboxes_per_class + 2);
                                    si.nms_info.bbox_size = 8;
                                    si.nms_info.chunks_per_frame = ref_range(&r, 1, 3);
                                    si.nms_info.burst_size = ref_range(&r, 0, 2) == 0 ? ref_range(&r, 1, 9) : 0;
                                    si.nms_info.burst_type = (hailo_nms_burst_type_t)ref_range(&r, 0, 4);
                                    si.quant_info.qp_zp = (float)ref_range(&r, 0, 7);
                                    si.quant_info.qp_scale = ldexpf(1.0f, -(int)ref_range(&r, 8, 13));
                                }
                                if (dir == OUT && uts[ui] == F32 && pr->device != HAILO_FORMAT_ORDER_NHW &&
                                    pr->device != HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP && ref_range(&r, 0, 1)) {
                                    uint32_t n = ref_range(&r, 0, 4) == 0 ? 1 : si.shape.features;
                                    for (uint32_t i = 0; i < n; i++) g_qps[i] = random_qp(&r, dt);
                                    si.quant_infos = g_qps;
                                    si.quant_infos_count = n;
                                }
                                if (hailo_fill_hw_frame_size(&si) != HAILO_SUCCESS) {
                                    fprintf(stderr, "fill failed\n");
                                    failures++;
                                    continue;
                                }
                                hailo_transform_params_t tp;
                                tp.transform_mode = HAILO_STREAM_TRANSFORM_COPY;
                                tp.user_buffer_format.type = uts[ui];
                                tp.user_buffer_format.order = ref_range(&r, 0, 3) == 0 && hi == 0 ? HAILO_FORMAT_ORDER_AUTO : ho;
                                tp.user_buffer_format.flags = (hailo_format_flags_t)((tr ? HAILO_FORMAT_FLAGS_TRANSPOSED : 0) |
                                                                                     (ref_range(&r, 0, 4) == 0 ? HAILO_FORMAT_FLAGS_QUANTIZED : 0));
                                hailo_format_t resolved;
                                if (hailo_resolve_user_format(&si, &tp.user_buffer_format, &resolved) != HAILO_SUCCESS) {
                                    failures++;
                                    continue;
                                }
                                for (int isa = 0; isa < isa_count; isa++) {
                                    char what[256];
                                    describe_stream(what, sizeof what, &si, &resolved, (hs_isa)isa);
                                    ref_rng rr = r;
                                    failures += run_case(&si, &tp, &resolved, (hs_isa)isa, &rr, what);
                                    cases++;
                                }
                                ref_rand(&r);
                            }
                }
            }
        }
    }
    printf("  sweep(big=%d): %d cases\n", big, cases);
    CHECK_EQ_INT(failures, 0);
}

static void test_sweep_small_shapes(void) { sweep(0, 6, 0x1234567u); }
static void test_sweep_long_rows(void) { sweep(1, 4, 0xBADC0FFEEu); }

/* ------------------------------------------------------------- hand written --- */
static hailo_stream_info_t stream(hailo_stream_direction_t dir, hailo_format_type_t t,
                                  hailo_format_order_t o, hailo_3d_image_shape_t s,
                                  hailo_3d_image_shape_t hw)
{
    hailo_stream_info_t si;
    memset(&si, 0, sizeof si);
    strcpy(si.name, "hand");
    si.direction = dir;
    si.format.type = t;
    si.format.order = o;
    si.shape = s;
    si.hw_shape = hw;
    si.quant_info = (hailo_quant_info_t){0.0f, 1.0f, 0.0f, 255.0f};
    hailo_fill_hw_frame_size(&si);
    return si;
}

static hailo_transform_params_t user(hailo_format_type_t t, hailo_format_order_t o, int flags)
{
    hailo_transform_params_t p;
    p.transform_mode = HAILO_STREAM_TRANSFORM_COPY;
    p.user_buffer_format.type = t;
    p.user_buffer_format.order = o;
    p.user_buffer_format.flags = (hailo_format_flags_t)flags;
    return p;
}

static void test_nhwc_to_nhcw_by_hand(void)
{
    /* 1 row, 2 pixels, 3 features; hw width 3 -> per feature 2 values and a zero; 9 bytes
     * padded to 16 */
    hailo_stream_info_t si = stream(IN, U8, HAILO_FORMAT_ORDER_NHCW, (hailo_3d_image_shape_t){1, 2, 3},
                                    (hailo_3d_image_shape_t){1, 3, 3});
    hailo_transform_params_t tp = user(U8, HAILO_FORMAT_ORDER_NHWC, 0);
    hailo_input_transform_context ctx;
    CHECK_OK(hailo_create_input_transform_context(&si, &tp, &ctx));
    const uint8_t src[6] = {1, 2, 3, 4, 5, 6};
    uint8_t dst[16];
    memset(dst, 0xFF, sizeof dst);
    CHECK_OK(hailo_transform_frame_by_input_transform_context(ctx, src, 6, dst, 16));
    const uint8_t want[16] = {1, 4, 0, 2, 5, 0, 3, 6, 0, 0, 0, 0, 0, 0, 0, 0};
    CHECK(memcmp(dst, want, 16) == 0);
    hailo_release_input_transform_context(ctx);
}

static void test_rgb888_by_hand(void)
{
    hailo_stream_info_t si = stream(IN, U8, HAILO_FORMAT_ORDER_RGB888, (hailo_3d_image_shape_t){1, 2, 3},
                                    (hailo_3d_image_shape_t){1, 3, 4});
    hailo_transform_params_t tp = user(U8, HAILO_FORMAT_ORDER_AUTO, 0);
    hailo_input_transform_context ctx;
    CHECK_OK(hailo_create_input_transform_context(&si, &tp, &ctx));
    const uint8_t src[6] = {10, 20, 30, 40, 50, 60};
    uint8_t dst[16];
    CHECK_OK(hailo_transform_frame_by_input_transform_context(ctx, src, 6, dst, 16));
    const uint8_t want[16] = {30, 20, 10, 0, 60, 50, 40, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    CHECK(memcmp(dst, want, 16) == 0);
    hailo_release_input_transform_context(ctx);
}

static void test_i420_by_hand(void)
{
    /* 2x4 image: Y 8 bytes, U 2, V 2; hw width 6: Y row(6) Y row(6) U(3) V(3) = 18 -> 24 */
    hailo_stream_info_t si = stream(IN, U8, HAILO_FORMAT_ORDER_HAILO_YYYYUV, (hailo_3d_image_shape_t){2, 4, 3},
                                    (hailo_3d_image_shape_t){2, 6, 3});
    hailo_transform_params_t tp = user(AUTO_T, HAILO_FORMAT_ORDER_AUTO, 0);
    hailo_input_transform_context ctx;
    CHECK_OK(hailo_create_input_transform_context(&si, &tp, &ctx));
    CHECK_EQ_INT(hailo_input_transform_context_get_src_frame_size(ctx), 12);
    CHECK_EQ_INT(hailo_input_transform_context_get_dst_frame_size(ctx), 24);
    const uint8_t src[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    uint8_t dst[24];
    CHECK_OK(hailo_transform_frame_by_input_transform_context(ctx, src, 12, dst, 24));
    const uint8_t want[24] = {1, 2, 3, 4, 0, 0, 5, 6, 7, 8, 0, 0, 9, 10, 0, 11, 12, 0, 0, 0, 0, 0, 0, 0};
    CHECK(memcmp(dst, want, 24) == 0);
    hailo_release_input_transform_context(ctx);
}

static void test_nhcw_to_nhwc_per_feature_by_hand(void)
{
    hailo_stream_info_t si = stream(OUT, U8, HAILO_FORMAT_ORDER_NHCW, (hailo_3d_image_shape_t){1, 2, 2},
                                    (hailo_3d_image_shape_t){1, 4, 2});
    hailo_quant_info_t qps[2] = {{1.0f, 0.5f, 0, 0}, {10.0f, 2.0f, 0, 0}};
    si.quant_infos = qps;
    si.quant_infos_count = 2;
    hailo_transform_params_t tp = user(F32, HAILO_FORMAT_ORDER_NHWC, 0);
    hailo_output_transform_context ctx;
    CHECK_OK(hailo_create_output_transform_context(&si, &tp, &ctx));
    /* device: feature 0: 3 5 x x, feature 1: 12 14 x x */
    const uint8_t src[8] = {3, 5, 99, 99, 12, 14, 99, 99};
    float dst[4];
    CHECK_OK(hailo_transform_frame_by_output_transform_context(ctx, src, 8, dst, sizeof dst));
    CHECK(dst[0] == 1.0f && dst[1] == 4.0f && dst[2] == 2.0f && dst[3] == 8.0f);
    char msg[HAILO_MAX_MESSAGE_SIZE];
    CHECK_OK(hailo_describe_output_transform_context(ctx, msg, sizeof msg));
    CHECK_CONTAINS(msg, "per-feature, 2 QPs");
    CHECK_CONTAINS(msg, "reorder NHWC(1x2x2) <- NHCW(1x2x2 hw 1x4x2)");
    hailo_release_output_transform_context(ctx);
}

static void test_transposed_input_by_hand(void)
{
    /* logical 2x3x1; the host frame holds (W=3, H=2): host[w][h] */
    hailo_stream_info_t si = stream(IN, U8, HAILO_FORMAT_ORDER_NHWC, (hailo_3d_image_shape_t){2, 3, 1},
                                    (hailo_3d_image_shape_t){2, 3, 1});
    hailo_transform_params_t tp = user(U8, HAILO_FORMAT_ORDER_NHWC, HAILO_FORMAT_FLAGS_TRANSPOSED);
    hailo_input_transform_context ctx;
    CHECK_OK(hailo_create_input_transform_context(&si, &tp, &ctx));
    const uint8_t src[6] = {11, 21, 12, 22, 13, 23}; /* (w0: h0 h1), (w1: ...), ... */
    uint8_t dst[8];
    CHECK_OK(hailo_transform_frame_by_input_transform_context(ctx, src, 6, dst, 8));
    const uint8_t want[8] = {11, 12, 13, 21, 22, 23, 0, 0};
    CHECK(memcmp(dst, want, 8) == 0);
    char msg[HAILO_MAX_MESSAGE_SIZE];
    CHECK_OK(hailo_describe_input_transform_context(ctx, msg, sizeof msg));
    CHECK_CONTAINS(msg, "transpose");
    CHECK_CONTAINS(msg, "periph padding 6->8");
    hailo_release_input_transform_context(ctx);
}

static void test_rgb4_stride_by_hand(void)
{
    /* W*C = 3 -> host rows of 4 bytes; the 4th byte of each row is ignored */
    hailo_stream_info_t si = stream(IN, U8, HAILO_FORMAT_ORDER_NHCW, (hailo_3d_image_shape_t){2, 1, 3},
                                    (hailo_3d_image_shape_t){2, 2, 3});
    hailo_transform_params_t tp = user(U8, HAILO_FORMAT_ORDER_RGB4, 0);
    hailo_input_transform_context ctx;
    CHECK_OK(hailo_create_input_transform_context(&si, &tp, &ctx));
    CHECK_EQ_INT(hailo_input_transform_context_get_src_frame_size(ctx), 8);
    const uint8_t src[8] = {1, 2, 3, 77, 4, 5, 6, 77};
    uint8_t dst[16];
    CHECK_OK(hailo_transform_frame_by_input_transform_context(ctx, src, 8, dst, 16));
    const uint8_t want[16] = {1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 0, 0, 0, 0};
    CHECK(memcmp(dst, want, 16) == 0);
    hailo_release_input_transform_context(ctx);
}

/* The SIMD paths at their edges: C = 3 rows of 15..100 pixels around multiples of 16 and
 * 32, and NHCW -> NHWC tiles with C and W not multiples of 8, for uint8 and uint16, with
 * every element op of each direction. */
static void test_simd_edges(void)
{
    ref_rng r = {99};
    int isa_count = hs_detect_isa() == HS_ISA_AVX2 ? 2 : 1;
    int failures = 0;
    const uint32_t ws[] = {15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 100};
    const uint32_t cs[] = {3, 7, 8, 9, 15, 16, 17, 255};
    for (size_t wi = 0; wi < sizeof ws / sizeof ws[0]; wi++)
        for (size_t ci = 0; ci < sizeof cs / sizeof cs[0]; ci++)
            for (int dir = 0; dir < 2; dir++)
                for (int t = 0; t < 2; t++)
                    for (int u = 0; u < 3; u++) {
                        /* u: (de)quantize, same-type copy, widening (U8 host -> U16 device on
                         * inputs, U8 device -> U16 host on outputs) */
                        hailo_format_type_t dt = t ? U16 : U8;
                        hailo_format_type_t ut = u == 0 ? F32 : (u == 1 ? dt : (dir == OUT ? U16 : U8));
                        if (u == 2 && dt != (dir == OUT ? U8 : U16)) continue;
                        hailo_stream_info_t si = stream((hailo_stream_direction_t)dir, dt, HAILO_FORMAT_ORDER_NHCW,
                                                        (hailo_3d_image_shape_t){2, ws[wi], cs[ci]},
                                                        (hailo_3d_image_shape_t){3, ws[wi] + (wi % 3), cs[ci] + (ci % 2)});
                        si.quant_info = random_qp(&r, dt);
                        hailo_transform_params_t tp = user(ut, HAILO_FORMAT_ORDER_NHWC, 0);
                        hailo_format_t resolved = tp.user_buffer_format;
                        for (int isa = 0; isa < isa_count; isa++) {
                            char what[256];
                            describe_stream(what, sizeof what, &si, &resolved, (hs_isa)isa);
                            failures += run_case(&si, &tp, &resolved, (hs_isa)isa, &r, what);
                        }
                    }
    CHECK_EQ_INT(failures, 0);
}

HS_TESTS(test_nhwc_to_nhcw_by_hand, test_rgb888_by_hand, test_i420_by_hand,
         test_nhcw_to_nhwc_per_feature_by_hand, test_transposed_input_by_hand,
         test_rgb4_stride_by_hand, test_simd_edges, test_sweep_small_shapes, test_sweep_long_rows)
