"""Placement (API.md, "Database servers"): the Active servers that answer, fewest tenants per unit of weight
first, ties to `main`; a named server is kept; an isolated tenant's database, template and spares are made on
the server it was placed on. Real servers: the main one and the suite's extra clusters."""

import pytest
from django.conf import settings

from tenants.connections import use_tenant
from tenants.models import MAIN_SERVER, DatabaseServer, ServerStatus, Tenant, User
from tenants.provisioning import placement
from tenants.provisioning.steps import run_tenant_creation
from tenants.provisioning.template import template_name
from tests.support.fleet import databases_on
from tests.support.tenant_databases import new_tenant, prefixed_databases

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def servers(fleet_servers):
    return fleet_servers


def place_on(server_name, count):
    for i in range(count):
        Tenant.objects.create(
            id=f"{server_name}-{i}",
            name="x",
            admin_email="a@x.test",
            has_isolated_database=True,
            database_server_id=server_name,
        )


def test_the_fewest_tenants_per_unit_of_weight_wins(servers):
    place_on(MAIN_SERVER, 2)
    place_on("pg-logical", 1)
    place_on("pg-plain", 2)
    assert placement.choose_server().name == "pg-logical"
    DatabaseServer.objects.filter(pk="pg-plain").update(weight=3)  # 2/3 tenants per unit: the lightest now
    assert placement.choose_server().name == "pg-plain"


def test_ties_go_to_main_and_only_active_servers_with_a_weight_take_tenants(servers):
    assert placement.choose_server().name == MAIN_SERVER
    place_on(MAIN_SERVER, 1)
    DatabaseServer.objects.filter(pk="pg-logical").update(status=ServerStatus.DRAINING)
    DatabaseServer.objects.filter(pk="pg-plain").update(weight=0)
    assert placement.choose_server().name == MAIN_SERVER


def test_a_server_that_does_not_answer_is_passed_over_and_seen_down(servers, extra_postgres_servers):
    place_on(MAIN_SERVER, 1)
    place_on("pg-plain", 1)
    extra_postgres_servers.logical.stop()
    try:
        assert placement.choose_server().name == MAIN_SERVER
        assert DatabaseServer.objects.get(pk="pg-logical").reachable is False
    finally:
        extra_postgres_servers.logical.start_again()
    assert placement.choose_server().name == "pg-logical"
    assert DatabaseServer.objects.get(pk="pg-logical").reachable is True


def test_a_burst_spreads_as_the_weights_say(servers):
    DatabaseServer.objects.filter(pk="pg-plain").update(weight=2)
    tenants = [new_tenant(f"spread-{i}") for i in range(8)]
    for tenant in tenants:
        placement.place(tenant)
    counts = {name: Tenant.objects.filter(database_server_id=name).count() for name in (MAIN_SERVER, *servers)}
    assert counts == {MAIN_SERVER: 2, "pg-logical": 2, "pg-plain": 4}


def test_an_isolated_tenant_is_created_whole_on_the_server_it_was_placed_on(servers, extra_postgres_servers):
    place_on(MAIN_SERVER, 1)
    place_on("pg-plain", 1)
    tenant = new_tenant("far")
    run_tenant_creation(tenant_id=tenant.id, initiated_by=None)
    tenant.refresh_from_db()
    assert tenant.database_server_id == "pg-logical"
    on_logical = databases_on(extra_postgres_servers.logical)
    assert tenant.database_name in on_logical and template_name() in on_logical
    assert tenant.database_name not in prefixed_databases()  # nothing of it on the main server
    with use_tenant(tenant):
        assert User.objects.filter(email="admin@far.test").exists()
    assert not User.objects.using("default").filter(tenant_id="far").exists()


def test_a_named_server_is_kept(servers, extra_postgres_servers):
    tenant = new_tenant("named", database_server=servers["pg-plain"])
    run_tenant_creation(tenant_id=tenant.id, initiated_by=None)
    tenant.refresh_from_db()
    assert tenant.database_server_id == "pg-plain"
    assert tenant.database_name in databases_on(extra_postgres_servers.plain)
    assert settings.DIQUIS_TENANT_DATABASE_PREFIX in tenant.database_name
