"""Running a network and its post-processing on images: the post-processing of a HAR, a target
kept open between calls, the MTCNN stages, and `FramePipeline` (frames in, results out), what
`host-app infer` and the video path use.

    from host_app.postprocess import FramePipeline

    with FramePipeline(runner, target="device", har="net.har") as fp:   # or native, numeric...
        for frame in frames:                                             # RGB uint8 (H, W, 3)
            results = fp.run([frame]).results                            # one Result per frame
            bgr = draw_rgb(frame, results[0])
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import UsageError
from .classify import Classify
from .mtcnn import Mtcnn, Stage
from .registry import parse_postprocess
from .results import Result
from .spec import NetworkInfo, PostProcess

FLOAT_TARGETS = ("native", "fp-optimized")


def recorded_where(har) -> str:
    return f"the post-processing recorded in HAR '{har}'" if har else \
        "the post-processing recorded in the HAR"


def postprocess_for(runner, override: str | PostProcess | None = None, *, preprocess=None,
                    har: str | os.PathLike | None = None) -> PostProcess | None:
    """The post-processing of a network, bound to it: `override` (a spec given now: relative
    paths from the current directory), else the one recorded in the HAR's metadata (relative
    paths from the HAR's directory), else top-k classification of its classifier outputs, else
    None. UsageError when the spec is invalid or does not fit the network."""
    if isinstance(override, PostProcess):
        post = override
    elif override:
        post = parse_postprocess(override)
    else:
        recorded = runner.metadata.get("postprocess")
        if recorded:
            post = parse_postprocess(recorded, where=recorded_where(har),
                                     base_dir=Path(har).parent if har else None)
        else:
            post = None
    network = NetworkInfo.from_runner(runner, preprocess, har)
    if post is None:
        if not network.classifiers:
            return None
        post = Classify("classify", "the default post-processing")
    return post.bind(network)


# ==== running a network on a target ==============================================================

class Infer:
    """x (N, ...) float32 -> {bare output name: array} on one target; "device" keeps its device
    open until close()."""

    def __init__(self, runner, target: str = "native", *, device: Any = None, keys=None,
                 models: Sequence[str | os.PathLike] = (), batch_size: int = 32):
        from ..pipeline import TARGETS

        if target not in TARGETS:
            raise UsageError(f"unknown target '{target}'; one of {', '.join(TARGETS)}")
        self.runner = runner
        self.target = target
        self.batch_size = batch_size
        self._device = None
        if target == "device":
            from ..pipeline import open_device

            self._device = open_device(runner if device is None else device, runner=runner,
                                       models=models, keys=keys)
        elif device is not None:
            raise UsageError(f"a device runs the host pipeline; it needs target 'device', not "
                             f"'{target}'")

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        from ..pipeline import run_host_pipeline, run_target

        x = np.ascontiguousarray(x, np.float32)
        if self._device is not None:
            return run_host_pipeline(self._device, self.runner, x, self.batch_size).outputs
        return run_target(self.runner, self.target, x, self.batch_size)

    def close(self) -> None:
        if self._device is not None:
            self._device.close()
            self._device = None


def _stage(name: str, runner, infer: Infer, preprocess) -> Stage:
    from ..images import preprocess_image

    shape = tuple(int(v) for v in runner.hn.input_layers[0].output_shape[1:])
    outputs = {l.name: tuple(int(v) for v in l.output_shape[1:]) for l in runner.hn.output_layers}
    return Stage(name, infer, shape,
                 lambda img, size: preprocess_image(img, size, preprocess,
                                                    where=f"MTCNN stage {name}"),
                 outputs)


def open_stages(post: Mtcnn, pnet_runner, target: str, *, preprocess, device: Any = None,
                keys=None, batch_size: int = 32, har: str | os.PathLike | None = None):
    """(stages {"pnet", "rnet", "onet"}, their Infers to close) of an MTCNN cascade on `target`:
    P-Net is `pnet_runner`; the other stages are loaded from the HARs the spec names, each with
    its own recorded pre-processing (P-Net's when none). With `device`, every stage runs on it
    (a device server serving the three HARs)."""
    from ..images import parse_preprocess
    from ..pipeline import load_har

    if preprocess is None:
        raise UsageError("MTCNN: nothing says how to pre-process the images for P-Net: give "
                         "--preprocess mtcnn, or record it with host-app parse --preset mtcnn")
    runners = {"pnet": pnet_runner}
    models = {"pnet": [har] if har else []}
    for name, path in post.stage_hars().items():
        try:
            runners[name] = load_har(path, need_quantized=target not in FLOAT_TARGETS,
                                     command=f"target {target}")
        except UsageError as e:
            raise UsageError(f"MTCNN stage {name} ({post.where}): {e}") from None
        models[name] = [path]
    stages, infers = {}, []
    try:
        for name, r in runners.items():
            recorded = r.metadata.get("preprocess")
            spec = parse_preprocess(recorded) if recorded and name != "pnet" else preprocess
            inf = Infer(r, target, device=device, keys=keys, models=models[name],
                        batch_size=batch_size)
            infers.append(inf)
            stages[name] = _stage(name, r, inf, spec)
    except BaseException:
        for inf in infers:
            inf.close()
        raise
    return stages, infers


# ==== frames in, results out =====================================================================

@dataclass
class Frames:
    """What FramePipeline.run gives: the network's outputs ({name: (N, ...)}; None for a
    cascade, which runs several networks) and one Result per image."""

    outputs: dict[str, np.ndarray] | None
    results: list[Result]


class FramePipeline:
    """Images (RGB or grey uint8, any size) in, Results out: the network's pre-processing, the
    network on `target` (native, fp-optimized, quantized, numeric, device; a device stays open
    until close()), then the post-processing (the recorded one unless `postprocess` is given),
    the MTCNN cascade included."""

    def __init__(self, runner, *, target: str = "native", postprocess: str | PostProcess | None = None,
                 preprocess=None, har: str | os.PathLike | None = None, device: Any = None,
                 keys=None, batch_size: int = 32):
        from ..images import Preprocess
        from ..pipeline import preprocess_for, single_input

        self.runner = runner
        self.target = target
        if isinstance(preprocess, Preprocess) or preprocess is None:
            self.preprocess = preprocess if preprocess is not None else preprocess_for(runner, None)
        else:
            self.preprocess = preprocess_for(runner, preprocess)
        self.post = postprocess_for(runner, postprocess, preprocess=self.preprocess, har=har)
        _, self.input_shape = single_input(runner)
        self._infers: list[Infer] = []
        self._stages = None
        if self.post is not None and self.post.needs_images:
            self._stages, self._infers = open_stages(
                self.post, runner, target, preprocess=self.preprocess, device=device, keys=keys,
                batch_size=batch_size, har=har)
        else:
            if self.preprocess is None:
                raise UsageError("nothing says how to pre-process the images for this network: "
                                 "give a pre-processing (a preset or a spec), or record it with "
                                 "host-app parse --preset / --preprocess")
            self._infers = [Infer(runner, target, device=device, keys=keys,
                                  models=[har] if har else [], batch_size=batch_size)]

    def prepare(self, images: Sequence[np.ndarray]) -> np.ndarray:
        from ..images import preprocess_image

        return np.stack([preprocess_image(img, self.input_shape, self.preprocess)
                         for img in images])

    def run(self, images: Sequence[np.ndarray]) -> Frames:
        images = list(images)
        if not images:
            return Frames({}, [])
        if self._stages is not None:
            st = self._stages
            return Frames(None, self.post.detect(images, st["pnet"], st.get("rnet"),
                                                 st.get("onet")))
        outputs = self._infers[0](self.prepare(images))
        if self.post is None:
            return Frames(outputs, [Result(image_shape=img.shape[:2]) for img in images])
        return Frames(outputs, self.post.apply(outputs, [img.shape[:2] for img in images]))

    def close(self) -> None:
        for inf in self._infers:
            inf.close()
        self._infers = []

    def __enter__(self) -> FramePipeline:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
