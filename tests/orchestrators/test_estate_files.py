"""Saving an emulated estate and resuming it: the same world after a restart, for every vendor."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from runs.orchestrators.emulation import (
    STATE_FORMAT,
    Clock,
    EmulatorApp,
    from_plain,
    to_plain,
)
from runs.orchestrators.registry import KINDS, emulator_class

START = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
KEYS = {"leapwork": "leap-key", "conductor": "", "testsigma": "ts-key"}


def clock(at: datetime = START) -> Clock:
    paused = Clock(start=at)
    paused.paused = True
    return paused


def make(kind: str, *, seed: int = 3, at: datetime = START, **options: Any) -> EmulatorApp:
    options.setdefault("history", 2)
    return emulator_class(kind)(seed=seed, credential=KEYS[kind], clock=clock(at), **options)


HEADERS = {
    "leapwork": {"AccessKey": KEYS["leapwork"]},
    "conductor": {},
    "testsigma": {"Authorization": f"Bearer {KEYS['testsigma']}"},
}


def http(app: EmulatorApp) -> httpx.Client:
    return httpx.Client(
        transport=httpx.WSGITransport(app=app),
        base_url="http://emulator",
        headers=HEADERS[app.kind],
    )


def _leapwork_run(app: EmulatorApp, client: httpx.Client) -> str:
    schedule = next(s for s in app.state()["schedules"] if not s["temporary"])
    return client.put(f"/api/v3/schedules/{schedule['id']}/runNow").json()["RunId"]


def _conductor_run(app: EmulatorApp, client: httpx.Client) -> str:
    return client.post("/api/workflow", json={"name": app.state()["definitions"][0]["name"]}).text


def _testsigma_run(app: EmulatorApp, client: httpx.Client) -> str:
    return str(client.post("/api/v1/execution_results", json={"executionId": 101}).json()["id"])


# Each vendor's way to start a run, and to tell its runs (and the running ones) in its state.
STARTS: dict[str, Callable[[EmulatorApp, httpx.Client], str]] = {
    "leapwork": _leapwork_run,
    "conductor": _conductor_run,
    "testsigma": _testsigma_run,
}
RUNS = {
    "leapwork": ("runs", "id"),
    "conductor": ("workflows", "workflowId"),
    "testsigma": ("runs", "id"),
}
RUNNING = {
    "leapwork": ("status", {"Queued", "Executing"}),
    "conductor": ("status", {"RUNNING"}),
    "testsigma": (
        "status",
        {"STATUS_CREATED", "STATUS_QUEUED", "STATUS_PRE_FLIGHT", "STATUS_IN_PROGRESS"},
    ),
}


def start_run(app: EmulatorApp) -> str:
    """Start a run of the estate's first schedule through the vendor's API; its id."""
    return STARTS[app.kind](app, http(app))


def view(app: EmulatorApp) -> dict[str, Any]:
    """The emulator's state as of its clock (Conductor moves only when asked)."""
    with app.lock:
        app.advance(app.now())
        return app.state()


def _runs(app: EmulatorApp) -> list[dict[str, Any]]:
    key, _ = RUNS[app.kind]
    return view(app)[key]


def run_ids(app: EmulatorApp) -> set[str]:
    _, id_key = RUNS[app.kind]
    return {str(run[id_key]) for run in _runs(app)}


def running(app: EmulatorApp) -> set[str]:
    _, id_key = RUNS[app.kind]
    field_name, words = RUNNING[app.kind]
    return {str(run[id_key]) for run in _runs(app) if run[field_name] in words}


EVERY_KIND = pytest.mark.parametrize("kind", KINDS)


@EVERY_KIND
def test_it_resumes_the_same_runs_ids_and_in_flight_runs(kind: str, tmp_path: Path) -> None:
    path = tmp_path / f"{kind}.json"
    first = make(kind)
    first.persist(path, every=0)
    run_id = start_run(first)
    first.clock.step(first.pace * 1.5)
    assert run_id in running(first)
    first.save()

    again = make(kind)
    resumed = again.persist(path, every=0)

    assert resumed.resumed and "Resumed" in resumed.message
    assert again.now() == first.now()
    assert view(again) == view(first)
    assert run_id in running(again)
    # The run carries on from where it was, as it would have in the first emulator.
    for app in (first, again):
        app.clock.step(3600)
    assert view(again) == view(first)
    assert run_id not in running(again)


