/*
 * layouts_output_impl.h - device -> host kernels, instantiated once per ISA by layouts.c
 * (HS_SFX names the instance, HS_TGT is its target attribute, HS_AVX2 0/1).
 *
 * Dequantize uses zpv[c] / scv[c] (C entries, the single QP repeated when the stream has one)
 * wherever features interleave, and the scalar a->zp / a->scale on long single-QP runs.
 * The NHCW -> channel-last transpose is blocked in 8x8 register tiles: each tile reads
 * 8 bytes (or 8 uint16) from 8 feature rows and writes 8 features of 8 pixels.
 */

#define HS_AIT static inline __attribute__((always_inline)) HS_TGT

#if HS_HAVE_SSE2
/* The QPs of the 8 features of a tile, loaded once per tile: the stores of the tile could
 * alias the QP arrays as far as the compiler knows, so it would reload them per row. */
typedef struct {
#if HS_AVX2
    __m256 zp, sc;
#else
    __m128 zp0, zp1, sc0, sc1;
#endif
} HS_N(qp8);

HS_AIT HS_N(qp8) HS_N(qp8_load)(hs_op op, const float *zp, const float *sc)
{
    HS_N(qp8) q;
    if (hs_op_is_dequantize(op)) {
#if HS_AVX2
        q.zp = _mm256_loadu_ps(zp);
        q.sc = _mm256_loadu_ps(sc);
#else
        q.zp0 = _mm_loadu_ps(zp);
        q.zp1 = _mm_loadu_ps(zp + 4);
        q.sc0 = _mm_loadu_ps(sc);
        q.sc1 = _mm_loadu_ps(sc + 4);
#endif
    } else {
        memset(&q, 0, sizeof q);
    }
    return q;
}

/* 8 int32 codes of consecutive features -> 8 float32 at f. */
#if HS_AVX2
HS_AIT void HS_N(put8_f32)(__m256i v, float *f, const HS_N(qp8) *q)
{
    _mm256_storeu_ps(f, _mm256_mul_ps(_mm256_sub_ps(_mm256_cvtepi32_ps(v), q->zp), q->sc));
}
#else
HS_AIT void HS_N(put8_f32)(__m128i lo, __m128i hi, float *f, const HS_N(qp8) *q)
{
    _mm_storeu_ps(f, _mm_mul_ps(_mm_sub_ps(_mm_cvtepi32_ps(lo), q->zp0), q->sc0));
    _mm_storeu_ps(f + 4, _mm_mul_ps(_mm_sub_ps(_mm_cvtepi32_ps(hi), q->zp1), q->sc1));
}
#endif

/* One transposed row: 8 codes of consecutive features -> 8 host elements at d. */
HS_AIT void HS_N(put8_u8)(hs_op op, __m128i x, void *d, const HS_N(qp8) *q)
{
    const __m128i zero = _mm_setzero_si128();
    if (op == HS_OP_COPY8) {
        _mm_storel_epi64((__m128i *)d, x);
    } else if (op == HS_OP_WIDEN) {
        _mm_storeu_si128((__m128i *)d, _mm_unpacklo_epi8(x, zero));
    } else {
#if HS_AVX2
        HS_N(put8_f32)(_mm256_cvtepu8_epi32(x), (float *)d, q);
#else
        __m128i w = _mm_unpacklo_epi8(x, zero);
        HS_N(put8_f32)(_mm_unpacklo_epi16(w, zero), _mm_unpackhi_epi16(w, zero), (float *)d, q);
#endif
    }
}

HS_AIT void HS_N(put8_u16)(hs_op op, __m128i x, void *d, const HS_N(qp8) *q)
{
    if (op == HS_OP_COPY16) {
        _mm_storeu_si128((__m128i *)d, x);
    } else {
#if HS_AVX2
        HS_N(put8_f32)(_mm256_cvtepu16_epi32(x), (float *)d, q);
#else
        const __m128i zero = _mm_setzero_si128();
        HS_N(put8_f32)(_mm_unpacklo_epi16(x, zero), _mm_unpackhi_epi16(x, zero), (float *)d, q);
#endif
    }
}

