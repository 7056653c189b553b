/*
 * test_nms.c - HAILO_NMS_ON_CHIP decoding: proposal bit fields, dequantization, packing of
 * the by-class frame, sorting / ties / cap of the by-score frame, several chunks (every
 * proposal kept, HailoRT's transform__d2h_NMS), HailoRT's frame sizes (bursts included),
 * the workspace bound, and the standalone functions against contexts; random frames against
 * the reference model.
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
    hailo_nms_info_t n = ref_nms_info(3, 2, 0, 1);
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
    hailo_nms_info_t n = ref_nms_info(3, 3, 4, 1);
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

/* The example: NmsInfo(1, 1, 0, 8, 2), identity QP, one box per chunk: HailoRT gives
 * [2, box A, box B] in an 11-float frame from a 20-byte device frame. */
static void test_chunks_keep_every_proposal(void)
{
    hailo_stream_info_t si;
    memset(&si, 0, sizeof si);
    strcpy(si.name, "chunks");
    si.direction = HAILO_D2H_STREAM;
    si.format = (hailo_format_t){HAILO_FORMAT_TYPE_UINT16, HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP, HAILO_FORMAT_FLAGS_NONE};
    si.nms_info = ref_nms_info(1, 1, 0, 2);
    si.quant_info = (hailo_quant_info_t){0.0f, 1.0f, 0.0f, 65535.0f};
    CHECK_OK(hailo_fill_hw_frame_size(&si));
    CHECK_EQ_INT(si.hw_frame_size, 20);
    frame_t f = {{0}, 0};
    put_count(&f, 1);
    put_box(&f, 7, 1, 2, 3, 4); /* A, chunk 0 */
    put_count(&f, 1);
    put_box(&f, 9, 5, 6, 7, 8); /* B, chunk 1 */
    CHECK_EQ_INT(f.n, 20);
    hailo_transform_params_t p = {HAILO_STREAM_TRANSFORM_COPY, {HAILO_FORMAT_TYPE_AUTO, HAILO_FORMAT_ORDER_AUTO, HAILO_FORMAT_FLAGS_NONE}};
    hailo_output_transform_context c;
    CHECK_OK(hailo_create_output_transform_context(&si, &p, &c));
    CHECK_EQ_INT(hailo_output_transform_context_get_dst_frame_size(c), 11 * 4);
    float out[11];
    CHECK_OK(hailo_transform_frame_by_output_transform_context(c, f.b, 20, out, sizeof out));
    const float want[11] = {2, 1, 2, 3, 4, 7, 5, 6, 7, 8, 9};
    for (int i = 0; i < 11; i++) CHECK_MSG(out[i] == want[i], "float %d: %g", i, (double)out[i]);
    hailo_release_output_transform_context(c);
    /* by score (user type UINT8, HailoRT's): B then A */
    p.user_buffer_format = (hailo_format_t){HAILO_FORMAT_TYPE_UINT8, HAILO_FORMAT_ORDER_HAILO_NMS_BY_SCORE, HAILO_FORMAT_FLAGS_NONE};
    CHECK_OK(hailo_create_output_transform_context(&si, &p, &c));
    unsigned char bs[2 + 2 * 22];
    CHECK_EQ_INT(hailo_output_transform_context_get_dst_frame_size(c), sizeof bs);
    CHECK_OK(hailo_transform_frame_by_output_transform_context(c, f.b, 20, bs, sizeof bs));
    CHECK_EQ_INT(bs[0] | (bs[1] << 8), 2);
    CHECK(rdf(bs + 2) == 5.0f && rdf(bs + 2 + 16) == 9.0f && rdf(bs + 24 + 16) == 7.0f);
    /* the FLOAT32 spelling gives the same bytes */
    unsigned char bf[sizeof bs];
    hailo_release_output_transform_context(c);
    p.user_buffer_format.type = HAILO_FORMAT_TYPE_FLOAT32;
    CHECK_OK(hailo_create_output_transform_context(&si, &p, &c));
    CHECK_OK(hailo_transform_frame_by_output_transform_context(c, f.b, 20, bf, sizeof bf));
    CHECK(memcmp(bs, bf, sizeof bs) == 0);
    hailo_release_output_transform_context(c);
}

