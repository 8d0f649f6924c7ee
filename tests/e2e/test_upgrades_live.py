"""Tenant database upgrades on the live stack: Daphne and `manage.py rqworker --with-scheduler` processes on a
private Redis, tenant databases on the main PostgreSQL server and on the suite's extra clusters. A deploy of
the next release (tests.support.settings_next_tenant_app: tenant_notes 0004, a column and an index) reaches every
isolated tenant through POST /api/upgrades as API.md has it, and survives what it must: a worker killed with
SIGKILL before and after a tenant's commit, Redis restarted, a tenant whose migration fails.

Starting processes is much of the time, so the module shares its processes (and a private Redis); each test has a
catalog and tenants of its own. The first test creates its tenants over HTTP with a stack of today's release, then
replaces it by one of the next release (the deploy), which the later tests keep; they make their tenants at today's
release in this process (the suite runs today's release), so that those are behind the deployed one.
Figures: `pytest -s`.
"""

import contextlib
import json
import threading
import time
from collections import Counter
from typing import NamedTuple

import httpx
import pytest
from django.conf import settings
from django.test import override_settings
from psycopg import sql

from jobs.models import Attempt, Job
from notifications.models import Notification
from tenants import upgrade_services
from tenants.exceptions import Conflict
from tenants.models import MAIN_SERVER, ROOT_TENANT_ID, UPGRADE_OPEN, Tenant, Upgrade, User
from tenants.provisioning import rollout, upgrades
from tenants.provisioning.steps import run_tenant_creation
from tenants.provisioning.template import (
    DERIVE_BEFORE_COMMIT,
    migration_fingerprint,
    template_manifest,
    template_name,
    template_prefix,
)
from tenants.selectors import isolated_tenants
from tenants.subjects import upgrade_subject
from tests.support.fault_injection import Fault, wait_until
from tests.support.fleet import databases_on, drop_test_databases_on, register_cluster
from tests.support.live import LiveStack, drain, gone, stat_fields, wait_for_event
from tests.support.live_tenants import figure, finished, last_notification_id, post_tenant, root_token, sign_in, socket
from tests.support.postgres_clusters import SUPERUSER
from tests.support.redis_server import PrivateRedis
from tests.support.tenant_databases import drop_test_tenant_databases, new_tenant, raw_cursor
from tests.support.users import make_root_user

TODAY = "diquis.settings"
NEXT_RELEASE = "tests.support.settings_next_tenant_app"
NEXT_MIGRATIONS = {"tenant_notes": "tests.support.tenant_app.migrations_next"}
# The suite's extra clusters, as database servers of the catalog; tenant databases are cheap to make and drop there
# (a private server, no durability), so the tests keep theirs there but for the first test's one on `main`.
EXTRA = "pg-plain"
OTHER = "pg-logical"
SUCCEEDED, PAUSED, FAILED = "Succeeded", "Paused", "Failed"
PROGRESS_KEYS = {"upgradeId", "total", "done", "failed", "skipped", "timestamp"}
ENDED_KEYS = {"type", "message", *PROGRESS_KEYS}
WAIT = 180  # the bound of a wait for something that must come, on a busy machine


# --- what a tenant database holds -----------------------------------------------------------------------------


class Schema(NamedTuple):
    """What of the release a tenant database has: its column, its index, its django_migrations row (how many
    times), and how many rows of django_migrations repeat another."""

    summary: int
    index: int
    applied: int
    duplicates: int


AT_TARGET = Schema(summary=1, index=1, applied=1, duplicates=0)
TODAYS = Schema(summary=0, index=0, applied=0, duplicates=0)
BROKEN = Schema(summary=1, index=0, applied=0, duplicates=0)  # the column added by hand, nothing else

LOOK = """
SELECT
  (SELECT count(*) FROM information_schema.columns
   WHERE table_name = 'tenant_notes_note' AND column_name = 'summary'),
  (SELECT count(*) FROM pg_indexes WHERE indexname = 'tenant_note_summary_idx'),
  (SELECT count(*) FROM django_migrations WHERE app = 'tenant_notes' AND name = '0004_note_summary'),
  (SELECT count(*) - count(DISTINCT (app, name)) FROM django_migrations)
"""