/* 8 feature rows (stride ss bytes) x 8 pixels of uint8 -> 8 pixels x 8 features, host
 * rows ds bytes apart. */
HS_AIT void HS_N(tile8_u8)(hs_op op, const uint8_t *s, size_t ss, unsigned char *d, size_t ds,
                           const float *zp, const float *sc)
{
    __m128i r0 = _mm_loadl_epi64((const __m128i *)(const void *)s);
    __m128i r1 = _mm_loadl_epi64((const __m128i *)(const void *)(s + ss));
    __m128i r2 = _mm_loadl_epi64((const __m128i *)(const void *)(s + 2 * ss));
    __m128i r3 = _mm_loadl_epi64((const __m128i *)(const void *)(s + 3 * ss));
    __m128i r4 = _mm_loadl_epi64((const __m128i *)(const void *)(s + 4 * ss));
    __m128i r5 = _mm_loadl_epi64((const __m128i *)(const void *)(s + 5 * ss));
    __m128i r6 = _mm_loadl_epi64((const __m128i *)(const void *)(s + 6 * ss));
    __m128i r7 = _mm_loadl_epi64((const __m128i *)(const void *)(s + 7 * ss));
    __m128i a0 = _mm_unpacklo_epi8(r0, r1), a1 = _mm_unpacklo_epi8(r2, r3);
    __m128i a2 = _mm_unpacklo_epi8(r4, r5), a3 = _mm_unpacklo_epi8(r6, r7);
    /* b0: pixels 0-3 x features 0-3 (4 bytes per pixel), b1: pixels 4-7 x 0-3,
     * b2: pixels 0-3 x 4-7, b3: pixels 4-7 x 4-7 */
    __m128i b0 = _mm_unpacklo_epi16(a0, a1), b1 = _mm_unpackhi_epi16(a0, a1);
    __m128i b2 = _mm_unpacklo_epi16(a2, a3), b3 = _mm_unpackhi_epi16(a2, a3);
#if HS_AVX2
    if (op == HS_OP_DQ8) {
        /* [b0 | b2]: one byte shuffle zero-extends pixel p's features 0-3 (lane 0) and 4-7
         * (lane 1) to int32 in order: no final unpack stage, no separate widening */
        const __m256i lo = _mm256_inserti128_si256(_mm256_castsi128_si256(b0), b2, 1);
        const __m256i hi = _mm256_inserti128_si256(_mm256_castsi128_si256(b1), b3, 1);
        const HS_N(qp8) q = HS_N(qp8_load)(op, zp, sc);
        for (int p = 0; p < 4; p++) {
            const char k = (char)(4 * p), X = -1;
            const __m256i m = _mm256_setr_epi8(k, X, X, X, (char)(k + 1), X, X, X, (char)(k + 2), X, X, X,
                                               (char)(k + 3), X, X, X, k, X, X, X, (char)(k + 1), X, X, X,
                                               (char)(k + 2), X, X, X, (char)(k + 3), X, X, X);
            HS_N(put8_f32)(_mm256_shuffle_epi8(lo, m), (float *)(void *)(d + (size_t)p * ds), &q);
            HS_N(put8_f32)(_mm256_shuffle_epi8(hi, m), (float *)(void *)(d + (size_t)(p + 4) * ds), &q);
        }
        return;
    }
#endif
    __m128i c[4] = {_mm_unpacklo_epi32(b0, b2), _mm_unpackhi_epi32(b0, b2),
                    _mm_unpacklo_epi32(b1, b3), _mm_unpackhi_epi32(b1, b3)};
    const HS_N(qp8) q = HS_N(qp8_load)(op, zp, sc);
    for (int k = 0; k < 4; k++) { /* c[k] holds pixels 2k and 2k+1 */
        HS_N(put8_u8)(op, c[k], d + (size_t)(2 * k) * ds, &q);
        HS_N(put8_u8)(op, _mm_unpackhi_epi64(c[k], c[k]), d + (size_t)(2 * k + 1) * ds, &q);
    }
}

