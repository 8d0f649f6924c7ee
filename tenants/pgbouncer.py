"""PgBouncer in front of one database server: the product's own configuration for it (`write_config`; the command
`manage.py pgbouncer_config`), for tenant sessions only.

What goes through it. `DIQUIS_PGBOUNCER` (`name=host:port`, settings.py) names the servers that have one; the
sessions of tenant roles to their databases on such a server connect to it instead of PostgreSQL
(tenants.connections.attach: only an alias with a role, on PostgreSQL, gets the PgBouncer address). Everything
else connects to PostgreSQL directly, as attach leaves its address alone: the platform role's connections
(migrations, template builds, spares, moves: platform_alias_for, server aliases, temporary_connection) and the main
database (`default`), where the job locks are taken (jobs.locks; tenants.provisioning.stores.postgresql).

What transaction pooling forbids, and why Diquis is safe with it. A client's session is lent a server connection
for one transaction at a time, then another client gets it:

- Session state does not follow the client. Django sets the time zone when it connects (`SET TIME ZONE`, only if
  the server's TimeZone differs from its own) and nothing else on a tenant alias (no `assume_role`, no search
  path). PgBouncer tracks TimeZone, with client_encoding, DateStyle, standard_conforming_strings and
  application_name, per client, and sets it on whichever server connection runs the client's next transaction.
- Server-side cursors live across transactions: they are off for these aliases (DISABLE_SERVER_SIDE_CURSORS, set
  by attach with the address).
- Prepared statements belong to one server connection: Django's psycopg backend sets prepare_threshold None
  (never prepare) and binds parameters client-side unless OPTIONS say otherwise; they must not, for a server
  behind PgBouncer.
- Advisory locks and LISTEN outlive a transaction: the job locks are on the main database, never through
  PgBouncer; tenant data code takes neither.

Bounds, for a server with max_connections M and superuser_reserved_connections S (read from it when the file is
written). The platform keeps RESERVE = max(MIN_PLATFORM_RESERVE, M // 4) connections for itself (migrations,
template builds, spares, moves, and on `main` the main database's own), so PgBouncer's budget is B = M - S -
RESERVE (M = 100: 100 - 3 - 25 = 72). Each tenant database gets at most POOL_PER_DATABASE server connections
(default_pool_size = max_db_connections = min(5, B)): a hot tenant cannot take the server. PgBouncer 1.18 has no
cap on the sum over databases, so what bounds it is how they are opened: only for a client's transaction that
finds none idle in its database's pool. So at most as many are busy as transactions run at once (one per thread
of the web and worker processes, which must stay under B), and idle ones close after `server_idle_timeout`; a
long tail of tenants touched once costs each its connection for that long only. Client sessions cost PgBouncer a
file descriptor, not a server process: max_client_conn is generous (the processes' own pools bound them,
tenants.pools) and under the usual 1024 descriptors.

Authentication: `auth_type = scram-sha-256`, `auth_user` and `auth_query` (tenants.provisioning.pgbouncer_auth):
tenant roles' passwords are in no file, PgBouncer asks the server for the verifier. The auth file holds only the
lookup role's own password (PgBouncer logs in as it before any client has), mode 0600; the lookup role is also
the admin console's user (SHOW POOLS, SHOW CLIENTS), so no other secret is needed.

`ignore_startup_parameters` is empty: psycopg sends only what its connection string holds, and Django's settings
for tenant aliases put nothing there that PgBouncer does not track. A server whose DATABASE_URL carries
`options=-c ...` would be refused at login (PgBouncer cannot apply such settings to a shared connection; set
them on the role or database instead).
"""

import os
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from .connections import server_settings
from .provisioning.pgbouncer_auth import AUTH_QUERY, AUTH_ROLE, prepare_server
from .provisioning.stores import store_for
from .vault import tenant_role_password

MIN_PLATFORM_RESERVE = 10
POOL_PER_DATABASE = 5
MAX_CLIENT_CONNECTIONS = 500
DEFAULT_SERVER_IDLE_TIMEOUT = 30  # seconds
# Forget the bookkeeping of a tenant database's pool unused this long: no per-tenant state kept forever.
AUTODB_IDLE_TIMEOUT = 600
# What a client waits for a server connection before PgBouncer answers it with an error.
QUERY_WAIT_TIMEOUT = 10