/* Three chunks, two classes: a class is its blocks of chunk 0, 1, 2 in that order; by score,
 * equal scores keep class, then chunk, then device order; the cap cuts the lowest. */
static void test_three_chunks_order_and_ties(void)
{
    hailo_nms_info_t n = ref_nms_info(2, 2, 0, 3);
    frame_t f = {{0}, 0};
    /* chunk 0 */
    put_count(&f, 2);
    put_box(&f, 50, 1, 0, 0, 0);
    put_box(&f, 60, 2, 0, 0, 0);
    put_count(&f, 0);
    /* chunk 1 */
    put_count(&f, 1);
    put_box(&f, 60, 3, 0, 0, 0);
    put_count(&f, 2);
    put_box(&f, 60, 4, 0, 0, 0);
    put_box(&f, 10, 5, 0, 0, 0);
    /* chunk 2 */
    put_count(&f, 0);
    put_count(&f, 2);
    put_box(&f, 70, 6, 0, 0, 0);
    put_box(&f, 60, 7, 0, 0, 0);
    size_t frame = 3 * 2 * (2 + 16);
    CHECK(f.n <= frame);
    const hailo_quant_info_t id = {0.0f, 1.0f, 0.0f, 0.0f};
    float cls[2 * (1 + 5 * 6)];
    CHECK_OK(hailo_nms_decode_by_class(f.b, frame, cls, sizeof cls, &n, &id));
    /* packed: class 0 = 3 boxes (y 1, 2, 3), class 1 = 4 boxes (y 4, 5, 6, 7), then zeros */
    CHECK(cls[0] == 3.0f && cls[1] == 1.0f && cls[6] == 2.0f && cls[11] == 3.0f && cls[15] == 60.0f);
    CHECK(cls[16] == 4.0f && cls[17] == 4.0f && cls[22] == 5.0f && cls[27] == 6.0f && cls[32] == 7.0f);
    CHECK(cls[31] == 70.0f && cls[36] == 60.0f);
    for (size_t i = 37; i < sizeof cls / sizeof cls[0]; i++) CHECK(cls[i] == 0.0f);
    unsigned char sc[2 + 12 * 22];
    CHECK_OK(hailo_nms_decode_by_score(f.b, frame, sc, sizeof sc, &n, &id));
    CHECK_EQ_INT(sc[0], 7);
    /* 70: y6 (c1); 60: y2 (c0 ch0), y3 (c0 ch1), y4 (c1 ch1), y7 (c1 ch2); 50: y1; 10: y5 */
    const float ys[7] = {6, 2, 3, 4, 7, 1, 5};
    const int cl[7] = {1, 0, 0, 1, 1, 0, 1};
    for (int i = 0; i < 7; i++) {
        CHECK_MSG(rdf(sc + 2 + 22 * i) == ys[i], "rank %d: y %g", i, (double)rdf(sc + 2 + 22 * i));
        CHECK_EQ_INT(sc[2 + 22 * i + 20], cl[i]);
    }
    n.max_bboxes_total = 3; /* the best three */
    unsigned char top[2 + 3 * 22];
    CHECK_OK(hailo_nms_decode_by_score(f.b, frame, top, sizeof top, &n, &id));
    CHECK(top[0] == 3 && memcmp(top + 2, sc + 2, 3 * 22) == 0);
}

/* Device frame sizes are HailoRT's get_nms_hw_frame_size for random nms infos, a buffer of
 * that size is what a context takes, and the frame's slack (bursts) is never read. */