HS_AIT void HS_N(tile8_u16)(hs_op op, const uint16_t *s, size_t ss, unsigned char *d, size_t ds,
                            const float *zp, const float *sc)
{
    const unsigned char *p = (const unsigned char *)s;
    __m128i r0 = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i r1 = _mm_loadu_si128((const __m128i *)(const void *)(p + ss));
    __m128i r2 = _mm_loadu_si128((const __m128i *)(const void *)(p + 2 * ss));
    __m128i r3 = _mm_loadu_si128((const __m128i *)(const void *)(p + 3 * ss));
    __m128i r4 = _mm_loadu_si128((const __m128i *)(const void *)(p + 4 * ss));
    __m128i r5 = _mm_loadu_si128((const __m128i *)(const void *)(p + 5 * ss));
    __m128i r6 = _mm_loadu_si128((const __m128i *)(const void *)(p + 6 * ss));
    __m128i r7 = _mm_loadu_si128((const __m128i *)(const void *)(p + 7 * ss));
    __m128i a0 = _mm_unpacklo_epi16(r0, r1), a1 = _mm_unpackhi_epi16(r0, r1);
    __m128i a2 = _mm_unpacklo_epi16(r2, r3), a3 = _mm_unpackhi_epi16(r2, r3);
    __m128i a4 = _mm_unpacklo_epi16(r4, r5), a5 = _mm_unpackhi_epi16(r4, r5);
    __m128i a6 = _mm_unpacklo_epi16(r6, r7), a7 = _mm_unpackhi_epi16(r6, r7);
    __m128i b0 = _mm_unpacklo_epi32(a0, a2), b1 = _mm_unpackhi_epi32(a0, a2);
    __m128i b2 = _mm_unpacklo_epi32(a4, a6), b3 = _mm_unpackhi_epi32(a4, a6);
    __m128i b4 = _mm_unpacklo_epi32(a1, a3), b5 = _mm_unpackhi_epi32(a1, a3);
    __m128i b6 = _mm_unpacklo_epi32(a5, a7), b7 = _mm_unpackhi_epi32(a5, a7);
    __m128i c[8] = {_mm_unpacklo_epi64(b0, b2), _mm_unpackhi_epi64(b0, b2),
                    _mm_unpacklo_epi64(b1, b3), _mm_unpackhi_epi64(b1, b3),
                    _mm_unpacklo_epi64(b4, b6), _mm_unpackhi_epi64(b4, b6),
                    _mm_unpacklo_epi64(b5, b7), _mm_unpackhi_epi64(b5, b7)};
    const HS_N(qp8) q = HS_N(qp8_load)(op, zp, sc);
    for (int k = 0; k < 8; k++) HS_N(put8_u16)(op, c[k], d + (size_t)k * ds, &q);
}
#endif /* HS_HAVE_SSE2 */

