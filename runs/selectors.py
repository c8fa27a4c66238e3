"""Read-side queries for the views: every select_related / prefetch lives here.

History lists paginate by key: a cursor is "<sort value>_<id>" of the last (or first) row
shown, so a page costs the same at the end of a long history as at its start (no OFFSET).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db import connection
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    FilteredRelation,
    Func,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from runs.models import (
    Agent,
    ApiToken,
    ExecutionResult,
    FailureGroup,
    FailureMute,
    Orchestrator,
    RerunBatch,
    RerunCall,
    RerunRequest,
    Run,
    Schedule,
    TestCase,
    Trigger,
    mute_in_force,
)
from runs.status import FAILURE_VALUES, IN_PROGRESS, Status

PAGE_SIZE = 50
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The range of a bigint column (ids; durations in microseconds on SQLite).
BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1
IN_PROGRESS_VALUES = [status.value for status in IN_PROGRESS]


def db_int(text: str) -> int:
    """An integer a bigint column can hold; ValueError otherwise (a larger id names no row,
    and the database driver would refuse it instead of finding nothing)."""
    value = int(text)
    if not BIGINT_MIN <= value <= BIGINT_MAX:
        raise ValueError(f"{text!r:.40} is out of range")
    return value


def db_id(text: str) -> int | None:
    """The id `text` names, as db_int reads it; None when it is empty, not a number or beyond
    any id (a filter's or a link's id, which is ignored then)."""
    try:
        return db_int(text)
    except ValueError:
        return None


# Keyset pagination ------------------------------------------------------------------------


@dataclass(frozen=True)
class SortKey:
    """How a list is ordered: a field (then id, same direction); nulls always come last."""

    field: str
    descending: bool
    nullable: bool = False
    integer: bool = False  # a plain integer column (a result's seq), not a time or duration

    def encode(self, row: Any) -> str:
        value = _lookup(row, self.field)
        if value is None:
            return f"n_{row.pk}"
        if self.integer:
            return f"{value}_{row.pk}"
        if isinstance(value, datetime):
            value = value - EPOCH
        return f"{value // timedelta(microseconds=1)}_{row.pk}"

    def decode(self, cursor: str) -> tuple[Any, int] | None:
        """(value, id) from a cursor, or None when it is not one of ours."""
        raw_value, _, raw_pk = (cursor or "").partition("_")
        try:
            pk = db_int(raw_pk)
            if raw_value == "n" and self.nullable:
                return None, pk
            if self.integer:
                return db_int(raw_value), pk
            micro = timedelta(microseconds=db_int(raw_value))
        except (ValueError, OverflowError):
            return None
        if self.field.endswith("_at"):  # a time (started_at, last_seen_at), not a duration
            try:
                return EPOCH + micro, pk
            except OverflowError:
                return None
        return micro, pk

    def ordering(self, *, reverse: bool = False) -> list[Any]:
        descending = self.descending != reverse
        nulls: dict[str, bool] = {}
        if self.nullable:
            # Nulls last in page order, hence first when walking backwards.
            nulls = {"nulls_first": True} if reverse else {"nulls_last": True}
        key = F(self.field).desc(**nulls) if descending else F(self.field).asc(**nulls)
        return [key, "-id" if descending else "id"]

    def beyond(self, value: Any, pk: int, *, forward: bool) -> Q:
        """Rows after (value, pk) in page order, or before it when not forward."""
        f = self.field
        ahead = "lt" if self.descending == forward else "gt"
        if value is None:
            # Nulls sit at the end: after a null only nulls follow; before it, every value.
            same = Q(**{f"{f}__isnull": True, f"id__{ahead}": pk})
            return same if forward else Q(**{f"{f}__isnull": False}) | same
        narrowed = Q(**{f"{f}__{ahead}e": value}) & (
            Q(**{f"{f}__{ahead}": value}) | Q(**{f"id__{ahead}": pk})
        )
        if forward and self.nullable:
            return narrowed | Q(**{f"{f}__isnull": True})
        return narrowed


def _lookup(row: Any, path: str) -> Any:
    for part in path.split("__"):
        row = getattr(row, part)
    return row


@dataclass
class Page[T]:
    items: list[T]
    next_cursor: str | None = None
    prev_cursor: str | None = None

    @property
    def has_other_pages(self) -> bool:
        return bool(self.next_cursor or self.prev_cursor)


def keyset_page(
    queryset: QuerySet,
    *,
    key: SortKey,
    after: str = "",
    before: str = "",
    size: int = PAGE_SIZE,
    make: Callable[[Any], Any] | None = None,
) -> Page:
    """One page of `queryset` in `key` order, `size` rows after or before a cursor; `make`
    turns each row the queryset yields (a values_list tuple, say) into the page's item."""
    backwards = bool(before) and not after
    cursor = key.decode(before if backwards else after) if (after or before) else None
    if cursor is not None:
        queryset = queryset.filter(key.beyond(*cursor, forward=not backwards))
    rows = list(queryset.order_by(*key.ordering(reverse=backwards))[: size + 1])
    if make is not None:
        rows = [make(row) for row in rows]
    more = len(rows) > size
    rows = rows[:size]
    if backwards:
        rows.reverse()
    page = Page(items=rows)
    if rows:
        first, last = key.encode(rows[0]), key.encode(rows[-1])
        if backwards:
            page.prev_cursor = first if more else None
            page.next_cursor = last
        else:
            page.next_cursor = last if more else None
            page.prev_cursor = first if cursor is not None else None
    return page


# Runs -------------------------------------------------------------------------------------

RUN_SORT_KEYS = {
    "-started": SortKey("started_at", descending=True),
    "started": SortKey("started_at", descending=False),
    "-duration": SortKey("duration", descending=True, nullable=True),
    "duration": SortKey("duration", descending=False, nullable=True),
}


# What a row of a runs table shows (runs.templatetags.run_rows): the rest of a run, its
# schedule and its orchestrator (JSON variables, steps, messages) is left unread.
RUN_ROW_FIELDS = (
    *("status", "vendor_status", "external_id", "attempt", "rerun_of_id", "trigger", "build"),
    *("started_at", "finished_at", "duration", "total_count", "passed_count", "failed_count"),
    *("other_count", "queued_count", "running_count", "schedule__title", "orchestrator__name"),
)


def _runs() -> QuerySet[Run]:
    return Run.objects.select_related("orchestrator", "schedule").only(*RUN_ROW_FIELDS)


# How far down a rerun_of chain the verdict after reruns (schedule trend) and flakiness (test
# case) look. The trend reads one level per query, so this bounds its cost; a rerun of a retry
# of a rerun of a rerun is already rare.
RERUN_DEPTH = 4


def _original(prefix: str = "") -> Q:
    """A run that is not a rerun. Leapwork's per-case runs that a rerun made, Conductor's later
    attempts and Testsigma's reruns all have a source or the rerun trigger (or both)."""
    return Q(**{f"{prefix}rerun_of__isnull": True}) & ~Q(**{f"{prefix}trigger": Trigger.RERUN})


