"""Fixtures of the suite. Everything runs against the real PostgreSQL and Redis named in pytest.ini (the run's
own slot of them: tests/support/parallel_runs.py); every test leaves no key, queue or database behind."""

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from tenants.models import ROOT_TENANT_ID, Tenant, User
from tenants.pools import pool
from tenants.provisioning.steps import run_tenant_creation
from tests.support.fleet import drop_test_databases_on, register_cluster
from tests.support.postgres_clusters import ExtraPostgresServers, remove_leftover_clusters
from tests.support.redis_client import redis
from tests.support.tenant_databases import drop_test_tenant_databases, new_tenant
from tests.support.users import client_for


@pytest.fixture(autouse=True, scope="session")
def _redis_empty_at_start_and_end():
    """The run owns the Redis database named in REDIS_URL: what an earlier run left there (killed before its
    clean-up) must not meet the first test."""
    redis().flushdb()
    yield
    redis().flushdb()


@pytest.fixture(autouse=True)
def _clean_redis(_redis_empty_at_start_and_end):
    """No key survives a test. A Redis that cannot be flushed fails the test: its keys would meet the next."""
    yield
    redis().flushdb()


@pytest.fixture(autouse=True)
def _no_pooled_tenant_session_outlives_a_test():
    """The suite's process pools tenant sessions as any process does (tenants.pools); a test's databases are
    dropped after it, and the next test counts sessions of its own: none is kept from one test to the next."""
    yield
    pool.forget()


@pytest.fixture(autouse=True, scope="session")
def _clean_tenant_databases(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        drop_test_tenant_databases()
    yield
    with django_db_blocker.unblock():
        drop_test_tenant_databases()
        connection.close()


@pytest.fixture(scope="session")
def extra_postgres_servers():
    """Two private PostgreSQL servers beside the main one (tests/support/postgres_clusters.py): `logical` and
    `plain`. Started when the first test asks for them, removed at the end of the session, failed tests or not."""
    servers = ExtraPostgresServers.start()
    _extra_postgres_servers.append(servers)
    try:
        yield servers
    finally:
        _extra_postgres_servers.remove(servers)
        servers.remove()


_extra_postgres_servers = []  # the session's, once started


def pytest_sessionstart(session):
    """The private PostgreSQL servers a killed run left running stop now, not when the next one starts."""
    remove_leftover_clusters()


def pytest_runtest_setup(item):
    """A test that stopped an extra server and failed before starting it again must not fail the next ones:
    every test that asks for the servers finds them running."""
    if "extra_postgres_servers" in item.fixturenames:
        for servers in _extra_postgres_servers:
            for cluster in servers:
                cluster.start_again()


@pytest.fixture
def fleet_servers(extra_postgres_servers, tenant_databases):
    """The extra servers registered in the catalog as `pg-logical` and `pg-plain` (beside `main`), and cleaned
    of the test's tenant databases and templates afterwards."""
    registered = {
        "pg-logical": register_cluster(extra_postgres_servers.logical, "pg-logical"),
        "pg-plain": register_cluster(extra_postgres_servers.plain, "pg-plain"),
    }
    yield registered
    for cluster in extra_postgres_servers:
        drop_test_databases_on(cluster)


@pytest.fixture
def tenant_databases(db):
    """For tests that create isolated tenants: drops their databases afterwards."""
    yield
    drop_test_tenant_databases()


@pytest.fixture
def isolated(transactional_db, tenant_databases, root_user):
    """`isolated("a", "b")`: isolated tenants created (their jobs' body run here, on the main server); returns them."""

    def create(*tenant_ids):
        for tenant_id in tenant_ids:
            new_tenant(tenant_id)
            run_tenant_creation(tenant_id=tenant_id, initiated_by=str(root_user.pk))
        return [Tenant.objects.get(pk=tenant_id) for tenant_id in tenant_ids]

    return create


@pytest.fixture
def root_user(db):
    return User.objects.get(tenant_id=ROOT_TENANT_ID, email=settings.DIQUIS_ROOT_EMAIL.lower())


@pytest.fixture
def api(db):
    return APIClient()


@pytest.fixture
def root_api(root_user):
    return client_for(root_user)
