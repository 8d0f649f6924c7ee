"""The RQ worker of this project: RQ's own, plus the recovery sweep in its main loop, and the staying power
to outlive a Redis outage.

RQ runs its maintenance every ten minutes and blocks on the queue for up to `worker_ttl - 15` seconds;
both are too slow to re-run a lost job within a minute. This worker wakes at least every sweep interval
and runs jobs.recovery.sweep() then. Selected by settings.RQ["WORKER_CLASS"], so the documented
`python manage.py rqworker --with-scheduler` is all it takes.

RQ's worker survives a Redis outage only while it waits on the queue. Anywhere else (at start, while a
job runs, between two jobs) a Redis error ends the process, and `make run` with it. Here every such place
waits for Redis instead: the worker waits at start, keeps watching its work-horse without Redis, and
carries on once Redis answers. A Redis that comes back empty has forgotten the worker: it registers again
(for /health and the dashboard) and restarts its scheduler.
"""

import contextlib
import logging
import os
import time

import rq
from django.conf import settings
from django.utils.module_loading import autodiscover_modules, import_string
from redis.exceptions import RedisError
from rq import worker_registration
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.exceptions import StopRequested
from rq.scheduler import RQScheduler

from .enqueue import RUNNER
from .recovery import sweep

logger = logging.getLogger(__name__)


def wait_for_redis(connection, *, max_wait):
    """Block until Redis answers, trying again with a growing pause (at most `max_wait` seconds)."""
    pause = 0.5
    while True:
        try:
            connection.ping()
            return
        except RedisError as error:
            logger.warning("Redis unavailable (%s); trying again in %.1fs", type(error).__name__, pause)
            time.sleep(pause)
            pause = min(pause * 2, max_wait)


class Scheduler(RQScheduler):
    """RQ's scheduler process, which also stops when the worker that started it is gone. RQ's own would
    run on forever after its worker was killed (SIGKILL), an orphan holding the scheduler lock."""

    worker_pid = None

    def start(self):
        self.worker_pid = os.getpid()  # in the worker, before the fork: the scheduler's parent
        return super().start()

    def heartbeat(self):
        if self.worker_pid and os.getppid() != self.worker_pid:
            self.log.warning("scheduler %s: its worker is gone; stopping", os.getpid())
            self.request_stop()
        super().heartbeat()


def preload():
    """Load, once in the worker, what every job would otherwise load in its own work-horse: each work-horse is
    a fresh fork of this process, so every import and every cache filled after the fork is paid again per job.
    Imports the runner every carrier calls and each app's `tasks` module (and all they import), then runs
    DIQUIS_WORKER_WARM_UP's callables."""
    import_string(RUNNER)
    autodiscover_modules("tasks")
    for path in settings.DIQUIS_WORKER_WARM_UP:
        import_string(path)()


def run_start_hooks():
    """DIQUIS_WORKER_START_HOOKS' callables, once per worker that starts (e.g. the automatic upgrade of a new
    release's tenant databases). One that fails is logged: it must not keep the worker from serving jobs."""
    for path in settings.DIQUIS_WORKER_START_HOOKS:
        try:
            import_string(path)()
        except Exception:
            logger.exception("worker start hook %s failed", path)


# RQ's Worker._start_scheduler builds an RQScheduler by name: RQ 3.0 has no setting, argument or attribute
# that chooses the scheduler class. So Worker._start_scheduler below is a copy of RQ's, pinned to the source it
# was made from (sha256 of inspect.getsource; tests/test_worker_rq_copy.py fails when RQ's changes).
COPIED_START_SCHEDULER_SHA256 = "49c229109608aa31132b93b4bccd31d2ea0605e473c0f205f0d61d3bf6cdb7b9"


