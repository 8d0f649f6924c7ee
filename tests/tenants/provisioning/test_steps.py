"""The steps a job runs for a tenant, on real PostgreSQL.

Creation: every step of an isolated creation is idempotent: an attempt that dies after any step (or inside
one) is followed by a retry that ends Active with exactly one database and one admin user.

Deletion: an isolated tenant leaves no database, a shared one no rows; sessions on the database are
terminated; every step can run again after a crash.
"""

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from notifications.models import Notification
from tenants.connections import database_name_for, temporary_connection
from tenants.models import ProvisioningStatus, Tenant, User
from tenants.provisioning.databases import (
    DATABASE_DROPPED,
    DATABASE_MADE,
    create_database,
    drop_tenant_data,
    ensure_admin_user,
    ensure_migrated,
    ensure_tenant_database,
)
from tenants.provisioning.faults import InjectedFault
from tenants.provisioning.steps import (
    REMOVE_TENANT_DATA,
    creation_steps,
    record_operation_failure,
    run_tenant_creation,
    run_tenant_deletion,
)
from tenants.provisioning.stores import main_store
from tenants.provisioning.template import migrate_database
from tests.support.fault_injection import write_fault
from tests.support.tenant_databases import (
    applied_migrations,
    head_migrations,
    main_database,
    new_tenant,
    prefixed_databases,
    query,
    raw_cursor,
    sessions_on,
    templates,
)

STEPS = creation_steps(Tenant(has_isolated_database=True))
TENANT = "kappa"


@pytest.fixture
def fail_at(tmp_path, settings):
    """Arm the fault hook: the attempt raises just before `step` (so after the steps before it)."""
    settings.DIQUIS_FAULTS_FILE = str(tmp_path / "fault.json")

    def arm(step):
        """`None` disarms it."""
        if step is None:
            (tmp_path / "fault.json").unlink(missing_ok=True)
        else:
            write_fault(tmp_path / "fault.json", step, TENANT)

    yield arm
    arm(None)


@pytest.fixture
def tenant(tenant_databases, root_user):
    return new_tenant(TENANT)


def crashed_attempt(fail_at, root_user, step):
    fail_at(step)
    with pytest.raises(InjectedFault):
        run_tenant_creation(tenant_id=TENANT, initiated_by=str(root_user.pk))
    fail_at(None)
    assert Tenant.objects.get(pk=TENANT).status == ProvisioningStatus.PROVISIONING


def retry_and_check(root_user):
    run_tenant_creation(tenant_id=TENANT, initiated_by=str(root_user.pk))
    tenant = Tenant.objects.get(pk=TENANT)
    name = database_name_for(TENANT)
    assert (tenant.status, tenant.is_provisioned, tenant.database_name) == (ProvisioningStatus.ACTIVE, True, name)
    assert tenant.encrypted_admin_password is None
    assert prefixed_databases() - templates() == {name}
    admins = query(name, "SELECT tenant_id, email, roles::text FROM tenants_user")
    assert admins == [(TENANT, f"admin@{TENANT}.test", '["admin"]')]
    assert {(app, migration) for app, migration, _ in applied_migrations(name)} == head_migrations()
    assert not User.objects.using("default").filter(tenant_id=TENANT).exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tenants_user WHERE tenant_id = %s", [TENANT])
        assert cursor.fetchone() == (0,)


def test_the_steps_are_the_three_of_an_isolated_creation():
    assert [step.label for step in STEPS] == ["create-database", "apply-migrations", "create-admin-user"]


@pytest.mark.parametrize("done", range(len(STEPS) + 1), ids=lambda n: f"after-{n}-steps")
def test_a_retry_after_a_crash_after_each_step_ends_active_with_one_database_and_one_admin(
    tenant, fail_at, root_user, done
):
    crashed_attempt(fail_at, root_user, STEPS[0])
    tenant = Tenant.objects.get(pk=TENANT)
    for step in creation_steps(tenant)[:done]:  # what the dead attempt got through
        step.function(tenant)
    retry_and_check(root_user)


def test_a_retry_after_each_step_failing_in_turn_through_the_fault_hook(tenant, fail_at, root_user):
    """The same crash points, reached by the job's own code path: one attempt fails before each step."""
    for step in STEPS:
        crashed_attempt(fail_at, root_user, step)
    retry_and_check(root_user)


