"""The recovery sweep: finds accepted work that no worker will run, and sees that one does.

- queued/waiting jobs that never reached Redis (it was down at enqueue time) or that Redis lost;
- running attempts whose heartbeat stopped (the worker or its work-horse was killed): the attempt is
  recorded as abandoned and the job retried, or failed for good, by the same rule as any failed attempt.

Runs inside every worker (jobs.worker.Worker) every DIQUIS_SWEEP_INTERVAL seconds, and at start.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import connections
from django.db.models import Q
from django.utils import timezone
from redis.exceptions import RedisError

from .enqueue import is_in_redis, push, queue
from .models import Attempt, Job
from .outcomes import attempt_failed

logger = logging.getLogger(__name__)


def _push_stranded(now):
    """Push what should be in Redis and is not. Returns how many were pushed."""
    pushed = 0
    due = Job.objects.filter(
        Q(status=Job.Status.QUEUED) | Q(status=Job.Status.RETRY_WAIT, run_after__lte=now)
    ).order_by("created_at")
    connection = queue().connection
    for job in due.iterator():
        # A job handed over a moment ago may still be on its way: leave it to the next sweep.
        if job.pushed_at and job.pushed_at > now - timedelta(seconds=settings.DIQUIS_SWEEP_INTERVAL):
            continue
        if is_in_redis(job.next_rq_job_id(), connection):
            continue
        if push(job.pk):
            pushed += 1
    return pushed


def _fail_abandoned(now):
    silent_since = now - timedelta(seconds=settings.DIQUIS_ABANDONED_AFTER)
    abandoned = Attempt.objects.filter(
        outcome=Attempt.Outcome.RUNNING, heartbeat_at__lt=silent_since, job__status=Job.Status.RUNNING
    ).select_related("job")
    count = 0
    for attempt in abandoned:
        logger.warning(
            "attempt %s of job %s abandoned (worker %s lost)", attempt.number, attempt.job_id, attempt.worker
        )
        attempt_failed(attempt, error="The worker running this job stopped.", outcome=Attempt.Outcome.ABANDONED)
        count += 1
    return count


def sweep():
    """One pass. Safe to run from several workers at once: every transition is a conditional update."""
    now = timezone.now()
    try:
        abandoned = _fail_abandoned(now)
        pushed = _push_stranded(now)
    except RedisError as error:
        logger.warning("sweep skipped: Redis unavailable (%s)", type(error).__name__)
        return {"abandoned": 0, "pushed": 0}
    finally:
        # The worker forks a work-horse per job: no connection may be inherited across that fork.
        connections.close_all()
    if abandoned or pushed:
        logger.info("sweep: %s abandoned attempts handled, %s jobs pushed", abandoned, pushed)
    return {"abandoned": abandoned, "pushed": pushed}
