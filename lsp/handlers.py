"""Register jpilot's LSP methods on a JpilotServer: one thin handler per method.

pygls derives the advertised capabilities from these registrations (inline completion
needs its options passed explicitly, or pygls 2.1 does not advertise it).
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from typing import Any

from lsprotocol import types

from jpilot.lsp.documents import register_documents
from jpilot.lsp.features import register_features
from jpilot.lsp.plugins import PluginHost
from jpilot.lsp.server import JpilotServer, watch_parent
from jpilot.model.abilities import FEATURES, feature_on

log = logging.getLogger(__name__)
STATUS_COMMAND = "jpilot.status"
STARTED = time.monotonic()


def build_server(host: PluginHost | None = None) -> JpilotServer:
    """Return a server with every jpilot handler registered."""
    server = JpilotServer(host)
    diagnostics = register_features(server)  # hover, code actions, explain, diagnostics
    register_documents(server, diagnostics)  # didOpen, didChange, didSave, didClose

    @server.feature(types.INITIALIZE)
    def initialize(ls: JpilotServer, params: types.InitializeParams) -> None:
        ls.apply_settings(params.initialization_options)  # starts loading the model
        watch_parent(ls, params.process_id)

    @server.feature(types.INITIALIZED)
    async def initialized(ls: JpilotServer, params: types.InitializedParams) -> None:
        ls.flush_setting_errors()
        if notice := ls.host.failure_notice():  # plugins blocked at load
            ls.popup("plugin-load", notice, types.MessageType.Warning)
        await pull_configuration(ls)
        await report_model_load(ls)

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(
        ls: JpilotServer, params: types.DidChangeConfigurationParams
    ) -> None:
        before = ls.model.ready
        if isinstance(params.settings, dict) and params.settings:
            ls.apply_settings(params.settings, ls.settings)
            ls.flush_setting_errors()
        else:
            await pull_configuration(ls)
        if ls.model.ready is not before:  # the model settings changed: a new load
            await report_model_load(ls)

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(
        ls: JpilotServer, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList:
        return types.InlineCompletionList(items=await suggestion_items(ls, params, inline=True))

    @server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions())
    async def completion(ls: JpilotServer, params: types.CompletionParams) -> types.CompletionList:
        items = await suggestion_items(ls, params, inline=False)
        return types.CompletionList(is_incomplete=True, items=items)

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: JpilotServer, params: Any) -> None:
        ls.cancel_inflight()  # in-flight requests are answered -32800 by pygls

    @server.feature(types.EXIT)
    def exit_(ls: JpilotServer, params: Any) -> None:
        ls.exit_code = 0 if ls.protocol._shutdown else 1

    @server.command(STATUS_COMMAND)
    def status(ls: JpilotServer, *args: Any) -> dict[str, Any]:
        """Arguments: none, or {"documents": true} to add the open documents' digests."""
        answer = status_of(ls)
        if args and isinstance(args[0], dict) and args[0].get("documents") is True:
            answer["documents"] = documents_of(ls)
        return answer

    return server


async def suggestion_items(
    ls: JpilotServer,
    params: types.InlineCompletionParams | types.CompletionParams,
    inline: bool,
) -> list[Any]:
    """Run the pipeline and let the plugins turn its suggestion into inline or list items."""
    shown = await ls.suggest(params.text_document.uri, params.position)
    if shown is None:
        return []
    hook, range_ = (
        ("jpilot_inline_items", shown.inline_range)
        if inline
        else ("jpilot_completion_items", shown.word_range)
    )
    items = ls.host.concat(hook, request=shown.request, suggestion=shown.suggestion, range=range_)
    if ls.superseded(params.text_document.uri, ls.rpc.current_id()):
        return []  # a newer request was read while the items were made
    mark_first(ls, items)
    return items


def mark_first(ls: JpilotServer, items: list) -> None:
    """Remember when the first suggestion of this process was sent."""
    if items and ls.stats.first_completion_s is None:
        ls.stats.first_completion_s = time.monotonic() - STARTED


