"""The system under soak, on servers of its own: three private PostgreSQL clusters (`main`, the catalog's and a
tenant database server too; `pg-a` with wal_level=logical and `pg-b` without, so that moves take both copy
paths), a private redis-server, two Daphne processes and two RQ workers. Each can be killed, stopped, frozen and
started again; `close()` stops and removes all of it (and, should this process be killed first, reaper.py does)."""

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from psycopg import sql

from tests.support.live import ROOT, Listening, Process, descendants, start_server
from tests.support.ports import start_listening
from tests.support.postgres_clusters import PostgresCluster
from tests.support.redis_server import PrivateRedis

from .reaper import Registry

MAIN_DATABASE = "soak_diquis"
TENANT_PREFIX = "soak_t_"
ROOT_EMAIL = "root@soak.test"
ROOT_PASSWORD = "Soak-Root-Password-1!"
TENANT_SERVERS = {"pg-a": True, "pg-b": False}  # name -> wal_level=logical
WEB_COUNT = 2
WORKER_COUNT = 2


def settings_env(main, tenant_servers, redis):
    """The environment every process of the system shares (API.md's variables, and the timings of the suite's
    fault tests: a sweep every 2 s, an attempt abandoned after 6 s without a heartbeat)."""
    servers = ",".join(f"{name}={cluster.createdb_url}" for name, cluster in tenant_servers.items())
    return {
        "DATABASE_URL": main.url_as("postgres", database=MAIN_DATABASE),
        "REDIS_URL": redis.url(),
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DEBUG": "false",
        "ALLOWED_HOSTS": "localhost,127.0.0.1",
        "DIQUIS_ROOT_EMAIL": ROOT_EMAIL,
        "DIQUIS_ROOT_PASSWORD": ROOT_PASSWORD,
        "DIQUIS_DATABASE_SERVERS": servers,
        "DIQUIS_TENANT_DATABASE_PREFIX": TENANT_PREFIX,
        "DIQUIS_TENANT_APPS": "tests.support.tenant_app",
        "DIQUIS_SPARE_TENANT_DATABASES": "0",
        "CHANNEL_LAYER_PREFIX": "soak:asgi",
        "DIQUIS_JOB_MAX_ATTEMPTS": "3",
        "DIQUIS_JOB_RETRY_INTERVALS": "1,2",
        "DIQUIS_SWEEP_INTERVAL": "2",
        "DIQUIS_HEARTBEAT_INTERVAL": "1",
        "DIQUIS_ABANDONED_AFTER": "6",
        "DIQUIS_SUBJECT_LOCK_WAIT": "20",
        "DIQUIS_WEB_DATABASE_POOL": "true",
        "TENANT_CREATE_RATE": "1000000/min",
        "USER_CREATE_RATE": "1000000/min",
        "LOGIN_RATE_PER_ADDRESS": "1000000/min",
        "LOGIN_RATE_PER_EMAIL": "1000000/min",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "diquis.settings",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    }


class Restartable:
    """A process of the system that a fault kills and the injector starts again: `process` is the current one,
    named after its kind, its index and its generation (each start writes a log of its own)."""

    kind = None

    def __init__(self, system, index):
        self.system = system
        self.index = index
        self.generation = 0
        self.process = None
        self.start()

    def new_process(self, argv):
        self.generation += 1
        process = Process(f"{self.kind}{self.index}-{self.generation}", argv, self.system.env, self.system.log_dir)
        self.system.registry.add(process.pid)
        return process

    def kill(self):
        self.process.kill_tree()

    def replace(self, grace=30):
        """A deploy's restart: SIGTERM (Daphne closes its sockets, a worker finishes its job first), SIGKILL to
        what is left after `grace` seconds, then a new process (of the release `system.env` names now)."""
        if self.process.alive():
            children = self.process.children()
            self.process.stop(timeout=grace)
            for pid in children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        else:
            self.process.log.close()
        self.start()


