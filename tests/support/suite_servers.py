"""The PostgreSQL and Redis servers `make test` runs the suite against (bin/test).

pytest.ini points the suite at DIQUIS_TEST_POSTGRES and DIQUIS_TEST_REDIS (host:port; 127.0.0.1:5432 and
127.0.0.1:6379 unless set). When nothing listens at one of them, and the environment does not name the suite's
own DATABASE_URL / REDIS_URL (the user's servers, then: not ours to replace), a private server takes its place
for the run: a PostgreSQL cluster under var/clusters/ (tests/support/postgres_clusters.py, as the fleet's extra
servers) or a redis-server (tests/support/redis_server.py), each on a free port, stopped and deleted afterwards.
A server that does listen at the address is used as it is, and never stopped or reconfigured: on a shared
machine, the main PostgreSQL and Redis serve CI and benchmarks too.
"""

import configparser
import contextlib
import os
import shutil
import socket
from pathlib import Path

from tests.support.parallel_runs import env_default
from tests.support.postgres_clusters import BIN, ROOT, PostgresCluster
from tests.support.redis_server import PrivateRedis

POSTGRES = "DIQUIS_TEST_POSTGRES"
REDIS = "DIQUIS_TEST_REDIS"
URL_VARIABLES = {POSTGRES: "DATABASE_URL", REDIS: "REDIS_URL"}
PACKAGES = {POSTGRES: "postgresql", REDIS: "redis-server"}  # Debian's
NAMES = {POSTGRES: "PostgreSQL", REDIS: "Redis"}
CLUSTER_NAME = "suite"


def address(environ, server):
    """host:port of the suite's server of this kind: the environment's, else pytest.ini's."""
    return environ.get(server) or env_default(pytest_ini_env(), server)


def pytest_ini_env():
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / "pytest.ini")
    return parser["pytest"]["env"].splitlines()


def listens(host_port, timeout=2):
    """Does something accept a TCP connection at `host_port`?"""
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except OSError:
        return False


def servers_to_start(environ):
    """The servers (POSTGRES, REDIS) to start for a run in `environ`: those at whose address nothing listens,
    unless the environment names the suite's URL for it."""
    return [
        server
        for server in (POSTGRES, REDIS)
        if URL_VARIABLES[server] not in environ and not listens(address(environ, server))
    ]


def programs(server):
    """The programs a private server of this kind is started with."""
    if server == POSTGRES:
        return [BIN / "initdb", BIN / "pg_ctl"]
    return [Path(shutil.which("redis-server") or "redis-server")]


def missing_programs(servers, environ):
    """One line saying what is missing to start `servers`, and the apt-get install that brings it; None when
    nothing is."""
    lacking = {server: [p for p in programs(server) if not os.access(p, os.X_OK)] for server in servers}
    lacking = {server: paths for server, paths in lacking.items() if paths}
    if not lacking:
        return None
    nothing = " and ".join(address(environ, server) for server in lacking)
    paths = ", ".join(str(path) for server_paths in lacking.values() for path in server_paths)
    packages = " ".join(PACKAGES[server] for server in lacking)
    return f"make test: nothing listens on {nothing}, and a private server needs {paths}: apt-get install {packages}"


@contextlib.contextmanager
def private_servers(servers, directory):
    """Start `servers` (privately, on free ports); yield the environment that points the suite at them; stop and
    delete them on the way out, whatever ends the run."""
    with contextlib.ExitStack() as started:
        started.callback(shutil.rmtree, directory, ignore_errors=True)  # the private Redis's log
        environment = {}
        if POSTGRES in servers:
            cluster = started.enter_context(PostgresCluster.start(CLUSTER_NAME, logical=False))
            environment[POSTGRES] = f"{cluster.host}:{cluster.port}"
        if REDIS in servers:
            redis = started.enter_context(PrivateRedis(directory, own_session=True))
            environment[REDIS] = f"127.0.0.1:{redis.port}"
        yield environment
