/* ref_model.c - see ref_model.h. Deliberately simple and slow. */
#include "ref_model.h"

#include <math.h>
#include <string.h>

uint32_t ref_rand(ref_rng *r)
{
    /* xorshift64* */
    r->state ^= r->state >> 12;
    r->state ^= r->state << 25;
    r->state ^= r->state >> 27;
    return (uint32_t)((r->state * 2685821657736338717ull) >> 32);
}

uint32_t ref_range(ref_rng *r, uint32_t lo, uint32_t hi)
{
    return lo + (uint32_t)(ref_rand(r) % ((uint64_t)hi - lo + 1));
}

float ref_unif(ref_rng *r, float lo, float hi)
{
    return lo + (hi - lo) * (float)(ref_rand(r) >> 8) / (float)(1u << 24);
}

size_t ref_type_size(hailo_format_type_t t)
{
    return t == HAILO_FORMAT_TYPE_UINT8 ? 1 : t == HAILO_FORMAT_TYPE_UINT16 ? 2 : 4;
}

uint32_t ref_quantize(float x, const hailo_quant_info_t *qp, hailo_format_type_t device_type)
{
    float top = device_type == HAILO_FORMAT_TYPE_UINT8 ? 255.0f : 65535.0f;
    float lo = qp->limvals_min, hi = qp->limvals_max;
    if (qp->qp_scale == 1.0f && qp->qp_zp == 0.0f) {
        lo = 0.0f;
        hi = top;
    }
    float c = x > lo ? x : lo;
    c = c < hi ? c : hi;
    float v = c / qp->qp_scale;
    v = v + qp->qp_zp;
    v = v > 0.0f ? v : 0.0f;
    v = v < top ? v : top;
    return (uint32_t)nearbyintf(v); /* the default rounding mode: half to even */
}

float ref_dequantize(uint32_t q, float zp, float scale)
{
    float d = (float)q - zp;
    return d * scale;
}

static size_t align_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

size_t ref_dev_payload(const hailo_stream_info_t *si)
{
    size_t hh = si->hw_shape.height, hw = si->hw_shape.width, hc = si->hw_shape.features;
    size_t ts = ref_type_size(si->format.type), e = 0;
    switch (si->format.order) {
    case HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP: {
        /* HailoRT's get_nms_hw_frame_size: slots of max(burst, per class), one extra burst */
        const hailo_nms_info_t *n = &si->nms_info;
        size_t slot = n->burst_size > n->max_bboxes_per_class ? n->burst_size : n->max_bboxes_per_class;
        return (size_t)n->chunks_per_frame * n->number_of_classes * (2 + slot * n->bbox_size) +
               (size_t)n->bbox_size * n->burst_size;
    }
    case HAILO_FORMAT_ORDER_NHCW:
    case HAILO_FORMAT_ORDER_NHWC:
    case HAILO_FORMAT_ORDER_FCR: e = hh * hw * hc; break;
    case HAILO_FORMAT_ORDER_F8CR: e = hh * align_up(hc, 8) * hw; break;
    case HAILO_FORMAT_ORDER_NC: e = hc; break;
    case HAILO_FORMAT_ORDER_NHW: e = hh * hw; break;
    case HAILO_FORMAT_ORDER_RGB888: e = hh * hw * 4; break;
    case HAILO_FORMAT_ORDER_YUY2: e = hh * hw * 2; break;
    default: e = hh / 2 * 3 * hw; break; /* YYUV, YYVU, YYYYUV */
    }
    return e * ts;
}

size_t ref_dev_bytes(const hailo_stream_info_t *si)
{
    if (si->format.order == HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP) return ref_dev_payload(si); /* unpadded */
    return align_up(ref_dev_payload(si), 8);
}

hailo_nms_info_t ref_nms_info(uint32_t classes, uint32_t per_class, uint32_t total, uint32_t chunks)
{
    hailo_nms_info_t n;
    memset(&n, 0, sizeof n);
    n.number_of_classes = classes;
    n.max_bboxes_per_class = per_class;
    n.max_bboxes_total = total;
    n.bbox_size = 8;
    n.chunks_per_frame = chunks;
    return n;
}

