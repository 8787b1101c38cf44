"""A stand-in engine for the docs plugin's unit tests: a canned reply, prompts recorded."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Result:
    text: str


@dataclass
class FakeTokenizer:
    fim = None

    def infill_prompt(self, prefix: str, suffix: str, budget: int) -> list[int]:
        return [ord(c) for c in prefix][-budget:]


@dataclass
class FakeEngine:
    """Returns a canned completion and records the prompt it was given."""

    reply: str
    n_positions: int = 100_000
    tokenizer: FakeTokenizer = field(default_factory=FakeTokenizer)
    prompts: list[str] = field(default_factory=list)

    def generate(self, prompt, config, cancel=None) -> Result:
        self.prompts.append("".join(map(chr, prompt)))
        return Result(self.reply)
