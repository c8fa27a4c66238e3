"""A failure's cause as a short hash, so failures group by cause across runs, agents,
environments and orchestrators (the failures-by-cause pages, FailureGroup).

The hash is of the failure's message (else of its log excerpt's error line) with what changes
from one occurrence to the next replaced by placeholders: URLs keep their scheme, host and
fixed path (ids <id>, query <query>), then quoted values <q> (but for a locator's attribute,
[@data-test='pay-now'], which names the element), UUIDs <uuid>, times and dates <time>, paths
and file names <path>, IP addresses and hosts with digits <host>, hex ids <hex>, durations
<duration>, an XPath step's tag *, environment names <env>, numbers and nulls <n>. What tells
causes apart stays: the words, a service's name (payments-api), an agent's name but for its
numbers. Explainable: the page shows the normalized text, which is what is hashed. Versioned:
the hash covers FINGERPRINT_VERSION, stored beside every fingerprint; bump it with any change
to the rules, so fingerprints made by different rules never collide.

Fast, as sync fingerprints every failed result (tens of thousands a pass): the regexes are
compiled once, and a message takes at most three passes (its URLs, one alternation of every
other rule, whitespace). Plain Python: no Django.
"""

from __future__ import annotations

import hashlib
import re

FINGERPRINT_VERSION = 1

MAX_LENGTH = 500  # of the normalized text
MAX_INPUT = 8 * MAX_LENGTH  # of the text normalized: a guard against huge messages

# Environments, replaced wherever they stand alone or as a host's label (staging.shop.example,
# payments-api.qa): the same cause in staging and in QA is one cause.
ENVIRONMENTS = (
    "staging", "qa", "uat", "preprod", "pre-prod", "production", "prod", "dev", "sandbox",
)  # fmt: skip
# File names with one of these extensions are replaced like paths (screenshots, fixtures).
FILE_EXTENSIONS = (
    "png", "jpe?g", "gif", "bmp", "webp", "svg", "json", "xml", "csv", "tsv", "txt", "log",
    "html?", "pdf", "zip", "gz", "tgz", "har", "mp4", "webm", "ya?ml",
)  # fmt: skip

# URLs keep their scheme, host and fixed path segments; segments with a digit (ids, except
# versions like v2) become <id>, a query string <query>, a fragment goes.
_URL = re.compile(
    r"\b([A-Za-z][A-Za-z0-9+.-]*://[^/\s?#'\"<>]+)"  # scheme and host
    r"([^\s?#'\"<>]*[^\s?#'\"<>.,;:!)\]])?"  # path, without a sentence's punctuation
    r"(\?[^\s#'\"<>]*[^\s#'\"<>.,;:!)\]])?(#[^\s'\"<>]*[^\s'\"<>.,;:!)\]])?"  # query, fragment
)
_URL_SEGMENT = re.compile(r"/(?![vV][0-9]+(?:/|$))[^/]*[0-9][^/]*")

_Q = r"(?P<q>(?<![\w'\"`])(?:'[^'\n]*'|\"[^\"\n]*\"|`[^`\n]*`)(?!\w))"
_UUID = (
    r"(?P<uuid>(?<![0-9A-Za-z])[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}(?![0-9A-Za-z]))"
)
_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)
_WEEKDAY = r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,?\s+)?"
_TIME = (
    r"(?P<time>(?<![\w.:])(?:(?=[0-9])(?:"
    # 2026-12-04, 2026-12-04T04:52:00.123+01:00, 2026/12/04 04:52
    r"[0-9]{4}[-/][0-9]{2}[-/][0-9]{2}(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]+)?)?)?"
    r"(?:Z|[+-][0-9]{2}:?[0-9]{2})?"
    r"|[0-9]{1,2}[/.][0-9]{1,2}[/.][0-9]{4}"  # 04/12/2026, 4.12.2026
    r"|[0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]+)?)?(?:\s?[AaPp][Mm]\b)?"  # 04:52, 4:52:00 PM
    rf"|[0-9]{{1,2}}\s+{_MONTH}\s+[0-9]{{4}}"  # 4 Dec 2026
    rf")|(?=[A-Z])(?:{_WEEKDAY}[0-9]{{1,2}}\s+{_MONTH}\s+[0-9]{{4}}"  # Thu, 04 Dec 2026
    rf"|{_WEEKDAY}{_MONTH}\s+[0-9]{{1,2}}(?:,?\s+[0-9]{{4}})?"  # Dec 4, 2026
    r"))(?:\s?(?:Z|UTC|GMT)\b)?(?![0-9]))"
)
_HEX = r"(?P<hex>(?<![0-9A-Za-z])(?=[a-fA-F]*[0-9])[0-9a-fA-F]{8,}(?![0-9A-Za-z]))"
_PATH = (
    r"(?P<path>"
    r"(?<![\w.:/~@\\-])(?:~|\.{1,2})?(?:/[\w.@+-]+){2,}/?"  # /tmp/x/y.png, ./a/b, ~/a/b
    r"|(?<![\w\\])[A-Za-z]:[\\/][^\s'\"<>|*?]*"  # C:\Users\x, D:/builds
    r"|(?<![\w\\])\\\\[^\s'\"<>|*?]+"  # \\server\share
    r"|(?<![\w.@/\\-])(?=[\w+-]+\.)[\w+-]+(?:\.[\w+-]+)*"  # cart-seed.json, shot_3.png
    rf"\.(?:{'|'.join(FILE_EXTENSIONS)})(?![\w-]|\.\w)"
    r")"
)
_HOST = (
    r"(?P<host>(?<![\w.@-])(?:"
    r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}"  # 10.16.4.2
    r"|(?=[A-Za-z0-9.-]*[0-9])[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"  # agent-2.ci.example
    r")(?::[0-9]{1,5})?(?![\w-]|\.\w))"
)
_UNITS = (
    r"(?:ms|msecs?|milliseconds?|[uµn]s|s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?"
    r"|d|days?)"
)
_DURATION = (  # 1500ms, 2.5 s, 30 seconds, 1h 30m
    rf"(?P<duration>(?<![\w.])(?=[-+0-9])[-+]?"
    rf"(?:[0-9]+(?:\.[0-9]+)?\s?{_UNITS}(?![^\W\d])\s?)+(?<!\s))"
)
# An XPath step's element name: the attribute after it tells the locator, the tag can change.
_TAG = r"(?P<tag>(?<=/)[A-Za-z_][\w.-]*(?=\[))"
_ENV = rf"(?P<env>(?<![\w+@-])(?=[squpdSQUPD])(?i:{'|'.join(ENVIRONMENTS)})(?![\w+@-]))"
_N = (
    r"(?P<n>(?<![\w.])(?=[nNu])(?:null|None|nil|undefined|NaN)(?!\w)"  # a value that is missing
    r"|(?<![\w.])[-+]?(?:[0-9]+(?:,[0-9]{3})*(?:\.[0-9]+)*|\.[0-9]+))"
)

