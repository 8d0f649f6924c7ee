"""`python manage.py migrate_tenants [--parallel N]`, run as operators run it (a process, real PostgreSQL):
a release with a new tenant-side migration reaches every isolated database; a database that fails is
reported, the others are migrated anyway, and the exit status says so."""

import subprocess
import sys

import pytest
from django.conf import settings
from django.db import connections

from tenants.connections import use_tenant
from tenants.models import Tenant
from tenants.provisioning.steps import run_tenant_creation
from tests.support.live import ROOT, stack_env
from tests.support.tenant_databases import applied_migrations, new_tenant, query, raw_cursor

PREFIX = settings.DIQUIS_TENANT_DATABASE_PREFIX

NEW_MIGRATION = ("tenants", "0004_user_nickname")
NEXT_RELEASE_SETTINGS = "tests.support.settings_next_migrations"


@pytest.fixture
def isolated(transactional_db, tenant_databases, root_user):
    def create(*tenant_ids):
        for tenant_id in tenant_ids:
            new_tenant(tenant_id)
            run_tenant_creation(tenant_id=tenant_id, initiated_by=str(root_user.pk))

    return create


def migrate_tenants(*args, settings_module="diquis.settings"):
    return subprocess.run(
        [sys.executable, "manage.py", "migrate_tenants", *args],
        cwd=ROOT,
        env=stack_env(DJANGO_SETTINGS_MODULE=settings_module),
        capture_output=True,
        text=True,
        timeout=300,
    )


def has_new_migration(database):
    return NEW_MIGRATION in {(app, name) for app, name, _ in applied_migrations(database)}


def nickname_column(database):
    columns = "SELECT column_name FROM information_schema.columns WHERE table_name = 'tenants_user'"
    return ("nickname",) in query(database, columns)


def test_one_failing_database_is_reported_the_others_are_migrated_and_the_exit_status_is_non_zero(isolated):
    isolated("m-one", "m-two", "m-three")
    # Break m-two: its migration history is lost, so migrate tries to create tables it already has.
    with raw_cursor(f"{PREFIX}m-two") as cursor:
        cursor.execute("DROP TABLE django_migrations")

    result = migrate_tenants("--parallel", "2", settings_module=NEXT_RELEASE_SETTINGS)

    assert result.returncode != 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Migrating 3 tenant database(s), 2 at a time."
    progress = sorted(line.split("] ", 1)[1].split(":")[0] for line in lines if line.startswith("["))
    assert progress == [f"m-one ({PREFIX}m-one)", f"m-three ({PREFIX}m-three)", f"m-two ({PREFIX}m-two)"]
    assert [line.split("] ")[0] for line in lines if line.startswith("[")] == ["[1/3", "[2/3", "[3/3"]
    assert any(f"m-two ({PREFIX}m-two): FAILED" in line and "already exists" in line for line in lines)
    summary = lines[lines.index("Done: 2 migrated, 1 failed:") + 1 :]
    assert len(summary) == 1 and summary[0].startswith(f"  - m-two ({PREFIX}m-two): ")
    assert "already exists" in summary[0]
    assert "1 of 3 tenant database(s) failed to migrate." in result.stderr
    for database in (f"{PREFIX}m-one", f"{PREFIX}m-three"):
        assert has_new_migration(database) and nickname_column(database)
    assert not nickname_column(f"{PREFIX}m-two")


def test_a_clean_run_migrates_every_database_one_at_a_time_and_exits_zero(isolated):
    isolated("m-one", "m-two")
    result = migrate_tenants(settings_module=NEXT_RELEASE_SETTINGS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Migrating 2 tenant database(s), 1 at a time." in result.stdout
    assert "Done: all 2 tenant database(s) are migrated." in result.stdout
    assert all(has_new_migration(db) and nickname_column(db) for db in (f"{PREFIX}m-one", f"{PREFIX}m-two"))
    again = migrate_tenants("--parallel", "3", settings_module=NEXT_RELEASE_SETTINGS)  # nothing pending: fine
    assert again.returncode == 0, again.stdout + again.stderr


def test_nothing_to_do_without_isolated_tenants(transactional_db):
    result = migrate_tenants()
    assert result.returncode == 0
    assert result.stdout.strip() == "No isolated tenant databases to migrate."


def test_parallel_must_be_positive(transactional_db):
    result = migrate_tenants("--parallel", "0")
    assert result.returncode != 0
    assert "--parallel must be at least 1" in result.stderr


def test_every_server_s_tenants_are_migrated(transactional_db, fleet_servers, root_user):
    """A tenant on each server: the command reaches each database where it lives."""
    for tenant_id, server in (("m-main", None), ("m-far", fleet_servers["pg-plain"])):
        new_tenant(tenant_id, database_server=server)
        run_tenant_creation(tenant_id=tenant_id, initiated_by=str(root_user.pk))

    result = migrate_tenants(settings_module=NEXT_RELEASE_SETTINGS)

    assert result.returncode == 0, result.stdout + result.stderr
    assert has_new_migration(f"{PREFIX}m-main")
    far = Tenant.objects.get(pk="m-far")
    with use_tenant(far) as alias, connections[alias].cursor() as cursor:
        cursor.execute("SELECT name FROM django_migrations WHERE app = %s", [NEW_MIGRATION[0]])
        assert NEW_MIGRATION[1] in {name for (name,) in cursor.fetchall()}
