"""Fifty identical creates at once: one is accepted, 49 conflict; one tenant, one job, one database.

Against two Daphne processes, so the requests really race in the database, not only in one process's
thread (the same race straight on the service, with fifty threads: tests/tenants/test_services.py)."""

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from jobs.models import Attempt, Job
from tenants.models import Tenant
from tests.support import live
from tests.support.fault_injection import wait_until
from tests.support.live_tenants import admin_users, figure, finished, root_token, tenant_databases
from tests.support.tenant_databases import ADMIN_PASSWORD, drop_test_tenant_databases

CLIENTS = 50


@pytest.fixture
def two_webs(transactional_db, tmp_path):
    stack = live.LiveStack(tmp_path)
    second = live.start_web(tmp_path, name="web2")
    try:
        yield stack, [stack.url, second.url]
    finally:
        second.stop()
        stack.stop()
        drop_test_tenant_databases()


@pytest.mark.parametrize("isolated", [False, True], ids=["shared", "isolated"])
def test_fifty_identical_creates_at_once_accept_exactly_one(two_webs, isolated):
    stack, urls = two_webs
    tenant_id = f"race-{'iso' if isolated else 'shared'}"
    body = {
        "id": tenant_id,
        "name": "Race",
        "adminEmail": f"admin@{tenant_id}.test",
        "password": ADMIN_PASSWORD,
        "hasIsolatedDatabase": isolated,
    }
    headers = {"authorization": f"Bearer {root_token()}"}
    start = threading.Barrier(CLIENTS)

    def create(index):
        with httpx.Client(timeout=60) as client:
            start.wait(timeout=60)
            return client.post(f"{urls[index % len(urls)]}/api/tenants", json=body, headers=headers)

    with ThreadPoolExecutor(CLIENTS) as pool:
        responses = list(pool.map(create, range(CLIENTS)))
    statuses = Counter(r.status_code for r in responses)
    figure(f"50 concurrent creates ({'isolated' if isolated else 'shared'}): statuses", dict(statuses))
    assert statuses == {202: 1, 409: CLIENTS - 1}
    assert {tuple(r.json()["messages"]) for r in responses if r.status_code == 409} == {("Tenant already exists",)}

    wait_until(lambda: finished(tenant_id), timeout=60, what="tenant Active")
    assert Tenant.objects.filter(pk=tenant_id).count() == 1
    assert Job.objects.filter(subject=f"tenant:{tenant_id}").count() == 1
    assert Attempt.objects.filter(job__subject=f"tenant:{tenant_id}").count() == 1
    assert admin_users(tenant_id) == [f"admin@{tenant_id}.test"]
    if isolated:
        assert tenant_databases(tenant_id) == [Tenant.objects.get(pk=tenant_id).database_name]
