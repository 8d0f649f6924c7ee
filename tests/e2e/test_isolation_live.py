"""Isolated tenants on the real stack: HTTP -> real RQ workers -> databases cloned from the template, and
DELETE dropping them again (Daphne + worker processes, real PostgreSQL and Redis)."""

import time

import httpx
import pytest
from django.conf import settings

from jobs.models import Job
from notifications.models import Notification
from tenants.models import MAIN_SERVER
from tenants.provisioning import spares
from tenants.provisioning.stores import main_store
from tenants.provisioning.template import template_name
from tenants.tasks import spare_refill_subject
from tests.support.fault_injection import wait_until
from tests.support.live import LiveStack
from tests.support.tenant_databases import (
    ADMIN_PASSWORD,
    applied_migrations,
    database_oid,
    drop_test_tenant_databases,
    main_database,
    prefixed_databases,
    query,
    sessions_on,
    templates,
)
from tests.support.users import make_root_user

PREFIX = settings.DIQUIS_TENANT_DATABASE_PREFIX

ROOT_PASSWORD = "Another-Root-Pass-1!"
BURST = 10


def sign_in(stack, email, password, tenant=None):
    headers = {"tenant": tenant} if tenant else {}
    response = httpx.post(
        f"{stack.url}/api/tokens", json={"email": email, "password": password}, headers=headers, timeout=30
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]["token"]


@pytest.fixture
def root(live_stack):
    user = make_root_user("iso-root@diquis.test")
    return user, httpx.Client(
        base_url=live_stack.url,
        headers={"authorization": f"Bearer {sign_in(live_stack, user.email, ROOT_PASSWORD)}"},
        timeout=30,
    )


def create(http, tenant_id):
    body = {
        "id": tenant_id,
        "name": f"{tenant_id} Academy",
        "adminEmail": f"admin@{tenant_id}.test",
        "password": ADMIN_PASSWORD,
        "hasIsolatedDatabase": True,
    }
    response = http.post("/api/tenants", json=body)
    assert response.status_code == 202, response.text


def wait_for(http, tenant_ids, done, timeout=240):
    """Poll the API until `done(response)` holds for every tenant; returns the last responses."""
    deadline = time.monotonic() + timeout
    while True:
        responses = {tenant_id: http.get(f"/api/tenants/{tenant_id}") for tenant_id in tenant_ids}
        if all(done(response) for response in responses.values()) or time.monotonic() > deadline:
            return responses
        time.sleep(0.5)


def is_settled(response):
    return response.status_code == 200 and response.json()["data"]["status"] in ("Active", "Failed")


def test_a_burst_of_ten_isolated_creations_through_real_workers_all_end_active(live_stack, root):
    _, http = root
    live_stack.add_worker()  # two workers: clones and the first template build race each other
    for name in templates():
        main_store().drop(name)  # the first jobs of the burst must build it, once
    tenant_ids = [f"burst-{n}" for n in range(BURST)]
    for tenant_id in tenant_ids:
        create(http, tenant_id)

    responses = wait_for(http, tenant_ids, is_settled)
    statuses = {tenant_id: response.json()["data"]["status"] for tenant_id, response in responses.items()}
    assert statuses == dict.fromkeys(tenant_ids, "Active"), {
        tenant_id: response.json()["data"]["provisioningError"] for tenant_id, response in responses.items()
    }
    (template,) = templates()
    assert sessions_on(template) == 0
    assert prefixed_databases() - {template} == {f"{PREFIX}{tenant_id}" for tenant_id in tenant_ids}
    for tenant_id in tenant_ids:
        admins = query(f"{PREFIX}{tenant_id}", "SELECT tenant_id, email FROM tenants_user")
        assert admins == [(tenant_id, f"admin@{tenant_id}.test")]
    # All cloned from the one template (none fell back to migrating): identical migration records.
    histories = {tuple(applied_migrations(f"{PREFIX}{tenant_id}")) for tenant_id in tenant_ids}
    assert len(histories) == 1
    # Each admin signs in to its own tenant, served from its own database.
    token = sign_in(live_stack, "admin@burst-3.test", ADMIN_PASSWORD, tenant="burst-3")
    me = httpx.get(f"{live_stack.url}/api/users/me", headers={"authorization": f"Bearer {token}"}, timeout=30)
    assert me.json()["data"]["tenant"] == "burst-3"


def test_delete_drops_the_isolated_database_and_notifies(live_stack, root):
    user, http = root
    create(http, "doomed")
    assert wait_for(http, ["doomed"], is_settled)["doomed"].json()["data"]["status"] == "Active"
    assert f"{PREFIX}doomed" in prefixed_databases()

    response = http.delete("/api/tenants/doomed")
    assert response.status_code == 202, response.text
    gone = wait_for(http, ["doomed"], lambda r: r.status_code == 404)
    assert gone["doomed"].status_code == 404
    assert f"{PREFIX}doomed" not in prefixed_databases()
    assert query(main_database(), f"SELECT count(*) FROM pg_database WHERE datname = '{PREFIX}doomed'") == [(0,)]
    deleted = Notification.objects.get(user_id=user.pk, event="TenantDeleted")
    assert deleted.data["tenantId"] == "doomed"
    # The tenant is gone for sign-in too.
    refused = httpx.post(
        f"{live_stack.url}/api/tokens",
        json={"email": "admin@doomed.test", "password": ADMIN_PASSWORD},
        headers={"tenant": "doomed"},
        timeout=30,
    )
    assert refused.status_code == 403 and refused.json()["messages"] == ["Tenant invalid"]


def test_with_spares_on_tenants_get_ready_made_databases_and_the_worker_tops_them_up(transactional_db, tmp_path):
    """DIQUIS_SPARE_TENANT_DATABASES=2 on the real stack: the first tenant's database is cloned (no spares yet)
    and a refill job follows; the next tenant's database is one of those spares, renamed."""
    stack = LiveStack(tmp_path, DIQUIS_SPARE_TENANT_DATABASES="2")
    try:
        user = make_root_user("spare-root@diquis.test")
        http = httpx.Client(
            base_url=stack.url,
            headers={"authorization": f"Bearer {sign_in(stack, user.email, ROOT_PASSWORD)}"},
            timeout=30,
        )
        create(http, "first")
        assert wait_for(http, ["first"], is_settled)["first"].json()["data"]["status"] == "Active"
        wait_until(lambda: len(current_spares()) == 2, timeout=60, what="two spares made by the worker")
        ready = {database_oid(name) for name in current_spares()}

        create(http, "second")
        assert wait_for(http, ["second"], is_settled)["second"].json()["data"]["status"] == "Active"
        assert database_oid(f"{PREFIX}second") in ready
        admins = query(f"{PREFIX}second", "SELECT tenant_id, email FROM tenants_user")
        assert admins == [("second", "admin@second.test")]
        refills = Job.objects.filter(subject=spare_refill_subject(MAIN_SERVER))

        def topped_up():  # the refill job makes the spare before it records its own end: wait for both
            return len(current_spares()) == 2 and not refills.exclude(status=Job.Status.SUCCEEDED).exists()

        wait_until(topped_up, timeout=60, what="the spares topped up again by refill jobs that all succeeded")
        assert refills.count() >= 2
    finally:
        stack.stop()
        drop_test_tenant_databases()


def current_spares():
    return spares.spares_of(main_store(), template_name())
