"""POST /api/tenants/{id}/move and POST /api/database-servers/{name}/drain as API.md has them: the 202s, and every
refusal with nothing changed. The moves and drains themselves run against real servers in
tests/tenants/provisioning/test_moves.py and test_drain.py; here no job runs."""

import pytest

from jobs.models import Job
from tenants.models import MAIN_SERVER, DatabaseServer, ProvisioningStatus, Role, ServerStatus, Tenant
from tests.support.factories import TenantFactory, UserFactory
from tests.support.users import client_for

S = ProvisioningStatus
IN_FLIGHT = "An operation on this tenant is still in progress"


def refused(*messages):
    return {"succeeded": False, "data": None, "messages": list(messages)}


def field_refused(field, message):
    return {**refused("One or more validation errors occurred."), "errors": {field: [message]}}


@pytest.fixture
def elsewhere(db):
    """A second server in the catalog (no job runs here, so nothing connects to it)."""
    return DatabaseServer.objects.create(name="pg-2", host="127.0.0.1", port=1, user="nobody")


def isolated(tenant_id="acme", **fields):
    fields = {"database_server_id": MAIN_SERVER, **fields}
    return TenantFactory(id=tenant_id, has_isolated_database=True, database_name=f"db_{tenant_id}", **fields)


def move(client, tenant_id, server):
    return client.post(f"/api/tenants/{tenant_id}/move", {"databaseServer": server}, format="json")


def unchanged(tenant_id="acme", status=S.ACTIVE):
    tenant = Tenant.objects.get(pk=tenant_id)
    return (tenant.status, tenant.database_server_id, tenant.move_target_id) == (status, MAIN_SERVER, None)


def test_a_move_answers_202_with_the_envelope_and_location_and_enqueues_the_job(root_api, root_user, elsewhere):
    isolated()
    response = move(root_api, "acme", "pg-2")
    assert response.status_code == 202
    assert response.json() == {
        "succeeded": True,
        "data": "acme",
        "messages": ["Tenant move initiated. The tenant's database will be moved in the background."],
    }
    assert response.headers["Location"] == "/api/tenants/acme"
    tenant = Tenant.objects.get(pk="acme")
    assert (tenant.status, tenant.operation, tenant.database_server_id, tenant.move_target_id) == (
        S.MOVING,
        "move",
        MAIN_SERVER,
        "pg-2",
    )
    job = Job.objects.get(subject="tenant:acme")
    assert job.task == "tenants.tasks.move_tenant_database"
    assert job.kwargs == {
        "tenant_id": "acme",
        "initiated_by": str(root_user.pk),
        "source": MAIN_SERVER,
        "target": "pg-2",
        "database_name": "db_acme",
    }
    assert root_api.get("/api/tenants/acme").json()["data"]["status"] == "Moving"
    assert move(root_api, "acme", "pg-2").json() == refused(IN_FLIGHT)  # while in flight: 409


def test_moving_an_unknown_tenant_is_404(root_api, elsewhere):
    assert move(root_api, "nope", "pg-2").status_code == 404


@pytest.mark.parametrize(
    ("setup", "server", "message"),
    [
        ("shared", "pg-2", "A shared tenant has no database of its own to move"),
        ("isolated", "nowhere", "Unknown database server 'nowhere'"),
        ("isolated", MAIN_SERVER, "The tenant's database is on 'main' already"),
        ("draining", "pg-2", "Database server 'pg-2' is Draining, not Active"),
        ("disabled", "pg-2", "Database server 'pg-2' is Disabled, not Active"),
    ],
)
def test_a_move_refused_as_asked_is_400_on_database_server_and_changes_nothing(
    root_api, elsewhere, setup, server, message
):
    if setup == "shared":
        TenantFactory(id="acme")
    else:
        isolated()
    if setup in ("draining", "disabled"):
        DatabaseServer.objects.filter(pk="pg-2").update(status=ServerStatus(setup.title()))
    response = move(root_api, "acme", server)
    assert (response.status_code, response.json()) == (400, field_refused("databaseServer", message))
    tenant = Tenant.objects.get(pk="acme")
    assert (tenant.status, tenant.move_target_id) == (S.ACTIVE, None)
    assert not Job.objects.exists()


def test_a_move_without_a_server_is_400(root_api):
    isolated()
    response = root_api.post("/api/tenants/acme/move", {}, format="json")
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"databaseServer"}
    assert unchanged()


@pytest.mark.parametrize("status", [S.PENDING, S.PROVISIONING, S.UPDATING, S.DELETING, S.MOVING])
def test_a_move_while_in_flight_is_409(root_api, elsewhere, status):
    isolated(status=status)
    response = move(root_api, "acme", "pg-2")
    assert (response.status_code, response.json()) == (409, refused(IN_FLIGHT))
    assert Tenant.objects.get(pk="acme").status == status
    assert not Job.objects.exists()


def test_a_failed_tenant_is_not_moved(root_api, elsewhere):
    isolated(status=S.FAILED)
    response = move(root_api, "acme", "pg-2")
    assert (response.status_code, response.json()) == (
        409,
        refused("Only an Active tenant can be moved (status is Failed)"),
    )
    assert unchanged(status=S.FAILED)


def test_only_root_moves_or_drains(db, elsewhere):
    isolated()
    admin = client_for(UserFactory(roles=[Role.ADMIN]))  # of the root tenant, but not root
    assert move(admin, "acme", "pg-2").status_code == 403
    assert admin.post("/api/database-servers/pg-2/drain").status_code == 403
    assert unchanged()
    assert DatabaseServer.objects.get(pk="pg-2").status == ServerStatus.ACTIVE


def test_draining_an_unknown_server_is_404(root_api):
    assert root_api.post("/api/database-servers/nowhere/drain").status_code == 404


def test_draining_a_server_without_tenants_answers_202_and_it_takes_no_new_ones(root_api, elsewhere):
    response = root_api.post("/api/database-servers/pg-2/drain")
    assert response.status_code == 202
    assert response.json()["data"] == "pg-2"
    assert response.headers["Location"] == "/api/database-servers/pg-2"
    assert DatabaseServer.objects.get(pk="pg-2").status == ServerStatus.DRAINING
    assert not Job.objects.exists()


def test_draining_is_409_when_no_other_server_can_take_the_tenants(root_api, elsewhere):
    isolated(database_server_id="pg-2")
    DatabaseServer.objects.filter(pk=MAIN_SERVER).update(weight=0)
    response = root_api.post("/api/database-servers/pg-2/drain")
    assert (response.status_code, response.json()) == (
        409,
        refused("No other database server can take the tenants of 'pg-2'"),
    )
    assert DatabaseServer.objects.get(pk="pg-2").status == ServerStatus.ACTIVE
    assert Tenant.objects.get(pk="acme").status == S.ACTIVE
    assert not Job.objects.exists()
