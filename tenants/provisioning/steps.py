"""The job bodies of the tenants domain: create (provision), update, delete (deprovision), move one tenant.

Each operation moves the tenant to its in-flight status, runs idempotent steps ("ensure", never
"create"), and ends it Active (or gone) with a notification to the user who asked. A failed attempt
raises; the job layer retries it, and after the last attempt calls `record_operation_failure` below.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from jobs.steps import step

from .. import events
from ..exceptions import TenantDatabaseUnavailable
from ..models import Operation, ProvisioningStatus, Tenant
from . import databases, faults, moves
from .template import migration_fingerprint

logger = logging.getLogger(__name__)
S = ProvisioningStatus


@dataclass(frozen=True)
class Step:
    """One step of an operation: `label` names it for fault injection and tests, `title` for people (the
    progress notification and the attempt history)."""

    label: str
    title: str
    function: Callable


CREATE_DATABASE = Step("create-database", "Creating database", databases.ensure_tenant_database)
APPLY_MIGRATIONS = Step("apply-migrations", "Applying migrations", databases.ensure_migrated)
CREATE_ADMIN_USER = Step("create-admin-user", "Creating admin user", databases.ensure_admin_user)


def apply_changes(tenant, *, name, is_active):
    """The update itself; saved with the tenant's return to Active (_finish), in one transaction. A
    deactivation revokes every token of the tenant's users: a later reactivation does not revive them."""
    if tenant.is_active and not is_active:
        tenant.token_generation += 1
    tenant.name, tenant.is_active = name, is_active


APPLY_CHANGES = Step("apply-changes", "Applying changes", apply_changes)
REMOVE_TENANT_DATA = Step("remove-tenant-data", "Removing tenant data", databases.drop_tenant_data)


def switch_server(tenant, *, initiated_by, target):
    """The move's one catalog transaction: the tenant's database is the target's from now on, the tenant is
    Active again, and its user hears of it; all or nothing."""
    with transaction.atomic():
        locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
        locked.transition(S.ACTIVE)
        locked.database_server_id, locked.move_target_id, locked.provisioning_error = target, None, None
        locked.save(update_fields=["status", "database_server", "move_target", "provisioning_error"])
        events.operation_succeeded(
            user_id=initiated_by,
            operation=Operation.MOVE,
            tenant_id=tenant.id,
            tenant_name=locked.name,
            database_server=target,
        )
    tenant.status, tenant.database_server_id, tenant.move_target_id = S.ACTIVE, target, None


PREPARE_TARGET = Step("prepare-target", "Preparing the target database", moves.prepare_target)
COPY_DATA = Step("copy-data", "Copying data", moves.copy_data)
SWITCHOVER = Step("switchover", "Replaying the last writes", moves.switchover)
VERIFY_COPY = Step("verify-copy", "Verifying the copy", moves.verify_copy)
SWITCH_SERVER = Step("switch-server", "Switching to the new server", switch_server)


def drop_old_copy(tenant, *, database_name, source):
    """After the switch, the source's copy goes, unless a tenant's database or a move's target is there again
    (a tenant moved back, or deleted and made anew, before an old drop was retried)."""
    claims = Tenant.objects.filter(database_name=database_name)
    if claims.filter(database_server_id=source).exists() or claims.filter(move_target_id=source).exists():
        return False
    moves.drop_copy(database_name, server=source)
    return True


DROP_SOURCE = Step("drop-source", "Dropping the old database", drop_old_copy)


def move_steps(method):
    """The steps of a move by `method` (moves.LOGICAL or moves.DUMP), in order."""
    if method == moves.LOGICAL:
        return (PREPARE_TARGET, COPY_DATA, SWITCHOVER, VERIFY_COPY, SWITCH_SERVER, DROP_SOURCE)
    return (PREPARE_TARGET, COPY_DATA, VERIFY_COPY, SWITCH_SERVER, DROP_SOURCE)


def creation_steps(tenant):
    """The steps of creating this tenant, in order."""
    if tenant.has_isolated_database:
        return (CREATE_DATABASE, APPLY_MIGRATIONS, CREATE_ADMIN_USER)
    return (CREATE_ADMIN_USER,)