def run_filter(queryset: QuerySet[Run], *, filters: dict[str, Any]) -> QuerySet[Run]:
    """Apply the run history filters (RunFilterForm.filters()) to a Run queryset."""
    if orchestrator := filters.get("orchestrator"):
        queryset = queryset.filter(orchestrator=orchestrator)
    if schedule := filters.get("schedule"):
        queryset = queryset.filter(schedule=schedule)
    if status := filters.get("status"):
        if status == "failures":
            queryset = queryset.filter(status__in=FAILURE_VALUES)
        else:
            queryset = queryset.filter(status=status)
    if agent := filters.get("agent"):
        # Through the pairs sync keeps (RunAgent): one row per run the agent ran on, whose
        # copy of the run's start a history by start walks from an index (run_sort_key).
        queryset = queryset.filter(agent_links__agent=agent).annotate(
            agent_started_at=F("agent_links__started_at")
        )
    if trigger := filters.get("trigger"):
        queryset = queryset.filter(trigger=trigger)
    if build := filters.get("build"):
        # A build and the builds it leads ("2.0" keeps 2.0 and 2.0.1, not 12.0): a range of
        # run_build_prefix_idx, however common its characters. Search matches inside builds.
        queryset = queryset.filter(build__istartswith=build)
    if date_from := filters.get("date_from"):
        queryset = queryset.filter(started_at__gte=_day_start(date_from))
    if date_to := filters.get("date_to"):
        queryset = queryset.filter(started_at__lt=_day_start(date_to) + timedelta(days=1))
    if text := filters.get("q"):
        # Matching schedules first (a small table with its own trigram index): the runs query is
        # then an OR of indexed conditions on one table, which PostgreSQL combines from its
        # trigram indexes instead of walking every run.
        schedules = Schedule.objects.filter(title__icontains=text).values_list("pk", flat=True)
        queryset = queryset.filter(
            Q(schedule__in=list(schedules))
            | Q(external_id__icontains=text)
            | Q(build__icontains=text)
        )
    return queryset


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def run_sort_key(sort: str, filters: dict[str, Any]) -> SortKey:
    """The history's key for `sort` under these filters. Filtered by agent and sorted by
    start, it is the agent's own copy of each run's start (run_filter): the same order, read
    from the agent's rows newest first instead of probing every run of the history."""
    key = RUN_SORT_KEYS.get(sort, RUN_SORT_KEYS["-started"])
    if filters.get("agent") and key.field == "started_at":
        return SortKey("agent_started_at", descending=key.descending)
    return key


def run_history_queryset(
    *, filters: dict[str, Any] | None = None, sort: str = "-started"
) -> QuerySet[Run]:
    """Every run across orchestrators that the history's filters keep, in its order."""
    filters = filters or {}
    key = run_sort_key(sort, filters)
    return run_filter(_runs(), filters=filters).order_by(*key.ordering())


def run_history(
    *,
    filters: dict[str, Any] | None = None,
    sort: str = "-started",
    after: str = "",
    before: str = "",
    size: int = PAGE_SIZE,
) -> Page[Run]:
    """Every run across orchestrators, filtered, sorted and paginated by key."""
    key = run_sort_key(sort, filters or {})
    queryset = run_history_queryset(filters=filters, sort=sort)
    return keyset_page(queryset, key=key, after=after, before=before, size=size)


# CSV exports read every matching row as plain values, a chunk at a time (a server-side cursor
# on PostgreSQL): one query and the same memory whether the export holds ten rows or 100,000.
EXPORT_CHUNK = 2000
RUN_EXPORT_FIELDS = (
    *("id", "orchestrator__name", "schedule__title", "external_id", "attempt", "status"),
    *("trigger", "build", "started_at", "finished_at", "duration", "total_count"),
    *("passed_count", "failed_count", "other_count", "rerun_of_id"),
)


def run_history_export(
    *, filters: dict[str, Any] | None = None, sort: str = "-started"
) -> Iterator[dict[str, Any]]:
    """The history's runs as the page lists them, all of them, streamed from one query."""
    queryset = run_history_queryset(filters=filters, sort=sort)
    return queryset.values(*RUN_EXPORT_FIELDS).iterator(chunk_size=EXPORT_CHUNK)


def run_list_in_progress(*, limit: int = 50) -> list[Run]:
    return list(
        _runs().filter(status__in=IN_PROGRESS_VALUES).order_by("-started_at", "-id")[:limit]
    )


def _run_summarized() -> QuerySet[Run]:
    """Runs with what a run's summary shows beside them; the run it reruns comes with its
    lineage (run_lineage)."""
    return Run.objects.select_related("orchestrator", "schedule", "triggered_by")


def run_get(*, pk: int) -> Run:
    return _run_summarized().get(pk=pk)


def run_get_for_page(*, pk: int) -> Run:
    """The run as run_get reads it, with whether other runs rerun it (`has_reruns`), other
    attempts of its vendor run exist (`has_attempts`) and reruns were asked of any of those
    (`was_rerun`): most runs are neither reruns nor rerun, and then their page reads neither
    its lineage nor its reruns (two queries of two joins each, and the requests' runs)."""
    same_vendor_run = Run.objects.filter(
        orchestrator=OuterRef("orchestrator_id"), external_id=OuterRef("external_id")
    )
    return (
        _run_summarized()
        .annotate(
            has_reruns=Exists(Run.objects.filter(rerun_of=OuterRef("pk"))),
            has_attempts=Exists(same_vendor_run.exclude(pk=OuterRef("pk"))),
            was_rerun=Exists(
                RerunRequest.objects.filter(
                    source_run__orchestrator=OuterRef("orchestrator_id"),
                    source_run__external_id=OuterRef("external_id"),
                )
            ),
        )
        .get(pk=pk)
    )


def run_get_for_poll(*, pk: int) -> Run:
    """The run a polling fragment shows: what its summary and row need."""
    return _run_summarized().get(pk=pk)


# A run's page: what fits on a screen, whatever the run's size.

RESULT_PAGE_SIZE = 100
FAILURES_SHOWN = 20
SEQ_KEY = SortKey("seq", descending=False, integer=True)


@dataclass(frozen=True)
class AgentCount:
    """An agent the run's results ran on, with how many ran there and how many failed."""

    pk: int
    title: str
    results: int
    failed: int


@dataclass(frozen=True)
class ResultCounts:
    """A run's results by status and by agent: one aggregate, so the numbers add up."""

    by_status: dict[str, int]
    agents: list[AgentCount]
    failures: int
    failures_data_driven: int

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    @property
    def statuses(self) -> list[tuple[str, int]]:
        """(status, count) in the statuses' own order, those with no result left out."""
        return [(s.value, self.by_status[s.value]) for s in Status if s.value in self.by_status]

    def failures_on(self, agent_id: int | None) -> int:
        """Failures on one agent, or in all when None."""
        if agent_id is None:
            return self.failures
        return next((agent.failed for agent in self.agents if agent.pk == agent_id), 0)


def run_result_counts(*, run: Run) -> ResultCounts:
    """Counts of the run's results per status and per agent: those sync keeps on the run, with
    its agents' titles (one query of agent rows), else one grouped query of its results."""
    if run.result_counts is None:
        rows = list(
            ExecutionResult.objects.filter(run=run)
            .values_list("status", "agent_id", "agent__title")
            .annotate(n=Count("id"), data_driven=Count("id", filter=Q(is_data_driven=True)))
            .order_by()
        )
    else:
        agent_pks = {agent for _, agent, _, _ in run.result_counts if agent is not None}
        titles = (
            dict(Agent.objects.filter(pk__in=agent_pks).values_list("pk", "title"))
            if agent_pks
            else {}
        )
        rows = [
            (status, agent, titles.get(agent, ""), n, data_driven)
            for status, agent, n, data_driven in run.result_counts
        ]
    return _result_counts(rows)


