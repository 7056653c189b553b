/*
 * hs_runs.h - element conversions over contiguous runs: the inner loops of every kernel.
 *
 * Plain C loops over restrict pointers that GCC and clang vectorize (quantize: maxps, minps,
 * divps/mulps, addps and the magic-add rounding; dequantize: cvtdq2ps, subps, mulps). They are
 * always inlined, so a kernel instantiated for one op and one ISA (see layouts_*_impl.h)
 * gets a loop specialized for both. `op` is a compile-time constant at every call site.
 */
#ifndef HS_RUNS_H
#define HS_RUNS_H

#include "hs_internal.h"

HS_AI size_t hs_op_src_size(hs_op op)
{
    switch (op) {
    case HS_OP_Q8_DIV:
    case HS_OP_Q8_MUL:
    case HS_OP_Q16_DIV:
    case HS_OP_Q16_MUL: return 4;
    case HS_OP_COPY16:
    case HS_OP_DQ16: return 2;
    default: return 1;
    }
}

HS_AI size_t hs_op_dst_size(hs_op op)
{
    switch (op) {
    case HS_OP_Q8_DIV:
    case HS_OP_Q8_MUL:
    case HS_OP_COPY8: return 1;
    case HS_OP_DQ8:
    case HS_OP_DQ16: return 4;
    default: return 2;
    }
}

HS_AI int hs_op_is_dequantize(hs_op op) { return op == HS_OP_DQ8 || op == HS_OP_DQ16; }
HS_AI int hs_op_divides(hs_op op) { return op == HS_OP_Q8_DIV || op == HS_OP_Q16_DIV; }

HS_AI void hs_run_q8(const float *restrict s, uint8_t *restrict d, size_t n, const hs_quant *q,
                     int div)
{
    const float lo = q->lo, hi = q->hi, scale = q->scale, zp = q->zp, vmax = q->vmax;
    if (q->clamp)
        for (size_t i = 0; i < n; i++)
            d[i] = (uint8_t)hs_quant1(s[i], lo, hi, scale, zp, vmax, div, 1);
    else
        for (size_t i = 0; i < n; i++)
            d[i] = (uint8_t)hs_quant1(s[i], lo, hi, scale, zp, vmax, div, 0);
}

HS_AI void hs_run_q16(const float *restrict s, uint16_t *restrict d, size_t n, const hs_quant *q,
                      int div)
{
    const float lo = q->lo, hi = q->hi, scale = q->scale, zp = q->zp, vmax = q->vmax;
    if (q->clamp)
        for (size_t i = 0; i < n; i++)
            d[i] = (uint16_t)hs_quant1(s[i], lo, hi, scale, zp, vmax, div, 1);
    else
        for (size_t i = 0; i < n; i++)
            d[i] = (uint16_t)hs_quant1(s[i], lo, hi, scale, zp, vmax, div, 0);
}

HS_AI void hs_run_widen(const uint8_t *restrict s, uint16_t *restrict d, size_t n)
{
    for (size_t i = 0; i < n; i++) d[i] = s[i];
}

HS_AI void hs_run_dq8(const uint8_t *restrict s, float *restrict d, size_t n, float zp, float sc)
{
    for (size_t i = 0; i < n; i++) d[i] = hs_dequant1((float)s[i], zp, sc);
}

HS_AI void hs_run_dq16(const uint16_t *restrict s, float *restrict d, size_t n, float zp, float sc)
{
    for (size_t i = 0; i < n; i++) d[i] = hs_dequant1((float)s[i], zp, sc);
}

/* Per-feature dequantize: element i uses zpv[i], scv[i]. */
HS_AI void hs_run_dq8_pf(const uint8_t *restrict s, float *restrict d, size_t n,
                         const float *restrict zpv, const float *restrict scv)
{
    for (size_t i = 0; i < n; i++) d[i] = hs_dequant1((float)s[i], zpv[i], scv[i]);
}

