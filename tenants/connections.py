"""Where a tenant's data lives, and the connection to it.

A shared tenant uses the main database (`default`). An isolated tenant has a database of its own, known
to Django under the alias `tenant_<id>`, made in the thread that uses it with the settings of the server it is on
(`main`, the main database's own, or a DatabaseServer of the catalog) and its own name. The connection object is
discarded when the request or job that used it ends, and its session goes back to the process's pool of tenant
sessions (tenants.pools), bounded per server, so a process that has served many tenants holds no connection to
each: at most one session per tenant database per thread in use, and the pool's bound at rest.

Every connection to a server other than the main database's gives up after DIQUIS_SERVER_CONNECT_TIMEOUT
seconds: a server that is down costs its own tenants a quick 503, and nobody else anything. A connection of a
tenant or server alias that cannot be made raises TenantDatabaseUnavailable (naming the server), which the API
answers with 503 ["Tenant database unavailable"]: "the main database is down" stays the plain DatabaseError.

Least privilege: on PostgreSQL the tenant's data is reached as the tenant's own role (`alias_for`; the role may
connect to that one database only, tenants.provisioning.roles), so a routing mistake cannot read another
tenant's data. Migrations and management (template builds, migrate_tenants, moves) connect as the server's own
(platform) role: `platform_alias_for`, server aliases, `temporary_connection`.
"""

import contextlib
import copy
import hashlib
import logging
import time
from pathlib import Path

from django.conf import settings
from django.db import connections
from django.db.utils import ConnectionDoesNotExist, DatabaseErrorWrapper, OperationalError, load_backend
from django.utils.functional import cached_property
from psycopg import IsolationLevel

from . import pools
from .exceptions import TenantDatabaseUnavailable
from .models import MAIN_SERVER, DatabaseServer
from .routing import current_database, use_database
from .vault import decrypt_secret, tenant_role_password

logger = logging.getLogger(__name__)

ALIAS_PREFIX = "tenant_"
PLATFORM_ALIAS_PREFIX = "platform_"
# PostgreSQL truncates identifiers longer than this many bytes; two long ids must not end up as one name.
MAX_DATABASE_NAME_BYTES = 63

SERVER_ALIAS_PREFIX = "server_"
# How long a process trusts what it read of a server's row (its host, port, credentials) before reading it again.
SERVER_SETTINGS_TTL = 30.0

# A backend's DatabaseWrapper -> its subclass whose failed connects raise TenantDatabaseUnavailable.
_wrapper_classes: dict[type, type] = {}
# How long a process answers 503 at once for a server that has just failed to answer, before it tries it again.
SERVER_DOWN_SECONDS = 5.0
# Server name -> until when this process takes it for down (time.monotonic()).
_server_down_until: dict[str, float] = {}
# Server name -> (read at, Django settings of its maintenance database).
_server_settings: dict[str, tuple[float, dict]] = {}


class DatabaseNotAssigned(Exception):
    """An isolated tenant without a database yet: refusing beats reading the main database instead."""


def database_name_for(tenant_id):
    """A safe, unique database name for a tenant: the prefix and the id, shortened with a hash if too long."""
    name = f"{settings.DIQUIS_TENANT_DATABASE_PREFIX}{tenant_id}"
    if len(name.encode()) <= MAX_DATABASE_NAME_BYTES:
        return name
    digest = hashlib.sha256(tenant_id.encode()).hexdigest()[:10]
    return f"{name.encode()[: MAX_DATABASE_NAME_BYTES - 11].decode(errors='ignore')}_{digest}"


def sqlite_file(folder, database_name):
    """On the embedded SQLite default, the file of a database in `folder`."""
    return Path(folder) / f"{database_name}.sqlite3"


def tenant_role_name(database_name):
    """The name of the role of a tenant's database: the database's own name. It carries the tenant database
    prefix (tests find and drop theirs by it), is unique on its server as the database is, and fits PostgreSQL's
    63 bytes as the database name does."""
    return database_name


def alias_for(tenant):
    """The alias of the tenant's database, ready for use in this thread, connecting as the tenant's own role:
    for the tenant's data (requests, jobs)."""
    if not tenant.has_isolated_database:
        return "default"
    if not tenant.database_name:
        raise DatabaseNotAssigned(f"tenant {tenant.id} has no database yet")
    alias = alias_name(tenant.id)
    server = tenant.database_server_id or MAIN_SERVER
    attach(alias, tenant.database_name, server=server, role=tenant_role_name(tenant.database_name))
    return alias


def platform_alias_for(tenant):
    """The alias of the tenant's database as the server's own role: for migrations and management, which
    change the schema (the tenant's role may only read and write rows)."""
    if not tenant.database_name:
        raise DatabaseNotAssigned(f"tenant {tenant.id} has no database yet")
    alias = platform_alias_name(tenant.id)
    attach(alias, tenant.database_name, server=tenant.database_server_id or MAIN_SERVER)
    return alias


def alias_name(tenant_id):
    return f"{ALIAS_PREFIX}{tenant_id}"


def platform_alias_name(tenant_id):
    return f"{PLATFORM_ALIAS_PREFIX}{tenant_id}"


