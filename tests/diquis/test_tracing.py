"""Tracing is set up by the standard OTEL_* variables alone (diquis.tracing), and off by default: a process
started without them sets up no SDK, instruments nothing and makes its spans with the API's no-op tracer."""

import json
import os
import subprocess
import sys

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from diquis.redaction import REDACTED
from diquis.tracing import OTLP_OVER_HTTP, exporter_names, redact_url_attributes
from tests.support.live import ROOT

PROBE = "probe:"  # what a probe's own line starts with (spans may be printed around it)
# Defined in every probe's process before the probe runs.
PRELUDE = f"""
import sys
PROBE = {PROBE!r}
def loaded_otel_modules():
    prefixes = ("opentelemetry.sdk", "opentelemetry.instrumentation", "opentelemetry.exporter")
    return sorted(name for name in sys.modules if name.startswith(prefixes))
"""

# Run in a fresh process, as the web and the worker start: django set up as manage.py and diquis.asgi do.
WHAT_IS_INSTRUMENTED = """
import json, os
import psycopg, redis
import diquis.asgi
from django.conf import settings
from opentelemetry import trace
from opentelemetry.instrumentation.django import DjangoInstrumentor
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
print(PROBE, json.dumps({
    "provider": type(trace.get_tracer_provider()).__name__,
    "middleware": [name for name in settings.MIDDLEWARE if "opentelemetry" in name],
    "instrumented": [type(i).__name__ for i in (DjangoInstrumentor(), PsycopgInstrumentor(), RedisInstrumentor())
                     if i.is_instrumented_by_opentelemetry],
    "psycopg.connect wrapped": hasattr(psycopg.connect, "__wrapped__"),
    "redis wrapped": hasattr(redis.Redis.execute_command, "__wrapped__"),
}))
"""


# What makes "off" free: the modules that make spans loaded (the web's and the worker's), one span made by each
# of the project's tracers, and no tracing SDK, instrumentation or exporter imported, not even by the probe.
# redis-py (8.x) imports the SDK's metrics module itself when it is installed, for its own observability, which
# stays unset until the application calls it: those modules are the ones a bare `import redis` loads.
LOADED_BY_REDIS = """
import json, redis
print(PROBE, json.dumps(loaded_otel_modules()))
"""
WHAT_IS_LOADED = """
import json
import diquis.asgi
import jobs.runner, jobs.recovery, notifications.consumers, notifications.services
from django.conf import settings
from opentelemetry.trace import NonRecordingSpan
from jobs.tracing import current_trace_context, tracer as jobs_tracer
from notifications.services import tracer as notifications_tracer
spans = []
for tracer in (jobs_tracer, notifications_tracer):
    with tracer.start_as_current_span("probe") as span:
        spans.append({"recording": span.is_recording(), "no-op": isinstance(span, NonRecordingSpan),
                      "context stored": current_trace_context()})
print(PROBE, json.dumps({
    "tracers": sorted({type(t).__name__ for t in (jobs_tracer, notifications_tracer)}),
    "spans": spans,
    "middleware": settings.MIDDLEWARE,
    "loaded": loaded_otel_modules(),
}))
"""


def probe_in_a_new_process(probe, **otel):
    env = {name: value for name, value in os.environ.items() if not name.startswith("OTEL_")}
    completed = subprocess.run(
        [sys.executable, "-c", PRELUDE + probe],
        cwd=ROOT,
        env={**env, **otel},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    (found,) = [line for line in completed.stdout.splitlines() if line.startswith(f"{PROBE} ")]
    return json.loads(found.removeprefix(f"{PROBE} "))


def instrumented_in_a_new_process(**otel):
    return probe_in_a_new_process(WHAT_IS_INSTRUMENTED, **otel)


def test_without_otel_variables_nothing_is_instrumented():
    assert instrumented_in_a_new_process() == {
        "provider": "ProxyTracerProvider",
        "middleware": [],
        "instrumented": [],
        "psycopg.connect wrapped": False,
        "redis wrapped": False,
    }


def test_without_otel_variables_no_sdk_is_loaded_and_every_span_is_the_apis_no_op():
    off = probe_in_a_new_process(WHAT_IS_LOADED)
    assert not any(name.startswith("opentelemetry.sdk.trace") for name in off["loaded"])
    assert off["loaded"] == probe_in_a_new_process(LOADED_BY_REDIS)  # nothing of the project's own
    assert off["spans"] == [{"recording": False, "no-op": True, "context stored": {}}] * 2
    assert off["tracers"] == ["ProxyTracer"]  # the API's: it hands out no-op spans while no SDK is set
    on = probe_in_a_new_process(WHAT_IS_LOADED, OTEL_TRACES_EXPORTER="console")
    assert [name for name in on["middleware"] if name not in off["middleware"]] == [
        "opentelemetry.instrumentation.django.middleware.otel_middleware._DjangoMiddleware"
    ]
    assert on["middleware"][1:] == off["middleware"]  # off, the list is settings.py's own
    assert on["loaded"] and all(span["recording"] for span in on["spans"])


def test_an_exporter_named_sets_up_the_sdk_and_the_three_instrumentations():
    found = instrumented_in_a_new_process(OTEL_TRACES_EXPORTER="console")
    assert found["provider"] == "TracerProvider" and len(found["middleware"]) == 1
    assert found["instrumented"] == ["DjangoInstrumentor", "PsycopgInstrumentor", "RedisInstrumentor"]
    assert found["psycopg.connect wrapped"] and found["redis wrapped"]


@pytest.mark.parametrize(
    ("environ", "names"),
    [
        ({}, []),
        ({"OTEL_SERVICE_NAME": "diquis"}, []),
        ({"OTEL_TRACES_EXPORTER": "none"}, []),
        ({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}, []),
        ({"OTEL_TRACES_EXPORTER": "otlp,console"}, [OTLP_OVER_HTTP, "console"]),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, [OTLP_OVER_HTTP]),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, [OTLP_OVER_HTTP]),
    ],
)
def test_tracing_is_on_only_when_an_exporter_or_an_endpoint_is_given(environ, names):
    assert exporter_names(environ) == names


def test_a_request_span_keeps_no_token_of_its_url():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    secret = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    attributes = {"http.target": f"/api/tokens/{secret}", "http.url": f"http://h/hubs/n?access_token={secret}"}
    with provider.get_tracer("test").start_as_current_span("GET", attributes=attributes) as span:
        redact_url_attributes(span, None)
    (exported,) = exporter.get_finished_spans()
    assert secret not in json.dumps(dict(exported.attributes))
    assert exported.attributes["http.target"] == f"/api/tokens/{REDACTED}"
    provider.shutdown()
