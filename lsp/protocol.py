"""pygls's protocol with the JSON-RPC answers it leaves out (docs/DESIGN.md, Reliability).

- A request whose params do not match the LSP types gets exactly one -32602 answer
  (pygls only logs it), and the server keeps serving.
- A request before `initialize` gets -32002; a second `initialize` gets -32600.
- After `shutdown`, requests get -32600 (pygls drops them silently); `exit` still works.
- Notifications before `initialize` are dropped, except `exit`.
- Unknown requests get -32601 and unknown notifications are ignored (pygls does this).
- A request whose `$/cancelRequest` has been read is answered -32800, even when its
  result was ready before the event loop handled the cancel (`cancel_early`, called by
  the reader thread of jpilot.lsp.transport): no stale result goes out.
- didChange edits are applied with LSP's rules: a character past the end of its line
  clamps to the line end (pygls clamps to one before it), lines end only at \n, \r\n
  or \r, and a change for a document that was never opened is ignored.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any

import attrs
from cattrs import transform_error
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.json_rpc import RPCRequest
from pygls.protocol.language_server import lsp_method

from jpilot.lsp.positions import apply_change

log = logging.getLogger(__name__)
INVALID_REQUEST = -32600
INVALID_PARAMS = -32602
SERVER_NOT_INITIALIZED = -32002
REQUEST_CANCELLED = -32800
MAX_CANCELLED = 1024  # ids of cancelled requests remembered until answered


@attrs.define
class BadRequest:
    """A request whose params could not be read; answered with -32602."""

    id: Any
    method: str
    problem: str
    jsonrpc: str = "2.0"


class JpilotProtocol(LanguageServerProtocol):
    """LanguageServerProtocol plus the error answers listed in the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initialize_seen = False
        self._cancelled: OrderedDict[Any, None] = OrderedDict()  # read, not yet answered
        self._cancelled_lock = threading.Lock()

    def current_id(self) -> Any:
        """Return the id of the request whose handler is running, or None."""
        return self._ctx_msg_id.get(None)

    def cancel_early(self, msg_id: Any) -> None:
        """Remember that the client cancelled `msg_id` (called from the reader thread)."""
        if not isinstance(msg_id, int | str):
            return
        with self._cancelled_lock:
            self._cancelled[msg_id] = None
            while len(self._cancelled) > MAX_CANCELLED:
                self._cancelled.popitem(last=False)

    def forget_cancel(self, msg_id: Any) -> None:
        """Drop a remembered cancel: a new request reuses the id, or it was answered."""
        if isinstance(msg_id, int | str):
            with self._cancelled_lock:
                self._cancelled.pop(msg_id, None)

    def was_cancelled(self, msg_id: Any) -> bool:
        """Return whether a cancel for `msg_id` has been read."""
        with self._cancelled_lock:
            return isinstance(msg_id, int | str) and msg_id in self._cancelled

    def _execute_handler(
        self,
        msg_id: Any,
        handler: Any,
        callback: Any,
        args: tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> None:
        """Run a handler as pygls does, then forget the futures of finished handlers.

        pygls 2.1 files the future of every generator, coroutine or thread handler in
        `_request_futures` under the message id, and only a request's answer removes it.
        Notifications (didOpen, didChange, didClose) and the steps of pygls's generator
        handlers get a fresh uuid each, never removed: two Futures a keystroke, which the
        soak of issue 22 saw grow the server without bound. Pruned here, after the handler
        ran, not from a done callback: pygls's shutdown cancels the futures while it
        iterates over them. A request's answer is sent by its own callback either way.
        """
        super()._execute_handler(msg_id, handler, callback, args, kwargs)
        done = [key for key, future in self._request_futures.items() if future.done()]
        for key in done:
            del self._request_futures[key]

    def _send_response(
        self, msg_id: Any, result: Any = None, error: types.ResponseError | None = None
    ) -> None:
        """Send a response; a request whose cancel has been read gets -32800 instead."""
        if error is None and self.was_cancelled(msg_id):
            error = types.ResponseError(code=REQUEST_CANCELLED, message="cancelled")
        if error is not None:  # pygls keeps a request's result type until a result is sent
            self._result_types.pop(msg_id, None)
        self.forget_cancel(msg_id)
        super()._send_response(msg_id, result, error)

    def structure_message(self, data: dict[str, Any]) -> Any:
        """Structure a message; turn a request with bad params into a BadRequest."""
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            if not (isinstance(data, dict) and "id" in data and "method" in data):
                raise  # a notification or response: pygls logs it and carries on
            cause = exc.__cause__
            try:
                details = "; ".join(transform_error(cause)) if cause else str(exc)
            except Exception:
                details = str(cause or exc)
            return BadRequest(data["id"], str(data["method"]), details[:500])

    def handle_message(self, message: Any) -> None:
        """Answer the cases pygls leaves unanswered, then let pygls handle the rest."""
        if isinstance(message, BadRequest):
            log.warning("invalid params for %s (id %s)", message.method, message.id)
            self._error(message.id, INVALID_PARAMS, f"invalid params: {message.problem}")
            return
        method = getattr(message, "method", None)
        if isinstance(message, RPCRequest) and method is not None:
            if self._shutdown:
                self._error(message.id, INVALID_REQUEST, "the server is shutting down")
                return
            if method == types.INITIALIZE:
                if self.initialize_seen:
                    self._error(message.id, INVALID_REQUEST, "initialize was already called")
                    return
                self.initialize_seen = True
            elif not self.initialize_seen:
                self._error(message.id, SERVER_NOT_INITIALIZED, "send initialize first")
                return
        elif method is not None and not self.initialize_seen and method != types.EXIT:
            log.warning("dropped %s: it came before initialize", method)
            return
        super().handle_message(message)

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams) -> Any:
        """Apply edits with LSP's clamping rules (pygls mis-applies past-the-end ranges)."""
        for change in params.content_changes:
            apply_change(self.workspace, params.text_document, change)
        if (handler := self.fm.features.get(types.TEXT_DOCUMENT_DID_CHANGE)) is not None:
            yield handler, (params,), None

    def _error(self, msg_id: Any, code: int, text: str) -> None:
        """Send one error response."""
        self._send_response(msg_id, error=types.ResponseError(code=code, message=text))
