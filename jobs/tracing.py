"""The trace a job joins: the W3C trace context of the code that enqueued it, kept on the durable record.

RQ has no OpenTelemetry instrumentation, and its job meta lives in Redis only: a job re-run by the recovery sweep
has a new carrier. The context is stored on the Job row instead (`trace_context`), so every attempt of the job, and
every job it enqueues in turn, joins the trace of the request that started it. Written on the OpenTelemetry API
alone: with tracing off (diquis.tracing) its tracer is the API's no-op one and the context stored is empty.
"""

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind

tracer = trace.get_tracer("diquis.jobs")


def current_trace_context():
    """The current span's context as W3C headers (`traceparent`, `tracestate`): empty outside any span."""
    carrier = {}
    propagate.inject(carrier)
    return carrier


def joined(trace_context):
    """The OpenTelemetry context a span starts in to join `trace_context` (headers from current_trace_context)."""
    return propagate.extract(trace_context or {})


def job_span(name, job, attempt, *, kind=SpanKind.INTERNAL):
    """A span `name` about one attempt of `job`, in the trace the job joins: the attempt itself (the runner) or
    its abandonment (the recovery sweep, whose final failure notifies from inside it)."""
    return tracer.start_as_current_span(
        name,
        context=joined(job.trace_context),
        kind=kind,
        attributes={
            "diquis.job.id": str(job.pk),
            "diquis.job.subject": job.subject,
            "diquis.job.attempt": attempt.number,
        },
    )


def flush():
    """Export the spans ended so far. An RQ work-horse leaves with os._exit, which runs no exit handler: without
    this, a batch still waiting in its span processor would be lost with it."""
    provider = trace.get_tracer_provider()
    if hasattr(provider, "force_flush"):
        provider.force_flush()