def _result_counts(rows: Iterable[tuple[str, int | None, str, int, int]]) -> ResultCounts:
    by_status: Counter[str] = Counter()
    agents: dict[int, list[Any]] = {}
    failures = failures_data_driven = 0
    for status, agent_pk, title, n, data_driven in rows:
        failed = status in FAILURE_VALUES
        by_status[status] += n
        if failed:
            failures += n
            failures_data_driven += data_driven
        if agent_pk is not None:
            agent = agents.setdefault(agent_pk, [title, 0, 0])
            agent[1] += n
            agent[2] += n if failed else 0
    listed = [AgentCount(pk, *counts) for pk, counts in agents.items()]
    listed.sort(key=lambda agent: (agent.title, agent.pk))
    return ResultCounts(dict(by_status), listed, failures, failures_data_driven)


@dataclass(frozen=True, slots=True)
class Titled:
    """A result's test case or agent, as its row names it."""

    pk: int
    title: str


@dataclass(frozen=True, slots=True)
class ResultRow:
    """A result as a run's page and the API show it. Read as one tuple of values, not as a
    result, a case and an agent: model instances cost three times the query on a page of a
    hundred rows."""

    pk: int
    run_id: int
    test_case_id: int | None
    agent_id: int | None
    external_id: str
    case_key: str
    status: str
    vendor_status: str
    started_at: datetime | None
    finished_at: datetime | None
    duration: timedelta | None
    message: str
    log_excerpt: str
    seq: int
    retry_count: int
    input: Any
    is_data_driven: bool
    iterations: Any
    fingerprint: str
    test_case: Titled | None
    agent: Titled | None

    @classmethod
    def of(cls, values: tuple[Any, ...]) -> ResultRow:
        *own, case_title, agent_title = values
        case_id, agent_id = own[2], own[3]
        return cls(
            *own,
            test_case=Titled(case_id, case_title) if case_id is not None else None,
            agent=Titled(agent_id, agent_title) if agent_id is not None else None,
        )

    @property
    def status_enum(self) -> Status:
        return Status(self.status)


# What a result's row reads (runs.templatetags.result_rows), with its cause, the rerun form's
# picker and the API's item: ResultRow's own fields, in its order (id for pk), then its case's
# and agent's titles.
RESULT_ROW_FIELDS = tuple(
    "id" if f.name == "pk" else f.name
    for f in fields(ResultRow)
    if f.name not in ("test_case", "agent")
)


def _result_rows(queryset: QuerySet[ExecutionResult]) -> QuerySet[ExecutionResult]:
    return queryset.values_list(*RESULT_ROW_FIELDS, "test_case__title", "agent__title")


@dataclass
class RunResults:
    """The results a run's page shows: the first failures apart (when no status is chosen),
    then one page of the others in the orchestrator's order."""

    page: Page[ResultRow]
    failures: list[ResultRow] = field(default_factory=list)
    more_failures: bool = False
    after: str = ""
    before: str = ""

    @property
    def failures_apart(self) -> bool:
        return bool(self.failures)

    @property
    def shown(self) -> list[ResultRow]:
        """Every result on the page, in the orchestrator's order (what a picker offers)."""
        return sorted([*self.failures, *self.page.items], key=lambda r: (r.seq, r.pk))


def _run_results(run: Run, filters: dict[str, Any]) -> QuerySet[ExecutionResult]:
    queryset = ExecutionResult.objects.filter(run=run)
    if status := filters.get("status"):
        if status == "failures":
            queryset = queryset.filter(status__in=FAILURE_VALUES)
        else:
            queryset = queryset.filter(status=status)
    if agent := filters.get("agent"):
        queryset = queryset.filter(agent_id=agent)
    if text := filters.get("q"):
        # Within one run, however big: its results by run and key, each looked at once.
        queryset = queryset.filter(
            Q(test_case__title__icontains=text)
            | Q(case_key__icontains=text)
            | Q(external_id__icontains=text)
            | Q(message__icontains=text)
        )
    return queryset


def run_result_page(
    *,
    run: Run,
    filters: dict[str, Any] | None = None,
    after: str = "",
    before: str = "",
    size: int = RESULT_PAGE_SIZE,
    with_failures: bool = True,
    has_failures: bool = True,
) -> RunResults:
    """A page of the run's results by key (seq, id). Without a status filter the first
    failures come apart, above, and the page holds the rest; each result is read once.
    `has_failures=False` (known from the counts) saves looking for failures."""
    filters = filters or {}
    queryset = _run_results(run, filters)
    failures: list[ResultRow] = []
    if not filters.get("status") and with_failures and has_failures:
        first = queryset.filter(status__in=FAILURE_VALUES).order_by(*SEQ_KEY.ordering())
        failures = [ResultRow.of(row) for row in _result_rows(first)[: FAILURES_SHOWN + 1]]
        if failures:
            queryset = queryset.exclude(status__in=FAILURE_VALUES)
    page = keyset_page(
        _result_rows(queryset),
        key=SEQ_KEY,
        after=after,
        before=before,
        size=size,
        make=ResultRow.of,
    )
    return RunResults(
        page=page,
        failures=failures[:FAILURES_SHOWN],
        more_failures=len(failures) > FAILURES_SHOWN,
        after=after,
        before=before,
    )


RESULT_EXPORT_FIELDS = (
    *("id", "external_id", "case_key", "test_case_id", "test_case__title"),
    *("test_case__external_id", "status", "agent__title", "started_at", "finished_at"),
    *("duration", "retry_count", "iterations", "message", "cause"),
)


def run_results_export(
    *, run: Run, filters: dict[str, Any] | None = None
) -> Iterator[dict[str, Any]]:
    """Every result of the run that the page's filters keep, in the orchestrator's order (the
    page's table), with its failure's cause, streamed from one query."""
    cause = FailureGroup.objects.filter(fingerprint=OuterRef("fingerprint")).values("normalized")
    queryset = (
        _run_results(run, filters or {})
        .annotate(cause=Subquery(cause[:1]))
        .order_by(*SEQ_KEY.ordering())
    )
    return queryset.values(*RESULT_EXPORT_FIELDS).iterator(chunk_size=EXPORT_CHUNK)


def run_results_picked(*, run: Run, ids: Iterable[int]) -> list[ExecutionResult]:
    """The results of this run among `ids` (a rerun form's picks), in the orchestrator's order."""
    return list(
        ExecutionResult.objects.filter(run=run, pk__in=list(ids))
        .select_related("test_case", "agent")
        .order_by(*SEQ_KEY.ordering())
    )


@dataclass
class Lineage:
    source: Run | None
    reruns: list[Run] = field(default_factory=list)
    attempts: list[Run] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not (self.source or self.reruns or self.attempts)


def run_lineage(*, run: Run) -> Lineage:
    """The run it reruns, the runs that rerun it, and the other attempts of its vendor run:
    one query for all three (a later attempt is often a rerun too); none when run_get_for_page
    found it neither a rerun nor rerun, with no other attempt."""
    alone = not getattr(run, "has_reruns", True) and not getattr(run, "has_attempts", True)
    if alone and not run.rerun_of_id:
        return Lineage(source=None)
    same_vendor_run = Q(orchestrator_id=run.orchestrator_id, external_id=run.external_id)
    source = Q(pk=run.rerun_of_id) if run.rerun_of_id else Q()
    related = list(
        _runs()
        .filter(Q(rerun_of=run) | same_vendor_run | source)
        .exclude(pk=run.pk)
        .order_by("started_at", "id")[: 2 * PAGE_SIZE + 1]
    )
    reruns = [other for other in related if other.rerun_of_id == run.pk]
    attempts = sorted(
        (other for other in related if other.external_id == run.external_id),
        key=lambda other: (other.attempt, other.pk),
    )
    found = next((other for other in related if other.pk == run.rerun_of_id), None)
    return Lineage(
        source=found if found or not run.rerun_of_id else run.rerun_of,
        reruns=reruns[:PAGE_SIZE],
        attempts=attempts[:PAGE_SIZE],
    )


