"""A seeded fuzz pass over every page parameter and form (issue 14): thousands of requests with
nasty values, and not one answer of 500 or more."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from urllib.parse import quote

import pytest
from django.test import Client
from django.urls import reverse

from runs.models import FailureGroup, Orchestrator
from runs.services.failure_groups import fingerprints_refresh
from runs.status import Status
from tests.emulated import emulated, orchestrator_for
from tests.factories import (
    make_agent,
    make_result,
    make_run,
    make_schedule,
    make_test_case,
    make_user,
)

pytestmark = pytest.mark.django_db

SEED = 14
REQUESTS = 3_000
BIG = 2**63
NASTY = [
    "", " ", "0", "1", "-1", "2", str(BIG), str(BIG - 1), str(-BIG - 1), "9" * 25, "1" * 5_000,
    "1.5", "1e999", "NaN", "Infinity", "-Infinity", "null", "true", "[]", "{}",
    "\x00", "a\x00b", "%00", "\n", "a\r\nb", "\t", "\x7f", "\u202e", "☃", "\uff21\uff22\uff23", "😀",
    "'; DROP TABLE runs;--", "<script>alert(1)</script>", "{{ 7 }}", "../agents",
    "x/../../agents", "..", ".", "9999-12-31", "0001-01-01", "2026-02-30", "2026-04-01",
    "n_1", f"{BIG}_1", f"1_{BIG}", f"n_{BIG}", "-5_-5", "1_1_1", "_", "failures", "failed",
    "all", "picked", "from_task", "chosen", "own", "-duration", "duration", "started",
    "x" * 70_000, "é" * 5_000,
]  # fmt: skip
JSON_NASTY = [
    '{"a": NaN}', '{"a": Infinity}', '{"a": -Infinity}', '{"a": 1e999}', '{"a": "\\u0000"}',
    '{"a\\u0000": 1}', '{"a": "\\ud800"}', '{"a": ' + "[" * 30_000 + "]" * 30_000 + "}",
    '{"a": ' + "[" * 40 + "]" * 40 + "}", "[1, 2]", '"text"', '{"a": 1', "{'a': 1}",
    '{"a": ' + "1" * 5_000 + "}", '{"a": "' + "x" * 120_000 + '"}', '{"ok": {"nested": [1, 2.5, null]}}',
]  # fmt: skip


class Fuzzer:
    def __init__(self, rng: random.Random, ids: dict[str, list[int]]) -> None:
        self.rng = rng
        self.ids = ids

    def value(self) -> str:
        rng = self.rng
        roll = rng.random()
        if roll < 0.45:
            return rng.choice(NASTY)
        if roll < 0.6:
            return str(rng.choice(self.ids["any"]))
        if roll < 0.75:
            return str(rng.randint(-(2**70), 2**70) >> rng.randint(0, 70))
        if roll < 0.85:
            return rng.choice(JSON_NASTY)
        size = rng.choice([1, 5, 40, 300])
        return "".join(self.char() for _ in range(size))

    def char(self) -> str:
        """Any character a request can carry (UTF-8 holds no lone surrogate)."""
        code = self.rng.choice([self.rng.randint(0, 0x7F), self.rng.randint(0, 0x2FFFF)])
        return chr(code if not 0xD800 <= code <= 0xDFFF else code + 0x800)

    def values(self, most: int = 3) -> list[str]:
        return [self.value() for _ in range(self.rng.randint(0, most))]

    def query(self, fields: list[str]) -> dict[str, list[str]]:
        picked = self.rng.sample(fields, self.rng.randint(0, len(fields)))
        return {name: self.values(2) or [""] for name in picked}

    def pk(self, kind: str) -> str:
        return str(self.rng.choice(self.ids[kind])) if self.rng.random() < 0.8 else self.value()


RUN_LIST_FIELDS = ["q", "orchestrator", "schedule", "status", "agent", "trigger", "build"]
RUN_LIST_FIELDS += ["date_from", "date_to", "sort", "after", "before"]
RERUN_FIELDS = ["scope", "where", "agents", "cases", "iterations", "only_failed_iterations"]
RERUN_FIELDS += ["workflow_input", "correlation_id", "task_input", "var_name", "var_value"]
RERUN_FIELDS += ["idempotency_key", "plan_digest", "action", "cases_in_table"]
RUN_NOW_FIELDS = ["build", "environment", "workflow_input", "var_name", "var_value"]
RUN_NOW_FIELDS += ["idempotency_key", "plan_digest", "action"]
CONNECT_FIELDS = ["kind", "name", "base_url", "credential", "test_plan_ids", "run_ids"]
FAILURE_FIELDS = ["window", "status", "orchestrator", "schedule", "agent"]
MUTE_FIELDS = ["reason", "schedule", "agent", "until"]


def requests(fuzz: Fuzzer, orchestrators: list[str]) -> list[Callable[[Client], object]]:
    """One request maker per page and form; each draws fresh nasty values when called."""
    rng = fuzz.rng

    def htmx() -> dict[str, str]:
        if rng.random() < 0.3:
            return {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": rng.choice(["results-more", "x"])}
        return {}

    def go(client: Client):
        name = rng.choice([*orchestrators, fuzz.value()])
        external_id = quote(fuzz.value() or "x", safe="/")
        return client.get(f"/go/{quote(name, safe='')}/{external_id}")

    def post(url: Callable[[], str], fields: list[str]) -> Callable[[Client], object]:
        def send(client: Client):
            data = fuzz.query(fields)
            if "idempotency_key" in fields and rng.random() < 0.7:
                data["idempotency_key"] = [f"fuzz-{rng.getrandbits(64):x}"]
            return client.post(url(), data, **htmx())

        return send

    def get(url: Callable[[], str], fields: list[str]) -> Callable[[Client], object]:
        return lambda client: client.get(url(), fuzz.query(fields), **htmx())

    return [
        get(lambda: "/runs/", RUN_LIST_FIELDS),
        get(lambda: "/runs/", RUN_LIST_FIELDS),
        get(lambda: f"/runs/{fuzz.pk('run')}/", ["status", "agent", "after", "before"]),
        get(lambda: f"/runs/{fuzz.pk('run')}/poll/", ["status", "agent", "after", "before"]),
        get(lambda: f"/runs/{fuzz.pk('run')}/row/", []),
        get(lambda: f"/runs/{fuzz.pk('run')}/reruns/", []),
        get(lambda: f"/runs/{fuzz.pk('run')}/rerun/", []),
        get(lambda: f"/cases/{fuzz.pk('case')}/", ["from", "after", "before"]),
        get(lambda: f"/schedules/{fuzz.pk('schedule')}/", ["after", "before"]),
        get(lambda: f"/reruns/{fuzz.pk('any')}/", []),
        get(lambda: "/", ["x"]),
        get(lambda: "/agents/", ["x"]),
        get(lambda: "/orchestrators/", ["x"]),
        get(lambda: "/failures/", FAILURE_FIELDS),
        get(lambda: f"/failures/{fuzz.pk('group')}/", ["x"]),
        post(lambda: f"/failures/{fuzz.pk('group')}/mute/", MUTE_FIELDS),
        post(lambda: f"/failures/{fuzz.pk('group')}/mutes/{fuzz.pk('any')}/lift/", ["x"]),
        go,
        go,
        post(lambda: f"/runs/{fuzz.pk('run')}/rerun/", RERUN_FIELDS),
        post(lambda: f"/runs/{fuzz.pk('run')}/rerun/", RERUN_FIELDS),
        post(lambda: f"/schedules/{fuzz.pk('schedule')}/run-now/", RUN_NOW_FIELDS),
        post(lambda: "/orchestrators/track/", ["orchestrator", "run_id"]),
        post(lambda: "/orchestrators/track/", ["orchestrator", "run_id"]),
        post(lambda: reverse("runs:orchestrator_connect"), CONNECT_FIELDS),
    ]


def estate(servers: dict) -> dict[str, list[int]]:
    """Each kind's orchestrator (on its emulator), schedules, runs, cases, agents and results."""
    ids: dict[str, list[int]] = {"run": [], "case": [], "schedule": [], "agent": []}
    for kind, server in servers.items():
        orchestrator = orchestrator_for(server, name=f"fuzz-{kind}")
        if kind == "testsigma":
            orchestrator.base_url = f"{server.base_url}/api/v1"
            orchestrator.save()
        schedule = make_schedule(orchestrator)
        agents = [make_agent(orchestrator) for _ in range(2)]
        cases = [make_test_case(orchestrator) for _ in range(3)]
        for n in range(3):
            status = [Status.FAILED, Status.PASSED, Status.RUNNING][n]
            run = make_run(schedule, status=status, variables={"Browser": "chrome"})
            for i, case in enumerate(cases):
                make_result(
                    run,
                    test_case=case,
                    agent=agents[i % 2],
                    case_key=case.external_id,
                    status=Status.FAILED if i == 0 else Status.PASSED,
                    message=f"Timeout after {n + i}s waiting for #pay" if i == 0 else "",
                    iterations=[{"id": "it1", "name": "row 1", "status": "failed"}],
                    is_data_driven=kind == "testsigma",
                )
            ids["run"].append(run.pk)
        ids["schedule"].append(schedule.pk)
        ids["agent"] += [agent.pk for agent in agents]
        ids["case"] += [case.pk for case in cases]
    fingerprints_refresh()
    ids["group"] = list(FailureGroup.objects.values_list("pk", flat=True))
    ids["any"] = [pk for values in list(ids.values()) for pk in values]
    return ids


