"""What an attempt's end does to its job: success, a retry later, or the final failure and its handler.

Used by the runner (an attempt that raised) and by the recovery sweep (an attempt whose worker died),
so both follow the same rule. Each end is recorded once: the attempt must still be running and be the
job's current one, under a row lock on the job, so a sweep and a late runner (or two sweeps) cannot
both record it, retry it twice, or notify twice.
"""

import logging
from datetime import timedelta

from django.db import DatabaseError, transaction
from django.utils import timezone

from .enqueue import push, retry_interval
from .models import Attempt, Job
from .registry import resolve

logger = logging.getLogger(__name__)

RETRY_SCHEDULED = "retry scheduled"
FAILED_FOR_GOOD = "failed"
ALREADY_RECORDED = "already recorded"


def attempt_succeeded(attempt, steps):
    """The work is done, whatever the sweep may have concluded meanwhile: the job ends succeeded."""
    with transaction.atomic():
        Attempt.objects.filter(pk=attempt.pk).update(
            outcome=Attempt.Outcome.SUCCEEDED, ended_at=timezone.now(), steps=steps, error=""
        )
        Job.objects.filter(pk=attempt.job_id).update(
            status=Job.Status.SUCCEEDED, finished_at=timezone.now(), last_error="", run_after=None
        )


def attempt_failed(attempt, *, error, traceback="", steps=None, outcome=Attempt.Outcome.FAILED):
    """Record the failed attempt; schedule the next one, or end the job and run its failure handler.

    The final failure handler runs in the same transaction as the job's `failed` status: if the database
    fails under it, nothing is recorded, the attempt stays running with a silent heartbeat,
    and the sweep runs this again later. So the handler's effects (its subject marked failed, one stored
    notification) are committed exactly once. Returns RETRY_SCHEDULED, FAILED_FOR_GOOD or ALREADY_RECORDED.
    """
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=attempt.job_id)
        fields = {"outcome": outcome, "ended_at": timezone.now(), "error": error, "traceback": traceback}
        if steps is not None:
            fields["steps"] = steps
        current = job.status == Job.Status.RUNNING and job.attempts == attempt.number
        if not current or not Attempt.objects.filter(pk=attempt.pk, outcome=Attempt.Outcome.RUNNING).update(**fields):
            logger.info("attempt %s of job %s was recorded already", attempt.number, job.pk)
            return ALREADY_RECORDED
        job.last_error = error
        if job.attempts < job.max_attempts:
            delay = retry_interval(job.attempts)
            job.status = Job.Status.RETRY_WAIT
            job.run_after = timezone.now() + timedelta(seconds=delay)
            job.save(update_fields=["status", "run_after", "last_error"])
            logger.info("attempt %s of job %s failed; retry in %ss", attempt.number, job.pk, delay)
            if delay <= 0:
                transaction.on_commit(lambda: push(job.pk))
            # A later retry is pushed by the sweep once it is due: no dependence on RQ's scheduler process.
            return RETRY_SCHEDULED
        job.status = Job.Status.FAILED
        job.finished_at = timezone.now()
        job.save(update_fields=["status", "finished_at", "last_error"])
        logger.warning("job %s failed after %s attempts", job.pk, job.attempts)
        _run_failure_handler(job, error)
    return FAILED_FOR_GOOD


def _run_failure_handler(job, error):
    """A database error rolls the whole final failure back, to be recorded again by the sweep; any other
    error is the handler's own bug: logged, and the job still ends failed (it would fail the same way on
    every later try)."""
    handler = resolve(job.task).on_final_failure
    if handler is None:
        return
    try:
        with transaction.atomic():
            handler(error, **job.kwargs)
    except DatabaseError:
        raise
    except Exception:
        logger.exception("the failure handler of job %s raised", job.pk)