# --- the module's fleet ---------------------------------------------------------------------------------------


class Fleet:
    """The module's private Redis, its faults file, the extra clusters (server name -> cluster), and `stack`: Daphne
    and workers of the release last deployed."""

    def __init__(self, directory, redis, clusters):
        self.directory, self.redis, self.clusters = directory, redis, clusters
        self.fault = Fault(directory)
        self.stack = self.release = None

    def deploy(self, release=TODAY):
        """Replace the stack (if any) by web and worker processes of `release` (a settings module)."""
        self.stop()
        env = {"REDIS_URL": self.redis.url(), "DIQUIS_FAULTS_FILE": str(self.fault.path)}
        self.stack = LiveStack(self.directory / release, DJANGO_SETTINGS_MODULE=release, **env)
        self.release = release
        return self.stack

    def deployed(self, release):
        return self.stack if self.release == release else self.deploy(release)

    def stop(self):
        if self.stack is not None:
            self.stack.stop()

    @contextlib.contextmanager
    def cursor(self, database_name, server):
        """A superuser's look at a database of `server`, on a connection of its own (autocommit; statements time
        out rather than hang on a lock)."""
        if server == MAIN_SERVER:
            with raw_cursor(database_name) as cursor:
                cursor.execute("SET statement_timeout = 10000")
                yield cursor
            return
        cluster = self.clusters[server]
        url = cluster.url_as(SUPERUSER, database=database_name)
        with cluster.connect(url, options="-c statement_timeout=10000") as connection:
            yield connection.cursor()

    def schema(self, tenant_id):
        tenant = Tenant.objects.get(pk=tenant_id)
        with self.cursor(tenant.database_name, tenant.database_server_id) as cursor:
            cursor.execute(LOOK)
            return Schema(*cursor.fetchone())

    def alter(self, tenant_id, statement):
        tenant = Tenant.objects.get(pk=tenant_id)
        with self.cursor(tenant.database_name, tenant.database_server_id) as cursor:
            cursor.execute(statement)

    def open_transactions(self, tenant_id):
        """Sessions on the tenant's database inside a transaction that has written (it has an id) and waiting for
        their client: an upgrade held before its commit, or killed there before the server has noticed."""
        tenant = Tenant.objects.get(pk=tenant_id)
        maintenance = settings.DATABASES["default"]["NAME"] if tenant.database_server_id == MAIN_SERVER else "postgres"
        with self.cursor(maintenance, tenant.database_server_id) as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = %s AND state = 'idle in transaction' AND backend_xid IS NOT NULL",
                [tenant.database_name],
            )
            return cursor.fetchone()[0]


@pytest.fixture(scope="module")
def fleet(extra_postgres_servers, tmp_path_factory):
    """The module's processes and services; they keep no state of a test's (each has a catalog of its own)."""
    directory = tmp_path_factory.mktemp("upgrades")
    with PrivateRedis(directory) as redis:
        clusters = {EXTRA: extra_postgres_servers.plain, OTHER: extra_postgres_servers.logical}
        fleet = Fleet(directory, redis, clusters)
        try:
            yield fleet
        finally:
            fleet.stop()
            fleet.fault.release()


class Heads(NamedTuple):
    today: str
    next: str


@pytest.fixture(scope="module")
def heads():
    """The migration heads of today's release (this process's) and of the next one."""
    today = migration_fingerprint()
    with override_settings(MIGRATION_MODULES=NEXT_MIGRATIONS):
        return Heads(today=today, next=migration_fingerprint())


@pytest.fixture
def catalog(transactional_db, fleet):
    """The test's catalog, the extra clusters registered in it. Afterwards no upgrade runs on, no fault stays armed,
    a worker runs, and the test's databases and roles are dropped on every server (transactional_db then empties
    the catalog)."""
    for name, cluster in fleet.clusters.items():
        cluster.start_again()
        register_cluster(cluster, name)
    yield
    fleet.fault.release()
    if fleet.stack is not None:
        if not any(worker.alive() for worker in fleet.stack.workers):
            fleet.stack.add_worker()
        stop_open_upgrades()
    for cluster in fleet.clusters.values():
        cluster.start_again()
        drop_test_databases_on(cluster)
    drop_test_tenant_databases()