class StepRunner:
    """One attempt of an operation on one tenant: runs its steps in order, each announced and timed."""

    def __init__(self, tenant, initiated_by, step_count):
        self.tenant, self.initiated_by, self.step_count = tenant, initiated_by, step_count
        self.index = 0

    def run(self, this_step, **arguments):
        """Run `this_step` on the tenant; returns what its function returned."""
        self.index += 1
        events.progress(
            user_id=self.initiated_by,
            tenant_id=self.tenant.id,
            step=this_step.title,
            index=self.index,
            count=self.step_count,
        )
        faults.check(this_step.label, self.tenant.id)
        with step(this_step.title):
            return this_step.function(self.tenant, **arguments)


def _begin(tenant_id, in_flight_status):
    """Lock the row, mark the attempt, move to the in-flight status.

    None when there is nothing left to do: the tenant is gone (deleted), or it is Active again. A service
    moves the tenant out of Active before it enqueues a job, so a job that finds it Active is a re-run of
    an operation that finished (a worker lost between the end and the record of its success); the end
    and its notification were written in one transaction, so the user has heard of it already.
    """
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().filter(pk=tenant_id).first()
        if tenant is None or tenant.status == S.ACTIVE:
            return None
        tenant.transition(in_flight_status)
        tenant.last_provisioning_attempt = timezone.now()
        tenant.attempt_count += 1
        tenant.save(update_fields=["status", "last_provisioning_attempt", "attempt_count"])
    return tenant


def _finish(tenant, initiated_by, operation, changed_fields):
    """Active again, and the success notification, in one transaction: both or neither."""
    with transaction.atomic():
        tenant.transition(S.ACTIVE)
        tenant.provisioning_error = None
        tenant.save(update_fields=["status", "provisioning_error", *changed_fields])
        events.operation_succeeded(
            user_id=initiated_by, operation=operation, tenant_id=tenant.id, tenant_name=tenant.name
        )


def run_tenant_creation(*, tenant_id, initiated_by):
    """Provision the tenant. Returns it once created (None when there was nothing to do)."""
    tenant = _begin(tenant_id, S.PROVISIONING)
    if tenant is None:
        return None
    attempt = StepRunner(tenant, initiated_by, step_count=len(creation_steps(tenant)))
    if tenant.has_isolated_database:
        created = attempt.run(CREATE_DATABASE)
        attempt.run(APPLY_MIGRATIONS, created=created)
        tenant.schema_fingerprint = migration_fingerprint()  # cloned from the head's template, or migrated to it
    attempt.run(CREATE_ADMIN_USER)
    tenant.is_provisioned = True
    _finish(tenant, initiated_by, Operation.CREATE, ["is_provisioned", "schema_fingerprint"])
    return tenant


def run_tenant_update(*, tenant_id, initiated_by, name, is_active):
    tenant = _begin(tenant_id, S.UPDATING)
    if tenant is None:
        return
    was_active = tenant.is_active
    StepRunner(tenant, initiated_by, step_count=1).run(APPLY_CHANGES, name=name, is_active=is_active)
    _finish(tenant, initiated_by, Operation.UPDATE, ["name", "is_active", "token_generation"])
    if was_active and not tenant.is_active:
        try:
            events.sockets_closed(tenant)
        except TenantDatabaseUnavailable:
            # Its users are listed from its database; their sockets still end at their next check (the tenant is
            # no longer usable, which the catalog says): the update itself is done.
            logger.warning(
                "tenant %s deactivated; its database server is down, its sockets end at their next check", tenant.id
            )


def run_tenant_deletion(*, tenant_id, initiated_by):
    tenant = _begin(tenant_id, S.DELETING)
    if tenant is None:
        return
    StepRunner(tenant, initiated_by, step_count=1).run(REMOVE_TENANT_DATA)
    with transaction.atomic():
        Tenant.objects.filter(pk=tenant.id).delete()
        events.operation_succeeded(
            user_id=initiated_by, operation=Operation.DELETE, tenant_id=tenant_id, tenant_name=tenant.name
        )


def _begin_move(tenant_id, *, source, target):
    """Lock the row and mark the attempt of a move. Returns (tenant, switched): the tenant None when the
    move is over (it failed and the tenant is back on `source`); `switched` when the catalog already points
    at `target` (an attempt ended after the switch: only the source's copy may be left to drop)."""
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().filter(pk=tenant_id).first()
        if tenant is None:
            return None, True  # deleted after its move: its old copy may still be there
        if tenant.status == S.ACTIVE:
            return (tenant, True) if tenant.database_server_id == target else (None, False)
        tenant.transition(S.MOVING)
        tenant.last_provisioning_attempt = timezone.now()
        tenant.attempt_count += 1
        tenant.save(update_fields=["status", "last_provisioning_attempt", "attempt_count"])
    return tenant, False