class Web(Listening, Restartable):
    """One Daphne, restarted on the port it first took (the clients keep its address)."""

    kind = "web"
    port = None

    def start(self):
        self.process = start_listening(self._start_on, port=self.port)
        self.port = self.process.port

    def _start_on(self, port):
        argv = [sys.executable, "-m", "daphne", "-e", f"tcp:port={port}:interface=127.0.0.1:backlog=4096"]
        return start_server(
            self.new_process([*argv, "--websocket_connect_timeout", "60", "diquis.asgi:application"]), port
        )

    def stop(self):
        self.process.stop()


class Worker(Restartable):
    """`manage.py rqworker --with-scheduler`, as API.md runs it; `horses()` are the work-horses it forked."""

    kind = "worker"

    def start(self):
        argv = [sys.executable, "manage.py", "rqworker", "--with-scheduler", "--worker-ttl", "30"]
        self.process = self.new_process(argv)

    def horses(self):
        return descendants(self.process.pid) if self.process.alive() else []

    def stop(self):
        if self.process.alive():
            self.process.kill_tree()
        else:
            self.process.log.close()


class System:
    def __init__(self, log_dir):
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.registry = None  # what the reaper kills should this process be killed (reaper.py)
        self.clusters = {}  # "main", "pg-a", "pg-b" -> PostgresCluster
        self.redis = None
        self.webs = []
        self.workers = []
        self.env = None

    def __enter__(self):
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def _start(self):
        self.registry = Registry()
        self.clusters["main"] = PostgresCluster.start("soak-main", logical=True)
        for name, logical in TENANT_SERVERS.items():
            self.clusters[name] = PostgresCluster.start(f"soak-{name}", logical=logical)
        self.redis = PrivateRedis(self.log_dir, own_session=True, on_start=self.registry.add).start()
        tenant_servers = {name: self.clusters[name] for name in TENANT_SERVERS}
        self.env = settings_env(self.clusters["main"], tenant_servers, self.redis)
        with self.clusters["main"].connect() as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(MAIN_DATABASE)))
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input", "-v0"], cwd=ROOT, env=self.env, check=True
        )
        self.webs = [Web(self, index) for index in range(WEB_COUNT)]
        self.workers = [Worker(self, index) for index in range(WORKER_COUNT)]
        self.wait_healthy(timeout=90)

    def close(self):
        for process in [*self.workers, *self.webs]:
            with contextlib.suppress(Exception):
                process.stop()
        if self.redis is not None:
            with contextlib.suppress(Exception):
                self.redis.stop()
        for cluster in self.clusters.values():
            with contextlib.suppress(Exception):
                cluster.remove()
        if self.registry is not None:
            self.registry.close()

    # Looking

    def catalog(self):
        """A connection to the main database (autocommit), as the checker reads it."""
        return self.clusters["main"].connect(self.clusters["main"].url_as("postgres", database=MAIN_DATABASE))

    def healthy(self):
        """Every Daphne answers /health with 200 and at least one worker is registered."""
        for web in self.webs:
            try:
                response = httpx.get(f"{web.url}/health", timeout=10)
            except httpx.HTTPError:
                return False
            if response.status_code != 200 or response.json().get("workers", 0) < 1:
                return False
        return True

    def wait_healthy(self, timeout):
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the system is not healthy after {timeout}s (logs: {self.log_dir})")
            time.sleep(0.5)

    def databases_on(self, server):
        """The tenant databases (and templates) on one server, by the soak's prefix."""
        with self.clusters[server].connect() as connection:
            rows = connection.execute(
                "SELECT datname FROM pg_database WHERE starts_with(datname, %s)", [TENANT_PREFIX]
            ).fetchall()
        return {row[0] for row in rows}

    def tenant_database(self, server, name):
        return self.clusters[server].connect(self.clusters[server].url_as("postgres", database=name))

    # Restoring after faults

    def restore(self):
        """Everything up again: frozen Redis thawed, stopped servers and processes started."""
        if self.redis.alive():
            with contextlib.suppress(ProcessLookupError):
                self.redis.process.send_signal(signal.SIGCONT)
        else:
            self.redis.start()
        for cluster in self.clusters.values():
            cluster.start_again()
        for process in [*self.webs, *self.workers]:
            if not process.process.alive():
                process.process.log.close()
                process.start()
