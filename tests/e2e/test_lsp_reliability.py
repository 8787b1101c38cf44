"""Protocol-level reliability (docs/DESIGN.md, Reliability), through a raw JSON-RPC client."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from plugin_dists import GATE, install_fake
from rawclient import RawClient

URI = "file:///tmp/jpilot-rel/doc.txt"


@pytest.fixture
def raw() -> Iterator[RawClient]:
    """A server with no initialize sent yet."""
    client = RawClient()
    yield client
    client.close()


@pytest.fixture
def ready(tiny_bundle: Path) -> Iterator[RawClient]:
    """An initialized server on the tiny bundle."""
    client = RawClient()
    client.initialize({"model": {"path": str(tiny_bundle)}})
    yield client
    client.close()


@pytest.fixture
def gated(tiny_bundle: Path, tmp_path: Path) -> Iterator[tuple[RawClient, Path]]:
    """A server with the gate plugin (and a broken plugin) installed; the gate is shut."""
    site = install_fake(
        tmp_path / "site",
        "jpilot-test-plugins",
        {"gate": "jpilot_test_gate", "broken": "jpilot_no_such_module"},
        [GATE],
    )
    gate = tmp_path / "gate-open"
    client = RawClient(env={"PYTHONPATH": str(site), "JPILOT_TEST_GATE": str(gate)})
    client.initialize({"model": {"path": str(tiny_bundle)}})
    yield client, gate
    gate.touch()
    client.close()


def test_request_before_initialize_gets_32002(raw: RawClient):
    assert raw.request("shutdown")["error"]["code"] == -32002
    reply = raw.initialize({})
    assert "capabilities" in reply["result"]


def test_second_initialize_gets_32600(ready: RawClient):
    assert ready.request("initialize", {"capabilities": {}})["error"]["code"] == -32600
    assert ready.status()["version"]


@pytest.mark.parametrize(
    "params",
    [
        {"textDocument": {"uri": URI}, "position": {"line": -1, "character": 0}},
        {"position": {"line": 0, "character": 0}},  # no textDocument
        {"textDocument": {"uri": URI}, "position": {"line": "x", "character": 0}},
    ],
)
def test_invalid_params_get_exactly_one_32602(ready: RawClient, params: dict):
    msg_id = ready.send("textDocument/completion", params)
    assert ready.response(msg_id)["error"]["code"] == -32602
    assert ready.status()["model"]["state"] in ("loading", "ready")  # still serving
    assert [r["id"] for r in ready.responses].count(msg_id) == 1


def test_unknown_method_gets_32601_and_unknown_notification_is_ignored(ready: RawClient):
    ready.notify("$/somethingNew", {"x": 1})
    assert ready.request("jpilot/noSuchThing", {})["error"]["code"] == -32601
    assert ready.status()["version"]


def test_garbage_json_then_the_next_request_is_answered(ready: RawClient):
    ready.write(b"{not json")
    ready.write(b"[1, 2")
    assert ready.status()["version"]


def test_shutdown_then_requests_get_32600_and_exit_0(ready: RawClient):
    assert ready.request("shutdown")["result"] is None
    assert (
        ready.request("workspace/executeCommand", {"command": "jpilot.status"})["error"]["code"]
        == -32600
    )
    ready.notify("exit")
    assert ready.wait_exit() == 0


def test_exit_without_shutdown_gives_1(ready: RawClient):
    ready.notify("exit")
    assert ready.wait_exit() == 1


def test_stdin_eof_ends_the_process(ready: RawClient):
    assert ready.proc.stdin is not None
    ready.proc.stdin.close()
    assert ready.wait_exit() in (0, 1)


def test_never_opened_uri_gets_no_suggestion(ready: RawClient, tmp_path: Path):
    path = tmp_path / "secret_plan.txt"
    path.write_text("launch codes = 1234\n" * 5)
    reply = ready.response(ready.inline(path.as_uri(), 1, 3))
    assert reply["result"]["items"] == []


@pytest.mark.parametrize("broken", ["missing", "corrupt"])
def test_missing_or_broken_model_says_how_to_fix_and_keeps_serving(
    raw: RawClient, tiny_bundle: Path, tmp_path: Path, broken: str
):
    bundle = tmp_path / "bundle"
    if broken == "corrupt":
        shutil.copytree(tiny_bundle, bundle)
        (bundle / "model.onnx").write_bytes(b"not an onnx graph")
    raw.initialize({"model": {"path": str(bundle)}})
    raw.open(URI, "hello wor")
    assert raw.response(raw.inline(URI, 0, 9))["result"]["items"] == []
    status = raw.status()
    assert status["model"]["state"] == "failed"
    errors = [n["params"] for n in raw.notifications if n["method"] == "window/showMessage"]
    assert errors and errors[0]["type"] == 1
    assert "export" in errors[0]["message"]  # how to fix it
    assert str(bundle) in errors[0]["message"]
    assert raw.request("textDocument/completion", {
        "textDocument": {"uri": URI}, "position": {"line": 0, "character": 9}
    })["result"]["items"] == []  # fmt: skip
    raw.notify("workspace/didChangeConfiguration", {"settings": {"jpilot": {"model": {
        "path": str(bundle)}}}})  # fmt: skip  # the same broken model again
    raw.status()
    errors = [n["params"] for n in raw.notifications if n["method"] == "window/showMessage"]
    assert len(errors) == 1  # said once, not once per request or settings change


def test_invalid_settings_show_a_message_and_defaults_apply(raw: RawClient, tiny_bundle: Path):
    options = {"model": {"path": str(tiny_bundle)}, "completion": {"maxTokens": "many"}}
    raw.initialize(options)
    status = raw.status()  # answered after the popup: messages are sent in order
    assert status["model"]["state"] in ("loading", "ready")
    (popup,) = [n["params"] for n in raw.notifications if n["method"] == "window/showMessage"]
    assert popup["type"] == 2
    assert "completion.maxTokens" in popup["message"] and "using 48" in popup["message"]


def test_broken_plugin_is_blocked_and_the_rest_load(gated: tuple[RawClient, Path]):
    client, gate = gated
    plugins = client.status()["plugins"]
    assert "broken" in plugins["failed"] and "ModuleNotFoundError" in plugins["failed"]["broken"]
    assert plugins["loaded"] == ["completion", "context", "debug", "docs", "gate", "postprocess"]


def _wait_held(gate: Path) -> None:
    """Wait until the gate plugin says a request is held at the gate."""
    held = gate.with_name(gate.name + ".held")
    end = time.monotonic() + 20
    while not held.exists():
        assert time.monotonic() < end, "no request reached the gate"
        time.sleep(0.01)


def _wait_until_model_ready(client: RawClient) -> None:
    """Poll the status command until the model has loaded."""
    for _ in range(200):
        if client.status()["model"]["state"] == "ready":
            return
        time.sleep(0.05)
    raise AssertionError("the model never loaded")


def test_edit_during_computation_gets_content_modified(gated: tuple[RawClient, Path]):
    client, gate = gated
    _wait_until_model_ready(client)
    client.open(URI, "GATE hello wor")
    msg_id = client.inline(URI, 0, 14)  # the worker now waits at the gate
    client.notify(
        "textDocument/didChange",
        {
            "textDocument": {"uri": URI, "version": 2},
            "contentChanges": [{"text": "something else entirely"}],
        },
    )
    client.status()  # the edit has been handled once this is answered
    gate.touch()
    assert client.response(msg_id)["error"]["code"] == -32801


def test_cancel_request_answers_32800_and_frees_the_worker(gated: tuple[RawClient, Path]):
    client, gate = gated
    _wait_until_model_ready(client)
    client.open(URI, "GATE hello wor")
    first = client.inline(URI, 0, 14)
    others = [f"file:///tmp/jpilot-rel/queued{i}.txt" for i in range(50)]
    queued = []
    for uri in others:
        client.open(uri, "hello wor")
        queued.append(client.inline(uri, 0, 9))
    for msg_id in [first, *queued]:
        client.notify("$/cancelRequest", {"id": msg_id})
    for msg_id in [first, *queued]:
        assert client.response(msg_id)["error"]["code"] == -32800
    assert not gate.with_name(gate.name + ".passed").exists()  # answered while still held
    gate.touch()
    client.open("file:///tmp/jpilot-rel/after.txt", "hello wor")
    reply = client.response(client.inline("file:///tmp/jpilot-rel/after.txt", 0, 9))
    assert len(reply["result"]["items"]) == 1  # the worker is free again
    stats = client.status()["stats"]
    assert stats["generated"] == 1  # only "after": the cancelled ones never ran the model
    assert stats["superseded_computed"] == 0


def test_status_is_json(ready: RawClient):
    _wait_until_model_ready(ready)
    status = json.loads(json.dumps(ready.status()))  # survives a JSON round trip
    assert set(status) == {"version", "model", "plugins", "adaptive_level", "stats"}
    assert status["model"]["state"] == "ready" and status["model"]["error"] is None
    assert status["plugins"]["loaded"] == ["completion", "context", "debug", "docs", "postprocess"]
    assert not status["plugins"]["failed"]
    assert status["stats"]["requests"] == 0


def test_server_info_version_comes_from_package_metadata(raw: RawClient):
    from importlib.metadata import version

    info = raw.initialize({})["result"]["serverInfo"]
    assert info == {"name": "jpilot", "version": version("jpilot")}


def test_shutdown_answers_requests_in_flight(gated: tuple[RawClient, Path]):
    client, gate = gated
    _wait_until_model_ready(client)
    client.open(URI, "GATE hello wor")
    in_flight = client.inline(URI, 0, 14)
    _wait_held(gate)
    shutdown = client.send("shutdown")
    assert client.response(in_flight)["error"]["code"] == -32800
    assert client.response(shutdown)["result"] is None
    gate.touch()
    client.notify("exit")
    assert client.wait_exit() == 0


def test_the_editor_dying_ends_the_server(tiny_bundle: Path):
    import subprocess
    import sys

    editor = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)"])
    client = RawClient()
    try:
        client.request("initialize", {"processId": editor.pid, "capabilities": {}})
        editor.wait()
        assert client.wait_exit(timeout=10) != 0
    finally:
        client.close()


def _peak_rss_mb(pid: int) -> float:
    """Return a process's peak resident memory in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_huge_content_length_keeps_memory_bounded(ready: RawClient):
    assert ready.status()["version"]
    before = _peak_rss_mb(ready.proc.pid)
    size = 200 << 20  # claims 200 MiB, over the 64 MiB cap
    assert ready.proc.stdin is not None
    ready.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % size)
    chunk = b"x" * (1 << 20)
    for _ in range(size >> 20):
        ready.proc.stdin.write(chunk)
    ready.proc.stdin.flush()
    assert ready.status()["version"]  # the next request is answered
    assert _peak_rss_mb(ready.proc.pid) - before < 50


