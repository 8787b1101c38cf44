"""Hints from the bundle's trained bug detector (jpilot.model.detector), when it has one.

A bundle whose manifest records a detector (`jpilot model train-detector`) gets these
hints instead of the surprisal and slip hints: each names the likely bug, what the
detector would write instead, and its probability; the quick fix applies that repair.
The Detector (its own ONNX sessions) is opened once per bundle and kept. A pool's remote
engine has no local model file, so it keeps the surprisal hints.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from jpilot.model.detector.detector import Detector, Suspect
from jpilot.model.errors import ModelError

_lock = threading.Lock()
_open: dict[Path, Detector | None] = {}


def detector_for(engine: Any) -> Detector | None:
    """Return the engine's bundle's detector, or None (no bundle, no detector, or broken)."""
    bundle = getattr(engine, "bundle", None)
    if bundle is None or not getattr(bundle.manifest, "detector", None):
        return None
    with _lock:
        if bundle.path not in _open:
            try:
                _open[bundle.path] = Detector(bundle, getattr(engine.config, "threads", 0))
            except ModelError:
                _open[bundle.path] = None  # a broken detector: the surprisal hints instead
        return _open[bundle.path]


def message(suspect: Suspect) -> str:
    """Say what the detector suspects, what it would write, and how sure it is."""
    return (
        f"Possible bug: `{suspect.was}` here looks wrong; jpilot's bug detector would write "
        f"`{suspect.new}` ({suspect.probability:.0%} sure)"
    )
