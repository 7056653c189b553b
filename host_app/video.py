"""Video files and cameras through a network: frames in batches, annotated frames out.

    from host_app.video import open_video, open_output, run_video, host_pipeline_infer

    with open_video("clip.mp4") as reader, open_output("out.mp4", reader) as sink:
        summary = run_video(reader, host_pipeline_infer(device, runner), input_shape=(64, 64, 1),
                            preprocess=parse_preprocess("fer"), output=sink,
                            annotate=runner_annotator(runner))
    print(summary.describe())

Sources: a video file OpenCV's FFmpeg back end decodes (.mp4, .avi, .mkv, .mov, ...), or a camera:
`camera:N` (or the int N), OpenCV's capture device N (V4L2 on Linux). `open_video` opens it and
decodes its first frame at once, so a missing file, a file that is not a video, a video that
decodes to zero frames or a camera that cannot be opened is reported before any work, naming the
source (UsageError for the files, exit 2; AppError for a camera, exit 1: a device that cannot be
opened).

Outputs (`open_output`, also checked before any work):
  OUT.mp4 / .m4v / .mov / .mkv   a video, codec mp4v; OUT.avi: MJPG (`fourcc` chooses another)
  DIR (an existing directory, or a path without a suffix)
                                 a folder of annotated frames, frame_000000.png ... (or .jpg)
They follow host-app's rules for the files it writes (docs/host-app.md, "Output files"): an
output that is one of the command's inputs is refused, --force or not; an existing file of
another kind than a video (by content) is not replaced without --force, nor a folder that holds
frames of an earlier run; a video is written to a temporary in the target's directory, created
exclusively, and renamed over the target when the last frame is in (an error or Ctrl-C leaves
the old file whole and no temporary); each frame of a folder goes through
emulator.files.atomic_write. A codec / container OpenCV cannot write (VideoWriter.isOpened()
false) is reported when the output is opened, before the first frame is inferred.

`run_video` reads frames in batches of `batch_size`, pre-processes them as images are (RGB,
then host_app.images.preprocess_image with the HAR's recorded spec), runs each batch through
`infer_batch(x) -> {output name: array (N, ...)}` (the host pipeline through a device, or an
emulation target), calls `annotate(frame_bgr, outputs_of_that_frame) -> frame_bgr` per frame
(outputs without the batch axis), draws the frames per second, writes the frames and returns a
VideoSummary. A background thread decodes and pre-processes the next batch while the current one
is inferred. On a terminal a progress line shows the frames and the frames per second; nothing
when stderr is piped. A camera runs until `max_frames` or Ctrl-C: Ctrl-C then ends the run
cleanly (the frames so far are written, `summary.interrupted`); for a file Ctrl-C aborts and the
old output stays.

The annotation is a plug-in: `classifier_annotator` / `runner_annotator` write the top-1 label
and score of each classifier output (no post-processing needed); `postprocess_annotator(post)`
draws what a host_app.postprocess post-processing finds (boxes, keypoints, top classes);
`results_annotator(apply, draw)` adapts any other (`apply(outputs, image_shape) -> results`,
`draw(image, result)`).
"""
from __future__ import annotations

import contextlib
import os
import queue
import re
import secrets
import stat
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from .errors import AppError, UsageError

CAMERA_PREFIX = "camera:"
# containers VideoWriter writes, with the codec used for each (FourCC)
VIDEO_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "mp4v", ".avi": "MJPG"}
# what the CLI takes for a video to read (OpenCV's FFmpeg reads more; these are routed to video)
VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".wmv",
                    ".flv", ".3gp", ".ts", ".mts")
FRAME_FORMATS = {"png": ".png", "jpg": ".jpg", "jpeg": ".jpg"}
FRAME_PATTERN = re.compile(r"frame_(\d{6,})\.(png|jpg)")
DEFAULT_FPS = 30.0  # written when the source does not say (cameras often report 0)
DEFAULT_BATCH = 8  # frames per infer_batch call: small, so that a camera's frames stay live
_FLAG = "--output"

InferBatch = Callable[[np.ndarray], Mapping[str, np.ndarray]]
Annotate = Callable[[np.ndarray, Mapping[str, np.ndarray]], "np.ndarray | None"]


# ==== OpenCV, quietly =============================================================================

# FFmpeg's own log lines ("moov atom not found", "Could not find a valid device") stay out of
# the output: the errors raised here say what went wrong. OpenCV reads this once, when FFmpeg
# is first used in the process, hence here, at import (-8: AV_LOG_QUIET; set it to keep them).
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


