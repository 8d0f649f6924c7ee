"""Tracing is set up by the standard OTEL_* variables alone (diquis.tracing), and off by default: a process
started without them has no SDK and nothing instrumented."""

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
print(json.dumps({
    "provider": type(trace.get_tracer_provider()).__name__,
    "middleware": [name for name in settings.MIDDLEWARE if "opentelemetry" in name],
    "instrumented": [type(i).__name__ for i in (DjangoInstrumentor(), PsycopgInstrumentor(), RedisInstrumentor())
                     if i.is_instrumented_by_opentelemetry],
    "psycopg.connect wrapped": hasattr(psycopg.connect, "__wrapped__"),
    "redis wrapped": hasattr(redis.Redis.execute_command, "__wrapped__"),
}))
"""


def instrumented_in_a_new_process(**otel):
    env = {name: value for name, value in os.environ.items() if not name.startswith("OTEL_")}
    completed = subprocess.run(
        [sys.executable, "-c", WHAT_IS_INSTRUMENTED],
        cwd=ROOT,
        env={**env, **otel},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(completed.stdout.splitlines()[-1])


def test_without_otel_variables_nothing_is_instrumented():
    assert instrumented_in_a_new_process() == {
        "provider": "ProxyTracerProvider",
        "middleware": [],
        "instrumented": [],
        "psycopg.connect wrapped": False,
        "redis wrapped": False,
    }


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
