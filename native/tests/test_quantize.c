/*
 * test_quantize.c - the exact arithmetic: ties, saturation, NaN / inf, division (not a
 * multiply by the reciprocal), the power-of-two multiply path, the three SIMD modes, and
 * the argument checks of hailo_quantize_input_buffer / hailo_dequantize_output_buffer.
 */
#include "hs_internal.h"
#include "hs_test.h"
#include "ref_model.h"

#include <math.h>

#define U8 HAILO_FORMAT_TYPE_UINT8
#define U16 HAILO_FORMAT_TYPE_UINT16

static hailo_quant_info_t qp(float zp, float scale, float lo, float hi)
{
    hailo_quant_info_t q = {zp, scale, lo, hi};
    return q;
}

static unsigned q8(float x, hailo_quant_info_t q)
{
    uint8_t out = 0xEE;
    if (hailo_quantize_input_buffer(&x, &out, 1, U8, &q) != HAILO_SUCCESS) return 9999;
    return out;
}

static unsigned q16(float x, hailo_quant_info_t q)
{
    uint16_t out = 0xEEEE;
    if (hailo_quantize_input_buffer(&x, &out, 1, U16, &q) != HAILO_SUCCESS) return 99999;
    return out;
}

static void test_identity_ties_and_saturation(void)
{
    hailo_quant_info_t id = qp(0.0f, 1.0f, -7.0f, 7.0f); /* limvals ignored for identity */
    CHECK_EQ_INT(q8(0.5f, id), 0);
    CHECK_EQ_INT(q8(1.5f, id), 2);
    CHECK_EQ_INT(q8(2.5f, id), 2);
    CHECK_EQ_INT(q8(3.5f, id), 4);
    CHECK_EQ_INT(q8(2.4999998f, id), 2);
    CHECK_EQ_INT(q8(254.5f, id), 254);
    CHECK_EQ_INT(q8(255.5f, id), 255);
    CHECK_EQ_INT(q8(300.0f, id), 255);
    CHECK_EQ_INT(q8(-0.5f, id), 0);
    CHECK_EQ_INT(q8(-1.0f, id), 0);
    CHECK_EQ_INT(q8(-0.0f, id), 0);
    CHECK_EQ_INT(q8(NAN, id), 0);
    CHECK_EQ_INT(q8(INFINITY, id), 255);
    CHECK_EQ_INT(q8(-INFINITY, id), 0);
    CHECK_EQ_INT(q8(1e30f, id), 255);
    CHECK_EQ_INT(q16(65534.5f, id), 65534);
    CHECK_EQ_INT(q16(65535.5f, id), 65535);
    CHECK_EQ_INT(q16(70000.0f, id), 65535);
    CHECK_EQ_INT(q16(32767.5f, id), 32768);
    CHECK_EQ_INT(q16(-3.0f, id), 0);
    CHECK_EQ_INT(q16(NAN, id), 0);
}

static void test_clip_to_limvals(void)
{
    hailo_quant_info_t q = qp(128.0f, 0.5f, -10.0f, 10.0f);
    CHECK_EQ_INT(q8(1.0f, q), 130);
    CHECK_EQ_INT(q8(100.0f, q), 148);  /* clipped to 10 */
    CHECK_EQ_INT(q8(-100.0f, q), 108); /* clipped to -10 */
    CHECK_EQ_INT(q8(NAN, q), 108);     /* NaN -> lo */
    CHECK_EQ_INT(q8(INFINITY, q), 148);
    CHECK_EQ_INT(q8(0.25f, q), 128);   /* 128.5 -> 128 */
    CHECK_EQ_INT(q8(0.75f, q), 130);   /* 129.5 -> 130 */
    /* limvals wider than the code range: the clamp to [0, 255] acts */
    hailo_quant_info_t w = qp(10.0f, 1.0f / 3.0f, -1000.0f, 1000.0f);
    CHECK_EQ_INT(q8(-1000.0f, w), 0);
    CHECK_EQ_INT(q8(1000.0f, w), 255);
    /* infinite limvals: no clip at all */
    hailo_quant_info_t inf = qp(0.0f, 2.0f, -INFINITY, INFINITY);
    CHECK_EQ_INT(q8(INFINITY, inf), 255);
    CHECK_EQ_INT(q8(NAN, inf), 0); /* NaN -> -inf -> 0 */
    /* lo > hi: HailoRT's clip (x >= hi -> hi, else x <= lo -> lo) and this one disagree:
     * refused, not picked (HAILO_INVALID_ARGUMENT, nothing written) */
    hailo_quant_info_t rev = qp(0.0f, 0.5f, 10.0f, 1.0f);
    CHECK_EQ_INT(q8(-50.0f, rev), 9999);
    CHECK_EQ_INT(q16(50.0f, rev), 99999);
    /* lo == hi is ordered: every x becomes that value */
    hailo_quant_info_t flat = qp(0.0f, 0.5f, 1.0f, 1.0f);
    CHECK_EQ_INT(q8(-50.0f, flat), 2);
    CHECK_EQ_INT(q8(50.0f, flat), 2);
    /* the identity QP never clips: its limvals may be anything */
    hailo_quant_info_t id_rev = qp(0.0f, 1.0f, 10.0f, 1.0f);
    CHECK_EQ_INT(q8(50.0f, id_rev), 50);
    hailo_quant_info_t id_nan = qp(0.0f, 1.0f, NAN, NAN);
    CHECK_EQ_INT(q8(7.0f, id_nan), 7);
}

