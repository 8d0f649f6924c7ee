"""Tenants on the live stack: create one over HTTP, listen on the websocket, and read from PostgreSQL (the
source of truth) what became of it. Shared by the fault and recovery tests of tests/e2e/."""

import contextlib
import time

import httpx
from django.conf import settings
from django.db import connection
from django.utils import timezone
from websockets.sync.client import connect

from jobs.models import Attempt, Job
from jobs.recovery import ABANDONED_ERROR
from notifications.models import Notification
from tenants.models import ProvisioningStatus, Tenant, User
from tenants.tokens import issue_tokens
from tests.support.fault_injection import wait_until
from tests.support.live import gone, recv_json
from tests.support.tenant_databases import ADMIN_PASSWORD
from tests.support.users import make_root_user


def figure(name, value):
    """A measured figure, for the report (shown with `pytest -s`)."""
    print(f"FIGURE {name}: {value}")


def root_token(user=None):
    return issue_tokens(user or make_root_user())["token"]


def post_tenant(stack, token, tenant_id, *, isolated=False, database_server=None, timeout=30):
    body = {
        "id": tenant_id,
        "name": f"{tenant_id.title()} Academy",
        "adminEmail": f"admin@{tenant_id}.test",
        "password": ADMIN_PASSWORD,
        "hasIsolatedDatabase": isolated,
    }
    if database_server is not None:
        body["databaseServer"] = database_server
    return httpx.post(
        f"{stack.url}/api/tenants", json=body, headers={"authorization": f"Bearer {token}"}, timeout=timeout
    )


def sign_in(stack, tenant_id):
    """POST /api/tokens as the tenant's admin (post_tenant's)."""
    return httpx.post(
        f"{stack.url}/api/tokens",
        headers={"tenant": tenant_id},
        json={"email": f"admin@{tenant_id}.test", "password": ADMIN_PASSWORD},
        timeout=30,
    )


def status_of(tenant_id):
    return Tenant.objects.filter(pk=tenant_id).values_list("status", flat=True).first()


def is_active(tenant_id):
    return status_of(tenant_id) == ProvisioningStatus.ACTIVE


def finished(tenant_id):
    """The tenant is Active and the job that made it so has recorded its end (it comes a moment later)."""
    open_jobs = Job.objects.filter(subject=f"tenant:{tenant_id}", status__in=Job.OPEN_STATUSES)
    return is_active(tenant_id) and not open_jobs.exists()


def admin_users(tenant_id):
    """The tenant's admin users, wherever they live (main database or the tenant's own)."""
    from tenants.connections import use_tenant

    tenant = Tenant.objects.get(pk=tenant_id)
    with use_tenant(tenant):
        return list(User.objects.filter(tenant_id=tenant_id, roles__contains=["admin"]).values_list("email", flat=True))


def tenant_databases(tenant_id):
    """The databases of this run (its tenant database prefix) whose name contains the tenant's id; another
    run beside it has databases of the same tenant ids under its own prefix."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT datname FROM pg_database WHERE starts_with(datname, %s) AND strpos(datname, %s) > 0",
            [settings.DIQUIS_TENANT_DATABASE_PREFIX, tenant_id],
        )
        return sorted(row[0] for row in cursor.fetchall())


def last_notification_id():
    return Notification.objects.order_by("-id").values_list("id", flat=True).first() or 0


@contextlib.contextmanager
def socket(stack, token, since=None):
    query = f"?access_token={token}" + (f"&since={since}" if since is not None else "")
    with connect(f"{stack.ws_url}{query}", open_timeout=10) as ws:
        assert recv_json(ws, 10)["event"] == "Connected"
        yield ws


def job_of(tenant_id):
    jobs = list(Job.objects.filter(subject=f"tenant:{tenant_id}"))
    assert len(jobs) == 1, jobs
    return jobs[0]


def attempts_of(tenant_id):
    return list(Attempt.objects.filter(job__subject=f"tenant:{tenant_id}").order_by("number"))


def kill_worker_in_step(stack, fault, *, tenant_id, step, isolated, token=None):
    """Hold `step`, SIGKILL the worker and its work-horse there, start a new worker, wait for the recovery sweep's
    re-run to make the tenant Active; returns the seconds from the kill to the abandoned attempt recorded, and to
    the tenant Active. The tenant is created by `token`'s user (a new root user's by default)."""
    token = token or root_token()
    fault.hold(step, tenant_id)
    assert post_tenant(stack, token, tenant_id, isolated=isolated).status_code == 202
    horse = fault.wait_held()["pid"]
    assert horse in stack.workers[0].children()

    stack.workers[0].kill_tree()
    killed_at, killed = timezone.now(), time.monotonic()
    wait_until(lambda: gone(horse), timeout=10, what="the work-horse gone")
    fault.release()
    stack.add_worker()

    wait_until(lambda: finished(tenant_id), timeout=120, what="tenant Active after the kill")
    active = time.monotonic() - killed
    first, *later = attempts_of(tenant_id)
    assert (first.outcome, first.error) == (Attempt.Outcome.ABANDONED, ABANDONED_ERROR)
    assert [a.outcome for a in later] == [Attempt.Outcome.SUCCEEDED]
    detected = (first.ended_at - killed_at).total_seconds()
    return detected, active