/* C device rows of Wh (feature c's W-run at c * Wh) -> one host row of W pixels x C. */
HS_AIT void HS_N(planes_to_row)(hs_op op, const hs_kargs *a, const void *S, void *D, size_t W,
                                size_t C, size_t Wh)
{
    const float *zpv = a->zpv, *scv = a->scv;
    if (C == 1) {
        hs_run(op, S, D, W, NULL, zpv[0], scv[0]);
        return;
    }
#if HS_HAVE_SSE2
    if (C >= 8 && W >= 8) {
        const size_t es = hs_op_src_size(op), ed = hs_op_dst_size(op);
        for (size_t w0 = 0; w0 < W; w0 += 8) {
            /* last blocks overlap the previous ones: the same values written twice, no tail */
            size_t w = w0 + 8 <= W ? w0 : W - 8;
            for (size_t c0 = 0; c0 < C; c0 += 8) {
                size_t c = c0 + 8 <= C ? c0 : C - 8;
                const unsigned char *s = (const unsigned char *)S + (c * Wh + w) * es;
                unsigned char *d = (unsigned char *)D + (w * C + c) * ed;
                if (es == 1)
                    HS_N(tile8_u8)(op, (const uint8_t *)(const void *)s, Wh, d, C * ed, zpv + c,
                                   scv + c);
                else
                    HS_N(tile8_u16)(op, (const uint16_t *)(const void *)s, Wh * 2, d, C * ed,
                                    zpv + c, scv + c);
            }
        }
        return;
    }
#endif
    switch (C) { /* small C, or rows shorter than a tile: the feature loop unrolled */
    case 2: hs_planes_to_pixels(op, S, Wh, D, W, 2, zpv, scv); return;
    case 3: hs_planes_to_pixels(op, S, Wh, D, W, 3, zpv, scv); return;
    case 4: hs_planes_to_pixels(op, S, Wh, D, W, 4, zpv, scv); return;
    case 5: hs_planes_to_pixels(op, S, Wh, D, W, 5, zpv, scv); return;
    case 6: hs_planes_to_pixels(op, S, Wh, D, W, 6, zpv, scv); return;
    case 7: hs_planes_to_pixels(op, S, Wh, D, W, 7, zpv, scv); return;
    case 8: hs_planes_to_pixels(op, S, Wh, D, W, 8, zpv, scv); return;
    default: break;
    }
    for (size_t w = 0; w < W; w++)
        for (size_t c = 0; c < C; c++) hs_elem(op, S, c * Wh + w, D, w * C + c, NULL, zpv[c], scv[c]);
}

/* NHCW device -> channel-last host */
HS_AIT void HS_N(out_nhcw)(hs_op op, const hs_kargs *a, const void *src, void *dst)
{
    const size_t W = a->W, C = a->C, Wh = a->Wh, srow = a->Ch * Wh;
    for (size_t h = 0; h < a->H; h++)
        HS_N(planes_to_row)(op, a, hs_src_at(op, src, h * srow), hs_dst_at(op, dst, h * W * C), W,
                            C, Wh);
}

/* NHCW device -> NCHW / NHCW host: every (h, c) one W-run with QP[c] */
HS_AIT void HS_N(out_planar)(hs_op op, const hs_kargs *a, const void *src, void *dst)
{
    const size_t W = a->W, C = a->C, Wh = a->Wh, srow = a->Ch * Wh;
    for (size_t h = 0; h < a->H; h++)
        for (size_t c = 0; c < C; c++)
            hs_run(op, hs_src_at(op, src, h * srow + c * Wh),
                   hs_dst_at(op, dst, h * a->host_hs + c * a->host_cs), W, NULL, a->zpv[c],
                   a->scv[c]);
}

/* NHWC / FCR / NC / NHW device -> channel-last host */
HS_AIT void HS_N(out_cl)(hs_op op, const hs_kargs *a, const void *src, void *dst)
{
    const size_t H = a->H, W = a->W, C = a->C, Wh = a->Wh, Ch = a->Ch, srow = Wh * Ch;
    if (!a->per_feature && C == Ch && W == Wh) {
        hs_run(op, src, dst, H * W * C, NULL, a->zp, a->scale);
        return;
    }
    for (size_t h = 0; h < H; h++) {
        const void *S = hs_src_at(op, src, h * srow);
        void *D = hs_dst_at(op, dst, h * W * C);
        if (!a->per_feature && C == Ch) {
            hs_run(op, S, D, W * C, NULL, a->zp, a->scale);
        } else if (C <= 4) { /* per pixel runs would be mostly loop overhead */
            const float *zpv = a->zpv, *scv = a->scv;
            for (size_t w = 0; w < W; w++)
                for (size_t c = 0; c < C; c++)
                    hs_elem(op, S, w * Ch + c, D, w * C + c, NULL, zpv[c], scv[c]);
        } else {
            for (size_t w = 0; w < W; w++)
                hs_run_pf(op, hs_src_at(op, S, w * Ch), hs_dst_at(op, D, w * C), C, a->zpv, a->scv);
        }
    }
}

