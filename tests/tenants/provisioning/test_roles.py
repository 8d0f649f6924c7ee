"""Least privilege (issue 13, DESIGN.md "the fleet"): an isolated tenant's database is reached through a role of its
own, which may connect to that database only and may read and write rows there, not change the schema. Real
servers: the main one (trust authentication: the privileges alone say no) and an extra cluster (SCRAM: the derived
password is checked too)."""

import logging

import psycopg
import pytest
from django.db import connections
from psycopg import errors, sql

from tenants.connections import (
    SERVER_ALIAS_PREFIX,
    database_name_for,
    forget_database,
    forget_server,
    platform_alias_for,
    release_connection,
    tenant_role_name,
    use_tenant,
)
from tenants.models import DatabaseServer, Tenant, User
from tenants.provisioning import roles
from tenants.provisioning.databases import CLAIMED, ensure_tenant_database, migrate_tenant_database
from tenants.provisioning.spares import refill
from tenants.provisioning.steps import run_tenant_creation, run_tenant_deletion
from tenants.provisioning.stores import SQLiteStore, main_store, store_for
from tenants.provisioning.template import ensure_template
from tenants.vault import encrypt_secret, tenant_role_password
from tests.support.fleet import roles_on
from tests.support.postgres_clusters import NO_CREATEDB_ROLE
from tests.support.tenant_databases import TEST_DB_PREFIX as PREFIX
from tests.support.tenant_databases import main_database, new_tenant, query

pytestmark = pytest.mark.django_db(transaction=True)

# The server's refusal of a session on a database the role has no CONNECT on (libpq reports it at connect time
# as an OperationalError carrying the server's FATAL message, not as an SQLSTATE-typed error).
NO_CONNECT = "permission denied for database .*\n.*User does not have CONNECT privilege"


def server_alias_name(name):
    return f"{SERVER_ALIAS_PREFIX}{name}"


def created(tenant_id, **fields):
    new_tenant(tenant_id, **fields)
    run_tenant_creation(tenant_id=tenant_id, initiated_by=None)
    return Tenant.objects.get(pk=tenant_id)


def main_params():
    params = connections["default"].get_connection_params()
    return {key: params[key] for key in ("host", "port") if key in params}


def connect_as(role, database, *, password=None, host=None, port=None):
    """A session as `role` on `database` (the main server's unless host/port say otherwise)."""
    where = {"host": host, "port": port} if host else main_params()
    password = tenant_role_password(role) if password is None else password
    return psycopg.connect(**where, user=role, password=password, dbname=database, autocommit=True, connect_timeout=5)


@pytest.fixture
def two(tenant_databases):
    return created("alpha"), created("beta")


def test_a_tenant_s_role_connects_to_its_own_database_only(two):
    alpha, beta = two
    role = tenant_role_name(alpha.database_name)
    assert role.startswith(alpha.database_name) and role != tenant_role_name(beta.database_name)
    with connect_as(role, alpha.database_name) as session:
        assert session.execute("SELECT current_user").fetchone()[0] == role
        assert session.execute("SELECT count(*) FROM tenants_user").fetchone()[0] == 1
    with pytest.raises(psycopg.OperationalError, match=NO_CONNECT):
        connect_as(role, beta.database_name)
    with pytest.raises(psycopg.OperationalError, match=NO_CONNECT):
        connect_as(tenant_role_name(beta.database_name), alpha.database_name)


def test_the_catalog_s_tables_are_closed_to_a_tenant_s_role(two):
    """A database whose CONNECT is PUBLIC's (PostgreSQL's default, e.g. a server's maintenance database) lets the
    role open a session, but no table there is its to read."""
    alpha, _ = two
    with connect_as(tenant_role_name(alpha.database_name), main_database()) as session:
        with pytest.raises(errors.InsufficientPrivilege):
            session.execute("SELECT count(*) FROM tenants_tenant")


