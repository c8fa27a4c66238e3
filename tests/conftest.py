"""Shared fixtures. PostgreSQL-only tests are deselected on SQLite and run on PostgreSQL."""

from __future__ import annotations

import os

import pytest
from axes.utils import reset
from django.conf import settings
from django.core.cache import cache
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from tests.factories import make_user

pytest_plugins = [
    "tests.fixtures.leapwork",
    "tests.fixtures.conductor",
    "tests.fixtures.testsigma",
]

IN_CI = bool(os.environ.get("CI"))

# Property tests share their test's database transaction (a function-scoped fixture) and run
# queries, so no deadline; CI draws the same examples every time (a failure is reproducible).
hypothesis_settings.register_profile(
    "ci",
    deadline=None,
    derandomize=True,
    max_examples=60,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
hypothesis_settings.register_profile(
    "dev",
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
hypothesis_settings.load_profile("ci" if IN_CI else "dev")


def database_is_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if database_is_postgres():
        return
    deselected = [item for item in items if item.get_closest_marker("postgres")]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not item.get_closest_marker("postgres")]


@pytest.fixture(autouse=True)
def empty_cache():
    """Each test starts with an empty cache: pages are keyed by the history's revision, which
    a rolled-back test counts from zero again."""
    cache.clear()


@pytest.fixture(autouse=True)
def axes_reset(request: pytest.FixtureRequest) -> None:
    """No test inherits another's failed logins (django-axes counts them in the database);
    only tests that use the database touch it."""
    uses_db = request.node.get_closest_marker("django_db") or {
        "db",
        "transactional_db",
    } & set(request.fixturenames)
    if uses_db:
        request.getfixturevalue("db")
        reset()


@pytest.fixture
def user(db):
    return make_user("viewer")


@pytest.fixture
def rerunner(db):
    return make_user("rerunner", rerunner=True)


@pytest.fixture
def viewer_client(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def rerunner_client(client, rerunner):
    client.force_login(rerunner)
    return client


@pytest.fixture
def rerun_worker(transactional_db):
    """The rerun worker (django-tasks-db's own, on the `reruns` queue) in a thread of the test
    process, with its own database connection, for tests with a live server."""
    import threading

    from django.db import connections
    from django_tasks_db.management.commands.db_worker import Worker

    from runs.tasks import RERUN_QUEUE

    worker = Worker(
        queue_names=[RERUN_QUEUE],
        interval=0.1,
        batch=False,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="tests-rerun-worker",
        excluded_queue_names=[],
    )

    def run() -> None:
        try:
            worker.run()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, name="rerun-worker", daemon=True)
    thread.start()
    yield worker
    worker.running = False
    thread.join(timeout=30)
    assert not thread.is_alive(), "the rerun worker did not stop"