# One alternation, first rule first where several start at the same character.
# The first two checks only skip, fast, the characters no rule starts at: inside words, spaces.
_RULES = (_Q, _UUID, _TIME, _PATH, _HOST, _HEX, _DURATION, _TAG, _ENV, _N)
_TOKENS = re.compile(rf"(?<![0-9A-Za-z])(?=[\w'\"`/~.\\+-])(?:{'|'.join(_RULES)})")
_PLACEHOLDERS = {
    "q": "<q>",
    "uuid": "<uuid>",
    "time": "<time>",
    "path": "<path>",
    "host": "<host>",
    "hex": "<hex>",
    "duration": "<duration>",
    "tag": "*",
    "env": "<env>",
    "n": "<n>",
}
_SPACE = re.compile(r"\s+")
_ERROR_LINE = re.compile(r"(?i)\b(?:error|exception|fatal|fail(?:ed|ure|s)?|panic|critical)\b")


def failure_normalize(message: str, log_excerpt: str = "") -> str:
    """What is hashed: the message (else the log excerpt's error line, else its last line)
    with its volatile parts replaced by placeholders, whitespace folded, at most MAX_LENGTH."""
    text = message.strip() or _log_line(log_excerpt)
    if not text:
        return ""
    text = text[:MAX_INPUT]
    if "://" in text:
        text = _URL.sub(_url, text)
    text = _TOKENS.sub(_token, text)
    return _SPACE.sub(" ", text).strip()[:MAX_LENGTH].rstrip()


def failure_fingerprint(message: str, log_excerpt: str = "") -> tuple[str, str]:
    """(hash, normalized text): 16 hex digits of the sha256 of the version and the text;
    ("", "") when there is nothing to hash."""
    normalized = failure_normalize(message, log_excerpt)
    if not normalized:
        return "", ""
    digest = hashlib.sha256(f"{FINGERPRINT_VERSION}:{normalized}".encode()).hexdigest()
    return digest[:16], normalized


def _log_line(log_excerpt: str) -> str:
    """The last line of the excerpt that reads like an error, else its last non-empty one."""
    lines = [line.strip() for line in log_excerpt.splitlines() if line.strip()]
    return next(
        (line for line in reversed(lines) if _ERROR_LINE.search(line)), lines[-1] if lines else ""
    )


def _url(match: re.Match[str]) -> str:
    origin, path, query = match.group(1), match.group(2) or "", match.group(3)
    return origin + _URL_SEGMENT.sub("/<id>", path) + ("?<query>" if query else "")


def _token(match: re.Match[str]) -> str:
    rule = match.lastgroup or "n"  # every rule is a named group
    if rule == "q":
        text, start, end = match.string, match.start(), match.end()
        if start and text[start - 1] == "=" and text[end : end + 1] == "]":
            # A locator's attribute ([@data-test='pay-now']) names the element: it stays,
            # but for the ids in it.
            return text[start] + _TOKENS.sub(_token, text[start + 1 : end - 1]) + text[end - 1]
    return _PLACEHOLDERS[rule]
