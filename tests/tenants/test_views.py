"""Every row of API.md's Tenants table: success and each failure."""

import pytest

from jobs.enqueue import queue
from jobs.models import Job
from tenants import views
from tenants.models import ProvisioningStatus, Role, Tenant, User
from tests.support.contract import TENANT_FIELDS
from tests.support.factories import TenantFactory, UserFactory
from tests.support.users import client_for

S = ProvisioningStatus
VALID = {
    "id": "demo-academy",
    "name": "Demo Academy",
    "adminEmail": "admin@demo.com",
    "password": "Sturdy-Pass-2026!",
    "hasIsolatedDatabase": False,
}


def body(response):
    return response.json()


def refused(*messages):
    return {"succeeded": False, "data": None, "messages": list(messages)}


IN_FLIGHT = "An operation on this tenant is still in progress"


@pytest.fixture
def tenant_admin_api(db):
    tenant = TenantFactory(id="acme")
    return client_for(UserFactory(tenant_id=tenant.id, roles=[Role.ADMIN]))


# --- POST /api/tenants -------------------------------------------------------------------------------


def test_create_answers_202_with_envelope_location_and_a_pending_tenant(root_api, root_user):
    response = root_api.post("/api/tenants", VALID, format="json")
    assert response.status_code == 202
    assert body(response) == {
        "succeeded": True,
        "data": "demo-academy",
        "messages": ["Tenant creation initiated. The tenant will be provisioned in the background."],
    }
    assert response["Location"] == "/api/tenants/demo-academy"
    tenant = Tenant.objects.get(pk="demo-academy")
    assert tenant.status == S.PENDING
    assert tenant.initiated_by == root_user.pk
    job = Job.objects.get(subject="tenant:demo-academy")
    assert job.task == "tenants.tasks.provision_tenant"
    assert job.kwargs == {"tenant_id": "demo-academy", "initiated_by": str(root_user.pk)}


def test_create_stores_the_password_encrypted_only(root_api):
    root_api.post("/api/tenants", VALID, format="json")
    tenant = Tenant.objects.get(pk="demo-academy")
    assert tenant.encrypted_admin_password
    assert VALID["password"] not in tenant.encrypted_admin_password
    assert VALID["password"] not in str(Job.objects.get(subject="tenant:demo-academy").kwargs)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"id": "Bad_Id"}, "id"),
        ({"id": "-leading"}, "id"),
        ({"id": "double--hyphen"}, "id"),
        ({"id": "a" * 51}, "id"),
        ({"id": "root"}, "id"),
        ({"id": "admin"}, "id"),
        ({"id": "www"}, "id"),
        ({"id": "api"}, "id"),
        ({"id": "template1"}, "id"),
        ({"id": "аcme"}, "id"),  # Cyrillic "а": a look-alike, not ASCII
        ({"id": ""}, "id"),
        ({"name": ""}, "name"),
        ({"adminEmail": "not-an-email"}, "adminEmail"),
        ({"password": "short"}, "password"),
        ({"password": "password123"}, "password"),
        ({"password": "12345678901"}, "password"),
        ({"hasIsolatedDatabase": "true"}, "hasIsolatedDatabase"),  # JSON booleans only (the schema's type)
        ({"hasIsolatedDatabase": 1}, "hasIsolatedDatabase"),
    ],
)
def test_create_refuses_invalid_input_with_400_and_writes_nothing(root_api, change, field):
    response = root_api.post("/api/tenants", {**VALID, **change}, format="json")
    assert response.status_code == 400
    payload = body(response)
    assert payload["succeeded"] is False
    assert field in payload["errors"]
    assert payload["messages"]
    assert Tenant.objects.count() == 1  # root only
    assert not Job.objects.exists()


def test_create_requires_fields(root_api):
    response = root_api.post("/api/tenants", {}, format="json")
    assert response.status_code == 400
    assert set(body(response)["errors"]) >= {"id", "name", "adminEmail", "password"}


