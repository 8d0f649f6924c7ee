"""The job bodies of the tenants domain: create (provision), update, delete (deprovision) one tenant.

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
from . import databases, faults

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
    attempt.run(CREATE_ADMIN_USER)
    tenant.is_provisioned = True
    _finish(tenant, initiated_by, Operation.CREATE, ["is_provisioned"])
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
