"""The database side of a tenant: ensure its database exists and is migrated, and drop it.

Shared tenants live in the main database: nothing to create, their rows are deleted on deprovisioning.
Isolated tenants get a database of their own (see tenants.databases for its name and connection).
Every function is idempotent: a retry after a crash at any point finishes the work.
"""

from django.core.management import call_command
from django.db import connections
from psycopg import sql

from .databases import alias_for, database_name_for, main_vendor, release_connection, sqlite_path_for
from .models import User


def _admin_execute(statement):
    """Run a statement that cannot run in a transaction (CREATE/DROP DATABASE) on the main server."""
    connection = connections["default"]
    connection.ensure_connection()
    raw = connection.connection
    previous = raw.autocommit
    raw.autocommit = True
    try:
        with raw.cursor() as cursor:
            cursor.execute(statement)
    finally:
        raw.autocommit = previous


def _database_exists(name):
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        return cursor.fetchone() is not None


def ensure_tenant_database(tenant):
    """Give an isolated tenant its database (no-op for shared tenants). Returns its name."""
    if not tenant.has_isolated_database:
        return None
    name = tenant.database_name or database_name_for(tenant.id)
    if main_vendor() == "postgresql" and not _database_exists(name):
        _admin_execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    if tenant.database_name != name:
        tenant.database_name = name
        tenant.save(update_fields=["database_name"])
    return name


def ensure_migrated(tenant):
    if not tenant.has_isolated_database:
        return
    alias = alias_for(tenant)
    try:
        call_command("migrate", database=alias, interactive=False, verbosity=0)
    finally:
        release_connection(alias)


def drop_tenant_data(tenant):
    """Remove everything of the tenant's: its database when isolated, its rows when shared."""
    if not tenant.has_isolated_database:
        User.objects.using("default").filter(tenant_id=tenant.id).delete()
        return
    name = tenant.database_name or database_name_for(tenant.id)
    alias = alias_for(tenant)
    release_connection(alias)
    connections.settings.pop(alias, None)
    if main_vendor() == "postgresql":
        _admin_execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    else:
        from pathlib import Path

        Path(sqlite_path_for(name)).unlink(missing_ok=True)
