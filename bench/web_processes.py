"""10. Several web processes: the accept path (POST /api/tenants -> 202) with 1 and 2 Daphne processes on one port.

Both counts run the production way, supervisord with deploy/supervisord.conf (WEB_CONCURRENCY), so the only
difference between the rows is the number of processes; the counts alternate round after round so that the
machine's noise falls on both. As in section 1, no worker runs: the queued jobs are thrown away.

The clients, PostgreSQL and Redis share the cores with the web processes; the CPU each of them spends per accepted
request (bench.cpu_budget) gives the most the machine could accept, so a shortfall can be told from the ceiling.
"""

import os

from . import accept, fixtures
from .cpu_budget import STACK, CpuBudget, parallel_speedup, stack_meters
from .report import Section
from .stack import start_web_processes_for
from .stats import Summary, fmt_ratio, ms, ratio, triple, triple_ms

TARGET_SPEEDUP = 1.6
CPU_HEADERS = {"web": "web", "postgresql": "PostgreSQL", "redis": "Redis", "clients": "clients"}


def _add(total, seconds):
    """A running sum of CPU seconds that stays None once a part could not be measured."""
    return None if total is None or seconds is None else total + seconds


def _one_round(ctx, count, measured):
    mode = ctx.mode
    web = start_web_processes_for(ctx.sandbox, count)
    try:
        # Warm-up: every process loads its code and the password validators' word list on its first requests.
        accept.closed_loop_rounds(
            web, "/api/tenants", 20 * count, concurrency=4 * count, rounds=1, expect=202, kind="wwarm", isolated=True
        )
        for clients in mode.web_clients:
            with CpuBudget(stack_meters(web.pid)) as budget:
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
            for part, seconds in budget.seconds.items():
                cell["cpu"][part] = _add(cell["cpu"].get(part, 0.0), seconds)
            cell["latencies"] += latencies
            cell["rates"] += rates
            for status, answers in statuses.items():
                cell["statuses"][status] = cell["statuses"].get(status, 0) + answers
    finally:
        web.stop_all()
        fixtures.reset()


def _cpu_row(count, clients, cell, cores):
    """One cell's CPU per accepted request by part, their sum, the rest of the machine, and the ceiling."""
    accepted = cell["statuses"].get(202, 0)
    per_request = {
        part: None if seconds is None or not accepted else seconds / accepted for part, seconds in cell["cpu"].items()
    }
    parts = [per_request[part] for part in STACK]
    total = _total(cell)
    rest = None if total is None or per_request["machine"] is None else per_request["machine"] - total
    ceiling = f"{cores / total:.0f}" if total else "–"
    busy = _busy_cores(cell)
    return [
        count,
        clients,
        *(ms(v) for v in parts),
        ms(total),
        ms(rest),
        ceiling,
        f"{Summary.of(cell['rates']).median:.1f}",
        "–" if busy is None else f"{busy:.2f}",
    ]


def _busy_cores(cell):
    """Cores' worth of CPU the stack kept busy in a cell: CPU seconds per request × requests a second (median),
    or None."""
    total = _total(cell)
    return None if total is None else total * Summary.of(cell["rates"]).median


def _total(cell):
    """The stack's CPU seconds per accepted request (web, PostgreSQL, Redis, clients), or None."""
    accepted = cell["statuses"].get(202, 0)
    parts = [cell["cpu"].get(part) for part in STACK]
    return None if None in parts or not accepted else sum(parts) / accepted


def _cpu_table(section, measured):
    cores = os.cpu_count()
    section.add(
        "Where the CPU goes, over the same measured requests (not the warm-up): user + system time of the web "
        "processes (supervisord and its Daphne processes, /proc), of PostgreSQL (the postmaster, the server's own "
        "processes and the backends of the bench's databases, /proc), of Redis (its `INFO cpu`) and of the bench "
        "process, whose asyncio clients send the requests (getrusage), divided by the accepted requests. If every "
        f"request costs the machine *sum* ms of CPU, its {cores} cores cannot accept more than {cores} × 1000 / "
        "*sum* requests a second, whatever the number of web processes: a measured req/s near that ceiling "
        "says the machine is the limit. *Rest of the machine* is what every other process used meanwhile, per "
        "request (other runs share the machine; Redis serves their databases too, so its figure may hold some of "
        "their work).",
        "",
    )
    rows = [_cpu_row(count, clients, cell, cores) for (count, clients), cell in measured.items()]
    section.table(
        [
            "processes",
            "clients",
            *(f"{CPU_HEADERS[part]} CPU ms / request" for part in STACK),
            "sum",
            "rest of the machine",
            f"ceiling req/s ({cores} × 1000 / sum)",
            "measured req/s (median)",
            "cores busy (sum × req/s)",
        ],
        rows,
    )


def _within_reach(section, measured, one, client_counts):
    """The most any number of processes could add to one here: the machine's cores over the cores the stack
    keeps busy with one process (its threads release the interpreter lock while they wait on PostgreSQL and
    Redis and in C code, so one process may keep more than one core busy), the CPU per request staying what it
    is (the table above shows it does). Says so in the section; returns the smallest over the client counts."""
    cores = os.cpu_count()
    busy = [b for b in (_busy_cores(measured[one, c]) for c in client_counts) if b is not None]
    if not busy:
        return None
    most = cores / max(busy)
    section.add(
        f"With {one} process the stack keeps {' / '.join(f'{b:.2f}' for b in busy)} of the {cores} cores busy "
        f"({' / '.join(str(c) for c in client_counts)} clients): more processes can add at most {most:.2f}× "
        "to its throughput here, whatever they do.",
        "",
    )
    return most


def run(ctx):
    mode = ctx.mode
    section = Section("10. Several web processes: accept throughput with 1 and 2 Daphne processes on one port")
    fixtures.reset()
    measured = {
        (count, clients): {"latencies": [], "rates": [], "statuses": {}, "cpu": {}}
        for count in mode.web_process_counts
        for clients in mode.web_clients
    }
    one, many = mode.web_process_counts[0], mode.web_process_counts[-1]
    machine = parallel_speedup(many)  # against one process: web_process_counts starts at 1
    for _ in range(mode.web_rounds):
        for count in mode.web_process_counts:
            _one_round(ctx, count, measured)
    section.add(
        "Closed loop as in section 1 (isolated tenants, POST /api/tenants → 202, no worker running), against "
        "`supervisord -c deploy/supervisord.conf` with `WEB_CONCURRENCY` Daphne processes on one port, each with "
        f"a listening socket of its own (`diquis.reuse_port`). {mode.web_rounds} round(s), the process counts "
        "alternating; "
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
    _cpu_table(section, measured)
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
    section.add(
        f"The machine's own ceiling, measured before the rounds: {many} processes counting down a fixed number in "
        f"pure Python at once finish in the time of {fmt_ratio(machine)} one of them alone would need for the same "
        "work (2× on two real cores; less where the hypervisor shares them): no number of web processes can "
        "speed up CPU-bound work more than that here.",
        "",
    )
    within = _within_reach(section, measured, one, mode.web_clients)
    worst = min(speedups)
    section.target(
        f"≥ {TARGET_SPEEDUP}× accept throughput with {many} web processes (every client count)",
        f"{worst:.2f}×" + ("" if within is None else f" (at most {within:.2f}× within this machine's reach)"),
        worst >= TARGET_SPEEDUP,
    )
    ctx.results["web_processes"] = measured
    return section
