/*
 * bench_transform.c - ns per frame of the transform contexts against memcpy of the float
 * side of the same frame (the physical bound of a memory-bound quantize / dequantize),
 * measured interleaved in the same run. Each kernel set the CPU has (baseline, AVX2) is
 * measured; the public API picks the best one.
 *
 *   make bench            (or build/bench_transform [rounds])
 */
#include "hs_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* CPU time of this thread: time spent descheduled by other load on the machine is not
 * counted (cache and memory-bandwidth interference still are). */
static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct {
    const char *name;
    hailo_stream_direction_t dir;
    hailo_format_order_t device_order, user_order;
    hailo_format_type_t device_type, user_type;
    hailo_3d_image_shape_t shape, hw;
    float scale;
    int per_feature;
} bench_case;

typedef struct {
    hailo_input_transform_context in;
    hailo_output_transform_context out;
} ctx_pair;

static hailo_status run(const ctx_pair *c, const void *src, size_t sn, void *dst, size_t dn)
{
    return c->in ? hailo_transform_frame_by_input_transform_context(c->in, src, sn, dst, dn)
                 : hailo_transform_frame_by_output_transform_context(c->out, src, sn, dst, dn);
}

/* ns per call of one frame: enough calls for >= 2 ms. */
static double time_frame(const ctx_pair *c, const void *src, size_t sn, void *dst, size_t dn,
                         const void *mc_src, void *mc_dst, size_t mc_n, int memcpy_only)
{
    int reps = 1;
    for (;;) {
        double t0 = now_ns();
        for (int i = 0; i < reps; i++) {
            if (memcpy_only) {
                memcpy(mc_dst, mc_src, mc_n);
            } else if (run(c, src, sn, dst, dn) != HAILO_SUCCESS) {
                fprintf(stderr, "transform failed\n");
                exit(1);
            }
        }
        double dt = now_ns() - t0;
        if (dt >= 2e6 || reps >= 1 << 20) return dt / reps;
        reps *= 2;
    }
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 15;
    if (rounds < 1) rounds = 1;
    const bench_case cases[] = {
        {"in  f32 NHWC 640x640x3 -> u8 NHCW (scale 2^-7)", HAILO_H2D_STREAM, HAILO_FORMAT_ORDER_NHCW,
         HAILO_FORMAT_ORDER_NHWC, HAILO_FORMAT_TYPE_UINT8, HAILO_FORMAT_TYPE_FLOAT32,
         {640, 640, 3}, {640, 640, 3}, 0.0078125f, 0},
        {"in  f32 NHWC 640x640x3 -> u8 NHCW (scale 0.0123)", HAILO_H2D_STREAM, HAILO_FORMAT_ORDER_NHCW,
         HAILO_FORMAT_ORDER_NHWC, HAILO_FORMAT_TYPE_UINT8, HAILO_FORMAT_TYPE_FLOAT32,
         {640, 640, 3}, {640, 640, 3}, 0.0123f, 0},
        {"in  f32 NHWC 224x224x3 -> u8 NHCW (scale 0.0123)", HAILO_H2D_STREAM, HAILO_FORMAT_ORDER_NHCW,
         HAILO_FORMAT_ORDER_NHWC, HAILO_FORMAT_TYPE_UINT8, HAILO_FORMAT_TYPE_FLOAT32,
         {224, 224, 3}, {224, 224, 3}, 0.0123f, 0},
        {"in  f32 NHWC 300x300x3 -> u8 NHCW hw 300x304x3", HAILO_H2D_STREAM, HAILO_FORMAT_ORDER_NHCW,
         HAILO_FORMAT_ORDER_NHWC, HAILO_FORMAT_TYPE_UINT8, HAILO_FORMAT_TYPE_FLOAT32,
         {300, 300, 3}, {300, 304, 3}, 0.0123f, 0},
        {"out u8 NHCW 80x80x255 -> f32 NHWC", HAILO_D2H_STREAM, HAILO_FORMAT_ORDER_NHCW,
         HAILO_FORMAT_ORDER_NHWC, HAILO_FORMAT_TYPE_UINT8, HAILO_FORMAT_TYPE_FLOAT32,
         {80, 80, 255}, {80, 80, 255}, 0.0123f, 0},
        {"out u8 NHCW 80x80x255 -> f32 NHWC per-feature", HAILO_D2H_STREAM, HAILO_FORMAT_ORDER_NHCW,
         HAILO_FORMAT_ORDER_NHWC, HAILO_FORMAT_TYPE_UINT8, HAILO_FORMAT_TYPE_FLOAT32,
         {80, 80, 255}, {80, 80, 255}, 0.0123f, 1},
        {"out u8 NHCW 20x20x255 -> f32 NHWC hw 20x24x256", HAILO_D2H_STREAM, HAILO_FORMAT_ORDER_NHCW,
         HAILO_FORMAT_ORDER_NHWC, HAILO_FORMAT_TYPE_UINT8, HAILO_FORMAT_TYPE_FLOAT32,
         {20, 20, 255}, {20, 24, 256}, 0.0123f, 0},
    };
    static hailo_quant_info_t qps[256];
    printf("%-50s %-7s %11s %11s %6s %7s\n", "case", "kernels", "ns/frame", "memcpy ns", "ratio",
           "median");
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const bench_case *b = &cases[ci];
        hailo_stream_info_t si;
        memset(&si, 0, sizeof si);
        snprintf(si.name, sizeof si.name, "bench%zu", ci);
        si.direction = b->dir;
        si.format = (hailo_format_t){b->device_type, b->device_order, HAILO_FORMAT_FLAGS_NONE};
        si.shape = b->shape;
        si.hw_shape = b->hw;
        si.quant_info = (hailo_quant_info_t){128.0f, b->scale, -128.0f * b->scale, 127.0f * b->scale};
        if (b->per_feature) {
            for (uint32_t c = 0; c < b->shape.features; c++)
                qps[c] = (hailo_quant_info_t){(float)(c % 256), b->scale * (float)(1 + c % 7), 0, 0};
            si.quant_infos = qps;
            si.quant_infos_count = b->shape.features;
        }
        if (hailo_fill_hw_frame_size(&si) != HAILO_SUCCESS) return 1;
        hailo_transform_params_t tp = {HAILO_STREAM_TRANSFORM_COPY, {b->user_type, b->user_order, HAILO_FORMAT_FLAGS_NONE}};
        int isas = hs_detect_isa() == HS_ISA_AVX2 ? 2 : 1;
        for (int isa = isas - 1; isa >= 0; isa--) {
            ctx_pair c = {NULL, NULL};
            size_t sn, dn;
            if (b->dir == HAILO_H2D_STREAM) {
                if (hs_create_input_context_isa(&si, &tp, (hs_isa)isa, &c.in) != HAILO_SUCCESS) return 1;
                sn = hailo_input_transform_context_get_src_frame_size(c.in);
                dn = hailo_input_transform_context_get_dst_frame_size(c.in);
            } else {
                if (hs_create_output_context_isa(&si, &tp, (hs_isa)isa, &c.out) != HAILO_SUCCESS) return 1;
                sn = hailo_output_transform_context_get_src_frame_size(c.out);
                dn = hailo_output_transform_context_get_dst_frame_size(c.out);
            }
            unsigned char *src = malloc(sn), *dst = malloc(dn);
            size_t mc_n = b->dir == HAILO_H2D_STREAM ? sn : dn; /* the float side */
            unsigned char *m1 = malloc(mc_n), *m2 = malloc(mc_n);
            for (size_t i = 0; i < sn; i++) src[i] = (unsigned char)(i * 2654435761u >> 24);
            if (b->user_type == HAILO_FORMAT_TYPE_FLOAT32 && b->dir == HAILO_H2D_STREAM)
                for (size_t i = 0; i < sn / 4; i++) ((float *)(void *)src)[i] = (float)(i % 997) * 0.01f - 5.0f;
            memset(dst, 1, dn);
            memset(m1, 2, mc_n);
            memset(m2, 3, mc_n);
            double *tt = malloc(sizeof(double) * (size_t)rounds), *tm = malloc(sizeof(double) * (size_t)rounds);
            for (int r = 0; r < rounds; r++) {
                tm[r] = time_frame(&c, src, sn, dst, dn, m1, m2, mc_n, 1);
                tt[r] = time_frame(&c, src, sn, dst, dn, m1, m2, mc_n, 0);
            }
            qsort(tt, (size_t)rounds, sizeof *tt, cmp_double);
            qsort(tm, (size_t)rounds, sizeof *tm, cmp_double);
            printf("%-50s %-7s %11.0f %11.0f %6.2f %7.2f\n", b->name, hs_isa_name((hs_isa)isa), tt[0],
                   tm[0], tt[0] / tm[0], tt[rounds / 2] / tm[rounds / 2]);
            free(tt);
            free(tm);
            free(src);
            free(dst);
            free(m1);
            free(m2);
            hailo_release_input_transform_context(c.in);
            hailo_release_output_transform_context(c.out);
        }
    }
    printf("(%d interleaved rounds, thread CPU time; ns: the fastest round; ratio = transform / memcpy of the float frame, of the fastest "
           "and of the median rounds)\n", rounds);
    return 0;
}
