"""Model scripts (.alls): the language that sets, per layer and for the whole network, how the
quantization toolchain works (docs/model-script.md).

    from emulator.model_script import parse_model_script, compile_model_script
    statements = parse_model_script(text, source="q.alls")      # syntax only
    compiled = compile_model_script(text, hn, source="q.alls")  # checked against the network
    compiled.layers    # {bare layer name: {key: value}}, the later statement winning

Modules, one job each: `lexer` (tokens, brackets), `parser` (statements with their places),
`commands` (each command's arguments and the values they take), `compiler` (binding, layer
selectors, "later wins", CompiledScript), `errors` (ModelScriptError and its messages).
No TensorFlow is imported.
"""
from __future__ import annotations

from .commands import COMMANDS
from .compiler import CompiledScript, compile_model_script
from .errors import ModelScriptError
from .parser import Argument, Glob, ListValue, Name, Number, Statement, parse_model_script

__all__ = ["parse_model_script", "compile_model_script", "ModelScriptError", "CompiledScript",
           "Statement", "Argument", "Name", "Number", "Glob", "ListValue", "COMMANDS"]
