/*
 * nms.c - device HAILO_NMS_ON_CHIP frames -> host HAILO_NMS_BY_CLASS / HAILO_NMS_BY_SCORE.
 *
 * The rules are HailoRT's (docs/stream-layer.md, "NMS"): a device frame is chunks_per_frame
 * chunks, each: for every class a little-endian uint16 count (at most max_bboxes_per_class)
 * then count 64-bit proposals, packed back to back (transform__d2h_NMS, transform.cpp). A
 * class of the host frame holds the proposals of that class of every chunk, in chunk order,
 * all of them.
 *
 * Decoding walks the frame twice. The first pass validates every count (nothing is written
 * when the frame is malformed) and notes where each chunk starts; the second goes class by
 * class, taking from every chunk the next block of that class (one offset per chunk, as
 * HailoRT's chunk_offsets). By score, it keeps the best `total` proposals in a heap on the
 * way. The workspace for that is sized at context creation (or allocated per call by the
 * standalone functions), and bounded by what a frame can hold.
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

/* One proposal kept for the by-score frame. */
typedef struct {
    uint32_t off;   /* byte offset of the proposal in the device frame                 */
    uint32_t seq;   /* its position in the by-class order (class, chunk, device order) */
    uint16_t score; /* the score code: the order of the dequantized scores (scale > 0) */
    uint16_t cls;
} nms_det;

/* The most proposals a by-score frame keeps: its total, and never more than a valid frame
 * can hold (chunks * classes * max_bboxes_per_class, each HAILO_NMS_ON_CHIP_BBOX_SIZE bytes
 * of the payload). 0 when the payload does not fit size_t. */
static size_t by_score_keep(const hailo_nms_info_t *nms)
{
    size_t payload = hs_nms_payload_bytes(nms), room;
    if (payload == 0 || !hs_mul(nms->chunks_per_frame, nms->number_of_classes, &room) ||
        !hs_mul(room, nms->max_bboxes_per_class, &room))
        return 0;
    uint64_t total = hs_nms_total(nms);
    return total < room ? (size_t)total : room;
}

size_t hs_nms_workspace_size(const hailo_nms_info_t *nms, int by_score)
{
    /* chunks <= payload / 2: one uint32 offset per chunk never outgrows the frame */
    size_t chunks, dets = 0;
    if (hs_nms_payload_bytes(nms) == 0 || !hs_mul(nms->chunks_per_frame, sizeof(uint32_t), &chunks))
        return 0;
    if (by_score) {
        size_t keep = by_score_keep(nms);
        if (keep == 0 || !hs_mul(keep, sizeof(nms_det), &dets) || dets > SIZE_MAX - chunks)
            return 0;
    }
    return chunks + dets;
}

/* Dequantized y_min, x_min, y_max, x_max, score of a proposal (HailoRT's
 * transform__parse_and_copy_bbox, then dequantize_output_buffer_nms). */
static void decode_box(uint64_t v, float zp, float scale, float out[5])
{
    out[0] = hs_dequant1((float)((v >> 36) & 0xFFFu), zp, scale);
    out[1] = hs_dequant1((float)((v >> 24) & 0xFFFu), zp, scale);
    out[2] = hs_dequant1((float)((v >> 12) & 0xFFFu), zp, scale);
    out[3] = hs_dequant1((float)(v & 0xFFFu), zp, scale);
    out[4] = hs_dequant1((float)(v >> 48), zp, scale);
}

/* ------------------------------------------------------- the by-score heap --- */
/* a ranks after b: a lower score, or the same score later in the by-class order */
static int after(const nms_det *a, const nms_det *b)
{
    return a->score < b->score || (a->score == b->score && a->seq > b->seq);
}

static void swap_det(nms_det *a, nms_det *b)
{
    nms_det t = *a;
    *a = *b;
    *b = t;
}

/* h[0..n) is a heap whose root ranks last of all. */
static void sift_down(nms_det *h, size_t i, size_t n)
{
    for (;;) {
        size_t l = 2 * i + 1, m = l;
        if (l >= n) return;
        if (l + 1 < n && after(&h[l + 1], &h[l])) m = l + 1;
        if (!after(&h[m], &h[i])) return;
        swap_det(&h[m], &h[i]);
        i = m;
    }
}

static void sift_up(nms_det *h, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!after(&h[i], &h[parent])) return;
        swap_det(&h[i], &h[parent]);
        i = parent;
    }
}

/* The heap h[0..n) -> sorted, best first (the last-ranked root goes to the end each step). */
static void sort_heap(nms_det *h, size_t n)
{
    for (size_t m = n; m > 1; m--) {
        swap_det(&h[0], &h[m - 1]);
        sift_down(h, 0, m - 1);
    }
}

