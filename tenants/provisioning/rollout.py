"""The body of an upgrade's parent job (API.md, "Tenant database upgrades"): prepare the servers, then upgrade its
children, `parallel` at a time, canaries first.

Each child (UpgradeTenant) is one tenant database. It is a durable row, not an RQ job of its own: a job per tenant
would cost a work-horse fork and fresh sessions per tenant, and a thousand of them would hold every worker, so
that no tenant could be created until the upgrade was over. Instead the parent job runs `parallel` lanes
(threads: the work is waiting on PostgreSQL) that claim children one at a time. Everything that decides is in the
catalog, under the upgrade's row lock:

- a claim takes the next pending children, canaries first (the others wait until every canary has succeeded),
  on servers where fewer than DIQUIS_UPGRADE_PER_SERVER lanes are at work (a lane runs its claim one tenant at a
  time: one session per server), none whose retry is not due;
- the child runs under its tenant's subject lock (jobs.locks), so it never races the tenant's own jobs (a
  creation, a move, a deletion): a tenant whose lock is held is tried again a moment later;
- its outcome is recorded with the tenant's new fingerprint; a failed canary, or more than `max_failures`
  failures, pauses the upgrade; the last child ends it.

The templates the new one replaces are retired once the run is over (retire_templates), not beside the lanes:
a DROP DATABASE waits for a checkpoint of the whole server, which after a thousand tenants' DDL takes seconds.

A crash or a killed worker loses nothing: the job is run again (jobs.recovery), and the children it left running
are pending again. Their databases are each at the start or at the end of their one transaction; a database
that turns out to be at the target costs no migration (provisioning.upgrades reads its django_migrations).
"""

import contextlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connections, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from jobs.locks import holding

from .. import events
from ..exceptions import TenantDatabaseUnavailable
from ..models import ProvisioningStatus, Tenant, Upgrade, UpgradeStatus, UpgradeTenant, UpgradeTenantStatus
from ..subjects import subject_for
from . import faults, upgrades
from .stores import store_for
from .template import ensure_template, migration_fingerprint, retire_stale_templates

logger = logging.getLogger(__name__)
U = UpgradeStatus
C = UpgradeTenantStatus

AFTER_COMMIT = "upgrade-after-commit"
# How many children a lane claims at once, at most.
CLAIM_BATCH = 8
# How long a lane waits before looking again when no child can be claimed now but some are still to come.
IDLE_SECONDS = 0.2
# UpgradeProgress at most this often (API.md: two a second).
PROGRESS_INTERVAL = timedelta(seconds=0.5)
# A tenant whose lock another job holds, or whose server does not answer, is tried again after this.
RETRY_LATER = timedelta(seconds=1)
# How much nicer than the worker the upgrade's threads run (Linux: a thread's own niceness, 0..19).
BACKGROUND_NICENESS = 10


class OtherRelease(Exception):
    """This process's migration head is not the upgrade's target: it runs another release (a rolling deploy).
    The job fails this attempt and is tried again, by a worker of the right release."""


# Counts


def counts(upgrade):
    """{"total", "done", "failed", "skipped"}: the API's, from the children and what was skipped at the start."""
    by_status = dict(upgrade.children.values_list("status").annotate(n=Count("id")).order_by())
    return {
        "total": upgrade.total,
        "done": by_status.get(C.DONE, 0),
        "failed": by_status.get(C.FAILED, 0),
        "skipped": upgrade.skipped + by_status.get(C.SKIPPED, 0),
    }


def _locked(upgrade_id):
    return Upgrade.objects.select_for_update().get(pk=upgrade_id)


# The run


def run(upgrade_id):
    """One run of the parent job: returns the upgrade's status when it stops (done, paused or cancelled)."""
    upgrade = Upgrade.objects.get(pk=upgrade_id)
    if not upgrade.is_open:
        return upgrade.status
    if migration_fingerprint() != upgrade.target:
        raise OtherRelease(f"this worker's migration head is {migration_fingerprint()}, not {upgrade.target}")
    if not _begin(upgrade_id):
        return Upgrade.objects.get(pk=upgrade_id).status
    planner = upgrades.Planner()
    # SQLite (the embedded default) has one writer at a time: lanes would only wait for each other there.
    sqlite = connections["default"].vendor == "sqlite"
    errors = []
    threads = [
        _background(f"diquis-upgrade-{upgrade_id}-{n}", _lane, upgrade_id, n, planner, errors)
        for n in range(1 if sqlite else upgrade.parallel)
    ]
    # The new release's templates are for the tenants created from now on, not for the children (each migrates
    # its own database): built beside the lanes, not before them (migrating a template afresh takes seconds);
    # on SQLite, before its one lane.
    if sqlite:
        prepare_servers(upgrade, errors)
    else:
        threads.append(_background(f"diquis-upgrade-{upgrade_id}-t", prepare_servers, upgrade, errors))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]  # this attempt fails; the next run takes the children it left running back
    return finish_if_complete(upgrade_id)