class Worker(rq.Worker):
    # RQ backs off up to 60 s between reconnects; after an outage, jobs should resume within seconds.
    max_connection_wait_time = 5.0
    _last_sweep = 0.0
    stopping = False  # a shutdown was asked for (request_stop)

    def __init__(self, queues, *args, **kwargs):
        connection = kwargs.get("connection") or getattr(queues[0], "connection", None)
        if connection is not None:
            wait_for_redis(connection, max_wait=self.max_connection_wait_time)
        super().__init__(queues, *args, **kwargs)
        preload()
        run_start_hooks()

    def _start_scheduler(
        self,
        burst=False,
        logging_level="INFO",
        date_format=DEFAULT_LOGGING_DATE_FORMAT,
        log_format=DEFAULT_LOGGING_FORMAT,
    ):
        """RQ's own (see COPIED_START_SCHEDULER_SHA256), with the Scheduler above in place of RQScheduler."""
        self.scheduler = Scheduler(
            self.queues,
            connection=self.connection,
            logging_level=logging_level if logging_level is not None else self.log.level,
            date_format=date_format,
            log_format=log_format,
            serializer=self.serializer,
        )
        self.scheduler.acquire_locks()
        if self.scheduler.acquired_locks:
            if burst:
                try:
                    self.scheduler.register_birth()
                    self.scheduler.enqueue_scheduled_jobs()
                finally:
                    self.scheduler.release_locks()
                    self.scheduler.register_death()
            else:
                self.scheduler.start()

    @property
    def dequeue_timeout(self) -> int:
        return max(1, min(super().dequeue_timeout, settings.DIQUIS_SWEEP_INTERVAL))

    @property
    def should_run_maintenance_tasks(self):
        return self._sweep_due() or super().should_run_maintenance_tasks

    def request_stop(self, signum=None, frame=None):
        """RQ's warm shutdown (SIGINT, SIGTERM), noted first: no scheduler is restarted once it began."""
        self.stopping = True
        super().request_stop(signum, frame)

    def _sweep_due(self):
        return time.monotonic() - self._last_sweep >= settings.DIQUIS_SWEEP_INTERVAL

    def run_maintenance_tasks(self):
        if self._sweep_due():
            self._last_sweep = time.monotonic()
            try:
                sweep()
            except StopRequested:  # SIGTERM arrived during the sweep: RQ's warm shutdown, not an error
                raise
            except Exception:  # a failing sweep must not stop the worker from running jobs
                logger.exception("recovery sweep failed")
            self._recover_from_redis_restart()
        if super().should_run_maintenance_tasks:
            with self._outliving_redis("maintenance"):
                super().run_maintenance_tasks()

    # --- outliving Redis outages ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _outliving_redis(self, what):
        try:
            yield
        except RedisError as error:
            logger.warning("worker %s: %s skipped, Redis unavailable (%s)", self.name, what, type(error).__name__)

    def set_state(self, state, pipeline=None):
        with self._outliving_redis("state update"):
            super().set_state(state, pipeline)

    def teardown(self):
        with self._outliving_redis("deregistration"):
            super().teardown()

    def check_for_suspension(self, burst):
        with self._outliving_redis("suspension check"):
            super().check_for_suspension(burst)

    def heartbeat(self, timeout=None, pipeline=None):
        with self._outliving_redis("heartbeat"):
            super().heartbeat(timeout, pipeline)

    def maintain_heartbeats(self, job, execution):
        """Called while the work-horse runs: without Redis, keep watching the horse rather than leave it."""
        with self._outliving_redis("job heartbeat"):
            super().maintain_heartbeats(job, execution)

    def execute_job(self, job, queue):
        """RQ's bookkeeping around the job needs Redis; the job's own outcome is in the database already."""
        with self._outliving_redis(f"bookkeeping of RQ job {job.id}"):
            super().execute_job(job, queue)
        if self.horse_pid:  # Redis failed before the horse could be watched to its end
            self.wait_for_horse()
            # RQ offers no setter; it resets the same attribute once it has seen a horse end. Left set, the
            # pid of a horse long gone would be killed at the next cold shutdown.
            self._horse_pid = 0

    def _recover_from_redis_restart(self):
        with self._outliving_redis("registration check"):
            if not self.connection.sismember(self.redis_workers_keys, self.key):
                logger.warning("worker %s: Redis forgot this worker (restarted empty?); registering again", self.name)
                with self.connection.pipeline() as pipeline:
                    pipeline.hset(self.key, mapping=self.serialize())
                    worker_registration.register(self, pipeline)
                    pipeline.expire(self.key, self.worker_ttl + 60)
                    pipeline.execute()
            if self.scheduler and not self.stopping and not self._scheduler_alive():
                self.scheduler.acquire_locks(auto_start=True)

    def _scheduler_alive(self):
        # RQScheduler has no public way to tell whether its process runs; RQ's own Worker.run_maintenance_tasks
        # reads `_process` for the same check before it restarts the scheduler.
        process = self.scheduler._process
        return bool(process and process.is_alive())
