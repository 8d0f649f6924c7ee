"""Real SignalR client libraries against the real stack (Daphne + an RQ worker): Microsoft's JavaScript client
(@microsoft/signalr from the npm registry, run by Node, as the original web app used it) and pysignalr from
PyPI. Each signs in, connects to /hubs/notifications, creates a tenant over REST and must receive
TenantCreated with the data of API.md."""

import asyncio
import contextlib
import fcntl
import json
import os
import queue
import re
import shutil
import subprocess
import threading
import time

import httpx
import pytest
from pysignalr.client import SignalRClient
from pysignalr.exceptions import AuthorizationError

from tests.support import live
from tests.support.users import make_root_user

NODE_CLIENT = live.ROOT / "tests" / "support" / "signalr_client"
INSTALL_LOCK = live.ROOT / "var" / "signalr-client-install.lock"  # not in node_modules: `npm ci` empties that
PASSWORD = "Another-Root-Pass-1!"  # make_root_user's
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
CONNECTED_MESSAGE = "Successfully connected to notification hub"


def assert_tenant_created(data, tenant_id, name):
    assert TIMESTAMP.match(data.pop("timestamp")), data
    assert data == {
        "type": "success",
        "message": f"Tenant '{name}' has been successfully created and provisioned.",
        "tenantId": tenant_id,
        "tenantName": name,
    }