@pytest.fixture
def stack(catalog, fleet):
    """A stack of the next release (deployed once for the module, unless a test has deployed another since)."""
    return fleet.deployed(NEXT_RELEASE)


def stop_open_upgrades():
    """Cancel what a test that failed half-way left open, and wait for its parent job to stop."""
    for upgrade_id in Upgrade.objects.filter(status__in=UPGRADE_OPEN).values_list("pk", flat=True):
        with contextlib.suppress(Conflict):  # it ended meanwhile
            upgrade_services.cancel_upgrade(upgrade_id=upgrade_id)
    running = Job.objects.filter(subject__startswith="upgrade:", status__in=Job.OPEN_STATUSES)
    wait_until(lambda: not running.exists(), timeout=WAIT, what="no upgrade job running")


# --- helpers --------------------------------------------------------------------------------------------------


def seeded_root():
    return User.objects.get(tenant_id=ROOT_TENANT_ID, email=settings.DIQUIS_ROOT_EMAIL.lower())


def api(stack, method, path, *, token, json=None):
    return httpx.request(
        method, f"{stack.url}{path}", headers={"authorization": f"Bearer {token}"}, json=json, timeout=30
    )


def upgrade_status(stack, token):
    response = api(stack, "GET", "/api/tenants/upgrade-status", token=token)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def start(stack, token, **options):
    """POST /api/upgrades; the new upgrade's id."""
    response = api(stack, "POST", "/api/upgrades", token=token, json=options)
    assert response.status_code == 202, response.text
    upgrade_id = response.json()["data"]
    assert response.headers["Location"] == f"/api/upgrades/{upgrade_id}"
    return upgrade_id


def upgrade_of(stack, token, upgrade_id):
    response = api(stack, "GET", f"/api/upgrades/{upgrade_id}", token=token)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def settled(upgrade_id, timeout=WAIT):
    """The upgrade's status once it has stopped (ended or paused) and the run of its parent job is over."""

    def stopped():
        status = Upgrade.objects.get(pk=upgrade_id).status
        running = Job.objects.filter(subject=upgrade_subject(upgrade_id), status__in=Job.OPEN_STATUSES).exists()
        return status not in ("Pending", "Running") and not running

    wait_until(stopped, timeout=timeout, what=f"upgrade {upgrade_id} stopped")
    return Upgrade.objects.get(pk=upgrade_id).status


def make_tenants(*tenant_ids, server=EXTRA):
    """Isolated tenants created in this process: it runs today's release, so they are behind the deployed one."""
    root = seeded_root()
    for tenant_id in tenant_ids:
        new_tenant(tenant_id, database_server_id=server)
        run_tenant_creation(tenant_id=tenant_id, initiated_by=str(root.pk))
    return list(tenant_ids)


def children_of(upgrade_id):
    """{tenant: (status, attempts, method, error)} of the upgrade's children."""
    rows = Upgrade.objects.get(pk=upgrade_id).children.values_list("tenant_id", "status", "attempts", "method", "error")
    return {tenant_id: tuple(rest) for tenant_id, *rest in rows}


def assert_every_tenant_at(fleet, head):
    """Every tenant an upgrade covers: its database at the release exactly once, and the catalog says so."""
    for tenant in isolated_tenants():
        assert (tenant.id, fleet.schema(tenant.id)) == (tenant.id, AT_TARGET)
        assert (tenant.id, tenant.schema_fingerprint) == (tenant.id, head)


def serves(stack, tenant_id):
    """Its admin signs in, and a tenant-scoped call (its user, from its database) answers."""
    response = sign_in(stack, tenant_id)
    assert response.status_code == 200, (tenant_id, response.text)
    return me(stack, response.json()["data"]["token"]).status_code == 200


