"""`migrate` seeds the root user (tenants.seed): with DEBUG=false it refuses the documented development root
password and missing root credentials, and seeds a strong password. Each test migrates a throwaway database
of its own, running `manage.py` in a subprocess as an operator would."""

import pytest
from django.conf import settings
from django.db import connection

from tenants.provisioning.stores import main_store
from tenants.seed import DEVELOPMENT_ROOT_PASSWORD
from tests.support.production import manage
from tests.support.tenant_databases import query

STRONG_ROOT_PASSWORD = "Deploy-Root-Pass-2026!"


@pytest.fixture
def throwaway_database(tenant_databases):
    """An empty database on the test server (named with the suite's prefix, so conftest drops it even after
    a crash), and the DATABASE_URL that points at it."""
    name = f"{settings.DIQUIS_TENANT_DATABASE_PREFIX}deploy_seed"
    main_store().drop(name)
    main_store().create(name)
    params = connection.settings_dict
    url = f"postgres://{params['USER'] or 'postgres'}@{params['HOST'] or '127.0.0.1'}:{params['PORT'] or 5432}/{name}"
    yield name, url
    main_store().drop(name)


def root_users(database_name):
    return query(database_name, "SELECT email FROM tenants_user WHERE tenant_id = 'root'")


@pytest.mark.timeout(600)
def test_migrate_refuses_the_development_root_password_then_seeds_a_strong_one(throwaway_database):
    name, url = throwaway_database
    refused = manage("migrate", "--no-input", DATABASE_URL=url, DIQUIS_ROOT_PASSWORD=DEVELOPMENT_ROOT_PASSWORD)
    assert refused.returncode != 0
    assert "DIQUIS_ROOT_PASSWORD is the documented development default; choose another." in refused.stderr
    assert root_users(name) == []  # no root user with the public password

    seeded = manage("migrate", "--no-input", DATABASE_URL=url, DIQUIS_ROOT_PASSWORD=STRONG_ROOT_PASSWORD)
    assert seeded.returncode == 0, seeded.stderr
    assert root_users(name) == [(settings.DIQUIS_ROOT_EMAIL.lower(),)]


@pytest.mark.timeout(600)
def test_migrate_requires_root_credentials_when_debug_is_off(throwaway_database):
    _name, url = throwaway_database
    done = manage("migrate", "--no-input", DATABASE_URL=url, DIQUIS_ROOT_EMAIL=None, DIQUIS_ROOT_PASSWORD=None)
    assert done.returncode != 0
    assert "DIQUIS_ROOT_EMAIL and DIQUIS_ROOT_PASSWORD are required when DEBUG is false." in done.stderr
