"""Moving a tenant's database between real servers (tenants.provisioning.moves and the move's steps): the main
server and the suite's two extra clusters, one with wal_level=logical (moves from it replicate), one without
(moves from it dump and restore).

Each move is checked for the same end: the tenant Active on the target, its rows and sequences there, nothing
of it left on the source, no publication, subscription or slot anywhere, one TenantMoved. An attempt that stops
at any step and runs again ends the same way; one that fails for good leaves the tenant whole on its server,
writable, and nothing on the target.
"""

import secrets

import psycopg
import pytest
from django.conf import settings
from django.db import connection as main_connection
from psycopg import sql

from jobs.models import Job
from notifications.models import Notification
from tenants import services
from tenants.connections import SERVER_ALIAS_PREFIX, forget_database, forget_server, use_tenant
from tenants.models import MAIN_SERVER, DatabaseServer, ProvisioningStatus, Tenant, User
from tenants.provisioning import moves
from tenants.provisioning.faults import InjectedFault
from tenants.provisioning.steps import (
    clean_up_move,
    move_steps,
    record_move_failure,
    run_tenant_creation,
    run_tenant_move,
)
from tenants.provisioning.stores import store_for
from tenants.servers import connection_parameters
from tests.support.fault_injection import write_fault
from tests.support.fleet import databases_on, drop_test_databases_on, register_cluster
from tests.support.postgres_clusters import SUPERUSER
from tests.support.tenant_databases import new_tenant, prefixed_databases, query
from tests.support.users import client_for

pytestmark = pytest.mark.django_db(transaction=True)
S = ProvisioningStatus
USERS = 30


@pytest.fixture
def servers(extra_postgres_servers, tenant_databases):
    """`main`, `pg-logical` (wal_level=logical) and `pg-plain`, registered with their superusers (PostgreSQL 15
    lets no one else publish or subscribe); what the tests leave on them goes afterwards."""
    registered = {
        "pg-logical": register_cluster(extra_postgres_servers.logical, "pg-logical", role=SUPERUSER),
        "pg-plain": register_cluster(extra_postgres_servers.plain, "pg-plain", role=SUPERUSER),
    }
    yield registered
    for tenant in Tenant.objects.filter(has_isolated_database=True, database_name__isnull=False):
        for server in (MAIN_SERVER, *registered):
            moves.drop_copy(tenant.database_name, server=server)
    for cluster in extra_postgres_servers:
        drop_test_databases_on(cluster)


@pytest.fixture
def root(root_user):
    return root_user


def cluster_of(server, extra_postgres_servers):
    return {"pg-logical": extra_postgres_servers.logical, "pg-plain": extra_postgres_servers.plain}.get(server)


def databases_of(server, extra_postgres_servers):
    cluster = cluster_of(server, extra_postgres_servers)
    return set(databases_on(cluster)) if cluster else prefixed_databases()


def tenant_on(server, tenant_id, root, *, users=USERS):
    """An isolated tenant created on `server`, with its admin and `users` more users (rows and a sequence)."""
    tenant = new_tenant(tenant_id, database_server_id=server)
    run_tenant_creation(tenant_id=tenant_id, initiated_by=str(root.pk))
    tenant.refresh_from_db()
    with use_tenant(tenant):
        for i in range(users):
            User.objects.create_user(f"user{i}@{tenant_id}.test", None, tenant_id=tenant_id)
    return tenant


def emails(tenant):
    with use_tenant(tenant):
        return set(User.objects.filter(tenant_id=tenant.id).values_list("email", flat=True))


def replication_objects(server, database_name):
    """Publications, subscriptions and slots of `database_name` on `server` (its copy must exist)."""
    with moves.connect(server, database_name) as connection:
        publications = connection.execute("SELECT pubname FROM pg_publication").fetchall()
        subscriptions = connection.execute("SELECT subname FROM pg_subscription").fetchall()
        slots = connection.execute("SELECT slot_name FROM pg_replication_slots").fetchall()
    return publications + subscriptions + slots


def has_role(server, database_name):
    """Has the server a role of that database (tenants.provisioning.roles: named after it)?"""
    with store_for(server).server_cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [database_name])
        return cursor.fetchone() is not None


def job_kwargs(tenant_id):
    return (
        Job.objects.filter(subject=f"tenant:{tenant_id}", task__endswith="move_tenant_database")
        .latest("created_at")
        .kwargs
    )


def start(tenant, target, root):
    services.move_tenant(tenant_id=tenant.id, database_server=target, initiated_by=root.pk)
    return job_kwargs(tenant.id)


