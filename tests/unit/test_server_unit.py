"""Server pieces that need no client: model waiting, logging filter."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Future

from lsprotocol import types

from jpilot.lsp.commands import _drop_pygls_args
from jpilot.lsp.plugins import PluginHost
from jpilot.lsp.server import JpilotServer


def test_a_cancelled_wait_does_not_cancel_the_model_load():
    server = JpilotServer(PluginHost())
    server.model.ready = Future()  # a load in progress

    async def scenario() -> None:
        waiter = asyncio.ensure_future(server.wait_for_model())
        await asyncio.sleep(0.01)
        waiter.cancel()  # e.g. $/cancelRequest while the model loads
        await asyncio.gather(waiter, return_exceptions=True)

    asyncio.run(scenario())
    assert not server.model.ready.cancelled()
    server.model.ready.set_result(None)  # the loader can still finish


def test_pygls_records_lose_their_arguments():
    record = logging.LogRecord("pygls.protocol", logging.ERROR, "", 0, "body %s", ("code",), None)
    _drop_pygls_args(record)
    assert record.getMessage() == "body %s"
    mine = logging.LogRecord("jpilot.lsp", logging.INFO, "", 0, "model %s", ("x",), None)
    _drop_pygls_args(mine)
    assert mine.getMessage() == "model x"


def test_a_popup_is_not_repeated_within_the_minute(monkeypatch):
    server = JpilotServer(PluginHost())
    shown: list[str] = []
    monkeypatch.setattr(server, "window_show_message", lambda params: shown.append(params.message))
    error = types.MessageType.Error
    server.popup("model", "no model: A", error, force=True)
    server.popup("model", "no model: A", error, force=True)  # e.g. settings applied twice
    server.popup("model", "no model: A", error)
    assert shown == ["no model: A"]
    server.popup("model", "no model: B", error, force=True)  # a new problem shows at once
    server.popup("model", "no model: C", error)  # an unforced one waits out the minute
    server.popup("settings", "bad setting", types.MessageType.Warning)  # kinds are apart
    assert shown == ["no model: A", "no model: B", "bad setting"]


def test_the_completion_budget_starts_when_the_model_is_ready(monkeypatch):
    from types import SimpleNamespace

    from jpilot.lsp.pipeline import Outcome
    from jpilot.plugins.api import CompletionRequest
    from jpilot.plugins.settings import Settings

    server = JpilotServer(PluginHost())
    settings = Settings()
    request = CompletionRequest("file:///a.py", "python", "x = ", 4, 1, settings)
    doc = SimpleNamespace(version=1)
    monkeypatch.setattr(server, "document", lambda uri: doc)
    monkeypatch.setattr(server, "snapshot", lambda d, position: request)
    deadlines: list[float] = []

    class Engine:
        def submit(self, fn, engine, host, req, cancel, deadline):
            deadlines.append(deadline)
            done: Future = Future()
            done.set_result(Outcome(None, "empty"))
            return done

    server.model.ready = Future()  # a load in progress
    ready_at: list[float] = []

    async def scenario() -> None:
        waiting = asyncio.ensure_future(server.suggest("file:///a.py", types.Position(0, 4)))
        await asyncio.sleep(0.3)  # the load takes longer than...
        server.model.engine = Engine()
        ready_at.append(time.monotonic())
        server.model.ready.set_result(server.model.engine)
        assert await waiting is None

    settings.completion.timeout_ms = 100  # ...the whole completion budget
    asyncio.run(scenario())
    assert deadlines and deadlines[0] >= ready_at[0] + 0.1


def test_notifications_leave_no_handler_futures_behind():
    """pygls files a future per notification handler and never drops it (issue 22's soak):
    after a didOpen and a storm of didChange, none is left."""

    server = JpilotServer(PluginHost())
    protocol = server.protocol
    written: list[bytes] = []
    protocol.set_writer(type("W", (), {"write": lambda self, b: written.append(b)})())

    def send(method: str, params: dict, msg_id: int | None = None) -> None:
        message = {"jsonrpc": "2.0", "method": method, "params": params}
        if msg_id is not None:
            message["id"] = msg_id
        protocol.handle_message(protocol.structure_message(message))

    async def scenario() -> None:
        send("initialize", {"capabilities": {}}, msg_id=1)
        await asyncio.sleep(0.05)
        send("initialized", {})
        uri = "file:///tmp/jpilot-unit/a.py"
        document = {"uri": uri, "languageId": "python", "version": 1, "text": "x = 1\n"}
        send("textDocument/didOpen", {"textDocument": document})
        at = {"line": 0, "character": 0}
        for version in range(2, 202):
            change = {"range": {"start": at, "end": at}, "text": "#"}
            send("textDocument/didChange", {"textDocument": {"uri": uri, "version": version},
                                            "contentChanges": [change]})  # fmt: skip
        await asyncio.sleep(0.1)
        assert server.workspace.get_text_document(uri).source == "#" * 200 + "x = 1\n"

    asyncio.run(scenario())
    assert protocol._request_futures == {}
    assert any(b'"id": 1' in b or b'"id":1' in b for b in written)  # initialize was answered
