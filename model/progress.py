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


class Progress:
    """A tqdm bar on a terminal (time or step based), else stderr lines every 30 s."""

    def __init__(self, total: float, unit: str, initial: float) -> None:
        self.last = 0.0
        self.bar = None  # in a log, tqdm's carriage returns would make one endless line
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit=unit, mininterval=1)

    def update(self, value: float, text: str) -> None:
        """Move to `value` and show `text`."""
        if self.bar is not None:
            self.bar.n = int(value)
            self.bar.set_postfix_str(text, refresh=False)
            self.bar.refresh() if time.monotonic() - self.last > self.bar.mininterval else None
            self.last = time.monotonic()
        elif time.monotonic() - self.last > 30:
            print(f"{value:.0f} {text}", file=sys.stderr, flush=True)
            self.last = time.monotonic()

    def close(self) -> None:
        """Finish the bar."""
        if self.bar is not None:
            self.bar.close()