@contextlib.contextmanager
def _quiet_opencv():
    """OpenCV's own warnings ("can't open camera by index") are silenced while a source or a
    writer is opened."""
    import cv2

    log = getattr(cv2, "utils", None) and getattr(cv2.utils, "logging", None)
    if log is None:
        yield cv2
        return
    before = log.getLogLevel()
    log.setLogLevel(log.LOG_LEVEL_SILENT)
    try:
        yield cv2
    finally:
        log.setLogLevel(before)


# ==== sources =====================================================================================

@dataclass(frozen=True)
class Source:
    """A video file (`path`) or a camera (`camera`, OpenCV's device index)."""

    path: Path | None = None
    camera: int | None = None

    @property
    def is_camera(self) -> bool:
        return self.camera is not None

    def __str__(self) -> str:
        return f"{CAMERA_PREFIX}{self.camera}" if self.is_camera else str(self.path)


def parse_source(spec: str | os.PathLike | int | Source) -> Source:
    """A Source from `camera:N`, an int N (a camera), or a file path (UsageError for a camera
    that is not `camera:N` with N a number)."""
    if isinstance(spec, Source):
        return spec
    if isinstance(spec, bool):
        raise UsageError(f"video source {spec!r}: give a file path, camera:N or a camera index")
    if isinstance(spec, int):
        if spec < 0:
            raise UsageError(f"camera index {spec} is negative; cameras are numbered from 0")
        return Source(camera=spec)
    text = os.fspath(spec)
    if text.startswith(CAMERA_PREFIX):
        index = text[len(CAMERA_PREFIX):]
        if not index.isdigit():
            raise UsageError(f"video source '{text}': a camera is camera:N with N its index "
                             f"(camera:0 is the first, /dev/video0 on Linux)")
        return Source(camera=int(index))
    return Source(path=Path(text))


def is_video_source(spec: str | os.PathLike | int) -> bool:
    """Whether an `infer` input names a video (camera:N, or a file named like a video): how
    the CLI tells a video run from an image run."""
    if isinstance(spec, int) and not isinstance(spec, bool):
        return True
    text = os.fspath(spec)
    return text.startswith(CAMERA_PREFIX) or Path(text).suffix.lower() in VIDEO_EXTENSIONS


class VideoReader:
    """An open source (open_video): its frames (BGR uint8, as OpenCV decodes them), size and
    rate. The first frame is decoded when it is opened."""

    def __init__(self, source: Source, capture, first_frame: np.ndarray):
        self.source = source
        self._cap = capture
        self._first: np.ndarray | None = first_frame
        self.frame_size = (int(first_frame.shape[1]), int(first_frame.shape[0]))  # (w, h)
        import cv2

        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 0.5 <= fps <= 1000.0 else None  # None: the source does not say
        count = float(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0.0)
        self.frame_count = int(count) if not source.is_camera and 0 < count < 1e9 else None

    @property
    def name(self) -> str:
        return str(self.source)

    def frames(self, max_frames: int | None = None) -> Iterator[np.ndarray]:
        """The frames, from the first, up to `max_frames` (once: a reader is not rewound)."""
        n = 0
        while max_frames is None or n < max_frames:
            if self._first is not None:
                frame, self._first = self._first, None
            else:
                ok, frame = self._cap.read()
                if not ok or frame is None:
                    return
            yield _as_bgr(frame)
            n += 1

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _as_bgr(frame: np.ndarray) -> np.ndarray:
    """A decoded frame as 8-bit BGR (H, W, 3) (grey and BGRA captures exist)."""
    import cv2

    if frame.dtype != np.uint8:
        frame = cv2.convertScaleAbs(frame, alpha=255.0 / 65535.0) if frame.dtype == np.uint16 \
            else frame.astype(np.uint8)
    if frame.ndim == 2 or frame.shape[2] == 1:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return frame


