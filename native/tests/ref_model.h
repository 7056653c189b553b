/*
 * ref_model.h - a slow, index-by-index model of docs/stream-layer.md for the tests.
 *
 * Independent of the library's kernels: every element is placed by an explicit index
 * formula (host order -> logical (h, w, c) -> device order), quantize rounds with
 * nearbyintf instead of the magic add, NMS is parsed into fixed per-class slots and sorted
 * by insertion. A bug must be made twice, in two styles, to pass unnoticed.
 */
#ifndef REF_MODEL_H
#define REF_MODEL_H

#include "hailo_stream.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t state;
} ref_rng;

uint32_t ref_rand(ref_rng *r);
/* uniform in [lo, hi] */
uint32_t ref_range(ref_rng *r, uint32_t lo, uint32_t hi);
float ref_unif(ref_rng *r, float lo, float hi);

uint32_t ref_quantize(float x, const hailo_quant_info_t *qp, hailo_format_type_t device_type);
float ref_dequantize(uint32_t q, float zp, float scale);

size_t ref_type_size(hailo_format_type_t t);
/* Device payload and frame bytes, host frame bytes of the resolved user format. */
size_t ref_dev_payload(const hailo_stream_info_t *si);
size_t ref_dev_bytes(const hailo_stream_info_t *si);
size_t ref_host_bytes(const hailo_stream_info_t *si, const hailo_format_t *user);
/* An nms_info with bbox_size 8 and no burst (burst fields, defuse info: zero). */
hailo_nms_info_t ref_nms_info(uint32_t classes, uint32_t per_class, uint32_t total, uint32_t chunks);
/* The by-score cap: max_bboxes_total, or classes * chunks * max_bboxes_per_class. */
size_t ref_nms_total(const hailo_nms_info_t *n);

/* Expected device frame (ref_dev_bytes long) of a host frame. */
void ref_input(const hailo_stream_info_t *si, const hailo_format_t *user, const void *host,
               unsigned char *dev);
/* Expected host frame (ref_host_bytes long) of a device frame; returns a hailo_status
 * (HAILO_INVALID_FRAME for a malformed NMS frame). */
int ref_output(const hailo_stream_info_t *si, const hailo_format_t *user, const unsigned char *dev,
               void *host);

/* Fills a host frame: codes of the user type, or float32 values around the QP's range with
 * exact .5 ties and (when specials) NaN, +-inf, -0 and the limvals. */
void ref_random_host(ref_rng *r, const hailo_stream_info_t *si, const hailo_format_t *user,
                     void *host, size_t bytes, int specials);
/* A device NMS frame with random valid counts (sometimes all 0, sometimes all the maximum);
 * ties across classes on purpose. */
void ref_random_nms(ref_rng *r, const hailo_stream_info_t *si, unsigned char *dev, size_t bytes);

#endif /* REF_MODEL_H */
