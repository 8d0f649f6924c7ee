"""What a root admin does to the database servers of the catalog (API.md, "Database servers"): register one,
change its weight or status, remove it; and the servers DIQUIS_DATABASE_SERVERS names, which `migrate` applies.

A registration checks the server for real before the row is written: it answers within the connect timeout,
takes the credentials, and lets the role create databases (what the platform does there). Each failure is
refused naming what failed. Neither the URL nor its password is ever part of a message or a log line: errors
name what is wrong, never what was given. The URL is parsed strictly into its parts, which reach libpq as
separate parameters (never as a connection string, never in SQL), and the password is stored encrypted.
"""

import ipaddress
import logging
import re
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

import psycopg
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from .connections import forget_server
from .exceptions import Refused, ServerExists, ServerInUse, TenantDatabaseUnavailable
from .models import MAIN_SERVER, DatabaseServer, ServerStatus
from .provisioning.stores import store_for
from .provisioning.template import template_prefix
from .selectors import move_cleanups_on_server, tenants_on_server
from .validators import TENANT_ID_MAX_LENGTH, TENANT_ID_REGEX
from .vault import decrypt_secret, encrypt_secret

logger = logging.getLogger(__name__)

# A server's name is a slug like a tenant's id (it shows in aliases and URLs), `main` aside.
SERVER_NAME_REGEX = TENANT_ID_REGEX
SERVER_NAME_PATTERN = re.compile(SERVER_NAME_REGEX, re.ASCII)
SERVER_NAME_MAX_LENGTH = TENANT_ID_MAX_LENGTH
URL_SCHEMES = frozenset({"postgres", "postgresql"})
# Written without a literal "postgres://": no answer may hold anything that looks like a connection string.
URL_SHAPE = "postgres[ql]://user:password@host:port/database"
URL_MAX_LENGTH = 2048
DEFAULT_PORT = 5432
DEFAULT_MAINTENANCE_DATABASE = "postgres"
# What this platform accepts as a role or a maintenance database name: PostgreSQL allows more, quoted, but a
# server registered here has ordinary names, and anything else in a URL is more likely a mistake or an attack.
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$-]{0,62}", re.ASCII)
HOST_NAME = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*", re.ASCII
)
WEIGHT_MAX = 1_000_000

UNREACHABLE = "Database server unreachable: no answer from its host and port within {} seconds"
AUTHENTICATION_FAILED = "Database server refused authentication: wrong user or password"
NO_MAINTENANCE_DATABASE = "Database server has no such maintenance database"
CONNECTION_REFUSED = "Database server refused the connection"
NO_CREATEDB = "The role may not create databases on this server (it needs CREATEDB, or to be a superuser)"
NO_CREATEROLE = (
    "The role may not create roles on this server (it needs CREATEROLE, or to be a superuser): each tenant's "
    "database gets a role of its own"
)
BAD_URL = f"The URL must be {URL_SHAPE}"


class ServerAddress(NamedTuple):
    """Where a server is and how to sign in to it: a URL's parts, checked. Its repr leaves the password out."""

    host: str
    port: int
    maintenance_database: str
    user: str
    password: str

    def __repr__(self):
        return f"ServerAddress(host={self.host!r}, port={self.port}, user={self.user!r}, password=...)"

    def connection_parameters(self):
        return {
            "host": self.host,
            "port": self.port,
            "dbname": self.maintenance_database,
            "user": self.user,
            "password": self.password,
            "connect_timeout": settings.DIQUIS_SERVER_CONNECT_TIMEOUT,
        }


def validate_server_name(name):
    if not isinstance(name, str) or not name:
        raise Refused("A name is required", field="name")
    if len(name) > SERVER_NAME_MAX_LENGTH:
        raise Refused(f"The name must be at most {SERVER_NAME_MAX_LENGTH} characters", field="name")
    if not SERVER_NAME_PATTERN.fullmatch(name):
        raise Refused(
            "The name may contain only lowercase letters a-z, digits and single hyphens between them", field="name"
        )
    if name == MAIN_SERVER:
        raise Refused(f"'{MAIN_SERVER}' is the main database's own server", field="name")


def validate_weight(weight):
    if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= WEIGHT_MAX:
        raise Refused(f"The weight must be a whole number from 0 to {WEIGHT_MAX}", field="weight")


