"""Durable enqueue: the job row is written in the caller's transaction, and handed to Redis after commit.

If Redis does not answer at that moment the row stays `queued` with no `pushed_at`, and the recovery
sweep (jobs.recovery) pushes it once Redis is back: an accepted operation is never lost.

Redis only carries a wake-up call: an RQ job ("carrier") whose one argument is the durable job's id. Each
push makes a new carrier with a new id, recorded on the row; `carrier_alive` tells whether the last one
will still run the job, so the sweep pushes again exactly when Redis has lost it (Redis restarted empty,
a worker killed before it could claim the job, a key evicted).
"""

import inspect
import logging

import django_rq
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from redis.exceptions import RedisError
from rq.exceptions import NoSuchJobError
from rq.job import Job as RQJob
from rq.job import JobStatus

from .context import current_request_id
from .models import Job
from .redis_client import QUEUE_NAME, connection
from .registry import task_name
from .tracing import current_trace_context

logger = logging.getLogger(__name__)

RUNNER = "jobs.runner.run_job"


def due(now):
    """The jobs a worker should run now: queued, or waiting for a retry that is due."""
    return Q(status=Job.Status.QUEUED) | Q(status=Job.Status.RETRY_WAIT, run_after__lte=now)


def enqueue(function, *, subject="", **kwargs):
    """Record a durable job for `function(**kwargs)` and push it to Redis once the transaction commits.

    Keyword arguments only, stored by name: a retry replaces one of them by its name, and arguments that do
    not fit the function's signature are refused here, in the request, not by a worker later. The job records
    where it comes from: the request being served (or the job running) and its trace (jobs.tracing).
    """
    inspect.signature(function).bind(**kwargs)
    job = Job(
        task=task_name(function),
        kwargs=kwargs,
        subject=subject,
        max_attempts=settings.DIQUIS_JOB_MAX_ATTEMPTS,
        request_id=current_request_id.get() or "",
        trace_context=current_trace_context(),
    )
    # The carrier is named in the same transaction, so that the hand-over after commit needs no re-read and
    # no check of Redis: nothing can have pushed this job yet (the sweep only sees committed rows, and a
    # carrier it finds missing is pushed again under a new name: harmless, the claim runs one of them).
    job.rq_job_id = job.new_rq_job_id()
    job.save(force_insert=True)
    transaction.on_commit(lambda: hand_over(job))
    return job


def requeue(job):
    """Run a finally-failed job again from its first attempt budget (a user's explicit retry)."""
    job.status = Job.Status.QUEUED
    job.max_attempts = job.attempts + settings.DIQUIS_JOB_MAX_ATTEMPTS
    job.run_after = None
    job.finished_at = None
    job.pushed_at = None
    job.save(update_fields=["status", "max_attempts", "run_after", "finished_at", "pushed_at"])
    transaction.on_commit(lambda: push(job.pk))
    return job


def retry_interval(failed_attempts):
    intervals = settings.DIQUIS_JOB_RETRY_INTERVALS or [0]
    return intervals[min(failed_attempts - 1, len(intervals) - 1)]


def queue():
    # "auto": push now. django-rq's default would defer the push to the end of an enclosing transaction,
    # where a Redis error could no longer be caught here.
    return django_rq.get_queue(QUEUE_NAME, commit_mode="auto", connection=connection())


def carrier_alive(job, q, *, queued_ids=None):
    """Will the job's last carrier still run it? Waiting in the queue, or started a moment ago.

    A carrier that started (a work-horse took it) but has not claimed the job after
    DIQUIS_ABANDONED_AFTER seconds died before it could: claiming is the first thing the runner does.
    `queued_ids`: the queue's ids, when the caller checks many jobs at once.
    """
    if not job.rq_job_id:
        return False
    try:
        carrier = RQJob.fetch(job.rq_job_id, connection=q.connection)
    except NoSuchJobError:
        return False
    status = carrier.get_status(refresh=False)
    if status == JobStatus.QUEUED:
        if queued_ids is None:
            return q.connection.lpos(q.key, job.rq_job_id) is not None
        return job.rq_job_id in queued_ids
    if status in (JobStatus.SCHEDULED, JobStatus.DEFERRED):
        return True
    if status == JobStatus.STARTED and carrier.started_at:
        return (timezone.now() - carrier.started_at).total_seconds() < settings.DIQUIS_ABANDONED_AFTER
    return False


def push(job_id):
    """Hand a waiting job to Redis unless a live carrier has it already (the sweep, retries, requeue).

    Returns True when a new carrier was pushed. Never raises for Redis: when it does not answer, the row
    stays as it is and the sweep pushes it later.
    """
    job = Job.objects.filter(due(timezone.now()), pk=job_id).first()
    if job is None:
        return False
    try:
        if carrier_alive(job, queue()):
            return False
    except RedisError as error:
        _not_pushed(job, error)
        return False
    job.rq_job_id = job.new_rq_job_id()
    return hand_over(job)


def hand_over(job):
    """Push the carrier named `job.rq_job_id`, then record it on the row. Returns True when pushed."""
    try:
        queue().enqueue_call(RUNNER, args=(str(job.pk),), job_id=job.rq_job_id, description=f"{job.task} {job.subject}")
    except RedisError as error:
        _not_pushed(job, error)
        return False
    Job.objects.filter(pk=job.pk).update(pushed_at=timezone.now(), rq_job_id=job.rq_job_id)
    return True


def _not_pushed(job, error):
    logger.warning("job %s not pushed (Redis unavailable: %s); the sweep will push it", job.pk, type(error).__name__)
