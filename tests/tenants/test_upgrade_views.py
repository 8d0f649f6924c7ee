"""The tenant database upgrades API (API.md, "Tenant database upgrades"), in this process on the real catalog: what
the status call answers and that it reads the catalog alone, the 202 of a start, every refusal with nothing
created, and the Upgrade object's exact shape. No job runs here: the runs are tests/tenants/provisioning/
test_rollout.py (in this process) and tests/e2e/test_upgrades_live.py (a real worker)."""

import re

import pytest
from django.conf import settings

from jobs.models import Job
from tenants.models import DatabaseServer, ProvisioningStatus, Tenant, Upgrade, UpgradeTenant
from tenants.provisioning.template import migration_fingerprint
from tests.support.contract import UPGRADE_FIELDS
from tests.support.factories import TenantFactory, UserFactory
from tests.support.ports import free_port
from tests.support.users import client_for

PREFIX = settings.DIQUIS_TENANT_DATABASE_PREFIX
STOPPED = "pg-stopped"
INITIATED = ["Upgrade initiated. The tenant databases will be upgraded in the background."]
NOT_FOUND = {"succeeded": False, "data": None, "messages": ["Not Found"]}
UTC_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def refused(message):
    return {"succeeded": False, "data": None, "messages": [message]}


@pytest.fixture
def stopped_server(db):
    """A database server in the catalog on which nothing listens: opening a tenant database there fails at once,
    so a call that answers about its tenants has not tried."""
    return DatabaseServer.objects.create(name=STOPPED, host="127.0.0.1", port=free_port(), user="nobody")


def isolated(tenant_id, *, fingerprint, **fields):
    """An isolated tenant whose creation succeeded, its database left at `fingerprint` (None: never recorded)."""
    return TenantFactory(
        id=tenant_id,
        has_isolated_database=True,
        database_server_id=STOPPED,
        database_name=f"{PREFIX}{tenant_id}",
        schema_fingerprint=fingerprint,
        **fields,
    )


@pytest.fixture
def fleet_of_tenants(stopped_server):
    """One isolated tenant at the head, two behind it, and tenants that an upgrade does not cover."""
    head = migration_fingerprint()
    isolated("at-head", fingerprint=head)
    isolated("behind-old", fingerprint="0123456789ab")
    isolated("behind-unknown", fingerprint=None)
    isolated("being-created", fingerprint=None, is_provisioned=False, status=ProvisioningStatus.PROVISIONING)
    isolated("being-deleted", fingerprint="0123456789ab", status=ProvisioningStatus.DELETING)
    TenantFactory(id="shared-one")
    return head


def start(client, **body):
    return client.post("/api/upgrades", body, format="json")


def act(client, upgrade_id, action):
    return client.post(f"/api/upgrades/{upgrade_id}/{action}")


def status_of(upgrade_id):
    return Upgrade.objects.get(pk=upgrade_id).status


def created():
    """Everything a start writes: upgrades, their children and their jobs."""
    return Upgrade.objects.count(), UpgradeTenant.objects.count(), Job.objects.count()


# --- GET /api/tenants/upgrade-status --------------------------------------------------------------------------


def test_the_status_counts_who_is_behind_from_the_catalog_without_opening_a_tenant_database(root_api, fleet_of_tenants):
    response = root_api.get("/api/tenants/upgrade-status")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "succeeded": True,
        "data": {
            "head": fleet_of_tenants,
            "atHead": 1,
            "behind": 2,
            "behindTenants": ["behind-old", "behind-unknown"],
        },
        "messages": [],
    }


# --- POST /api/upgrades ---------------------------------------------------------------------------------------


def test_a_start_answers_202_with_its_id_and_location_and_makes_one_child_per_tenant_behind(
    root_api, root_user, fleet_of_tenants
):
    response = start(root_api, canary=1, parallel=2, maxFailures=0)
    assert response.status_code == 202, response.content
    upgrade = Upgrade.objects.get()
    assert response.json() == {"succeeded": True, "data": upgrade.pk, "messages": INITIATED}
    assert response.headers["Location"] == f"/api/upgrades/{upgrade.pk}"
    assert (upgrade.status, upgrade.target, upgrade.initiated_by) == ("Pending", fleet_of_tenants, root_user.pk)
    children = sorted(upgrade.children.values_list("tenant_id", "database_server", "is_canary", "status"))
    canaries = [tenant_id for tenant_id, _, is_canary, _ in children if is_canary]
    assert [row[:2] for row in children] == [("behind-old", STOPPED), ("behind-unknown", STOPPED)]
    assert len(canaries) == 1 and {row[3] for row in children} == {"pending"}
    job = Job.objects.get()
    assert (job.task, job.subject, job.kwargs) == (
        "tenants.tasks.run_upgrade",
        f"upgrade:{upgrade.pk}",
        {"upgrade_id": upgrade.pk},
    )


