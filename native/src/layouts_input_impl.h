/*
 * layouts_input_impl.h - host -> device kernels, instantiated once per ISA by layouts.c
 * (HS_SFX names the instance, HS_TGT is its target attribute, HS_AVX2 is 0 or 1).
 *
 * Every kernel makes one pass: it reads the host frame once and writes every byte of the
 * device frame once (payload, zero padding of hw_shape, periph padding). The element op is a
 * compile-time constant in each instance (see HS_IN_INSTANCE below), so the inner loops of
 * hs_runs.h are specialized per (source type, destination type) and vectorized.
 */

#define HS_AIT static inline __attribute__((always_inline)) HS_TGT

/* Zero the device frame from byte `from` to its end (rows past H, periph padding). */
HS_AIT void HS_N(zero_tail)(const hs_kargs *a, void *dst, size_t from)
{
    if (from < a->dev_bytes) memset((unsigned char *)dst + from, 0, a->dev_bytes - from);
}

#if HS_HAVE_SSE2
/* The quantize constants as vectors. */
typedef struct {
    __m128 lo, hi, scale, zp, vmax, zero, cap;
#if HS_AVX2
    __m256 lo8, hi8, scale8, zp8, vmax8, zero8, cap8;
#endif
} HS_N(vq);

HS_AIT void HS_N(vq_init)(HS_N(vq) *v, const hs_quant *q)
{
    v->lo = _mm_set1_ps(q->lo);
    v->hi = _mm_set1_ps(q->hi);
    v->scale = _mm_set1_ps(q->scale);
    v->zp = _mm_set1_ps(q->zp);
    v->vmax = _mm_set1_ps(q->vmax);
    v->zero = _mm_setzero_ps();
    v->cap = _mm_set1_ps(65536.0f);
#if HS_AVX2
    v->lo8 = _mm256_set1_ps(q->lo);
    v->hi8 = _mm256_set1_ps(q->hi);
    v->scale8 = _mm256_set1_ps(q->scale);
    v->zp8 = _mm256_set1_ps(q->zp);
    v->vmax8 = _mm256_set1_ps(q->vmax);
    v->zero8 = _mm256_setzero_ps();
    v->cap8 = _mm256_set1_ps(65536.0f);
#endif
}

/* hs_quant1 on a vector, in one of three modes (compile-time constants):
 *   0: clip to [lo, hi], then clamp v to [0, vmax]
 *   1: clip only (hs_quant.clamp == 0: the clamp cannot act)
 *   2: neither (hs_quant.sat == 1): the caller's saturating packs do the clamp; v is only
 *      capped below 2^31 so that CVTPS2DQ stays exact, min(cap, v) keeping NaN (-> INT_MIN
 *      -> code 0).
 * max(x, lo) is exactly "x > lo ? x : lo" (MAXPS returns its second operand on NaN or
 * equality), min(c, hi) is "c < hi ? c : hi". CVTPS2DQ rounds half to even in the default
 * rounding mode, like the magic add of the scalar code. Result: int32 codes. */
HS_AIT __m128i HS_N(quant4)(__m128 x, const HS_N(vq) *v, int div, int mode)
{
    __m128 c = mode == 2 ? x : _mm_min_ps(_mm_max_ps(x, v->lo), v->hi);
    __m128 t = div ? _mm_div_ps(c, v->scale) : _mm_mul_ps(c, v->scale);
    t = _mm_add_ps(t, v->zp);
    if (mode == 0) t = _mm_min_ps(_mm_max_ps(t, v->zero), v->vmax);
    if (mode == 2) t = _mm_min_ps(v->cap, t);
    return _mm_cvtps_epi32(t);
}

/* 48 interleaved bytes (x0 y0 z0 x1 ...) in t00..t02 -> 16 bytes of each channel. A network
 * of byte unpacks (SSE2 has no byte shuffle): each round moves every element one step
 * closer to its plane; four rounds sort three channels. */