HS_AI void hs_run_dq16_pf(const uint16_t *restrict s, float *restrict d, size_t n,
                          const float *restrict zpv, const float *restrict scv)
{
    for (size_t i = 0; i < n; i++) d[i] = hs_dequant1((float)s[i], zpv[i], scv[i]);
}

/* n elements from src to dst with one op; q for quantize, (zp, sc) for dequantize. */
HS_AI void hs_run(hs_op op, const void *src, void *dst, size_t n, const hs_quant *q, float zp,
                  float sc)
{
    switch (op) {
    case HS_OP_Q8_DIV: hs_run_q8((const float *)src, (uint8_t *)dst, n, q, 1); break;
    case HS_OP_Q8_MUL: hs_run_q8((const float *)src, (uint8_t *)dst, n, q, 0); break;
    case HS_OP_Q16_DIV: hs_run_q16((const float *)src, (uint16_t *)dst, n, q, 1); break;
    case HS_OP_Q16_MUL: hs_run_q16((const float *)src, (uint16_t *)dst, n, q, 0); break;
    case HS_OP_COPY8: memcpy(dst, src, n); break;
    case HS_OP_COPY16: memcpy(dst, src, n * 2); break;
    case HS_OP_WIDEN: hs_run_widen((const uint8_t *)src, (uint16_t *)dst, n); break;
    case HS_OP_DQ8: hs_run_dq8((const uint8_t *)src, (float *)dst, n, zp, sc); break;
    case HS_OP_DQ16: hs_run_dq16((const uint16_t *)src, (float *)dst, n, zp, sc); break;
    case HS_OP_COUNT: break;
    }
}

/* Like hs_run, dequantizing element i with (zpv[i], scv[i]). */
HS_AI void hs_run_pf(hs_op op, const void *src, void *dst, size_t n, const float *zpv,
                     const float *scv)
{
    switch (op) {
    case HS_OP_DQ8: hs_run_dq8_pf((const uint8_t *)src, (float *)dst, n, zpv, scv); break;
    case HS_OP_DQ16: hs_run_dq16_pf((const uint16_t *)src, (float *)dst, n, zpv, scv); break;
    default: hs_run(op, src, dst, n, NULL, 0.0f, 1.0f); break;
    }
}

/* One element: src[si] -> dst[di] (indices in elements). */
HS_AI void hs_elem(hs_op op, const void *src, size_t si, void *dst, size_t di, const hs_quant *q,
                   float zp, float sc)
{
    switch (op) {
    case HS_OP_Q8_DIV:
    case HS_OP_Q8_MUL:
        ((uint8_t *)dst)[di] = (uint8_t)hs_quant1(((const float *)src)[si], q->lo, q->hi, q->scale,
                                                  q->zp, q->vmax, hs_op_divides(op), 1);
        break;
    case HS_OP_Q16_DIV:
    case HS_OP_Q16_MUL:
        ((uint16_t *)dst)[di] = (uint16_t)hs_quant1(((const float *)src)[si], q->lo, q->hi,
                                                    q->scale, q->zp, q->vmax, hs_op_divides(op), 1);
        break;
    case HS_OP_COPY8: ((uint8_t *)dst)[di] = ((const uint8_t *)src)[si]; break;
    case HS_OP_COPY16: ((uint16_t *)dst)[di] = ((const uint16_t *)src)[si]; break;
    case HS_OP_WIDEN: ((uint16_t *)dst)[di] = ((const uint8_t *)src)[si]; break;
    case HS_OP_DQ8:
        ((float *)dst)[di] = hs_dequant1((float)((const uint8_t *)src)[si], zp, sc);
        break;
    case HS_OP_DQ16:
        ((float *)dst)[di] = hs_dequant1((float)((const uint16_t *)src)[si], zp, sc);
        break;
    case HS_OP_COUNT: break;
    }
}

/* Byte pointer arithmetic in elements of the op's source / destination type. */
HS_AI const void *hs_src_at(hs_op op, const void *base, size_t elems)
{
    return (const unsigned char *)base + elems * hs_op_src_size(op);
}
HS_AI void *hs_dst_at(hs_op op, void *base, size_t elems)
{
    return (unsigned char *)base + elems * hs_op_dst_size(op);
}
/* Zero n destination elements at dst[at]. Row padding is often a few bytes: those are
 * stored inline (a memset call per row costs more than the stores). */
