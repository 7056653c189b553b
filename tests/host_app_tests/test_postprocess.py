"""host_app.postprocess without TensorFlow: anchors, SSD and YOLO decoding against plain numpy
references, NMS and IoU properties, box agreement (precision / recall / mAP) against a direct
reference, the spec (presets, errors naming the item, the round trip through a HAR), hooks,
classification, drawing, the MTCNN pyramid tiling, and the CLI's post-processing usage errors
(before TensorFlow). The real models are in test_detectors.py."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from host_app.errors import AppError, UsageError
from host_app.postprocess import (Detection, InputMapping, NetworkInfo, Result, TopClass, agreement,
                                  average_precision, decode_ssd, decode_yolo, draw, draw_rgb,
                                  iou, nms, parse_postprocess, ssd_anchors, weighted_nms)
from host_app.postprocess import boxes as bx
from host_app.postprocess import mtcnn as mt
from host_app.postprocess.ssd import AnchorOptions

REPO = Path(__file__).resolve().parents[2]
ALL_OPS = REPO / "tests" / "data" / "har_v1" / "all_ops.har"  # committed, quantized, 13x11x3 in
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


# ==== references: the documented algorithms written plainly =====================================

def ref_anchors(o: AnchorOptions) -> np.ndarray:
    """MediaPipe's SSD anchor generation, loop by loop."""
    def scale(i, n):
        return (o.min_scale + o.max_scale) / 2 if n == 1 else \
            o.min_scale + (o.max_scale - o.min_scale) * i / (n - 1)

    out, n, layer = [], len(o.strides), 0
    while layer < n:
        ratios, scales, last = [], [], layer
        while last < n and o.strides[last] == o.strides[layer]:
            s = scale(last, n)
            if last == 0 and o.reduce_lowest:
                ratios += [1.0, 2.0, 0.5]
                scales += [0.1, s, s]
            else:
                for r in o.aspect_ratios:
                    ratios.append(r)
                    scales.append(s)
                if o.interpolated > 0:
                    nxt = 1.0 if last == n - 1 else scale(last + 1, n)
                    scales.append(math.sqrt(s * nxt))
                    ratios.append(o.interpolated)
            last += 1
        gh = math.ceil(o.input_hw[0] / o.strides[layer])
        gw = math.ceil(o.input_hw[1] / o.strides[layer])
        for y in range(gh):
            for x in range(gw):
                for r, s in zip(ratios, scales):
                    w, h = (1.0, 1.0) if o.fixed_size else (s * math.sqrt(r), s / math.sqrt(r))
                    out.append(((x + o.offset[0]) / gw, (y + o.offset[1]) / gh, w, h))
        layer = last
    return np.array(out).reshape(-1, 4)


def ref_decode(raw, anchors, scale, order, exp, k):
    boxes, kps = np.zeros(raw.shape[:1] + (4,)), np.zeros((raw.shape[0], k, 2))
    for i, (v, (ax, ay, aw, ah)) in enumerate(zip(raw, anchors)):
        vx, vy, vw, vh = (v[0], v[1], v[2], v[3]) if order == "xywh" else (v[1], v[0], v[3], v[2])
        x, y = vx / scale[0] * aw + ax, vy / scale[1] * ah + ay
        w = (math.exp(vw / scale[2]) if exp else vw / scale[2]) * aw
        h = (math.exp(vh / scale[3]) if exp else vh / scale[3]) * ah
        boxes[i] = (x - w / 2, y - h / 2, x + w / 2, y + h / 2)
        for j in range(k):
            a, b = v[4 + 2 * j], v[5 + 2 * j]
            px, py = (a, b) if order == "xywh" else (b, a)
            kps[i, j] = (px / scale[0] * aw + ax, py / scale[1] * ah + ay)
    return boxes, kps


def ref_iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = max(0, a[2] - a[0]) * max(0, a[3] - a[1]) + max(0, b[2] - b[0]) * max(0, b[3] - b[1]) \
        - inter
    return inter / union if union > 0 else 0.0


def ref_nms(boxes, scores, thr) -> list[int]:
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    keep, dead = [], set()
    for i in order:
        if i in dead:
            continue
        keep.append(i)
        for j in order:
            if j not in dead and j != i and ref_iou(boxes[i], boxes[j]) > thr:
                dead.add(j)
        dead.add(i)
    return keep


def sig(x):
    return 1.0 / (1.0 + math.exp(-x))