def parse_server_url(url):
    """The ServerAddress of a `postgres://user:password@host:port/database` URL; Refused (naming the part that
    is wrong, never quoting it) for anything else: another scheme, no host, a bad port, options, junk."""
    if not isinstance(url, str) or not url or len(url) > URL_MAX_LENGTH:
        raise Refused(BAD_URL, field="url")
    if any(ord(character) <= 32 or ord(character) == 127 for character in url):
        raise Refused(f"{BAD_URL}, without spaces or control characters", field="url")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise Refused(f"{BAD_URL}: the port must be a number from 1 to 65535", field="url") from error
    if parts.scheme not in URL_SCHEMES:
        raise Refused(f"{BAD_URL}: the scheme must be postgres:// or postgresql://", field="url")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise Refused(f"{BAD_URL}: options (?...) and fragments (#...) are not taken", field="url")
    host = _host_of(parts)
    if port == 0:
        raise Refused(f"{BAD_URL}: the port must be a number from 1 to 65535", field="url")
    user = unquote(parts.username or "")
    if not IDENTIFIER.fullmatch(user):
        raise Refused(f"{BAD_URL}: the user is required, letters, digits, _ $ and - only", field="url")
    password = unquote(parts.password or "")
    if "\x00" in password:
        raise Refused(f"{BAD_URL}: the password may not contain a NUL character", field="url")
    database = unquote(parts.path[1:]) if parts.path.startswith("/") else unquote(parts.path)
    database = database or DEFAULT_MAINTENANCE_DATABASE
    if not IDENTIFIER.fullmatch(database):
        raise Refused(f"{BAD_URL}: the database name may have letters, digits, _ $ and - only", field="url")
    return ServerAddress(host, port or DEFAULT_PORT, database, user, password)


def _host_of(parts):
    host = parts.hostname or ""
    if not host:
        raise Refused(f"{BAD_URL}: the host is required", field="url")
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    if not HOST_NAME.fullmatch(host):
        raise Refused(f"{BAD_URL}: the host must be a host name or an IP address", field="url")
    return host


def server_problem(address):
    """What stops the platform from using the server at `address`, in words that quote none of it; None when
    nothing does: it answered, took the credentials, and its role may create databases and roles (a role per
    tenant database, tenants.provisioning.roles)."""
    try:
        with psycopg.connect(**address.connection_parameters(), autocommit=True) as connection:
            row = connection.execute(
                "SELECT rolcreatedb OR rolsuper, rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = current_user"
            ).fetchone() or (False, False)
    except psycopg.Error as error:
        return _connection_problem(error)
    may_create_databases, may_create_roles = row
    if not may_create_databases:
        return NO_CREATEDB
    return None if may_create_roles else NO_CREATEROLE


def _connection_problem(error):
    """libpq sets no SQLSTATE on a failed connection: its message tells whether the server answered (a FATAL
    line) and why it refused (authentication, an unknown database)."""
    text = str(error)
    if "FATAL" not in text:
        return UNREACHABLE.format(settings.DIQUIS_SERVER_CONNECT_TIMEOUT)
    if "authentication" in text or "pg_hba.conf" in text:
        return AUTHENTICATION_FAILED
    if "database" in text and "does not exist" in text:
        return NO_MAINTENANCE_DATABASE
    return CONNECTION_REFUSED


def register_server(*, name, url, weight=1):
    """A new server in the catalog, Active, once it has been reached and its role may create databases.

    No transaction is held while the server is tried (up to the connect timeout); the row is written after,
    and a name taken meanwhile is still a 409."""
    validate_server_name(name)
    validate_weight(weight)
    address = parse_server_url(url)
    if DatabaseServer.objects.filter(pk=name).exists():
        raise ServerExists()
    problem = server_problem(address)
    if problem is not None:
        raise Refused(problem, field="url")
    try:
        with transaction.atomic():
            server = _write(DatabaseServer(name=name, weight=weight), address, force_insert=True, reachable=True)
    except IntegrityError as error:
        raise ServerExists() from error
    forget_server(name)
    logger.info("database server %s registered (%s:%s)", name, address.host, address.port)
    return server


def _write(server, address, *, reachable, **save):
    server.host, server.port = address.host, address.port
    server.maintenance_database, server.user = address.maintenance_database, address.user
    server.encrypted_password = encrypt_secret(address.password) if address.password else ""
    server.reachable, server.last_checked = reachable, timezone.now()
    server.save(**save)
    return server


