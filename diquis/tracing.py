"""OpenTelemetry tracing, set up by the standard `OTEL_*` variables alone, in the web and the worker alike.

Off unless an exporter is named (`OTEL_TRACES_EXPORTER`, other than `none`) or an OTLP endpoint is given
(`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), and always off with `OTEL_SDK_DISABLED=true`.
Off means off: no SDK, nothing instrumented; the project's own spans (jobs.tracing) then go to the API's no-op
tracer. The specification's default exporter is OTLP; ours is none, so that a machine without a collector exports
nothing and pays nothing.

On, the SDK is set up as its own auto-configuration would (`opentelemetry-instrument`): the resource from
`OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`, the sampler from `OTEL_TRACES_SAMPLER`, the batch from
`OTEL_BSP_*`, the exporter by its entry-point name with its own variables (`OTEL_EXPORTER_OTLP_*`). That
auto-configuration is the SDK's private module, hence these few lines on its public classes. The one OTLP exporter
installed speaks HTTP/protobuf (the specification's default protocol): `otlp` names it.

Django, psycopg and redis are instrumented by their OpenTelemetry instrumentations. The Django spans' URL
attributes are redacted like the log lines (diquis.redaction): a refresh token travels in a path.
"""

import os
from importlib.metadata import entry_points

from opentelemetry import trace

from .redaction import redact

EXPORTER_GROUP = "opentelemetry_traces_exporter"
OTLP_OVER_HTTP = "otlp_proto_http"
_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def exporter_names(environ=os.environ):
    """The exporters the environment asks for; none when tracing is off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    named = [name.strip() for name in environ.get("OTEL_TRACES_EXPORTER", "").split(",") if name.strip()]
    if not named and any(environ.get(variable) for variable in _ENDPOINTS):
        named = ["otlp"]
    return [OTLP_OVER_HTTP if name == "otlp" else name for name in named if name != "none"]


def _exporter(name):
    (entry_point,) = entry_points(group=EXPORTER_GROUP, name=name) or [None]
    if entry_point is None:
        known = sorted(point.name for point in entry_points(group=EXPORTER_GROUP))
        raise ValueError(f"OTEL_TRACES_EXPORTER: no exporter named {name!r} (installed: {', '.join(known)}, otlp)")
    return entry_point.load()()


def set_up_tracing(environ=os.environ):
    """Set up the SDK and the instrumentations when the environment asks for tracing; return whether it did.
    Called once per process, before Django loads its middleware (manage.py, diquis.asgi)."""
    names = exporter_names(environ)
    if not names:
        return False
    # Imported here, not at the top: with tracing off, the tracing SDK and the instrumentations are not even
    # loaded (redis-py imports the SDK's metrics module on its own, for an observability it leaves unset).
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create())
    for name in names:
        provider.add_span_processor(BatchSpanProcessor(_exporter(name)))
    trace.set_tracer_provider(provider)
    DjangoInstrumentor().instrument(request_hook=redact_url_attributes)
    PsycopgInstrumentor().instrument()
    RedisInstrumentor().instrument()
    return True


def redact_url_attributes(span, request):
    """The Django instrumentation's request hook: its attributes (path, URL, query) without secrets."""
    for key, value in dict(span.attributes or {}).items():
        if isinstance(value, str) and (redacted := redact(value)) != value:
            span.set_attribute(key, redacted)
