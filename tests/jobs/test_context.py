"""The job in progress as log lines see it (jobs.context.job_log_fields): a real attempt run by jobs.runner
gives its job, operation, subject and attempt number, and a step the step's name."""

import pytest

from jobs.context import job_context, job_log_fields
from jobs.models import Job
from jobs.registry import durable_task
from jobs.runner import SUCCEEDED, run_job
from jobs.steps import step

pytestmark = pytest.mark.django_db(transaction=True)

SEEN = []


@durable_task()
def logs_its_context(*, marker):
    SEEN.append(("before the step", job_log_fields()))
    with step("Doing the work"):
        SEEN.append(("in the step", job_log_fields()))
    SEEN.append(("after the step", job_log_fields()))


def test_outside_a_job_there_are_no_job_fields():
    assert job_log_fields() == {}


def test_an_attempt_names_its_job_operation_subject_and_number_and_a_step_its_name():
    SEEN.clear()
    job = Job.objects.create(
        task=logs_its_context.durable_task_name, kwargs={"marker": 1}, subject="tenant:acme", max_attempts=1
    )
    assert run_job(str(job.pk)) == SUCCEEDED
    common = {"job_id": str(job.pk), "operation": "logs_its_context", "subject": "tenant:acme", "attempt": 1}
    assert SEEN == [
        ("before the step", {**common, "step": None}),
        ("in the step", {**common, "step": "Doing the work"}),
        ("after the step", {**common, "step": None}),
    ]
    assert job_log_fields() == {}


def test_a_job_context_without_an_attempt_leaves_the_attempt_out():
    job = Job(task="tenants.tasks.provision_tenant", subject="tenant:acme")
    with job_context(job):
        assert job_log_fields()["attempt"] is None