HS_AIT void HS_N(deinterleave3)(__m128i t00, __m128i t01, __m128i t02, uint8_t *d0, uint8_t *d1,
                                uint8_t *d2)
{
    __m128i t10 = _mm_unpacklo_epi8(t00, _mm_unpackhi_epi64(t01, t01));
    __m128i t11 = _mm_unpacklo_epi8(_mm_unpackhi_epi64(t00, t00), t02);
    __m128i t12 = _mm_unpacklo_epi8(t01, _mm_unpackhi_epi64(t02, t02));
    __m128i t20 = _mm_unpacklo_epi8(t10, _mm_unpackhi_epi64(t11, t11));
    __m128i t21 = _mm_unpacklo_epi8(_mm_unpackhi_epi64(t10, t10), t12);
    __m128i t22 = _mm_unpacklo_epi8(t11, _mm_unpackhi_epi64(t12, t12));
    __m128i t30 = _mm_unpacklo_epi8(t20, _mm_unpackhi_epi64(t21, t21));
    __m128i t31 = _mm_unpacklo_epi8(_mm_unpackhi_epi64(t20, t20), t22);
    __m128i t32 = _mm_unpacklo_epi8(t21, _mm_unpackhi_epi64(t22, t22));
    _mm_storeu_si128((__m128i *)(void *)d0, _mm_unpacklo_epi8(t30, _mm_unpackhi_epi64(t31, t31)));
    _mm_storeu_si128((__m128i *)(void *)d1,
                     _mm_unpacklo_epi8(_mm_unpackhi_epi64(t30, t30), t32));
    _mm_storeu_si128((__m128i *)(void *)d2, _mm_unpacklo_epi8(t31, _mm_unpackhi_epi64(t32, t32)));
}

/* 16 pixels of 3 channels -> 16 uint8 codes in each of three device rows. */
HS_AIT void HS_N(cl3_block16)(hs_op op, const void *s, uint8_t *d0, uint8_t *d1, uint8_t *d2,
                              const HS_N(vq) *v, int mode)
{
    __m128i b0, b1, b2;
    if (op == HS_OP_COPY8) {
        const __m128i *p = (const __m128i *)s;
        b0 = _mm_loadu_si128(p);
        b1 = _mm_loadu_si128(p + 1);
        b2 = _mm_loadu_si128(p + 2);
    } else {
        const float *f = (const float *)s;
        int div = op == HS_OP_Q8_DIV;
        __m128i r[12];
        for (int k = 0; k < 12; k++) r[k] = HS_N(quant4)(_mm_loadu_ps(f + 4 * k), v, div, mode);
        /* codes are 0..255: signed 32->16 then unsigned 16->8 packs are exact */
        b0 = _mm_packus_epi16(_mm_packs_epi32(r[0], r[1]), _mm_packs_epi32(r[2], r[3]));
        b1 = _mm_packus_epi16(_mm_packs_epi32(r[4], r[5]), _mm_packs_epi32(r[6], r[7]));
        b2 = _mm_packus_epi16(_mm_packs_epi32(r[8], r[9]), _mm_packs_epi32(r[10], r[11]));
    }
    HS_N(deinterleave3)(b0, b1, b2, d0, d1, d2);
}

#if HS_AVX2
HS_AIT __m256i HS_N(quant8)(__m256 x, const HS_N(vq) *v, int div, int mode)
{
    __m256 c = mode == 2 ? x : _mm256_min_ps(_mm256_max_ps(x, v->lo8), v->hi8);
    __m256 t = div ? _mm256_div_ps(c, v->scale8) : _mm256_mul_ps(c, v->scale8);
    t = _mm256_add_ps(t, v->zp8);
    if (mode == 0) t = _mm256_min_ps(_mm256_max_ps(t, v->zero8), v->vmax8);
    if (mode == 2) t = _mm256_min_ps(v->cap8, t);
    return _mm256_cvtps_epi32(t);
}

/* 32 pixels of 3 channels -> 32 uint8 values in each of three device rows. The 96 source
 * elements are quantized in order and packed to bytes (y0..y2). Regrouped as 16-byte lanes
 * [0|3], [1|4], [2|5], both lanes of a register start at a multiple of 48 bytes, i.e. on the
 * same channel, so one byte shuffle per register and channel, OR-ed, gathers a channel. */
