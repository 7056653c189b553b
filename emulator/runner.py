"""ClientRunner: one network (HN), its params in every stage, and the ways to run it.

Attributes (the state a HAR saves and restores exactly):
  hn                   HNGraph
  native_params        {scoped key "<net>/<layer>/kernel:0": np.ndarray} or None
  fp_optimized_params  same form; None until a pre-quantization step fills it (assign a new
                       dict or call set_fp_optimized_params; compiled targets follow the dict)
  quantized_params     {str: np.ndarray} or None; owned by the quantization toolchain
  model_script         str (the .alls text applied)
  stream_infos         list of dicts or None (the exported network's streams)
  metadata             dict (calibration summary, analysis results...)
Output dicts are keyed by bare layer names ("output_layer1"), in output_layers_order.
"""
from __future__ import annotations

import os
from typing import Any, Mapping

import numpy as np

from .errors import HNError, InferenceInputError, NoParamsError, NotQuantizedError, RunnerUsageError
from .hn import HNGraph
from .limits import check_batch
from .targets import FloatExecutor, Target, as_target


class ClientRunner:
    def __init__(self, hn: Any = None, har: str | os.PathLike | None = None):
        """hn: the HN as JSON text (a str or bytes, as the seed's `open('net.hn').read()`), a
        parsed dict, an HNGraph, or a path to an .hn file given as a pathlib.Path (a str is
        always text, never guessed to be a path). har: a HAR archive path, restoring the whole
        runner."""
        self.native_params: dict[str, np.ndarray] | None = None
        self.fp_optimized_params: dict[str, np.ndarray] | None = None
        self.quantized_params: dict[str, np.ndarray] | None = None
        self.model_script: str = ""
        self.stream_infos: list[dict] | None = None
        self.metadata: dict[str, Any] = {}
        self.har_info: dict[str, Any] = {}  # tool / version / creation time of a loaded HAR
        self._executors: dict[str, Any] = {}
        if (hn is None) == (har is None):
            raise RunnerUsageError("ClientRunner needs exactly one of hn=... (the HN) or har=... (a HAR "
                                   "path)")
        if har is not None:
            from .har import load_har

            load_har(self, har)
        else:
            self.hn = _as_hn(hn)

    # --- params ----------------------------------------------------------------------------
    def load_params(self, params: Any, which: str = "native") -> None:
        """Load and validate params (an .npz path, its bytes, or a dict of scoped keys).
        which: "native" (default) or "fp_optimized"."""
        from .npz import load_params

        if which not in ("native", "fp_optimized"):
            raise RunnerUsageError(f"which must be 'native' or 'fp_optimized', not {which!r}")
        checked = load_params(self.hn, params)
        if which == "native":
            self.native_params = checked
        else:
            self.fp_optimized_params = checked
        self._executors.clear()

    def set_fp_optimized_params(self, params: Mapping[str, np.ndarray] | None) -> None:
        """Install (validated) fp-optimized params, or None to fall back to the native ones."""
        if params is None:
            self.fp_optimized_params = None
            self._executors.clear()
        else:
            self.load_params(params, which="fp_optimized")

    def layer_params(self, name: str, which: str = "native") -> dict[str, np.ndarray]:
        """One layer's params with bare keys ("kernel", "bias", "alpha", "mean", "std")."""
        from .npz import layer_params

        return layer_params(self.hn, self._params(which), name)

    def _params(self, which: str) -> dict[str, np.ndarray]:
        if which == "fp_optimized" and self.fp_optimized_params is not None:
            return self.fp_optimized_params
        if which not in ("native", "fp_optimized"):
            raise RunnerUsageError(f"which must be 'native' or 'fp_optimized', not {which!r}")
        if self.native_params is None:
            raise NoParamsError(self.hn.name)
        return self.native_params

    def load_model_script(self, script: str | os.PathLike) -> None:
        """Set the model script (.alls): its text (a str), or a file given as a pathlib.Path.
        A one-line str naming an existing .alls file is refused (say Path(...) to read it)."""
        if isinstance(script, os.PathLike):
            with open(script, encoding="utf-8") as f:
                self.model_script = f.read()
            return
        if not isinstance(script, str):
            raise RunnerUsageError(f"load_model_script takes the script's text (str) or a "
                                   f"pathlib.Path to a .alls file, not {type(script).__name__}")
        if "\n" not in script and script.strip().endswith(".alls") and os.path.exists(script.strip()):
            raise RunnerUsageError(f"load_model_script('{script}'): a str is the script's text, and "
                                   f"this one names a file; pass pathlib.Path('{script.strip()}') to read it")
        self.model_script = script

    def save_hn(self, path: str | os.PathLike) -> None:
        from .files import write_text

        write_text(path, self.hn.to_json())

    def save_params(self, path: str | os.PathLike, which: str = "native") -> None:
        from .npz import save_npz

        save_npz(path, self._params(which))

    def save_har(self, path: str | os.PathLike) -> None:
        """Everything in one archive; ClientRunner(har=path) restores it exactly."""
        from .har import save_har

        save_har(self, path)

    def get_stream_infos(self) -> list[dict]:
        from .stream_export import get_stream_infos

        return get_stream_infos(self)

    # --- inference -------------------------------------------------------------------------
    def _executor(self, target: Target) -> FloatExecutor:
        # keyed by the identity of the params dict and the HN: assigning a new dict to
        # runner.native_params / fp_optimized_params recompiles (mutating one in place does not)
        which = "fp_optimized" if target.name == "fp_optimized" else "native"
        params = self._params(which)
        key = (id(params), id(self.hn))
        cached = self._executors.get(which)
        if cached is None or cached[0] != key:
            cached = self._executors[which] = (key, FloatExecutor(self.hn, params), params)
        return cached[1]

    def prepare_inputs(self, data: Any) -> dict[str, np.ndarray]:
        """Input data as {input-layer bare name: float32 (N, ...)}, checked against the HN.
        data: one array (single-input nets), a list in input-layer order, or a dict keyed by
        bare or scoped input-layer names."""
        ins = self.hn.input_layers
        if isinstance(data, Mapping):
            d = {self.hn.layer(k).name: v for k, v in data.items()}
            extra = [k for k in d if self.hn.layers[k].type != "input_layer"]
            if extra:
                raise HNError(f"network '{self.hn.name}': {extra} are not input layers; key the "
                              f"data by input layer ({[l.name for l in ins]})")
        elif isinstance(data, (list, tuple)):
            if len(data) != len(ins):
                hint = (" (a list is one array per input layer; for a batch of images pass one "
                        "array (N, H, W, C), e.g. np.stack(images))") if len(ins) == 1 else ""
                raise HNError(f"network '{self.hn.name}' has {len(ins)} inputs, {len(data)} arrays "
                              f"given{hint}")
            d = {l.name: v for l, v in zip(ins, data)}
        else:
            if len(ins) != 1:
                raise HNError(f"network '{self.hn.name}' has inputs {[l.name for l in ins]}: "
                              f"pass a dict from input name to array")
            d = {ins[0].name: data}
        out = {}
        for l in ins:
            if l.name not in d:
                raise HNError(f"network '{self.hn.name}': no data for input layer '{l.name}' "
                              f"(data given for {sorted(d)})")
            a = np.asarray(d[l.name], dtype=np.float32)
            want = l.output_shape[1:]
            if list(a.shape[1:]) != list(want):
                raise HNError(f"input '{l.name}' expects shape (N, {', '.join(map(str, want))}), "
                              f"got {a.shape}; pre-process the images as the network was trained "
                              f"(resize, channels, scaling)")
            out[l.name] = a
        if len({a.shape[0] for a in out.values()}) != 1:
            raise HNError(f"inputs have different batch sizes: { {k: a.shape[0] for k, a in out.items()} }")
        return out

    def infer(self, target: Any, data: Any, inter_layers: bool = False, batch_size: int = 32):
        """Run the network on `data` with an emulation target.

        Returns {output-layer name: array} in output_layers_order; with inter_layers=True a
        tuple (outputs, {layer name: array} for every layer). Quantized targets go to
        emulator.quantized_exec and need run_quantization_from_np first.
        """
        target = as_target(target)
        if target.quantized:
            if self.quantized_params is None:
                raise NotQuantizedError(repr(target))
            from . import quantized_exec

            return quantized_exec.infer(self, target, data, inter_layers=inter_layers,
                                        batch_size=batch_size)
        if batch_size < 1:
            raise InferenceInputError(f"batch_size must be >= 1, got {batch_size}")
        ins = self.prepare_inputs(data)
        n = next(iter(ins.values())).shape[0]
        check_batch(self.hn, n if inter_layers else min(n, batch_size), f"{target!r} inference",
                    keep_all=inter_layers)
        ex = self._executor(target)
        outs: dict[str, list] = {}
        alls: dict[str, list] = {}
        for s in range(0, n, batch_size):
            o, a = ex.run([ins[l.name][s:s + batch_size] for l in self.hn.input_layers], inter_layers)
            for k, v in o.items():
                outs.setdefault(k, []).append(v)
            for k, v in a.items():
                alls.setdefault(k, []).append(v)
        cat = {k: np.concatenate(v) for k, v in outs.items()} if n else \
            {l.name: np.zeros((0, *l.output_shape[1:]), np.float32) for l in self.hn.output_layers}
        if inter_layers:
            return cat, {k: np.concatenate(v) for k, v in alls.items()}
        return cat

    # --- TensorFlow views ------------------------------------------------------------------
    def analyze_noise(self, data: Any, batch_size: int = 16, threshold_db: float = 10.0,
                      lerr: bool = True, dump: str | os.PathLike | None = None,
                      progress: bool = True):
        """The per-layer noise analysis of the quantized network on `data` (pre-processed
        inputs, a few real images): an emulator.analysis.noise.NoiseReport with
        .ranked_layers, .flagged, .lerr, .suggested_script, .to_json(), .save_html(path).
        Its JSON summary is kept in metadata["noise_analysis"] (and so in a saved HAR).
        docs/analysis.md."""
        from .analysis.noise import analyze_noise

        report = analyze_noise(self, data, batch_size=batch_size, threshold_db=threshold_db,
                               lerr=lerr, dump=dump, progress=progress)
        self.metadata["noise_analysis"] = report.to_dict()
        return report

    def get_keras_model(self, target: Any):
        """A keras.Model running this network with `target` (inputs per input layer, outputs
        in output_layers_order)."""
        from .tf_export import keras_model

        return keras_model(self, as_target(target))

    def get_tf_graph(self, target: Any, input_tensor: Any = None, fps: float | None = None,
                     nodes: Any = None, **kwargs: Any):
        """A TF1-compat export as the seed's Listings 7 and 8 use it: `.output_tensors`,
        `.session`, `.all_layers_names`, `.all_layers`, `.input_tensors`, `.graph`.

        input_tensor: a tf.compat.v1 placeholder (any shape; it is reshaped to the input
        layer's shape), a list / dict of them for several inputs, or None to create one.
        fps and nodes are accepted for the SDK's signature: the emulator has no timing model
        and always exports the whole network.
        """
        from .tf_export import tf_graph

        if kwargs:
            raise RunnerUsageError(f"get_tf_graph got unexpected arguments {sorted(kwargs)}; it takes "
                                   f"target, input_tensor, fps and nodes")
        return tf_graph(self, as_target(target), input_tensor)


