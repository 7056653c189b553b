/*
 * gen_golden.c - writes HGV1 golden vectors (the format of tests/golden.py) whose expected
 * bytes come from the C reference model (ref_model.c), and whose error statuses are written
 * here by hand from docs/stream-layer.md. They exercise the interop program and its reader
 * without Python; the Python reference writes the authoritative set.
 *
 *   gen_golden DIR
 */
#include "ref_model.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define U8 HAILO_FORMAT_TYPE_UINT8
#define U16 HAILO_FORMAT_TYPE_UINT16
#define F32 HAILO_FORMAT_TYPE_FLOAT32
#define AUTO_T HAILO_FORMAT_TYPE_AUTO

static const char *g_dir;
static int g_written;

static void hex(FILE *f, float x)
{
    uint32_t b;
    memcpy(&b, &x, 4);
    fprintf(f, "%08x", b);
}

static void qp_line(FILE *f, const char *key, const hailo_quant_info_t *q)
{
    fprintf(f, "%s ", key);
    hex(f, q->qp_zp);
    fputc(' ', f);
    hex(f, q->qp_scale);
    fputc(' ', f);
    hex(f, q->limvals_min);
    fputc(' ', f);
    hex(f, q->limvals_max);
    fputc('\n', f);
}

static int write_case(const char *name, const hailo_stream_info_t *si, hailo_format_t user, int status,
                      const void *src, size_t src_n, const void *want, size_t want_n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.case", g_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        return 1;
    }
    fprintf(f, "HGV1\nname %s\ndirection %u\nstream_name %s\n", name, (unsigned)si->direction, si->name);
    fprintf(f, "device_format %u %u %u\n", (unsigned)si->format.type, (unsigned)si->format.order, (unsigned)si->format.flags);
    fprintf(f, "shape %u %u %u\n", si->shape.height, si->shape.width, si->shape.features);
    fprintf(f, "hw_shape %u %u %u\n", si->hw_shape.height, si->hw_shape.width, si->hw_shape.features);
    qp_line(f, "quant_info", &si->quant_info);
    fprintf(f, "quant_infos %u\n", si->quant_infos_count);
    for (uint32_t i = 0; i < si->quant_infos_count; i++) qp_line(f, "qp", &si->quant_infos[i]);
    const hailo_nms_info_t *n = &si->nms_info;
    fprintf(f, "nms_info %u %u %u %u %u %u %u\n", n->number_of_classes, n->max_bboxes_per_class, n->max_bboxes_total,
            n->bbox_size, n->chunks_per_frame, n->burst_size, (unsigned)n->burst_type);
    fprintf(f, "user_format %u %u %u\n", (unsigned)user.type, (unsigned)user.order, (unsigned)user.flags);
    fprintf(f, "expected_status %d\nsrc_size %zu\nexpected_size %zu\ndata\n", status, src_n, want_n);
    if ((src_n && fwrite(src, 1, src_n, f) != src_n) || (want_n && fwrite(want, 1, want_n, f) != want_n)) {
        fclose(f);
        return 1;
    }
    g_written++;
    return fclose(f) != 0;
}

static hailo_stream_info_t stream(const char *name, hailo_stream_direction_t dir, hailo_format_type_t t,
                                  hailo_format_order_t o, hailo_3d_image_shape_t s, hailo_3d_image_shape_t hw)
{
    hailo_stream_info_t si;
    memset(&si, 0, sizeof si);
    snprintf(si.name, sizeof si.name, "%s", name);
    si.direction = dir;
    si.format = (hailo_format_t){t, o, HAILO_FORMAT_FLAGS_NONE};
    si.shape = s;
    si.hw_shape = hw;
    float top = t == U16 ? 65535.0f : 255.0f, zp = t == U16 ? 30000.0f : 128.0f, sc = t == U16 ? 1.0f / 1024 : 1.0f / 64;
    si.quant_info = (hailo_quant_info_t){zp, sc, (0.0f - zp) * sc, (top - zp) * sc};
    return si;
}