HS_AIT void HS_N(cl3_block32)(hs_op op, const void *s, uint8_t *d0, uint8_t *d1, uint8_t *d2,
                              const HS_N(vq) *v, int mode)
{
    __m256i y[3];
    if (op == HS_OP_COPY8) {
        const __m256i *p = (const __m256i *)s;
        for (int k = 0; k < 3; k++) y[k] = _mm256_loadu_si256(p + k);
    } else {
        const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        const float *f = (const float *)s;
        int div = op == HS_OP_Q8_DIV;
        for (int k = 0; k < 3; k++) {
            __m256i q0 = HS_N(quant8)(_mm256_loadu_ps(f + 32 * k), v, div, mode);
            __m256i q1 = HS_N(quant8)(_mm256_loadu_ps(f + 32 * k + 8), v, div, mode);
            __m256i q2 = HS_N(quant8)(_mm256_loadu_ps(f + 32 * k + 16), v, div, mode);
            __m256i q3 = HS_N(quant8)(_mm256_loadu_ps(f + 32 * k + 24), v, div, mode);
            /* signed 32->16 then unsigned 16->8 saturating packs (the clamp of mode 2), in
             * lanes; the dword permute restores element order */
            __m256i p = _mm256_packus_epi16(_mm256_packs_epi32(q0, q1), _mm256_packs_epi32(q2, q3));
            y[k] = _mm256_permutevar8x32_epi32(p, order);
        }
    }
    __m256i a = _mm256_blend_epi32(y[0], y[1], 0xF0);    /* lanes 0 | 3 */
    __m256i b = _mm256_permute2x128_si256(y[0], y[2], 0x21); /* lanes 1 | 4 */
    __m256i c = _mm256_blend_epi32(y[1], y[2], 0xF0);    /* lanes 2 | 5 */
#define HS_X -1
#define HS_M(...) _mm256_setr_epi8(__VA_ARGS__, __VA_ARGS__)
    const __m256i r0 = HS_M(0, 3, 6, 9, 12, 15, HS_X, HS_X, HS_X, HS_X, HS_X, HS_X, HS_X, HS_X, HS_X, HS_X);
    const __m256i r1 = HS_M(HS_X, HS_X, HS_X, HS_X, HS_X, HS_X, 2, 5, 8, 11, 14, HS_X, HS_X, HS_X, HS_X, HS_X);
    const __m256i r2 = HS_M(HS_X, HS_X, HS_X, HS_X, HS_X, HS_X, HS_X, HS_X, HS_X, HS_X, HS_X, 1, 4, 7, 10, 13);
    const __m256i g0 = HS_M(1, 4, 7, 10, 13, HS_X, HS_X, HS_X, HS_X, HS_X, HS_X, HS_X, HS_X, HS_X, HS_X, HS_X);
    const __m256i g1 = HS_M(HS_X, HS_X, HS_X, HS_X, HS_X, 0, 3, 6, 9, 12, 15, HS_X, HS_X, HS_X, HS_X, HS_X);
    const __m256i g2 = HS_M(HS_X, HS_X, HS_X, HS_X, HS_X, HS_X, HS_X, HS_X, HS_X, HS_X, HS_X, 2, 5, 8, 11, 14);
    const __m256i b0 = HS_M(2, 5, 8, 11, 14, HS_X, HS_X, HS_X, HS_X, HS_X, HS_X, HS_X, HS_X, HS_X, HS_X, HS_X);
    const __m256i b1 = HS_M(HS_X, HS_X, HS_X, HS_X, HS_X, 1, 4, 7, 10, 13, HS_X, HS_X, HS_X, HS_X, HS_X, HS_X);
    const __m256i b2 = HS_M(HS_X, HS_X, HS_X, HS_X, HS_X, HS_X, HS_X, HS_X, HS_X, HS_X, 0, 3, 6, 9, 12, 15);
#undef HS_M
#undef HS_X
    __m256i R = _mm256_or_si256(_mm256_or_si256(_mm256_shuffle_epi8(a, r0), _mm256_shuffle_epi8(b, r1)),
                                _mm256_shuffle_epi8(c, r2));
    __m256i G = _mm256_or_si256(_mm256_or_si256(_mm256_shuffle_epi8(a, g0), _mm256_shuffle_epi8(b, g1)),
                                _mm256_shuffle_epi8(c, g2));
    __m256i B = _mm256_or_si256(_mm256_or_si256(_mm256_shuffle_epi8(a, b0), _mm256_shuffle_epi8(b, b1)),
                                _mm256_shuffle_epi8(c, b2));
    _mm256_storeu_si256((__m256i *)(void *)d0, R);
    _mm256_storeu_si256((__m256i *)(void *)d1, G);
    _mm256_storeu_si256((__m256i *)(void *)d2, B);
}
#endif
#endif /* HS_HAVE_SSE2 */

