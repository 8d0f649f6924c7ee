"""The recovery sweep: finds accepted work that no worker will run, and sees that one does.

- running attempts whose heartbeat stopped (the worker or its work-horse was killed): the attempt is
  recorded as abandoned and the job retried, or failed for good, by the same rule as any failed attempt.
  That is a span of the job's trace (jobs.tracing), so the failure it notifies joins the request's trace.
  A silent heartbeat alone is not enough: the subject's lock must be free too, which proves that no
  process is still inside the job (the server releases the lock of a killed process at once). So a slow
  or stalled job is never run twice at the same time;
- queued jobs, and retries that are due, whose carrier Redis does not hold (Redis was down at enqueue
  time, restarted empty, or a worker died before it could claim the job).

Runs inside every worker (jobs.worker.Worker) every DIQUIS_SWEEP_INTERVAL seconds, and at start.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connections
from django.utils import timezone
from redis.exceptions import RedisError

from .enqueue import carrier_alive, due, push, queue
from .locks import holding
from .models import Attempt, Job
from .outcomes import ALREADY_RECORDED, attempt_failed
from .registry import operation_name
from .tracing import job_span

logger = logging.getLogger(__name__)

ABANDONED_ERROR = "The worker running this job stopped."


def fail_abandoned(now):
    """Record every abandoned attempt (retry or final failure). Returns how many were recorded."""
    silent_since = now - timedelta(seconds=settings.DIQUIS_ABANDONED_AFTER)
    candidates = Attempt.objects.filter(
        outcome=Attempt.Outcome.RUNNING, heartbeat_at__lt=silent_since, job__status=Job.Status.RUNNING
    ).select_related("job")
    recorded = 0
    for attempt in candidates:
        with holding(attempt.job.subject, wait=0) as free:
            if not free:
                logger.warning(
                    "attempt %s of job %s: heartbeat silent, but %s is still held; not abandoned",
                    attempt.number,
                    attempt.job_id,
                    attempt.job.subject,
                )
                continue
            logger.warning(
                "attempt %s of job %s abandoned (worker %s lost)", attempt.number, attempt.job_id, attempt.worker
            )
            with job_span(f"{operation_name(attempt.job.task)} abandoned", attempt.job, attempt):
                outcome = attempt_failed(attempt, error=ABANDONED_ERROR, outcome=Attempt.Outcome.ABANDONED)
            recorded += outcome != ALREADY_RECORDED
    return recorded


def push_stranded(now):
    """Push every job that should be in Redis and is not. Returns how many were pushed."""
    q = queue()
    queued_ids = set(q.get_job_ids())
    pushed = 0
    for job in Job.objects.filter(due(now)).order_by("created_at").iterator():
        if not carrier_alive(job, q, queued_ids=queued_ids) and push(job.pk):
            pushed += 1
    return pushed


def sweep():
    """One pass. Safe to run from several workers at once: every transition is conditional, under a lock."""
    now = timezone.now()
    abandoned = pushed = 0
    try:
        abandoned = fail_abandoned(now)
        pushed = push_stranded(now)
    except RedisError as error:
        logger.warning("sweep: Redis unavailable (%s); stranded jobs are pushed on a later pass", type(error).__name__)
    except DatabaseError as error:
        logger.warning("sweep skipped: database unavailable (%s)", type(error).__name__)
    finally:
        # The worker forks a work-horse per job: no connection may be inherited across that fork.
        connections.close_all()
    if abandoned or pushed:
        logger.info("sweep: %s abandoned attempts recorded, %s jobs pushed", abandoned, pushed)
    return {"abandoned": abandoned, "pushed": pushed}
