"""The jpilot language server: one thin handler per LSP method, fanning out to plugins.

Documents and positions come from pygls's workspace and position codec. Completions
run the pipeline (jpilot.lsp.pipeline) on the engine's own worker thread; a newer
request or an edit for the same document cancels the older request's generation, and
a result is only returned if the document is still at the version it was computed on
(otherwise -32801 ContentModified).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote

from lsprotocol import types
from pygls.exceptions import (
    FeatureNotificationError,
    FeatureRequestError,
    JsonRpcContentModified,
)
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path
from pygls.workspace import TextDocument
from pygls.workspace.position_codec import PositionCodec

from jpilot.lsp.adaptive import AdaptiveBudget
from jpilot.lsp.model_host import ModelHost
from jpilot.lsp.pipeline import Outcome, complete
from jpilot.lsp.plugins import PluginHost, default_host
from jpilot.lsp.positions import line_starts, offset_at, position_at, units, window
from jpilot.lsp.stats import Stats
from jpilot.lsp.typethrough import TypeThrough
from jpilot.model.version import package_version
from jpilot.plugins.api import CompletionRequest, OpenDocument, Suggestion, word_before
from jpilot.plugins.settings import Settings, parse_settings

if TYPE_CHECKING:
    from jpilot.lsp.protocol import JpilotProtocol

log = logging.getLogger(__name__)
MODEL_WAIT_S = 30.0  # a completion waits this long for a model still loading
POPUP_EVERY_S = 60.0  # the same kind of popup is shown at most this often
WINDOW_BEFORE = 1 << 17  # a large document's window: characters before the cursor,
WINDOW_AFTER = 1 << 15  # after it,
WINDOW_STEP = 1 << 15  # and the grid its start keeps to while the user types
EDITED = object()  # JpilotServer.newest: the newest message read for a document is an edit
SUPERSEDING = {  # messages that make a document's completion in flight stale
    types.TEXT_DOCUMENT_DID_CHANGE,
    types.TEXT_DOCUMENT_DID_CLOSE,
    types.TEXT_DOCUMENT_INLINE_COMPLETION,
    types.TEXT_DOCUMENT_COMPLETION,
}


def request_position(doc: TextDocument, request: CompletionRequest, offset: int) -> types.Position:
    """Return the LSP position of an offset into `request.text` (a window or all of `doc`)."""
    codec, line, units_ = doc.position_codec, request.first_line, request.first_units
    return position_at(request.text, offset, codec, line, units_)


@dataclass(frozen=True)
class Shown:
    """A suggestion to show, with its ranges in the client's position encoding."""

    request: CompletionRequest
    suggestion: Suggestion
    inline_range: types.Range  # the text the ghost text replaces
    word_range: types.Range  # from the start of the word before the cursor (completion items)

    @classmethod
    def at(cls, doc: TextDocument, request: CompletionRequest, suggestion: Suggestion) -> Shown:
        """Convert the suggestion's offsets into `request.text` to ranges with doc's codec."""
        s = suggestion
        start = request_position(doc, request, s.offset)
        end = request_position(doc, request, s.offset + s.replace)
        word = request_position(doc, request, s.offset - len(word_before(request.line_prefix)))
        return cls(request, suggestion, types.Range(start, end), types.Range(word, end))


