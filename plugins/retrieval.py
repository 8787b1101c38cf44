"""Snippets from the user's other files, chosen by similarity to the code before the cursor.

The line a user is writing often resembles code in the files they have open: a call of a
function defined there, the test of a class, a parallel branch. A small model cannot know
those names; it can copy them from the prompt. So, as Copilot's "neighbouring tabs" and
RepoCoder's retrieval do, the prompt gets the windows of other files that share the most
identifiers with the lines before the cursor (Jaccard similarity of the two sets), rather
than those files' first lines. The best window goes last, nearest the cursor.

Candidates are the other open documents of the same language and, with
`context.workspaceSnippets`, up to `MAX_WORKSPACE_FILES` files of the workspace that are
not ignored. Every chosen window is scrubbed of secrets by the caller's rules (`redact`).
Written by hand: retrieval libraries (rank_bm25 and the like) rank whole documents by term
weights; this ranks sliding line windows by set overlap, as those papers did, in a few
lines.
"""

from __future__ import annotations

import keyword
import os
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from jpilot.plugins import ignore
from jpilot.plugins.api import CompletionRequest
from jpilot.plugins.lru import LRU
from jpilot.plugins.privacy import redact, region_spans

WINDOW_LINES = 12  # lines per candidate window
STRIDE = 6  # lines between window starts (windows overlap by half)
QUERY_LINES = 12  # lines before the cursor that make the query
MIN_SCORE = 0.05  # windows sharing less than this are noise, not context
MAX_WORKSPACE_FILES = 200  # most recently modified first
MAX_FILE_BYTES = 256 * 1024  # larger workspace files are left out (generated, data)
RESCAN_SECONDS = 30.0  # a workspace's file list is reused this long
EXTENSIONS = {"python": (".py", ".pyi")}  # workspace files per language id
SKIP_DIRS = {".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv", ".tox"}
COMMENT = {"python": "#", "shellscript": "#", "ruby": "#", "yaml": "#", "toml": "#", "r": "#"}

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_COMMON = frozenset(keyword.kwlist) | {"self", "cls", "None", "True", "False"}


def identifiers(text: str) -> frozenset[str]:
    """Return the identifiers of `text`, keywords and `self` left out (they match anything)."""
    return frozenset(_IDENT.findall(text)) - _COMMON


@dataclass(frozen=True)
class Window:
    """A run of lines of one file, and its identifiers."""

    start: int  # character offsets into the file's text
    end: int
    names: frozenset[str]


@dataclass(frozen=True)
class Source:
    """A file that snippets may come from."""

    name: str  # shown in the snippet's header line
    text: str
    path: Path | None


@dataclass(frozen=True)
class Indexed:
    """A file's windows, and for each identifier the windows that hold it."""

    windows: list[Window]
    postings: dict[str, list[int]]  # identifier -> indexes into `windows`


# path (or name) -> (len, hash, index) of the text it was last indexed from: one entry a
# file, so a document being typed into replaces its own entry. Keyed by (name, len, hash),
# each keystroke in a tab added one, up to 512 stale indexes (issue 22's soak).
_indexed: LRU[str, tuple[int, int, Indexed]] = LRU(256)


def windows(source: Source) -> Indexed:
    """Return `source`'s sliding windows, indexed (cached while its text is unchanged)."""
    key = str(source.path) if source.path is not None else source.name
    stamp = (len(source.text), hash(source.text))  # str caches its hash
    cached = _indexed.get(key)
    if cached is not None and cached[:2] == stamp:
        return cached[2]
    starts = [0, *(m.end() for m in re.finditer("\n", source.text))]
    if starts[-1] == len(source.text):
        starts.pop()
    spans = []
    for first in range(0, max(1, len(starts) - WINDOW_LINES + STRIDE), STRIDE):
        last = min(first + WINDOW_LINES, len(starts))
        start = starts[first] if first < len(starts) else len(source.text)
        end = starts[last] if last < len(starts) else len(source.text)
        if end > start:
            spans.append(Window(start, end, identifiers(source.text[start:end])))
    postings: dict[str, list[int]] = {}
    for i, w in enumerate(spans):
        for name in w.names:
            postings.setdefault(name, []).append(i)
    found = Indexed(spans, postings)
    _indexed.put(key, (*stamp, found))
    return found


def scored_windows(wanted: frozenset[str], indexed: Indexed) -> list[tuple[float, Window]]:
    """Return (Jaccard with `wanted`, window) for the windows sharing any identifier."""
    shared: Counter[int] = Counter()
    for name in wanted:
        shared.update(indexed.postings.get(name, ()))
    out = []
    for i, n in shared.items():
        w = indexed.windows[i]
        out.append((n / (len(wanted) + len(w.names) - n), w))
    return out


def query(request: CompletionRequest) -> frozenset[str]:
    """Return the identifiers of the QUERY_LINES whole lines above the cursor's line.

    The line being typed is left out so that the snippets, which open the prompt, stay the
    same while the user types it: the engine then reuses the prompt's cached prefix.
    """
    prefix = request.prefix
    end = start = prefix.rfind("\n") + 1
    for _ in range(QUERY_LINES):
        if start == 0:
            break
        start = prefix.rfind("\n", 0, start - 1) + 1
    return identifiers(prefix[start:end])