@EVERY_KIND
def test_it_continues_ids_where_the_saved_estate_left_them(kind: str, tmp_path: Path) -> None:
    path = tmp_path / f"{kind}.json"
    first = make(kind)
    first.persist(path, every=0)
    start_run(first)
    saved = run_ids(first)

    again = make(kind)
    again.persist(path, every=0)
    fresh = make(kind)  # what a new estate would have answered: an id the old one has used

    new_id = start_run(again)
    assert new_id not in saved
    assert start_run(first) == new_id  # as if the first emulator had never stopped
    assert start_run(fresh) in saved


@EVERY_KIND
def test_it_saves_a_new_run_before_answering_with_its_id(kind: str, tmp_path: Path) -> None:
    path = tmp_path / f"{kind}.json"
    app = make(kind)
    app.persist(path, every=0)

    run_id = start_run(app)

    # Killed right after the answer, the emulator would still know the run when it comes back.
    assert run_id in path.read_text()
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left over
    again = make(kind)
    again.persist(path, every=0)
    assert run_id in run_ids(again)


@EVERY_KIND
def test_it_starts_fresh_and_says_why_when_the_file_is_not_its_own(
    kind: str, tmp_path: Path
) -> None:
    path = tmp_path / f"{kind}.json"
    make(kind, seed=3).persist(path, every=0)

    other_seed = make(kind, seed=4)
    note = other_seed.persist(path, every=0)
    assert not note.resumed
    assert "seed 3 (not 4)" in note.message and "starting a new" in note.message
    assert view(other_seed) == view(make(kind, seed=4))
    assert json.loads(path.read_text())["seed"] == 4  # the new estate replaces the old file

    saved = json.loads(path.read_text())
    path.write_text(json.dumps({**saved, "format": STATE_FORMAT + 1}))
    assert f"format {STATE_FORMAT + 1}" in make(kind, seed=4).persist(path, every=0).message

    path.write_text(json.dumps({**saved, "estate": {"nothing": 1}}))
    damaged = make(kind, seed=4)
    assert "damaged" in damaged.persist(path, every=0).message
    assert view(damaged) == view(make(kind, seed=4))

    missing = make(kind).persist(tmp_path / "nowhere" / "x.json", every=0)
    assert not missing.resumed and "No saved" in missing.message


@EVERY_KIND
def test_it_starts_no_missed_runs_after_a_long_stop(kind: str, tmp_path: Path) -> None:
    path = tmp_path / f"{kind}.json"
    first = make(kind, autorun=60)
    first.persist(path, every=0)
    first.clock.step(150)
    http(first).get("/_emulator/state")
    before = run_ids(first)
    assert len(before) > len(run_ids(make(kind)))  # schedules started runs of their own

    later = make(kind, autorun=60, at=first.now() + timedelta(days=1))
    later.persist(path, every=0)

    # The orchestrator was off too: no burst of a day's missed runs, in-flight ones are over.
    assert run_ids(later) == before
    assert running(later) == set()
    later.clock.step(60 * 3)
    assert run_ids(later) > before


def test_it_saves_in_the_background_what_the_clock_starts(tmp_path: Path) -> None:
    path = tmp_path / "leapwork.json"
    app = make("leapwork", autorun=1)
    app.persist(path, every=0.05)
    try:
        app.clock.step(5)
        deadline = datetime.now(UTC) + timedelta(seconds=5)
        while datetime.now(UTC) < deadline:
            if len(json.loads(path.read_text())["estate"]["runs"]) > len(make("leapwork").runs):
                break
        else:
            raise AssertionError("the runs the schedules started were never saved")
    finally:
        app.close()


@dataclass
class Inner:
    at: datetime
    tags: set[str] = field(default_factory=set)
    pair: tuple[str, int] | None = None


@dataclass
class Outer:
    inner: list[Inner]
    by_id: dict[int, Inner]
    loose: dict[str, Any]


def test_it_turns_dataclasses_into_plain_json_and_back() -> None:
    one = Inner(START, {"b", "a"}, ("x", 1))
    outer = Outer([one, Inner(START + timedelta(seconds=1))], {7: one}, {"k": [1, {"n": None}]})
    plain = to_plain(outer)
    assert plain["inner"][0] == {"at": START.isoformat(), "tags": ["a", "b"], "pair": ["x", 1]}
    assert from_plain(Outer, json.loads(json.dumps(plain))) == outer

    refs: dict[type, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
        Inner: (lambda inner: inner.pair[1] if inner.pair else 0, lambda key: one)
    }
    by_ref = to_plain(outer, refs)
    assert by_ref["by_id"] == {7: 1}
    assert from_plain(Outer, by_ref, refs).by_id[7] is one