def assert_moved(tenant, *, source, target, before, extra_postgres_servers):
    tenant.refresh_from_db()
    assert (tenant.status, tenant.database_server_id, tenant.move_target_id) == (S.ACTIVE, target, None)
    assert tenant.provisioning_error is None
    assert tenant.database_name in databases_of(target, extra_postgres_servers)
    assert tenant.database_name not in databases_of(source, extra_postgres_servers)
    assert emails(tenant) == before
    assert replication_objects(target, tenant.database_name) == []
    assert has_role(target, tenant.database_name) and not has_role(source, tenant.database_name)
    assert not moves.writes_refused(tenant.database_name, server=target)
    moved = Notification.objects.filter(event="TenantMoved", data__tenantId=tenant.id)
    assert [n.data["databaseServer"] for n in moved] == [target]


DIRECTIONS = [
    ("pg-logical", "pg-plain", moves.LOGICAL),
    ("pg-plain", "pg-logical", moves.DUMP),
    ("pg-plain", MAIN_SERVER, moves.DUMP),
    (MAIN_SERVER, "pg-logical", moves.DUMP),
]


@pytest.mark.parametrize(("source", "target", "method"), DIRECTIONS)
def test_a_move_carries_every_row_to_the_target_and_leaves_nothing_behind(
    servers, extra_postgres_servers, root, source, target, method
):
    tenant = tenant_on(source, "mover", root)
    before = emails(tenant)
    assert len(before) == USERS + 1
    kwargs = start(tenant, target, root)
    assert kwargs == {
        "tenant_id": "mover",
        "initiated_by": str(root.pk),
        "source": source,
        "target": target,
        "database_name": tenant.database_name,
    }
    assert moves.copy_method(tenant, source=source, target=target) == method
    run_tenant_move(**kwargs)
    assert_moved(tenant, source=source, target=target, before=before, extra_postgres_servers=extra_postgres_servers)
    # The tenant works on its new server: a write there, with the sequences carried over.
    with use_tenant(tenant):
        User.objects.create_user("after@mover.test", None, tenant_id="mover")
    assert "after@mover.test" in emails(tenant)


def test_a_logical_move_keeps_the_tenant_writable_until_the_switchover(servers, extra_postgres_servers, root):
    tenant = tenant_on("pg-logical", "writable", root)
    kwargs = start(tenant, "pg-plain", root)
    # A session open all along (a request's, mid-way through a write): the copy must not end it under the request.
    parameters = {**connection_parameters("pg-logical"), "dbname": tenant.database_name}
    with psycopg.connect(**parameters, autocommit=True) as held:
        moves.prepare_target(tenant, source="pg-logical", target="pg-plain", method=moves.LOGICAL)
        moves.copy_data(tenant, source="pg-logical", target="pg-plain", method=moves.LOGICAL)
        assert held.execute("SELECT 1").fetchone() == (1,)
    with use_tenant(tenant):  # copied and streaming: the source still takes writes, and they reach the target
        User.objects.create_user("during@writable.test", None, tenant_id="writable")
    assert not moves.writes_refused(tenant.database_name, server="pg-logical")
    before = emails(tenant)
    run_tenant_move(**kwargs)
    assert_moved(
        tenant, source="pg-logical", target="pg-plain", before=before, extra_postgres_servers=extra_postgres_servers
    )
    assert "during@writable.test" in before


def test_a_logical_copy_after_a_switchover_that_stopped_gives_writes_back(servers, root):
    tenant = tenant_on("pg-logical", "reopened", root)
    start(tenant, "pg-plain", root)
    moves.refuse_writes(tenant.database_name, server="pg-logical")  # an earlier attempt's switchover, cut short
    moves.prepare_target(tenant, source="pg-logical", target="pg-plain", method=moves.LOGICAL)
    moves.copy_data(tenant, source="pg-logical", target="pg-plain", method=moves.LOGICAL)
    assert not moves.writes_refused(tenant.database_name, server="pg-logical")
    with use_tenant(tenant):
        User.objects.create_user("copying@reopened.test", None, tenant_id="reopened")


STOPS = [
    pytest.param(source, target, step, id=f"{method.split()[0]}-{step.label}")
    for source, target, method in DIRECTIONS[:2]
    for step in move_steps(method)
]


@pytest.mark.parametrize(("source", "target", "step"), STOPS)
def test_a_move_that_stops_before_any_step_ends_the_same_when_run_again(
    servers, extra_postgres_servers, root, tmp_path, settings, source, target, step
):
    tenant = tenant_on(source, "resumed", root, users=5)
    before = emails(tenant)
    kwargs = start(tenant, target, root)
    settings.DIQUIS_FAULTS_FILE = str(tmp_path / "fault.json")
    write_fault(settings.DIQUIS_FAULTS_FILE, step, "resumed")
    with pytest.raises(InjectedFault):
        run_tenant_move(**kwargs)
    tenant.refresh_from_db()
    switched = step.label == "drop-source"
    assert tenant.database_server_id == (target if switched else source)
    assert tenant.status == (S.ACTIVE if switched else S.MOVING)
    (tmp_path / "fault.json").unlink()
    run_tenant_move(**kwargs)
    assert_moved(tenant, source=source, target=target, before=before, extra_postgres_servers=extra_postgres_servers)