def sources(request: CompletionRequest) -> list[Source]:
    """Return the files snippets may come from: open documents first, then the workspace's."""
    found: list[Source] = []
    seen: set[Path] = set()
    limit = request.settings.context.large_file_kb * 1024
    for doc in sorted(request.open_documents, key=lambda d: d.uri):
        if doc.uri == request.uri or doc.language_id != request.language_id:
            continue
        if len(doc.text) > limit:  # a generated file or a dump: no whole-file pass
            continue
        if doc.path is not None:
            if ignore.is_ignored(doc.path, request.workspace_roots):
                continue
            seen.add(doc.path)
        name = doc.path.name if doc.path is not None else doc.uri.rsplit("/", 1)[-1]
        found.append(Source(name, doc.text, doc.path))
    if request.settings.context.workspace_snippets:
        if request.path is not None:
            seen.add(request.path)
        for path in workspace_files(request.workspace_roots, request.language_id):
            if path in seen:
                continue
            text = _read(path)
            if text is not None:
                root = next((r for r in request.workspace_roots if path.is_relative_to(r)), None)
                found.append(Source(str(path.relative_to(root)) if root else path.name, text, path))
    return found


def choose(request: CompletionRequest, max_chars: int) -> list[tuple[Source, Window, float]]:
    """Return the most similar windows that fit `max_chars`, least similar first."""
    wanted = query(request)
    if not wanted or max_chars <= 0:
        return []
    scored = [
        (score, i, source, w)
        for i, source in enumerate(sources(request))
        for score, w in scored_windows(wanted, windows(source))
    ]
    scored.sort(key=lambda s: (-s[0], s[1], s[3].start))
    chosen: list[tuple[Source, Window, float]] = []
    room = max_chars
    for score, _, source, w in scored:
        if score < MIN_SCORE or room <= 0:
            break
        if any(s is source and w.start < c.end and c.start < w.end for s, c, _ in chosen):
            continue  # overlaps a window already taken
        if w.end - w.start > room:
            continue
        chosen.append((source, w, score))
        room -= w.end - w.start + len(source.name) + 4
    return chosen[::-1]


def snippets(request: CompletionRequest, max_chars: int) -> str:
    """Return the chosen windows as comments headed by their file's name, best one last."""
    mark = COMMENT.get(request.language_id, "//")
    parts = []
    for source, w, _ in choose(request, max_chars):
        found = region_spans(source.text, w.start, w.end)
        text = redact(source.text, w.start, w.end, found)[0]
        body = "".join(f"{mark} {line}".rstrip() + "\n" for line in text.splitlines())
        parts.append(f"{mark} {source.name}\n{body}")
    return "".join(parts)


_scans: dict[tuple[Path, str], tuple[float, list[Path]]] = {}
_scan_lock = threading.Lock()


def workspace_files(roots: list[Path], language_id: str) -> list[Path]:
    """Return up to MAX_WORKSPACE_FILES not-ignored files of the language under `roots`,
    most recently modified first (the list is rescanned every RESCAN_SECONDS)."""
    suffixes = EXTENSIONS.get(language_id)
    if not suffixes:
        return []
    files: list[Path] = []
    for root in roots:
        with _scan_lock:
            cached = _scans.get((root, language_id))
        if cached is None or time.monotonic() - cached[0] > RESCAN_SECONDS:
            cached = (time.monotonic(), _scan(root, suffixes, [root]))
            with _scan_lock:
                _scans[(root, language_id)] = cached
        files += cached[1]
    return files[:MAX_WORKSPACE_FILES]


def _scan(root: Path, suffixes: tuple[str, ...], roots: list[Path]) -> list[Path]:
    """Walk `root` (skipping ignored and tool folders); return matching files, newest first."""
    found: list[tuple[float, Path]] = []
    budget = 20 * MAX_WORKSPACE_FILES  # files looked at: a huge tree is cut short, not walked
    for folder, dirs, names in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(
            d for d in dirs
            if d not in SKIP_DIRS and not d.startswith(".")
            and not ignore.is_ignored(here / d, roots)
        )  # fmt: skip
        for name in names:
            budget -= 1
            path = here / name
            if not name.endswith(suffixes) or ignore.is_ignored(path, roots):
                continue
            try:
                stat = path.stat()
            except OSError:
                continue
            if stat.st_size <= MAX_FILE_BYTES:
                found.append((stat.st_mtime, path))
        if budget <= 0:
            break
    found.sort(key=lambda f: -f[0])
    return [p for _, p in found[:MAX_WORKSPACE_FILES]]


_texts: LRU[Path, tuple[tuple[float, int], str]] = LRU(MAX_WORKSPACE_FILES)


def _read(path: Path) -> str | None:
    """Return a workspace file's text (cached by mtime and size), or None if unreadable."""
    try:
        stat = path.stat()
        signature = (stat.st_mtime, stat.st_size)
        cached = _texts.get(path)
        if cached is not None and cached[0] == signature:
            return cached[1]
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    _texts.put(path, (signature, text))
    return text
