"""Moves and drains through the API and a real worker, between the main server and the suite's two extra clusters,
while a client keeps writing to the tenant being moved.

The writer counts what it was told: every user whose POST /api/users got a 201 (or a 409 when it asked again
after a refusal: the write had landed) must be in the tenant's database afterwards, once; none it was refused
may be. Figures (`pytest -s`): how long the move took and the longest the writer was refused.
"""

import threading
import time

import httpx
import pytest

from jobs.models import Job
from notifications.models import Notification
from tenants.connections import use_tenant
from tenants.models import MAIN_SERVER, DatabaseServer, ProvisioningStatus, ServerStatus, Tenant, User
from tenants.provisioning import moves
from tenants.provisioning.steps import COPY_DATA, DROP_SOURCE, PREPARE_TARGET, SWITCHOVER, VERIFY_COPY
from tests.support.fault_injection import wait_until
from tests.support.fleet import databases_on, drop_test_databases_on, register_cluster
from tests.support.live import LiveStack, gone
from tests.support.live_tenants import figure, root_token
from tests.support.postgres_clusters import SUPERUSER
from tests.support.redis_server import PrivateRedis
from tests.support.tenant_databases import ADMIN_PASSWORD, drop_test_tenant_databases, prefixed_databases

S = ProvisioningStatus
WRITER_PASSWORD = "Writer-Pass-2026!"
STACK_ENV = {"USER_CREATE_RATE": "100000/min", "DIQUIS_JOB_RETRY_INTERVALS": "1"}


@pytest.fixture
def start_fleet(transactional_db, extra_postgres_servers, tmp_path, fault):
    """Starts the live stack (with the faults file, and any other settings) on the fleet: `main`, `pg-logical`,
    `pg-plain` (superusers: they may publish and subscribe). Everything the tests made goes afterwards, on every
    server."""
    registered = {
        "pg-logical": register_cluster(extra_postgres_servers.logical, "pg-logical", role=SUPERUSER),
        "pg-plain": register_cluster(extra_postgres_servers.plain, "pg-plain", role=SUPERUSER),
    }
    stacks = []

    def start(**env):
        stacks.append(LiveStack(tmp_path, DIQUIS_FAULTS_FILE=str(fault.path), **{**STACK_ENV, **env}))
        return stacks[-1]

    try:
        yield start
    finally:
        for stack in stacks:
            stack.stop()
        for cluster in extra_postgres_servers:
            cluster.start_again()
        for tenant in Tenant.objects.filter(has_isolated_database=True, database_name__isnull=False):
            for server in (MAIN_SERVER, *registered):
                moves.drop_copy(tenant.database_name, server=server)
        for cluster in extra_postgres_servers:
            drop_test_databases_on(cluster)
        drop_test_tenant_databases()


@pytest.fixture
def fleet(start_fleet):
    return start_fleet()


def api(stack, method, path, *, token, tenant=None, json=None, timeout=30):
    headers = {"authorization": f"Bearer {token}"}
    if tenant:
        headers["tenant"] = tenant
    return httpx.request(method, f"{stack.url}{path}", headers=headers, json=json, timeout=timeout)


def create_tenant(stack, token, tenant_id, server):
    body = {
        "id": tenant_id,
        "name": f"{tenant_id.title()} Academy",
        "adminEmail": f"admin@{tenant_id}.test",
        "password": ADMIN_PASSWORD,
        "hasIsolatedDatabase": True,
        "databaseServer": server,
    }
    assert api(stack, "POST", "/api/tenants", token=token, json=body).status_code == 202
    wait_until(lambda: settled(tenant_id), timeout=120, what=f"{tenant_id} Active")
    response = httpx.post(
        f"{stack.url}/api/tokens",
        headers={"tenant": tenant_id},
        json={"email": f"admin@{tenant_id}.test", "password": ADMIN_PASSWORD},
        timeout=30,
    )
    return response.json()["data"]["token"]


def settled(tenant_id, server=None):
    """Active (on `server`), and no job of the tenant open any more."""
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None or tenant.status != S.ACTIVE or (server and tenant.database_server_id != server):
        return False
    return not Job.objects.filter(subject=f"tenant:{tenant_id}", status__in=Job.OPEN_STATUSES).exists()


