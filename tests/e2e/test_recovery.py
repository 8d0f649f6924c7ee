"""Fault tests of the workers: SIGKILL in every provisioning step, a work-horse killed on every attempt,
PostgreSQL connections cut mid-job, SIGTERM while a job runs. Real Daphne + RQ worker processes.

A provisioning step is held with the faults file (tenants.provisioning.faults) so that the fault strikes exactly there;
`<faults file>.held` tells the test that the job is waiting at the step, and the work-horse's pid.
Figures are printed as `FIGURE <name>: <value>` (`pytest -s`).
"""

import os
import signal
import time
import uuid

import pytest
from django.db import connection
from django.utils import timezone

from jobs.models import Attempt, Job
from jobs.recovery import ABANDONED_ERROR
from notifications.models import Notification
from tenants.models import ProvisioningStatus, Tenant
from tenants.provisioning.steps import APPLY_MIGRATIONS, CREATE_ADMIN_USER, CREATE_DATABASE
from tests.support import live
from tests.support.fault_injection import wait_until
from tests.support.live import drain, gone, wait_for_event
from tests.support.live_tenants import (
    admin_users,
    attempts_of,
    figure,
    finished,
    job_of,
    kill_worker_in_step,
    last_notification_id,
    post_tenant,
    root_token,
    socket,
    status_of,
    tenant_databases,
)
from tests.support.tenant_databases import main_database, raw_cursor, terminate_sessions

S = ProvisioningStatus


WARM_SHUTDOWN = "warm shut down requested"  # what RQ's worker logs when SIGTERM reaches it


def has_beaten(attempt, since=None):
    """The attempt's heartbeat was written after it started (and after `since`)."""
    attempt.refresh_from_db()
    return attempt.heartbeat_at > max(attempt.started_at, since or attempt.started_at)


def own_name(name):
    """`name` made this run's own: another run on the machine may look for sessions by the same name."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


SHARED_STEPS = [(False, CREATE_ADMIN_USER)]
ISOLATED_STEPS = [(True, CREATE_DATABASE), (True, APPLY_MIGRATIONS), (True, CREATE_ADMIN_USER)]


@pytest.mark.parametrize(("isolated", "step"), SHARED_STEPS + ISOLATED_STEPS)
def test_a_worker_killed_in_any_step_is_replaced_and_the_tenant_ends_active_once(start_stack, fault, isolated, step):
    stack = start_stack()
    tenant_id = f"killed-{step.label}-{'iso' if isolated else 'shared'}"
    detected, active = kill_worker_in_step(stack, fault, tenant_id=tenant_id, step=step, isolated=isolated)
    case = f"SIGKILL in {step.label} ({'isolated' if isolated else 'shared'})"
    figure(f"{case}: kill -> abandoned recorded (s)", round(detected, 1))
    figure(f"{case}: kill -> Active (s)", round(active, 1))
    assert detected < 60

    assert admin_users(tenant_id) == [f"admin@{tenant_id}.test"]
    tenant = Tenant.objects.get(pk=tenant_id)
    assert tenant.encrypted_admin_password is None
    if isolated:
        assert tenant.database_name
        assert tenant_databases(tenant_id) == [tenant.database_name]
    job = job_of(tenant_id)
    assert (job.status, job.attempts) == (Job.Status.SUCCEEDED, 2)
    assert Notification.objects.filter(event="TenantCreated", data__tenantId=tenant_id).count() == 1


def test_with_production_timings_a_killed_worker_is_detected_within_a_minute(start_stack, fault):
    """The defaults of settings.py (heartbeat 5 s, abandoned after 30 s, sweep every 15 s), not the suite's."""
    stack = start_stack(DIQUIS_HEARTBEAT_INTERVAL=5, DIQUIS_ABANDONED_AFTER=30, DIQUIS_SWEEP_INTERVAL=15)
    detected, active = kill_worker_in_step(
        stack, fault, tenant_id="killed-default-timings", step=CREATE_ADMIN_USER, isolated=False
    )
    figure("SIGKILL, production timings: kill -> abandoned recorded (s)", round(detected, 1))
    figure("SIGKILL, production timings: kill -> Active (s)", round(active, 1))
    assert detected < 60
    assert active < 60 + 15


def test_a_horse_killed_on_every_attempt_ends_failed_and_notified_once(start_stack, fault):
    """RQ calls no failure callback for a killed work-horse: the sweep records the attempt, and after the
    last one the tenant ends Failed with one TenantCreationFailed."""
    stack = start_stack(DIQUIS_JOB_MAX_ATTEMPTS=2)
    token = root_token()
    before = last_notification_id()
    fault.hold(CREATE_ADMIN_USER, "doomed")
    assert post_tenant(stack, token, "doomed").status_code == 202
    horse = None
    for _ in range(2):
        horse = fault.wait_held(other_than=horse)["pid"]
        os.kill(horse, signal.SIGKILL)
    wait_until(lambda: status_of("doomed") == S.FAILED, timeout=60, what="tenant Failed")
    fault.release()

    tenant = Tenant.objects.get(pk="doomed")
    assert tenant.provisioning_error == ABANDONED_ERROR
    assert [a.outcome for a in attempts_of("doomed")] == [Attempt.Outcome.ABANDONED] * 2
    assert job_of("doomed").status == Job.Status.FAILED
    assert stack.workers[0].alive()
    with socket(stack, token, since=before) as ws:
        frame, _ = wait_for_event(ws, "TenantCreationFailed", timeout=20)
        assert frame["data"]["message"] == f"Tenant creation failed: {ABANDONED_ERROR}"
        assert [f["event"] for f in drain(ws, 2 * 2 + 1)] == []  # a few sweeps later: still once
    assert Notification.objects.filter(event="TenantCreationFailed", data__tenantId="doomed").count() == 1