def prepare_servers(upgrade, errors):
    """The template of the target on every server with a child (built once: template.ensure_template, the stale
    ones kept until the run is over; a look at the server's catalog when it is there already). A server that
    does not answer now is left: its children wait for it, and its template is built by the next job that needs
    it. Anything else that goes wrong is added to `errors` (this attempt of the job fails)."""
    try:
        for server in servers_of(upgrade.pk):
            try:
                ensure_template(store_for(server), retire_stale=False)  # retired after the end (retire_templates)
            except TenantDatabaseUnavailable:
                logger.warning("upgrade %s: server %s does not answer; its template is built later", upgrade.pk, server)
    except Exception as error:
        logger.exception("upgrade %s: the templates could not be built", upgrade.pk)
        errors.append(error)
    finally:
        connections.close_all()


def servers_of(upgrade_id):
    return sorted(set(UpgradeTenant.objects.filter(upgrade_id=upgrade_id).values_list("database_server", flat=True)))


def retire_templates(upgrade_id):
    """After the run: the templates the new one replaced, and their spares, dropped on every server of the
    upgrade (template.retire_stale_templates; a server that does not answer keeps them until its next build).
    Idempotent: a run of the job again after a crash here does what is left."""
    for server in servers_of(upgrade_id):
        try:
            retire_stale_templates(store_for(server))
        except TenantDatabaseUnavailable:
            logger.warning(
                "upgrade %s: server %s does not answer; its stale templates stay for now", upgrade_id, server
            )


@transaction.atomic
def _begin(upgrade_id):
    """Running, and the children a previous run of this job left running are pending again (that run is over:
    this job holds its subject's lock). False if the upgrade was paused or cancelled meanwhile."""
    upgrade = _locked(upgrade_id)
    if upgrade.status == U.PENDING:
        upgrade.transition(U.RUNNING)
        upgrade.save(update_fields=["status"])
    if upgrade.status != U.RUNNING:
        return False
    upgrade.children.filter(status=C.RUNNING).update(status=C.PENDING, lane=None)
    return True


def yield_to_traffic():
    """Lower this thread's CPU priority: an upgrade is background work, the tenants' requests on the same machine
    come first. The lanes drive their tenant databases' sessions one statement at a time, so a lane that waits
    for the CPU also leaves its PostgreSQL backend idle: the whole upgrade gives way, not only its Python side.
    Linux gives each thread a niceness of its own (setpriority on the thread's id); elsewhere, or where the
    worker is as nice as can be already, this is a no-op."""
    thread = threading.get_native_id()
    with contextlib.suppress(AttributeError, OSError):
        nice = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(nice + BACKGROUND_NICENESS, 19))


def _background(name, target, *args):
    """A thread of the upgrade, run at a lower priority (yield_to_traffic)."""

    def body():
        yield_to_traffic()
        target(*args)

    return threading.Thread(target=body, name=name)


def _lane(upgrade_id, lane, planner, errors):
    """Claim a few children at a time and upgrade them one by one; the successes are recorded together (they
    only need their fingerprint written), anything else at once (a failure may pause the upgrade)."""
    try:
        while (batch := claim(upgrade_id, lane)) is not None:
            if batch is WAIT:
                time.sleep(IDLE_SECONDS)
                continue
            upgraded = []
            for position, child in enumerate(batch):
                outcome = upgrade_child(child, planner)
                if outcome.status == C.DONE:
                    upgraded.append((child, outcome))
                    continue
                record_upgraded(upgraded)
                upgraded = []
                if record(child, outcome) != U.RUNNING:
                    release(batch[position + 1 :])  # paused or cancelled: the rest of the batch waits
                    break
            record_upgraded(upgraded)
    except Exception as error:
        logger.exception("upgrade %s: a lane stopped", upgrade_id)
        errors.append(error)
    finally:
        connections.close_all()


WAIT = object()


def _no_wait_for_disk():
    """The lanes' catalog writes need not wait for the disk (synchronous_commit off, this transaction only): one
    lost in a crash of the main database's server only makes the next run look at that tenant's database again
    (provisioning.upgrades finds it at the target). The tenant databases' own commits do wait."""
    with connections["default"].cursor() as cursor:
        if connections["default"].vendor == "postgresql":
            cursor.execute("SET LOCAL synchronous_commit = off")


