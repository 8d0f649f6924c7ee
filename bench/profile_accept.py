"""Where the time of one POST /api/tenants goes: the request path profiled in-process with pyinstrument.

Django's test client drives the same middleware, view, service and enqueue code as Daphne does (minus
the ASGI server), so the shares below explain the accept latency measured over HTTP.
"""

import time

from django.test import Client
from pyinstrument import Profiler

from . import fixtures

# Function names in the profile, and what they stand for.
PARTS = {
    "tenant lookup (TenantMiddleware → get_tenant)": "get_tenant",
    "JWT user lookup (authentication)": "get_user",
    "body validation (serializer, password validators)": "is_valid",
    "transaction: tenant + job rows, commit (services.create_tenant)": "create_tenant",
    "hand-over to Redis after commit (jobs.enqueue.hand_over)": "hand_over",
}


def _time_in(frame, function):
    """Total time of the outermost frames named `function` under `frame`."""
    if frame.function == function:
        return frame.time
    return sum(_time_in(child, function) for child in frame.children)


def profile(requests):
    client = Client(HTTP_AUTHORIZATION=fixtures.root_headers()["Authorization"], HTTP_HOST="localhost")
    for _ in range(10):
        client.post("/api/tenants", fixtures.tenant_body("prw", isolated=True), content_type="application/json")
    profiler = Profiler(interval=0.0005)
    started, cpu = time.perf_counter(), time.process_time()
    profiler.start()
    for _ in range(requests):
        client.post("/api/tenants", fixtures.tenant_body("prf", isolated=True), content_type="application/json")
    profiler.stop()
    wall, cpu = (time.perf_counter() - started) / requests, (time.process_time() - cpu) / requests
    root = profiler.last_session.root_frame()
    parts = {label: _time_in(root, function) / requests for label, function in PARTS.items()}
    return wall, cpu, parts