def server_settings(server_name):
    """Django settings for the maintenance database of a server: the main database's own for `main`, those
    of its DatabaseServer row (the password decrypted in this process only) for any other."""
    if server_name == MAIN_SERVER:
        config = copy.deepcopy(connections.settings["default"])
        config["OPTIONS"].pop("pool", None)  # a connection for one request or job, then closed
        return config
    cached = _server_settings.get(server_name)
    if cached is not None and time.monotonic() - cached[0] < SERVER_SETTINGS_TTL:
        return copy.deepcopy(cached[1])
    server = DatabaseServer.objects.using("default").get(pk=server_name)
    config = copy.deepcopy(connections.settings["default"])
    config["OPTIONS"].pop("pool", None)
    config["OPTIONS"]["connect_timeout"] = settings.DIQUIS_SERVER_CONNECT_TIMEOUT
    config.update(
        ENGINE="django.db.backends.postgresql",  # whatever the main database is: servers are PostgreSQL
        HOST=server.host,
        PORT=str(server.port),
        USER=server.user,
        PASSWORD=decrypt_secret(server.encrypted_password) if server.encrypted_password else "",
        NAME=server.maintenance_database,
        CONN_MAX_AGE=0,
    )
    _server_settings[server_name] = (time.monotonic(), config)
    return copy.deepcopy(config)


def forget_server(server_name):
    """Read the server's row again at its next use in this process (its settings have changed), and try it again
    at once even if it has just failed to answer."""
    _server_settings.pop(server_name, None)
    _server_down_until.pop(server_name, None)
    pools.pool.forget(server=server_name)


def note_server_reachable(server_name, reachable):
    """What a check of the server (tenants.servers.check_reachable) has just seen supersedes what this process
    remembered of it: answering, it is tried again at once; silent, it is refused at once for a while."""
    if reachable:
        _server_down_until.pop(server_name, None)
    else:
        _server_down_until[server_name] = time.monotonic() + SERVER_DOWN_SECONDS
        pools.pool.forget(server=server_name)


def server_alias(server_name):
    """The alias of a server's maintenance database (`default` for `main`): where its catalog is read."""
    if server_name == MAIN_SERVER:
        return "default"
    alias = f"{SERVER_ALIAS_PREFIX}{server_name}"
    connection = attach(alias, None, server=server_name)
    # This thread's connection to the server lives from one job to the next: one the server dropped meanwhile (a
    # restart) is replaced now, not left to fail the next statement.
    if connection.connection is not None and not connection.in_atomic_block and not connection.is_usable():
        connection.close()
    return alias


def attach(alias, database_name, *, server=MAIN_SERVER, role=None):
    """This thread's connection object for `alias`: `database_name` on `server` (or a file beside the main SQLite
    one), made on first use; a database name of None is the server's maintenance database. With a `role`, the
    alias connects as that role (its derived password) on PostgreSQL, rather than as the server's own user, and
    its sessions come from the process's pool of tenant sessions (tenants.pools); SQLite has no roles.

    Tenant aliases are not added to settings.DATABASES, nor kept anywhere here: Django would then keep and walk
    one per tenant ever served. A connection object is made in the thread that needs it, then closed and
    discarded at the end of the request or job (`release_connection`); its session goes back to the pool, or is
    closed. Django's test framework lets tests use such connections, as it does any made at run time.
    """
    with contextlib.suppress(ConnectionDoesNotExist):
        return connections[alias]
    config = server_settings(server)
    sqlite = config["ENGINE"].endswith("sqlite3")
    if database_name is not None:
        config["NAME"] = str(sqlite_file(settings.DIQUIS_TENANT_SQLITE_DIR, database_name)) if sqlite else database_name
    pooled = role is not None and not sqlite
    if not sqlite:
        config["OPTIONS"]["application_name"] = pools.session_name()
    if pooled:
        config.update(USER=role, PASSWORD=tenant_role_password(role))
        bouncer = settings.DIQUIS_PGBOUNCER.get(server)
        if bouncer is not None:  # tenant sessions through the server's PgBouncer (tenants.pgbouncer)
            config.update(HOST=bouncer[0], PORT=str(bouncer[1]), DISABLE_SERVER_SIDE_CURSORS=True)
    config["TEST"] = {**config.get("TEST", {}), "NAME": config["NAME"]}
    connection = _wrapper_class(config["ENGINE"])(config, alias)
    connection.diquis_server = server
    connection.diquis_pooled = pooled
    connections[alias] = connection
    return connection


