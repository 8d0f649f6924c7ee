"""The job dashboards are for root users only: rq-dashboard at /rq/ (mounted in the ASGI app) and
django-rq's views under /admin/rq/ and /admin/django_rq/dashboard/. Anyone else is sent to the admin login
(anonymous) or gets 403."""

import django_rq
import httpx
import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.test import Client

from diquis.asgi import application
from tenants.models import ROOT_TENANT_ID, Role, User
from tests.support.users import make_root_user

pytestmark = pytest.mark.django_db(transaction=True)

HOST = "testserver"


def session_cookies(user):
    """The cookies of a browser signed in to the admin as `user` (None: anonymous)."""
    if user is None:
        return {}
    client = Client()
    client.force_login(user)
    return {settings.SESSION_COOKIE_NAME: client.cookies[settings.SESSION_COOKIE_NAME].value}


def asgi_request(method, path, *, user=None, headers=None):
    """One request through the whole ASGI application, as Daphne would hand it over."""

    cookies = session_cookies(user)

    async def send():
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{HOST}", cookies=cookies) as c:
            return await c.request(method, path, headers=headers or {})

    return async_to_sync(send)()


def non_root_user():
    """Signed in to the main database, but a basic user: not staff, not root."""
    return User.objects.create_user(
        "basic@diquis.test", "Basic-User-Pass-1!", tenant_id=ROOT_TENANT_ID, roles=[Role.BASIC]
    )


RQ_DASHBOARD_PAGES = ["/rq/", "/rq/0/view/queues", "/rq/0/view/workers", "/rq/0/data/queues.json"]


@pytest.mark.parametrize("path", RQ_DASHBOARD_PAGES)
def test_rq_dashboard_sends_anonymous_visitors_to_the_admin_login(path):
    response = asgi_request("GET", path)
    assert response.status_code == 302
    assert response.headers["location"].startswith("/admin/login/?next=")
    assert httpx.URL(response.headers["location"]).params["next"] == path


@pytest.mark.parametrize("path", RQ_DASHBOARD_PAGES)
def test_rq_dashboard_refuses_signed_in_users_who_are_not_root(path):
    assert asgi_request("GET", path, user=non_root_user()).status_code == 403


def test_rq_dashboard_serves_root_its_pages_data_and_assets():
    root = make_root_user()
    django_rq.get_queue("default").enqueue_call("jobs.runner.run_job", args=("not-a-job",))
    page = asgi_request("GET", "/rq/", user=root)
    assert page.status_code == 200
    assert "<title>RQ dashboard</title>" in page.text
    assert 'src="/rq/static/' in page.text  # its URLs live under the mount
    queues = asgi_request("GET", "/rq/0/data/queues.json", user=root)
    assert queues.status_code == 200
    assert [(q["name"], q["count"]) for q in queues.json()["queues"]] == [("default", 1)]  # REDIS_URL's Redis
    asset = page.text.split('src="/rq/static/', 1)[1].split('"', 1)[0]
    assert asgi_request("GET", f"/rq/static/{asset}", user=root).status_code == 200


def test_rq_mount_point_redirects_to_its_index():
    response = asgi_request("GET", "/rq")
    assert (response.status_code, response.headers["location"]) == (301, "/rq/")  # Django's APPEND_SLASH


def test_rq_dashboard_refuses_state_changes_from_another_origin():
    root = make_root_user()
    path = "/rq/requeue/default"
    assert asgi_request("POST", path, user=root).status_code == 403
    assert asgi_request("POST", path, user=root, headers={"origin": "http://evil.example"}).status_code == 403
    assert asgi_request("GET", path, user=root).status_code == 405  # a link must not requeue anything
    same = asgi_request("POST", path, user=root, headers={"origin": f"http://{HOST}"})
    assert same.status_code == 200


def test_paths_that_merely_start_like_the_mount_are_not_the_dashboard():
    assert asgi_request("GET", "/rqx").status_code == 404


DJANGO_RQ_PAGES = [
    "/admin/rq/",
    "/admin/rq/queues/0/",
    "/admin/rq/workers/0/",
    "/admin/rq/stats.json",
    "/admin/rq/metrics",
    # django-rq's own admin entry: the same views, under the same rule (jobs.django_rq_pages)
    "/admin/django_rq/dashboard/",
    "/admin/django_rq/dashboard/workers/0/",
    "/admin/django_rq/dashboard/stats.json",
    "/admin/django_rq/dashboard/metrics",
]


@pytest.mark.parametrize("path", DJANGO_RQ_PAGES)
def test_django_rq_views_send_anonymous_visitors_to_the_admin_login(path):
    response = Client().get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=")


@pytest.mark.parametrize("path", DJANGO_RQ_PAGES)
def test_django_rq_views_refuse_signed_in_users_who_are_not_root(path):
    client = Client()
    client.force_login(non_root_user())
    assert client.get(path).status_code == 403


@pytest.mark.parametrize("path", DJANGO_RQ_PAGES)
def test_django_rq_views_serve_root(path):
    client = Client()
    client.force_login(make_root_user())
    assert client.get(path).status_code == 200
