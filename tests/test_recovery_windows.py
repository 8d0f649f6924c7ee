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
from tests.test_reliability import ADMIN_PASSWORD

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
