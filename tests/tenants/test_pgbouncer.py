"""PgBouncer in front of a database server (tenants.pgbouncer): real PgBouncer processes (tests/support/pgbouncer.py)
in front of the suite's private PostgreSQL servers. Tenant roles log in through it with auth_query (their
passwords in no file), a wrong password or another tenant's database is refused, an isolated tenant's users are
read and written through it (its admin console shows the tenant's pool), a stopped PgBouncer is the tenant's 503,
and migrations, platform connections and job locks never go through it.
"""

import os
import stat
import time

import psycopg
import pytest
from django.db import connections
from django.test import override_settings
from psycopg import sql
from rest_framework.test import APIClient

from jobs.locks import subject_lock
from tenants.connections import (
    SERVER_DOWN_SECONDS,
    alias_for,
    forget_server,
    platform_alias_for,
    release_connection,
    tenant_role_name,
    use_tenant,
)
from tenants.models import DatabaseServer, Tenant, User
from tenants.pgbouncer import connection_budget, write_config
from tenants.provisioning.databases import migrate_tenant_database
from tenants.provisioning.pgbouncer_auth import AUTH_ROLE, LOOKUP_SCHEMA, LOOKUP_SQL
from tenants.provisioning.steps import run_tenant_creation
from tenants.vault import tenant_role_password
from tests.support.fleet import drop_test_databases_on, register_cluster
from tests.support.pgbouncer import running_pgbouncer
from tests.support.postgres_clusters import CREATEDB_ROLE, SUPERUSER
from tests.support.tenant_databases import ADMIN_PASSWORD, new_tenant

pytestmark = pytest.mark.django_db(transaction=True)

SERVER = "pg-bounced"
UNAVAILABLE = ["Tenant database unavailable"]


@pytest.fixture
def server_role():
    """The role SERVER is registered with: its superuser, which installs the lookup function itself."""
    return SUPERUSER


@pytest.fixture
def bounced_server(extra_postgres_servers, tenant_databases, server_role):
    """The `plain` cluster registered as SERVER, and cleaned afterwards of the test's databases and of PgBouncer's
    lookup role."""
    cluster = extra_postgres_servers.plain
    register_cluster(cluster, SERVER, role=server_role)
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


@pytest.fixture
def bounced(bouncer):
    """DIQUIS_PGBOUNCER names SERVER's PgBouncer in this process for the test; the sessions this process pooled to
    it are closed afterwards."""
    try:
        with override_settings(DIQUIS_PGBOUNCER=bouncer.setting):
            yield bouncer
    finally:
        forget_server(SERVER)


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


def api_for(tenant_id, token=None):
    client = APIClient()
    client.defaults["HTTP_TENANT"] = tenant_id
    if token:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def sign_in(tenant_id):
    body = {"email": f"admin@{tenant_id}.test", "password": ADMIN_PASSWORD}
    return api_for(tenant_id).post("/api/tokens", body, format="json")


def assert_unavailable(response):
    assert response.status_code == 503, response.content
    assert response.json()["messages"] == UNAVAILABLE


def test_isolated_tenant_is_served_through_pgbouncer_and_503_when_it_is_stopped(bounced, tenants_on_server):
    alpha = tenants_on_server["alpha"]
    role = tenant_role_name(alpha.database_name)
    response = sign_in("alpha")
    assert response.status_code == 200, response.content
    client = api_for("alpha", response.json()["data"]["token"])
    body = {"email": "member@alpha.test", "password": "Member-Pass-9!x", "firstName": "M", "lastName": "X"}
    assert client.post("/api/users", {**body, "role": "basic"}, format="json").status_code == 201
    response = client.get("/api/users")
    assert response.status_code == 200
    assert sorted(user["email"] for user in response.json()["data"]) == ["admin@alpha.test", "member@alpha.test"]
    # PgBouncer served them: its pool of alpha's database and role ran the requests' transactions.
    pools_seen = {(pool["database"], pool["user"]) for pool in bounced.show("POOLS")}
    assert (alpha.database_name, role) in pools_seen
    stats = {row["database"]: row for row in bounced.show("STATS")}
    assert stats[alpha.database_name]["total_xact_count"] > 0
    # This process keeps its session to PgBouncer for alpha's next request (tenants.pools): the console sees it.
    assert any(c["database"] == alpha.database_name and c["user"] == role for c in bounced.show("CLIENTS"))
    with use_tenant(alpha):
        assert User.objects.filter(email="member@alpha.test").exists()

    bounced.stop()
    try:
        for path in ("/api/users/me", "/api/users"):
            assert_unavailable(client.get(path))
        assert_unavailable(sign_in("alpha"))
    finally:
        bounced.start_again()
    time.sleep(SERVER_DOWN_SECONDS)  # this process answers 503 at once for a while after seeing it down
    assert client.get("/api/users/me").status_code == 200


