"""Security finding 5 of issue 18: rq-dashboard's guard against state-changing GETs, bypassed by spelling the
path another way. Before: `GET /rq//requeue/default` and `/rq/%2Frequeue/default` answered 200 and ran
requeue_all (every failed job queued again, from a link or an <img>). Now every spelling is 405, and the
failed job stays where it was."""

import django_rq
import httpx
import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.test import Client
from rq.registry import FailedJobRegistry

from diquis.asgi import application
from tests.support.users import make_root_user

pytestmark = pytest.mark.django_db(transaction=True)

SPELLINGS = [
    "/rq/requeue/default",
    "/rq//requeue/default",
    "/rq///requeue/default",
    "/rq/%2Frequeue/default",
    "/rq/%2F%2Frequeue/default",
    "/rq/./requeue/default",
    "/rq/0/../requeue/default",
    "/rq/requeue//default",
    "/rq/requeue/default/",
]


def as_root(method, path):
    client = Client()
    client.force_login(make_root_user())
    cookies = {settings.SESSION_COOKIE_NAME: client.cookies[settings.SESSION_COOKIE_NAME].value}

    async def send():
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", cookies=cookies) as c:
            return await c.request(method, path)

    return async_to_sync(send)()


@pytest.fixture
def failed_job():
    queue = django_rq.get_queue("default")
    job = queue.enqueue_call("jobs.runner.run_job", args=("not-a-job",))
    queue.remove(job)
    FailedJobRegistry(queue=queue).add(job, ttl=600, exc_string="boom")
    return queue, job


@pytest.mark.parametrize("path", SPELLINGS)
def test_no_spelling_of_requeue_all_runs_on_a_get(path, failed_job):
    queue, job = failed_job
    response = as_root("GET", path)
    assert response.status_code in (301, 308, 404, 405), (path, response.status_code)
    assert job.id in FailedJobRegistry(queue=queue).get_job_ids()
    assert job.id not in queue.get_job_ids()


def test_the_dashboard_pages_still_answer_through_the_normalised_path():
    assert as_root("GET", "/rq//0/data/queues.json").status_code == 200