def open_video(spec: str | os.PathLike | int | Source) -> VideoReader:
    """Opens a video file or a camera and decodes its first frame. Errors name the source:
    UsageError for a file that does not exist, is not a file, is not a video OpenCV decodes,
    or decodes to zero frames; AppError for a camera that cannot be opened or gives no frame."""
    from .outputs import file_kind

    source = parse_source(spec)
    if source.is_camera:
        with _quiet_opencv() as cv2:
            cap = cv2.VideoCapture(source.camera)
            if not cap.isOpened():
                cap.release()
                raise AppError(
                    f"cannot open camera {source.camera} ({source}): OpenCV found no camera at "
                    f"that index (on Linux /dev/video{source.camera}: is a camera plugged in, and "
                    f"may this user open it?). Give another index, or a video file")
            ok, frame = cap.read()
        if not ok or frame is None:
            cap.release()
            raise AppError(f"camera {source.camera} ({source}) opened but gave no frame; is it "
                           f"in use by another program?")
        return VideoReader(source, cap, frame)
    path = source.path
    found = file_kind(path)
    if found is None:
        raise UsageError(f"video '{path}' does not exist; give a video file (.mp4, .avi, ...) or "
                         f"camera:N")
    kind, what = found
    if kind == "special":
        raise UsageError(f"video '{path}' is {what}; give a video file")
    if kind == "unreadable":
        raise UsageError(f"video '{path}' is {what}")
    if kind in ("empty", "har", "npz", "html", "json", "hdf5", "tflite", "keras", "npy", "tar",
                "zip", "pdf", "text"):
        raise UsageError(f"'{path}' is {what}, not a video; give a video file (.mp4, .avi, ...) "
                         f"or camera:N")
    with _quiet_opencv() as cv2:
        cap = cv2.VideoCapture(os.fspath(path), cv2.CAP_FFMPEG)
        if not cap.isOpened():
            cap.release()
            cap = cv2.VideoCapture(os.fspath(path))  # any other back end that reads it
        if not cap.isOpened():
            cap.release()
            raise UsageError(f"cannot read video '{path}': OpenCV could not open it as a video "
                             f"(corrupt, or a format its FFmpeg does not decode)")
        ok, frame = cap.read()
    if not ok or frame is None:
        cap.release()
        raise UsageError(f"video '{path}' decodes to zero frames (empty or truncated); give a "
                         f"video with frames")
    return VideoReader(source, cap, frame)


# ==== outputs =====================================================================================

def _video_kind(path: Path) -> bool:
    """Whether an existing file holds a video (MP4 / MOV ftyp, AVI, Matroska / WebM)."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        return False
    return (head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free")
            or (head[:4] == b"RIFF" and head[8:12] == b"AVI ")
            or head[:4] == b"\x1aE\xdf\xa3")


class _Sink:
    """Where annotated frames go; `finish` makes them the output, `abort` leaves the old one."""

    kind = ""
    path: Path

    def open(self, frame_size: tuple[int, int], fps: float) -> None:
        raise NotImplementedError

    def write(self, frame: np.ndarray) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.abort()  # nothing left to do after finish(); otherwise the old output stays


class VideoFileSink(_Sink):
    """A video file written through cv2.VideoWriter to an exclusively created temporary in the
    target's directory, renamed over the target by `finish`."""

    kind = "video"

    def __init__(self, path: Path, fourcc: str):
        self.path = path
        self.fourcc = fourcc
        self.frame_size: tuple[int, int] | None = None
        self.fps = DEFAULT_FPS
        self.frames = 0
        self._writer = None
        self._tmp: Path | None = None
        self._done = False

    def open(self, frame_size: tuple[int, int], fps: float) -> None:
        if self._writer is not None:
            return
        directory = self.path.parent
        tmp = directory / f".{self.path.stem}.{secrets.token_hex(6)}.tmp{self.path.suffix}"
        try:  # reserve the name: never through a symlink, never someone else's file
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                         0o666)
            os.close(fd)
        except OSError as e:
            raise AppError(f"cannot write video '{self.path}': {e.strerror or e}; check the disk "
                           f"space and the permissions of '{directory}'") from None
        self._tmp = tmp
        with _quiet_opencv() as cv2:
            writer = cv2.VideoWriter(os.fspath(tmp), cv2.VideoWriter_fourcc(*self.fourcc),
                                     float(fps), tuple(int(v) for v in frame_size))
            opened = writer.isOpened()
        if not opened:
            writer.release()
            self.abort()
            alt = "'.avi' (MJPG) or '.mp4' (mp4v)" if self.fourcc in ("mp4v", "MJPG") else \
                f"the default codec of '{self.path.suffix}'"
            raise UsageError(f"{_FLAG} '{self.path}': OpenCV cannot write codec {self.fourcc} in "
                             f"a '{self.path.suffix}' container at {frame_size[0]}x{frame_size[1]} "
                             f"(cv2.VideoWriter did not open); use {alt}, or a folder of frames")
        self._writer = writer
        self.frame_size = tuple(int(v) for v in frame_size)
        self.fps = float(fps)

    def write(self, frame: np.ndarray) -> None:
        import cv2

        w, h = self.frame_size
        if frame.shape[1] != w or frame.shape[0] != h:  # a source whose frames change size
            frame = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
        self._writer.write(np.ascontiguousarray(frame))
        self.frames += 1

    def finish(self) -> None:
        if self._done or self._writer is None:
            return
        self._writer.release()
        self._writer = None
        tmp = self._tmp
        try:
            if tmp.stat().st_size == 0 and self.frames:
                raise OSError(28, "the video writer wrote nothing (disk full?)")
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            try:  # the new file keeps the old one's permissions
                old = os.lstat(self.path)
                if stat.S_ISREG(old.st_mode):
                    os.chmod(tmp, stat.S_IMODE(old.st_mode))
            except FileNotFoundError:
                pass
            os.replace(tmp, self.path)
        except OSError as e:
            self.abort()
            raise AppError(f"cannot write video '{self.path}': {e.strerror or e}; check the disk "
                           f"space and the permissions of '{self.path.parent}'") from None
        self._tmp = None
        self._done = True
        _sync_directory(self.path.parent)

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if self._tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._tmp)
            self._tmp = None


