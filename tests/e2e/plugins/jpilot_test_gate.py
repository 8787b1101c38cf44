"""A test-only plugin that holds the engine worker until the test opens a gate.

It blocks in `jpilot_build_prompt` for documents containing GATE, until the file named
by $JPILOT_TEST_GATE exists (at most 20 s), then passes to the real context plugin.
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
    end = time.monotonic() + 20
    while "GATE" in request.text and not gate.exists() and time.monotonic() < end:
        time.sleep(0.01)
    return None
