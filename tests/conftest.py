"""Fixtures of the suite. Everything runs against the real PostgreSQL and Redis named in pytest.ini; every
test leaves no key, queue or database behind."""

import contextlib
import uuid

import django_rq
import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from tenants.auth import issue_tokens
from tenants.models import ROOT_TENANT_ID, Role, User
from tests import live
from tests.fault_injection import Fault

TEST_DB_PREFIX = settings.DIQUIS_TENANT_DATABASE_PREFIX
assert TEST_DB_PREFIX.startswith("test_"), "the suite drops databases by this prefix: it must be a test one"


def redis():
    return django_rq.get_connection("default")


def drop_test_tenant_databases():
    """Drop every database a test created for a tenant (templates too), by its test prefix (even after a
    failed test)."""
    from tenants import database_server

    if not connection.settings_dict["NAME"].startswith("test_"):
        return  # no test in this session uses the database: none was made, nor any tenant database
    for name in database_server.names_starting_with(TEST_DB_PREFIX):
        database_server.drop(name)


@pytest.fixture(autouse=True)
def _clean_redis():
    """No key survives a test: the suite owns the Redis database named in REDIS_URL."""
    yield
    with contextlib.suppress(Exception):
        redis().flushdb()


@pytest.fixture(autouse=True, scope="session")
def _clean_tenant_databases(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        drop_test_tenant_databases()
    yield
    with django_db_blocker.unblock():
        drop_test_tenant_databases()
        connection.close()
    with contextlib.suppress(Exception):
        redis().flushdb()


@pytest.fixture
def tenant_databases(db):
    """For tests that create isolated tenants: drops their databases afterwards."""
    yield
    drop_test_tenant_databases()


@pytest.fixture
def root_user(db):
    return User.objects.get(tenant_id=ROOT_TENANT_ID, email=settings.DIQUIS_ROOT_EMAIL.lower())


def make_root_user(email=None):
    return User.objects.create_user(
        email or f"root-{uuid.uuid4().hex[:8]}@diquis.test",
        "Another-Root-Pass-1!",
        tenant_id=ROOT_TENANT_ID,
        roles=[Role.ROOT],
    )


def client_for(user=None, *, tenant=None):
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_tokens(user)['token']}")
    if tenant is not None:
        client.defaults["HTTP_TENANT"] = tenant
    return client


@pytest.fixture
def api(db):
    return APIClient()


@pytest.fixture
def root_api(root_user):
    return client_for(root_user)


@pytest.fixture
def fault(tmp_path):
    """A `Fault` on a faults file in the test's tmp_path (pass `fault.path` as DIQUIS_FAULTS_FILE to a live
    worker); released after the test, so no step stays held."""
    fault = Fault(tmp_path)
    yield fault
    fault.release()


@pytest.fixture
def live_stack(transactional_db, tmp_path):
    """Daphne + one RQ worker, as separate processes, on the test database. Stopped after the test."""
    stack = live.LiveStack(tmp_path)
    try:
        yield stack
    finally:
        stack.stop()
        drop_test_tenant_databases()
