"""HTTP -> a real RQ worker -> a websocket frame, on the real stack (Daphne + worker processes): each operation
succeeding, and each failing after its last attempt (one notification), then retried."""

import contextlib
import re

import httpx
import pytest
from websockets.sync.client import connect

from jobs.models import Job
from tenants.models import ProvisioningStatus, Tenant
from tenants.provisioning.steps import APPLY_CHANGES, CREATE_ADMIN_USER, REMOVE_TENANT_DATA
from tests.support.fault_injection import wait_until, write_fault
from tests.support.live import drain, recv_json, wait_for_event
from tests.support.live_tenants import tenant_databases
from tests.support.users import make_root_user

S = ProvisioningStatus

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
PASSWORD = "Another-Root-Pass-1!"


def sign_in(stack, email, password, tenant=None):
    headers = {"tenant": tenant} if tenant else {}
    return httpx.post(f"{stack.url}/api/tokens", json={"email": email, "password": password}, headers=headers)


def token_of(stack, user):
    response = sign_in(stack, user.email, PASSWORD)
    assert response.status_code == 200, response.text
    return response.json()["data"]["token"]


@contextlib.contextmanager
def socket(stack, token):
    with connect(f"{stack.ws_url}?access_token={token}", open_timeout=10) as ws:
        assert recv_json(ws, 10) == {
            "id": None,
            "event": "Connected",
            "data": {"message": "Successfully connected to notification hub"},
        }
        yield ws


def api(stack, token, method, path, headers=None, **kwargs):
    headers = {"authorization": f"Bearer {token}", **(headers or {})}
    return httpx.request(method, f"{stack.url}{path}", headers=headers, **kwargs)


@pytest.fixture
def two_roots(live_stack):
    a, b = make_root_user("a@diquis.test"), make_root_user("b@diquis.test")
    return token_of(live_stack, a), token_of(live_stack, b)


def create(stack, token, tenant_id, **extra):
    body = {
        "id": tenant_id,
        "name": f"{tenant_id.title()} Academy",
        "adminEmail": f"admin@{tenant_id}.test",
        "password": "Tenant-Admin-Pass-9!",
        "hasIsolatedDatabase": False,
        **extra,
    }
    response = api(stack, token, "POST", "/api/tenants", json=body)
    assert response.status_code == 202, response.text
    return body


@pytest.fixture
def faulty_stack(live_stack, tmp_path):
    """The live stack, its worker reading a faults file (`stack.faults`; armed by write_fault)."""
    live_stack.faults = tmp_path / "faults.json"
    live_stack.workers.pop().stop()
    live_stack.add_worker(DIQUIS_FAULTS_FILE=str(live_stack.faults))
    return live_stack


def failed_once(ws, event, message, tenant_id):
    """Wait for the one `event` of a failed operation (after its last attempt), and see no second one."""
    frame, before = wait_for_event(ws, event, timeout=60)
    data = frame["data"]
    assert TIMESTAMP.match(data.pop("timestamp"))
    assert data == {"type": "error", "message": message, "tenantId": tenant_id}
    assert event not in [f["event"] for f in before]
    assert [f["event"] for f in drain(ws, 1.5)] == []  # once, not once per attempt


def operation_jobs(tenant_id, task):
    return list(Job.objects.filter(subject=f"tenant:{tenant_id}", task=f"tenants.tasks.{task}"))


def the_one_job_once_ended(tenant_id, task):
    """The operation's one job, once it has recorded its end (a moment after the notification)."""
    wait_until(
        lambda: (
            [job.status for job in operation_jobs(tenant_id, task)] in ([Job.Status.SUCCEEDED], [Job.Status.FAILED])
        ),
        timeout=30,
        what=f"the {task} job of {tenant_id} ended",
    )
    (job,) = operation_jobs(tenant_id, task)
    return job


