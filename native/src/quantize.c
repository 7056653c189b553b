/*
 * quantize.c - the quantize / dequantize primitives, QP setup and CPU dispatch.
 *
 * Arithmetic (docs/stream-layer.md): c = clip(x, lo, hi) with NaN -> lo; v = c / scale + zp;
 * v clamped to [0, 2^b - 1]; rounded half to even by adding 1.5 * 2^23 (exact for v in
 * [0, 65535] in the default round-to-nearest mode). When scale is a power of two, c / scale
 * and c * (1 / scale) are the same correctly rounded number, so the kernel multiplies
 * (HS_OP_*_MUL); otherwise it divides. Dequantize: (float(q) - zp) * scale.
 */
#include "hs_internal.h"
#include "hs_runs.h"

#include <math.h>

hs_isa hs_detect_isa(void)
{
#if HS_HAVE_AVX2
    /* libgcc / compiler-rt fill the CPU model from a constructor; this only reads it, and
     * checks that the OS saves the AVX state. */
    if (__builtin_cpu_supports("avx2")) return HS_ISA_AVX2;
#endif
    return HS_ISA_BASELINE;
}

const char *hs_isa_name(hs_isa isa)
{
    return isa == HS_ISA_AVX2 ? "avx2" : (HS_HAVE_SSE2 ? "sse2" : "scalar");
}

/* A normal float with a zero mantissa is 2^k; its reciprocal 2^-k is exact (at worst
 * subnormal, which both c / 2^k and c * 2^-k round the same single time). */
static int is_power_of_two(float f)
{
    uint32_t b = hs_f32_bits(f);
    uint32_t e = (b >> 23) & 0xFFu;
    return (b >> 31) == 0 && e >= 1 && e <= 254 && (b & 0x7FFFFFu) == 0;
}

/* v = c / scale + zp (or c * scale + zp for the MUL ops), exactly as the kernels compute it. */
static float apply(float c, const hs_quant *q, int div)
{
    float v = div ? c / q->scale : c * q->scale;
    return v + q->zp;
}

void hs_quant_setup(const hailo_quant_info_t *qi, hailo_format_type_t dst_type, hs_quant *q,
                    hs_op *op)
{
    int u8 = dst_type == HAILO_FORMAT_TYPE_UINT8;
    int div = 0;
    q->vmax = u8 ? 255.0f : 65535.0f;
    if (qi->qp_scale == 1.0f && qi->qp_zp == 0.0f) {
        /* identity QP: the same formula with lo = 0, hi = the type's maximum */
        q->lo = 0.0f;
        q->hi = q->vmax;
        q->scale = 1.0f;
        q->zp = 0.0f;
    } else {
        q->lo = qi->limvals_min;
        q->hi = qi->limvals_max;
        q->zp = qi->qp_zp;
        div = !is_power_of_two(qi->qp_scale);
        q->scale = div ? qi->qp_scale : 1.0f / qi->qp_scale;
    }
    *op = u8 ? (div ? HS_OP_Q8_DIV : HS_OP_Q8_MUL) : (div ? HS_OP_Q16_DIV : HS_OP_Q16_MUL);
    /* After the clip, c lies in [min(lo, hi), hi] (NaN x becomes lo), and c -> v is monotonic
     * (a division by, or product with, a positive number, then an addition, each rounded to
     * nearest). If v(c_min) >= -0.5 and v(hi) < vmax + 0.5, every v rounds into [0, vmax] and
     * the clamp to [0, vmax] cannot change a code: the kernels may skip it. NaN or infinite
     * bounds fail the comparisons and keep it. */
    float cmin = q->lo < q->hi ? q->lo : q->hi;
    float vlo = apply(cmin, q, div), vhi = apply(q->hi, q, div);
    q->clamp = !(vlo >= -0.5f && vhi < q->vmax + 0.5f);
    /* If moreover lo <= hi, lo becomes code 0 and hi code vmax (vmax is odd, so v(hi) must
     * be above vmax - 0.5), then clipping x to [lo, hi] gives the same code as saturating
     * round(v(x)) to [0, vmax]: v is monotonic, NaN becomes 0 either way (CVTPS2DQ gives
     * INT_MIN for NaN, and the SIMD code keeps NaN through its overflow guard). */
    q->sat = !q->clamp && q->lo <= q->hi && vlo <= 0.5f && vhi > q->vmax - 0.5f;
}

