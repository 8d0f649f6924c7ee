"""3. Burst: hundreds of creations submitted at once; how fast the workers drain them, and what is lost.

Every creation goes through the API (32 clients submitting as fast as they can), then the bench watches
the catalog until every tenant is Active or Failed. Throughput is tenants per minute from the first
POST to the end of the last attempt. Peak resident memory is sampled every 0.1 s for Daphne, each
worker, and the largest of its children (RQ forks a work-horse per job; the scheduler is a child too).
"""

import asyncio
import time

from django.db.models import Count, Max

from jobs.models import Attempt, Job
from tenants.models import ProvisioningStatus, Tenant

from . import fixtures
from .clients import closed_loop
from .report import Section
from .stack import PeakMemory, Web, start_worker, wait_for_workers
from .stats import Summary, ratio, triple

SUBMITTERS = 32
TARGET_ISOLATED_PER_MINUTE = 150


def _wait_until_settled(count, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        statuses = dict(Tenant.objects.exclude(pk="root").values_list("status").annotate(n=Count("id")))
        if statuses.get(ProvisioningStatus.ACTIVE, 0) + statuses.get(ProvisioningStatus.FAILED, 0) >= count:
            return statuses
        time.sleep(0.5)
    return dict(Tenant.objects.exclude(pk="root").values_list("status").annotate(n=Count("id")))


def one_burst(ctx, web, *, workers, isolated, count):
    fixtures.reset()
    processes = [start_worker(ctx.sandbox, name=f"worker{i}-burst") for i in range(workers)]
    wait_for_workers(workers)
    watched = {"daphne": web.pid, **{f"worker {i + 1}": p.pid for i, p in enumerate(processes)}}
    bodies = [fixtures.tenant_body("bst", isolated=isolated) for _ in range(count)]
    with PeakMemory(watched) as memory:
        first_sent = time.time()
        submitted = asyncio.run(
            closed_loop(
                web.url, "/api/tenants", bodies, concurrency=SUBMITTERS, headers=fixtures.root_headers(), expect=202
            )
        )
        statuses = _wait_until_settled(count, timeout=60 + count * 4)
    last_end = Attempt.objects.aggregate(last=Max("ended_at"))["last"]
    done = Attempt.objects.filter(job__task__endswith="provision_tenant", outcome=Attempt.Outcome.SUCCEEDED)
    done_at = sorted(ended.timestamp() - first_sent for ended in done.values_list("ended_at", flat=True))
    drained = (last_end.timestamp() - first_sent) if last_end else float("nan")
    jobs = dict(Job.objects.values_list("status").annotate(n=Count("id")))
    for process in processes:
        process.stop_all()
    fixtures.reset()
    return {
        "workers": workers,
        "kind": "isolated" if isolated else "shared",
        "count": count,
        "accepted": submitted.statuses.get(202, 0),
        "submit_seconds": submitted.elapsed,
        "drain_seconds": drained,
        "per_minute": ratio(count, drained) * 60,
        "done_at": done_at,  # seconds from the first POST to the end of each successful creation (the charts')
        "active": statuses.get(ProvisioningStatus.ACTIVE, 0),
        "failed": statuses.get(ProvisioningStatus.FAILED, 0),
        "jobs_succeeded": jobs.get(Job.Status.SUCCEEDED, 0),
        "memory": memory.peaks,
    }


def run(ctx):
    mode = ctx.mode
    section = Section("3. Burst: creations submitted at once")
    web = Web(ctx.sandbox, name="web-burst")
    results = []
    try:
        for _ in range(mode.burst_repeats):
            for workers in mode.burst_workers:
                results.append(one_burst(ctx, web, workers=workers, isolated=True, count=mode.burst_isolated))
            for workers in mode.burst_shared_workers:
                results.append(one_burst(ctx, web, workers=workers, isolated=False, count=mode.burst_shared))
    finally:
        ctx.sandbox.stop_processes()
        fixtures.reset()
    section.add(
        f"{SUBMITTERS} clients POST every creation as fast as they are answered; the workers start draining at "
        "once. `lost` = accepted but neither Active nor Failed when the bench stopped waiting. Isolated bursts run "
        f"with {' and '.join(map(str, mode.burst_workers))} worker(s), the shared one with "
        f"{' and '.join(map(str, mode.burst_shared_workers))} (a 1-worker run of 500 shared tenants would add about "
        "ten minutes on this loaded machine and says nothing the isolated pair does not). Every burst runs "
        f"{mode.burst_repeats} time(s), the worker counts alternating, so that a change of the machine's load "
        "falls on both.",
        "",
    )
    rows = []
    for r in results:
        lost = r["accepted"] - r["active"] - r["failed"]
        rows.append(
            [
                r["kind"],
                r["count"],
                r["workers"],
                f"{r['submit_seconds']:.1f}",
                f"{r['drain_seconds']:.1f}",
                f"**{r['per_minute']:.0f}**",
                r["active"],
                r["failed"],
                lost,
            ]
        )
    section.table(
        [
            "kind",
            "tenants",
            "workers",
            "submit s",
            "first POST → last attempt s",
            "tenants/min",
            "Active",
            "Failed",
            "lost",
        ],
        rows,
    )
    memory_rows = []
    for r in results:
        for name, kib in sorted(r["memory"].items()):
            memory_rows.append([r["kind"], r["workers"], name, f"{kib / 1024:.0f}"])
    section.add("Peak resident memory (MiB) during each burst:", "")
    section.table(["kind", "workers", "process", "peak RSS MiB"], memory_rows)
    rates = {}
    for r in results:
        rates.setdefault((r["kind"], r["workers"]), []).append(r["per_minute"])
    section.add("Tenants per minute over the repeated bursts:", "")
    section.table(
        ["kind", "workers", "tenants/min min / median / max"],
        [[kind, workers, triple(values)] for (kind, workers), values in rates.items()],
    )
    for kind in ("isolated", "shared"):
        one, two = rates.get((kind, 1)), rates.get((kind, 2))
        if one and two:
            section.add(
                f"- {kind}: 2 workers / 1 worker throughput = "
                f"{ratio(Summary.of(two).median, Summary.of(one).median):.2f}× (medians)"
            )
    section.add("")
    most = max(mode.burst_workers)
    if ("isolated", most) in rates:
        median = Summary.of(rates[("isolated", most)]).median
        section.target(
            f"≥ 150 isolated tenants/min with {most} workers",
            f"{median:.0f}/min (median of {len(rates[('isolated', most)])})",
            median >= TARGET_ISOLATED_PER_MINUTE,
        )
    total_lost = sum(r["accepted"] - r["active"] - r["failed"] for r in results)
    total_failed = sum(r["failed"] for r in results)
    section.target(
        "burst: none lost, none Failed",
        f"{total_lost} lost, {total_failed} Failed",
        not total_lost and not total_failed,
    )
    ctx.results["burst"] = results
    return section