def test_creation_notifies_the_initiator_on_every_socket_and_nobody_else(live_stack, two_roots):
    token_a, token_b = two_roots
    with socket(live_stack, token_a) as a1, socket(live_stack, token_a) as a2, socket(live_stack, token_b) as b:
        body = create(live_stack, token_a, "demo-academy")
        frame, before = wait_for_event(a1, "TenantCreated")
        assert isinstance(frame["id"], int)
        data = frame["data"]
        assert TIMESTAMP.match(data.pop("timestamp"))
        assert data == {
            "type": "success",
            "message": "Tenant 'Demo-Academy Academy' has been successfully created and provisioned.",
            "tenantId": "demo-academy",
            "tenantName": "Demo-Academy Academy",
        }
        assert [f["event"] for f in before] == ["TenantProvisioningProgress"]
        assert wait_for_event(a2, "TenantCreated")[0]["id"] == frame["id"]
        assert drain(b, 1.0) == []

    tenant = Tenant.objects.get(pk="demo-academy")
    assert tenant.status == ProvisioningStatus.ACTIVE
    assert tenant.encrypted_admin_password is None
    signed_in = sign_in(live_stack, body["adminEmail"], body["password"], tenant="demo-academy")
    assert signed_in.status_code == 200
    admin_token = signed_in.json()["data"]["token"]
    me = api(live_stack, admin_token, "GET", "/api/users/me", headers={"tenant": "demo-academy"})
    assert me.status_code == 200
    assert me.json()["data"]["roles"] == ["admin"]
    assert me.json()["data"]["tenant"] == "demo-academy"


def test_update_notifies_and_deactivation_locks_the_tenant_out(live_stack, two_roots):
    token_a, _ = two_roots
    with socket(live_stack, token_a) as ws:
        body = create(live_stack, token_a, "acme")
        wait_for_event(ws, "TenantCreated")
        admin_token = sign_in(live_stack, body["adminEmail"], body["password"], tenant="acme").json()["data"]["token"]

        response = api(live_stack, token_a, "PUT", "/api/tenants/acme", json={"name": "Acme Two", "isActive": False})
        assert response.status_code == 202
        frame, _ = wait_for_event(ws, "TenantUpdated")
        data = frame["data"]
        assert TIMESTAMP.match(data.pop("timestamp"))
        assert data == {
            "type": "success",
            "message": "Tenant 'Acme Two' has been successfully updated.",
            "tenantId": "acme",
            "tenantName": "Acme Two",
        }
    tenant = Tenant.objects.get(pk="acme")
    assert (tenant.name, tenant.is_active, tenant.status) == ("Acme Two", False, ProvisioningStatus.ACTIVE)
    refused = sign_in(live_stack, body["adminEmail"], body["password"], tenant="acme")
    assert (refused.status_code, refused.json()["messages"]) == (403, ["Tenant invalid"])
    me = httpx.get(f"{live_stack.url}/api/users/me", headers={"authorization": f"Bearer {admin_token}"})
    assert (me.status_code, me.json()["messages"]) == (403, ["Tenant invalid"])


def test_a_failing_creation_fails_once_after_the_last_retry_and_retry_then_succeeds(faulty_stack, two_roots):
    stack, (token_a, _) = faulty_stack, two_roots
    write_fault(stack.faults, CREATE_ADMIN_USER, "broken", message="Injected failure")
    with socket(stack, token_a) as ws:
        create(stack, token_a, "broken")
        failed_once(ws, "TenantCreationFailed", "Tenant creation failed: Injected failure", "broken")

        tenant = Tenant.objects.get(pk="broken")
        assert (tenant.status, tenant.provisioning_error) == (ProvisioningStatus.FAILED, "Injected failure")
        assert tenant.attempt_count == 3
        assert sign_in(stack, "admin@broken.test", "Tenant-Admin-Pass-9!", tenant="broken").status_code == 403

        stack.faults.unlink()
        assert api(stack, token_a, "POST", "/api/tenants/broken/retry").status_code == 202
        wait_for_event(ws, "TenantCreated", timeout=30)
    tenant.refresh_from_db()
    assert (tenant.status, tenant.provisioning_error) == (ProvisioningStatus.ACTIVE, None)
    assert sign_in(stack, "admin@broken.test", "Tenant-Admin-Pass-9!", tenant="broken").status_code == 200


