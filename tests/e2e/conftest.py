"""Helpers for end-to-end tests: the server command and the expected completion."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from jpilot.lsp.pipeline import Outcome, complete
from jpilot.lsp.plugins import default_host
from jpilot.plugins.settings import parse_settings
from jpilot.model.engine import Engine
from jpilot.plugins.api import CompletionRequest

SERVER = [sys.executable, "-m", "jpilot.lsp.cli", "serve", "--log-level", "WARNING"]


@pytest.fixture(scope="session")
def tiny_engine(tiny_bundle: Path) -> Engine:
    """An engine on the tiny bundle, in the test process, to compute expected answers."""
    return Engine(str(tiny_bundle))


def expected(
    engine: Engine,
    uri: str,
    text: str,
    offset: int,
    language: str = "plaintext",
    options: dict[str, Any] | None = None,
) -> Outcome:
    """Run the server's pipeline directly on what the client sent (greedy, deterministic)."""
    settings, errors = parse_settings(options)
    assert not errors
    host = default_host()
    request = CompletionRequest(
        uri=uri, language_id=language, text=text, offset=offset, version=1, settings=settings
    )
    return complete(engine, host, request, threading.Event())
