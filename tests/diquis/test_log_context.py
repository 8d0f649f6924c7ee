"""The fields of every log line (LOGGING in diquis/settings.py, diquis.log_context) in the human format: those
of the request and of the job that are set, and no empty `job= operation= subject=` outside a job."""

import logging

import pytest
from django.test import RequestFactory

from diquis.log_context import LogContextFilter
from diquis.request_context import RequestContext, current_request
from jobs.context import bound, current_step, job_context
from jobs.models import Job
from tests.support.factories import TenantFactory, UserFactory

MESSAGE = "database step failed"


@pytest.fixture
def console():
    """The handler LOGGING configures: its filters and its format (text, the default), as every process has them."""
    return next(
        handler
        for handler in logging.getLogger().handlers
        if any(isinstance(f, LogContextFilter) for f in handler.filters)
    )


def formatted(handler):
    record = logging.LogRecord("tenants.tasks", logging.WARNING, __file__, 1, MESSAGE, None, None)
    assert handler.filter(record)
    return handler.format(record)


def test_a_line_outside_a_request_and_a_job_has_no_fields(console):
    line = formatted(console)
    assert line.endswith(f" WARNING tenants.tasks {MESSAGE}")
    for field in ("request=", "user=", "tenant=", "job=", "operation=", "subject=", "attempt=", "step="):
        assert field not in line


def test_a_line_inside_a_job_names_its_tenant_job_operation_subject_attempt_and_step(console):
    job = Job(task="tenants.tasks.provision_tenant", subject="tenant:acme")
    with job_context(job, attempt=2), bound(current_step, "Creating database"):
        line = formatted(console)
    fields = f"tenant=acme job={job.pk} operation=provision_tenant subject=tenant:acme attempt=2"
    fields += ' step="Creating database"'
    assert line.endswith(f" WARNING tenants.tasks {fields} {MESSAGE}")


def test_a_job_on_no_one_tenant_names_none(console):
    job = Job(task="tenants.tasks.refill_spare_databases", subject="tenant-database-spares:main")
    with job_context(job, attempt=1):
        line = formatted(console)
    assert "tenant=" not in line
    assert f"job={job.pk} operation=refill_spare_databases subject=tenant-database-spares:main attempt=1 " in line


def test_a_line_of_a_request_names_the_request_and_once_known_its_tenant_and_user(console, db):
    tenant = TenantFactory(id="acme")
    user = UserFactory(tenant_id="acme")
    request = RequestFactory().get("/api/users/me")
    context = RequestContext("abc123")
    with bound(current_request, context):
        assert formatted(console).endswith(f" request=abc123 {MESSAGE}")  # before the chain has the request
        context.request = request
        request.tenant = tenant
        assert formatted(console).endswith(f" request=abc123 tenant=acme {MESSAGE}")
        request.user = user
        assert formatted(console).endswith(f" request=abc123 user={user.pk} tenant=acme {MESSAGE}")


def test_a_line_of_a_job_names_the_request_that_started_it(console):
    job = Job(task="tenants.tasks.provision_tenant", subject="tenant:acme", request_id="started-by-1")
    with job_context(job, attempt=1):
        line = formatted(console)
    assert f"request=started-by-1 tenant=acme job={job.pk} " in line
