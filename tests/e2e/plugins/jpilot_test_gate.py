"""A test-only plugin that holds the engine worker until the test opens a gate.

It blocks in `jpilot_build_prompt` for documents containing GATE, until the file named
by $JPILOT_TEST_GATE exists (at most 20 s), then passes to the real context plugin. On
arrival it creates "$JPILOT_TEST_GATE.held", and on leaving "$JPILOT_TEST_GATE.passed",
so a test can wait for those events.
This makes "the worker is busy" a fact the test controls instead of a timing guess.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from jpilot.plugins.api import hookimpl


@hookimpl(tryfirst=True)
def jpilot_build_prompt(request, tokenizer, budget):
    """Wait for the gate file while the buffer says GATE; always pass."""
    gate = Path(os.environ.get("JPILOT_TEST_GATE", "/nonexistent"))
    if "GATE" not in request.text or not gate.parent.is_dir():
        return None
    gate.with_name(gate.name + ".held").touch()
    end = time.monotonic() + 20
    while not gate.exists() and time.monotonic() < end:
        time.sleep(0.01)
    gate.with_name(gate.name + ".passed").touch()
    return None
