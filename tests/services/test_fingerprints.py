"""A failure's fingerprint (runs.services.fingerprints) is the same for every occurrence of a
cause in a case, in any environment and on any agent (but an agent-bound cause's own), and
differs from cause to cause."""

from __future__ import annotations

import random
from collections.abc import Sequence
from itertools import product

import pytest

from runs.orchestrators import failure_causes
from runs.orchestrators.failure_causes import AGENT, CAUSES, cause_of
from runs.services import fingerprints
from runs.services.fingerprints import failure_fingerprint, failure_normalize

# One case for each service the catalogue tells apart, and one it does not (web-frontend).
TITLES = (
    "Checkout with saved card",
    "Login with SSO",
    "add_to_cart",
    "Search with typo tolerance",
    "Track shipment #12",
    "Update profile avatar",
    "Export product catalog",
    "Homepage banner rotates",
)
ENVS = ("staging", "qa", "preprod")
# (agent, browser) as the three emulators name them: a Leapwork agent, a Testsigma machine
# (its browser the machine's first word), a Conductor worker, none.
AGENTS = (
    ("Chrome-Win11-01", "Chrome"),
    ("Firefox 133 on Windows 11", "Firefox"),
    ("worker-eu-1", "Chrome"),
    ("", "Chrome"),
)
SEEDS = range(10)


def occurrences(cause: str, title: str, agents: Sequence[tuple[str, str]] = AGENTS) -> list[str]:
    """The messages of `cause` in the case `title`, drawn as an emulator draws them, for every
    seed, environment and agent."""
    return [
        failure_causes.failure(
            cause, title, random.Random(f"{seed}:{env}:{agent}"), env=env, agent=agent, browser=b
        ).message
        for seed, env, (agent, b) in product(SEEDS, ENVS, agents)
    ]


@pytest.mark.parametrize("title", TITLES)
@pytest.mark.parametrize("cause", sorted(CAUSES))
def test_every_occurrence_of_a_cause_in_a_case_has_one_fingerprint(cause, title):
    # An agent-bound cause fails on one agent only (every emulator draws one per case), and
    # its agent is what it is about: one fingerprint per agent. Any other cause: one in all.
    groups = [(a,) for a in AGENTS] if CAUSES[cause].kind == AGENT else [AGENTS]
    for agents in groups:
        messages = occurrences(cause, title, agents)
        assert {cause_of(m) for m in messages} == {cause}
        found = {failure_fingerprint(m) for m in messages}
        assert len(found) == 1, sorted(normalized for _, normalized in found)


def test_the_catalogue_varies_its_occurrences():
    """The test above means something: every cause renders differently from one occurrence to
    the next, in every case but one (the account pages' banner texts are fixed)."""
    constant = {
        (cause, title)
        for cause, title in product(CAUSES, TITLES)
        if len(set(occurrences(cause, title, AGENTS[:1]))) == 1
    }
    assert constant == {("assertion-value", "Update profile avatar")}


@pytest.mark.parametrize("title", TITLES)
def test_different_causes_in_one_case_have_different_fingerprints(title):
    found = {failure_fingerprint(occurrences(cause, title, AGENTS[:1])[0])[0] for cause in CAUSES}
    assert len(found) == len(CAUSES) == 8


def test_an_agent_bound_cause_on_another_agent_is_another_cause():
    found = {
        failure_fingerprint(occurrences("disk-full", TITLES[0], [agent])[0])[0] for agent in AGENTS
    }
    assert len(found) == len(AGENTS)


def test_a_service_tells_an_outage_apart():
    payments, auth = (
        failure_fingerprint(f"Connection refused: {host}.staging:8443 after 3 retries")[1]
        for host in ("payments-api", "auth-api")
    )
    assert payments == "Connection refused: payments-api.<env>:<n> after <n> retries"
    assert auth == "Connection refused: auth-api.<env>:<n> after <n> retries"


