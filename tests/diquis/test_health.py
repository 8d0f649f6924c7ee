"""GET /health: the database, Redis and the number of live workers (API.md, "Job monitoring"), GET and HEAD
only (found by the fuzzer, tests/e2e/test_fuzz_api.py: it answered any method, which the schema did not
allow). With Redis or the database down it answers 503 and names which: tests/e2e/test_reliability.py.
Each database server is named ok or down (API.md, "Database servers"); one that is down leaves it 200."""

import contextlib
import time

import pytest
from django.conf import settings
from rq import Worker

from jobs.enqueue import queue
from jobs.redis_client import connection
from tenants.models import DatabaseServer
from tests.support.ports import free_port, silent_port

HEALTHY = {"database": "ok", "redis": "ok", "workers": 0, "databaseServers": {"main": "ok"}}


def test_health_answers_get_and_head_only(api):
    response = api.get("/health")
    assert (response.status_code, response.json()) == (200, HEALTHY)
    assert api.head("/health").status_code == 200
    assert api.post("/health").status_code == 405
    assert api.delete("/health").status_code == 405


def test_health_counts_the_workers_registered_in_redis(api):
    worker = Worker([queue()], connection=connection())
    worker.register_birth()
    assert api.get("/health").json() == {**HEALTHY, "workers": 1}
    worker.register_death()
    assert api.get("/health").json() == HEALTHY


def test_health_names_each_database_server_and_stays_200_with_one_stopped(api, fleet_servers, extra_postgres_servers):
    assert api.get("/health").json()["databaseServers"] == {"main": "ok", "pg-logical": "ok", "pg-plain": "ok"}
    extra_postgres_servers.plain.stop()
    try:
        response = api.get("/health")
        assert response.status_code == 200
        assert response.json() == {**HEALTHY, "databaseServers": {"main": "ok", "pg-logical": "ok", "pg-plain": "down"}}
        assert DatabaseServer.objects.get(pk="pg-plain").reachable is False  # as last seen, for GET and the admin
    finally:
        extra_postgres_servers.plain.start_again()
    assert api.get("/health").json()["databaseServers"]["pg-plain"] == "ok"
    assert DatabaseServer.objects.get(pk="pg-plain").reachable is True


@pytest.mark.django_db
def test_servers_that_do_not_answer_cost_health_one_connect_timeout_not_one_each(api):
    """Ten servers whose port nobody listens on (refused at once) and ten that take the connection and never
    answer (only the connect timeout ends the wait): tried side by side, the answer comes in about one timeout."""
    names = []
    with contextlib.ExitStack() as silent:
        for i in range(10):
            DatabaseServer.objects.create(name=f"closed-{i}", host="127.0.0.1", port=free_port(), user="nobody")
            port = silent.enter_context(silent_port())
            DatabaseServer.objects.create(name=f"silent-{i}", host="127.0.0.1", port=port, user="nobody")
            names += [f"closed-{i}", f"silent-{i}"]
        started = time.monotonic()
        response = api.get("/health")
        elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert response.json()["databaseServers"] == {"main": "ok", **{name: "down" for name in names}}
    assert settings.DIQUIS_SERVER_CONNECT_TIMEOUT - 0.5 < elapsed < settings.DIQUIS_SERVER_CONNECT_TIMEOUT + 2, elapsed