size_t ref_nms_total(const hailo_nms_info_t *n)
{
    return n->max_bboxes_total ? n->max_bboxes_total
                               : (size_t)n->number_of_classes * n->chunks_per_frame * n->max_bboxes_per_class;
}

/* The host frame is transposed when the TRANSPOSED flags of the user and device formats
 * differ. */
static int transposed(const hailo_stream_info_t *si, const hailo_format_t *f)
{
    return ((f->flags ^ si->format.flags) & HAILO_FORMAT_FLAGS_TRANSPOSED) != 0;
}

size_t ref_host_bytes(const hailo_stream_info_t *si, const hailo_format_t *user)
{
    size_t h = si->shape.height, w = si->shape.width, c = si->shape.features;
    if (transposed(si, user)) {
        size_t t = h;
        h = w;
        w = t;
    }
    const hailo_nms_info_t *n = &si->nms_info;
    size_t e;
    switch (user->order) {
    case HAILO_FORMAT_ORDER_HAILO_NMS_BY_CLASS:
        /* every chunk's proposals: chunks * max_bboxes_per_class per class */
        return (size_t)n->number_of_classes * (1 + 5 * (size_t)n->chunks_per_frame * n->max_bboxes_per_class) * 4;
    case HAILO_FORMAT_ORDER_HAILO_NMS_BY_SCORE: return 2 + ref_nms_total(n) * 22;
    case HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP: return ref_dev_bytes(si);
    case HAILO_FORMAT_ORDER_RGB4: e = h * align_up(w * c, 4); break;
    case HAILO_FORMAT_ORDER_NHW: e = h * w; break;
    case HAILO_FORMAT_ORDER_NC: e = c; break;
    case HAILO_FORMAT_ORDER_NV12:
    case HAILO_FORMAT_ORDER_NV21:
    case HAILO_FORMAT_ORDER_I420: e = h * w * 3 / 2; break;
    default: e = h * w * c; break;
    }
    return e * ref_type_size(user->type);
}

/* index of logical (h, w, c) in a host frame of `user` (shape H x W x C) */
static size_t host_index(const hailo_stream_info_t *si, const hailo_format_t *user, size_t h,
                         size_t w, size_t c)
{
    size_t H = si->shape.height, W = si->shape.width, C = si->shape.features;
    int t = transposed(si, user);
    switch (user->order) {
    case HAILO_FORMAT_ORDER_NHCW: return t ? (w * C + c) * H + h : (h * C + c) * W + w;
    case HAILO_FORMAT_ORDER_NCHW: return t ? (c * W + w) * H + h : (c * H + h) * W + w;
    case HAILO_FORMAT_ORDER_RGB4:
        return t ? w * align_up(H * C, 4) + h * C + c : h * align_up(W * C, 4) + w * C + c;
    case HAILO_FORMAT_ORDER_NHW: return t ? w * H + h : h * W + w;
    case HAILO_FORMAT_ORDER_NC: return c;
    default: return t ? (w * H + h) * C + c : (h * W + w) * C + c; /* NHWC, FCR, F8CR */
    }
}

/* index of logical (h, w, c) in the device frame */
static size_t dev_index(const hailo_stream_info_t *si, size_t h, size_t w, size_t c)
{
    size_t Wh = si->hw_shape.width, Ch = si->hw_shape.features;
    switch (si->format.order) {
    case HAILO_FORMAT_ORDER_NHCW: return (h * Ch + c) * Wh + w;
    case HAILO_FORMAT_ORDER_F8CR: return ((h * (Ch / 8) + c / 8) * Wh + w) * 8 + c % 8;
    case HAILO_FORMAT_ORDER_NC: return c;
    case HAILO_FORMAT_ORDER_NHW: return h * Wh + w;
    case HAILO_FORMAT_ORDER_RGB888: return (h * Wh + w) * 4 + (2 - c);
    default: return (h * Wh + w) * Ch + c; /* NHWC, FCR, YUY2 */
    }
}

static uint32_t get_int(const void *p, size_t i, size_t ts)
{
    if (ts == 1) return ((const uint8_t *)p)[i];
    uint16_t v;
    memcpy(&v, (const unsigned char *)p + 2 * i, 2);
    return v;
}