def run_find_by_external_id(*, orchestrator: str, external_id: str) -> Run | None:
    """The newest attempt of a vendor run id on a named orchestrator."""
    if "\x00" in external_id:  # PostgreSQL texts cannot hold one: no run has such an id
        return None
    return (
        Run.objects.filter(orchestrator__name=orchestrator, external_id=external_id)
        .order_by("-attempt")
        .first()
    )


# Overview ---------------------------------------------------------------------------------


@dataclass
class Overview:
    new_causes: list[FailureGroup]
    failing_schedules: list[Schedule]
    in_progress: list[Run]
    rerun_requests: list[RerunRequest]
    broken_orchestrators: list[Orchestrator]


def schedule_list_failing(*, limit: int = 50) -> list[Schedule]:
    """Schedules whose latest run failed or errored, with that run's id and status annotated;
    not those whose latest run failed only for causes muted (on that schedule and agent)."""
    failing = schedules_failing().only("title", "latest_run", "orchestrator__name")
    return list(failing.order_by("-latest_started_at", "id")[:limit])


def schedules_failing() -> QuerySet[Schedule]:
    """The failing schedules of schedule_list_failing, unordered (webhooks tell when one
    starts failing: runs.services.notifications). Each schedule's latest run is the one the
    run writer keeps on it (Schedule.latest_run), read by its key."""
    failing = (
        Schedule.objects.filter(vanished_at__isnull=True, is_temporary=False)
        .select_related("orchestrator")
        .annotate(
            latest_status=F("latest_run__status"), latest_started_at=F("latest_run__started_at")
        )
        .filter(latest_status__in=FAILURE_VALUES)
    )
    mutes = FailureMute.objects.active()
    if not mutes.exists():
        # No mute in force (the usual case): every failing latest run counts, and the query
        # needs no look at its failures (which cost more to build and plan than to run).
        return failing
    covered = Exists(
        mutes.filter(group__fingerprint=OuterRef("fingerprint"))
        .filter(Q(schedule__isnull=True) | Q(schedule=OuterRef("run__schedule_id")))
        .filter(Q(agent__isnull=True) | Q(agent=OuterRef("agent_id")))
    )
    failures = ExecutionResult.objects.filter(
        run_id=OuterRef("latest_run_id"), status__in=FAILURE_VALUES
    )
    return failing.filter(Exists(failures.exclude(covered)) | ~Exists(failures.filter(covered)))


def rerun_request_list_recent(*, limit: int = 10) -> list[RerunRequest]:
    return list(
        RerunRequest.objects.select_related(
            "orchestrator", "requested_by", "source_run", "source_run__schedule", "schedule"
        )
        .prefetch_related(Prefetch("runs", queryset=Run.objects.order_by("started_at", "id")))
        .order_by("-requested_at", "-id")[:limit]
    )


def orchestrator_list_broken() -> list[Orchestrator]:
    return list(Orchestrator.objects.exclude(last_sync_error="").order_by("name"))


NEW_CAUSES_HOURS = 24
NEW_CAUSES_SHOWN = 10


def failure_groups_new(*, hours: int = NEW_CAUSES_HOURS) -> list[FailureGroup]:
    """The causes of failure first seen anywhere in the last `hours`, newest first."""
    since = datetime.now(UTC) - timedelta(hours=hours)
    return list(
        FailureGroup.objects.filter(first_seen_at__gte=since).order_by("-first_seen_at", "-id")[
            :NEW_CAUSES_SHOWN
        ]
    )


def overview_get() -> Overview:
    return Overview(
        new_causes=failure_groups_new(),
        failing_schedules=schedule_list_failing(),
        in_progress=run_list_in_progress(),
        rerun_requests=rerun_request_list_recent(),
        broken_orchestrators=orchestrator_list_broken(),
    )


# Test cases -------------------------------------------------------------------------------
# Every count on the test case page is of results: a result is one execution of the case.

# The result's own start (not its run's): served by result_case_started_idx, no join, no sort.
RESULT_KEY = SortKey("started_at", descending=True, nullable=True)
# One screen: the strip and the table show the same page of results, in the same order.
CASE_PAGE_SIZE = 30
# Results shown on each side of the run a visitor came from (?from=).
FROM_WINDOW = 10


def test_case_get(*, pk: int) -> TestCase:
    return TestCase.objects.select_related("orchestrator").get(pk=pk)


# What a case's page (runs.templatetags.case_rows) and the API's item (ResultOut) read of a
# result and its run: not the run's other columns (its variables and counts are JSON).
CASE_RESULT_FIELDS = (
    *("external_id", "case_key", "test_case", "status", "vendor_status", "started_at"),
    *("finished_at", "duration", "message", "log_excerpt", "retry_count", "iterations"),
    *("agent__title", "run__external_id", "run__started_at", "run__schedule__title"),
)


def _case_results(test_case: TestCase) -> QuerySet[ExecutionResult]:
    in_rerun = Case(When(_original("run__"), then=Value(False)), default=Value(True))
    # Through the case's own manager: each result knows its case without reading it again.
    return (
        test_case.results.select_related("run", "run__schedule", "agent")
        .only(*CASE_RESULT_FIELDS)
        .annotate(in_rerun=in_rerun)
    )


def test_case_history(
    *, test_case: TestCase, after: str = "", before: str = "", from_run: int | None = None
) -> Page[ExecutionResult]:
    """The case's results, newest first, a page by key; `from_run` (without a cursor)
    opens a window around that run's result instead: newer results above, older below."""
    results = _case_results(test_case)
    if from_run and not (after or before):
        anchor = results.filter(run_id=from_run).order_by(*RESULT_KEY.ordering()).first()
        if anchor is not None:
            return _case_window(results, anchor=anchor)
    return keyset_page(results, key=RESULT_KEY, after=after, before=before, size=CASE_PAGE_SIZE)


def _case_window(
    results: QuerySet[ExecutionResult], *, anchor: ExecutionResult, size: int = FROM_WINDOW
) -> Page[ExecutionResult]:
    """`size` results on each side of `anchor`, by key, with cursors that page on from either
    end of the window (the pager then walks whole pages as usual)."""
    value, pk = anchor.started_at, anchor.pk
    newer = list(
        results.filter(RESULT_KEY.beyond(value, pk, forward=False)).order_by(
            *RESULT_KEY.ordering(reverse=True)
        )[: size + 1]
    )
    older = list(
        results.filter(RESULT_KEY.beyond(value, pk, forward=True)).order_by(*RESULT_KEY.ordering())[
            : size + 1
        ]
    )
    items = [*reversed(newer[:size]), anchor, *older[:size]]
    return Page(
        items=items,
        prev_cursor=RESULT_KEY.encode(items[0]) if len(newer) > size else None,
        next_cursor=RESULT_KEY.encode(items[-1]) if len(older) > size else None,
    )


@dataclass(frozen=True)
class Flakiness:
    """Results in original runs (reruns are not counted): how many failed, and how many of
    those failed and then passed when their run was rerun or retried."""

    results: int
    failed: int
    flaky: int

    @property
    def share(self) -> float:
        return self.flaky / self.results if self.results else 0.0


@dataclass(frozen=True)
class AgentRate:
    agent_id: int | None
    title: str
    results: int
    failed: int

    @property
    def rate(self) -> float:
        return self.failed / self.results if self.results else 0.0


@dataclass(frozen=True)
class CaseStats:
    """Counts of the case's results, all of one snapshot: per agent, in total, flakiness."""

    agents: list[AgentRate]
    flakiness: Flakiness

    @property
    def results(self) -> int:
        return sum(agent.results for agent in self.agents)

    @property
    def failed(self) -> int:
        return sum(agent.failed for agent in self.agents)

    @property
    def rate(self) -> float:
        return self.failed / self.results if self.results else 0.0

    @property
    def rerun_results(self) -> int:
        return self.results - self.flakiness.results