def _sync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class FrameFolderSink(_Sink):
    """A folder of annotated frames, frame_000000.png (or .jpg) ..., each written through
    emulator.files.atomic_write. `finish` removes the frames of an earlier run (replaced with
    --force) beyond the last one written."""

    kind = "frames"

    def __init__(self, path: Path, ext: str):
        self.path = path
        self.ext = ext
        self.frames = 0
        self.frame_size: tuple[int, int] | None = None

    def frame_path(self, i: int) -> Path:
        return self.path / f"frame_{i:06d}{self.ext}"

    def open(self, frame_size: tuple[int, int], fps: float) -> None:
        self.frame_size = tuple(int(v) for v in frame_size)

    def write(self, frame: np.ndarray) -> None:
        import cv2

        from emulator.files import write_bytes

        target = self.frame_path(self.frames)
        params = [cv2.IMWRITE_JPEG_QUALITY, 92] if self.ext == ".jpg" else []
        ok, buf = cv2.imencode(self.ext, np.ascontiguousarray(frame), params)
        if not ok:
            raise AppError(f"cannot encode frame {self.frames} as {self.ext}")
        try:
            write_bytes(target, buf.tobytes())
        except OSError as e:
            raise AppError(f"cannot write frame '{target}': {e.strerror or e}; check the disk "
                           f"space and the permissions of '{self.path}'") from None
        self.frames += 1

    def finish(self) -> None:
        for old in _earlier_frames(self.path):
            m = FRAME_PATTERN.fullmatch(old.name)
            if int(m.group(1)) >= self.frames or old.suffix != self.ext:
                with contextlib.suppress(FileNotFoundError):
                    old.unlink()

    def abort(self) -> None:
        pass  # every frame written is whole; a run cut short leaves the frames it wrote


def _earlier_frames(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir()
                      if FRAME_PATTERN.fullmatch(p.name) and p.is_file())
    except OSError:
        return []


def open_output(output: str | os.PathLike, reader: VideoReader | None = None, *,
                inputs: Sequence[tuple[Any, str]] = (), force: bool = False,
                frame_format: str = "png", fourcc: str | None = None,
                fps: float | None = None) -> _Sink:
    """The output of a video run, checked before any work (module doc): a video file for a
    name with a video suffix, else a folder of frames. `inputs`: (path, what) pairs of the
    command's input files, never overwritten. With `reader`, a video file's writer is opened at
    once (the frame size is known), so a codec / container OpenCV cannot write is a UsageError
    now, not after the model has loaded. Use it as a context manager: leaving the block without
    `finish()` (run_video calls it) leaves the old output as it was."""
    from .outputs import file_identity, file_kind, output_file

    p = Path(output)
    inputs = [(Path(s), what) for s, what in inputs if s is not None]
    if reader is not None and reader.source.path is not None:
        inputs.append((reader.source.path, "the video this command reads"))
    suffix = p.suffix.lower()
    is_folder = p.is_dir() or (not suffix and not p.exists())
    if is_folder:
        fmt = frame_format.lower().lstrip(".")
        if fmt not in FRAME_FORMATS:
            raise UsageError(f"frame format '{frame_format}': one of {', '.join(FRAME_FORMATS)}")
        ext = FRAME_FORMATS[fmt]
        try:
            p.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UsageError(f"{_FLAG} '{p}': cannot create the folder ({e.strerror or e}); give "
                             f"a writable location") from None
        here = file_identity(p)
        for src, what in inputs:
            if FRAME_PATTERN.fullmatch(src.name) and file_identity(src.parent) == here:
                raise UsageError(f"{_FLAG} '{p}' holds '{src.name}', {what}; writing frames there "
                                 f"would destroy it. Give another folder (--force does not "
                                 f"override this)")
        earlier = _earlier_frames(p)
        if earlier and not force:
            raise UsageError(f"{_FLAG} '{p}' already holds {len(earlier)} frame file(s) of an "
                             f"earlier run ({earlier[0].name} ...); give an empty folder, or add "
                             f"--force to replace them")
        return FrameFolderSink(p, ext)
    if p.exists() and not suffix:
        raise UsageError(f"{_FLAG} '{p}' is a file; give a folder for the frames, or a video "
                         f"file name ({', '.join(VIDEO_CODECS)})")
    if suffix not in VIDEO_CODECS:
        raise UsageError(f"{_FLAG} '{p}': '{suffix or p.name}' is not a video container host-app "
                         f"writes ({', '.join(VIDEO_CODECS)}); give OUT.mp4, OUT.avi, or a folder "
                         f"for the frames")
    p = output_file(p, _FLAG, None, inputs=inputs, force=force)  # a directory, inputs, mkdir
    found = file_kind(p)
    if found is not None:
        kind, what = found
        if kind == "special":
            raise UsageError(f"{_FLAG} '{p}' is {what}; host-app writes a regular file there by "
                             f"renaming over it. Give a file path")
        if kind != "empty" and not _video_kind(p) and not force:
            raise UsageError(f"{_FLAG} '{p}' already holds {what}, and this command would replace "
                             f"it with a video. Give another path, or add --force to replace it")
    chosen = fourcc or VIDEO_CODECS[suffix]
    if len(chosen) != 4:
        raise UsageError(f"codec '{chosen}' is not a FourCC (four characters, such as mp4v or "
                         f"MJPG)")
    sink = VideoFileSink(p, chosen)
    if reader is not None:
        sink.open(reader.frame_size, fps or reader.fps or DEFAULT_FPS)
    return sink