class JpilotServer(LanguageServer):
    """A LanguageServer holding settings, plugins, the model and in-flight requests."""

    def __init__(self, host: PluginHost | None = None) -> None:
        from jpilot.lsp.protocol import JpilotProtocol

        super().__init__("jpilot", package_version(), protocol_cls=JpilotProtocol)
        self.settings = Settings()
        self.host = host or default_host()
        self.model = ModelHost()
        self.adaptive = AdaptiveBudget()
        self.stats = Stats()
        self.type_through = TypeThrough()
        self.inflight: dict[str, threading.Event] = {}  # uri -> newest request's cancel
        self.by_id: dict[Any, threading.Event] = {}  # request id -> its cancel
        self.newest: dict[str, Any] = {}  # uri -> id of the newest message read for it
        self.exit_code: int | None = None
        self._popups: dict[str, tuple[float, str]] = {}  # kind -> (when, text) shown last
        self._pending_errors: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None  # the server's, for other threads
        self.model.on_error = self.pool_fault
        self.host.on_error = self.plugin_fault

    @property
    def rpc(self) -> JpilotProtocol:
        """Return the protocol, typed as jpilot's."""
        return cast("JpilotProtocol", self.protocol)

    # ---------------------------------------------------------------- settings
    def apply_settings(self, data: Any, base: Settings | None = None) -> None:
        """Parse settings over `base`, queue the problems for a popup, reload what changed."""
        self.settings, errors = parse_settings(data, base, self.host.declared_settings())
        try:
            self._loop = asyncio.get_running_loop()  # handlers run on the server's loop
        except RuntimeError:
            pass
        self.host.set_enabled(self.settings.plugin_enabled())
        self._pending_errors += errors
        self.model.load(self.settings.model)

    def flush_setting_errors(self) -> None:
        """Show queued settings problems in one window/showMessage."""
        if self._pending_errors:
            text = "jpilot settings: " + "; ".join(self._pending_errors)
            self._pending_errors = []
            self.popup("settings", text, types.MessageType.Warning, force=True)

    def popup(self, kind: str, text: str, level: types.MessageType, force: bool = False) -> None:
        """Show a message, at most once a minute per kind; always log it.

        `force` shows a new text at once, but never repeats the text shown last within
        the minute (a model that fails to load once per settings change says so once).
        """
        log.log(logging.ERROR if level == types.MessageType.Error else logging.WARNING, text)
        now = time.monotonic()
        shown_at, shown = self._popups.get(kind, (-1e9, ""))
        if now - shown_at >= POPUP_EVERY_S or (force and text != shown):
            self._popups[kind] = (now, text)
            self.window_show_message(types.ShowMessageParams(type=level, message=text))

    def pool_fault(self, message: str) -> None:
        """Show a model pool's fault (called from any thread), rate-limited like every popup."""
        if self._loop is None or self._loop.is_closed():
            log.warning("%s", message)
            return
        level = types.MessageType.Warning
        self._loop.call_soon_threadsafe(self.popup, "pool", f"jpilot: {message}", level)

    def plugin_fault(self, message: str) -> None:
        """Show a plugin's failure in a hook (called from any thread), rate-limited."""
        if self._loop is None or self._loop.is_closed():
            return  # before initialize: the host has logged it
        level = types.MessageType.Warning
        self._loop.call_soon_threadsafe(self.popup, "plugin-error", message, level)

    def model_for(self, request: CompletionRequest, engine: Any) -> Any:
        """Return `engine` for model work on `request`, or None for an ignored file (or an
        ignore check that failed): it gets no model work, local or on a pool."""
        if engine is None or self.host.ignored(request):
            return None
        return engine

    def report_server_error(self, error: Exception, source: Any) -> None:
        """Log pygls-level errors; popups (rate-limited) only for failing notifications."""
        if source is FeatureRequestError:
            return  # the request's own error response already says it
        if source is not FeatureNotificationError:
            log.warning("protocol error (e.g. a malformed message): %s", error)
            return
        self.popup("server-error", f"jpilot: internal error: {error}", types.MessageType.Error)

    # ---------------------------------------------------------------- documents
    def document(self, uri: str) -> TextDocument | None:
        """Return an open document, or None; never reads a file from disk."""
        return self.workspace.text_documents.get(unquote(uri))

    def cancel_inflight(self, uri: str | None = None) -> None:
        """Cancel the in-flight generation for one document, or for all."""
        for key in [uri] if uri is not None else list(self.inflight):
            event = self.inflight.pop(key, None) if key is not None else None
            if event is not None:
                event.set()

    def early_notice(self, data: dict[str, Any]) -> None:
        """Cancel what a message just read makes stale, before the event loop handles it
        (called on the reader thread, jpilot.lsp.transport): a `$/cancelRequest` cancels
        its request, and an edit, close or newer completion for a document cancels the
        document's completion in flight. So no answer computed after it goes out."""
        params = data.get("params")
        if "id" in data and "method" in data:
            self.rpc.forget_cancel(data["id"])  # a new request, maybe reusing an id
        if not isinstance(params, dict):
            return
        if data.get("method") == types.CANCEL_REQUEST:
            msg_id = params.get("id")
            self.rpc.cancel_early(msg_id)
            if isinstance(msg_id, int | str) and (event := self.by_id.get(msg_id)) is not None:
                event.set()
        elif data.get("method") in SUPERSEDING:
            document = params.get("textDocument")
            uri = document.get("uri") if isinstance(document, dict) else None
            if not isinstance(uri, str):
                return
            if data["method"] == types.TEXT_DOCUMENT_DID_CLOSE:
                self.newest.pop(uri, None)
            else:  # a request's id, or EDITED
                self.newest[uri] = data.get("id", EDITED)
            if (event := self.inflight.get(uri)) is not None:
                event.set()

    def superseded(self, uri: str, msg_id: Any) -> bool:
        """Return whether a newer request for `uri` than request `msg_id` has been read;
        raise -32801 if an edit of it has."""
        newest = self.newest.get(uri, msg_id)
        if msg_id is None or newest == msg_id:
            return False
        if newest is EDITED:
            raise JsonRpcContentModified("the document changed while the suggestion was computed")
        return True

    def snapshot(self, doc: TextDocument, position: types.Position) -> CompletionRequest:
        """Freeze the buffer and cursor into a CompletionRequest; a document over
        context.largeFileKb gets a window around the cursor (`CompletionRequest.whole`)."""
        text = doc.source
        offset = offset_at(text, position, doc.position_codec)
        window = {}
        if len(text) > self.settings.context.large_file_kb * 1024:
            window = large_window(text, offset, position, doc.position_codec)
            lo, hi = window.pop("span")
            text, offset = text[lo:hi], offset - lo
        single, max_tokens, branching = self.adaptive.limits(self.settings.completion.max_tokens)
        others = [
            OpenDocument(d.uri, d.language_id or "", d.source, _path(d.uri))
            for d in self.workspace.text_documents.values()
            if d.uri != doc.uri
        ]
        roots = [p for p in (_path(f.uri) for f in self.workspace.folders.values()) if p]
        if not roots and self.workspace.root_uri and (root := _path(self.workspace.root_uri)):
            roots = [root]
        return CompletionRequest(
            uri=doc.uri,
            language_id=doc.language_id or "",
            text=text,
            offset=offset,
            version=doc.version,
            settings=self.settings,
            path=_path(doc.uri),
            open_documents=others,
            workspace_roots=roots,
            single_line=single,
            max_tokens=max_tokens,
            branching=branching,
            abilities=self.model_abilities(),
            **window,
        )

    def model_abilities(self) -> dict[str, float] | None:
        """Return the loaded model's measured abilities ({} if none recorded; None: no model)."""
        engine = self.model.engine
        if engine is None:
            return None
        manifest = getattr(getattr(engine, "bundle", None), "manifest", None)
        return dict(getattr(manifest, "abilities", None) or {})

    # ---------------------------------------------------------------- completion
    async def suggest(self, uri: str, position: types.Position) -> Shown | None:
        """Run the pipeline for a cursor; return what to show and where, or None."""
        doc = self.document(uri)
        if doc is None:
            log.info("completion for a document that is not open; ignored")
            return None
        request = self.snapshot(doc, position)
        self.cancel_inflight(uri)  # a newer request supersedes the older one
        msg_id = self.rpc.current_id()
        if self.superseded(uri, msg_id):  # read after this one, not yet handled
            return None
        if self.settings.completion.type_through and (rest := self.type_through.rest(request)):
            self.stats.typed_through += 1
            return Shown.at(doc, request, rest)
        self.stats.windowed += not request.whole
        cancel = self.inflight[uri] = threading.Event()
        if msg_id is not None:
            self.by_id[msg_id] = cancel
            if self.rpc.was_cancelled(msg_id):
                cancel.set()
        t0 = time.monotonic()
        try:
            engine = await self.wait_for_model()
            if engine is None or cancel.is_set():
                return None
            ready = time.monotonic()  # the budget starts here, not during a model load
            timeout = self.settings.completion.timeout_ms / 1000
            job = engine.submit(complete, engine, self.host, request, cancel, ready + timeout)
            outcome: Outcome = await asyncio.wrap_future(job)
        except asyncio.CancelledError:  # $/cancelRequest: stop the decode loop too
            cancel.set()
            self.stats.cancelled += 1
            raise
        finally:
            if self.inflight.get(uri) is cancel:
                del self.inflight[uri]
            self.by_id.pop(msg_id, None)
        self.stats.record(outcome, cancel.is_set(), time.monotonic() - t0)
        current = self.document(uri)
        if current is not doc or current.version != request.version:
            raise JsonRpcContentModified("the document changed while the suggestion was computed")
        if self.superseded(uri, msg_id) or cancel.is_set():
            return None
        if outcome.result is not None:  # the model ran: its latency counts for the budget
            cfg = self.settings.completion
            latency_ms = (time.monotonic() - ready) * 1000
            self.adaptive.record(latency_ms, cfg.latency_budget_ms, cfg.max_tokens)
        if outcome.suggestion is None:
            self.type_through.forget(uri)
            return None
        self.type_through.remember(request, outcome.suggestion)
        return Shown.at(doc, request, outcome.suggestion)

    async def wait_for_model(self) -> Any:
        """Return the engine, waiting a bounded time for a load in progress; None if none."""
        if self.model.state == "loading":
            try:
                # shield: a cancelled request must not cancel the load everyone waits on
                ready = asyncio.shield(asyncio.wrap_future(self.model.ready))
                await asyncio.wait_for(ready, MODEL_WAIT_S)
            except TimeoutError:
                return None
        if self.model.engine is None and self.model.error:
            self.popup("model", self.model.error, types.MessageType.Error)
        return self.model.engine


