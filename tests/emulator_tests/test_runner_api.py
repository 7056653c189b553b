"""ClientRunner's arguments are explicit types, never guessed: a str is HN text or script text,
a pathlib.Path is a file; wrong calls raise the package's errors (EmulatorError subclasses)."""
from __future__ import annotations

import pytest

import numerics_nets as nets
from emulator import ClientRunner
from emulator.errors import EmulatorError, HNError, RunnerUsageError


@pytest.fixture()
def hn_file(tmp_path):
    hn, _ = nets.all_ops_net()
    p = tmp_path / "net.hn"
    p.write_text(hn.to_json())
    return p


def test_hn_from_text_path_dict(hn_file):
    text = hn_file.read_text()
    for arg in (text, text.encode(), hn_file, ClientRunner(hn=text).hn.to_dict()):
        assert ClientRunner(hn=arg).hn.name == "allops"


def test_a_str_path_is_not_guessed(hn_file):
    with pytest.raises(HNError, match=r"names a file: pass ClientRunner\(hn=pathlib.Path"):
        ClientRunner(hn=str(hn_file))
    with pytest.raises(HNError, match="cannot read the HN file"):
        ClientRunner(hn=hn_file.with_name("missing.hn"))
    with pytest.raises(RunnerUsageError, match="not int"):
        ClientRunner(hn=3)
    with pytest.raises(RunnerUsageError, match="exactly one"):
        ClientRunner()


def test_model_script_text_or_path(hn_file, tmp_path):
    r = ClientRunner(hn=hn_file)
    script = "quantization_param({conv*}, precision_mode=a16_w16)\n"
    r.load_model_script(script)
    assert r.model_script == script
    f = tmp_path / "q.alls"
    f.write_text(script)
    r.load_model_script("")
    r.load_model_script(f)
    assert r.model_script == script
    with pytest.raises(RunnerUsageError, match=r"pass pathlib.Path\("):
        r.load_model_script(str(f))
    with pytest.raises(RunnerUsageError, match="not bytes"):
        r.load_model_script(script.encode())


def test_usage_errors_are_emulator_errors(hn_file):
    r = ClientRunner(hn=hn_file)
    with pytest.raises(RunnerUsageError, match="'native' or 'fp_optimized'"):
        r.load_params({}, which="quantized")
    with pytest.raises(RunnerUsageError, match="unexpected arguments"):
        r.get_tf_graph("native", colour=1)
    assert issubclass(RunnerUsageError, EmulatorError) and issubclass(RunnerUsageError, ValueError)
