"""Snippets chosen by similarity to the code before the cursor (plugins/retrieval.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from jpilot.plugins import retrieval
from jpilot.plugins.api import OpenDocument
from jpilot.plugins.testing import request

PARSERS = "".join(
    f"def parse_{name}(data, strict=False):\n"
    f"    '''Read one {name} record.'''\n"
    f"    fields_{name} = data.split(',')\n"
    f"    return {name.title()}Record(*fields_{name})\n\n\n"
    for name in ("header", "footer", "body", "trailer", "index", "checksum")
)
CALLER = "import parsers\n\n\ndef load(data):\n    header = parsers.parse_header(data)\n"


def doc(name: str, text: str, root: Path = Path("/w")) -> OpenDocument:
    path = root / name
    return OpenDocument(path.as_uri(), "python", text, path)


def test_the_window_that_shares_the_most_names_is_chosen_and_goes_last() -> None:
    others = [doc("parsers.py", PARSERS), doc("other.py", "def unrelated():\n    return 42\n")]
    r = request(CALLER + "    return Head", open_documents=others)
    chosen = retrieval.choose(r, 400)
    assert chosen, "a window of parsers.py shares parse_header and data"
    source, best, score = chosen[-1]
    assert source.name == "parsers.py" and score == max(s for _, _, s in chosen)
    assert PARSERS[best.start : best.end].startswith("def parse_header(data, strict=False):\n")
    assert all(s.name != "other.py" for s, _, _ in chosen)  # nothing in common: left out
    expected = "".join(f"# {line}".rstrip() + "\n" for line in PARSERS.splitlines()[:12])
    assert retrieval.snippets(r, 400) == "# parsers.py\n" + expected


def test_the_index_scores_every_window_by_jaccard() -> None:
    indexed = retrieval.windows(retrieval.Source("parsers.py", PARSERS, None))
    wanted = retrieval.identifiers("header = parse_header(data)\nfields_body = Record")
    got = {w.start: score for score, w in retrieval.scored_windows(wanted, indexed)}
    for w in indexed.windows:  # brute force: |a & b| / |a | b|, 0 windows left out
        want = len(wanted & w.names) / len(wanted | w.names)
        assert got.get(w.start, 0.0) == pytest.approx(want)


def test_windows_fit_the_budget_and_never_overlap() -> None:
    r = request(CALLER, open_documents=[doc("parsers.py", PARSERS)])
    for budget in (50, 300, 1000, 10_000):
        chosen = retrieval.choose(r, budget)
        used = sum(w.end - w.start for _, w, _ in chosen)
        assert used <= budget
        spans = sorted((w.start, w.end) for _, w, _ in chosen)
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))


def test_typing_on_the_cursor_line_keeps_the_same_snippets() -> None:
    others = [doc("parsers.py", PARSERS)]
    shown = {
        retrieval.snippets(request(CALLER + typed, open_documents=others), 600)
        for typed in ("", "    r", "    return parse_footer(", "    return parse_footer(data)")
    }
    assert len(shown) == 1 and shown != {""}  # the prompt's start stays cached while typing


def test_no_names_before_the_cursor_no_snippets() -> None:
    r = request("\n\n", open_documents=[doc("parsers.py", PARSERS)])
    assert retrieval.snippets(r, 1000) == ""


def test_ignored_other_languages_and_huge_documents_are_never_drawn(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("secret_parsers.py\n")
    huge = "def parse_header(data):\n    pass\n" * 40_000  # 1.3 MB, over context.largeFileKb
    others = [
        doc("secret_parsers.py", PARSERS, tmp_path),
        OpenDocument("file:///w/notes.md", "markdown", PARSERS),
        doc("generated.py", huge, tmp_path),
    ]
    r = request(CALLER, open_documents=others, workspace_roots=[tmp_path])
    assert retrieval.snippets(r, 10_000) == ""


def test_secrets_in_a_chosen_window_are_redacted() -> None:
    token = "ghp_" + "A1b2" * 9
    text = PARSERS.replace(
        "def parse_header(data, strict=False):\n",
        f"def parse_header(data, strict=False):\n    TOKEN = '{token}'\n",
    )
    r = request(CALLER, open_documents=[doc("parsers.py", text)])
    shown = retrieval.snippets(r, 2000)
    assert "parse_header" in shown and token not in shown and "<redacted>" in shown


def test_workspace_files_only_when_the_setting_says(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "parsers.py").write_text(PARSERS)
    (tmp_path / ".gitignore").write_text("build/\n")
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "parsers_copy.py").write_text(PARSERS)
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / "vendored.py").write_text(PARSERS)
    me = tmp_path / "main.py"
    fields = {"uri": me.as_uri(), "path": me, "workspace_roots": [tmp_path]}
    assert retrieval.snippets(request(CALLER, **fields), 2000) == ""  # off by default
    on = request(CALLER, settings={"context": {"workspaceSnippets": True}}, **fields)
    chosen = retrieval.choose(on, 2000)
    assert {s.name for s, _, _ in chosen} == {"pkg/parsers.py"}
    assert "# pkg/parsers.py\n# def parse_header(data, strict=False):\n" in retrieval.snippets(
        on, 2000
    )


def test_a_document_being_edited_keeps_one_index_entry() -> None:
    """Each keystroke in an open tab makes a new text; its index replaces the old one."""
    before = len(retrieval._indexed)
    source = PARSERS
    for i in range(40):
        source += f"x{i} = parse_header(data)\n"  # the user types into parsers.py
        r = request(CALLER + "    return Head", open_documents=[doc("parsers.py", source)])
        chosen = retrieval.choose(r, 400)
        assert chosen and chosen[-1][0].text == source  # the index of the text of now
    assert len(retrieval._indexed) <= before + 1
