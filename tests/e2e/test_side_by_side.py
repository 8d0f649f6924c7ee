"""What lets two runs of the suite share one machine (tests/support/parallel_runs.py, tests/support/ports.py):
each run takes a slot no other holds, whose Redis database nobody else uses, and a server it starts binds a
port of its own even when another process takes the one it was handed. Real processes, a private Redis."""

import fcntl
import os
import socket
import subprocess
import sys
import threading

import httpx
import pytest

from tests.support import live, parallel_runs, ports
from tests.support.redis_server import PrivateRedis


@pytest.fixture
def slots(tmp_path, monkeypatch):
    """The slot machinery on lock files of this test's own; every slot taken is given back afterwards."""
    monkeypatch.setattr(parallel_runs, "LOCK_DIRECTORY", tmp_path)
    held_before = list(parallel_runs._held)
    yield parallel_runs
    for handle in parallel_runs._held[len(held_before) :]:
        handle.close()
    parallel_runs._held[:] = held_before


@pytest.fixture
def private_redis(tmp_path):
    with PrivateRedis(tmp_path) as server:
        yield server


def hold_in_another_process(path):
    """A process that holds the lock file at `path` until it is stopped (as another run would)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


HOLD_LOCK = """
import fcntl, sys
handle = open(sys.argv[1], "a+")
fcntl.flock(handle, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.read()
"""


def test_a_slot_another_run_holds_is_skipped(slots):
    holder = hold_in_another_process(slots.lock_path(1))
    try:
        assert slots.take_slot(lambda slot: None) == 2
    finally:
        holder.communicate("")


def test_a_slot_is_held_by_the_run_until_its_process_ends(slots):
    assert slots.take_slot(lambda slot: None) == 1
    with open(slots.lock_path(1), "a+") as other, pytest.raises(BlockingIOError):
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_a_slot_whose_redis_database_someone_else_uses_is_skipped(slots, private_redis):
    private_redis.client(db=1).set("somebody-elses", "data")
    assert slots.take_slot(private_redis.url) == 2
    assert private_redis.client(db=1).get("somebody-elses") == b"data"


def test_a_slot_a_run_had_before_is_taken_whatever_it_left_in_redis(slots, private_redis):
    slots.lock_path(1).touch()  # a run of the suite had slot 1, and was killed before its clean-up
    private_redis.client(db=1).set("left-by-that-run", "x")
    assert slots.take_slot(private_redis.url) == 1


def test_a_web_whose_port_is_taken_before_it_binds_starts_on_another(transactional_db, tmp_path, monkeypatch):
    """The port handed to Daphne is bound by somebody else in the meantime: Daphne is started again on a new
    one, and the stack is the one listening there (not whoever answers on the taken port)."""
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken = squatter.getsockname()[1]
    handed = iter([taken])
    free_port = ports.free_port
    monkeypatch.setattr(ports, "free_port", lambda: next(handed, None) or free_port())
    web = live.start_web(tmp_path)
    try:
        assert web.port != taken
        assert ports.listens(web.pid, web.port) and not ports.listens(web.pid, taken)
        assert httpx.get(f"{web.url}/health", timeout=30).json()["database"] == "ok"
    finally:
        web.stop()
        squatter.close()


def test_a_private_redis_restarted_on_a_port_taken_meanwhile_waits_for_it(private_redis):
    port = private_redis.port
    private_redis.stop()
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", port))
    squatter.listen()
    threading.Timer(1.0, squatter.close).start()  # the other holder lets go a moment later
    private_redis.start()
    assert private_redis.port == port
    assert ports.listens(private_redis.process.pid, port)
    assert private_redis.client().ping()


def test_listens_tells_a_process_own_listening_socket_from_anyone_elses():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        other = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
        try:
            assert ports.listens(os.getpid(), port)
            assert not ports.listens(other.pid, port)
        finally:
            other.communicate(b"")
    assert not ports.listens(os.getpid(), port)