def test_create_of_an_existing_id_is_409(root_api):
    TenantFactory(id="demo-academy")
    response = root_api.post("/api/tenants", VALID, format="json")
    assert response.status_code == 409
    assert body(response)["messages"] == ["Tenant already exists"]
    assert not Job.objects.exists()


def test_create_needs_a_token(api):
    response = api.post("/api/tenants", VALID, format="json")
    assert response.status_code == 401
    assert body(response) == {"succeeded": False, "data": None, "messages": ["Not Authorized"]}


def test_create_refuses_a_non_root_user(tenant_admin_api):
    response = tenant_admin_api.post("/api/tenants", VALID, format="json")
    assert response.status_code == 403
    assert body(response)["messages"] == ["Not Authorized"]


def test_an_invalid_token_is_401(api):
    api.credentials(HTTP_AUTHORIZATION="Bearer not.a.jwt")
    response = api.get("/api/tenants")
    assert response.status_code == 401
    assert body(response)["messages"] == ["Not Authorized"]


# --- GET /api/tenants, /api/tenants/{id}, tenant-options ------------------------------------------------


def test_list_is_newest_first_and_filters_by_status(root_api):
    TenantFactory(id="older")
    TenantFactory(id="newer", status=S.FAILED, provisioning_error="boom")
    data = body(root_api.get("/api/tenants"))["data"]
    assert [t["id"] for t in data] == ["newer", "older", "root"]
    assert set(data[0]) == TENANT_FIELDS
    failed = body(root_api.get("/api/tenants?status=Failed"))["data"]
    assert [(t["id"], t["provisioningError"]) for t in failed] == [("newer", "boom")]
    assert root_api.get("/api/tenants?status=Bogus").status_code == 400


def test_list_refuses_anonymous_and_non_root(api, tenant_admin_api):
    assert api.get("/api/tenants").status_code == 401
    assert tenant_admin_api.get("/api/tenants").status_code == 403


def test_detail_and_404(root_api):
    TenantFactory(id="acme", name="Acme")
    response = root_api.get("/api/tenants/acme")
    assert response.status_code == 200
    assert body(response)["data"]["name"] == "Acme"
    missing = root_api.get("/api/tenants/nope")
    assert missing.status_code == 404
    assert body(missing) == {"succeeded": False, "data": None, "messages": ["Not Found"]}


def test_tenant_options_is_anonymous_root_first_then_by_name(api):
    TenantFactory(id="zeta", name="Alpha school")
    TenantFactory(id="alpha", name="Zeta school")
    TenantFactory(id="off", name="Beta", is_active=False)
    TenantFactory(id="pending", name="Aaa", status=S.PENDING, is_provisioned=False)
    response = api.get("/api/tenants/tenant-options")
    assert response.status_code == 200
    assert body(response)["data"] == [
        {"id": "root", "name": "Root"},
        {"id": "zeta", "name": "Alpha school"},
        {"id": "alpha", "name": "Zeta school"},
    ]


# --- PUT /api/tenants/{id} -----------------------------------------------------------------------------


def test_update_answers_202_and_moves_to_updating(root_api):
    TenantFactory(id="acme")
    response = root_api.put("/api/tenants/acme", {"name": "Acme 2", "isActive": False}, format="json")
    assert response.status_code == 202
    assert body(response) == {
        "succeeded": True,
        "data": "acme",
        "messages": ["Tenant update initiated. The tenant will be updated in the background."],
    }
    assert Tenant.objects.get(pk="acme").status == S.UPDATING
    job = Job.objects.get(subject="tenant:acme")
    assert (job.kwargs["name"], job.kwargs["is_active"]) == ("Acme 2", False)


def test_update_ignores_extra_fields_of_the_whole_tenant_object(root_api):
    TenantFactory(id="acme")
    whole = {"id": "other", "name": "Acme 2", "isActive": True, "status": "Failed", "adminEmail": "x@y.z"}
    assert root_api.put("/api/tenants/acme", whole, format="json").status_code == 202
    assert Tenant.objects.get(pk="acme").admin_email == "admin@acme.test"


