"""Find and replace secrets (cloud keys, tokens, private keys, passwords) in prompt text.

The patterns favour recall on the common shapes: a false positive costs a few tokens
of context, a false negative sends a secret to the model.
"""

from __future__ import annotations

import re

REDACTED = "<redacted>"

_PATTERNS = [
    # PEM private key blocks (RSA, EC, OPENSSH, PGP, ...), also when cut off unterminated
    re.compile(
        r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY( BLOCK)?-----.*?"
        r"(-----END ([A-Z0-9 ]*)PRIVATE KEY( BLOCK)?-----|\Z)",
        re.S,
    ),
    re.compile(r"\b(AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}\b"),  # AWS key ids
    # AWS secret access keys next to their usual names
    re.compile(r"(?i)(aws_?secret_?(access_?)?key\s*[:=]\s*['\"]?)[A-Za-z0-9/+=]{40}"),
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,255}\b"),  # GitHub tokens
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{22,255}\b"),  # GitHub fine-grained tokens
    re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b"),  # Slack tokens
    re.compile(r"https://hooks\.slack\.com/services/[A-Za-z0-9/]+"),  # Slack webhooks
    re.compile(r"\bsk-[A-Za-z0-9_-]{20,}\b"),  # OpenAI-style API keys
    re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),  # Google API keys
    # password = "...", "api_key": '...', SECRET_TOKEN="..." (the value only is replaced)
    re.compile(
        r"(?i)((?:passw(?:or)?d|passwd|pwd|secret|token|api_?key|access_?key|auth)"
        r"[A-Za-z0-9_]*['\"]?\s*(?::=|=|:)\s*[rbuf]?)(['\"])(?!\2|<redacted>)[^'\"\n]{3,}\2"
    ),
]


def scrub(text: str) -> tuple[str, int]:
    """Replace every secret in `text`; return the new text and how many were replaced."""
    total = 0
    for pattern in _PATTERNS:
        text, n = pattern.subn(_replacement, text)
        total += n
    return text, total


def _replacement(match: re.Match[str]) -> str:
    """Keep the name part of an assignment and quote the redaction like the original."""
    groups = match.groups()
    if match.re is _PATTERNS[-1]:
        return f"{groups[0]}{groups[1]}{REDACTED}{groups[1]}"
    if match.re is _PATTERNS[2]:
        return f"{groups[0]}{REDACTED}"
    return REDACTED