def test_database_created_but_not_recorded_on_the_tenant(tenant, fail_at, root_user):
    crashed_attempt(fail_at, root_user, STEPS[0])
    create_database(main_store(), database_name_for(TENANT))  # the clone happened, the row update did not
    assert Tenant.objects.get(pk=TENANT).database_name is None
    retry_and_check(root_user)


def test_a_database_made_by_an_attempt_that_dies_before_its_end_is_named_in_the_catalog(tenant, fail_at, root_user):
    """The server made the database, then the attempt died (its server stopped before the role was set): the
    catalog names it all the same, so a creation that fails for good leaves none it does not know, and its
    deletion drops it."""
    crashed_attempt(fail_at, root_user, DATABASE_MADE)
    name = database_name_for(TENANT)
    assert Tenant.objects.get(pk=TENANT).database_name == name
    assert prefixed_databases() - templates() == {name}
    record_operation_failure("the server stopped", tenant_id=TENANT, initiated_by=str(root_user.pk))
    run_tenant_deletion(tenant_id=TENANT, initiated_by=str(root_user.pk))
    assert prefixed_databases() - templates() == set()


def test_database_half_migrated(tenant, fail_at, root_user):
    """The fallback path died mid-migration: an empty database, some migrations applied."""
    crashed_attempt(fail_at, root_user, STEPS[0])
    name = database_name_for(TENANT)
    main_store().create(name)
    with temporary_connection(name) as alias:
        call_command("migrate", "contenttypes", database=alias, interactive=False, verbosity=0)
    assert 0 < len(applied_migrations(name)) < len(head_migrations())
    retry_and_check(root_user)


def test_admin_created_but_password_not_yet_erased(tenant, fail_at, root_user):
    crashed_attempt(fail_at, root_user, STEPS[0])
    tenant = Tenant.objects.get(pk=TENANT)
    secret = tenant.encrypted_admin_password
    ensure_tenant_database(tenant)
    ensure_migrated(tenant)
    ensure_admin_user(tenant)
    Tenant.objects.filter(pk=TENANT).update(encrypted_admin_password=secret)  # the erasure was lost
    retry_and_check(root_user)


def test_a_second_full_run_of_every_step_changes_nothing(tenant, root_user):
    run_tenant_creation(tenant_id=TENANT, initiated_by=str(root_user.pk))
    tenant = Tenant.objects.get(pk=TENANT)
    before = applied_migrations(tenant.database_name)
    for step in creation_steps(tenant):
        step.function(tenant)
    assert applied_migrations(tenant.database_name) == before
    assert query(tenant.database_name, "SELECT count(*) FROM tenants_user") == [(1,)]
    migrate_database(tenant.database_name)  # and a migrate on top is a no-op
    assert applied_migrations(tenant.database_name) == before


# --- deletion ---------------------------------------------------------------------------------------------

PREFIX = settings.DIQUIS_TENANT_DATABASE_PREFIX

S = ProvisioningStatus


@pytest.fixture
def created(root_user, tenant_databases):
    def create(tenant_id, isolated):
        new_tenant(tenant_id, isolated=isolated)
        run_tenant_creation(tenant_id=tenant_id, initiated_by=str(root_user.pk))
        if not isolated:
            User.objects.create_user(f"member@{tenant_id}.test", "Member-Pass-77!", tenant_id=tenant_id)
        return Tenant.objects.get(pk=tenant_id)

    return create


def start_deletion(tenant_id):
    """What DELETE /api/tenants/{id} leaves for the job (services.delete_tenant)."""
    Tenant.objects.filter(pk=tenant_id).update(status=S.DELETING, operation="delete")


def main_rows(tenant_id):
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tenants_user WHERE tenant_id = %s", [tenant_id])
        return cursor.fetchone()[0]