def test_update_of_root_is_400(root_api):
    response = root_api.put("/api/tenants/root", {"name": "x", "isActive": True}, format="json")
    assert (response.status_code, body(response)) == (400, refused("Cannot edit root tenant"))


def test_update_404_and_400(root_api):
    assert root_api.put("/api/tenants/nope", {"name": "x", "isActive": True}, format="json").status_code == 404
    TenantFactory(id="acme")
    response = root_api.put("/api/tenants/acme", {"isActive": "maybe"}, format="json")
    assert response.status_code == 400
    assert set(body(response)["errors"]) == {"name", "isActive"}
    for not_a_boolean in (0, 1, "false", "off", None):  # DRF's BooleanField would take most of these
        response = root_api.put("/api/tenants/acme", {"name": "x", "isActive": not_a_boolean}, format="json")
        assert (response.status_code, set(body(response)["errors"])) == (400, {"isActive"}), not_a_boolean
    for not_a_string in (0, 1.5, True, ["x"]):  # DRF's CharField would take the numbers as "0", "1.5"
        response = root_api.put("/api/tenants/acme", {"name": not_a_string, "isActive": True}, format="json")
        assert (response.status_code, set(body(response)["errors"])) == (400, {"name"}), not_a_string
    assert Tenant.objects.get(pk="acme").status == S.ACTIVE and not Job.objects.exists()


@pytest.mark.parametrize("status", [S.PENDING, S.PROVISIONING, S.UPDATING, S.DELETING])
def test_update_while_in_flight_is_409(root_api, status):
    TenantFactory(id="acme", status=status)
    response = root_api.put("/api/tenants/acme", {"name": "x", "isActive": True}, format="json")
    assert (response.status_code, body(response)) == (409, refused(IN_FLIGHT))
    assert Tenant.objects.get(pk="acme").status == status
    assert not Job.objects.exists()


def test_update_refuses_non_root(tenant_admin_api):
    response = tenant_admin_api.put("/api/tenants/acme", {"name": "x", "isActive": True}, format="json")
    assert response.status_code == 403


# --- POST /api/tenants/{id}/retry ----------------------------------------------------------------------


@pytest.mark.parametrize("status", [S.ACTIVE, S.PENDING, S.PROVISIONING, S.UPDATING, S.DELETING])
def test_retry_unless_failed_is_409(root_api, status):
    TenantFactory(id="acme", status=status)
    response = root_api.post("/api/tenants/acme/retry")
    assert (response.status_code, body(response)) == (
        409,
        refused(f"Only a failed tenant can be retried (status is {status})"),
    )
    assert Tenant.objects.get(pk="acme").status == status
    assert not Job.objects.exists()


def test_retry_of_a_failed_tenant_without_a_failed_job_is_409(root_api):
    TenantFactory(id="acme", status=S.FAILED)
    response = root_api.post("/api/tenants/acme/retry")
    assert (response.status_code, body(response)) == (409, refused("There is no failed operation to retry"))
    assert Tenant.objects.get(pk="acme").status == S.FAILED


def test_retry_404(root_api):
    response = root_api.post("/api/tenants/nope/retry")
    assert (response.status_code, body(response)) == (404, refused("Not Found"))


def test_retry_of_a_failed_creation_requeues_its_job(root_api, root_user, django_capture_on_commit_callbacks):
    root_api.post("/api/tenants", VALID, format="json")
    Job.objects.filter(subject="tenant:demo-academy").update(status=Job.Status.FAILED, attempts=3)
    Tenant.objects.filter(pk="demo-academy").update(status=S.FAILED, provisioning_error="boom")
    with django_capture_on_commit_callbacks(execute=True):
        response = root_api.post("/api/tenants/demo-academy/retry")
    assert response.status_code == 202
    assert body(response) == {"succeeded": True, "data": "demo-academy", "messages": [views.RETRY_INITIATED]}
    assert response["Location"] == "/api/tenants/demo-academy"
    tenant = Tenant.objects.get(pk="demo-academy")
    assert (tenant.status, tenant.provisioning_error) == (S.PENDING, None)
    job = Job.objects.get(subject="tenant:demo-academy")
    assert job.status == Job.Status.QUEUED
    assert job.max_attempts == 6
    assert queue().get_job_ids() == [job.rq_job_id]  # handed to Redis after commit