def ref_yolo(raw, anchors, input_hw, version):
    """Loop over cells and anchors; returns (boxes, objectness, class scores) in M order."""
    n, gh, gw = raw.shape[:3]
    a = len(anchors)
    t = raw.reshape(n, gh, gw, a, -1)
    out_b, out_o, out_c = [], [], []
    for i in range(n):
        bs, os_, cs = [], [], []
        for y in range(gh):
            for x in range(gw):
                for k in range(a):
                    v = t[i, y, x, k]
                    if version == 5:
                        cx = (2 * sig(v[0]) - 0.5 + x) / gw
                        cy = (2 * sig(v[1]) - 0.5 + y) / gh
                        w = (2 * sig(v[2])) ** 2 * anchors[k][0] / input_hw[1]
                        h = (2 * sig(v[3])) ** 2 * anchors[k][1] / input_hw[0]
                    else:
                        cx, cy = (sig(v[0]) + x) / gw, (sig(v[1]) + y) / gh
                        w = math.exp(v[2]) * anchors[k][0] / input_hw[1]
                        h = math.exp(v[3]) * anchors[k][1] / input_hw[0]
                    bs.append((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
                    os_.append(sig(v[4]))
                    cs.append([sig(c) for c in v[5:]])
        out_b.append(bs)
        out_o.append(os_)
        out_c.append(cs)
    return np.array(out_b), np.array(out_o), np.array(out_c)


def ref_ap(refs, tests, cls, thr=0.5) -> float:
    """AP from its definition: precision and recall of each top-k prefix of the ranked tests,
    matched from scratch, then the area under the non-increasing envelope."""
    n_gt = sum(d.class_id == cls for r in refs for d in r.detections)
    ranked = sorted([(d.score, i, j) for i, t in enumerate(tests) for j, d in enumerate(t.detections)
                     if d.class_id == cls], key=lambda v: -v[0])
    if not ranked:
        return 0.0
    points = []
    for k in range(1, len(ranked) + 1):
        used, tp = set(), 0
        for _, i, j in ranked[:k]:
            best, best_iou = None, thr
            for g, d in enumerate(refs[i].detections):
                if d.class_id != cls or (i, g) in used:
                    continue
                v = ref_iou(tests[i].detections[j].box, d.box)
                if v >= best_iou and (best is None or v > best_iou):
                    best, best_iou = g, v
            if best is not None:
                used.add((i, best))
                tp += 1
        points.append((tp / k, tp / n_gt))
    ap, prev_r = 0.0, 0.0
    for k, (_, r) in enumerate(points):
        ap += (r - prev_r) * max(p for p, _ in points[k:])
        prev_r = r
    return ap


# ==== strategies ================================================================================

@st.composite
def box_sets(draw, max_n=12):
    n = draw(st.integers(0, max_n))
    xy = draw(st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60), st.integers(1, 30),
                                 st.integers(1, 30)), min_size=n, max_size=n))
    b = np.array([(x, y, x + w, y + h) for x, y, w, h in xy], np.float64).reshape(-1, 4)
    scores = np.array(draw(st.lists(st.integers(1, 50), min_size=n, max_size=n)), np.float64) / 50
    return b, scores


# ==== anchors and SSD decoding ==================================================================

def test_blazeface_anchors_are_the_documented_896():
    post = parse_postprocess("blazeface")
    a = ssd_anchors(post.anchor_options())
    assert a.shape == (896, 4)
    # 16x16 cells of 2 anchors (stride 8), then 8x8 cells of 6 (the three stride-16 layers)
    assert np.allclose(a[0], a[1]) and np.allclose(a[0], [0.5 / 16, 0.5 / 16, 1, 1])
    assert np.allclose(a[511], [15.5 / 16, 15.5 / 16, 1, 1])
    assert np.allclose(a[512:518, :2], [0.5 / 8, 0.5 / 8]) and np.allclose(a[-1], [7.5 / 8] * 2 + [1, 1])
    assert np.array_equal(a, ref_anchors(post.anchor_options()))
    full = parse_postprocess("blazeface-full")
    assert ssd_anchors(full.anchor_options()).shape == (2304, 4)


@SETTINGS
@given(st.lists(st.sampled_from([4, 8, 16, 32]), min_size=1, max_size=5).map(sorted),
       st.integers(32, 200), st.integers(32, 200), st.floats(0.05, 0.4), st.floats(0.5, 1.0),
       st.lists(st.sampled_from([0.5, 1.0, 2.0, 3.0]), min_size=1, max_size=3, unique=True),
       st.sampled_from([0.0, 1.0, 2.0]), st.booleans(), st.booleans(), st.floats(0, 1))
def test_anchors_match_the_reference(strides, h, w, lo, hi, ratios, interp, fixed, reduce, off):
    o = AnchorOptions((h, w), tuple(strides), lo, hi, (off, 0.5), tuple(ratios), interp, fixed,
                      reduce)
    assert np.allclose(ssd_anchors(o), ref_anchors(o), rtol=0, atol=1e-12)


@SETTINGS
@given(st.integers(0, 2**31 - 1), st.sampled_from(["xywh", "yxhw"]), st.booleans(),
       st.integers(0, 4))
def test_ssd_decoding_matches_the_reference(seed, order, exp, k):
    rng = np.random.default_rng(seed)
    o = AnchorOptions((64, 96), (8, 16), 0.2, 0.8, (0.5, 0.5), (1.0, 2.0), 1.0, False)
    anchors = ssd_anchors(o)
    raw = rng.normal(0, 1 if exp else 20, (2, len(anchors), 4 + 2 * k + 1))
    scale = rng.uniform(16, 128, 4)
    got_b, got_k = decode_ssd(raw, anchors, scale, order, exp, k)
    for i in range(2):
        rb, rk = ref_decode(raw[i], anchors, scale, order, exp, k)
        assert np.allclose(got_b[i], rb) and np.allclose(got_k[i], rk)


def _encode(box_px, kps_px, anchor, scale, hw):
    """The raw values BlazeFace would output for a box / keypoints (the decoding inverted)."""
    h, w = hw
    cx, cy = (box_px[0] + box_px[2]) / 2 / w, (box_px[1] + box_px[3]) / 2 / h
    bw, bh = (box_px[2] - box_px[0]) / w, (box_px[3] - box_px[1]) / h
    ax, ay, aw, ah = anchor
    raw = [(cx - ax) * scale / aw, (cy - ay) * scale / ah, bw * scale / aw, bh * scale / ah]
    for x, y in kps_px:
        raw += [(x / w - ax) * scale / aw, (y / h - ay) * scale / ah]
    return raw


