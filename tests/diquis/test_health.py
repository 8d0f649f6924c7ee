"""GET /health: the database, Redis and the number of live workers (API.md, "Job monitoring"), GET and HEAD
only (found by the fuzzer, tests/e2e/test_fuzz_api.py: it answered any method, which the schema did not
allow). With Redis or the database down it answers 503 and names which: tests/e2e/test_reliability.py."""

from rq import Worker

from jobs.enqueue import queue
from jobs.redis_client import connection

HEALTHY = {"database": "ok", "redis": "ok", "workers": 0}


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
