"""Least privilege: each isolated tenant's database on PostgreSQL is reached through a role of its own, which may
connect to that database only (DESIGN.md, "the fleet"). A routing mistake, or a bug that runs one tenant's query
on another's alias, then meets the server's "permission denied", not the other tenant's rows.

How it is laid out, and why:

- The role is named after the database (tenants.connections.tenant_role_name): the tenant database prefix is in
  it, so the suite finds and drops its own, and it is unique on its server as the database name is. Roles are
  cluster-wide; a database has exactly one.
- The platform (the server's own role) keeps owning the database and every object in it, and runs every
  migration; the tenant's role gets CONNECT on its database (PUBLIC loses it, and TEMPORARY) and only the DML it
  needs: SELECT, INSERT, UPDATE, DELETE on the tables of `public`, USAGE/SELECT/UPDATE on its sequences. Tables a
  later migration adds get the same through ALTER DEFAULT PRIVILEGES of the platform role in that database.
  `django_migrations` is only the role's to read (the grants are made again after every migration that ran).
  Making the tenant's role the owner instead would let it alter or drop its own schema, and would need every
  migration to SET ROLE to it; a role that can only read and write rows is the least that serves requests.
- The password is derived (tenants.vault.tenant_role_password), never stored: the server is given only its
  SCRAM-SHA-256 verifier, computed by libpq (tenants.provisioning.logins), so not even a statement in the server's
  log carries it. After a SECRET_KEY rotation `migrate_tenants` sets every role's new password (it calls
  ensure_tenant_role).
- A server with PgBouncer in front (tenants.pgbouncer) also lets PgBouncer's lookup role connect to the database
  and find this role's verifier there (tenants.provisioning.pgbouncer_auth): nothing else of it.
- No CONNECTION LIMIT: a tenant's sessions are already bounded by the web and worker processes (one per thread
  at most, none at rest, tenants.connections), and a limit would only turn a burst of its own requests into errors.
- Every function is idempotent: a retried job sets the same password and grants again. The platform role needs
  CREATEROLE on the server (as it needs CREATEDB). Nothing to do on SQLite.
- The role is dropped after its database (drop_tenant_role): its privileges lived in that database and on it,
  so DROP ROLE then succeeds; should the role hold anything elsewhere (granted by hand), what it owns or was
  granted in the maintenance database is dropped, and otherwise the error says where to look.
"""

import logging

from psycopg import errors, sql

from ..connections import tenant_role_name
from .logins import ensure_login
from .pgbouncer_auth import allow_auth_lookup
from .stores.postgresql import identifier

logger = logging.getLogger(__name__)

TABLE_PRIVILEGES = sql.SQL("SELECT, INSERT, UPDATE, DELETE")
SEQUENCE_PRIVILEGES = sql.SQL("USAGE, SELECT, UPDATE")


class RoleNotAllowed(Exception):
    """The server's own role may not create roles: the tenant's database cannot get a role of its own."""


def ensure_tenant_role(store, database_name):
    """Give `database_name` its own role (created, or its password set again) with CONNECT on that database only
    and DML on its tables, now and after later migrations. Returns the role's name (None on SQLite)."""
    if store.vendor != "postgresql":
        return None
    role = tenant_role_name(database_name)
    role_sql, database_sql = identifier(role), identifier(database_name)
    try:
        with store.server_cursor() as cursor:
            ensure_login(cursor, role)
            cursor.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(database_sql))
            cursor.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(database_sql, role_sql))
        with store.server_cursor(database=database_name) as cursor:
            _grant_data_privileges(cursor, role_sql)
            allow_auth_lookup(cursor, database_name)  # PgBouncer finds the role (if the server has one)
    except errors.InsufficientPrivilege as error:
        raise RoleNotAllowed(
            f"the role of database server {store.server} may not create the tenant's role (it needs CREATEROLE)"
        ) from error
    return role


def _grant_data_privileges(cursor, role_sql):
    """In the tenant's database, as the platform role (the owner of its objects and the runner of migrations)."""
    statements = (
        sql.SQL("GRANT USAGE ON SCHEMA public TO {role}"),
        sql.SQL("GRANT {tables} ON ALL TABLES IN SCHEMA public TO {role}"),
        sql.SQL("GRANT {sequences} ON ALL SEQUENCES IN SCHEMA public TO {role}"),
        sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT {tables} ON TABLES TO {role}"),
        sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT {sequences} ON SEQUENCES TO {role}"),
    )
    for statement in statements:
        cursor.execute(statement.format(role=role_sql, tables=TABLE_PRIVILEGES, sequences=SEQUENCE_PRIVILEGES))
    # What migrations were applied is the platform's record: a role that could edit it could make `migrate` skip one.
    cursor.execute("SELECT to_regclass('public.django_migrations') IS NOT NULL")
    if cursor.fetchone()[0]:
        cursor.execute(sql.SQL("REVOKE INSERT, UPDATE, DELETE ON django_migrations FROM {}").format(role_sql))


def drop_tenant_role(store, database_name):
    """Drop the role of `database_name`, once the database itself is gone; nothing happens if it is."""
    if store.vendor != "postgresql":
        return
    role_sql = identifier(tenant_role_name(database_name))
    with store.server_cursor() as cursor:
        try:
            cursor.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(role_sql))
            return
        except errors.DependentObjectsStillExist:
            logger.warning("the role of %s still holds objects or privileges; dropping them", database_name)
        cursor.execute(sql.SQL("DROP OWNED BY {}").format(role_sql))
        try:
            cursor.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(role_sql))
        except errors.DependentObjectsStillExist as error:
            raise RuntimeError(
                f"the role of {database_name} holds privileges in another database of server {store.server}: "
                "drop them there (DROP OWNED BY), then delete the tenant again"
            ) from error