static void put_int(void *p, size_t i, size_t ts, uint32_t v)
{
    if (ts == 1) {
        ((uint8_t *)p)[i] = (uint8_t)v;
    } else {
        uint16_t x = (uint16_t)v;
        memcpy((unsigned char *)p + 2 * i, &x, 2);
    }
}

static float get_f32(const void *p, size_t i)
{
    float f;
    memcpy(&f, (const unsigned char *)p + 4 * i, 4);
    return f;
}

static void put_f32(void *p, size_t i, float f) { memcpy((unsigned char *)p + 4 * i, &f, 4); }

static void yuv_input(const hailo_stream_info_t *si, const void *host, unsigned char *dev)
{
    size_t H = si->shape.height, W = si->shape.width, Wh = si->hw_shape.width;
    size_t ts = ref_type_size(si->format.type);
    switch (si->format.order) {
    case HAILO_FORMAT_ORDER_YUY2:
        for (size_t h = 0; h < H; h++)
            for (size_t x = 0; x < 2 * W; x++) put_int(dev, h * Wh * 2 + x, ts, get_int(host, h * W * 2 + x, ts));
        return;
    case HAILO_FORMAT_ORDER_HAILO_YYUV:
    case HAILO_FORMAT_ORDER_HAILO_YYVU:
        for (size_t r = 0; r < H / 2; r++)
            for (size_t x = 0; x < W; x++) {
                put_int(dev, (r * 3 + 0) * Wh + x, ts, get_int(host, (2 * r) * W + x, ts));
                put_int(dev, (r * 3 + 1) * Wh + x, ts, get_int(host, (2 * r + 1) * W + x, ts));
                put_int(dev, (r * 3 + 2) * Wh + x, ts, get_int(host, H * W + r * W + x, ts));
            }
        return;
    default: /* YYYYUV */
        for (size_t r = 0; r < H / 2; r++) {
            for (size_t x = 0; x < W; x++) {
                put_int(dev, (r * 3 + 0) * Wh + x, ts, get_int(host, (2 * r) * W + x, ts));
                put_int(dev, (r * 3 + 1) * Wh + x, ts, get_int(host, (2 * r + 1) * W + x, ts));
            }
            for (size_t x = 0; x < W / 2; x++) {
                size_t u = H * W + r * (W / 2) + x, v = H * W + (H / 2) * (W / 2) + r * (W / 2) + x;
                put_int(dev, (r * 3 + 2) * Wh + x, ts, get_int(host, u, ts));
                put_int(dev, (r * 3 + 2) * Wh + Wh / 2 + x, ts, get_int(host, v, ts));
            }
        }
        return;
    }
}

void ref_input(const hailo_stream_info_t *si, const hailo_format_t *user, const void *host,
               unsigned char *dev)
{
    memset(dev, 0, ref_dev_bytes(si));
    hailo_format_order_t o = si->format.order;
    if (o == HAILO_FORMAT_ORDER_YUY2 || o == HAILO_FORMAT_ORDER_HAILO_YYUV ||
        o == HAILO_FORMAT_ORDER_HAILO_YYVU || o == HAILO_FORMAT_ORDER_HAILO_YYYYUV) {
        yuv_input(si, host, dev);
        return;
    }
    size_t H = si->shape.height, W = si->shape.width, C = si->shape.features;
    size_t dts = ref_type_size(si->format.type), uts = ref_type_size(user->type);
    for (size_t h = 0; h < H; h++)
        for (size_t w = 0; w < W; w++)
            for (size_t c = 0; c < C; c++) {
                size_t hi = host_index(si, user, h, w, c);
                uint32_t q = user->type == HAILO_FORMAT_TYPE_FLOAT32
                                 ? ref_quantize(get_f32(host, hi), &si->quant_info, si->format.type)
                                 : get_int(host, hi, uts);
                put_int(dev, dev_index(si, h, w, c), dts, q);
            }
}

/* ---------------------------------------------------------------- NMS --- */
#define REF_MAX_CLASSES 64
#define REF_MAX_PER_CLASS 256 /* chunks * max_bboxes_per_class */

