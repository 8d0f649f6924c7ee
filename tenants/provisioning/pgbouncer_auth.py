"""How tenant roles log in through a server's PgBouncer (tenants.pgbouncer) without their passwords written anywhere:
PgBouncer's `auth_query`, run as a lookup role of its own, through a SECURITY DEFINER function in each tenant
database.

Why it is laid out this way:

- PgBouncer 1.18 runs `auth_query` in the database the client asks for (`auth_dbname`, to run it elsewhere, came
  in 1.19), as `auth_user`. So the lookup must work in every tenant database, as a role that may connect to each.
- The lookup role (AUTH_ROLE) is nobody's superuser: a LOGIN role with a derived password (tenants.provisioning
  .logins), CONNECT on the tenant databases (granted with the tenant's own, tenants.provisioning.roles), USAGE on
  one schema and EXECUTE on one function there. It can read no table. Its password is the one secret PgBouncer
  keeps (its auth file, mode 0600): PgBouncer must log in as it before any client has.
- Reading a role's SCRAM verifier needs pg_authid, a superuser's right: the function belongs to a superuser and is
  SECURITY DEFINER with a fixed search_path. It answers only for the role named like the database it runs in
  (each tenant database's role is named after it, tenants.connections.tenant_role_name) and only if that role may
  log in and has not expired: even the lookup role learns, in a tenant's database, that tenant's verifier and no
  other, and no platform or superuser verifier at all.
- PgBouncer gets the verifier, never the password: with SCRAM it checks the client's proof, then logs in to
  PostgreSQL as the tenant's role with the keys the client's proof gave it (SCRAM pass-through).
- The function is put in each tenant database when its role is set (ensure_tenant_role: at creation, when a spare
  becomes the tenant's, after a move, after migrate_tenants), but only on servers that have the lookup role, i.e.
  that PgBouncer was set up for (`manage.py pgbouncer_config`, which also does every existing tenant database).
  Everything is idempotent; a lookup already installed by a superuser is left as it is.
- A server whose registered role is not a superuser cannot install the function itself; the platform still
  creates the lookup role (CREATEROLE) and grants CONNECT (it owns the databases). An operator runs LOOKUP_SQL
  once as a superuser in `template1` (new tenant databases inherit it through the server's template, which is
  created from template1) and in each tenant database that `pgbouncer_config` lists as missing it. Those
  databases answer through PgBouncer only once that is done; nothing else changes for them.
"""

import logging

from django.conf import settings
from psycopg import sql

from .logins import ensure_login

logger = logging.getLogger(__name__)

# Named with the tenant database prefix, as the tenant roles are: one installation's (or test run's) lookup role is
# not another's on a shared server, and whoever drops its tenants' roles by the prefix drops it too.
AUTH_ROLE = f"{settings.DIQUIS_TENANT_DATABASE_PREFIX}pgbouncer"
LOOKUP_SCHEMA = "diquis_pgbouncer"
AUTH_QUERY = f"SELECT usename, passwd FROM {LOOKUP_SCHEMA}.lookup($1)"

# Run as a superuser, in one tenant database (or template1). Dropped and made again, so that an old copy owned by
# someone else (pg_restore of a moved database makes the restoring role its owner) cannot stay.
LOOKUP_SQL = f"""\
BEGIN;
DROP SCHEMA IF EXISTS {LOOKUP_SCHEMA} CASCADE;
CREATE SCHEMA {LOOKUP_SCHEMA};
REVOKE ALL ON SCHEMA {LOOKUP_SCHEMA} FROM PUBLIC;
CREATE FUNCTION {LOOKUP_SCHEMA}.lookup(role_name text, OUT usename name, OUT passwd text) RETURNS SETOF record
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT rolname, rolpassword FROM pg_authid
    WHERE rolname = role_name AND rolname = current_database() AND rolcanlogin
      AND (rolvaliduntil IS NULL OR rolvaliduntil > now())
$$;
REVOKE ALL ON FUNCTION {LOOKUP_SCHEMA}.lookup(text) FROM PUBLIC;
GRANT USAGE ON SCHEMA {LOOKUP_SCHEMA} TO "{AUTH_ROLE}";
GRANT EXECUTE ON FUNCTION {LOOKUP_SCHEMA}.lookup(text) TO "{AUTH_ROLE}";
COMMIT;
"""


def has_auth_role(cursor):
    cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [AUTH_ROLE])
    return cursor.fetchone() is not None


def lookup_installed(cursor):
    """Is the lookup function in this database as LOOKUP_SQL leaves it: owned by a superuser (else it could not read
    pg_authid), the lookup role's to call, not PUBLIC's? A copy restored without privileges (a move's pg_restore
    --no-privileges) is not, and is made again."""
    # From the catalog, not to_regprocedure(): that needs USAGE on the schema, which only the lookup role has.
    cursor.execute(
        "SELECT r.rolsuper AND p.proacl IS NOT NULL AND NOT aclcontains(p.proacl, makeaclitem(0, p.proowner, "
        "'EXECUTE', false)) AND has_function_privilege(%s, p.oid, 'EXECUTE') "
        "AND has_schema_privilege(%s, n.oid, 'USAGE') "
        "FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_roles r ON r.oid = p.proowner "
        "WHERE n.nspname = %s AND p.proname = 'lookup'",
        [AUTH_ROLE, AUTH_ROLE, LOOKUP_SCHEMA],
    )
    row = cursor.fetchone()
    return bool(row and row[0])


def allow_auth_lookup(cursor, database_name):
    """Let PgBouncer's lookup role find this tenant database's role: CONNECT on the database, and the lookup
    function if it is missing (a superuser's connection installs it; any other only says so). `cursor` is the
    platform's, in autocommit, connected to the tenant database. Nothing happens on a server without PgBouncer.
    Returns whether the lookup works there."""
    if not has_auth_role(cursor):
        return False
    database_sql, role_sql = sql.Identifier(database_name), sql.Identifier(AUTH_ROLE)
    cursor.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(database_sql, role_sql))
    if lookup_installed(cursor):
        return True
    cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    if cursor.fetchone()[0]:
        cursor.execute(LOOKUP_SQL)
        return True
    logger.warning(
        "database %s has no PgBouncer lookup function and this server's role may not install it: "
        "run `manage.py pgbouncer_config --lookup-sql` there as a superuser",
        database_name,
    )
    return False


def tenant_databases(cursor, prefix):
    """The tenant databases of a server: named with the tenant prefix, each with a role of the same name (templates
    and spares have none), open to connections."""
    cursor.execute(
        "SELECT datname FROM pg_database d WHERE starts_with(datname, %s) AND datallowconn "
        "AND EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = d.datname) ORDER BY datname",
        [prefix],
    )
    return [row[0] for row in cursor.fetchall()]


def prepare_server(store, prefix):
    """Everything the server needs for PgBouncer's lookups: the lookup role (its password set again), and the
    lookup in every tenant database there is. Returns the databases still missing the function (a server whose
    role is not a superuser: see the module's docstring)."""
    with store.server_cursor() as cursor:
        ensure_login(cursor, AUTH_ROLE)
        databases = tenant_databases(cursor, prefix)
    missing = []
    for name in databases:
        with store.server_cursor(database=name) as cursor:
            if not allow_auth_lookup(cursor, name):
                missing.append(name)
    return missing