/* F8CR device (row h, group g, pixel w, 8 values) -> channel-last host: per group, its W
 * runs of 8 codes become 8 consecutive features of W host pixels. */
HS_AIT void HS_N(out_f8cr)(hs_op op, const hs_kargs *a, const void *src, void *dst)
{
    const size_t W = a->W, C = a->C, Wh = a->Wh, G = a->Ch / 8, ed = hs_op_dst_size(op);
    for (size_t h = 0; h < a->H; h++) {
        for (size_t g = 0; g < G && 8 * g < C; g++) {
            const size_t c0 = 8 * g, n = C - c0 < 8 ? C - c0 : 8;
            const void *S = hs_src_at(op, src, (h * G + g) * Wh * 8);
            unsigned char *D = (unsigned char *)hs_dst_at(op, dst, h * W * C + c0);
#if HS_HAVE_SSE2
            if (n == 8) {
                const HS_N(qp8) q = HS_N(qp8_load)(op, a->zpv + c0, a->scv + c0);
                for (size_t w = 0; w < W; w++) {
                    const void *s = hs_src_at(op, S, w * 8);
                    if (hs_op_src_size(op) == 1)
                        HS_N(put8_u8)(op, _mm_loadl_epi64((const __m128i *)s), D + w * C * ed, &q);
                    else
                        HS_N(put8_u16)(op, _mm_loadu_si128((const __m128i *)s), D + w * C * ed, &q);
                }
                continue;
            }
#endif
            const float *zpv = a->zpv + c0, *scv = a->scv + c0;
            for (size_t w = 0; w < W; w++)
                for (size_t i = 0; i < n; i++)
                    hs_elem(op, S, w * 8 + i, D, w * C + i, NULL, zpv[i], scv[i]);
        }
    }
}

#define HS_OUT_INSTANCE(layout, op)                                                          \
    HS_TGT static void HS_N(layout##_##op)(const hs_kargs *a, const void *s, void *d)        \
    {                                                                                        \
        HS_N(layout)(op, a, s, d);                                                           \
    }
#define HS_OUT_ALL_OPS(X, layout)                                                            \
    X(layout, HS_OP_DQ8)                                                                     \
    X(layout, HS_OP_DQ16)                                                                    \
    X(layout, HS_OP_COPY8)                                                                   \
    X(layout, HS_OP_COPY16)                                                                  \
    X(layout, HS_OP_WIDEN)

HS_OUT_ALL_OPS(HS_OUT_INSTANCE, out_cl)
HS_OUT_ALL_OPS(HS_OUT_INSTANCE, out_nhcw)
HS_OUT_ALL_OPS(HS_OUT_INSTANCE, out_planar)
HS_OUT_ALL_OPS(HS_OUT_INSTANCE, out_f8cr)

#define HS_OUT_ENTRY(layout, op) [op] = HS_N(layout##_##op),
static const hs_kernel_fn HS_N(out_table)[HS_OUT_COUNT][HS_OP_COUNT] = {
    [HS_OUT_CL] = {HS_OUT_ALL_OPS(HS_OUT_ENTRY, out_cl)},
    [HS_OUT_NHCW] = {HS_OUT_ALL_OPS(HS_OUT_ENTRY, out_nhcw)},
    [HS_OUT_PLANAR] = {HS_OUT_ALL_OPS(HS_OUT_ENTRY, out_planar)},
    [HS_OUT_F8CR] = {HS_OUT_ALL_OPS(HS_OUT_ENTRY, out_f8cr)},
};

#undef HS_OUT_INSTANCE
#undef HS_OUT_ALL_OPS
#undef HS_OUT_ENTRY
#undef HS_AIT
