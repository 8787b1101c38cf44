"""Load the model bundle in the background and say clearly when it cannot be loaded.

The server never waits on a load in `initialize`: `load()` starts a thread and returns
a Future; completion requests wait on it for a bounded time. A missing or broken model
leaves `error` holding a message that says how to fix it, and the non-model features
keep running. With `model.url` set the engine is a RemoteEngine (jpilot.model.remote):
loading it asks the pool for its model and tokenizer, and it scrubs secrets from every
text it sends.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, wait
from typing import Any

from jpilot.model.engine import Engine, EngineConfig
from jpilot.model.errors import ModelError
from jpilot.model.remote import RemoteEngine
from jpilot.plugins.secrets import scrub
from jpilot.plugins.settings import ModelSettings

log = logging.getLogger(__name__)


class ModelHost:
    """Holds the engine (or the reason there is none) for the current model settings."""

    def __init__(self) -> None:
        self.engine: Engine | RemoteEngine | None = None
        self.error: str | None = None
        self.key: tuple[Any, ...] | None = None
        self.ready: Future[Engine | RemoteEngine | None] = Future()
        self.load_seconds = 0.0
        self.on_error: Callable[[str], None] | None = None  # a remote engine's faults

    @property
    def state(self) -> str:
        """Return "loading", "ready" or "failed"."""
        if not self.ready.done():
            return "loading"
        return "ready" if self.engine is not None else "failed"

    def load(self, settings: ModelSettings) -> Future[Engine | None]:
        """Start loading the bundle the settings name, unless it is already loaded."""
        key = (settings.path, settings.device, settings.threads, settings.url, settings.name,
               settings.token_env)  # fmt: skip
        if key == self.key:
            return self.ready
        old = self.engine
        self.key, self.engine, self.error = key, None, None
        future: Future[Engine | RemoteEngine | None] = Future()
        self.ready = future
        thread = threading.Thread(
            target=self._load, args=(settings, future, old), name="jpilot-model-load", daemon=True
        )
        thread.start()
        return future

    def _load(
        self, settings: ModelSettings, future: Future, old: Engine | RemoteEngine | None
    ) -> None:
        """Load on this thread and resolve the future (never raises)."""
        if old is not None:
            old.close()
        t0 = time.monotonic()
        engine: Engine | RemoteEngine | None = None
        try:
            engine = self._remote(settings) if settings.url else self._local(settings)
        except ModelError as exc:
            self.error = f"jpilot has no model, so it makes no suggestions: {exc}"
        except Exception as exc:  # e.g. ORT failing on a corrupt graph
            self.error = (
                f"jpilot could not load the model {settings.path or '(embedded default)'}: "
                f"{type(exc).__name__}: {exc}. Re-export it with `jpilot model export`, or "
                "point the model.path setting at a working bundle"
            )
        if self.error:
            log.error("%s", self.error)
        self.load_seconds = time.monotonic() - t0
        if future is self.ready:
            self.engine = engine
        elif engine is not None:
            engine.close()  # settings changed while loading; a newer load owns the slot
        if not future.done():
            future.set_result(engine)

    def _local(self, settings: ModelSettings) -> Engine:
        """Load the bundle the settings name (raises ModelError and ORT's errors)."""
        from jpilot.model.default import default_bundle_path
        from jpilot.model.store import resolve_bundle

        t0 = time.monotonic()
        # a bundle folder, or the name of one `jpilot model pull` installed
        path = str(resolve_bundle(settings.path) if settings.path else default_bundle_path())
        engine = Engine(path, EngineConfig(device=settings.device, threads=settings.threads))
        log.info("model %s loaded in %.2f s", path, time.monotonic() - t0)
        return engine

    def _remote(self, settings: ModelSettings) -> RemoteEngine:
        """Build the pool client and learn the pool's model (a pool that is down: later)."""
        engine = RemoteEngine(
            settings.url,
            token=os.environ.get(settings.token_env, ""),
            model=settings.name,
            guard=lambda text: scrub(text)[0],
            on_error=self._fault,
            token_env=settings.token_env,
        )
        if engine.connect():
            log.info("using the pool at %s (model %r)", settings.url, engine.model)
        return engine

    def _fault(self, message: str) -> None:
        """Pass a remote engine's fault on to whoever shows it."""
        if self.on_error is not None:
            self.on_error(message)

    def close(self, wait_s: float = 30.0) -> None:
        """Release the engine, first letting a load in progress finish (a process that
        exits while ONNX Runtime builds a session aborts)."""
        if self.key is not None:  # a load was started (before initialize, none was)
            wait([self.ready], timeout=wait_s)
        if self.engine is not None:
            self.engine.close()
            self.engine = None
