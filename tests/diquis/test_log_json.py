"""`LOG_FORMAT=json` (diquis.log_json): one JSON object per line, the fields that apply and nothing empty, no
`extra` a library attaches, and the URL secrets redacted as in the human format. Run as an operator would: a
`manage.py` process with the variable set."""

import json

from tests.support.production import manage

LINES = """
import logging
from jobs.context import bound, current_step, job_context
from jobs.models import Job
log = logging.getLogger("tenants.tasks")
log.warning("a plain line")
job = Job(task="tenants.tasks.provision_tenant", subject="tenant:acme")
with job_context(job, attempt=3), bound(current_step, "Creating database"):
    log.warning("inside %s", "a step")
    print(job.pk)
try:
    1 / 0
except ZeroDivisionError:
    log.exception("failed: GET /api/tokens/%s", "some-refresh-token")
log.warning("with extras", extra={"request": "GET /api/tokens/the-token", "status_code": 404, "secret": "kept-out"})
"""


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_each_line_is_one_json_object_with_the_fields_that_apply_and_nothing_empty():
    done = manage("shell", "-c", LINES, LOG_FORMAT="json", LOG_LEVEL="INFO")
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.split()[-1]
    lines = [line for line in json_lines(done.stderr) if line["logger"] == "tenants.tasks"]
    plain, in_step, failed, with_extras = lines

    assert list(plain) == ["timestamp", "level", "logger", "message"]
    assert (plain["level"], plain["message"]) == ("WARNING", "a plain line")
    assert plain["timestamp"].endswith("+00:00")
    assert in_step == {
        "timestamp": in_step["timestamp"],
        "level": "WARNING",
        "logger": "tenants.tasks",
        "message": "inside a step",
        "tenant": "acme",
        "job_id": job_id,
        "operation": "provision_tenant",
        "subject": "tenant:acme",
        "attempt": 3,
        "step": "Creating database",
    }
    assert failed["message"] == "failed: GET /api/tokens/[redacted]"
    assert "ZeroDivisionError" in failed["exc_info"]
    assert "some-refresh-token" not in done.stderr
    assert set(with_extras) == {"timestamp", "level", "logger", "message", "status_code"}
    assert with_extras["status_code"] == 404
    assert "the-token" not in done.stderr and "kept-out" not in done.stderr


def test_the_human_format_stays_the_default():
    done = manage("shell", "-c", LINES, LOG_LEVEL="INFO")
    assert done.returncode == 0, done.stderr
    assert " WARNING tenants.tasks a plain line" in done.stderr
    assert "tenant=acme job=" in done.stderr and ' attempt=3 step="Creating database" inside a step' in done.stderr
    assert not any(line.startswith("{") for line in done.stderr.splitlines())


def test_an_unknown_log_format_stops_every_command():
    done = manage("check", LOG_FORMAT="xml")
    assert done.returncode != 0
    assert "LOG_FORMAT must be one of text, json, not 'xml'" in done.stderr