/* Every proposal of class k, in chunk order, into props[k] (nothing is capped). */
static int nms_parse(const hailo_stream_info_t *si, const unsigned char *dev,
                     uint64_t props[REF_MAX_CLASSES][REF_MAX_PER_CLASS], size_t counts[REF_MAX_CLASSES])
{
    const hailo_nms_info_t *n = &si->nms_info;
    if (n->number_of_classes > REF_MAX_CLASSES ||
        (size_t)n->chunks_per_frame * n->max_bboxes_per_class > REF_MAX_PER_CLASS)
        return -1; /* beyond the model's tables: a test bug */
    size_t payload = ref_dev_payload(si), off = 0;
    memset(counts, 0, REF_MAX_CLASSES * sizeof counts[0]);
    for (size_t j = 0; j < n->chunks_per_frame; j++)
        for (size_t k = 0; k < n->number_of_classes; k++) {
            if (off + 2 > payload) return HAILO_INVALID_FRAME;
            size_t cnt = (size_t)dev[off] | ((size_t)dev[off + 1] << 8);
            off += 2;
            if (cnt > n->max_bboxes_per_class || off + cnt * 8 > payload) return HAILO_INVALID_FRAME;
            for (size_t i = 0; i < cnt; i++) {
                uint64_t p = 0;
                for (int b = 7; b >= 0; b--) p = (p << 8) | dev[off + 8 * i + (size_t)b];
                props[k][counts[k]++] = p;
            }
            off += cnt * 8;
        }
    return HAILO_SUCCESS;
}

static void nms_box(uint64_t p, const hailo_quant_info_t *qp, float out[5])
{
    uint32_t codes[5] = {(uint32_t)(p >> 36) & 0xFFF, (uint32_t)(p >> 24) & 0xFFF,
                         (uint32_t)(p >> 12) & 0xFFF, (uint32_t)p & 0xFFF, (uint32_t)(p >> 48)};
    for (int i = 0; i < 5; i++) out[i] = ref_dequantize(codes[i], qp->qp_zp, qp->qp_scale);
}

static int nms_output(const hailo_stream_info_t *si, const hailo_format_t *user,
                      const unsigned char *dev, unsigned char *host)
{
    static uint64_t props[REF_MAX_CLASSES][REF_MAX_PER_CLASS];
    size_t counts[REF_MAX_CLASSES];
    const hailo_nms_info_t *n = &si->nms_info;
    size_t bytes = ref_host_bytes(si, user);
    if (user->order == HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP) {
        memcpy(host, dev, bytes);
        return HAILO_SUCCESS;
    }
    int st = nms_parse(si, dev, props, counts);
    if (st != HAILO_SUCCESS) return st;
    memset(host, 0, bytes);
    float box[5];
    if (user->order == HAILO_FORMAT_ORDER_HAILO_NMS_BY_CLASS) {
        size_t o = 0;
        for (size_t k = 0; k < n->number_of_classes; k++) {
            put_f32(host, o++, (float)counts[k]);
            for (size_t i = 0; i < counts[k]; i++) {
                nms_box(props[k][i], &si->quant_info, box);
                for (int f = 0; f < 5; f++) put_f32(host, o++, box[f]);
            }
        }
        return HAILO_SUCCESS;
    }
    /* by score: (class, index) pairs in class-major order, insertion-sorted by score code */
    static size_t cls[REF_MAX_CLASSES * REF_MAX_PER_CLASS], idx[REF_MAX_CLASSES * REF_MAX_PER_CLASS];
    size_t m = 0;
    for (size_t k = 0; k < n->number_of_classes; k++)
        for (size_t i = 0; i < counts[k]; i++) {
            size_t j = m++;
            uint32_t score = (uint32_t)(props[k][i] >> 48);
            while (j > 0 && (uint32_t)(props[cls[j - 1]][idx[j - 1]] >> 48) < score) {
                cls[j] = cls[j - 1];
                idx[j] = idx[j - 1];
                j--;
            }
            cls[j] = k;
            idx[j] = i;
        }
    size_t total = ref_nms_total(n);
    if (m > total) m = total;
    host[0] = (unsigned char)(m & 0xFF);
    host[1] = (unsigned char)(m >> 8);
    for (size_t r = 0; r < m; r++) {
        unsigned char *d = host + 2 + r * 22;
        nms_box(props[cls[r]][idx[r]], &si->quant_info, box);
        memcpy(d, box, 20); /* little-endian hosts only (tests) */
        d[20] = (unsigned char)(cls[r] & 0xFF);
        d[21] = (unsigned char)(cls[r] >> 8);
    }
    return HAILO_SUCCESS;
}

