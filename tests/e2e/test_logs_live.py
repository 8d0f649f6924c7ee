"""`LOG_FORMAT=json` on the real stack: every line Daphne and the worker write is one JSON object, with nothing
empty; a web request's lines carry its id (the X-Request-ID it was sent, given back in the response), its user
and tenant, a websocket's its id and user, and a job's lines their job id, operation, subject, tenant, attempt
and step."""

import json

import httpx
import pytest
from django.conf import settings
from websockets.sync.client import connect

from jobs.models import Job
from tenants.models import ROOT_TENANT_ID, User
from tenants.provisioning.steps import CREATE_DATABASE
from tenants.subjects import subject_for
from tests.support import live
from tests.support.tenant_databases import drop_test_tenant_databases

TENANT = "json-logged"


@pytest.fixture
def stack(transactional_db, tmp_path):
    running = live.LiveStack(tmp_path, LOG_FORMAT="json", LOG_LEVEL="INFO")
    try:
        yield running
    finally:
        running.stop()
        drop_test_tenant_databases()


def json_lines(process):
    """Every line `process` wrote, each parsed as one JSON object (a line that is not one fails the test)."""
    lines = []
    for number, line in enumerate(process.output().splitlines(), 1):
        parsed = json.loads(line)
        assert isinstance(parsed, dict), (process.name, number, line)
        assert all(value not in (None, "", [], {}) for value in parsed.values()), (process.name, number, line)
        lines.append(parsed)
    return lines


def test_web_and_worker_write_json_lines_that_carry_the_request_and_the_job(stack):
    signed_in = httpx.post(
        f"{stack.url}/api/tokens",
        json={"email": settings.DIQUIS_ROOT_EMAIL, "password": settings.DIQUIS_ROOT_PASSWORD},
    )
    assert signed_in.status_code == 200, signed_in.text
    token = signed_in.json()["data"]["token"]
    headers = {"authorization": f"Bearer {token}"}
    missing = httpx.get(f"{stack.url}/api/tenants/no-such-tenant", headers={**headers, "x-request-id": "e2e-404-1"})
    assert (missing.status_code, missing.headers["x-request-id"]) == (404, "e2e-404-1")
    with connect(f"{stack.ws_url}?access_token={token}", open_timeout=10) as ws:
        live.recv_json(ws, 10)
        created = httpx.post(
            f"{stack.url}/api/tenants",
            headers=headers,
            json={
                "id": TENANT,
                "name": "Json Logged",
                "adminEmail": f"admin@{TENANT}.test",
                "password": "Tenant-Admin-Pass-9!",
                "hasIsolatedDatabase": True,
            },
        )
        assert created.status_code == 202, created.text
        live.wait_for_event(ws, "TenantCreated", timeout=60)
    stack.stop()  # flushes the logs

    web = json_lines(stack.web)
    root = User.objects.get(tenant_id=ROOT_TENANT_ID, email=settings.DIQUIS_ROOT_EMAIL.lower())
    of_request = [line for line in web if line.get("request_id") == "e2e-404-1"]
    assert {line["logger"] for line in of_request} == {"django.request", "diquis.access"}  # Django's, Daphne's
    for line in of_request:
        assert (line["user_id"], line["tenant"], line["status_code"]) == (str(root.pk), ROOT_TENANT_ID, 404)
    (socket_opened,) = [line for line in web if '"WSCONNECT /hubs/notifications"' in line["message"]]
    assert socket_opened["user_id"] == str(root.pk) and socket_opened["request_id"]
    accepted = [line for line in web if line["logger"] == "diquis.access" and line.get("status_code") == 202]
    assert len(accepted) == 1 and '"POST /api/tenants"' in accepted[0]["message"]

    job = Job.objects.get(subject=subject_for(TENANT), task__endswith="provision_tenant")
    of_job = [line for line in json_lines(stack.workers[0]) if line.get("job_id") == str(job.pk)]
    assert of_job, "the worker logged nothing for the job"
    assert all(line["tenant"] == TENANT and line["operation"] == "provision_tenant" for line in of_job)
    assert all(line["subject"] == subject_for(TENANT) and line["attempt"] == 1 for line in of_job)
    in_database_step = [line for line in of_job if line.get("step") == CREATE_DATABASE.title]
    assert any(f"of tenant {TENANT}" in line["message"] for line in in_database_step)