def test_case_stats(*, test_case: TestCase) -> CaseStats:
    """Per agent: results and failures (those without an agent last); and flakiness. One
    aggregate counts every total, so the page's numbers add up."""
    failed, original = Q(status__in=FAILURE_VALUES), _original("run__")
    rows = (
        ExecutionResult.objects.filter(test_case=test_case)
        .values("agent_id", "agent__title")
        .annotate(
            results=Count("id"),
            failed=Count("id", filter=failed),
            original=Count("id", filter=original),
            original_failed=Count("id", filter=original & failed),
        )
        .order_by()
    )
    agents, in_originals, failed_in_originals = [], 0, 0
    for row in rows:
        agents.append(
            AgentRate(row["agent_id"], row["agent__title"] or "", row["results"], row["failed"])
        )
        in_originals += row["original"]
        failed_in_originals += row["original_failed"]
    agents.sort(key=lambda agent: (agent.agent_id is None, -agent.rate, agent.title))
    flaky = _flaky_count(test_case) if failed_in_originals else 0
    return CaseStats(agents, Flakiness(in_originals, failed_in_originals, flaky))


def _flaky_count(test_case: TestCase) -> int:
    """Failed results in original runs whose run was rerun (up to RERUN_DEPTH links down)
    where the case then passed. Reruns are few: their ancestors come in one query."""
    results = ExecutionResult.objects.filter(test_case=test_case)
    chain = ["run__rerun_of" + "__rerun_of" * level for level in range(RERUN_DEPTH)]
    ancestors = results.filter(~_original("run__"), status=Status.PASSED).values_list(*chain)
    rescued = {pk for row in ancestors for pk in row if pk}
    if not rescued:
        return 0
    failed_originals = results.filter(_original("run__"), status__in=FAILURE_VALUES)
    return failed_originals.filter(run_id__in=rescued).count()


# Schedules --------------------------------------------------------------------------------

TREND_SIZE = 30


def schedule_get(*, pk: int) -> Schedule:
    return Schedule.objects.select_related("orchestrator").get(pk=pk)


def schedule_runs(*, schedule: Schedule, after: str = "", before: str = "") -> Page[Run]:
    """Every run of the schedule, reruns included (their trigger says so), newest first."""
    return keyset_page(
        _runs().filter(schedule=schedule),
        key=RUN_SORT_KEYS["-started"],
        after=after,
        before=before,
    )


SCHEDULE_KEY = SortKey("id", descending=False, integer=True)


def schedule_list(
    *, orchestrator: Orchestrator | None = None, after: str = "", before: str = ""
) -> Page[Schedule]:
    """The schedules runs can be filtered by (temporary ones left out), a page by key."""
    schedules = Schedule.objects.select_related("orchestrator").filter(is_temporary=False)
    if orchestrator is not None:
        schedules = schedules.filter(orchestrator=orchestrator)
    return keyset_page(schedules, key=SCHEDULE_KEY, after=after, before=before)


@dataclass(frozen=True)
class TrendPoint:
    """One original run: its own pass rate, and the verdict once its reruns are counted."""

    run_id: int
    started_at: datetime
    status: str
    passed: int
    total: int
    passed_after_reruns: int = 0
    reruns: int = 0

    @property
    def rate(self) -> float:
        return self.passed / self.total if self.total else 0.0

    @property
    def rate_after_reruns(self) -> float:
        return self.passed_after_reruns / self.total if self.total else 0.0


def schedule_trend(*, schedule: Schedule, size: int = TREND_SIZE) -> list[TrendPoint]:
    """The newest `size` finished original runs, oldest first, each with its verdict after
    reruns: its cases that failed and passed in a rerun or later attempt count as passed.

    Reruns live under their source's schedule but are never points of their own: a 2-case
    rerun is part of its source's verdict, not a run of the schedule.
    """
    rows = list(
        Run.objects.filter(_original(), schedule=schedule)
        .exclude(status__in=IN_PROGRESS_VALUES)
        .order_by("-started_at", "-id")
        .values_list("pk", "started_at", "status", "passed_count", "failed_count", "total_count")[
            :size
        ]
    )
    root_of = _descendants(root_ids=[row[0] for row in rows])
    rescued = _rescued_cases(root_of)
    reruns = Counter(root_of.values())
    points = []
    for pk, started_at, status, passed, failed, total in reversed(rows):
        # Rescued cases replace failures of the run itself, never more than it had.
        after = passed + min(failed, len(rescued.get(pk, ())))
        points.append(TrendPoint(pk, started_at, status, passed, total, after, reruns[pk]))
    return points


def _descendants(*, root_ids: list[int], depth: int = RERUN_DEPTH) -> dict[int, int]:
    """{descendant run id: the root it descends from} down `depth` rerun_of links, one indexed
    query per level (never one per run)."""
    root_of: dict[int, int] = {}
    level = {pk: pk for pk in root_ids}
    for _ in range(depth):
        if not level:
            break
        children = Run.objects.filter(rerun_of_id__in=list(level)).values_list("pk", "rerun_of_id")
        level = {pk: level[parent] for pk, parent in children if pk not in root_of}
        root_of.update(level)
    return root_of


def _case_identity(test_case_id: int | None, case_key: str) -> tuple[str, Any] | None:
    """What names one case across a run and its reruns (a result without either is unmatched)."""
    if test_case_id is not None:
        return ("case", test_case_id)
    return ("key", case_key) if case_key else None


def _rescued_cases(root_of: dict[int, int]) -> dict[int, set[tuple[str, Any]]]:
    """{root run id: its failed cases that passed in one of its descendants}, in one query."""
    if not root_of:
        return {}
    roots = set(root_of.values())
    rows = ExecutionResult.objects.filter(
        Q(run_id__in=roots, status__in=FAILURE_VALUES)
        | Q(run_id__in=list(root_of), status=Status.PASSED)
    ).values_list("run_id", "test_case_id", "case_key", "status")
    failed: dict[int, set[tuple[str, Any]]] = {}
    passed: dict[int, set[tuple[str, Any]]] = {}
    for run_id, test_case_id, case_key, status in rows:
        identity = _case_identity(test_case_id, case_key)
        if identity is None:
            continue
        if status == Status.PASSED:
            passed.setdefault(root_of[run_id], set()).add(identity)
        else:
            failed.setdefault(run_id, set()).add(identity)
    return {root: cases & passed.get(root, set()) for root, cases in failed.items()}


# Agents and orchestrators -----------------------------------------------------------------


AGENT_KEY = SortKey("last_seen_at", descending=True, nullable=True)
AGENT_SEARCH_MAX = 200


def agent_list_with_counts(*, q: str = "", after: str = "", before: str = "") -> Page[Agent]:
    """Agents with their results, failures, distinct runs and last result, the most recently
    seen first (never seen last), a page by key; those whose title or host has `q`, when
    given. Counts sync keeps on the agent rows (services.agent_counts), so no result is read;
    a page, not every agent, since a Conductor cluster's workers come and go by the thousand."""
    agents = Agent.objects.select_related("orchestrator")
    if q := q.strip()[:AGENT_SEARCH_MAX]:
        agents = agents.filter(Q(title__icontains=q) | Q(host__icontains=q))
    return keyset_page(agents, key=AGENT_KEY, after=after, before=before)