def test_the_admin_password_never_reaches_redis_or_the_logs(live_stack, two_roots):
    from tests.support.redis_client import redis
    from tests.support.secrets_scan import redis_occurrences

    token_a, _ = two_roots
    password = "Unmistakable-Secret-4711!"
    with socket(live_stack, token_a) as ws:
        create(live_stack, token_a, "secretive", password=password)
        wait_for_event(ws, "TenantCreated")
    connection = redis()
    assert connection.dbsize() > 0  # the scan below looks at a live queue, not an empty database
    assert redis_occurrences(connection, password) == []
    assert redis_occurrences(connection, "secretive")  # the scanner does find what is there
    for process in [live_stack.web, *live_stack.workers]:
        assert password not in process.output()
    assert sign_in(live_stack, "admin@secretive.test", password, tenant="secretive").status_code == 200


def test_a_failing_update_fails_once_leaves_the_tenant_usable_and_retry_runs_the_update_again(faulty_stack, two_roots):
    stack, (token_a, _) = faulty_stack, two_roots
    with socket(stack, token_a) as ws:
        body = create(stack, token_a, "acme")
        wait_for_event(ws, "TenantCreated")
        write_fault(stack.faults, APPLY_CHANGES, "acme", message="Injected failure")
        update = api(stack, token_a, "PUT", "/api/tenants/acme", json={"name": "Acme Two", "isActive": True})
        assert update.status_code == 202
        failed_once(ws, "TenantUpdateFailed", "Tenant update failed: Injected failure", "acme")

        tenant = Tenant.objects.get(pk="acme")
        assert (tenant.status, tenant.provisioning_error, tenant.name) == (S.FAILED, "Injected failure", "Acme Academy")
        job = the_one_job_once_ended("acme", "apply_tenant_update")
        assert (job.status, job.attempts) == (Job.Status.FAILED, 3)
        # A failed update leaves the tenant as it was, and usable (API.md, "Tenant resolution").
        signed_in = sign_in(stack, body["adminEmail"], body["password"], tenant="acme")
        assert signed_in.status_code == 200
        me = api(stack, signed_in.json()["data"]["token"], "GET", "/api/users/me")
        assert (me.status_code, me.json()["data"]["tenant"]) == (200, "acme")

        stack.faults.unlink()
        assert api(stack, token_a, "POST", "/api/tenants/acme/retry").status_code == 202
        frame, _ = wait_for_event(ws, "TenantUpdated", timeout=30)
        assert frame["data"]["tenantName"] == "Acme Two"
    tenant.refresh_from_db()
    assert (tenant.status, tenant.provisioning_error, tenant.name) == (S.ACTIVE, None, "Acme Two")
    job = the_one_job_once_ended("acme", "apply_tenant_update")  # the same job ran again, no new one
    assert (job.status, job.attempts) == (Job.Status.SUCCEEDED, 4)


def test_a_failing_deletion_fails_once_keeps_the_tenant_and_its_database_and_retry_deletes_them(
    faulty_stack, two_roots
):
    stack, (token_a, _) = faulty_stack, two_roots
    with socket(stack, token_a) as ws:
        create(stack, token_a, "doomed", hasIsolatedDatabase=True)
        wait_for_event(ws, "TenantCreated", timeout=60)
        database = Tenant.objects.get(pk="doomed").database_name
        write_fault(stack.faults, REMOVE_TENANT_DATA, "doomed", message="Injected failure")
        assert api(stack, token_a, "DELETE", "/api/tenants/doomed").status_code == 202
        failed_once(ws, "TenantDeletionFailed", "Tenant deletion failed: Injected failure", "doomed")

        tenant = Tenant.objects.get(pk="doomed")
        assert (tenant.status, tenant.provisioning_error) == (S.FAILED, "Injected failure")
        assert tenant_databases("doomed") == [database]
        job = the_one_job_once_ended("doomed", "deprovision_tenant")
        assert (job.status, job.attempts) == (Job.Status.FAILED, 3)

        stack.faults.unlink()
        assert api(stack, token_a, "POST", "/api/tenants/doomed/retry").status_code == 202
        frame, _ = wait_for_event(ws, "TenantDeleted", timeout=30)
        assert frame["data"]["tenantId"] == "doomed"
    assert not Tenant.objects.filter(pk="doomed").exists()
    assert tenant_databases("doomed") == []
    job = the_one_job_once_ended("doomed", "deprovision_tenant")
    assert (job.status, job.attempts) == (Job.Status.SUCCEEDED, 4)
