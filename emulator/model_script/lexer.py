"""Tokens of the model-script language: the lexer.

One statement a line; a line break inside an open bracket `(`, `[` or `{` continues the statement,
so the lexer emits NEWLINE only at bracket depth 0 (and never two in a row). `#` starts a comment
to the end of the line. Brackets are checked here: a closing bracket that does not match the open
one, a closing bracket with none open, and a bracket still open at the end of the file are errors
at their place. A brace glob `{pattern}` is one GLOB token (the pattern may hold fnmatch's
`* ? [seq] [!seq]`).

Tokens are produced lazily, so the parser reports the first error of the file, whichever of the
two finds it.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Iterator

from .errors import ModelScriptError, source_line

NAME, NUMBER, GLOB = "name", "number", "glob"
LPAREN, RPAREN, LBRACK, RBRACK, COMMA, EQUALS = "(", ")", "[", "]", ",", "="
NEWLINE, EOF = "newline", "eof"

MAX_DEPTH = 32  # brackets open at once; deeper is surely not a model script (and bounds recursion)
MAX_NUMBER_CHARS = 64

# A name: an identifier, a layer name (scoped `net/conv1`), a value (a8_w8, enabled) or a bare
# glob (`output_layer*`). Character classes `[...]` need braces: `{conv[12]}`.
NAME_RE = re.compile(r"[A-Za-z_*?][A-Za-z0-9_*?.\-]*(?:/[A-Za-z0-9_*?.\-]+)*")
IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
GLOB_RE = re.compile(r"[A-Za-z0-9_*?\[\]!/.\-]+")
_RUN_RE = re.compile(r"[^\s,()\[\]{}=#]*")  # the whole malformed word, for messages
_BLANK_RE = re.compile(r"[ \t\f\v]+")
_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_*?.")
_CLOSES = {")": "(", "]": "["}

_ADVICE = {
    ";": "one statement a line: put the next statement on a line of its own",
    "\\": "there is no backslash continuation: a statement continues while a bracket is open",
    '"': "the language has no strings: write names and values bare (a8_w8, conv1, {conv*})",
    "'": "the language has no strings: write names and values bare (a8_w8, conv1, {conv*})",
}


@dataclasses.dataclass(frozen=True)
class Token:
    kind: str    # one of the constants above
    text: str    # the source text (a GLOB: the pattern inside the braces)
    line: int    # 1-based
    column: int  # 1-based

    def describe(self) -> str:
        if self.kind == NAME:
            return f"name '{self.text}'"
        if self.kind == NUMBER:
            return f"number {self.text}"
        if self.kind == GLOB:
            return f"brace glob {{{self.text}}}"
        if self.kind == NEWLINE:
            return "end of line"
        if self.kind == EOF:
            return "end of file"
        return f"'{self.text}'"


def is_identifier(text: str) -> bool:
    """A plain identifier (a command, key or assigned name): no glob characters, no scope."""
    return IDENT_RE.match(text) is not None


def normalize_newlines(text: str) -> str:
    """CRLF and CR line ends as LF, a leading byte-order mark dropped: columns count characters
    of the script as an editor shows it."""
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def tokenize(text: str, source: str = "<script>") -> Iterator[Token]:
    """The tokens of `text` (already normalized), ending with NEWLINE (if the last statement had
    none) and EOF. Raises ModelScriptError at the first lexical error."""

    def error(msg: str, line: int, col: int) -> ModelScriptError:
        return ModelScriptError(msg, source, line, col, source_line(text, line))

    pos, n = 0, len(text)
    line, line_start = 1, 0
    stack: list[tuple[str, int, int]] = []  # open brackets: (char, line, column)
    at_line_start = True  # nothing emitted since the last NEWLINE
    while pos < n:
        c = text[pos]
        if c == "\n":
            if not stack and not at_line_start:
                yield Token(NEWLINE, "\n", line, pos - line_start + 1)
                at_line_start = True
            pos += 1
            line, line_start = line + 1, pos
            continue
        if c in " \t\f\v":
            pos = _BLANK_RE.match(text, pos).end()  # type: ignore[union-attr]
            continue
        if c == "#":
            nl = text.find("\n", pos)
            pos = n if nl < 0 else nl
            continue
        col = pos - line_start + 1
        at_line_start = False
        if c in "([":
            if len(stack) >= MAX_DEPTH:
                raise error(f"brackets nested deeper than {MAX_DEPTH}", line, col)
            stack.append((c, line, col))
            yield Token(c, c, line, col)
            pos += 1
        elif c in ")]":
            if not stack:
                raise error(f"unmatched '{c}': no bracket is open", line, col)
            want, oline, ocol = stack[-1]
            if want != _CLOSES[c]:
                closer = ")" if want == "(" else "]"
                raise error(f"'{c}' does not close the '{want}' opened at {oline}:{ocol} "
                            f"(expected '{closer}')", line, col)
            stack.pop()
            yield Token(c, c, line, col)
            pos += 1
        elif c == "{":
            bline = line
            pattern, pos, line, line_start = _brace_glob(text, pos, line, line_start, error)
            yield Token(GLOB, pattern, bline, col)
        elif c == "}":
            raise error("unmatched '}': no brace glob is open", line, col)
        elif c in ",=":
            yield Token(c, c, line, col)
            pos += 1
        elif c.isdigit() or (c in "+-." and pos + 1 < n and (text[pos + 1].isdigit() or
                                                             (text[pos + 1] == "." and c != "."))):
            m = NUMBER_RE.match(text, pos)
            end = m.end() if m else pos
            word = _RUN_RE.match(text, pos).group()  # type: ignore[union-attr]
            if not m or (end < n and text[end] in _NAME_CHARS) or len(word) > len(m.group()):
                raise error(f"malformed number '{word}'", line, col)
            if len(word) > MAX_NUMBER_CHARS:
                raise error(f"number of {len(word)} characters (at most {MAX_NUMBER_CHARS})", line, col)
            yield Token(NUMBER, m.group(), line, col)
            pos = end
        elif c.isascii() and (c.isalpha() or c in "_*?"):
            m = NAME_RE.match(text, pos)
            yield Token(NAME, m.group(), line, col)  # type: ignore[union-attr]
            pos = m.end()  # type: ignore[union-attr]
        else:
            advice = _ADVICE.get(c, "")
            shown = repr(c) if not c.isprintable() or c.isspace() else f"'{c}'"
            raise error(f"unexpected character {shown}" + (f": {advice}" if advice else ""), line, col)
    if stack:
        want, oline, ocol = stack[-1]
        closer = ")" if want == "(" else "]"
        raise error(f"unterminated statement: the '{want}' opened here is never closed (end of "
                    f"file reached; a '{closer}' is missing)", oline, ocol)
    if not at_line_start:
        yield Token(NEWLINE, "", line, pos - line_start + 1)
    yield Token(EOF, "", line, pos - line_start + 1)


def _brace_glob(text: str, pos: int, line: int, line_start: int, error) -> tuple[str, int, int, int]:
    """Scan `{ pattern }` from the `{` at pos (blanks and line breaks allowed around the
    pattern): (pattern, position after the `}`, line, line start)."""
    bline, bcol = line, pos - line_start + 1
    n = len(text)

    def skip(p: int, line: int, line_start: int) -> tuple[int, int, int]:
        while p < n and text[p] in " \t\f\v\n":
            if text[p] == "\n":
                line, line_start = line + 1, p + 1
            p += 1
        return p, line, line_start

    p, line, line_start = skip(pos + 1, line, line_start)
    m = GLOB_RE.match(text, p)
    pattern = m.group() if m else ""
    if pattern:
        p, line, line_start = skip(m.end(), line, line_start)  # type: ignore[union-attr]
    if p >= n:
        raise error("unterminated brace glob: the '{' opened here is never closed (end of file "
                    "reached; a '}' is missing)", bline, bcol)
    col = p - line_start + 1
    if text[p] != "}":
        c = text[p]
        if line != bline:
            raise error("unterminated brace glob: the '{' opened here is not closed on its line "
                        "(a '}' is missing)", bline, bcol)
        close, nl = text.find("}", p), text.find("\n", p)
        if close < 0 or (0 <= nl < close):
            raise error("unterminated brace glob: the '{' opened here is not closed on its line "
                        "(a '}' is missing)", bline, bcol)
        if c == "," and pattern:
            raise error("a brace glob holds one layer-name pattern; for several, write a list: "
                        "[{conv*}, {dw*}] or [conv1, conv2]", line, col)
        shown = repr(c) if not c.isprintable() or c.isspace() else f"'{c}'"
        raise error(f"unexpected character {shown} in a brace glob: a pattern holds letters, "
                    f"digits and _ * ? [ ] ! / . - only, and ends with '}}'", line, col)
    if not pattern:
        raise error("empty brace glob '{}': write a layer-name pattern inside, e.g. {conv*}",
                    bline, bcol)
    return pattern, p + 1, line, line_start