@dataclass(frozen=True)
class BouncerFiles:
    """What write_config wrote into one directory, and how to use it."""

    directory: Path
    listen_host: str
    listen_port: int
    budget: int  # the server connections PgBouncer may take (the module's docstring)
    pool_size: int  # per tenant database
    missing_lookup: tuple = ()  # tenant databases whose lookup function only a superuser can install

    @property
    def ini(self):
        return self.directory / "pgbouncer.ini"

    @property
    def auth_file(self):
        return self.directory / "auth_file.txt"

    @property
    def pidfile(self):
        return self.directory / "pgbouncer.pid"

    @property
    def logfile(self):
        return self.directory / "pgbouncer.log"

    def command(self, executable="pgbouncer"):
        """In the foreground until SIGINT (the transactions finish first) or SIGTERM (at once)."""
        return [executable, str(self.ini)]

    def setting(self, server):
        """This PgBouncer's entry of DIQUIS_PGBOUNCER."""
        return f"{server}={self.listen_host}:{self.listen_port}"


def connection_budget(max_connections, superuser_reserved):
    """PgBouncer's share of a server's connections: what the superusers' and the platform's reserves leave."""
    reserve = max(MIN_PLATFORM_RESERVE, max_connections // 4)
    return max(max_connections - superuser_reserved - reserve, 1)


def server_limits(server):
    """max_connections and superuser_reserved_connections of the server."""
    with store_for(server).server_cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('max_connections')::int, current_setting('superuser_reserved_connections')::int"
        )
        return cursor.fetchone()


def render(files, *, server_host, server_port, server_idle_timeout):
    """The text of pgbouncer.ini (PgBouncer 1.18). No secret is in it."""
    return f"""\
;; PgBouncer for the tenant databases of one Diquis database server (tenants.pgbouncer). Generated: write it
;; again (manage.py pgbouncer_config) rather than editing it.
[databases]
;; Every database a client names goes to the same name on the server: new tenants need no new line.
* = host={server_host} port={server_port}

[pgbouncer]
listen_addr = {files.listen_host}
listen_port = {files.listen_port}
unix_socket_dir = {files.directory}
pidfile = {files.pidfile}
logfile = {files.logfile}
log_connections = 0
log_disconnections = 0

pool_mode = transaction
default_pool_size = {files.pool_size}
max_db_connections = {files.pool_size}
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = {MAX_CLIENT_CONNECTIONS}
server_idle_timeout = {server_idle_timeout}
autodb_idle_timeout = {AUTODB_IDLE_TIMEOUT}
query_wait_timeout = {QUERY_WAIT_TIMEOUT}
server_connect_timeout = {settings.DIQUIS_SERVER_CONNECT_TIMEOUT}
server_login_retry = 1
server_tls_sslmode = prefer

auth_type = scram-sha-256
auth_file = {files.auth_file}
auth_user = {AUTH_ROLE}
auth_query = {AUTH_QUERY}
admin_users = {AUTH_ROLE}
"""


def write_config(directory, *, server, listen_port, listen_host="127.0.0.1", server_idle_timeout=None):
    """Write pgbouncer.ini and its auth file (mode 0600) into `directory` for the PgBouncer of `server` (a name of
    the catalog, `main` included), after making the server ready for its lookups (pgbouncer_auth.prepare_server:
    idempotent). Returns the BouncerFiles."""
    config = server_settings(server)
    if not config["ENGINE"].endswith("postgresql"):
        raise ValueError("PgBouncer serves PostgreSQL servers; the main database is not one")
    missing = prepare_server(store_for(server), settings.DIQUIS_TENANT_DATABASE_PREFIX)
    budget = connection_budget(*server_limits(server))
    files = BouncerFiles(
        directory=Path(directory).resolve(),
        listen_host=listen_host,
        listen_port=int(listen_port),
        budget=budget,
        pool_size=min(POOL_PER_DATABASE, budget),
        missing_lookup=tuple(missing),
    )
    files.directory.mkdir(parents=True, exist_ok=True)
    idle = DEFAULT_SERVER_IDLE_TIMEOUT if server_idle_timeout is None else server_idle_timeout
    text = render(
        files, server_host=config["HOST"] or "localhost", server_port=config["PORT"] or 5432, server_idle_timeout=idle
    )
    files.ini.write_text(text)
    descriptor = os.open(files.auth_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as stream:
        os.fchmod(stream.fileno(), 0o600)  # a file there before keeps its own mode through O_CREAT
        stream.write(f'"{AUTH_ROLE}" "{admin_password()}"\n')
    return files


def admin_password():
    """The lookup role's password: PgBouncer's own login to the server, and the admin console's (SHOW POOLS)."""
    return tenant_role_password(AUTH_ROLE)
