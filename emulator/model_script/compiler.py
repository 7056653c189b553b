"""Compile a model script against a network: every command, key and value checked, selectors
resolved to the network's layers, and the settings gathered with "the later statement wins".

    compiled = compile_model_script(text, hn, source="q.alls")
    compiled.layers["conv1"]   # {"precision_mode": "a16_w16", "bias_mode": ...}

No TensorFlow here: the result is plain Python (str, int, float, lists, dicts).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

from ..hn import MAC_TYPES, HNGraph
from .commands import COMMANDS, Features, Signature
from .errors import ModelScriptError, close_names, did_you_mean, some_names, source_line
from .lexer import is_identifier, normalize_newlines
from .parser import Glob, ListValue, Name, Statement, Value, parse_model_script

GLOB_CHARS = "*?["


@dataclasses.dataclass
class CompiledScript:
    """What a model script sets, checked against its network.

    layers: {bare layer name: {key: value}} in the network's order, after "later wins": keys
      precision_mode (str), bias_mode (str), quantization_groups (int), force_range_in /
      force_range_out ([lo, hi] floats), range_margin (float), activation_clipping ({"mode", "values"}),
      weights_clipping ({"mode", "values": [...] or None}).
    layer_lines: {bare layer name: {key: line of the statement that set it}}.
    normalizations: [(assigned name, mean, std, line)] in order.
    calibration: {"batch_size": int, "calibset_size": int}, only the keys set.
    optimization_level: int or None. equalization, bias_correction: True / False / None (not
    set). finetune: None, or {"policy": bool, and any of "dataset_size", "epochs", "batch_size",
    "learning_rate"}.
    global_lines: {setting: line that set it last} for the settings above.
    """

    text: str
    source: str
    statements: list[Statement] = dataclasses.field(default_factory=list)
    layers: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    layer_lines: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
    normalizations: list[tuple[str, list[float], list[float], int]] = dataclasses.field(default_factory=list)
    calibration: dict[str, int] = dataclasses.field(default_factory=dict)
    optimization_level: int | None = None
    equalization: bool | None = None
    bias_correction: bool | None = None
    finetune: dict[str, Any] | None = None
    global_lines: dict[str, int] = dataclasses.field(default_factory=dict)

    def summary(self) -> list[str]:
        """Human-readable lines: what the script set, per layer and globally, with the line of
        the statement that set each value."""
        def onoff(b: bool) -> str:
            return "enabled" if b else "disabled"

        def fmt(v: Any) -> str:
            if isinstance(v, dict):
                return ", ".join(f"{k}={fmt(x)}" for k, x in v.items() if x is not None)
            if isinstance(v, list):
                return "[" + ", ".join(fmt(x) for x in v) + "]"
            if isinstance(v, float):
                return repr(v)
            return str(v)

        n = len(self.statements)
        out = [f"{self.source}: {n} statement{'s' if n != 1 else ''}"]
        for name, keys in self.layers.items():
            lines = self.layer_lines.get(name, {})
            said = "; ".join(f"{k}={'(' + fmt(v) + ')' if isinstance(v, dict) else fmt(v)}"
                             f" (line {lines.get(k, '?')})" for k, v in keys.items())
            out.append(f"  layer {name}: {said}")
        for name, mean, std, line in self.normalizations:
            out.append(f"  normalization {name}: mean {fmt(mean)}, std {fmt(std)} (line {line})")
        g = self.global_lines
        if self.calibration:
            out.append(f"  calibration: {fmt(self.calibration)} (line {g.get('calibration', '?')})")
        if self.optimization_level is not None:
            out.append(f"  optimization_level: {self.optimization_level} (line {g['optimization_level']})")
        if self.equalization is not None:
            out.append(f"  equalization: {onoff(self.equalization)} (line {g['equalization']})")
        if self.bias_correction is not None:
            out.append(f"  bias_correction (IBC): {onoff(self.bias_correction)} (line {g['bias_correction']})")
        if self.finetune is not None:
            rest = {k: v for k, v in self.finetune.items() if k != "policy"}
            more = f", {fmt(rest)}" if rest else ""
            out.append(f"  finetune (QFT): {onoff(self.finetune['policy'])}{more} (line {g['finetune']})")
        if len(out) == 1:
            out.append("  (sets nothing)")
        return out


def compile_model_script(text: str, hn: HNGraph, source: str = "<script>") -> CompiledScript:
    """Parse `text` and check it against the network `hn` (an emulator.hn.HNGraph): commands,
    keys, values, and layer selectors (each must match at least one layer). Returns the
    settings as a CompiledScript; raises ModelScriptError at the first problem."""
    if not isinstance(text, str):
        raise TypeError(f"a model script is text (str), not {type(text).__name__}")
    if not all(hasattr(hn, a) for a in ("layers", "match", "find", "scoped")):
        raise TypeError(f"compile_model_script needs the network (an emulator.hn.HNGraph), "
                        f"not {type(hn).__name__}")
    norm = normalize_newlines(text)
    statements = parse_model_script(text, str(source))
    c = _Compiler(norm, str(source), hn)
    out = CompiledScript(text=text, source=str(source), statements=statements)
    for st in statements:
        c.statement(st, out)
    order = {name: i for i, name in enumerate(hn.layers)}
    out.layers = {k: out.layers[k] for k in sorted(out.layers, key=order.__getitem__)}
    out.layer_lines = {k: out.layer_lines[k] for k in out.layers}
    return out


@dataclasses.dataclass
class _Bound:
    value: Any
    node: Value
    arg_line: int
    arg_column: int


class _Compiler:
    def __init__(self, text: str, source: str, hn: HNGraph):
        self.text, self.source, self.hn = text, source, hn

    # the Context of commands.py
    def fail(self, message: str, node: Any, suggestions: Sequence[str] = ()) -> ModelScriptError:
        return self.error(message + did_you_mean(suggestions), node.line, node.column, suggestions)

    def error(self, message: str, line: int, column: int, suggestions: Sequence[str] = ()) -> ModelScriptError:
        return ModelScriptError(message, self.source, line, column, source_line(self.text, line),
                                suggestions)

    def resolve(self, node: Value) -> list[str]:
        if isinstance(node, ListValue):
            if not node.items:
                raise self.fail("an empty list [] selects no layer: name at least one", node)
            items: Sequence[Value] = node.items
        else:
            items = (node,)
        out: dict[str, None] = {}
        for item in items:
            if isinstance(item, Glob):
                names = self._match(item.pattern, item.to_source(), item)
            elif isinstance(item, Name) and any(ch in item.text for ch in GLOB_CHARS):
                names = self._match(item.text, item.text, item)
            elif isinstance(item, Name):
                layer = self.hn.find(item.text)
                if layer is None:
                    scoped = "/" in item.text
                    pool = [self.hn.scoped(n) for n in self.hn.layers] if scoped else list(self.hn.layers)
                    close = close_names(item.text, pool)
                    known = "" if close else f"; its layers are {some_names(list(self.hn.layers))}"
                    raise self.fail(f"no layer '{item.text}' in network '{self.hn.name}'{known}", item, close)
                names = [layer.name]
            else:
                what = "a list inside a list" if isinstance(item, ListValue) else item.describe()
                raise self.fail(f"expected layers (a name, a glob like {{conv*}}, or a list of them), "
                                f"got {what}", item)
            out.update(dict.fromkeys(names))
        return list(out)

    def _match(self, pattern: str, shown: str, node: Value) -> list[str]:
        found = [l.name for l in self.hn.match(pattern)]
        if not found:
            raise self.fail(f"selector {shown} matches no layer of network '{self.hn.name}'; its "
                            f"layers are {some_names(list(self.hn.layers))}", node)
        return found

    # binding a statement to its command
    def bind(self, st: Statement) -> tuple[str, str | None, dict[str, _Bound]]:
        spec = COMMANDS.get(st.command)
        if spec is None:
            close = close_names(st.command, COMMANDS)
            known = "" if close else f" (commands: {', '.join(COMMANDS)})"
            raise self.error(f"unknown command '{st.command}'{known}{did_you_mean(close)}",
                             st.line, st.column, close)
        positional = st.positional
        label, feature = st.command, None
        if isinstance(spec, Features):
            names = list(spec.features)
            if not positional:
                raise self.error(f"{st.command} needs a feature first: one of {', '.join(names)} "
                                 f"(e.g. {st.command}({names[0]}, ...))", st.line, st.column)
            first = positional[0].value
            if not isinstance(first, Name) or not is_identifier(first.text):
                raise self.fail(f"{st.command} takes a feature first (one of {', '.join(names)}), "
                                f"got {first.describe()}", first)
            if first.text not in spec.features:
                raise self.fail(f"unknown feature '{first.text}' of {st.command} (one of "
                                f"{', '.join(names)})", first, close_names(first.text, names))
            feature = first.text
            sig: Signature = spec.features[feature]
            positional = positional[1:]
            label = f"{st.command}({feature})"
        else:
            sig = spec
        if st.target is not None and not sig.assigned:
            raise self.error(f"{label} is a command, not a value: only normalization(...) is assigned "
                             f"to a name; drop '{st.target} ='", st.target_line, st.target_column)
        if st.target is None and sig.assigned:
            raise self.error(f"{label}(...) is assigned to a name: write e.g. "
                             f"norm1 = {st.command}(...)", st.line, st.column)
        bound: dict[str, _Bound] = {}
        for i, arg in enumerate(positional):
            if i >= len(sig.positional):
                took = ", ".join(p.name for p in sig.positional)
                many = (f"takes {len(sig.positional)} positional argument{'s' if len(sig.positional) != 1 else ''}"
                        f" ({took})" if sig.positional else "takes no positional argument")
                if feature is not None and not sig.positional:
                    many += f" after its feature '{feature}'"
                keys = ", ".join(p.name + "=" for p in sig.keywords)
                raise self.error(f"{label} {many}; got {arg.value.describe()}"
                                 + (f" (its keywords: {keys})" if keys else ""), arg.line, arg.column)
            p = sig.positional[i]
            bound[p.name] = _Bound(p.check(self, arg.value), arg.value, arg.line, arg.column)
        for arg in st.args:
            if arg.key is None:
                continue
            p = sig.keyword(arg.key)
            if p is None:
                names = [q.name for q in sig.keywords]
                close = close_names(arg.key, names)
                known = "" if close else (f" (its keys: {', '.join(names)})" if names else " (it takes no keys)")
                if any(q.name == arg.key for q in sig.positional):
                    known = f" (the {arg.key} are given without a key, as its first argument)"
                raise self.error(f"unknown key '{arg.key}' of {label}{known}{did_you_mean(close)}",
                                 arg.line, arg.column, close)
            bound[p.name] = _Bound(p.check(self, arg.value), arg.value, arg.line, arg.column)
        for p in sig.positional + sig.keywords:
            if p.required and p.name not in bound:
                how = (f"{p.name} (argument {sig.positional.index(p) + 1 + (feature is not None)}: "
                       f"{p.doc})" if p in sig.positional else f"{p.name}= ({p.doc})")
                raise self.error(f"{label} is missing a required argument: {how}", st.line, st.column)
        if sig.need_keyword and not any(a.key for a in st.args):
            keys = ", ".join(p.name + "=" for p in sig.keywords)
            raise self.error(f"{label} sets nothing: give at least one of {keys}", st.line, st.column)
        return label, feature, bound

    # what each command does
    def statement(self, st: Statement, out: CompiledScript) -> None:
        _, feature, b = self.bind(st)
        key = st.command if feature is None else feature
        getattr(self, "do_" + key)(st, out, b)

    def set_layers(self, out: CompiledScript, names: list[str], key: str, value: Any, line: int) -> None:
        for name in names:
            out.layers.setdefault(name, {})[key] = value
            out.layer_lines.setdefault(name, {})[key] = line

    def need_weights(self, names: list[str], what: str, node: Value) -> None:
        for name in names:
            layer = self.hn.layers[name]
            if layer.type not in MAC_TYPES:
                raise self.fail(f"{what} applies to layers with weights ({', '.join(MAC_TYPES)}); "
                                f"'{name}' is a {layer.type} layer: select only layers with weights",
                                node)

    def do_quantization_param(self, st: Statement, out: CompiledScript, b: dict[str, _Bound]) -> None:
        names = b["layers"].value
        groups = b.get("quantization_groups")
        if groups is not None and groups.value > 1:
            self.need_weights(names, f"quantization_groups={groups.value}", groups.node)
        for key, bound in b.items():
            if key != "layers":
                self.set_layers(out, names, key, bound.value, st.line)

    def do_normalization(self, st: Statement, out: CompiledScript, b: dict[str, _Bound]) -> None:
        mean, std = b["mean"], b["std"]
        if len(mean.value) != len(std.value):
            raise self.fail(f"normalization: mean has {len(mean.value)} values and std "
                            f"{len(std.value)}; give one of each per channel", std.node)
        for x, item in zip(std.value, std.node.items):  # type: ignore[union-attr]
            if x == 0:
                raise self.fail("normalization: a std of 0 divides by zero", item)
        inputs = [l for l in self.hn.layers.values() if l.type == "input_layer"]
        channels = {l.output_shapes[0][-1] for l in inputs if l.output_shapes}
        if channels and len(mean.value) not in channels:
            shapes = ", ".join(f"{l.name} {l.output_shapes[0]}" for l in inputs)
            raise self.fail(f"normalization has {len(mean.value)} channel{'s' if len(mean.value) != 1 else ''}"
                            f"; the network's input has {' or '.join(str(c) for c in sorted(channels))} "
                            f"({shapes})", mean.node)
        for name, _, _, line in out.normalizations:
            if name == st.target:
                raise self.error(f"'{name}' is already assigned a normalization at line {line}; give "
                                 f"each its own name", st.target_line, st.target_column)
        out.normalizations.append((st.target, mean.value, std.value, st.target_line))  # type: ignore[arg-type]

    def do_calibration(self, st: Statement, out: CompiledScript, b: dict[str, _Bound]) -> None:
        out.calibration.update({k: v.value for k, v in b.items()})
        out.global_lines["calibration"] = st.line

    def do_model_optimization_flavor(self, st: Statement, out: CompiledScript, b: dict[str, _Bound]) -> None:
        out.optimization_level = b["optimization_level"].value
        out.global_lines["optimization_level"] = st.line

    def do_equalization(self, st: Statement, out: CompiledScript, b: dict[str, _Bound]) -> None:
        out.equalization = b["policy"].value
        out.global_lines["equalization"] = st.line

    def do_bias_correction(self, st: Statement, out: CompiledScript, b: dict[str, _Bound]) -> None:
        out.bias_correction = b["policy"].value
        out.global_lines["bias_correction"] = st.line

    def do_finetune(self, st: Statement, out: CompiledScript, b: dict[str, _Bound]) -> None:
        ft = dict(out.finetune or {})
        ft.update({k: v.value for k, v in b.items()})
        out.finetune = {"policy": ft.pop("policy"), **ft}
        out.global_lines["finetune"] = st.line

    def do_activation_clipping(self, st: Statement, out: CompiledScript, b: dict[str, _Bound]) -> None:
        mode, vals = b["mode"].value, b["clipping_values"]
        if len(vals.value) != 2:
            raise self.fail(f"activation_clipping mode={mode} takes clipping_values=[lo, hi], got "
                            f"{len(vals.value)} value", vals.node)
        lo, hi = vals.value
        if not lo < hi:
            raise self.fail(f"clipping_values={vals.node.to_source()}: lo must be below hi", vals.node)
        if mode == "percentile" and not (0 <= lo and hi <= 100):
            raise self.fail(f"clipping_values={vals.node.to_source()}: percentiles are in [0, 100]",
                            vals.node)
        self.set_layers(out, b["layers"].value, "activation_clipping",
                        {"mode": mode, "values": [lo, hi]}, st.line)

    def do_weights_clipping(self, st: Statement, out: CompiledScript, b: dict[str, _Bound]) -> None:
        mode, vals = b["mode"].value, b.get("clipping_values")
        names = b["layers"].value
        self.need_weights(names, "weights_clipping", b["layers"].node)
        if mode == "mmse":
            if vals is not None:
                raise self.error("weights_clipping mode=mmse searches the range itself: drop "
                                 "clipping_values", vals.arg_line, vals.arg_column)
            values = None
        else:
            if vals is None:
                shape = "[lo, hi] or one magnitude [m]" if mode == "manual" else "[p] or [lo, hi]"
                raise self.error(f"weights_clipping mode={mode} is missing a required argument: "
                                 f"clipping_values= ({shape})", st.line, st.column)
            values = vals.value
            src = vals.node.to_source()
            if len(values) == 2 and not values[0] < values[1]:
                raise self.fail(f"clipping_values={src}: lo must be below hi", vals.node)
            if mode == "manual" and len(values) == 1 and not values[0] > 0:
                raise self.fail(f"clipping_values={src}: one value is a magnitude m (the range "
                                f"[-m, m]) and must be > 0", vals.node)
            if mode == "percentile":
                ok = (0 < values[0] <= 100) if len(values) == 1 else (0 <= values[0] and values[1] <= 100)
                if not ok:
                    raise self.fail(f"clipping_values={src}: percentiles are in [0, 100] (one "
                                    f"percentile p of |w|: 0 < p <= 100)", vals.node)
        self.set_layers(out, names, "weights_clipping", {"mode": mode, "values": values}, st.line)