def run_tenant_move(*, tenant_id, initiated_by, source, target, database_name):
    """Move an isolated tenant's database from `source` to `target` (moves.py says how). Every attempt starts
    over from what is there: a copy is never trusted before it has been verified, and the catalog says
    whether the switch has happened."""
    tenant, switched = _begin_move(tenant_id, source=source, target=target)
    if tenant is None and not switched:
        return None
    if switched:
        drop_old_copy(tenant, database_name=database_name, source=source)
        return tenant
    method = moves.copy_method(tenant, source=source, target=target)
    logger.info("moving tenant %s from %s to %s by %s", tenant.id, source, target, method)
    steps = move_steps(method)
    attempt = StepRunner(tenant, initiated_by, step_count=len(steps))
    on_servers = {"source": source, "target": target}
    attempt.run(PREPARE_TARGET, **on_servers, method=method)
    attempt.run(COPY_DATA, **on_servers, method=method)
    if method == moves.LOGICAL:
        attempt.run(SWITCHOVER, **on_servers)
    attempt.run(VERIFY_COPY, **on_servers)
    attempt.run(SWITCH_SERVER, initiated_by=initiated_by, target=target)
    attempt.run(DROP_SOURCE, database_name=database_name, source=source)
    return tenant


def record_move_failure(error, *, tenant_id, initiated_by, source, target, database_name):
    """After the last attempt of a move. Before the switch: the tenant stays on `source`, Active with the
    error, and its user hears of it once. After it, the move has succeeded and only dropping the old copy
    failed. Either way, returns the keyword arguments of clean_up_move for what is left to do, which the
    caller hands to a durable job (a server that does not answer now is tried again later, not forgotten)."""
    left = {"database_name": database_name, "source": source, "target": target}
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().filter(pk=tenant_id).first()
        if tenant is None or tenant.database_server_id == target:
            logger.warning("tenant %s moved to %s; its old copy on %s is still to drop", tenant_id, target, source)
            return left
        if tenant.status != S.MOVING:
            return None
        tenant.transition(S.ACTIVE)
        tenant.provisioning_error = error
        tenant.move_target = None
        tenant.save(update_fields=["status", "provisioning_error", "move_target"])
        events.operation_failed(
            user_id=initiated_by,
            operation=Operation.MOVE,
            tenant_id=tenant_id,
            error=error,
            database_server=tenant.database_server_id,
        )
    return left


def clean_up_move(*, database_name, source, target):
    """What a move that ended left behind, whichever way it ended, made right: the tenant's database takes writes
    again and carries no publication or slot, and the copy on the server that is not the tenant's (the target of a
    failed move, the source of a finished one) goes, subscription and all. Nothing is touched that a tenant's
    database or a later move claims. Each part is tried even when another fails (a target that is down must not
    keep the tenant read-only); the first error is raised at the end, for the job to try again."""
    claims = Tenant.objects.filter(database_name=database_name)
    parts = []
    tenant = claims.filter(database_server_id__in=[source, target]).first()
    if tenant is not None and tenant.status != S.MOVING:
        home = tenant.database_server_id
        parts.append(lambda: moves.allow_writes(database_name, server=home))
        parts.append(lambda: moves.stop_replication(database_name, source=home, target=None))
    for server in (source, target):
        if not (claims.filter(database_server_id=server).exists() or claims.filter(move_target_id=server).exists()):
            parts.append(lambda server=server: moves.drop_copy(database_name, server=server))
    failures = []
    for part in parts:
        try:
            part()
        except Exception as error:
            logger.warning("cleaning up after the move of %s: %s", database_name, type(error).__name__)
            failures.append(error)
    if failures:
        raise failures[0]


def record_operation_failure(error, *, tenant_id, initiated_by, **arguments):
    """After the last attempt: the tenant ends Failed with the error, and its user hears of it once."""
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().filter(pk=tenant_id).first()
        if tenant is None:
            return
        if tenant.status != S.FAILED:
            tenant.transition(S.FAILED)
        tenant.provisioning_error = error
        tenant.save(update_fields=["status", "provisioning_error"])
        events.operation_failed(user_id=initiated_by, operation=tenant.operation, tenant_id=tenant_id, error=error)