def features_on(ls: JpilotServer) -> dict[str, bool]:
    """Return which model-written features are on: explicit settings, else measured ability."""
    docs, hints = ls.settings.docs, ls.settings.hints
    settings = {"summary": docs.summary, "docstring": docs.docstring, "explain": docs.explain,
                "hints": hints.surprisal}  # fmt: skip
    abilities = ls.model_abilities()
    return {f: feature_on(settings[f], abilities, f) for f in FEATURES}


def status_of(ls: JpilotServer) -> dict[str, Any]:
    """Return the model state, plugins, settings problems and counters as JSON data."""
    engine = ls.model.engine
    plugin_facts = {name: facts for name, facts in ls.host.each("jpilot_status")}
    return {
        "version": ls.version,
        "model": {
            "state": ls.model.state,
            "error": ls.model.error or getattr(engine, "last_error", None),
            "path": str(engine.bundle.path) if engine else None,
            "pool": engine.status() if getattr(engine, "remote", False) else None,
            "load_seconds": ls.model.load_seconds,
            "cache_hits": engine.cache.hits if engine else 0,
            "cache_misses": engine.cache.misses if engine else 0,
            # model-written feature -> on for this model and these settings (model/abilities.py)
            "features": features_on(ls),
        },
        "plugins": {
            "loaded": ls.host.names(),
            "failed": ls.host.failed,
            "disabled": sorted(ls.host.disabled),
            "errors": ls.host.errors,
            "last_error": ls.host.last_error,  # "plugin.hook" -> the latest failure
            "facts": plugin_facts,
        },
        "adaptive_level": ls.adaptive.level,
        "stats": ls.stats.as_dict(),
    }


def documents_of(ls: JpilotServer) -> dict[str, dict[str, Any]]:
    """Return each open document's version, length and sha256 of its UTF-8 text: what a
    test compares with its own copy (the protocol fuzzer, tests/e2e/test_lsp_fuzz.py)."""
    return {
        doc.uri: {
            "version": doc.version,
            "length": len(doc.source),
            "sha256": hashlib.sha256(doc.source.encode("utf-8", "surrogatepass")).hexdigest(),
        }
        for doc in list(ls.workspace.text_documents.values())
    }


async def pull_configuration(ls: JpilotServer) -> None:
    """Read the "jpilot" section with workspace/configuration, if the client offers it."""
    caps = ls.client_capabilities.workspace
    if caps is None or not caps.configuration:
        return
    try:
        params = types.ConfigurationParams(items=[types.ConfigurationItem(section="jpilot")])
        result = await ls.workspace_configuration_async(params)
    except Exception as exc:
        log.warning("workspace/configuration failed: %s", exc)
        return
    if result and isinstance(result[0], dict) and result[0]:
        ls.apply_settings(result[0], ls.settings)
    ls.flush_setting_errors()


async def report_model_load(ls: JpilotServer) -> None:
    """Report a model load in progress with $/progress, and its failure with a popup."""
    import asyncio

    token: str | None = None
    window = ls.client_capabilities.window
    if window is not None and window.work_done_progress:  # reported even when it was quick
        token = f"jpilot-model-{uuid.uuid4().hex[:8]}"
        try:
            await ls.work_done_progress.create_async(token)
            ls.work_done_progress.begin(
                token, types.WorkDoneProgressBegin(title="jpilot: loading the model")
            )
        except Exception as exc:
            log.info("client refused a progress token: %s", exc)
            token = None
    await asyncio.shield(asyncio.wrap_future(ls.model.ready))
    if token is not None:
        done = "model ready" if ls.model.engine is not None else "no model"
        ls.work_done_progress.end(token, types.WorkDoneProgressEnd(message=done))
    if ls.model.error:
        ls.popup("model", ls.model.error, types.MessageType.Error, force=True)
