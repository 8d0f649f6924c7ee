"""Helpers of the tenant-database tests: raw looks at the PostgreSQL server, bypassing Django's routing."""

import contextlib

import psycopg
from django.conf import settings
from django.db import connections
from django.db.migrations.loader import MigrationLoader

from tenants import database_server
from tenants.models import ProvisioningStatus, Tenant
from tenants.template_database import template_prefix
from tenants.vault import encrypt_password

ADMIN_PASSWORD = "Tenant-Admin-Pass-9!"


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
    return set(database_server.names_starting_with(settings.DIQUIS_TENANT_DATABASE_PREFIX))


def templates():
    return set(database_server.names_starting_with(template_prefix()))


def database_oid(name):
    return query(main_database(), "SELECT oid FROM pg_database WHERE datname = %s", [name])[0][0]


def applied_migrations(database_name):
    """(app, name, applied) of every migration recorded in a database, in order."""
    return query(database_name, "SELECT app, name, applied FROM django_migrations ORDER BY id")


def head_migrations():
    """Every migration of the current graph (the settings in force decide which modules)."""
    return set(MigrationLoader(None, ignore_no_migrations=True).graph.nodes)


def sessions_on(database_name, application_name=None):
    statement = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
    params = [database_name]
    if application_name:
        statement += " AND application_name = %s"
        params.append(application_name)
    return query(main_database(), statement, params)[0][0]


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