@pytest.mark.parametrize(
    ("message", "normalized"),
    [
        # UUIDs and hex ids (8 or more hex digits with a digit among them)
        ("Request 550e8400-e29b-41d4-a716-446655440000 failed", "Request <uuid> failed"),
        ("Commit deadbeef1234 broke 9f86d081 and feed", "Commit <hex> broke <hex> and feed"),
        ("Build deadbeef, id a1b2c3", "Build deadbeef, id a1b2c3"),
        # times and dates
        ("At 2026-12-04T04:52:00.123Z it failed", "At <time> it failed"),
        ("Started 2026-12-04 04:52:00, stopped 12:30:45", "Started <time>, stopped <time>"),
        ("Due 04/12/2026 or Dec 4, 2026 at 4:52 PM", "Due <time> or <time> at <time>"),
        ("Expires Thu, 04 Dec 2026 04:52:00 GMT", "Expires <time> <time>"),
        # durations
        ("Timeout 1500ms exceeded", "Timeout <duration> exceeded"),
        ("Retry in 2.5 s, then 30 seconds", "Retry in <duration>, then <duration>"),
        ("Element not visible after 12s", "Element not visible after <duration>"),
        ("Took 1h30m, or 1m 30s", "Took <duration>, or <duration>"),
        ("Token expired 23 min ago", "Token expired <duration> ago"),
        ("0 matches among 3 hosts", "<n> matches among <n> hosts"),
        # hosts: addresses and names with digits go, plain names stay
        ("connect ECONNREFUSED 10.16.4.2:8443", "connect ECONNREFUSED <host>"),
        ("Host agent-2.ci.example:443 unreachable", "Host <host> unreachable"),
        ("No answer from 127.0.0.1", "No answer from <host>"),
        ("Connection to payments-api timed out", "Connection to payments-api timed out"),
        ("Refused by payments-api.internal:8443", "Refused by payments-api.internal:<n>"),
        # URLs: scheme and host stay, ids and queries go
        (
            "GET https://shop.example.com/v2/orders/98765?token=abc returned 503",
            "GET https://shop.example.com/v2/orders/<id>?<query> returned <n>",
        ),
        ("Open http://10.0.3.7:8080/api/cart.", "Open http://<host>/api/cart."),
        # paths and file names
        ("Could not write /tmp/x/y.png", "Could not write <path>"),
        ("Could not open C:\\Users\\qa\\Temp\\shot_3.png", "Could not open <path>"),
        ("Loading fixture cart-seed.json failed", "Loading fixture <path> failed"),
        ("Expected 3/4 done", "Expected <n>/<n> done"),
        # quoted values, but a locator's attribute, whose element name goes too
        ("expected 'Shipped' but was \"Pending\"", "expected <q> but was <q>"),
        ("run `npm ci` first", "run <q> first"),
        ("user doesn't have 'admin' role", "user doesn't have <q> role"),
        (
            "Element not found: //button[@data-test='pay-now'] after 30s",
            "Element not found: //*[@data-test='pay-now'] after <duration>",
        ),
        ("No //div[@id='row-12345']/a[text()='Edit']", "No //*[@id='row-<n>']/*[text()='Edit']"),
        # environments
        ("No order in staging (nor in QA)", "No order in <env> (nor in <env>)"),
        (
            "Timeout loading https://preprod.shop.example/cart",
            "Timeout loading https://<env>.shop.example/cart",
        ),
        # numbers, and values that are missing
        ("Total -12.50 not 1,234.00 (build 2.31.512)", "Total <n> not <n> (build <n>)"),
        ("No product SKU-12345, order #678", "No product SKU-<n>, order #<n>"),
        ("Step 3 of v2 on Win11 x86_64", "Step <n> of v2 on Win11 x86_64"),
        ("expected 42 but was null", "expected <n> but was <n>"),
        # whitespace, folded
        ("  Assertion\tfailed:\n\n  expected  1  ", "Assertion failed: expected <n>"),
    ],
)
def test_the_normalizer_replaces_what_changes(message, normalized):
    assert failure_normalize(message) == normalized


def test_the_normalized_text_is_capped():
    assert len(failure_normalize("Assertion failed " * 100)) <= fingerprints.MAX_LENGTH


def test_without_a_message_the_log_excerpt_error_line_is_hashed():
    log = "[Info] Opened the page\n[Error] Flow: Boom at 12:30:45\n[Warning] Retrying in 5s\n\n"
    assert failure_fingerprint("", log) == failure_fingerprint("[Error] Flow: Boom at 09:00:00")
    assert failure_normalize("  ", log) == "[Error] Flow: Boom at <time>"
    assert failure_normalize("", "step one\nstep two took 5s\n \n") == "step two took <duration>"
    assert failure_normalize("The message wins", log) == "The message wins"


@pytest.mark.parametrize(("message", "log"), [("", ""), ("  \n", " \n\n ")])
def test_nothing_to_hash_gives_no_fingerprint(message, log):
    assert failure_fingerprint(message, log) == ("", "")


def test_the_version_is_part_of_the_hash(monkeypatch):
    first = failure_fingerprint("Element not found after 30s")
    monkeypatch.setattr(fingerprints, "FINGERPRINT_VERSION", fingerprints.FINGERPRINT_VERSION + 1)
    second = failure_fingerprint("Element not found after 30s")
    assert first[1] == second[1] and first[0] != second[0]


def test_the_hash_is_stable():
    """A change of the rules must come with a new FINGERPRINT_VERSION: this fails until then."""
    assert fingerprints.FINGERPRINT_VERSION == 1
    assert failure_fingerprint("Connection refused: payments-api.staging:8443 after 3 retries") == (
        "6c2bf5c8ee05a935",
        "Connection refused: payments-api.<env>:<n> after <n> retries",
    )