def test_no_input_makes_a_server_error(settings):
    # Sessions in a signed cookie: a request then reads no session row (the fuzz's own cost).
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    user = make_user("fuzzer", rerunner=True, is_staff=True)
    client = Client(raise_request_exception=False)
    client.force_login(user)
    with (
        emulated("leapwork", history=1) as (_l, leapwork),
        emulated("conductor", history=1) as (_c, conductor),
        emulated("testsigma", history=1) as (_t, testsigma),
    ):
        servers = {"leapwork": leapwork, "conductor": conductor, "testsigma": testsigma}
        ids = estate(servers)
        rng = random.Random(SEED)
        fuzz = Fuzzer(rng, ids)
        makers = requests(fuzz, list(Orchestrator.objects.values_list("name", flat=True)))
        errors, statuses = [], Counter()
        started = time.monotonic()
        for n in range(REQUESTS):
            maker = rng.choice(makers)
            response = maker(client)
            statuses[response.status_code // 100 * 100] += 1
            if response.status_code >= 500:
                errors.append((n, response.request["PATH_INFO"], response.status_code))
        elapsed = time.monotonic() - started
    print(f"{REQUESTS} requests in {elapsed:.1f}s: {dict(statuses)}")
    assert sum(statuses.values()) == REQUESTS
    assert statuses[200] and statuses[400], "the fuzz reaches pages and refusals both"
    assert errors == [], errors[:10]


def test_the_fuzz_values_are_those_of_the_issue():
    """The values issue 14 names are among those drawn."""
    for value in ["\x00", "\n", str(BIG), "9999-12-31", "x" * 70_000, f"{BIG}_1"]:
        assert value in NASTY
    assert any("NaN" in value for value in JSON_NASTY)