def me(stack, token):
    return httpx.get(f"{stack.url}/api/users/me", headers={"authorization": f"Bearer {token}"}, timeout=30)


def break_the_release_on(fleet, tenant_id):
    """The release's column exists already in this tenant's database: its migration fails there, and there only."""
    fleet.alter(tenant_id, "ALTER TABLE tenant_notes_note ADD COLUMN summary text")


def repair(fleet, tenant_id):
    fleet.alter(tenant_id, "ALTER TABLE tenant_notes_note DROP COLUMN summary")


class Caller(threading.Thread):
    """Calls GET /api/users/me as each tenant's admin in turn until stopped, and keeps every answer."""

    def __init__(self, stack, tokens):
        super().__init__(daemon=True)
        self.stack, self.tokens = stack, tokens
        self.answers = []  # (tenant, status code or error, time.monotonic())
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.is_set():
            for tenant_id, token in self.tokens.items():
                try:
                    answer = me(self.stack, token).status_code
                except httpx.HTTPError as error:
                    answer = repr(error)
                self.answers.append((tenant_id, answer, time.monotonic()))

    def answered_since(self, moment):
        return {tenant_id for tenant_id, _, at in self.answers if at > moment}

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.join(timeout=60)


# --- the deploy -----------------------------------------------------------------------------------------------

FIRST_TENANTS = {"deploy-0": MAIN_SERVER, "deploy-1": EXTRA, "deploy-2": EXTRA}


def create_over_http(stack, token, tenants):
    """Isolated tenants (id -> server) created through the API and its worker; their admins' tokens."""
    for tenant_id, server in tenants.items():
        response = post_tenant(stack, token, tenant_id, isolated=True, database_server=server)
        assert response.status_code == 202, response.text
    wait_until(lambda: all(finished(t) for t in tenants), timeout=WAIT, what="the tenants Active")
    tokens = {}
    for tenant_id in tenants:
        response = sign_in(stack, tenant_id)
        assert response.status_code == 200, response.text
        tokens[tenant_id] = response.json()["data"]["token"]
    return tokens


