"""Bring one isolated tenant's database to the migration head, in one transaction, and do the costly part of it
once per upgrade rather than once per tenant.

Where the time of `migrate` on one tenant database goes: loading the migration graph, replaying every applied
migration into a project state, rendering models, checking the history, sending the pre/post-migrate signals;
the SQL of a typical release (a column, an index) is a few statements that take a few milliseconds. An upgrade
applies the same release to databases that are, nearly always, at the same starting point. So a `Planner` (one
per upgrade run) loads the graph once, and for each distinct set of applied migrations it meets, works out the
plan and compiles its SQL once, through Django's own schema editor (as `sqlmigrate` does, but from the state of
the whole applied set, so a plan that spans several apps is right). Each tenant then costs one session: read its
django_migrations, run the compiled statements and record the migrations, all in one transaction, so that a
failure leaves that tenant's schema as it was.

When it is not safe to compile, the tenant goes through Django's full executor instead, still in one
transaction where the backend allows it (`FULL`):
- an operation that is not SQL (`RunPython`: it must run against each database, with the state at that point);
- a migration that is not atomic (it asks not to run in a transaction, e.g. CREATE INDEX CONCURRENTLY): run
  without the outer transaction, as Django would (it is then not all-or-nothing, as Django itself warns);
- squashed migrations anywhere in the graph (which of them count as applied depends on each database);
- SQLite, the embedded default (its schema editor cannot run inside a transaction, and there is no server).

The post_migrate signal is not sent on the compiled path: Django's receivers of it create content types and
permissions, which live in the main database only (tenants.routing), so a tenant database has nothing of theirs.
"""

import logging
from dataclasses import dataclass

import psycopg
from django.core.management import call_command
from django.db import connections, transaction
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.operations import RunPython, SeparateDatabaseAndState
from psycopg import errors, sql

from ..connections import platform_alias_for, release_connection
from ..exceptions import TenantDatabaseUnavailable
from ..servers import connection_parameters
from . import faults

logger = logging.getLogger(__name__)

# Fault injection points of the tests (provisioning.faults): a worker killed with the tenant's transaction open.
BEFORE_COMMIT = "upgrade-before-commit"

COMPILED = "compiled"
FULL = "full executor"
AT_TARGET = "at target"


class TenantBusy(Exception):
    """A lock on the tenant's tables did not come within the lock timeout: a long transaction of its own holds
    one. Nothing was changed; its turn comes again later."""


@dataclass(frozen=True)
class Plan:
    """What brings a database with a given set of applied migrations to the head."""

    migrations: tuple  # ((app_label, name), ...) to apply, in order
    statements: str | None  # the compiled SQL and the records of the migrations, or None: the full executor


def _runs_python(operation):
    if isinstance(operation, RunPython):
        return True
    if isinstance(operation, SeparateDatabaseAndState):
        return any(_runs_python(inner) for inner in operation.database_operations)
    return not operation.reduces_to_sql


