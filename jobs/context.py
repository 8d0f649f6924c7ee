"""The job in progress, for log lines (every line of a job carries its job id and subject)."""

import contextlib
import logging
from contextvars import ContextVar

from .registry import operation_name

current_job: ContextVar = ContextVar("diquis_current_job", default=None)


@contextlib.contextmanager
def bound(variable, value):
    """`variable` (a ContextVar) set to `value` for the block, then back to what it was."""
    token = variable.set(value)
    try:
        yield value
    finally:
        variable.reset(token)


def job_context(job):
    return bound(current_job, job)


class JobLogFilter(logging.Filter):
    """Adds `job_id`, `job_task` and `job_subject` to every record (empty outside a job), and `job_fields`:
    those that are set, as `job=<id> operation=<task> subject=<subject> ` for a plain text format, so that
    a line written outside a job carries no empty fields."""

    def filter(self, record):
        job = current_job.get()
        record.job_id = str(job.pk) if job else ""
        record.job_task = operation_name(job.task) if job else ""
        record.job_subject = job.subject if job else ""
        fields = {"job": record.job_id, "operation": record.job_task, "subject": record.job_subject}
        record.job_fields = "".join(f"{name}={value} " for name, value in fields.items() if value)
        return True
