/*
 * test_nms.c - HAILO_NMS_ON_CHIP decoding: proposal bit fields, dequantization, packing of
 * the by-class frame, sorting / ties / cap of the by-score frame, chunk merging, and the
 * standalone functions against contexts; random frames against the reference model.
 */
#include "hs_internal.h"
#include "hs_test.h"
#include "ref_model.h"

#include <math.h>

typedef struct {
    unsigned char b[4096];
    size_t n;
} frame_t;

static void put_count(frame_t *f, unsigned count)
{
    f->b[f->n++] = (unsigned char)(count & 0xFF);
    f->b[f->n++] = (unsigned char)(count >> 8);
}

static void put_box(frame_t *f, unsigned score, unsigned y0, unsigned x0, unsigned y1, unsigned x1)
{
    uint64_t p = ((uint64_t)score << 48) | ((uint64_t)y0 << 36) | ((uint64_t)x0 << 24) |
                 ((uint64_t)y1 << 12) | x1;
    for (int i = 0; i < 8; i++) f->b[f->n++] = (unsigned char)(p >> (8 * i));
}

static float rdf(const unsigned char *p)
{
    float f;
    memcpy(&f, p, 4);
    return f;
}

static const hailo_quant_info_t QP = {2.0f, 0.25f, 0.0f, 0.0f};

static void test_by_class_layout(void)
{
    hailo_nms_info_t n = {3, 2, 0, 8, 1};
    frame_t f = {{0}, 0};
    put_count(&f, 1);
    put_box(&f, 10, 1, 2, 3, 4);
    put_count(&f, 0);
    put_count(&f, 2);
    put_box(&f, 6, 4095, 0, 7, 8);
    put_box(&f, 65535, 5, 6, 7, 8);
    f.n = 3 * (2 + 16); /* the payload; the rest stays zero */
    float out[3 * (1 + 10)];
    for (size_t i = 0; i < sizeof out / 4; i++) out[i] = -9.0f;
    CHECK_OK(hailo_nms_decode_by_class(f.b, f.n, out, sizeof out, &n, &QP));
    /* class 0: count 1, box (y_min, x_min, y_max, x_max, score) dequantized (q - 2) * 0.25 */
    CHECK(out[0] == 1.0f);
    CHECK(out[1] == -0.25f && out[2] == 0.0f && out[3] == 0.25f && out[4] == 0.5f && out[5] == 2.0f);
    /* class 1: count 0, packed right after */
    CHECK(out[6] == 0.0f);
    /* class 2: count 2 */
    CHECK(out[7] == 2.0f);
    CHECK(out[8] == (4095.0f - 2.0f) * 0.25f && out[12] == 1.0f);
    CHECK(out[17] == (65535.0f - 2.0f) * 0.25f);
    /* the rest is zero */
    for (size_t i = 18; i < sizeof out / 4; i++) CHECK(out[i] == 0.0f);
}

static void test_by_score_sort_ties_and_cap(void)
{
    hailo_nms_info_t n = {3, 3, 4, 8, 1};
    frame_t f = {{0}, 0};
    put_count(&f, 2); /* class 0 */
    put_box(&f, 100, 1, 1, 1, 1);
    put_box(&f, 300, 2, 2, 2, 2);
    put_count(&f, 1); /* class 1 */
    put_box(&f, 300, 3, 3, 3, 3);
    put_count(&f, 3); /* class 2 */
    put_box(&f, 100, 4, 4, 4, 4);
    put_box(&f, 200, 5, 5, 5, 5);
    put_box(&f, 300, 6, 6, 6, 6);
    f.n = 3 * (2 + 24);
    unsigned char out[2 + 4 * 22];
    memset(out, 0xCC, sizeof out);
    CHECK_OK(hailo_nms_decode_by_score(f.b, f.n, out, sizeof out, &n, &QP));
    CHECK_EQ_INT(out[0] | (out[1] << 8), 4); /* 6 detections capped at 4 */
    /* 300s in class then device order: (c0, y=2), (c1, y=3), (c2, y=6); then the 200 */
    const unsigned ys[4] = {2, 3, 6, 5}, cls[4] = {0, 1, 2, 2};
    for (int i = 0; i < 4; i++) {
        const unsigned char *d = out + 2 + 22 * i;
        CHECK(rdf(d) == ((float)ys[i] - 2.0f) * 0.25f);
        CHECK(rdf(d + 16) == (i < 3 ? 298.0f : 198.0f) * 0.25f);
        CHECK_EQ_INT(d[20] | (d[21] << 8), cls[i]);
    }
    /* max_bboxes_total 0: classes * per class */
    n.max_bboxes_total = 0;
    unsigned char all[2 + 9 * 22];
    memset(all, 0xCC, sizeof all);
    CHECK_OK(hailo_nms_decode_by_score(f.b, f.n, all, sizeof all, &n, &QP));
    CHECK_EQ_INT(all[0], 6);
    for (size_t i = 2 + 6 * 22; i < sizeof all; i++) CHECK(all[i] == 0);
    CHECK_STATUS(hailo_nms_decode_by_score(f.b, f.n, all, sizeof all - 1, &n, &QP), HAILO_INSUFFICIENT_BUFFER);
}

