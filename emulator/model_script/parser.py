"""The syntax of the model-script language: statements with their places, no network needed.

    script     := { [statement] NEWLINE } EOF
    statement  := [IDENT '='] IDENT '(' [argument {',' argument} [',']] ')'
    argument   := IDENT '=' value | value              (positional arguments come first)
    value      := NUMBER | NAME | GLOB | '[' [value {',' value} [',']] ']'

NAME is an identifier (`a8_w8`, `enabled`), a layer name (`conv1`, scoped `net/conv1`) or a bare
glob (`output_layer*`); GLOB is a brace glob `{conv*}`. What the commands mean, and whether their
arguments fit them and the network, is the compiler's business (emulator.model_script.compiler).
"""
from __future__ import annotations

import dataclasses
from typing import Iterator, Union

from .errors import ModelScriptError, source_line
from .lexer import (COMMA, EOF, EQUALS, GLOB, LBRACK, LPAREN, NAME, NEWLINE, NUMBER, RBRACK,
                    RPAREN, Token, is_identifier, normalize_newlines, tokenize)


# --- values -----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Name:
    """A bare word: identifier, layer name (maybe scoped) or bare glob."""

    text: str
    line: int
    column: int

    def describe(self) -> str:
        return f"name '{self.text}'"

    def to_source(self) -> str:
        return self.text


@dataclasses.dataclass(frozen=True)
class Number:
    """An int (no point, no exponent) or a float."""

    value: Union[int, float]
    text: str
    line: int
    column: int

    def describe(self) -> str:
        return f"number {self.text}"

    def to_source(self) -> str:
        return self.text


@dataclasses.dataclass(frozen=True)
class Glob:
    """A brace glob `{pattern}`: a layer selector."""

    pattern: str
    line: int
    column: int

    def describe(self) -> str:
        return f"brace glob {{{self.pattern}}}"

    def to_source(self) -> str:
        return "{" + self.pattern + "}"


@dataclasses.dataclass(frozen=True)
class ListValue:
    """`[a, b, ...]`; items are values (lists may nest)."""

    items: tuple["Value", ...]
    line: int
    column: int

    def describe(self) -> str:
        return f"list {self.to_source()}"

    def to_source(self) -> str:
        return "[" + ", ".join(v.to_source() for v in self.items) + "]"


Value = Union[Name, Number, Glob, ListValue]


# --- statements -------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Argument:
    """One argument of a call: `key=value` (key set) or a positional value (key None). line and
    column: those of the key, or of the value when positional."""

    key: str | None
    value: Value
    line: int
    column: int

    def to_source(self) -> str:
        return f"{self.key}={self.value.to_source()}" if self.key else self.value.to_source()


@dataclasses.dataclass(frozen=True)
class Statement:
    """`[target =] command(arguments)`. line / column: the command name's; target_line /
    target_column: the assigned name's (0 when there is none); end_line: the line of the `)`."""

    command: str
    args: tuple[Argument, ...]
    line: int
    column: int
    end_line: int
    target: str | None = None
    target_line: int = 0
    target_column: int = 0

    @property
    def positional(self) -> list[Argument]:
        return [a for a in self.args if a.key is None]

    @property
    def keywords(self) -> dict[str, Argument]:
        return {a.key: a for a in self.args if a.key is not None}

    def to_source(self) -> str:
        call = f"{self.command}({', '.join(a.to_source() for a in self.args)})"
        return f"{self.target} = {call}" if self.target else call


# --- the parser -------------------------------------------------------------------------------

def parse_model_script(text: str, source: str = "<script>") -> list[Statement]:
    """The statements of a model script, in order, with their places (syntax only: commands and
    their arguments are not checked, and no network is needed). Raises ModelScriptError at the
    first syntax error."""
    if not isinstance(text, str):
        raise TypeError(f"a model script is text (str), not {type(text).__name__}")
    return _Parser(normalize_newlines(text), str(source)).script()


