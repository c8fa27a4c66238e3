"""One catalogue of realistic reasons a UI or API test fails, shared by the three emulators.

An emulator gives each failing case one cause when it builds its estate, of the kind that fits
how the case behaves (`ALWAYS` broken, `TRANSIENT` flaky, `AGENT`-bound), and renders it for
every occurrence with ids, numbers, timings and hosts drawn from that occurrence's own
generator. So the same environment outage or locator change shows up on every vendor, each
time with different details, and fits the case it hit: the service, page and element come
from the case's title. `cause_of(message)` names the cause a message was rendered from (the
tests use it; grouping failures by cause can start from it).

Plain Python: no Django, no vendor knowledge.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass

ALWAYS = "always"  # fails every time until somebody fixes the test or the product
TRANSIENT = "transient"  # fails now and then, passes when run again
AGENT = "agent"  # fails only on one agent, worker or machine


@dataclass(frozen=True)
class LogLine:
    level: str  # info | warning | error
    text: str


@dataclass(frozen=True)
class Failure:
    """One occurrence of a cause: its message and the log lines that led to it."""

    cause: str
    message: str
    log: tuple[LogLine, ...]  # oldest first; the last line is the message


@dataclass(frozen=True)
class Subject:
    """What a case touches, guessed from its title: the service behind it, its page, a button."""

    title: str
    service: str
    page: str
    element: str


@dataclass(frozen=True)
class Context:
    env: str = "staging"
    agent: str = ""
    browser: str = "Chrome"


Render = Callable[[Subject, random.Random, Context], tuple[str, list[LogLine]]]


@dataclass(frozen=True)
class Cause:
    key: str
    kind: str
    pattern: re.Pattern[str]  # matches every message `render` makes
    render: Render


# Subjects --------------------------------------------------------------------------------------

# First match wins: (words in the title, the service behind it, the page it runs on).
AREAS = (
    (("login", "log in", "log out", "password", "sso", "sign-on", "mfa", "lockout", "captcha",
      "session", "sign up", "signup", "auth"), "auth-api", "/login"),
    (("checkout", "check out", "pay", "card", "invoice", "authorize", "capture", "refund",
      "chargeback", "payout", "ledger", "gift"), "payments-api", "/checkout"),
    (("cart", "basket", "discount", "coupon", "item"), "cart-api", "/cart"),
    (("search", "filter", "sort", "query", "facets", "typo", "synonyms", "autocomplete",
      "pagination", "result", "suggest"), "search-api", "/search"),
    (("order", "return", "shipment", "track", "deliver", "shipping", "exchange"), "orders-api",
     "/account/orders"),
    (("profile", "customer", "account", "address", "avatar", "email", "newsletter",
      "notification", "language", "phone", "consent", "push", "tutorial", "price alert"),
     "accounts-api", "/account"),
    (("price", "catalog", "product", "export", "import"), "catalog-api", "/catalog"),
)  # fmt: skip
STOP_WORDS = frozenset(
    ("a", "an", "the", "with", "to", "by", "from", "in", "on", "for", "of", "after", "as", "is")
)


def subject_of(title: str) -> Subject:
    """The service, page and main button a case titled `title` most likely touches."""
    text = re.sub(r"#\d+", "", title).replace("_", " ").strip()
    lowered = text.lower()
    service, page = "web-frontend", "/"
    for words, area_service, area_page in AREAS:
        if any(word in lowered for word in words):
            service, page = area_service, area_page
            break
    words = [w for w in re.findall(r"[a-z0-9]+", lowered) if w not in STOP_WORDS]
    element = "-".join(words[:3]) or "submit"
    return Subject(title=text, service=service, page=page, element=element)


def _host(subject: Subject, ctx: Context) -> str:
    return f"{subject.service}.{ctx.env}"


def _url(subject: Subject, ctx: Context) -> str:
    return f"https://{ctx.env}.shop.example.com{subject.page}"


def _hex(rng: random.Random, digits: int = 8) -> str:
    return f"{rng.getrandbits(digits * 4):0{digits}x}"


# Renderers -------------------------------------------------------------------------------------


def _outage(s: Subject, rng: random.Random, ctx: Context) -> tuple[str, list[LogLine]]:
    host, port = _host(s, ctx), rng.choice((8443, 8443, 443, 9090))
    address = f"10.{rng.randint(16, 31)}.{rng.randint(0, 255)}.{rng.randint(2, 254)}"
    resource = s.page.strip("/").split("/")[-1] or "health"
    lines = [LogLine("info", f"GET https://{host}:{port}/v2/{resource}/{rng.randint(1000, 99999)}")]
    for attempt in (1, 2, 3):
        ms = rng.randint(3, 40) if attempt == 1 else rng.randint(500, 2500)
        lines.append(
            LogLine(
                "warning",
                f"connect ECONNREFUSED {address}:{port} (attempt {attempt}/3, {ms} ms)",
            )
        )
    return f"Connection refused: {host}:{port} after 3 retries", lines


def _locator(s: Subject, rng: random.Random, ctx: Context) -> tuple[str, list[LogLine]]:
    tag = rng.choice(("button", "button", "a", "input"))
    locator = f"//{tag}[@data-test='{s.element}']"
    build = f"{rng.randint(2, 3)}.{rng.randint(10, 48)}.{rng.randint(0, 999)}"
    lines = [
        LogLine("info", f"Opened {_url(s, ctx)} in {rng.randint(400, 2900)} ms"),
        LogLine("warning", f"Waiting for {locator}: 0 matches among {rng.randint(12, 90)} <{tag}>"),
        LogLine(
            "warning",
            f"Closest match //{tag}[@data-testid='{s.element}'] (changed in build {build})",
        ),
    ]
    return f"Element not found: {locator} after 30s", lines


def _money(rng: random.Random) -> tuple[str, str]:
    expected = rng.randint(999, 29999) / 100
    actual = expected + rng.choice((1, 2, 5, 10)) + rng.choice((0, 0.99, 0.5))
    return f"{expected:.2f}", f"{actual:.2f}"


def _assertion_values(s: Subject, rng: random.Random) -> tuple[str, str, str]:
    """(field, expected, actual) that fit the case's service."""
    if s.service in ("payments-api", "cart-api"):
        expected, actual = _money(rng)
        return ("order total" if s.service == "payments-api" else "cart total"), expected, actual
    if s.service == "search-api":
        count = rng.randint(3, 48)
        return "the result count", str(count), str(rng.choice((0, count - rng.randint(1, 3))))
    if s.service == "orders-api":
        return "order status", "'Shipped'", rng.choice(("'Processing'", "'Pending payment'"))
    if s.service == "auth-api":
        return "the page title", "'My account'", rng.choice(("'Sign in'", "'Error 500'"))
    if s.service == "accounts-api":
        return "the banner", "'Changes saved'", "'Something went wrong'"
    total = rng.randint(2, 400)
    return "response field 'total'", str(total), rng.choice(("null", str(total + 1)))


