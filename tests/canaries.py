"""Canary secrets, and a Python document holding them, for the privacy tests.

Each value is unique, so finding it (or a 12-character piece of it) anywhere a model
input, a log line or a request body is proof that it leaked.
"""

from __future__ import annotations

from collections.abc import Iterable

CANARIES = {
    "aws_key_id": "AKIAZ7CANARYQX4W3RTB",
    "aws_secret": "Zx9CanaryAwsSecret0123456789abcdefGHIJKLM",
    "github": "ghp_CanaryGithubToken0123456789abcdefghij",
    "password": "canary-Hunter2-pw-7741",
    "private_key": "MIIEcanaryPrivateKeyBody0123456789abcdefghijklmnopqrstuvwxyzABCD",
}

SOURCE = f'''import os

AWS_ACCESS_KEY_ID = "{CANARIES["aws_key_id"]}"
aws_secret_access_key = "{CANARIES["aws_secret"]}"
GITHUB_TOKEN = "{CANARIES["github"]}"
DB_PASSWORD = "{CANARIES["password"]}"
PRIVATE_KEY = """-----BEGIN RSA PRIVATE KEY-----
{CANARIES["private_key"]}
-----END RSA PRIVATE KEY-----"""


def connect(host, port):
    url = "postgres://" + host + ":" + str(port)
    return url


def total(values):
    s = 0
    for v in values:
        if v < 0:
            s += v
    return s
'''


def pieces(secret: str, size: int = 12) -> list[str]:
    """Return the secret's overlapping pieces of `size` characters (from its 4th on,
    past prefixes such as `ghp_` and `AKIA` that are no secret)."""
    return [secret[i : i + size] for i in range(4, max(5, len(secret) - size + 1))]


def leaked(texts: Iterable[str], marker: str | None = None) -> list[str]:
    """Return the names of the canaries (or `marker`) found, whole or in part, in `texts`."""
    found = set()
    for text in texts:
        for name, secret in CANARIES.items():
            if any(piece in text for piece in pieces(secret)):
                found.add(name)
        if marker is not None and marker in text:
            found.add("marker")
    return sorted(found)
