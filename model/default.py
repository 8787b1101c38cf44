"""Where the embedded default model lives, and the message when it is missing."""

from __future__ import annotations

from pathlib import Path

from jpilot.model.errors import ModelError

DEFAULT_BUNDLE = Path(__file__).parent / "default"


def default_bundle_path() -> Path:
    """Return the embedded default bundle folder; raise ModelError if it is not there."""
    if not (DEFAULT_BUNDLE / "jpilot.json").is_file():
        raise ModelError(
            f"the embedded default model is missing from {DEFAULT_BUNDLE}; reinstall jpilot "
            "from a full checkout, train one with `jpilot model train --out DIR`, or point "
            "the model setting at a bundle made by `jpilot model export`"
        )
    return DEFAULT_BUNDLE
