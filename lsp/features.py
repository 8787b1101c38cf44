"""LSP handlers for the docs and debug plugins: hover, code actions, commands, diagnostics.

Each handler snapshots the document, calls the plugins' hooks off the event loop on a
dedicated thread (model work takes the engine's lock, so it never overlaps a
completion's decode step), converts the plugins' offsets to LSP ranges with the
document's position codec, and answers only if the document is still at the version
it looked at. Diagnostics run on open and save (jpilot.lsp.documents), debounced, and
are cancelled by any edit.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcContentModified
from pygls.workspace import TextDocument

from jpilot.lsp.plugins import hover_markdown
from jpilot.lsp.positions import offset_at
from jpilot.lsp.server import JpilotServer, request_position
from jpilot.plugins.api import CompletionRequest
from jpilot.plugins.features import Edit, Finding

log = logging.getLogger(__name__)
EXPLAIN_COMMAND = "jpilot.explain"
_WORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jpilot-features")


async def off_loop(fn: Any, cancel: threading.Event, *args: Any) -> Any:
    """Run fn(*args) on the features thread; a cancelled request sets `cancel`."""
    try:
        return await asyncio.wrap_future(_WORKER.submit(fn, *args))
    except asyncio.CancelledError:
        cancel.set()  # $/cancelRequest: model work checks this at every step
        raise


def to_range(doc: TextDocument, request: CompletionRequest, start: int, end: int) -> types.Range:
    """Convert offsets into `request.text` to an LSP range in the client's encoding."""
    return types.Range(request_position(doc, request, start), request_position(doc, request, end))


def workspace_edit(
    doc: TextDocument, request: CompletionRequest, edits: list[Edit]
) -> types.WorkspaceEdit:
    """Turn plugin edits into a versioned WorkspaceEdit for one document."""
    changes = [types.TextEdit(to_range(doc, request, e.start, e.end), e.text) for e in edits]
    identifier = types.OptionalVersionedTextDocumentIdentifier(uri=doc.uri, version=doc.version)
    return types.WorkspaceEdit(
        document_changes=[types.TextDocumentEdit(text_document=identifier, edits=changes)]
    )


def diagnostic(doc: TextDocument, request: CompletionRequest, finding: Finding) -> types.Diagnostic:
    """Turn a plugin finding into an LSP diagnostic from source "jpilot"."""
    return types.Diagnostic(
        range=to_range(doc, request, finding.start, finding.end),
        message=finding.message,
        severity=types.DiagnosticSeverity(finding.severity),
        code=finding.code,
        source="jpilot",
        data=finding.data,
    )


def unchanged(ls: JpilotServer, request: CompletionRequest) -> TextDocument:
    """Return the document if it is still at the request's version, else raise -32801."""
    doc = ls.document(request.uri)
    if doc is None or doc.version != request.version:
        raise JsonRpcContentModified("the document changed while jpilot was working on it")
    return doc


class Diagnostics:
    """Debounced, cancellable diagnostics per document."""

    def __init__(self, ls: JpilotServer) -> None:
        self.ls = ls
        self.running: dict[str, threading.Event] = {}

    def cancel(self, uri: str) -> None:
        """Cancel the pending or running diagnostics of a document."""
        event = self.running.pop(uri, None)
        if event is not None:
            event.set()

    def schedule(self, uri: str) -> None:
        """Start (after the debounce) a fresh diagnostics run for a document."""
        self.cancel(uri)
        cancel = self.running[uri] = threading.Event()
        asyncio.get_running_loop().create_task(self._run(uri, cancel))

    def clear(self, uri: str) -> None:
        """Cancel and remove a closed document's diagnostics."""
        self.cancel(uri)
        self.ls.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=[])
        )

    async def _run(self, uri: str, cancel: threading.Event) -> None:
        """Compute and publish; log a failure rather than let the task die unseen."""
        try:
            await self._publish(uri, cancel)
        except Exception:
            log.exception("diagnostics for %s failed", uri)

    async def _publish(self, uri: str, cancel: threading.Event) -> None:
        """Compute and publish; give up quietly if cancelled or the document changed."""
        await asyncio.sleep(self.ls.settings.hints.debounce_ms / 1000)
        doc = self.ls.document(uri)
        if doc is None or cancel.is_set():
            return
        request = self.ls.snapshot(doc, types.Position(line=0, character=0))
        if not request.whole:  # over context.largeFileKb: no whole-file pass
            self.ls.stats.whole_file_skipped += 1
            return
        engine = await self.ls.wait_for_model()
        host = self.ls.host
        found = await off_loop(
            lambda: host.each(
                "jpilot_diagnostics",
                request=request,
                engine=self.ls.model_for(request, engine),
                cancel=cancel,
            ),
            cancel,
        )
        current = self.ls.document(uri)
        if cancel.is_set() or current is None or current.version != request.version:
            return
        findings = sorted(((p, f) for p, fs in found for f in fs), key=lambda pf: -pf[1].score)
        published = []  # most surprising first; a finding that cannot be converted is skipped
        for plugin, finding in findings:
            try:
                published.append(diagnostic(current, request, finding))
            except Exception as exc:
                host.fault(plugin, "jpilot_diagnostics", f"a Finding could not be sent: {exc}")
        self.ls.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, version=request.version, diagnostics=published)
        )
        if self.running.get(uri) is cancel:
            del self.running[uri]