def test_postgres_connections_cut_mid_job_fail_the_attempt_and_the_retry_succeeds(start_stack, fault):
    application_name = own_name("diquis-fault-test")  # pg_terminate_backend below reaches the whole server
    stack = start_stack(PGAPPNAME=application_name)
    token = root_token()
    fault.hold(CREATE_ADMIN_USER, "cut")
    assert post_tenant(stack, token, "cut").status_code == 202
    fault.wait_held()
    # The attempt's heartbeat thread has beaten once: it has its own session now.
    wait_until(lambda: has_beaten(Attempt.objects.get(job__subject="tenant:cut")), timeout=30, what="a heartbeat")
    terminated = terminate_sessions(application_name)
    figure("PostgreSQL sessions of the stack terminated mid-job", terminated)
    assert terminated >= 2  # the job's own session (it held the tenant's lock) and its heartbeat's
    fault.release()
    recovered = wait_until(lambda: finished("cut"), timeout=60, what="tenant Active after the cut")
    figure("pg_terminate_backend mid-job -> Active (s)", round(recovered, 1))

    first, second = attempts_of("cut")
    assert first.outcome == Attempt.Outcome.FAILED
    assert "connection" in first.error.lower() or "terminat" in first.error.lower(), first.error
    assert second.outcome == Attempt.Outcome.SUCCEEDED
    assert admin_users("cut") == ["admin@cut.test"]
    assert stack.workers[0].alive()


def test_sigterm_lets_the_job_in_hand_finish_then_the_worker_exits(start_stack, fault):
    stack = start_stack()
    token = root_token()
    fault.hold(CREATE_ADMIN_USER, "graceful")
    assert post_tenant(stack, token, "graceful").status_code == 202
    horse = fault.wait_held()["pid"]
    worker = stack.workers[0]
    children = worker.children()  # the work-horse and the scheduler
    worker.popen.send_signal(signal.SIGTERM)
    wait_until(lambda: WARM_SHUTDOWN in worker.output(), timeout=30, what="the worker heard SIGTERM")
    heard_at = timezone.now()
    # The job goes on after the stop request: its heartbeat beats again (a worker that had left would have
    # taken its work-horse down, or be gone by then).
    wait_until(
        lambda: has_beaten(Attempt.objects.get(job__subject="tenant:graceful"), since=heard_at),
        timeout=30,
        what="a heartbeat after the stop request",
    )
    assert worker.alive() and not gone(horse), "the worker must wait for the job in hand"
    fault.release()
    took = wait_until(lambda: finished("graceful"), timeout=30, what="the job in hand finished")
    assert worker.popen.wait(timeout=30) == 0
    wait_until(lambda: all(gone(pid) for pid in children), timeout=10, what="no process of the worker left")
    figure("SIGTERM during a job: release -> Active (s)", round(took, 1))
    assert [a.outcome for a in attempts_of("graceful")] == [Attempt.Outcome.SUCCEEDED]
    assert job_of("graceful").status == Job.Status.SUCCEEDED


def _stop_and_expect_a_clean_exit(worker):
    children = worker.children()
    worker.popen.send_signal(signal.SIGTERM)
    assert worker.popen.wait(timeout=15) == 0
    wait_until(lambda: all(gone(pid) for pid in children), timeout=10, what="no process of the worker left")


def test_a_worker_stopped_while_idle_exits_at_once_and_leaves_no_process(transactional_db, tmp_path):
    worker = live.start_worker(tmp_path)
    try:
        wait_until(lambda: worker.children(), timeout=30, what="the worker's scheduler started")
        time.sleep(1)
        _stop_and_expect_a_clean_exit(worker)
    finally:
        worker.stop()


def test_a_worker_stopped_during_its_sweep_exits_and_leaves_no_process(transactional_db, tmp_path):
    """SIGTERM lands while the sweep waits on the database (held here by a table lock): the stop request
    must not be taken for a failed sweep and forgotten."""
    with raw_cursor(main_database()) as blocker:
        blocker.execute("BEGIN")
        blocker.execute("LOCK TABLE jobs_job IN ACCESS EXCLUSIVE MODE")
        application_name = own_name("diquis-sweep-stop")
        worker = live.start_worker(tmp_path, PGAPPNAME=application_name)
        try:
            wait_until(lambda: sweep_waits_on_a_lock(application_name), timeout=30, what="the sweep blocked")
            children = worker.children()
            worker.popen.send_signal(signal.SIGTERM)
            time.sleep(1)
            blocker.execute("ROLLBACK")
            assert worker.popen.wait(timeout=15) == 0
            wait_until(lambda: all(gone(pid) for pid in children), timeout=10, what="no process of the worker left")
        finally:
            worker.stop()


def sweep_waits_on_a_lock(application_name):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND wait_event_type = 'Lock'",
            [application_name],
        )
        return cursor.fetchone()[0] > 0


def test_the_scheduler_of_a_killed_worker_does_not_outlive_it(transactional_db, tmp_path):
    worker = live.start_worker(tmp_path)
    try:
        wait_until(lambda: worker.children(), timeout=30, what="the worker's scheduler started")
        (scheduler,) = worker.children()
        os.kill(worker.pid, signal.SIGKILL)
        wait_until(lambda: gone(scheduler), timeout=15, what="the orphaned scheduler gone")
    finally:
        worker.stop()