# ==== annotation ==================================================================================

def _font_scale(frame: np.ndarray) -> float:
    return max(0.35, min(frame.shape[0], frame.shape[1]) / 600.0)


def draw_text_lines(frame: np.ndarray, lines: Sequence[str], corner: str = "top-left",
                    scale: float | None = None) -> tuple[int, int, int, int] | None:
    """Lines of text on a darkened box in a corner of a BGR frame, in place. Returns the box
    (x0, y0, x1, y1), or None when there is nothing to draw."""
    import cv2

    lines = [ln for ln in lines if ln]
    if not lines:
        return None
    s = scale or _font_scale(frame)
    thick = max(1, int(round(s * 1.6)))
    font = cv2.FONT_HERSHEY_SIMPLEX
    sizes = [cv2.getTextSize(ln, font, s, thick) for ln in lines]
    pad = max(3, int(round(6 * s)))
    line_h = max(h + base for (_, h), base in sizes) + pad
    width = max(w for (w, _), _ in sizes) + 2 * pad
    height = line_h * len(lines) + pad
    fh, fw = frame.shape[:2]
    x0 = 0 if corner.endswith("left") else max(0, fw - width)
    y0 = 0 if corner.startswith("top") else max(0, fh - height)
    x1, y1 = min(fw, x0 + width), min(fh, y0 + height)
    roi = frame[y0:y1, x0:x1]
    roi[:] = (roi.astype(np.uint16) * 3 // 10).astype(np.uint8)  # darken: readable on any image
    for i, ln in enumerate(lines):
        (_, h), _ = sizes[i]
        y = y0 + pad + i * line_h + h
        cv2.putText(frame, ln, (x0 + pad, y), font, s, (255, 255, 255), thick, cv2.LINE_AA)
    return x0, y0, x1, y1


def top1(values: np.ndarray, labels: Sequence[str] | None = None,
         strict: bool = True) -> tuple[str, float] | None:
    """(label, score) of the largest value of a frame's vector of scores, or None for other
    shapes. `strict`: only a 1-D vector (a detector's (896, 1) scores are not a classification);
    else any shape with one axis of 2 or more values, such as (1, 1, 7)."""
    v = np.asarray(values)
    if v.size < 2 or (v.ndim if strict else v.squeeze().ndim) != 1:
        return None
    v = v.reshape(-1)
    k = int(np.argmax(v))
    name = labels[k] if labels and k < len(labels) else f"class {k}"
    return name, float(v[k])


def classifier_annotator(labels: Mapping[str, Sequence[str]] | None = None,
                         outputs: Sequence[str] | None = None) -> Annotate:
    """The default annotation: the top-1 label and score of each classifier output ("happy
    0.97"; with several, the output's name first), at the top left. `labels`: {output: class
    names}; `outputs`: the outputs to label (default: every output that is a vector of scores)."""
    labels = dict(labels or {})

    def annotate(frame: np.ndarray, outs: Mapping[str, np.ndarray]) -> np.ndarray:
        names = [n for n in (outputs if outputs is not None else outs) if n in outs]
        got = [(n, top1(outs[n], labels.get(n), strict=outputs is None)) for n in names]
        got = [(n, t) for n, t in got if t is not None]
        lines = [(f"{n}: " if len(got) > 1 else "") + f"{label} {score:.2f}"
                 for n, (label, score) in got]
        draw_text_lines(frame, lines, "top-left")
        return frame

    return annotate


def runner_annotator(runner) -> Annotate:
    """classifier_annotator for a runner's classifier outputs (host_app.pipeline.is_classifier)
    with the labels recorded in its HAR."""
    from .pipeline import is_classifier, labels_for

    names = [layer.name for layer in runner.hn.output_layers if is_classifier(runner, layer.name)]
    return classifier_annotator({n: labels_for(runner, n) for n in names if labels_for(runner, n)},
                                outputs=names)


def results_annotator(apply: Callable[[Mapping[str, np.ndarray], tuple], Sequence[Any]],
                      draw: Callable[[np.ndarray, Any], "np.ndarray | None"],
                      batched: bool = True) -> Annotate:
    """An annotation from a post-processing: `apply(outputs, image_shape) -> results` (boxes,
    keypoints, labels, in the frame's pixels for `image_shape` = frame.shape), then
    `draw(frame, result)` for each (in place, or returning the frame). With `batched`, the
    outputs are given with a batch axis of 1, as a batch post-processing expects them."""

    def annotate(frame: np.ndarray, outs: Mapping[str, np.ndarray]) -> np.ndarray:
        given = {k: np.asarray(v)[None] for k, v in outs.items()} if batched else outs
        for result in apply(given, frame.shape):
            drawn = draw(frame, result)
            if drawn is not None:
                frame = drawn
        return frame

    return annotate


def postprocess_annotator(post, **draw_options) -> Annotate:
    """The annotation of a host_app.postprocess post-processing bound to the network
    (postprocess_for(runner, ...)): its `apply` on each frame's outputs, then its `draw`
    (boxes, keypoints, "label score" tags; the top classes of a classifier). A cascade that runs
    its own networks on the images (MTCNN) is not a per-frame annotation: UsageError."""
    from .postprocess import draw

    if getattr(post, "needs_images", False):
        raise UsageError(f"post-processing '{post}' runs its own networks on the images (a "
                         f"cascade); a video run takes one network and its post-processing")
    return results_annotator(post.apply, lambda image, result: draw(image, result, **draw_options))


# ==== inference callables =========================================================================

def host_pipeline_infer(device, runner, batch_size: int | None = None) -> InferBatch:
    """infer_batch through the host pipeline (host_app.pipeline.run_host_pipeline) on an open
    device: the emulated chip, a RemoteDevice or a driver's device (open_device)."""
    from .pipeline import run_host_pipeline

    def infer(x: np.ndarray) -> dict[str, np.ndarray]:
        return run_host_pipeline(device, runner, x, batch_size or len(x)).outputs

    return infer


def target_infer(runner, target: str) -> InferBatch:
    """infer_batch through an emulation target (native, fp-optimized, quantized, numeric)."""
    from .pipeline import run_target

    if target == "device":
        raise UsageError("the device target runs through host_pipeline_infer(device, runner)")

    def infer(x: np.ndarray) -> dict[str, np.ndarray]:
        return run_target(runner, target, x, batch_size=len(x))

    return infer


# ==== the run =====================================================================================

@dataclass
class VideoSummary:
    """What a run did. `seconds` is the wall time from the first frame read to the output
    finished; `infer_seconds` the time inside infer_batch."""

    source: str
    output: str | None
    output_kind: str | None  # "video", "frames" or None
    frames: int
    seconds: float
    infer_seconds: float
    batches: int
    frame_size: tuple[int, int]  # (width, height)
    source_fps: float | None
    interrupted: bool = False
    outputs: list[dict[str, np.ndarray]] | None = field(default=None, repr=False)
    first_batch_frames: int = 0
    first_batch_seconds: float = 0.0  # start-up included (the emulated chip traces its graph)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def infer_fps(self) -> float:
        return self.frames / self.infer_seconds if self.infer_seconds > 0 else 0.0

    @property
    def steady_fps(self) -> float | None:
        """Frames per second after the first batch (None with a single batch)."""
        rest = self.seconds - self.first_batch_seconds
        n = self.frames - self.first_batch_frames
        return n / rest if n > 0 and rest > 0 else None

    def describe(self) -> str:
        where = {"video": f"; wrote {self.output}", "frames": f"; wrote the frames to "
                 f"{self.output}/"}.get(self.output_kind or "", "")
        stop = " (stopped by Ctrl-C)" if self.interrupted else ""
        steady = self.steady_fps
        after = (f" ({steady:.1f} after the first batch, which took "
                 f"{self.first_batch_seconds:.2f} s)") if steady is not None else ""
        return (f"{self.frames} frame(s) of {self.source} ({self.frame_size[0]}x"
                f"{self.frame_size[1]}) in {self.seconds:.2f} s: {self.fps:.1f} frames/s end to "
                f"end{after}, {self.infer_fps:.1f} frames/s in inference, {self.batches} "
                f"batch(es){stop}{where}")


class _Rate:
    """Frames per second over the last `window` seconds, from the frame counts at the end of
    each batch (0.0 until there are two)."""

    def __init__(self, window: float = 2.0):
        self.window = window
        self.marks: list[tuple[float, int]] = []

    def add(self, t: float, frames: int) -> float:
        self.marks.append((t, frames))
        while len(self.marks) > 2 and t - self.marks[1][0] >= self.window:
            self.marks.pop(0)
        (t0, n0), (t1, n1) = self.marks[0], self.marks[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0


_END = object()


def _prefetch(batches: Iterator, depth: int = 2):
    """The batches, produced by a background thread `depth` ahead (decoding and pre-processing
    overlap inference). Exceptions of the producer are raised here; `stop()` ends the thread."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce():
        try:
            for item in batches:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_END)
        except BaseException as e:  # noqa: BLE001  (handed over to the consumer)
            q.put(e)

    thread = threading.Thread(target=produce, name="host-app video reader", daemon=True)
    thread.start()

    def items():
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close():
        stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                q.get_nowait()
        thread.join(timeout=5)

    return items(), close


def _batches(reader: VideoReader, shape: Sequence[int], spec, batch_size: int,
             max_frames: int | None, pad: bool):
    """(frames BGR, pre-processed float32 batch) pairs. With `pad`, a last short batch is
    filled up to `batch_size` with copies of its last input (its outputs are dropped): every
    call has the same shape, and the emulated chip traces its graph for one batch shape only
    (a new shape costs it a second or more)."""
    import cv2

    from .images import preprocess_image

    frames: list[np.ndarray] = []
    xs: list[np.ndarray] = []
    where = f"a frame of {reader.name}"
    for frame in reader.frames(max_frames):
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        xs.append(preprocess_image(rgb, shape, spec, where=where))
        frames.append(frame)
        if len(frames) == batch_size:
            yield frames, np.stack(xs)
            frames, xs = [], []
    if frames:
        if pad:
            xs.extend([xs[-1]] * (batch_size - len(xs)))
        yield frames, np.stack(xs)


def _progress(reader: VideoReader, total: int | None, enabled: bool):
    if not enabled:
        return None
    from .cli import Progress

    p = Progress(f"infer {reader.name}", total, unit="frame")
    if p.enabled:
        p.bar.bar_format = ("{desc} {bar:16} {n_fmt}/{total_fmt} frames [{elapsed}<{remaining}]"
                            if total else "{desc}: {n_fmt} frames [{elapsed}]")
        p.bar.refresh()
    return p


def run_video(source: str | os.PathLike | int | Source | VideoReader, infer_batch: InferBatch, *,
              input_shape: Sequence[int], preprocess,
              output: str | os.PathLike | _Sink | None = None,
              annotate: Annotate | None = None, batch_size: int = DEFAULT_BATCH,
              max_frames: int | None = None, show_fps: bool = True, keep_outputs: bool = False,
              progress: bool = True, force: bool = False, frame_format: str = "png",
              fourcc: str | None = None, output_fps: float | None = None,
              inputs: Sequence[tuple[Any, str]] = (), pad_last_batch: bool = True
              ) -> VideoSummary:
    """Runs the frames of `source` through `infer_batch` in batches and writes them annotated.

    source        a VideoReader (open_video), or what open_video takes
    infer_batch   float32 (N, *input_shape) -> {output name: (N, ...)}: host_pipeline_infer,
                  target_infer, or any callable
    input_shape   the network input without the batch axis, (H, W, C)
    preprocess    a host_app.images.Preprocess (the HAR's: pipeline.preprocess_for)
    output        None (no output written), a path (open_output: a video file or a folder of
                  frames; `force`, `frame_format`, `fourcc`, `output_fps`, `inputs` go to it), or
                  a sink open_output returned
    annotate      annotate(frame_bgr, {output: values of that frame}) -> frame_bgr (or None:
                  drawn in place); default classifier_annotator()
    show_fps      draw the frames per second (over the last 2 s) at the bottom left
    keep_outputs  keep every frame's outputs in summary.outputs
    progress      a progress line on a terminal (nothing when stderr is not one)
    pad_last_batch  infer a last short batch padded to batch_size (_batches), its extra
                  outputs dropped
    Errors: UsageError / AppError naming the source or the output (module doc); whatever
    infer_batch raises. The output is finished only when the run completes (or a camera run
    is stopped by Ctrl-C); otherwise the old output is left as it was.
    """
    if batch_size < 1:
        raise UsageError(f"batch size must be at least 1, got {batch_size}")
    if max_frames is not None and max_frames < 1:
        raise UsageError(f"--max-frames must be at least 1, got {max_frames}")
    if preprocess is None:
        raise UsageError("nothing says how to pre-process the frames for this network: give "
                         "--preprocess, or record it with `host-app parse MODEL --preset NAME / "
                         "--preprocess SPEC`")
    shape = [int(v) for v in input_shape]
    annotate = annotate or classifier_annotator()
    with contextlib.ExitStack() as stack:
        reader = source if isinstance(source, VideoReader) else \
            stack.enter_context(open_video(source))
        sink = None
        if isinstance(output, _Sink):
            sink = stack.enter_context(output)
        elif output is not None:
            sink = stack.enter_context(open_output(
                output, reader, inputs=inputs, force=force, frame_format=frame_format,
                fourcc=fourcc, fps=output_fps))
        if sink is not None:
            sink.open(reader.frame_size, output_fps or reader.fps or DEFAULT_FPS)
        total = reader.frame_count
        if max_frames is not None:
            total = min(total, max_frames) if total else max_frames
        bar = _progress(reader, total, progress)
        if bar is not None:
            stack.callback(bar.close)
        batches, stop = _prefetch(_batches(reader, shape, preprocess, batch_size, max_frames,
                                           pad_last_batch))
        stack.callback(stop)
        rate = _Rate()
        kept: list[dict[str, np.ndarray]] | None = [] if keep_outputs else None
        frames_done = n_batches = 0
        infer_s = 0.0
        interrupted = False
        first = (0, 0.0)
        t_start = time.perf_counter()
        live = 0.0
        try:
            for frames, x in batches:
                t = time.perf_counter()
                outs = infer_batch(x)
                infer_s += time.perf_counter() - t
                outs = {k: np.asarray(v) for k, v in outs.items()}
                for name, v in outs.items():
                    if v.shape[:1] != (len(x),):
                        raise AppError(f"infer_batch gave output '{name}' of shape {v.shape} for "
                                       f"a batch of {len(x)} frames")
                n_batches += 1
                if len(x) > len(frames):  # a padded last batch
                    outs = {k: v[:len(frames)] for k, v in outs.items()}
                for i, frame in enumerate(frames):
                    mine = {k: v[i] for k, v in outs.items()}
                    drawn = annotate(frame, mine)
                    frame = frame if drawn is None else drawn
                    if show_fps and live > 0:
                        draw_text_lines(frame, [f"{live:.1f} fps"], "bottom-left")
                    if sink is not None:
                        sink.write(frame)
                    if kept is not None:
                        kept.append({k: np.array(v, copy=True) for k, v in mine.items()})
                frames_done += len(frames)
                if n_batches == 1:
                    first = (frames_done, time.perf_counter() - t_start)
                now = time.perf_counter()
                live = rate.add(now, frames_done) or frames_done / max(now - t_start, 1e-9)
                if bar is not None:
                    if bar.enabled:
                        bar.bar.set_description_str(f"infer {reader.name}: {live:.1f} fps",
                                                    refresh=False)
                    bar.update(len(frames))
        except KeyboardInterrupt:
            if not (reader.source.is_camera and frames_done):
                raise
            interrupted = True  # a camera runs until Ctrl-C: keep what was recorded
        if sink is not None:
            sink.finish()
        seconds = time.perf_counter() - t_start
    return VideoSummary(source=str(reader.source),
                        output=str(sink.path) if sink is not None else None,
                        output_kind=sink.kind if sink is not None else None,
                        frames=frames_done, seconds=seconds, infer_seconds=infer_s,
                        batches=n_batches, frame_size=reader.frame_size,
                        source_fps=reader.fps, interrupted=interrupted, outputs=kept,
                        first_batch_frames=first[0], first_batch_seconds=first[1])