def test_a_deploy_brings_every_tenant_on_both_servers_to_the_release_while_they_keep_serving(catalog, fleet, heads):
    stack = fleet.deploy(TODAY)
    token = root_token(seeded_root())
    started = time.monotonic()
    tokens = create_over_http(stack, token, FIRST_TENANTS)
    figure("3 isolated tenants created over HTTP on 2 servers (s)", round(time.monotonic() - started, 1))
    assert upgrade_status(stack, token) == {"head": heads.today, "atHead": 3, "behind": 0, "behindTenants": []}
    started = time.monotonic()
    stack = fleet.deploy(NEXT_RELEASE)
    figure("deploy: web and worker replaced (s)", round(time.monotonic() - started, 1))
    assert heads.next != heads.today
    assert upgrade_status(stack, token) == {
        "head": heads.next,
        "atHead": 0,
        "behind": 3,
        "behindTenants": sorted(FIRST_TENANTS),
    }
    # The canary is the first tenant of the first server (main: deploy-0); the last one, on EXTRA, is held in its
    # transaction, so that the upgrade is caught half-way.
    held = "deploy-2"
    fleet.fault.hold(upgrades.BEFORE_COMMIT, held)
    bystander = root_token(make_root_user())  # another root: none of the upgrade's frames are for them
    with socket(stack, token) as ws, socket(stack, bystander) as bystanders, Caller(stack, tokens) as caller:
        started = time.monotonic()
        upgrade_id = start(stack, token, canary=1, parallel=2)
        fleet.fault.wait_held(timeout=WAIT)
        holding = time.monotonic()
        assert upgrade_of(stack, token, upgrade_id)["status"] == "Running"
        assert fleet.open_transactions(held) == 1  # its DDL done, not committed: nobody else sees it
        assert fleet.schema(held) == TODAYS
        wait_until(
            lambda: caller.answered_since(holding) == set(FIRST_TENANTS),
            timeout=60,
            what="every tenant answered while the upgrade is half-way",
        )
        fleet.fault.release()
        finished_frame, seen = wait_for_event(ws, "UpgradeFinished", timeout=WAIT)
        took = time.monotonic() - started
        assert drain(bystanders, 1) == []
    figure("upgrade of 3 tenants on 2 servers, one held a moment (s)", round(took, 1))

    assert {answer for _, answer, _ in caller.answers} == {200}, Counter(a for _, a, _ in caller.answers)
    assert finished_frame["id"] is not None  # persisted: a client that reconnects replays it
    data = finished_frame["data"]
    assert set(data) == ENDED_KEYS
    assert {k: v for k, v in data.items() if k != "timestamp"} == {
        "type": "success",
        "message": f"Upgrade {upgrade_id} finished: 3 tenant database(s) upgraded, 0 skipped.",
        "upgradeId": upgrade_id,
        "total": 3,
        "done": 3,
        "failed": 0,
        "skipped": 0,
    }
    progress = [frame for frame in seen if frame["event"] == "UpgradeProgress"]
    assert progress and [frame["event"] for frame in seen] == ["UpgradeProgress"] * len(progress), seen
    assert all(frame["id"] is None and set(frame["data"]) == PROGRESS_KEYS for frame in progress)
    assert {frame["data"]["upgradeId"] for frame in progress} == {upgrade_id}
    done = [frame["data"]["done"] for frame in progress]
    assert done == sorted(done) and done[0] < 3  # sent along the way, not only at the end
    assert max(Counter(frame["data"]["timestamp"] for frame in progress).values()) <= 2  # at most two a second
    figure("UpgradeProgress frames", len(progress))
    assert not Notification.objects.filter(event="UpgradeProgress").exists()
    assert Notification.objects.filter(event="UpgradeFinished", data__upgradeId=upgrade_id).count() == 1

    body = upgrade_of(stack, token, upgrade_id)
    assert (body["status"], body["done"], body["failed"], body["skipped"], body["failures"]) == (SUCCEEDED, 3, 0, 0, [])
    assert body["servers"] == {
        MAIN_SERVER: {"done": 1, "failed": 0, "pending": 0, "skipped": 0},
        EXTRA: {"done": 2, "failed": 0, "pending": 0, "skipped": 0},
    }
    assert {child[:3] for child in children_of(upgrade_id).values()} == {("done", 1, upgrades.COMPILED)}
    assert_every_tenant_at(fleet, heads.next)
    assert upgrade_status(stack, token) == {"head": heads.next, "atHead": 3, "behind": 0, "behindTenants": []}
    assert all(serves(stack, tenant_id) for tenant_id in FIRST_TENANTS)


# --- a worker killed with SIGKILL -----------------------------------------------------------------------------

KILL_POINTS = [
    # Its transaction open, the DDL done: the server rolls it back when the session dies; the rerun applies it.
    pytest.param(upgrades.BEFORE_COMMIT, TODAYS, upgrades.COMPILED, id="before-commit"),
    # Committed in its database, not yet recorded in the catalog: the rerun finds it at the target.
    pytest.param(rollout.AFTER_COMMIT, AT_TARGET, upgrades.AT_TARGET, id="after-commit"),
]


def upgrade_held_at(stack, fleet, point, subject):
    """An upgrade started with its work-horse held at the fault `point` (for `subject`): (upgrade id, the worker,
    the held work-horse's pid)."""
    fleet.fault.hold(point, subject)
    upgrade_id = start(stack, root_token(seeded_root()), canary=0, parallel=1)
    horse = fleet.fault.wait_held(timeout=WAIT)["pid"]
    worker = next(worker for worker in stack.workers if worker.alive())
    assert horse in worker.children()
    return upgrade_id, worker, horse


def assert_abandoned_then_succeeded(upgrade_id):
    attempts = Attempt.objects.filter(job__subject=upgrade_subject(upgrade_id)).order_by("number")
    assert [attempt.outcome for attempt in attempts] == [Attempt.Outcome.ABANDONED, Attempt.Outcome.SUCCEEDED]


