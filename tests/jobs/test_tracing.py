"""Where a job comes from, on its durable record: the request's id and W3C trace context, recorded at enqueue
(jobs.enqueue, jobs.tracing), so that every attempt joins the request's trace and carries its id. Spans read back
from the SDK's in-memory exporter, on a provider of the test's own (the process's global one stays unset)."""

import pytest
from django.db import transaction
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from jobs.context import bound, current_request_id
from jobs.enqueue import enqueue
from jobs.models import Job
from jobs.registry import durable_task
from jobs.tracing import joined

pytestmark = pytest.mark.django_db(transaction=True)


@durable_task()
def remembers_its_context(*, marker):
    return marker


@pytest.fixture
def tracer():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("test"), exporter
    provider.shutdown()


def test_a_job_records_the_request_and_the_trace_it_was_enqueued_in(tracer):
    test_tracer, exporter = tracer
    with bound(current_request_id, "req-7"), test_tracer.start_as_current_span("POST /api/tenants"):
        with transaction.atomic():
            job = enqueue(remembers_its_context, subject="origin", marker=1)
    (request_span,) = exporter.get_finished_spans()
    stored = Job.objects.get(pk=job.pk)
    assert stored.request_id == "req-7"
    assert trace.get_current_span(joined(stored.trace_context)).get_span_context().trace_id == (
        request_span.context.trace_id
    )


def test_outside_a_request_and_a_span_a_job_records_no_origin():
    with transaction.atomic():
        job = enqueue(remembers_its_context, subject="origin", marker=1)
    stored = Job.objects.get(pk=job.pk)
    assert (stored.request_id, stored.trace_context) == ("", {})
