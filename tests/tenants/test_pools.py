"""Pooled sessions to tenant databases (tenants.pools), on real PostgreSQL servers: a tenant's next request reuses
the session of its last one; the bound per server holds (least recently used closed first); idle sessions close
after a while; a session left in a transaction is rolled back before reuse; a tenant that is deleted, moved, or
whose server stops, restarts or hangs never gets a pooled session to the old place; a forked process never uses
its parent's sessions.
"""

import contextlib
import os
import time

import pytest
from django.db import connections
from django.test import override_settings

from jobs.models import Job
from tenants import services
from tenants.connections import SERVER_DOWN_SECONDS, forget_server, use_tenant
from tenants.exceptions import TenantDatabaseUnavailable
from tenants.models import MAIN_SERVER, Tenant, User
from tenants.pools import pool
from tenants.provisioning.databases import drop_tenant_data
from tenants.provisioning.steps import run_tenant_creation, run_tenant_move
from tests.support.fleet import drop_test_databases_on, register_cluster
from tests.support.postgres_clusters import SUPERUSER
from tests.support.tenant_databases import new_tenant, sessions_on

pytestmark = pytest.mark.django_db(transaction=True)

# The connect timeout (DIQUIS_SERVER_CONNECT_TIMEOUT, 2 s) and some room for the rest of the call.
BOUND = 3.5


def created(tenant_id, root_user, **fields):
    new_tenant(tenant_id, **fields)
    run_tenant_creation(tenant_id=tenant_id, initiated_by=str(root_user.pk))
    pool.forget()  # what the creation job left: each test starts from an empty pool
    return Tenant.objects.get(pk=tenant_id)


def backend_of(tenant):
    """(backend pid, server port) of the session the tenant's request gets now; one user read on the way."""
    with use_tenant(tenant) as alias:
        User.objects.filter(tenant_id=tenant.id).count()
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid(), current_setting('port')::int")
            return cursor.fetchone()


def idle_on(server):
    return pool.stats().get(server, {}).get("idle", 0)


@pytest.fixture
def two_tenants(tenant_databases, root_user):
    return created("alpha", root_user), created("beta", root_user)


def test_a_tenant_s_next_request_reuses_the_session_of_its_last(two_tenants):
    alpha, beta = two_tenants
    first = backend_of(alpha)
    assert [backend_of(alpha) for _ in range(5)] == [first] * 5
    assert backend_of(beta)[0] != first[0]  # another tenant: another database, another session
    assert backend_of(alpha) == first
    assert pool.stats()[MAIN_SERVER] == {"idle": 2, "inUse": 0}


def test_without_a_pool_every_request_opens_a_session_of_its_own(two_tenants):
    alpha, _ = two_tenants
    with override_settings(DIQUIS_TENANT_POOL_PER_SERVER=0):
        pids = {backend_of(alpha)[0] for _ in range(3)}
        assert len(pids) == 3
        assert sessions_on(alpha.database_name) == 0
        assert pool.stats().get(MAIN_SERVER, {}).get("idle", 0) == 0


def test_the_bound_per_server_closes_the_least_recently_used_session(tenant_databases, root_user):
    tenants = [created(f"lru-{n}", root_user) for n in range(3)]
    with override_settings(DIQUIS_TENANT_POOL_PER_SERVER=2):
        kept = {tenant.id: backend_of(tenant) for tenant in tenants}
        assert idle_on(MAIN_SERVER) == 2
        assert [sessions_on(t.database_name) for t in tenants] == [0, 1, 1]  # lru-0's closed, for real
        assert backend_of(tenants[2]) == kept["lru-2"]
        assert backend_of(tenants[0]) != kept["lru-0"]  # a new one; lru-1's is now the oldest and goes
        assert [sessions_on(t.database_name) for t in tenants] == [1, 0, 1]


