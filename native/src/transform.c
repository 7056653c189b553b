/*
 * transform.c - input / output transform contexts: creation from an hs_plan, the per-frame
 * entry points, the TRANSPOSED step, and the human-readable description.
 *
 * A context owns copies of everything it needs (per-feature QPs as float arrays, the
 * stream name), so the caller's stream info may go away after creation. Only TRANSPOSED
 * contexts (a host-frame scratch buffer) and NMS contexts (a decode workspace) write to
 * the context during a transform; hence one context per thread.
 */
#include "hs_internal.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct {
    hs_plan plan;
    char name[HAILO_MAX_STREAM_NAME_SIZE + 1];
    hs_isa isa;
    hs_kargs args;
    hs_kernel_fn kernel;
    float *qp_arrays;      /* zpv then scv, C entries each (outputs) */
    unsigned char *scratch; /* TRANSPOSED: one host frame in the user type */
    void *nms_workspace;
} hs_context;

struct hailo_input_transform_context_s {
    hs_context c;
};
struct hailo_output_transform_context_s {
    hs_context c;
};

/* ------------------------------------------------------------- TRANSPOSED --- */
/* src (planes, A, M, B) of es-byte elements, a-rows `row_bytes` apart -> dst (planes, B, M, A),
 * packed. Blocked so that both sides of a tile stay in L1. Inlined per element size below: a
 * constant-size memcpy is a register move, a variable one a library call per element. */
HS_AI void transpose_es(const unsigned char *src, unsigned char *dst, const hs_plan *p, size_t es)
{
    const size_t A = p->tr_a, B = p->tr_b, M = p->tr_m, row = p->tr_row_bytes;
    const size_t T = 16;
    for (size_t pl = 0; pl < p->tr_planes; pl++) {
        const unsigned char *s = src + pl * A * row;
        unsigned char *d = dst + pl * B * M * A * es;
        for (size_t a0 = 0; a0 < A; a0 += T) {
            size_t a1 = a0 + T < A ? a0 + T : A;
            for (size_t b0 = 0; b0 < B; b0 += T) {
                size_t b1 = b0 + T < B ? b0 + T : B;
                for (size_t m = 0; m < M; m++) {
                    for (size_t b = b0; b < b1; b++) {
                        unsigned char *dd = d + ((b * M + m) * A) * es;
                        const unsigned char *ss = s + (m * B + b) * es;
                        for (size_t a = a0; a < a1; a++) memcpy(dd + a * es, ss + a * row, es);
                    }
                }
            }
        }
    }
}

/* es: one element of planar hosts, or one pixel (C elements) of channel-last hosts */
static void transpose(const unsigned char *src, unsigned char *dst, const hs_plan *p)
{
    switch (p->tr_es) {
    case 1: transpose_es(src, dst, p, 1); break;
    case 2: transpose_es(src, dst, p, 2); break;
    case 3: transpose_es(src, dst, p, 3); break;
    case 4: transpose_es(src, dst, p, 4); break;
    case 6: transpose_es(src, dst, p, 6); break;
    case 8: transpose_es(src, dst, p, 8); break;
    case 12: transpose_es(src, dst, p, 12); break;
    case 16: transpose_es(src, dst, p, 16); break;
    default: transpose_es(src, dst, p, p->tr_es); break;
    }
}

/* ----------------------------------------------------------------- create --- */
static void context_free(hs_context *c)
{
    if (c == NULL) return;
    free(c->qp_arrays);
    free(c->scratch);
    free(c->nms_workspace);
    free(c);
}

