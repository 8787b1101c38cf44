"""The CLI (and so `jpilot serve`) parses arguments without importing torch or transformers."""

from __future__ import annotations

import subprocess
import sys


def test_building_the_parser_imports_no_training_stack() -> None:
    code = (
        "import sys, jpilot.lsp.cli as c; c.build_parser().parse_args(['serve']); "
        "print(sorted(m for m in ('torch', 'transformers', 'optimum') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
