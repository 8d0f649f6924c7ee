"""On the embedded SQLite default an isolated tenant is a file of its own, copied from a migrated template
file named by the same fingerprint. Run for real in child processes whose main database is SQLite."""

import json
import os
import sqlite3
import subprocess
import sys

import pytest
from django.conf import settings

from tests.support.live import ROOT

PREFIX = settings.DIQUIS_TENANT_DATABASE_PREFIX

NEXT_RELEASE_SETTINGS = "tests.support.settings_next_migrations"

PROVISION = """
import json
from tenants.models import ProvisioningStatus, Tenant, User
from tenants.provisioning.steps import run_tenant_creation
from tenants.provisioning.template import template_name
from tenants.vault import encrypt_password
root = User.objects.get(tenant_id="root")
for tenant_id in {ids!r}:
    Tenant.objects.create(
        id=tenant_id, name=tenant_id, admin_email=f"admin@{{tenant_id}}.test", has_isolated_database=True,
        status=ProvisioningStatus.PENDING, encrypted_admin_password=encrypt_password("Tenant-Admin-Pass-9!"),
    )
    run_tenant_creation(tenant_id=tenant_id, initiated_by=str(root.pk))
print(json.dumps({{"template": template_name()}}))
"""

DEPROVISION = """
from tenants.models import ProvisioningStatus, Tenant
from tenants.provisioning.steps import run_tenant_deletion
Tenant.objects.filter(pk={tenant_id!r}).update(status=ProvisioningStatus.DELETING, operation="delete")
run_tenant_deletion(tenant_id={tenant_id!r}, initiated_by=None)
"""


@pytest.fixture
def sqlite_home(tmp_path):
    return tmp_path


def manage(home, *args, settings_module="diquis.settings"):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{home / 'main.sqlite3'}",
        "DIQUIS_TENANT_SQLITE_DIR": str(home / "tenants"),
        "DJANGO_SETTINGS_MODULE": settings_module,
    }
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def provision(home, *tenant_ids, settings_module="diquis.settings"):
    out = manage(home, "shell", "-c", PROVISION.format(ids=list(tenant_ids)), settings_module=settings_module)
    return json.loads(out.strip().splitlines()[-1])["template"]


def rows(path, statement):
    with sqlite3.connect(path) as db:
        return db.execute(statement).fetchall()


def files(home):
    return sorted(p.name for p in (home / "tenants").glob("*.sqlite3"))


def migrations(path):
    return rows(path, "SELECT app, name, applied FROM django_migrations ORDER BY id")


def test_isolated_tenants_are_files_copied_from_a_fingerprinted_template(sqlite_home):
    home = sqlite_home
    manage(home, "migrate", "--verbosity", "0")
    template = provision(home, "sq-one", "sq-two")
    assert files(home) == sorted([f"{template}.sqlite3", f"{PREFIX}sq-one.sqlite3", f"{PREFIX}sq-two.sqlite3"])
    one, two = home / "tenants" / f"{PREFIX}sq-one.sqlite3", home / "tenants" / f"{PREFIX}sq-two.sqlite3"
    template_file = home / "tenants" / f"{template}.sqlite3"

    # Copies of the template: the very same migration records, down to the timestamps.
    assert migrations(one) == migrations(two) == migrations(template_file)
    assert ("tenants", "0001_initial") in {(app, name) for app, name, _ in migrations(one)}
    # Each tenant's admin is in its own file, and only there.
    assert rows(one, "SELECT tenant_id, email FROM tenants_user") == [("sq-one", "admin@sq-one.test")]
    assert rows(two, "SELECT tenant_id, email FROM tenants_user") == [("sq-two", "admin@sq-two.test")]
    assert rows(template_file, "SELECT count(*) FROM tenants_user") == [(0,)]
    main = home / "main.sqlite3"
    assert rows(main, "SELECT count(*) FROM tenants_user WHERE tenant_id LIKE 'sq-%'") == [(0,)]
    assert rows(main, "SELECT id, status, database_name FROM tenants_tenant WHERE id LIKE 'sq-%' ORDER BY id") == [
        ("sq-one", "Active", f"{PREFIX}sq-one"),
        ("sq-two", "Active", f"{PREFIX}sq-two"),
    ]

    # A release with a new migration: a new template file, the old one removed, the new clone at the head.
    new_template = provision(home, "sq-three", settings_module=NEXT_RELEASE_SETTINGS)
    assert new_template != template
    assert f"{new_template}.sqlite3" in files(home) and f"{template}.sqlite3" not in files(home)
    three = home / "tenants" / f"{PREFIX}sq-three.sqlite3"
    assert ("tenants", "0006_user_nickname") in {(app, name) for app, name, _ in migrations(three)}
    assert "nickname" in {row[1] for row in rows(three, "PRAGMA table_info(tenants_user)")}

    # migrate_tenants brings the older files to the same head.
    out = manage(home, "migrate_tenants", "--parallel", "2", settings_module=NEXT_RELEASE_SETTINGS)
    assert out.splitlines()[-1] == "Done: 2 upgraded, 1 skipped: all at the head."
    assert "nickname" in {row[1] for row in rows(one, "PRAGMA table_info(tenants_user)")}

    # Deletion removes the file.
    manage(home, "shell", "-c", DEPROVISION.format(tenant_id="sq-one"))
    assert f"{PREFIX}sq-one.sqlite3" not in files(home)
    assert rows(main, "SELECT count(*) FROM tenants_tenant WHERE id = 'sq-one'") == [(0,)]
    assert not list((home / "tenants").glob("*.partial"))
