"""One completion from a buffer snapshot: ignore check, plan, prompt, generate, post-process.

This is the whole path both `jpilot serve` and `jpilot complete` use, with no LSP in it,
so tests can compute the exact text a client must receive. `complete()` runs on the
engine's worker thread (`Engine.submit`), never on the event loop or pygls's pool.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from jpilot.lsp.plugins import PluginHost
from jpilot.model.engine import CancelToken, Engine, GenerationConfig, GenerationResult
from jpilot.model.remote import session_id
from jpilot.plugins.api import CompletionRequest, GenerationPlan, Prompt, Suggestion

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What one pipeline run produced, and why it produced nothing when it did."""

    suggestion: Suggestion | None  # None: show nothing
    status: str  # "ok", "empty", "ignored", "no-plan", "no-prompt", "cancelled"
    plan: GenerationPlan | None = None
    prompt: Prompt | None = None
    result: GenerationResult | None = None
    stats: dict[str, Any] = field(default_factory=dict)


DRAFT_TOKENS = 6  # prompt-lookup guesses verified per forward pass


def budget_for(engine: Engine, request: CompletionRequest, plan: GenerationPlan) -> int:
    """Return the prompt token budget: the setting, capped by the model's context."""
    room = engine.bundle.manifest.n_positions - plan.max_tokens - 1
    return max(1, min(request.settings.context.max_tokens, room))


def complete(
    engine: Engine,
    host: PluginHost,
    request: CompletionRequest,
    cancel: CancelToken,
    deadline: float | None = None,
) -> Outcome:
    """Run the completion pipeline for one request; return the final suggestion or why not."""
    if cancel.is_set():
        return Outcome(None, "cancelled")
    if host.ignored(request):  # fail closed
        return Outcome(None, "ignored")
    plan = host.first("jpilot_generation_plan", request=request)
    if plan is None:
        return Outcome(None, "no-plan")
    budget = budget_for(engine, request, plan)
    prompt = host.first(
        "jpilot_build_prompt", request=request, tokenizer=engine.tokenizer, budget=budget
    )
    if prompt is None or not prompt.ids:
        return Outcome(None, "no-prompt", plan)
    if request.settings.debug.log_prompts:
        log.debug("prompt for %s:\n%s", request.uri, prompt.debug_text)
    if cancel.is_set():
        return Outcome(None, "cancelled", plan, prompt)
    config = GenerationConfig(
        max_new_tokens=plan.max_tokens,
        temperature=plan.temperature,
        top_p=plan.top_p,
        stop=plan.stop,
        deadline=deadline,
        seed=0,
        heal=prompt.heal,
        # Prompt-lookup drafts pay off on multi-line suggestions (bench/completion.py).
        draft_tokens=DRAFT_TOKENS if plan.multiline else 0,
        branches=plan.branches,
        session=session_id(request.uri),  # a pool keeps one document on one replica
    )
    result = engine.generate(prompt.ids, config, cancel=cancel)
    stats = {
        "cancelled_in_time": cancel.is_set(),  # set before generation ended (not after)
        "prompt_tokens": result.prompt_tokens,
        "reused_tokens": result.reused_tokens,
        "generated_tokens": len(result.tokens),
        "finish_reason": result.finish_reason,
        "elapsed_ms": result.elapsed * 1000,
        "confidence": result.confidence,
    }
    if result.finish_reason == "cancelled":
        return Outcome(None, "cancelled", plan, prompt, result, stats)
    suggestion = Suggestion(
        result.text,
        request.offset,
        finish_reason=result.finish_reason,
        confidence=result.confidence,
    )
    postprocess(host, request, suggestion)
    if not suggestion.text.strip():
        return Outcome(
            None, "empty", plan, prompt, result, stats | {"dropped_by": suggestion.dropped_by}
        )
    return Outcome(suggestion, "ok", plan, prompt, result, stats)


def postprocess(host: PluginHost, request: CompletionRequest, suggestion: Suggestion) -> None:
    """Run the post-process hooks, then match the buffer's line endings."""
    host.each(
        "jpilot_postprocess",
        until=lambda: not suggestion.text,
        request=request,
        suggestion=suggestion,
    )
    if "\r\n" in request.text and "\n" in suggestion.text:
        suggestion.text = suggestion.text.replace("\r\n", "\n").replace("\n", "\r\n")
