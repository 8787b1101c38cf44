"""The local tokenizer of a RemoteEngine: the pool's own tokenizer.json, or the default's.

Its FIM markers are virtual: ids past any vocabulary, so no text encodes to them and
decode() drops them. The context plugin builds a FIM prompt with them as with any
bundle, and RemoteEngine.generate() splits the prompt on them into prefix and suffix
text; the server then formats FIM in its own model's layout. So the markers never
leave the machine, and the client needs no knowledge of the pool's FIM token names.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from jpilot.model.tokenizer import FimTokens, Tokenizer

VIRTUAL_FIM = FimTokens(prefix=1 << 30, suffix=(1 << 30) + 1, middle=(1 << 30) + 2)
EOS_NAMES = ("<|endoftext|>", "</s>", "<eos>", "<|end_of_text|>")


def fallback_tokenizer(folder: Path | None = None) -> Tokenizer:
    """Return a bundle's tokenizer (default: the embedded model's) with virtual FIM markers."""
    from jpilot.model.default import default_bundle_path

    folder = folder or default_bundle_path()
    raw = json.loads((folder / "jpilot.json").read_text(encoding="utf-8"))
    return Tokenizer(folder / "tokenizer.json", raw.get("eos_token_id"), VIRTUAL_FIM)


def tokenizer_from(data: bytes, fim: bool) -> Tokenizer:
    """Load a tokenizer.json the pool sent; virtual FIM markers if its model has FIM."""
    handle, name = tempfile.mkstemp(suffix=".json", prefix="jpilot-pool-tokenizer-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        probe = Tokenizer(Path(name), None, None)
        eos = next((i for t in EOS_NAMES if (i := probe.token_to_id(t)) is not None), None)
        return Tokenizer(Path(name), eos, VIRTUAL_FIM if fim else None)
    finally:
        os.unlink(name)