@pytest.mark.parametrize(("point", "while_killed", "rerun_by"), KILL_POINTS)
def test_a_worker_killed_around_a_tenants_commit_is_replaced_and_the_tenant_is_migrated_once(
    stack, fleet, heads, point, while_killed, rerun_by
):
    tag = "kill-before" if point == upgrades.BEFORE_COMMIT else "kill-after"
    victim, other = make_tenants(f"{tag}-a", f"{tag}-b")
    upgrade_id, worker, horse = upgrade_held_at(stack, fleet, point, victim)
    assert fleet.open_transactions(victim) == (1 if point == upgrades.BEFORE_COMMIT else 0)
    assert fleet.schema(victim) == while_killed
    assert Tenant.objects.get(pk=victim).schema_fingerprint == heads.today

    worker.kill_tree()
    killed = time.monotonic()
    wait_until(lambda: gone(horse), timeout=10, what="the work-horse gone")
    fleet.fault.release()
    wait_until(lambda: fleet.open_transactions(victim) == 0, timeout=30, what="the dead session's transaction gone")
    assert fleet.schema(victim) == while_killed  # all or nothing: never half-migrated
    stack.add_worker()

    assert settled(upgrade_id) == SUCCEEDED
    figure(f"SIGKILL {point}: kill -> upgrade Succeeded (s)", round(time.monotonic() - killed, 1))
    children = children_of(upgrade_id)
    assert children[victim] == ("done", 2, rerun_by, "")
    # The other tenant may have been claimed in the killed run's batch (lanes claim a few at once) and claimed again
    # by the rerun: a claim is an attempt, but it was migrated once, by the compiled SQL.
    status, attempts, method, error = children[other]
    assert (status, method, error) == ("done", upgrades.COMPILED, "") and attempts in (1, 2)
    assert_abandoned_then_succeeded(upgrade_id)
    assert_every_tenant_at(fleet, heads.next)
    assert serves(stack, victim)


def niceness(task):
    """The niceness of a process or thread ("<pid>/task/<tid>"), from /proc."""
    return int(stat_fields(task)[16])  # field 19 of stat; stat_fields starts at the third


def test_an_upgrade_runs_at_a_lower_cpu_priority_than_the_worker_so_that_requests_come_first(stack, fleet, heads):
    """The lanes (and the thread that builds the templates) are background work beside the tenants' requests on
    the same machine: each runs nicer than its work-horse by rollout.BACKGROUND_NICENESS."""
    (tenant,) = make_tenants("nice-lane")
    fleet.fault.hold(upgrades.BEFORE_COMMIT, tenant)
    upgrade_id = start(stack, root_token(seeded_root()), canary=0, parallel=1)
    held = fleet.fault.wait_held(timeout=WAIT)
    horse, lane = held["pid"], f"{held['pid']}/task/{held['thread']}"
    try:
        assert held["thread"] != horse  # a lane, not the horse's main thread
        assert niceness(lane) == min(niceness(horse) + rollout.BACKGROUND_NICENESS, 19) > niceness(horse)
    finally:
        fleet.fault.release()
    assert settled(upgrade_id) == SUCCEEDED
    assert_every_tenant_at(fleet, heads.next)


def test_a_worker_killed_while_deriving_the_new_template_leaves_a_correct_template_and_no_scratch_copy(
    stack, fleet, heads
):
    """The new release's template is derived from today's (a clone of it, brought to the head in one transaction
    under a scratch name): a worker killed with that transaction open, and the rerun (the recovery sweep) builds it
    again, publishes it, retires today's, and leaves no clone behind on the server."""
    cluster = fleet.clusters[EXTRA]
    make_tenants("derive-a", "derive-b")  # today's template is made on EXTRA for them
    today = template_name()
    with override_settings(MIGRATION_MODULES=NEXT_MIGRATIONS):
        target, manifest = template_name(), template_manifest()
    scratch = f"{target}_building"
    assert today in databases_on(cluster) and target not in databases_on(cluster)
    upgrade_id, worker, horse = upgrade_held_at(stack, fleet, DERIVE_BEFORE_COMMIT, None)
    assert scratch in databases_on(cluster) and target not in databases_on(cluster)  # not published half-made

    worker.kill_tree()
    wait_until(lambda: gone(horse), timeout=10, what="the work-horse gone")
    fleet.fault.release()
    stack.add_worker()

    assert settled(upgrade_id) == SUCCEEDED
    assert_abandoned_then_succeeded(upgrade_id)
    left = [name for name in databases_on(cluster) if name.startswith(template_prefix())]
    assert target in left and today not in left  # published; today's retired after the upgrade's end
    assert all(name == target or name.startswith(f"{target}_spare_") for name in left), left  # no scratch copy
    with fleet.cursor("postgres", EXTRA) as cursor:
        cursor.execute(
            "SELECT datallowconn, shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", [target]
        )
        allows_connections, recorded = cursor.fetchone()
    assert not allows_connections and json.loads(recorded) == manifest
    assert template_schema(fleet, target) == AT_TARGET  # the release applied once, in the template itself
    assert_every_tenant_at(fleet, heads.next)


