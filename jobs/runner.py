"""The one function RQ runs: load the durable job, run one attempt of it, record what happened."""

import logging
import threading
import traceback as tb

from django.conf import settings
from django.db import connections
from django.db.models import F
from django.utils import timezone
from rq import get_current_job

from . import context
from .locks import subject_lock
from .models import Attempt, Job
from .outcomes import attempt_failed, attempt_succeeded
from .registry import resolve
from .steps import StepRecorder

logger = logging.getLogger(__name__)


class Heartbeat:
    """Marks the attempt alive every few seconds, so the sweep can tell a dead worker from a slow job."""

    def __init__(self, attempt_id):
        self.attempt_id = attempt_id
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="diquis-heartbeat", daemon=True)

    def _beat(self):
        try:
            while not self.stopped.wait(settings.DIQUIS_HEARTBEAT_INTERVAL):
                Attempt.objects.filter(pk=self.attempt_id).update(heartbeat_at=timezone.now())
        except Exception:  # a heartbeat that cannot write must never kill the job it watches
            logger.warning("heartbeat of attempt %s stopped", self.attempt_id, exc_info=True)
        finally:
            connections.close_all()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.thread.join(timeout=5)


def _claim(job_id):
    """Move the job to running and count the attempt; None if another worker has it or it is over."""
    claimed = Job.objects.filter(pk=job_id, status__in=(Job.Status.QUEUED, Job.Status.RETRY_WAIT)).update(
        status=Job.Status.RUNNING, attempts=F("attempts") + 1, run_after=None
    )
    if not claimed:
        return None, None
    job = Job.objects.get(pk=job_id)
    rq_job = get_current_job()
    now = timezone.now()
    attempt = Attempt.objects.create(
        job=job,
        number=job.attempts,
        rq_job_id=rq_job.id if rq_job else "",
        worker=(rq_job.worker_name or "") if rq_job else "",
        started_at=now,
        heartbeat_at=now,
    )
    return job, attempt


def run_job(job_id):
    try:
        job, attempt = _claim(job_id)
        if job is None:
            logger.info("job %s is not waiting to run; nothing to do", job_id)
            return None
        function = resolve(job.task)
        recorder = StepRecorder()
        with context.job_context(job), Heartbeat(attempt.pk), recorder.activate():
            try:
                with subject_lock(job.subject):
                    function(*job.args)
            except Exception as error:
                logger.warning("attempt %s failed: %s", attempt.number, error)
                final = attempt_failed(
                    attempt,
                    error=str(error) or type(error).__name__,
                    traceback=tb.format_exc(),
                    steps=recorder.steps,
                )
                if final:
                    raise
                return "retry scheduled"
        attempt_succeeded(attempt, recorder.steps)
        return "succeeded"
    finally:
        connections.close_all()