/* One host row of W pixels x C channels (channel-last) -> C device rows of Wh elements
 * (the first W of each written; the padding is the caller's). */
HS_AIT void HS_N(row_to_planes)(hs_op op, const hs_kargs *a, const void *vq, const void *S,
                                void *D, size_t W, size_t C, size_t Wh)
{
    (void)vq;
    if (C == 1) {
        hs_run(op, S, D, W, &a->q, 0.0f, 1.0f);
        return;
    }
#if HS_HAVE_SSE2
    if (C == 3 && (op == HS_OP_Q8_DIV || op == HS_OP_Q8_MUL || op == HS_OP_COPY8)) {
        const size_t B = HS_AVX2 ? 32 : 16; /* pixels per block */
        if (W >= B) {
            const HS_N(vq) v = *(const HS_N(vq) *)vq;
            const int mode = a->q.sat ? 2 : (a->q.clamp ? 0 : 1);
            uint8_t *d = (uint8_t *)D;
            for (size_t w0 = 0; w0 < W; w0 += B) {
                /* the last block overlaps the previous one: same values, no scalar tail */
                size_t w = w0 + B <= W ? w0 : W - B;
                const void *s = hs_src_at(op, S, w * 3);
                uint8_t *r = d + w, *g = d + Wh + w, *b = d + 2 * Wh + w;
#if HS_AVX2
                if (mode == 2) HS_N(cl3_block32)(op, s, r, g, b, &v, 2);
                else if (mode == 1) HS_N(cl3_block32)(op, s, r, g, b, &v, 1);
                else HS_N(cl3_block32)(op, s, r, g, b, &v, 0);
#else
                if (mode == 2) HS_N(cl3_block16)(op, s, r, g, b, &v, 2);
                else if (mode == 1) HS_N(cl3_block16)(op, s, r, g, b, &v, 1);
                else HS_N(cl3_block16)(op, s, r, g, b, &v, 0);
#endif
            }
            return;
        }
    }
#endif
    switch (C) { /* small C: the feature loop unrolled */
    case 2: hs_pixels_to_planes(op, &a->q, S, D, Wh, W, 2); return;
    case 3: hs_pixels_to_planes(op, &a->q, S, D, Wh, W, 3); return;
    case 4: hs_pixels_to_planes(op, &a->q, S, D, Wh, W, 4); return;
    case 5: hs_pixels_to_planes(op, &a->q, S, D, Wh, W, 5); return;
    case 6: hs_pixels_to_planes(op, &a->q, S, D, Wh, W, 6); return;
    case 7: hs_pixels_to_planes(op, &a->q, S, D, Wh, W, 7); return;
    case 8: hs_pixels_to_planes(op, &a->q, S, D, Wh, W, 8); return;
    default: break;
    }
    /* Any C: blocks of pixels small enough to stay in L1 while every channel is gathered. */
    const hs_quant ql = a->q;
    size_t block = 8192 / (C * hs_op_src_size(op));
    if (block < 16) block = 16;
    for (size_t w0 = 0; w0 < W; w0 += block) {
        size_t n = W - w0 < block ? W - w0 : block;
        for (size_t c = 0; c < C; c++) {
            const void *s = hs_src_at(op, S, w0 * C + c);
            void *d = hs_dst_at(op, D, c * Wh + w0);
            for (size_t i = 0; i < n; i++) hs_elem(op, s, i * C, d, i, &ql, 0.0f, 1.0f);
        }
    }
}