/* x / s and x * (1 / s) differ for some x when s is not a power of two; the library must
 * divide. Finds such x, then checks the library agrees with the division. */
static void test_division_not_reciprocal(void)
{
    ref_rng r = {42};
    const float scales[] = {0.1f, 0.0123f, 1.0f / 3.0f, 0.07f, 3.3f};
    int sensitive = 0;
    for (size_t si = 0; si < sizeof scales / sizeof scales[0]; si++) {
        float s = scales[si], inv = 1.0f / s;
        hailo_quant_info_t q = qp(0.0f, s, -1e9f, 1e9f);
        for (int i = 0; i < 200000; i++) {
            float x = ref_unif(&r, 0.0f, 255.0f * s);
            volatile float a = x / s, b = x * inv;
            if (nearbyintf(a) == nearbyintf(b)) continue;
            sensitive++;
            CHECK_MSG(q8(x, q) == (unsigned)nearbyintf(a), "x=%a s=%a: got %u want %g (reciprocal gives %g)",
                      (double)x, (double)s, q8(x, q), (double)nearbyintf(a), (double)nearbyintf(b));
        }
    }
    CHECK_MSG(sensitive > 0, "no x where x/s and x*(1/s) round differently: the test is blind");
}

/* Power-of-two scales take the multiply path: exact, including tiny and huge scales. */
static void test_power_of_two_scales(void)
{
    ref_rng r = {7};
    const int exps[] = {-126, -100, -20, -7, 0, 3, 20, 100, 127};
    for (size_t e = 0; e < sizeof exps / sizeof exps[0]; e++) {
        float s = ldexpf(1.0f, exps[e]);
        hailo_quant_info_t q = qp(3.0f, s, -INFINITY, INFINITY);
        for (int i = 0; i < 20000; i++) {
            float x = ldexpf(ref_unif(&r, -1.0f, 1.0f), exps[e] + (int)ref_range(&r, 0, 20) - 4);
            if (i % 97 == 0) x = ldexpf(1.0f, -149) * (float)ref_range(&r, 0, 5); /* subnormal */
            unsigned want = ref_quantize(x, &q, U16);
            CHECK_MSG(q16(x, q) == want, "scale 2^%d x=%a: got %u want %u", exps[e], (double)x,
                      q16(x, q), want);
        }
    }
    /* a subnormal scale is not "normal with a zero mantissa": divide */
    float sub = ldexpf(1.0f, -140);
    hailo_quant_info_t q = qp(0.0f, sub, -1.0f, 1.0f);
    float x = ldexpf(1.0f, -135);
    CHECK_EQ_INT(q16(x, q), ref_quantize(x, &q, U16));
}