static hailo_status context_create(const hailo_stream_info_t *si,
                                   const hailo_transform_params_t *params, int direction,
                                   hs_isa isa, hs_context **out)
{
    hs_plan plan;
    hailo_status st = hs_plan_build(si, params, direction, &plan, NULL, 0);
    if (st != HAILO_SUCCESS) return st;

    hs_context *c = (hs_context *)calloc(1, sizeof *c);
    if (c == NULL) return HAILO_OUT_OF_HOST_MEMORY;
    c->plan = plan;
    c->isa = isa;
    memcpy(c->name, si->name, hs_strnlen(si->name, HAILO_MAX_STREAM_NAME_SIZE));

    hs_kargs *a = &c->args;
    int nhw = plan.device.order == HAILO_FORMAT_ORDER_NHW;
    a->H = plan.shape.height;
    a->W = plan.shape.width;
    a->C = nhw ? 1 : plan.shape.features;
    a->Hh = plan.hw.height;
    a->Wh = plan.hw.width;
    a->Ch = nhw ? 1 : plan.hw.features;
    a->host_row = plan.host_row;
    a->host_hs = plan.host_hs;
    a->host_cs = plan.host_cs;
    a->dev_bytes = plan.dev_bytes;
    a->zp = 0.0f;
    a->scale = 1.0f;

    if (plan.kind == HS_KIND_PIXELS) {
        if (direction == HAILO_H2D_STREAM && plan.user.type == HAILO_FORMAT_TYPE_FLOAT32) {
            hs_op op;
            hs_quant_setup(&plan.qp, plan.device.type, &a->q, &op);
        }
        if (direction == HAILO_D2H_STREAM) {
            /* per-feature QP arrays; NHW is a cast (zp 0, scale 1), never a dequantize. C is
             * bounded by the 4 GiB host frame, not by HAILO_MAX_QUANT_INFOS (one QP repeats),
             * so 2 * C floats can exceed a 32-bit size_t: an overflow is an allocation failure */
            size_t C = a->C, qp_bytes;
            if (hs_mul(C, 2 * sizeof(float), &qp_bytes))
                c->qp_arrays = (float *)malloc(qp_bytes);
            if (c->qp_arrays == NULL) {
                context_free(c);
                return HAILO_OUT_OF_HOST_MEMORY;
            }
            float *zpv = c->qp_arrays, *scv = c->qp_arrays + C;
            for (size_t i = 0; i < C; i++) {
                const hailo_quant_info_t *q = plan.qps_count > 1 ? &plan.qps[i] : &plan.qp;
                zpv[i] = nhw ? 0.0f : q->qp_zp;
                scv[i] = nhw ? 1.0f : q->qp_scale;
                /* compare bits: equal floats with different bits (+0/-0) are distinct QPs */
                if (hs_f32_bits(zpv[i]) != hs_f32_bits(zpv[0]) ||
                    hs_f32_bits(scv[i]) != hs_f32_bits(scv[0]))
                    a->per_feature = 1;
            }
            a->zpv = zpv;
            a->scv = scv;
            a->zp = zpv[0];
            a->scale = scv[0];
        }
        c->kernel = direction == HAILO_H2D_STREAM
                        ? hs_input_kernel(isa, (hs_in_layout)plan.layout, plan.op)
                        : hs_output_kernel(isa, (hs_out_layout)plan.layout, plan.op);
        if (c->kernel == NULL) {
            context_free(c);
            return HAILO_INTERNAL_FAILURE;
        }
        if (plan.transpose) {
            c->scratch = (unsigned char *)malloc(plan.host_bytes);
            if (c->scratch == NULL) {
                context_free(c);
                return HAILO_OUT_OF_HOST_MEMORY;
            }
        }
    } else if (plan.kind == HS_KIND_NMS_BY_CLASS || plan.kind == HS_KIND_NMS_BY_SCORE) {
        size_t ws = hs_nms_workspace_size(&plan.nms, plan.kind == HS_KIND_NMS_BY_SCORE);
        c->nms_workspace = ws == 0 ? NULL : malloc(ws);
        if (c->nms_workspace == NULL) {
            context_free(c);
            return HAILO_OUT_OF_HOST_MEMORY;
        }
    }
    c->plan.qps = NULL; /* borrowed from the caller: copied into qp_arrays above */
    *out = c;
    return HAILO_SUCCESS;
}

/* ------------------------------------------------------------- transforms --- */
static hailo_status context_run(const hs_context *c, const void *src, size_t src_size, void *dst,
                                size_t dst_size, size_t want_src, size_t want_dst, int output)
{
    if (src == NULL || dst == NULL) return HAILO_INVALID_ARGUMENT;
    if (src_size != want_src || dst_size != want_dst) return HAILO_INSUFFICIENT_BUFFER;
    if (hs_overlap(src, src_size, dst, dst_size)) return HAILO_INVALID_ARGUMENT;
    const hs_plan *p = &c->plan;
    switch (p->kind) {
    case HS_KIND_COPY:
        memcpy(dst, src, dst_size);
        return HAILO_SUCCESS;
    case HS_KIND_PIXELS:
        if (!p->transpose) {
            c->kernel(&c->args, src, dst);
        } else if (!output) {
            transpose((const unsigned char *)src, c->scratch, p);
            c->kernel(&c->args, c->scratch, dst);
        } else {
            c->kernel(&c->args, src, c->scratch);
            transpose(c->scratch, (unsigned char *)dst, p);
        }
        return HAILO_SUCCESS;
    case HS_KIND_NMS_BY_CLASS:
    case HS_KIND_NMS_BY_SCORE:
        return hs_nms_decode(src, src_size, dst, dst_size, &p->nms, &p->qp,
                             p->kind == HS_KIND_NMS_BY_SCORE, c->nms_workspace);
    }
    return HAILO_INTERNAL_FAILURE;
}