def test_blazeface_boxes_come_back_in_pixels_of_the_original_image():
    """Planted faces -> raw tensors -> Ssd.apply -> the same boxes and keypoints in the pixels of
    a 480x640 photo, through stretch and crop resizes; weighted NMS merges a face's duplicate
    anchors, hard NMS keeps its best."""
    net = NetworkInfo("bf", (128, 128, 3), {"boxes": (896, 16), "scores": (896, 1)})
    anchors = ssd_anchors(parse_postprocess("blazeface").anchor_options())
    for resize, region in (("stretch", (0, 0, 640, 480)), ("crop", (80, 0, 480, 480))):
        post = parse_postprocess("blazeface").bind(
            NetworkInfo(net.name, net.input_shape, net.outputs, resize=resize))
        rx, ry, rw, rh = region[0], region[1], region[2], region[3]
        faces = [((0.20, 0.25, 0.40, 0.50), 7), ((0.55, 0.50, 0.90, 0.95), 600)]
        raw = np.zeros((1, 896, 16))
        scores = np.full((1, 896, 1), -20.0)
        expected = []
        for (x0, y0, x1, y1), a in faces:
            kps = [(x0 + (x1 - x0) * f, y0 + (y1 - y0) * g) for f, g in
                   ((0.3, 0.4), (0.7, 0.4), (0.5, 0.6), (0.5, 0.8), (0.1, 0.5), (0.9, 0.5))]
            raw[0, a] = _encode((x0, y0, x1, y1), kps, anchors[a], 128, (1, 1))
            scores[0, a] = 3.0
            expected.append(((rx + x0 * rw, ry + y0 * rh, rx + x1 * rw, ry + y1 * rh),
                             [(rx + x * rw, ry + y * rh) for x, y in kps]))
        raw[0, 6] = raw[0, 7] + 0.5  # the first face again from its cell's other anchor, a
        scores[0, 6] = 1.0           # little off, a lower score: merged (weighted) or dropped
        (res,) = post.apply({"boxes": raw, "scores": scores}, (480, 640, 3))
        assert [d.label for d in res.detections] == ["face", "face"]
        assert res.image_shape == (480, 640)
        for det, (box, kps) in zip(sorted(res.detections, key=lambda d: d.box[0]), expected):
            assert np.allclose(det.box, box, atol=2.5), (resize, det.box, box)
            assert np.allclose(det.keypoints, kps, atol=2.5)
        assert res.detections[0].score == pytest.approx(1 / (1 + math.exp(-3.0)))
        hard = parse_postprocess("blazeface,nms-mode:hard").bind(post.network)
        (h,) = hard.apply({"boxes": raw, "scores": scores}, (480, 640))
        assert np.allclose(sorted(d.box for d in h.detections)[0], expected[0][0], atol=1e-6)


def test_outputs_are_told_apart_and_checked_against_the_anchors():
    post = parse_postprocess("blazeface")
    assert post.bind(NetworkInfo("bf", (128, 128, 3), {"a": (896, 1), "b": (896, 16)})) \
        .outputs_used() == ["b", "a"]
    for outputs, words in (
            ({"a": (900, 16), "b": (900, 1)}, ["896", "'a' holds 14400 values", "strides"]),
            ({"a": (896, 16)}, ["two outputs", "boxes:NAME"]),
            ({"a": (896, 1), "b": (896, 1)}, ["cannot tell the boxes from the scores"])):
        with pytest.raises(UsageError) as e:
            post.bind(NetworkInfo("bf", (128, 128, 3), outputs))
        for w in words:
            assert w in str(e.value), (w, str(e.value))
    with pytest.raises(UsageError, match="input:HxW"):
        parse_postprocess("ssd").bind(NetworkInfo("v", (10,), {"a": (896, 16), "b": (896, 1)}))


# ==== IoU and NMS ===============================================================================

@SETTINGS
@given(box_sets(), box_sets())
def test_iou_matches_the_reference_and_is_symmetric(a, b):
    m = iou(a[0], b[0])
    assert m.shape == (len(a[0]), len(b[0]))
    assert np.allclose(m, iou(b[0], a[0]).T)
    assert np.all((m >= 0) & (m <= 1 + 1e-12))
    for i in range(len(a[0])):
        for j in range(len(b[0])):
            assert m[i, j] == pytest.approx(ref_iou(a[0][i], b[0][j]))
    if len(a[0]):
        assert np.allclose(np.diag(iou(a[0], a[0])), 1.0)


@SETTINGS
@given(box_sets(), st.sampled_from([0.0, 0.1, 0.3, 0.5, 0.7, 1.0]))
def test_nms_properties(bs, thr):
    b, s = bs
    keep = nms(b, s, thr)
    assert keep.tolist() == ref_nms(b, s, thr)
    assert len(set(keep.tolist())) == len(keep)
    assert np.all(np.diff(s[keep]) <= 0)  # best first
    if len(keep) > 1:  # no two kept boxes overlap by more than the threshold
        m = iou(b[keep], b[keep])
        np.fill_diagonal(m, 0)
        assert m.max() <= thr
    for j in set(range(len(b))) - set(keep.tolist()):  # each dropped box has a better kept one
        assert any(ref_iou(b[k], b[j]) > thr and s[k] >= s[j] for k in keep)
    assert nms(b[keep], s[keep], thr).tolist() == list(range(len(keep)))  # idempotent
    # weighted NMS: the same clusters, kept scores unchanged, merged boxes inside the clusters
    wk, merged, _ = weighted_nms(b, s, thr)
    assert wk.tolist() == keep.tolist()
    for k, m in zip(wk, merged):
        members = [j for j in range(len(b)) if j == k or (ref_iou(b[k], b[j]) > thr)]
        hull = b[members]
        assert np.all(m[:2] >= hull[:, :2].min(axis=0) - 1e-9)
        assert np.all(m[2:] <= hull[:, 2:].max(axis=0) + 1e-9)


