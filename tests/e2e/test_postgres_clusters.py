"""The private PostgreSQL clusters of tests/support/postgres_clusters.py, on real servers: the settings each runs
with, a stop in the middle of traffic and the start after it, password authentication, and removal, also of what
a killed run left behind."""

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from tests.support import live, ports
from tests.support.postgres_clusters import CLUSTERS_DIRECTORY, PostgresCluster, remove_leftover_clusters, run_label

ROOT = Path(__file__).resolve().parents[2]


def setting(cluster, name):
    with cluster.connect() as connection:
        return connection.execute(f"SHOW {name}").fetchone()[0]


def test_the_logical_server_has_logical_wal_and_the_plain_one_does_not(extra_postgres_servers):
    logical, plain = extra_postgres_servers
    assert setting(logical, "wal_level") == "logical"
    assert setting(plain, "wal_level") == "replica"
    assert {logical.port, plain.port}.isdisjoint({5432}) and logical.port != plain.port
    for cluster in extra_postgres_servers:
        assert cluster.url == f"postgres://postgres@127.0.0.1:{cluster.port}/postgres"
        assert cluster.directory.parent == CLUSTERS_DIRECTORY.resolve()
        assert cluster.directory.name == f"{run_label()}-{cluster.name}"
        assert run_label().split("-")[0] == os.environ["DIQUIS_TEST_SLOT"]
        assert [setting(cluster, name) for name in ("fsync", "full_page_writes")] == ["off"] * 2
        assert setting(cluster, "synchronous_commit") == "on"
        assert setting(cluster, "listen_addresses") == "127.0.0.1"


def test_a_server_stopped_mid_traffic_refuses_at_once_and_starts_again_with_the_committed_rows(
    extra_postgres_servers,
):
    cluster = extra_postgres_servers.plain
    with cluster.connect() as connection:
        connection.execute("DROP TABLE IF EXISTS traffic")
        connection.execute("CREATE TABLE traffic (id serial PRIMARY KEY)")
    committed, failure = [0], []

    def write_until_stopped():
        with cluster.connect() as connection:
            try:
                while True:
                    connection.execute("INSERT INTO traffic DEFAULT VALUES")
                    committed[0] += 1
            except psycopg.OperationalError as error:
                failure.append(error)

    writer = threading.Thread(target=write_until_stopped)
    writer.start()
    try:
        while committed[0] < 200 and writer.is_alive():
            time.sleep(0.01)
        cluster.stop("fast")
        writer.join(timeout=10)
        assert failure, "the writer's session outlived its server"
        started = time.monotonic()
        with pytest.raises(psycopg.OperationalError, match="Connection refused"):
            cluster.connect()
        assert time.monotonic() - started < 1
        port = cluster.port
    finally:
        cluster.start_again()
    assert cluster.port == port
    with cluster.connect() as connection:
        # A commit the server made but could not acknowledge before it ended the session counts too.
        assert committed[0] <= connection.execute("SELECT count(*) FROM traffic").fetchone()[0] <= committed[0] + 1
        connection.execute("DROP TABLE traffic")


def test_a_server_killed_right_after_a_commit_still_has_it_after_the_restart(extra_postgres_servers):
    """What the fault tests and the soak stop servers with (`-m immediate`: a crash) loses no acknowledged commit:
    with synchronous_commit off, the commits of the last moments before the kill were gone after the restart."""
    cluster = extra_postgres_servers.plain
    with cluster.connect() as connection:
        connection.execute("DROP TABLE IF EXISTS acknowledged")
        connection.execute("CREATE TABLE acknowledged (id serial PRIMARY KEY)")
    try:
        with cluster.connect() as connection:
            for _ in range(20):
                connection.execute("INSERT INTO acknowledged DEFAULT VALUES")  # each one committed (autocommit)
        cluster.stop("immediate")
    finally:
        cluster.start_again()
    with cluster.connect() as connection:
        assert connection.execute("SELECT count(*) FROM acknowledged").fetchone()[0] == 20
        connection.execute("DROP TABLE acknowledged")


def test_the_password_roles_log_in_with_their_own_password_only(extra_postgres_servers):
    cluster = extra_postgres_servers.logical
    with cluster.connect(cluster.createdb_url) as connection:
        assert connection.execute("SELECT current_user").fetchone() == ("diquis_platform",)
        connection.execute("CREATE DATABASE made_by_the_createdb_role")
        connection.execute("DROP DATABASE made_by_the_createdb_role")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        cluster.connect(cluster.wrong_password_url)
    with pytest.raises(psycopg.OperationalError, match="no password supplied"):
        cluster.connect(cluster.url_as("diquis_platform"))
    with cluster.connect(cluster.no_createdb_url) as connection:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            connection.execute("CREATE DATABASE refused_to_the_limited_role")