def register_features(server: JpilotServer) -> Diagnostics:
    """Register hover, code actions and the explain command; return the diagnostics runner
    (the document handlers in jpilot.lsp.documents trigger it)."""
    diagnostics = Diagnostics(server)

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    async def hover(ls: JpilotServer, params: types.HoverParams) -> types.Hover | None:
        doc = ls.document(params.text_document.uri)
        if doc is None:
            return None
        request = ls.snapshot(doc, params.position)
        engine, cancel = ls.model.engine, threading.Event()  # no waiting on a model load
        markdown = await off_loop(
            lambda: hover_markdown(ls.host, request, ls.model_for(request, engine), cancel),
            cancel,
        )
        if not markdown:
            return None
        unchanged(ls, request)
        return types.Hover(types.MarkupContent(kind=types.MarkupKind.Markdown, value=markdown))

    kinds = [types.CodeActionKind.QuickFix, types.CodeActionKind.RefactorRewrite]

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=kinds, resolve_provider=True),
    )
    def code_action(ls: JpilotServer, params: types.CodeActionParams) -> list[types.CodeAction]:
        doc = ls.document(params.text_document.uri)
        if doc is None:
            return []
        request = ls.snapshot(doc, params.range.start)
        end = offset_at(doc.source, params.range.end, doc.position_codec) - request.text_start
        end = min(end, len(request.text))
        found = ls.host.each(
            "jpilot_code_actions",
            request=request,
            start=request.offset,
            end=max(end, request.offset),
            diagnostics=params.context.diagnostics,
        )
        actions = []
        for plugin, proposals in found:
            for p in proposals:
                fixes = [d for d in params.context.diagnostics if d.code in p.diagnostic_codes]
                data = {**p.data, "plugin": plugin, "uri": doc.uri, "version": doc.version}
                edit = workspace_edit(doc, request, p.edits) if p.edits is not None else None
                actions.append(
                    types.CodeAction(
                        title=p.title, kind=p.kind, diagnostics=fixes or None, edit=edit,
                        is_preferred=p.preferred or None, data=None if edit else data,
                    )
                )  # fmt: skip
        return actions

    @server.feature(types.CODE_ACTION_RESOLVE)
    async def resolve(ls: JpilotServer, action: types.CodeAction) -> types.CodeAction:
        data = action.data if isinstance(action.data, dict) else {}
        doc = ls.document(str(data.get("uri", "")))
        if action.edit is not None or doc is None or doc.version != data.get("version"):
            return action  # already resolved, or stale: nothing to compute
        request = ls.snapshot(doc, types.Position(line=0, character=0))
        engine, cancel = await ls.wait_for_model(), threading.Event()
        edits = await off_loop(
            lambda: ls.host.first(
                "jpilot_resolve_action",
                request=request,
                data=data,
                engine=ls.model_for(request, engine),
                cancel=cancel,
            ),
            cancel,
        )
        current = unchanged(ls, request)
        action.edit = workspace_edit(current, request, edits or [])
        return action

    @server.command(EXPLAIN_COMMAND)
    async def explain(ls: JpilotServer, uri: str, range: Any) -> dict[str, Any] | None:
        """Arguments: the document URI and the selection's LSP range."""
        doc = ls.document(uri)
        if doc is None:
            return None
        first, last = _line_span(range)
        request = ls.snapshot(doc, types.Position(line=first, character=0))
        engine, cancel = await ls.wait_for_model(), threading.Event()
        result = await off_loop(
            lambda: ls.host.first(
                "jpilot_execute_command", command=EXPLAIN_COMMAND, request=request,
                arguments=[first, last], engine=ls.model_for(request, engine), cancel=cancel,
            ),
            cancel,
        )  # fmt: skip
        if result and result.get("explanation"):
            ls.window_show_message(
                types.ShowMessageParams(types.MessageType.Info, "jpilot: " + result["explanation"])
            )
        return result

    return diagnostics


def _line_span(selection: Any) -> tuple[int, int]:
    """Return the first and last 0-based lines of an LSP range (a dict or a Range)."""
    if isinstance(selection, dict):
        start, end = selection["start"], selection["end"]
        first, last, end_char = start["line"], end["line"], end["character"]
    else:
        first, last, end_char = selection.start.line, selection.end.line, selection.end.character
    if last > first and end_char == 0:
        last -= 1  # a selection ending at column 0 does not include that line
    return int(first), int(last)
