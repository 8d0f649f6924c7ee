"""Fault tests: Redis stopped, frozen and restarted under the real stack (Daphne + RQ worker processes).

Each test starts a private redis-server (tests.support.redis_server) and points the live processes at it, so
it can stop and restart Redis without touching the machine's shared one. The test process itself reads the
outcome from PostgreSQL (the source of truth) and through the live Daphne (websocket, REST).

The figures these tests measure are printed (`pytest -s` shows them) as `FIGURE <name>: <value>`.
"""

import signal
import time
import uuid

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from jobs.models import Job
from notifications.models import Notification
from tenants.models import ProvisioningStatus, Tenant
from tenants.provisioning.steps import CREATE_ADMIN_USER
from tests.support import live
from tests.support.fault_injection import wait_until
from tests.support.live import LiveStack, drain, wait_for_event
from tests.support.live_tenants import (
    admin_users,
    figure,
    finished,
    is_active,
    job_of,
    last_notification_id,
    post_tenant,
    root_token,
    socket,
    status_of,
)
from tests.support.ports import free_port
from tests.support.redis_server import PrivateRedis
from tests.support.tenant_databases import terminate_sessions

S = ProvisioningStatus


def workers_registered(redis_client):
    return redis_client.scard("rq:workers")


def sweeps_without_redis(worker):
    """How many of the worker's sweeps so far found Redis down (jobs.recovery logs each one)."""
    return worker.output().count("sweep: Redis unavailable")


# /health names each database server: only `main` here, up or down with the main database.
MAIN_OK = {"databaseServers": {"main": "ok"}}
MAIN_DOWN = {"databaseServers": {"main": "down"}}


def health(stack):
    response = httpx.get(f"{stack.url}/health", timeout=30)
    return response.status_code, response.json()


# --- Redis ---------------------------------------------------------------------------------------------------


@pytest.fixture
def private_redis(tmp_path):
    with PrivateRedis(tmp_path) as server:
        yield server


@pytest.fixture
def redis_stack(transactional_db, tmp_path, private_redis):
    """Daphne + one worker on the test database and the private Redis."""
    stack = LiveStack(tmp_path, REDIS_URL=private_redis.url())
    try:
        yield stack
    finally:
        stack.stop()


def test_redis_down_at_creation_is_accepted_and_finishes_once_redis_is_back(redis_stack, private_redis):
    """POST with Redis stopped -> 202 at once; the job is recorded, not pushed; Redis back -> Active + notified,
    by the worker that was running all along (it reconnects by itself), and Daphne serves sockets again:
    the client whose socket was closed by the outage reconnects with `?since=` and gets the notification."""
    stack = redis_stack
    worker_pid = stack.workers[0].pid
    wait_until(lambda: workers_registered(private_redis.client()), timeout=30, what="worker registered")
    token = root_token()
    before = last_notification_id()

    with socket(stack, token) as ws:
        private_redis.stop()
        # An open socket cannot hear its group any more: it is closed (1011) so that the client reconnects
        # and replays, instead of waiting on a dead subscription.
        with pytest.raises(ConnectionClosed):
            drain(ws, 30)
    sweeps_before = sweeps_without_redis(stack.workers[0])
    started = time.monotonic()
    response = post_tenant(stack, token, "outage", timeout=15)  # one that waited for Redis would time out
    latency = time.monotonic() - started
    assert response.status_code == 202, response.text
    assert response.json()["data"] == "outage"
    figure("POST /api/tenants latency with Redis stopped (s)", round(latency, 3))

    job = job_of("outage")
    assert (job.status, job.pushed_at) == (Job.Status.QUEUED, None)
    # Two sweeps of the worker's since the job was committed (the first may have begun before): they could
    # not push it, and nothing may be lost or run meanwhile.
    wait_until(
        lambda: sweeps_without_redis(stack.workers[0]) >= sweeps_before + 2, timeout=60, what="two sweeps without Redis"
    )
    job.refresh_from_db()
    assert (job.status, job.pushed_at, job.attempts) == (Job.Status.QUEUED, None, 0)
    assert status_of("outage") == S.PENDING

    private_redis.start()
    restarted = time.monotonic()
    recovery = wait_until(lambda: finished("outage"), timeout=60, what="tenant Active after Redis restart")
    figure("Redis restart -> tenant Active (s)", round(recovery, 2))
    assert stack.workers[0].alive() and stack.workers[0].pid == worker_pid
    wait_until(lambda: workers_registered(private_redis.client()), timeout=30, what="worker registered again")

    with socket(stack, token, since=before) as ws:
        frame, _ = wait_for_event(ws, "TenantCreated", timeout=30)
        figure("Redis restart -> TenantCreated on a socket (s)", round(time.monotonic() - restarted, 2))
        assert frame["data"]["tenantId"] == "outage"
        assert [f for f in drain(ws, 1.5) if f["event"] == "TenantCreated"] == []
    assert admin_users("outage") == ["admin@outage.test"]
    job.refresh_from_db()
    assert (job.status, job.attempts) == (Job.Status.SUCCEEDED, 1)
    assert Notification.objects.filter(event="TenantCreated", data__tenantId="outage").count() == 1


def test_health_says_503_and_names_redis_while_it_is_down(redis_stack, private_redis):
    stack = redis_stack
    wait_until(lambda: workers_registered(private_redis.client()), timeout=30, what="worker registered")
    assert health(stack) == (200, {"database": "ok", "redis": "ok", "workers": 1, **MAIN_OK})
    private_redis.stop()
    assert health(stack) == (503, {"database": "ok", "redis": "down", "workers": 0, **MAIN_OK})
    private_redis.start()
    wait_until(
        lambda: health(stack) == (200, {"database": "ok", "redis": "ok", "workers": 1, **MAIN_OK}),
        timeout=30,
        what="healthy again, the worker registered again",
    )


