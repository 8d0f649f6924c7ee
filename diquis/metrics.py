"""Prometheus metrics at /metrics, for a root session or the METRICS_TOKEN bearer token.

Each app states its own metrics (jobs.metrics, tenants.metrics, notifications.metrics); this module puts
them in one registry and serves it. Their values are read at scrape time from PostgreSQL and Redis, not
counted in memory (jobs.metrics says why); only the open websockets are counted, by the web process itself.
"""

import hmac

from django.conf import settings
from django.http import HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, ProcessCollector, generate_latest

from jobs.access import ROOT_ONLY, is_root
from jobs.metrics import JobCollector, QueueCollector
from notifications.metrics import NotificationCollector, websocket_connections
from tenants.metrics import TenantCollector

registry = CollectorRegistry()  # not auto-described: collecting reads the database, never at import
ProcessCollector(registry=registry)
for collector in (JobCollector(), TenantCollector(), NotificationCollector(), QueueCollector(), websocket_connections):
    registry.register(collector)


def _bearer_token_ok(request):
    expected = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if not expected or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header.removeprefix("Bearer ").strip().encode(), expected.encode())


def metrics_view(request):
    if not (_bearer_token_ok(request) or is_root(request.user)):
        if request.user.is_authenticated:
            return HttpResponse(ROOT_ONLY, status=403, content_type="text/plain")
        response = HttpResponse("Sign in as root or send the metrics bearer token.", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