def test_an_upgrade_reads_as_api_md_has_it_in_the_list_and_alone(root_api, fleet_of_tenants):
    upgrade_id = start(root_api, canary=1, parallel=2, maxFailures=3).json()["data"]
    alone = root_api.get(f"/api/upgrades/{upgrade_id}")
    assert alone.status_code == 200
    body = dict(alone.json()["data"])
    assert set(body) == UPGRADE_FIELDS
    assert UTC_TIMESTAMP.match(body.pop("startedOn")), alone.json()
    assert body == {
        "id": upgrade_id,
        "status": "Pending",
        "target": fleet_of_tenants,
        "total": 3,
        "done": 0,
        "failed": 0,
        "skipped": 1,
        "canary": 1,
        "parallel": 2,
        "maxFailures": 3,
        "finishedOn": None,
        "error": "",
        "failures": [],
        "servers": {STOPPED: {"done": 0, "failed": 0, "pending": 2, "skipped": 0}},
    }
    listed = root_api.get("/api/upgrades")
    assert listed.status_code == 200
    assert listed.json()["data"] == [alone.json()["data"]]


def test_a_failed_child_is_listed_in_failures_with_its_error(root_api, fleet_of_tenants):
    upgrade_id = start(root_api, canary=0).json()["data"]
    UpgradeTenant.objects.filter(tenant_id="behind-old").update(status="failed", error="DuplicateColumn: summary")
    UpgradeTenant.objects.filter(tenant_id="behind-unknown").update(status="done")
    body = root_api.get(f"/api/upgrades/{upgrade_id}").json()["data"]
    assert (body["done"], body["failed"], body["skipped"]) == (1, 1, 1)
    assert body["failures"] == [{"tenantId": "behind-old", "error": "DuplicateColumn: summary"}]
    assert body["servers"] == {STOPPED: {"done": 1, "failed": 1, "pending": 0, "skipped": 0}}


def test_the_options_default_to_five_canaries_four_lanes_and_no_failure_allowed(root_api, fleet_of_tenants):
    upgrade = Upgrade.objects.get(pk=start(root_api).json()["data"])
    # Five canaries asked, two tenants behind: both are canaries.
    assert (upgrade.canary, upgrade.parallel, upgrade.max_failures) == (2, 4, 0)


def test_with_nothing_behind_an_upgrade_succeeds_at_once_with_every_tenant_skipped(root_api, stopped_server):
    isolated("at-head", fingerprint=migration_fingerprint())
    response = start(root_api)
    assert response.status_code == 202
    body = root_api.get(response.headers["Location"]).json()["data"]
    assert (body["status"], body["total"], body["skipped"], body["done"]) == ("Succeeded", 1, 1, 0)
    assert body["finishedOn"] is not None and body["servers"] == {}
    assert not Job.objects.exists()


@pytest.mark.parametrize("open_status", ["Pending", "Paused"])
def test_a_second_start_while_one_is_open_is_409_and_creates_nothing(root_api, fleet_of_tenants, open_status):
    upgrade_id = start(root_api).json()["data"]
    if open_status == "Paused":
        assert act(root_api, upgrade_id, "pause").status_code == 202
    before = created()
    response = start(root_api, canary=0)
    assert response.status_code == 409
    assert response.json() == refused(f"Upgrade {upgrade_id} is {open_status}: finish, resume or cancel it first")
    assert created() == before


# Each: the field, a value out of its range or not a whole JSON number.
BAD_OPTIONS = [
    ("parallel", 0),
    ("parallel", 10_000),
    ("parallel", "4"),
    ("parallel", 2.5),
    ("canary", -1),
    ("canary", True),
    ("canary", "five"),
    ("maxFailures", -1),
    ("maxFailures", False),
    ("maxFailures", [1]),
]


@pytest.mark.parametrize(("field", "value"), BAD_OPTIONS, ids=[f"{f}={v!r}" for f, v in BAD_OPTIONS])
def test_a_bad_option_is_400_naming_its_field_and_creates_nothing(root_api, fleet_of_tenants, field, value):
    response = start(root_api, **{field: value})
    assert response.status_code == 400, response.content
    body = response.json()
    assert (body["succeeded"], body["data"]) == (False, None)
    assert list(body["errors"]) == [field]
    assert created() == (0, 0, 0)


