"""The model-script language (.alls): syntax, every command and key valid and invalid, selectors,
"later wins", error places and suggestions, a corpus of scripts in tests/data/alls, and
properties (re-serialized random settings compile back to themselves; no input crashes).

Networks are the synthetic ones of tests/numerics_nets.py (no TensorFlow needed here)."""
from __future__ import annotations

import math
import pathlib
import pickle
import re
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import numerics_nets as nets
from emulator.errors import EmulatorError
from emulator.hn import MAC_TYPES, quantization_value_problem
from emulator.model_script import (CompiledScript, ModelScriptError, compile_model_script,
                                   parse_model_script)
from emulator.model_script.commands import COMMANDS, PRECISION_MODES

ALLS = pathlib.Path(__file__).resolve().parents[1] / "data" / "alls"
ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def hn():
    return nets.all_ops_net()[0]


_HN = None


def allops():
    """The all-ops network, built once (hypothesis tests cannot take function fixtures)."""
    global _HN
    if _HN is None:
        _HN = nets.all_ops_net()[0]
    return _HN


def error_of(text, hn=None, source="<script>") -> ModelScriptError:
    with pytest.raises(ModelScriptError) as info:
        if hn is None:
            parse_model_script(text, source)
        else:
            compile_model_script(text, hn, source)
    return info.value


# --- the seed's listings ----------------------------------------------------------------------

def test_seed_listing_3_sets_16_bit_bias_on_every_conv(hn):
    c = compile_model_script("quantization_param({conv*}, bias_mode=double_scale_initialization)\n", hn)
    convs = [n for n in hn.layers if n.startswith("conv")]
    assert convs == ["conv1", "conv2", "conv3", "conv4", "conv5"]
    assert c.layers == {n: {"bias_mode": "double_scale_initialization"} for n in convs}


def test_seed_listing_5_with_its_trailing_blank(hn):
    c = compile_model_script("quantization_param({conv*}, precision_mode=a16_w16) ", hn)
    assert set(c.layers) == {"conv1", "conv2", "conv3", "conv4", "conv5"}
    assert all(v == {"precision_mode": "a16_w16"} for v in c.layers.values())


def test_seed_faq_output_layers_bare_glob(hn):
    c = compile_model_script("quantization_param(output_layer*, precision_mode=a16_w16)", hn)
    assert list(c.layers) == ["output_layer1", "output_layer2", "output_layer3", "output_layer4"]
    assert all(v == {"precision_mode": "a16_w16"} for v in c.layers.values())


def test_design_brief_normalization_example():
    hn, _ = nets.folded_norm_net()
    c = compile_model_script("norm1 = normalization([123.7, 116.3, 103.5], [58.4, 57.1, 57.4])", hn)
    assert c.normalizations == [("norm1", [123.7, 116.3, 103.5], [58.4, 57.1, 57.4], 1)]
    assert c.layers == {}


# --- syntax -----------------------------------------------------------------------------------

def test_parse_needs_no_network_and_keeps_places():
    text = ("# header\n\n"
            "norm1 = normalization([1, -2.5, 3e2],\n"
            "                      [0.5, .25, 1E-3])   # trailing comment\n"
            "quantization_param( {conv*} , precision_mode = a16_w16 )\n")
    s = parse_model_script(text, "x.alls")
    assert [st.command for st in s] == ["normalization", "quantization_param"]
    norm, qp = s
    assert (norm.target, norm.target_line, norm.target_column) == ("norm1", 3, 1)
    assert (norm.line, norm.column, norm.end_line) == (3, 9, 4)
    mean, std = (a.value for a in norm.positional)
    assert [x.value for x in mean.items] == [1, -2.5, 300.0]
    assert isinstance(mean.items[0].value, int) and isinstance(mean.items[2].value, float)
    assert [x.value for x in std.items] == [0.5, 0.25, 0.001]
    assert (std.line, std.column) == (4, 23)
    assert (qp.line, qp.column) == (5, 1)
    glob = qp.positional[0].value
    assert (glob.pattern, glob.line, glob.column) == ("conv*", 5, 21)
    key = qp.keywords["precision_mode"]
    assert (key.line, key.column, key.value.text) == (5, 31, "a16_w16")
    assert qp.to_source() == "quantization_param({conv*}, precision_mode=a16_w16)"


def test_values_names_scoped_globs_and_nested_lists():
    (s,) = parse_model_script("cmd(net/conv1, output_layer*, {net/co?v[1-3]}, [[1, 2], [a, b]], -7, +0.5)")
    kinds = [type(a.value).__name__ for a in s.args]
    assert kinds == ["Name", "Name", "Glob", "ListValue", "Number", "Number"]
    assert s.args[2].value.pattern == "net/co?v[1-3]"
    assert s.args[3].value.to_source() == "[[1, 2], [a, b]]"
    assert [s.args[4].value.value, s.args[5].value.value] == [-7, 0.5]


def test_continuation_inside_every_bracket_and_blank_lines():
    text = ("\n\nquantization_param(\n  [conv1,\n\n   conv2], # c\n  precision_mode=a16_w16\n)\n"
            "quantization_param({\n  conv*\n}, bias_mode=double_scale_initialization)\n\n")
    s = parse_model_script(text)
    assert len(s) == 2 and (s[0].line, s[0].end_line, s[1].line, s[1].end_line) == (3, 8, 9, 11)


def test_comments_anywhere_and_hash_in_comment():
    text = "# a # b\nquantization_param(conv1, # (not closed in a comment [\n  bias_mode=double_scale_initialization) # )\n#"
    (s,) = parse_model_script(text)
    assert s.keywords["bias_mode"].value.text == "double_scale_initialization"


def test_crlf_bom_and_tabs():
    text = "\ufeffquantization_param(conv1,\r\n\tprecision_mode=a16_w16)\r\nquantization_param(conv2, bias_mode=x)\r"
    s = parse_model_script(text)
    assert [x.line for x in s] == [1, 3]
    e = error_of("quantization_param(conv1,\r\n\tprecison_mode=a16_w16)", allops())
    assert (e.line, e.column, e.text) == (2, 2, "\tprecison_mode=a16_w16)")
    assert str(e).splitlines()[-1].endswith("| \t^")


def test_empty_and_comment_only_scripts(hn):
    for text in ("", "\n\n", "# nothing\n   # at all\n", "   "):
        assert parse_model_script(text) == []
        c = compile_model_script(text, hn)
        assert c.layers == {} and c.normalizations == [] and c.calibration == {}
        assert c.optimization_level is c.equalization is c.bias_correction is c.finetune is None
        assert c.summary()[-1] == "  (sets nothing)"


