"""/metrics: for root or the METRICS_TOKEN bearer only; values read from the durable tables and Redis."""

import datetime

import django_rq
import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from diquis.asgi import application
from jobs.models import Attempt, Job
from notifications.metrics import websocket_connections
from notifications.models import Notification
from tenants import tasks
from tenants.models import ROOT_TENANT_ID, Role, UpgradeStatus, User
from tenants.provisioning.template import migration_fingerprint
from tenants.services import subject_for
from tests.support.factories import TenantFactory
from tests.support.upgrades import isolated_tenant, make_upgrade
from tests.support.users import make_root_user

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "a-long-random-metrics-token-for-tests"


@pytest.fixture(autouse=True)
def metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN


def scrape(client=None, **headers):
    return (client or Client()).get("/metrics", headers=headers)


def samples(response):
    """{(name, frozenset(labels)): value} of a Prometheus text exposition."""
    found = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found, name, **labels):
    return found.get((name, frozenset(labels.items())), 0)


def test_anonymous_scrapers_are_asked_for_the_token():
    response = scrape()
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"diquis_" not in response.content


def test_a_wrong_token_is_refused():
    assert scrape(authorization="Bearer not-the-token").status_code == 401
    assert scrape(authorization=f"Bearer {TOKEN}x").status_code == 401


def test_signed_in_users_who_are_not_root_are_refused():
    client = Client()
    client.force_login(User.objects.create_user("basic@diquis.test", "Basic-Pass-123!", roles=[Role.BASIC]))
    response = scrape(client)
    assert response.status_code == 403
    assert b"diquis_" not in response.content


def test_without_a_configured_token_no_bearer_gets_in(settings):
    settings.METRICS_TOKEN = ""
    assert scrape(authorization="Bearer ").status_code == 401


