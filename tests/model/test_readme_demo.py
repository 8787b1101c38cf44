"""The README's first demo shows something the embedded model gets right."""

from __future__ import annotations

import re
from pathlib import Path

from jpilot.model.default import default_bundle_path
from jpilot.model.engine import Engine, GenerationConfig
from jpilot.model.generate import unescape

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_demo_completes_the_line_right() -> None:
    text = README.read_text(encoding="utf-8")
    command = re.search(r"jpilot model generate '([^']*)' --stop \$'\\n'", text)
    assert command, "the README's first demo is a `jpilot model generate '...' --stop $'\\n'`"
    prompt = unescape(command.group(1))
    claimed = re.search(r"It prints the class with `return ([^`]*)`", text)
    assert claimed, "the README says what the demo prints"
    engine = Engine(default_bundle_path())
    ids, heal = engine.healer.split(engine.tokenizer.encode(prompt))  # as `generate` does
    result = engine.generate(ids, GenerationConfig(max_new_tokens=48, stop=["\n"], heal=heal))
    engine.close()
    assert prompt.endswith("return ") and result.text.strip() == claimed.group(1)
