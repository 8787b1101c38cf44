"""Secrets never reach a prompt; ignored files are recognized."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jpilot.plugins import context, ignore
from jpilot.plugins.api import CompletionRequest
from jpilot.plugins.secrets import REDACTED, mask, scrub, spans
from jpilot.plugins.settings import Settings

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


# --- hostile ignore files (issue 23, finding 3) -------------------------------------------


def run_isolated(code: str, timeout: float = 120) -> str:
    """Run `code` in a fresh interpreter with 1 GiB of address space; return its stdout.

    The timeout is a liveness bound, far above the time a linear check takes."""
    limit = "import resource; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
    out = subprocess.run(
        [sys.executable, "-c", limit + textwrap.dedent(code)],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


@pytest.mark.parametrize("target", ["/dev/zero", "fifo"])
def test_an_ignore_file_that_never_ends_fails_closed(tmp_path: Path, target: str):
    if target == "fifo":
        os.mkfifo(tmp_path / ".jpilotignore")
    else:
        (tmp_path / ".jpilotignore").symlink_to(target)
    answer = run_isolated(f"""
        from pathlib import Path
        from jpilot.plugins import ignore
        root = Path({str(tmp_path)!r})
        print(ignore.is_ignored(root / "x.py", [root]))
    """)
    assert answer == "True"


def test_an_oversized_ignore_file_fails_closed(tmp_path: Path):
    (tmp_path / ".gitignore").write_text("nothing\n" * (ignore.MAX_IGNORE_BYTES // 8 + 1))
    assert ignore.is_ignored(tmp_path / "x.py", [tmp_path])
    (tmp_path / ".gitignore").write_text("nothing\n")
    assert not ignore.is_ignored(tmp_path / "x.py", [tmp_path])


def test_a_symlinked_ignore_file_fails_closed(tmp_path: Path):
    (tmp_path / "rules").write_text("nothing\n")
    (tmp_path / ".gitignore").symlink_to(tmp_path / "rules")
    assert ignore.is_ignored(tmp_path / "x.py", [tmp_path])


def test_a_catastrophic_pattern_is_answered(tmp_path: Path):
    # a backtracking matcher needs hours for this; the NFA a few thousand steps
    (tmp_path / ".gitignore").write_text("*a" * 14 + "*b\n")
    answer = run_isolated(f"""
        from pathlib import Path
        from jpilot.plugins import ignore
        root = Path({str(tmp_path)!r})
        names = ["a" * 60, "a" * 20 + "b"]
        print(*(ignore.is_ignored(root / name, [root]) for name in names))
    """)
    assert answer == "False True"


def test_spending_the_step_budget_fails_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / ".gitignore").write_text(("*a" * 20 + "*b\n") * 50)
    name = "a" * 200
    assert not ignore.is_ignored(tmp_path / name, [tmp_path])
    monkeypatch.setattr(ignore, "MAX_STEPS", 1000)
    (tmp_path / ".gitignore").write_text(("*a" * 20 + "*b\n") * 51)  # a new answer
    assert ignore.is_ignored(tmp_path / name, [tmp_path])


def test_any_error_in_the_check_means_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / ".gitignore").write_text("other.py\n")

    def broken(data: bytes) -> list[object]:
        raise RuntimeError("boom")

    monkeypatch.setattr(ignore.ignore_rules, "parse", broken)
    assert ignore.is_ignored(tmp_path / "x.py", [tmp_path])
    assert ignore.is_ignored(Path("relative/x.py"), [])


# --- git's semantics (issue 23, finding 4); tests/unit/test_ignore_git.py compares with git --


def test_without_a_workspace_root_the_folder_chain_is_read(tmp_path: Path):
    (tmp_path / ".git").mkdir()
    (tmp_path / ".gitignore").write_text("gen/\n")
    (tmp_path / "pkg" / "gen").mkdir(parents=True)
    assert ignore.is_ignored(tmp_path / "pkg" / "gen" / "x.py", [])
    assert not ignore.is_ignored(tmp_path / "pkg" / "x.py", [])
    # a workspace root inside the repository: the repository's rules still apply
    assert ignore.is_ignored(tmp_path / "pkg" / "gen" / "x.py", [tmp_path / "pkg"])


def test_a_file_in_an_excluded_folder_cannot_be_re_included(tmp_path: Path):
    (tmp_path / ".gitignore").write_text("neg/\n!neg/keep.py\n*.log\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / ".gitignore").write_text("!keep.log\n")
    assert ignore.is_ignored(tmp_path / "neg" / "keep.py", [tmp_path])
    assert ignore.is_ignored(tmp_path / "sub" / "other.log", [tmp_path])
    assert not ignore.is_ignored(tmp_path / "sub" / "keep.log", [tmp_path])  # deeper wins


def test_dot_dot_is_normalized(tmp_path: Path):
    (tmp_path / ".gitignore").write_text("/anchored/\n")
    escaped = Path(f"{tmp_path}/nope/../anchored/x.py")
    assert ignore.is_ignored(escaped, [tmp_path])
    r = CompletionRequest(escaped.as_uri(), "python", "", 0, 1, Settings(), path=escaped,
                          workspace_roots=[tmp_path])  # fmt: skip
    assert context.jpilot_ignore_document(r) is True


def test_a_symlinked_folder_into_an_ignored_folder_is_ignored(tmp_path: Path):
    (tmp_path / ".gitignore").write_text("private/\n")
    (tmp_path / "private").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "private")
    assert ignore.is_ignored(tmp_path / "alias" / "x.py", [tmp_path])
    assert not ignore.is_ignored(tmp_path / "public.py", [tmp_path])


@pytest.mark.parametrize(
    "name",
    ["id_ecdsa", "id_ed25519", "credentials.json", ".npmrc", ".pypirc", ".git-credentials",
     ".pgpass", "store.p12", "prod.tfvars", "terraform.tfstate", ".env.local", ".aws/credentials",
     ".ssh/config", ".netrc", "cert.pem"],
)  # fmt: skip
def test_secrets_files_are_always_ignored(tmp_path: Path, name: str):
    assert ignore.is_ignored(tmp_path / "project" / name, [tmp_path])
    assert ignore.is_ignored(Path("/elsewhere") / name, [])


# --- the scrubber's coverage and the offset-keeping mask (issue 23, finding 5) ---------

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
HOOK = (
    "https://discord.com/api/webhooks/123456789012345678/"
    + "AbCdEfGhIjKlMnOpQrStUvWxYz_0123456789-x"
)
CAUGHT = [
    ("token = " + "glpat-" + "Ab1Cd2Ef3Gh4Ij5Kl6Mn", "glpat-Ab1Cd2Ef3Gh4Ij5Kl6Mn"),
    ("x = " + "xapp-1-A0123456789-1234567890123-" + "abcdef0123456789", "abcdef0123456789"),
    ("stripe.api_key = " + "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc", "4eC39HqLyjWDarjtT1zdp7dc"),
    ("k = " + "rk_live_" + "51H8abcdefghijklmnopqrst", "51H8abcdefghijklmnopqrst"),
    ("//registry.npmjs.org/:_authToken=" + "npm_" + "a" * 36, "npm_" + "a" * 36),
    ("pw = " + "pypi-AgEIcHlwaS5vcmc" + "CJGU2YjE0YzZhLWE3" * 3, "pypi-AgEIcHlwaS5vcmc"),
    ("HF = " + "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh", "AbCdEfGhIjKlMnOpQrStUvWxYz"),
    ("sg = " + "SG." + "ngeVfQFYQlKU0ufo8x5d1A" + "." + "TwL2iGABf9DHoTf-09kqeF8tAmbihYzrnop",
     "ngeVfQFYQlKU0ufo8x5d1A"),
    (f"curl -H 'X: {JWT}'", JWT.split(".")[2]),
    ("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=" + "q8Zp0Wc4TzL1b9aQ==;X=y",
     "q8Zp0Wc4TzL1b9aQ=="),
    ("Endpoint=sb://x.net/;SharedAccessKeyName=R;SharedAccessKey=" + "Zm9vYmFyYmF6cXV4MTIz=",
     "Zm9vYmFyYmF6cXV4MTIz="),
    ('DB = "postgres://app:' + 'Pg-s3cret@db:5432/app"', "Pg-s3cret"),
    ('M = "mongodb+srv://admin:' + 'M0ng0pass@cluster0.x.mongodb.net/db"', "M0ng0pass"),
    ("REDIS_URL=redis://:" + "r3dispass@localhost:6379/0", "r3dispass"),
    ("url = 'https://bob:" + "hunter22@example.com/repo.git'", "hunter22"),
    ('os.environ["AWS_SECRET_ACCESS_KEY"] = "' + AWS_SECRET + '"', AWS_SECRET),
    ('settings["password"] = "' + 'Sup3rS3cret"', "Sup3rS3cret"),
    ('token = os.getenv("DB_TOKEN", "' + 'dev-token-123")', "dev-token-123"),
    ("DB_PASSWORD=" + "plainEnvPass1", "plainEnvPass1"),
    ("export API_TOKEN=" + "abc123def456", "abc123def456"),
    ("database:\n  password: " + "yamlPass99\n", "yamlPass99"),
    ('password = """' + 'tr1ple-quoted"""', "tr1ple-quoted"),
    ("private_key = '" + "MIIBVwIBADANBgkqhkiG'", "MIIBVwIBADANBgkqhkiG"),
    ('credentials = "' + 'cr3d-value"', "cr3d-value"),
    ('passphrase: "' + 'correct horse battery"', "correct horse battery"),
    ("Authorization: Basic " + "dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
    ('headers = {"Authorization": "Bearer ' + 'abc123def456ghi789"}', "abc123def456ghi789"),
    (f"WEBHOOK = '{HOOK}'", "AbCdEfGhIjKlMnOpQrStUvWxYz_0123456789-x"),
    ("Server=db;User Id=sa;Password=" + "myPass123;", "myPass123"),
    ("mysql --password=" + "hunter22 -h db", "hunter22"),
    ("<password>" + "xmlPass77</password>", "xmlPass77"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "secret"), CAUGHT)
def test_every_listed_secret_is_caught(text: str, secret: str):
    out, n = scrub(text)
    assert secret not in out and n >= 1
    masked = mask(text)
    assert secret not in masked and len(masked) == len(text)
    assert masked[:3] == text[:3]  # the name is kept


@pytest.mark.parametrize(
    "code",
    [
        'tokenizer = "gpt2"',
        "password: str = ''",
        "    token: str",
        "token = tok",
        "kwargs = dict(token=token,",
        "password = get_password()",
        'secret = os.environ["SECRET"]',
        'if password == "":',
        'parser.add_argument("--token", help="API token")',
        'url = "https://example.com:8443/path"',
        "self.tokens = tokens",
        "def token_count(text):\n    return len(text.split())\n",
        'x = "<redacted>"',
    ],
)
def test_ordinary_code_is_left_alone(code: str):
    assert scrub(code) == (code, 0) and mask(code) == code


def test_mask_keeps_every_offset_line_and_column():
    text = f"# héllo 🐍\nkey = '{AWS_ID}'\n{KEY}\npassword = \"hunter2hunter\"\nx = 1\n"
    masked = mask(text)
    assert len(masked) == len(text)
    assert masked.splitlines() == [
        "# héllo 🐍",
        "key = '" + "*" * len(AWS_ID) + "'",
        *("*" * len(line) for line in KEY.splitlines()),
        'password = "' + "*" * 13 + '"',
        "x = 1",
    ]
    assert mask(masked) == masked  # idempotent
    assert mask(text, filler="x").count("x") == masked.count("*") + text.count("x")
    assert [text[a:b] for a, b in spans(text)][0] == AWS_ID


def test_scrub_and_mask_hide_the_same_characters():
    text = "\n".join(t for t, _ in CAUGHT)
    found = spans(text)
    masked = mask(text)
    hidden = {i for a, b in found for i in range(a, b) if text[i] not in "\r\n"}
    assert {i for i, (a, b) in enumerate(zip(text, masked, strict=True)) if a != b} == hidden
    out, n = scrub(text)
    assert n == len(found) and out.count(REDACTED) == n
    assert scrub(out) == (out, 0)  # scrubbing twice changes nothing


PIECES = [
    "password",
    "token",
    " = ",
    "=",
    ": ",
    '"',
    "'",
    '"""',
    "\n",
    "\r\n",
    " ",
    "abc123",
    "://",
    "u:p@",
    "🐍",
    "é",
    AWS_ID,
    GH,
    "-----BEGIN RSA PRIVATE KEY-----",
    "eyJ",
    ".",
]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(PIECES), max_size=30), st.sampled_from(["", " ", "\n"]))
def test_mask_changes_only_secret_characters(pieces: list[str], glue: str):
    text = glue.join(pieces)
    masked = mask(text)
    assert len(masked) == len(text)
    hidden = {i for a, b in spans(text) for i in range(a, b)}
    for i, (a, b) in enumerate(zip(text, masked, strict=True)):
        assert a == b or (i in hidden and b == "*" and a not in "\r\n")
    if glue:  # a token glued to the word before it is not a token
        assert AWS_ID not in masked and GH not in masked
