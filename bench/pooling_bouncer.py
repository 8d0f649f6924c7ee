"""PgBouncer in front of the main server, for the pooling benchmark's variants through it: the product's own
configuration (tenants.pgbouncer.write_config), run by the suite's helper (tests.support.pgbouncer), stopped and its
files removed with the run's other processes (bench.sandbox), its lookup role dropped at the end.

One setting differs from the product's default, and why: `server_idle_timeout`. PgBouncer 1.18 bounds server
connections per tenant database (5), not in all, and keeps each idle one for server_idle_timeout (30 s by default):
the benchmark's long tail reaches ~100 distinct tenant databases within 30 s, and each costs two (the lookup
role's, for auth_query, and the tenant role's): that would take the shared main server's whole max_connections
(100), everyone's sessions on it included. Even at 2 s a quick run with 100 tenants saw 97 sessions on the server.
SERVER_IDLE_TIMEOUT keeps PgBouncer's share lower; it only costs PgBouncer more server logins (the variant is not
flattered by it), and the variants through PgBouncer are measured up to 100 tenants only (bench.modes).

The lookup role (tenants.provisioning.pgbouncer_auth.AUTH_ROLE) is named with the bench's tenant prefix: the bench
refuses to take over one that is there already (a killed run's), and drops its own.
"""

import logging

from psycopg import errors, sql

from tenants.models import MAIN_SERVER
from tenants.pgbouncer import write_config
from tenants.provisioning.pgbouncer_auth import AUTH_ROLE
from tests.support.pgbouncer import EXECUTABLE, Bouncer
from tests.support.postgres_clusters import _give_to_server_user

from . import sandbox

logger = logging.getLogger("bench")

SERVER_IDLE_TIMEOUT = 1  # seconds: see the module's docstring


class Unavailable(Exception):
    """PgBouncer cannot be run for this benchmark (not installed, or the lookup role is another run's)."""


class BenchBouncer(Bouncer):
    """The suite's PgBouncer helper, with the product's configuration but for SERVER_IDLE_TIMEOUT."""

    def _start_on(self, port):
        self.files = write_config(
            self.directory, server=self.server, listen_port=port, server_idle_timeout=SERVER_IDLE_TIMEOUT
        )
        _give_to_server_user(self.directory, self.files.ini, self.files.auth_file)
        self._start_process()

    def stop_all(self):
        """What the sandbox calls on every process it tracks: stopped, its files (the auth file) removed."""
        self.remove()


def _lookup_role_exists():
    return bool(sandbox.server_execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [AUTH_ROLE]))


def start(run_sandbox):
    """A running PgBouncer in front of `main`, tracked by the sandbox. Start it before the tenant databases are
    made: each then gets the lookup function as provisioning gives it (tenants.provisioning.roles)."""
    if EXECUTABLE is None:
        raise Unavailable("pgbouncer is not installed")
    if _lookup_role_exists():
        raise Unavailable(f"role {AUTH_ROLE} exists on the main server already (another run's PgBouncer)")
    bouncer = run_sandbox.track(BenchBouncer(MAIN_SERVER, "bench-pool"))
    bouncer.start()
    return bouncer


def drop_lookup_role():
    """Once the tenant databases are gone (its grants were on them and in them). Returns whether it was dropped."""
    if not _lookup_role_exists():
        return True
    try:
        sandbox.server_execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(AUTH_ROLE)))
        sandbox.drop_role(AUTH_ROLE)
    except errors.DependentObjectsStillExist:
        logger.warning("role %s still has privileges in another database: not dropped", AUTH_ROLE)
        return False
    return True
