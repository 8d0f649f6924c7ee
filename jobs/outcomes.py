"""What an attempt's end does to its job: success, a retry later, or the final failure and its handler.

Used by the runner (an attempt that raised) and by the recovery sweep (an attempt whose worker died),
so both follow the same rule.
"""

import logging

from django.db import transaction
from django.utils import timezone

from .enqueue import push, retry_interval
from .models import Attempt, Job
from .registry import resolve

logger = logging.getLogger(__name__)


def attempt_succeeded(attempt, steps):
    with transaction.atomic():
        Attempt.objects.filter(pk=attempt.pk).update(
            outcome=Attempt.Outcome.SUCCEEDED, ended_at=timezone.now(), steps=steps
        )
        Job.objects.filter(pk=attempt.job_id).update(
            status=Job.Status.SUCCEEDED, finished_at=timezone.now(), last_error=""
        )


def attempt_failed(attempt, *, error, traceback="", steps=None, outcome=Attempt.Outcome.FAILED):
    """Record the failed attempt; schedule the next one, or end the job and call its failure handler."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=attempt.job_id)
        fields = {"outcome": outcome, "ended_at": timezone.now(), "error": error, "traceback": traceback}
        if steps is not None:
            fields["steps"] = steps
        Attempt.objects.filter(pk=attempt.pk).update(**fields)
        job.last_error = error
        if job.attempts < job.max_attempts:
            delay = retry_interval(job.attempts)
            job.status = Job.Status.RETRY_WAIT
            job.run_after = timezone.now() + timezone.timedelta(seconds=delay)
            job.pushed_at = None
            job.save(update_fields=["status", "run_after", "last_error", "pushed_at"])
            logger.info("attempt %s of job %s failed; retry in %ss", attempt.number, job.pk, delay)
            transaction.on_commit(lambda: push(job.pk, delay=delay))
            return False
        job.status = Job.Status.FAILED
        job.finished_at = timezone.now()
        job.save(update_fields=["status", "finished_at", "last_error"])
    logger.warning("job %s failed after %s attempts", job.pk, job.attempts)
    handler = resolve(job.task).on_final_failure
    if handler is not None:
        handler(error, *job.args)
    return True