HS_AI void hs_zero(hs_op op, void *dst, size_t at, size_t n)
{
    size_t bytes = n * hs_op_dst_size(op);
    unsigned char *p = (unsigned char *)hs_dst_at(op, dst, at);
    if (bytes > 16) {
        memset(p, 0, bytes);
        return;
    }
    const uint64_t z = 0;
    if (bytes >= 8) {
        memcpy(p, &z, 8);
        memcpy(p + bytes - 8, &z, 8);
    } else if (bytes >= 4) {
        memcpy(p, &z, 4);
        memcpy(p + bytes - 4, &z, 4);
    } else {
        for (size_t i = 0; i < bytes; i++) p[i] = 0;
    }
}

/* ------------------------------------------------------- small channel counts --- */
/* Device feature rows (feature c's W-run at c * Wh) -> W pixels of C features. C is a
 * compile-time constant at the call sites (2..8): the feature loop unrolls and the QPs sit
 * in registers (local copies: the stores could alias the caller's arrays). */
HS_AI void hs_planes_to_pixels(hs_op op, const void *S, size_t Wh, void *D, size_t W, size_t C,
                               const float *zpv, const float *scv)
{
    float z[8] = {0}, k[8] = {0};
    for (size_t c = 0; c < C; c++) {
        z[c] = zpv[c];
        k[c] = scv[c];
    }
    for (size_t w = 0; w < W; w++)
        for (size_t c = 0; c < C; c++) hs_elem(op, S, c * Wh + w, D, w * C + c, NULL, z[c], k[c]);
}

/* W host pixels of C values -> C device rows (feature c's W-run at c * Wh). */
HS_AI void hs_pixels_to_planes(hs_op op, const hs_quant *q, const void *S, void *D, size_t Wh,
                               size_t W, size_t C)
{
    const hs_quant ql = *q; /* a local copy: the stores cannot alias it */
    for (size_t w = 0; w < W; w++)
        for (size_t c = 0; c < C; c++) hs_elem(op, S, w * C + c, D, c * Wh + w, &ql, 0.0f, 1.0f);
}

/* Widens, in place, W pixels of C elements (es bytes each) stored packed at the end of a
 * device row of W * P elements into pixels of P elements: the C values (reversed when
 * `reverse`, for RGB888) then P - C zeros. The caller converts a whole host row into that
 * tail first, with the vectorized contiguous loop, instead of converting C values per
 * pixel. Forward order is safe: pixel w's source starts at W(P - C) + wC >= wP, and the
 * next pixel's at W(P - C) + (w + 1)C >= (w + 1)P, past everything pixel w writes. */
HS_AI void hs_spread(unsigned char *row, size_t es, size_t W, size_t C, size_t P, int reverse)
{
    const size_t pb = P * es, cb = C * es;
    const unsigned char *tail = row + W * (pb - cb);
    for (size_t w = 0; w < W; w++) {
        unsigned char *d = row + w * pb;
        const unsigned char *s = tail + w * cb;
        if (C <= 4) {
            /* through registers, one element at a time: no stack copy to stall on */
            uint16_t v[4];
            for (size_t c = 0; c < C; c++) {
                if (es == 1) v[c] = s[c];
                else memcpy(&v[c], s + 2 * c, 2);
            }
            for (size_t c = 0; c < C; c++) {
                uint16_t x = v[reverse ? C - 1 - c : c];
                if (es == 1) d[c] = (unsigned char)x;
                else memcpy(d + 2 * c, &x, 2);
            }
        } else {
            memmove(d, s, cb);
        }
        if (pb - cb <= 16) { /* inline, like hs_zero */
            for (size_t i = cb; i < pb; i++) d[i] = 0;
        } else {
            memset(d + cb, 0, pb - cb);
        }
    }
}

#endif /* HS_RUNS_H */