def test_a_create_during_a_redis_freeze_still_answers_202_quickly(redis_stack, private_redis):
    """A hung Redis (SIGSTOP: connections accepted, never answered) must not hang the request either: the
    push after commit gives up after the RQ connection's timeouts and the sweep pushes later."""
    stack = redis_stack
    wait_until(lambda: workers_registered(private_redis.client()), timeout=30, what="worker registered")
    token = root_token()
    private_redis.freeze()
    try:
        started = time.monotonic()
        response = post_tenant(stack, token, "frozen")
        latency = time.monotonic() - started
    finally:
        private_redis.thaw()
    assert response.status_code == 202, response.text
    figure("POST /api/tenants latency with Redis frozen (s)", round(latency, 2))
    assert latency < 15
    recovery = wait_until(lambda: finished("frozen"), timeout=60, what="tenant Active after the freeze")
    figure("Redis thawed -> tenant Active (s)", round(recovery, 2))
    assert job_of("frozen").attempts == 1


def test_a_notification_that_cannot_be_pushed_is_kept_and_never_fails_the_job(redis_stack, private_redis, fault):
    """Redis dies while the job runs: the job still succeeds, its notification is stored, the worker lives
    on, and a client that reconnects once Redis is back gets the notification from the replay."""
    stack = redis_stack
    stack.workers.pop().stop()
    stack.add_worker(DIQUIS_FAULTS_FILE=str(fault.path))
    wait_until(lambda: workers_registered(private_redis.client()), timeout=30, what="worker registered")
    token = root_token()
    before = last_notification_id()
    fault.hold(CREATE_ADMIN_USER, "unheard")
    try:
        assert post_tenant(stack, token, "unheard").status_code == 202
        fault.wait_held()
        private_redis.stop()
    finally:
        fault.release()
    took = wait_until(lambda: finished("unheard"), timeout=30, what="tenant Active with Redis down")
    figure("Redis down during the job: release -> Active (s)", round(took, 2))
    stored = Notification.objects.get(event="TenantCreated", data__tenantId="unheard")
    job = job_of("unheard")
    assert (job.status, job.attempts) == (Job.Status.SUCCEEDED, 1)

    private_redis.start()
    wait_until(lambda: workers_registered(private_redis.client()), timeout=30, what="worker registered again")
    assert stack.workers[-1].alive()
    with socket(stack, token, since=before) as ws:
        frame, _ = wait_for_event(ws, "TenantCreated", timeout=20)
        assert frame["id"] == stored.id
        assert [f for f in drain(ws, 1.5) if f["event"] == "TenantCreated"] == []


def test_postgres_sessions_cut_under_the_stack_are_reopened(transactional_db, tmp_path):
    """The stand-in for a PostgreSQL restart (the suite shares one server and cannot restart it): every
    session of Daphne and the worker is terminated, as a restart would, and both go on serving at once.
    Daphne keeps its sessions between requests (its pool), the case where a dead session could be handed
    to the next request."""
    application_name = f"diquis-pg-restart-{uuid.uuid4().hex[:8]}"  # its own: pg_terminate_backend reaches all
    stack = LiveStack(tmp_path, PGAPPNAME=application_name)
    try:
        token = root_token()
        assert post_tenant(stack, token, "before-cut").status_code == 202
        wait_until(lambda: is_active("before-cut"), timeout=30, what="first tenant Active")
        with socket(stack, token) as ws:
            terminated = terminate_sessions(application_name)
            figure("PostgreSQL sessions of the stack terminated (persistent connections)", terminated)
            assert terminated >= 1
            for attempt in range(3):  # every request after the cut succeeds, the first one included
                assert post_tenant(stack, token, f"after-cut-{attempt}").status_code == 202
            events = [wait_for_event(ws, "TenantCreated", timeout=30)[0]["data"]["tenantId"] for _ in range(3)]
            assert sorted(events) == ["after-cut-0", "after-cut-1", "after-cut-2"]
        with socket(stack, token):
            pass
        assert all(process.alive() for process in [stack.web, *stack.workers])
    finally:
        stack.stop()


def test_database_down_answers_503_in_the_envelope(transactional_db, tmp_path):
    """A web process whose database does not answer: the API says 503, and nothing is accepted."""
    web = live.start_web(tmp_path, DATABASE_URL=f"postgres://postgres@127.0.0.1:{free_port()}/nowhere")
    try:
        response = post_tenant(web, root_token(), "nodb")
        assert response.status_code == 503, response.text
        body = response.json()
        assert body["succeeded"] is False and body["data"] is None
        assert "nowhere" not in response.text and "5432" not in response.text
        assert health(web) == (503, {"database": "down", "redis": "ok", "workers": 0, **MAIN_DOWN})
    finally:
        web.stop()
    assert not Tenant.objects.filter(pk="nodb").exists()


def test_sigterm_stops_daphne_promptly_closing_its_sockets(transactional_db, tmp_path):
    stack = LiveStack(tmp_path)
    try:
        token = root_token()
        with socket(stack, token) as ws:
            started = time.monotonic()
            stack.web.popen.send_signal(signal.SIGTERM)
            code = stack.web.popen.wait(timeout=20)
            figure("Daphne SIGTERM -> exit (s)", round(time.monotonic() - started, 2))
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=5)
        assert code == 0
    finally:
        stack.stop()
