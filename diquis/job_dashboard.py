"""rq-dashboard (a Flask app) mounted at /rq/ inside the one ASGI application, for root users only.

It is served by the same Daphne process as everything else (no second server, no second login):
asgiref's WsgiToAsgi runs the Flask app, and `RootOnly` in front of it reads the Django session from
the request's cookie, exactly as the admin does, before a single byte reaches Flask.
"""

from urllib.parse import urlsplit

from asgiref.wsgi import WsgiToAsgi
from channels.auth import AuthMiddlewareStack
from django.conf import settings
from django.http import HttpResponseForbidden, HttpResponseNotAllowed, HttpResponseRedirect
from django_rq.urls import get_admin_urlpatterns, get_api_urlpatterns
from rq.exceptions import NoSuchJobError
from rq_dashboard.cli import make_flask_app
from rq_dashboard.web import setup_rq_connection

from .access import is_root, refusal, root_required

MOUNT = settings.JOB_DASHBOARD_MOUNT
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# rq-dashboard also accepts GET for "requeue every failed job"; its own pages only ever POST there.
STATE_CHANGING_PREFIXES = ("/requeue/",)


def django_rq_urls():
    """django-rq's views (under /admin/rq/) behind the root rule. Its own checks would let any staff user in,
    and its stats/metrics views any holder of RQ_API_TOKEN: here every one of them is for root only."""
    patterns = get_api_urlpatterns() + get_admin_urlpatterns()
    for pattern in patterns:
        pattern.callback = root_required(pattern.callback)
    return patterns, "django_rq"


def flask_app():
    """rq-dashboard's own app factory, pointed at the project's Redis; its URLs are relative to the mount."""
    app = make_flask_app(config=None, username=None, password=None, url_prefix="")
    app.config["RQ_DASHBOARD_REDIS_URL"] = settings.REDIS_URL
    app.config["RQ_DASHBOARD_POLL_INTERVAL"] = 2500
    app.register_error_handler(NoSuchJobError, _forgotten_job)
    setup_rq_connection(app)
    return app


def _forgotten_job(error):
    """RQ drops a finished job from Redis once its result expires; the durable history outlives it."""
    return "This job is no longer in Redis. Its attempts are recorded in the admin (Jobs).", 404


def _header(scope, name):
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin1")
    return ""


def same_origin(scope):
    """For state-changing requests (requeue, delete, empty a queue): the browser must say it comes from
    this very host. The session cookie alone would let another site's form act as the signed-in root."""
    host = _header(scope, b"host")
    source = _header(scope, b"origin") or _header(scope, b"referer")
    return bool(host and source and urlsplit(source).netloc == host)


async def send_django_response(response, send):
    headers = [(k.encode("latin1"), v.encode("latin1")) for k, v in response.items()]
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": response.content})


class RootOnly:
    """Lets a request through to `app` only for a signed-in root user (diquis.access)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        user = scope.get("user")
        path = scope["path"] + (f"?{scope['query_string'].decode('latin1')}" if scope.get("query_string") else "")
        if not is_root(user):
            return await send_django_response(refusal(user, path), send)
        if scope["method"] in SAFE_METHODS and scope["path"].removeprefix(MOUNT).startswith(STATE_CHANGING_PREFIXES):
            return await send_django_response(HttpResponseNotAllowed(["POST"]), send)
        if scope["method"] not in SAFE_METHODS and not same_origin(scope):
            return await send_django_response(HttpResponseForbidden("Cross-origin request refused."), send)
        return await self.app(scope, receive, send)


class Mounted:
    """Serves `MOUNT/...` with the dashboard (the mount becomes its SCRIPT_NAME) and the rest with `other`."""

    def __init__(self, other):
        self.other = other
        self.dashboard = AuthMiddlewareStack(RootOnly(WsgiToAsgi(flask_app())))

    @staticmethod
    def matches(scope):
        path = scope.get("path", "")
        return scope["type"] == "http" and (path == MOUNT or path.startswith(MOUNT + "/"))

    async def __call__(self, scope, receive, send):
        if not self.matches(scope):
            return await self.other(scope, receive, send)
        if scope["path"] == MOUNT:  # Flask's index lives at "/": send /rq to /rq/
            return await send_django_response(HttpResponseRedirect(MOUNT + "/"), send)
        scope = dict(scope, root_path=scope.get("root_path", "") + MOUNT)
        return await self.dashboard(scope, receive, send)
