"""A soak killed with SIGKILL leaves nothing running (tests/support/soak/reaper.py): its redis-server, a process
it started and what that one started, and its PostgreSQL cluster are gone soon after, and so is its directory; when
its reaper was killed too, the next run's start reaps them."""

import subprocess
import sys
import time

import pytest

from tests.support.live import ROOT, gone
from tests.support.postgres_clusters import PostgresCluster
from tests.support.soak.reaper import Registry

SCRIPT = """
import os, signal, subprocess, sys
from tests.support.postgres_clusters import PostgresCluster
from tests.support.soak.reaper import Registry
from tests.support.redis_server import PrivateRedis
from tests.support.soak.reaper import Registry

registry = Registry(runs=sys.argv[1])
redis = PrivateRedis(sys.argv[2], own_session=True, on_start=registry.add).start()
shell = subprocess.Popen(["sh", "-c", "sleep 600 & echo $!; wait"], stdout=subprocess.PIPE, text=True)
registry.add(shell.pid)
sleeper = shell.stdout.readline().strip()
cluster = PostgresCluster.start("reaped", logical=False)
print(registry.reaper.pid, redis.process.pid, shell.pid, sleeper, *cluster.processes(), flush=True)
if sys.argv[3] == "reaper-killed-too":
    registry.reaper.kill()
    registry.reaper.wait()
os.kill(os.getpid(), signal.SIGKILL)
"""


def wait_gone(pids, timeout=30):
    deadline = time.monotonic() + timeout
    while (alive := [pid for pid in pids if not gone(pid)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive


@pytest.mark.parametrize("how", ["reaper-reaps", "reaper-killed-too"])
def test_what_a_soak_killed_with_sigkill_started_dies_with_it(tmp_path, how):
    runs = tmp_path / "runs"
    # Its output is read up to its first line only: what it started holds the pipe open until it is reaped.
    argv = [sys.executable, "-c", SCRIPT, str(runs), str(tmp_path), how]
    with subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True) as child:
        line = child.stdout.readline()
        assert child.wait(timeout=120) == -9
        reaper, redis, shell, sleeper, *postgres = map(int, line.split())
        assert postgres
        if how == "reaper-killed-too":
            assert wait_gone([reaper]) == []
            assert wait_gone([redis], timeout=2) == [redis]  # nobody reaps it until the next run starts
            Registry(runs=runs).close()
        assert wait_gone([redis, shell, sleeper, *postgres]) == []
    assert wait_gone([reaper]) == []
    assert list(runs.iterdir()) == []
    assert not PostgresCluster("reaped", logical=False).directory.exists()