def test_trailing_commas(hn):
    c = compile_model_script("quantization_param([conv1, conv2,], precision_mode=a16_w16,)", hn)
    assert set(c.layers) == {"conv1", "conv2"}


@pytest.mark.parametrize("text, line, col, words", [
    ("quantization_param(conv1 precision_mode=a16_w16)", 1, 26, "expected ',' or ')', got name"),
    ("q(a]", 1, 4, "']' does not close the '(' opened at 1:2"),
    ("q(a", 1, 2, "unterminated statement"),
    ("q([1, 2)\n", 1, 8, "')' does not close the '[' opened at 1:3"),
    ("q(a)\n]", 2, 1, "unmatched ']'"),
    ("q(a)\n}", 2, 1, "unmatched '}'"),
    ("q(a) r(b)", 1, 6, "after the end of the statement"),
    ("q(a) = 3", 1, 6, "after the end of the statement"),
    ("q(x=1, x=2)", 1, 8, "duplicate keyword 'x' in one call of q (first given at 1:3)"),
    ("q(x=1, 2)", 1, 8, "positional argument number 2 after a keyword argument"),
    ("q(a, , b)", 1, 6, "expected a value"),
    ("q(=1)", 1, 3, "expected a value"),
    ("q", 1, 2, "expected '(' after the command q, got end of"),
    ("3 = q()", 1, 1, "expected a command name"),
    ("x = 3", 1, 5, "expected a command after '='"),
    ("x* = q()", 1, 1, "cannot be assigned to"),
    ("conv* (a)", 1, 1, "'conv*' is not a command name"),
    ("q(a/b=1)", 1, 3, "'a/b' is not a keyword"),
    ("q(1.2.3)", 1, 3, "malformed number '1.2.3'"),
    ("q(1e)", 1, 3, "malformed number '1e'"),
    ("q(12ab)", 1, 3, "malformed number '12ab'"),
    ("q(" + "9" * 80 + ")", 1, 3, "number of 80 characters"),
    ("q(-x)", 1, 3, "unexpected character '-'"),
    ("q('a')", 1, 3, "no strings"),
    ("q(a) \\\n", 1, 6, "no backslash continuation"),
    ("q(é)", 1, 3, "unexpected character 'é'"),
    ("q(a)\x00", 1, 5, "unexpected character '\\x00'"),
    ("q({})", 1, 3, "empty brace glob"),
    ("q({a b})", 1, 6, "unexpected character 'b' in a brace glob"),
    ("q({a#})", 1, 5, "unexpected character '#' in a brace glob"),
    ("q({a", 1, 3, "unterminated brace glob"),
    ("q(" + "[" * 40 + "]" * 40 + ")", 1, 34, "brackets nested deeper than 32"),
])
def test_syntax_errors_have_places(text, line, col, words):
    e = error_of(text)
    assert (e.line, e.column) == (line, col), str(e)
    assert words in e.reason, str(e)
    assert e.source == "<script>" and e.text == text.split("\n")[line - 1]


def test_first_error_of_the_file_wins_over_a_later_bracket_error():
    e = error_of("q(a b)\nq((\n")
    assert (e.line, e.column) == (1, 5)


# --- the error message ------------------------------------------------------------------------

def test_error_shows_source_line_column_and_caret(hn):
    text = "# header\nquantization_param(conv1,  precison_mode=a16_w16)\n"
    e = error_of(text, hn, "nets/q.alls")
    assert isinstance(e, EmulatorError) and isinstance(e, ValueError)
    assert (e.source, e.line, e.column) == ("nets/q.alls", 2, 28)
    assert e.text == "quantization_param(conv1,  precison_mode=a16_w16)"
    assert e.suggestions == ("precision_mode",)
    lines = str(e).splitlines()
    assert lines[0] == ("nets/q.alls:2:28: unknown key 'precison_mode' of quantization_param; "
                        "did you mean precision_mode?")
    assert lines[1] == "    2 | quantization_param(conv1,  precison_mode=a16_w16)"
    assert lines[2] == "      | " + " " * 27 + "^"
    assert lines[2].index("^") == lines[1].index("precison_mode")


def test_error_pickles_with_its_attributes(hn):
    e = error_of("quantisation_param(conv1, bias_mode=double_scale_initialization)", hn, "a.alls")
    e2 = pickle.loads(pickle.dumps(e))
    assert type(e2) is ModelScriptError and str(e2) == str(e)
    assert (e2.source, e2.line, e2.column, e2.text, e2.suggestions) == \
        (e.source, e.line, e.column, e.text, e.suggestions)


def test_error_without_a_place_is_still_readable():
    e = ModelScriptError("something", "a.alls")
    assert str(e) == "a.alls: something" and e.line == 0 and e.text == ""


# --- suggestions ------------------------------------------------------------------------------

@pytest.mark.parametrize("text, suggested", [
    ("quantisation_param(conv1, precision_mode=a16_w16)", ["quantization_param"]),
    ("quantization_params(conv1, precision_mode=a16_w16)", ["quantization_param"]),
    ("model_optimisation_flavor(optimization_level=1)", ["model_optimization_flavor"]),
    ("quantization_param(conv1, precison_mode=a16_w16)", ["precision_mode"]),
    ("quantization_param(conv1, bias_mod=double_scale_initialization)", ["bias_mode"]),
    ("quantization_param(conv1, quantization_group=2)", ["quantization_groups"]),
    ("quantization_param(conv1, force_range=[0, 1])", ["force_range_in", "force_range_out"]),
    ("quantization_param(conv1, bias_mode=double_scale_init)", ["double_scale_initialization"]),
    ("quantization_param(conv1, precision_mode=a16_w61)", ["a16_w16"]),
    ("quantization_param(cnov1, precision_mode=a16_w16)", ["conv1", "deconv1"]),
    ("quantization_param(conv7, precision_mode=a16_w16)", ["conv1", "conv2", "conv3"]),
    ("quantization_param(dens1, precision_mode=a16_w16)", ["dense1"]),
    ("quantization_param(output_layr1, precision_mode=a16_w16)", ["output_layer1", "output_layer2"]),
    ("quantization_param(allops/conv_1, precision_mode=a16_w16)", ["allops/conv1"]),
    ("pre_quantization_optimization(equalisation, policy=enabled)", ["equalization"]),
    ("pre_quantization_optimization(weight_clipping, layers=conv1, mode=mmse)", ["weights_clipping"]),
    ("post_quantization_optimization(fine_tune, policy=enabled)", ["finetune"]),
    ("post_quantization_optimization(finetune, policy=enable)", ["enabled"]),
    ("post_quantization_optimization(finetune, policy=enabled, epoch=2)", ["epochs"]),
    ("pre_quantization_optimization(weights_clipping, layers=conv1, mode=mse)", ["mmse"]),
    ("model_optimization_config(calibrate, batch_size=2)", ["calibration"]),
    ("model_optimization_config(calibration, calib_size=2)", ["calibset_size"]),
])
def test_did_you_mean(hn, text, suggested):
    e = error_of(text, hn)
    assert list(e.suggestions[:len(suggested)]) == suggested, str(e)
    said = e.suggestions[0] if len(e.suggestions) == 1 else \
        ", ".join(e.suggestions[:-1]) + " or " + e.suggestions[-1]
    assert e.reason.endswith(f"; did you mean {said}?")


