"""Connections stay bounded: one Daphne process serves requests for 50 isolated tenants in turn, and
PostgreSQL then shows no more of its connections than the configured bounds (the main database's pool, and the
tenant sessions it pools per server: tenants.pools), none to the template, and none to any tenant database once
they have been idle a while; with tenants on three servers, no server sees more sessions than requests in flight
and its pooled sessions; one tenant's requests reuse one session (real Daphne, real PostgreSQL servers)."""

import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest
from django.conf import settings

from tenants.connections import use_tenant
from tenants.models import MAIN_SERVER, ProvisioningStatus, Role, Tenant, User
from tenants.pools import pool
from tenants.provisioning.databases import ensure_migrated, ensure_tenant_database
from tenants.tokens import issue_tokens
from tests.support import live
from tests.support.fleet import drop_test_databases_on, register_cluster
from tests.support.tenant_databases import main_database, new_tenant, query, raw_cursor, templates

TENANTS = 50
# The web process's bound of idle tenant sessions per server, and how long one may stay idle (small, to see both).
POOL = 5
IDLE_SECONDS = 3
# While a request runs: the main database's pooled sessions, the pooled tenant sessions, its tenant's, and one
# just closed and not yet gone from the server's view.
IN_FLIGHT_SESSIONS = settings.DIQUIS_MAX_IDLE_CONNECTIONS_PER_PROCESS + POOL + 2
MEMBER_PASSWORD = "Member-Password-77!"
CLIENTS = 8


def isolated_tenant_with_admin(tenant_id):
    """Provisioned by the real steps; the admin gets no password (hashing 50 would only cost time)."""
    tenant = new_tenant(tenant_id)
    ensure_tenant_database(tenant)
    ensure_migrated(tenant)
    with use_tenant(tenant):
        admin = User.objects.create_user(f"admin@{tenant_id}.test", None, tenant_id=tenant_id, roles=[Role.ADMIN])
    Tenant.objects.filter(pk=tenant_id).update(status=ProvisioningStatus.ACTIVE, is_provisioned=True)
    return issue_tokens(admin)["token"]


def connections_of(application_name):
    """(database, count) of every session the process has open, by the name it gives PostgreSQL."""
    return dict(
        query(
            main_database(),
            "SELECT datname, count(*) FROM pg_stat_activity WHERE application_name = %s GROUP BY datname",
            [application_name],
        )
    )


def tenant_sessions(sessions):
    return sum(count for database, count in sessions.items() if database != main_database())


def settled_connections_of(application_name, *, tenant_sessions_at_most=0, seconds=3):
    """The same, once a session the process has just closed is gone from the server's view too (a server
    process takes a moment to exit after its client said goodbye); what remains after that is held."""
    deadline = time.monotonic() + seconds
    while True:
        sessions = connections_of(application_name)
        if tenant_sessions(sessions) <= tenant_sessions_at_most or time.monotonic() > deadline:
            return sessions
        time.sleep(0.05)


class Sampler:
    """Counts the process's sessions every few milliseconds while requests run, and keeps the highest."""

    def __init__(self, application_name):
        self.application_name = application_name
        self.peak = 0
        self.samples = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        statement = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
        with raw_cursor(main_database()) as cursor:
            while not self.stopped.wait(0.01):
                cursor.execute(statement, [self.application_name])
                self.peak = max(self.peak, cursor.fetchone()[0])
                self.samples += 1

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.thread.join(timeout=10)


@pytest.fixture
def web(transactional_db, tenant_databases, tmp_path):
    """One Daphne process whose every database session carries a name of its own (libpq's PGAPPNAME)."""
    name = f"diquis-web-{uuid.uuid4().hex[:8]}"
    pool = {"DIQUIS_TENANT_POOL_PER_SERVER": str(POOL), "DIQUIS_TENANT_POOL_IDLE_SECONDS": str(IDLE_SECONDS)}
    process = live.start_web(tmp_path, PGAPPNAME=name, **pool)
    try:
        yield process.url, name
    finally:
        process.stop()


def test_one_process_serving_fifty_isolated_tenants_keeps_its_connections_bounded(web):
    url, application_name = web
    tokens = {f"bound-{n:02d}": isolated_tenant_with_admin(f"bound-{n:02d}") for n in range(TENANTS)}
    pool.forget()  # what this process kept of making them: only the web process's sessions are counted
    bound = settings.DIQUIS_MAX_IDLE_CONNECTIONS_PER_PROCESS
    peak = 0
    with Sampler(application_name) as sampler, httpx.Client(base_url=url, timeout=60) as http:
        for index, (tenant_id, token) in enumerate(tokens.items()):
            auth = {"authorization": f"Bearer {token}"}
            assert http.get("/api/users/me", headers=auth).json()["data"]["tenant"] == tenant_id
            assert http.get("/api/users", headers=auth).status_code == 200
            if index % 10 == 0:  # now and then a write (and a password hash) too
                body = {"email": f"member@{tenant_id}.test", "password": MEMBER_PASSWORD}
                assert http.post("/api/users", json=body, headers=auth).status_code == 201
            open_now = settled_connections_of(application_name, tenant_sessions_at_most=POOL)
            peak = max(peak, sum(open_now.values()))
            assert tenant_sessions(open_now) <= POOL, open_now  # the last few tenants' sessions, no more
        between = settled_connections_of(application_name, tenant_sessions_at_most=POOL)
        at_rest = settled_connections_of(application_name, seconds=IDLE_SECONDS * 4)  # closed once idle a while
    assert tenant_sessions(between) == POOL, between
    assert tenant_sessions(at_rest) == 0 and sum(at_rest.values()) <= bound, at_rest
    assert peak <= bound + POOL, peak
    # Nothing that grows with the number of tenants served.
    assert sampler.peak <= IN_FLIGHT_SESSIONS, sampler.peak
    held_by_anyone = query(
        main_database(),
        "SELECT count(*) FROM pg_stat_activity WHERE starts_with(datname, %s)",
        [settings.DIQUIS_TENANT_DATABASE_PREFIX],
    )
    assert held_by_anyone == [(0,)]  # nobody, in any process, is left on a tenant database or a template
    assert len(templates()) == 1  # the tenants were cloned from it, and nobody is on it
    print(f"\nsessions of the web process: {sampler.peak} at most during requests, {peak} between, {at_rest} at rest")


