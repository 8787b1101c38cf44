"""Classify the licence a distribution declares as permissive or not.

A distribution's licence comes from its metadata: the License-Expression field, else the
License field, else its trove classifiers. The field may hold an SPDX expression ("MIT OR
GPL-3.0"), a licence name ("Apache 2.0") or, in some distributions, the licence's whole text.
An expression is judged term by term (any permissive alternative of an OR is enough; every
part of an AND must be permissive); a name by whole words; a full text by the phrases that
identify it. Copyleft, weak-copyleft and unrecognised licences count as not permissive, so
the training corpus (`corpus.py`) keeps only code it may use.
"""

from __future__ import annotations

import importlib.metadata as metadata
import re
from collections.abc import Iterable

# SPDX identifiers (lower-cased, without a trailing "-only"/"-or-later") we accept.
PERMISSIVE_SPDX = {
    "mit", "mit-0", "bsd", "0bsd", "bsd-2-clause", "bsd-3-clause", "bsd-3-clause-clear",
    "bsd-4-clause", "apache-2.0", "apache", "psf-2.0", "python-2.0", "python-2.0.1", "psf",
    "isc", "unlicense", "zlib", "cc0-1.0", "hpnd", "mit-cmu", "cnri-python",
}  # fmt: skip
PERMISSIVE_WORDS = ("mit", "bsd", "apache", "psf", "python software foundation", "isc", "unlicense")
COPYLEFT_WORDS = ("gpl", "mpl", "mozilla", "eupl", "epl", "eclipse", "cddl", "proprietary",
                  "commercial", "copyleft", "osl", "artistic", "sspl", "bsl")  # fmt: skip
MAX_EXPRESSION = 120  # a longer or multi-line licence field holds the licence's full text
FULL_TEXT_COPYLEFT = ("general public license", "mozilla public license", "eclipse public "
                      "license", "european union public licence", "common development and "
                      "distribution license", "server side public license")  # fmt: skip
FULL_TEXT_PERMISSIVE = ("apache license", "permission is hereby granted, free of charge",
                        "redistribution and use in source and binary forms", "isc license",
                        "python software foundation license", "free and unencumbered "
                        "software released into the public domain")  # fmt: skip
CLASSIFIER_PERMISSIVE = (
    "MIT License", "MIT No Attribution", "BSD License", "Apache Software License",
    "Python Software Foundation License", "ISC License", "The Unlicense", "Zero-Clause BSD",
    "zlib/libpng License", "CC0", "Historical Permission Notice",
)  # fmt: skip


def is_permissive(licence: str | None, classifiers: Iterable[str] = ()) -> bool:
    """Return whether a licence (expression, name or full text) or classifier list is permissive.

    The licence decides when it names something we recognise; otherwise the trove
    classifiers do. Unknown means not permissive.
    """
    verdict = licence_verdict(licence)
    if verdict is not None:
        return verdict
    found = [c.split("::")[-1].strip() for c in classifiers if c.startswith("License ::")]
    found = [c for c in found if c != "OSI Approved"]
    if not found:
        return False
    return all(any(c.startswith(p) for p in CLASSIFIER_PERMISSIVE) for c in found)


def licence_verdict(licence: str | None) -> bool | None:
    """Judge a License / License-Expression field: True, False, or None when unrecognised.

    Some distributions put the whole licence file into the field; that is judged by the
    phrases that identify it, never word by word (its "submit" and "limited" contain "mit").
    """
    value = (licence or "").strip()
    if not value or value.upper() in ("UNKNOWN", "NONE"):
        return None
    if _is_full_text(value):
        text = " ".join(value.lower().split())
        if any(p in text for p in FULL_TEXT_COPYLEFT):
            return False
        return True if any(p in text for p in FULL_TEXT_PERMISSIVE) else None
    return _expression_verdict(value.lower())


def _is_full_text(licence: str) -> bool:
    """Return whether a licence field holds a licence's whole text rather than its name."""
    return "\n" in licence or len(licence) > MAX_EXPRESSION


def _expression_verdict(expression: str) -> bool | None:
    """Judge an SPDX expression (OR of ANDs, WITH exceptions) or a short licence name."""
    flat = expression.replace("(", " ").replace(")", " ")
    alternatives = [_all_of(a) for a in re.split(r"\s+or\s+", flat)]
    if any(v is True for v in alternatives):  # any permissive alternative of an OR is enough
        return True
    return False if all(v is False for v in alternatives) else None


def _all_of(conjunction: str) -> bool | None:
    """Judge `A AND B ...`: every part must be permissive; an exception (WITH) only adds rights."""
    parts = [re.sub(r"\s+with\s+.*$", "", a).strip() for a in re.split(r"\s+and\s+", conjunction)]
    verdicts = [_atom_verdict(a) for a in parts if a]
    if any(v is False for v in verdicts):
        return False
    return True if verdicts and all(v is True for v in verdicts) else None


def _atom_verdict(atom: str) -> bool | None:
    """Judge one SPDX id or licence name by whole words."""
    if _spdx(atom) in PERMISSIVE_SPDX:
        return True
    words = set(re.findall(r"[a-z0-9]+", atom))
    if any(w in words or w.rstrip("v23") in words for w in COPYLEFT_WORDS) or "gpl" in atom:
        return False
    phrase = " ".join(re.findall(r"[a-z0-9]+", atom))
    return True if any(re.search(rf"\b{p}\b", phrase) for p in PERMISSIVE_WORDS) else None


def _spdx(atom: str) -> str:
    """Normalise one SPDX id: lower case, no -only / -or-later / + suffix."""
    return re.sub(r"(-only|-or-later|\+)$", "", atom.strip())


def _licence_field(dist: metadata.Distribution) -> str | None:
    """Return the first filled-in licence field: License-Expression, then License."""
    for key in ("License-Expression", "License"):
        value = dist.metadata[key]
        if value and value.strip() and value.strip().upper() != "UNKNOWN":
            return value.strip()
    return None


def distribution_licence(dist: metadata.Distribution) -> str:
    """Return the licence a distribution declares, short enough for the card's table."""
    value = _licence_field(dist)
    if value and not _is_full_text(value):
        return value
    classifiers = [c for c in (dist.metadata.get_all("Classifier") or [])
                   if c.startswith("License ::")]  # fmt: skip
    named = "; ".join(c.split("::")[-1].strip() for c in classifiers)
    if named:
        return named
    return value.splitlines()[0][:MAX_EXPRESSION] if value else "unknown"


def dist_is_permissive(dist: metadata.Distribution) -> bool:
    """Return whether a distribution's declared licence is permissive."""
    return is_permissive(_licence_field(dist), dist.metadata.get_all("Classifier") or [])