static void test_standalone_arguments(void)
{
    hailo_nms_info_t n = {2, 2, 0, 8, 1};
    unsigned char src[40] = {0};
    float dst[22];
    unsigned char sc[2 + 4 * 22];
    CHECK_OK(hailo_nms_decode_by_class(src, 36, dst, sizeof dst, &n, &QP));
    CHECK_STATUS(hailo_nms_decode_by_class(NULL, 36, dst, sizeof dst, &n, &QP), HAILO_INVALID_ARGUMENT);
    CHECK_STATUS(hailo_nms_decode_by_class(src, 36, NULL, sizeof dst, &n, &QP), HAILO_INVALID_ARGUMENT);
    CHECK_STATUS(hailo_nms_decode_by_class(src, 36, dst, sizeof dst, NULL, &QP), HAILO_INVALID_ARGUMENT);
    CHECK_STATUS(hailo_nms_decode_by_class(src, 36, dst, sizeof dst, &n, NULL), HAILO_INVALID_ARGUMENT);
    CHECK_STATUS(hailo_nms_decode_by_class(src, 35, dst, sizeof dst, &n, &QP), HAILO_INSUFFICIENT_BUFFER);
    CHECK_STATUS(hailo_nms_decode_by_class(src, 36, dst, sizeof dst - 4, &n, &QP), HAILO_INSUFFICIENT_BUFFER);
    CHECK_OK(hailo_nms_decode_by_class(src, 40, dst, sizeof dst, &n, &QP)); /* padded frame */
    hailo_quant_info_t bad = {0.0f, 0.0f, 0.0f, 0.0f};
    CHECK_STATUS(hailo_nms_decode_by_class(src, 36, dst, sizeof dst, &n, &bad), HAILO_INVALID_ARGUMENT);
    hailo_nms_info_t z = n;
    z.bbox_size = 4;
    CHECK_STATUS(hailo_nms_decode_by_class(src, 36, dst, sizeof dst, &z, &QP), HAILO_INVALID_ARGUMENT);
    z = n;
    z.chunks_per_frame = 0;
    CHECK_STATUS(hailo_nms_decode_by_score(src, 36, sc, sizeof sc, &z, &QP), HAILO_INVALID_ARGUMENT);
    z = n;
    z.max_bboxes_total = 65536;
    CHECK_STATUS(hailo_nms_decode_by_score(src, 36, sc, sizeof sc, &z, &QP), HAILO_INVALID_ARGUMENT);
    CHECK_OK(hailo_nms_decode_by_score(src, 36, sc, sizeof sc, &n, &QP));
    CHECK_EQ_INT(sc[0] | sc[1], 0);
    /* overlapping buffers */
    unsigned char both[200];
    CHECK_STATUS(hailo_nms_decode_by_score(both, 36, both + 20, sizeof sc, &n, &QP), HAILO_INVALID_ARGUMENT);
}

/* Random frames: contexts (by class, by score, raw) and the standalone functions against
 * the reference model. */
