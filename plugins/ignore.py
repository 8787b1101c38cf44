"""Decide whether a file is excluded by `.gitignore` / `.jpilotignore` (or is a secrets file).

The answer follows git (tests/unit/test_ignore_git.py checks it against `git check-ignore`):

- **Which ignore files.** From a base folder down to the file's folder. The base is the
  outermost of the file's repository root (the nearest folder above it holding `.git`)
  and the workspace root holding it; with neither (a single-file window, a file outside
  every root), the file's whole folder chain up to the filesystem root. The repository's
  `.git/info/exclude` counts too.
- **Precedence.** As in git: a deeper ignore file wins over a shallower one, a later line
  over an earlier one, and a file inside an excluded folder stays excluded whatever a
  `!pattern` says (`neg/` then `!neg/keep.py` keeps `neg/keep.py` ignored).
- **Two sets.** `.gitignore` files (with info/exclude) and `.jpilotignore` files are read
  as two separate sets; a file either set excludes is ignored, so a `.jpilotignore` can
  hide more than git does but never un-hide a git-ignored file.
- **Paths.** `..` is normalized away before matching, and the symlink-resolved path is
  checked too: a symlinked folder pointing into an ignored folder is ignored.
- **Secrets files** (`ALWAYS_IGNORED`) are ignored wherever they are.

Hostile ignore files can neither stall nor open the check:

- An ignore file is opened without following a symlink and read only if it is a regular
  file of at most MAX_IGNORE_BYTES (git itself refuses symlinked `.gitignore` files).
- Matching runs in bounded time (`ignore_rules`: an NFA, never backtracking), and one
  check spends at most MAX_STEPS matching steps.
- Fail closed: any error (an unreadable, oversized or symlinked ignore file, a path too
  deep, the step budget spent, anything unexpected) makes the file count as ignored, and
  the reason is logged once.

Parsed ignore files are cached by their stat signature, and answers by the signatures
of every ignore file they read. The document itself is never read.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
from pathlib import Path

from jpilot.plugins import ignore_rules
from jpilot.plugins.ignore_rules import Budget, Pattern
from jpilot.plugins.lru import LRU

log = logging.getLogger(__name__)

GIT_IGNORE, JPILOT_IGNORE = ".gitignore", ".jpilotignore"
IGNORE_FILES = (GIT_IGNORE, JPILOT_IGNORE)
MAX_IGNORE_BYTES = 256 * 1024  # a larger ignore file is an error: its folder is ignored
MAX_DEPTH = 64  # folders in a path; a deeper path counts as ignored
MAX_STEPS = 1_000_000  # matching steps one check may spend (~0.5 s of pure Python)
MAX_CACHED = 4096  # answers and parsed ignore files kept

# Never sent to a model, whatever the ignore files say (gitignore syntax, matched against
# the absolute path, so a bare name matches in any folder).
ALWAYS_IGNORED_LINES = (
    # environment and shell secrets
    ".env", ".env.*", ".envrc", ".flaskenv",
    # keys and keystores
    "*.pem", "*.key", "*.p12", "*.pfx", "*.p8", "*.jks", "*.keystore", "*.ppk", "*.kdbx",
    "*.gpg", "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", "*.asc",
    # credential files of common tools
    ".netrc", "_netrc", ".npmrc", ".yarnrc", ".yarnrc.yml", ".pypirc", ".git-credentials",
    ".pgpass", ".my.cnf", ".htpasswd", ".vault-token", ".boto", ".s3cfg", ".dockercfg",
    "credentials.json", "client_secret*.json", "application_default_credentials.json",
    "*service-account*.json", "*service_account*.json", "kubeconfig",
    "secrets.yml", "secrets.yaml", "secrets.json", "secrets.toml",
    # Terraform variables and state (they hold provider credentials and outputs)
    "*.tfvars", "*.tfvars.json", "*.tfstate", "*.tfstate.*",
    # folders of credentials
    ".git/", ".ssh/", ".gnupg/", ".aws/", ".azure/", ".kube/", "**/.docker/config.json",
    "**/.config/gcloud/", "**/.config/gh/hosts.yml",
)  # fmt: skip
ALWAYS_IGNORED = ignore_rules.parse("\n".join(ALWAYS_IGNORED_LINES).encode())

Signature = tuple[int, int, int, int, int] | None  # (dev, ino, size, mtime_ns, ctime_ns)


class IgnoreFileError(Exception):
    """An ignore file that cannot be read safely; its folder counts as ignored."""


_parsed: LRU[str, tuple[Signature, list[Pattern] | IgnoreFileError]] = LRU(MAX_CACHED)
_answers: LRU[tuple[str, tuple[str, ...]], tuple[dict[str, Signature], bool]] = LRU(MAX_CACHED)
_warned: set[str] = set()
_lock = threading.Lock()  # guards _warned


def is_ignored(path: Path, roots: list[Path]) -> bool:
    """Return True if `path` is a secrets file or ignored; any error counts as ignored."""
    try:
        lexical = Path(os.path.normpath(path))
        if not lexical.is_absolute():
            raise IgnoreFileError(f"{path} is not an absolute path")
        real = Path(os.path.realpath(lexical))
        all_roots = sorted({Path(os.path.normpath(r)) for r in roots} | _real_roots(roots))
        return any(_cached(p, all_roots) for p in dict.fromkeys((lexical, real)))
    except Exception as exc:  # fail closed
        _warn(str(path), f"jpilot treats {path} as ignored: {exc}")
        return True


def _real_roots(roots: list[Path]) -> set[Path]:
    """Return the symlink-resolved workspace roots."""
    return {Path(os.path.realpath(r)) for r in roots if os.path.isabs(r)}


def _cached(path: Path, roots: list[Path]) -> bool:
    """Return the answer for one absolute normalized path, cached while nothing changed."""
    key = (str(path), tuple(str(r) for r in roots))
    hit = _answers.get(key)
    if hit is not None and all(_signature(f) == sig for f, sig in hit[0].items()):
        return hit[1]
    seen: dict[str, Signature] = {}
    try:
        answer = _decide(path, roots, seen, Budget(MAX_STEPS))
    except Exception as exc:  # fail closed, and remember it until a file changes
        _warn(str(path), f"jpilot treats {path} as ignored: {str(exc) or type(exc).__name__}")
        answer = True
    _answers.put(key, (seen, answer))
    return answer


def _decide(path: Path, roots: list[Path], seen: dict[str, Signature], budget: Budget) -> bool:
    """Walk from the base folder down to `path`, as git's prep_exclude does."""
    parts = path.parts[1:]
    if len(parts) > MAX_DEPTH:
        raise IgnoreFileError(f"{path} is more than {MAX_DEPTH} folders deep")
    if _excluded([ALWAYS_IGNORED], parts, budget):
        return True
    base, repo = _base(path, roots, seen)
    rel = parts[len(base.parts) - 1 :]
    names = [os.fsencode(part) for part in rel]
    git_lists: list[list[Pattern]] = []
    git_depths: list[int] = []
    jp_lists: list[list[Pattern]] = []
    jp_depths: list[int] = []
    folder = base
    for k in range(len(rel)):
        if repo is not None and folder == repo and (repo / ".git").is_dir():
            git_lists.append(_load(repo / ".git" / "info" / "exclude", seen))
            git_depths.append(k)
        git_lists.append(_load(folder / GIT_IGNORE, seen))
        git_depths.append(k)
        jp_lists.append(_load(folder / JPILOT_IGNORE, seen))
        jp_depths.append(k)
        upto = names[: k + 1]
        is_dir = k < len(rel) - 1
        for lists, depths in ((git_lists, git_depths), (jp_lists, jp_depths)):
            rels = [b"/".join(upto[d:]) for d in depths]
            found = ignore_rules.last_match(lists, rels, upto[-1], is_dir, budget)
            if found is not None and not found.negative:
                return True
        folder = folder / rel[k]
    return False