def template_schema(fleet, template):
    """The release's marks in `template` (a template refuses connections: seen through a clone of it)."""
    clone = f"{template}_look"
    with fleet.cursor("postgres", EXTRA) as cursor:
        cursor.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(clone), sql.Identifier(template))
        )
    try:
        with fleet.cursor(clone, EXTRA) as cursor:
            cursor.execute(LOOK)
            return Schema(*cursor.fetchone())
    finally:
        with fleet.cursor("postgres", EXTRA) as cursor:
            cursor.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(clone)))


# --- Redis restarted ------------------------------------------------------------------------------------------


def test_redis_restarted_mid_upgrade_loses_nothing_and_migrates_every_tenant_once(stack, fleet, heads):
    tenants = make_tenants("redis-a", "redis-b", "redis-c")
    token = root_token(seeded_root())
    before = last_notification_id()
    # One lane, one canary: redis-a done, redis-b held in its transaction, redis-c still to come.
    fleet.fault.hold(upgrades.BEFORE_COMMIT, "redis-b")
    upgrade_id = start(stack, token, canary=1, parallel=1)
    horse = fleet.fault.wait_held(timeout=WAIT)["pid"]
    worker = next(worker for worker in stack.workers if worker.alive())
    fleet.redis.restart()  # a crash without persistence: the queues, the workers' registrations, the channels
    restarted = time.monotonic()
    fleet.fault.release()

    assert settled(upgrade_id) == SUCCEEDED
    figure("Redis restarted mid-upgrade: restart -> upgrade Succeeded (s)", round(time.monotonic() - restarted, 1))
    assert {tenant_id: child[0] for tenant_id, child in children_of(upgrade_id).items()} == dict.fromkeys(
        tenants, "done"
    )
    assert_every_tenant_at(fleet, heads.next)
    with socket(stack, token, since=before) as ws:  # the end is persisted: a client that reconnects gets it
        frame, _ = wait_for_event(ws, "UpgradeFinished", timeout=60)
    assert (frame["data"]["upgradeId"], frame["data"]["done"]) == (upgrade_id, 3)
    assert serves(stack, "redis-b")
    # The run went on in the same work-horse, and its worker is still there, registered again in the new Redis.
    assert [attempt.outcome for attempt in Attempt.objects.filter(job__subject=upgrade_subject(upgrade_id))] == [
        Attempt.Outcome.SUCCEEDED
    ]
    assert gone(horse) and worker.alive()
    wait_until(lambda: fleet.redis.client().scard("rq:workers") == 1, timeout=60, what="the worker registered again")


# --- a migration that fails for one tenant --------------------------------------------------------------------