def test_weighted_nms_merges_by_score_and_min_overlap():
    b = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], float)
    s = np.array([0.9, 0.3, 0.5])
    kp = np.array([[[0, 0]], [[4, 4]], [[55, 55]]], float)
    keep, merged, mkp = weighted_nms(b, s, 0.3, kp)
    assert keep.tolist() == [0, 2]
    assert np.allclose(merged[0], (0.9 * b[0] + 0.3 * b[1]) / 1.2)
    assert np.allclose(mkp[0], [[1.0, 1.0]]) and np.allclose(merged[1], b[2])
    inner = np.array([[0, 0, 10, 10], [2, 2, 6, 6]], float)  # IoU 0.16, min-overlap 1
    assert nms(inner, np.array([1.0, 0.5]), 0.5).tolist() == [0, 1]
    assert nms(inner, np.array([1.0, 0.5]), 0.5, overlap="min").tolist() == [0]
    assert bx.batched_nms(np.vstack([inner, inner]), np.array([1, .5, .9, .4]),
                          np.array([0, 0, 1, 1]), 0.1).tolist() == [0, 2]


# ==== YOLO ======================================================================================

@pytest.mark.parametrize("version", [3, 5])
def test_yolo_decoding_matches_the_reference(version):
    rng = np.random.default_rng(version)
    anchors = np.array([[10, 13], [16, 30], [33, 23]], float)
    raw = rng.normal(0, 1.5, (2, 4, 5, 3 * (5 + 4)))
    b, o, c = decode_yolo(raw, anchors, (64, 80), version)
    rb, ro, rc = ref_yolo(raw, anchors, (64, 80), version)
    assert np.allclose(b, rb) and np.allclose(o, ro) and np.allclose(c, rc)
    b5, _, _ = decode_yolo(raw.reshape(2, 4, 5, 3, 9), anchors, (64, 80), version)  # 5-D layout
    assert np.allclose(b5, rb)


def test_yolo_finds_planted_objects_through_two_scales():
    """Objects planted as logits in an 8x8 and a 4x4 grid of a 64x64 input -> boxes of the right
    classes in pixels of a 128x256 image (stretch), the duplicates suppressed per class."""
    spec = ("yolo,anchors:[[8,8, 16,16], [32,32, 48,48]],version:3,score:0.5,labels:[cat,dog,fox],"
            "outputs:[fine,coarse]")
    net = NetworkInfo("y", (64, 64, 3), {"coarse": (4, 4, 16), "fine": (8, 8, 16)})
    post = parse_postprocess(spec).bind(net)
    fine = np.full((1, 8, 8, 2, 8), -10.0)
    coarse = np.full((1, 4, 4, 2, 8), -10.0)

    def plant(grid, cell, a, wh_anchor, box, cls, gsize, obj=5.0):
        x0, y0, x1, y1 = box  # normalized
        cx, cy = (x0 + x1) / 2 * gsize - cell[1], (y0 + y1) / 2 * gsize - cell[0]
        logit = lambda p: math.log(p / (1 - p))  # noqa: E731
        grid[0, cell[0], cell[1], a, :4] = (logit(cx), logit(cy),
                                            math.log((x1 - x0) * 64 / wh_anchor),
                                            math.log((y1 - y0) * 64 / wh_anchor))
        grid[0, cell[0], cell[1], a, 4] = obj
        grid[0, cell[0], cell[1], a, 5 + cls] = 5.0

    plant(fine, (2, 3), 1, 16, (0.40, 0.25, 0.55, 0.40), 2, 8)
    plant(fine, (2, 3), 0, 8, (0.41, 0.26, 0.56, 0.41), 2, 8, obj=2.0)  # duplicate: suppressed
    plant(coarse, (1, 2), 0, 32, (0.45, 0.25, 0.95, 0.70), 0, 4)
    outs = {"fine": fine.reshape(1, 8, 8, 16), "coarse": coarse.reshape(1, 4, 4, 16)}
    (res,) = post.apply(outs, (128, 256))
    got = sorted((d.label, tuple(np.round(d.box, 1))) for d in res.detections)
    assert [g[0] for g in got] == ["cat", "fox"]
    assert np.allclose(got[0][1], (0.45 * 256, 0.25 * 128, 0.95 * 256, 0.70 * 128), atol=0.5)
    assert np.allclose(got[1][1], (0.40 * 256, 0.25 * 128, 0.55 * 256, 0.40 * 128), atol=0.5)
    # unnamed outputs go to the anchor groups by grid size, the largest grid first
    auto = parse_postprocess("yolo,anchors:[[8,8, 16,16], [32,32, 48,48]],score:0.5").bind(net)
    assert auto.outputs_used() == ["fine", "coarse"]
    assert len(auto.apply(outs, (128, 256))[0].detections) == 2
    with pytest.raises(UsageError, match="holds 3 classes an anchor, not classes:80"):
        parse_postprocess("yolo,anchors:[[8,8,16,16],[32,32,48,48]],classes:80").bind(net)


