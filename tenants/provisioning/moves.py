"""Moving an isolated tenant's database to another server (DESIGN.md, "the fleet"): what each step does.

A move copies the database to a database of the same name on the target server, verifies the copy, and then
(steps.run_tenant_move) switches the catalog pointer in one transaction. Until that switch the source is the
tenant's database, and nothing here writes to it but the setting that refuses writes; after it, the target is.
Every function is idempotent and may run again after a crash at any point:

- **The target is made from the source, not from the template.** A tenant whose database lags the template (a
  release whose upgrade has not reached it yet) must arrive with its own schema and its own django_migrations,
  or the next upgrade would skip or repeat migrations; and a clone of the template brings rows of its own
  (django_migrations) that a data copy would duplicate. So the target is created empty and receives the
  source's schema from `pg_dump --schema-only` (logical replication needs the tables in place before it
  copies) or its whole dump (`pg_dump | pg_restore`, schema and data in one transaction: all or nothing, with
  the constraints added after the rows, so no trigger has to be disabled, which only a superuser may do).
  Owners and privileges are not copied (`--no-owner --no-privileges`): the objects belong to the role the
  platform connects to the target with, and the tenant's own role is made on the target and granted its rows
  there (roles.ensure_tenant_role) before the switch; the source's goes with the old copy.
- **Logical replication** where the source allows it (`wal_level=logical`; on PostgreSQL 15 a publication of
  all tables and a subscription both need superuser roles): the tenant stays writable while the subscription
  copies and streams; writes are refused only for the switchover (`refuse_writes`, then the target replays up
  to the source's last WAL position, the sequences are set: logical replication does not carry them). The
  publication, subscription and slot are named after the database, so a resumed attempt finds them and goes
  on where it was.
- **pg_dump | pg_restore** otherwise, with writes refused for the copy: a dump is a snapshot, anything written
  after it would be lost.
- Writes are refused by the server itself: `ALTER DATABASE ... SET default_transaction_read_only = on`, then
  every client session on the source is ended, so every process of the platform, whatever it caches, meets a
  read-only database at its next connection (the web answers 503 with Retry-After: tenants.middleware). Reads
  go on. A move that ends, whichever way, gives writes back (steps.clean_up_move).
- Connections to servers pass their passwords as psycopg arguments or in the environment of pg_dump and
  pg_restore, never on a command line or in a log line; the subscription's connection string holds the
  source's password and lives in the target's catalog only, which only its superusers can read.
"""

import contextlib
import hashlib
import logging
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
from django.conf import settings
from django.db import connections
from psycopg import sql
from psycopg.conninfo import make_conninfo

from ..servers import connection_parameters
from . import roles
from .stores import store_for
from .stores.postgresql import identifier

logger = logging.getLogger(__name__)

LOGICAL = "logical replication"
DUMP = "pg_dump | pg_restore"

# How often a wait asks again (the switchover waits on it: writes are refused meanwhile).
POLL_SECONDS = 0.05
# What the subscription needs of the source's connection settings (the password among them).
CONNINFO_KEYS = ("host", "port", "user", "password", "dbname", "sslmode")
# Schemas of PostgreSQL's own: neither counted nor compared.
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")
# How long a server gets to let go of a replication slot once its subscription is disabled.
SLOT_RELEASE_SECONDS = 10
# pg_database.datconnlimit of a database an unfinished DROP DATABASE left invalid (PostgreSQL 15.4+).
INVALID_DATABASE = -2


class MoveError(Exception):
    """An attempt of a move that cannot go on: the job retries it, and after the last attempt the move fails
    (the tenant stays whole on its old server)."""


class CopyMismatch(MoveError):
    """The target does not hold what the source does: the switch must not happen."""


# Connections


def _parameters(server, database):
    parameters = connection_parameters(server)
    parameters["dbname"] = database
    return parameters


@contextlib.contextmanager
def connect(server, database):
    """An autocommit session of the platform's role on `database` of `server`, closed after. It may write even
    where the database refuses writes by default (ours is the session that moves it)."""
    with psycopg.connect(**_parameters(server, database), autocommit=True) as connection:
        connection.execute("SET default_transaction_read_only = off")
        yield connection


def _value(connection, statement, params=()):
    row = connection.execute(statement, params).fetchone()
    return row[0] if row else None


# Which way


def replication_names(database_name):
    """The publication, subscription and slot of a move of `database_name` (one name for all three): lowercase
    letters, digits and underscores, as slot names must be, and unique per database."""
    digest = hashlib.sha256(database_name.encode()).hexdigest()[:10]
    readable = re.sub(r"[^a-z0-9_]", "_", database_name.lower())[:40]
    return f"move_{readable}_{digest}"