def _assertion(s: Subject, rng: random.Random, ctx: Context) -> tuple[str, list[LogLine]]:
    field, expected, actual = _assertion_values(s, rng)
    step = rng.randint(3, 9)
    lines = [
        LogLine("info", f"Step {step}/{step + rng.randint(1, 4)}: read {field} on {_url(s, ctx)}"),
        LogLine("info", f"Screenshot saved: assert_{_hex(rng, 6)}.png"),
    ]
    return f"Assertion failed: expected {field} to be {expected} but was {actual}", lines


def _page_timeout(s: Subject, rng: random.Random, ctx: Context) -> tuple[str, list[LogLine]]:
    seconds = rng.choice((30, 45, 60))
    slow = f"GET https://{_host(s, ctx)}:8443/v2{s.page}"
    lines = [
        LogLine("info", f"Navigating to {_url(s, ctx)}"),
        LogLine(
            "warning",
            f"Still loading after {seconds // 2}s: {rng.randint(2, 9)} requests pending "
            f"(slowest {slow} {rng.randint(9000, 29000)} ms)",
        ),
    ]
    return f"Timeout after {seconds}s waiting for page {_url(s, ctx)} to load", lines


def _auth_expired(s: Subject, rng: random.Random, ctx: Context) -> tuple[str, list[LogLine]]:
    token = _hex(rng, 8)
    age = rng.randint(16, 55)
    lines = [
        LogLine("info", f"POST https://auth-api.{ctx.env}:8443/oauth/token -> 200 (token {token})"),
        LogLine(
            "warning",
            f"GET https://{_host(s, ctx)}:8443/v2{s.page} -> 401 "
            '{"error":"invalid_token","error_description":"The access token expired"}',
        ),
    ]
    return f"401 Unauthorized from {_host(s, ctx)}: access token expired {age} min ago", lines


