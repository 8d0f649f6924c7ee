"""The RQ entry points of tenants, and every enqueue of a follow-up job. Thin: plain ids in, keyword
arguments only; the provisioning steps do the work."""

import logging

from django.conf import settings
from django.db import transaction

from jobs.enqueue import enqueue
from jobs.models import Job
from jobs.registry import durable_task

from .exceptions import NoServerAvailable
from .models import MAIN_SERVER, DatabaseServer, Operation, ProvisioningStatus, ServerStatus, Tenant
from .password_reset import send_reset_mail
from .provisioning import placement, rollout, spares
from .provisioning.steps import (
    clean_up_move,
    record_move_failure,
    record_operation_failure,
    run_tenant_creation,
    run_tenant_deletion,
    run_tenant_move,
    run_tenant_update,
)
from .provisioning.stores import store_for
from .provisioning.template import ensure_template
from .subjects import spare_refill_subject, subject_for, upgrade_subject

logger = logging.getLogger(__name__)
S = ProvisioningStatus


@durable_task(on_final_failure=record_operation_failure)
def provision_tenant(*, tenant_id, initiated_by):
    tenant = run_tenant_creation(tenant_id=tenant_id, initiated_by=initiated_by)
    if tenant is not None and tenant.has_isolated_database:
        request_spare_refill(tenant.database_server_id)  # after the notification: the next tenant's wait


@durable_task(on_final_failure=record_operation_failure)
def apply_tenant_update(*, tenant_id, initiated_by, name, is_active):
    run_tenant_update(tenant_id=tenant_id, initiated_by=initiated_by, name=name, is_active=is_active)


@durable_task(on_final_failure=record_operation_failure)
def deprovision_tenant(*, tenant_id, initiated_by):
    run_tenant_deletion(tenant_id=tenant_id, initiated_by=initiated_by)


@durable_task()
def send_password_reset(*, tenant_id, email, reset_endpoint):
    """The reset mail of a forgotten password (tenants.user_services.request_password_reset); retried when the
    mail server does not answer. Its arguments hold no token: the token is made here."""
    send_reset_mail(tenant_id=tenant_id, email=email, reset_endpoint=reset_endpoint)


@durable_task()
def refill_spare_databases(*, server=MAIN_SERVER):
    store = store_for(server)
    spares.refill(store, ensure_template(store))


def request_spare_refill(server=MAIN_SERVER):
    """Enqueue a refill of the server's spares, when spares are on, unless one waits already (a running one
    may have counted before the last claim)."""
    if not spares.enabled(store_for(server)):
        return
    subject = spare_refill_subject(server)
    waiting = Job.objects.filter(subject=subject, status__in=[Job.Status.QUEUED, Job.Status.RETRY_WAIT])
    if not waiting.exists():
        enqueue(refill_spare_databases, subject=subject, server=server)


def _plain(user_id):
    return str(user_id) if user_id is not None else None


def start_move(tenant, *, target, initiated_by):
    """Move `tenant` (locked, Active, isolated) to the server `target`: Moving, and the job that moves it, in
    the caller's transaction. The job is told where from, where to and the database's name, so that an
    attempt after the switch (or after a deletion) still knows which old copy to drop."""
    source = tenant.database_server_id
    tenant.transition(S.MOVING)
    tenant.operation = Operation.MOVE
    tenant.initiated_by = initiated_by
    tenant.provisioning_error = None
    tenant.move_target_id = target
    tenant.save(update_fields=["status", "operation", "initiated_by", "provisioning_error", "move_target"])
    enqueue(
        move_tenant_database,
        subject=subject_for(tenant.id),
        tenant_id=tenant.id,
        initiated_by=_plain(initiated_by),
        source=source,
        target=target,
        database_name=tenant.database_name,
    )


def _move_failed(error, *, tenant_id, initiated_by, source, target, database_name):
    left = record_move_failure(
        error, tenant_id=tenant_id, initiated_by=initiated_by, source=source, target=target, database_name=database_name
    )
    if left is not None:
        enqueue(clean_up_after_move, subject=subject_for(tenant_id), tenant_id=tenant_id, **left)
    continue_drain(source, initiated_by=initiated_by)


@durable_task(on_final_failure=_move_failed)
def move_tenant_database(*, tenant_id, initiated_by, source, target, database_name):
    run_tenant_move(
        tenant_id=tenant_id, initiated_by=initiated_by, source=source, target=target, database_name=database_name
    )
    continue_drain(source, initiated_by=initiated_by)


def _clean_up_again(error, *, tenant_id, database_name, source, target, cleanup_round=1):
    """A server that stays down past a cleanup's attempts (one that is stopped for maintenance) gets another
    round later, up to DIQUIS_MOVE_CLEANUP_ROUNDS: what a move left there is not forgotten."""
    if cleanup_round >= settings.DIQUIS_MOVE_CLEANUP_ROUNDS:
        logger.error("giving up cleaning up after the move of %s (%s, %s): %s", database_name, source, target, error)
        return
    enqueue(
        clean_up_after_move,
        subject=subject_for(tenant_id),
        tenant_id=tenant_id,
        database_name=database_name,
        source=source,
        target=target,
        cleanup_round=cleanup_round + 1,
    )


@durable_task(on_final_failure=_clean_up_again)
def clean_up_after_move(*, tenant_id, database_name, source, target, cleanup_round=1):
    clean_up_move(database_name=database_name, source=source, target=target)


def drainable_tenants(server_name):
    """The tenants a drain of the server moves: Active, isolated, on it, but those whose move failed (they wait
    for a root admin's explicit move, or a new drain)."""
    return (
        Tenant.objects.filter(database_server_id=server_name, has_isolated_database=True, status=S.ACTIVE)
        .exclude(operation=Operation.MOVE, provisioning_error__isnull=False)
        .order_by("id")
    )


@transaction.atomic
def continue_drain(server_name, *, initiated_by):
    """While `server_name` is Draining, keep DIQUIS_DRAIN_PARALLELISM of its tenants moving: start the next
    ones, each to the server placement chooses without it. Called by the drain itself and at the end of every
    move off the server (success or failure), under the server's row lock, so two moves that end at once start
    no more than that between them. Returns how many moves it started; when no server can take one now, it
    starts none, and the next move's end (or a new drain) tries again."""
    server = DatabaseServer.objects.select_for_update().filter(pk=server_name).first()
    if server is None or server.status != ServerStatus.DRAINING:
        return 0
    moving = Tenant.objects.filter(database_server_id=server_name, status=S.MOVING).count()
    room = max(settings.DIQUIS_DRAIN_PARALLELISM - moving, 0)
    started = 0
    for tenant in drainable_tenants(server_name).select_for_update()[:room]:
        try:
            target = placement.choose_server(excluding=[server_name])
        except NoServerAvailable:
            logger.warning("draining %s: no server can take tenant %s now", server_name, tenant.id)
            break
        start_move(tenant, target=target.name, initiated_by=initiated_by)
        started += 1
    return started


@durable_task(on_final_failure=rollout.record_run_failure)
def run_upgrade(*, upgrade_id):
    """An upgrade's parent job: prepare the servers, upgrade the children; then, the upgrade over, the stale
    templates retired and fresh spares of the new template."""
    rollout.run(upgrade_id)
    rollout.retire_templates(upgrade_id)
    for server in rollout.servers_of(upgrade_id):
        request_spare_refill(server)


def start_upgrade_run(upgrade):
    """Enqueue a run of the upgrade's parent job (its start, or a resume), in the caller's transaction."""
    enqueue(run_upgrade, subject=upgrade_subject(upgrade.pk), upgrade_id=upgrade.pk)