# --- pause, resume, cancel ------------------------------------------------------------------------------------


def test_pause_resume_and_cancel_are_202_in_their_states_and_409_in_the_others(root_api, fleet_of_tenants):
    upgrade_id = start(root_api).json()["data"]

    def refused_as(action, doing):
        response = act(root_api, upgrade_id, action)
        assert response.status_code == 409, response.content
        assert response.json() == refused(f"Upgrade {upgrade_id} is {status_of(upgrade_id)}: it cannot be {doing}")

    def accepted(action, then):
        response = act(root_api, upgrade_id, action)
        assert response.status_code == 202, response.content
        assert response.json()["data"] == upgrade_id
        assert response.headers["Location"] == f"/api/upgrades/{upgrade_id}"
        assert status_of(upgrade_id) == then

    refused_as("resume", "resumed")  # Pending
    accepted("pause", "Paused")
    refused_as("pause", "paused")
    jobs = Job.objects.count()
    accepted("resume", "Running")
    assert Job.objects.count() == jobs + 1  # a new run of the parent job goes on with what is left
    refused_as("resume", "resumed")
    accepted("cancel", "Cancelled")
    for action, doing in (("pause", "paused"), ("resume", "resumed"), ("cancel", "cancelled")):
        refused_as(action, doing)
    assert root_api.get(f"/api/upgrades/{upgrade_id}").json()["data"]["finishedOn"] is not None


def test_a_succeeded_upgrade_can_be_neither_resumed_nor_paused_nor_cancelled(root_api, stopped_server):
    isolated("at-head", fingerprint=migration_fingerprint())
    upgrade_id = start(root_api).json()["data"]
    assert status_of(upgrade_id) == "Succeeded"
    for action, doing in (("resume", "resumed"), ("pause", "paused"), ("cancel", "cancelled")):
        response = act(root_api, upgrade_id, action)
        assert response.status_code == 409
        assert response.json() == refused(f"Upgrade {upgrade_id} is Succeeded: it cannot be {doing}")
    assert status_of(upgrade_id) == "Succeeded" and not Job.objects.exists()


@pytest.mark.parametrize("upgrade_id", ["987654", "9" * 30])
def test_an_unknown_upgrade_is_404_for_every_call(root_api, fleet_of_tenants, upgrade_id):
    start(root_api)
    before = created()
    assert root_api.get(f"/api/upgrades/{upgrade_id}").json() == NOT_FOUND
    assert root_api.get(f"/api/upgrades/{upgrade_id}").status_code == 404
    for action in ("pause", "resume", "cancel"):
        response = act(root_api, upgrade_id, action)
        assert (response.status_code, response.json()) == (404, NOT_FOUND)
    assert created() == before and Upgrade.objects.get().status == "Pending"


# --- who may --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("caller", ["anonymous", "tenant_admin", "root_basic"])
def test_only_root_may_call_them(api, fleet_of_tenants, caller):
    if caller == "anonymous":
        client, status = api, 401
    elif caller == "tenant_admin":
        client, status = client_for(UserFactory(tenant_id="shared-one", roles=["admin"]), tenant="shared-one"), 403
    else:
        client, status = client_for(UserFactory(roles=["basic"])), 403
    existing = Upgrade.objects.create(target="x", canary=0, parallel=1, max_failures=0)
    calls = [
        client.get("/api/tenants/upgrade-status"),
        client.get("/api/upgrades"),
        client.get(f"/api/upgrades/{existing.pk}"),
        start(client),
        *(act(client, existing.pk, action) for action in ("pause", "resume", "cancel")),
    ]
    for response in calls:
        assert response.status_code == status, response.content
        assert response.json() == refused("Not Authorized")
    assert created() == (1, 0, 0) and status_of(existing.pk) == "Pending"


# --- the paths' names are not tenant ids ----------------------------------------------------------------------


@pytest.mark.parametrize("tenant_id", ["upgrade-status", "tenant-options"])
def test_the_names_of_tenant_paths_are_refused_as_tenant_ids(root_api, tenant_id):
    body = {
        "id": tenant_id,
        "name": "Clash Academy",
        "adminEmail": "admin@clash.test",
        "password": "Sturdy-Pass-2026!",
        "hasIsolatedDatabase": True,
    }
    response = root_api.post("/api/tenants", body, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {"id": [f"'{tenant_id}' is a reserved name."]}
    assert not Tenant.objects.filter(pk=tenant_id).exists() and not Job.objects.exists()