/* channel-last host -> NHCW device */
HS_AIT void HS_N(in_nhcw)(hs_op op, const hs_kargs *a, const void *src, void *dst)
{
    const size_t W = a->W, C = a->C, Wh = a->Wh, Ch = a->Ch, drow = Ch * Wh;
#if HS_HAVE_SSE2
    HS_N(vq) v; /* the quantize constants as vectors, once per frame */
    HS_N(vq_init)(&v, &a->q);
    const void *vq = &v;
#else
    const void *vq = NULL;
#endif
    for (size_t h = 0; h < a->H; h++) {
        void *D = hs_dst_at(op, dst, h * drow);
        HS_N(row_to_planes)(op, a, vq, hs_src_at(op, src, h * a->host_row), D, W, C, Wh);
        if (Wh > W)
            for (size_t c = 0; c < C; c++) hs_zero(op, D, c * Wh + W, Wh - W);
        hs_zero(op, D, C * Wh, (Ch - C) * Wh);
    }
    HS_N(zero_tail)(a, dst, a->H * drow * hs_op_dst_size(op));
}

/* NCHW / NHCW host -> NHCW device: every (h, c) is one contiguous run of W */
HS_AIT void HS_N(in_planar)(hs_op op, const hs_kargs *a, const void *src, void *dst)
{
    const size_t W = a->W, C = a->C, Wh = a->Wh, Ch = a->Ch, drow = Ch * Wh;
    for (size_t h = 0; h < a->H; h++) {
        for (size_t c = 0; c < C; c++) {
            size_t at = h * drow + c * Wh;
            hs_run(op, hs_src_at(op, src, h * a->host_hs + c * a->host_cs), hs_dst_at(op, dst, at),
                   W, &a->q, 0.0f, 1.0f);
            hs_zero(op, dst, at + W, Wh - W);
        }
        hs_zero(op, dst, h * drow + C * Wh, (Ch - C) * Wh);
    }
    HS_N(zero_tail)(a, dst, a->H * drow * hs_op_dst_size(op));
}

#if HS_AVX2
/* hs_spread for bytes, C = 3, P = 4 (SSSE3 byte shuffle, 4 pixels per step). A 16-byte load
 * at pixel w ends before the row does while 3w + 16 <= 3W; the rest goes one pixel at a
 * time. In-place safety as in hs_spread: 4 pixels written at 4w end at or before the source
 * of pixel w + 4. */
HS_AIT void HS_N(spread_3to4)(unsigned char *row, size_t W, int reverse)
{
    const unsigned char *tail = row + W;
    const __m128i m = reverse ? _mm_setr_epi8(2, 1, 0, -1, 5, 4, 3, -1, 8, 7, 6, -1, 11, 10, 9, -1)
                              : _mm_setr_epi8(0, 1, 2, -1, 3, 4, 5, -1, 6, 7, 8, -1, 9, 10, 11, -1);
    size_t w = 0;
    for (; 3 * w + 16 <= 3 * W && w + 4 <= W; w += 4) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(tail + 3 * w));
        _mm_storeu_si128((__m128i *)(void *)(row + 4 * w), _mm_shuffle_epi8(x, m));
    }
    for (; w < W; w++) {
        const unsigned char *s = tail + 3 * w;
        unsigned char c0 = s[0], c1 = s[1], c2 = s[2];
        unsigned char *d = row + 4 * w;
        d[0] = reverse ? c2 : c0;
        d[1] = c1;
        d[2] = reverse ? c0 : c2;
        d[3] = 0;
    }
}
#endif

/* channel-last host -> pixels of P device elements: each pixel's C values (reversed for
 * RGB888), then P - C zeros; Wh pixels per device row. Rows with P > C are converted into
 * the row's tail in one contiguous run, then spread (hs_spread). */
HS_AIT void HS_N(cl_rows)(hs_op op, const hs_kargs *a, const void *src, void *dst, size_t P,
                          int reverse)
{
    const size_t H = a->H, W = a->W, C = a->C, Wh = a->Wh, drow = Wh * P, es = hs_op_dst_size(op);
    if (C == P && W == Wh && a->host_row == W * C && !reverse) { /* contiguous on both sides */
        hs_run(op, src, dst, H * W * C, &a->q, 0.0f, 1.0f);
    } else {
        for (size_t h = 0; h < H; h++) {
            const void *S = hs_src_at(op, src, h * a->host_row);
            unsigned char *D = (unsigned char *)hs_dst_at(op, dst, h * drow);
            if (C == P && !reverse) {
                hs_run(op, S, D, W * C, &a->q, 0.0f, 1.0f);
            } else {
                hs_run(op, S, D + W * (P - C) * es, W * C, &a->q, 0.0f, 1.0f);
#if HS_AVX2
                if (es == 1 && C == 3 && P == 4) { /* RGB888, 3 -> 4 features: byte shuffles */
                    HS_N(spread_3to4)(D, W, reverse);
                    hs_zero(op, D, W * P, (Wh - W) * P);
                    continue;
                }
#endif
                switch (C) { /* constant sizes for the per-pixel moves */
                case 1: hs_spread(D, es, W, 1, P, reverse); break;
                case 2: hs_spread(D, es, W, 2, P, reverse); break;
                case 3: hs_spread(D, es, W, 3, P, reverse); break;
                case 4: hs_spread(D, es, W, 4, P, reverse); break;
                default: hs_spread(D, es, W, C, P, reverse); break;
                }
            }
            hs_zero(op, D, W * P, (Wh - W) * P);
        }
    }
    HS_N(zero_tail)(a, dst, H * drow * es);
}