def test_deleting_an_isolated_tenant_drops_its_database_and_ends_sessions_on_it(created, root_user):
    tenant = created("alpha", isolated=True)
    assert f"{PREFIX}alpha" in prefixed_databases()
    with raw_cursor(f"{PREFIX}alpha") as someone:  # a session left open on the tenant's database
        someone.execute("SELECT 1")
        assert sessions_on(f"{PREFIX}alpha") >= 1
        start_deletion(tenant.id)
        run_tenant_deletion(tenant_id=tenant.id, initiated_by=str(root_user.pk))
        with pytest.raises(psycopg.OperationalError):
            someone.execute("SELECT 1")
    assert prefixed_databases() - templates() == set()
    assert query(main_database(), f"SELECT count(*) FROM pg_database WHERE datname = '{PREFIX}alpha'") == [(0,)]
    assert not Tenant.objects.filter(pk="alpha").exists()
    deleted = Notification.objects.get(user_id=root_user.pk, event="TenantDeleted")
    assert deleted.data["tenantId"] == "alpha"


def test_deleting_a_shared_tenant_removes_its_rows_and_nothing_else(created, root_user):
    created("gamma", isolated=False)
    created("delta", isolated=False)
    assert main_rows("gamma") == 2
    start_deletion("gamma")
    run_tenant_deletion(tenant_id="gamma", initiated_by=str(root_user.pk))
    assert main_rows("gamma") == 0
    assert not Tenant.objects.filter(pk="gamma").exists()
    assert main_rows("delta") == 2 and Tenant.objects.filter(pk="delta").exists()
    assert User.objects.filter(pk=root_user.pk).exists()


def test_dropping_twice_is_harmless(created):
    tenant = created("alpha", isolated=True)
    drop_tenant_data(tenant)
    drop_tenant_data(tenant)
    assert f"{PREFIX}alpha" not in prefixed_databases()


@pytest.mark.parametrize("crash", ["before-drop", "after-drop"])
def test_a_deletion_that_crashed_finishes_on_retry(created, root_user, tmp_path, settings, crash):
    tenant = created("alpha", isolated=True)
    start_deletion(tenant.id)
    if crash == "before-drop":
        settings.DIQUIS_FAULTS_FILE = str(tmp_path / "fault.json")
        write_fault(tmp_path / "fault.json", REMOVE_TENANT_DATA, "alpha")
        with pytest.raises(InjectedFault):
            run_tenant_deletion(tenant_id=tenant.id, initiated_by=str(root_user.pk))
        (tmp_path / "fault.json").unlink()
        assert f"{PREFIX}alpha" in prefixed_databases()
    else:
        drop_tenant_data(tenant)  # the database went, the catalog row stayed
    assert Tenant.objects.get(pk="alpha").status == S.DELETING
    run_tenant_deletion(tenant_id=tenant.id, initiated_by=str(root_user.pk))
    assert not Tenant.objects.filter(pk="alpha").exists()
    assert f"{PREFIX}alpha" not in prefixed_databases()


def test_a_deletion_that_dies_after_the_drop_names_the_database_no_more(created, root_user, tmp_path, settings):
    """The database dropped, then its server stopped before the role went: a deletion that fails for good then left
    a tenant naming a database that no server has. The name goes with the database; a retry finds it by the id."""
    tenant = created("alpha", isolated=True)
    name = tenant.database_name
    start_deletion(tenant.id)
    settings.DIQUIS_FAULTS_FILE = str(tmp_path / "fault.json")
    write_fault(tmp_path / "fault.json", DATABASE_DROPPED, "alpha")
    with pytest.raises(InjectedFault):
        run_tenant_deletion(tenant_id=tenant.id, initiated_by=str(root_user.pk))
    (tmp_path / "fault.json").unlink()
    record_operation_failure("the server stopped", tenant_id=tenant.id, initiated_by=str(root_user.pk))
    assert name not in prefixed_databases()
    assert Tenant.objects.get(pk="alpha").database_name is None
    assert query("postgres", "SELECT count(*) FROM pg_roles WHERE rolname = %s", [name]) == [(1,)]
    run_tenant_deletion(tenant_id=tenant.id, initiated_by=str(root_user.pk))
    assert not Tenant.objects.filter(pk="alpha").exists()
    assert query("postgres", "SELECT count(*) FROM pg_roles WHERE rolname = %s", [name]) == [(0,)]


def test_a_deletion_job_for_a_tenant_already_gone_does_nothing(root_user, db):
    run_tenant_deletion(tenant_id="never-was", initiated_by=str(root_user.pk))
    assert not Notification.objects.filter(event="TenantDeleted").exists()