# ==== box agreement =============================================================================

def _result(boxes, scores=None, classes=None):
    scores = scores if scores is not None else [0.9] * len(boxes)
    classes = classes if classes is not None else [0] * len(boxes)
    return Result([Detection(tuple(map(float, b)), s, c, f"c{c}") for b, s, c in
                   zip(boxes, scores, classes)])


def test_agreement_of_identical_missing_extra_and_moved_boxes():
    refs = [_result([(0, 0, 10, 10), (20, 20, 40, 40)]), _result([(5, 5, 25, 25)])]
    a = agreement(refs, refs)
    assert (a.precision, a.recall, a.map, a.mean_iou, a.matched) == (1.0, 1.0, 1.0, 1.0, 3)
    none = agreement(refs, [Result(), Result()])
    assert (none.precision, none.recall, none.map, none.mean_iou) == (1.0, 0.0, 0.0, None)
    extra = [_result([(0, 0, 10, 10), (20, 20, 40, 40), (70, 70, 90, 90)], [0.9, 0.8, 0.1]),
             _result([(5, 5, 25, 25)])]
    e = agreement(refs, extra)
    assert e.recall == 1.0 and e.precision == 0.75 and e.map == 1.0  # ranked last: no AP loss
    moved = [_result([(0, 0, 10, 10), (30, 30, 50, 50)]), _result([(6, 5, 26, 25)])]
    m = agreement(refs, moved)  # (30..50) vs (20..40): IoU 1/7, no match
    assert m.matched == 2 and m.recall == pytest.approx(2 / 3)
    assert m.per_image[1]["min_iou"] == pytest.approx(ref_iou((6, 5, 26, 25), (5, 5, 25, 25)))
    other_class = [_result([(0, 0, 10, 10), (20, 20, 40, 40)], classes=[1, 0]), refs[1]]
    assert agreement(refs, other_class).matched == 2
    assert agreement([Result()], [Result()]).map == 1.0
    assert agreement([Result()], [_result([(0, 0, 1, 1)])]).map == 0.0


@SETTINGS
@given(st.lists(st.tuples(box_sets(6), box_sets(6)), min_size=1, max_size=3))
def test_average_precision_matches_its_definition(images):
    refs = [_result(r[0]) for r, _ in images]
    tests = [_result(t[0], list(t[1])) for _, t in images]
    ap = average_precision(refs, tests, 0)
    if not any(r.detections for r in refs):
        assert math.isnan(ap)
        return
    assert ap == pytest.approx(ref_ap(refs, tests, 0))
    assert 0.0 <= ap <= 1.0


def test_detection_gate_names_the_run_and_the_threshold():
    from host_app.compare import RUNS, detection_comparison

    refs = [_result([(0, 0, 10, 10), (20, 20, 40, 40)])]
    d = detection_comparison("blazeface", {"native": refs, "emulator": refs,
                                           "device": [_result([(0, 0, 10, 10)])]})
    assert [a.label for a in d.agreements] == [
        f"{RUNS['emulator']} vs {RUNS['native']}", f"{RUNS['device']} vs {RUNS['native']}",
        f"{RUNS['device']} vs {RUNS['emulator']}"]
    assert d.gate(0.5, 0.5) == []
    msgs = d.gate(0.9, 0.9)
    assert len(msgs) == 2 and all("device vs native" in m for m in msgs)
    assert "--min-map 0.9" in msgs[0] and "recall 0.500 (1/2 boxes)" in msgs[1]
    assert json.loads(json.dumps(d.to_dict()))["agreements"][1]["recall"] == 0.5


# ==== the spec ==================================================================================

BAD_SPECS = [
    ("", ["empty", "blazeface", "ssd"]),
    ("retinanet", ["unknown post-processing 'retinanet'", "classify, ssd, yolo, mtcnn"]),
    ("ssd,nms:abc", ["item 'nms:abc'", "'abc' is not a number", "nms:"]),
    ("ssd,nms:1.5", ["item 'nms:1.5'", "at most 1"]),
    ("ssd,score", ["item 'score' is not key:value"]),
    ("ssd,score:0.5,score:0.6", ["'score' is given twice"]),
    ("ssd,strides:[8,x]", ["item 'strides:[8,x]'", "'x' is not a number"]),
    ("ssd,strides:[8,16", ["item 'strides:[8,16'", "not a list of numbers"]),
    ("ssd,input:128by128", ["item 'input:128by128'", "not a size like 128x128"]),
    ("ssd,order:xyxy", ["order must be one of xywh, yxhw"]),
    ("ssd,weighted:yes", ["unknown key 'weighted' for ssd", "nms-mode"]),
    ("ssd,min-scale:0.8,max-scale:0.5", ["min-scale 0.8 is above max-scale 0.5"]),
    ("blazeface,bogus:1", ["unknown key 'bogus' for ssd (preset blazeface)"]),
    ("ssd,fixed-size:maybe", ["fixed-size is yes or no"]),
    ("ssd,,score:0.5", ["empty item"]),
    ("yolo,score:0.3", ["no 'anchors' item", "anchors:[[10,13"]),
    ("yolo,anchors:[10,13]", ["not a list of lists of numbers"]),
    ("yolo,anchors:[[10,13,16]]", ["width,height pairs"]),
    ("yolo,anchors:[[10,13]],version:4", ["version must be one of 3, 5"]),
    ("yolo,anchors:[[10,13]],outputs:[a,b]", ["2 outputs for 1 anchor groups"]),
    ("mtcnn,thresholds:[0.6,0.7]", ["give one value or 3"]),
    ("mtcnn,min-face:5", ["min-face must be at least 12"]),
    ("classify,top-k:0", ["top-k must be at least 1"]),
    ("classify,top-k:2.5", ["whole number"]),
    ("hook:nomodule", ["write hook:MODULE:FUNCTION"]),
    ("hook:mod:not-a-name", ["write hook:MODULE:FUNCTION"]),
]


