"""Durable enqueue: the job row is written in the caller's transaction, and handed to Redis after commit.

If Redis does not answer at that moment the row stays `queued` with no `pushed_at`, and the recovery
sweep (jobs.recovery) pushes it once Redis is back: an accepted operation is never lost.
"""

import logging
from datetime import timedelta

import django_rq
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from redis.exceptions import RedisError
from rq.exceptions import NoSuchJobError
from rq.job import Job as RQJob
from rq.job import JobStatus

from .models import Job
from .registry import task_name

logger = logging.getLogger(__name__)

QUEUE_NAME = "default"
_LIVE_RQ_STATUSES = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


def enqueue(function, *args, subject=""):
    """Record a durable job for `function(*args)` and push it to Redis once the transaction commits."""
    job = Job.objects.create(
        task=task_name(function),
        args=list(args),
        subject=subject,
        max_attempts=settings.DIQUIS_JOB_MAX_ATTEMPTS,
    )
    transaction.on_commit(lambda: push(job.pk))
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
    return django_rq.get_queue(QUEUE_NAME)


def is_in_redis(rq_job_id, connection):
    try:
        status = RQJob.fetch(rq_job_id, connection=connection).get_status(refresh=False)
    except NoSuchJobError:
        return False
    return status in _LIVE_RQ_STATUSES


def push(job_id, *, delay=0):
    """Hand a queued (or waiting) job to Redis. Returns False, and logs, when Redis does not answer."""
    # Imported by name so the queue stores "jobs.runner.run_job", never a reference to a model instance.
    job = Job.objects.filter(pk=job_id, status__in=(Job.Status.QUEUED, Job.Status.RETRY_WAIT)).first()
    if job is None:
        return False
    rq_job_id = job.next_rq_job_id()
    try:
        q = queue()
        if is_in_redis(rq_job_id, q.connection):
            return True
        kwargs = {"job_id": rq_job_id, "args": (str(job.pk),), "description": f"{job.task} {job.subject}"}
        if delay > 0:
            q.enqueue_in(timedelta(seconds=delay), "jobs.runner.run_job", **kwargs)
        else:
            q.enqueue_call("jobs.runner.run_job", **kwargs)
    except RedisError as error:
        logger.warning(
            "job %s not pushed (Redis unavailable: %s); the sweep will push it", job.pk, type(error).__name__
        )
        return False
    Job.objects.filter(pk=job.pk).update(pushed_at=timezone.now())
    return True