def _data_missing(s: Subject, rng: random.Random, ctx: Context) -> tuple[str, list[LogLine]]:
    number = rng.randint(1000, 99999)
    entity = {
        "payments-api": f"saved card ending {rng.randint(1000, 9999)}",
        "cart-api": f"product SKU-{number}",
        "search-api": f"indexed product SKU-{number}",
        "orders-api": f"order #{number}",
        "auth-api": f"user qa+{number}@example.com",
        "accounts-api": f"customer qa+{number}@example.com",
    }.get(s.service, f"record {number}")
    fixture = f"{s.service.removesuffix('-api')}-{rng.choice(('seed', 'fixtures', 'golden'))}"
    lines = [
        LogLine("info", f"Loading fixture {fixture}.json ({rng.randint(20, 400)} records)"),
        LogLine("warning", f"GET https://{_host(s, ctx)}:8443/v2/lookup?id={number} -> 404"),
    ]
    return f"Test data missing: no {entity} in {ctx.env} (fixture {fixture}.json)", lines


def _browser_crash(s: Subject, rng: random.Random, ctx: Context) -> tuple[str, list[LogLine]]:
    agent = ctx.agent or "the agent"
    version = f"{rng.randint(128, 133)}.0.{rng.randint(6000, 6999)}.{rng.randint(10, 199)}"
    pid = rng.randint(2000, 65000)
    lines = [
        LogLine("info", f"Starting {ctx.browser} {version} on {agent}"),
        LogLine("warning", f"{ctx.browser} process {pid} exited with signal SIGSEGV"),
        LogLine("warning", "DevToolsActivePort file doesn't exist"),
    ]
    return f"Browser crashed on {agent}: session not created ({ctx.browser} {version})", lines


def _disk_full(s: Subject, rng: random.Random, ctx: Context) -> tuple[str, list[LogLine]]:
    agent = ctx.agent or "the agent"
    name = f"{s.element}-{_hex(rng, 4)}.png"
    free = rng.randint(0, 40)
    lines = [
        LogLine("info", f"Saving screenshot {name} on {agent}"),
        LogLine("warning", f"Free space on {agent}: {free} MB of {rng.choice((64, 128, 256))} GB"),
    ]
    return f"No space left on device on {agent}: could not write {name}", lines


CAUSES = {
    cause.key: cause
    for cause in (
        Cause(
            "env-outage",
            TRANSIENT,
            re.compile(r"^Connection refused: \S+:\d+ after \d+ retries$"),
            _outage,
        ),
        Cause(
            "page-timeout",
            TRANSIENT,
            re.compile(r"^Timeout after \d+s waiting for page \S+ to load$"),
            _page_timeout,
        ),
        Cause(
            "auth-expired",
            TRANSIENT,
            re.compile(r"^401 Unauthorized from \S+: access token expired \d+ min ago$"),
            _auth_expired,
        ),
        Cause(
            "locator-changed",
            ALWAYS,
            re.compile(r"^Element not found: //\w+\[@data-test='[\w-]+'\] after \d+s$"),
            _locator,
        ),
        Cause(
            "assertion-value",
            ALWAYS,
            re.compile(r"^Assertion failed: expected .+ to be .+ but was .+$"),
            _assertion,
        ),
        Cause(
            "data-missing",
            ALWAYS,
            re.compile(r"^Test data missing: no .+ in \S+ \(fixture [\w-]+\.json\)$"),
            _data_missing,
        ),
        Cause(
            "browser-crash",
            AGENT,
            re.compile(r"^Browser crashed on .+: session not created \(.+\)$"),
            _browser_crash,
        ),
        Cause(
            "disk-full",
            AGENT,
            re.compile(r"^No space left on device on .+: could not write \S+$"),
            _disk_full,
        ),
    )
}


def causes(kind: str) -> tuple[str, ...]:
    return tuple(key for key, cause in CAUSES.items() if cause.kind == kind)


def pick_cause(rng: random.Random, kind: str) -> str:
    """A cause of `kind` for a case, drawn when an estate is built."""
    return rng.choice(causes(kind))


def failure(
    cause: str,
    title: str,
    rng: random.Random,
    *,
    env: str = "staging",
    agent: str = "",
    browser: str = "Chrome",
) -> Failure:
    """One occurrence of `cause` in the case titled `title`; `rng` varies its details."""
    message, lines = CAUSES[cause].render(subject_of(title), rng, Context(env, agent, browser))
    return Failure(cause=cause, message=message, log=(*lines, LogLine("error", message)))


def cause_of(message: str) -> str | None:
    """The cause whose template rendered `message`, if any."""
    return next((key for key, c in CAUSES.items() if c.pattern.match(message)), None)