def test_over_budget_latency_shortens_suggestions_and_says_so(tiny_bundle: Path, tiny_engine):
    from conftest import expected

    client = RawClient()
    try:
        options = {"model": {"path": str(tiny_bundle)}, "completion": {"latencyBudgetMs": 1}}
        client.initialize(options)
        uri = "file:///tmp/jpilot-rel/adaptive.txt"
        client.open(uri, "hello wor")
        for _ in range(4):  # every one is over a 1 ms budget
            client.response(client.inline(uri, 0, 9))
        assert client.status()["adaptive_level"] == 1  # first step: no branching
        reply = client.response(client.inline(uri, 0, 9))
        plain = expected(tiny_engine, uri, "hello wor", 9, options={"completion": {"branches": 1}})
        assert plain.suggestion is not None
        assert [i["insertText"] for i in reply["result"]["items"]] == [plain.suggestion.text]
        for _ in range(3):
            client.response(client.inline(uri, 0, 9))
        assert client.status()["adaptive_level"] == 2  # then fewer tokens
        reply = client.response(client.inline(uri, 0, 9))
        shorter = expected(
            tiny_engine, uri, "hello wor", 9,
            options={"completion": {"maxTokens": 24, "branches": 1}},
        )  # fmt: skip
        assert shorter.suggestion is not None and shorter.result is not None
        assert len(shorter.result.tokens) == 24
        assert [i["insertText"] for i in reply["result"]["items"]] == [shorter.suggestion.text]
        time.sleep(0.2)
        log = b"".join(client.stderr).decode()
        assert (
            "over the 1 ms budget: suggestions now multi-line allowed, at most 48 tokens "
            "(the setting), no first-token branching" in log
        )
        assert "suggestions now multi-line allowed, at most 24 tokens, no first" in log
    finally:
        client.close()