def _as_hn(hn: Any) -> HNGraph:
    """The HN from explicit types: HNGraph, dict, JSON text (str / bytes), or an os.PathLike.
    A runner owns its HN: an HNGraph is copied (quantization writes the settings it applied into
    the layers' quantization_params, which must not reach another runner's network)."""
    if isinstance(hn, HNGraph):
        return HNGraph.from_json(hn.to_json())
    if isinstance(hn, dict):
        return HNGraph.from_dict(hn)
    if isinstance(hn, os.PathLike):
        try:
            with open(hn, "rb") as f:
                return HNGraph.from_json(f.read(), source=str(hn))
        except OSError as e:
            raise HNError(f"cannot read the HN file '{hn}': {e.strerror or e}") from None
    if isinstance(hn, bytes):
        return HNGraph.from_json(hn)
    if isinstance(hn, str):
        if not hn.lstrip().startswith("{"):
            hint = (f"; it names a file: pass ClientRunner(hn=pathlib.Path('{hn.strip()}'))"
                    if os.path.exists(hn.strip()) else "")
            raise HNError(f"hn='{hn[:80]}' is not HN JSON text (a str is the HN's text, as "
                          f"open('net.hn').read() gives){hint}; a path goes as a pathlib.Path")
        return HNGraph.from_json(hn)
    raise RunnerUsageError(f"hn must be HN JSON text, a pathlib.Path, a dict or an HNGraph, not "
                           f"{type(hn).__name__}")