# --- DELETE /api/tenants/{id} --------------------------------------------------------------------------


def test_delete_answers_202_moves_to_deleting_and_enqueues_the_deletion(
    root_api, root_user, django_capture_on_commit_callbacks
):
    TenantFactory(id="acme")
    with django_capture_on_commit_callbacks(execute=True):
        response = root_api.delete("/api/tenants/acme")
    assert response.status_code == 202
    assert body(response) == {
        "succeeded": True,
        "data": "acme",
        "messages": ["Tenant deletion initiated. The tenant will be removed in the background."],
    }
    assert response["Location"] == "/api/tenants/acme"
    assert Tenant.objects.get(pk="acme").status == S.DELETING
    job = Job.objects.get(subject="tenant:acme")
    assert (job.task, job.kwargs, job.status) == (
        "tenants.tasks.deprovision_tenant",
        {"tenant_id": "acme", "initiated_by": str(root_user.pk)},
        Job.Status.QUEUED,
    )
    assert queue().get_job_ids() == [job.rq_job_id]  # handed to Redis after commit


def test_delete_of_root_is_400(root_api):
    response = root_api.delete("/api/tenants/root")
    assert (response.status_code, body(response)) == (400, refused("Cannot delete root tenant"))
    assert Tenant.objects.get(pk="root").status == S.ACTIVE
    assert not Job.objects.exists()


def test_delete_of_an_unknown_tenant_is_404(root_api):
    response = root_api.delete("/api/tenants/nope")
    assert (response.status_code, body(response)) == (404, refused("Not Found"))


@pytest.mark.parametrize("status", [S.PENDING, S.PROVISIONING, S.UPDATING, S.DELETING])
def test_delete_while_in_flight_is_409(root_api, status):
    TenantFactory(id="busy", status=status)
    response = root_api.delete("/api/tenants/busy")
    assert (response.status_code, body(response)) == (409, refused(IN_FLIGHT))
    assert Tenant.objects.get(pk="busy").status == status
    assert not Job.objects.exists()


# --- POST /api/users (the Users table of API.md; who may: tests/tenants/test_permissions.py) ---------------


def test_a_user_whose_email_the_tenant_has_already_is_409(root_api):
    new_user = {"email": "twice@diquis.test", "password": "Sturdy-Pass-2026!", "role": "admin"}
    assert root_api.post("/api/users", new_user, format="json").status_code == 201
    again = root_api.post("/api/users", {**new_user, "email": "Twice@Diquis.test"}, format="json")
    assert (again.status_code, body(again)) == (409, refused("Email already in use"))
    assert User.objects.filter(email="twice@diquis.test").count() == 1


# --- a tenant deleted meanwhile (found by the fuzzer, tests/e2e/test_fuzz_api.py) ------------------------
# It vanished between the view's existence check and the service's locked read (its deletion finishing in
# the worker meanwhile): a 500, the service's `DoesNotExist` escaping. The fuzzer met it as a second DELETE
# racing the first one's job.

NOT_FOUND = refused("Not Found")


@pytest.fixture
def vanishing_tenant(monkeypatch, db):
    """`acme` passes the view's check, then is gone before the service locks it."""
    TenantFactory(id="acme", status=ProvisioningStatus.FAILED)
    check = views._tenant_or_404

    def check_then_vanish(tenant_id):
        tenant = check(tenant_id)
        Tenant.objects.filter(pk=tenant_id).delete()
        return tenant

    monkeypatch.setattr(views, "_tenant_or_404", check_then_vanish)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("delete", "/api/tenants/acme", None),
        ("put", "/api/tenants/acme", {"name": "Acme", "isActive": True}),
        ("post", "/api/tenants/acme/retry", None),
    ],
)
def test_a_tenant_deleted_meanwhile_is_404_not_500(root_api, vanishing_tenant, method, path, body):
    response = getattr(root_api, method)(path, body, format="json")
    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert not Job.objects.exists()