int ref_output(const hailo_stream_info_t *si, const hailo_format_t *user, const unsigned char *dev,
               void *host)
{
    if (si->format.order == HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP)
        return nms_output(si, user, dev, (unsigned char *)host);
    int nhw = si->format.order == HAILO_FORMAT_ORDER_NHW;
    size_t H = si->shape.height, W = si->shape.width, C = nhw ? 1 : si->shape.features;
    size_t dts = ref_type_size(si->format.type), uts = ref_type_size(user->type);
    for (size_t h = 0; h < H; h++)
        for (size_t w = 0; w < W; w++)
            for (size_t c = 0; c < C; c++) {
                uint32_t q = get_int(dev, dev_index(si, h, w, c), dts);
                size_t hi = host_index(si, user, h, w, c);
                if (user->type != HAILO_FORMAT_TYPE_FLOAT32) {
                    put_int(host, hi, uts, q);
                } else if (nhw) {
                    put_f32(host, hi, (float)q);
                } else {
                    const hailo_quant_info_t *qp = &si->quant_info;
                    if (si->quant_infos_count == 1) qp = &si->quant_infos[0];
                    if (si->quant_infos_count > 1) qp = &si->quant_infos[c];
                    put_f32(host, hi, ref_dequantize(q, qp->qp_zp, qp->qp_scale));
                }
            }
    return HAILO_SUCCESS;
}

/* ------------------------------------------------------------ random data --- */
void ref_random_host(ref_rng *r, const hailo_stream_info_t *si, const hailo_format_t *user,
                     void *host, size_t bytes, int specials)
{
    if (user->type != HAILO_FORMAT_TYPE_FLOAT32) {
        unsigned char *p = (unsigned char *)host;
        for (size_t i = 0; i < bytes; i++) p[i] = (unsigned char)ref_rand(r);
        return;
    }
    const hailo_quant_info_t *qp = &si->quant_info;
    int top = si->format.type == HAILO_FORMAT_TYPE_UINT16 ? 65535 : 255;
    size_t n = bytes / 4;
    for (size_t i = 0; i < n; i++) {
        float code = (float)((int)ref_range(r, 0, (uint32_t)top + 16) - 8);
        float tie = (ref_rand(r) & 1) ? 0.5f : 0.0f;
        float x = (code + tie - qp->qp_zp) * qp->qp_scale;
        if (specials && ref_range(r, 0, 40) == 0) {
            const float sp[] = {NAN, INFINITY, -INFINITY, -0.0f, qp->limvals_min, qp->limvals_max,
                                1e30f, -1e30f, 1e-40f};
            x = sp[ref_range(r, 0, sizeof sp / sizeof sp[0] - 1)];
        }
        put_f32(host, i, x);
    }
}

void ref_random_nms(ref_rng *r, const hailo_stream_info_t *si, unsigned char *dev, size_t bytes)
{
    const hailo_nms_info_t *n = &si->nms_info;
    memset(dev, 0, bytes);
    size_t off = 0;
    const uint64_t scores[] = {100, 200, 300};
    /* mostly random counts; sometimes every count 0, or every count the maximum */
    uint32_t mode = ref_range(r, 0, 7);
    for (size_t j = 0; j < n->chunks_per_frame; j++)
        for (size_t k = 0; k < n->number_of_classes; k++) {
            size_t cnt = mode == 0 ? 0 : mode == 1 ? n->max_bboxes_per_class : ref_range(r, 0, n->max_bboxes_per_class);
            dev[off] = (unsigned char)(cnt & 0xFF);
            dev[off + 1] = (unsigned char)(cnt >> 8);
            off += 2;
            for (size_t i = 0; i < cnt; i++) {
                uint64_t score = (ref_rand(r) & 1) ? scores[ref_range(r, 0, 2)] : (ref_rand(r) & 0xFFFF);
                uint64_t p = score << 48;
                for (int f = 0; f < 4; f++) p |= (uint64_t)(ref_rand(r) & 0xFFF) << (36 - 12 * f);
                for (int b = 0; b < 8; b++) dev[off + 8 * i + (size_t)b] = (unsigned char)(p >> (8 * b));
            }
            off += cnt * 8;
        }
}
