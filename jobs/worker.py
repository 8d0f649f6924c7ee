"""The RQ worker of this project: RQ's own, plus the recovery sweep in its main loop.

RQ runs its maintenance every ten minutes and blocks on the queue for up to `worker_ttl - 15` seconds;
both are too slow to re-run a lost job within a minute. This worker wakes at least every sweep interval
and runs jobs.recovery.sweep() then. Selected by settings.RQ["WORKER_CLASS"], so the documented
`python manage.py rqworker --with-scheduler` is all it takes.
"""

import logging
import time

import rq
from django.conf import settings

from .recovery import sweep

logger = logging.getLogger(__name__)


class Worker(rq.Worker):
    _last_sweep = 0.0

    @property
    def dequeue_timeout(self) -> int:
        return max(1, min(super().dequeue_timeout, settings.DIQUIS_SWEEP_INTERVAL))

    @property
    def should_run_maintenance_tasks(self):
        return self._sweep_due() or super().should_run_maintenance_tasks

    def _sweep_due(self):
        return time.monotonic() - self._last_sweep >= settings.DIQUIS_SWEEP_INTERVAL

    def run_maintenance_tasks(self):
        if self._sweep_due():
            self._last_sweep = time.monotonic()
            try:
                sweep()
            except Exception:  # a failing sweep must not stop the worker from running jobs
                logger.exception("recovery sweep failed")
        if super().should_run_maintenance_tasks:
            super().run_maintenance_tasks()