static void test_hailort_frame_sizes(void)
{
    ref_rng r = {4242};
    for (int it = 0; it < 2000; it++) {
        hailo_stream_info_t si;
        memset(&si, 0, sizeof si);
        strcpy(si.name, "sizes");
        si.direction = HAILO_D2H_STREAM;
        si.format = (hailo_format_t){ref_range(&r, 0, 1) ? HAILO_FORMAT_TYPE_UINT16 : HAILO_FORMAT_TYPE_UINT8,
                                     HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP, HAILO_FORMAT_FLAGS_NONE};
        si.nms_info = ref_nms_info(ref_range(&r, 1, 100), ref_range(&r, 1, 300), 0, ref_range(&r, 1, 4));
        si.nms_info.burst_size = ref_range(&r, 0, 3) == 0 ? 0 : ref_range(&r, 1, 400);
        si.nms_info.burst_type = (hailo_nms_burst_type_t)ref_range(&r, 0, HAILO_BURST_TYPE_COUNT - 1);
        si.quant_info = (hailo_quant_info_t){0.0f, 1.0f, 0.0f, 1.0f};
        const hailo_nms_info_t *n = &si.nms_info;
        uint64_t slot = n->burst_size > n->max_bboxes_per_class ? n->burst_size : n->max_bboxes_per_class;
        uint64_t want = (uint64_t)n->chunks_per_frame * n->number_of_classes * (2 + 8 * slot) + 8ull * n->burst_size;
        CHECK_EQ_INT(hailo_get_hw_frame_size(&si), want);
        CHECK_OK(hailo_fill_hw_frame_size(&si));
        CHECK_EQ_INT(si.hw_frame_size, want);
        if (it % 50 != 0) continue;
        /* a HailoRT-sized buffer is accepted; the slack after the counts is not read */
        hailo_transform_params_t p = {HAILO_STREAM_TRANSFORM_COPY, {HAILO_FORMAT_TYPE_FLOAT32, HAILO_FORMAT_ORDER_HAILO_NMS_BY_CLASS, HAILO_FORMAT_FLAGS_NONE}};
        hailo_output_transform_context c;
        CHECK_OK(hailo_create_output_transform_context(&si, &p, &c));
        CHECK_EQ_INT(hailo_output_transform_context_get_src_frame_size(c), want);
        size_t hb = hailo_output_transform_context_get_dst_frame_size(c);
        CHECK_EQ_INT(hb, (size_t)n->number_of_classes * (1 + 5 * (size_t)n->chunks_per_frame * n->max_bboxes_per_class) * 4);
        unsigned char *src = calloc(1, (size_t)want), *dst = malloc(hb);
        size_t reach = (size_t)n->chunks_per_frame * n->number_of_classes * (2 + 8 * (size_t)n->max_bboxes_per_class);
        memset(src + reach, 0xFF, (size_t)want - reach); /* garbage in the slack */
        CHECK_OK(hailo_transform_frame_by_output_transform_context(c, src, (size_t)want, dst, hb));
        CHECK_STATUS(hailo_transform_frame_by_output_transform_context(c, src, (size_t)want - 1, dst, hb), HAILO_INSUFFICIENT_BUFFER);
        hailo_release_output_transform_context(c);
        free(src);
        free(dst);
    }
}

/* The decode workspace is bounded by what a frame can hold, whatever max_bboxes_total says. */
static void test_workspace_bounded_by_the_frame(void)
{
    hailo_nms_info_t n = ref_nms_info(1, 1, 65535, 1); /* a 10-byte frame holds 1 proposal */
    CHECK_EQ_INT(hs_nms_workspace_size(&n, 0), 4);
    CHECK_EQ_INT(hs_nms_workspace_size(&n, 1), 4 + 12);
    n = ref_nms_info(80, 100, 0, 3); /* by score: the 24000 of the total, 12 bytes each */
    CHECK_EQ_INT(hs_nms_workspace_size(&n, 0), 3 * 4);
    CHECK_EQ_INT(hs_nms_workspace_size(&n, 1), 3 * 4 + 24000 * 12);
    n = ref_nms_info(1000, 50000, 300, 2); /* a big frame: by score keeps only its 300 */
    CHECK_EQ_INT(hs_nms_workspace_size(&n, 1), 2 * 4 + 300 * 12);
    for (uint32_t chunks = 1; chunks <= 5; chunks++) {
        n = ref_nms_info(7, 9, 0, chunks);
        size_t payload = hs_nms_payload_bytes(&n);
        CHECK(hs_nms_workspace_size(&n, 0) <= payload && hs_nms_workspace_size(&n, 1) <= 2 * payload);
    }
    /* a context whose checks pass reserves little: 1 class, 2^24 per class, total 65535 */
    hailo_stream_info_t si;
    memset(&si, 0, sizeof si);
    si.direction = HAILO_D2H_STREAM;
    si.format = (hailo_format_t){HAILO_FORMAT_TYPE_UINT16, HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP, HAILO_FORMAT_FLAGS_NONE};
    si.nms_info = ref_nms_info(1, 1u << 24, 65535, 2);
    si.quant_info = (hailo_quant_info_t){0.0f, 1.0f, 0.0f, 1.0f};
    hailo_transform_params_t p = {HAILO_STREAM_TRANSFORM_COPY, {HAILO_FORMAT_TYPE_UINT8, HAILO_FORMAT_ORDER_HAILO_NMS_BY_SCORE, HAILO_FORMAT_FLAGS_NONE}};
    hailo_output_transform_context c;
    CHECK_OK(hailo_create_output_transform_context(&si, &p, &c));
    CHECK_EQ_INT(hs_nms_workspace_size(&si.nms_info, 1), 2 * 4 + 65535 * 12);
    hailo_release_output_transform_context(c);
}