static void test_random_frames(void)
{
    ref_rng r = {77};
    for (int it = 0; it < 400; it++) {
        hailo_stream_info_t si;
        memset(&si, 0, sizeof si);
        strcpy(si.name, "nms");
        si.direction = HAILO_D2H_STREAM;
        si.format = (hailo_format_t){ref_range(&r, 0, 1) ? HAILO_FORMAT_TYPE_UINT16 : HAILO_FORMAT_TYPE_UINT8,
                                     HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP, HAILO_FORMAT_FLAGS_NONE};
        si.nms_info.number_of_classes = ref_range(&r, 1, 20);
        si.nms_info.max_bboxes_per_class = ref_range(&r, 1, 20);
        si.nms_info.max_bboxes_total = ref_range(&r, 0, 1) ? 0 : ref_range(&r, 1, 50);
        si.nms_info.bbox_size = 8;
        si.nms_info.chunks_per_frame = ref_range(&r, 1, 4);
        si.quant_info = (hailo_quant_info_t){(float)ref_range(&r, 0, 7), ldexpf(1.0f, -(int)ref_range(&r, 8, 13)), 0, 1};
        CHECK_OK(hailo_fill_hw_frame_size(&si));
        size_t dev = si.hw_frame_size;
        unsigned char *src = malloc(dev);
        ref_random_nms(&r, &si, src, dev);
        const hailo_format_order_t orders[3] = {HAILO_FORMAT_ORDER_HAILO_NMS_BY_CLASS,
                                                HAILO_FORMAT_ORDER_HAILO_NMS_BY_SCORE,
                                                HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP};
        for (int o = 0; o < 3; o++) {
            hailo_transform_params_t p = {HAILO_STREAM_TRANSFORM_COPY,
                                          {o == 2 ? si.format.type : HAILO_FORMAT_TYPE_AUTO, orders[o], HAILO_FORMAT_FLAGS_NONE}};
            hailo_format_t resolved;
            CHECK_OK(hailo_resolve_user_format(&si, &p.user_buffer_format, &resolved));
            size_t hb = ref_host_bytes(&si, &resolved);
            CHECK_EQ_INT(hailo_get_host_frame_size(&si, &p), hb);
            unsigned char *got = malloc(hb), *want = malloc(hb);
            memset(got, 0xAB, hb);
            CHECK_OK(ref_output(&si, &resolved, src, want));
            hailo_output_transform_context c;
            CHECK_OK(hailo_create_output_transform_context(&si, &p, &c));
            CHECK_OK(hailo_transform_frame_by_output_transform_context(c, src, dev, got, hb));
            CHECK_MSG(memcmp(got, want, hb) == 0, "iteration %d order %s", it, hs_order_name(orders[o]));
            bool req;
            CHECK_OK(hailo_is_output_transformation_required(&si, &p, &req));
            CHECK(req == (o != 2 || hs_nms_payload_bytes(&si.nms_info) % 8 != 0));
            hailo_release_output_transform_context(c);
            if (o == 0) {
                memset(got, 0xAB, hb);
                CHECK_OK(hailo_nms_decode_by_class(src, dev, (float *)(void *)got, hb, &si.nms_info, &si.quant_info));
                CHECK(memcmp(got, want, hb) == 0);
            } else if (o == 1) {
                memset(got, 0xAB, hb);
                CHECK_OK(hailo_nms_decode_by_score(src, dev, got, hb, &si.nms_info, &si.quant_info));
                CHECK(memcmp(got, want, hb) == 0);
            }
            free(got);
            free(want);
        }
        free(src);
    }
}

static void test_describe(void)
{
    hailo_stream_info_t si;
    memset(&si, 0, sizeof si);
    strcpy(si.name, "nms");
    si.direction = HAILO_D2H_STREAM;
    si.format = (hailo_format_t){HAILO_FORMAT_TYPE_UINT16, HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP, HAILO_FORMAT_FLAGS_NONE};
    si.nms_info = (hailo_nms_info_t){80, 100, 0, 8, 1};
    si.quant_info = (hailo_quant_info_t){0, 1.0f / 4096, 0, 16};
    hailo_transform_params_t p = {HAILO_STREAM_TRANSFORM_COPY, {HAILO_FORMAT_TYPE_AUTO, HAILO_FORMAT_ORDER_HAILO_NMS_BY_SCORE, HAILO_FORMAT_FLAGS_NONE}};
    hailo_output_transform_context c;
    CHECK_OK(hailo_create_output_transform_context(&si, &p, &c));
    CHECK_EQ_INT(hailo_output_transform_context_get_dst_frame_size(c), 2 + 8000 * 22);
    char msg[HAILO_MAX_MESSAGE_SIZE];
    CHECK_OK(hailo_describe_output_transform_context(c, msg, sizeof msg));
    CHECK_CONTAINS(msg, "nms decode HAILO_NMS_ON_CHIP -> HAILO_NMS_BY_SCORE (classes=80");
    CHECK_CONTAINS(msg, "top 8000 by score");
    hailo_release_output_transform_context(c);
}

HS_TESTS(test_by_class_layout, test_by_score_sort_ties_and_cap, test_standalone_arguments,
         test_random_frames, test_describe)
