"""The spans a live process exported with `OTEL_TRACES_EXPORTER=console`, read back from its output."""

import json

SPAN_START = "{"  # the console exporter writes each span as indented JSON, its first line a lone brace


def exported_spans(output):
    """Every span in `output` (a process's output, log lines between the spans), as the exporter's JSON."""
    decoder, spans = json.JSONDecoder(), []
    offset = 0
    for line in output.splitlines(keepends=True):
        if line.rstrip("\n") == SPAN_START:
            span, _end = decoder.raw_decode(output, offset)
            if "trace_id" in span.get("context", {}):
                spans.append(span)
        offset += len(line)
    return spans


def trace_id(span):
    return span["context"]["trace_id"]