def test_root_session_and_the_token_both_get_the_metrics():
    client = Client()
    client.force_login(make_root_user())
    assert scrape(client).status_code == 200
    response = scrape(authorization=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")


def _attempts(task, subject, outcomes, *, seconds=1.0):
    """A durable job with one attempt per outcome, the way the runner records them."""
    job = Job.objects.create(task=task, subject=subject, max_attempts=len(outcomes))
    start = timezone.now() - datetime.timedelta(minutes=5)
    for number, outcome in enumerate(outcomes, start=1):
        Attempt.objects.create(
            job=job,
            number=number,
            rq_job_id=f"diquis-{job.pk}-{number}",
            started_at=start,
            heartbeat_at=start,
            ended_at=start + datetime.timedelta(seconds=seconds),
            outcome=outcome,
        )
    return job


def test_job_counters_provisioning_histogram_and_notifications_come_from_the_tables():
    outcome = Attempt.Outcome
    create, update = tasks.provision_tenant.durable_task_name, tasks.apply_tenant_update.durable_task_name
    TenantFactory(id="iso", has_isolated_database=True)
    TenantFactory(id="shared-one")
    _attempts(create, subject_for("iso"), [outcome.FAILED, outcome.ABANDONED, outcome.SUCCEEDED], seconds=3.0)
    _attempts(create, subject_for("shared-one"), [outcome.SUCCEEDED], seconds=0.2)
    _attempts(update, subject_for("shared-one"), [outcome.FAILED])
    root = User.objects.get(tenant_id=ROOT_TENANT_ID, email=settings.DIQUIS_ROOT_EMAIL.lower())
    for event in ["TenantCreated", "TenantCreated", "TenantUpdateFailed"]:
        Notification.objects.create(user_id=root.pk, event=event, data={})

    found = samples(scrape(authorization=f"Bearer {TOKEN}"))

    assert value(found, "diquis_jobs_started_total", task="provision_tenant") == 4
    assert value(found, "diquis_jobs_succeeded_total", task="provision_tenant") == 2
    assert value(found, "diquis_jobs_failed_total", task="provision_tenant", outcome="failed") == 1
    assert value(found, "diquis_jobs_failed_total", task="provision_tenant", outcome="abandoned") == 1
    assert value(found, "diquis_jobs_started_total", task="apply_tenant_update") == 1
    assert value(found, "diquis_jobs_failed_total", task="apply_tenant_update", outcome="failed") == 1

    histogram = "diquis_provisioning_duration_seconds"
    assert value(found, f"{histogram}_count", kind="isolated") == 1
    assert value(found, f"{histogram}_sum", kind="isolated") == pytest.approx(3.0)
    assert value(found, f"{histogram}_bucket", kind="isolated", le="2.5") == 0
    assert value(found, f"{histogram}_bucket", kind="isolated", le="5.0") == 1
    assert value(found, f"{histogram}_count", kind="shared") == 1
    assert value(found, f"{histogram}_bucket", kind="shared", le="0.25") == 1

    assert value(found, "diquis_notifications_sent_total", event="TenantCreated") == 2
    assert value(found, "diquis_notifications_sent_total", event="TenantUpdateFailed") == 1


def test_queue_depth_is_read_from_redis_at_scrape_time():
    queue = django_rq.get_queue("default")
    for n in range(3):
        queue.enqueue_call("jobs.runner.run_job", args=(f"job-{n}",))
    Job.objects.create(task="x.y", subject="tenant:q", max_attempts=1)
    found = samples(scrape(authorization=f"Bearer {TOKEN}"))
    assert value(found, "rq_jobs", queue="default", status="queued") == 3
    assert value(found, "diquis_jobs_open", status="queued") == 1
    assert value(found, "diquis_redis_up") == 1


def open_sockets():
    return websocket_connections.collect()[0].samples[0].value


def test_open_websockets_are_counted_while_they_are_open():
    client = Client()
    client.force_login(make_root_user())
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    # the socket's own origin: its Host too (issue 18, finding 8)
    headers = [(b"cookie", cookie.encode()), (b"origin", b"http://localhost"), (b"host", b"localhost")]
    before = open_sockets()

    async def open_two_then_close():
        seen = []
        sockets = [WebsocketCommunicator(application, "/hubs/notifications", headers=headers) for _ in range(2)]
        for socket in sockets:
            connected, _ = await socket.connect(timeout=10)
            assert connected
            await socket.receive_json_from(timeout=10)  # Connected
        seen.append(open_sockets())
        for socket in sockets:
            await socket.disconnect()
        seen.append(open_sockets())
        refused = WebsocketCommunicator(application, "/hubs/notifications")  # no session, no token
        connected, _ = await refused.connect(timeout=10)
        assert not connected
        seen.append(open_sockets())
        return seen

    assert async_to_sync(open_two_then_close)() == [before + 2, before, before]


def upgrade_samples():
    found = samples(scrape(authorization=f"Bearer {TOKEN}"))
    tenants = {status: value(found, "diquis_upgrade_tenants", status=status) for status in UPGRADE_TENANT_LABELS}
    running = {
        status: value(found, "diquis_upgrade_running", status=status) for status in ["Pending", "Running", "Paused"]
    }
    return value(found, "diquis_tenants_behind_head"), tenants, running


UPGRADE_TENANT_LABELS = ["pending", "running", "done", "failed", "skipped", "total"]


def test_upgrade_metrics_say_who_is_behind_and_how_the_open_upgrade_goes():
    isolated_tenant("old-one", fingerprint="an-old-head")
    isolated_tenant("unknown-one")
    isolated_tenant("new-one", fingerprint=migration_fingerprint())
    TenantFactory(id="shared-one")
    behind, tenants, running = upgrade_samples()
    assert behind == 2
    assert tenants == dict.fromkeys(UPGRADE_TENANT_LABELS, 0)  # no upgrade yet: every series, at 0
    assert running == {"Pending": 0, "Running": 0, "Paused": 0}

    make_upgrade([("x", "main", "done")], status=UpgradeStatus.SUCCEEDED, started_ago=datetime.timedelta(days=1))
    children = [("a", "main", "done"), ("b", "main", "done"), ("c", "main", "failed"), ("d", "main", "skipped")]
    children += [("e", "main", "running"), ("f", "main", "pending"), ("g", "main", "pending")]
    make_upgrade(children, skipped=3, status=UpgradeStatus.PAUSED, started_ago=datetime.timedelta(days=2))
    _, tenants, running = upgrade_samples()
    # The open one, older as it is; skipped as the API counts them: at the head when it started, or since.
    assert tenants == {"pending": 2, "running": 1, "done": 2, "failed": 1, "skipped": 4, "total": 10}
    assert running == {"Pending": 0, "Running": 0, "Paused": 1}


def test_with_no_upgrade_open_the_metrics_show_the_last_one():
    make_upgrade([("x", "main", "done")], status=UpgradeStatus.SUCCEEDED, started_ago=datetime.timedelta(days=2))
    make_upgrade([("y", "main", "failed"), ("z", "main", "done")], status=UpgradeStatus.FAILED)
    _, tenants, running = upgrade_samples()
    assert tenants == {"pending": 0, "running": 0, "done": 1, "failed": 1, "skipped": 0, "total": 2}
    assert running == {"Pending": 0, "Running": 0, "Paused": 0}
