"""The protocol fuzzer (tests/e2e/lsp_fuzz.py), briefly: one server per position encoding.

The long run is scripts/fuzz_lsp.py (its result: docs/BENCHMARKS.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test
from lsp_fuzz import LspMachine, start_server


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8"])
def test_random_traffic_keeps_the_server_alive_answering_and_in_sync(
    tiny_bundle: Path, encoding: str
):
    client = start_server(str(tiny_bundle), encoding)
    try:
        machine = type("Machine", (LspMachine,), {"client": client, "encoding": encoding})
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=12,
                stateful_step_count=25,
                deadline=None,
                derandomize=True,  # the same sequences on every CI run
                suppress_health_check=list(HealthCheck),
            ),
        )
        assert client.proc.poll() is None
    finally:
        client.close()
