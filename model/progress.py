"""Progress for long commands (eval, train): a tqdm bar on a terminal, plain lines in logs.

tqdm redraws its bar with carriage returns, which floods a log file or a CI transcript
with one endless line; when stderr is not a terminal, a line at most once a minute says
how far it got instead.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
LOG_EVERY_S = 60.0  # seconds between progress lines when stderr is not a terminal


def track(items: Iterable[T], total: int, desc: str) -> Iterator[T]:
    """Yield `items`, reporting progress on stderr as a bar or as occasional lines."""
    if sys.stderr.isatty():
        from tqdm import tqdm

        yield from tqdm(items, total=total, desc=desc, file=sys.stderr)
        return
    last = time.monotonic()
    for done, item in enumerate(items, 1):
        yield item
        if done == total or time.monotonic() - last >= LOG_EVERY_S:
            print(f"{desc}: {done}/{total}", file=sys.stderr, flush=True)
            last = time.monotonic()
