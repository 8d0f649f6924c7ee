"""Pooled connections to tenant databases: the sessions a process's requests and jobs have just used, kept for
the next request of the same tenant, at most DIQUIS_TENANT_POOL_PER_SERVER per database server and process.

A new PostgreSQL session costs a server process, authentication and cold caches: measured, that made an isolated
tenant's request half again as slow as a shared tenant's. A session is reused only for the same server, host,
port, database and role it was opened for (`key_of`), so no request reaches another tenant's data or a database's
old place: a tenant moved to another server has another key, and the sessions of its old key are closed when this
process first sees the move (`forget`), by the sweep, or by the move itself (it ends the sessions on the source).

Why not psycopg_pool (Django's OPTIONS["pool"]): it pools one connection string, with a scheduler thread and
worker threads of its own. PostgreSQL cannot switch a session to another database, so here that is one pool per
tenant database: a thousand pools, and some thousands of threads, in a process that has served a thousand
tenants, and nothing bounding the sessions of all the pools of one server together. Here: one table of idle
sessions per process, one bound per server (the least recently used idle session closed first), one sweeper
thread closing what has been idle DIQUIS_TENANT_POOL_IDLE_SECONDS.

A session taken from the pool is first asked an empty query, waiting at most DIQUIS_SERVER_CONNECT_TIMEOUT: a
session the server ended (a restart, a move, a dropped database) is closed and the next one tried; a server that
does not answer in time (hung, unreachable) is reported as such (`ServerSilent`), as a connect would be.

Sessions never cross a fork (an RQ worker forks a work-horse per job): the child forgets the parent's without
closing them, which would end them for the parent too.
"""

import contextlib
import os
import select
import sys
import threading
import time
from collections import OrderedDict

from django.conf import settings
from psycopg import pq

IDLE = pq.TransactionStatus.IDLE
ENDED = (pq.TransactionStatus.INTRANS, pq.TransactionStatus.INERROR)


class ServerSilent(Exception):
    """A pooled session's server did not answer an empty query in time."""


def session_name():
    """The application_name of this process's sessions, so that pg_stat_activity shows who holds what
    (`manage.py tenant_connections`): PGAPPNAME when set, else the kind of process and its pid."""
    if os.environ.get("PGAPPNAME"):
        return os.environ["PGAPPNAME"]
    argv = " ".join(sys.argv)
    kind = "web" if "daphne" in argv else "worker" if "rqworker" in argv else "manage"
    return f"diquis-{kind}-{os.getpid()}"


def key_of(server, params):
    """What a session may be reused for: the server, and where and as whom it is connected."""
    return (server, params.get("host"), str(params.get("port")), params.get("dbname"), params.get("user"))


