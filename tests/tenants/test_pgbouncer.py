"""PgBouncer in front of a database server (tenants.pgbouncer): real PgBouncer processes (tests/support/pgbouncer.py)
in front of the suite's private PostgreSQL servers. Tenant roles log in through it with auth_query (their
passwords in no file), a wrong password or another tenant's database is refused, an isolated tenant's users are
read and written through it (its admin console shows the tenant's pool), a stopped PgBouncer is the tenant's 503,
and migrations, platform connections and job locks never go through it.
"""

import os
import stat

import psycopg
import pytest
from psycopg import sql

from tenants.connections import (
    forget_server,
    tenant_role_name,
)
from tenants.models import Tenant
from tenants.pgbouncer import connection_budget
from tenants.provisioning.pgbouncer_auth import AUTH_ROLE, LOOKUP_SCHEMA
from tenants.provisioning.steps import run_tenant_creation
from tenants.vault import tenant_role_password
from tests.support.fleet import drop_test_databases_on, register_cluster
from tests.support.pgbouncer import running_pgbouncer
from tests.support.postgres_clusters import SUPERUSER
from tests.support.tenant_databases import new_tenant

pytestmark = pytest.mark.django_db(transaction=True)

SERVER = "pg-bounced"
UNAVAILABLE = ["Tenant database unavailable"]


@pytest.fixture
def bounced_server(extra_postgres_servers, tenant_databases):
    """The `plain` cluster registered as SERVER with its superuser (which installs the lookup function itself), and
    cleaned afterwards of the test's databases and of PgBouncer's lookup role."""
    cluster = extra_postgres_servers.plain
    register_cluster(cluster, SERVER, role=SUPERUSER)
    try:
        yield cluster
    finally:
        forget_server(SERVER)
        drop_test_databases_on(cluster)
        with psycopg.connect(cluster.url, autocommit=True) as connection:
            if connection.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [AUTH_ROLE]).fetchone():
                connection.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(AUTH_ROLE)))
                connection.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(AUTH_ROLE)))


@pytest.fixture
def tenants_on_server(bounced_server, root_user):
    """Two isolated tenants, `alpha` and `beta`, made on SERVER as the API makes them."""
    for tenant_id in ("alpha", "beta"):
        new_tenant(tenant_id, database_server_id=SERVER)
        run_tenant_creation(tenant_id=tenant_id, initiated_by=str(root_user.pk))
    return {tenant.id: tenant for tenant in Tenant.objects.filter(database_server_id=SERVER)}


@pytest.fixture
def bouncer(tenants_on_server):
    with running_pgbouncer(SERVER) as running:
        yield running


def connect_through(bouncer, database, role, password):
    return psycopg.connect(
        host=bouncer.files.listen_host,
        port=bouncer.port,
        dbname=database,
        user=role,
        password=password,
        connect_timeout=5,
        autocommit=True,
    )


def test_generated_config_starts_pgbouncer_and_holds_no_tenant_password(bouncer, tenants_on_server):
    assert bouncer.running()  # it parsed the file and listens
    text = bouncer.files.ini.read_text()
    assert "pool_mode = transaction" in text and "* = host=" in text and "auth_query = " in text
    auth_file = bouncer.files.auth_file.read_text()
    assert stat.S_IMODE(os.stat(bouncer.files.auth_file).st_mode) == 0o600
    assert auth_file.count("\n") == 1 and f'"{AUTH_ROLE}"' in auth_file  # the lookup role only
    for tenant in tenants_on_server.values():
        password = tenant_role_password(tenant_role_name(tenant.database_name))
        for path in (path for path in bouncer.directory.iterdir() if path.is_file()):
            assert password not in path.read_text(errors="replace")


def test_tenant_role_logs_in_through_auth_query_wrong_password_and_other_database_refused(bouncer, tenants_on_server):
    alpha, beta = (tenants_on_server[name].database_name for name in ("alpha", "beta"))
    role = tenant_role_name(alpha)
    with connect_through(bouncer, alpha, role, tenant_role_password(role)) as connection:
        assert connection.execute("SELECT current_user, current_database()").fetchone() == (role, alpha)
        # Through PgBouncer, not straight to the server: its console sees this client.
        clients = bouncer.show("CLIENTS")
        assert any(client["user"] == role and client["database"] == alpha for client in clients)
    with pytest.raises(psycopg.OperationalError, match="authentication failed"):
        connect_through(bouncer, alpha, role, "not-the-password")
    # alpha's role, alpha's own password, beta's database: the lookup there answers for beta's role only.
    with pytest.raises(psycopg.OperationalError):
        connect_through(bouncer, beta, role, tenant_role_password(role))
    # The lookup role itself reads no tenant data.
    lookup = bouncer.files.auth_file.read_text().split('"')[3]
    with connect_through(bouncer, alpha, AUTH_ROLE, lookup) as connection:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            connection.execute("SELECT count(*) FROM tenants_user")
        # In alpha's database the lookup answers for alpha's role, and for nobody else.
        assert connection.execute(f"SELECT usename FROM {LOOKUP_SCHEMA}.lookup(%s)", [role]).fetchall() == [(role,)]
        assert connection.execute(f"SELECT * FROM {LOOKUP_SCHEMA}.lookup(%s)", [SUPERUSER]).fetchall() == []
        beta_role = tenant_role_name(beta)
        assert connection.execute(f"SELECT * FROM {LOOKUP_SCHEMA}.lookup(%s)", [beta_role]).fetchall() == []


def test_connection_budget_keeps_room_for_the_platform():
    assert connection_budget(100, 3) == 72
    assert connection_budget(20, 3) == 7
