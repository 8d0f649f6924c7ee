"""A login role with a password derived from SECRET_KEY (tenants.vault.tenant_role_password), created or its
password set again: the one way the platform makes the roles it logs in as (each tenant database's own,
tenants.provisioning.roles; PgBouncer's lookup role, tenants.provisioning.pgbouncer_auth).

The server is given only the SCRAM-SHA-256 verifier, computed here by libpq, so not even a statement in the
server's log carries the password.
"""

from psycopg import errors, sql

from ..vault import tenant_role_password


def ensure_login(cursor, role):
    """CREATE ROLE ... LOGIN NOINHERIT, or ALTER ROLE ... PASSWORD if it exists: idempotent, and safe against a
    concurrent attempt."""
    role_sql = sql.Identifier(role)
    verifier = cursor.connection.pgconn.encrypt_password(
        tenant_role_password(role).encode(), role.encode(), b"scram-sha-256"
    )
    password = sql.Literal(verifier.decode())
    cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
    if cursor.fetchone() is None:
        try:
            cursor.execute(sql.SQL("CREATE ROLE {} LOGIN NOINHERIT PASSWORD {}").format(role_sql, password))
            return
        except errors.DuplicateObject:
            pass  # a concurrent attempt made it a moment ago: set the password below all the same
    cursor.execute(sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(role_sql, password))