static void test_standalone_arguments(void)
{
    hailo_nms_info_t n = ref_nms_info(2, 2, 0, 1);
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
    z = n;
    z.burst_type = HAILO_BURST_TYPE_COUNT;
    CHECK_STATUS(hailo_nms_decode_by_class(src, 36, dst, sizeof dst, &z, &QP), HAILO_INVALID_ARGUMENT);
    z = n;
    z.number_of_classes = 65537; /* class ids are uint16 */
    z.max_bboxes_total = 1;
    unsigned char one[2 + 22];
    unsigned char *zeros = calloc(1, 65537u * 20u);
    CHECK_STATUS(hailo_nms_decode_by_score(zeros, 65537u * 20u, one, sizeof one, &z, &QP), HAILO_INVALID_ARGUMENT);
    z.number_of_classes = 65536;
    CHECK_OK(hailo_nms_decode_by_score(zeros, 65537u * 20u, one, sizeof one, &z, &QP));
    free(zeros);
    /* bursts do not change what the counts reach: the standalone size is unchanged */
    z = n;
    z.burst_size = 9;
    CHECK_OK(hailo_nms_decode_by_class(src, 36, dst, sizeof dst, &z, &QP));
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
        si.nms_info = ref_nms_info(ref_range(&r, 1, 20), ref_range(&r, 1, 20), 0, ref_range(&r, 1, 4));
        si.nms_info.max_bboxes_total = ref_range(&r, 0, 1) ? 0 : ref_range(&r, 1, 50);
        si.nms_info.burst_size = ref_range(&r, 0, 2) ? 0 : ref_range(&r, 1, 30);
        si.quant_info = (hailo_quant_info_t){(float)ref_range(&r, 0, 7), ldexpf(1.0f, -(int)ref_range(&r, 8, 13)), 0, 1};
        CHECK_OK(hailo_fill_hw_frame_size(&si));
        size_t dev = si.hw_frame_size;
        unsigned char *src = malloc(dev);
        ref_random_nms(&r, &si, src, dev);
        CHECK_EQ_INT(dev, ref_dev_bytes(&si));
        const hailo_format_order_t orders[3] = {HAILO_FORMAT_ORDER_HAILO_NMS_BY_CLASS,
                                                HAILO_FORMAT_ORDER_HAILO_NMS_BY_SCORE,
                                                HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP};
        for (int o = 0; o < 3; o++) {
            /* AUTO, or the explicit type: by score UINT8 or FLOAT32 */
            hailo_format_type_t t = HAILO_FORMAT_TYPE_AUTO;
            if (o == 2) t = si.format.type;
            else if (o == 1 && ref_range(&r, 0, 2) == 0) t = ref_range(&r, 0, 1) ? HAILO_FORMAT_TYPE_UINT8 : HAILO_FORMAT_TYPE_FLOAT32;
            hailo_transform_params_t p = {HAILO_STREAM_TRANSFORM_COPY, {t, orders[o], HAILO_FORMAT_FLAGS_NONE}};
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
            CHECK(req == (o != 2)); /* NMS frames are never padded: raw is a copy */
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
    si.nms_info = ref_nms_info(80, 100, 0, 1);
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

HS_TESTS(test_by_class_layout, test_by_score_sort_ties_and_cap, test_chunks_keep_every_proposal,
         test_three_chunks_order_and_ties, test_hailort_frame_sizes, test_workspace_bounded_by_the_frame,
         test_standalone_arguments, test_random_frames, test_describe)
