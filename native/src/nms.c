/*
 * nms.c - device HAILO_NMS_ON_CHIP frames -> host HAILO_NMS_BY_CLASS / HAILO_NMS_BY_SCORE.
 *
 * A device frame is chunks_per_frame blocks, each: for every class a little-endian uint16
 * count, then count 64-bit proposals, packed back to back. Decoding makes two passes over
 * the frame: the first validates every count (nothing is written if the frame is
 * malformed) and merges the counts of a class across chunks (capped at
 * max_bboxes_per_class); the second records where each kept proposal is, class by class.
 * The workspace for that is sized at context creation (or allocated per call by the
 * standalone functions).
 */
#include "hs_internal.h"

#include <stdlib.h>

static uint16_t rd16(const unsigned char *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static uint64_t rd64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static void wr16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v & 0xFFu);
    p[1] = (unsigned char)(v >> 8);
}

static void wrf(unsigned char *p, float f)
{
    uint32_t v = hs_f32_bits(f);
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)((v >> (8 * i)) & 0xFFu);
}

/* The most proposals a frame can hold: K * max_bboxes_per_class, and never more than its
 * payload has room for (each takes HAILO_NMS_ON_CHIP_BBOX_SIZE bytes). This bounds the
 * workspace by the frame, whatever the declared counts. */
static size_t max_proposals(const hailo_nms_info_t *nms)
{
    size_t d, room = hs_nms_payload_bytes(nms) / HAILO_NMS_ON_CHIP_BBOX_SIZE;
    if (!hs_mul(nms->number_of_classes, nms->max_bboxes_per_class, &d) || d > room) d = room;
    return d;
}

/* Workspace layout, in uint32 slots: merged[K], start[K], fill[K], pos[D]; by score also
 * key[D], order[D], tmp[D], cls[D]. D = max_proposals(). */
static int workspace_slots(const hailo_nms_info_t *nms, int by_score, size_t *slots)
{
    size_t d = max_proposals(nms), k3, extra;
    if (!hs_mul(nms->number_of_classes, 3, &k3)) return 0;
    if (!hs_mul(d, by_score ? 5 : 1, &extra) || extra > SIZE_MAX - k3) return 0;
    *slots = k3 + extra;
    return 1;
}

size_t hs_nms_workspace_size(const hailo_nms_info_t *nms, int by_score)
{
    size_t slots, bytes;
    if (!workspace_slots(nms, by_score, &slots) || !hs_mul(slots, sizeof(uint32_t), &bytes))
        return 0;
    return bytes;
}

/* Dequantized y_min, x_min, y_max, x_max, score of a proposal. */
static void decode_box(uint64_t v, float zp, float scale, float out[5])
{
    out[0] = hs_dequant1((float)((v >> 36) & 0xFFFu), zp, scale);
    out[1] = hs_dequant1((float)((v >> 24) & 0xFFFu), zp, scale);
    out[2] = hs_dequant1((float)((v >> 12) & 0xFFFu), zp, scale);
    out[3] = hs_dequant1((float)(v & 0xFFFu), zp, scale);
    out[4] = hs_dequant1((float)(v >> 48), zp, scale);
}

/* Stable bottom-up merge sort of idx[0..n) by key[idx] descending. */
static void sort_by_key_desc(uint32_t *idx, uint32_t *tmp, const uint32_t *key, size_t n)
{
    uint32_t *a = idx, *b = tmp;
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) b[k++] = key[a[j]] > key[a[i]] ? a[j++] : a[i++];
            while (i < mid) b[k++] = a[i++];
            while (j < hi) b[k++] = a[j++];
        }
        uint32_t *t = a;
        a = b;
        b = t;
    }
    if (a != idx) memcpy(idx, a, n * sizeof *idx);
}

