"""Property tests (issue 14): whatever a page or form is given, it answers with a valid result,
a form error or an ignored filter, never an exception."""

from __future__ import annotations

import contextlib
import json
import math
from urllib.parse import urlencode

import pytest
from django import forms
from django.http import QueryDict
from hypothesis import given
from hypothesis import strategies as st

from runs import selectors
from runs.filters import ResultFilterForm, RunFilterForm
from runs.forms import (
    JSON_MAX_DEPTH,
    VARIABLE_NAME_MAX,
    VARIABLE_VALUE_MAX,
    VARIABLES_MAX_BYTES,
    ConnectForm,
    JSONObjectField,
    RerunForm,
    RunNowForm,
    TrackRunForm,
    parse_variables,
)
from runs.orchestrators.http import path_segment
from runs.services.rerun_plan import rerun_plan
from runs.services.reruns import RerunInvalid
from runs.status import Status
from tests.factories import (
    make_agent,
    make_orchestrator,
    make_result,
    make_run,
    make_schedule,
    make_test_case,
)

pytestmark = pytest.mark.django_db

BIG = 2**63
NASTY = [
    "",
    " ",
    "0",
    "-1",
    str(BIG),
    str(BIG - 1),
    str(-BIG - 1),
    "9" * 30,
    "1e999",
    "NaN",
    "-Infinity",
    "\x00",
    "a\x00b",
    "\n",
    "a\r\nb",
    "..",
    "../agents",
    "x/../../agents",
    "☃",
    "\u202e",
    "9999-12-31",
    "0001-01-01",
    "2026-02-30",
    "n_1",
    f"{BIG}_1",
    f"1_{BIG}",
    f"n_{BIG}",
    "-5_-5",
    "1_1_1",
    "failures",
    '{"a": NaN}',
    "[" * 2_000,
]
# Any text, the values fuzzing found harmful, integers of every size and cursor-like pairs.
texts = st.one_of(
    st.text(max_size=40),
    st.sampled_from(NASTY),
    st.integers().map(str),
    st.tuples(st.one_of(st.integers(), st.just("n")), st.integers()).map(
        lambda pair: f"{pair[0]}_{pair[1]}"
    ),
)


def query(fields: list[str]) -> st.SearchStrategy[QueryDict]:
    """A query string over these fields (some repeated, some unknown) with nasty values."""
    names = st.one_of(st.sampled_from(fields), st.text(max_size=8))
    pairs = st.lists(st.tuples(names, texts), max_size=8)
    return pairs.map(lambda items: QueryDict(urlencode(items)))


@pytest.fixture
def estate():
    schedule = make_schedule()
    orchestrator = schedule.orchestrator
    agent = make_agent(orchestrator)
    run = make_run(schedule, status=Status.FAILED)
    make_result(run, test_case=make_test_case(orchestrator), agent=agent, status=Status.FAILED)
    return run


RUN_FILTER_FIELDS = [*RunFilterForm.base_fields, "after", "before"]


@given(data=query(RUN_FILTER_FIELDS))
def test_run_filters_give_a_page_whatever_they_are_given(estate, data):
    form = RunFilterForm(data)
    form.is_valid()
    filters = form.filters()
    assert set(filters) <= set(RunFilterForm.base_fields)
    page = selectors.run_history(
        filters=filters,
        sort=form.sort_key,
        after=data.get("after", ""),
        before=data.get("before", ""),
    )
    assert len(page.items) <= selectors.PAGE_SIZE


@given(data=query(["status", "agent", "after", "before"]))
def test_result_filters_give_a_page_whatever_they_are_given(estate, data):
    counts = selectors.run_result_counts(run=estate)
    form = ResultFilterForm(data, agents=counts.agents)
    form.is_valid()
    filters = form.filters()
    agent = filters.get("agent")
    assert agent is None or agent in {a.pk for a in counts.agents}
    counts.failures_on(agent)
    selectors.run_result_page(
        run=estate, filters=filters, after=data.get("after", ""), before=data.get("before", "")
    )


SORT_KEYS = [*selectors.RUN_SORT_KEYS.values(), selectors.SEQ_KEY, selectors.RESULT_KEY]


@given(key=st.sampled_from(SORT_KEYS), cursor=texts)
def test_a_cursor_decodes_to_values_a_database_holds_or_to_nothing(key, cursor):
    decoded = key.decode(cursor)
    if decoded is not None:
        value, pk = decoded
        assert selectors.BIGINT_MIN <= pk <= selectors.BIGINT_MAX
        if isinstance(value, int):
            assert selectors.BIGINT_MIN <= value <= selectors.BIGINT_MAX