def test_a_tenant_whose_migration_fails_pauses_the_upgrade_keeps_serving_and_a_resume_finishes(stack, fleet, heads):
    canary, broken, waiting = make_tenants("pause-a", "pause-b", "pause-c")
    break_the_release_on(fleet, broken)
    token = root_token(seeded_root())
    with socket(stack, token) as ws:
        # One lane, one canary: pause-a (the first) is the canary, pause-b fails next, pause-c is never reached.
        upgrade_id = start(stack, token, canary=1, parallel=1, maxFailures=0)
        frame, _ = wait_for_event(ws, "UpgradeFailed", timeout=WAIT)
    reason = "1 tenant(s) failed, more than the 0 allowed"
    assert {k: v for k, v in frame["data"].items() if k != "timestamp"} == {
        "type": "error",
        "message": f"Upgrade {upgrade_id} paused: {reason}.",
        "upgradeId": upgrade_id,
        "total": 3,
        "done": 1,
        "failed": 1,
        "skipped": 0,
    }
    assert settled(upgrade_id) == PAUSED
    body = upgrade_of(stack, token, upgrade_id)
    assert (body["status"], body["error"], body["finishedOn"]) == (PAUSED, reason, None)
    (failure,) = body["failures"]
    assert failure["tenantId"] == broken and "already exists" in failure["error"], failure
    children = children_of(upgrade_id)
    assert {tenant_id: child[0] for tenant_id, child in children.items()} == {
        canary: "done",
        broken: "failed",
        waiting: "pending",
    }
    assert (fleet.schema(canary), fleet.schema(broken), fleet.schema(waiting)) == (AT_TARGET, BROKEN, TODAYS)
    assert Tenant.objects.get(pk=broken).schema_fingerprint == heads.today
    assert serves(stack, broken)  # on its previous schema

    repair(fleet, broken)
    response = api(stack, "POST", f"/api/upgrades/{upgrade_id}/resume", token=token)
    assert response.status_code == 202, response.text
    assert settled(upgrade_id) == SUCCEEDED
    assert children_of(upgrade_id)[broken][0] == "done"
    assert_every_tenant_at(fleet, heads.next)
    assert serves(stack, broken)


def test_with_one_failure_allowed_the_others_finish_and_a_new_upgrade_takes_the_repaired_tenant_alone(
    stack, fleet, heads
):
    token = root_token(seeded_root())
    # A tenant created after the deploy, on OTHER: at the head from the start.
    on_other = "tolerate-new"
    assert post_tenant(stack, token, on_other, isolated=True, database_server=OTHER).status_code == 202
    first, broken, last = make_tenants("tolerate-a", "tolerate-b", "tolerate-c")
    wait_until(lambda: finished(on_other), timeout=WAIT, what=f"{on_other} Active")
    assert fleet.schema(on_other) == AT_TARGET
    break_the_release_on(fleet, broken)
    with socket(stack, token) as ws:
        upgrade_id = start(stack, token, canary=0, parallel=2, maxFailures=1)
        frame, _ = wait_for_event(ws, "UpgradeFailed", timeout=WAIT)
    assert frame["data"]["message"] == (
        f"Upgrade {upgrade_id} finished with 1 failed tenant database(s); they keep their old schema."
    )
    assert (frame["data"]["done"], frame["data"]["failed"], frame["data"]["skipped"]) == (2, 1, 1)
    assert settled(upgrade_id) == FAILED
    body = upgrade_of(stack, token, upgrade_id)
    assert (body["status"], body["total"], body["done"], body["failed"]) == (FAILED, 4, 2, 1)
    assert body["finishedOn"] is not None
    assert [failure["tenantId"] for failure in body["failures"]] == [broken]
    assert (fleet.schema(first), fleet.schema(broken), fleet.schema(last)) == (AT_TARGET, BROKEN, AT_TARGET)
    assert upgrade_status(stack, token)["behindTenants"] == [broken]
    assert serves(stack, broken)

    repair(fleet, broken)
    # The tenants at the head are skipped without opening their databases: OTHER, where one is, is down meanwhile.
    fleet.clusters[OTHER].stop()
    try:
        second = start(stack, token, canary=0)
        assert settled(second) == SUCCEEDED
    finally:
        fleet.clusters[OTHER].start_again()
    assert {tenant_id: child[:2] for tenant_id, child in children_of(second).items()} == {broken: ("done", 1)}
    body = upgrade_of(stack, token, second)
    assert (body["total"], body["done"], body["skipped"], body["failed"]) == (4, 1, 3, 0)
    assert_every_tenant_at(fleet, heads.next)