def test_verification_refuses_a_copy_that_differs(servers, extra_postgres_servers, root):
    tenant = tenant_on("pg-plain", "differs", root, users=3)
    start(tenant, "pg-logical", root)
    on_servers = {"source": "pg-plain", "target": "pg-logical"}
    moves.prepare_target(tenant, **on_servers, method=moves.DUMP)
    moves.copy_data(tenant, **on_servers, method=moves.DUMP)
    assert moves.verify_copy(tenant, **on_servers)["rows"]["public.tenants_user"] == 4
    with moves.connect("pg-logical", tenant.database_name) as connection:
        connection.execute("DELETE FROM tenants_user WHERE email = 'user0@differs.test'")
    with pytest.raises(moves.CopyMismatch, match="rows of public.tenants_user: 3 instead of 4"):
        moves.verify_copy(tenant, **on_servers)
    with moves.connect("pg-logical", tenant.database_name) as connection:
        sequence = connection.execute("SELECT schemaname || '.' || sequencename FROM pg_sequences LIMIT 1").fetchone()
        connection.execute("SELECT setval(%s::regclass, 424242)", [sequence[0]])
    with pytest.raises(moves.CopyMismatch):
        moves.verify_copy(tenant, **on_servers)


@pytest.mark.parametrize(("source", "target", "method"), DIRECTIONS[:2])
def test_a_move_that_fails_for_good_leaves_the_tenant_whole_where_it_was(
    servers, extra_postgres_servers, root, tmp_path, settings, source, target, method
):
    tenant = tenant_on(source, "stays", root, users=5)
    before = emails(tenant)
    kwargs = start(tenant, target, root)
    verify = next(step for step in move_steps(method) if step.label == "verify-copy")
    settings.DIQUIS_FAULTS_FILE = str(tmp_path / "fault.json")
    write_fault(settings.DIQUIS_FAULTS_FILE, verify, "stays", message="the copy is not to be trusted")
    with pytest.raises(InjectedFault):
        run_tenant_move(**kwargs)
    assert tenant.database_name in databases_of(target, extra_postgres_servers)  # a whole copy, waiting
    assert moves.writes_refused(tenant.database_name, server=source)  # in the switchover, or for the dump

    left = record_move_failure("the copy is not to be trusted", **kwargs)
    clean_up_move(**left)
    tenant.refresh_from_db()
    assert (tenant.status, tenant.database_server_id, tenant.move_target_id) == (S.ACTIVE, source, None)
    assert tenant.provisioning_error == "the copy is not to be trusted"
    assert tenant.database_name not in databases_of(target, extra_postgres_servers)
    assert not has_role(target, tenant.database_name) and has_role(source, tenant.database_name)
    assert not moves.writes_refused(tenant.database_name, server=source)
    assert replication_objects(source, tenant.database_name) == []
    failed = Notification.objects.filter(event="TenantMoveFailed", data__tenantId="stays")
    assert [(n.data["databaseServer"], n.data["message"]) for n in failed] == [
        (source, "Tenant move failed: the copy is not to be trusted")
    ]
    with use_tenant(tenant):
        User.objects.create_user("again@stays.test", None, tenant_id="stays")
    assert emails(tenant) == before | {"again@stays.test"}
    # A job that runs again after the failure (a lost carrier) finds nothing to do.
    assert run_tenant_move(**kwargs) is None
    assert Tenant.objects.get(pk="stays").database_server_id == source


def test_a_move_to_a_role_that_may_not_subscribe_falls_back_to_dump_and_restore(servers, extra_postgres_servers, root):
    servers["pg-plain"].delete()
    register_cluster(extra_postgres_servers.plain, "pg-plain")  # the CREATEDB role, no superuser
    tenant = tenant_on("pg-logical", "fallback", root, users=2)
    assert moves.copy_method(tenant, source="pg-logical", target="pg-plain") == moves.DUMP
    before = emails(tenant)
    run_tenant_move(**start(tenant, "pg-plain", root))
    assert_moved(
        tenant, source="pg-logical", target="pg-plain", before=before, extra_postgres_servers=extra_postgres_servers
    )