def test_requests_run_as_the_tenant_s_role_and_migrations_as_the_platform_s(two):
    alpha, _ = two
    with use_tenant(alpha) as alias, connections[alias].cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0] == tenant_role_name(alpha.database_name)
        assert User.objects.filter(email="admin@alpha.test").exists()
    alias = platform_alias_for(alpha)
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT current_user")
            assert cursor.fetchone()[0] == connections["default"].get_connection_params()["user"]
    finally:
        release_connection(alias)


def test_the_role_reads_and_writes_rows_but_cannot_change_the_schema(two):
    alpha, _ = two
    with connect_as(tenant_role_name(alpha.database_name), alpha.database_name) as session:
        session.execute("UPDATE tenants_user SET first_name = 'Changed'")
        with pytest.raises(errors.InsufficientPrivilege):
            session.execute("CREATE TABLE intruder (id int)")
        with pytest.raises(errors.InsufficientPrivilege):
            session.execute("DROP TABLE tenants_user")
        with pytest.raises(errors.InsufficientPrivilege):
            session.execute("ALTER TABLE tenants_user ADD COLUMN extra int")


def test_tables_a_later_migration_adds_are_the_role_s_to_use(two):
    """A migration runs as the platform role after the role was made: the default privileges cover its tables
    and their sequences."""
    alpha, _ = two
    alias = platform_alias_for(alpha)
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("CREATE TABLE later_rows (id bigserial PRIMARY KEY, label text)")
    finally:
        release_connection(alias)
    with use_tenant(alpha) as alias, connections[alias].cursor() as cursor:
        cursor.execute("INSERT INTO later_rows (label) VALUES ('written by the tenant') RETURNING id")
        assert cursor.fetchone()[0] == 1
        cursor.execute("SELECT label FROM later_rows")
        assert cursor.fetchall() == [("written by the tenant",)]


def test_deletion_drops_the_role_with_the_database(two):
    alpha, beta = two
    role = tenant_role_name(alpha.database_name)
    Tenant.objects.filter(pk="alpha").update(status="Deleting")
    run_tenant_deletion(tenant_id="alpha", initiated_by=None)
    assert query(main_database(), "SELECT 1 FROM pg_roles WHERE rolname = %s", [role]) == []
    roles.drop_tenant_role(main_store(), alpha.database_name)  # nothing left to drop: nothing happens
    with connect_as(tenant_role_name(beta.database_name), beta.database_name):
        pass


def test_a_spare_renamed_to_a_tenant_gets_the_tenant_s_role(settings, tenant_databases):
    settings.DIQUIS_SPARE_TENANT_DATABASES = 1
    store = main_store()
    refill(store, ensure_template(store))
    tenant = new_tenant("spared")
    assert ensure_tenant_database(tenant) == CLAIMED
    with connect_as(tenant_role_name(tenant.database_name), tenant.database_name) as session:
        assert session.execute("SELECT current_user").fetchone()[0] == tenant_role_name(tenant.database_name)


def test_ensuring_again_is_harmless(two):
    alpha, _ = two
    for _ in range(2):
        assert roles.ensure_tenant_role(main_store(), alpha.database_name) == tenant_role_name(alpha.database_name)
    with connect_as(tenant_role_name(alpha.database_name), alpha.database_name):
        pass


def test_nothing_to_do_on_sqlite(tmp_path):
    store = SQLiteStore(tmp_path)
    store.create("somewhere")
    assert roles.ensure_tenant_role(store, "somewhere") is None
    roles.drop_tenant_role(store, "somewhere")


@pytest.fixture
def far(fleet_servers, extra_postgres_servers):
    cluster = extra_postgres_servers.plain
    tenants = created("far-a", database_server_id="pg-plain"), created("far-b", database_server_id="pg-plain")
    return cluster, tenants


