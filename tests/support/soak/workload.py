"""The soak's clients: root admins working on tenants through the REST API (creations shared and isolated on
the three servers, updates, activations, deletions, retries, moves), tenant admins signing in and reading and
writing their users, and websocket clients that drop and reconnect with `?since=`. Each draws its moves from a
random generator seeded from the run's seed; each answer goes into the history."""

import json
import random
import threading
import time

import httpx
from websockets.exceptions import WebSocketException
from websockets.sync.client import connect

from .system import ROOT_EMAIL, ROOT_PASSWORD, TENANT_SERVERS

ADMIN_PASSWORD = "Quartz-Meadow-71#"  # unlike any admin email (Django: "too similar to the email")
USER_PASSWORD = "Violet-Harbour-38#"
SERVERS = ["main", *TENANT_SERVERS]
FINAL_STATUSES = {"Active", "Failed"}
# The operations a root admin may start on a tenant in each status, with their weights.
CHOICES = {
    "Active": {"update": 3, "activate": 2, "delete": 1, "move": 2, "users": 4},
    "Failed": {"retry": 3, "delete": 1},
}


class Api:
    """Requests to whichever Daphne the generator picks; a connection error or timeout is an answer too."""

    def __init__(self, system, rng, timeout=20):
        self.system = system
        self.rng = rng
        self.client = httpx.Client(timeout=timeout)
        self.last_messages = None  # the envelope's messages of the last answer

    def call(self, method, path, *, token=None, tenant=None, body=None):
        web = self.rng.choice(self.system.webs)
        headers = {}
        if token:
            headers["authorization"] = f"Bearer {token}"
        if tenant:
            headers["tenant"] = tenant
        try:
            response = self.client.request(method, f"{web.url}{path}", headers=headers, json=body)
        except httpx.HTTPError as error:
            return None, f"error: {type(error).__name__}"
        try:
            payload = response.json()
        except ValueError:
            payload = {"body": response.text[:200]}
        self.last_messages = None
        if isinstance(payload, dict):
            self.last_messages = [*payload.get("messages", []), *(payload.get("errors") or {}).items()]
        return payload, str(response.status_code)

    def sign_in(self, email, password, tenant=None):
        payload, outcome = self.call("POST", "/api/tokens", tenant=tenant, body={"email": email, "password": password})
        token = payload["data"]["token"] if outcome == "200" else None
        return token, outcome

    def close(self):
        self.client.close()


