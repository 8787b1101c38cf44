"""Find secrets (cloud keys, tokens, private keys, passwords) in text, and hide them.

API (every model path must send text through one of these first):

- `spans(text) -> list[tuple[int, int]]`: where the secrets are, as sorted, disjoint
  `[start, end)` indexes into `text` (code points).
- `scrub(text) -> tuple[str, int]`: each secret replaced by `<redacted>` (REDACTED); the
  names, quotes and everything else are kept. Returns the text and how many secrets were
  replaced. For prompts, where positions do not matter.
- `mask(text, filler="*") -> str`: each character of a secret replaced by `filler`, one
  code point per code point, line breaks kept. Lengths, lines and columns are unchanged,
  so an offset or range computed on the masked text is valid on the original: for hover,
  hints, docstrings, explain, and the pool, wherever a feature needs positions.

Only the secret value is hidden, not the name it is assigned to: `password = "hunter2"`
becomes `password = "*******"`. The rules favour recall: a false positive costs a few
characters of context, a false negative sends a secret to the model.

The rules are data (RULES): a name, keywords, a regex and the group holding the secret,
after gitleaks' rule set (github.com/gitleaks/gitleaks, config/gitleaks.toml, MIT) for
the provider tokens, plus assignment rules for names such as password, token, api_key,
private_key, credentials and passphrase in code, JSON, YAML, .env, INI and XML shapes.
detect-secrets was considered and not used: it needs `requests` and PyYAML, scans line
by line, reports values rather than positions, and its keyword regexes backtrack.

Fast path: a rule's regex is tried only where one of its keywords starts in the lowercased
text (found by one regex of literals, which `re` scans quickly), as gitleaks prefilters
by keyword.

Linear time: Python's `re` backtracks, so every rule is written to scan each character a
bounded number of times. Every repeat has a finite bound, long runs are possessive (`+`)
so they never give characters back, and a token rule starts only where its run of
characters starts (a lookbehind), never in the middle of one. tests/unit/test_secrets_linear.py
checks these properties on the parsed regexes and runs megabytes of adversarial text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

REDACTED = "<redacted>"
FILLER = "*"


@dataclass(frozen=True)
class Rule:
    """One kind of secret: the regex, where it may start, the group holding the secret."""

    name: str
    regex: re.Pattern[str]
    keywords: re.Pattern[str]  # lowercase literals: where a match may start
    anchored: bool  # False: the keywords only gate the rule, which scans the whole text
    group: int | str = 0
    accept: Callable[[re.Match[str]], tuple[int, int] | None] | None = None


# Names that hold secrets (case-insensitive), in code, JSON, YAML, .env, INI and XML.
NAME = (
    r"(?i:passw(?:or)?d|passwd|passphrase|pwd|secret|token|api[_-]?key|apikey"
    r"|access[_-]?key|private[_-]?key|signing[_-]?key|encryption[_-]?key|master[_-]?key"
    r"|session[_-]?key|auth[_-]?key|authorization|credentials?|conn(?:ection)?[_-]?string"
    r"|(?<![a-z])pass(?![a-z]))"
)
# where a NAME can start (lowercase)
NAME_STARTS = ("pass", "pwd", "secret", "token", "api", "access", "private", "signing",
               "encryption", "master", "session", "auth", "credential", "conn")  # fmt: skip
# what may follow the keyword inside the name: DB_PASSWORD_FILE, passwordHash, tokens
NAME_TAIL = r"(?i:e?s)?(?:[_.-][A-Za-z0-9_.-]{0,40}+|[A-Z][A-Za-z0-9_]{0,40}+)?"
_NAME_RE = re.compile(NAME)
_NOT_SECRETS = frozenset(
    "none null nil true false yes no ~ str bytes int bool float any object optional"
    " secretstr secretbytes password token secret string required changeme".split()
)


def _quoted(match: re.Match[str]) -> tuple[int, int] | None:
    """Accept a quoted value unless it is already hidden."""
    value = match.group("value")
    if value.startswith(REDACTED) or not value.strip(FILLER):
        return None
    return match.span("value")


def _bare(match: re.Match[str]) -> tuple[int, int] | None:
    """Accept an unquoted `NAME=value` / `name: value` if the name holds secrets and the
    value is not code (a call, a reference, a type, a literal)."""
    if not _NAME_RE.search(match.group("name")):
        return None
    start = match.start("value")
    value = match.group("value")
    cut = value.find(" #")
    value = (value if cut < 0 else value[:cut]).rstrip()
    op = match.group("op")
    if (
        len(value) < 3
        or value.lower() in _NOT_SECRETS
        or value[0] in "$%{<([|>&*!\\"
        or value[-1] in ",);([{]}:\\"
        or value.startswith(REDACTED)
        or not value.strip(FILLER)
        # `name: type = default` is a Python annotation, not YAML
        or (op.startswith(":") and re.match(r"[A-Za-z_][\w.\[\], |]*=", value))
        # `name = value` with spaces is code unless the value cannot be an expression
        or (op != "=" and "=" in op and (re.fullmatch(r"[\w.]+", value)
                                         or re.search(r"[\s()\[\]{}\"'`,]", value)))
    ):  # fmt: skip
        return None
    return start, start + len(value)


def _has_digit(match: re.Match[str]) -> tuple[int, int] | None:
    """Accept a bearer-looking token only if it has a digit (not an English word)."""
    value = match.group("value")
    return match.span("value") if any(c.isdigit() for c in value) else None


def _xml(match: re.Match[str]) -> tuple[int, int] | None:
    """Accept an XML element's text if the element's name holds secrets."""
    return match.span("value") if _NAME_RE.search(match.group("name")) else None


def _rule(
    name: str, keywords: str, pattern: str, group: int | str = 0,
    accept: Callable[[re.Match[str]], tuple[int, int] | None] | None = None, flags: int = 0,
    anchored: bool = True,
) -> Rule:  # fmt: skip
    """Compile one rule; keywords are space-separated lowercase literals."""
    words = re.compile("|".join(re.escape(k) for k in keywords.split()))
    return Rule(name, re.compile(pattern, flags), words, anchored, group, accept)


B64 = "A-Za-z0-9+/="
TOK = r"A-Za-z0-9_\-"
# Each rule's regex starts where one of its keywords starts (matched on lowercased text).
RULES: tuple[Rule, ...] = (
    _rule("private-key", "-----begin",
          r"-----BEGIN[ A-Z0-9_-]{0,64}PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
          r"(?:-----END[ A-Z0-9_-]{0,64}PRIVATE KEY(?: BLOCK)?-----|\Z)"),
    _rule("aws-access-key-id", "akia asia abia acca agpa aida aroa anpa anva aipa a3t",
          r"(?<![A-Z0-9])(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)"
          r"[A-Z0-9]{16}(?![A-Z0-9])"),
    _rule("aws-secret-access-key", "aws",
          r"(?i:aws_?secret_?(?:access_?)?key)[A-Za-z0-9_.-]{0,20}+[\"'\]]{0,2}+[ \t]{0,8}+"
          rf"(?:=>|[:=]{{1,2}}|,)[ \t]{{0,8}}+[\"']?([{B64}]{{40}})(?![{B64}])", 1),
    _rule("github", "ghp_ gho_ ghu_ ghs_ ghr_ github_pat_",
          r"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,255}+|github_pat_\w{22,255}+)"
          r"(?![A-Za-z0-9_])"),
    _rule("gitlab", "glpat- gldt- glrt- glptt- glsoat- glcbt- glffct- glimt- glagent- gloas-"
          " glft- glwt- gr1348941",
          rf"(?<![{TOK}])(?:gl(?:pat|dt|rt|ptt|soat|cbt|ffct|imt|agent|oas|ft|wt)-"
          rf"|GR1348941)[{TOK}.]{{20,255}}+"),
    _rule("slack", "xox xapp- https://hooks.slack.com/",
          rf"(?<![{TOK}])(?:xox[abposre]-[{TOK}]{{10,255}}+|xapp-\d-[{TOK}]{{10,255}}+)"
          r"|https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_+-]{10,255}+"),
    _rule("stripe", "sk_live_ rk_live_ sk_test_ rk_test_ sk_prod_ rk_prod_ whsec_",
          r"(?<![A-Za-z0-9_])(?:[sr]k_(?:live|test|prod)_[A-Za-z0-9]{10,255}+"
          r"|whsec_[A-Za-z0-9]{20,255}+)(?![A-Za-z0-9_])"),
    _rule("npm", "npm_", r"(?<![A-Za-z0-9_])npm_[A-Za-z0-9]{36}(?![A-Za-z0-9_])"),
    _rule("pypi", "pypi-",
          rf"(?<![{TOK}])pypi-(?:Ag[{TOK}]{{30,1000}}+|[A-Za-z0-9_]{{40,1000}}+(?![{TOK}]))"),
    _rule("huggingface", "hf_ api_org_",
          r"(?<![A-Za-z0-9_])(?:hf|api_org)_[A-Za-z0-9]{30,64}+(?![A-Za-z0-9_])"),
    _rule("sendgrid", "sg.", rf"(?<![{TOK}.])SG\.[{TOK}]{{16,32}}+\.[{TOK}]{{16,64}}+"),
    _rule("jwt", "eyj",
          rf"(?<![{TOK}])eyJ[{TOK}]{{8,8192}}+\.eyJ[{TOK}]{{8,8192}}+\.[{TOK}]{{0,8192}}+"),
    _rule("azure", "accountkey sharedaccesskey primarykey secondarykey sig=",
          r"(?i:(?:Account|SharedAccess|Primary|Secondary)Key)[ \t]{0,4}+=[ \t]{0,4}+"
          rf"([{B64}]{{8,1024}}+)|(?<![A-Za-z0-9])sig=([A-Za-z0-9%+/=]{{20,512}}+)"),
    # scheme://user:password@host (postgres, mongodb+srv, redis, amqp, https, ...)
    _rule("url-password", "://", r"://[^\s:/?#@'\"`<>]{0,256}+:([^\s/?#'\"`<>]{1,256})@", 1),
    _rule("authorization", "authorization",
          r"(?i:authorization)[\"']?[ \t]{0,4}+[:=,][ \t]{0,4}+[\"']?[ \t]{0,4}+"
          r"(?i:basic|bearer|token|digest|negotiate|apikey)[ \t]{1,4}+"
          r"([A-Za-z0-9+/=._~:-]{4,4096}+)", 1),
    _rule("bearer", "basic bearer",
          r"(?<![A-Za-z0-9])(?:Basic|Bearer)[ \t]{1,4}+(?P<value>[A-Za-z0-9+/=._~-]{16,4096}+)",
          accept=_has_digit),
    _rule("discord-webhook", "https://discord https://canary.discord https://ptb.discord",
          r"https://(?:(?:canary|ptb)\.)?discord(?:app)?\.com/api/(?:v\d{1,2}/)?webhooks/"
          rf"\d{{5,30}}+/[{TOK}]{{20,255}}+"),
    _rule("openai", "sk-", rf"(?<![{TOK}])sk-[{TOK}]{{20,512}}+"),
    _rule("google", "aiza gocspx- ya29.",
          rf"(?<![{TOK}])(?:AIza[{TOK}]{{35}}|GOCSPX-[{TOK}]{{28}}|ya29\.[{TOK}]{{20,2048}}+)"
          rf"(?![{TOK}])"),
    _rule("telegram", ":aa", r"(?<=[0-9]):(AA[A-Za-z0-9_-]{33})(?![A-Za-z0-9_-])", 1),
    _rule("misc-tokens", "shpat_ shpca_ shppa_ shpss_ doo_v1_ dop_v1_ dor_v1_ dapi"
          " age-secret-key- atatt3 key-",
          r"(?<![A-Za-z0-9_])(?:shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}|do[opr]_v1_[a-f0-9]{64}"
          r"|dapi[a-f0-9]{32}(?:-\d)?|AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}"
          r"|ATATT3[A-Za-z0-9_=-]{150,300}+|key-[0-9a-f]{32})(?![A-Za-z0-9_])"),
    _rule("twilio", "sk", r"(?<![A-Za-z0-9])SK[0-9a-fA-F]{32}(?![A-Za-z0-9])"),
    # password = "...", "api_key": '...', settings["password"] = "...",
    # os.getenv("DB_TOKEN", "..."), password: str = "...", token := `...`, x = """..."""
    _rule("assignment", " ".join(NAME_STARTS),
          NAME + NAME_TAIL + r"(?:(?P<q>[\"'`])\]?)?[ \t]{0,8}+"
          r"(?:=>|:=|[=!:]={0,2}|:[ \t]{0,4}+[A-Za-z_][\w.\[\], |]{0,40}+=|(?(q),|(?!)))"
          r"[ \t]{0,8}+(?:[rRbBuUfF]{1,2})?(?:(?P<tq>\"\"\"|''')|[\"'`])(?(tq)\s{0,64}+)"
          r"(?P<value>(?:[^\"'`\\\n]|\\[^\n]){3,4096}+)",
          accept=_quoted),
    # DB_PASSWORD=hunter2, export TOKEN=abc, password: hunter2 (YAML), password = s3cr3t!
    # (not anchored: it starts at a line start; the keywords only gate it)
    _rule("bare-assignment", " ".join(NAME_STARTS),
          r"^[ \t]{0,32}+(?:export[ \t]{1,4}+|set[ \t]{1,4}+|-[ \t]{1,4}+)?"
          r"(?P<name>[A-Za-z_][A-Za-z0-9_.-]{0,80}+)(?P<op>=|:[ \t]{1,8}+|[ \t]{1,8}+=[ \t]{1,8}+)"
          r"(?P<value>[^\s'\"`#][^\n]{2,4096}+)",
          accept=_bare, flags=re.M, anchored=False),
    # ...;Password=hunter2;... (ADO.NET, JDBC-style connection strings)
    _rule("connection-string", "password pwd",
          r"(?<![A-Za-z0-9_])(?i:password|pwd)[ \t]{0,4}+=[ \t]{0,4}+([^;'\"\s]{1,512}+)(?=;)", 1),
    # --password hunter2, --token=abc, curl -u user:pass
    _rule("command-line", "--pass --token --secret --api-key --apikey --auth-token -u --user",
          r"(?<![\w-])--(?i:password|passwd|pass|token|secret|api-key|apikey|auth-token)"
          r"[ =][\"']?([^\s'\"]{3,1024}+)"
          r"|(?<![\w-])(?:-u|--user)[ \t]{1,4}+[\"']?[^\s:'\"]{1,128}+:([^\s'\"]{3,256}+)"),
    # <password>hunter2</password>
    _rule("xml", "<",
          r"<(?P<name>[A-Za-z_][\w.:-]{0,60}+)>(?P<value>[^<\n]{3,1024}+)</(?P=name)>",
          accept=_xml),
)  # fmt: skip


def spans(text: str) -> list[tuple[int, int]]:
    """Return the secrets in `text` as sorted, disjoint [start, end) ranges."""
    lowered = text.lower()
    if len(lowered) != len(text):  # a few characters lowercase to two: keep the offsets
        lowered = "".join(c if len(c.lower()) != 1 else c.lower() for c in text)
    found: list[tuple[int, int]] = []
    for rule in RULES:
        for match in _matches(rule, text, lowered):
            span = _span(rule, match)
            if span is not None and span[0] < span[1] and REDACTED not in text[slice(*span)]:
                found.append(span)  # (a value already scrubbed is not a secret)
    found.sort()
    merged: list[tuple[int, int]] = []
    for start, end in found:
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _matches(rule: Rule, text: str, lowered: str) -> Iterator[re.Match[str]]:
    """Yield the rule's non-overlapping matches, each tried where a keyword starts."""
    if not rule.anchored:
        if rule.keywords.search(lowered):
            yield from rule.regex.finditer(text)
        return
    end = 0
    for hit in rule.keywords.finditer(lowered):
        if hit.start() >= end and (match := rule.regex.match(text, hit.start())):
            end = max(match.end(), hit.start() + 1)
            yield match


def _span(rule: Rule, match: re.Match[str]) -> tuple[int, int] | None:
    """Return the secret's range in one match (the first group that took part)."""
    if rule.accept is not None:
        return rule.accept(match)
    if rule.group:
        return match.span(rule.group)
    groups = [i for i in range(1, (match.re.groups or 0) + 1) if match.start(i) >= 0]
    return match.span(groups[0]) if groups else match.span()


def scrub(text: str) -> tuple[str, int]:
    """Replace every secret in `text` by REDACTED; return the new text and how many."""
    found = spans(text)
    if not found:
        return text, 0
    parts, last = [], 0
    for start, end in found:
        parts += [text[last:start], REDACTED]
        last = end
    parts.append(text[last:])
    return "".join(parts), len(found)


def mask(text: str, filler: str = FILLER) -> str:
    """Replace each character of every secret by `filler`, keeping line breaks: the
    result has the same length, lines and columns as `text`."""
    if len(filler) != 1:
        raise ValueError("mask's filler must be one character")
    found = spans(text)
    if not found:
        return text
    chars = list(text)
    for start, end in found:
        for i in range(start, end):
            if chars[i] not in "\r\n":
                chars[i] = filler
    return "".join(chars)