hailo_status hs_nms_decode(const void *src, size_t src_size, void *dst, size_t dst_size,
                           const hailo_nms_info_t *nms, const hailo_quant_info_t *qp, int by_score,
                           void *workspace)
{
    const unsigned char *s = (const unsigned char *)src;
    unsigned char *d = (unsigned char *)dst;
    const size_t K = nms->number_of_classes, maxpc = nms->max_bboxes_per_class;
    const size_t payload = hs_nms_payload_bytes(nms);
    if (payload == 0 || src_size < payload) return HAILO_INSUFFICIENT_BUFFER;
    uint32_t *merged = (uint32_t *)workspace, *start = merged + K, *fill = start + K;
    uint32_t *pos = fill + K;

    /* pass 1: validate, merge counts */
    memset(merged, 0, K * sizeof *merged);
    size_t off = 0;
    for (size_t j = 0; j < nms->chunks_per_frame; j++) {
        for (size_t k = 0; k < K; k++) {
            if (payload - off < 2) return HAILO_INVALID_FRAME;
            size_t cnt = rd16(s + off);
            off += 2;
            if (cnt > maxpc || cnt * HAILO_NMS_ON_CHIP_BBOX_SIZE > payload - off)
                return HAILO_INVALID_FRAME;
            size_t m = merged[k] + cnt;
            merged[k] = (uint32_t)(m < maxpc ? m : maxpc);
            off += cnt * HAILO_NMS_ON_CHIP_BBOX_SIZE;
        }
    }
    size_t total = 0;
    for (size_t k = 0; k < K; k++) {
        start[k] = fill[k] = (uint32_t)total;
        total += merged[k];
    }

    /* pass 2: where each kept proposal is, class-major, device order within a class */
    off = 0;
    for (size_t j = 0; j < nms->chunks_per_frame; j++) {
        for (size_t k = 0; k < K; k++) {
            size_t cnt = rd16(s + off);
            off += 2;
            for (size_t i = 0; i < cnt && fill[k] < start[k] + merged[k]; i++)
                pos[fill[k]++] = (uint32_t)(off + i * HAILO_NMS_ON_CHIP_BBOX_SIZE);
            off += cnt * HAILO_NMS_ON_CHIP_BBOX_SIZE;
        }
    }

    const float zp = qp->qp_zp, scale = qp->qp_scale;
    float box[5];
    size_t o = 0; /* bytes written */
    if (!by_score) {
        for (size_t k = 0; k < K; k++) {
            wrf(d + o, (float)merged[k]);
            o += 4;
            for (size_t i = 0; i < merged[k]; i++) {
                decode_box(rd64(s + pos[start[k] + i]), zp, scale, box);
                for (int f = 0; f < 5; f++, o += 4) wrf(d + o, box[f]);
            }
        }
    } else {
        const size_t D = max_proposals(nms);
        uint32_t *key = pos + D, *order = key + D, *tmp = order + D, *cls = tmp + D;
        for (size_t k = 0; k < K; k++) {
            for (size_t i = start[k]; i < start[k] + merged[k]; i++) {
                key[i] = (uint32_t)(rd64(s + pos[i]) >> 48); /* the score code */
                cls[i] = (uint32_t)k;
                order[i] = (uint32_t)i;
            }
        }
        /* by the score code: the same order as the dequantized score (scale > 0), and
         * ties are exact */
        sort_by_key_desc(order, tmp, key, total);
        size_t cap = hs_nms_total(nms);
        size_t n = total < cap ? total : cap;
        wr16(d, (uint16_t)n);
        o = 2;
        for (size_t r = 0; r < n; r++) {
            decode_box(rd64(s + pos[order[r]]), zp, scale, box);
            for (int f = 0; f < 5; f++, o += 4) wrf(d + o, box[f]);
            wr16(d + o, (uint16_t)cls[order[r]]);
            o += 2;
        }
    }
    if (o < dst_size) memset(d + o, 0, dst_size - o);
    return HAILO_SUCCESS;
}

/* Validation shared by the two standalone decoders. */
static hailo_status check_standalone(const void *src, const void *dst,
                                     const hailo_nms_info_t *nms, const hailo_quant_info_t *qp)
{
    if (src == NULL || dst == NULL || nms == NULL || qp == NULL) return HAILO_INVALID_ARGUMENT;
    if (nms->number_of_classes == 0 || nms->max_bboxes_per_class == 0 ||
        nms->chunks_per_frame == 0 || nms->bbox_size != HAILO_NMS_ON_CHIP_BBOX_SIZE)
        return HAILO_INVALID_ARGUMENT;
    if (!hs_qp_valid(qp)) return HAILO_INVALID_ARGUMENT;
    /* proposal offsets are kept as uint32, like hw_frame_size */
    size_t payload = hs_nms_payload_bytes(nms);
    if (payload == 0 || payload > UINT32_MAX) return HAILO_INVALID_ARGUMENT;
    return HAILO_SUCCESS;
}

static hailo_status decode_standalone(const void *src, size_t src_size, void *dst,
                                      size_t dst_size, const hailo_nms_info_t *nms,
                                      const hailo_quant_info_t *qp, int by_score)
{
    if (src_size < hs_nms_payload_bytes(nms)) return HAILO_INSUFFICIENT_BUFFER;
    if (hs_overlap(src, src_size, dst, dst_size)) return HAILO_INVALID_ARGUMENT;
    size_t ws = hs_nms_workspace_size(nms, by_score);
    void *w = ws == 0 ? NULL : malloc(ws);
    if (w == NULL) return HAILO_OUT_OF_HOST_MEMORY;
    hailo_status st = hs_nms_decode(src, src_size, dst, dst_size, nms, qp, by_score, w);
    free(w);
    return st;
}

hailo_status hailo_nms_decode_by_class(const void *src, size_t src_size, float *dst,
                                       size_t dst_size, const hailo_nms_info_t *nms_info,
                                       const hailo_quant_info_t *quant_info)
{
    hailo_status st = check_standalone(src, dst, nms_info, quant_info);
    if (st != HAILO_SUCCESS) return st;
    size_t per_class, want;
    if (!hs_mul(nms_info->max_bboxes_per_class, 5, &per_class) || per_class == SIZE_MAX ||
        !hs_mul(nms_info->number_of_classes, per_class + 1, &want) || !hs_mul(want, 4, &want))
        return HAILO_INVALID_ARGUMENT;
    if (dst_size != want) return HAILO_INSUFFICIENT_BUFFER;
    return decode_standalone(src, src_size, dst, dst_size, nms_info, quant_info, 0);
}

hailo_status hailo_nms_decode_by_score(const void *src, size_t src_size, void *dst,
                                       size_t dst_size, const hailo_nms_info_t *nms_info,
                                       const hailo_quant_info_t *quant_info)
{
    hailo_status st = check_standalone(src, dst, nms_info, quant_info);
    if (st != HAILO_SUCCESS) return st;
    uint32_t total = hs_nms_total(nms_info);
    if (total > 65535u) return HAILO_INVALID_ARGUMENT; /* the count is a uint16 */
    if (dst_size != 2 + (size_t)total * HAILO_NMS_BY_SCORE_DETECTION_SIZE)
        return HAILO_INSUFFICIENT_BUFFER;
    return decode_standalone(src, src_size, dst, dst_size, nms_info, quant_info, 1);
}