def _excluded(lists: list[list[Pattern]], parts: tuple[str, ...], budget: Budget) -> bool:
    """Say whether `lists` (all rooted at "/") exclude the path or a folder above it."""
    names = [os.fsencode(part) for part in parts]
    for k in range(len(names)):
        rel = b"/".join(names[: k + 1])
        found = ignore_rules.last_match(lists, [rel], names[k], k < len(names) - 1, budget)
        if found is not None and not found.negative:
            return True
    return False


def _base(path: Path, roots: list[Path], seen: dict[str, Signature]) -> tuple[Path, Path | None]:
    """Return (the folder ignore files are read from, the repository root or None)."""
    repo = None
    for folder in path.parents:
        marker = folder / ".git"
        sig = _signature(marker)
        seen[str(marker)] = sig
        if sig is not None:
            repo = folder
            break
    root = max((r for r in roots if path.is_relative_to(r) and r != path), default=None,
               key=lambda r: len(r.parts))  # fmt: skip
    found = [f for f in (repo, root) if f is not None]
    if not found:
        return Path(path.anchor), None
    return min(found, key=lambda f: len(f.parts)), repo


def _signature(path: Path | str) -> Signature:
    """Return what identifies this version of a file (not following a symlink), or None."""
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _load(ignore_file: Path, seen: dict[str, Signature]) -> list[Pattern]:
    """Return the parsed ignore file (empty if absent); raise IgnoreFileError if unsafe."""
    key = str(ignore_file)
    sig = _signature(ignore_file)
    seen[key] = sig
    if sig is None:
        return []
    cached = _parsed.get(key)
    if cached is None or cached[0] != sig:
        try:
            result: list[Pattern] | IgnoreFileError = ignore_rules.parse(_read(ignore_file))
        except (OSError, IgnoreFileError) as exc:
            result = IgnoreFileError(f"cannot use {ignore_file}: {exc}")
        cached = (sig, result)
        _parsed.put(key, cached)
    if isinstance(cached[1], IgnoreFileError):
        raise cached[1]
    return cached[1]


def _read(ignore_file: Path) -> bytes:
    """Read a regular file of at most MAX_IGNORE_BYTES without following a symlink."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    if stat.S_ISLNK(os.lstat(ignore_file).st_mode):
        raise IgnoreFileError("it is a symbolic link (git does not follow those either)")
    fd = os.open(ignore_file, flags | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise IgnoreFileError("it is not a regular file")
        chunks, size = [], 0
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_IGNORE_BYTES:
                break
        if size > MAX_IGNORE_BYTES:
            raise IgnoreFileError(f"it is larger than {MAX_IGNORE_BYTES} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)


def _warn(key: str, message: str) -> None:
    """Log `message` once per key."""
    with _lock:
        if key in _warned or len(_warned) > MAX_CACHED:
            return
        _warned.add(key)
    log.warning("%s", message)
