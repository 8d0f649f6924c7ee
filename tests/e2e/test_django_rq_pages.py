"""Every page of django-rq an operator can open, with a live worker and jobs in every registry, answers 200 and
shows no secret; so do rq-dashboard's pages about the same worker and jobs.

django-rq is mounted twice, at /admin/rq/ and by its own admin entry at /admin/django_rq/dashboard/ (both root
only, jobs.django_rq_pages): the crawl starts at both, follows every link that only shows something, and must
have opened each of django-rq's pages (by URL name) at least once. With django-rq 4.2 and rq 3 the worker page's
own breadcrumb, which links by the worker's name, was a 500.
"""

import re
import time
from datetime import timedelta
from urllib.parse import urlsplit

import django_rq
import pytest
from django.conf import settings
from django.test import Client
from django.urls import resolve
from django_rq.urls import get_admin_urlpatterns, get_api_urlpatterns

from tests.support import live
from tests.support.html_links import links
from tests.support.users import make_root_user

pytestmark = pytest.mark.django_db(transaction=True)

MOUNTS = ("/admin/rq/", "/admin/django_rq/")
ACTIONS = re.compile(r"/(delete|empty|requeue|requeue-all|enqueue|stop|clear|confirm-action|actions)/")
# django-rq's URL names of what changes something (never crawled), and of the pages of schedulers the project
# does not run (rq-scheduler's, rq's cron): its home page links them only when one runs.
NOT_CRAWLED = {
    "clear", "requeue_all", "delete_failed_jobs", "delete_job", "requeue_job", "enqueue_job", "stop_job",
    "confirm_action", "actions", "scheduler_jobs", "cron_scheduler_detail", "cron_job_detail",
}  # fmt: skip
REGISTRIES = ["finished", "failed", "scheduled", "started", "deferred"]
RQ_DASHBOARD_REGISTRIES = ["queued", "started", "finished", "failed", "deferred", "scheduled", "canceled"]


def wait_until(condition, worker, timeout=60):
    deadline = time.monotonic() + timeout
    while not condition():
        assert worker.alive() and time.monotonic() < deadline, worker.output()[-3000:]
        time.sleep(0.1)


@pytest.fixture
def busy_worker(tmp_path):
    """A live worker busy with a job (started), and a job of every other kind: finished (with a result),
    failed, scheduled in an hour, deferred behind the scheduled one, queued behind the busy worker."""
    worker = live.start_worker(tmp_path)
    try:
        queue = django_rq.get_queue("default")
        jobs = {"finished": queue.enqueue("builtins.len", "abc"), "failed": queue.enqueue("builtins.int", "x")}
        wait_until(lambda: all(job.get_status(refresh=True) == kind for kind, job in jobs.items()), worker)
        jobs["scheduled"] = queue.enqueue_in(timedelta(hours=1), "builtins.len", "later")
        jobs["deferred"] = queue.enqueue("builtins.len", "after", depends_on=jobs["scheduled"])
        jobs["started"] = queue.enqueue("time.sleep", 120)
        wait_until(lambda: jobs["started"].get_status(refresh=True) == "started", worker)
        jobs["queued"] = queue.enqueue("builtins.len", "waiting")
        yield worker, {kind: job.id for kind, job in jobs.items()}
    finally:
        worker.kill_tree()  # its work-horse too, still in the sleep


@pytest.fixture
def root():
    client = Client(raise_request_exception=False)
    client.force_login(make_root_user())
    return client


def secrets():
    return {
        "secret key": settings.SECRET_KEY,
        "root password": settings.DIQUIS_ROOT_PASSWORD,
        "database url": live.stack_env()["DATABASE_URL"],
        "postgres url": "postgres://",
    }


