"""Spare tenant databases (real PostgreSQL): clones of the template kept ready, handed to a new isolated tenant
by a rename, topped up by a durable job, never shared by two tenants, never of a stale template."""

import threading

import pytest
from django.conf import settings
from django.db import connections
from django.test import override_settings

from jobs.models import Job
from notifications.models import Notification
from tenants.models import MAIN_SERVER, Tenant
from tenants.provisioning import spares
from tenants.provisioning.databases import CLAIMED, CLONED, create_database, ensure_migrated, ensure_tenant_database
from tenants.provisioning.stores import main_store, store_for
from tenants.provisioning.template import ensure_template, template_name
from tenants.tasks import provision_tenant, refill_spare_databases, request_spare_refill, spare_refill_subject
from tests.support.fleet import databases_on
from tests.support.tenant_databases import (
    NEXT_RELEASE,
    applied_migrations,
    database_oid,
    head_migrations,
    isolated_database,
    migrate_runs_on,
    new_tenant,
    raw_cursor,
    templates,
)

pytestmark = pytest.mark.django_db(transaction=True)
PREFIX = settings.DIQUIS_TENANT_DATABASE_PREFIX


@pytest.fixture(autouse=True)
def _spares_on(settings, tenant_databases):
    settings.DIQUIS_SPARE_TENANT_DATABASES = 2
    for name in templates():
        main_store().drop(name)


def refill_jobs(status=Job.Status.QUEUED):
    return Job.objects.filter(subject=spare_refill_subject(MAIN_SERVER), status=status).count()


def current_spares():
    return set(spares.spares_of(main_store(), template_name()))


def test_a_refill_clones_the_template_up_to_the_setting_and_no_further():
    template = ensure_template(main_store())
    assert spares.refill(main_store(), template) == 2
    assert len(current_spares()) == 2 and all(name.startswith(f"{template}_spare_") for name in current_spares())
    assert spares.refill(main_store(), template) == 0
    for spare in current_spares():  # clones of the template: at the head
        assert {(app, name) for app, name, _ in applied_migrations(spare)} == head_migrations()


def test_a_new_tenant_gets_a_spare_by_rename():
    refill_spare_databases()  # what the worker runs
    before = {database_oid(name): name for name in current_spares()}
    tenant = new_tenant("alpha")
    assert ensure_tenant_database(tenant) == CLAIMED
    assert database_oid(tenant.database_name) in before  # the very database that was a spare, renamed
    assert len(current_spares()) == 1
    assert migrate_runs_on(tenant, created=CLAIMED) == set()  # at the head: not even checked


def test_each_server_has_its_own_spares_refilled_by_a_job_of_its_own(root_user, fleet_servers, extra_postgres_servers):
    new_tenant("far", database_server=fleet_servers["pg-plain"])
    provision_tenant(tenant_id="far", initiated_by=root_user.pk)
    job = Job.objects.get(subject=spare_refill_subject("pg-plain"))
    assert job.kwargs == {"server": "pg-plain"} and refill_jobs() == 0  # none for main: nothing was taken there
    refill_spare_databases(**job.kwargs)  # what the worker runs
    far_store = store_for("pg-plain")
    assert len(spares.spares_of(far_store, template_name())) == 2
    assert set(databases_on(extra_postgres_servers.plain)) == {
        f"{PREFIX}far",
        template_name(),
        *spares.spares_of(far_store, template_name()),
    }
    assert current_spares() == set()  # the main server's are its own business
    new_tenant("farther", database_server=fleet_servers["pg-plain"])
    assert ensure_tenant_database(Tenant.objects.get(pk="farther")) == CLAIMED


def test_without_spares_the_database_is_cloned():
    ensure_template(main_store())
    assert current_spares() == set()
    assert create_database(main_store(), f"{PREFIX}gamma") == CLONED


def test_creating_an_isolated_tenant_asks_for_a_refill_once_after_its_notification(root_user):
    new_tenant("alpha")
    provision_tenant(tenant_id="alpha", initiated_by=root_user.pk)
    created = Notification.objects.get(event="TenantCreated", data__tenantId="alpha")
    assert Job.objects.get(subject=spare_refill_subject(MAIN_SERVER)).created_at > created.created_on
    new_tenant("beta")
    provision_tenant(tenant_id="beta", initiated_by=root_user.pk)
    assert refill_jobs() == 1  # one waiting refill is enough
    new_tenant("shared-one", isolated=False)
    provision_tenant(tenant_id="shared-one", initiated_by=root_user.pk)
    assert refill_jobs() == 1


def test_two_tenants_racing_for_the_last_spare_get_one_database_each():
    template = ensure_template(main_store())
    spares.refill(main_store(), template)
    main_store().drop(sorted(current_spares())[0])
    (last,) = current_spares()
    last_oid = database_oid(last)
    outcomes, barrier = {}, threading.Barrier(2)

    def create(tenant_id):
        barrier.wait()
        try:
            outcomes[tenant_id] = create_database(main_store(), f"{PREFIX}{tenant_id}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=create, args=(tenant_id,)) for tenant_id in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes.values()) == sorted([CLAIMED, CLONED])
    winner = next(tenant_id for tenant_id, how in outcomes.items() if how == CLAIMED)
    assert database_oid(f"{PREFIX}{winner}") == last_oid and current_spares() == set()


def test_a_spare_with_a_session_on_it_is_passed_over():
    template = ensure_template(main_store())
    spares.refill(main_store(), template)
    busy, free = sorted(current_spares())
    with raw_cursor(busy):
        assert create_database(main_store(), f"{PREFIX}delta") == CLAIMED
    assert current_spares() == {busy}
    assert database_oid(f"{PREFIX}delta") != database_oid(busy)


def test_a_new_migration_drops_the_old_templates_spares_and_never_hands_them_out():
    old_template = ensure_template(main_store())
    spares.refill(main_store(), old_template)
    with override_settings(MIGRATION_MODULES=NEXT_RELEASE):
        tenant = new_tenant("epsilon")
        name = isolated_database(tenant)
        new_template = template_name()
        assert templates() == {new_template}  # the old template and both its spares are gone
        assert ("tenants", "0006_user_nickname") in {(a, n) for a, n, _ in applied_migrations(name)}
        ensure_migrated(tenant)
    assert not spares.spares_of(main_store(), old_template)


def test_spares_off_means_none_are_made_or_asked_for(settings):
    settings.DIQUIS_SPARE_TENANT_DATABASES = 0
    ensure_template(main_store())
    assert create_database(main_store(), f"{settings.DIQUIS_TENANT_DATABASE_PREFIX}zeta") == CLONED
    request_spare_refill()
    assert refill_jobs() == 0 and current_spares() == set()
