"""Server pieces that need no client: model waiting, logging filter."""

from __future__ import annotations

import asyncio
import logging
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