def test_transaction_pooling_keeps_each_client_s_time_zone(bouncer, tenants_on_server):
    """PgBouncer tracks TimeZone per client: a server connection that served one client's `SET TIME ZONE` serves
    the next client in that client's own zone (Django's own SET on connect is therefore safe)."""
    database = tenants_on_server["alpha"].database_name
    role = tenant_role_name(database)
    password = tenant_role_password(role)
    with (
        connect_through(bouncer, database, role, password) as tokyo,
        connect_through(bouncer, database, role, password) as other,
    ):
        default = other.execute("SHOW TimeZone").fetchone()[0]
        tokyo.execute("SET TIME ZONE 'Asia/Tokyo'")
        for _ in range(3):
            assert other.execute("SHOW TimeZone").fetchone()[0] == default
            assert tokyo.execute("SHOW TimeZone").fetchone()[0] == "Asia/Tokyo"
        servers = [row for row in bouncer.show("SERVERS") if (row["database"], row["user"]) == (database, role)]
        assert len(servers) == 1  # one server connection took turns between the two clients


def test_migrations_platform_connections_and_job_locks_do_not_go_through_pgbouncer(bounced, tenants_on_server):
    alpha = tenants_on_server["alpha"]
    cluster_port = str(bounced_cluster_port(alpha))
    tenant_alias, platform_alias = alias_for(alpha), platform_alias_for(alpha)
    try:
        assert connections[tenant_alias].settings_dict["PORT"] == str(bounced.port)
        assert connections[tenant_alias].settings_dict["DISABLE_SERVER_SIDE_CURSORS"] is True
        assert connections[platform_alias].settings_dict["PORT"] == cluster_port
        # A migration run now (pending or not, it reads django_migrations as the platform role) and the grants
        # made after it connect to the server itself.
        connections[platform_alias].ensure_connection()
        migrate_tenant_database(alpha)
    finally:
        release_connection(tenant_alias)
        release_connection(platform_alias)
    # Even with the main server named in DIQUIS_PGBOUNCER, a job lock is taken on the main database itself.
    with override_settings(DIQUIS_PGBOUNCER={**bounced.setting, "main": (bounced.files.listen_host, bounced.port)}):
        with subject_lock("tenant:alpha"):
            assert connections["default"].settings_dict["PORT"] != str(bounced.port)
            assert not [c for c in tenant_clients(bounced) if c["user"] != tenant_role_name(alpha.database_name)]
    # No pool of the platform's role (the server's superuser here): only alpha's, the lookups' and the console's.
    users = {row["user"] for row in bounced.show("POOLS")}
    assert SUPERUSER not in users
    assert users <= {tenant_role_name(alpha.database_name), AUTH_ROLE, "pgbouncer"}


def tenant_clients(bouncer):
    """Its clients but the admin console's own."""
    return [client for client in bouncer.show("CLIENTS") if client["database"] != "pgbouncer"]


def bounced_cluster_port(tenant):
    return DatabaseServer.objects.get(pk=tenant.database_server_id).port


@pytest.mark.parametrize("server_role", [CREATEDB_ROLE])
def test_a_server_whose_role_is_not_a_superuser_lists_what_the_operator_installs(
    server_role, bounced_server, tenants_on_server, tmp_path
):
    databases = sorted(tenant.database_name for tenant in tenants_on_server.values())
    files = write_config(tmp_path, server=SERVER, listen_port=6432)
    assert sorted(files.missing_lookup) == databases  # the platform may not make a SECURITY DEFINER of pg_authid
    with psycopg.connect(bounced_server.url, autocommit=True) as connection:
        assert connection.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [AUTH_ROLE]).fetchone()
    # What the operator does, as a superuser: LOOKUP_SQL in each database listed (and template1, for new ones).
    for database in databases:
        with psycopg.connect(bounced_server.url_as(SUPERUSER, database=database), autocommit=True) as connection:
            connection.execute(LOOKUP_SQL)
    assert write_config(tmp_path, server=SERVER, listen_port=6432).missing_lookup == ()
