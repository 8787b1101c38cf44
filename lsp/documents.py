"""The document lifecycle handlers: didOpen, didChange, didSave and didClose.

pygls keeps the text itself (its workspace applies every change before these run); here
each event cancels what the old text made stale and schedules what the new text needs.
"""

from __future__ import annotations

from lsprotocol import types

from jpilot.lsp.features import Diagnostics
from jpilot.lsp.server import JpilotServer


def register_documents(server: JpilotServer, diagnostics: Diagnostics) -> None:
    """Register the four document notifications on `server`."""

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: JpilotServer, params: types.DidOpenTextDocumentParams) -> None:
        diagnostics.schedule(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: JpilotServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.cancel_inflight(params.text_document.uri)  # its answer would be stale
        diagnostics.cancel(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: JpilotServer, params: types.DidSaveTextDocumentParams) -> None:
        diagnostics.schedule(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: JpilotServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.cancel_inflight(params.text_document.uri)
        ls.type_through.forget(params.text_document.uri)
        diagnostics.clear(params.text_document.uri)