class _Parser:
    def __init__(self, text: str, source: str):
        self.text, self.source = text, source
        self.tokens: Iterator[Token] = tokenize(text, source)
        self.ahead: list[Token] = []
        self.prev: Token | None = None
        self.open: list[Token] = []  # brackets the parser is inside, for hints

    # token stream
    def peek(self, k: int = 0) -> Token:
        while len(self.ahead) <= k:
            self.ahead.append(next(self.tokens))
        return self.ahead[k]

    def take(self) -> Token:
        tok = self.peek()
        self.ahead.pop(0)
        self.prev = tok
        return tok

    def error(self, msg: str, line: int, column: int) -> ModelScriptError:
        return ModelScriptError(msg, self.source, line, column, source_line(self.text, line))

    def unexpected(self, tok: Token, expected: str) -> ModelScriptError:
        msg = f"expected {expected}, got {tok.describe()}"
        o = self.open[-1] if self.open else None
        if o is not None and o.line < tok.line and (
                tok.kind == LPAREN or (self.prev is not None and self.prev.line < tok.line)):
            closer = ")" if o.kind == LPAREN else "]"
            msg += f" (the '{o.text}' at {o.line}:{o.column} is still open: is a '{closer}' missing?)"
        return self.error(msg, tok.line, tok.column)

    # grammar
    def script(self) -> list[Statement]:
        out = []
        while self.peek().kind != EOF:
            if self.peek().kind == NEWLINE:
                self.take()
                continue
            out.append(self.statement())
            end = self.peek()
            if end.kind not in (NEWLINE, EOF):
                raise self.error(f"unexpected {end.describe()} after the end of the statement "
                                 f"(one statement a line)", end.line, end.column)
        return out

    def statement(self) -> Statement:
        first = self.take()
        if first.kind != NAME:
            raise self.unexpected(first, "a command name (e.g. quantization_param)")
        target = None
        if self.peek().kind == EQUALS:
            if not is_identifier(first.text):
                raise self.error(f"'{first.text}' cannot be assigned to: the name of an assignment "
                                 f"is an identifier (letters, digits, _)", first.line, first.column)
            target = first
            self.take()
            first = self.take()
            if first.kind != NAME:
                raise self.unexpected(first, "a command after '=' (e.g. normalization(...))")
        if not is_identifier(first.text):
            raise self.error(f"'{first.text}' is not a command name", first.line, first.column)
        after = self.peek()
        if after.kind != LPAREN:
            raise self.unexpected(after, f"'(' after the command {first.text}")
        args, close = self.arguments(first.text)
        return Statement(first.text, tuple(args), first.line, first.column, close.line,
                         target.text if target else None,
                         target.line if target else 0, target.column if target else 0)

    def arguments(self, command: str) -> tuple[list[Argument], Token]:
        self.open.append(self.take())  # '('
        args: list[Argument] = []
        seen: dict[str, Token] = {}
        while self.peek().kind != RPAREN:
            tok = self.peek()
            if tok.kind == NAME and self.peek(1).kind == EQUALS:
                self.take()
                self.take()
                if not is_identifier(tok.text):
                    raise self.error(f"'{tok.text}' is not a keyword (letters, digits, _)",
                                     tok.line, tok.column)
                if tok.text in seen:
                    s = seen[tok.text]
                    raise self.error(f"duplicate keyword '{tok.text}' in one call of {command} "
                                     f"(first given at {s.line}:{s.column})", tok.line, tok.column)
                seen[tok.text] = tok
                args.append(Argument(tok.text, self.value(), tok.line, tok.column))
            else:
                value = self.value()
                if seen:
                    raise self.error(f"positional argument {value.describe()} after a keyword "
                                     f"argument: positional arguments come first",
                                     value.line, value.column)
                args.append(Argument(None, value, value.line, value.column))
            if self.peek().kind == COMMA:
                self.take()
            elif self.peek().kind != RPAREN:
                raise self.unexpected(self.peek(), "',' or ')'")
        close = self.take()
        self.open.pop()
        return args, close

    def value(self) -> Value:
        tok = self.take()
        if tok.kind == NUMBER:
            is_int = not any(c in tok.text for c in ".eE")
            return Number(int(tok.text) if is_int else float(tok.text), tok.text, tok.line, tok.column)
        if tok.kind == NAME:
            return Name(tok.text, tok.line, tok.column)
        if tok.kind == GLOB:
            return Glob(tok.text, tok.line, tok.column)
        if tok.kind == LBRACK:
            self.open.append(tok)
            items = []
            while self.peek().kind != RBRACK:
                items.append(self.value())
                if self.peek().kind == COMMA:
                    self.take()
                elif self.peek().kind != RBRACK:
                    raise self.unexpected(self.peek(), "',' or ']'")
            self.take()
            self.open.pop()
            return ListValue(tuple(items), tok.line, tok.column)
        raise self.unexpected(tok, "a value (a name, a number, a list [...] or a brace glob {...})")
