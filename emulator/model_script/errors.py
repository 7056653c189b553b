"""The one exception of the model-script language, and the helpers that build its messages.

A `ModelScriptError` points at a place in the script: `source` (a file name, or "<script>"),
`line` and `column` (1-based), `text` (that source line). Its message reads

    q.alls:3:27: unknown key 'precison_mode' of quantization_param; did you mean precision_mode?
        3 | quantization_param(conv1, precison_mode=a16_w16)
          |                           ^
"""
from __future__ import annotations

import difflib
from typing import Iterable, Sequence

from ..errors import EmulatorError


class ModelScriptError(EmulatorError, ValueError):
    """A model script (.alls) that is malformed or does not fit the network.

    Attributes: `source`, `line`, `column` (1-based; 0 when the error has no place), `text` (the
    offending source line, "" when none), `reason` (the message without place or caret) and
    `suggestions` (the close valid names offered after "did you mean", possibly empty)."""

    def __init__(self, reason: str, source: str = "<script>", line: int = 0, column: int = 0,
                 text: str = "", suggestions: Sequence[str] = ()):
        self.reason = reason
        self.source = source
        self.line = line
        self.column = column
        self.text = text
        self.suggestions = tuple(suggestions)
        super().__init__(self._render())

    def _render(self) -> str:
        if not self.line:
            return f"{self.source}: {self.reason}"
        head = f"{self.source}:{self.line}:{self.column}: {self.reason}"
        gutter = f"{self.line:>5} | "
        # the caret keeps the tabs of the line before it, so it sits under the column anywhere
        lead = "".join(c if c == "\t" else " " for c in self.text[:max(self.column - 1, 0)])
        return f"{head}\n{gutter}{self.text}\n{' ' * (len(gutter) - 2)}| {lead}^"

    def __reduce__(self):
        return (self.__class__, (self.reason, self.source, self.line, self.column, self.text,
                                 self.suggestions))


def source_line(text: str, line: int) -> str:
    """Line `line` (1-based) of `text`, without its end of line; "" beyond the end. Walks to the
    line (no split of the whole text: a script may be a large file of comments)."""
    start = 0
    for _ in range(line - 1):
        nl = text.find("\n", start)
        if nl < 0:
            return ""
        start = nl + 1
    end = text.find("\n", start)
    return text[start:end if end >= 0 else len(text)]


def close_names(word: str, candidates: Iterable[str], n: int = 3, margin: float = 0.15) -> list[str]:
    """The valid names closest to a mistyped one (difflib's similarity, at least 0.6), best
    first: at most n, and none much further than the best (within `margin` of its score)."""
    scored = []
    for c in dict.fromkeys(candidates):
        m = difflib.SequenceMatcher(None, word, c)
        if m.real_quick_ratio() >= 0.6 and m.quick_ratio() >= 0.6 and m.ratio() >= 0.6:
            scored.append((m.ratio(), c))
    scored.sort(key=lambda rc: -rc[0])  # stable: equal scores keep the candidates' order
    return [c for r, c in scored[:n] if r >= scored[0][0] - margin]


def did_you_mean(suggestions: Sequence[str]) -> str:
    """"; did you mean a, b?" or "" when there is nothing to offer."""
    if not suggestions:
        return ""
    names = list(suggestions)
    said = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    return f"; did you mean {said}?"


def some_names(names: Sequence[str], n: int = 12) -> str:
    """A readable sample of a long list of names: the first n, and how many there are."""
    names = list(names)
    if len(names) <= n:
        return ", ".join(names)
    return f"{', '.join(names[:n])}, ... ({len(names)} in all)"
