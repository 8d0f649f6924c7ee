"""10. Several web processes: the accept path (POST /api/tenants -> 202) with 1 and 2 Daphne processes on one port.

Both counts run the production way, supervisord with deploy/supervisord.conf (WEB_CONCURRENCY), so the only
difference between the rows is the number of processes; the counts alternate round after round so that the
machine's noise falls on both. As in section 1, no worker runs: the queued jobs are thrown away.
"""

from . import accept, fixtures
from .report import Section
from .stack import start_web_processes_for
from .stats import Summary, fmt_ratio, ratio, triple, triple_ms

TARGET_SPEEDUP = 1.6


def _one_round(ctx, count, measured):
    mode = ctx.mode
    web = start_web_processes_for(ctx.sandbox, count)
    try:
        # Warm-up: every process loads its code and the password validators' word list on its first requests.
        accept.closed_loop_rounds(
            web, "/api/tenants", 20 * count, concurrency=4 * count, rounds=1, expect=202, kind="wwarm", isolated=True
        )
        for clients in mode.web_clients:
            latencies, rates, statuses = accept.closed_loop_rounds(
                web,
                "/api/tenants",
                clients * mode.web_requests_per_client,
                concurrency=clients,
                rounds=1,
                expect=202,
                kind="wp",
                isolated=True,
            )
            cell = measured[count, clients]
            cell["latencies"] += latencies
            cell["rates"] += rates
            for status, answers in statuses.items():
                cell["statuses"][status] = cell["statuses"].get(status, 0) + answers
    finally:
        web.stop_all()
        fixtures.reset()


def run(ctx):
    mode = ctx.mode
    section = Section("10. Several web processes: accept throughput with 1 and 2 Daphne processes on one port")
    fixtures.reset()
    measured = {
        (count, clients): {"latencies": [], "rates": [], "statuses": {}}
        for count in mode.web_process_counts
        for clients in mode.web_clients
    }
    for _ in range(mode.web_rounds):
        for count in mode.web_process_counts:
            _one_round(ctx, count, measured)
    section.add(
        "Closed loop as in section 1 (isolated tenants, POST /api/tenants → 202, no worker running), against "
        "`supervisord -c deploy/supervisord.conf` with `WEB_CONCURRENCY` Daphne processes sharing one socket "
        f"(`daphne --fd 0`). {mode.web_rounds} round(s), the process counts alternating; "
        f"{mode.web_requests_per_client} requests per client and round; latencies of all rounds pooled. The "
        "clients, PostgreSQL and Redis share the same 2 cores.",
        "",
    )
    rows = []
    for (count, clients), cell in measured.items():
        s = Summary.of(cell["latencies"])
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(cell["statuses"].items(), key=str))
        rows.append([count, clients, triple(cell["rates"], "{:.1f}"), triple_ms(s), s.count, statuses])
    section.table(
        ["processes", "clients", "req/s min / median / max", "latency ms min / p50 / p99", "answers", "statuses"],
        rows,
    )
    one, many = mode.web_process_counts[0], mode.web_process_counts[-1]
    ratio_rows, speedups = [], []
    for clients in mode.web_clients:
        a, b = measured[one, clients], measured[many, clients]
        speedup = ratio(Summary.of(b["rates"]).median, Summary.of(a["rates"]).median)
        speedups.append(speedup)
        p50 = ratio(Summary.of(a["latencies"]).median, Summary.of(b["latencies"]).median)
        p99 = ratio(Summary.of(a["latencies"]).p99, Summary.of(b["latencies"]).p99)
        ratio_rows.append([clients, fmt_ratio(speedup), fmt_ratio(p50), fmt_ratio(p99)])
    section.add(f"Ratios, measured in the same run ({many} processes against {one}; above 1× is better):", "")
    section.table(
        ["clients", f"throughput ({many} / {one})", f"p50 latency ({one} / {many})", f"p99 latency ({one} / {many})"],
        ratio_rows,
    )
    worst = min(speedups)
    section.target(
        f"≥ {TARGET_SPEEDUP}× accept throughput with {many} web processes (every client count)",
        fmt_ratio(worst),
        worst >= TARGET_SPEEDUP,
    )
    ctx.results["web_processes"] = measured
    return section