/* channel-last host -> NHWC / FCR / NC / YUY2 device */
HS_AIT void HS_N(in_cl)(hs_op op, const hs_kargs *a, const void *src, void *dst)
{
    HS_N(cl_rows)(op, a, src, dst, a->Ch, 0);
}

/* channel-last host -> F8CR device: row h, group g of 8 channels, pixel w, 8 values. With
 * one group (C <= 8) that is the NHWC layout with 8 features. */
HS_AIT void HS_N(in_f8cr)(hs_op op, const hs_kargs *a, const void *src, void *dst)
{
    const size_t W = a->W, C = a->C, Wh = a->Wh, G = a->Ch / 8, drow = G * Wh * 8;
    if (G == 1) {
        HS_N(cl_rows)(op, a, src, dst, 8, 0);
        return;
    }
    const hs_quant ql = a->q;
    for (size_t h = 0; h < a->H; h++) {
        const void *S = hs_src_at(op, src, h * a->host_row);
        for (size_t g = 0; g < G; g++) {
            size_t c0 = 8 * g, at = h * drow + g * Wh * 8;
            void *D = hs_dst_at(op, dst, at);
            if (c0 + 8 <= C) {
                for (size_t w = 0; w < W; w++)
                    hs_run(op, hs_src_at(op, S, w * C + c0), hs_dst_at(op, D, w * 8), 8, &ql, 0.0f,
                           1.0f);
            } else if (c0 < C) {
                size_t n = C - c0;
                for (size_t w = 0; w < W; w++) {
                    for (size_t i = 0; i < n; i++) hs_elem(op, S, w * C + c0 + i, D, w * 8 + i, &ql, 0.0f, 1.0f);
                    hs_zero(op, D, w * 8 + n, 8 - n);
                }
            } else {
                hs_zero(op, D, 0, W * 8);
            }
            hs_zero(op, D, W * 8, (Wh - W) * 8);
        }
    }
    HS_N(zero_tail)(a, dst, a->H * drow * hs_op_dst_size(op));
}

/* NHWC (C = 3) host -> RGB888 device: per pixel the channels reversed, then a zero */
HS_AIT void HS_N(in_rgb888)(hs_op op, const hs_kargs *a, const void *src, void *dst)
{
    HS_N(cl_rows)(op, a, src, dst, 4, 1);
}

/* One W-run into a device row of `width`, zero-padded. */
HS_AIT void HS_N(copy_row)(hs_op op, const void *s, void *dst, size_t at, size_t n, size_t width)
{
    hs_run(op, s, hs_dst_at(op, dst, at), n, NULL, 0.0f, 1.0f);
    hs_zero(op, dst, at + n, width - n);
}

/* NV12 / NV21 -> HAILO_YYUV / HAILO_YYVU: per two image rows, Y row, Y row, chroma row */
HS_AIT void HS_N(in_nv)(hs_op op, const hs_kargs *a, const void *src, void *dst)
{
    const size_t H = a->H, W = a->W, Wh = a->Wh;
    const void *uv = hs_src_at(op, src, H * W);
    for (size_t r = 0; r < H / 2; r++) {
        size_t at = r * 3 * Wh;
        HS_N(copy_row)(op, hs_src_at(op, src, 2 * r * W), dst, at, W, Wh);
        HS_N(copy_row)(op, hs_src_at(op, src, (2 * r + 1) * W), dst, at + Wh, W, Wh);
        HS_N(copy_row)(op, hs_src_at(op, uv, r * W), dst, at + 2 * Wh, W, Wh);
    }
    HS_N(zero_tail)(a, dst, H / 2 * 3 * Wh * hs_op_dst_size(op));
}

