"""The use cases of tenant database upgrades (API.md, "Tenant database upgrades"): start one, pause, resume or
cancel it. Each checks the state under the upgrade's row lock and writes it with the job that acts on it, in one
transaction; the work itself is tenants.provisioning.rollout's, in the upgrade's parent job."""

import logging
from itertools import chain, zip_longest

from django.conf import settings
from django.db import transaction

from jobs.locks import subject_lock

from . import events, tasks
from .exceptions import Conflict, Refused
from .models import UPGRADE_OPEN, Upgrade, UpgradeStatus, UpgradeTenant, UpgradeTenantStatus
from .provisioning import rollout
from .provisioning.template import migration_fingerprint
from .selectors import isolated_tenants, tenants_behind

logger = logging.getLogger(__name__)
U = UpgradeStatus
C = UpgradeTenantStatus
DEFAULT_CANARY = 5
DEFAULT_PARALLEL = 4
DEFAULT_MAX_FAILURES = 0
# Two requests that start an upgrade at once: one of them waits for the other, then finds it (409).
START_LOCK = "tenant-database-upgrades"
# What the API and the admin say when an upgrade starts or an action is accepted (the work is the parent job's).
UPGRADE_INITIATED = "Upgrade initiated. The tenant databases will be upgraded in the background."
# The statuses each action is allowed from: anything else is a Conflict (409).
ALLOWED_FROM = {
    "pause": (U.PENDING, U.RUNNING),
    "resume": (U.PAUSED,),
    "cancel": (U.PENDING, U.RUNNING, U.PAUSED),
}


def validate_options(*, canary, parallel, max_failures):
    """Refused (400, naming the field) unless each is a whole number in its range."""
    limits = {
        "canary": (canary, 0, None),
        "parallel": (parallel, 1, settings.DIQUIS_UPGRADE_MAX_PARALLEL),
        "maxFailures": (max_failures, 0, None),
    }
    for field, (value, low, high) in limits.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (high and value > high):
            bounds = f"between {low} and {high}" if high else f"at least {low}"
            raise Refused(f"{field} must be a whole number {bounds}", field=field)


def _canaries_first(behind, count):
    """The children in the order they are made: `count` canaries spread over the servers (one of each server's in
    turn), then the rest."""
    by_server = {}
    for tenant_id, server, _ in behind:
        by_server.setdefault(server, []).append((tenant_id, server))
    turns = zip_longest(*(by_server[server] for server in sorted(by_server)))
    spread = [child for turn in turns for child in turn if child is not None]
    return spread[:count], spread[count:]


def start_upgrade(*, initiated_by, canary=DEFAULT_CANARY, parallel=DEFAULT_PARALLEL, max_failures=DEFAULT_MAX_FAILURES):
    """A new upgrade of every isolated tenant database to this release's migration head, and its parent job.
    Conflict while another is open; with nothing behind, it is Succeeded at once (every tenant skipped)."""
    validate_options(canary=canary, parallel=parallel, max_failures=max_failures)
    with subject_lock(START_LOCK), transaction.atomic():
        running = Upgrade.objects.filter(status__in=UPGRADE_OPEN).first()
        if running is not None:
            raise Conflict(f"Upgrade {running.pk} is {running.status}: finish, resume or cancel it first")
        head = migration_fingerprint()
        candidates = list(isolated_tenants().values_list("id", "database_server_id", "schema_fingerprint"))
        behind = [row for row in candidates if row[2] != head]
        canaries, rest = _canaries_first(behind, canary)
        upgrade = Upgrade.objects.create(
            target=head,
            total=len(candidates),
            skipped=len(candidates) - len(behind),
            canary=len(canaries),
            parallel=parallel,
            max_failures=max_failures,
            initiated_by=initiated_by,
        )
        UpgradeTenant.objects.bulk_create(
            UpgradeTenant(upgrade=upgrade, tenant_id=tenant_id, database_server=server, is_canary=is_canary)
            for (tenant_id, server), is_canary in chain(((c, True) for c in canaries), ((r, False) for r in rest))
        )
        if behind:
            tasks.start_upgrade_run(upgrade)
        else:
            rollout.end(upgrade, U.SUCCEEDED)
    return upgrade


def start_upgrade_if_behind():
    """DIQUIS_AUTO_UPGRADE: the first worker of a release that finds tenant databases behind its head starts the
    upgrade to it (with the default options, notifying no one: the Upgrades page and /metrics show it). Only once
    per head: an upgrade to it that failed or was cancelled is a root admin's to start again. Returns the upgrade
    started, or None."""
    head = migration_fingerprint()
    if Upgrade.objects.filter(target=head).exists() or not tenants_behind(head).exists():
        return None
    try:
        upgrade = start_upgrade(initiated_by=None)
    except Conflict as conflict:  # another worker was first, or an older upgrade is still open
        logger.info("no automatic upgrade to %s: %s", head, conflict)
        return None
    logger.info("automatic upgrade %s to %s started", upgrade.pk, head)
    return upgrade


def _locked(upgrade_id):
    return Upgrade.objects.select_for_update().get(pk=upgrade_id)


def _refuse_unless(upgrade, action, *, doing):
    if upgrade.status not in ALLOWED_FROM[action]:
        raise Conflict(f"Upgrade {upgrade.pk} is {upgrade.status}: it cannot be {doing}")


def allowed_actions(upgrade):
    """The actions (pause, resume, cancel) the upgrade's status allows, in that order: the admin's buttons."""
    return [action for action, statuses in ALLOWED_FROM.items() if upgrade.status in statuses]


@transaction.atomic
def pause_upgrade(*, upgrade_id):
    """Paused: its lanes stop after the tenant each is on (none is left half-done); resume goes on."""
    upgrade = _locked(upgrade_id)
    _refuse_unless(upgrade, "pause", doing="paused")
    upgrade.transition(U.PAUSED)
    upgrade.error = "paused by a root admin"
    upgrade.save(update_fields=["status", "error"])
    events.upgrade_ended(upgrade, rollout.counts(upgrade))
    return upgrade


@transaction.atomic
def resume_upgrade(*, upgrade_id):
    """Running again: the failed tenants are tried again (they count as failures no more until they fail again),
    and a new run of the parent job goes on with what is left."""
    upgrade = _locked(upgrade_id)
    _refuse_unless(upgrade, "resume", doing="resumed")
    upgrade.transition(U.RUNNING)
    upgrade.error = ""
    upgrade.save(update_fields=["status", "error"])
    upgrade.children.filter(status=C.FAILED).update(status=C.PENDING, attempts=0, not_before=None)
    tasks.start_upgrade_run(upgrade)
    return upgrade


@transaction.atomic
def cancel_upgrade(*, upgrade_id):
    """Cancelled: no more tenant starts; the ones being upgraded finish their one transaction; the rest stay as
    they are (behind: a new upgrade takes them)."""
    upgrade = _locked(upgrade_id)
    _refuse_unless(upgrade, "cancel", doing="cancelled")
    rollout.end(upgrade, U.CANCELLED)
    return upgrade


# Each action with what is said when it is accepted (API and admin).
ACTIONS = {
    "pause": (pause_upgrade, "Upgrade paused. The tenants being upgraded finish first."),
    "resume": (resume_upgrade, "Upgrade resumed."),
    "cancel": (cancel_upgrade, "Upgrade cancelled. The tenants being upgraded finish first."),
}
