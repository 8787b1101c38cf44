"""Decide whether a file is excluded by `.gitignore` / `.jpilotignore` (or is a secrets file).

Ignore files are read from the workspace root down to the file's folder, each matched
against the path relative to its own folder, and cached by modification time. Only
ignore files inside a workspace root are read; the document itself never is.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pathspec

IGNORE_FILES = (".gitignore", ".jpilotignore")
# Never sent to a model, whatever the ignore files say.
ALWAYS_IGNORED = pathspec.GitIgnoreSpec.from_lines(
    [".env", ".env.*", "*.pem", "*.key", "id_rsa*", "id_ed25519*", ".netrc", ".git/"]
)

_cache: dict[Path, tuple[float, pathspec.GitIgnoreSpec | None]] = {}
_lock = threading.Lock()


def _spec(ignore_file: Path) -> pathspec.GitIgnoreSpec | None:
    """Return the parsed ignore file, re-read when its mtime changes; None if absent."""
    try:
        mtime = ignore_file.stat().st_mtime
    except OSError:
        return None
    with _lock:
        cached = _cache.get(ignore_file)
        if cached is not None and cached[0] == mtime:
            return cached[1]
    try:
        lines = ignore_file.read_text(encoding="utf-8", errors="replace").splitlines()
        spec: pathspec.GitIgnoreSpec | None = pathspec.GitIgnoreSpec.from_lines(lines)
    except (OSError, ValueError):
        spec = None
    with _lock:
        _cache[ignore_file] = (mtime, spec)
    return spec


def is_ignored(path: Path, roots: list[Path]) -> bool:
    """Return True if `path` is a secrets file or ignored by an ignore file under a root."""
    if ALWAYS_IGNORED.match_file(path.name):
        return True
    root = next((r for r in roots if path.is_relative_to(r)), None)
    if root is None:
        return False
    relative = path.relative_to(root)
    if ALWAYS_IGNORED.match_file(relative.as_posix()):
        return True
    folder = root
    for depth in range(len(relative.parts)):
        for name in IGNORE_FILES:
            spec = _spec(folder / name)
            if spec is not None and spec.match_file(Path(*relative.parts[depth:]).as_posix()):
                return True
        folder = folder / relative.parts[depth]
    return False
