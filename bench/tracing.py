"""11. Tracing: the accept path (POST /api/tenants -> 202) with tracing off, as by default, against tracing on.

"Off" is a Daphne started without any OTEL_* variable: no SDK, nothing instrumented (diquis.tracing). "On" is the
same Daphne with the console exporter (`OTEL_TRACES_EXPORTER=console`): every span of the request (Django's, each
psycopg query, each Redis command) is made, batched and written as JSON to the process's log file, a cost at least
that of an OTLP export, with no collector needed beside the bench. No worker runs (as in section 1); the variants
alternate round after round so that the machine's noise hits both alike.
"""

import os

from . import accept, fixtures
from .report import Section
from .stack import Web
from .stats import Summary, fmt_ratio, ms, ratio

OFF, ON = "tracing off (no OTEL_*)", "tracing on (console exporter)"
VARIANTS = {OFF: {}, ON: {"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "diquis-bench"}}


def _one_variant(ctx, env, measured):
    mode = ctx.mode
    web = Web(ctx.sandbox, name="web-tracing", env=env)
    try:
        accept.closed_loop_rounds(
            web, "/api/tenants", 20, concurrency=4, rounds=1, expect=202, kind="warm", isolated=True
        )
        for concurrency in mode.tracing_concurrency:
            latencies, rates, _ = accept.closed_loop_rounds(
                web,
                "/api/tenants",
                mode.tracing_requests,
                concurrency=concurrency,
                rounds=1,
                expect=202,
                kind="trc",
                isolated=True,
            )
            measured["latency"][concurrency] += latencies
            measured["rate"][concurrency] += rates
    finally:
        ctx.sandbox.stop_processes()
        fixtures.reset()


def _rows(measured, concurrencies):
    rows = []
    for clients in concurrencies:
        latency = {label: Summary.of(measured[label]["latency"][clients]) for label in VARIANTS}
        rate = {label: Summary.of(measured[label]["rate"][clients]).median for label in VARIANTS}
        rows.append(
            [
                f"{clients} client(s): latency ms p50 / p99",
                *[f"{ms(s.median)} / {ms(s.p99)}" for s in latency.values()],
                f"{fmt_ratio(ratio(latency[ON].median, latency[OFF].median))} / "
                f"{fmt_ratio(ratio(latency[ON].p99, latency[OFF].p99))}",
            ]
        )
        rows.append(
            [
                f"{clients} client(s): 202s per second (median of the rounds)",
                *[f"{value:.1f}" for value in rate.values()],
                fmt_ratio(ratio(rate[OFF], rate[ON])),
            ]
        )
    return rows


def run(ctx):
    inherited = sorted(name for name in os.environ if name.startswith("OTEL_"))
    if inherited:
        raise RuntimeError(f"the 'off' variant needs an environment without OTEL_* (found {', '.join(inherited)})")
    mode = ctx.mode
    section = Section("11. Tracing: the accept path with tracing off and on")
    fixtures.reset()
    concurrencies = mode.tracing_concurrency
    measured = {
        label: {"latency": {c: [] for c in concurrencies}, "rate": {c: [] for c in concurrencies}} for label in VARIANTS
    }
    for _ in range(mode.tracing_rounds):
        for label, env in VARIANTS.items():
            _one_variant(ctx, env, measured[label])
    section.add(
        f"{mode.tracing_rounds} round(s); in each, one Daphne per variant, the variants one after the other, "
        f"{mode.tracing_requests} isolated-tenant POSTs per client count (closed loop, as in section 1, no worker). "
        "The last column is on over off (latency; throughput: off over on).",
        "",
    )
    section.table(["figure", OFF, ON, "on / off"], _rows(measured, concurrencies))
    ctx.results["tracing"] = {"measured": measured}
    return section