def _wrapper_class(engine):
    """The backend's DatabaseWrapper, but a connection that cannot be made (the server down, unreachable, refusing
    the role) or that the server dropped raises TenantDatabaseUnavailable: the error is then the tenant's own,
    not "the main database is down"."""
    base = load_backend(engine).DatabaseWrapper
    if base not in _wrapper_classes:

        class TenantDatabaseWrapper(base):
            def ensure_connection(self):
                if self.connection is None:
                    _refuse_while_down(self)
                super().ensure_connection()
                _server_down_until.pop(self.diquis_server, None)

            def get_new_connection(self, conn_params):
                if not self.diquis_pooled:
                    return super().get_new_connection(conn_params)
                key = pools.key_of(self.diquis_server, conn_params)
                try:
                    session = pools.pool.take(key)
                except pools.ServerSilent:
                    _server_down_until[self.diquis_server] = time.monotonic() + SERVER_DOWN_SECONDS
                    raise TenantDatabaseUnavailable(server=self.diquis_server) from None
                if session is None:
                    session = super().get_new_connection(conn_params)
                    pools.pool.note_in_use(self.diquis_server, +1)
                else:
                    self.isolation_level = IsolationLevel.READ_COMMITTED  # what Django's own connect sets
                self.diquis_pool_key = key
                return session

            def _close(self):
                key = getattr(self, "diquis_pool_key", None)
                if key is None or self.connection is None:
                    return super()._close()
                session, self.connection, self.diquis_pool_key = self.connection, None, None
                pools.pool.give_back(key, session)

            @cached_property
            def wrap_database_errors(self):
                return _TenantDatabaseErrors(self)

        _wrapper_classes[base] = TenantDatabaseWrapper
    return _wrapper_classes[base]


class _TenantDatabaseErrors(DatabaseErrorWrapper):
    """Django's own translation of the driver's errors; then an OperationalError that left no usable connection
    (none was made, or the server ended it) becomes the tenant's unavailability."""

    def __exit__(self, exc_type, exc_value, traceback):
        try:
            super().__exit__(exc_type, exc_value, traceback)
        except OperationalError as error:
            connection = self.wrapper.connection
            if connection is None:
                raise _unavailable(self.wrapper, error, connecting=True) from error
            if getattr(connection, "broken", False) or getattr(connection, "closed", False):
                raise _unavailable(self.wrapper, error, connecting=False) from error
            raise


def _unavailable(wrapper, error, *, connecting):
    """Say that the tenant's database cannot be reached; when the server itself did not answer a connect (refused,
    timed out, no route: libpq reports no FATAL message of the server's), remember it for SERVER_DOWN_SECONDS.
    A refusal the server did send (a wrong password, a missing database, too many sessions) is about one database
    or role, not the server: its other tenants are still tried."""
    silent = connecting and "FATAL" not in str(error)
    if silent:
        _server_down_until[wrapper.diquis_server] = time.monotonic() + SERVER_DOWN_SECONDS
    # The kind of error only: libpq's text names the host and the user.
    cause = type(error.__cause__ or error).__name__
    what = "does not answer" if silent else "refused or lost the session"
    logger.warning("database server %s %s for %s (%s)", wrapper.diquis_server, what, wrapper.alias, cause)
    return TenantDatabaseUnavailable(server=wrapper.diquis_server)


def _refuse_while_down(wrapper):
    """A server this process has just seen down is not asked again at once: a host that hangs would cost each of
    its tenants' requests the connect timeout, holding a thread of the process (Django's ASGI handler runs each
    request's sync code on a thread of its own) for as long."""
    until = _server_down_until.get(wrapper.diquis_server)
    if until is not None and time.monotonic() < until:
        raise TenantDatabaseUnavailable(server=wrapper.diquis_server)


def forget_database(alias, database_name=None):
    """Close this thread's connection to `alias`, and the pooled sessions on `database_name` (it is about to go)."""
    release_connection(alias)
    if database_name is not None:
        pools.pool.forget(database=database_name)


def release_connection(alias):
    """Close this thread's connection to a tenant database, and discard the connection object."""
    if alias == "default":
        return
    try:
        connection = connections[alias]
    except ConnectionDoesNotExist:
        return
    connection.close()
    with contextlib.suppress(AttributeError):
        del connections[alias]


def release_pooled_sessions():
    """Give this thread's pooled sessions back to their pools (the main database's, tenants.pools') before work that
    needs none for a while: a password hash, ~100 ms of CPU. A burst of sign-ins held every session of the
    process's pool while hashing, so every other request waited for one (503 after the pool's wait). The next
    query takes a session again. A session inside a transaction stays; one not pooled stays (closing it would cost
    a new connection)."""
    for connection in connections.all(initialized_only=True):
        pooled = getattr(connection, "pool", None) is not None or getattr(connection, "diquis_pool_key", None)
        if pooled and connection.connection is not None and not connection.in_atomic_block:
            connection.close()


@contextlib.contextmanager
def use_tenant(tenant):
    """Route tenant-side models to this tenant's database for the duration of the block.

    The outermost block for a database closes the connection to it at the end; a nested block for the
    same tenant leaves it to the outer one (it may be inside a transaction on that connection).
    """
    alias = alias_for(tenant)
    if current_database.get() == alias:
        yield alias
        return
    try:
        with use_database(alias):
            yield alias
    finally:
        release_connection(alias)


@contextlib.contextmanager
def temporary_connection(database_name, *, server=MAIN_SERVER):
    """A Django alias on `database_name` of `server` for one piece of work (migrating a template), gone
    afterwards."""
    alias = f"scratch_{server}_{database_name}"
    attach(alias, database_name, server=server)
    try:
        yield alias
    finally:
        release_connection(alias)