def agent_list_by_ids(*, ids: Iterable[int]) -> list[Agent]:
    """The agents with these ids (a rerun's chosen agents), in the order given."""
    ids = list(dict.fromkeys(ids))
    found = Agent.objects.in_bulk(ids) if ids else {}
    return [found[pk] for pk in ids if pk in found]


def _count_of(model: type, **match: Any) -> Subquery:
    counted = (
        model.objects.filter(**match).order_by().values(*match).annotate(n=Count("pk")).values("n")
    )
    return Coalesce(Subquery(counted), Value(0))


def orchestrator_list_with_counts() -> list[Orchestrator]:
    """Every orchestrator with its counts of schedules, agents and running runs (its runs are
    counted on its row, runs.services.agent_counts: counting them here grows with history)."""
    running = Run.objects.filter(orchestrator=OuterRef("pk"), status__in=IN_PROGRESS_VALUES)
    return list(
        Orchestrator.objects.annotate(
            schedule_count=_count_of(Schedule, orchestrator=OuterRef("pk"), is_temporary=False),
            agent_count=_count_of(Agent, orchestrator=OuterRef("pk")),
            has_running=Exists(running),
            last_run_at=Subquery(
                Run.objects.filter(orchestrator=OuterRef("pk"))
                .order_by("-started_at", "-id")
                .values("started_at")[:1]
            ),
        ).order_by("name")
    )


# Rerun verdicts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RerunVerdict:
    """What a rerun found, over every run it made (Leapwork: one run per case).

    Apart from the request's state, which only says whether the orchestrator took it.
    """

    runs: int
    runs_over: int
    runs_failed: int
    total: int
    passed: int
    failing: int
    other: int
    unfinished: int

    @property
    def is_over(self) -> bool:
        return self.runs > 0 and self.runs_over == self.runs

    @property
    def status(self) -> str:
        """A Status value for the badge: running until every run is over."""
        if not self.is_over:
            return Status.RUNNING.value
        if self.failing or self.runs_failed:
            return Status.FAILED.value
        return Status.PASSED.value if self.passed or not self.total else Status.UNKNOWN.value

    @property
    def text(self) -> str:
        done = self.total - self.unfinished
        parts = [f"{self.passed} passed"]
        if self.failing:
            parts.append(f"{self.failing} still failing")
        if self.other:
            parts.append(f"{self.other} cancelled or skipped")
        if not self.is_over:
            if not self.total:
                return f"{self.runs} run{'s' if self.runs != 1 else ''} starting"
            return f"{done} of {self.total} done so far: " + ", ".join(parts)
        if self.total and self.passed == self.total:
            return f"all {self.total} passed"
        if not self.total:
            return f"{self.runs_over} run{'s' if self.runs != 1 else ''} over"
        return ", ".join(parts)


def rerun_request_list(
    *, run: Run | None = None, schedule: Schedule | None = None, limit: int = 20
) -> list[RerunRequest]:
    """The newest reruns of a run (any attempt of its vendor run) or run-nows of a schedule,
    with the runs each made (for their verdicts)."""
    if run is not None and not getattr(run, "was_rerun", True):  # as run_get_for_page found it
        return []
    requests = RerunRequest.objects.select_related("requested_by").prefetch_related(
        Prefetch("runs", queryset=Run.objects.order_by("started_at", "id"))
    )
    if run is not None:
        requests = requests.filter(
            source_run__orchestrator=run.orchestrator_id, source_run__external_id=run.external_id
        )
    else:
        requests = requests.filter(schedule=schedule)
    return list(requests.order_by("-requested_at", "-id")[:limit])


def rerun_request_get_queryset() -> QuerySet[RerunRequest]:
    return RerunRequest.objects.select_related(
        "orchestrator", "source_run__schedule", "schedule", "requested_by"
    ).prefetch_related(
        Prefetch(
            "runs",
            queryset=Run.objects.select_related("orchestrator", "schedule").order_by(
                "started_at", "id"
            ),
        )
    )


def rerun_requests_live(requests: list[RerunRequest]) -> bool:
    """Whether any of these requests may still change: being sent, or its runs not over."""
    for rerun_request in requests:
        verdict = rerun_verdict(rerun_request)
        if rerun_request.state in ("pending", "sending") or (
            verdict is not None and not verdict.is_over
        ):
            return True
    return False


def rerun_verdict(rerun_request: RerunRequest) -> RerunVerdict | None:
    """The combined outcome of a request's runs (prefetch `runs` when listing); None when it
    made no run (refused, outcome unknown, or not answered yet)."""
    runs = list(rerun_request.runs.all())
    if not runs:
        return None
    return RerunVerdict(
        runs=len(runs),
        runs_over=sum(1 for run in runs if run.is_terminal),
        runs_failed=sum(1 for run in runs if run.status_enum.is_failure),
        total=sum(run.total_count for run in runs),
        passed=sum(run.passed_count for run in runs),
        failing=sum(run.failed_count for run in runs),
        other=sum(run.other_count for run in runs),
        unfinished=sum(run.queued_count + run.running_count for run in runs),
    )


# Rerun forms --------------------------------------------------------------------------------


def run_get_for_rerun(*, pk: int) -> Run:
    return Run.objects.select_related("orchestrator", "schedule", "rerun_of").get(pk=pk)


def rerun_request_get(*, pk: int) -> RerunRequest:
    return rerun_request_get_queryset().get(pk=pk)


def rerun_request_calls(*, rerun_request: RerunRequest) -> list[RerunCall]:
    """A request's calls in the order they are sent."""
    return list(rerun_request.calls.order_by("index"))


def rerun_request_first_runs(*, rerun_request: RerunRequest, limit: int = 2) -> list[Run]:
    """The first runs a request made: enough to tell none, one or several."""
    return list(rerun_request.runs.order_by("started_at", "id")[:limit])


# Failures by cause -------------------------------------------------------------------------

FAILURE_GROUPS_SHOWN = 50
FAILURE_EXAMPLES = 5


@dataclass(frozen=True)
class FailureGroupSummary:
    """A cause of failure in a window: how far it reached, and its failures per day."""

    group: FailureGroup
    results: int
    runs: int
    cases: int
    agents: int
    orchestrators: int
    last_at: datetime | None
    per_day: list[int]
    window_start: datetime = EPOCH
    muted: bool = False
    rerun: int = 0  # its failures whose case was run again (a rerun, a later attempt)...
    cleared: int = 0  # ...and passed there

    @property
    def rerun_verdict(self) -> str:
        """ "flaky" when most failures rerun passed, "persistent" when none did."""
        if not self.rerun:
            return ""
        if not self.cleared:
            return "persistent"
        return "flaky" if self.cleared * 2 >= self.rerun else "mostly persistent"

    @property
    def is_new(self) -> bool:
        """First seen anywhere inside the window shown."""
        return bool(self.group.first_seen_at and self.window_start <= self.group.first_seen_at)


def failures_of_causes(fingerprints: list[str]) -> QuerySet[ExecutionResult]:
    """The failures of these causes. SQLite reads its partial indexes over failures only when
    their condition is spelled out too; PostgreSQL proves it from the list and, told both,
    multiplies their odds as if apart: it expects a fortieth of the rows, and sorts them
    where it would hash (a 30-day window's failures per day took twice as long)."""
    failures = ExecutionResult.objects.filter(fingerprint__in=fingerprints)
    return failures if connection.vendor == "postgresql" else failures.exclude(fingerprint="")


