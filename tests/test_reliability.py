"""Fault tests: Redis stopped, frozen and restarted under the real stack (Daphne + RQ worker processes).

Each test starts a private redis-server (tests.redis_server) and points the live processes at it, so it can
stop and restart Redis without touching the machine's shared one. The test process itself reads the outcome
from PostgreSQL (the source of truth) and through the live Daphne (websocket, REST).

The figures these tests measure are printed (`pytest -s` shows them) as `FIGURE <name>: <value>`.
"""

import contextlib
import time

import httpx
import pytest
from websockets.sync.client import connect

from jobs.models import Job
from notifications.models import Notification
from tenants.auth import issue_tokens
from tenants.models import ProvisioningStatus, Tenant, User
from tests.conftest import make_root_user
from tests.live import LiveStack, drain, recv_json, wait_for_event
from tests.redis_server import PrivateRedis

pytestmark = pytest.mark.e2e

ADMIN_PASSWORD = "Tenant-Admin-Pass-9!"
S = ProvisioningStatus


# --- helpers shared by the reliability tests ---------------------------------------------------------------


def figure(name, value):
    """A measured figure, for the report (shown with `pytest -s`)."""
    print(f"FIGURE {name}: {value}")


def wait_until(predicate, *, timeout, interval=0.2, what="condition"):
    """Poll `predicate` until it is truthy; returns the seconds it took. Fails after `timeout`."""
    started = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what} not reached within {timeout}s")
        time.sleep(interval)


def root_token(user=None):
    return issue_tokens(user or make_root_user())["token"]


def post_tenant(stack, token, tenant_id, *, isolated=False, timeout=30):
    body = {
        "id": tenant_id,
        "name": f"{tenant_id.title()} Academy",
        "adminEmail": f"admin@{tenant_id}.test",
        "password": ADMIN_PASSWORD,
        "hasIsolatedDatabase": isolated,
    }
    return httpx.post(
        f"{stack.url}/api/tenants", json=body, headers={"authorization": f"Bearer {token}"}, timeout=timeout
    )


def status_of(tenant_id):
    return Tenant.objects.filter(pk=tenant_id).values_list("status", flat=True).first()


def is_active(tenant_id):
    return status_of(tenant_id) == S.ACTIVE


def admin_users(tenant_id):
    """The tenant's admin users, wherever they live (main database or the tenant's own)."""
    from tenants.databases import use_tenant

    tenant = Tenant.objects.get(pk=tenant_id)
    with use_tenant(tenant):
        return list(User.objects.filter(tenant_id=tenant_id, roles__contains=["admin"]).values_list("email", flat=True))


def last_notification_id():
    return Notification.objects.order_by("-id").values_list("id", flat=True).first() or 0


@contextlib.contextmanager
def socket(stack, token, since=None):
    query = f"?access_token={token}" + (f"&since={since}" if since is not None else "")
    with connect(f"{stack.ws_url}{query}", open_timeout=10) as ws:
        assert recv_json(ws, 10)["event"] == "Connected"
        yield ws


def workers_registered(redis_client):
    return redis_client.scard("rq:workers")


def job_of(tenant_id):
    jobs = list(Job.objects.filter(subject=f"tenant:{tenant_id}"))
    assert len(jobs) == 1, jobs
    return jobs[0]


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
    by the worker that was running all along (it reconnects by itself), and Daphne serves sockets again."""
    stack = redis_stack
    worker_pid = stack.workers[0].pid
    wait_until(lambda: workers_registered(private_redis.client()), timeout=30, what="worker registered")
    token = root_token()
    before = last_notification_id()

    private_redis.stop()
    started = time.monotonic()
    response = post_tenant(stack, token, "outage")
    latency = time.monotonic() - started
    assert response.status_code == 202, response.text
    assert response.json()["data"] == "outage"
    figure("POST /api/tenants latency with Redis stopped (s)", round(latency, 3))
    assert latency < 3

    job = job_of("outage")
    assert (job.status, job.pushed_at) == (Job.Status.QUEUED, None)
    time.sleep(3)  # the worker sweeps meanwhile, and cannot push: nothing may be lost or run
    assert status_of("outage") == S.PENDING

    private_redis.start()
    restarted = time.monotonic()
    recovery = wait_until(lambda: is_active("outage"), timeout=60, what="tenant Active after Redis restart")
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