class TenantClient(threading.Thread):
    """One root admin with tenants of its own (ids `c<n>-<k>`: no two clients race for one, the service's 409s
    serialise the operations on each)."""

    def __init__(self, system, history, seed, index, stop):
        super().__init__(name=f"client-{index}", daemon=True)
        self.rng = random.Random(f"{seed}-client-{index}")
        self.api = Api(system, self.rng)
        self.history = history
        self.index = index
        self.stop = stop
        self.tenants = []  # ids this client saw accepted (202)
        self.maybe = []  # ids whose creation had no answer (it may have been accepted)
        self.acknowledged = {}  # tenant id -> emails of acknowledged (201) users
        self.gone = set()  # ids whose tenant answered 404 (deleted)
        self.token = None
        self.count = 0

    def record(self, kind, tenant, outcome, **detail):
        if outcome[:1] in "45" and self.api.last_messages:
            detail["messages"] = self.api.last_messages
        return self.history.record(self.name, kind, tenant=tenant, outcome=outcome, **detail)

    def run(self):
        try:
            while not self.stop.is_set():
                self.step()
                self.stop.wait(self.rng.uniform(0.2, 1.5))
        finally:
            self.api.close()

    def root_token(self):
        if self.token is None:
            self.token, outcome = self.api.sign_in(ROOT_EMAIL, ROOT_PASSWORD)
            self.record("sign-in", "root", outcome)
        return self.token

    def step(self):
        if not self.root_token():
            return
        live = [tenant for tenant in self.tenants if tenant not in self.gone]
        if not live or self.rng.random() < 0.3:
            return self.create()
        tenant = self.rng.choice(live)
        payload, outcome = self.api.call("GET", f"/api/tenants/{tenant}", token=self.token)
        if outcome == "401":
            self.token = None
        if outcome == "404":
            self.gone.add(tenant)
            self.record("read", tenant, outcome)
        if outcome != "200":
            return
        status = payload["data"]["status"]
        choices = CHOICES.get(status)
        if not choices:
            return  # in flight: come back later
        kind = self.rng.choices(list(choices), weights=list(choices.values()))[0]
        getattr(self, kind)(tenant, payload["data"])

    def create(self):
        self.count += 1
        tenant = f"c{self.index}-{self.count}"
        isolated = self.rng.random() < 0.7
        body = {
            "id": tenant,
            "name": f"Soak {tenant}",
            "adminEmail": f"admin@{tenant}.soak.test",
            "password": ADMIN_PASSWORD,
            "hasIsolatedDatabase": isolated,
        }
        if isolated and self.rng.random() < 0.6:
            body["databaseServer"] = self.rng.choice(SERVERS)
        _, outcome = self.api.call("POST", "/api/tenants", token=self.token, body=body)
        self.record("create", tenant, outcome, isolated=isolated, server=body.get("databaseServer"))
        if outcome == "202":
            self.tenants.append(tenant)
        elif outcome.startswith("error"):
            self.maybe.append(tenant)

    def update(self, tenant, current):
        body = {"name": f"Soak {tenant} {self.rng.randrange(1000)}", "isActive": True}
        _, outcome = self.api.call("PUT", f"/api/tenants/{tenant}", token=self.token, body=body)
        self.record("update", tenant, outcome)

    def activate(self, tenant, current):
        """An update that flips isActive (a deactivated tenant refuses its users: its user steps wait)."""
        body = {"name": current["name"], "isActive": not current["isActive"]}
        _, outcome = self.api.call("PUT", f"/api/tenants/{tenant}", token=self.token, body=body)
        self.record("update", tenant, outcome, isActive=body["isActive"])

    def delete(self, tenant, current):
        _, outcome = self.api.call("DELETE", f"/api/tenants/{tenant}", token=self.token)
        self.record("delete", tenant, outcome)

    def retry(self, tenant, current):
        _, outcome = self.api.call("POST", f"/api/tenants/{tenant}/retry", token=self.token)
        self.record("retry", tenant, outcome)

    def move(self, tenant, current):
        if not current["hasIsolatedDatabase"]:
            return self.update(tenant, current)
        targets = [server for server in SERVERS if server != current.get("databaseServer")]
        body = {"databaseServer": self.rng.choice(targets)}
        _, outcome = self.api.call("POST", f"/api/tenants/{tenant}/move", token=self.token, body=body)
        self.record("move", tenant, outcome, target=body["databaseServer"])

    def users(self, tenant, current):
        """Sign in as the tenant's admin; add a user or read the list (which must hold every user added)."""
        if not current["isActive"]:
            return
        token, outcome = self.api.sign_in(f"admin@{tenant}.soak.test", ADMIN_PASSWORD, tenant=tenant)
        self.record("tenant-sign-in", tenant, outcome)
        if token is None:
            return
        known = set(self.acknowledged.get(tenant, ()))
        if self.rng.random() < 0.5:
            email = f"u{self.rng.randrange(10**9)}@{tenant}.soak.test"
            body = {"email": email, "password": USER_PASSWORD, "firstName": "S", "lastName": "K", "role": "basic"}
            _, outcome = self.api.call("POST", "/api/users", token=token, tenant=tenant, body=body)
            self.record("user-write", tenant, outcome, email=email)
            if outcome == "201":
                self.acknowledged.setdefault(tenant, []).append(email)
            return
        payload, outcome = self.api.call("GET", "/api/users", token=token, tenant=tenant)
        emails = [user["email"] for user in payload["data"]] if outcome == "200" else None
        self.record("user-read", tenant, outcome, missing=sorted(known - set(emails)) if emails is not None else [])


class SocketClient(threading.Thread):
    """The root user's websocket, dropped now and then and reopened with `?since=` the last id it saw; `stall()`
    stops it reading for a while (a slow client). Every persisted frame's id goes into `received`."""

    def __init__(self, system, history, seed, index, stop, since):
        super().__init__(name=f"ws-{index}", daemon=True)
        self.system = system
        self.history = history
        self.rng = random.Random(f"{seed}-ws-{index}")
        self.stop = stop
        self.since = since  # the last notification id before the run: everything after it must arrive
        self.first_since = since
        self.received = []  # (id, event, tenantId) in arrival order
        self.stall_until = 0.0
        self.closing = threading.Event()
        self.api = Api(system, self.rng)

    def stall(self, seconds):
        self.stall_until = time.monotonic() + seconds

    def run(self):
        while not (self.stop.is_set() and self.closing.is_set()):
            self.session()
            self.closing.wait(self.rng.uniform(0.1, 2))

    def session(self, seconds=None):
        token, outcome = self.api.sign_in(ROOT_EMAIL, ROOT_PASSWORD)
        if token is None:
            self.history.record(self.name, "ws-sign-in", outcome=outcome)
            return
        web = self.rng.choice(self.system.webs)
        url = f"{web.ws_url}?access_token={token}&since={self.since}"
        lifetime = time.monotonic() + (seconds or self.rng.uniform(5, 40))
        try:
            with connect(url, open_timeout=10, close_timeout=2) as ws:
                self.history.record(self.name, "ws-open", outcome="open", since=self.since, web=web.index)
                while time.monotonic() < lifetime and not self.closing.is_set():
                    if time.monotonic() < self.stall_until:
                        time.sleep(0.2)
                        continue
                    try:
                        frame = json.loads(ws.recv(timeout=1))
                    except TimeoutError:
                        continue
                    self.take(frame)
        except (OSError, WebSocketException, TimeoutError) as error:
            self.history.record(self.name, "ws-closed", outcome=f"{type(error).__name__}: {error}"[:200])

    def take(self, frame):
        if frame.get("id") is None:
            return
        tenant = (frame.get("data") or {}).get("tenantId")
        self.received.append((frame["id"], frame["event"], tenant))
        self.history.record(self.name, "frame", tenant=tenant, outcome=frame["event"], id=frame["id"])
        self.since = max(self.since, frame["id"])