/* Long buffers through every kernel set and every SIMD mode against the reference. */
static void test_buffers_all_isas_and_modes(void)
{
    ref_rng r = {2024};
    enum { N = 4099 };
    static float x[N];
    static uint16_t out16[N];
    static uint8_t out8[N];
    hailo_quant_info_t qps[] = {
        qp(128.0f, 0.0078125f, -1.0f, 127.0f / 128.0f),            /* pow2, sat mode */
        qp(128.0f, 0.0123f, -128.0f * 0.0123f, 127.0f * 0.0123f), /* div, sat (if it holds) */
        qp(100.0f, 0.0123f, -0.5f, 0.5f),                          /* narrower: clip only */
        qp(100.0f, 0.0123f, -100.0f, 100.0f),                      /* wider: clip + clamp */
        qp(0.0f, 1.0f, 0.0f, 0.0f),                                /* identity */
        qp(7.5f, 0.3f, -INFINITY, INFINITY),
        qp(30000.0f, 1.0f / 1024.0f, -30.0f, 34.0f),
    };
    int isa_count = hs_detect_isa() == HS_ISA_AVX2 ? 2 : 1;
    for (size_t k = 0; k < sizeof qps / sizeof qps[0]; k++) {
        for (int t = 0; t < 2; t++) {
            hailo_format_type_t dt = t ? U16 : U8;
            float top = t ? 65535.0f : 255.0f;
            for (size_t i = 0; i < N; i++) {
                float code = (float)ref_range(&r, 0, (uint32_t)top + 20) - 10.0f;
                x[i] = (code + ((ref_rand(&r) & 1) ? 0.5f : 0.0f) - qps[k].qp_zp) * qps[k].qp_scale;
                if (ref_range(&r, 0, 30) == 0) {
                    const float sp[] = {NAN, INFINITY, -INFINITY, -0.0f, 1e38f, -1e38f};
                    x[i] = sp[ref_range(&r, 0, 5)];
                }
            }
            hs_quant q;
            hs_op op;
            hs_quant_setup(&qps[k], dt, &q, &op);
            for (int isa = 0; isa < isa_count; isa++) {
                hs_quantize_run((hs_isa)isa, op, x, t ? (void *)out16 : (void *)out8, N, &q);
                for (size_t i = 0; i < N; i++) {
                    unsigned got = t ? out16[i] : out8[i];
                    unsigned want = ref_quantize(x[i], &qps[k], dt);
                    CHECK_MSG(got == want, "qp %zu type %d isa %d x=%a: got %u want %u", k, t, isa,
                              (double)x[i], got, want);
                }
            }
        }
    }
}

static void test_modes_are_chosen_as_documented(void)
{
    hs_quant q;
    hs_op op;
    hailo_quant_info_t exact = qp(128.0f, 0.0078125f, -1.0f, 127.0f / 128.0f);
    hs_quant_setup(&exact, U8, &q, &op);
    CHECK(op == HS_OP_Q8_MUL && !q.clamp && q.sat);
    hailo_quant_info_t narrow = qp(128.0f, 0.0123f, -0.5f, 0.5f);
    hs_quant_setup(&narrow, U8, &q, &op);
    CHECK(op == HS_OP_Q8_DIV && !q.clamp && !q.sat);
    hailo_quant_info_t wide = qp(128.0f, 0.0123f, -100.0f, 100.0f);
    hs_quant_setup(&wide, U16, &q, &op);
    CHECK(op == HS_OP_Q16_DIV && q.clamp && !q.sat);
    /* lo NaN: every c becomes hi, in range: no clamp, but no saturation shortcut either */
    hailo_quant_info_t nan_lo = qp(1.0f, 0.5f, NAN, 1.0f);
    hs_quant_setup(&nan_lo, U8, &q, &op);
    CHECK(!q.clamp && !q.sat);
    /* hi NaN: c is NaN, v is NaN: only the clamp makes it 0 */
    hailo_quant_info_t nan_hi = qp(1.0f, 0.5f, 0.0f, NAN);
    hs_quant_setup(&nan_hi, U8, &q, &op);
    CHECK(q.clamp && !q.sat);
    /* ... but no public entry point quantizes with NaN limvals (they are not ordered) */
    float x = 3.0f;
    uint8_t o = 1;
    CHECK_STATUS(hailo_quantize_input_buffer(&x, &o, 1, U8, &nan_hi), HAILO_INVALID_ARGUMENT);
    CHECK_STATUS(hailo_quantize_input_buffer(&x, &o, 1, U8, &nan_lo), HAILO_INVALID_ARGUMENT);
    CHECK_EQ_INT(o, 1);
    hailo_quant_info_t id = qp(0.0f, 1.0f, 5.0f, 6.0f);
    hs_quant_setup(&id, U16, &q, &op);
    CHECK(op == HS_OP_Q16_MUL && q.lo == 0.0f && q.hi == 65535.0f && !q.clamp && q.sat);
}

