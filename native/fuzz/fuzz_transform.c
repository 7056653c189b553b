/*
 * fuzz_transform.c - libFuzzer target: stream infos and user params built from the fuzzer's
 * bytes (mostly near-valid, sometimes raw 32-bit values), then every entry point that takes
 * them: check / sizes / resolve / decisions, context creation, frame transforms of exactly
 * sized heap buffers (so ASan sees any byte outside them), wrong sizes, descriptions into
 * small message buffers, standalone NMS decoding and quantize / dequantize.
 *
 * Differential: a successful transform must equal the reference model (tests/ref_model.c),
 * and quantize must equal the reference formula; a mismatch traps.
 *
 *   make fuzz FUZZ_SECONDS=30
 */
#include "hailo_stream.h"
#include "ref_model.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FRAME (1u << 20) /* larger frames are only checked, not transformed */

typedef struct {
    const uint8_t *p;
    size_t n;
} reader;

static uint8_t u8(reader *r)
{
    if (r->n == 0) return 0;
    r->n--;
    return *r->p++;
}

static uint32_t u32(reader *r)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v = v << 8 | u8(r);
    return v;
}

static float f32(reader *r)
{
    uint8_t pick = u8(r);
    if (pick < 160) { /* a plausible value */
        static const float nice[] = {0.0f, 1.0f, 0.5f, 0.0078125f, 0.0123f, 128.0f, 255.0f, -1.0f,
                                     1.0f / 3.0f, 30000.0f, 1.0f / 1024.0f, -128.0f, 65535.0f, 2.0f};
        return nice[pick % (sizeof nice / sizeof nice[0])];
    }
    uint32_t b = u32(r);
    float f;
    memcpy(&f, &b, 4);
    return f;
}

static void fill_bytes(reader *r, unsigned char *dst, size_t n)
{
    size_t i = 0;
    for (; i < n && r->n > 0; i++) dst[i] = u8(r);
    for (; i < n; i++) dst[i] = (unsigned char)(i * 131u + 7u); /* no bytes left: a pattern */
}

static void trap_if(int cond)
{
    if (cond) __builtin_trap();
}

static void fuzz_transform(reader *r, const hailo_stream_info_t *si, const hailo_transform_params_t *p)
{
    size_t host = hailo_get_host_frame_size(si, p), dev = hailo_get_hw_frame_size(si);
    if (host == 0 || host > MAX_FRAME || dev == 0 || dev > MAX_FRAME) return;
    int out = si->direction == HAILO_D2H_STREAM;
    size_t sn = out ? dev : host, dn = out ? host : dev;
    hailo_input_transform_context ic = NULL;
    hailo_output_transform_context oc = NULL;
    hailo_status st = out ? hailo_create_output_transform_context(si, p, &oc)
                          : hailo_create_input_transform_context(si, p, &ic);
    if (st != HAILO_SUCCESS) {
        trap_if(st != HAILO_OUT_OF_HOST_MEMORY); /* the plan succeeded, so only memory may fail */
        return;
    }
    trap_if((out ? hailo_output_transform_context_get_src_frame_size(oc) : hailo_input_transform_context_get_src_frame_size(ic)) != sn);
    trap_if((out ? hailo_output_transform_context_get_dst_frame_size(oc) : hailo_input_transform_context_get_dst_frame_size(ic)) != dn);
    unsigned char *src = malloc(sn), *dst = malloc(dn), *want = malloc(dn);
    if (src && dst && want) {
        fill_bytes(r, src, sn);
        /* wrong sizes are refused */
        st = out ? hailo_transform_frame_by_output_transform_context(oc, src, sn - 1, dst, dn)
                 : hailo_transform_frame_by_input_transform_context(ic, src, sn, dst, dn - 1);
        trap_if(st != HAILO_INSUFFICIENT_BUFFER);
        st = out ? hailo_transform_frame_by_output_transform_context(oc, src, sn, dst, dn)
                 : hailo_transform_frame_by_input_transform_context(ic, src, sn, dst, dn);
        trap_if(st != HAILO_SUCCESS && st != HAILO_INVALID_FRAME);
        /* differential check against the reference model (which has no NO_TRANSFORM) */
        hailo_format_t res;
        if (st == HAILO_SUCCESS && p->transform_mode == HAILO_STREAM_TRANSFORM_COPY &&
            hailo_resolve_user_format(si, &p->user_buffer_format, &res) == HAILO_SUCCESS &&
            (si->format.order != HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP ||
             (si->nms_info.number_of_classes <= 64 &&
              (uint64_t)si->nms_info.chunks_per_frame * si->nms_info.max_bboxes_per_class <= 256))) {
            trap_if(ref_host_bytes(si, &res) != host || ref_dev_bytes(si) != dev);
            if (out) trap_if(ref_output(si, &res, src, want) != HAILO_SUCCESS);
            else ref_input(si, &res, src, want);
            trap_if(memcmp(dst, want, dn) != 0);
        }
        size_t msz = u8(r) % 80;
        char *msg = malloc(msz ? msz : 1);
        if (msg) {
            st = out ? hailo_describe_output_transform_context(oc, msg, msz)
                     : hailo_describe_input_transform_context(ic, msg, msz);
            trap_if(msz > 0 && (st != HAILO_SUCCESS || memchr(msg, 0, msz) == NULL));
            free(msg);
        }
    }
    free(src);
    free(dst);
    free(want);
    hailo_release_input_transform_context(ic);
    hailo_release_output_transform_context(oc);
}

