"""Stream-layer throughput against its physical baseline, measured in the same run.

For each case: the C transform called from Python (preallocated destination), a memcpy of the
float32 buffer (np.copyto: the time to move the float side once, the bandwidth limit of a
quantize-and-reorder), and the obvious numpy expression. Prints medians and the ratios
C/memcpy and numpy/memcpy, then the Python call overhead on a tiny frame. Not a test: no
pass/fail.

    python bench/bench_stream.py [--repeats 21]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from hailort_py import (Format, FormatOrder, FormatType, ImageShape, InputTransformContext,
                        OutputTransformContext, QuantInfo, StreamDirection, StreamInfo,
                        library_version)

QP_IN = QuantInfo(qp_zp=0.0, qp_scale=1 / 255, limvals_min=0.0, limvals_max=1.0)
QP_OUT = QuantInfo(qp_zp=4.0, qp_scale=0.0175, limvals_min=-0.07, limvals_max=4.39)


def median_seconds(fn, repeats: int, min_time: float = 0.02) -> float:
    """Median over `repeats` samples; each sample loops fn enough to last min_time."""
    fn()
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-9)
    loops = max(1, int(min_time / once))
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        samples.append((time.perf_counter() - start) / loops)
    return statistics.median(samples)


def input_case(name, shape, hw_shape):
    stream = StreamInfo(name, StreamDirection.H2D, Format(FormatType.UINT8, FormatOrder.NHCW),
                        ImageShape(*shape), ImageShape(*hw_shape), QP_IN)
    ctx = InputTransformContext(stream, Format(FormatType.FLOAT32, FormatOrder.NHWC))
    rng = np.random.default_rng(0)
    x = rng.random(shape, dtype=np.float32)
    dst = np.empty(ctx.device_shape, ctx.device_dtype)
    copy_dst = np.empty_like(x)
    h, w, c = shape
    hh, wh, ch = hw_shape
    scale, zp = np.float32(QP_IN.qp_scale), np.float32(QP_IN.qp_zp)
    lo, hi = np.float32(QP_IN.limvals_min), np.float32(QP_IN.limvals_max)
    device = np.zeros((hh, ch, wh), np.uint8)

    def numpy_expr():
        q = np.rint(np.clip(x, lo, hi) / scale + zp).astype(np.uint8)
        device[:h, :c, :w] = q.transpose(0, 2, 1)
        return device

    return ctx, (lambda: ctx.transform(x, dst)), (lambda: np.copyto(copy_dst, x)), numpy_expr


def output_case(name, shape, hw_shape):
    stream = StreamInfo(name, StreamDirection.D2H, Format(FormatType.UINT8, FormatOrder.NHCW),
                        ImageShape(*shape), ImageShape(*hw_shape), QP_OUT)
    ctx = OutputTransformContext(stream, Format(FormatType.FLOAT32, FormatOrder.NHWC))
    rng = np.random.default_rng(0)
    src = rng.integers(0, 256, ctx.device_shape, dtype=np.uint8)
    dst = np.empty(ctx.host_shape, np.float32)
    copy_src = np.empty_like(dst)
    h, w, c = shape
    hh, wh, ch = hw_shape
    scale, zp = np.float32(QP_OUT.qp_scale), np.float32(QP_OUT.qp_zp)
    payload = hh * ch * wh

    def numpy_expr():
        dev = src[:payload].reshape(hh, ch, wh)[:h, :c, :w]
        return np.ascontiguousarray(((dev.astype(np.float32) - zp) * scale).transpose(0, 2, 1))

    return ctx, (lambda: ctx.transform(src, dst)), (lambda: np.copyto(copy_src, dst)), numpy_expr


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=21)
    args = parser.parse_args(argv)
    print(f"C stream layer {'.'.join(map(str, library_version()))}, numpy {np.__version__}, "
          f"median of {args.repeats}")
    cases = [
        ("640x640x3 f32 NHWC -> u8 NHCW", input_case("in640", (640, 640, 3), (640, 640, 3))),
        ("224x224x3 f32 NHWC -> u8 NHCW", input_case("in224", (224, 224, 3), (224, 224, 3))),
        ("300x300x3 f32 NHWC -> u8 NHCW hw 300x304x3",
         input_case("in300", (300, 300, 3), (300, 304, 3))),
        ("80x80x255 u8 NHCW hw 80x80x256 -> f32 NHWC",
         output_case("out80", (80, 80, 255), (80, 80, 256))),
    ]
    header = f"{'case':46} {'C ms':>8} {'memcpy ms':>10} {'numpy ms':>9} {'C/memcpy':>9} " \
             f"{'numpy/memcpy':>13} {'C GB/s':>7}"
    print(header)
    print("-" * len(header))
    for label, (ctx, c_fn, memcpy_fn, numpy_fn) in cases:
        t_c = median_seconds(c_fn, args.repeats)
        t_copy = median_seconds(memcpy_fn, args.repeats)
        t_np = median_seconds(numpy_fn, args.repeats)
        float_bytes = max(ctx.src_frame_size, ctx.dst_frame_size)
        print(f"{label:46} {t_c * 1e3:8.3f} {t_copy * 1e3:10.3f} {t_np * 1e3:9.3f} "
              f"{t_c / t_copy:9.2f} {t_np / t_copy:13.2f} {float_bytes / t_c / 1e9:7.2f}")
        print(f"{'':46} C steps: {ctx.description}")

    # batch split across threads (8 frames of 640x640x3)
    ctx1, *_ = input_case("in640", (640, 640, 3), (640, 640, 3))
    stream = ctx1.stream_info
    batch = np.random.default_rng(1).random((8, 640, 640, 3), dtype=np.float32)
    out = np.empty((8,) + ctx1.device_shape, np.uint8)
    for threads in (1, 2):
        ctx = InputTransformContext(stream, ctx1.user_format, threads=threads)
        t = median_seconds(lambda: ctx.transform(batch, out), max(5, args.repeats // 3))
        print(f"batch 8x640x640x3, threads={threads}: {t * 1e3:.2f} ms "
              f"({t / 8 * 1e3:.3f} ms/frame)")

    # Python call overhead on a tiny frame
    tiny = StreamInfo("tiny", StreamDirection.H2D, Format(FormatType.UINT8, FormatOrder.NHWC),
                      ImageShape(1, 1, 8), ImageShape(1, 1, 8), QP_IN)
    ctx = InputTransformContext(tiny, Format(FormatType.FLOAT32))
    x = np.zeros(ctx.host_shape, np.float32)
    dst = np.empty(ctx.device_shape, np.uint8)
    t_call = median_seconds(lambda: ctx.transform(x, dst), args.repeats, min_time=0.05)
    t_alloc = median_seconds(lambda: ctx.transform(x), args.repeats, min_time=0.05)
    print(f"tiny frame (1x1x8 f32 -> u8): {t_call * 1e6:.2f} us per call with dst, "
          f"{t_alloc * 1e6:.2f} us allocating dst")


if __name__ == "__main__":
    main()