/* A success case: random source, expected bytes from the reference model. */
static int ok_case(const char *name, hailo_stream_info_t si, hailo_format_t user, ref_rng *r)
{
    hailo_format_t res = user;
    if (res.order == HAILO_FORMAT_ORDER_AUTO) {
        /* the first host order of the device order (docs/stream-layer.md) */
        switch (si.format.order) {
        case HAILO_FORMAT_ORDER_NC: res.order = HAILO_FORMAT_ORDER_NC; break;
        case HAILO_FORMAT_ORDER_NHW: res.order = HAILO_FORMAT_ORDER_NHW; break;
        case HAILO_FORMAT_ORDER_YUY2: res.order = HAILO_FORMAT_ORDER_YUY2; break;
        case HAILO_FORMAT_ORDER_HAILO_YYUV: res.order = HAILO_FORMAT_ORDER_NV12; break;
        case HAILO_FORMAT_ORDER_HAILO_YYVU: res.order = HAILO_FORMAT_ORDER_NV21; break;
        case HAILO_FORMAT_ORDER_HAILO_YYYYUV: res.order = HAILO_FORMAT_ORDER_I420; break;
        case HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP: res.order = HAILO_FORMAT_ORDER_HAILO_NMS_BY_CLASS; break;
        default: res.order = HAILO_FORMAT_ORDER_NHWC; break;
        }
    }
    if (res.type == AUTO_T) /* HailoRT: by class FLOAT32, by score UINT8 (bytes) */
        res.type = res.order == HAILO_FORMAT_ORDER_HAILO_NMS_BY_CLASS   ? F32
                   : res.order == HAILO_FORMAT_ORDER_HAILO_NMS_BY_SCORE ? U8
                                                                        : si.format.type;
    size_t hb = ref_host_bytes(&si, &res), db = ref_dev_bytes(&si);
    int out = si.direction == HAILO_D2H_STREAM;
    size_t sn = out ? db : hb, dn = out ? hb : db;
    unsigned char *src = malloc(sn), *want = malloc(dn);
    int st = 0;
    if (!out) {
        ref_random_host(r, &si, &res, src, sn, 1);
        ref_input(&si, &res, src, want);
    } else {
        if (si.format.order == HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP) ref_random_nms(r, &si, src, sn);
        else for (size_t i = 0; i < sn; i++) src[i] = (unsigned char)ref_rand(r);
        st = ref_output(&si, &res, src, want);
    }
    int rc = write_case(name, &si, user, st, src, sn, st ? NULL : want, st ? 0 : dn);
    free(src);
    free(want);
    return rc;
}

static int err_case(const char *name, hailo_stream_info_t si, hailo_format_t user, int status)
{
    return write_case(name, &si, user, status, NULL, 0, NULL, 0);
}

