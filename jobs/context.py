"""The job in progress, for log lines: which job, which of its attempts, which step (every line of a job says so),
and the request that started it.

`current_request_id` is the id of the request being served (bound by diquis.request_context, which owns the
request's context) or, in a job, of the request that started the job: each job enqueued records it, so the job's
lines, and those of the jobs it enqueues in turn, carry the id of the request they come from."""

import contextlib
from contextvars import ContextVar

from .registry import operation_name

current_job: ContextVar = ContextVar("diquis_current_job", default=None)
current_attempt: ContextVar = ContextVar("diquis_current_attempt", default=None)
current_step: ContextVar = ContextVar("diquis_current_step", default=None)
current_request_id: ContextVar = ContextVar("diquis_current_request_id", default=None)


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
    with bound(current_job, job), bound(current_attempt, attempt), bound(current_request_id, job.request_id or None):
        yield job


def job_log_fields():
    """What a log line written now says about its job: id, operation, subject, attempt and step; empty outside a
    job (the log filter, diquis.log_context, adds the request's fields and leaves out those not set)."""
    job = current_job.get()
    if job is None:
        return {}
    fields = {"request_id": job.request_id} if job.request_id else {}
    return {
        **fields,
        "job_id": str(job.pk),
        "operation": operation_name(job.task),
        "subject": job.subject,
        "attempt": current_attempt.get(),
        "step": current_step.get(),
    }
