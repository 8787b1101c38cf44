"""Secrets never reach a prompt; ignored files are recognized."""

from __future__ import annotations

from pathlib import Path

import pytest

from jpilot.plugins import ignore
from jpilot.plugins.secrets import REDACTED, scrub

AWS_ID = "AKIA" + "ABCDEFGHIJKLMNOP"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
GH = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
SLACK = "xoxb-" + "123456789012-abcdefABCDEF"
KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\nabc\n-----END RSA PRIVATE KEY-----"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"key = '{AWS_ID}'", AWS_ID),
        (f"aws_secret_access_key = {AWS_SECRET}", AWS_SECRET),
        (f"TOKEN = '{GH}'", GH),
        (f"slack = {SLACK}", SLACK),
        (f"pem = '''{KEY}'''", "MIIEpAIBAAKCAQEA"),
        ('password = "hunter2hunter"', "hunter2hunter"),
        ('{"api_key": "0123456789abcdef"}', "0123456789abcdef"),
        ("DB_PASSWORD='s3cr3t!'", "s3cr3t!"),
    ],
)
def test_scrub_removes_secret(text: str, secret: str):
    out, n = scrub(text)
    assert secret not in out and REDACTED in out and n >= 1


def test_scrub_keeps_the_name_and_ordinary_code():
    out, _ = scrub('password = "hunter2hunter"\nx = compute(password)\n')
    assert out == f'password = "{REDACTED}"\nx = compute(password)\n'
    code = "def token_count(text):\n    return len(text.split())\n"
    assert scrub(code) == (code, 0)


def test_unterminated_private_key_block_is_removed():
    out, _ = scrub("k = '''-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk")
    assert "b3BlbnNzaC1rZXk" not in out


def test_gitignore_and_jpilotignore(tmp_path: Path):
    (tmp_path / ".gitignore").write_text("build/\n*.log\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / ".jpilotignore").write_text("private_*.py\n")
    roots = [tmp_path]
    assert ignore.is_ignored(tmp_path / "build" / "x.py", roots)
    assert ignore.is_ignored(tmp_path / "a" / "run.log", roots)
    assert ignore.is_ignored(tmp_path / "sub" / "private_notes.py", roots)
    assert not ignore.is_ignored(tmp_path / "private_notes.py", roots)  # rule is in sub/
    assert not ignore.is_ignored(tmp_path / "sub" / "main.py", roots)
    assert ignore.is_ignored(tmp_path / ".env", roots)
    assert ignore.is_ignored(Path("/elsewhere/id_rsa"), roots)
    assert not ignore.is_ignored(Path("/elsewhere/build/x.py"), roots)  # outside the root


def test_ignore_file_changes_are_picked_up(tmp_path: Path):
    target = tmp_path / "gen.py"
    assert not ignore.is_ignored(target, [tmp_path])
    (tmp_path / ".jpilotignore").write_text("gen.py\n")
    assert ignore.is_ignored(target, [tmp_path])