def large_window(
    text: str, offset: int, position: types.Position, codec: PositionCodec
) -> dict[str, Any]:
    """Return the CompletionRequest fields of a window of a large document around the
    cursor (and its span under "span"): O(window) work, apart from the cursor's line."""
    start, end = window(text, offset, WINDOW_BEFORE, WINDOW_AFTER, WINDOW_STEP)
    line = min(position.line, len(line_starts(text)) - 1)  # the cursor's, clamped
    between = text[start:offset]
    breaks = between.count("\n") + between.count("\r") - between.count("\r\n")
    line_start = max(text.rfind("\n", 0, start), text.rfind("\r", 0, start)) + 1
    return {
        "span": (start, end),
        "whole": False,
        "text_start": start,
        "first_line": line - breaks,
        "first_units": units(text[line_start:start], codec) if start else 0,
    }


def _path(uri: str) -> Path | None:
    """Return the local path of a file: URI, or None."""
    if not uri.startswith("file:"):
        return None
    path = to_fs_path(uri)
    return Path(path) if path else None


def watch_parent(server: JpilotServer, pid: int | None, every_s: float = 1.0) -> None:
    """End the process when the editor that started it dies (LSP processId)."""
    if not pid or pid == os.getpid():
        return

    def watch() -> None:
        while True:
            time.sleep(every_s)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                log.warning("the editor (pid %d) is gone; exiting", pid)
                os._exit(1)
            except PermissionError:
                pass  # alive, owned by someone else

    threading.Thread(target=watch, name="jpilot-parent-watch", daemon=True).start()