static void test_dequantize_exact(void)
{
    ref_rng r = {5};
    enum { N = 1000 };
    uint8_t c8[N];
    uint16_t c16[N];
    float y[N];
    for (size_t i = 0; i < N; i++) {
        c8[i] = (uint8_t)ref_rand(&r);
        c16[i] = (uint16_t)ref_rand(&r);
    }
    hailo_quant_info_t q = qp(127.3f, 0.0123f, 0, 0);
    CHECK_OK(hailo_dequantize_output_buffer(c8, y, N, U8, &q));
    for (size_t i = 0; i < N; i++) {
        volatile float d = (float)c8[i] - 127.3f;
        volatile float want = d * 0.0123f;
        CHECK(y[i] == want);
    }
    CHECK_OK(hailo_dequantize_output_buffer(c16, y, N, U16, &q));
    for (size_t i = 0; i < N; i++) CHECK(y[i] == ref_dequantize(c16[i], 127.3f, 0.0123f));
    /* both kernel sets */
    if (hs_detect_isa() == HS_ISA_AVX2) {
        float z[N];
        hs_dequantize_run(HS_ISA_BASELINE, HS_OP_DQ16, c16, z, N, 127.3f, 0.0123f);
        CHECK(memcmp(z, y, sizeof z) == 0);
    }
}

static void test_api_arguments(void)
{
    float x[4] = {0, 1, 2, 3};
    uint8_t o[16];
    float y[4];
    hailo_quant_info_t good = qp(0.0f, 1.0f, 0.0f, 255.0f);
    CHECK_OK(hailo_quantize_input_buffer(x, o, 0, U8, &good));
    CHECK_STATUS(hailo_quantize_input_buffer(NULL, o, 4, U8, &good), HAILO_INVALID_ARGUMENT);
    CHECK_STATUS(hailo_quantize_input_buffer(x, NULL, 4, U8, &good), HAILO_INVALID_ARGUMENT);
    CHECK_STATUS(hailo_quantize_input_buffer(x, o, 4, U8, NULL), HAILO_INVALID_ARGUMENT);
    CHECK_STATUS(hailo_quantize_input_buffer(x, o, 4, HAILO_FORMAT_TYPE_FLOAT32, &good), HAILO_INVALID_ARGUMENT);
    CHECK_STATUS(hailo_quantize_input_buffer(x, o, 4, HAILO_FORMAT_TYPE_AUTO, &good), HAILO_INVALID_ARGUMENT);
    CHECK_STATUS(hailo_quantize_input_buffer(x, o, 4, (hailo_format_type_t)77, &good), HAILO_INVALID_ARGUMENT);
    const float bad_scales[] = {0.0f, -1.0f, NAN, INFINITY, -0.0f};
    for (size_t i = 0; i < sizeof bad_scales / sizeof bad_scales[0]; i++) {
        hailo_quant_info_t bad = qp(0.0f, bad_scales[i], 0.0f, 1.0f);
        CHECK_STATUS(hailo_quantize_input_buffer(x, o, 4, U8, &bad), HAILO_INVALID_ARGUMENT);
        CHECK_STATUS(hailo_dequantize_output_buffer(o, y, 4, U8, &bad), HAILO_INVALID_ARGUMENT);
    }
    /* overlap: dst inside src */
    CHECK_STATUS(hailo_quantize_input_buffer(x, (unsigned char *)x + 2, 4, U8, &good), HAILO_INVALID_ARGUMENT);
    CHECK_STATUS(hailo_dequantize_output_buffer(x, x, 4, U8, &good), HAILO_INVALID_ARGUMENT);
    CHECK_STATUS(hailo_quantize_input_buffer(x, o, SIZE_MAX / 2, U8, &good), HAILO_INVALID_ARGUMENT);
    CHECK_STATUS(hailo_dequantize_output_buffer(NULL, y, 4, U8, &good), HAILO_INVALID_ARGUMENT);
    CHECK_STATUS(hailo_dequantize_output_buffer(o, NULL, 4, U8, &good), HAILO_INVALID_ARGUMENT);
    CHECK_STATUS(hailo_dequantize_output_buffer(o, y, 4, HAILO_FORMAT_TYPE_FLOAT32, &good), HAILO_INVALID_ARGUMENT);
    CHECK_STATUS(hailo_dequantize_output_buffer(o, y, 4, U8, NULL), HAILO_INVALID_ARGUMENT);
    CHECK_OK(hailo_quantize_input_buffer(x, o, 4, U8, &good));
    CHECK(o[0] == 0 && o[1] == 1 && o[2] == 2 && o[3] == 3);
}

HS_TESTS(test_identity_ties_and_saturation, test_clip_to_limvals, test_division_not_reciprocal,
         test_power_of_two_scales, test_buffers_all_isas_and_modes,
         test_modes_are_chosen_as_documented, test_dequantize_exact, test_api_arguments)