class Planner:
    """One per upgrade run: the migration graph, loaded once, and a plan per starting point, compiled once."""

    def __init__(self):
        self.loader = MigrationLoader(None, ignore_no_migrations=True)
        self.graph = self.loader.graph
        self.targets = sorted(self.graph.leaf_nodes())
        self.squashed = any(migration.replaces for migration in self.loader.disk_migrations.values())
        self._plans = {}

    def plan_for(self, applied, *, compile_on):
        """The plan from `applied` (a frozenset of (app, name)) to the head; `compile_on`: a Django alias of a
        database at that starting point, for the schema editor (it may look at the database's catalog)."""
        plan = self._plans.get(applied)
        if plan is None:
            plan = self._plans[applied] = self._make_plan(applied, compile_on)
        return plan

    def _make_plan(self, applied, alias):
        keys = []
        for target in self.targets:
            for key in self.graph.forwards_plan(target):
                if key not in applied and key not in keys:
                    keys.append(key)
        migrations = [self.loader.graph.nodes[key] for key in keys]
        compilable = (
            not self.squashed
            and connections[alias].vendor == "postgresql"
            and all(migration.atomic for migration in migrations)
            and not any(_runs_python(operation) for migration in migrations for operation in migration.operations)
        )
        statements = self._compile(applied, migrations, alias) if compilable and migrations else None
        logger.info("upgrade plan of %d migration(s), %s", len(keys), "compiled" if statements else "full executor")
        return Plan(migrations=tuple(keys), statements=statements)

    def _compile(self, applied, migrations, alias):
        """The SQL of `migrations` from the state of the whole applied set (Django's loader.collect_sql starts from
        the ancestors of the first migration only, which misses the other apps of a plan that spans several)."""
        state = self.graph.make_state(nodes=sorted(applied), at_end=True, real_apps=self.loader.unmigrated_apps)
        collected = []
        for migration in migrations:
            with connections[alias].schema_editor(collect_sql=True, atomic=True) as editor:
                state = migration.apply(state, editor, collect_sql=True)
            collected.extend(editor.collected_sql)
        records = sql.SQL("INSERT INTO django_migrations (app, name, applied) VALUES {}").format(
            sql.SQL(", ").join(
                sql.SQL("({}, {}, now())").format(sql.Literal(m.app_label), sql.Literal(m.name)) for m in migrations
            )
        )
        statements = [line for line in collected if line.strip() and not line.startswith("--")]
        return "\n".join([*statements, f"{records.as_string(None)};"])


def applied_migrations(connection):
    return frozenset(connection.execute("SELECT app, name FROM django_migrations").fetchall())


def upgrade_database(tenant, planner, *, lock_timeout):
    """Bring the tenant's database to the head; returns how (COMPILED, FULL or AT_TARGET). Raises what failed,
    the tenant's schema unchanged (TenantBusy when its tables stayed locked for `lock_timeout` seconds)."""
    server = tenant.database_server_id
    alias = platform_alias_for(tenant)
    try:
        if connections[alias].vendor != "postgresql":
            return _full_executor(alias, atomic=False, lock_timeout=lock_timeout)
        parameters = connection_parameters(server)
        # Set at connection, costing no round trip: writable even where a move left the default read-only (its
        # lock on the tenant is ours now), and a lock that does not come in time gives way (TenantBusy).
        options = f"-c default_transaction_read_only=off -c lock_timeout={int(lock_timeout * 1000)}"
        parameters.update(dbname=tenant.database_name, options=f"{parameters.get('options', '')} {options}".strip())
        with _connect(parameters, server=server) as connection:
            plan = planner.plan_for(applied_migrations(connection), compile_on=alias)
            if not plan.migrations:
                return AT_TARGET
            if plan.statements is None:
                connection.rollback()
            else:
                connection.execute(plan.statements)  # one round trip; committed as the `with` block ends
                faults.check(BEFORE_COMMIT, tenant.id)
                return COMPILED
        atomic = all(planner.graph.nodes[key].atomic for key in plan.migrations)
        return _full_executor(alias, atomic=atomic, lock_timeout=lock_timeout)
    except Exception as error:
        if _lock_timed_out(error):
            raise TenantBusy("its tables stayed locked by a transaction of its own") from error
        raise
    finally:
        release_connection(alias)


def _connect(parameters, *, server):
    """The platform's session on the tenant's database; a server that does not answer is the tenant's
    unavailability (TenantDatabaseUnavailable, naming the server only), as everywhere else."""
    try:
        return psycopg.connect(**parameters)
    except psycopg.OperationalError as error:
        logger.warning("database server %s does not answer (%s)", server, type(error).__name__)
        raise TenantDatabaseUnavailable(server=server) from error


def _lock_timed_out(error):
    while error is not None:
        if isinstance(error, errors.LockNotAvailable):
            return True
        error = error.__cause__
    return False


def _full_executor(alias, *, atomic, lock_timeout):
    """Django's `migrate` on the tenant's database, in one transaction when every pending migration allows it."""
    connection = connections[alias]
    if not (atomic and connection.vendor == "postgresql"):
        call_command("migrate", database=alias, interactive=False, verbosity=0)
        return FULL
    with transaction.atomic(using=alias):
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{int(lock_timeout * 1000)}"])
        call_command("migrate", database=alias, interactive=False, verbosity=0)
    return FULL