/* ------------------------------------------------------------ description --- */
static void describe(const hs_context *c, int output, char *msg, size_t msg_size)
{
    const hs_plan *p = &c->plan;
    const hs_kargs *a = &c->args;
    msg[0] = '\0';
    if (p->no_transform) {
        hs_msg_append(msg, msg_size, "copy (NO_TRANSFORM: device frames of %zu bytes)",
                      p->dev_bytes);
        return;
    }
    if (p->kind == HS_KIND_COPY) {
        hs_msg_append(msg, msg_size, "copy");
        return;
    }
    if (p->kind == HS_KIND_NMS_BY_CLASS || p->kind == HS_KIND_NMS_BY_SCORE) {
        hs_msg_append(msg, msg_size,
                      "nms decode HAILO_NMS_ON_CHIP -> %s (classes=%u, max_bboxes_per_class=%u, "
                      "chunks=%u, scale=%g, zp=%g)",
                      hs_order_name(p->user.order), (unsigned)p->nms.number_of_classes,
                      (unsigned)p->nms.max_bboxes_per_class, (unsigned)p->nms.chunks_per_frame,
                      (double)p->qp.qp_scale, (double)p->qp.qp_zp);
        if (p->kind == HS_KIND_NMS_BY_SCORE)
            hs_msg_append(msg, msg_size, ", top %u by score", (unsigned)p->nms_total);
        return;
    }
    const char *ut = hs_type_name(p->user.type), *dt = hs_type_name(p->device.type);
    char quant[192] = "", trans[192] = "", reorder[192] = "", pad[192] = "";
    if (p->quantize) {
        if (!output && p->user.type == HAILO_FORMAT_TYPE_FLOAT32)
            (void)snprintf(quant, sizeof quant, "quantize %s->%s (scale=%g, zp=%g)", ut, dt,
                           (double)p->qp.qp_scale, (double)p->qp.qp_zp);
        else if (output && p->user.type == HAILO_FORMAT_TYPE_FLOAT32 &&
                 p->device.order == HAILO_FORMAT_ORDER_NHW)
            (void)snprintf(quant, sizeof quant, "cast %s->%s", dt, ut);
        else if (output && p->user.type == HAILO_FORMAT_TYPE_FLOAT32 && a->per_feature)
            (void)snprintf(quant, sizeof quant, "dequantize %s->%s (per-feature, %zu QPs)", dt,
                           ut, a->C);
        else if (output && p->user.type == HAILO_FORMAT_TYPE_FLOAT32)
            (void)snprintf(quant, sizeof quant, "dequantize %s->%s (scale=%g, zp=%g)", dt, ut,
                           (double)a->scale, (double)a->zp);
        else
            (void)snprintf(quant, sizeof quant, "widen %s->%s", output ? dt : ut, output ? ut : dt);
    }
    if (p->transpose)
        (void)snprintf(trans, sizeof trans, "transpose %ux%ux%u <-> %ux%ux%u",
                       (unsigned)p->shape.width, (unsigned)p->shape.height,
                       (unsigned)p->shape.features, (unsigned)p->shape.height,
                       (unsigned)p->shape.width, (unsigned)p->shape.features);
    if (p->reorder)
        (void)snprintf(reorder, sizeof reorder, "reorder %s(%ux%ux%u) %s %s(%ux%ux%u hw %ux%ux%u)",
                       hs_order_name(p->user.order), (unsigned)p->shape.height,
                       (unsigned)p->shape.width, (unsigned)p->shape.features, output ? "<-" : "->",
                       hs_order_name(p->device.order), (unsigned)p->shape.height,
                       (unsigned)p->shape.width, (unsigned)p->shape.features,
                       (unsigned)p->hw.height, (unsigned)p->hw.width, (unsigned)p->hw.features);
    if (p->pad)
        (void)snprintf(pad, sizeof pad, "periph padding %zu->%zu",
                       output ? p->dev_bytes : p->dev_data_bytes,
                       output ? p->dev_data_bytes : p->dev_bytes);
    /* input: quantize -> transpose -> reorder -> pad; output: unpad -> reorder -> transpose
     * -> dequantize */
    const char *const order_in[4] = {quant, trans, reorder, pad};
    const char *const order_out[4] = {pad, reorder, trans, quant};
    const char *sep = "";
    for (int i = 0; i < 4; i++) {
        const char *s = output ? order_out[i] : order_in[i];
        if (s[0] == '\0') continue;
        hs_msg_append(msg, msg_size, "%s%s", sep, s);
        sep = " | ";
    }
    hs_msg_append(msg, msg_size, " [%s]", hs_isa_name(c->isa));
}

