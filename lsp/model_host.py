"""Load the model bundle in the background and say clearly when it cannot be loaded.

The server never waits on a load in `initialize`: `load()` starts a thread and returns
a Future; completion requests wait on it for a bounded time. A missing or broken model
leaves `error` holding a message that says how to fix it, and the non-model features
keep running.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, wait

from jpilot.model.engine import Engine, EngineConfig
from jpilot.model.errors import ModelError
from jpilot.plugins.settings import ModelSettings

log = logging.getLogger(__name__)


class ModelHost:
    """Holds the engine (or the reason there is none) for the current model settings."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.error: str | None = None
        self.key: tuple[str, str, int] | None = None
        self.ready: Future[Engine | None] = Future()
        self.load_seconds = 0.0

    @property
    def state(self) -> str:
        """Return "loading", "ready" or "failed"."""
        if not self.ready.done():
            return "loading"
        return "ready" if self.engine is not None else "failed"

    def load(self, settings: ModelSettings) -> Future[Engine | None]:
        """Start loading the bundle the settings name, unless it is already loaded."""
        key = (settings.path, settings.device, settings.threads)
        if key == self.key:
            return self.ready
        old = self.engine
        self.key, self.engine, self.error = key, None, None
        future: Future[Engine | None] = Future()
        self.ready = future
        thread = threading.Thread(
            target=self._load, args=(settings, future, old), name="jpilot-model-load", daemon=True
        )
        thread.start()
        return future

    def _load(self, settings: ModelSettings, future: Future, old: Engine | None) -> None:
        """Load on this thread and resolve the future (never raises)."""
        if old is not None:
            old.close()
        t0 = time.monotonic()
        engine: Engine | None = None
        try:
            from jpilot.model.default import default_bundle_path
            from jpilot.model.store import resolve_bundle

            # a bundle folder, or the name of one `jpilot model pull` installed
            path = str(resolve_bundle(settings.path) if settings.path else default_bundle_path())
            engine = Engine(path, EngineConfig(device=settings.device, threads=settings.threads))
            log.info("model %s loaded in %.2f s", path, time.monotonic() - t0)
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

    def close(self, wait_s: float = 30.0) -> None:
        """Release the engine, first letting a load in progress finish (a process that
        exits while ONNX Runtime builds a session aborts)."""
        wait([self.ready], timeout=wait_s)
        if self.engine is not None:
            self.engine.close()
            self.engine = None