def copy_method(tenant, *, source, target):
    """LOGICAL when the source writes logical WAL, both roles may replicate (superusers: PostgreSQL 15 lets no
    one else create a publication of all tables or a subscription) and the source has a host name the target
    can reach it by (a Unix socket would be the target's own), else DUMP."""
    host = str(connection_parameters(source).get("host") or "")
    if not host or host.startswith("/"):
        return DUMP
    with connect(source, tenant.database_name) as connection:
        logical = _value(connection, "SHOW wal_level") == "logical"
        source_super = _value(connection, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    if not (logical and source_super):
        return DUMP
    with contextlib.closing(psycopg.connect(**connection_parameters(target), autocommit=True)) as connection:
        target_super = _value(connection, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    return LOGICAL if target_super else DUMP


# pg_dump | pg_restore


def postgresql_bin_dir():
    """Where pg_dump and pg_restore are: the setting, else what `pg_config --bindir` says."""
    if settings.DIQUIS_POSTGRESQL_BIN_DIR:
        return Path(settings.DIQUIS_POSTGRESQL_BIN_DIR)
    completed = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True)
    return Path(completed.stdout.strip())


def _client_environment(server, database):
    """libpq's environment for pg_dump or pg_restore: the password travels here, never in argv."""
    parameters = _parameters(server, database)
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    names = {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "password": "PGPASSWORD", "dbname": "PGDATABASE"}
    for key, variable in names.items():
        if parameters.get(key):
            environment[variable] = str(parameters[key])
    environment["PGCONNECT_TIMEOUT"] = str(max(settings.DIQUIS_SERVER_CONNECT_TIMEOUT, 2))
    environment["PGAPPNAME"] = "diquis-move"
    return environment


def _tail(path):
    return Path(path).read_text(errors="replace").strip()[-1000:]


def dump_and_restore(database_name, *, source, target, schema_only=False):
    """`pg_dump` of the source database piped into `pg_restore` on the target one, in one transaction."""
    bin_dir = postgresql_bin_dir()
    dump_argv = [str(bin_dir / "pg_dump"), "--format=custom", "--no-owner", "--no-privileges"]
    dump_argv += ["--no-publications", "--no-subscriptions", "--no-tablespaces"]
    if schema_only:
        dump_argv.append("--schema-only")
    restore_argv = [str(bin_dir / "pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error"]
    restore_argv += ["--single-transaction", "--dbname", database_name]
    with tempfile.TemporaryFile() as dump_errors, tempfile.NamedTemporaryFile() as restore_errors:
        dump = subprocess.Popen(
            dump_argv, stdout=subprocess.PIPE, stderr=dump_errors, env=_client_environment(source, database_name)
        )
        try:
            restore = subprocess.run(
                restore_argv,
                stdin=dump.stdout,
                stdout=subprocess.DEVNULL,
                stderr=restore_errors,
                env=_client_environment(target, database_name),
            )
        finally:
            dump.stdout.close()
            dump_code = dump.wait()
        if dump_code != 0:
            dump_errors.seek(0)
            raise MoveError(f"pg_dump failed: {dump_errors.read().decode(errors='replace').strip()[-1000:]}")
        if restore.returncode != 0:
            raise MoveError(f"pg_restore failed: {_tail(restore_errors.name)}")


# Refusing writes


def refuse_writes(database_name, *, server):
    """From now on the source database takes no write: new sessions start read-only, and the open ones end
    (the platform's role is a member of the tenant's, tenants.provisioning.roles, so it ends those of every
    process's pool; any other is waited for). A session that outlives DIQUIS_MOVE_SWITCHOVER_TIMEOUT fails the
    attempt: it could still write what the copy would not carry."""
    name = identifier(database_name)
    with connect(server, database_name) as connection:
        connection.execute(sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = on").format(name))
        sessions = _end_sessions(connection, database_name)

        def ended():
            return not set(sessions) & set(_client_sessions(connection, database_name))

        _wait(ended, timeout=settings.DIQUIS_MOVE_SWITCHOVER_TIMEOUT, what="the end of the sessions that may write")
    logger.info("writes refused on %s (server %s); %s sessions ended", database_name, server, len(sessions))


def _end_sessions(connection, database_name):
    """pg_terminate_backend every client session on the database but this one, where the role may; their pids."""
    sessions = _client_sessions(connection, database_name)
    for pid in sessions:
        with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
            connection.execute("SELECT pg_terminate_backend(%s)", [pid])
    return sessions


def _client_sessions(connection, database_name):
    rows = connection.execute(
        "SELECT pid FROM pg_stat_activity"
        " WHERE datname = %s AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
        [database_name],
    ).fetchall()
    return [row[0] for row in rows]


def allow_writes(database_name, *, server):
    """Undo refuse_writes (a move that failed, or a logical one that goes back to streaming). The sessions opened
    meanwhile started read-only and would stay so in the pools that keep them: they end too."""
    with connect(server, database_name) as connection:
        connection.execute(
            sql.SQL("ALTER DATABASE {} RESET default_transaction_read_only").format(identifier(database_name))
        )
        _end_sessions(connection, database_name)


def writes_refused(database_name, *, server):
    with connect(server, database_name) as connection:
        row = connection.execute(
            "SELECT 1 FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase"
            " WHERE d.datname = %s AND s.setrole = 0"
            " AND 'default_transaction_read_only=on' = ANY (s.setconfig)",
            [database_name],
        ).fetchone()
    return row is not None


# Logical replication


def _subscription(connection, name):
    """(oid, enabled) of the subscription on the target's database, or None."""
    return connection.execute("SELECT oid, subenabled FROM pg_subscription WHERE subname = %s", [name]).fetchone()


def replication_healthy(database_name, *, source, target):
    """Is a subscription of an earlier attempt there, enabled, error-free, and its slot on the source?"""
    name = replication_names(database_name)
    if not _connectable(target, database_name):
        return False
    with connect(target, database_name) as connection:
        subscription = _subscription(connection, name)
        if subscription is None or not subscription[1]:
            return False
        errors = _value(
            connection,
            "SELECT coalesce(apply_error_count + sync_error_count, 0) FROM pg_stat_subscription_stats WHERE subid = %s",
            [subscription[0]],
        )
    if errors:
        return False
    with connect(source, database_name) as connection:
        slot = _value(connection, "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", [name])
        publication = _value(connection, "SELECT 1 FROM pg_publication WHERE pubname = %s", [name])
    return bool(slot and publication)


def start_replication(database_name, *, source, target):
    """A publication of every table on the source, a subscription on the target that copies them and then
    streams every change. Both are there after this, whatever an earlier attempt left."""
    name = replication_names(database_name)
    with connect(source, database_name) as connection:
        if not _value(connection, "SELECT 1 FROM pg_publication WHERE pubname = %s", [name]):
            connection.execute(sql.SQL("CREATE PUBLICATION {} FOR ALL TABLES").format(sql.Identifier(name)))
    parameters = _parameters(source, database_name)
    conninfo = make_conninfo(**{key: parameters[key] for key in CONNINFO_KEYS if parameters.get(key)})
    with connect(target, database_name) as connection:
        if _subscription(connection, name) is None:
            connection.execute(
                sql.SQL(
                    "CREATE SUBSCRIPTION {name} CONNECTION {conninfo} PUBLICATION {name}"
                    " WITH (copy_data = true, slot_name = {slot})"
                ).format(name=sql.Identifier(name), conninfo=sql.Literal(conninfo), slot=sql.Literal(name))
            )


def _wait(predicate, *, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise MoveError(f"{what} not reached within {timeout} s")
        time.sleep(POLL_SECONDS)


def _replication_errors(connection, name):
    errors = _value(
        connection,
        "SELECT coalesce(st.apply_error_count + st.sync_error_count, 0) FROM pg_stat_subscription_stats st"
        " JOIN pg_subscription s ON s.oid = st.subid WHERE s.subname = %s",
        [name],
    )
    if errors:
        raise MoveError("the subscription on the target reports errors (see the target server's log)")


def wait_synced(database_name, *, target, timeout):
    """Every table of the subscription has been copied and is streaming (pg_subscription_rel state 'r')."""
    name = replication_names(database_name)
    with connect(target, database_name) as connection:

        def synced():
            _replication_errors(connection, name)
            pending = _value(
                connection,
                "SELECT count(*) FROM pg_subscription_rel r JOIN pg_subscription s ON s.oid = r.srsubid"
                " WHERE s.subname = %s AND r.srsubstate <> 'r'",
                [name],
            )
            return pending == 0

        _wait(synced, timeout=timeout, what="the initial copy of every table")


def wait_caught_up(database_name, *, source, target, timeout):
    """The target has received and applied everything the source had committed when this was called: the
    position of the sender's last keepalive the subscription has processed (it applies the stream in order) is
    past the source's WAL insert position (what Citus waits for before its shard moves switch). The insert
    position, not pg_current_wal_lsn(): with synchronous_commit off, a commit may be inserted but not yet
    written, beyond the write position."""
    name = replication_names(database_name)
    with connect(source, database_name) as connection:
        position = _value(connection, "SELECT pg_current_wal_insert_lsn()")
    with connect(target, database_name) as connection:

        def caught_up():
            _replication_errors(connection, name)
            return _value(
                connection,
                "SELECT coalesce(latest_end_lsn >= %s::pg_lsn, false) FROM pg_stat_subscription"
                " WHERE subname = %s AND relid IS NULL",
                [str(position), name],
            )

        _wait(caught_up, timeout=timeout, what="the target catching up with the source")


def stop_replication(database_name, *, source, target):
    """Drop the subscription (without letting it reach for the source), every slot on the source's database,
    and the publication. Each part is skipped when its server is not given (None) or it is gone already."""
    name = replication_names(database_name)
    if target is not None and _connectable(target, database_name):
        with connect(target, database_name) as connection:
            if _subscription(connection, name) is not None:
                identifier_ = sql.Identifier(name)
                connection.execute(sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(identifier_))
                connection.execute(sql.SQL("ALTER SUBSCRIPTION {} SET (slot_name = NONE)").format(identifier_))
                connection.execute(sql.SQL("DROP SUBSCRIPTION {}").format(identifier_))
    if source is not None:
        with connect(source, database_name) as connection:
            _drop_slots(connection, database_name)
            connection.execute(sql.SQL("DROP PUBLICATION IF EXISTS {}").format(sql.Identifier(name)))


def _drop_slots(connection, database_name):
    """Every replication slot of the database (the subscription's, and those its table copies made): a slot
    left behind would keep the source's WAL forever. A slot still held by a sender is released first."""
    deadline = time.monotonic() + SLOT_RELEASE_SECONDS
    while True:
        slots = connection.execute(
            "SELECT slot_name, active_pid FROM pg_replication_slots WHERE database = %s", [database_name]
        ).fetchall()
        if not slots:
            return
        for slot_name, active_pid in slots:
            if active_pid is not None:
                connection.execute("SELECT pg_terminate_backend(%s)", [active_pid])
                continue
            with contextlib.suppress(psycopg.errors.UndefinedObject, psycopg.errors.ObjectInUse):
                connection.execute("SELECT pg_drop_replication_slot(%s)", [slot_name])
        if time.monotonic() > deadline:
            raise MoveError(f"replication slots of {database_name} still busy on the source")
        time.sleep(POLL_SECONDS)


# What a database holds


def _tables(connection):
    return connection.execute(
        "SELECT schemaname, tablename FROM pg_tables WHERE schemaname <> ALL (%s) ORDER BY 1, 2",
        [list(SYSTEM_SCHEMAS)],
    ).fetchall()


def row_counts(connection):
    """{"schema.table": rows} of every table of the database."""
    counts = {}
    for schema, table in _tables(connection):
        statement = sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
        counts[f"{schema}.{table}"] = _value(connection, statement)
    return counts


def sequence_values(connection):
    """{"schema.sequence": last value (None before its first use)} of every sequence of the database."""
    rows = connection.execute(
        "SELECT schemaname, sequencename, last_value FROM pg_sequences WHERE schemaname <> ALL (%s)",
        [list(SYSTEM_SCHEMAS)],
    ).fetchall()
    return {f"{schema}.{name}": value for schema, name, value in rows}


def copy_sequences(database_name, *, source, target):
    """Set every sequence of the target to the source's value (logical replication does not carry them)."""
    with connect(source, database_name) as connection:
        rows = connection.execute(
            "SELECT schemaname, sequencename, last_value FROM pg_sequences"
            " WHERE schemaname <> ALL (%s) AND last_value IS NOT NULL",
            [list(SYSTEM_SCHEMAS)],
        ).fetchall()
    with connect(target, database_name) as connection:
        for schema, name, value in rows:
            qualified = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name)).as_string(connection)
            connection.execute("SELECT setval(%s::regclass, %s, true)", [qualified, value])


def compare(database_name, *, source, target):
    """Raise CopyMismatch unless the target has the same tables with as many rows, and the same sequence
    values, as the source. Returns what was compared."""
    with connect(source, database_name) as connection:
        expected = {"rows": row_counts(connection), "sequences": sequence_values(connection)}
    with connect(target, database_name) as connection:
        found = {"rows": row_counts(connection), "sequences": sequence_values(connection)}
    for kind in ("rows", "sequences"):
        for name in sorted(set(expected[kind]) | set(found[kind])):
            if expected[kind].get(name, "missing") != found[kind].get(name, "missing"):
                raise CopyMismatch(
                    f"the copy differs from the source in {kind} of {name}: "
                    f"{found[kind].get(name, 'missing')} instead of {expected[kind].get(name, 'missing')}"
                )
    return expected


# The steps of a move, in order (tenants.provisioning.steps runs them and switches the catalog)


def _connectable(server, database_name):
    """The copy is on the server and may be connected to: not left invalid by a DROP DATABASE that did not finish
    (its server stopped or killed midway). PostgreSQL (15.4+) refuses every connection to such a database and
    allows only DROP DATABASE, which also takes its inactive slots; a drop that got that far had found no
    subscription in it (PostgreSQL refuses to drop a database that has one)."""
    with connections[store_for(server).alias].cursor() as cursor:  # the server's alias, as store.exists does
        cursor.execute("SELECT datconnlimit FROM pg_database WHERE datname = %s", [database_name])
        row = cursor.fetchone()
        return row is not None and row[0] != INVALID_DATABASE


def drop_copy(database_name, *, server):
    """Drop a copy of the database on a server, with whatever of a move is in it: a subscription (which would
    go on writing into it), slots and a publication (a database with a slot cannot be dropped)."""
    store = store_for(server)
    if _connectable(server, database_name):
        name = sql.Identifier(replication_names(database_name))
        with connect(server, database_name) as connection:
            if _subscription(connection, replication_names(database_name)) is not None:
                connection.execute(sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(name))
                connection.execute(sql.SQL("ALTER SUBSCRIPTION {} SET (slot_name = NONE)").format(name))
                connection.execute(sql.SQL("DROP SUBSCRIPTION {}").format(name))
            _drop_slots(connection, database_name)
            connection.execute(sql.SQL("DROP PUBLICATION IF EXISTS {}").format(name))
    store.drop(database_name)
    roles.drop_tenant_role(store, database_name)  # the role of the copy's server: roles are per server


def prepare_target(tenant, *, source, target, method):
    """An empty database of the tenant's name on the target, with the source's schema for LOGICAL (the
    subscription copies rows into tables that exist); for DUMP the restore brings the schema with the rows.
    What an earlier attempt left is dropped first, but for a healthy subscription, which is resumed. Returns
    "resumed" or "created"."""
    name = tenant.database_name
    if method == LOGICAL and replication_healthy(name, source=source, target=target):
        return "resumed"
    stop_replication(name, source=source, target=None)  # an earlier attempt's slot would hold the source's WAL
    drop_copy(name, server=target)
    store_for(target).create(name)
    if method == LOGICAL:
        dump_and_restore(name, source=source, target=target, schema_only=True)
        roles.ensure_tenant_role(store_for(target), name)  # its grants on the tables that are there now
    return "created"


def copy_data(tenant, *, source, target, method):
    """LOGICAL: the subscription copies every table while the tenant stays writable, then streams, until the
    target has caught up. DUMP: writes refused, then the whole database dumped and restored."""
    name = tenant.database_name
    if method == DUMP:
        refuse_writes(name, server=source)
        dump_and_restore(name, source=source, target=target)
        roles.ensure_tenant_role(store_for(target), name)  # the copy carries no grants (--no-privileges)
        return
    # An earlier attempt may have stopped in its switchover. Only then: allow_writes ends every session on the
    # source, and a request holding one (a write hashing its password) would be refused long before the
    # switchover. An attempt that died between its RESET and the end of the sessions leaves read-only sessions
    # whose writes are refused until this attempt's switchover ends them all.
    if writes_refused(name, server=source):
        allow_writes(name, server=source)
    start_replication(name, source=source, target=target)
    wait_synced(name, target=target, timeout=settings.DIQUIS_MOVE_COPY_TIMEOUT)
    wait_caught_up(name, source=source, target=target, timeout=settings.DIQUIS_MOVE_COPY_TIMEOUT)


def switchover(tenant, *, source, target):
    """LOGICAL only: refuse writes, let the target replay the last of them, detach it from the source, and give
    it the source's sequence values. Writes stay refused from here to the catalog switch."""
    name = tenant.database_name
    refuse_writes(name, server=source)
    wait_caught_up(name, source=source, target=target, timeout=settings.DIQUIS_MOVE_SWITCHOVER_TIMEOUT)
    stop_replication(name, source=source, target=target)
    copy_sequences(name, source=source, target=target)


def verify_copy(tenant, *, source, target):
    """Row counts of every table and every sequence's value, the same on both sides, or CopyMismatch."""
    return compare(tenant.database_name, source=source, target=target)
