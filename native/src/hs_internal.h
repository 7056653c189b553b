/*
 * hs_internal.h - shared internals of the stream layer (not installed, not public).
 *
 * A context is built in two steps: frame_size.c validates a (stream info, user params)
 * pair and writes an hs_plan (every decision: steps, sizes, kernel, op); transform.c turns
 * the plan into hs_kargs (the flat numbers a kernel reads) and picks a kernel from the
 * const tables of layouts.c for the CPU it runs on.
 */
#ifndef HS_INTERNAL_H
#define HS_INTERNAL_H

#include "hailo_stream.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ------------------------------------------------------------------ compiler --- */
#if defined(__GNUC__) || defined(__clang__)
#define HS_AI static inline __attribute__((always_inline))
#define HS_HIDDEN __attribute__((visibility("hidden")))
#define HS_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define HS_AI static inline
#define HS_HIDDEN
#define HS_PRINTF(f, a)
#endif

/* The baseline build must run on any x86-64 (SSE2). AVX2 kernels are compiled from the same
 * source with a target attribute and chosen at run time with __builtin_cpu_supports. */
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(HS_NO_AVX2)
#define HS_HAVE_AVX2 1
#else
#define HS_HAVE_AVX2 0
#endif
#if defined(__SSE2__) && !defined(HS_NO_SIMD)
#define HS_HAVE_SSE2 1
#else
#define HS_HAVE_SSE2 0
#endif

#if HS_HAVE_AVX2
#define HS_TARGET_AVX2 __attribute__((target("avx2")))
#endif

typedef enum { HS_ISA_BASELINE = 0, HS_ISA_AVX2 = 1 } hs_isa;

/* The best kernel set this CPU runs. */
HS_HIDDEN hs_isa hs_detect_isa(void);
HS_HIDDEN const char *hs_isa_name(hs_isa isa);

/* ---------------------------------------------------------------- element ops --- */
/* What happens to one element between the source and the destination buffer. */
typedef enum {
    HS_OP_Q8_DIV = 0, /* float32 -> uint8, c / scale                                  */
    HS_OP_Q8_MUL,     /* float32 -> uint8, c * (1/scale): only when that is exact (2^k) */
    HS_OP_Q16_DIV,    /* float32 -> uint16                                             */
    HS_OP_Q16_MUL,
    HS_OP_COPY8,      /* uint8 -> uint8                                                */
    HS_OP_COPY16,     /* uint16 -> uint16                                              */
    HS_OP_WIDEN,      /* uint8 -> uint16                                               */
    HS_OP_DQ8,        /* uint8 -> float32, (q - zp) * scale                            */
    HS_OP_DQ16,       /* uint16 -> float32                                             */
    HS_OP_COUNT
} hs_op;

/* Quantization constants of one context (identity QP already turned into lo=0, hi=max). */
typedef struct {
    float lo, hi;   /* limvals */
    float scale;    /* divisor (DIV ops) or exact reciprocal (MUL ops) */
    float zp;
    float vmax;     /* 255 or 65535 */
    int clamp;      /* 0 when v provably stays in [-0.5, vmax + 0.5): the clamp cannot act */
    int sat;        /* 1 when the limvals are exactly the codes 0 and vmax (see quantize.c):
                     * SIMD uint8 paths may skip the clip and saturate while packing */
} hs_quant;

/* 1.5 * 2^23: adding it to v in [0, 65535] rounds v half-to-even (the FPU's default
 * rounding) and leaves the integer in the low mantissa bits: bits = 0x4B400000 + round(v). */
#define HS_MAGIC_ROUND 12582912.0f

HS_AI uint32_t hs_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* The exact quantize of docs/stream-layer.md for one element; the result's low 16 bits are
 * the code. Written as ternaries in this order so SIMD max/min implement it exactly
 * (NaN x -> lo). `div` and `clamp` are compile-time constants in every caller; clamp = 0 is
 * only used when the clamp cannot change the rounded result (see hs_quant_setup). */
HS_AI uint32_t hs_quant1(float x, float lo, float hi, float scale, float zp, float vmax, int div,
                         int clamp)
{
    float c = x > lo ? x : lo;
    c = c < hi ? c : hi;
    float v = div ? c / scale : c * scale;
    v = v + zp;
    if (clamp) {
        v = v > 0.0f ? v : 0.0f;
        v = v < vmax ? v : vmax;
    }
    return hs_f32_bits(v + HS_MAGIC_ROUND);
}

HS_AI float hs_dequant1(float q, float zp, float scale) { return (q - zp) * scale; }