def sessions_on(cluster, application_name):
    with psycopg.connect(cluster.url, autocommit=True) as connection:
        statement = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
        return connection.execute(statement, [application_name]).fetchone()[0]


def test_sessions_on_each_server_stay_within_the_requests_in_flight(web, extra_postgres_servers):
    """The bound per server (tenants.pools): one session per request in flight on one of its tenants, and at most
    POOL kept idle; none once idle a while. Eight clients, twelve tenants spread over three servers by placement."""
    url, application_name = web
    clusters = {"pg-logical": extra_postgres_servers.logical, "pg-plain": extra_postgres_servers.plain}
    for name, cluster in clusters.items():
        register_cluster(cluster, name)
    try:
        tokens = [isolated_tenant_with_admin(f"spread-{n:02d}") for n in range(12)]
        placed = set(Tenant.objects.filter(id__startswith="spread-").values_list("database_server_id", flat=True))
        assert placed == {MAIN_SERVER, *clusters}
        peaks = dict.fromkeys(clusters, 0)
        stop = threading.Event()

        def sample():
            while not stop.wait(0.02):
                for name, cluster in clusters.items():
                    peaks[name] = max(peaks[name], sessions_on(cluster, application_name))

        def client(offset):
            with httpx.Client(base_url=url, timeout=60) as http:
                for token in tokens[offset:] + tokens[:offset]:
                    response = http.get("/api/users/me", headers={"authorization": f"Bearer {token}"})
                    assert response.status_code == 200

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        clients = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join(timeout=120)
        stop.set()
        sampler.join(timeout=10)
        assert all(0 < peak <= CLIENTS + POOL for peak in peaks.values()), peaks
        assert all(sessions_on(c, application_name) <= POOL for c in clusters.values())
        deadline = time.monotonic() + IDLE_SECONDS * 4
        while any(sessions_on(c, application_name) for c in clusters.values()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [sessions_on(c, application_name) for c in clusters.values()] == [0, 0]  # none held once idle
        print(f"\npeak sessions of the web process per extra server with {CLIENTS} clients: {peaks}")
    finally:
        for cluster in clusters.values():
            drop_test_databases_on(cluster)


def test_the_web_process_serves_its_requests_and_handshakes_from_one_pooled_session(web):
    """A session per request cost a PostgreSQL connection (~5 ms) each time; the pool keeps one and reuses it."""
    url, application_name = web
    token = issue_tokens(User.objects.get(email=settings.DIQUIS_ROOT_EMAIL.lower()))["token"]
    backends = backends_serving(url, token, application_name)
    assert 1 <= len(backends) <= 2, backends  # the pool's first session, and one made while it was filling


def backends_serving(url, token, application_name, *, tenant_databases_only=False):
    """The backend pids of the process's sessions seen over 20 GET /api/users/me with the token."""
    statement = "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
    params = [application_name]
    if tenant_databases_only:
        statement += " AND datname <> %s"
        params.append(main_database())
    backends = set()
    with httpx.Client(base_url=url, timeout=30, headers={"authorization": f"Bearer {token}"}) as http:
        for _ in range(20):
            assert http.get("/api/users/me").status_code == 200
            backends |= {pid for (pid,) in query(main_database(), statement, params)}
    return backends


def test_one_tenant_s_requests_reuse_one_pooled_session(web):
    """A session per request cost the isolated tenant a PostgreSQL connection each time (half again a shared
    tenant's request); the pool keeps the tenant's and reuses it."""
    url, application_name = web
    tenant_id = "reuser"
    token = isolated_tenant_with_admin(tenant_id)
    backends = backends_serving(url, token, application_name, tenant_databases_only=True)
    assert len(backends) == 1, backends


def test_a_burst_of_sign_ins_does_not_hold_the_process_s_database_sessions_through_its_hashes(
    transactional_db, tmp_path
):
    """Before: a sign-in held its main-database session through the password hash (~100 ms of CPU; here a hasher
    that sleeps half a second: tests.support.settings_slow_hash), so with the pool's one session 8 sign-ins at once
    queued 4 s for it and the last answered 503 after the pool's wait (3 s). Now each gives its session back for the
    hash: every one is answered 401 (unknown emails: each still pays its hash)."""
    process = live.start_web(
        tmp_path,
        DJANGO_SETTINGS_MODULE="tests.support.settings_slow_hash",
        DIQUIS_MAX_IDLE_CONNECTIONS_PER_PROCESS="1",
    )
    try:
        start = threading.Barrier(8)

        def sign_in(n):
            with httpx.Client(base_url=process.url, timeout=60) as http:
                start.wait()
                body = {"email": f"nobody{n}@root.test", "password": "Wrong-Password-1!"}
                return http.post("/api/tokens", json=body, headers={"tenant": "root"}).status_code

        with ThreadPoolExecutor(8) as threads:
            codes = Counter(threads.map(sign_in, range(8)))
    finally:
        process.stop()
    assert codes == {401: 8}
