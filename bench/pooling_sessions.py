"""What the server sees of the web processes' database sessions: how many each process holds (by the
application name it gives PostgreSQL, libpq's PGAPPNAME), on tenant databases and on the main one, sampled
while requests run; and how many sessions were opened on the tenant databases (pg_stat_database.sessions,
PostgreSQL 14+), from which the pool's hit rate follows: a request that found a pooled session opened none.
"""

import contextlib
import threading
import time
from dataclasses import dataclass, field

import psycopg

from . import environment

SAMPLE_SECONDS = 0.02
# A backend counts its session in pg_stat_database when it first goes idle: a moment after the request's answer.
STATS_SETTLE_SECONDS = 0.3

BY_PROCESS = """
SELECT application_name, starts_with(datname, %(prefix)s), count(*)
FROM pg_stat_activity WHERE backend_type = 'client backend' GROUP BY 1, 2
"""


def _connect():
    return psycopg.connect(environment.server_dsn(), autocommit=True)


def sessions_opened(pattern):
    """Sessions ever opened on the databases whose name is LIKE `pattern`, as the server counts them."""
    time.sleep(STATS_SETTLE_SECONDS)
    with _connect() as connection:
        statement = "SELECT coalesce(sum(sessions), 0) FROM pg_stat_database WHERE datname LIKE %s"
        return int(connection.execute(statement, [pattern]).fetchone()[0])


def server_sessions():
    """Client sessions on the server right now, whoever's."""
    with _connect() as connection:
        statement = "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
        return int(connection.execute(statement).fetchone()[0])


def max_connections():
    with _connect() as connection:
        return int(connection.execute("SHOW max_connections").fetchone()[0])


def bouncer_clients(console):
    """PgBouncer's client sessions by application name, from a cursor on its admin console."""
    counts = {}
    for row in console.execute("SHOW CLIENTS").fetchall():
        name = dict(zip([c.name for c in console.description], row, strict=True)).get("application_name")
        counts[name] = counts.get(name, 0) + 1
    return counts


@dataclass
class Held:
    """Sessions of one process: on tenant databases, on the main database (or any other)."""

    tenant: int = 0
    main: int = 0

    @property
    def total(self):
        return self.tenant + self.main


@dataclass
class Snapshot:
    processes: dict = field(default_factory=dict)  # application name -> Held
    server: int = 0  # every client session on the server, whoever's


def snapshot(cursor=None):
    """Who holds what on the server right now."""
    if cursor is None:
        with _connect() as connection:
            return snapshot(connection.cursor())
    cursor.execute(BY_PROCESS, {"prefix": environment.tenant_prefix()})
    result = Snapshot()
    for name, on_tenant, count in cursor.fetchall():
        held = result.processes.setdefault(name, Held())
        if on_tenant:
            held.tenant += count
        else:
            held.main += count
        result.server += count
    return result


class PeakSessions:
    """Samples the server every SAMPLE_SECONDS until stopped; keeps the highest count seen of each process's
    tenant sessions, main sessions and both together, of the named processes' sum, and of the server's total."""

    def __init__(self, names, bouncer=None):
        self.names = list(names)
        self.tenant, self.main, self.total, self.bounced = ({n: 0 for n in self.names} for _ in range(4))
        self.ours = self.server = self.on_tenants = self.samples = 0
        self.bouncer = bouncer  # a PgBouncer whose client sessions are counted too, by application name
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _count_clients(self, console):
        counts = bouncer_clients(console)
        for name in self.names:
            self.bounced[name] = max(self.bounced[name], counts.get(name, 0))

    def _run(self):
        with _connect() as connection, self.bouncer.admin() if self.bouncer else contextlib.nullcontext() as admin:
            cursor, console = connection.cursor(), admin.cursor() if admin else None
            while not self._stop.wait(SAMPLE_SECONDS):
                if console is not None:
                    self._count_clients(console)
                seen = snapshot(cursor)
                self.on_tenants = max(self.on_tenants, sum(held.tenant for held in seen.processes.values()))
                for name in self.names:
                    held = seen.processes.get(name, Held())
                    self.tenant[name] = max(self.tenant[name], held.tenant)
                    self.main[name] = max(self.main[name], held.main)
                    self.total[name] = max(self.total[name], held.total)
                ours = sum(seen.processes.get(name, Held()).total for name in self.names)
                self.ours = max(self.ours, ours)
                self.server = max(self.server, seen.server)
                self.samples += 1

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
