"""The adaptive latency budget: shorten suggestions when completions run over budget.

Every finished completion records its latency. When the median of the recent ones is
over `completion.latencyBudgetMs`, the level goes up one step (no first-token branching,
then fewer tokens, then single-line); when it has been under half the budget for a while,
it comes back down.
Every change is logged, so a user can see why suggestions got shorter.
"""

from __future__ import annotations

import logging
import statistics
from collections import deque

log = logging.getLogger(__name__)

WINDOW = 8  # completions the median is taken over
# level -> (single_line, share of completion.maxTokens, first-token branching allowed)
LEVELS = [(False, 1.0, True), (False, 1.0, False), (False, 0.5, False), (True, 0.5, False),
          (True, 0.25, False)]  # fmt: skip


class AdaptiveBudget:
    """Track recent latencies and derive the current token/line limits."""

    def __init__(self) -> None:
        self.level = 0
        self.recent: deque[float] = deque(maxlen=WINDOW)
        self.changes = 0  # level changes so far (for stats)

    def limits(self, max_tokens: int) -> tuple[bool, int | None, bool]:
        """Return (force single-line, max tokens or None for the setting, branching allowed)."""
        single, share, branching = LEVELS[self.level]
        return single, None if share == 1.0 else max(4, int(max_tokens * share)), branching

    def record(self, latency_ms: float, budget_ms: float, max_tokens: int) -> None:
        """Record one completion's latency and move the level if the median says so."""
        self.recent.append(latency_ms)
        if len(self.recent) < WINDOW // 2:
            return
        median = statistics.median(self.recent)
        if median > budget_ms and self.level < len(LEVELS) - 1:
            self._move(+1, median, budget_ms, max_tokens)
        elif median < budget_ms / 2 and self.level > 0 and len(self.recent) == WINDOW:
            self._move(-1, median, budget_ms, max_tokens)

    def _move(self, step: int, median: float, budget_ms: float, max_tokens: int) -> None:
        """Change level, clear the window, and log what suggestions look like now."""
        self.level += step
        self.changes += 1
        self.recent.clear()
        single, tokens, branching = self.limits(max_tokens)
        shape = f"{'single-line' if single else 'multi-line allowed'}, at most " + (
            f"{tokens} tokens" if tokens is not None else f"{max_tokens} tokens (the setting)"
        )
        shape += "" if branching else ", no first-token branching"
        word = "over" if step > 0 else "well under"
        log.warning(
            "latency p50 %.0f ms is %s the %.0f ms budget: suggestions now %s",
            median, word, budget_ms, shape,
        )  # fmt: skip