class TenantPool:
    def __init__(self):
        self._lock = threading.Lock()
        # id(session) -> (key, session, idle since); oldest first.
        self._idle = OrderedDict()
        self._in_use = {}  # server -> sessions handed out by this process and not yet back
        self._inherited = []  # a parent process's sessions: kept from the garbage collector, never used or closed
        self._sweeper = None

    # --- taking and giving back --------------------------------------------------------------------------
    def take(self, key):
        """An idle session of `key` that answers, or None; the most recently used first (its caches are warm)."""
        while True:
            with self._lock:
                found = next((i for i, (k, _, _) in reversed(self._idle.items()) if k == key), None)
                session = None if found is None else self._idle.pop(found)[1]
            if session is None:
                # None kept for this place: any kept for the same database elsewhere are of a place it has left.
                self.forget(database=key[3], keep=key)
                return None
            try:
                alive = answers(session, settings.DIQUIS_SERVER_CONNECT_TIMEOUT)
            except ServerSilent:
                _close(session)
                self.forget(server=key[0])
                raise
            if alive:
                self.note_in_use(key[0], +1)
                return session
            _close(session)

    def note_in_use(self, server, delta):
        with self._lock:
            self._in_use[server] = max(self._in_use.get(server, 0) + delta, 0)

    def give_back(self, key, session):
        """Keep a session the request or job has finished with, if it is sound and the bound allows."""
        self.note_in_use(key[0], -1)
        limit = settings.DIQUIS_TENANT_POOL_PER_SERVER
        if limit <= 0 or not _reusable(session):
            _close(session)
            return
        evicted = []
        with self._lock:
            self._idle[id(session)] = (key, session, time.monotonic())
            same_server = [i for i, (k, _, _) in self._idle.items() if k[0] == key[0]]
            for oldest in same_server[: max(len(same_server) - limit, 0)]:
                evicted.append(self._idle.pop(oldest)[1])
            self._start_sweeper()
        for stale in evicted:
            _close(stale)

    # --- closing -----------------------------------------------------------------------------------------
    def forget(self, *, server=None, database=None, keep=None):
        """Close the idle sessions of a server, or of a database (on any server), or all of them; `keep`: a key
        whose sessions stay (the tenant's current place, when its old ones are closed)."""
        with self._lock:
            gone = [
                i
                for i, (k, _, _) in self._idle.items()
                if (server is None or k[0] == server) and (database is None or k[3] == database) and k != keep
            ]
            sessions = [self._idle.pop(i)[1] for i in gone]
        for session in sessions:
            _close(session)
        return len(sessions)

    def sweep(self, now=None):
        """Close the sessions idle for longer than DIQUIS_TENANT_POOL_IDLE_SECONDS."""
        cutoff = (now or time.monotonic()) - settings.DIQUIS_TENANT_POOL_IDLE_SECONDS
        with self._lock:
            gone = [i for i, (_, _, since) in self._idle.items() if since <= cutoff]
            sessions = [self._idle.pop(i)[1] for i in gone]
        for session in sessions:
            _close(session)
        return len(sessions)

    def _start_sweeper(self):
        if self._sweeper is None or not self._sweeper.is_alive():
            self._sweeper = threading.Thread(target=self._sweep_forever, name="tenant-pool-sweeper", daemon=True)
            self._sweeper.start()

    def _sweep_forever(self):
        while True:
            time.sleep(max(min(settings.DIQUIS_TENANT_POOL_IDLE_SECONDS / 4, 5.0), 0.05))
            with contextlib.suppress(Exception):  # a sweep that failed is tried again at the next round
                self.sweep()

    def _after_fork_in_child(self):
        self._lock = threading.Lock()
        self._inherited.extend(session for _, session, _ in self._idle.values())
        self._idle = OrderedDict()
        self._in_use = {}
        self._sweeper = None

    # --- what is held ------------------------------------------------------------------------------------
    def stats(self):
        """{server: {"idle": n, "inUse": m}} of this process."""
        with self._lock:
            servers = {k[0] for k, _, _ in self._idle.values()} | set(self._in_use)
            return {
                server: {
                    "idle": sum(1 for k, _, _ in self._idle.values() if k[0] == server),
                    "inUse": self._in_use.get(server, 0),
                }
                for server in sorted(servers)
            }


def answers(session, timeout):
    """Does the session's server answer an empty query within `timeout` seconds? False when the session is
    over (the server ended it); ServerSilent when the server says nothing in time."""
    pgconn = session.pgconn
    if session.closed or session.broken or pgconn.transaction_status != IDLE:
        return False
    try:
        pgconn.send_query(b"")
        deadline = time.monotonic() + timeout
        while True:
            pgconn.consume_input()
            if not pgconn.is_busy():
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([pgconn.socket], [], [], remaining)[0]:
                raise ServerSilent()
        sound = True
        while (result := pgconn.get_result()) is not None:
            sound = sound and result.status == pq.ExecStatus.EMPTY_QUERY
        return sound and pgconn.transaction_status == IDLE
    except ServerSilent:
        raise
    except Exception:
        return False


def _reusable(session):
    """A session goes back to the pool idle, outside any transaction; one a request left in a transaction (an
    error) is rolled back first; one in any other state is not kept."""
    if session.closed or session.broken:
        return False
    status = session.pgconn.transaction_status
    if status in ENDED:
        try:
            session.rollback()
        except Exception:
            return False
        status = session.pgconn.transaction_status
    return status == IDLE


def _close(session):
    with contextlib.suppress(Exception):
        session.close()


pool = TenantPool()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=pool._after_fork_in_child)