def test_nothing_close_lists_what_there_is(hn):
    e = error_of("frobnicate(conv1)", hn)
    assert e.suggestions == () and "commands: quantization_param, normalization" in e.reason
    e = error_of("quantization_param(conv1, zzz=1)", hn)
    assert "its keys: precision_mode, bias_mode, quantization_groups, force_range_in, force_range_out" in e.reason
    e = error_of("quantization_param(xyzzy, precision_mode=a16_w16)", hn)
    assert "its layers are input_layer1, normalization1, conv1" in e.reason and "(33 in all)" in e.reason
    e = error_of("quantization_param({xyz*}, precision_mode=a16_w16)", hn)
    assert e.reason.startswith("selector {xyz*} matches no layer of network 'allops'; its layers are input_layer1")


# --- selectors --------------------------------------------------------------------------------

@pytest.mark.parametrize("selector, layers", [
    ("conv1", ["conv1"]),
    ("allops/conv1", ["conv1"]),
    ("[conv2, conv1]", ["conv1", "conv2"]),
    ("[conv1, conv1, {conv1}]", ["conv1"]),
    ("{conv*}", ["conv1", "conv2", "conv3", "conv4", "conv5"]),
    ("{allops/conv*}", ["conv1", "conv2", "conv3", "conv4", "conv5"]),
    ("{conv[12]}", ["conv1", "conv2"]),
    ("{conv[!12345]}", None),
    ("{*conv*}", ["conv1", "conv2", "conv3", "conv4", "deconv1", "conv5"]),
    ("{dense?}", ["dense1", "dense2"]),
    ("output_layer*", ["output_layer1", "output_layer2", "output_layer3", "output_layer4"]),
    ("allops/output_layer?", ["output_layer1", "output_layer2", "output_layer3", "output_layer4"]),
    ("[{dense*}, dw1, conv5]", ["dw1", "conv5", "dense1", "dense2"]),
    ("{Conv*}", None),  # case-sensitive, as HNGraph.match
])
def test_selectors(hn, selector, layers):
    text = f"quantization_param({selector}, bias_mode=double_scale_initialization)"
    if layers is None:
        e = error_of(text, hn)
        assert "matches no layer" in e.reason
        return
    c = compile_model_script(text, hn)
    assert list(c.layers) == layers  # the network's order, whatever the selector's


@pytest.mark.parametrize("selector, what", [
    ("3", "got number 3"),
    ("[conv1, 2]", "got number 2"),
    ("[conv1, [dw1]]", "got a list inside a list"),
    ("[]", "an empty list [] selects no layer"),
    ("other/conv1", "no layer 'other/conv1'"),
])
def test_bad_selectors(hn, selector, what):
    assert what in error_of(f"quantization_param({selector}, precision_mode=a16_w16)", hn).reason


def test_selector_error_points_at_the_item(hn):
    e = error_of("quantization_param([conv1,\n   {nope*}], precision_mode=a16_w16)", hn)
    assert (e.line, e.column) == (2, 4)


# --- later wins -------------------------------------------------------------------------------

def test_later_statement_wins_per_key_and_layer(hn):
    c = compile_model_script(
        "quantization_param({conv*}, precision_mode=a16_w16, bias_mode=double_scale_initialization)\n"
        "quantization_param(conv2, precision_mode=a8_w4)\n"
        "quantization_param([conv2, conv3], bias_mode=single_scale_decomposition)\n"
        "quantization_param({conv*}, quantization_groups=2)\n"
        "quantization_param(conv3, quantization_groups=1)\n", hn)
    assert c.layers["conv1"] == {"precision_mode": "a16_w16", "bias_mode": "double_scale_initialization",
                                 "quantization_groups": 2}
    assert c.layers["conv2"] == {"precision_mode": "a8_w4", "bias_mode": "single_scale_decomposition",
                                 "quantization_groups": 2}
    assert c.layers["conv3"] == {"precision_mode": "a16_w16", "bias_mode": "single_scale_decomposition",
                                 "quantization_groups": 1}
    assert c.layer_lines["conv2"] == {"precision_mode": 2, "bias_mode": 3, "quantization_groups": 4}
    assert c.layer_lines["conv3"]["quantization_groups"] == 5


def test_later_wins_for_clipping_and_global_settings(hn):
    c = compile_model_script(
        "pre_quantization_optimization(activation_clipping, layers={conv*}, mode=manual, clipping_values=[0, 6])\n"
        "pre_quantization_optimization(activation_clipping, layers=conv1, mode=percentile, clipping_values=[1, 99])\n"
        "pre_quantization_optimization(weights_clipping, layers=conv1, mode=manual, clipping_values=[-1, 1])\n"
        "pre_quantization_optimization(weights_clipping, layers=conv1, mode=mmse)\n"
        "model_optimization_config(calibration, batch_size=4)\n"
        "model_optimization_config(calibration, calibset_size=64)\n"
        "model_optimization_config(calibration, batch_size=2)\n"
        "model_optimization_flavor(optimization_level=3)\n"
        "model_optimization_flavor(optimization_level=0)\n"
        "pre_quantization_optimization(equalization, policy=enabled)\n"
        "pre_quantization_optimization(equalization, policy=disabled)\n"
        "post_quantization_optimization(bias_correction, policy=disabled)\n"
        "post_quantization_optimization(bias_correction, policy=enabled)\n"
        "post_quantization_optimization(finetune, policy=enabled, epochs=3, learning_rate=0.01)\n"
        "post_quantization_optimization(finetune, policy=disabled, epochs=5)\n", hn)
    assert c.layers["conv1"] == {"activation_clipping": {"mode": "percentile", "values": [1.0, 99.0]},
                                 "weights_clipping": {"mode": "mmse", "values": None}}
    assert c.layers["conv2"] == {"activation_clipping": {"mode": "manual", "values": [0.0, 6.0]}}
    assert c.calibration == {"batch_size": 2, "calibset_size": 64}
    assert c.optimization_level == 0 and c.equalization is False and c.bias_correction is True
    assert c.finetune == {"policy": False, "epochs": 5, "learning_rate": 0.01}
    assert c.global_lines == {"calibration": 7, "optimization_level": 9, "equalization": 11,
                              "bias_correction": 13, "finetune": 15}


