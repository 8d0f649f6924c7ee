"""Fixtures of the suite. Everything runs against the real PostgreSQL and Redis named in pytest.ini; every
test leaves no key, queue or database behind."""

import contextlib

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from tenants.models import ROOT_TENANT_ID, User
from tests.support.redis_client import redis
from tests.support.tenant_databases import drop_test_tenant_databases
from tests.support.users import client_for


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


@pytest.fixture
def api(db):
    return APIClient()


@pytest.fixture
def root_api(root_user):
    return client_for(root_user)