def test_writes_refused_by_a_move_answer_503_with_retry_after_and_reads_go_on(servers, root):
    tenant = tenant_on("pg-plain", "refused", root, users=1)
    admin = client_for(tenant=tenant.id)
    token = admin.post(
        "/api/tokens", {"email": "admin@refused.test", "password": "Tenant-Admin-Pass-9!"}, format="json"
    ).json()["data"]["token"]
    admin.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    start(tenant, "pg-logical", root)
    moves.refuse_writes(tenant.database_name, server="pg-plain")
    try:
        new_user = {"email": "x@refused.test", "password": "A-Good-Pass-123!", "firstName": "X", "lastName": "Y"}
        refused = admin.post("/api/users", {**new_user, "role": "basic"}, format="json")
        assert refused.status_code == 503
        assert refused.json()["messages"] == ["Tenant is being moved; retry shortly"]
        assert int(refused.headers["Retry-After"]) >= 1
        assert admin.get("/api/users").status_code == 200
    finally:
        moves.allow_writes(tenant.database_name, server="pg-plain")
    assert admin.post("/api/users", {**new_user, "role": "basic"}, format="json").status_code == 201


@pytest.fixture
def superusers_with_passwords(servers, extra_postgres_servers):
    """`pg-logical` and `pg-plain` registered again, as superusers that log in with a password (the clusters'
    own superuser is trusted): the conninfo of a logical move's subscription then carries one. Returns the
    passwords; the roles go afterwards, with what they own."""
    passwords = {}
    for name, cluster in (("pg-logical", extra_postgres_servers.logical), ("pg-plain", extra_postgres_servers.plain)):
        password = secrets.token_hex(16)
        with cluster.connect() as connection:
            connection.execute(
                sql.SQL("CREATE ROLE {} SUPERUSER LOGIN PASSWORD {}").format(
                    sql.Identifier(MOVER_ROLE), sql.Literal(password)
                )
            )
        cluster.passwords[MOVER_ROLE] = password
        servers[name].delete()
        servers[name] = register_cluster(cluster, name, role=MOVER_ROLE)
        passwords[name] = password
    yield passwords
    for name in passwords:  # back to the trusted superuser, for the clean-up of `servers`
        DatabaseServer.objects.filter(pk=name).update(user=SUPERUSER, encrypted_password="")
        forget_server(name)
        forget_database(f"{SERVER_ALIAS_PREFIX}{name}")
    for cluster in extra_postgres_servers:
        drop_test_databases_on(cluster)
        with cluster.connect() as connection:
            connection.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(MOVER_ROLE)))
        cluster.passwords.pop(MOVER_ROLE, None)


MOVER_ROLE = "diquis_mover"


def test_a_logical_move_keeps_the_passwords_out_of_job_arguments_logs_and_attempts(
    superusers_with_passwords, extra_postgres_servers, root, caplog
):
    tenant = tenant_on("pg-logical", "secretive", root, users=1)
    kwargs = start(tenant, "pg-plain", root)
    assert moves.copy_method(tenant, source="pg-logical", target="pg-plain") == moves.LOGICAL
    with caplog.at_level("DEBUG"):
        run_tenant_move(**kwargs)
    assert Tenant.objects.get(pk="secretive").database_server_id == "pg-plain"
    stored = query(
        main_connection.settings_dict["NAME"],
        "SELECT (SELECT string_agg(kwargs::text, ' ') FROM jobs_job)"
        " || coalesce((SELECT string_agg(error || traceback || steps::text, ' ') FROM jobs_attempt), '')",
    )[0][0]
    for password in superusers_with_passwords.values():
        assert password not in stored
        assert password not in caplog.text


def test_a_copy_an_interrupted_drop_left_invalid_is_dropped_without_connecting_to_it(servers, extra_postgres_servers):
    """Found by the fault soak: the server of a moved tenant's old copy was stopped in the middle of dropping it,
    and PostgreSQL (15.4+) marks such a database invalid: it refuses every connection, and the clean-up, which
    connected to it first for a subscription it might hold, failed every round until it gave up. The mark is
    PostgreSQL's own (datconnlimit -2, what an interrupted DROP DATABASE leaves)."""
    cluster = extra_postgres_servers.plain
    name = f"{settings.DIQUIS_TENANT_DATABASE_PREFIX}half-dropped"
    store = store_for("pg-plain")
    store.create(name)
    with cluster.connect() as connection:
        connection.execute(
            "UPDATE pg_database SET datconnlimit = %s WHERE datname = %s", [moves.INVALID_DATABASE, name]
        )
    with pytest.raises(psycopg.OperationalError, match="invalid database"), moves.connect("pg-plain", name):
        pass
    moves.drop_copy(name, server="pg-plain")
    assert name not in databases_on(cluster)