def _claim_size(upgrade, startable):
    """Enough to spare the catalog a transaction per tenant, few enough that the lanes end together (and share
    the canaries). `startable`: the pending children that may start now."""
    return max(1, min(CLAIM_BATCH, startable // max(upgrade.parallel, 1)))


@transaction.atomic
def claim(upgrade_id, lane):
    """The next children for `lane` to run, marked running (a few, canaries before all others, on servers where
    fewer than DIQUIS_UPGRADE_PER_SERVER lanes run children: a lane upgrades its batch one tenant at a time, so
    it is one session on each server of its batch); WAIT when none may start now but some are still to come;
    None when the lane has nothing left to do (the upgrade is not running, or every child is taken or over)."""
    _no_wait_for_disk()
    upgrade = _locked(upgrade_id)
    if upgrade.status != U.RUNNING:
        return None
    tally, lanes_on = {}, {}
    for status, is_canary, server, running_lane, n in (
        upgrade.children.values_list("status", "is_canary", "database_server", "lane")
        .annotate(n=Count("id"))
        .order_by()
    ):
        tally[status, is_canary, server] = tally.get((status, is_canary, server), 0) + n
        if status == C.RUNNING:
            lanes_on.setdefault(server, set()).add(running_lane)
    pending = sum(n for (status, _, _), n in tally.items() if status == C.PENDING)
    if not pending:
        return None
    canaries_left = any(is_canary and status not in (C.DONE, C.SKIPPED) for status, is_canary, _ in tally)
    room = {server: settings.DIQUIS_UPGRADE_PER_SERVER - len(lanes_on.get(server, ())) for _, _, server in tally}
    now = timezone.now()
    candidates = upgrade.children.filter(status=C.PENDING, database_server__in=[s for s, r in room.items() if r > 0])
    candidates = candidates.filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
    if canaries_left:
        candidates = candidates.filter(is_canary=True)  # the rest start once every canary has succeeded
    startable = sum(
        n for (status, is_canary, _), n in tally.items() if status == C.PENDING and (is_canary or not canaries_left)
    )
    size = _claim_size(upgrade, startable)
    batch, servers = [], set()
    for child in candidates.order_by("-is_canary", "id")[: size * 4]:
        if len(batch) == size:
            break
        if child.database_server not in servers:
            if room[child.database_server] <= 0:
                continue
            room[child.database_server] -= 1  # this lane is one more on that server
            servers.add(child.database_server)
        batch.append(child)
    if not batch:
        return WAIT
    UpgradeTenant.objects.filter(pk__in=[child.pk for child in batch]).update(
        status=C.RUNNING, lane=lane, started_at=now, attempts=F("attempts") + 1
    )
    for child in batch:
        child.status, child.lane, child.started_at, child.attempts = C.RUNNING, lane, now, child.attempts + 1
        child.upgrade = upgrade
    return batch


@transaction.atomic
def release(children):
    """Children claimed but not started (the upgrade paused or was cancelled meanwhile): pending again."""
    if children:
        UpgradeTenant.objects.filter(pk__in=[child.pk for child in children]).update(
            status=C.PENDING, lane=None, attempts=F("attempts") - 1
        )


@dataclass(frozen=True)
class Outcome:
    status: str
    error: str = ""
    method: str = ""
    retry: bool = False  # the tenant was busy, or its server silent: try it again a moment later


def upgrade_child(child, planner):
    """Upgrade the child's tenant under its subject lock; returns how it went (recorded by the caller)."""
    with holding(subject_for(child.tenant_id), wait=0) as held:
        if not held:
            return Outcome(C.PENDING, retry=True)
        tenant = Tenant.objects.filter(pk=child.tenant_id).first()
        if tenant is None or tenant.status == ProvisioningStatus.DELETING or not tenant.database_name:
            return Outcome(C.SKIPPED)
        if tenant.schema_fingerprint == child.upgrade.target:
            return Outcome(C.SKIPPED)  # brought to the head by another job meanwhile
        started = time.monotonic()
        try:
            method = upgrades.upgrade_database(tenant, planner, lock_timeout=settings.DIQUIS_UPGRADE_LOCK_TIMEOUT)
        except (upgrades.TenantBusy, TenantDatabaseUnavailable) as error:
            return Outcome(C.FAILED, error=str(error), retry=True)
        except Exception as error:
            logger.warning("upgrade %s: tenant %s failed: %s", child.upgrade_id, tenant.id, error)
            return Outcome(C.FAILED, error=_first_line(error))
        faults.check(AFTER_COMMIT, tenant.id)  # tests: killed between the tenant's commit and its record
        seconds = time.monotonic() - started
        logger.info("upgrade %s: tenant %s %s in %.3fs", child.upgrade_id, tenant.id, method, seconds)
        return Outcome(C.DONE, method=method)


def _first_line(error):
    return (f"{type(error).__name__}: {error}".strip().splitlines() or [type(error).__name__])[0]


@transaction.atomic
def record_upgraded(upgraded):
    """Children upgraded: done, and their tenants' fingerprint the target, in one transaction; UpgradeProgress when
    the last one is half a second old."""
    if not upgraded:
        return
    _no_wait_for_disk()
    upgrade = _locked(upgraded[0][0].upgrade_id)
    now = timezone.now()
    for method in {outcome.method for _, outcome in upgraded}:
        ids = [child.pk for child, outcome in upgraded if outcome.method == method]
        UpgradeTenant.objects.filter(pk__in=ids).update(status=C.DONE, method=method, error="", finished_at=now)
    tenant_ids = [child.tenant_id for child, _ in upgraded]
    Tenant.objects.filter(pk__in=tenant_ids).update(schema_fingerprint=upgrade.target)
    _progress(upgrade, now)


def _progress(upgrade, now):
    if upgrade.progress_sent_at is None or now - upgrade.progress_sent_at >= PROGRESS_INTERVAL:
        upgrade.progress_sent_at = now
        upgrade.save(update_fields=["progress_sent_at"])
        events.upgrade_progress(upgrade, counts(upgrade))


@transaction.atomic
def record(child, outcome):
    """A child's outcome other than done: skipped, failed, or (a `retry`) back to pending, due a moment later,
    until it has had DIQUIS_UPGRADE_ATTEMPTS (then it fails with that error; a lock held by the tenant's own job
    is never its failure). A failed canary, or more failures than allowed, pauses the upgrade. Returns the
    upgrade's status."""
    upgrade = _locked(child.upgrade_id)
    now = timezone.now()
    if outcome.retry and (not outcome.error or child.attempts < settings.DIQUIS_UPGRADE_ATTEMPTS):
        if not outcome.error:
            child.attempts -= 1
        child.status, child.lane, child.not_before, child.error = C.PENDING, None, now + RETRY_LATER, outcome.error
        child.save(update_fields=["status", "lane", "not_before", "error", "attempts"])
        return upgrade.status
    child.status, child.error, child.finished_at = outcome.status, outcome.error, now
    child.save(update_fields=["status", "error", "finished_at"])
    if child.status == C.FAILED and outcome.retry:
        # Its attempts ended on a server that stopped answering (or a lock held): one of them may have committed
        # before the server went, its answer lost with the session. Not known, then, rather than the previous
        # schema: the next upgrade counts it behind, reads its database and records what it finds.
        Tenant.objects.filter(pk=child.tenant_id).update(schema_fingerprint=None)
    if child.status != C.FAILED:
        _progress(upgrade, now)
        return upgrade.status
    tally = counts(upgrade)
    if child.is_canary or tally["failed"] > upgrade.max_failures:
        _pause(upgrade, tally, reason=_pause_reason(child, tally, upgrade))
    return upgrade.status


def _pause_reason(child, tally, upgrade):
    if child.is_canary:
        return f"canary tenant '{child.tenant_id}' failed"
    return f"{tally['failed']} tenant(s) failed, more than the {upgrade.max_failures} allowed"


def _pause(upgrade, tally, *, reason):
    upgrade.transition(U.PAUSED)
    upgrade.error = reason
    upgrade.save(update_fields=["status", "error"])
    events.upgrade_ended(upgrade, tally)


@transaction.atomic
def finish_if_complete(upgrade_id):
    """Succeeded (every child at the target or skipped) or Failed (some failed, no more than allowed), once no
    child is pending or running; returns the upgrade's status."""
    upgrade = _locked(upgrade_id)
    if upgrade.status != U.RUNNING or upgrade.children.filter(status__in=[C.PENDING, C.RUNNING]).exists():
        return upgrade.status
    tally = counts(upgrade)
    end(upgrade, U.FAILED if tally["failed"] else U.SUCCEEDED, tally)
    return upgrade.status


def end(upgrade, status, tally=None, *, error=None):
    """The upgrade's end (in the caller's transaction, the row locked), and its notification."""
    upgrade.transition(status)
    upgrade.finished_on = timezone.now()
    if error is not None:
        upgrade.error = error
    upgrade.save(update_fields=["status", "finished_on", "error"])
    events.upgrade_ended(upgrade, tally or counts(upgrade))


def record_run_failure(error, *, upgrade_id):
    """After the parent job's last attempt (the catalog or Redis gone for longer than its retries): paused with the
    error, for a root admin to resume; nothing of it is lost."""
    with transaction.atomic():
        upgrade = Upgrade.objects.select_for_update().filter(pk=upgrade_id).first()
        if upgrade is None or upgrade.status not in (U.PENDING, U.RUNNING):
            return
        if upgrade.status == U.PENDING:
            upgrade.transition(U.RUNNING)
        _pause(upgrade, counts(upgrade), reason=error)
