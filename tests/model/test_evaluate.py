"""`jpilot model eval`: case sampling, the copy baseline, scoring, and a run on a tiny bundle."""

from __future__ import annotations

import json
from pathlib import Path

from jpilot.lsp.cli import main
from jpilot.model.evaluate import (
    CODEXGLUE_ROW,
    Case,
    copy_baseline,
    files_id,
    normalize_literals,
    sample_cases,
    score,
)

SOURCE = "def f(x):\n    total = x + 1\n    return total\n\n\nprint(f(2))\n"


def test_cases_reassemble_the_file() -> None:
    cases = sample_cases([("a.py", SOURCE)], 50, seed=1)
    assert len(cases) == 4  # "pass"-length and blank lines are skipped; 4 lines qualify
    for case in cases:
        line_end = SOURCE.index("\n", len(case.prefix))
        assert case.prefix + case.truth + "\n" + case.suffix == SOURCE[: line_end + 1] + case.suffix
        assert SOURCE.startswith(case.prefix) and SOURCE.endswith(case.suffix)
        assert case.truth and case.truth == SOURCE[len(case.prefix) : line_end]
        if case.cut == "start":
            assert case.prefix.endswith(("\n", "    "))


def test_copy_baseline_copies_an_earlier_line() -> None:
    case = Case("a.py", "x = load(a)\ny = 2\nx = lo", "", "ad(b)", "mid")
    assert copy_baseline(case) == "ad(a)"
    assert copy_baseline(Case("a.py", "y = 1\n    ", "", "z", "start")) == ""


def test_eval_branches_as_the_server_does_by_default() -> None:
    from jpilot.model.evaluate import BRANCHES
    from jpilot.plugins.settings import CompletionSettings

    assert BRANCHES == CompletionSettings().branches


def test_score() -> None:
    cases = [Case("a", "", "", "abc", "mid"), Case("a", "", "", "xyz", "mid")]
    s = score(["abc  ", "xy"], cases)
    assert s.exact_match == 50.0
    assert round(s.edit_similarity, 1) == round((100 + 80) / 2, 1)


def test_literals_are_normalized_as_codexglue_does() -> None:
    assert normalize_literals("x = f(\"a b\", 3.5, 0x1F) + rb'\\'q'") == (
        "x = f(<STR_LIT>, <NUM_LIT>, <NUM_LIT>) + <STR_LIT>"
    )
    assert (
        normalize_literals("a[1:].x1 = .5e3 + 1_000j") == "a[<NUM_LIT>:].x1 = <NUM_LIT> + <NUM_LIT>"
    )
    assert normalize_literals('return """Unclosed doc') == "return <STR_LIT>"
    cases = [Case("a", "", "", 'log("done", 2)', "start")] * 2
    s = score(['log("finished", 3)', 'log("done", x)'], cases, normalize_literals)
    assert s.exact_match == 50.0  # literals may differ; names may not


def test_eval_runs_on_a_bundle(tiny_bundle: Path, tmp_path: Path, capsys) -> None:
    src = tmp_path / "held_out.py"
    src.write_text(SOURCE * 3)
    out = tmp_path / "report.json"
    assert main(["model", "eval", str(tiny_bundle), "--corpus", str(src), "-n", "6",
                 "--bpt-files", "1", "--samples", "2", "--json", str(out)]) == 0  # fmt: skip
    report = json.loads(out.read_text())
    printed = capsys.readouterr().out
    assert "(given with --corpus, not compared with training files; set" in printed
    assert report["model"]["cases"] == 6 and report["fim"] is True
    assert report["files_id"] == files_id([(str(src), SOURCE * 3)])
    assert report["near_duplicate_files"] is None  # --corpus files are not checked
    assert files_id([(str(src), SOURCE * 3 + "x = 1\n")]) != report["files_id"]
    assert report["bits_per_token"] > 0 and len(report["samples"]) == 2
    rows = report["predictions"]  # every case, in the order they were scored
    assert len(rows) == 6 and {r["cut"] for r in rows} <= {"start", "mid"}
    exact = sum(r["completion"] == r["truth"] for r in rows)
    assert 100 * exact / 6 == report["model"]["exact_match"]
    start = report["model, line start"]["cases"]
    assert report[CODEXGLUE_ROW]["cases"] == start
    assert "copy baseline" in printed


def test_cases_in_strings_are_told_apart_from_code() -> None:
    source = 'def f():\n    """Add one to\n    the value."""\n    return 1\n'
    cases = sample_cases([("a.py", source)], 50, seed=0)
    for case in cases:
        line = case.prefix.count("\n")
        inside = line == 2 or (line == 1 and case.cut == "mid")  # line 1 opens the string
        assert case.prose == inside, case


def test_near_duplicates_of_training_files_are_scored_only_when_asked(
    tiny_bundle: Path, tmp_path: Path, monkeypatch
) -> None:
    from jpilot.model.train import corpus as corpus_module
    from jpilot.model.train.corpus import NEAR_DUPLICATE_SPLIT, Corpus, Document

    held_out = Document("user", "user/held_out.py", SOURCE * 3, "val")
    copy_text = SOURCE.replace("total", "acc") * 3
    copy = Document("user", "user/copy.py", copy_text, NEAR_DUPLICATE_SPLIT)
    monkeypatch.setattr(corpus_module, "build_corpus", lambda: Corpus([held_out, copy], {}))
    reports = {}
    for flags in ([], ["--near-duplicates"]):
        out = tmp_path / f"report{len(flags)}.json"
        argv = ["model", "eval", str(tiny_bundle), "-n", "20", "--bpt-files", "1", "--json"]
        assert main([*argv, str(out), *flags]) == 0
        reports[len(flags)] = json.loads(out.read_text())
    left_out, included = reports[0], reports[1]
    assert {r["file"] for r in left_out["predictions"]} == {"user/held_out.py"}
    assert "model, near-duplicate files" not in left_out
    assert left_out["near_duplicate_files"] == 1 and not left_out["near_duplicates_included"]
    rows = included["predictions"]
    assert {r["file"] for r in rows} == {"user/held_out.py", "user/copy.py"}
    assert all(r["near_duplicate"] == (r["file"] == "user/copy.py") for r in rows)
    near = included["model, near-duplicate files"]["cases"]
    assert near == sum(r["near_duplicate"] for r in rows) > 0
    assert near + included["model, other files"]["cases"] == included["model"]["cases"]


def test_exact_match_interval_resamples_whole_files() -> None:
    from jpilot.model.evaluate import file_interval

    # every file right half the time: however the files are drawn, the rate is 50%
    assert file_interval([True, False] * 10, [f"f{i // 2}" for i in range(20)]) == (50.0, 50.0)
    # one file all right, one all wrong: drawing files (not lines) can give 0% or 100%
    assert file_interval([True] * 10 + [False] * 10, ["a"] * 10 + ["b"] * 10) == (0.0, 100.0)
    cases = [Case(f"f{i % 7}", "", "", "x", "mid") for i in range(70)]
    s = score(["x" if i % 3 else "y" for i in range(70)], cases)
    assert s.exact_match_95[0] <= s.exact_match <= s.exact_match_95[1]