class Writer(threading.Thread):
    """Creates users in the tenant one after the other until stopped, and keeps count of what it was told."""

    def __init__(self, stack, token, tenant_id):
        super().__init__(daemon=True)
        self.stack, self.token, self.tenant_id = stack, token, tenant_id
        self.acknowledged, self.refusals, self.refused_at, self.unexpected = [], [], [], []
        self.longest_refusal = 0.0
        self.stopped = threading.Event()

    def write(self, email):
        """POST until the write is acknowledged; returns once it is (201, or 409 on a repeat)."""
        refused_since = None
        repeat = False
        while True:
            body = {"email": email, "password": WRITER_PASSWORD, "firstName": "W", "lastName": "R", "role": "basic"}
            try:
                response = api(self.stack, "POST", "/api/users", token=self.token, tenant=self.tenant_id, json=body)
            except httpx.HTTPError as error:
                self.unexpected.append(repr(error))
                return
            if response.status_code == 201 or (repeat and response.status_code == 409):
                if refused_since is not None:
                    self.longest_refusal = max(self.longest_refusal, time.monotonic() - refused_since)
                self.acknowledged.append(email)
                return
            if response.status_code == 503:
                if response.json()["messages"] != ["Tenant is being moved; retry shortly"]:
                    self.unexpected.append(f"{response.status_code} {response.text}")
                self.refusals.append(int(response.headers.get("Retry-After", 0)))
                self.refused_at.append(time.monotonic())
                refused_since = refused_since or time.monotonic()
                repeat = True
                time.sleep(0.1)  # a real client waits Retry-After; a short wait measures the window closely
                continue
            self.unexpected.append(f"{response.status_code} {response.text}")
            return

    def run(self):
        number = 0
        while not self.stopped.is_set():
            self.write(f"writer{number}@{self.tenant_id}.test")
            number += 1

    def stop(self):
        self.stopped.set()
        self.join(timeout=60)


def writer_emails(tenant_id):
    tenant = Tenant.objects.get(pk=tenant_id)
    with use_tenant(tenant):
        return list(User.objects.filter(email__startswith="writer").values_list("email", flat=True))


def where_is(database_name, extra_postgres_servers):
    """The servers that hold a database of that name."""
    clusters = {"pg-logical": extra_postgres_servers.logical, "pg-plain": extra_postgres_servers.plain}
    found = [name for name, cluster in clusters.items() if database_name in databases_on(cluster)]
    if database_name in prefixed_databases():
        found.append(MAIN_SERVER)
    return found


def move_with_a_writer(stack, tenant_id, target, *, token, admin_token):
    writer = Writer(stack, admin_token, tenant_id)
    writer.start()
    wait_until(lambda: len(writer.acknowledged) >= 3, timeout=60, what="the writer under way")
    started = time.monotonic()
    response = api(stack, "POST", f"/api/tenants/{tenant_id}/move", token=token, json={"databaseServer": target})
    assert response.status_code == 202, response.text
    wait_until(lambda: settled(tenant_id, target), timeout=180, what=f"{tenant_id} moved to {target}")
    took = time.monotonic() - started
    after = len(writer.acknowledged)
    wait_until(lambda: len(writer.acknowledged) >= after + 3, timeout=60, what="writes after the move")
    writer.stop()
    return writer, took


def assert_none_lost_none_duplicated(writer, tenant_id):
    assert writer.unexpected == []
    stored = writer_emails(tenant_id)
    assert len(stored) == len(set(stored))
    assert set(stored) == set(writer.acknowledged)


@pytest.mark.parametrize(
    ("source", "target", "method"),
    [("pg-logical", "pg-plain", moves.LOGICAL), ("pg-plain", MAIN_SERVER, moves.DUMP)],
)
def test_a_move_under_writes_loses_and_duplicates_nothing(fleet, extra_postgres_servers, source, target, method):
    token = root_token()
    tenant_id = f"busy-{source[3:] if source != MAIN_SERVER else 'main'}"
    admin_token = create_tenant(fleet, token, tenant_id, source)
    writer, took = move_with_a_writer(fleet, tenant_id, target, token=token, admin_token=admin_token)
    figure(f"move {source} -> {target} ({method}) under writes: wall time (s)", round(took, 2))
    figure(f"move {source} -> {target} ({method}): longest write refusal (s)", round(writer.longest_refusal, 2))
    figure(f"move {source} -> {target} ({method}): acknowledged writes", len(writer.acknowledged))
    assert_none_lost_none_duplicated(writer, tenant_id)
    tenant = Tenant.objects.get(pk=tenant_id)
    assert where_is(tenant.database_name, extra_postgres_servers) == [target]
    if method == moves.LOGICAL:
        assert writer.longest_refusal <= 3
    # Sign-in and reads on the new server.
    users = api(fleet, "GET", "/api/users", token=admin_token, tenant=tenant_id)
    assert users.status_code == 200
    assert {u["email"] for u in users.json()["data"]} >= set(writer.acknowledged)


