"""Whole databases on the PostgreSQL server: does one exist, create (or clone) it, drop it.

CREATE/DROP DATABASE cannot run inside a transaction, and the request or job that asks may be inside
one: these statements run on a connection of their own, in autocommit, closed right after. Names reach
SQL only as quoted identifiers. Every function is idempotent, so a retried job never trips over what
an earlier attempt did.
"""

import contextlib
import logging
import time

import psycopg
from django.db import connections, transaction
from psycopg import errors, sql

from jobs.locks import subject_lock

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


@contextlib.contextmanager
def server_cursor():
    params = connections["default"].get_connection_params()
    with psycopg.connect(**params, autocommit=True) as connection, connection.cursor() as cursor:
        yield cursor


def exists(name):
    # A read of the shared catalog: the caller's own connection will do (no new connection per request).
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        return cursor.fetchone() is not None


def names_starting_with(prefix):
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s) ORDER BY datname", [prefix])
        return [row[0] for row in cursor.fetchall()]


def create(name, *, template=None):
    """CREATE DATABASE, cloned from `template` when given. Nothing happens if it exists already."""
    statement = sql.SQL("CREATE DATABASE {}").format(identifier(name))
    if template:
        statement = sql.SQL("{} TEMPLATE {}").format(statement, identifier(template))
    for attempt in range(1, CLONE_ATTEMPTS + 1):
        try:
            with server_cursor() as cursor:
                cursor.execute(statement)
            return
        except errors.DuplicateDatabase:
            return
        except errors.ObjectInUse:
            if attempt == CLONE_ATTEMPTS:
                raise
            logger.info("template %s is in use; cloning %s again (attempt %s)", template, name, attempt + 1)
            time.sleep(CLONE_RETRY_SECONDS * attempt)


def drop(name):
    """Terminate every session on the database and drop it; nothing happens if it is gone already."""
    with server_cursor() as cursor:
        cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(identifier(name)))


def rename(name, new_name):
    """ALTER DATABASE ... RENAME: atomic; refused while a session is on the database (ObjectInUse) or when
    it does not exist (InvalidCatalogName). Through the caller's connection: no new session for it."""
    statement = sql.SQL("ALTER DATABASE {} RENAME TO {}").format(identifier(name), identifier(new_name))
    with transaction.atomic(using="default"), connections["default"].cursor() as cursor:
        cursor.execute(statement)


def publish(building, final):
    """Turn a freshly migrated database into a template: closed to connections, then given its name.

    `ALLOW_CONNECTIONS false` makes the server itself refuse every session on the template, so nothing
    can ever hold it open and block a clone. The rename is atomic: the final name exists only once the
    template is complete.
    """
    building, final = identifier(building), identifier(final)
    with server_cursor() as cursor:
        cursor.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(building))
        cursor.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(building, final))


def exclusive(key):
    """Held by one process at a time across the cluster: a PostgreSQL advisory lock on `key`."""
    return subject_lock(key)