def test_idle_sessions_are_closed_after_a_while(two_tenants):
    alpha, beta = two_tenants
    with override_settings(DIQUIS_TENANT_POOL_IDLE_SECONDS=0.5):
        backend_of(alpha)
        backend_of(beta)
        assert sessions_on(alpha.database_name) == sessions_on(beta.database_name) == 1
        deadline = time.monotonic() + 10
        while (sessions_on(alpha.database_name) or sessions_on(beta.database_name)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sessions_on(alpha.database_name) == sessions_on(beta.database_name) == 0  # by the sweeper
        assert idle_on(MAIN_SERVER) == 0


def test_a_session_left_in_a_transaction_is_rolled_back_before_it_is_reused(two_tenants):
    alpha, _ = two_tenants
    with use_tenant(alpha) as alias, connections[alias].cursor() as cursor:
        cursor.execute("BEGIN")
        cursor.execute("UPDATE tenants_user SET first_name = 'uncommitted'")
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    assert backend_of(alpha)[0] == pid  # kept, and usable
    with use_tenant(alpha):
        assert not User.objects.filter(first_name="uncommitted").exists()


def test_a_deleted_tenant_s_sessions_go_with_its_database(two_tenants, root_user):
    alpha, beta = two_tenants
    backend_of(alpha)
    beta_backend = backend_of(beta)
    drop_tenant_data(alpha)
    assert sessions_on(alpha.database_name) == 0
    assert idle_on(MAIN_SERVER) == 1 and backend_of(beta) == beta_backend  # the other tenant's stays
    # The same id again: a new database of the same name, and a session of its own (the old one is gone).
    Tenant.objects.filter(pk="alpha").delete()
    again = created("alpha", root_user)
    with use_tenant(again):
        assert User.objects.filter(tenant_id="alpha").count() == 1


def test_a_session_the_server_ended_is_replaced_not_handed_out(two_tenants):
    alpha, _ = two_tenants
    pid, _ = backend_of(alpha)
    with connections["default"].cursor() as cursor:  # what a move's switchover or an operator does
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    deadline = time.monotonic() + 5
    while sessions_on(alpha.database_name) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert backend_of(alpha)[0] != pid


@pytest.fixture
def plain(fleet_servers, extra_postgres_servers, root_user):
    """A tenant on pg-plain, its session in the pool; the cluster running again after the test."""
    tenant = created("faraway", root_user, database_server_id="pg-plain")
    yield tenant, extra_postgres_servers.plain
    forget_server("pg-plain")


def timed_refusal(tenant):
    started = time.monotonic()
    with pytest.raises(TenantDatabaseUnavailable):
        backend_of(tenant)
    return time.monotonic() - started


def test_a_stopped_server_s_pooled_sessions_give_503_and_a_restart_new_sessions(plain):
    tenant, cluster = plain
    before, port = backend_of(tenant)
    assert port == cluster.port and idle_on("pg-plain") == 1
    cluster.stop()
    try:
        assert timed_refusal(tenant) < BOUND
        assert idle_on("pg-plain") == 0
    finally:
        cluster.start_again()
    time.sleep(SERVER_DOWN_SECONDS)
    after, _ = backend_of(tenant)
    assert after != before


def test_a_restarted_server_s_sessions_are_replaced_at_once(plain):
    tenant, cluster = plain
    before, _ = backend_of(tenant)
    cluster.stop()
    cluster.start_again()
    after, _ = backend_of(tenant)  # no 503: the dead session is closed, a new one made
    assert after != before


@contextlib.contextmanager
def hung(cluster):
    """Every process of the cluster stopped (SIGSTOP): sessions stay open and nothing answers on them."""
    cluster.freeze()
    try:
        yield
    finally:
        cluster.thaw()


def test_a_hung_server_s_pooled_session_gives_503_within_the_connect_timeout(plain):
    tenant, cluster = plain
    backend_of(tenant)
    with hung(cluster):
        assert timed_refusal(tenant) < BOUND
        assert idle_on("pg-plain") == 0
        assert timed_refusal(tenant) < 0.5  # and then at once, as after a failed connect
    forget_server("pg-plain")
    backend_of(tenant)


def test_a_moved_tenant_never_gets_a_session_to_its_old_place(extra_postgres_servers, tenant_databases, root_user):
    clusters = {"pg-logical": extra_postgres_servers.logical, "pg-plain": extra_postgres_servers.plain}
    for name, cluster in clusters.items():
        register_cluster(cluster, name, role=SUPERUSER)
    try:
        tenant = created("mover", root_user, database_server_id="pg-plain")
        assert backend_of(tenant)[1] == clusters["pg-plain"].port
        with override_settings(DIQUIS_TENANT_POOL_PER_SERVER=5):
            other = created("stayer", root_user, database_server_id="pg-plain")
            backend_of(other)
            backend_of(tenant)
            services.move_tenant(tenant_id="mover", database_server="pg-logical", initiated_by=root_user.pk)
            run_tenant_move(**Job.objects.get(subject="tenant:mover", task__endswith="move_tenant_database").kwargs)
            tenant.refresh_from_db()
            assert tenant.database_server_id == "pg-logical"
            assert backend_of(tenant)[1] == clusters["pg-logical"].port
            assert pool.stats()["pg-plain"]["idle"] == 1  # the tenant that stayed keeps its session
    finally:
        for cluster in clusters.values():
            drop_test_databases_on(cluster)


def test_a_forked_process_never_uses_its_parent_s_sessions(two_tenants):
    alpha, _ = two_tenants
    before = backend_of(alpha)
    child = os.fork()
    if child == 0:  # the child: its own sessions, none of the parent's
        code = 0
        try:
            code = 0 if pool.stats() == {} and backend_of(alpha)[0] != before[0] else 1
        except BaseException:
            code = 2
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert backend_of(alpha) == before  # the parent's session is whole
