"""Log lines name the job that wrote them (LOGGING in diquis/settings.py, jobs.context.JobLogFilter), and a
line written outside a job carries no empty `job= operation= subject=` fields."""

import logging

import pytest

from jobs.context import JobLogFilter, job_context
from jobs.models import Job

MESSAGE = "database step failed"


@pytest.fixture
def console():
    """The handler LOGGING configures: its job filter and its plain format, as every process uses them."""
    return next(
        handler for handler in logging.getLogger().handlers if any(isinstance(f, JobLogFilter) for f in handler.filters)
    )


def formatted(handler):
    record = logging.LogRecord("tenants.tasks", logging.WARNING, __file__, 1, MESSAGE, None, None)
    assert handler.filter(record)
    return handler.format(record)


def test_a_line_outside_a_job_has_no_job_fields(console):
    line = formatted(console)
    assert line.endswith(f" WARNING tenants.tasks {MESSAGE}")
    for field in ("job=", "operation=", "subject="):
        assert field not in line


def test_a_line_inside_a_job_names_its_job_operation_and_subject(console):
    job = Job(task="tenants.tasks.provision_tenant", subject="tenant:acme")
    with job_context(job):
        line = formatted(console)
    fields = f"job={job.pk} operation=provision_tenant subject=tenant:acme"
    assert line.endswith(f" WARNING tenants.tasks {fields} {MESSAGE}")
