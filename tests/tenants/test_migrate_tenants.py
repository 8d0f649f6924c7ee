"""`python manage.py migrate_tenants`, run as operators run it (a process, real PostgreSQL, no worker: the command
runs the upgrade itself): a release with a new tenant-side migration reaches every isolated database; a database
that fails is reported, the others are upgraded anyway (as many failures allowed), and the exit status says so."""

import subprocess
import sys

import pytest
from django.conf import settings
from django.db import connections

from tenants.connections import use_tenant
from tenants.models import Tenant, Upgrade, User
from tenants.provisioning.steps import run_tenant_creation
from tests.support.live import ROOT, stack_env
from tests.support.tenant_databases import applied_migrations, new_tenant, query, raw_cursor

PREFIX = settings.DIQUIS_TENANT_DATABASE_PREFIX

NEW_MIGRATION = ("tenants", "0006_user_nickname")
NEXT_RELEASE = "tests.support.settings_next_migrations"


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


def test_one_failing_database_is_reported_the_others_are_upgraded_and_the_exit_status_is_non_zero(isolated):
    isolated("m-one", "m-two", "m-three")
    # Break m-two: the release's column is there already, so its migration fails there.
    with raw_cursor(f"{PREFIX}m-two") as cursor:
        cursor.execute("ALTER TABLE tenants_user ADD COLUMN nickname text")

    result = migrate_tenants("--parallel", "2", "--canary", "0", "--max-failures", "1", settings_module=NEXT_RELEASE)

    assert result.returncode != 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].endswith(": 3 of 3 tenant database(s) behind, 2 at a time, 0 canary(ies) first.")
    assert "No worker is running: upgrading in this process." in lines
    bars = [line for line in lines if line.startswith("[")]
    assert bars[-1].startswith("[" + "#" * 30 + "] 3/3: 2 upgraded, 1 failed, 0 skipped")
    ended = next(line for line in lines if line.startswith("Upgrade ") and " is Failed:" in line)
    summary = lines[lines.index(ended) :]
    assert summary[1].startswith("  - m-two: ") and "already exists" in summary[1]
    assert "is Failed" in result.stderr and "1 failed" in result.stderr
    for database in (f"{PREFIX}m-one", f"{PREFIX}m-three"):
        assert has_new_migration(database) and nickname_column(database)
    assert not has_new_migration(f"{PREFIX}m-two")


def test_a_clean_run_upgrades_every_database_and_a_second_one_has_nothing_to_do(isolated):
    isolated("m-one", "m-two")
    result = migrate_tenants("--parallel", "1", settings_module=NEXT_RELEASE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 of 2 tenant database(s) behind, 1 at a time, 2 canary(ies) first." in result.stdout
    assert result.stdout.splitlines()[-1] == "Done: 2 upgraded, 0 skipped: all at the head."
    assert all(has_new_migration(db) and nickname_column(db) for db in (f"{PREFIX}m-one", f"{PREFIX}m-two"))
    again = migrate_tenants("--parallel", "3", settings_module=NEXT_RELEASE)  # nothing behind: nothing opened
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.strip().startswith("Nothing to do: all 2 tenant database(s) are at ")


def test_nothing_to_do_without_isolated_tenants(transactional_db):
    result = migrate_tenants()
    assert result.returncode == 0
    assert result.stdout.strip().startswith("Nothing to do: all 0 tenant database(s) are at ")


@pytest.mark.parametrize("option", [("--parallel", "0"), ("--parallel", "10000"), ("--canary", "-1")])
def test_options_out_of_range_are_refused(transactional_db, option):
    result = migrate_tenants(*option)
    assert result.returncode != 0
    assert "must be a whole number" in result.stderr
    assert not Upgrade.objects.exists()


def test_roles_sets_every_tenant_s_role_again(isolated):
    isolated("m-one")
    with raw_cursor(f"{PREFIX}m-one") as cursor:  # a grant lost behind our back
        cursor.execute(f'REVOKE SELECT ON tenants_user FROM "{PREFIX}m-one"')
    result = migrate_tenants("--roles")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "Roles set again for 1 tenant database(s)."
    with use_tenant(Tenant.objects.get(pk="m-one")):
        assert User.objects.filter(tenant_id="m-one").count() == 1


def test_every_server_s_tenants_are_migrated(transactional_db, fleet_servers, root_user):
    """A tenant on each server: the command reaches each database where it lives."""
    for tenant_id, server in (("m-main", None), ("m-far", fleet_servers["pg-plain"])):
        new_tenant(tenant_id, database_server=server)
        run_tenant_creation(tenant_id=tenant_id, initiated_by=str(root_user.pk))

    result = migrate_tenants(settings_module=NEXT_RELEASE)

    assert result.returncode == 0, result.stdout + result.stderr
    assert has_new_migration(f"{PREFIX}m-main")
    far = Tenant.objects.get(pk="m-far")
    with use_tenant(far) as alias, connections[alias].cursor() as cursor:
        cursor.execute("SELECT name FROM django_migrations WHERE app = %s", [NEW_MIGRATION[0]])
        assert NEW_MIGRATION[1] in {name for (name,) in cursor.fetchall()}
