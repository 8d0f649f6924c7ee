"""django-rq's pages (under /admin/rq/ and the admin's own /admin/django_rq/dashboard/), root only, with its
worker page made to answer for every worker link an operator can click.

Why: django-rq 4.2's worker page looks a worker up with rq 3's `Worker.find_by_key()`, which takes the worker's
Redis key (`rq:worker:<name>`) and raises ValueError for anything else, and asserts that the worker exists. Its
list of workers links by key, but the worker page's own breadcrumb links by name: one click there was a 500
("Not a valid RQ worker key"), and so was the page of a worker that stopped since the list was drawn (the
assertion). Here the page takes a name or a key and answers 404 for a worker Redis no longer knows; the page
itself is still django-rq's. Remove `accepting_worker_names` once a django-rq release links by key everywhere
and answers 404 for a gone worker (tests/e2e/test_django_rq_pages.py tells).
"""

import functools

from django.http import Http404
from django_rq.admin import QueueAdmin
from django_rq.queues import get_queue_by_index
from django_rq.urls import get_admin_urlpatterns, get_api_urlpatterns
from rq.worker import Worker

from .access import root_required

WORKER_PAGE = "worker_details"  # django-rq's URL name of it (prefixed `django_rq_` in the admin)
WORKER_KEY_PREFIX = Worker.redis_worker_namespace_prefix


def worker_key(name_or_key):
    """The Redis key of a worker named so, or the key itself."""
    if name_or_key.startswith(WORKER_KEY_PREFIX):
        return name_or_key
    return WORKER_KEY_PREFIX + name_or_key


def accepting_worker_names(worker_page):
    """django-rq's worker page (`worker_page`, its view as mounted), for a worker's name or key, 404 when gone."""

    @functools.wraps(worker_page)
    def page(request, queue_index, key):
        key = worker_key(key)
        if not get_queue_by_index(queue_index).connection.exists(key):
            raise Http404("No such worker: it has stopped, or never ran.")
        return worker_page(request, queue_index=queue_index, key=key)

    return page


def root_pages(patterns, worker_page_name):
    """`patterns` (django-rq's, as mounted somewhere) behind the root rule, the worker page made to answer.
    Its own checks would let any staff user in, and its stats/metrics views any holder of RQ_API_TOKEN: here
    every one of them is for root only."""
    for pattern in patterns:
        if pattern.name == worker_page_name:
            pattern.callback = accepting_worker_names(pattern.callback)
        pattern.callback = root_required(pattern.callback)
    return patterns


def django_rq_urls():
    """django-rq's views for /admin/rq/ (an `include()`)."""
    return root_pages(get_api_urlpatterns() + get_admin_urlpatterns(), WORKER_PAGE), "django_rq"


class JobQueuesAdmin(QueueAdmin):
    """django-rq's own admin entry (/admin/django_rq/dashboard/...), under the same rules as /admin/rq/."""

    def get_urls(self):
        return root_pages(super().get_urls(), f"django_rq_{WORKER_PAGE}")
