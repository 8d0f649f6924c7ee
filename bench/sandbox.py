"""Everything a run creates, and its removal: the main database, tenant databases and roles, Redis keys.

`Sandbox` is a context manager: the main database is created (and migrated with `manage.py migrate`)
on entry, and on exit — normal end, exception, Ctrl-C or SIGTERM — every process the run started is
stopped and every database and key it made is dropped.
"""

import contextlib
import fnmatch
import logging
import os
import signal
import subprocess
import sys

import psycopg
import redis
from psycopg import sql

from . import environment

logger = logging.getLogger("bench")


def server_execute(statement, params=None):
    """One statement on the server's maintenance database, in autocommit (CREATE/DROP DATABASE need it)."""
    with psycopg.connect(environment.server_dsn(), autocommit=True) as connection:
        cursor = connection.execute(statement, params)
        return cursor.fetchall() if cursor.description else None


def database_names(prefix):
    rows = server_execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s) ORDER BY datname", [prefix])
    return [row[0] for row in rows]


def drop_database(name):
    server_execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def drop_tenant_databases():
    names = database_names(environment.tenant_prefix())
    for name in names:
        drop_database(name)
    return len(names)


def drop_role(name):
    server_execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def drop_tenant_roles():
    """The tenants' own roles (named like their databases, tenants.provisioning.roles): cluster-wide, they outlive
    the databases dropped above unless dropped too. Returns how many."""
    rows = server_execute("SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)", [environment.tenant_prefix()])
    for (name,) in rows:
        drop_role(name)
    return len(rows)


def redis_client():
    return redis.Redis.from_url(os.environ["REDIS_URL"])


def bench_key_patterns():
    return ["rq:*", f"{environment.channel_prefix()}*", environment.CACHE_KEY_PATTERN]


def delete_redis_keys():
    """Delete every key of the patterns the stack writes. Returns how many."""
    client = redis_client()
    deleted = 0
    for pattern in bench_key_patterns():
        batch = []
        for key in client.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += client.delete(*batch)
                batch = []
        if batch:
            deleted += client.delete(*batch)
    return deleted


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


class Sandbox:
    """The run's main database and the processes it started; everything gone on exit."""

    def __init__(self):
        self.processes = []
        self.cleanup_report = {}

    def __enter__(self):
        # Started in the background by a shell, a process inherits SIGINT ignored: Ctrl-C and SIGTERM must
        # both end the run through the clean-up below.
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        signal.signal(signal.SIGINT, _raise_keyboard_interrupt)
        name = environment.main_database_name()
        foreign = [k for k in redis_client().scan_iter(count=1000) if not _is_bench_key(k)]
        if foreign:
            raise environment.UnsafeConfiguration(
                f"the Redis database of REDIS_URL holds {len(foreign)} keys the bench did not make: "
                "give the bench an unused Redis database"
            )
        # A database of this name is a leftover of an interrupted run (its name says "bench").
        drop_tenant_databases()
        drop_tenant_roles()
        drop_database(name)
        delete_redis_keys()
        server_execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            subprocess.run(
                [sys.executable, "manage.py", "migrate", "--no-input", "-v0"],
                cwd=environment.ROOT,
                env=environment.child_env(),
                check=True,
            )
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def track(self, process):
        self.processes.append(process)
        return process

    def stop_processes(self):
        while self.processes:
            process = self.processes.pop()
            with contextlib.suppress(Exception):
                process.stop_all()

    def __exit__(self, *exc):
        # A second Ctrl-C must not leave databases behind: the clean-up runs to its end.
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self._clean_up()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return False

    def _clean_up(self):
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        self.stop_processes()
        report = {}
        with contextlib.suppress(Exception):
            report["tenant databases dropped"] = drop_tenant_databases()
        with contextlib.suppress(Exception):
            report["tenant roles dropped"] = drop_tenant_roles()
        with contextlib.suppress(Exception):
            drop_database(environment.main_database_name())
            report["main database dropped"] = environment.main_database_name()
        with contextlib.suppress(Exception):
            report["redis keys deleted"] = delete_redis_keys()
        self.cleanup_report = report
        logger.info("cleanup: %s", report)


def _is_bench_key(key):
    text = key.decode(errors="replace")
    return any(fnmatch.fnmatchcase(text, pattern) for pattern in bench_key_patterns())
