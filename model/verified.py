"""Remember the sha256 of big bundle files, so that a server start does not re-hash them.

A 6B-parameter fp16 bundle is about 12 GB; hashing it takes 10-50 s on these machines,
at every start of the language server. The checksum guards against corruption and
half-copied folders, not against an attacker (the manifest beside it could be rewritten
as easily), so a file whose size, modification time and inode are unchanged since it was
last hashed keeps its digest. The record is a small JSON file in the user's cache folder,
replaced atomically; anything wrong with it means "hash again".
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

MIN_BYTES = 64 << 20  # smaller files are hashed every time (well under a second)
MAX_RECORDS = 256  # files remembered; the oldest records go first


def record_path() -> Path:
    """Return the JSON file that holds the remembered digests."""
    from platformdirs import user_cache_dir

    return Path(os.environ.get("JPILOT_CACHE_DIR") or user_cache_dir("jpilot")) / "verified.json"


def digest(path: Path, compute: Callable[[Path], str]) -> str:
    """Return path's sha256: remembered if the file is unchanged, else `compute(path)`."""
    stat = path.stat()
    if stat.st_size < MIN_BYTES:
        return compute(path)
    key = str(path.resolve())
    stamp = [stat.st_size, stat.st_mtime_ns, stat.st_ino]
    records = _load()
    known = records.get(key)
    if (
        isinstance(known, dict)
        and known.get("stamp") == stamp
        and isinstance(known.get("sha256"), str)
    ):
        return str(known["sha256"])
    value = compute(path)
    records.pop(key, None)
    records[key] = {"stamp": stamp, "sha256": value}
    _save(dict(list(records.items())[-MAX_RECORDS:]))
    return value


def _load() -> dict:
    """Read the records; an unreadable file counts as empty."""
    try:
        data = json.loads(record_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save(records: dict) -> None:
    """Write the records atomically; failing to write only costs a re-hash next time."""
    target = record_path()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=target.parent, delete=False, suffix=".tmp") as fh:
            json.dump(records, fh)
        os.replace(fh.name, target)
    except OSError:
        pass
