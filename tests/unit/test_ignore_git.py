"""jpilot's ignore check agrees with `git check-ignore` itself, over generated cases.

Each case is a fresh temporary git repository holding generated `.gitignore` files (at
the root and in a subfolder) and generated files; git's answer for every file is compared
with `ignore.is_ignored`. Names and patterns come from a small alphabet that hits the
tricky parts: `*`, `**`, `?`, classes, ranges, escapes, negation, anchoring, dir-only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jpilot.plugins import ignore

GIT = shutil.which("git")
pytestmark = pytest.mark.skipif(GIT is None and not os.environ.get("CI"), reason="no git")

NAMES = ["a", "b", "ab", "ba", "aab", "a.b", "b a", "a-b", "[a]", "x*", "!a", "#a", "aa"]
PIECES = ["a", "b", "ab", "*", "**", "?", "/", ".", "-", " ", "!", "#", "\\", "\\*", "\\ ",
          "[ab]", "[!a]", "[^b]", "[a-b]", "[]a]", "[a-]", "[[:alpha:]]", "[[:digit:]]", "[",
          "]", "[:", "[x", "**/", "/**", "/**/"]  # fmt: skip
LINES = st.lists(st.sampled_from(PIECES), min_size=1, max_size=6).map("".join)
FILES = st.lists(st.lists(st.sampled_from(NAMES), min_size=1, max_size=4), min_size=1, max_size=8)


def git_env(home: Path) -> dict[str, str]:
    """Return an environment where no user or system git config applies."""
    return {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home),
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "LC_ALL": "C"}  # fmt: skip


def check(root_lines: list[str], sub_lines: list[str], files: list[list[str]]) -> int:
    """Build the case, assert git and jpilot agree on every file; return files compared."""
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        repo.mkdir()
        env = git_env(Path(tmp))
        subprocess.run([GIT or "git", "init", "-q", str(repo)], check=True, env=env)
        paths: list[str] = []
        dirs: set[str] = set()
        for parts in files:
            rel = "/".join(parts)
            prefixes = {"/".join(parts[:k]) for k in range(1, len(parts))}
            if rel in dirs or rel in paths or any(p in paths for p in prefixes):
                continue  # a name cannot be both a file and a folder
            dirs |= prefixes
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            (repo / rel).write_text("x\n")
            paths.append(rel)
        (repo / ".gitignore").write_bytes("\n".join(root_lines).encode() + b"\n")
        sub = sorted(dirs)[0] if dirs else None
        if sub is not None:
            (repo / sub / ".gitignore").write_bytes("\n".join(sub_lines).encode() + b"\n")
        out = subprocess.run(
            [GIT or "git", "check-ignore", "--no-index", "--stdin", "-z"],
            input="\0".join(paths).encode() + b"\0", cwd=repo, env=env,
            capture_output=True, check=False,
        )  # fmt: skip
        assert out.returncode in (0, 1), out.stderr
        git_says = {p.decode() for p in out.stdout.split(b"\0") if p}
        for rel in paths:
            ours = ignore.is_ignored(repo / rel, [repo])
            context = f"{rel!r}: .gitignore={root_lines!r} {sub}/.gitignore={sub_lines!r}"
            assert ours == (rel in git_says), context
        return len(paths)


@pytest.mark.parametrize(
    ("lines", "path", "ignored"),
    [
        (["neg/", "!neg/keep.py"], "neg/keep.py", True),  # an excluded folder stays so
        (["*.log", "!keep.log"], "keep.log", False),
        (["/anchored/"], "sub/anchored/x.py", False),
        (["/anchored/"], "anchored/x.py", True),
        (["a/**/b"], "a/b", True),
        (["a/**/b"], "a/x/y/b", True),
        (["**/b"], "x/b", True),
        (["a/**"], "a/x", True),
        (["*a*a*a*a*a*a*a*a*a*a*b"], "a" * 40, False),
        (["foo**/bar"], "foo/x/bar", True),  # the literal prefix makes ** leading
        (["[]a]"], "]", True),
        (["[a-]"], "-", True),
        (["x\\"], "x", False),  # a trailing backslash never matches
        (["a\\ "], "a ", True),
        (["a  "], "a", True),
        (["\\#a"], "#a", True),
        (["[[:alpha:]]"], "b", True),
        (["[[:nope:]]"], "b", False),
    ],
)
def test_known_cases_agree_with_git(lines: list[str], path: str, ignored: bool):
    parts = path.split("/")
    if GIT is not None:
        assert check(lines, [], [parts]) == 1
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / ".git").mkdir()
        (Path(tmp) / ".gitignore").write_text("\n".join(lines) + "\n")
        (Path(tmp) / path).parent.mkdir(parents=True, exist_ok=True)
        (Path(tmp) / path).write_text("x")
        assert ignore.is_ignored(Path(tmp) / path, []) is ignored


@settings(
    max_examples=int(os.environ.get("JPILOT_GIT_CASES", "200")),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(LINES, min_size=1, max_size=6), st.lists(LINES, max_size=3), FILES)
def test_generated_cases_agree_with_git_check_ignore(
    root_lines: list[str], sub_lines: list[str], files: list[list[str]]
):
    if GIT is None:
        pytest.skip("no git")
    check(root_lines, sub_lines, files)