/* ------------------------------------------------------------------ decode --- */
hailo_status hs_nms_decode(const void *src, size_t src_size, void *dst, size_t dst_size,
                           const hailo_nms_info_t *nms, const hailo_quant_info_t *qp, int by_score,
                           void *workspace)
{
    const unsigned char *s = (const unsigned char *)src;
    unsigned char *d = (unsigned char *)dst;
    const size_t K = nms->number_of_classes, J = nms->chunks_per_frame;
    const size_t maxpc = nms->max_bboxes_per_class, B = HAILO_NMS_ON_CHIP_BBOX_SIZE;
    /* counts within maxpc never read past this: a frame of HailoRT's size holds more */
    const size_t reach = hs_nms_payload_bytes(nms);
    if (reach == 0 || src_size < reach) return HAILO_INSUFFICIENT_BUFFER;
    uint32_t *chunk = (uint32_t *)workspace; /* where the next block of each chunk is */

    /* pass 1: validate every count; note where each chunk starts */
    size_t off = 0;
    for (size_t j = 0; j < J; j++) {
        chunk[j] = (uint32_t)off;
        for (size_t k = 0; k < K; k++) {
            size_t cnt = rd16(s + off);
            if (cnt > maxpc) return HAILO_INVALID_FRAME;
            off += 2 + cnt * B;
        }
    }

    const float zp = qp->qp_zp, scale = qp->qp_scale;
    float box[5];
    size_t o = 0; /* bytes written */
    if (!by_score) {
        /* pass 2: class k = the class-k block of chunk 0, then of chunk 1, ... */
        for (size_t k = 0; k < K; k++) {
            size_t count_at = o, count = 0;
            o += 4;
            for (size_t j = 0; j < J; j++) {
                size_t p = chunk[j], cnt = rd16(s + p);
                p += 2;
                for (size_t i = 0; i < cnt; i++, p += B) {
                    decode_box(rd64(s + p), zp, scale, box);
                    for (int f = 0; f < 5; f++, o += 4) wrf(d + o, box[f]);
                }
                chunk[j] = (uint32_t)p;
                count += cnt;
            }
            wrf(d + count_at, (float)count);
        }
    } else {
        /* pass 2 in the same order, keeping the best `keep` proposals */
        nms_det *best = (nms_det *)(void *)(chunk + J);
        const size_t keep = by_score_keep(nms);
        size_t n = 0;
        uint32_t seq = 0;
        for (size_t k = 0; k < K; k++) {
            for (size_t j = 0; j < J; j++) {
                size_t p = chunk[j], cnt = rd16(s + p);
                p += 2;
                for (size_t i = 0; i < cnt; i++, p += B) {
                    nms_det c = {(uint32_t)p, seq++, rd16(s + p + 6), (uint16_t)k};
                    if (n < keep) {
                        best[n] = c;
                        sift_up(best, n++);
                    } else if (c.score > best[0].score) { /* a tie ranks after: later seq */
                        best[0] = c;
                        sift_down(best, 0, n);
                    }
                }
                chunk[j] = (uint32_t)p;
            }
        }
        sort_heap(best, n);
        wr16(d, (uint16_t)n);
        o = 2;
        for (size_t r = 0; r < n; r++) {
            decode_box(rd64(s + best[r].off), zp, scale, box);
            for (int f = 0; f < 5; f++, o += 4) wrf(d + o, box[f]);
            wr16(d + o, best[r].cls);
            o += 2;
        }
    }
    if (o < dst_size) memset(d + o, 0, dst_size - o);
    return HAILO_SUCCESS;
}

/* ------------------------------------------------------------- standalone --- */
/* Validation shared by the two standalone decoders. */
static hailo_status check_standalone(const void *src, const void *dst,
                                     const hailo_nms_info_t *nms, const hailo_quant_info_t *qp)
{
    if (src == NULL || dst == NULL || nms == NULL || qp == NULL) return HAILO_INVALID_ARGUMENT;
    if (nms->number_of_classes == 0 || nms->max_bboxes_per_class == 0 ||
        nms->chunks_per_frame == 0 || nms->bbox_size != HAILO_NMS_ON_CHIP_BBOX_SIZE ||
        (uint32_t)nms->burst_type >= (uint32_t)HAILO_BURST_TYPE_COUNT)
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
    size_t want = hs_nms_by_class_bytes(nms_info);
    if (want == 0) return HAILO_INVALID_ARGUMENT;
    if (dst_size != want) return HAILO_INSUFFICIENT_BUFFER;
    return decode_standalone(src, src_size, dst, dst_size, nms_info, quant_info, 0);
}

hailo_status hailo_nms_decode_by_score(const void *src, size_t src_size, void *dst,
                                       size_t dst_size, const hailo_nms_info_t *nms_info,
                                       const hailo_quant_info_t *quant_info)
{
    hailo_status st = check_standalone(src, dst, nms_info, quant_info);
    if (st != HAILO_SUCCESS) return st;
    uint64_t total = hs_nms_total(nms_info);
    /* the count is a uint16, and so are the class ids */
    if (total > HAILO_NMS_BY_SCORE_MAX_DETECTIONS || nms_info->number_of_classes > 65536u)
        return HAILO_INVALID_ARGUMENT;
    if (dst_size != 2 + (size_t)total * HAILO_NMS_BY_SCORE_DETECTION_SIZE)
        return HAILO_INSUFFICIENT_BUFFER;
    return decode_standalone(src, src_size, dst, dst_size, nms_info, quant_info, 1);
}