# --- every command and key: valid -------------------------------------------------------------

@pytest.mark.parametrize("mode", PRECISION_MODES)
def test_every_precision_mode(hn, mode):
    c = compile_model_script(f"quantization_param(conv1, precision_mode={mode})", hn)
    assert c.layers == {"conv1": {"precision_mode": mode}}


def test_quantization_param_keys_and_types(hn):
    c = compile_model_script(
        "quantization_param(conv1, precision_mode=a8_w8, bias_mode=single_scale_decomposition, "
        "quantization_groups=4, force_range_in=[-1, 1.5], force_range_out=[-2.5e-1, 6], range_margin=2)", hn)
    v = c.layers["conv1"]
    assert v == {"precision_mode": "a8_w8", "bias_mode": "single_scale_decomposition",
                 "quantization_groups": 4, "force_range_in": [-1.0, 1.5], "force_range_out": [-0.25, 6.0],
                 "range_margin": 2.0}
    assert type(v["range_margin"]) is float
    assert type(v["quantization_groups"]) is int and all(type(x) is float for x in v["force_range_in"])
    for g in (1, 2, 3, 4):
        for layer in ("dw1", "deconv1", "dense1"):
            assert compile_model_script(f"quantization_param({layer}, quantization_groups={g})", hn) \
                .layers[layer]["quantization_groups"] == g
    # groups of 1 is the default, allowed anywhere; precision modes and ranges on any layer
    c = compile_model_script("quantization_param([maxpool1, input_layer1], quantization_groups=1, "
                             "precision_mode=a16_w16, force_range_out=[0, 1])", hn)
    assert set(c.layers) == {"input_layer1", "maxpool1"}


def test_global_commands(hn):
    c = compile_model_script(
        "model_optimization_config(calibration, batch_size=8, calibset_size=64)\n"
        "model_optimization_flavor(optimization_level=4)\n"
        "pre_quantization_optimization(equalization, policy=enabled)\n"
        "post_quantization_optimization(bias_correction, policy=enabled)\n"
        "post_quantization_optimization(finetune, policy=enabled, dataset_size=2048, epochs=4, "
        "batch_size=8, learning_rate=1e-4)\n", hn, "g.alls")
    assert c.calibration == {"batch_size": 8, "calibset_size": 64}
    assert c.optimization_level == 4 and c.equalization is True and c.bias_correction is True
    assert c.finetune == {"policy": True, "dataset_size": 2048, "epochs": 4, "batch_size": 8,
                          "learning_rate": 1e-4}
    assert type(c.finetune["learning_rate"]) is float
    for level in range(5):
        assert compile_model_script(f"model_optimization_flavor(optimization_level={level})", hn) \
            .optimization_level == level
    c = compile_model_script("post_quantization_optimization(finetune, policy=disabled)", hn)
    assert c.finetune == {"policy": False}
    c = compile_model_script("post_quantization_optimization(finetune, policy=enabled, learning_rate=2)", hn)
    assert c.finetune == {"policy": True, "learning_rate": 2.0} and type(c.finetune["learning_rate"]) is float


def test_clipping_commands(hn):
    c = compile_model_script(
        "pre_quantization_optimization(activation_clipping, layers=conv1, mode=manual, clipping_values=[-6, 6])\n"
        "pre_quantization_optimization(activation_clipping, layers=[dw1, avgpool1], mode=percentile, clipping_values=[0, 100])\n"
        "pre_quantization_optimization(weights_clipping, layers=conv2, mode=manual, clipping_values=[-0.5, 0.25])\n"
        "pre_quantization_optimization(weights_clipping, layers=conv3, mode=manual, clipping_values=[0.5])\n"
        "pre_quantization_optimization(weights_clipping, layers=conv4, mode=manual, clipping_values=0.5)\n"
        "pre_quantization_optimization(weights_clipping, layers=conv5, mode=percentile, clipping_values=[99.5])\n"
        "pre_quantization_optimization(weights_clipping, layers=dw1, mode=percentile, clipping_values=[0.5, 99.5])\n"
        "pre_quantization_optimization(weights_clipping, layers={dense*}, mode=mmse)\n", hn)
    L = c.layers
    assert L["conv1"]["activation_clipping"] == {"mode": "manual", "values": [-6.0, 6.0]}
    assert L["avgpool1"]["activation_clipping"] == {"mode": "percentile", "values": [0.0, 100.0]}
    assert L["conv2"]["weights_clipping"] == {"mode": "manual", "values": [-0.5, 0.25]}
    assert L["conv3"]["weights_clipping"] == L["conv4"]["weights_clipping"] == {"mode": "manual", "values": [0.5]}
    assert L["conv5"]["weights_clipping"] == {"mode": "percentile", "values": [99.5]}
    assert L["dw1"]["weights_clipping"] == {"mode": "percentile", "values": [0.5, 99.5]}
    assert L["dense1"]["weights_clipping"] == L["dense2"]["weights_clipping"] == {"mode": "mmse", "values": None}


def test_normalizations_in_order(hn):
    c = compile_model_script("# n\nn1 = normalization([0, 0, 0], [1, 1, 1])\n"
                             "n2 = normalization([0.5, -1, 2e1], [-2, 0.5, 3])\n", hn)
    assert c.normalizations == [("n1", [0.0, 0.0, 0.0], [1.0, 1.0, 1.0], 2),
                                ("n2", [0.5, -1.0, 20.0], [-2.0, 0.5, 3.0], 3)]


# --- every command and key: invalid -----------------------------------------------------------