def test_on_another_server_the_role_needs_its_derived_password_and_reaches_its_database_only(far, caplog):
    cluster, (a, b) = far
    role = tenant_role_name(a.database_name)
    where = {"host": cluster.host, "port": cluster.port}
    with connect_as(role, a.database_name, **where) as session:
        assert session.execute("SELECT count(*) FROM tenants_user").fetchone()[0] == 1
    with pytest.raises(psycopg.OperationalError, match=NO_CONNECT):
        connect_as(role, b.database_name, **where)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect_as(role, a.database_name, password="not-" + tenant_role_password(role), **where)
    with psycopg.connect(cluster.url, autocommit=True) as superuser:
        stored = superuser.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", [role]).fetchone()[0]
    assert stored.startswith("SCRAM-SHA-256$") and tenant_role_password(role) not in stored
    with use_tenant(a) as alias, connections[alias].cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0] == role
    assert {a.database_name, b.database_name} <= set(roles_on(cluster))


def test_after_a_secret_key_rotation_ensuring_the_role_again_gives_it_the_new_password(far, settings):
    cluster, (a, _) = far
    role = tenant_role_name(a.database_name)
    where = {"host": cluster.host, "port": cluster.port}
    old = tenant_role_password(role)
    settings.SECRET_KEY = "another-secret-key-of-the-suite-after-a-rotation-0123456789"
    new = tenant_role_password(role)
    assert new != old
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect_as(role, a.database_name, password=new, **where)
    roles.ensure_tenant_role(store_for("pg-plain"), a.database_name)  # what migrate_tenants does for each tenant
    with connect_as(role, a.database_name, password=new, **where):
        pass


def test_the_role_s_password_is_in_no_log(fleet_servers, caplog):
    caplog.set_level(logging.DEBUG)
    tenant = created("logged", database_server_id="pg-plain")
    with use_tenant(tenant):
        User.objects.filter(tenant_id="logged").exists()
    assert tenant_role_password(tenant_role_name(tenant.database_name)) not in caplog.text


@pytest.fixture
def limited_server(fleet_servers, extra_postgres_servers):
    """pg-logical as its role without CREATEDB or CREATEROLE sees it, with a database that role owns."""
    cluster = extra_postgres_servers.logical
    database = f"{PREFIX}limited_probe"
    DatabaseServer.objects.filter(pk="pg-logical").update(
        user=NO_CREATEDB_ROLE, encrypted_password=encrypt_secret(cluster.passwords[NO_CREATEDB_ROLE])
    )

    def forget():  # this process's cached settings of the server, and its connection to it
        forget_server("pg-logical")
        forget_database(server_alias_name("pg-logical"))

    forget()
    with psycopg.connect(cluster.url, autocommit=True) as superuser:
        superuser.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(*map(sql.Identifier, (database, NO_CREATEDB_ROLE)))
        )
    yield database
    forget()


def test_a_server_whose_role_may_not_create_roles_fails_clearly(limited_server):
    with pytest.raises(roles.RoleNotAllowed, match="database server pg-logical may not .* CREATEROLE"):
        roles.ensure_tenant_role(store_for("pg-logical"), limited_server)


def test_the_role_reads_the_record_of_migrations_but_cannot_edit_it(two):
    """Whether the database was cloned (at the head, the role made after) or created empty and migrated after the
    role was made: the platform's record of what is applied stays the platform's."""
    alpha, _ = two
    empty = new_tenant("empty")
    name = database_name_for("empty")
    main_store().create(name)
    roles.ensure_tenant_role(main_store(), name)
    Tenant.objects.filter(pk="empty").update(database_name=name, database_server_id="main")
    empty.refresh_from_db()
    assert migrate_tenant_database(empty) is True
    for tenant in (alpha, empty):
        with connect_as(tenant_role_name(tenant.database_name), tenant.database_name) as session:
            assert session.execute("SELECT count(*) FROM django_migrations").fetchone()[0] > 0
            assert session.execute("SELECT count(*) FROM tenants_user").fetchone()[0] >= 0
            for statement in ("DELETE FROM django_migrations", "UPDATE django_migrations SET name = 'x'"):
                with pytest.raises(errors.InsufficientPrivilege):
                    session.execute(statement)
