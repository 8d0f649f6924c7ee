"""What is held on each server is shown: `manage.py tenant_connections` and /metrics name this process's pooled
tenant sessions and the server's max_connections (real PostgreSQL)."""

import io
import re

import pytest
from django.core.management import call_command

from tenants.connections import use_tenant
from tenants.models import Tenant, User
from tenants.pools import pool, session_name
from tenants.provisioning.steps import run_tenant_creation
from tests.support.tenant_databases import new_tenant

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def pooled_tenant(tenant_databases, root_user):
    """An isolated tenant whose session this process has just given back to its pool."""
    new_tenant("shown")
    run_tenant_creation(tenant_id="shown", initiated_by=str(root_user.pk))
    pool.forget()
    tenant = Tenant.objects.get(pk="shown")
    with use_tenant(tenant):
        assert User.objects.filter(tenant_id="shown").count() == 1
    return tenant


def test_tenant_connections_shows_each_process_s_sessions_against_max_connections(pooled_tenant):
    out = io.StringIO()
    call_command("tenant_connections", stdout=out)
    text = out.getvalue()
    summary = r"^main: \d+ of max_connections \d+ \(\d+ on tenant databases\); \d+ free for migrations and moves$"
    assert re.search(summary, text, re.M), text
    line = next(line for line in text.splitlines() if line.strip().startswith(session_name()))
    assert re.search(r"\b1 on tenant databases", line), line  # the pooled session of this process
    pool.forget()
    out = io.StringIO()
    call_command("tenant_connections", stdout=out)
    mine = [line for line in out.getvalue().splitlines() if line.strip().startswith(session_name())]
    assert all(re.search(r"\b0 on tenant databases", line) for line in mine), mine


def test_metrics_export_the_pool_and_the_server_s_sessions(pooled_tenant, settings, client):
    settings.METRICS_TOKEN = "a-long-random-metrics-token-for-tests"
    body = client.get("/metrics", headers={"Authorization": f"Bearer {settings.METRICS_TOKEN}"}).content.decode()
    assert 'diquis_tenant_pool_sessions{server="main",state="idle"} 1.0' in body
    assert re.search(r'diquis_database_server_sessions\{databases="tenant",server="main"\} [1-9]', body)
    assert re.search(r'diquis_database_server_max_connections\{server="main"\} \d+', body)