@given(key=st.sampled_from(SORT_KEYS), after=texts, before=texts)
def test_any_cursor_pages_without_an_error(estate, key, after, before):
    queryset = estate.results.all() if key in (selectors.SEQ_KEY, selectors.RESULT_KEY) else None
    if queryset is None:
        queryset = type(estate).objects.all()
    selectors.keyset_page(queryset, key=key, after=after, before=before)


@given(value=st.integers(min_value=-(2**62), max_value=2**62), pk=st.integers(1, BIG - 1))
def test_an_integer_cursor_round_trips(value, pk):
    assert selectors.SEQ_KEY.decode(f"{value}_{pk}") == (value, pk)


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=10),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=20,
)
json_texts = st.one_of(
    json_values.map(json.dumps),  # NaN and Infinity come out as Python writes them
    st.integers(1, 60).map(lambda depth: '{"a": ' + "[" * depth + "]" * depth + "}"),
    st.text(max_size=50),
    st.sampled_from(NASTY),
)


def _depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


@given(text=json_texts)
def test_a_json_field_gives_an_object_the_databases_can_store_or_an_error(text):
    try:
        value = JSONObjectField(required=False).clean(text)
    except forms.ValidationError:
        return
    if value is not None:
        assert isinstance(value, dict)
        dumped = json.dumps(value, allow_nan=False)  # raises on NaN and Infinity
        assert "\\u0000" not in dumped
        assert _depth(value) <= JSON_MAX_DEPTH
        assert all(math.isfinite(n) for n in _numbers(value))


def _numbers(value):
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        for item in value:
            yield from _numbers(item)
    elif isinstance(value, float):
        yield value


rows = st.lists(st.tuples(texts, st.one_of(texts, st.text(min_size=3_000, max_size=5_000))))


@given(rows=rows)
def test_variables_are_bounded_or_refused(rows):
    data = QueryDict(
        urlencode(
            [(k, v) for name, value in rows for k, v in (("var_name", name), ("var_value", value))]
        )
    )
    variables, problem = parse_variables(data)
    if problem:
        return
    assert all(len(name) <= VARIABLE_NAME_MAX for name in variables)
    assert all(len(value) <= VARIABLE_VALUE_MAX for value in variables.values())
    assert sum(len(k.encode()) + len(v.encode()) for k, v in variables.items()) <= (
        VARIABLES_MAX_BYTES
    )
    assert not any("\x00" in k or "\x00" in v for k, v in variables.items())


RERUN_FIELDS = [
    *("scope", "where", "agents", "cases", "iterations", "only_failed_iterations"),
    *("workflow_input", "correlation_id", "task_input", "var_name", "var_value"),
    *("idempotency_key", "plan_digest", "build", "environment"),
]


@pytest.fixture
def runs_of_each_kind():
    made = []
    for kind in ("leapwork", "conductor", "testsigma"):
        schedule = make_schedule(make_orchestrator(kind, base_url="http://127.0.0.1:9"))
        run = make_run(schedule, status=Status.FAILED)
        case = make_test_case(schedule.orchestrator)
        agent = make_agent(schedule.orchestrator)
        make_result(run, test_case=case, agent=agent, status=Status.FAILED, case_key="k")
        made.append(run)
    return made


@given(which=st.integers(0, 2), data=query(RERUN_FIELDS))
def test_the_rerun_form_validates_or_refuses_any_input(runs_of_each_kind, which, data):
    run = runs_of_each_kind[which]
    shown = selectors.run_result_page(run=run)
    form = RerunForm(data, run=run, shown=shown.shown, counts=selectors.run_result_counts(run=run))
    if form.is_valid():
        with contextlib.suppress(RerunInvalid):
            rerun_plan(source=run, data=form.rerun_input())


@given(which=st.integers(0, 2), data=query(RERUN_FIELDS))
def test_the_run_now_form_validates_or_refuses_any_input(runs_of_each_kind, which, data):
    schedule = runs_of_each_kind[which].schedule
    form = RunNowForm(data, schedule=schedule)
    if form.is_valid():
        with contextlib.suppress(RerunInvalid):
            rerun_plan(schedule=schedule, data=form.rerun_input())


@given(data=query(["orchestrator", "run_id"]))
def test_the_track_form_gives_an_id_that_stays_one_path_segment(runs_of_each_kind, data):
    form = TrackRunForm(data)
    if form.is_valid():
        segment = path_segment(form.cleaned_data["run_id"])
        assert "/" not in segment and segment.strip(".")


@given(data=query(["kind", "name", "base_url", "credential", "test_plan_ids", "run_ids"]))
def test_the_connect_form_gives_a_usable_url_and_credential_or_an_error(data):
    form = ConnectForm(data)
    if form.is_valid():
        assert form.cleaned_data["credential"].isascii()