def test_a_logical_move_refuses_no_write_before_its_switchover(fleet, extra_postgres_servers, fault):
    """The tenant stays writable while the target is prepared and the subscription copies and streams: held just
    before the switchover, the move has refused none of the writes that ran all along (each holds its pooled
    session through its password hash, so a session the move ended under it would have been refused)."""
    token = root_token()
    admin_token = create_tenant(fleet, token, "streamed", "pg-logical")
    writer = Writer(fleet, admin_token, "streamed")
    writer.start()
    wait_until(lambda: len(writer.acknowledged) >= 3, timeout=60, what="the writer under way")
    fault.hold(SWITCHOVER, "streamed")
    response = api(fleet, "POST", "/api/tenants/streamed/move", token=token, json={"databaseServer": "pg-plain"})
    assert response.status_code == 202, response.text
    fault.wait_held()
    held = len(writer.acknowledged)
    wait_until(lambda: len(writer.acknowledged) >= held + 3, timeout=60, what="writes while the move is held")
    assert writer.refused_at == []
    fault.release()
    wait_until(lambda: settled("streamed", "pg-plain"), timeout=180, what="streamed moved to pg-plain")
    writer.stop()
    assert_none_lost_none_duplicated(writer, "streamed")


@pytest.mark.parametrize(
    ("source", "target", "step"),
    [
        ("pg-plain", "pg-logical", PREPARE_TARGET),
        ("pg-plain", "pg-logical", COPY_DATA),
        ("pg-plain", "pg-logical", VERIFY_COPY),
        ("pg-plain", "pg-logical", DROP_SOURCE),
        ("pg-logical", "pg-plain", COPY_DATA),
        ("pg-logical", "pg-plain", SWITCHOVER),
    ],
)
def test_a_move_whose_worker_is_killed_mid_step_resumes_and_ends_on_exactly_one_server(
    fleet, extra_postgres_servers, fault, source, target, step
):
    token = root_token()
    tenant_id = f"killed-{step.label}"
    admin_token = create_tenant(fleet, token, tenant_id, source)
    for i in range(3):
        body = {"email": f"before{i}@{tenant_id}.test", "password": WRITER_PASSWORD, "firstName": "B", "lastName": "F"}
        assert api(fleet, "POST", "/api/users", token=admin_token, tenant=tenant_id, json=body).status_code == 201
    fault.hold(step, tenant_id)
    assert (
        api(fleet, "POST", f"/api/tenants/{tenant_id}/move", token=token, json={"databaseServer": target}).status_code
        == 202
    )
    horse = fault.wait_held()["pid"]
    fleet.workers[0].kill_tree()
    wait_until(lambda: gone(horse), timeout=10, what="the work-horse gone")
    fault.release()
    tenant = Tenant.objects.get(pk=tenant_id)
    assert len(where_is(tenant.database_name, extra_postgres_servers)) in (1, 2)  # mid-way; the catalog names one
    fleet.add_worker()
    wait_until(lambda: settled(tenant_id, target), timeout=180, what=f"{tenant_id} moved after the kill")
    tenant.refresh_from_db()
    assert where_is(tenant.database_name, extra_postgres_servers) == [target]
    users = api(fleet, "GET", "/api/users", token=admin_token, tenant=tenant_id).json()["data"]
    assert {f"before{i}@{tenant_id}.test" for i in range(3)} <= {u["email"] for u in users}
    assert Notification.objects.filter(event="TenantMoved", data__tenantId=tenant_id).count() == 1


def test_a_drain_moves_every_tenant_off_the_server_through_the_api(fleet, extra_postgres_servers):
    token = root_token()
    tenant_ids = [f"drain-{i}" for i in range(3)]
    for tenant_id in tenant_ids:
        create_tenant(fleet, token, tenant_id, "pg-plain")
    response = api(fleet, "POST", "/api/database-servers/pg-plain/drain", token=token)
    assert response.status_code == 202, response.text
    assert DatabaseServer.objects.get(pk="pg-plain").status == ServerStatus.DRAINING
    wait_until(
        lambda: all(settled(t) and Tenant.objects.get(pk=t).database_server_id != "pg-plain" for t in tenant_ids),
        timeout=240,
        what="every tenant off pg-plain",
    )
    names = {Tenant.objects.get(pk=t).database_name for t in tenant_ids}
    assert names.isdisjoint(databases_on(extra_postgres_servers.plain))
    # New tenants go elsewhere now.
    assert create_tenant(fleet, token, "after-drain", None)
    assert Tenant.objects.get(pk="after-drain").database_server_id != "pg-plain"