static void fuzz_quantize(reader *r)
{
    hailo_quant_info_t q = {f32(r), f32(r), f32(r), f32(r)};
    hailo_format_type_t t = (u8(r) & 1) ? HAILO_FORMAT_TYPE_UINT16 : HAILO_FORMAT_TYPE_UINT8;
    size_t n = u8(r) % 70;
    float *x = malloc((n ? n : 1) * sizeof(float));
    uint16_t *codes = malloc((n ? n : 1) * sizeof(uint16_t));
    float *y = malloc((n ? n : 1) * sizeof(float));
    if (x && codes && y) {
        for (size_t i = 0; i < n; i++) x[i] = f32(r);
        hailo_status st = hailo_quantize_input_buffer(x, codes, n, t, &q);
        /* a usable scale; limvals ordered unless the QP is the identity (which never clips) */
        int valid = isfinite(q.qp_scale) && q.qp_scale > 0.0f &&
                    ((q.qp_scale == 1.0f && q.qp_zp == 0.0f) || q.limvals_min <= q.limvals_max);
        trap_if(st != (valid ? HAILO_SUCCESS : HAILO_INVALID_ARGUMENT));
        if (st == HAILO_SUCCESS) {
            for (size_t i = 0; i < n; i++) {
                uint32_t got = t == HAILO_FORMAT_TYPE_UINT8 ? ((uint8_t *)codes)[i] : codes[i];
                trap_if(got != ref_quantize(x[i], &q, t));
            }
            st = hailo_dequantize_output_buffer(codes, y, n, t, &q);
            trap_if(st != HAILO_SUCCESS);
            for (size_t i = 0; i < n; i++) {
                uint32_t c = t == HAILO_FORMAT_TYPE_UINT8 ? ((uint8_t *)codes)[i] : codes[i];
                float want = ref_dequantize(c, q.qp_zp, q.qp_scale);
                trap_if(memcmp(&y[i], &want, 4) != 0 && !(isnan(y[i]) && isnan(want)));
            }
        }
    }
    free(x);
    free(codes);
    free(y);
}

/* nms_info from the fuzzer's bytes: small counts, sometimes raw 32-bit values */
static hailo_nms_info_t nms_info(reader *r, int raw)
{
    hailo_nms_info_t n;
    memset(&n, 0, sizeof n);
    n.number_of_classes = raw ? u32(r) : u8(r) % 9u;
    n.max_bboxes_per_class = raw ? u32(r) : u8(r) % 9u;
    n.max_bboxes_total = raw ? u32(r) : u8(r) % 40u;
    n.bbox_size = (u8(r) % 8) ? 8u : u8(r);
    n.chunks_per_frame = raw ? u32(r) : u8(r) % 4u;
    uint8_t burst = u8(r);
    n.burst_size = raw ? u32(r) : (burst % 3 ? 0u : burst % 13u);
    n.burst_type = (hailo_nms_burst_type_t)(raw ? u32(r) : u8(r) % 6u);
    n.is_defused = u8(r) & 1;
    n.defuse_info.class_group_index = u8(r);
    return n;
}