def crawl(client, start):
    """Every page reached from `start` through its links: {path: response}."""
    pages, seen = list(start), {}
    while pages:
        path = pages.pop(0)
        if path in seen:
            continue
        seen[path] = response = client.get(path)
        if response.status_code == 200 and response["content-type"].startswith("text/html"):
            hrefs = links(response.content.decode(), MOUNTS)
            pages += sorted(urlsplit(href).path for href in hrefs if not ACTIONS.search(href))
        assert len(seen) < 300, "runaway crawl"
    return seen


def django_rq_page_names():
    return {pattern.name for pattern in get_api_urlpatterns() + get_admin_urlpatterns()} - NOT_CRAWLED


def test_every_django_rq_page_answers_with_a_live_worker_and_jobs_of_every_kind(busy_worker, root):
    worker, job_ids = busy_worker
    (worker_key,) = [key.decode() for key in django_rq.get_queue("default").connection.smembers("rq:workers")]
    start = [*MOUNTS, "/admin/django_rq/dashboard/"]
    for mount in ("/admin/rq/", "/admin/django_rq/dashboard/"):
        start += [f"{mount}queues/0/{registry}/" for registry in REGISTRIES]
        start += [f"{mount}queues/0/{job_id}/" for job_id in job_ids.values()]
        start += [f"{mount}workers/0/", f"{mount}workers/0/{worker_key}/", f"{mount}stats.json"]
    pages = crawl(root, start)

    assert {path: r.status_code for path, r in pages.items() if r.status_code != 200} == {}
    opened = {resolve(path).url_name.removeprefix("django_rq_") for path in pages}
    assert django_rq_page_names() - opened == set()
    by_name = {path for path in pages if "/workers/0/" in path and "rq:worker:" not in path}
    assert by_name, "the worker page's breadcrumb (by name) was not followed"
    worker_page = pages[f"/admin/rq/workers/0/{worker_key}/"].content.decode()
    assert job_ids["started"] in worker_page  # the job it is busy with
    for kind in REGISTRIES:
        assert job_ids[kind] in pages[f"/admin/rq/queues/0/{kind}/"].content.decode(), kind
    leaks = [(what, path) for what, secret in secrets().items() for path, r in pages.items() if secret in r.text]
    assert leaks == []


def test_a_worker_page_of_a_worker_that_is_gone_is_not_found(busy_worker, root):
    for mount in ("/admin/rq/", "/admin/django_rq/dashboard/"):
        assert root.get(f"{mount}workers/0/gone-worker/").status_code == 404
        assert root.get(f"{mount}workers/0/rq:worker:gone-worker/").status_code == 404


def test_rq_dashboard_shows_the_live_worker_and_every_registry(busy_worker, root):
    worker, job_ids = busy_worker
    pages = ["/rq/", "/rq/0/view/workers", "/rq/0/data/workers.json", "/rq/0/data/queues.json"]
    for registry in RQ_DASHBOARD_REGISTRIES:
        pages.append(f"/rq/0/view/jobs/default/{registry}/100/asc/1")
        pages.append(f"/rq/0/data/jobs/default/{registry}/100/asc/1.json")
    pages += [f"/rq/0/view/job/{job_id}" for job_id in job_ids.values()]
    pages += [f"/rq/0/data/job/{job_id}.json" for job_id in job_ids.values()]
    responses = {path: root.get(path) for path in pages}

    assert {path: r.status_code for path, r in responses.items() if r.status_code != 200} == {}
    (shown,) = responses["/rq/0/data/workers.json"].json()["workers"]
    assert (shown["state"], shown["queues"]) == ("busy", ["default"])
    for kind in REGISTRIES:
        listed = responses[f"/rq/0/data/jobs/default/{kind}/100/asc/1.json"].json()["jobs"]
        assert [job["id"] for job in listed] == [job_ids[kind]], kind
    deferred = responses[f"/rq/0/data/job/{job_ids['deferred']}.json"].json()
    assert (deferred["depends_on"], deferred["depends_on_status"]) == ([job_ids["scheduled"]], ["active"])
    leaks = [(what, path) for what, secret in secrets().items() for path, r in responses.items() if secret in r.text]
    assert leaks == []