/* ------------------------------------------------------------------- kernels --- */
typedef enum {
    HS_IN_CL = 0,   /* channel-last host -> NHWC / FCR / NC / YUY2 device        */
    HS_IN_NHCW,     /* channel-last host (NHWC, RGB4) -> NHCW                    */
    HS_IN_PLANAR,   /* NCHW / NHCW host -> NHCW                                  */
    HS_IN_F8CR,     /* channel-last host -> F8CR                                 */
    HS_IN_RGB888,   /* NHWC (C = 3) -> RGB888                                    */
    HS_IN_NV,       /* NV12 / NV21 -> HAILO_YYUV / HAILO_YYVU                    */
    HS_IN_I420,     /* I420 -> HAILO_YYYYUV                                      */
    HS_IN_COUNT
} hs_in_layout;

typedef enum {
    HS_OUT_CL = 0,  /* NHWC / FCR / NC / NHW device -> channel-last host         */
    HS_OUT_NHCW,    /* NHCW device -> channel-last host (a per-row transpose)    */
    HS_OUT_PLANAR,  /* NHCW device -> NCHW / NHCW host                           */
    HS_OUT_F8CR,    /* F8CR device -> channel-last host                          */
    HS_OUT_COUNT
} hs_out_layout;

/* Everything a layout kernel reads. Sizes in elements unless named _bytes. */
typedef struct {
    size_t H, W, C;        /* logical shape (NHW: C = 1)                      */
    size_t Hh, Wh, Ch;     /* device hw_shape                                 */
    size_t host_row;       /* host channel-last row stride (RGB4: aligned)    */
    size_t host_hs;        /* planar host: stride of a row h                  */
    size_t host_cs;        /* planar host: stride of a feature c              */
    size_t dev_bytes;      /* device frame, payload + periph padding          */
    hs_quant q;            /* input quantize                                  */
    float zp, scale;       /* output dequantize, single QP                    */
    const float *zpv;      /* output dequantize, QP of feature c, C entries   */
    const float *scv;
    int per_feature;       /* zpv/scv differ between features                 */
} hs_kargs;

typedef void (*hs_kernel_fn)(const hs_kargs *a, const void *src, void *dst);

/* Kernel tables, [layout][op]; NULL where the pair does not exist. */
HS_HIDDEN hs_kernel_fn hs_input_kernel(hs_isa isa, hs_in_layout layout, hs_op op);
HS_HIDDEN hs_kernel_fn hs_output_kernel(hs_isa isa, hs_out_layout layout, hs_op op);

/* Contiguous runs (quantize.c), used by the public quantize / dequantize functions. */
HS_HIDDEN void hs_quantize_run(hs_isa isa, hs_op op, const float *src, void *dst, size_t n,
                               const hs_quant *q);
HS_HIDDEN void hs_dequantize_run(hs_isa isa, hs_op op, const void *src, float *dst, size_t n,
                                 float zp, float scale);

/* quant_info -> hs_quant and the op (DIV or MUL) for a float32 -> dst_type quantize. */
HS_HIDDEN void hs_quant_setup(const hailo_quant_info_t *qi, hailo_format_type_t dst_type,
                              hs_quant *q, hs_op *op);
/* A QP whose scale is finite and > 0 (docs/stream-layer.md, status codes). */
HS_HIDDEN int hs_qp_valid(const hailo_quant_info_t *qi);
/* scale 1 and zp 0: quantize is a rounding cast, the limvals are not used. */
HS_HIDDEN int hs_qp_is_identity(const hailo_quant_info_t *qi);
/* limvals_min <= limvals_max, neither NaN: the only limvals a quantize step accepts. */
HS_HIDDEN int hs_qp_limvals_ordered(const hailo_quant_info_t *qi);

/* -------------------------------------------------------------------- plans --- */
typedef enum {
    HS_KIND_COPY = 0,     /* byte copy of the whole frame (no step, or NO_TRANSFORM, raw NMS) */
    HS_KIND_PIXELS,       /* a layout kernel                                                  */
    HS_KIND_NMS_BY_CLASS,
    HS_KIND_NMS_BY_SCORE
} hs_kind;

typedef struct {
    hailo_format_t device;       /* the stream's format                          */
    hailo_format_t user;         /* the user format, AUTO resolved               */
    hailo_3d_image_shape_t shape, hw;
    int no_transform;            /* HAILO_STREAM_NO_TRANSFORM: raw device frames */
    int quantize, transpose, reorder, pad; /* the steps that run                */
    hs_kind kind;
    int layout;                  /* hs_in_layout or hs_out_layout                */
    hs_op op;
    size_t host_bytes;           /* user frame                                   */
    size_t dev_data_bytes;       /* device payload before periph padding         */
    size_t dev_bytes;            /* device frame (hw_frame_size)                 */
    size_t host_row;             /* channel-last host row stride, elements       */
    size_t host_hs, host_cs;     /* planar host strides, elements                */
    /* TRANSPOSED: the host buffer is (planes, A, M, B) of es-byte elements with rows of
     * `row_bytes`; the logical buffer is (planes, B, M, A), packed. */
    size_t tr_planes, tr_a, tr_m, tr_b, tr_es, tr_row_bytes;
    hailo_quant_info_t qp;                /* the single QP that applies         */
    const hailo_quant_info_t *qps;        /* per-feature (outputs), borrowed    */
    uint32_t qps_count;
    hailo_nms_info_t nms;
    uint32_t nms_total;                   /* by-score cap                       */
} hs_plan;

