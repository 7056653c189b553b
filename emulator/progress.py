"""Progress bars for long steps: on a terminal a bar on stderr, nothing when stderr is piped or
redirected (logs and CI stay clean)."""
from __future__ import annotations

import sys
from typing import Any


def bar(total: int, desc: str, unit: str = "img", enabled: bool = True) -> Any:
    """A tqdm bar (a context manager with .update(n)); disabled when stderr is not a terminal,
    or when not `enabled`."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=False, file=sys.stderr,
                disable=not (enabled and sys.stderr.isatty()), dynamic_ncols=True)