/* I420 -> HAILO_YYYYUV: per two rows, Y row, Y row, U half row, V half row */
HS_AIT void HS_N(in_i420)(hs_op op, const hs_kargs *a, const void *src, void *dst)
{
    const size_t H = a->H, W = a->W, Wh = a->Wh, w2 = W / 2, wh2 = Wh / 2;
    const void *u = hs_src_at(op, src, H * W);
    const void *v = hs_src_at(op, u, H / 2 * w2);
    for (size_t r = 0; r < H / 2; r++) {
        size_t at = r * 3 * Wh;
        HS_N(copy_row)(op, hs_src_at(op, src, 2 * r * W), dst, at, W, Wh);
        HS_N(copy_row)(op, hs_src_at(op, src, (2 * r + 1) * W), dst, at + Wh, W, Wh);
        HS_N(copy_row)(op, hs_src_at(op, u, r * w2), dst, at + 2 * Wh, w2, wh2);
        HS_N(copy_row)(op, hs_src_at(op, v, r * w2), dst, at + 2 * Wh + wh2, w2, wh2);
    }
    HS_N(zero_tail)(a, dst, H / 2 * 3 * Wh * hs_op_dst_size(op));
}

/* One function per (layout, op): the op becomes a constant inside the inlined body. */
#define HS_IN_INSTANCE(layout, op)                                                           \
    HS_TGT static void HS_N(layout##_##op)(const hs_kargs *a, const void *s, void *d)        \
    {                                                                                        \
        HS_N(layout)(op, a, s, d);                                                           \
    }
#define HS_IN_ALL_OPS(X, layout)                                                             \
    X(layout, HS_OP_Q8_DIV)                                                                  \
    X(layout, HS_OP_Q8_MUL)                                                                  \
    X(layout, HS_OP_Q16_DIV)                                                                 \
    X(layout, HS_OP_Q16_MUL)                                                                 \
    X(layout, HS_OP_COPY8)                                                                   \
    X(layout, HS_OP_COPY16)                                                                  \
    X(layout, HS_OP_WIDEN)
#define HS_IN_COPY_OPS(X, layout) X(layout, HS_OP_COPY8) X(layout, HS_OP_COPY16)

HS_IN_ALL_OPS(HS_IN_INSTANCE, in_cl)
HS_IN_ALL_OPS(HS_IN_INSTANCE, in_nhcw)
HS_IN_ALL_OPS(HS_IN_INSTANCE, in_planar)
HS_IN_ALL_OPS(HS_IN_INSTANCE, in_f8cr)
HS_IN_ALL_OPS(HS_IN_INSTANCE, in_rgb888)
HS_IN_COPY_OPS(HS_IN_INSTANCE, in_nv)
HS_IN_COPY_OPS(HS_IN_INSTANCE, in_i420)

#define HS_IN_ENTRY(layout, op) [op] = HS_N(layout##_##op),
static const hs_kernel_fn HS_N(in_table)[HS_IN_COUNT][HS_OP_COUNT] = {
    [HS_IN_CL] = {HS_IN_ALL_OPS(HS_IN_ENTRY, in_cl)},
    [HS_IN_NHCW] = {HS_IN_ALL_OPS(HS_IN_ENTRY, in_nhcw)},
    [HS_IN_PLANAR] = {HS_IN_ALL_OPS(HS_IN_ENTRY, in_planar)},
    [HS_IN_F8CR] = {HS_IN_ALL_OPS(HS_IN_ENTRY, in_f8cr)},
    [HS_IN_RGB888] = {HS_IN_ALL_OPS(HS_IN_ENTRY, in_rgb888)},
    [HS_IN_NV] = {HS_IN_COPY_OPS(HS_IN_ENTRY, in_nv)},
    [HS_IN_I420] = {HS_IN_COPY_OPS(HS_IN_ENTRY, in_i420)},
};

#undef HS_IN_INSTANCE
#undef HS_IN_ALL_OPS
#undef HS_IN_COPY_OPS
#undef HS_IN_ENTRY
#undef HS_AIT
