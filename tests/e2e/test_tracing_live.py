"""One trace from the POST to the websocket frame, across a real Daphne and a real RQ worker: the request's span
(Django), the job's attempt and each of its provisioning steps (the worker), the notification's push (the worker)
and its frame (Daphne) share one trace id. The job's log lines carry the id of the request that started it."""

import json
import time

import pytest

from jobs.models import Attempt
from tenants.provisioning.steps import CREATE_DATABASE
from tests.support import live
from tests.support.live_tenants import finished, job_of, post_tenant, root_token, socket
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
    (request,) = [s for s in exported_spans(stack.web.output()) if s["attributes"].get("http.method") == "POST"]
    worker = stack.workers[0]
    (attempt,) = wait_for_spans(worker, "provision_tenant attempt")
    (push,) = wait_for_spans(worker, "notification push", event="TenantCreated")
    worker_spans = exported_spans(worker.output())
    steps = [
        s for s in worker_spans if s["parent_id"] == attempt["context"]["span_id"] and s["kind"] == "SpanKind.INTERNAL"
    ]

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


def _json_lines(process):
    lines = []
    for line in process.output().splitlines():
        if line.startswith("{") and line.endswith("}"):
            lines.append(json.loads(line))
    return lines