@pytest.mark.parametrize("shape", ["20 MB of lines", "one 5 MB line"])
def test_huge_documents_are_answered_in_bounded_time(ready: RawClient, shape: str):
    if shape == "20 MB of lines":
        text = "value = compute(alpha, beta)  # a typical line of code\n" * 380_000 + "res"
    else:
        text = "x = '" + "abcdefghij" * 500_000 + "' + res"
    uri = "file:///tmp/jpilot-rel/huge.txt"
    ready.status()  # the model is loaded before the clock starts
    _wait_until_model_ready(ready)
    ready.open(uri, text)
    windowed = ready.status()["stats"]["windowed"]
    line = text.count("\n")
    reply = ready.response(ready.inline(uri, line, len(text) - text.rfind("\n") - 1), timeout=60)
    assert len(reply["result"]["items"]) == 1
    # Bounded by construction, not by a clock: the prompt came from a window around the
    # cursor, never from a pass over the whole document.
    assert ready.status()["stats"]["windowed"] == windowed + 1


@pytest.mark.parametrize("log_prompts", [False, True])
def test_logs_hold_no_buffer_text_unless_asked(tiny_bundle: Path, log_prompts: bool):
    marker = "zq_marker_in_the_buffer_zq"
    client = RawClient(log_level="DEBUG")
    try:
        options = {"model": {"path": str(tiny_bundle)}, "debug": {"logPrompts": log_prompts}}
        client.initialize(options)
        uri = "file:///tmp/jpilot-rel/private.txt"
        client.open(uri, f"{marker}\nhello wor")
        assert len(client.response(client.inline(uri, 1, 9))["result"]["items"]) == 1
        bad = {"textDocument": {"uri": uri, "x": marker}, "position": {"line": -1}}
        assert client.request("textDocument/completion", bad)["error"]["code"] == -32602
        client.write(
            b'{"jsonrpc": "2.0", "id": 99, "method": "' + marker.encode() + b'", "params": {'
        )
        assert client.status()["version"]
        client.request("shutdown")
        client.notify("exit")
        client.wait_exit()
        time.sleep(0.2)
        log = b"".join(client.stderr).decode()
        assert "DEBUG" in log  # the server did log at debug level
        assert (marker in log) is log_prompts  # with logPrompts on, the prompt is logged
    finally:
        client.close()


