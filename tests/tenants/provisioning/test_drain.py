"""Draining a server (API.md, "Database servers"): every tenant on it is moved to the others by jobs, never more
than DIQUIS_DRAIN_PARALLELISM at once, each move's end starting the next. Real servers; the jobs are run by the
job runner in this process, one at a time, so the bound can be watched between them."""

import pytest

from jobs.models import Job
from jobs.runner import run_job
from notifications.models import Notification
from tenants import services
from tenants.connections import use_tenant
from tenants.models import MAIN_SERVER, DatabaseServer, ProvisioningStatus, ServerStatus, Tenant, User
from tenants.provisioning.steps import run_tenant_creation
from tests.support.fleet import databases_on
from tests.support.tenant_databases import new_tenant

pytestmark = pytest.mark.django_db(transaction=True)
S = ProvisioningStatus


@pytest.fixture
def servers(fleet_servers):
    return fleet_servers


def open_moves():
    return Job.objects.filter(task__endswith="move_tenant_database", status__in=Job.OPEN_STATUSES).order_by(
        "created_at"
    )


def test_a_drain_moves_every_tenant_off_the_server_a_few_at_a_time(
    servers, extra_postgres_servers, root_user, settings
):
    settings.DIQUIS_DRAIN_PARALLELISM = 2
    tenants = []
    for i in range(5):
        tenant = new_tenant(f"drained-{i}", database_server_id="pg-plain")
        run_tenant_creation(tenant_id=tenant.id, initiated_by=str(root_user.pk))
        tenants.append(tenant.id)
    with use_tenant(Tenant.objects.get(pk="drained-0")):
        User.objects.create_user("kept@drained-0.test", None, tenant_id="drained-0")

    services.drain_server(name="pg-plain", initiated_by=root_user.pk)
    assert DatabaseServer.objects.get(pk="pg-plain").status == ServerStatus.DRAINING
    most_moving = 0
    while open_moves().exists():
        moving = Tenant.objects.filter(status=S.MOVING).count()
        most_moving = max(most_moving, moving)
        assert moving == open_moves().count()
        run_job(open_moves().first().pk)
    assert most_moving == 2

    placed = dict(Tenant.objects.filter(pk__in=tenants).values_list("pk", "database_server_id"))
    assert set(placed.values()) <= {MAIN_SERVER, "pg-logical"}
    assert len(set(placed.values())) == 2  # spread by placement, not all on one
    names = set(Tenant.objects.filter(pk__in=tenants).values_list("database_name", flat=True))
    assert names.isdisjoint(databases_on(extra_postgres_servers.plain))  # its template only is left
    assert all(status == S.ACTIVE for status in Tenant.objects.filter(pk__in=tenants).values_list("status", flat=True))
    with use_tenant(Tenant.objects.get(pk="drained-0")):
        assert User.objects.filter(email="kept@drained-0.test").exists()
    assert Notification.objects.filter(event="TenantMoved").count() == 5
    assert DatabaseServer.objects.get(pk="pg-plain").status == ServerStatus.DRAINING  # takes no new tenants
    assert services.drain_server(name="pg-plain", initiated_by=root_user.pk).status == ServerStatus.DRAINING
    assert not open_moves().exists()
