"""Measure the docs plugin's own model-written prose on held-out functions that have docstrings.

`jpilot model eval --abilities` finds this through the `jpilot.measures` entry point (the
model layer never imports plugins), so what is measured is exactly what the editor shows:
`generate.summary_result`, `generate.docstring_result` and `generate.explain`, run on a
copy of each function with its docstring taken out.

For each function it scores the first sentence of the hover summary, of the generated
docstring and of an explanation of the function's body against the real docstring's
first sentence (ROUGE-L F1 x 100, Google's `rouge-score` with stemming), and counts
outputs that are empty or degenerate (jpilot.plugins.quality) and the repetition rate
(share of repeated word 3-grams). Two baselines are scored the same way, as floors a
useful summary must clear: the function's name alone ("list python files" for
`list_python_files`) and one generic sentence for every function (CONSTANT).
Intervals: 95% bootstrap over functions, seeded.
"""

from __future__ import annotations

import ast
import random
import re
from typing import Any

import numpy as np

from jpilot.plugins.docs import generate
from jpilot.plugins.quality import repetition_rate

BOOTSTRAP_ROUNDS = 2000
CONSTANT = "Return the value of the given object."  # the generic-sentence baseline
SENTENCE = re.compile(r"(?<=[.!?])\s|\n\s*\n")


def first_sentence(text: str) -> str:
    """Return the first sentence (or first paragraph line) of a docstring or comment."""
    text = text.strip().strip("\"'").strip()
    return SENTENCE.split(text, maxsplit=1)[0].strip().replace("\n", " ") if text else ""


def doc_cases(files: list[tuple[str, str]], n: int, seed: int) -> list[tuple[str, str, str]]:
    """Pick `n` functions with a docstring and a body besides it: (name, text, truth).

    `text` is the whole file with that function's docstring taken out; `truth` is the
    docstring's first sentence.
    """
    found = []
    for name, text in files:
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            doc = ast.get_docstring(node)
            if not doc or len(node.body) < 2 or len(first_sentence(doc).split()) < 3:
                continue
            first, last = node.body[0].lineno - 1, (node.body[0].end_lineno or 0) - 1
            if first <= node.lineno - 1:  # docstring on the def line
                continue
            lines = text.splitlines(keepends=True)
            stripped = "".join(lines[:first] + lines[last + 1 :])
            found.append((f"{name}:{node.name}", stripped, first_sentence(doc)))
    rng = random.Random(seed)
    return rng.sample(found, min(n, len(found)))


def _node(text: str, qualified: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    """Find the function `file:name` in `text` again (the first of that name)."""
    name = qualified.rsplit(":", 1)[1]
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    kinds = ast.FunctionDef | ast.AsyncFunctionDef
    return next((n for n in ast.walk(tree) if isinstance(n, kinds) and n.name == name), None)


def interval(values: list[float], seed: int) -> tuple[float, float]:
    """Return the 95% bootstrap interval of the mean of `values`."""
    if not values:
        return (0.0, 0.0)
    arr = np.array(values, dtype=float)  # (cases,)
    draw = np.random.default_rng(seed).integers(0, len(arr), size=(BOOTSTRAP_ROUNDS, len(arr)))
    low, high = np.percentile(arr[draw].mean(axis=1), [2.5, 97.5])
    return round(float(low), 1), round(float(high), 1)


def measure(engine: Any, files: list[tuple[str, str]], n: int, seed: int) -> dict[str, float]:
    """Score summaries, docstrings and explanations on `n` held-out documented functions."""
    from rouge_score import rouge_scorer  # the [train] extra

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)

    def rouge(pred: str, truth: str) -> float:
        return 100 * scorer.score(truth, pred)["rougeL"].fmeasure if pred else 0.0

    cases = doc_cases(files, n, seed)
    rows: dict[str, dict[str, list[float]]] = {
        k: {"rouge": [], "bad": [], "rep": []}
        for k in ("summary", "docstring", "explain", "name", "constant")
    }
    samples: list[tuple[str, str, str]] = []
    for qualified, text, truth in cases:
        node = _node(text, qualified)
        if node is None:
            continue
        summ, bad = generate.summary_result(engine, text, node, seconds=10.0)
        outputs = {"summary": (summ, bad)}
        ins, raw, bad = generate.docstring_result(engine, text, node, seconds=10.0)
        outputs["docstring"] = (raw, bad)
        body_first = node.body[0].lineno - 1
        end = (node.end_lineno or node.lineno) - 1
        expl = generate.explain(engine, text, body_first, end, seconds=10.0)
        words = " ".join(
            ln.strip().lstrip("#").strip() for ln in (expl.text if expl else "").split("\n")
        )
        outputs["explain"] = (words.strip(), expl.rejected if expl else "it was empty")
        outputs["name"] = (node.name.replace("_", " ").strip(), None)
        outputs["constant"] = (CONSTANT, None)
        for kind, (out, rejected) in outputs.items():
            shown = "" if rejected else first_sentence(out)
            rows[kind]["rouge"].append(rouge(shown, truth))
            rows[kind]["bad"].append(100.0 if rejected or not shown else 0.0)
            rows[kind]["rep"].append(100 * repetition_rate(out))
        if len(samples) < 5:
            samples.append((truth, summ, first_sentence(raw)))
    scores: dict[str, float] = {"prose_functions": float(len(rows["summary"]["rouge"]))}
    for kind, row in rows.items():
        baseline = kind in ("name", "constant")
        label = f"{kind}_baseline" if baseline else kind
        scores[f"{label}_rouge_l"] = round(float(np.mean(row["rouge"] or [0.0])), 1)
        low, high = interval(row["rouge"], seed)
        scores[f"{label}_rouge_l_low"], scores[f"{label}_rouge_l_high"] = low, high
        if not baseline:
            scores[f"{label}_degenerate"] = round(float(np.mean(row["bad"] or [100.0])), 1)
            low, high = interval(row["bad"], seed)
            scores[f"{label}_degenerate_low"], scores[f"{label}_degenerate_high"] = low, high
            scores[f"{label}_repetition"] = round(float(np.mean(row["rep"] or [0.0])), 1)
    for truth, summ, doc in samples:
        print(f"  truth: {truth!r}\n  summary: {summ!r}\n  docstring: {doc!r}")
    return scores