static void fuzz_nms(reader *r)
{
    hailo_nms_info_t n = nms_info(r, 0);
    hailo_quant_info_t q = {f32(r), f32(r), 0.0f, 1.0f};
    size_t reach = (size_t)n.chunks_per_frame * n.number_of_classes * (2 + 8 * (size_t)n.max_bboxes_per_class);
    uint8_t how = u8(r) % 6;
    size_t sn = how == 0 ? u8(r) : how == 1 ? reach + u8(r) : reach;
    size_t dc = (size_t)n.number_of_classes * (1 + 5 * (size_t)n.chunks_per_frame * n.max_bboxes_per_class) * 4;
    size_t total = n.max_bboxes_total ? n.max_bboxes_total
                                      : (size_t)n.number_of_classes * n.chunks_per_frame * n.max_bboxes_per_class;
    size_t ds = 2 + total * 22;
    unsigned char *src = malloc(sn ? sn : 1), *dst = malloc(dc ? dc : 1), *dst2 = malloc(ds);
    if (src && dst && dst2) {
        fill_bytes(r, src, sn);
        hailo_status a = hailo_nms_decode_by_class(src, sn, (float *)(void *)dst, dc, &n, &q);
        hailo_status b = hailo_nms_decode_by_score(src, sn, dst2, ds, &n, &q);
        trap_if(a != HAILO_SUCCESS && a != HAILO_INVALID_ARGUMENT && a != HAILO_INVALID_FRAME &&
                a != HAILO_INSUFFICIENT_BUFFER);
        trap_if(a != b); /* the same frame is valid for both or for neither */
    }
    free(src);
    free(dst);
    free(dst2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reader r = {data, size};
    uint8_t what = u8(&r);
    if (what % 8 == 6) {
        fuzz_quantize(&r);
        return 0;
    }
    if (what % 8 == 7) {
        fuzz_nms(&r);
        return 0;
    }
    int raw = (what & 0x38) == 0x38; /* 1 in 8: arbitrary 32-bit values */
    hailo_stream_info_t si;
    memset(&si, 0, sizeof si);
    size_t name_len = u8(&r) % (HAILO_MAX_STREAM_NAME_SIZE + 1); /* 128: no NUL at all */
    for (size_t i = 0; i < name_len; i++) si.name[i] = (char)(u8(&r) | 1);
    si.direction = (hailo_stream_direction_t)(raw ? u32(&r) : u8(&r) % 2u);
    si.format.type = (hailo_format_type_t)(raw ? u32(&r) : u8(&r) % 4u);
    si.format.order = (hailo_format_order_t)(raw ? u32(&r) : u8(&r) % 25u);
    si.format.flags = (hailo_format_flags_t)(raw ? u32(&r) : u8(&r) % 4u);
    uint32_t dims[3], pads[3];
    for (int i = 0; i < 3; i++) {
        dims[i] = raw ? u32(&r) : 1u + u8(&r) % 40u;
        pads[i] = raw ? u32(&r) : ((u8(&r) % 3) ? 0u : u8(&r) % 9u);
    }
    si.shape = (hailo_3d_image_shape_t){dims[0], dims[1], dims[2]};
    si.hw_shape = (hailo_3d_image_shape_t){dims[0] + pads[0], dims[1] + pads[1], dims[2] + pads[2]};
    uint8_t shape_kind = u8(&r) % 8;
    if (shape_kind == 0) si.shape.features = 3, si.hw_shape.features = 4;          /* RGB888 */
    if (shape_kind == 1) si.shape.features = si.hw_shape.features = 2;             /* YUY2 */
    if (shape_kind == 2) si.shape.height = si.shape.width = si.hw_shape.height = si.hw_shape.width = 1; /* NC */
    if (shape_kind == 3) si.shape.features = si.hw_shape.features = 1;             /* NHW */
    if (shape_kind == 4) si.hw_shape.features = (si.shape.features + 7) / 8 * 8;   /* F8CR */
    if (shape_kind == 5) {                                                        /* NV12 */
        si.shape.height &= ~1u, si.shape.width &= ~1u;
        si.hw_shape.height &= ~1u, si.hw_shape.width &= ~1u;
    }
    si.quant_info = (hailo_quant_info_t){f32(&r), f32(&r), f32(&r), f32(&r)};
    static hailo_quant_info_t qps[64];
    uint8_t qk = u8(&r) % 4;
    uint32_t count = qk == 0 ? 0 : qk == 1 ? 1 : qk == 2 ? si.shape.features : u8(&r) % 64u;
    if (count > 64) count = 0;
    for (uint32_t i = 0; i < count; i++) qps[i] = (hailo_quant_info_t){f32(&r), f32(&r), 0.0f, 1.0f};
    si.quant_infos = count ? qps : NULL;
    si.quant_infos_count = count;
    si.nms_info = nms_info(&r, raw);
    uint8_t fill = u8(&r) % 4;
    if (fill < 2) (void)hailo_fill_hw_frame_size(&si);
    else if (fill == 3) si.hw_frame_size = u32(&r), si.hw_data_bytes = u8(&r) % 4u;

    hailo_transform_params_t p;
    p.transform_mode = (hailo_stream_transform_mode_t)(u8(&r) % 16 == 0 ? (raw ? u32(&r) : 0u) : 1u);
    p.user_buffer_format.type = (hailo_format_type_t)(raw ? u32(&r) : u8(&r) % 4u);
    p.user_buffer_format.order = (hailo_format_order_t)(raw ? u32(&r) : u8(&r) % 25u);
    p.user_buffer_format.flags = (hailo_format_flags_t)(raw ? u32(&r) : u8(&r) % 4u);

    /* calls that allocate nothing big */
    size_t msz = u8(&r) % 100;
    char *msg = malloc(msz ? msz : 1);
    if (msg == NULL) return 0;
    hailo_status st = hailo_check_transform_params(&si, &p, msz ? msg : NULL, msz);
    trap_if(msz > 0 && memchr(msg, 0, msz) == NULL);
    free(msg);
    /* the directed checks: the stream's own direction agrees, the other one refuses */
    if ((uint32_t)si.direction <= 1u) {
        int in = si.direction == HAILO_H2D_STREAM;
        trap_if((in ? hailo_check_input_transform_params(&si, &p, NULL, 0)
                    : hailo_check_output_transform_params(&si, &p, NULL, 0)) != st);
        trap_if((in ? hailo_check_output_transform_params(&si, &p, NULL, 0)
                    : hailo_check_input_transform_params(&si, &p, NULL, 0)) != HAILO_INVALID_ARGUMENT);
    }
    hailo_nms_shape_t shape;
    (void)hailo_get_nms_shape(&si.nms_info, &shape);
    hailo_format_t res;
    (void)hailo_resolve_user_format(&si, &p.user_buffer_format, &res);
    bool b;
    (void)hailo_is_transpose_required(&p.user_buffer_format, &si.format, &b);
    (void)hailo_is_reorder_required(&si.shape, &p.user_buffer_format, &si.hw_shape, &si.format, &b);
    (void)hailo_is_quantization_required(p.user_buffer_format.type, si.format.type, &b);
    (void)hailo_get_shape_size(&si.shape, p.user_buffer_format.order);
    hailo_status req = si.direction == HAILO_D2H_STREAM ? hailo_is_output_transformation_required(&si, &p, &b)
                                                        : hailo_is_input_transformation_required(&si, &p, &b);
    trap_if((uint32_t)si.direction <= 1u && req != st); /* the same validation */
    trap_if((st == HAILO_SUCCESS) != (hailo_get_host_frame_size(&si, &p) != 0));
    if (st == HAILO_SUCCESS) fuzz_transform(&r, &si, &p);
    return 0;
}