def test_the_createdb_role_is_not_a_superuser(extra_postgres_servers):
    cluster = extra_postgres_servers.plain
    with cluster.connect() as connection:
        roles = connection.execute("SELECT rolname, rolcreatedb, rolsuper FROM pg_roles WHERE rolname LIKE 'diquis%'")
        assert sorted(roles.fetchall()) == [("diquis_limited", False, False), ("diquis_platform", True, False)]


def alive(pid):
    """Is `pid` a live process? A zombie is not: it has exited, and here nobody may reap it (the machine's init
    process leaves orphans' zombies about)."""
    return not live.gone(pid)


def assert_gone(cluster, pids):
    assert not cluster.directory.exists()
    assert not cluster.running()
    assert not [pid for pid in pids if alive(pid)], "processes of the removed cluster survive"
    with pytest.raises(psycopg.OperationalError, match="Connection refused"):
        psycopg.connect(cluster.url, connect_timeout=2)


def test_removal_leaves_no_directory_and_no_process():
    cluster = PostgresCluster.start("removed", logical=False)
    pids = cluster.processes()
    assert cluster.postmaster_pid() in pids and len(pids) > 1  # the postmaster and its background processes
    with cluster.connect() as connection:
        connection.execute("SELECT 1")
        cluster.remove()
    assert_gone(cluster, pids)


def start_in_another_process(name, then):
    """Start a cluster in a child Python process (of this run's slot), which then does `then`; return what it
    printed: the port, the postmaster's pid and the pids of all the server's processes."""
    script = f"""
import os, signal
from tests.support.postgres_clusters import PostgresCluster
cluster = PostgresCluster.start({name!r}, logical=True)
print(cluster.port, cluster.postmaster_pid(), *cluster.processes(), flush=True)
{then}
"""
    child = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    port, postmaster, *pids = map(int, child.stdout.split())
    return port, postmaster, pids


def test_a_process_that_exits_without_removing_its_cluster_removes_it_on_the_way_out():
    port, _, pids = start_in_another_process("exited", then="raise SystemExit(3)")
    cluster = PostgresCluster("exited", logical=True)
    cluster.port = port
    assert_gone(cluster, pids)


def test_the_cluster_a_killed_run_left_is_stopped_and_deleted_by_the_next_start():
    port, postmaster, pids = start_in_another_process("killed", then="os.kill(os.getpid(), signal.SIGKILL)")
    leftover = PostgresCluster("killed", logical=True)
    assert leftover.directory.exists() and leftover.postmaster_pid() == postmaster
    with PostgresCluster.start("killed", logical=False) as cluster:
        assert not [pid for pid in pids if alive(pid)]
        assert setting(cluster, "wal_level") == "replica"  # a new cluster, not the old one started again
    assert_gone(cluster, pids)


def test_the_sweep_removes_what_dead_processes_left_and_leaves_the_living_alone(extra_postgres_servers):
    _, postmaster, pids = start_in_another_process("orphan", then="os.kill(os.getpid(), signal.SIGKILL)")
    orphan = PostgresCluster("orphan", logical=True)
    assert orphan.postmaster_pid() == postmaster
    remove_leftover_clusters()
    assert not orphan.directory.exists() and not [pid for pid in pids if alive(pid)]
    assert all(cluster.running() for cluster in extra_postgres_servers)


@pytest.fixture
def port_taken():
    """A port somebody else listens on (on the address the clusters listen on)."""
    with socket.socket() as taker:
        taker.bind(("127.0.0.1", 0))
        taker.listen()
        yield taker


def test_a_first_start_on_a_port_somebody_took_moves_to_another(port_taken, monkeypatch):
    taken = port_taken.getsockname()[1]
    handed, free_port = iter([taken]), ports.free_port
    monkeypatch.setattr(ports, "free_port", lambda: next(handed, None) or free_port())
    with PostgresCluster.start("clash", logical=False) as cluster:
        assert cluster.port != taken and setting(cluster, "port") == str(cluster.port)


def test_a_start_again_waits_for_whoever_took_the_port_meanwhile():
    with PostgresCluster.start("waits", logical=False) as cluster:
        port = cluster.port
        cluster.stop()
        taker = socket.socket()
        # The server's side of the connections it has just closed may linger in TIME_WAIT on the port: as any
        # server does (PostgreSQL too), bind over those; a second listener on the port is still refused.
        taker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taker.bind(("127.0.0.1", port))
        taker.listen()
        threading.Timer(1, taker.close).start()
        cluster.start_again()
        assert cluster.port == port and setting(cluster, "port") == str(port)