#define S(h, w, c) ((hailo_3d_image_shape_t){(h), (w), (c)})
#define FMT(t, o, f) ((hailo_format_t){(t), (o), (hailo_format_flags_t)(f)})
#define IN HAILO_H2D_STREAM
#define OUT HAILO_D2H_STREAM
#define TR HAILO_FORMAT_FLAGS_TRANSPOSED

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    g_dir = argv[1];
    if (mkdir(g_dir, 0777) != 0 && errno != EEXIST) {
        perror(g_dir);
        return 1;
    }
    ref_rng r = {20261127};
    int rc = 0;
    static hailo_quant_info_t qps[4] = {{3, 0.5f, 0, 0}, {120, 1.0f / 32, 0, 0}, {7, 0.125f, 0, 0}, {0, 2.0f, 0, 0}};
    hailo_stream_info_t s;
    /* inputs */
    rc |= ok_case("c_in_nhcw_f32_nhwc_pad", stream("in0", IN, U8, HAILO_FORMAT_ORDER_NHCW, S(3, 37, 3), S(3, 40, 3)), FMT(F32, HAILO_FORMAT_ORDER_NHWC, 0), &r);
    rc |= ok_case("c_in_nhcw_f32_auto_u16", stream("in1", IN, U16, HAILO_FORMAT_ORDER_NHCW, S(2, 7, 5), S(2, 8, 6)), FMT(F32, HAILO_FORMAT_ORDER_AUTO, 0), &r);
    rc |= ok_case("c_in_nhcw_u8_nchw", stream("in2", IN, U8, HAILO_FORMAT_ORDER_NHCW, S(4, 3, 5), S(4, 4, 5)), FMT(U8, HAILO_FORMAT_ORDER_NCHW, 0), &r);
    rc |= ok_case("c_in_nhcw_u8_widen", stream("in3", IN, U16, HAILO_FORMAT_ORDER_NHCW, S(3, 17, 3), S(3, 20, 3)), FMT(U8, HAILO_FORMAT_ORDER_NHWC, 0), &r);
    rc |= ok_case("c_in_nhcw_rgb4", stream("in4", IN, U8, HAILO_FORMAT_ORDER_NHCW, S(3, 5, 3), S(3, 6, 3)), FMT(U8, HAILO_FORMAT_ORDER_RGB4, 0), &r);
    rc |= ok_case("c_in_nhcw_rgb4_t", stream("in5", IN, U8, HAILO_FORMAT_ORDER_NHCW, S(3, 5, 3), S(3, 6, 3)), FMT(U8, HAILO_FORMAT_ORDER_RGB4, TR), &r);
    rc |= ok_case("c_in_nhcw_f32_t", stream("in6", IN, U8, HAILO_FORMAT_ORDER_NHCW, S(3, 5, 2), S(3, 6, 2)), FMT(F32, HAILO_FORMAT_ORDER_NHWC, TR), &r);
    rc |= ok_case("c_in_nhwc_f32", stream("in7", IN, U8, HAILO_FORMAT_ORDER_NHWC, S(3, 5, 3), S(4, 6, 3)), FMT(F32, HAILO_FORMAT_ORDER_AUTO, 0), &r);
    rc |= ok_case("c_in_fcr_f32", stream("in8", IN, U8, HAILO_FORMAT_ORDER_FCR, S(2, 3, 5), S(2, 3, 8)), FMT(F32, HAILO_FORMAT_ORDER_NHWC, 0), &r);
    rc |= ok_case("c_in_f8cr_u8_c11", stream("in9", IN, U8, HAILO_FORMAT_ORDER_F8CR, S(2, 3, 11), S(2, 3, 16)), FMT(U8, HAILO_FORMAT_ORDER_F8CR, 0), &r);
    rc |= ok_case("c_in_f8cr_u16_c9", stream("in10", IN, U16, HAILO_FORMAT_ORDER_F8CR, S(1, 5, 9), S(2, 5, 16)), FMT(F32, HAILO_FORMAT_ORDER_AUTO, 0), &r);
    rc |= ok_case("c_in_nc_f32", stream("in11", IN, U8, HAILO_FORMAT_ORDER_NC, S(1, 1, 13), S(1, 1, 16)), FMT(F32, HAILO_FORMAT_ORDER_NC, 0), &r);
    rc |= ok_case("c_in_rgb888_f32", stream("in12", IN, U8, HAILO_FORMAT_ORDER_RGB888, S(2, 3, 3), S(2, 3, 4)), FMT(F32, HAILO_FORMAT_ORDER_NHWC, 0), &r);
    rc |= ok_case("c_in_yuy2", stream("in13", IN, U8, HAILO_FORMAT_ORDER_YUY2, S(2, 6, 2), S(2, 6, 2)), FMT(U8, HAILO_FORMAT_ORDER_YUY2, 0), &r);
    rc |= ok_case("c_in_nv12", stream("in14", IN, U8, HAILO_FORMAT_ORDER_HAILO_YYUV, S(4, 6, 3), S(4, 8, 3)), FMT(U8, HAILO_FORMAT_ORDER_NV12, 0), &r);
    rc |= ok_case("c_in_nv21", stream("in15", IN, U8, HAILO_FORMAT_ORDER_HAILO_YYVU, S(2, 4, 3), S(2, 4, 3)), FMT(AUTO_T, HAILO_FORMAT_ORDER_AUTO, 0), &r);
    rc |= ok_case("c_in_i420", stream("in16", IN, U8, HAILO_FORMAT_ORDER_HAILO_YYYYUV, S(4, 6, 3), S(4, 8, 3)), FMT(U8, HAILO_FORMAT_ORDER_I420, 0), &r);
    /* outputs */
    s = stream("out0", OUT, U8, HAILO_FORMAT_ORDER_NHCW, S(3, 13, 4), S(3, 16, 4));
    s.quant_infos = qps;
    s.quant_infos_count = 4;
    rc |= ok_case("c_out_nhcw_per_feature", s, FMT(F32, HAILO_FORMAT_ORDER_NHWC, 0), &r);
    rc |= ok_case("c_out_nhcw_nchw_per_feature", s, FMT(F32, HAILO_FORMAT_ORDER_NCHW, 0), &r);
    rc |= ok_case("c_out_nhcw_t", s, FMT(F32, HAILO_FORMAT_ORDER_NHWC, TR), &r);
    rc |= ok_case("c_out_nhcw_255", stream("out1", OUT, U8, HAILO_FORMAT_ORDER_NHCW, S(2, 20, 255), S(2, 24, 256)), FMT(F32, HAILO_FORMAT_ORDER_NHWC, 0), &r);
    rc |= ok_case("c_out_nhcw_u16_f32", stream("out2", OUT, U16, HAILO_FORMAT_ORDER_NHCW, S(2, 9, 11), S(2, 12, 11)), FMT(F32, HAILO_FORMAT_ORDER_AUTO, 0), &r);
    rc |= ok_case("c_out_nhcw_widen", stream("out3", OUT, U8, HAILO_FORMAT_ORDER_NHCW, S(2, 3, 2), S(2, 4, 2)), FMT(U16, HAILO_FORMAT_ORDER_NHWC, 0), &r);
    rc |= ok_case("c_out_nhwc_f32", stream("out4", OUT, U8, HAILO_FORMAT_ORDER_NHWC, S(3, 3, 5), S(3, 4, 5)), FMT(F32, HAILO_FORMAT_ORDER_AUTO, 0), &r);
    rc |= ok_case("c_out_fcr_fcr", stream("out5", OUT, U8, HAILO_FORMAT_ORDER_FCR, S(2, 3, 5), S(2, 4, 8)), FMT(U8, HAILO_FORMAT_ORDER_FCR, 0), &r);
    rc |= ok_case("c_out_f8cr_f32", stream("out6", OUT, U8, HAILO_FORMAT_ORDER_F8CR, S(2, 3, 11), S(2, 4, 16)), FMT(F32, HAILO_FORMAT_ORDER_NHWC, 0), &r);
    rc |= ok_case("c_out_nc", stream("out7", OUT, U16, HAILO_FORMAT_ORDER_NC, S(1, 1, 10), S(1, 1, 16)), FMT(F32, HAILO_FORMAT_ORDER_AUTO, 0), &r);
    rc |= ok_case("c_out_nhw_cast", stream("out8", OUT, U8, HAILO_FORMAT_ORDER_NHW, S(3, 5, 1), S(3, 8, 1)), FMT(F32, HAILO_FORMAT_ORDER_NHW, 0), &r);
    rc |= ok_case("c_out_nhw_t", stream("out9", OUT, U16, HAILO_FORMAT_ORDER_NHW, S(3, 5, 1), S(3, 8, 1)), FMT(U16, HAILO_FORMAT_ORDER_NHW, TR), &r);
    s = stream("nms", OUT, U16, HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP, S(1, 1, 1), S(1, 1, 1));
    s.nms_info = ref_nms_info(3, 4, 5, 2);
    s.quant_info = (hailo_quant_info_t){0.0f, 1.0f / 4096, 0.0f, 16.0f};
    rc |= ok_case("c_out_nms_by_class", s, FMT(F32, HAILO_FORMAT_ORDER_HAILO_NMS_BY_CLASS, 0), &r);
    rc |= ok_case("c_out_nms_by_score", s, FMT(F32, HAILO_FORMAT_ORDER_HAILO_NMS_BY_SCORE, 0), &r);
    rc |= ok_case("c_out_nms_by_score_u8", s, FMT(U8, HAILO_FORMAT_ORDER_HAILO_NMS_BY_SCORE, 0), &r);
    rc |= ok_case("c_out_nms_raw", s, FMT(U16, HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP, 0), &r);
    /* 1 to 3 chunks, UINT8 and UINT16 devices, with and without bursts */
    for (uint32_t chunks = 1; chunks <= 3; chunks++)
        for (int t8 = 0; t8 < 2; t8++) {
            char name[64];
            s = stream("nmsc", OUT, t8 ? U8 : U16, HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP, S(1, 1, 1), S(1, 1, 1));
            s.nms_info = ref_nms_info(2 + chunks, 3, chunks == 2 ? 7 : 0, chunks);
            s.nms_info.burst_size = chunks == 3 ? 5 : 0;
            s.nms_info.burst_type = chunks == 3 ? HAILO_BURST_TYPE_H8_PER_CLASS : HAILO_BURST_TYPE_H8_BBOX;
            s.quant_info = (hailo_quant_info_t){(float)chunks, 1.0f / 256, 0.0f, 16.0f};
            snprintf(name, sizeof name, "c_out_nms_%uchunks_%s_by_class", (unsigned)chunks, t8 ? "u8" : "u16");
            rc |= ok_case(name, s, FMT(AUTO_T, HAILO_FORMAT_ORDER_AUTO, 0), &r);
            snprintf(name, sizeof name, "c_out_nms_%uchunks_%s_by_score", (unsigned)chunks, t8 ? "u8" : "u16");
            rc |= ok_case(name, s, FMT(AUTO_T, HAILO_FORMAT_ORDER_HAILO_NMS_BY_SCORE, 0), &r);
        }
    /* errors (statuses from the status table of docs/stream-layer.md) */
    rc |= err_case("c_err_in_u16_to_u8", stream("e0", IN, U8, HAILO_FORMAT_ORDER_NHCW, S(2, 2, 2), S(2, 2, 2)), FMT(U16, HAILO_FORMAT_ORDER_NHWC, 0), 6);
    rc |= err_case("c_err_out_u16_to_u8", stream("e1", OUT, U16, HAILO_FORMAT_ORDER_NHCW, S(2, 2, 2), S(2, 2, 2)), FMT(U8, HAILO_FORMAT_ORDER_NHWC, 0), 6);
    rc |= err_case("c_err_float32_device", stream("e2", IN, F32, HAILO_FORMAT_ORDER_NHWC, S(2, 2, 2), S(2, 2, 2)), FMT(F32, 0, 0), 6);
    rc |= err_case("c_err_auto_device", stream("e3", IN, AUTO_T, HAILO_FORMAT_ORDER_NHWC, S(2, 2, 2), S(2, 2, 2)), FMT(F32, 0, 0), 2);
    rc |= err_case("c_err_nv12_into_nhcw", stream("e4", IN, U8, HAILO_FORMAT_ORDER_NHCW, S(2, 2, 3), S(2, 2, 3)), FMT(U8, HAILO_FORMAT_ORDER_NV12, 0), 6);
    rc |= err_case("c_err_shape_zero", stream("e5", IN, U8, HAILO_FORMAT_ORDER_NHCW, S(2, 0, 3), S(2, 4, 3)), FMT(F32, 0, 0), 2);
    rc |= err_case("c_err_hw_smaller", stream("e6", IN, U8, HAILO_FORMAT_ORDER_NHWC, S(2, 5, 3), S(2, 4, 3)), FMT(F32, 0, 0), 2);
    rc |= err_case("c_err_unknown_order", stream("e7", IN, U8, HAILO_FORMAT_ORDER_NHWC, S(2, 2, 3), S(2, 2, 3)), FMT(F32, 99, 0), 2);
    s = stream("e8", OUT, U8, HAILO_FORMAT_ORDER_NHCW, S(2, 2, 3), S(2, 2, 3));
    s.quant_infos = qps;
    s.quant_infos_count = 2;
    rc |= err_case("c_err_qp_count", s, FMT(F32, 0, 0), 2);
    s = stream("e9", IN, U8, HAILO_FORMAT_ORDER_NHCW, S(2, 2, 3), S(2, 2, 3));
    s.quant_info.qp_scale = 0.0f;
    rc |= err_case("c_err_scale_zero", s, FMT(F32, 0, 0), 2);
    rc |= err_case("c_err_rgb888_output", stream("e10", OUT, U8, HAILO_FORMAT_ORDER_RGB888, S(2, 2, 3), S(2, 2, 4)), FMT(U8, HAILO_FORMAT_ORDER_NHWC, 0), 6);
    /* a transform that fails: a count above max_bboxes_per_class */
    s = stream("e11", OUT, U16, HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP, S(1, 1, 1), S(1, 1, 1));
    s.nms_info = ref_nms_info(3, 4, 5, 2);
    s.quant_info = (hailo_quant_info_t){0.0f, 1.0f / 4096, 0.0f, 16.0f};
    unsigned char bad[204] = {5, 0}; /* 2 * 3 * (2 + 32), HailoRT's size */
    rc |= write_case("c_err_nms_overrun", &s, FMT(F32, HAILO_FORMAT_ORDER_HAILO_NMS_BY_CLASS, 0), 25, bad, sizeof bad, NULL, 0);
    /* limvals_min > limvals_max on a quantizing input: refused */
    s = stream("e13", IN, U8, HAILO_FORMAT_ORDER_NHCW, S(2, 3, 3), S(2, 4, 3));
    s.quant_info.limvals_min = 1.0f;
    s.quant_info.limvals_max = -1.0f;
    rc |= err_case("c_err_limvals_inverted", s, FMT(F32, 0, 0), 2);
    /* a by-score frame is bytes: UINT16 is not a type it has */
    s = stream("e14", OUT, U16, HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP, S(1, 1, 1), S(1, 1, 1));
    s.nms_info = ref_nms_info(2, 2, 0, 1);
    rc |= err_case("c_err_nms_by_score_u16", s, FMT(U16, HAILO_FORMAT_ORDER_HAILO_NMS_BY_SCORE, 0), 6);
    /* a source of the wrong size */
    s = stream("e12", IN, U8, HAILO_FORMAT_ORDER_NHCW, S(2, 3, 3), S(2, 4, 3));
    float wrong[19] = {0};
    rc |= write_case("c_err_src_size", &s, FMT(F32, 0, 0), 5, wrong, sizeof wrong, NULL, 0);
    if (rc) {
        fprintf(stderr, "gen_golden: failed writing to %s\n", g_dir);
        return 1;
    }
    printf("wrote %d cases to %s\n", g_written, g_dir);
    return 0;
}