/* ------------------------------------------------------------- public API --- */
hailo_status hs_create_input_context_isa(const hailo_stream_info_t *stream_info,
                                         const hailo_transform_params_t *params, hs_isa isa,
                                         hailo_input_transform_context *context)
{
    if (context == NULL) return HAILO_INVALID_ARGUMENT;
    *context = NULL;
    hs_context *c = NULL;
    hailo_status st = context_create(stream_info, params, HAILO_H2D_STREAM, isa, &c);
    if (st == HAILO_SUCCESS) *context = (hailo_input_transform_context)(void *)c;
    return st;
}

hailo_status hs_create_output_context_isa(const hailo_stream_info_t *stream_info,
                                          const hailo_transform_params_t *params, hs_isa isa,
                                          hailo_output_transform_context *context)
{
    if (context == NULL) return HAILO_INVALID_ARGUMENT;
    *context = NULL;
    hs_context *c = NULL;
    hailo_status st = context_create(stream_info, params, HAILO_D2H_STREAM, isa, &c);
    if (st == HAILO_SUCCESS) *context = (hailo_output_transform_context)(void *)c;
    return st;
}

hailo_status hailo_create_input_transform_context(const hailo_stream_info_t *stream_info,
                                                  const hailo_transform_params_t *params,
                                                  hailo_input_transform_context *context)
{
    return hs_create_input_context_isa(stream_info, params, hs_detect_isa(), context);
}

hailo_status hailo_create_output_transform_context(const hailo_stream_info_t *stream_info,
                                                   const hailo_transform_params_t *params,
                                                   hailo_output_transform_context *context)
{
    return hs_create_output_context_isa(stream_info, params, hs_detect_isa(), context);
}

hailo_status hailo_release_input_transform_context(hailo_input_transform_context context)
{
    if (context != NULL) context_free(&context->c);
    return HAILO_SUCCESS;
}

hailo_status hailo_release_output_transform_context(hailo_output_transform_context context)
{
    if (context != NULL) context_free(&context->c);
    return HAILO_SUCCESS;
}

hailo_status hailo_transform_frame_by_input_transform_context(
    hailo_input_transform_context context, const void *src, size_t src_size, void *dst,
    size_t dst_size)
{
    if (context == NULL) return HAILO_INVALID_ARGUMENT;
    const hs_context *c = &context->c;
    return context_run(c, src, src_size, dst, dst_size, c->plan.host_bytes, c->plan.dev_bytes, 0);
}

hailo_status hailo_transform_frame_by_output_transform_context(
    hailo_output_transform_context context, const void *src, size_t src_size, void *dst,
    size_t dst_size)
{
    if (context == NULL) return HAILO_INVALID_ARGUMENT;
    const hs_context *c = &context->c;
    return context_run(c, src, src_size, dst, dst_size, c->plan.dev_bytes, c->plan.host_bytes, 1);
}

size_t hailo_input_transform_context_get_src_frame_size(hailo_input_transform_context context)
{
    return context == NULL ? 0 : context->c.plan.host_bytes;
}

size_t hailo_input_transform_context_get_dst_frame_size(hailo_input_transform_context context)
{
    return context == NULL ? 0 : context->c.plan.dev_bytes;
}

size_t hailo_output_transform_context_get_src_frame_size(hailo_output_transform_context context)
{
    return context == NULL ? 0 : context->c.plan.dev_bytes;
}

size_t hailo_output_transform_context_get_dst_frame_size(hailo_output_transform_context context)
{
    return context == NULL ? 0 : context->c.plan.host_bytes;
}

hailo_status hailo_describe_input_transform_context(hailo_input_transform_context context,
                                                    char *msg, size_t msg_size)
{
    if (context == NULL || msg == NULL || msg_size == 0) return HAILO_INVALID_ARGUMENT;
    describe(&context->c, 0, msg, msg_size);
    return HAILO_SUCCESS;
}

hailo_status hailo_describe_output_transform_context(hailo_output_transform_context context,
                                                     char *msg, size_t msg_size)
{
    if (context == NULL || msg == NULL || msg_size == 0) return HAILO_INVALID_ARGUMENT;
    describe(&context->c, 1, msg, msg_size);
    return HAILO_SUCCESS;
}
