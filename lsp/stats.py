"""Counters the `jpilot.status` command reports (and bench/lsp_latency.py reads)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Stats:
    """What the server's completions have done since it started."""

    requests: int = 0  # completions that reached the engine worker
    generated: int = 0  # ... that ran the model (cancelled ones that never started do not)
    suggestions: int = 0  # ... that produced a non-empty suggestion
    superseded: int = 0  # ... whose cancel was set by a newer request or an edit
    superseded_computed: int = 0  # ... cancelled during generation, yet generated to the end
    cancelled: int = 0  # $/cancelRequest (or shutdown) while waiting
    typed_through: int = 0  # answered with the rest of the suggestion being typed, no model
    windowed: int = 0  # on a window of a document over context.largeFileKb
    whole_file_skipped: int = 0  # whole-file passes (diagnostics) skipped on such documents
    prompt_tokens: int = 0
    reused_tokens: int = 0  # prompt tokens whose KV came from the prefix cache
    first_completion_s: float | None = None  # seconds from start to the first suggestion

    def record(self, outcome: Any, cancel_set: bool, seconds: float) -> None:
        """Count one finished pipeline run."""
        self.requests += 1
        if outcome.status == "ok" and not cancel_set:
            self.suggestions += 1
        if cancel_set:
            self.superseded += 1
            result = outcome.result
            if result is not None and result.finish_reason != "cancelled":
                self.superseded_computed += bool(outcome.stats.get("cancelled_in_time"))
        if outcome.result is not None:
            self.generated += 1
            self.prompt_tokens += outcome.result.prompt_tokens
            self.reused_tokens += outcome.result.reused_tokens

    def as_dict(self) -> dict[str, Any]:
        """Return the counters as JSON-able data."""
        return asdict(self)