/* One instantiation per ISA; the switch picks a loop specialized for the op. */
#define HS_DEFINE_RUNS(SFX, TGT)                                                             \
    TGT static void quantize_run_##SFX(hs_op op, const float *s, void *d, size_t n,          \
                                       const hs_quant *q)                                    \
    {                                                                                        \
        switch (op) {                                                                        \
        case HS_OP_Q8_DIV: hs_run(HS_OP_Q8_DIV, s, d, n, q, 0.0f, 1.0f); break;              \
        case HS_OP_Q8_MUL: hs_run(HS_OP_Q8_MUL, s, d, n, q, 0.0f, 1.0f); break;              \
        case HS_OP_Q16_DIV: hs_run(HS_OP_Q16_DIV, s, d, n, q, 0.0f, 1.0f); break;            \
        case HS_OP_Q16_MUL: hs_run(HS_OP_Q16_MUL, s, d, n, q, 0.0f, 1.0f); break;            \
        default: break;                                                                      \
        }                                                                                    \
    }                                                                                        \
    TGT static void dequantize_run_##SFX(hs_op op, const void *s, float *d, size_t n,        \
                                         float zp, float sc)                                 \
    {                                                                                        \
        if (op == HS_OP_DQ8) hs_run(HS_OP_DQ8, s, d, n, NULL, zp, sc);                       \
        else hs_run(HS_OP_DQ16, s, d, n, NULL, zp, sc);                                      \
    }

HS_DEFINE_RUNS(base, )
#if HS_HAVE_AVX2
HS_DEFINE_RUNS(avx2, HS_TARGET_AVX2)
#endif

void hs_quantize_run(hs_isa isa, hs_op op, const float *src, void *dst, size_t n,
                     const hs_quant *q)
{
#if HS_HAVE_AVX2
    if (isa == HS_ISA_AVX2) {
        quantize_run_avx2(op, src, dst, n, q);
        return;
    }
#endif
    (void)isa;
    quantize_run_base(op, src, dst, n, q);
}

void hs_dequantize_run(hs_isa isa, hs_op op, const void *src, float *dst, size_t n, float zp,
                       float scale)
{
#if HS_HAVE_AVX2
    if (isa == HS_ISA_AVX2) {
        dequantize_run_avx2(op, src, dst, n, zp, scale);
        return;
    }
#endif
    (void)isa;
    dequantize_run_base(op, src, dst, n, zp, scale);
}

hailo_status hailo_quantize_input_buffer(const float *src, void *dst, size_t count,
                                         hailo_format_type_t dst_type,
                                         const hailo_quant_info_t *quant_info)
{
    if (src == NULL || dst == NULL || quant_info == NULL) return HAILO_INVALID_ARGUMENT;
    if (dst_type != HAILO_FORMAT_TYPE_UINT8 && dst_type != HAILO_FORMAT_TYPE_UINT16)
        return HAILO_INVALID_ARGUMENT;
    if (!hs_qp_valid(quant_info)) return HAILO_INVALID_ARGUMENT;
    /* limvals the clip would use must be ordered (see hs_plan_build, step 11) */
    if (!hs_qp_is_identity(quant_info) && !hs_qp_limvals_ordered(quant_info))
        return HAILO_INVALID_ARGUMENT;
    size_t src_bytes, dst_bytes;
    if (!hs_mul(count, 4, &src_bytes) ||
        !hs_mul(count, hailo_get_format_type_size(dst_type), &dst_bytes))
        return HAILO_INVALID_ARGUMENT;
    if (hs_overlap(src, src_bytes, dst, dst_bytes)) return HAILO_INVALID_ARGUMENT;
    hs_quant q;
    hs_op op;
    hs_quant_setup(quant_info, dst_type, &q, &op);
    hs_quantize_run(hs_detect_isa(), op, src, dst, count, &q);
    return HAILO_SUCCESS;
}

hailo_status hailo_dequantize_output_buffer(const void *src, float *dst, size_t count,
                                            hailo_format_type_t src_type,
                                            const hailo_quant_info_t *quant_info)
{
    if (src == NULL || dst == NULL || quant_info == NULL) return HAILO_INVALID_ARGUMENT;
    if (src_type != HAILO_FORMAT_TYPE_UINT8 && src_type != HAILO_FORMAT_TYPE_UINT16)
        return HAILO_INVALID_ARGUMENT;
    if (!hs_qp_valid(quant_info)) return HAILO_INVALID_ARGUMENT;
    size_t src_bytes, dst_bytes;
    if (!hs_mul(count, hailo_get_format_type_size(src_type), &src_bytes) ||
        !hs_mul(count, 4, &dst_bytes))
        return HAILO_INVALID_ARGUMENT;
    if (hs_overlap(src, src_bytes, dst, dst_bytes)) return HAILO_INVALID_ARGUMENT;
    hs_op op = src_type == HAILO_FORMAT_TYPE_UINT8 ? HS_OP_DQ8 : HS_OP_DQ16;
    hs_dequantize_run(hs_detect_isa(), op, src, dst, count, quant_info->qp_zp,
                      quant_info->qp_scale);
    return HAILO_SUCCESS;
}