@pytest.mark.parametrize("text,words", BAD_SPECS, ids=[t or "empty" for t, _ in BAD_SPECS])
def test_bad_specs_name_the_item_and_the_fix(text, words):
    with pytest.raises(UsageError) as e:
        parse_postprocess(text)
    msg = str(e.value)
    assert msg.startswith(f"--postprocess '{text}'"), msg
    for w in words:
        assert w in msg, (w, msg)


def test_presets_overrides_and_stored_text():
    p = parse_postprocess("blazeface,score:0.7,nms-mode:hard")
    assert (p.kind, p.preset, p.min_score, p.nms_mode, p.keypoints) == ("ssd", "blazeface", 0.7,
                                                                        "hard", 6)
    assert str(p) == p.stored == "blazeface,score:0.7,nms-mode:hard"
    again = parse_postprocess(p.stored)
    assert (again.min_score, again.nms_mode, again.strides) == (0.7, "hard", (8, 16, 16, 16))
    assert parse_postprocess("BlazeFace-Back").anchor_options().input_hw == (256, 256)
    y = parse_postprocess("yolo, anchors: [[10, 13, 16, 30], [30,61 ,62,45]] , score: 1/4")
    assert y.min_score == 0.25 and [g.tolist() for g in y.anchor_groups] == [
        [[10, 13], [16, 30]], [[30, 61], [62, 45]]]