def _failures_in(
    since: datetime, filters: dict[str, Any], causes: list[str] | None = None
) -> QuerySet[ExecutionResult]:
    """The failures (results with a fingerprint) started since, where the filters say; only
    those of these causes, when given."""
    failures = (
        ExecutionResult.objects.exclude(fingerprint="")
        if causes is None
        else failures_of_causes(causes)
    )
    failures = failures.filter(started_at__gte=since)
    if orchestrator := filters.get("orchestrator"):
        failures = failures.filter(run__orchestrator=orchestrator)
    if schedule := filters.get("schedule"):
        failures = failures.filter(run__schedule=schedule)
    if agent := filters.get("agent"):
        failures = failures.filter(agent=agent)
    return failures


FAILURE_STATUSES = ("new", "known", "muted")


def failure_groups(
    *, days: int, filters: dict[str, Any] | None = None, now: datetime | None = None
) -> list[FailureGroupSummary]:
    """The causes of the failures of the last `days` days, the widest reaching first (by
    failures, then the newest): two grouped queries over the window's failures (an index on
    failures alone by start), one for the groups with their mutes, whatever the history's
    length. `filters` may also ask for the causes first seen in the window
    (status "new"), before it ("known"), or muted."""
    now = now or datetime.now(UTC)
    today = now.date()
    start = datetime.combine(today - timedelta(days=days - 1), time.min, tzinfo=UTC)
    filters = filters or {}
    failures = _with_status(_failures_in(start, filters), filters.get("status"), start, now)
    rows = list(
        failures.values("fingerprint")
        .annotate(**_reach(filters))
        .order_by("-results", "-last_at", "fingerprint")[:FAILURE_GROUPS_SHOWN]
    )
    fingerprints = [row["fingerprint"] for row in rows]
    # Each group with whether a mute in force covers it anywhere: one query.
    in_force = FailureMute.objects.active(now).filter(group=OuterRef("pk"))
    groups = FailureGroup.objects.annotate(muted=Exists(in_force)).in_bulk(
        fingerprints, field_name="fingerprint"
    )
    # The causes shown were chosen by status: their failures need no more than the filters.
    per_day = _per_day(_failures_in(start, filters, causes=fingerprints), fingerprints, start, days)
    reruns = _rerun_outcomes(failures, fingerprints, start)
    return [
        FailureGroupSummary(
            group=groups[row.pop("fingerprint")],
            per_day=per_day[fp],
            window_start=start,
            muted=groups[fp].muted,
            **reruns.get(fp, {}),
            **row,
        )
        for fp, row in zip(fingerprints, rows, strict=True)
        if fp in groups
    ]


def _reach(filters: dict[str, Any]) -> dict[str, Any]:
    """What failure_groups counts of each cause's failures. Filtered by an orchestrator, a
    schedule or an agent, the failures are of one orchestrator (an agent's, of one agent):
    that is not counted, which spares joining every failure to its case."""
    one_orchestrator = any(filters.get(name) for name in ("orchestrator", "schedule", "agent"))
    return {
        "results": Count("id"),
        "runs": Count("run_id", distinct=True),
        "cases": Count("test_case_id", distinct=True),
        "agents": Value(1) if filters.get("agent") else Count("agent_id", distinct=True),
        # Through the case (a few thousand rows), not the run (a row per run).
        "orchestrators": (
            Value(1) if one_orchestrator else Count("test_case__orchestrator_id", distinct=True)
        ),
        "last_at": Max("started_at"),
    }


def _with_status(
    failures: QuerySet[ExecutionResult], status: str | None, start: datetime, now: datetime
) -> QuerySet[ExecutionResult]:
    """The failures whose cause was first seen since start ("new"), before it ("known"),
    or is muted now; all of them when no status is asked for."""
    if status == "new":
        fresh = FailureGroup.objects.filter(first_seen_at__gte=start)
        return failures.filter(fingerprint__in=fresh.values("fingerprint"))
    if status == "known":
        old = FailureGroup.objects.filter(first_seen_at__lt=start)
        return failures.filter(fingerprint__in=old.values("fingerprint"))
    if status == "muted":
        muted = FailureMute.objects.active(now).values("group__fingerprint")
        return failures.filter(fingerprint__in=muted)
    return failures


class UtcDay(Func):
    """The UTC day of a time as a number of days since 1970-01-01. A number comes back as it
    is, where a date is converted row by row in Python (a window's fifty causes by day, 1,500
    rows, took 2 ms more than their query). SQLite stores times as UTC text, so its own
    date() reads the day; Django's TruncDate calls a Python function there for every row."""

    output_field = IntegerField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list]:
        sql, params = compiler.compile(self.source_expressions[0])
        return f"(({sql} AT TIME ZONE 'UTC')::date - DATE '1970-01-01')", params

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list]:
        sql, params = compiler.compile(self.source_expressions[0])
        return f"CAST(julianday(date({sql})) - 2440587.5 AS INTEGER)", params


def _per_day(
    failures: QuerySet[ExecutionResult], fingerprints: list[str], start: datetime, days: int
) -> dict[str, list[int]]:
    """Each cause's failures per day of the window, oldest day first (one grouped query over
    `failures`, those of the causes)."""
    per_day: dict[str, list[int]] = {fp: [0] * days for fp in fingerprints}
    daily = (
        failures.annotate(day=UtcDay("started_at"))
        .values_list("fingerprint", "day")
        .annotate(n=Count("id"))
        .order_by()
    )
    first = (start - EPOCH).days
    for fingerprint, day, n in daily:
        index = day - first
        if 0 <= index < days:
            per_day[fingerprint][index] += n
    return per_day


def _rerun_outcomes(
    failures: QuerySet[ExecutionResult], fingerprints: list[str], start: datetime
) -> dict[str, dict[str, int]]:
    """Per cause: its failures whose case ran again in a rerun of their run, and those of
    them that passed there. Reruns are few: the window's reruns first (an index on rerun_of;
    a rerun starts after the failure it reruns), those of a run that failed in the window,
    then only their results and the failures of those runs; nothing when nothing was rerun."""
    reruns = dict(
        Run.objects.filter(rerun_of__isnull=False, started_at__gte=start)
        .filter(Exists(failures.filter(run_id=OuterRef("rerun_of_id"))))
        .values_list("pk", "rerun_of_id")
    )
    if not reruns:
        return {}
    outcomes: dict[tuple[int, int | None], bool] = {}
    for run_id, case_id, status in ExecutionResult.objects.filter(run_id__in=reruns).values_list(
        "run_id", "test_case_id", "status"
    ):
        key = (reruns[run_id], case_id)
        outcomes[key] = outcomes.get(key, False) or status == Status.PASSED
    counts: dict[str, dict[str, int]] = {}
    rerun_failures = failures.filter(fingerprint__in=fingerprints, run_id__in=set(reruns.values()))
    for fingerprint, run_id, case_id in rerun_failures.values_list(
        "fingerprint", "run_id", "test_case_id"
    ):
        if (run_id, case_id) in outcomes:
            entry = counts.setdefault(fingerprint, {"rerun": 0, "cleared": 0})
            entry["rerun"] += 1
            entry["cleared"] += outcomes[(run_id, case_id)]
    return counts


def failure_group_get(*, pk: int) -> FailureGroup:
    """The group, with whether it was ever muted (`ever_muted`) or rerun (`ever_rerun`): most
    causes never are, and then their page reads neither record (two queries of four joins)."""
    return FailureGroup.objects.annotate(
        ever_muted=Exists(FailureMute.objects.filter(group=OuterRef("pk"))),
        ever_rerun=Exists(RerunBatch.objects.filter(group=OuterRef("pk"))),
    ).get(pk=pk)


def failure_group_mutes(*, group: FailureGroup) -> list[FailureMute]:
    """Every mute of the group, in force or not, newest first: the record of who muted it."""
    if not getattr(group, "ever_muted", True):  # as failure_group_get found it
        return []
    return list(
        group.mutes.select_related("schedule", "agent", "muted_by", "lifted_by").order_by(
            "-muted_at", "-id"
        )
    )