@pytest.mark.parametrize("text, words", [
    ("quantization_param(conv1, precision_mode=a32_w8)", "unknown precision_mode 'a32_w8'"),
    ("quantization_param(conv1, precision_mode=a8_w8_a4)", "unknown precision_mode 'a8_w8_a4'"),
    ("quantization_param(conv1, precision_mode=[a8_w8])", "precision_mode takes a precision mode"),
    ("quantization_param(conv1, precision_mode={conv*})", "precision_mode takes a precision mode"),
    ("quantization_param(conv1, bias_mode=16)", "bias_mode takes single_scale_decomposition or double_scale_initialization, got number 16"),
    ("quantization_param(conv1, bias_mode=double)", "unknown value 'double' for bias_mode"),
    ("quantization_param(conv1, quantization_groups=0)", "quantization_groups=0 is out of range"),
    ("quantization_param(conv1, quantization_groups=-1)", "quantization_groups=-1 is out of range"),
    ("quantization_param(conv1, quantization_groups=2.0)", "quantization_groups takes an int 1..4, got number 2.0"),
    ("quantization_param(conv1, quantization_groups=two)", "got name 'two'"),
    ("quantization_param({*}, quantization_groups=2)", "applies to layers with weights"),
    ("quantization_param(conv1, force_range_in=[1, 0])", "lo must be below hi"),
    ("quantization_param(conv1, force_range_in=[0])", "takes a list of 2 numbers, got 1"),
    ("quantization_param(conv1, force_range_in=1)", "force_range_in takes a list of 2 numbers, got number 1"),
    ("quantization_param(conv1, force_range_out=[0, a])", "force_range_out takes numbers, got name 'a'"),
    ("quantization_param(conv1, force_range_out=[-1e400, 0])", "is not a finite number"),
    ("quantization_param(conv1, range_margin=0.5)", "range_margin=0.5 must be in [1, 64] (1: the calibrated range as it is"),
    ("quantization_param(conv1, range_margin=[2])", "range_margin takes numbers, got list [2]"),
    ("quantization_param(conv1)", "sets nothing"),
    ("quantization_param(precision_mode=a16_w16)", "missing a required argument: layers (argument 1: a layer name, a glob, or a list [a, b])"),
    ("quantization_param(conv1, conv2, bias_mode=double_scale_initialization)", "takes 1 positional argument"),
    ("quantization_param(layers=conv1, bias_mode=double_scale_initialization)", "given without a key"),
    ("n = normalization([1, 2, 3])", "missing a required argument: std (argument 2: [s0, s1, ...])"),
    ("n = normalization([1, 2, 3], [1, 2, 3], [1, 2, 3])", "takes 2 positional arguments (mean, std)"),
    ("n = normalization(mean=[1, 2, 3], std=[1, 2, 3])", "unknown key 'mean' of normalization (the mean are given"),
    ("n = normalization([], [])", "mean takes a non-empty list of numbers, got []"),
    ("n = normalization(1, [1])", "mean takes a list of numbers, got number 1"),
    ("n = normalization([1, 2, 3], [1, 0.0, 3])", "a std of 0 divides by zero"),
    ("n = normalization([1, 2, 3], [1, 2])", "mean has 3 values and std 2"),
    ("n = normalization([1, 2], [1, 2])", "normalization has 2 channels; the network's input has 3"),
    ("normalization([1, 2, 3], [1, 2, 3])", "is assigned to a name"),
    ("n = model_optimization_flavor(optimization_level=1)", "only normalization(...) is assigned"),
    ("model_optimization_config(batch_size=2)", "model_optimization_config needs a feature first: one of calibration"),
    ("model_optimization_config(calibration)", "sets nothing: give at least one of batch_size=, calibset_size="),
    ("model_optimization_config(calibration, batch_size=0)", "batch_size=0 is out of range"),
    ("model_optimization_config(calibration, calibset_size=1.5)", "calibset_size takes an int >= 1"),
    ("model_optimization_config(calibration, 8)", "takes no positional argument after its feature 'calibration'"),
    ("model_optimization_config(8, batch_size=2)", "takes a feature first (one of calibration), got number 8"),
    ("model_optimization_flavor()", "missing a required argument: optimization_level= (0..4)"),
    ("model_optimization_flavor(optimization_level=-1)", "out of range"),
    ("model_optimization_flavor(optimization_level=4.0)", "takes an int 0..4"),
    ("model_optimization_flavor(2)", "model_optimization_flavor takes no positional argument; got number 2"),
    ("model_optimization_flavor(optimization_level=1, compression_level=1)", "unknown key 'compression_level'"),
    ("pre_quantization_optimization(equalization, policy=true)", "unknown value 'true' for policy"),
    ("pre_quantization_optimization(equalization, policy=1)", "policy takes enabled or disabled, got number 1"),
    ("pre_quantization_optimization(equalization)", "missing a required argument: policy="),
    ("pre_quantization_optimization(equalization, layers=conv1, policy=enabled)", "unknown key 'layers' of pre_quantization_optimization(equalization) (its keys: policy)"),
    ("pre_quantization_optimization(policy=enabled)", "needs a feature first"),
    ("pre_quantization_optimization(activation_clipping, mode=manual, clipping_values=[0, 1])", "missing a required argument: layers="),
    ("pre_quantization_optimization(activation_clipping, layers=conv1, mode=manual)", "missing a required argument: clipping_values="),
    ("pre_quantization_optimization(activation_clipping, layers=conv1, mode=mmse, clipping_values=[0, 1])", "unknown value 'mmse' for mode (manual or percentile)"),
    ("pre_quantization_optimization(activation_clipping, layers=conv1, mode=manual, clipping_values=[1, 0])", "lo must be below hi"),
    ("pre_quantization_optimization(activation_clipping, layers=conv1, mode=manual, clipping_values=[0, 1, 2])", "got 3 values"),
    ("pre_quantization_optimization(activation_clipping, layers=conv1, mode=percentile, clipping_values=[-1, 50])", "percentiles are in [0, 100]"),
    ("pre_quantization_optimization(activation_clipping, layers=conv1, mode=manual, clipping_values=6)", "takes clipping_values=[lo, hi], got 1 value"),
    ("pre_quantization_optimization(activation_clipping, layers=conv1, mode=manual, clipping_values=[a, 1])", "clipping_values takes numbers, got name 'a'"),
    ("pre_quantization_optimization(weights_clipping, layers=conv1)", "missing a required argument: mode="),
    ("pre_quantization_optimization(weights_clipping, layers=conv1, mode=manual, clipping_values=[0])", "must be > 0"),
    ("pre_quantization_optimization(weights_clipping, layers=conv1, mode=manual, clipping_values=[2, -2])", "lo must be below hi"),
    ("pre_quantization_optimization(weights_clipping, layers=conv1, mode=percentile, clipping_values=[0])", "0 < p <= 100"),
    ("pre_quantization_optimization(weights_clipping, layers=conv1, mode=percentile, clipping_values=[100.5])", "percentiles are in [0, 100]"),
    ("pre_quantization_optimization(weights_clipping, layers=conv1, mode=percentile, clipping_values=[5, 101])", "percentiles are in [0, 100]"),
    ("pre_quantization_optimization(weights_clipping, layers=conv1, mode=percentile)", "missing a required argument: clipping_values= ([p] or [lo, hi])"),
    ("pre_quantization_optimization(weights_clipping, layers=conv1, mode=mmse, clipping_values=1)", "drop clipping_values"),
    ("pre_quantization_optimization(weights_clipping, layers=output_layer*, mode=mmse)", "'output_layer1' is a output_layer layer"),
    ("post_quantization_optimization(bias_correction, policy=enabled, epochs=2)", "unknown key 'epochs' of post_quantization_optimization(bias_correction)"),
    ("post_quantization_optimization(finetune, epochs=2)", "missing a required argument: policy="),
    ("post_quantization_optimization(finetune, policy=enabled, epochs=0)", "epochs=0 is out of range"),
    ("post_quantization_optimization(finetune, policy=enabled, dataset_size=-5)", "dataset_size=-5 is out of range"),
    ("post_quantization_optimization(finetune, policy=enabled, batch_size=1e3)", "batch_size takes an int >= 1, got number 1e3"),
    ("post_quantization_optimization(finetune, policy=enabled, learning_rate=0.0)", "learning_rate=0.0 must be > 0"),
    ("post_quantization_optimization(finetune, policy=enabled, learning_rate=fast)", "learning_rate takes numbers, got name 'fast'"),
    ("post_quantization_optimization(finetune, policy=enabled, learning_rate=1e309)", "not a finite number"),
    ("post_quantization_optimization(equalization, policy=enabled)", "unknown feature 'equalization' of post_quantization_optimization"),
])
def test_invalid(hn, text, words):
    e = error_of(text, hn)
    assert words in e.reason, str(e)
    assert e.line == 1 and 1 <= e.column <= len(text) and e.text == text


