"""Issue 14, point 2: reruns are sent by the worker, call by call, and a worker that dies
mid-way loses nothing and sends nothing twice.

A worker's death is the real thing as far as the vendor can tell: the transport hands the
call to the emulator, which starts the run, and the worker is gone before it reads the answer
(a BaseException, which no `except Exception` of ours catches, as nothing runs after kill -9).
"""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from runs.models import Orchestrator, RerunCallState, RerunRequest, RerunState
from runs.services.rerun_delivery import rerun_deliver, reruns_recover
from runs.services.reruns import RerunInput, rerun_start
from runs.tasks import RERUN_QUEUE
from tests.emulated import emulator_control, emulator_state, failed_run, synced, vendor_writes
from tests.factories import make_user

pytestmark = pytest.mark.django_db

WRITES = {"PUT", "POST", "DELETE"}


class WorkerKilled(BaseException):
    """The worker's process died: nothing of ours runs after it."""


class DiesMidCall(httpx.BaseTransport):
    """Talks to the emulator; the `nth` write reaches it (and starts its run), then the
    worker dies (or `breaks` with an exception of Runboard's own) before it reads the answer."""

    def __init__(self, nth: int, breaks: type[BaseException] = WorkerKilled) -> None:
        self.inner = httpx.HTTPTransport()
        self.nth = nth
        self.breaks = breaks
        self.writes = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method in WRITES:
            self.writes += 1
            if self.writes == self.nth:
                response.close()
                raise self.breaks("the worker broke mid-call")
        return response

    def close(self) -> None:
        self.inner.close()


def recorded(orchestrator: Orchestrator, key: str = "worker") -> RerunRequest:
    """A failed-only Leapwork rerun recorded by the view: one Run Flow by Id call per flow."""
    request, created = rerun_start(
        user=make_user(f"ana-{key}", rerunner=True),
        idempotency_key=key,
        data=RerunInput(scope="failed"),
        source=failed_run(orchestrator),
    )
    assert created and request.state == RerunState.PENDING
    return request


def lease_expires(request: RerunRequest) -> None:
    """Time passes beyond the lease of the worker that held it."""
    long_ago = timezone.now() - timedelta(hours=1)
    RerunRequest.objects.filter(pk=request.pk).update(
        requested_at=long_ago, lease_renewed_at=long_ago
    )


def rerun_tasks() -> int:
    return DBTaskResult.objects.filter(queue_name=RERUN_QUEUE).count()


def test_the_view_records_and_enqueues_and_sends_nothing_itself():
    with synced("leapwork") as (server, orchestrator):
        tasks = rerun_tasks()
        request = recorded(orchestrator)
        assert vendor_writes(server) == []
        assert rerun_tasks() == tasks + 1  # on the reruns queue, never behind a sync pass
        assert request.calls.count() > 1
        assert set(request.calls.values_list("state", flat=True)) == {RerunCallState.PLANNED}


# One call at a time, or two side by side: the second write is the kill either way, in the
# window of the first two calls.
@pytest.mark.parametrize("width", [1, 2])
def test_a_worker_killed_mid_call_is_taken_over_without_sending_anything_twice(settings, width):
    settings.RUNBOARD_RERUN_CONCURRENCY = width
    with synced("leapwork") as (server, orchestrator):
        request = recorded(orchestrator)
        calls = request.calls.count()
        assert calls >= 3, "the failed run has several failed flows"
        runs_before = len(emulator_state(server)["runs"])

        with pytest.raises(WorkerKilled):
            rerun_deliver(request.pk, transport=DiesMidCall(nth=2))
        request.refresh_from_db()
        states = [
            state for _, state in request.calls.order_by("index").values_list("index", "state")
        ]
        assert request.state == RerunState.SENDING  # as the dead worker left it
        # The first two were marked in flight before they went; one reached the vendor and
        # died there (and, two at a time, the other may have answered unrecorded).
        assert set(states[:2]) <= {RerunCallState.ACCEPTED, RerunCallState.SENDING}
        assert RerunCallState.SENDING in states[:2]
        assert states[0] == RerunCallState.ACCEPTED or width > 1
        assert set(states[2:]) == {RerunCallState.PLANNED}  # never marked, never sent
        in_flight = [i for i, state in enumerate(states) if state == RerunCallState.SENDING]

        # Its lease is alive: nobody takes it over yet.
        assert rerun_deliver(request.pk) is None
        assert len(vendor_writes(server)) == 2

        lease_expires(request)
        tasks = rerun_tasks()
        assert reruns_recover() == 1 and rerun_tasks() == tasks + 1
        rerun_deliver(request.pk)
        request.refresh_from_db()
        writes = vendor_writes(server)
        started = len(emulator_state(server)["runs"]) - runs_before

    # Every call reached the vendor exactly once; those in flight were found, not resent.
    assert len(writes) == calls == len({w["path"] for w in writes})
    assert started == calls
    for call in request.calls.filter(index__in=in_flight):
        assert call.state == RerunCallState.ACCEPTED and call.reconciled_at is not None
    assert request.state == RerunState.ACCEPTED
    assert request.runs.count() == calls
    assert request.lease_token == "" and request.lease_renewed_at is None


