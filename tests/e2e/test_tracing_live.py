"""One trace from the POST to the websocket frame, across a real Daphne and a real RQ worker: the request's span
(Django), the job's attempt and each of its provisioning steps (the worker), the notification's push (the worker)
and its frame (Daphne) share one trace id. The job's log lines carry the id of the request that started it.

The trace survives a worker SIGKILLed mid-job (its own spans die with it, unexported): the recovery sweep's
record of the lost attempt, the re-run on another worker and the notification it ends with join the same trace,
read from the job's row."""

import json
import os
import signal
import time

import pytest

from jobs.models import Attempt
from tenants.provisioning.steps import CREATE_ADMIN_USER, CREATE_DATABASE
from tests.support import live
from tests.support.live_tenants import finished, job_of, kill_worker_in_step, post_tenant, root_token, socket
from tests.support.spans import exported_spans, trace_id
from tests.support.tenant_databases import ADMIN_PASSWORD, drop_test_tenant_databases

TENANT = "traced"
EVENT = "diquis.notification.event"
TRACING = {"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "diquis-e2e", "OTEL_BSP_SCHEDULE_DELAY": "100"}


@pytest.fixture
def stack(transactional_db, tmp_path):
    running = live.LiveStack(tmp_path, LOG_FORMAT="json", LOG_LEVEL="INFO", **TRACING)
    try:
        yield running
    finally:
        running.stop()
        drop_test_tenant_databases()


def wait_for_spans(process, name, *, event=None, timeout=20):
    """The spans `name` (of a notification of `event`) that `process` exported, once there is one (the batch
    span processor exports them a moment after they end)."""

    def matching():
        spans = [span for span in exported_spans(process.output()) if span["name"] == name]
        return [span for span in spans if event is None or span["attributes"].get(EVENT) == event]

    deadline = time.monotonic() + timeout
    while not (found := matching()):
        assert time.monotonic() < deadline, f"no span {name!r} from {process.name}:\n{process.output()[-3000:]}"
        time.sleep(0.2)
    return found


def post_span(web):
    """The server span of the one POST the test made."""
    (request,) = [s for s in exported_spans(web.output()) if s["attributes"].get("http.method") == "POST"]
    return request


def steps_of(attempt, spans):
    """The step spans of the attempt span `attempt` (its other children are the instrumentations' client spans)."""
    parent = attempt["context"]["span_id"]
    return [s for s in spans if s["parent_id"] == parent and s["kind"] == "SpanKind.INTERNAL"]


def test_one_trace_from_the_post_to_the_frame(stack):
    token = root_token()
    with socket(stack, token) as ws:
        accepted = post_tenant(stack, token, TENANT, isolated=True)
        assert accepted.status_code == 202, accepted.text
        live.wait_for_event(ws, "TenantCreated", timeout=60)
    deadline = time.monotonic() + 30
    while not finished(TENANT):
        assert time.monotonic() < deadline
        time.sleep(0.2)

    (frame,) = wait_for_spans(stack.web, "notification frame", event="TenantCreated")
    request = post_span(stack.web)
    worker = stack.workers[0]
    (attempt,) = wait_for_spans(worker, "provision_tenant attempt")
    (push,) = wait_for_spans(worker, "notification push", event="TenantCreated")
    worker_spans = exported_spans(worker.output())
    steps = steps_of(attempt, worker_spans)

    assert trace_id(request) == trace_id(attempt) == trace_id(push) == trace_id(frame)
    assert attempt["parent_id"] == request["context"]["span_id"]
    assert frame["parent_id"] == push["context"]["span_id"]
    job = job_of(TENANT)
    recorded = [step["name"] for step in Attempt.objects.get(job=job).steps]
    assert [step["name"] for step in steps] == recorded and CREATE_DATABASE.title in recorded
    assert any(
        s["attributes"].get("db.system") == "postgresql" and trace_id(s) == trace_id(attempt) for s in worker_spans
    )
    for secret in (ADMIN_PASSWORD, token):  # the spans are in these outputs
        assert secret not in stack.web.output() + worker.output()

    request_id = accepted.headers["x-request-id"]
    assert job.request_id == request_id
    job_lines = [line for line in _json_lines(worker) if line.get("job_id") == str(job.pk)]
    assert job_lines and all(line["request_id"] == request_id for line in job_lines)


def test_a_run_taken_over_by_the_recovery_sweep_stays_in_the_requests_trace(start_stack, fault):
    """The worker is SIGKILLed, work-horse and all, inside a step; on a new worker the sweep records the attempt
    abandoned and the job runs again. That re-run, each of its steps and its TenantCreated are the request's."""
    stack = start_stack(**TRACING)
    token = root_token()
    tenant_id = f"{TENANT}-recovered"
    with socket(stack, token) as ws:
        kill_worker_in_step(stack, fault, tenant_id=tenant_id, step=CREATE_ADMIN_USER, isolated=False, token=token)
        live.wait_for_event(ws, "TenantCreated", timeout=30)

    request, (killed, taking_over) = post_span(stack.web), stack.workers
    (abandoned,) = wait_for_spans(taking_over, "provision_tenant abandoned")
    (rerun,) = wait_for_spans(taking_over, "provision_tenant attempt")
    (push,) = wait_for_spans(taking_over, "notification push", event="TenantCreated")
    (frame,) = wait_for_spans(stack.web, "notification frame", event="TenantCreated")
    steps = steps_of(rerun, exported_spans(taking_over.output()))

    assert (abandoned["attributes"]["diquis.job.attempt"], rerun["attributes"]["diquis.job.attempt"]) == (1, 2)
    assert trace_id(request) == trace_id(abandoned) == trace_id(rerun) == trace_id(push) == trace_id(frame)
    assert abandoned["parent_id"] == rerun["parent_id"] == request["context"]["span_id"]
    assert push["parent_id"] in {step["context"]["span_id"] for step in steps} | {rerun["context"]["span_id"]}
    recorded = [step["name"] for step in Attempt.objects.get(job=job_of(tenant_id), number=2).steps]
    assert [step["name"] for step in steps] == recorded and CREATE_ADMIN_USER.title in recorded
    assert "provision_tenant attempt" not in [s["name"] for s in exported_spans(killed.output())]


def test_a_last_attempt_lost_with_its_work_horse_fails_in_the_requests_trace(start_stack, fault):
    """No attempt is left when the work-horse is SIGKILLed: the sweep ends the job failed, and the failure's
    notification, pushed from inside the sweep, is the request's too."""
    stack = start_stack(DIQUIS_JOB_MAX_ATTEMPTS=1, **TRACING)
    token = root_token()
    tenant_id = f"{TENANT}-lost"
    fault.hold(CREATE_ADMIN_USER, tenant_id)
    with socket(stack, token) as ws:
        assert post_tenant(stack, token, tenant_id).status_code == 202
        os.kill(fault.wait_held()["pid"], signal.SIGKILL)
        live.wait_for_event(ws, "TenantCreationFailed", timeout=60)
    fault.release()

    request, worker = post_span(stack.web), stack.workers[0]
    (abandoned,) = wait_for_spans(worker, "provision_tenant abandoned")
    (push,) = wait_for_spans(worker, "notification push", event="TenantCreationFailed")
    (frame,) = wait_for_spans(stack.web, "notification frame", event="TenantCreationFailed")

    assert trace_id(request) == trace_id(abandoned) == trace_id(push) == trace_id(frame)
    assert abandoned["parent_id"] == request["context"]["span_id"]
    assert push["parent_id"] == abandoned["context"]["span_id"]


def _json_lines(process):
    lines = []
    for line in process.output().splitlines():
        if line.startswith("{") and line.endswith("}"):
            lines.append(json.loads(line))
    return lines