def test_every_command_and_key_is_exercised():
    """The tables of commands.py against the tests above: a key added there needs tests here."""
    src = pathlib.Path(__file__).read_text()
    for name, spec in COMMANDS.items():
        assert f"{name}(" in src
        sigs = spec.features if hasattr(spec, "features") else {"": spec}
        for feature, sig in sigs.items():
            assert feature in src
            for p in sig.keywords:
                assert f"{p.name}=" in src, (name, feature, p.name)


# --- the corpus -------------------------------------------------------------------------------

BROKEN = sorted(ALLS.glob("broken_*.alls"))
VALID = sorted(ALLS.glob("valid_*.alls"))
EXPECT = re.compile(r"^# expect: (\d+):(\d+) (.+)$")


def test_corpus_is_there():
    assert len(BROKEN) >= 40 and len(VALID) >= 4


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.stem)
def test_broken_script(hn, path):
    text = path.read_text()
    m = EXPECT.match(text.splitlines()[0])
    assert m, f"{path.name}: the first line must be '# expect: LINE:COL words'"
    line, col, words = int(m.group(1)), int(m.group(2)), m.group(3)
    e = error_of(text, hn, path.name)
    assert (e.line, e.column) == (line, col), str(e)
    assert words in e.reason, str(e)
    assert e.text == text.splitlines()[line - 1]
    head = str(e).splitlines()[0]
    assert head.startswith(f"{path.name}:{line}:{col}: ")


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_script(hn, path):
    c = compile_model_script(path.read_text(), hn, path.name)
    assert isinstance(c, CompiledScript) and c.source == path.name and c.layers
    assert c.summary()[0].startswith(f"{path.name}: ")


def test_valid_full_script_settings(hn):
    c = compile_model_script((ALLS / "valid_full.alls").read_text(), hn, "valid_full.alls")
    L = c.layers
    assert L["conv1"] == {"bias_mode": "double_scale_initialization", "precision_mode": "a16_w16",
                          "quantization_groups": 2}
    assert c.layer_lines["conv1"] == {"bias_mode": 5, "precision_mode": 9, "quantization_groups": 6}
    assert L["dw1"] == {"precision_mode": "a8_w4", "quantization_groups": 2,
                        "activation_clipping": {"mode": "manual", "values": [-2.0, 2.0]}}
    assert L["conv2"] == {"bias_mode": "double_scale_initialization", "force_range_in": [-1.5, 1.5],
                          "force_range_out": [0.0, 6.0]}
    assert L["conv3"]["activation_clipping"] == L["conv4"]["activation_clipping"] == \
        {"mode": "percentile", "values": [0.5, 99.5]}
    assert L["conv5"]["weights_clipping"] == {"mode": "manual", "values": [0.75]}
    assert L["deconv1"] == {"weights_clipping": {"mode": "percentile", "values": [99.9]}}
    assert L["dense1"] == L["dense2"] == {"weights_clipping": {"mode": "mmse", "values": None}}
    assert all(L[f"output_layer{i}"] == {"precision_mode": "a8_w8_a16"} for i in range(1, 5))
    assert c.normalizations == [("norm1", [123.7, 116.3, 103.5], [58.4, 57.1, 57.4], 3)]
    assert c.calibration == {"batch_size": 4, "calibset_size": 64}
    assert (c.optimization_level, c.equalization, c.bias_correction) == (2, True, False)
    assert c.finetune == {"policy": True, "dataset_size": 2048, "epochs": 4, "batch_size": 8,
                          "learning_rate": 1e-4}
    s = c.summary()
    assert s[0] == "valid_full.alls: 16 statements"
    assert ("  layer conv1: bias_mode=double_scale_initialization (line 5); precision_mode=a16_w16 "
            "(line 9); quantization_groups=2 (line 6)") in s
    assert "  normalization norm1: mean [123.7, 116.3, 103.5], std [58.4, 57.1, 57.4] (line 3)" in s
    assert "  calibration: batch_size=4, calibset_size=64 (line 13)" in s
    assert "  optimization_level: 2 (line 14)" in s
    assert "  equalization: enabled (line 16)" in s
    assert "  bias_correction (IBC): disabled (line 25)" in s
    assert ("  finetune (QFT): enabled, dataset_size=2048, epochs=4, batch_size=8, learning_rate=0.0001 "
            "(line 26)") in s
    assert c.text == (ALLS / "valid_full.alls").read_text()


