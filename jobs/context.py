"""The job in progress, for log lines (every line of a job carries its job id and subject)."""

import contextlib
import logging
from contextvars import ContextVar

current_job: ContextVar = ContextVar("diquis_current_job", default=None)


@contextlib.contextmanager
def job_context(job):
    token = current_job.set(job)
    try:
        yield job
    finally:
        current_job.reset(token)


class JobLogFilter(logging.Filter):
    """Adds `job_id`, `job_task` and `job_subject` to every record (empty outside a job)."""

    def filter(self, record):
        job = current_job.get()
        record.job_id = str(job.pk) if job else ""
        record.job_task = job.task.rsplit(".", 1)[-1] if job else ""
        record.job_subject = job.subject if job else ""
        return True
