"""The production web tier: two Daphne processes on one port under supervisord (deploy/supervisord.conf), a
real worker and Redis. A user's websockets on two different processes each get every frame, once; HTTP is
served through the one port by both processes."""

import asyncio
import contextlib
import http.client
import json
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from websockets.sync.client import connect

from bench.lean_http import Connection
from tenants.tokens import issue_tokens
from tests.support import live
from tests.support.live import drain, recv_json, wait_for_event
from tests.support.ports import free_port, listens
from tests.support.tenant_databases import drop_test_tenant_databases
from tests.support.users import make_root_user
from tests.support.web_processes import RunningWebProcesses, start_web_processes

ATTEMPTS = 40  # connections tried before giving up on reaching the second process


@pytest.fixture
def two_processes(transactional_db, tmp_path):
    """Two Daphne processes under supervisord, and one RQ worker, on the test database."""
    web = start_web_processes(tmp_path, 2, live.stack_env(DIQUIS_WEB_DATABASE_POOL="true"))
    worker = live.start_worker(tmp_path)
    try:
        yield web
    finally:
        worker.stop()
        web.stop()
        drop_test_tenant_databases()


def wait_for_web(run, port, timeout=120):
    """The supervisord that `run` (bin/run) started, once it runs two Daphne processes, each listening on `port`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert run.alive(), run.output()[-3000:]
        supervisord = run.started(b"supervisord")
        if supervisord is not None:
            web = RunningWebProcesses(supervisord, port, 2)
            with contextlib.suppress(OSError):
                pids = web.daphne_pids
                if len(pids) == 2 and all(listens(pid, port) for pid in pids):  # started is not yet listening
                    return web
        time.sleep(0.5)
    raise AssertionError(f"bin/run did not start two web processes in {timeout} s:\n{run.output()[-3000:]}")


def on_each_process(web, open_one, close):
    """Open connections (`open_one()` -> (connection, client port)) until one is held by each Daphne process;
    close the others. Returns {pid: connection}."""
    held, spare = {}, []
    for _ in range(ATTEMPTS):
        connection, client_port = open_one()
        pid = web.serving(client_port)
        if pid is not None and pid not in held:
            held[pid] = connection
        else:
            spare.append(connection)
        if len(held) == web.count:
            break
    for connection in spare:
        close(connection)
    assert sorted(held) == sorted(web.daphne_pids), f"connections reached only {sorted(held)}"
    return held


def open_socket(stack, web, token):
    ws = stack.enter_context(connect(f"{web.ws_url}?access_token={token}", open_timeout=10))
    assert recv_json(ws, 10)["event"] == "Connected"
    return ws, ws.local_address[1]


def open_http(web):
    connection = http.client.HTTPConnection("127.0.0.1", web.port, timeout=10)
    connection.request("GET", "/health")  # keep-alive: the connection stays with the process that answered
    response = connection.getresponse()
    assert (response.status, json.loads(response.read())["database"]) == (200, "ok")
    return connection, connection.sock.getsockname()[1]


def test_a_user_with_sockets_on_two_processes_gets_each_frame_on_both_once(two_processes):
    web = two_processes
    user = make_root_user()
    token = issue_tokens(user)["token"]
    with contextlib.ExitStack() as stack:
        sockets = on_each_process(web, lambda: open_socket(stack, web, token), lambda ws: ws.close())
        connection, _ = open_http(web)
        body = {
            "id": "spread",
            "name": "Spread Academy",
            "adminEmail": "admin@spread.test",
            "password": "Tenant-Admin-Pass-9!",
            "hasIsolatedDatabase": False,
        }
        headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
        connection.request("POST", "/api/tenants", body=json.dumps(body), headers=headers)
        assert connection.getresponse().status == 202
        frames = {}
        for pid, ws in sockets.items():
            created, before = wait_for_event(ws, "TenantCreated", timeout=60)
            frames[pid] = [*before, created, *drain(ws, 1.5)]
    first, second = ([(frame["event"], frame["id"]) for frame in seen] for seen in frames.values())
    assert [event for event, _ in first] == ["TenantProvisioningProgress", "TenantCreated"], frames
    assert second == first, frames  # the same notifications (same ids), each once


def test_http_is_served_by_both_processes_through_the_one_port(two_processes):
    web = two_processes
    connections = on_each_process(web, lambda: open_http(web), lambda c: c.close())
    for pid, connection in connections.items():
        connection.request("GET", "/api/tenants")  # no token: the envelope's 401, from this very process
        response = connection.getresponse()
        assert response.status == 401, pid
        assert json.loads(response.read())["succeeded"] is False
        assert web.serving(connection.sock.getsockname()[1]) == pid
        connection.close()


BURST = 32  # keep-alive connections opened at once, as a pool of clients or a proxy opens them
FAIR_SHARE = 6  # each of two processes gets at least this many of them (a fair coin: 1 in ~10,000 runs fewer)


def test_a_burst_of_keep_alive_connections_is_spread_over_both_processes(two_processes):
    """Each process has a listening socket of its own on the port (SO_REUSEPORT), so the kernel deals the
    connections out; on one shared socket the process that woke first took the whole burst (16 of 16 here), and a
    keep-alive connection stays where it landed, so the other process idled."""
    web = two_processes

    async def burst():
        connections = [Connection(web.url) for _ in range(BURST)]
        try:
            answers = await asyncio.gather(*(c.request("GET", "/health") for c in connections))
            assert [status for status, _ in answers] == [200] * BURST
            return Counter(web.serving(c.client_port) for c in connections)
        finally:
            for connection in connections:
                await connection.close()

    spread = asyncio.run(burst())
    assert set(spread) == set(web.daphne_pids) and min(spread.values()) >= FAIR_SHARE, spread


def test_make_run_with_web_concurrency_runs_that_many_daphne_processes_on_its_port(transactional_db, tmp_path):
    """bin/run (what `make run` starts) with WEB_CONCURRENCY=2: supervisord and two Daphne processes beside the
    worker, all answering on PORT, all gone after SIGTERM."""
    port = free_port()
    env = live.stack_env(PORT=port, WEB_CONCURRENCY=2, VENV=Path(sys.executable).parent.parent)
    run = live.Process("run", ["bin/run"], env, tmp_path)
    try:
        web = wait_for_web(run, port)
        connections = on_each_process(web, lambda: open_http(web), lambda c: c.close())
        for connection in connections.values():
            connection.close()
    finally:
        started = run.children() if run.alive() else []
        run.stop(timeout=30)
    assert started and all(live.gone(pid) for pid in started), run.output()[-3000:]


def test_make_run_with_web_concurrency_on_a_port_in_use_ends_and_says_so(transactional_db, tmp_path):
    """The Daphne processes bind the port themselves (under supervisord, which would only restart them): bin/run
    finds the port held first and ends, as the one-process command does."""
    with socket.create_server(("127.0.0.1", 0)) as held:
        port = held.getsockname()[1]
        env = live.stack_env(PORT=port, WEB_CONCURRENCY=2, VENV=Path(sys.executable).parent.parent)
        run = subprocess.run(["bin/run"], env=env, capture_output=True, text=True, timeout=120, cwd=live.ROOT)
    assert run.returncode == 1 and f"127.0.0.1:{port} is in use" in run.stderr, run.stderr[-3000:]