# --- properties -------------------------------------------------------------------------------

_finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300)
_percent = st.floats(min_value=0, max_value=100, allow_nan=False)


def _pair(elements):
    return st.tuples(elements, elements).filter(lambda p: p[0] != p[1]).map(lambda p: sorted(p))


def _key_value(mac: bool):
    kv = [
        st.tuples(st.just("precision_mode"), st.sampled_from(PRECISION_MODES)),
        st.tuples(st.just("bias_mode"), st.sampled_from(["single_scale_decomposition",
                                                          "double_scale_initialization"])),
        st.tuples(st.just("quantization_groups"), st.integers(1, 4) if mac else st.just(1)),
        st.tuples(st.just("force_range_in"), _pair(_finite)),
        st.tuples(st.just("force_range_out"), _pair(_finite)),
        st.tuples(st.just("activation_clipping"), st.one_of(
            st.fixed_dictionaries({"mode": st.just("manual"), "values": _pair(_finite)}),
            st.fixed_dictionaries({"mode": st.just("percentile"), "values": _pair(_percent)}))),
    ]
    if mac:
        kv.append(st.tuples(st.just("weights_clipping"), st.one_of(
            st.fixed_dictionaries({"mode": st.just("manual"), "values": st.one_of(
                _pair(_finite), st.floats(min_value=1e-6, max_value=1e6).map(lambda m: [m]))}),
            st.fixed_dictionaries({"mode": st.just("percentile"), "values": st.one_of(
                _pair(_percent), st.floats(min_value=0.001, max_value=100).map(lambda p: [p]))}),
            st.just({"mode": "mmse", "values": None}))))
    return st.one_of(kv)


LAYER_NAMES = [n for n in nets.all_ops_net()[0].layers]
MAC_NAMES = [n for n, l in nets.all_ops_net()[0].layers.items() if l.type in MAC_TYPES]
_KEY_VALUE = {mac: _key_value(mac) for mac in (False, True)}  # built once: building is slow
_LAYERS = {mac: st.lists(st.sampled_from(MAC_NAMES if mac else LAYER_NAMES), min_size=1, max_size=4,
                         unique=True) for mac in (False, True)}


@st.composite
def _operations(draw):
    """A list of (layers, key, value): one statement each, in order."""
    ops = []
    for _ in range(draw(st.integers(0, 12))):
        mac = draw(st.booleans())
        layers = draw(_LAYERS[mac])
        key, value = draw(_KEY_VALUE[mac])
        ops.append((layers, key, value))
    return ops


