"""Helpers of the tenant-database tests: raw looks at the PostgreSQL server, bypassing Django's routing."""

import contextlib
from pathlib import Path

import psycopg
from django.conf import settings
from django.db import connection, connections
from django.db.migrations.loader import MigrationLoader
from django.db.models.signals import pre_migrate
from psycopg import sql

from tenants.models import ProvisioningStatus, Tenant
from tenants.provisioning.databases import ensure_migrated, ensure_tenant_database
from tenants.provisioning.stores import main_store
from tenants.provisioning.template import template_prefix
from tenants.vault import encrypt_password

ADMIN_PASSWORD = "Tenant-Admin-Pass-9!"
TEST_DB_PREFIX = settings.DIQUIS_TENANT_DATABASE_PREFIX
assert TEST_DB_PREFIX.startswith("test_"), "the suite drops databases by this prefix: it must be a test one"

# The tenants app's migrations plus one more (tests.support.tenant_migrations_next), for MIGRATION_MODULES.
NEXT_RELEASE = {"tenants": "tests.support.tenant_migrations_next"}
NEXT_RELEASE_DIR = Path(__file__).parent / "tenant_migrations_next"


def drop_test_tenant_databases():
    """Drop every database a test created for a tenant (templates too), by its test prefix (even after a
    failed test)."""
    if not connection.settings_dict["NAME"].startswith("test_"):
        return  # no test in this session uses the database: none was made, nor any tenant database
    store = main_store()
    for name in store.list(TEST_DB_PREFIX):
        store.drop(name)
    if connection.vendor == "postgresql":
        with raw_cursor(main_database()) as cursor:
            drop_test_roles(cursor)


def tenant_roles(cursor):
    """The tenant roles (tenants.provisioning.roles) the tests made on the server of `cursor`, by the test prefix:
    roles are cluster-wide, and outlive the databases they were for."""
    cursor.execute("SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s) ORDER BY rolname", [TEST_DB_PREFIX])
    return [row[0] for row in cursor.fetchall()]


def drop_test_roles(cursor):
    """Drop every tenant role of this run on the server of `cursor` (after its databases: a role's privileges
    are in and on them)."""
    for role in tenant_roles(cursor):
        cursor.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@contextlib.contextmanager
def raw_cursor(database_name):
    """A cursor on one database of the test server, on a connection of its own (closed after)."""
    params = {**connections["default"].get_connection_params(), "dbname": database_name}
    with psycopg.connect(**params, autocommit=True) as connection, connection.cursor() as cursor:
        yield cursor


def query(database_name, statement, params=()):
    with raw_cursor(database_name) as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall()


def main_database():
    return connections["default"].settings_dict["NAME"]


def prefixed_databases():
    """Every database the tests made (tenants and templates), by the test prefix."""
    return set(main_store().list(settings.DIQUIS_TENANT_DATABASE_PREFIX))


def templates():
    return set(main_store().list(template_prefix()))


def database_oid(name):
    return query(main_database(), "SELECT oid FROM pg_database WHERE datname = %s", [name])[0][0]


def applied_migrations(database_name):
    """(app, name, applied) of every migration recorded in a database, in order."""
    return query(database_name, "SELECT app, name, applied FROM django_migrations ORDER BY id")


def head_migrations():
    """Every migration of the current graph (the settings in force decide which modules)."""
    return set(MigrationLoader(None, ignore_no_migrations=True).graph.nodes)


def isolated_database(tenant):
    """ensure_tenant_database(tenant), and the name of the database it ensured."""
    ensure_tenant_database(tenant)
    return tenant.database_name


def migrate_runs_on(tenant, *, created=None):
    """The databases `migrate` ran on during ensure_migrated(tenant, created=created)."""
    ran = []

    def record(using, **kwargs):
        ran.append(connections[using].settings_dict["NAME"])

    pre_migrate.connect(record, dispatch_uid="migrate-runs-on")
    try:
        ensure_migrated(tenant, created=created)
    finally:
        pre_migrate.disconnect(dispatch_uid="migrate-runs-on")
    return set(ran)


def sessions_on(database_name, application_name=None):
    statement = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
    params = [database_name]
    if application_name:
        statement += " AND application_name = %s"
        params.append(application_name)
    return query(main_database(), statement, params)[0][0]


def terminate_sessions(application_name):
    """pg_terminate_backend every session of `application_name` (the server's, whoever runs it: give the
    processes a name of the test's own). Returns how many were terminated."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
            [application_name],
        )
        return cursor.fetchone()[0]


def new_tenant(tenant_id, *, isolated=True, **fields):
    """A tenant as POST /api/tenants leaves it: Pending, its admin's password encrypted."""
    return Tenant.objects.create(
        id=tenant_id,
        name=f"{tenant_id.title()} Academy",
        admin_email=f"admin@{tenant_id}.test",
        has_isolated_database=isolated,
        status=ProvisioningStatus.PENDING,
        encrypted_admin_password=encrypt_password(ADMIN_PASSWORD),
        **fields,
    )