def test_a_newer_request_supersedes_the_older_one(gated: tuple[RawClient, Path]):
    client, gate = gated
    _wait_until_model_ready(client)
    client.open(URI, "GATE hello wor")
    older = client.inline(URI, 0, 14)
    _wait_held(gate)
    newer = client.inline(URI, 0, 14)
    client.status()  # answered after the server has read `newer`, which cancels `older`
    gate.touch()
    assert client.response(older)["result"]["items"] == []  # superseded: nothing to show
    assert len(client.response(newer)["result"]["items"]) == 1
    stats = client.status()["stats"]
    assert (stats["superseded"], stats["generated"], stats["superseded_computed"]) == (1, 1, 0)


def test_fixing_the_model_setting_needs_no_restart(raw: RawClient, tiny_bundle: Path):
    raw.initialize({"model": {"path": "/nonexistent/bundle"}})
    raw.open(URI, "hello wor")
    assert raw.response(raw.inline(URI, 0, 9))["result"]["items"] == []
    assert raw.status()["model"]["state"] == "failed"
    settings = {"jpilot": {"model": {"path": str(tiny_bundle)}}}
    raw.notify("workspace/didChangeConfiguration", {"settings": settings})
    _wait_until_model_ready(raw)
    assert len(raw.response(raw.inline(URI, 0, 9))["result"]["items"]) == 1
