"""rq-dashboard (a Flask app) served at /rq/ by the project's own Django, for root users only.

It is served by the same Daphne process as everything else (no second server, no second login): a Django
view checks the root rule on the request's session, exactly as the admin does, then calls the Flask WSGI
app in the view's own thread. (Mounting it with asgiref's WsgiToAsgi instead made requests on a kept-alive
connection fail now and then: WsgiToAsgi sends from its worker thread through async_to_sync, and the
executor that leaves behind broke the connection's next request with "CurrentThreadExecutor already quit".)
"""

import functools
import io
import posixpath
import re
import sys
from urllib.parse import urlsplit

from csp.decorators import csp_update
from django.conf import settings
from django.http import HttpResponse, HttpResponseForbidden, HttpResponseNotAllowed
from django.views.decorators.csrf import csrf_exempt
from rq.exceptions import NoSuchJobError
from rq_dashboard.cli import make_flask_app
from rq_dashboard.web import setup_rq_connection
from werkzeug.exceptions import HTTPException

from . import dashboard_job_data
from .access import is_root, refusal

MOUNT = settings.JOB_DASHBOARD_MOUNT
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def flask_app():
    """rq-dashboard's own app factory, pointed at the project's Redis; its URLs are relative to the mount."""
    app = make_flask_app(config=None, username=None, password=None, url_prefix="")
    app.config["RQ_DASHBOARD_REDIS_URL"] = settings.REDIS_URL
    app.config["RQ_DASHBOARD_POLL_INTERVAL"] = 2500
    app.register_error_handler(NoSuchJobError, _forgotten_job)
    dashboard_job_data.install(app)
    setup_rq_connection(app)
    return app


def _forgotten_job(error):
    """RQ drops a finished job from Redis once its result expires; the durable history outlives it."""
    return "This job is no longer in Redis. Its attempts are recorded in the admin (Jobs).", 404


def same_origin(request):
    """For state-changing requests (requeue, delete, empty a queue): the browser must say it comes from
    this very host. The session cookie alone would let another site's form act as the signed-in root."""
    host = request.META.get("HTTP_HOST", "")
    source = request.META.get("HTTP_ORIGIN") or request.META.get("HTTP_REFERER") or ""
    return bool(host and source and urlsplit(source).netloc == host)


@functools.cache
def dashboard_app():
    return flask_app()


def normalised(path):
    """The dashboard path as one canonical string: no repeated slashes (Django has decoded `%2F` into one
    already), no `.` or `..` segments, a trailing slash kept. The app is handed this path, so the path that
    is checked is the path that is routed."""
    collapsed = re.sub(r"/+", "/", "/" + path)
    canonical = posixpath.normpath(collapsed)
    if collapsed.endswith("/") and canonical != "/":
        canonical += "/"
    return canonical


def changes_state_on_get(app, path_info):
    """Would a GET of this path run a view that also takes POST? rq-dashboard accepts GET for "requeue
    every failed job", which its own pages only ever POST: asked of its router, not of a list of prefixes."""
    try:
        rule, _ = app.url_map.bind("dashboard").match(path_info, method="GET", return_rule=True)
    except HTTPException:  # not found, not allowed, or a redirect: nothing runs
        return False
    return "POST" in rule.methods


def call_wsgi(app, request, path_info):
    """Run a WSGI app for this Django request (mounted at MOUNT) and return its answer as a Django response."""
    body = request.body
    environ = {key: value for key, value in request.META.items() if isinstance(value, str)}
    environ.update(
        {
            "SCRIPT_NAME": MOUNT,
            "PATH_INFO": path_info,
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": request.scheme,
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
    )
    started, chunks = {}, []

    def start_response(status, headers, exc_info=None):
        started["status"], started["headers"] = int(status.split(" ", 1)[0]), headers
        return chunks.append

    result = app(environ, start_response)
    try:
        chunks.extend(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    response = HttpResponse(b"".join(chunks), status=started["status"])
    for name, value in started["headers"]:
        response[name] = value
    return response


# rq-dashboard's pages run an inline script (its per-request set-up), compile their row templates with
# underscore's _.template (new Function) and put style attributes in their markup: its own code, which the
# project's policy would block. The exception is for its pages only, which only a signed-in root sees.
DASHBOARD_CSP = {"script-src": ["'unsafe-inline'", "'unsafe-eval'"], "style-src": ["'unsafe-inline'"]}


@csp_update(DASHBOARD_CSP)
def serve_dashboard(request, app, path_info):
    return call_wsgi(app, request, path_info)


@csrf_exempt  # rq-dashboard's pages post without Django's token; same_origin() guards them instead
def dashboard_view(request, path=""):
    if not is_root(request.user):
        return refusal(request.user, request.get_full_path())
    app, path_info = dashboard_app(), normalised(path)
    if request.method in SAFE_METHODS and changes_state_on_get(app, path_info):
        return HttpResponseNotAllowed(["POST"])
    if request.method not in SAFE_METHODS and not same_origin(request):
        return HttpResponseForbidden("Cross-origin request refused.")
    return serve_dashboard(request, app, path_info)