/* Validates and decides. want_direction: HAILO_H2D_STREAM, HAILO_D2H_STREAM, or -1 for
 * the stream's own direction. On failure writes a message naming the stream. */
HS_HIDDEN hailo_status hs_plan_build(const hailo_stream_info_t *si,
                                     const hailo_transform_params_t *params, int want_direction,
                                     hs_plan *plan, char *msg, size_t msg_size);

HS_HIDDEN const char *hs_type_name(hailo_format_type_t t);
HS_HIDDEN const char *hs_order_name(hailo_format_order_t o);
/* snprintf into msg (NULL / 0 allowed), returns status. */
HS_HIDDEN hailo_status hs_msg(hailo_status status, char *msg, size_t msg_size, const char *fmt,
                              ...) HS_PRINTF(4, 5);
/* Appends to a NUL-terminated message, truncating. */
HS_HIDDEN void hs_msg_append(char *msg, size_t msg_size, const char *fmt, ...) HS_PRINTF(3, 4);

/* Context creation with a chosen kernel set (tests and the benchmark compare ISAs). */
HS_HIDDEN hailo_status hs_create_input_context_isa(const hailo_stream_info_t *stream_info,
                                                   const hailo_transform_params_t *params,
                                                   hs_isa isa,
                                                   hailo_input_transform_context *context);
HS_HIDDEN hailo_status hs_create_output_context_isa(const hailo_stream_info_t *stream_info,
                                                    const hailo_transform_params_t *params,
                                                    hs_isa isa,
                                                    hailo_output_transform_context *context);

/* ---------------------------------------------------------------------- NMS --- */
/* Bytes of workspace hs_nms_decode needs for this nms_info (0 if it does not fit size_t):
 * by class, one offset per chunk; by score also the best min(total, proposals the frame can
 * hold) detections. Never more than the frame's payload has room for. */
HS_HIDDEN size_t hs_nms_workspace_size(const hailo_nms_info_t *nms, int by_score);
/* The bytes the counts of a valid frame can reach: chunks * classes * (2 + max_bboxes_per_class
 * * bbox_size); 0 on overflow. */
HS_HIDDEN size_t hs_nms_payload_bytes(const hailo_nms_info_t *nms);
/* HailoRT's device frame size (hailo_get_hw_frame_size of an NMS stream); 0 on overflow. */
HS_HIDDEN size_t hs_nms_frame_bytes(const hailo_nms_info_t *nms);
/* Host-side maxima: per class chunks * max_bboxes_per_class; by-score total max_bboxes_total
 * or classes * that (saturating at UINT64_MAX). */
HS_HIDDEN uint64_t hs_nms_host_per_class(const hailo_nms_info_t *nms);
HS_HIDDEN uint64_t hs_nms_total(const hailo_nms_info_t *nms);
/* Bytes of a HAILO_NMS_BY_CLASS frame: classes * (1 + 5 * per class) * 4; 0 on overflow. */
HS_HIDDEN size_t hs_nms_by_class_bytes(const hailo_nms_info_t *nms);
/* Decodes one device frame (src_size >= hs_nms_payload_bytes) into a host frame of dst_size
 * bytes. workspace: hs_nms_workspace_size bytes, 8-byte aligned. */
HS_HIDDEN hailo_status hs_nms_decode(const void *src, size_t src_size, void *dst, size_t dst_size,
                                     const hailo_nms_info_t *nms, const hailo_quant_info_t *qp,
                                     int by_score, void *workspace);

/* ---------------------------------------------------------------- utilities --- */
/* a * b into *out; 0 on overflow. */
HS_AI int hs_mul(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}

HS_AI size_t hs_align_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

/* strlen bounded by max (strnlen is POSIX, not C11). */
HS_AI size_t hs_strnlen(const char *s, size_t max)
{
    size_t n = 0;
    while (n < max && s[n] != '\0') n++;
    return n;
}

/* Whether [a, a+an) and [b, b+bn) share a byte. */
HS_AI int hs_overlap(const void *a, size_t an, const void *b, size_t bn)
{
    uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
    return an != 0 && bn != 0 && x < y + bn && y < x + an;
}

#endif /* HS_INTERNAL_H */