@pytest.mark.parametrize("width", [1, 3])
def test_it_sends_the_calls_and_reads_their_runs_at_most_the_setting_at_a_time(settings, width):
    settings.RUNBOARD_RERUN_CONCURRENCY = width
    settings.RUNBOARD_FETCH_CONCURRENCY = 1  # a new run's one item: no more calls than runs
    with synced("leapwork") as (server, orchestrator):
        request = recorded(orchestrator)
        calls = request.calls.count()
        assert calls > width, "the failed run has more failed flows than one window"
        # Every call to the vendor is held long enough for the next ones to overlap it.
        emulator_control(server, "faults", {"path": ".*", "latency": 0.05})
        emulator_control(server, "in-flight")  # its peak starts again

        request = rerun_deliver(request.pk)

        peak = server.app.in_flight_peak
        writes = vendor_writes(server)
    assert peak == 1 if width == 1 else 1 < peak <= width
    assert len(writes) == calls == len({w["path"] for w in writes})
    assert request.state == RerunState.ACCEPTED, request.message
    runs = list(request.runs.all())
    assert len(runs) == calls
    # Each new run was read from the orchestrator as soon as its call answered.
    assert all(run.synced_at is not None for run in runs)


def test_a_live_lease_is_never_stolen_and_recovery_leaves_it_alone():
    with synced("leapwork") as (server, orchestrator):
        alive, dead = recorded(orchestrator, "alive"), recorded(orchestrator, "dead")
        now = timezone.now()
        long_ago = now - timedelta(hours=1)
        RerunRequest.objects.filter(pk=alive.pk).update(
            state=RerunState.SENDING,
            lease_token="other",
            lease_renewed_at=now,
            requested_at=long_ago,
        )
        RerunRequest.objects.filter(pk=dead.pk).update(
            state=RerunState.SENDING,
            lease_token="gone",
            lease_renewed_at=long_ago,
            requested_at=long_ago,
        )
        tasks = rerun_tasks()
        assert reruns_recover() == 1
        assert rerun_tasks() == tasks + 1
        assert rerun_deliver(alive.pk) is None
        assert vendor_writes(server) == []
        assert rerun_deliver(dead.pk).state == RerunState.ACCEPTED


def test_a_request_just_recorded_is_not_recovered_twice():
    with synced("leapwork") as (_server, orchestrator):
        recorded(orchestrator)
        assert reruns_recover() == 0  # its task is waiting; the lease decides anyway


def test_a_settled_request_is_never_sent_again():
    with synced("leapwork") as (server, orchestrator):
        request = recorded(orchestrator)
        rerun_deliver(request.pk)
        sent = len(vendor_writes(server))
        assert rerun_deliver(request.pk) is None
        assert len(vendor_writes(server)) == sent


def test_an_exception_after_the_record_settles_the_request_never_pending():
    with synced("leapwork") as (server, orchestrator):
        request = recorded(orchestrator)
        # The orchestrator's kind is no longer one Runboard knows: the worker cannot even open
        # a client, and says so on the request.
        Orchestrator.objects.filter(pk=orchestrator.pk).update(kind="retired")
        with pytest.raises(Exception):  # noqa: B017 - the task fails loudly, in the log
            rerun_deliver(request.pk)
        request.refresh_from_db()
        assert vendor_writes(server) == []
    assert request.state == RerunState.FAILED
    assert set(request.calls.values_list("state", flat=True)) == {RerunCallState.NOT_SENT}
    assert "not sent" in request.message.lower() or "nothing" in request.message.lower()
    assert request.lease_token == ""


@pytest.mark.parametrize("width", [1, 2])
def test_an_exception_mid_call_leaves_that_call_unknown_and_the_rest_not_sent(settings, width):
    settings.RUNBOARD_RERUN_CONCURRENCY = width
    with synced("leapwork") as (server, orchestrator):
        request = recorded(orchestrator)
        with pytest.raises(RuntimeError):
            rerun_deliver(request.pk, transport=DiesMidCall(nth=2, breaks=RuntimeError))
        request.refresh_from_db()
        assert len(vendor_writes(server)) == 2
    states = [state for _, state in request.calls.order_by("index").values_list("index", "state")]
    # They reached the vendor before Runboard broke: they may have started, so never "refused".
    assert set(states[:2]) <= {RerunCallState.ACCEPTED, RerunCallState.UNKNOWN}
    assert RerunCallState.UNKNOWN in states[:2]
    assert states[0] == RerunCallState.ACCEPTED or width > 1
    assert set(states[2:]) == {RerunCallState.NOT_SENT}
    accepted = RerunCallState.ACCEPTED in states
    assert request.state == (RerunState.PARTIAL if accepted else RerunState.UNKNOWN)
    assert request.lease_token == ""
    assert "Not sent, because Runboard failed while sending" in request.message


def test_an_exception_on_the_first_call_says_the_rest_were_not_sent(settings):
    settings.RUNBOARD_RERUN_CONCURRENCY = 1
    with synced("leapwork") as (_server, orchestrator):
        request = recorded(orchestrator)
        with pytest.raises(RuntimeError):
            rerun_deliver(request.pk, transport=DiesMidCall(nth=1, breaks=RuntimeError))
        request.refresh_from_db()
    states = [state for _, state in request.calls.order_by("index").values_list("index", "state")]
    assert states[0] == RerunCallState.UNKNOWN
    assert set(states[1:]) == {RerunCallState.NOT_SENT}
    # Nothing is known to have started, and the message says what never went.
    assert request.state == RerunState.UNKNOWN
    assert "whether it started anything is unknown" in request.message
    assert "Not sent, because Runboard failed while sending" in request.message
