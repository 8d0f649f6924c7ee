"""1. Accept latency: POST /api/tenants -> 202, against the same creation done inside the request.

No worker runs during this section: it measures the request path alone (validate, encrypt the
password, insert the tenant and its durable job, commit, push to Redis). The queued jobs are thrown
away afterwards. The synchronous baseline (bench.sync_baseline) creates, migrates and seeds a real
database per request.
"""

import asyncio

from . import fixtures, profile_accept
from .clients import closed_loop
from .report import Section
from .stack import Web
from .stats import Summary, fmt_ratio, ms, ratio, triple

TARGET_P50 = 0.015
TARGET_P99 = 0.050
TARGET_SPEEDUP = 40
PROFILED_REQUESTS = 100


def closed_loop_rounds(web, path, bodies_per_round, *, concurrency, rounds, expect, kind, isolated, headers=None):
    """`rounds` closed loops of fresh tenant bodies against `web`: (latencies pooled, req/s per round, statuses).
    The requests carry the root's token of this run's database unless `headers` are given."""
    headers = headers or fixtures.root_headers()
    latencies, rates, statuses = [], [], {}
    for _ in range(rounds):
        bodies = [fixtures.tenant_body(kind, isolated=isolated) for _ in range(bodies_per_round)]
        result = asyncio.run(
            closed_loop(web.url, path, bodies, concurrency=concurrency, headers=headers, expect=expect)
        )
        latencies += result.latencies
        rates.append(result.rate)
        for status, count in result.statuses.items():
            statuses[status] = statuses.get(status, 0) + count
    return latencies, rates, statuses


def run(ctx):
    mode = ctx.mode
    section = Section("1. Accept latency: 202 at once vs creating the tenant inside the request")
    fixtures.reset()
    web = Web(ctx.sandbox, name="web-accept")
    try:
        # Warm-up: the first requests of a process load code and the password validators' word list.
        closed_loop_rounds(web, "/api/tenants", 20, concurrency=4, rounds=1, expect=202, kind="warm", isolated=True)
        rows, by_concurrency = [], {}
        for concurrency in mode.accept_concurrency:
            asynchronous = closed_loop_rounds(
                web,
                "/api/tenants",
                mode.accept_requests(concurrency),
                concurrency=concurrency,
                rounds=mode.accept_rounds,
                expect=202,
                kind="acc",
                isolated=True,
            )
            synchronous = None
            if concurrency in mode.sync_concurrency:
                synchronous = closed_loop_rounds(
                    web,
                    "/bench/sync-tenants",
                    mode.sync_requests(concurrency),
                    concurrency=concurrency,
                    rounds=1,
                    expect=200,
                    kind="sync",
                    isolated=True,
                )
                fixtures.drop_tenant_databases()
            by_concurrency[concurrency] = (asynchronous, synchronous)
            for label, measured in (("202 (job)", asynchronous), ("200 (synchronous)", synchronous)):
                if measured is None:
                    rows.append([concurrency, label, "not run (see below)", "", "", ""])
                    continue
                latencies, rates, statuses = measured
                s = Summary.of(latencies)
                rows.append(
                    [
                        concurrency,
                        label,
                        triple(rates, "{:.1f}"),
                        f"{ms(s.min)} / {ms(s.median)} / {ms(s.p99)}",
                        s.count,
                        ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items(), key=str)),
                    ]
                )
    finally:
        web.stop()
        fixtures.reset()
    section.add(
        f"Closed loop: each of N clients sends its next POST as soon as the previous answer arrives "
        f"({mode.accept_rounds} round(s) per row for the 202 path, 1 for the synchronous one; latencies of "
        "all rounds pooled). Isolated tenants in both rows. One Daphne process; the clients share its 2 cores.",
        "",
    )
    section.table(
        ["clients", "path", "req/s min / median / max", "latency ms min / p50 / p99", "answers", "statuses"], rows
    )
    ratio_rows = []
    for concurrency, (asynchronous, synchronous) in by_concurrency.items():
        a = Summary.of(asynchronous[0])
        if synchronous is None:
            continue
        s = Summary.of(synchronous[0])
        ratio_rows.append(
            [
                concurrency,
                fmt_ratio(ratio(s.median, a.median)),
                fmt_ratio(ratio(s.p99, a.p99)),
                fmt_ratio(ratio(Summary.of(asynchronous[1]).median, Summary.of(synchronous[1]).median)),
            ]
        )
    section.add("Ratios, measured in the same run (synchronous / job):", "")
    section.table(["clients", "p50 latency", "p99 latency", "throughput (job / synchronous)"], ratio_rows)
    if 16 in by_concurrency:
        a = Summary.of(by_concurrency[16][0][0])
        section.target("accept p50 ≤ 15 ms at 16 clients", f"{ms(a.median)} ms", a.median <= TARGET_P50)
        section.target("accept p99 ≤ 50 ms at 16 clients", f"{ms(a.p99)} ms", a.p99 <= TARGET_P99)
    speedups = [ratio(Summary.of(s[0]).median, Summary.of(a[0]).median) for a, s in by_concurrency.values() if s]
    if speedups:
        worst = min(speedups)
        section.target(
            "≥ 40× faster than synchronous (p50, every client count)", fmt_ratio(worst), worst >= TARGET_SPEEDUP
        )
    profiled = PROFILED_REQUESTS if not mode.quick else 30
    wall, cpu, parts = profile_accept.profile(profiled)
    fixtures.reset()
    section.add(
        f"Where the time goes (pyinstrument, {profiled} requests in-process through Django's test client, "
        f"no ASGI server): {ms(wall)} ms wall per request, of which {ms(cpu)} ms CPU in the Django process; the "
        "rest is waiting for PostgreSQL (two commits, each an fsync) and Redis.",
        "",
    )
    section.table(["part", "ms per request", "share"], [[k, ms(v), f"{v / wall:.0%}"] for k, v in parts.items()])
    ctx.results["accept"] = by_concurrency
    ctx.results["accept_profile"] = (wall, cpu, parts)
    return section
