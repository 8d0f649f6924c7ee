"""The steps a job runs for a tenant: create (provision), update, delete (deprovision).

Each operation moves the tenant to its in-flight status, runs idempotent steps ("ensure", never
"create"), and ends it Active (or gone) with a notification to the user who asked. A failed attempt
raises; the job layer retries it, and after the last attempt calls `operation_failed` below.
"""

import logging

from django.db import transaction
from django.utils import timezone

from jobs.steps import step

from . import events, faults, spare_databases
from .databases import use_tenant
from .models import Operation, ProvisioningStatus, Role, Tenant, User
from .provisioners import drop_tenant_data, ensure_migrated, ensure_tenant_database
from .vault import decrypt_password

logger = logging.getLogger(__name__)
S = ProvisioningStatus


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


def _run_steps(tenant, initiated_by, steps):
    for index, (label, function) in enumerate(steps, start=1):
        events.progress(user_id=initiated_by, tenant_id=tenant.id, step=label, index=index, count=len(steps))
        faults.check(function.__name__, tenant.id)
        with step(label):
            function(tenant)


def _finish(tenant, initiated_by, operation, changed_fields):
    """Active again, and the success notification, in one transaction: both or neither."""
    with transaction.atomic():
        tenant.transition(S.ACTIVE)
        tenant.provisioning_error = None
        tenant.save(update_fields=["status", "provisioning_error", *changed_fields])
        events.operation_succeeded(
            user_id=initiated_by, operation=operation, tenant_id=tenant.id, tenant_name=tenant.name
        )


def ensure_admin_user(tenant):
    """The tenant's first admin, in the tenant's own database; then the stored password is erased."""
    with use_tenant(tenant):
        if not User.objects.filter(tenant_id=tenant.id, email=tenant.admin_email.lower()).exists():
            password = decrypt_password(tenant.encrypted_admin_password)
            User.objects.create_user(tenant.admin_email, password, tenant_id=tenant.id, roles=[Role.ADMIN])
    if tenant.encrypted_admin_password:
        tenant.encrypted_admin_password = None
        tenant.save(update_fields=["encrypted_admin_password"])


def _create_steps(tenant):
    steps = [("Creating admin user", ensure_admin_user)]
    if tenant.has_isolated_database:
        steps[:0] = [("Creating database", ensure_tenant_database), ("Applying migrations", ensure_migrated)]
    return steps


def provision_tenant(tenant_id, initiated_by):
    tenant = _begin(tenant_id, S.PROVISIONING)
    if tenant is None:
        return
    _run_steps(tenant, initiated_by, _create_steps(tenant))
    tenant.is_provisioned = True
    _finish(tenant, initiated_by, Operation.CREATE, ["is_provisioned"])
    if tenant.has_isolated_database:
        spare_databases.request_refill()  # after the notification: the next tenant's, not this one's


def update_tenant(tenant_id, initiated_by, name, is_active):
    tenant = _begin(tenant_id, S.UPDATING)
    if tenant is None:
        return

    def apply_changes(tenant):
        tenant.name = name
        tenant.is_active = is_active

    _run_steps(tenant, initiated_by, [("Applying changes", apply_changes)])
    _finish(tenant, initiated_by, Operation.UPDATE, ["name", "is_active"])


def deprovision_tenant(tenant_id, initiated_by):
    tenant = _begin(tenant_id, S.DELETING)
    if tenant is None:
        return
    _run_steps(tenant, initiated_by, [("Removing tenant data", drop_tenant_data)])
    with transaction.atomic():
        Tenant.objects.filter(pk=tenant.id).delete()
        events.operation_succeeded(
            user_id=initiated_by, operation=Operation.DELETE, tenant_id=tenant_id, tenant_name=tenant.name
        )


def operation_failed(error, tenant_id, initiated_by, *args):
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
