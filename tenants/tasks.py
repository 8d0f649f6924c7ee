"""The RQ entry points of tenants, and every enqueue of a follow-up job. Thin: plain ids in, keyword
arguments only; the provisioning steps do the work."""

from jobs.enqueue import enqueue
from jobs.models import Job
from jobs.registry import durable_task

from .models import MAIN_SERVER
from .provisioning import spares
from .provisioning.steps import record_operation_failure, run_tenant_creation, run_tenant_deletion, run_tenant_update
from .provisioning.stores import store_for
from .provisioning.template import ensure_template


def spare_refill_subject(server):
    """Spares are per server, and so is their refill: one waiting refill per server at most."""
    return f"tenant-database-spares:{server}"


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
