"""A worker lost between the end of a tenant operation and the record of its success: the sweep re-runs
the job, which must then find the work done (not fail it, not notify twice). In-process, real services."""

import pytest
from django.utils import timezone

from jobs.models import Attempt, Job
from jobs.recovery import sweep
from jobs.runner import run_job
from notifications.models import Notification
from tenants import services
from tenants.models import ProvisioningStatus, Tenant
from tests.support.tenant_databases import ADMIN_PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


def lose_the_worker_after_the_work(job):
    """As if the work-horse died right after the job function returned, before its success was recorded."""
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING, finished_at=None)
    Attempt.objects.filter(job=job).update(
        outcome=Attempt.Outcome.RUNNING, ended_at=None, heartbeat_at=timezone.now() - timezone.timedelta(hours=1)
    )


def run_until_settled(job, rounds=5):
    for _ in range(rounds):
        sweep()
        run_job(str(job.pk))
        job.refresh_from_db()
        if job.status not in Job.OPEN_STATUSES:
            return job
    return job


def test_a_creation_whose_success_was_not_recorded_is_found_done_on_the_rerun(root_user):
    services.create_tenant(
        tenant_id="window",
        name="Window",
        admin_email="admin@window.test",
        password=ADMIN_PASSWORD,
        has_isolated_database=False,
        initiated_by=root_user.pk,
    )
    job = Job.objects.get(subject="tenant:window")
    run_job(str(job.pk))
    lose_the_worker_after_the_work(job)

    job = run_until_settled(job)
    assert Tenant.objects.get(pk="window").status == ProvisioningStatus.ACTIVE
    assert Notification.objects.filter(event="TenantCreated", data__tenantId="window").count() == 1
    assert job.status == Job.Status.SUCCEEDED


def _created(root_user, tenant_id):
    services.create_tenant(
        tenant_id=tenant_id,
        name=tenant_id.title(),
        admin_email=f"admin@{tenant_id}.test",
        password=ADMIN_PASSWORD,
        has_isolated_database=False,
        initiated_by=root_user.pk,
    )
    run_job(str(Job.objects.get(subject=f"tenant:{tenant_id}").pk))
    assert Tenant.objects.get(pk=tenant_id).status == ProvisioningStatus.ACTIVE


def test_an_update_whose_success_was_not_recorded_is_found_done_on_the_rerun(root_user):
    _created(root_user, "window-update")
    services.update_tenant(tenant_id="window-update", name="Renamed", is_active=True, initiated_by=root_user.pk)
    job = Job.objects.filter(subject="tenant:window-update").order_by("-created_at").first()
    run_job(str(job.pk))
    lose_the_worker_after_the_work(job)

    job = run_until_settled(job)
    tenant = Tenant.objects.get(pk="window-update")
    assert (tenant.status, tenant.name) == (ProvisioningStatus.ACTIVE, "Renamed")
    assert Notification.objects.filter(event="TenantUpdated", data__tenantId="window-update").count() == 1
    assert job.status == Job.Status.SUCCEEDED


def test_a_deletion_whose_success_was_not_recorded_is_found_done_on_the_rerun(root_user):
    _created(root_user, "window-delete")
    services.delete_tenant(tenant_id="window-delete", initiated_by=root_user.pk)
    job = Job.objects.filter(subject="tenant:window-delete").order_by("-created_at").first()
    run_job(str(job.pk))
    lose_the_worker_after_the_work(job)

    job = run_until_settled(job)
    assert not Tenant.objects.filter(pk="window-delete").exists()
    assert Notification.objects.filter(event="TenantDeleted", data__tenantId="window-delete").count() == 1
    assert job.status == Job.Status.SUCCEEDED