@pytest.fixture(scope="session")
def node():
    """Node with the client installed from the committed lock file (`npm ci`, once per lock file change)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node and npm, "Node.js and npm are needed to run Microsoft's SignalR client"
    installed = NODE_CLIENT / "node_modules" / ".package-lock.json"
    lock = NODE_CLIENT / "package-lock.json"
    INSTALL_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(INSTALL_LOCK, "a") as install_lock:  # another run of the suite in this tree may install too
        fcntl.flock(install_lock, fcntl.LOCK_EX)
        if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
            subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NODE_CLIENT, check=True, timeout=600
            )
    return node


@pytest.fixture
def root(live_stack):
    return make_root_user("signalr@diquis.test")


class NodeClient:
    """client.mjs in a child process; its JSON lines are read by a thread so that waits can time out."""

    def __init__(self, node, scenario, stack, email, tenant_id, tenant_name):
        env = {**os.environ, "DIQUIS_EMAIL": email, "DIQUIS_PASSWORD": PASSWORD}
        self.process = subprocess.Popen(
            [node, "client.mjs", scenario, stack.url, tenant_id, tenant_name],
            cwd=NODE_CLIENT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines = queue.Queue()
        self.seen = []
        self.unread = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            try:
                self.lines.put(json.loads(line))
            except ValueError:
                self.lines.put({"event": "output", "text": line.rstrip()})
        self.lines.put(None)

    def wait_for(self, event, timeout):
        """The first line of `event` not yet waited for (lines may come in any order around it)."""
        for item in self.unread:
            if item["event"] == event:
                self.unread.remove(item)
                return item
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                item = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if item is None:
                raise AssertionError(f"the client ended before {event}: {self.seen}")
            self.seen.append(item)
            if item["event"] == "error":
                raise AssertionError(f"the client failed: {item['message']}\n{self.seen}")
            if item["event"] == event:
                return item
            self.unread.append(item)
        raise AssertionError(f"no {event} within {timeout}s: {self.seen}")

    def events(self):
        return [item["event"] for item in self.seen if item["event"] != "log"]

    def logs(self):
        return [item["message"] for item in self.seen if item["event"] == "log"]

    def finish(self, timeout=30):
        self.wait_for("done", timeout)
        assert self.process.wait(timeout=timeout) == 0

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


@contextlib.contextmanager
def node_client(*args):
    client = NodeClient(*args)
    try:
        yield client
    finally:
        client.stop()


@pytest.mark.parametrize("scenario", ["negotiate", "skip-negotiation"])
def test_microsofts_javascript_client_receives_tenant_created(node, live_stack, root, scenario):
    tenant_id = f"js-{scenario}"
    with node_client(node, scenario, live_stack, root.email, tenant_id, "Js Academy") as client:
        started = client.wait_for("started", 60)
        if scenario == "negotiate":
            assert started["connectionId"]  # from the negotiate answer
        else:
            assert started["connectionId"] is None  # no negotiation, straight to the websocket
        assert client.wait_for("Connected", 20)["arguments"] == [CONNECTED_MESSAGE]
        created = client.wait_for("TenantCreated", 90)
        assert len(created["arguments"]) == 1
        assert_tenant_created(created["arguments"][0], tenant_id, "Js Academy")
        client.finish()
    assert client.events().count("TenantCreated") == 1


def test_microsofts_javascript_client_reconnects_by_itself_after_the_server_closed_the_socket(node, live_stack, root):
    with node_client(node, "reconnect", live_stack, root.email, "js-reconnect", "Js Reconnect") as client:
        client.wait_for("ready", 60)
        # Daphne 4.2 can only say goodbye to sockets whose upgrade request is over a second old.
        time.sleep(1.5)
        live_stack.web.stop()
        client.wait_for("reconnecting", 30)
        live_stack.web = live.start_web(live_stack.log_dir, live_stack.port, name="web-restarted", **live_stack.env)
        client.wait_for("reconnected", 90)
        assert client.wait_for("Connected", 20)["arguments"] == [CONNECTED_MESSAGE]
        created = client.wait_for("TenantCreated", 90)
        assert_tenant_created(created["arguments"][0], "js-reconnect", "Js Reconnect")
        client.finish()
    assert "Close message received from server." in client.logs()
    events = client.events()
    assert events.index("reconnecting") < events.index("reconnected") < events.index("TenantCreated")


# --- pysignalr -------------------------------------------------------------------------------------------


def sign_in(stack, email):
    response = httpx.post(f"{stack.url}/api/tokens", json={"email": email, "password": PASSWORD}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["data"]["token"]


async def pysignalr_creation(stack, token, tenant_id):
    """pysignalr negotiates (version 0: its connectionId is the socket's id), then waits for TenantCreated."""
    client = SignalRClient(f"{stack.url}/hubs/notifications", headers={"Authorization": f"Bearer {token}"})
    received = asyncio.Queue()

    def recorder(target):
        async def record(arguments):
            await received.put((target, arguments))

        return record

    for target in ("Connected", "TenantCreated"):
        client.on(target, recorder(target))
    running = asyncio.ensure_future(client.run())
    try:
        assert await asyncio.wait_for(received.get(), 30) == ("Connected", [CONNECTED_MESSAGE])
        async with httpx.AsyncClient(base_url=stack.url, timeout=30) as http:
            response = await http.post(
                "/api/tenants",
                headers={"Authorization": f"Bearer {token}"},
                json={
                    "id": tenant_id,
                    "name": "Py Academy",
                    "adminEmail": f"admin@{tenant_id}.test",
                    "password": "Tenant-Admin-Pass-9!",
                },
            )
            assert response.status_code == 202, response.text
        return await asyncio.wait_for(received.get(), 90)
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await running


def test_pysignalr_receives_tenant_created(live_stack, root):
    token = sign_in(live_stack, root.email)
    target, arguments = asyncio.run(pysignalr_creation(live_stack, token, "py-academy"))
    assert target == "TenantCreated"
    assert len(arguments) == 1
    assert_tenant_created(arguments[0], "py-academy", "Py Academy")


async def pysignalr_run(stack, headers):
    client = SignalRClient(f"{stack.url}/hubs/notifications", headers=headers, retry_count=1)
    await asyncio.wait_for(client.run(), 30)


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-a-jwt"}], ids=["no-token", "bad-token"])
def test_pysignalr_without_a_valid_token_is_refused(live_stack, headers):
    with pytest.raises(AuthorizationError):
        asyncio.run(pysignalr_run(live_stack, headers))
