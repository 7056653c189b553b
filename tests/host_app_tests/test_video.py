"""host_app.video: video files and cameras through a network, annotated frames out.

A short clip is made here from real photos (the faces of scikit-image's astronaut and
matplotlib's Grace Hopper, found by the demo's LBP face cascade, panned across a few frames)
and written with cv2.VideoWriter. It runs through the FER classifier, quantized, on the
emulated chip (the host pipeline), into an annotated video read back with cv2.VideoCapture; the
other tests use a small numpy stand-in for the network, so that the output rules, the error
paths and the batching are checked in the fast tier.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

import data_sources as ds
from host_app import video
from host_app.errors import AppError, UsageError
from host_app.images import parse_preprocess, preprocess_image
from host_app.presets import FER_EMOTIONS

SIZE = 160  # frame side, pixels
PER_FACE = 12  # frames per face
FPS = 10.0
FER_SHAPE = (64, 64, 1)


def _face_frames() -> list[np.ndarray]:
    """BGR frames: the astronaut's face, then Grace Hopper's, the crop moving a few pixels a
    frame (a slow pan), as a camera would see them."""
    import cv2

    from host_app.demo import _crop, _largest_face, _photo

    frames = []
    for name in ("astronaut", "grace_hopper"):
        img = np.ascontiguousarray(_photo(name)[..., :3])
        box = _largest_face(img)
        assert box is not None, f"no face found in {name}"
        r, c, h, w = box
        for i in range(PER_FACE):
            crop = _crop(img, (r + i % 3 - 1, c + 2 * i - PER_FACE, h, w), 1.3)
            small = cv2.resize(np.ascontiguousarray(crop), (SIZE, SIZE),
                               interpolation=cv2.INTER_AREA)
            frames.append(cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    return frames


def _write_clip(path: Path, frames, fourcc: str = "mp4v") -> Path:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), FPS,
                             (frames[0].shape[1], frames[0].shape[0]))
    assert writer.isOpened()
    for f in frames:
        writer.write(f)
    writer.release()
    return path


def read_frames(path) -> list[np.ndarray]:
    """Every frame of a video, as cv2.VideoCapture decodes them."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """The clip (mp4v in .mp4) and its frames as decoded (what run_video sees)."""
    d = tmp_path_factory.mktemp("clip")
    path = _write_clip(d / "faces.mp4", _face_frames())
    decoded = read_frames(path)
    assert len(decoded) == 2 * PER_FACE
    return path, decoded


def rgb(frame: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(frame[..., ::-1])


def sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def temporaries(directory) -> list[str]:
    return sorted(p.name for p in Path(directory).iterdir() if ".tmp" in p.name)


FER = parse_preprocess("fer")


def mean_classifier(calls=None):
    """A stand-in network: 7 scores a frame from the frame's mean (so that each frame's outputs
    can be checked against its own input); records the batch shapes it is given."""

    def infer(x: np.ndarray) -> dict[str, np.ndarray]:
        if calls is not None:
            calls.append(x.shape)
        m = x.reshape(len(x), -1).mean(axis=1)
        scores = np.stack([np.cos(m * k) for k in range(7)], axis=1).astype(np.float32)
        return {"scores": scores, "mean": m.astype(np.float32)}

    return infer


def never_called(x):
    raise AssertionError("infer_batch ran although the run should have stopped before any work")


# --- the real model: FER through the host pipeline on the emulated chip -------------------------

@pytest.fixture(scope="module")
def fer_video_runner(fer_keras):
    """FER parsed and quantized on real faces, with the metadata `host-app parse --preset fer`
    records (pre-processing and labels)."""
    from emulator import parse_keras, run_quantization_from_np

    runner = parse_keras(fer_keras, net_name="fer")
    run_quantization_from_np(runner, ds.fer_inputs(16, seed=11), calib_num_batch=1, batch_size=16)
    out = runner.hn.output_layers[0].name
    runner.metadata["labels"] = {out: list(FER_EMOTIONS)}
    runner.metadata["preprocess"] = "fer"
    return runner


def test_fer_video_through_the_emulated_chip(fer_video_runner, clip, tmp_path):
    """The clip through FER on the emulated chip in batches of 5 (the last one padded): an
    annotated video with every frame, labels drawn where expected, outputs byte-identical to
    the emulator's SdkNumeric on the same frames, the astronaut found happy."""
    from emulator import EmulatedDevice, SdkNumeric

    path, decoded = clip
    runner = fer_video_runner
    out = tmp_path / "annotated.mp4"
    device = EmulatedDevice(runner)
    try:
        summary = video.run_video(path, video.host_pipeline_infer(device, runner),
                                  input_shape=FER_SHAPE, preprocess=FER, output=out,
                                  annotate=video.runner_annotator(runner), batch_size=5,
                                  keep_outputs=True)
    finally:
        device.close()
    n = 2 * PER_FACE
    assert summary.frames == n and summary.batches == 5 and summary.output_kind == "video"
    assert summary.frame_size == (SIZE, SIZE) and summary.source_fps == pytest.approx(FPS)
    assert summary.fps > 0 and summary.seconds > 0
    written = read_frames(out)
    assert len(written) == n  # read back with cv2.VideoCapture
    assert temporaries(tmp_path) == []
    # the label is drawn at the top left: there the frames differ from the input far more than
    # in the rest of the frame (which differs only by mp4v's re-encoding)
    top = slice(0, SIZE // 6), slice(0, SIZE // 2)
    rest = slice(SIZE // 3, 2 * SIZE // 3), slice(0, SIZE)
    for got, src in zip(written, decoded):
        diff = np.abs(got.astype(np.int16) - src.astype(np.int16))
        assert diff[top].mean() > 5 * max(diff[rest].mean(), 1.0)
    # each frame's outputs are the emulator's own on that frame, whatever the batching
    name = runner.hn.output_layers[0].name
    x = np.stack([preprocess_image(rgb(f), FER_SHAPE, FER) for f in decoded])
    ref = runner.infer(SdkNumeric(), x)[name]
    got = np.stack([o[name] for o in summary.outputs])
    assert np.array_equal(got.view(np.uint32), ref.view(np.uint32))
    labels = [FER_EMOTIONS[int(np.argmax(v))] for v in got]
    assert labels[:PER_FACE].count("happy") >= PER_FACE - 2, labels


def test_the_network_postprocessing_draws_on_the_frames(fer_video_runner, clip, tmp_path):
    """postprocess_annotator: host_app.postprocess's own apply + draw (here FER's default
    top-k classification) on each frame; its results are those of the frame's outputs."""
    import cv2

    from emulator import EmulatedDevice
    from host_app.postprocess import postprocess_for

    path, decoded = clip
    runner = fer_video_runner
    post = postprocess_for(runner, preprocess=FER)
    seen = []

    class Watching:
        needs_images = False

        def apply(self, outputs, image_shape):
            results = post.apply(outputs, image_shape)
            seen.append(results[0])
            return results

    device = EmulatedDevice(runner)
    try:
        s = video.run_video(path, video.host_pipeline_infer(device, runner), input_shape=FER_SHAPE,
                            preprocess=FER, output=tmp_path / "top", max_frames=4,
                            annotate=video.postprocess_annotator(Watching()), show_fps=False)
    finally:
        device.close()
    assert s.frames == 4 and len(seen) == 4
    assert all(r.image_shape == (SIZE, SIZE) for r in seen)
    assert [next(iter(r.top_k.values()))[0].label for r in seen] == ["happy"] * 4
    for i in range(4):
        got = cv2.imread(str(tmp_path / "top" / f"frame_{i:06d}.png"))
        changed = np.any(got != decoded[i], axis=2)
        assert changed[: SIZE // 8, : SIZE // 3].mean() > 0.3 and not changed[SIZE // 2:].any()


# --- outputs: a folder of frames, the safe-write rules -------------------------------------------

def test_folder_of_frames(clip, tmp_path):
    """PNG frames (lossless): identical to the decoded input outside the drawn text, different
    inside it; --max-frames; JPEG; an earlier run's frames are not replaced without force, and
    with force the extra old frames go."""
    import cv2

    path, decoded = clip
    folder = tmp_path / "frames"
    s = video.run_video(path, mean_classifier(), input_shape=FER_SHAPE, preprocess=FER,
                        output=folder, batch_size=4, max_frames=10)
    assert s.frames == 10 and s.output_kind == "frames"
    files = sorted(p.name for p in folder.iterdir())
    assert files == [f"frame_{i:06d}.png" for i in range(10)]
    for i in range(10):
        got = cv2.imread(str(folder / files[i]))
        changed = np.any(got != decoded[i], axis=2)
        assert changed[: SIZE // 6, : SIZE // 2].mean() > 0.2  # the label
        assert not changed[SIZE // 4: 3 * SIZE // 4].any()  # nothing drawn in the middle
    with pytest.raises(UsageError, match=r"already holds 10 frame file\(s\).*--force"):
        video.run_video(path, never_called, input_shape=FER_SHAPE, preprocess=FER, output=folder)
    s = video.run_video(path, mean_classifier(), input_shape=FER_SHAPE, preprocess=FER,
                        output=folder, max_frames=6, force=True, frame_format="jpg")
    assert sorted(p.name for p in folder.iterdir()) == [f"frame_{i:06d}.jpg" for i in range(6)]


def test_batches_are_padded_and_outputs_follow_their_frames(clip):
    """Every infer_batch call gets batch_size frames (the last one padded with its last frame);
    each frame gets its own outputs, without the batch axis, in order."""
    path, decoded = clip
    calls, seen = [], []

    def annotate(frame, outs):
        seen.append({k: v.copy() for k, v in outs.items()})
        return frame

    s = video.run_video(path, mean_classifier(calls), input_shape=FER_SHAPE, preprocess=FER,
                        annotate=annotate, batch_size=7, keep_outputs=True, show_fps=False)
    assert s.frames == len(decoded) == 24 and s.output is None
    assert calls == [(7, *FER_SHAPE)] * 4
    means = [preprocess_image(rgb(f), FER_SHAPE, FER).mean(dtype=np.float32) for f in decoded]
    assert [o["mean"].shape for o in seen] == [()] * 24 and seen[0]["scores"].shape == (7,)
    assert np.allclose([o["mean"] for o in seen], means, atol=1e-5)
    assert np.allclose([o["mean"] for o in s.outputs], means, atol=1e-5)


def test_a_detector_annotation_plugs_in(clip, tmp_path):
    """results_annotator: apply(outputs with a batch axis of 1, frame shape) -> results, then
    draw(frame, result) for each; what it draws is in the output."""
    import cv2

    path, _ = clip
    got = []

    def apply(outputs, image_shape):
        got.append(({k: v.shape for k, v in outputs.items()}, image_shape))
        return [(10, 20, 60, 90)]

    def draw(image, box):
        x0, y0, x1, y1 = box
        cv2.rectangle(image, (x0, y0), (x1, y1), (0, 0, 255), 3)

    s = video.run_video(path, mean_classifier(), input_shape=FER_SHAPE, preprocess=FER,
                        output=tmp_path / "boxes", annotate=video.results_annotator(apply, draw),
                        max_frames=3, show_fps=False)
    assert s.frames == 3 and got == [({"scores": (1, 7), "mean": (1,)}, (SIZE, SIZE, 3))] * 3
    frame = cv2.imread(str(tmp_path / "boxes" / "frame_000000.png"))
    assert tuple(frame[20, 35]) == (0, 0, 255)


def test_output_that_is_the_input_is_refused(clip, tmp_path):
    import os
    import shutil

    path, _ = clip
    mine = tmp_path / "mine.mp4"
    shutil.copy(path, mine)
    before = sha(mine)
    for out in (mine, tmp_path / "." / "x" / ".." / "mine.mp4"):
        os.makedirs(tmp_path / "x", exist_ok=True)
        with pytest.raises(UsageError, match="would destroy an input"):
            video.run_video(mine, never_called, input_shape=FER_SHAPE, preprocess=FER, output=out,
                            force=True)
    link = tmp_path / "link.mp4"
    link.symlink_to(mine)
    with pytest.raises(UsageError, match="would destroy an input"):
        video.run_video(link, never_called, input_shape=FER_SHAPE, preprocess=FER, output=mine)
    assert sha(mine) == before


def test_existing_outputs_of_another_kind_and_failures_keep_the_old_file(clip, tmp_path):
    """A file that is not a video is replaced only with force; a video is replaced; a run that
    fails (an error, or Ctrl-C) leaves the old output whole and no temporary."""
    path, _ = clip
    notes = tmp_path / "notes.mp4"
    notes.write_text("my notes")
    with pytest.raises(UsageError, match=r"notes\.mp4.*a text file.*--force"):
        video.run_video(path, never_called, input_shape=FER_SHAPE, preprocess=FER, output=notes)
    assert notes.read_text() == "my notes"
    out = tmp_path / "out.avi"
    video.run_video(path, mean_classifier(), input_shape=FER_SHAPE, preprocess=FER, output=out,
                    max_frames=4)
    old = sha(out)
    assert len(read_frames(out)) == 4
    for failure in (RuntimeError("device lost"), KeyboardInterrupt()):
        calls = []

        def failing(x, failure=failure, calls=calls):
            calls.append(1)
            if len(calls) == 2:
                raise failure
            return mean_classifier()(x)

        with pytest.raises(type(failure)):
            video.run_video(path, failing, input_shape=FER_SHAPE, preprocess=FER, output=out,
                            batch_size=4)
        assert sha(out) == old and temporaries(tmp_path) == []
    video.run_video(path, mean_classifier(), input_shape=FER_SHAPE, preprocess=FER, output=notes,
                    force=True, max_frames=2)
    assert len(read_frames(notes)) == 2


# --- sources and outputs that cannot work: named, before any work --------------------------------

def test_sources_that_cannot_be_read(tmp_path):
    import cv2

    cases = []
    cases.append((tmp_path / "missing.mp4", "does not exist"))
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all\n")
    cases.append((text, "a text file, not a video"))
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(bytes(range(256)) * 64)
    cases.append((garbage, "cannot read video"))
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    cases.append((empty, "an empty file, not a video"))
    zero = tmp_path / "zero.avi"  # a valid AVI without a frame
    w = cv2.VideoWriter(str(zero), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (32, 32))
    assert w.isOpened()
    w.release()
    cases.append((zero, "decodes to zero frames"))
    cases.append((tmp_path, "is a directory"))
    for src, message in cases:
        with pytest.raises(UsageError, match=message) as e:
            video.run_video(src, never_called, input_shape=FER_SHAPE, preprocess=FER,
                            output=tmp_path / "out.mp4")
        assert str(src) in str(e.value), (src, str(e.value))
    assert not (tmp_path / "out.mp4").exists() and temporaries(tmp_path) == []


def test_a_camera_that_cannot_be_opened_is_named():
    with pytest.raises(AppError, match=r"cannot open camera 63 \(camera:63\)"):
        video.run_video("camera:63", never_called, input_shape=FER_SHAPE, preprocess=FER)
    with pytest.raises(AppError, match="camera 62"):
        video.open_video(62)
    with pytest.raises(UsageError, match="camera:N"):
        video.open_video("camera:front")
    with pytest.raises(UsageError, match="negative"):
        video.parse_source(-1)


def test_outputs_that_cannot_be_written(clip, tmp_path):
    path, _ = clip
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a directory")
    for out, message in (
            (blocker / "out.mp4", "cannot create its directory"),
            (blocker / "frames", "cannot create the folder"),
            (blocker, "is a file; give a folder"),
            (tmp_path / "out.png", "'.png' is not a video container"),
            (tmp_path / "out.xyz", "'.xyz' is not a video container")):
        with pytest.raises(UsageError, match=message) as e:
            video.run_video(path, never_called, input_shape=FER_SHAPE, preprocess=FER, output=out)
        assert str(out) in str(e.value)
    # a codec this OpenCV cannot write: cv2.VideoWriter.isOpened() is false, said at once
    with pytest.raises(UsageError, match=r"cannot write codec ZZZZ in a '\.mp4' container"):
        video.run_video(path, never_called, input_shape=FER_SHAPE, preprocess=FER,
                        output=tmp_path / "x.mp4", fourcc="ZZZZ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]


def test_checks_before_any_work_and_without_the_network(clip, tmp_path):
    """open_video and open_output are what the CLI calls before loading the model: the source
    opens and the writer is ready, or the error is raised; nothing else is needed."""
    path, _ = clip
    with video.open_video(path) as reader:
        assert reader.frame_size == (SIZE, SIZE) and reader.frame_count == 24
        with video.open_output(tmp_path / "o.mp4", reader) as sink:
            assert sink.kind == "video" and temporaries(tmp_path)  # the writer's temporary
        assert temporaries(tmp_path) == [] and not (tmp_path / "o.mp4").exists()
    with pytest.raises(UsageError, match="pre-process"):
        video.run_video(path, never_called, input_shape=FER_SHAPE, preprocess=None)
    with pytest.raises(UsageError, match="1 channel"):
        video.run_video(path, never_called, input_shape=FER_SHAPE,
                        preprocess=parse_preprocess("color:rgb"))


def test_ctrl_c_ends_a_camera_run_and_keeps_its_frames(clip, tmp_path):
    """A camera runs until Ctrl-C: the frames before it are written, the output is finished and
    the summary says it was interrupted. (No camera here: a reader over the clip, as a camera.)"""
    import cv2

    path, _ = clip
    cap = cv2.VideoCapture(str(path))
    ok, first = cap.read()
    assert ok
    calls = []

    def until_ctrl_c(x):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return mean_classifier()(x)

    with video.VideoReader(video.Source(camera=0), cap, first) as camera:
        assert camera.frame_count is None and camera.name == "camera:0"
        s = video.run_video(camera, until_ctrl_c, input_shape=FER_SHAPE, preprocess=FER,
                            output=tmp_path / "camera.avi", batch_size=4)
    assert s.interrupted and s.frames == 8 and "stopped by Ctrl-C" in s.describe()
    assert len(read_frames(tmp_path / "camera.avi")) == 8 and temporaries(tmp_path) == []


def test_source_names():
    assert video.parse_source("camera:2") == video.Source(camera=2)
    assert video.parse_source(0).is_camera and str(video.parse_source(0)) == "camera:0"
    assert video.parse_source("clip.mp4") == video.Source(path=Path("clip.mp4"))
    assert all(video.is_video_source(s) for s in ("camera:0", "a/b.MP4", "x.avi", "y.mkv", 1))
    assert not any(video.is_video_source(s) for s in ("face.png", "batch.npy", "dir"))


def test_quiet_when_piped(clip, capsys):
    path, _ = clip
    video.run_video(path, mean_classifier(), input_shape=FER_SHAPE, preprocess=FER, max_frames=3)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
