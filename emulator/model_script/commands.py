"""The commands of the model-script language: their arguments, and what each argument takes.

A command is a `Signature` (positional and keyword `Param`s), or a set of features chosen by its
first argument (`pre_quantization_optimization(equalization, policy=enabled)`), each a
`Signature`. A `Param` checks one argument's value and converts it to Python
(`check(ctx, value)`; `ctx.fail(message, node, suggestions)` raises at the value's place, and
`ctx.resolve(node)` turns a layer selector into layer names). What a command then does with its
checked arguments is the compiler's (emulator.model_script.compiler).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Protocol, Sequence

from ..hn import BIAS_MODES, PRECISION_MODE_RE, RANGE_MARGIN_MAX, RANGE_MARGIN_MIN
from .errors import close_names
from .parser import ListValue, Name, Number, Value


class Context(Protocol):
    def fail(self, message: str, node: Any, suggestions: Sequence[str] = ()) -> Exception: ...

    def resolve(self, node: Value) -> list[str]: ...


Check = Callable[[Context, Value], Any]

# every precision mode aX_wY[_aZ] (X, Z in 8, 16; Y in 4, 8, 16): the candidates of "did you mean"
PRECISION_MODES = tuple(f"a{x}_w{y}{z}" for x in (8, 16) for y in (4, 8, 16)
                        for z in ("", "_a8", "_a16"))
assert all(PRECISION_MODE_RE.match(m) for m in PRECISION_MODES)
POLICIES = ("enabled", "disabled")
ACTIVATION_CLIPPING_MODES = ("manual", "percentile")
WEIGHTS_CLIPPING_MODES = ("manual", "percentile", "mmse")


@dataclasses.dataclass(frozen=True)
class Param:
    name: str
    check: Check
    required: bool = False
    doc: str = ""  # what it takes, for messages and the docs


@dataclasses.dataclass(frozen=True)
class Signature:
    positional: tuple[Param, ...] = ()
    keywords: tuple[Param, ...] = ()
    need_keyword: bool = False  # at least one keyword argument (a call that sets nothing is an error)
    assigned: bool = False      # the right side of `name = command(...)`, and only there

    def keyword(self, key: str) -> Param | None:
        return next((p for p in self.keywords if p.name == key), None)


@dataclasses.dataclass(frozen=True)
class Features:
    """A command whose first argument names a feature, each with its own signature."""

    features: dict[str, Signature]


# --- value checks -----------------------------------------------------------------------------

def _kind(node: Value) -> str:
    return node.describe()


def choice(key: str, options: Sequence[str]) -> Check:
    said = " or ".join(options) if len(options) <= 2 else \
        "one of " + ", ".join(options[:-1]) + " or " + options[-1]

    def check(ctx: Context, node: Value) -> str:
        if not isinstance(node, Name):
            raise ctx.fail(f"{key} takes {said}, got {_kind(node)}", node)
        if node.text not in options:
            raise ctx.fail(f"unknown value '{node.text}' for {key} ({said})", node,
                           close_names(node.text, options))
        return node.text
    return check


def precision_mode(ctx: Context, node: Value) -> str:
    what = "aX_wY[_aZ] with X, Z in {8, 16} and Y in {4, 8, 16} (e.g. a8_w8, a8_w4, a16_w16, a8_w8_a16)"
    if not isinstance(node, Name):
        raise ctx.fail(f"precision_mode takes a precision mode {what}, got {_kind(node)}", node)
    if not PRECISION_MODE_RE.match(node.text):
        raise ctx.fail(f"unknown precision_mode '{node.text}': a mode is {what}", node,
                       close_names(node.text, PRECISION_MODES))
    return node.text


def _number(ctx: Context, node: Value, key: str) -> float:
    if not isinstance(node, Number):
        raise ctx.fail(f"{key} takes numbers, got {_kind(node)}", node)
    if not math.isfinite(node.value):
        raise ctx.fail(f"{key}: {node.text} is not a finite number", node)
    return float(node.value)


def integer(key: str, lo: int, hi: int | None = None) -> Check:
    said = f"an int {lo}..{hi}" if hi is not None else f"an int >= {lo}"

    def check(ctx: Context, node: Value) -> int:
        if not isinstance(node, Number) or not isinstance(node.value, int):
            raise ctx.fail(f"{key} takes {said}, got {_kind(node)}", node)
        if node.value < lo or (hi is not None and node.value > hi):
            raise ctx.fail(f"{key}={node.text} is out of range: {key} takes {said}", node)
        return node.value
    return check


def positive_number(key: str) -> Check:
    def check(ctx: Context, node: Value) -> float:
        x = _number(ctx, node, key)
        if x <= 0:
            raise ctx.fail(f"{key}={node.to_source()} must be > 0", node)
        return x
    return check


def numbers(key: str, length: int | None = None) -> Check:
    """A list of finite numbers (of `length` items when given; non-empty otherwise) -> floats."""
    def check(ctx: Context, node: Value) -> list[float]:
        if not isinstance(node, ListValue):
            shape = f"a list of {length} numbers" if length else "a list of numbers"
            raise ctx.fail(f"{key} takes {shape}, got {_kind(node)}", node)
        if length is not None and len(node.items) != length:
            raise ctx.fail(f"{key} takes a list of {length} numbers, got {len(node.items)}", node)
        if not node.items:
            raise ctx.fail(f"{key} takes a non-empty list of numbers, got []", node)
        return [_number(ctx, item, key) for item in node.items]
    return check


def range_margin(ctx: Context, node: Value) -> float:
    x = _number(ctx, node, "range_margin")
    if not RANGE_MARGIN_MIN <= x <= RANGE_MARGIN_MAX:
        raise ctx.fail(f"range_margin={node.to_source()} must be in [{RANGE_MARGIN_MIN:g}, "
                       f"{RANGE_MARGIN_MAX:g}] (1: the calibrated range as it is; 2: one bit of headroom)", node)
    return x


def value_range(key: str) -> Check:
    """[lo, hi]: two finite numbers, lo < hi."""
    pair = numbers(key, 2)

    def check(ctx: Context, node: Value) -> list[float]:
        lo, hi = pair(ctx, node)
        if not lo < hi:
            raise ctx.fail(f"{key}={node.to_source()}: lo must be below hi ([lo, hi])", node)
        return [lo, hi]
    return check


def clipping_values(ctx: Context, node: Value) -> list[float]:
    """One or two finite numbers: a list [a] / [a, b], or a bare number a (= [a]). Which of them
    the mode takes is checked with the mode (compiler)."""
    if isinstance(node, Number):
        return [_number(ctx, node, "clipping_values")]
    if not isinstance(node, ListValue) or not 1 <= len(node.items) <= 2:
        got = f"{len(node.items)} values" if isinstance(node, ListValue) else _kind(node)
        raise ctx.fail(f"clipping_values takes [lo, hi] (or, for weights, one value [v]), got {got}", node)
    return [_number(ctx, item, "clipping_values") for item in node.items]


def selector(ctx: Context, node: Value) -> list[str]:
    """Layers: a name (bare or scoped), a bare glob, a brace glob, or a list of them."""
    return ctx.resolve(node)


def policy(ctx: Context, node: Value) -> bool:
    return choice("policy", POLICIES)(ctx, node) == "enabled"


# --- the commands -----------------------------------------------------------------------------

LAYERS = Param("layers", selector, True, "a layer name, a glob, or a list [a, b]")
POLICY = Param("policy", policy, True, "enabled | disabled")

COMMANDS: dict[str, Signature | Features] = {
    "quantization_param": Signature(
        positional=(LAYERS,),
        keywords=(
            Param("precision_mode", precision_mode, doc="aX_wY[_aZ]"),
            Param("bias_mode", choice("bias_mode", BIAS_MODES), doc=" | ".join(BIAS_MODES)),
            Param("quantization_groups", integer("quantization_groups", 1, 4), doc="1..4"),
            Param("force_range_in", value_range("force_range_in"), doc="[lo, hi]"),
            Param("force_range_out", value_range("force_range_out"), doc="[lo, hi]"),
            Param("range_margin", range_margin, doc=f"{RANGE_MARGIN_MIN:g}..{RANGE_MARGIN_MAX:g}"),
        ),
        need_keyword=True),
    "normalization": Signature(
        positional=(Param("mean", numbers("mean"), True, "[m0, m1, ...]"),
                    Param("std", numbers("std"), True, "[s0, s1, ...]")),
        assigned=True),
    "model_optimization_config": Features({
        "calibration": Signature(
            keywords=(Param("batch_size", integer("batch_size", 1), doc="int > 0"),
                      Param("calibset_size", integer("calibset_size", 1), doc="int > 0")),
            need_keyword=True),
    }),
    "model_optimization_flavor": Signature(
        keywords=(Param("optimization_level", integer("optimization_level", 0, 4), True, "0..4"),)),
    "pre_quantization_optimization": Features({
        "equalization": Signature(keywords=(POLICY,)),
        "activation_clipping": Signature(keywords=(
            Param("layers", selector, True, LAYERS.doc),
            Param("mode", choice("mode", ACTIVATION_CLIPPING_MODES), True, "manual | percentile"),
            Param("clipping_values", clipping_values, True, "[lo, hi]"))),
        "weights_clipping": Signature(keywords=(
            Param("layers", selector, True, LAYERS.doc),
            Param("mode", choice("mode", WEIGHTS_CLIPPING_MODES), True, "manual | percentile | mmse"),
            Param("clipping_values", clipping_values, False, "[lo, hi] | [v]"))),
    }),
    "post_quantization_optimization": Features({
        "bias_correction": Signature(keywords=(POLICY,)),
        "finetune": Signature(keywords=(
            POLICY,
            Param("dataset_size", integer("dataset_size", 1), doc="int > 0"),
            Param("epochs", integer("epochs", 1), doc="int > 0"),
            Param("batch_size", integer("batch_size", 1), doc="int > 0"),
            Param("learning_rate", positive_number("learning_rate"), doc="number > 0"))),
    }),
}