def test_spec_round_trips_through_a_har(tmp_path):
    """Recorded in runner.metadata, saved, loaded (no TensorFlow): the same post-processing;
    MTCNN's relative stage paths are re-anchored at the HAR's directory."""
    from emulator import ClientRunner

    from host_app.cli import _postprocess_to_record
    from host_app.postprocess import postprocess_for

    runner = ClientRunner(har=str(ALL_OPS))
    for spec in ("blazeface,score:0.65", "yolo,anchors:[[10,13,16,30]],version:5,score:0.3",
                 "classify,top-k:2", "hook:my_hooks.py:decode,gain:2"):
        runner.metadata["postprocess"] = spec
        runner.save_har(tmp_path / "net.har")
        back = ClientRunner(har=str(tmp_path / "net.har"))
        assert back.metadata["postprocess"] == spec
        p = parse_postprocess(back.metadata["postprocess"])
        assert p.stored == spec and p.kind == parse_postprocess(spec).kind
    sub = tmp_path / "stages"
    sub.mkdir()
    given = parse_postprocess(f"mtcnn,rnet:{sub.name}/r.har,onet:{sub}/o.har,min-face:24",
                              base_dir=tmp_path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    stored = _postprocess_to_record(given, out_dir)
    assert "rnet:../stages/r.har" in stored and "onet:../stages/o.har" in stored
    assert "min-face:24" in stored
    runner.metadata["postprocess"] = stored
    runner.save_har(out_dir / "p.har")
    back = ClientRunner(har=str(out_dir / "p.har"))
    with pytest.raises(UsageError, match="MTCNN stage rnet"):  # the stage HARs do not exist
        from host_app.postprocess import open_stages

        post = postprocess_for(back, None, har=out_dir / "p.har")
        assert post.stage_hars()["rnet"].resolve() == (sub / "r.har").resolve()
        from host_app.images import parse_preprocess

        open_stages(post, back, "native", preprocess=parse_preprocess("mtcnn"))


# ==== hooks and classification ==================================================================

HOOK = '''
import numpy as np
from host_app.postprocess import Detection

def decode(outputs, image_shapes, gain=1, network=None):
    out = []
    for i, (h, w) in enumerate(image_shapes):
        v = float(np.asarray(outputs["out"])[i].max()) * gain
        out.append([{"box": [0, 0, w / 2, h / 2], "score": v, "label": "half"},
                    Detection((1, 2, 3, 4), 0.5, 1, "fixed")])
    return out

def broken(outputs, image_shapes):
    raise ValueError("no luck")

def wrong(outputs, image_shapes):
    return "nothing"

def badbox(outputs, image_shapes):
    return [[{"box": [0, 1, 2]}] for _ in image_shapes]
'''


def test_hooks(tmp_path, monkeypatch):
    (tmp_path / "my_hooks.py").write_text(HOOK)
    monkeypatch.chdir(tmp_path)
    outs = {"out": np.array([[0.2, 0.4], [0.1, 0.3]], np.float32)}
    for module in ("my_hooks", "my_hooks.py", str(tmp_path / "my_hooks.py")):
        post = parse_postprocess(f"hook:{module}:decode,gain:2")
        assert post.params == {"gain": 2}
        res = post.apply(outs, [(100, 200), (50, 60)])
        assert [d.box for d in res[1].detections] == [(0.0, 0.0, 30.0, 25.0), (1, 2, 3, 4)]
        assert res[0].detections[0].score == pytest.approx(0.8)
    for fn, error, words in (("broken", AppError, ["raised ValueError: no luck"]),
                             ("wrong", AppError, ["returned str", "list of 2 entries"]),
                             ("badbox", AppError, ["image 0, detection 0", "not 4 finite"]),
                             ("missing", UsageError, ["'missing' in module 'my_hooks' does not"])):
        with pytest.raises(error) as e:
            parse_postprocess(f"hook:my_hooks:{fn}").apply(outs, (10, 10))
        for w in words:
            assert w in str(e.value), (w, str(e.value))
    with pytest.raises(UsageError, match="no module named 'nowhere_to_be_found'"):
        parse_postprocess("hook:nowhere_to_be_found.sub:f").check_available()
    with pytest.raises(UsageError, match="'gone.py' does not exist"):
        parse_postprocess("hook:gone.py:f").check_available()


def test_classify_top_k_with_labels():
    net = NetworkInfo("c", (8, 8, 1), {"probs": (4,), "raw": (3,)}, {"probs": ["a", "b", "c", "d"]},
                      classifiers=("probs",))
    post = parse_postprocess("classify,top-k:2").bind(net)
    res = post.apply({"probs": np.array([[0.1, 0.5, 0.3, 0.1]]), "raw": np.zeros((1, 3))}, (8, 8))
    assert [(c.index, c.label, round(c.score, 6)) for c in res[0].top_k["probs"]] == [
        (1, "b", 0.5), (2, "c", 0.3)]
    assert list(res[0].top_k) == ["probs"] and not res[0].detections
    soft = parse_postprocess("classify,outputs:[raw],softmax:yes,labels:[x,y,z]").bind(net)
    (r,) = soft.apply({"raw": np.array([[0.0, 1.0, 2.0]])}, (8, 8))
    top = r.top_k["raw"]
    assert [c.label for c in top] == ["z", "y", "x"]
    assert sum(c.score for c in top) == pytest.approx(1.0)
    with pytest.raises(UsageError, match="3 labels for output 'probs' of 4 classes"):
        parse_postprocess("classify,outputs:[probs],labels:[x,y,z]").bind(net)


# ==== geometry and drawing ======================================================================

@pytest.mark.parametrize("image_hw", [(300, 500), (500, 300), (240, 240)])
def test_crop_mapping_is_the_pre_processing_crop(image_hw):
    """Pixels that encode their own coordinates, pre-processed with resize:crop: the mapping
    sends each input pixel's centre back to the coordinates it shows."""
    from host_app.images import parse_preprocess, preprocess_image

    h, w = image_hw
    ys, xs = np.mgrid[0:h, 0:w]
    img = np.stack([xs % 256, ys % 256, (xs // 256) * 16 + ys // 256], axis=-1).astype(np.uint8)
    x = preprocess_image(img, (64, 48, 3), parse_preprocess("resize:crop,color:rgb"))
    m = InputMapping.for_image(image_hw, (64, 48), "crop")
    for iy, ix in ((0, 0), (31, 20), (63, 47)):
        px, py = m.points(np.array([(ix + 0.5) / 48, (iy + 0.5) / 64]))
        rx = x[iy, ix, 0] + 256 * (x[iy, ix, 2] // 16)
        ry = x[iy, ix, 1] + 256 * (x[iy, ix, 2] % 16)
        assert abs(px - rx) <= 4 and abs(py - ry) <= 4, (image_hw, px, py, rx, ry)


def test_draw_returns_a_new_annotated_image():
    img = np.full((120, 160, 3), 90, np.uint8)
    res = Result([Detection((20, 30, 80, 100), 0.87, 0, "face",
                            np.array([[40.0, 50.0], [60.0, 50.0]]))])
    out = draw(img, res)
    assert out.shape == img.shape and out.dtype == np.uint8 and (img == 90).all()
    assert (out[30:101, 20] != 90).any() and (out[50, 40] != 90).any()  # box edge, keypoint
    grey = draw_rgb(np.full((50, 60), 128, np.uint8), Result())
    assert grey.shape == (50, 60, 3) and (grey == 128).all()
    tops = Result(top_k={"p": [TopClass(1, "cat", 0.9)]})
    assert (draw(img, tops)[:20, :60] != 90).any()
    forced = draw(img, res, color=(255, 0, 255), labels=False, keypoints=False)
    b, g, r = (int(v) for v in forced[30, 50])  # on the top edge (anti-aliased)
    assert b > 200 and r > 200 and g < 60


# ==== MTCNN's pyramid and tiling (a numpy stand-in for P-Net) ==================================

def _window_stage(th: int, tw: int):
    """A fully convolutional stand-in for P-Net: face probability of each 12x12 window (stride 2)
    = its mean brightness, regression 0; the same window gives the same output wherever it is."""
    oh, ow = (th - 12) // 2 + 1, (tw - 12) // 2 + 1

    def infer(x):
        n = len(x)
        prob = np.zeros((n, oh, ow, 2), np.float32)
        for i in range(oh):
            for j in range(ow):
                prob[:, i, j, 1] = x[:, 2 * i:2 * i + 12, 2 * j:2 * j + 12, 0].mean(axis=(1, 2))
        prob[..., 0] = 1 - prob[..., 1]
        return {"reg": np.zeros((n, oh, ow, 4), np.float32), "prob": prob}

    def prepare(img, shape):
        import cv2

        out = cv2.resize(img.astype(np.float32), (shape[1], shape[0]),
                         interpolation=cv2.INTER_AREA)
        return (out.reshape(shape[0], shape[1], -1)[..., :1] / 255.0).astype(np.float32)

    return mt.Stage("pnet", infer, (th, tw, 1), prepare, {"reg": (oh, ow, 4), "prob": (oh, ow, 2)})


def test_pnet_tiles_cover_every_window_once():
    for size in (12, 13, 50, 96, 97, 250, 1000):
        for out_cells in (1, 7, 43):
            cells = (size - 12) // 2 + 1
            covered = [o // 2 + c for o in mt.tile_origins(size, out_cells) for c in range(out_cells)
                       if o // 2 + c < cells]
            assert covered == list(range(cells)), (size, out_cells)
    assert mt.tile_origins(11, 5) == []
    scales = mt.pyramid_scales((480, 640), 20, 0.709)
    assert scales[0] == pytest.approx(0.6) and min(480, 640) * scales[-1] >= 12
    assert min(480, 640) * scales[-1] * 0.709 < 12


def test_pnet_on_tiles_finds_what_it_finds_on_the_whole_level():
    """Bright squares on a dark image: the tiled P-Net stage finds each, at the same places as the
    stand-in run on the whole level at once (a tile size that splits the image many times)."""
    img = np.zeros((200, 300), np.uint8)
    squares = [(20, 30, 60), (120, 200, 48), (150, 40, 36)]  # y, x, side
    for y, x, s in squares:
        img[y:y + s, x:x + s] = 255
    post = parse_postprocess("mtcnn,min-face:30,thresholds:[0.95,0.7,0.8],nms:[0.3,0.3,0.7,0.7]")
    tiled = post.detect([img], _window_stage(40, 52))[0]
    whole = post.detect([img], _window_stage(200, 300))[0]
    assert sorted(d.box for d in tiled.detections) == sorted(d.box for d in whole.detections)
    for y, x, s in squares:  # each square holds a detection's centre
        assert any(x <= (d.box[0] + d.box[2]) / 2 <= x + s and y <= (d.box[1] + d.box[3]) / 2
                   <= y + s for d in tiled.detections)
    assert all(d.score > 0.95 for d in tiled.detections)


def test_crop_pads_outside_the_image_with_black():
    img = np.arange(1, 26, dtype=np.uint8).reshape(5, 5)
    c = mt.crop(img, (-2, 3, 2, 7))
    assert c.shape == (4, 4) and (c[:, :2] == 0).all() and (c[2:, :] == 0).all()
    assert c[0, 2:].tolist() == [16, 17]


# ==== the CLI: post-processing usage errors before TensorFlow ===================================

_RUNNER = r"""
import contextlib, io, json, sys
from host_app.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    results.append({"code": code, "err": err.getvalue(),
                    "tensorflow": sys.modules.get("tensorflow") is not None})
print(json.dumps(results))
"""


def test_cli_postprocess_usage_errors_come_before_tensorflow(tmp_path):
    import cv2

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    cv2.imwrite(str(imgs / "a.png"), np.full((20, 20, 3), 100, np.uint8))
    (tmp_path / "afile").write_text("x")
    runs = [
        (["infer", ALL_OPS, imgs, "--postprocess", "ssd,nms:abc"],
         ["--postprocess 'ssd,nms:abc': item 'nms:abc'", "not a number"]),
        (["compare", ALL_OPS, imgs, "--postprocess", "yolo"], ["no 'anchors' item"]),
        (["parse", ALL_OPS, "--postprocess", "blazeface"], ["is a HAR"]),
        (["quantize", ALL_OPS, "--calib", imgs, "--postprocess", "hook:no_such_mod_xyz:f"],
         ["no module named 'no_such_mod_xyz'"]),
        (["infer", ALL_OPS, imgs, "--postprocess", "mtcnn,rnet:missing_r.har"],
         ["MTCNN stage rnet HAR 'missing_r.har' does not exist"]),
        (["infer", ALL_OPS, imgs, "--postprocess", "blazeface"],
         ["ssd reads two outputs", "boxes:NAME"]),
        (["compare", ALL_OPS, imgs, "--min-map", "0.9"],
         ["--min-map judges a detector's boxes", "--postprocess SPEC"]),
        (["compare", ALL_OPS, imgs, "--min-recall", "1.5"], ["fraction in [0, 1]"]),
        (["infer", ALL_OPS, imgs, "--annotate", tmp_path / "afile"],
         ["--annotate", "is a file"]),
        (["infer", ALL_OPS, imgs, "--annotate", imgs, "--target", "native", "--preprocess", "unit"],
         ["--annotate", "would destroy an input"]),
    ]
    proc = subprocess.run([sys.executable, "-c", _RUNNER,
                           json.dumps([[str(a) for a in argv] for argv, _ in runs])],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if k != "COLUMNS"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    for (argv, words), r in zip(runs, results):
        where = (argv, r["err"])
        assert r["code"] == 2, where
        for w in words:
            assert w in r["err"], (w, where)
        assert "Traceback" not in r["err"] and not r["tensorflow"], where
    assert not list(imgs.glob("*.png.png")) and sorted(p.name for p in imgs.iterdir()) == ["a.png"]
