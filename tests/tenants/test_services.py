"""Fifty threads create the same tenant at once through the service: one is accepted, 49 conflict; one
tenant, one job (the same race through two Daphne processes: tests/e2e/test_reliability_concurrency.py)."""

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from jobs.models import Job
from tenants import services
from tenants.exceptions import Conflict
from tenants.models import Tenant
from tests.support.tenant_databases import ADMIN_PASSWORD
from tests.support.users import make_root_user

CLIENTS = 50


@pytest.mark.django_db(transaction=True)
def test_fifty_threads_on_the_service_accept_exactly_one():
    initiator = make_root_user().pk
    start = threading.Barrier(CLIENTS)

    def create(_):
        try:
            start.wait(timeout=60)
            services.create_tenant(
                tenant_id="race-service",
                name="Race",
                admin_email="admin@race-service.test",
                password=ADMIN_PASSWORD,
                has_isolated_database=False,
                initiated_by=initiator,
            )
            return "accepted"
        except Conflict as conflict:
            return conflict.message
        finally:
            connection.close()  # each thread's own connection

    with ThreadPoolExecutor(CLIENTS) as pool:
        outcomes = Counter(pool.map(create, range(CLIENTS)))
    assert outcomes == {"accepted": 1, "Tenant already exists": CLIENTS - 1}
    assert Tenant.objects.filter(pk="race-service").count() == 1
    assert Job.objects.filter(subject="tenant:race-service").count() == 1