@transaction.atomic
def update_server(*, name, weight=None, status=None):
    """A server's weight (0: it takes no new tenants) or status (Active, Draining, Disabled). Unknown: 404."""
    server = DatabaseServer.objects.select_for_update().get(pk=name)
    changed = []
    if weight is not None:
        validate_weight(weight)
        server.weight = weight
        changed.append("weight")
    if status is not None:
        if status not in ServerStatus.values:
            raise Refused(f"The status must be one of {', '.join(ServerStatus.values)}", field="status")
        server.status = status
        changed.append("status")
    if changed:
        server.save(update_fields=changed)
    transaction.on_commit(lambda: forget_server(name))
    return server


def drop_platform_databases(name):
    """What the platform itself made on a server it leaves: its templates and their spares (no tenant's data is
    left there by then). A server that does not answer keeps them: they hold no tenant's data, and the server
    is leaving anyway."""
    store = store_for(name)
    try:
        for database in store.list(template_prefix()):
            store.drop(database)
    except (DatabaseError, TenantDatabaseUnavailable):
        logger.warning("database server %s: its templates and spares could not be dropped", name, exc_info=True)


def remove_server(*, name):
    """The server out of the catalog, once no tenant's database is on it or moving to it. `main` cannot go: it
    is the main database's own server (400, like editing the root tenant). Unknown: 404."""
    if name == MAIN_SERVER:
        raise Refused("The main database server cannot be removed")
    try:
        with transaction.atomic():
            server = DatabaseServer.objects.select_for_update().get(pk=name)
            held = tenants_on_server(server.name).count()
            if held:
                raise ServerInUse(
                    f"Database server '{name}' still holds {held} tenant database(s) (or moves to it); drain it first"
                )
            if move_cleanups_on_server(server.name).exists():
                raise ServerInUse(f"What a failed move left on database server '{name}' is still being cleared")
            drop_platform_databases(name)
            server.delete()
    except IntegrityError as error:  # a tenant placed on it meanwhile (the foreign key, checked at commit)
        raise ServerInUse() from error
    forget_server(name)
    logger.info("database server %s removed", name)


# --- DIQUIS_DATABASE_SERVERS, applied by `migrate` -------------------------------------------------------------


def configured_servers(value):
    """The (name, ServerAddress) pairs of a DIQUIS_DATABASE_SERVERS value (`name=url`, comma-separated);
    ImproperlyConfigured for a malformed one, naming the entry by its place (its text may hold a password)."""
    entries, seen = [], set()
    for place, entry in enumerate((part.strip() for part in value.split(",")), start=1):
        if not entry:
            continue
        name, equals, url = entry.partition("=")
        name = name.strip()
        try:
            if not equals:
                raise Refused(f"expected name={URL_SHAPE}")
            validate_server_name(name)
            address = parse_server_url(url.strip())
        except Refused as error:
            raise ImproperlyConfigured(f"DIQUIS_DATABASE_SERVERS, entry {place}: {error.message}") from None
        if name in seen:
            raise ImproperlyConfigured(f"DIQUIS_DATABASE_SERVERS, entry {place}: '{name}' is named twice")
        seen.add(name)
        entries.append((name, address))
    return entries


def apply_configured_servers(value, *, warn):
    """Register (or, for a name already there with another address, update) every server `value` names.
    Idempotent: a server as configured already is left as it is (its weight and status are the admin's).

    A server that cannot be used now is registered anyway, with `warn` saying why: `migrate` must not fail
    because one server of the fleet is down at deploy time; placement passes over a server that does not answer.
    """
    for name, address in configured_servers(value):
        problem = server_problem(address)
        with transaction.atomic():
            server = DatabaseServer.objects.select_for_update().filter(pk=name).first()
            if server is None:
                _write(DatabaseServer(name=name), address, force_insert=True, reachable=problem is None)
                logger.info("database server %s registered from DIQUIS_DATABASE_SERVERS", name)
            elif _address_of(server) != address:
                _write(server, address, reachable=problem is None)
                logger.info("database server %s updated from DIQUIS_DATABASE_SERVERS", name)
            else:
                server.reachable, server.last_checked = problem is None, timezone.now()
                server.save(update_fields=["reachable", "last_checked"])
        forget_server(name)
        if problem is not None:
            warn(f"Database server '{name}' (DIQUIS_DATABASE_SERVERS) registered, but not usable now: {problem}")


def _address_of(server):
    password = decrypt_secret(server.encrypted_password) if server.encrypted_password else ""
    return ServerAddress(server.host, server.port, server.maintenance_database, server.user, password)
