"""Schemathesis against a live server: examples drawn from the schema the server serves at
/api/v1/openapi.json, valid and invalid ones, sent with a Rerunner's token, must never meet a
server error nor an answer (status, media type, body) that the schema does not declare."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from runs.models import FailureGroup
from runs.services.api_tokens import api_token_create
from runs.services.failure_groups import fingerprints_refresh
from runs.services.reruns import RerunInput, rerun_start
from runs.status import Status
from tests.factories import (
    make_agent,
    make_orchestrator,
    make_result,
    make_run,
    make_schedule,
    make_test_case,
    make_user,
)

pytestmark = pytest.mark.django_db(transaction=True)

# Examples per operation and strategy: about 20 seconds for the whole schema.
EXAMPLES = 12
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def estate(user: Any) -> dict[str, dict[str, Any]]:
    """A little of everything, and the path parameters that find it: the examples miss rows
    as often as they like, and also run on these."""
    orchestrator = make_orchestrator(name="lab")
    schedule = make_schedule(orchestrator)
    agent = make_agent(orchestrator)
    case = make_test_case(orchestrator)
    for n in range(3):
        run = make_run(
            schedule,
            status=Status.FAILED if n else Status.PASSED,
            started_at=timezone.now() - timedelta(hours=n),
        )
        for flow in ("flow-1", "flow-2"):
            make_result(
                run,
                status=Status.FAILED,
                case_key=flow,
                agent=agent,
                test_case=case,
                message=f"Timeout after {n}s waiting for #pay",
            )
    fingerprints_refresh()
    request, _ = rerun_start(
        user=user, idempotency_key="seed", data=RerunInput(scope="failed"), source=run
    )
    api = "/api/v1"
    return {
        f"{api}/runs/{{id}}": {"id": run.pk},
        f"{api}/runs/{{id}}/results": {"id": run.pk},
        f"{api}/runs/{{id}}/rerun": {"id": run.pk},
        f"{api}/schedules/{{id}}/run-now": {"id": schedule.pk},
        f"{api}/cases/{{id}}": {"id": case.pk},
        f"{api}/failures/{{id}}": {"id": FailureGroup.objects.get().pk},
        f"{api}/reruns/{{id}}": {"id": request.pk},
        f"{api}/go/{{orchestrator}}/{{external_id}}": {
            "orchestrator": "lab",
            "external_id": run.external_id,
        },
    }


def strategies(operation: schemathesis.APIOperation, known: dict[str, dict[str, Any]]):
    yield operation.as_strategy()
    yield operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)
    if operation.path in known:
        yield operation.as_strategy(path_parameters=known[operation.path])


def test_the_api_keeps_to_its_schema(live_server, settings):
    settings.RUNBOARD_API_WRITES_PER_MINUTE = 100_000
    user = make_user("bot", rerunner=True)
    known = estate(user)
    _token, raw = api_token_create(user=user, name="schemathesis")
    auth = {"Authorization": f"Bearer {raw}"}
    # Operation by operation (schemathesis' pytest loader for a fixture, which a live server
    # needs, does not run on this pytest): the same strategies and checks.
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/v1/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 12
    for operation in operations:
        for strategy in strategies(operation, known):

            @given(case=strategy)
            @examples(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def keeps_to_it(case: schemathesis.Case) -> None:
                case.call_and_validate(base_url=live_server.url, headers=auth, checks=CHECKS)

            keeps_to_it()
