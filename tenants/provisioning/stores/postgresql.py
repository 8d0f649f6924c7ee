"""Whole databases on one PostgreSQL server: does one exist, create, clone, rename or drop it.

A store is bound to one server through a Django connection alias whose settings name that server. CREATE
and DROP DATABASE cannot run inside a transaction, and the request or job that asks may be inside one:
these statements run on a connection of their own, in autocommit, closed right after. Reads of the
server's catalog (pg_database is shared by every database of a server) go through the alias's own
connection, so a request does not open a session for them. Names reach SQL only as quoted identifiers.
"""

import contextlib
import logging
import time

import psycopg
from django.db import connections, transaction
from psycopg import errors, sql

from jobs.locks import subject_lock

from ...exceptions import TenantDatabaseUnavailable
from ...models import MAIN_SERVER

logger = logging.getLogger(__name__)

# PostgreSQL refuses to clone a database while anyone is connected to it, after waiting up to 5 s itself
# for them to leave. Our templates refuse connections once built, so this is rare and brief: one more
# attempt after a pause, then the error (and the caller creates and migrates instead).
CLONE_ATTEMPTS = 2
CLONE_RETRY_SECONDS = 0.5

# PostgreSQL silently cuts a name at a NUL byte (libpq) or after this many bytes: it would name another database.
MAX_NAME_BYTES = 63


def identifier(name):
    """A database name as SQL, refused if the server would read it as some other name."""
    if not name or "\x00" in name or len(name.encode()) > MAX_NAME_BYTES:
        raise ValueError(f"not a usable database name: {name!r}")
    return sql.Identifier(name)


class PostgreSQLStore:
    vendor = "postgresql"

    def __init__(self, alias="default", *, server=MAIN_SERVER):
        self.alias, self.server = alias, server

    def __repr__(self):
        return f"PostgreSQLStore({self.alias!r}, server={self.server!r})"

    @contextlib.contextmanager
    def server_cursor(self, database=None):
        """A cursor of a connection of its own to the server (its maintenance database, or `database`), as the
        server's own role. A server that does not answer raises TenantDatabaseUnavailable."""
        params = connections[self.alias].get_connection_params()
        if database is not None:
            params["dbname"] = database
        try:
            connection = psycopg.connect(**params, autocommit=True)
        except psycopg.OperationalError as error:
            logger.warning("database server %s does not answer (%s)", self.server, type(error).__name__)
            raise TenantDatabaseUnavailable(server=self.server) from error
        with connection, connection.cursor() as cursor:
            yield cursor

    def exists(self, name):
        with connections[self.alias].cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            return cursor.fetchone() is not None

    def list(self, prefix):
        with connections[self.alias].cursor() as cursor:
            cursor.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s) ORDER BY datname", [prefix])
            return [row[0] for row in cursor.fetchall()]

    def create(self, name):
        self._create(sql.SQL("CREATE DATABASE {}").format(identifier(name)))

    def clone(self, name, template):
        statement = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(identifier(name), identifier(template))
        for attempt in range(1, CLONE_ATTEMPTS + 1):
            try:
                self._create(statement)
                return
            except errors.ObjectInUse:
                if attempt == CLONE_ATTEMPTS:
                    raise
                logger.info("template %s is in use; cloning %s again (attempt %s)", template, name, attempt + 1)
                time.sleep(CLONE_RETRY_SECONDS * attempt)

    def _create(self, statement):
        with contextlib.suppress(errors.DuplicateDatabase), self.server_cursor() as cursor:
            cursor.execute(statement)

    def drop(self, name):
        """Terminate every session on the database and drop it."""
        with self.server_cursor() as cursor:
            cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(identifier(name)))

    def rename(self, name, new_name):
        """ALTER DATABASE ... RENAME: refused while a session is on the database (ObjectInUse) or when it
        does not exist (InvalidCatalogName). Through the alias's connection: no new session for it."""
        statement = sql.SQL("ALTER DATABASE {} RENAME TO {}").format(identifier(name), identifier(new_name))
        with transaction.atomic(using=self.alias), connections[self.alias].cursor() as cursor:
            cursor.execute(statement)

    def set_manifest(self, name, manifest):
        """The database's comment: a shared catalog's row, which CREATE DATABASE ... TEMPLATE does not copy."""
        with self.server_cursor() as cursor:
            cursor.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(identifier(name), sql.Literal(manifest)))

    def manifest(self, name):
        with connections[self.alias].cursor() as cursor:
            cursor.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", [name])
            row = cursor.fetchone()
        return row[0] if row else None

    def publish(self, building, final):
        """`ALLOW_CONNECTIONS false` makes the server itself refuse every session on the template, so
        nothing can ever hold it open and block a clone; the rename makes the final name appear complete."""
        building, final = identifier(building), identifier(final)
        with self.server_cursor() as cursor:
            cursor.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(building))
            cursor.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(building, final))

    def exclusive(self, key):
        """A PostgreSQL advisory lock on `key` for this server, held through the main database (the catalog's):
        every process that works on the server takes it there."""
        return subject_lock(key if self.server == MAIN_SERVER else f"{key}:{self.server}")