BATCHES_SHOWN = 5


def failure_group_batches(*, group: FailureGroup) -> list[RerunBatch]:
    """The newest reruns of the cause, each batch with its requests and what they ran on."""
    if not getattr(group, "ever_rerun", True):  # as failure_group_get found it
        return []
    requests = RerunRequest.objects.select_related("orchestrator", "source_run").order_by("pk")
    return list(
        group.batches.select_related("requested_by")
        .prefetch_related(Prefetch("requests", queryset=requests))
        .order_by("-requested_at", "-id")[:BATCHES_SHOWN]
    )


GROUP_DAYS = 30  # a cause's page reads its failures of this many days, unless told


def _group_failures(group: FailureGroup, days: int) -> QuerySet[ExecutionResult]:
    """The group's failures of the last `days` days: a range of its index by cause and start,
    so a cause's page costs the same however long the history."""
    since = datetime.combine(
        datetime.now(UTC).date() - timedelta(days=days - 1), time.min, tzinfo=UTC
    )
    # The condition of the partial index, spelled out: SQLite uses it only when it is.
    failures = ExecutionResult.objects.exclude(fingerprint="")
    return failures.filter(fingerprint=group.fingerprint, started_at__gte=since)


def failure_group_places(
    *, group: FailureGroup, days: int = GROUP_DAYS, detail: FailureGroupDetail | None = None
) -> tuple[QuerySet[Schedule], QuerySet[Agent]]:
    """The schedules and agents where the group's recent failures happened (what a mute may
    name): those its page's detail found, by id, else read again from its failures."""
    if detail is not None:
        schedules = Schedule.objects.filter(pk__in=[pk for pk, _title in detail.schedule_places])
        agents = Agent.objects.filter(pk__in=[pk for pk, _title in detail.agent_places])
    else:
        failures = _group_failures(group, days)
        schedules = Schedule.objects.filter(pk__in=failures.values("run__schedule"))
        agents = Agent.objects.filter(pk__in=failures.values("agent"))
    return schedules.order_by("title"), agents.order_by("title")


@dataclass(frozen=True)
class FailureGroupDetail:
    """Where a cause struck: its cases, agents and schedules (each with its count, and when
    it was first seen there), and its newest failures in full."""

    cases: list[dict[str, Any]]
    agents: list[dict[str, Any]]
    schedules: list[dict[str, Any]]
    examples: list[ExecutionResult]
    total: int
    days: int = GROUP_DAYS
    # Every schedule and agent it struck (the spreads above show the widest `limit`), as
    # (id, title) by title: what a mute may name, drawn without reading them again.
    schedule_places: list[tuple[int, str]] = field(default_factory=list)
    agent_places: list[tuple[int, str]] = field(default_factory=list)


def failure_group_detail(
    *, group: FailureGroup, days: int = GROUP_DAYS, limit: int = 20
) -> FailureGroupDetail:
    """Three grouped queries over the group's failures of the last `days` days (a range of
    the index by cause and start) and one for its newest examples. Its agents and schedules
    are read in full (the estate's, not the history's, size): the mute form offers them,
    and every failure is in one agent's row, so they count the failures too."""
    failures = _group_failures(group, days)

    def spread(*names: str, limit: int | None = limit) -> list[dict[str, Any]]:
        rows = (
            failures.values(*names)
            .annotate(n=Count("id"), first_at=Min("started_at"), last_at=Max("started_at"))
            .order_by("-n", "-last_at")
        )
        return list(rows[:limit] if limit else rows)

    def places(rows: list[dict[str, Any]], pk: str, title: str) -> list[tuple[int, str]]:
        return sorted(((row[pk], row[title]) for row in rows if row[pk]), key=lambda p: p[::-1])

    examples = list(
        failures.select_related(
            "run__orchestrator", "run__schedule", "test_case", "agent"
        ).order_by("-started_at", "-id")[:FAILURE_EXAMPLES]
    )
    agents = spread("agent_id", "agent__title", "agent__orchestrator__name", limit=None)
    schedules = spread(
        "run__schedule_id", "run__schedule__title", "run__orchestrator__name", limit=None
    )
    return FailureGroupDetail(
        cases=spread("test_case_id", "test_case__title"),
        agents=agents[:limit],
        schedules=schedules[:limit],
        examples=examples,
        total=sum(row["n"] for row in agents),
        days=days,
        schedule_places=places(schedules, "run__schedule_id", "run__schedule__title"),
        agent_places=places(agents, "agent_id", "agent__title"),
    )


@dataclass(frozen=True)
class FailureCause:
    """A failure's group, and whether it is new: its cause never failed this case on this
    schedule in a run started before this one (by start, not by the order sync found them);
    and whether a mute in force covers it (on its schedule and agent)."""

    group_id: int
    is_new: bool
    muted: bool = False


def _muted(
    mutes: Iterable[tuple[str, int | None, int | None]], run: Run, result: ResultRow
) -> bool:
    """Whether one of these active mutes (fingerprint, schedule, agent) covers the result."""
    return any(
        fingerprint == result.fingerprint
        and schedule in (None, run.schedule_id)
        and agent in (None, result.agent_id)
        for fingerprint, schedule, agent in mutes
    )


def failures_before(
    run: Run, fingerprints: Iterable[str], case_ids: Iterable[int | None]
) -> QuerySet[ExecutionResult]:
    """Failures of these causes on these cases in the run's schedule, in runs started before
    it: read from the failures of the cases (result_case_cause_idx), not every result."""
    return ExecutionResult.objects.exclude(fingerprint="").filter(
        fingerprint__in=fingerprints,
        test_case_id__in=case_ids,
        run__schedule=run.schedule_id,
        run__started_at__lt=run.started_at,
    )


def failure_causes(*, run: Run, results: Iterable[ResultRow]) -> dict[int, FailureCause]:
    """{result pk: its cause} for the failures among `results` (those a page shows): two
    queries, whatever their number."""
    failures = [r for r in results if r.fingerprint]
    if not failures:
        return {}
    fingerprints = {r.fingerprint for r in failures}
    # Each group with its mutes in force (a row per mute; one with none when there is none).
    rows = (
        FailureGroup.objects.filter(fingerprint__in=fingerprints)
        .annotate(live=FilteredRelation("mutes", condition=mute_in_force(prefix="mutes__")))
        .values_list("fingerprint", "pk", "live__id", "live__schedule_id", "live__agent_id")
    )
    groups, mutes = {}, []
    for fingerprint, pk, mute, schedule, agent in rows:
        groups[fingerprint] = pk
        if mute is not None:
            mutes.append((fingerprint, schedule, agent))
    known = set(
        failures_before(run, fingerprints, {r.test_case_id for r in failures})
        .values_list("fingerprint", "test_case_id")
        .order_by()
        .distinct()
    )
    return {
        r.pk: FailureCause(
            groups[r.fingerprint],
            (r.fingerprint, r.test_case_id) not in known,
            _muted(mutes, run, r),
        )
        for r in failures
        if r.fingerprint in groups
    }


# API tokens --------------------------------------------------------------------------------


def api_token_list(*, user: Any) -> list[ApiToken]:
    """A user's tokens, the newest first (revoked and expired ones too, for the record)."""
    return list(ApiToken.objects.filter(user=user).order_by("-created_at", "-id"))


def api_token_get(*, pk: int, user: Any) -> ApiToken:
    """One of `user`'s tokens (another user's is not found)."""
    return ApiToken.objects.get(pk=pk, user=user)