def test_a_target_stopped_mid_move_fails_the_move_the_tenant_stays_whole_and_the_copy_goes_once_it_is_back(
    start_fleet, extra_postgres_servers, fault
):
    fleet = start_fleet(DIQUIS_JOB_MAX_ATTEMPTS=2, DIQUIS_MOVE_CLEANUP_ROUNDS=1000)
    token = root_token()
    admin_token = create_tenant(fleet, token, "stranded", "pg-plain")
    fault.hold(VERIFY_COPY, "stranded")  # the whole copy is on the target, writes are refused on the source
    assert (
        api(fleet, "POST", "/api/tenants/stranded/move", token=token, json={"databaseServer": "pg-logical"}).status_code
        == 202
    )
    fault.wait_held()
    extra_postgres_servers.logical.stop()
    fault.release()
    # The cleanup's jobs go on trying the target meanwhile: the tenant is Active, not settled.
    given_up = Tenant.objects.filter(pk="stranded", status=S.ACTIVE, provisioning_error__isnull=False)
    wait_until(given_up.exists, timeout=120, what="the move given up")
    tenant = Tenant.objects.get(pk="stranded")
    assert (tenant.database_server_id, tenant.move_target_id) == ("pg-plain", None)
    assert tenant.provisioning_error
    failed = Notification.objects.filter(event="TenantMoveFailed", data__tenantId="stranded")
    assert [n.data["databaseServer"] for n in failed] == ["pg-plain"]
    # Usable and writable on its old server while the target is down.
    body = {"email": "later@stranded.test", "password": WRITER_PASSWORD, "firstName": "L", "lastName": "T"}
    wait_until(
        lambda: api(fleet, "POST", "/api/users", token=admin_token, tenant="stranded", json=body).status_code == 201,
        timeout=60,
        what="a write accepted on the old server",
    )
    extra_postgres_servers.logical.start_again()
    wait_until(
        lambda: tenant.database_name not in databases_on(extra_postgres_servers.logical),
        timeout=120,
        what="the copy on the target dropped once it is back",
    )
    assert where_is(tenant.database_name, extra_postgres_servers) == ["pg-plain"]


def test_a_move_with_redis_stopped_mid_way_ends_on_one_server(transactional_db, tmp_path, start_fleet, fault):
    with PrivateRedis(tmp_path / "redis") as private_redis:
        fleet = start_fleet(REDIS_URL=private_redis.url())
        token = root_token()
        admin_token = create_tenant(fleet, token, "unheard", "pg-logical")
        fault.hold(COPY_DATA, "unheard")
        response = api(fleet, "POST", "/api/tenants/unheard/move", token=token, json={"databaseServer": "pg-plain"})
        assert response.status_code == 202
        fault.wait_held()
        private_redis.stop()
        fault.release()
        wait_until(lambda: settled("unheard", "pg-plain"), timeout=120, what="moved with Redis down")
        private_redis.start()
        users = api(fleet, "GET", "/api/users", token=admin_token, tenant="unheard")
        assert users.status_code == 200
        assert [u["email"] for u in users.json()["data"]] == ["admin@unheard.test"]


def web_sessions_on(cluster, database_name):
    """Sessions of the live stack's web process (tenants.pools.session_name) on a database of the cluster."""
    with cluster.connect() as connection:
        statement = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name LIKE 'diquis-web-%%'"
        return connection.execute(statement, [database_name]).fetchone()[0]


def test_the_web_s_pooled_sessions_follow_a_moved_tenant_and_go_with_a_deleted_one(fleet, extra_postgres_servers):
    """The web process pools the tenant's session on its server; after the move its requests are served from the
    new server (a row written there after the move is seen), nothing of it stays on the old one; after the
    tenant's deletion nothing of it stays anywhere, and its token gets a refusal, not a 500."""
    token = root_token()
    admin_token = create_tenant(fleet, token, "pooled", "pg-plain")
    tenant = Tenant.objects.get(pk="pooled")
    plain, logical = extra_postgres_servers.plain, extra_postgres_servers.logical
    for _ in range(3):
        assert api(fleet, "GET", "/api/users", token=admin_token, tenant="pooled").status_code == 200
    assert web_sessions_on(plain, tenant.database_name) == 1  # pooled, and reused
    response = api(fleet, "POST", "/api/tenants/pooled/move", token=token, json={"databaseServer": "pg-logical"})
    assert response.status_code == 202
    wait_until(lambda: settled("pooled", "pg-logical"), timeout=180, what="pooled moved to pg-logical")
    tenant.refresh_from_db()
    with use_tenant(tenant):
        User.objects.create_user("after-move@pooled.test", None, tenant_id="pooled")
    listed = api(fleet, "GET", "/api/users", token=admin_token, tenant="pooled").json()["data"]
    assert "after-move@pooled.test" in {user["email"] for user in listed}
    assert web_sessions_on(plain, tenant.database_name) == 0
    assert web_sessions_on(logical, tenant.database_name) == 1
    assert api(fleet, "DELETE", "/api/tenants/pooled", token=token).status_code == 202
    wait_until(lambda: not Tenant.objects.filter(pk="pooled").exists(), timeout=120, what="pooled deleted")
    assert tenant.database_name not in databases_on(logical)
    assert web_sessions_on(logical, tenant.database_name) == 0
    response = api(fleet, "GET", "/api/users", token=admin_token, tenant="pooled")
    assert 400 <= response.status_code < 500, response.text
