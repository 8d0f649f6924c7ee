"""Security finding 1 of issue 18 (its second half): `migrate` seeded the root user with whatever
DIQUIS_ROOT_PASSWORD said, "password" included. Before: `migrate` with DIQUIS_ROOT_PASSWORD=password exited 0
and the root could sign in with it. Now, with DEBUG=false, Django's password validators refuse it."""

import pytest

from tests.support.production import manage
from tests.tenants.test_seed import STRONG_ROOT_PASSWORD, root_users, throwaway_database  # noqa: F401  (fixture)


@pytest.mark.timeout(600)
def test_migrate_refuses_a_weak_root_password_when_debug_is_off(throwaway_database):  # noqa: F811
    name, url = throwaway_database
    refused = manage("migrate", "--no-input", DATABASE_URL=url, DIQUIS_ROOT_PASSWORD="password")
    assert refused.returncode != 0
    assert "DIQUIS_ROOT_PASSWORD is too weak: This password is too common." in refused.stderr
    assert root_users(name) == []
    seeded = manage("migrate", "--no-input", DATABASE_URL=url, DIQUIS_ROOT_PASSWORD=STRONG_ROOT_PASSWORD)
    assert seeded.returncode == 0, seeded.stderr