def _num(x: float) -> str:
    """A number as the script writes it: an int when it is one (and small), else repr (exact)."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(float(x))


@st.composite
def _formatting(draw):
    """Spacing, line breaks inside brackets, comments: the same script, written differently."""
    return {
        "sep": draw(st.sampled_from([", ", ",", " , ", ",\n    ", ", # c\n  "])),
        "selector": draw(st.sampled_from(["list", "name", "scoped", "brace", "mixed"])),
        "blank": draw(st.sampled_from(["\n", "\n\n", "\n# comment\n", "   # c\n"])),
        "trailing": draw(st.booleans()),
    }


def _selector(layers, style, i):
    def one(n, j):
        s = style if style != "mixed" else ("name", "scoped", "brace")[(i + j) % 3]
        return {"scoped": f"allops/{n}", "brace": f"{{{n}}}"}.get(s, n)
    if style == "list" or len(layers) > 1:
        return "[" + ", ".join(one(n, j) for j, n in enumerate(layers)) + "]"
    return one(layers[0], 0)


def _serialize(ops, glob, f) -> str:
    sep, lines = f["sep"], []
    for i, (layers, key, value) in enumerate(ops):
        sel = _selector(layers, f["selector"], i)
        if key in ("activation_clipping", "weights_clipping"):
            args = [key, f"layers={sel}", f"mode={value['mode']}"]
            if value["values"] is not None:
                args.append("clipping_values=[" + sep.join(_num(x) for x in value["values"]) + "]")
            lines.append(f"pre_quantization_optimization({sep.join(args)}{',' if f['trailing'] else ''})")
            continue
        if isinstance(value, list):
            value = "[" + sep.join(_num(x) for x in value) + "]"
        lines.append(f"quantization_param({sel}{sep}{key}={value}{',' if f['trailing'] else ''})")
    for name, mean, std in glob["norms"]:
        lines.append(f"{name} = normalization([{sep.join(map(_num, mean))}]{sep}[{sep.join(map(_num, std))}])")
    if glob["calibration"]:
        lines.append("model_optimization_config(calibration" +
                     "".join(f"{sep}{k}={v}" for k, v in glob["calibration"].items()) + ")")
    if glob["level"] is not None:
        lines.append(f"model_optimization_flavor(optimization_level={glob['level']})")
    for feature, cmd in (("equalization", "pre"), ("bias_correction", "post")):
        if glob[feature] is not None:
            policy = "enabled" if glob[feature] else "disabled"
            lines.append(f"{cmd}_quantization_optimization({feature}{sep}policy={policy})")
    if glob["finetune"] is not None:
        ft = glob["finetune"]
        rest = "".join(f"{sep}{k}={_num(v) if k == 'learning_rate' else v}" for k, v in ft.items() if k != "policy")
        lines.append(f"post_quantization_optimization(finetune{sep}policy="
                     f"{'enabled' if ft['policy'] else 'disabled'}{rest})")
    return f["blank"].join(lines) + f["blank"]


_globals = st.fixed_dictionaries({
    "norms": st.lists(st.tuples(st.sampled_from(["norm1", "n2", "pre"]),
                                st.lists(_finite, min_size=3, max_size=3),
                                st.lists(_finite.filter(lambda x: x != 0), min_size=3, max_size=3)),
                      max_size=3, unique_by=lambda t: t[0]),
    "calibration": st.dictionaries(st.sampled_from(["batch_size", "calibset_size"]), st.integers(1, 10**6)),
    "level": st.none() | st.integers(0, 4),
    "equalization": st.none() | st.booleans(),
    "bias_correction": st.none() | st.booleans(),
    "finetune": st.none() | st.fixed_dictionaries(
        {"policy": st.booleans()},
        optional={"dataset_size": st.integers(1, 10**5), "epochs": st.integers(1, 100),
                  "batch_size": st.integers(1, 512),
                  "learning_rate": st.floats(min_value=1e-12, max_value=10)}),
})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=_operations(), glob=_globals, f=_formatting())
def test_serialized_settings_compile_back(ops, glob, f):
    text = _serialize(ops, glob, f)
    c = compile_model_script(text, allops(), "prop.alls")
    expected: dict[str, dict] = {}
    for layers, key, value in ops:  # the later statement wins, key by key
        for n in layers:
            expected.setdefault(n, {})[key] = ([float(x) for x in value] if isinstance(value, list) else
                                               {"mode": value["mode"], "values": None if value["values"] is None
                                                else [float(x) for x in value["values"]]}
                                               if isinstance(value, dict) else value)
    assert c.layers == expected, text
    assert list(c.layers) == [n for n in LAYER_NAMES if n in expected]  # the network's order
    assert [(n, m, s) for n, m, s, _ in c.normalizations] == \
        [(n, [float(x) for x in m], [float(x) for x in s]) for n, m, s in glob["norms"]]
    assert c.calibration == glob["calibration"]
    assert c.optimization_level == glob["level"]
    assert c.equalization == glob["equalization"] and c.bias_correction == glob["bias_correction"]
    assert c.finetune == glob["finetune"]
    n_globals = sum(glob[k] is not None for k in ("level", "equalization", "bias_correction", "finetune"))
    assert len(c.statements) == len(ops) + len(glob["norms"]) + bool(glob["calibration"]) + n_globals
    assert c.summary()[0].startswith("prop.alls: ")
    for keys in c.layers.values():  # what the HN accepts in layer.quantization_params
        assert all(quantization_value_problem(k, v) is None for k, v in keys.items()), keys


_ALPHABET = "qz_a1(){}[],=#*?/.-+e \n\t\"'"


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=_ALPHABET, max_size=60) | st.text(max_size=30))
def test_any_text_parses_or_fails_with_a_place(text):
    try:
        parse_model_script(text)
    except ModelScriptError as e:
        lines = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff").split("\n")
        assert 1 <= e.line <= len(lines) and 1 <= e.column <= len(lines[e.line - 1]) + 1, (text, str(e))
        assert e.text == lines[e.line - 1]
        assert f"<script>:{e.line}:{e.column}: " in str(e) and "^" in str(e)


_WORDS = ["quantization_param", "conv1", "{conv*}", "output_layer*", "precision_mode", "a16_w16",
          "bias_mode", "double_scale_initialization", "pre_quantization_optimization", "[", "]", "(",
          ")", ",", "=", "1", "-2.5", "policy", "enabled", "weights_clipping", "layers", "mode", "mmse",
          "\n", "#", "normalization", "n1", "[1, 2, 3]"]


@settings(max_examples=300, deadline=None)
@given(words=st.lists(st.sampled_from(_WORDS), max_size=16))
def test_any_word_salad_compiles_or_fails_with_a_place(words):
    text = " ".join(words)
    try:
        compile_model_script(text, allops())
    except ModelScriptError as e:
        assert e.line >= 1 and e.column >= 1 and e.text == text.split("\n")[e.line - 1]


# --- odds and ends ----------------------------------------------------------------------------

def test_types_are_checked(hn):
    with pytest.raises(TypeError, match="text"):
        parse_model_script(b"quantization_param(conv1, precision_mode=a16_w16)")
    with pytest.raises(TypeError, match="HNGraph"):
        compile_model_script("", {"conv1": 1})


def test_a_large_comment_compiles(hn):
    """8 MB of comment: skipped by the lexer in one step (the time is not a pass/fail figure)."""
    text = "# " + "x" * (8 << 20) + "\nquantization_param(conv1, precision_mode=a16_w16)\n"
    c = compile_model_script(text, hn)
    assert c.layers == {"conv1": {"precision_mode": "a16_w16"}}


def test_many_statements(hn):
    text = "quantization_param(conv1, precision_mode=a8_w8)\n" * 5000 + \
        "quantization_param(conv1, precision_mode=a16_w16)\n"
    c = compile_model_script(text, hn)
    assert c.layers["conv1"] == {"precision_mode": "a16_w16"} and c.layer_lines["conv1"]["precision_mode"] == 5001


def test_the_package_imports_no_tensorflow():
    code = ("import sys; import emulator.model_script as m; "
            "m.parse_model_script('quantization_param({conv*}, precision_mode=a16_w16)'); "
            "assert not any(k.split('.')[0] in ('tensorflow', 'keras') for k in sys.modules), "
            "[k for k in sys.modules if k.startswith(('tensorflow', 'keras'))]")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)


def test_compiled_layers_fit_hn_quantization_params(hn):
    """compiled.layers holds keys and values the HN accepts in layer.quantization_params: a copy
    of the network with them written in validates (and survives a JSON round trip)."""
    from emulator.hn import HNGraph
    c = compile_model_script((ALLS / "valid_full.alls").read_text(), hn)
    g = HNGraph.from_json(hn.to_json())
    for name, keys in c.layers.items():
        g.layers[name].quantization_params.update(keys)
    g2 = HNGraph.from_json(g.to_json())
    assert {n: l.quantization_params for n, l in g2.layers.items() if l.quantization_params} == c.layers
    assert math.isclose(c.layers["conv2"]["force_range_in"][0], -1.5)


def test_compiled_layers_are_a_per_layer_configuration(hn):
    """compiled.layers is what the quantization flow writes into the layers (apply_config): the
    effective configuration of each layer is then the script's."""
    from emulator.hn import HNGraph
    from emulator.quantization.config import apply_config, layer_config
    c = compile_model_script((ALLS / "valid_full.alls").read_text(), hn)
    g = HNGraph.from_json(hn.to_json())
    apply_config(g, c.layers)
    conv1 = layer_config(g, g.layers["conv1"])
    assert (conv1.precision_mode, conv1.bias_mode, conv1.groups) == ("a16_w16", "double_scale_initialization", 2)
    conv4 = layer_config(g, g.layers["conv4"])  # produces output_layer4: the output's mode applies
    assert conv4.precision_mode == "a8_w8_a16"
    assert conv4.activation_clipping == {"mode": "percentile", "values": [0.5, 99.5]}
    assert layer_config(g, g.layers["dense1"]).weights_clipping["mode"] == "mmse"
