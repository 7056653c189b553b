/*
 * layouts.c - the layout kernels of docs/stream-layer.md: host -> device bodies in
 * layouts_input_impl.h, device -> host bodies in layouts_output_impl.h. Both are compiled
 * twice: for baseline x86-64 / any CPU, and with the AVX2 target attribute (picked at run
 * time by the context, see hs_detect_isa).
 */
#include "hs_internal.h"
#include "hs_runs.h"

#if HS_HAVE_SSE2 || HS_HAVE_AVX2
#include <immintrin.h>
#endif

#define HS_CAT_(a, b) a##_##b
#define HS_CAT(a, b) HS_CAT_(a, b)
#define HS_N(x) HS_CAT(x, HS_SFX)

#define HS_SFX base
#define HS_TGT
#define HS_AVX2 0
#include "layouts_input_impl.h"
#include "layouts_output_impl.h"
#undef HS_SFX
#undef HS_TGT
#undef HS_AVX2

#if HS_HAVE_AVX2
#define HS_SFX avx2
#define HS_TGT HS_TARGET_AVX2
#define HS_AVX2 1
#include "layouts_input_impl.h"
#include "layouts_output_impl.h"
#undef HS_SFX
#undef HS_TGT
#undef HS_AVX2
#endif

hs_kernel_fn hs_input_kernel(hs_isa isa, hs_in_layout layout, hs_op op)
{
    if ((unsigned)layout >= HS_IN_COUNT || (unsigned)op >= HS_OP_COUNT) return NULL;
#if HS_HAVE_AVX2
    if (isa == HS_ISA_AVX2) return in_table_avx2[layout][op];
#endif
    (void)isa;
    return in_table_base[layout][op];
}

hs_kernel_fn hs_output_kernel(hs_isa isa, hs_out_layout layout, hs_op op)
{
    if ((unsigned)layout >= HS_OUT_COUNT || (unsigned)op >= HS_OP_COUNT) return NULL;
#if HS_HAVE_AVX2
    if (isa == HS_ISA_AVX2) return out_table_avx2[layout][op];
#endif
    (void)isa;
    return out_table_base[layout][op];
}
