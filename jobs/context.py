"""The job in progress, for log lines: which job, which of its attempts, which step (every line of a job says so)."""

import contextlib
from contextvars import ContextVar

from .registry import operation_name

current_job: ContextVar = ContextVar("diquis_current_job", default=None)
current_attempt: ContextVar = ContextVar("diquis_current_attempt", default=None)
current_step: ContextVar = ContextVar("diquis_current_step", default=None)


@contextlib.contextmanager
def bound(variable, value):
    """`variable` (a ContextVar) set to `value` for the block, then back to what it was."""
    token = variable.set(value)
    try:
        yield value
    finally:
        variable.reset(token)


@contextlib.contextmanager
def job_context(job, attempt=None):
    """The block runs attempt number `attempt` of `job`."""
    with bound(current_job, job), bound(current_attempt, attempt):
        yield job


def job_log_fields():
    """What a log line written now says about its job: id, operation, subject, attempt and step; empty outside a
    job (the log filter, diquis.log_context, adds the request's fields and leaves out those not set)."""
    job = current_job.get()
    if job is None:
        return {}
    return {
        "job_id": str(job.pk),
        "operation": operation_name(job.task),
        "subject": job.subject,
        "attempt": current_attempt.get(),
        "step": current_step.get(),
    }
