"""6. The fleet: tenant databases over three PostgreSQL servers (the main one and two private clusters).

- Placement burst: the same burst of isolated creations placed on one server (the two extra ones Disabled)
  and over three (equal weights, and 1/2/1), measured alternately in the same run: tenants per minute of each,
  their ratio, and how the tenants spread (each server's count against its weighted share; the databases
  looked up on each server).
- A server stopped: tenant-scoped calls of tenants on the other servers before and while one cluster is
  stopped (alone, and with the stopped server's tenants calling at the same time), what those get and how
  fast, and how soon they are served again once it is back.
- A move of a tenant with ~100 MB of data (bench.fleet_move).

The clusters are started at the beginning of the section and removed at its end (bench.fleet_servers), with
every tenant database made on them.
"""

import asyncio
import contextlib
import json
import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
from django.db.models import Count, Max

from jobs.models import Attempt
from tenants.models import MAIN_SERVER, ProvisioningStatus, Tenant
from tests.support.postgres_clusters import PostgresCluster

from . import fixtures, fleet_move
from .clients import Answer, get_each, messages_of, messages_seen, statuses_of
from .fleet_servers import LOGICAL, PLAIN, Fleet
from .fleet_tenants import SUBMITTERS, clear_tenants, create_tenants, tenant_tokens
from .report import Section
from .stack import Web, start_worker, wait_for_workers
from .stats import Summary, fmt_ratio, ms, ratio, triple

WORKERS = 2
SPREAD_TOLERANCE = 0.10  # each server's count within ±10 % of its weighted share
SLOWDOWN_GOAL = 1.2  # p50 / p99 of the other servers' tenants while one server is stopped, against before
REFUSAL_GOAL_SECONDS = 3.0  # a stopped server's tenant gets its 503 within this
UNAVAILABLE_MESSAGE = "Tenant database unavailable"  # API.md, "Database servers"
CALLERS = 4  # clients calling as the other servers' tenants
RECOVERY_TIMEOUT = 60
logger = logging.getLogger("bench")

# Placement configurations: server -> weight (the servers not named are Disabled).
CONFIGURATIONS = {
    "one server": {MAIN_SERVER: 1},
    "three, 1/1/1": {MAIN_SERVER: 1, LOGICAL: 1, PLAIN: 1},
    "three, 1/2/1": {MAIN_SERVER: 1, LOGICAL: 2, PLAIN: 1},
}


def warm_up(web, fleet):
    """One tenant on each server (the first burst clears them): every server has its template (and spares)
    before the bursts."""
    bodies = [{**fixtures.tenant_body("flw", isolated=True), "databaseServer": name} for name in fleet.names]
    create_tenants(web, bodies)


# 1. Placement burst


def spread(counts, weights, total):
    """(server, count, weighted share, within tolerance) for every server of `weights`."""
    rows = []
    for name, weight in weights.items():
        share = total * weight / sum(weights.values())
        rows.append((name, counts.get(name, 0), share, abs(counts.get(name, 0) - share) <= SPREAD_TOLERANCE * share))
    return rows


def worker_seconds(attempts):
    """(how many, their seconds in all) of some attempts."""
    spans = [(a.ended_at - a.started_at).total_seconds() for a in attempts if a.ended_at]
    return len(spans), sum(spans)


def attempt_seconds(ids):
    """The creation attempts' durations, by the server each tenant went to: what one creation cost there."""
    servers = dict(Tenant.objects.filter(id__in=ids).values_list("id", "database_server"))
    by_server = {}
    for attempt in Attempt.objects.filter(job__task__endswith="provision_tenant").select_related("job"):
        if attempt.ended_at:
            server = servers.get(attempt.job.subject.removeprefix("tenant:"))
            by_server.setdefault(server, []).append((attempt.ended_at - attempt.started_at).total_seconds())
    return by_server


def placement_burst(web, fleet, *, label, count):
    """One burst from no tenant at all; its tenants are left in place (the stopped-server part reuses the last
    burst's)."""
    clear_tenants(fleet)
    weights = CONFIGURATIONS[label]
    fleet.use(web, weights)
    bodies = [fixtures.tenant_body("flt", isolated=True) for _ in range(count)]
    ids = [b["id"] for b in bodies]
    first_sent = time.time()
    submitted = create_tenants(web, bodies)
    last_end = Attempt.objects.filter(job__task__endswith="provision_tenant").aggregate(last=Max("ended_at"))["last"]
    drained = (last_end.timestamp() - first_sent) if last_end else math.nan
    active = Tenant.objects.filter(id__in=ids, status=ProvisioningStatus.ACTIVE)
    counts = dict(active.values_list("database_server").annotate(n=Count("id")))
    # Where the catalog says each database is, against what each server holds.
    expected = {
        name: set(active.filter(database_server=name).values_list("database_name", flat=True)) for name in weights
    }
    found = {name: set(fleet.tenant_databases(name)) for name in weights}
    misplaced = sum(len(expected[name] - found[name]) for name in weights)
    result = {
        "label": label,
        "weights": weights,
        "attempt_seconds": attempt_seconds(ids),
        "refills": worker_seconds(Attempt.objects.filter(job__task__endswith="refill_spare_databases")),
        "count": count,
        "accepted": submitted.statuses.get(202, 0),
        "drain_seconds": drained,
        "per_minute": ratio(count, drained) * 60,
        "active": active.count(),
        "failed": Tenant.objects.filter(id__in=ids, status=ProvisioningStatus.FAILED).count(),
        "counts": counts,
        "spread": spread(counts, weights, count),
        "misplaced": misplaced,
    }
    return result


def placement_reading(section, results, rates):
    """What the figures say, from the figures (so a new run says it of its own)."""
    one = Summary.of(rates.get("one server", [])).median
    three = Summary.of([v for k, vs in rates.items() if k != "one server" for v in vs]).median
    exact = all(n == round(share) for r in results for _, n, share, _ in r["spread"])
    attempts = {}
    for r in results:
        for server, seconds in r["attempt_seconds"].items():
            attempts.setdefault((r["label"] == "one server", server), []).extend(seconds)
    refills = {label: Summary.of([r["refills"][0] for r in results if r["label"] == label]).median for label in rates}
    section.add(
        "Reading:",
        "",
        "- Spread: "
        + (
            "every server got exactly its weighted share in every burst: placement counts under one lock, the "
            "tenants being placed included, so the ±10 % goal holds with room."
            if exact
            else "see the table: not every burst split exactly by weight."
        ),
        f"- Throughput: three servers ran at {fmt_ratio(ratio(three, one))} the rate of one (medians over the "
        "three-server bursts, against the one-server ones). Creation attempt p50 on one server: "
        + ", ".join(f"{server} {ms(Summary.of(v).median)} ms" for (single, server), v in attempts.items() if single)
        + "; over three: "
        + ", ".join(
            f"{server} {ms(Summary.of(v).median)} ms"
            for (single, server), v in sorted(attempts.items(), key=str)
            if not single
        )
        + ". Spare refills per burst (median): "
        + ", ".join(f"{label} {n:.0f}" for label, n in refills.items())
        + ". Every server keeps and refills its own spares, so three servers run more refill jobs, on the same "
        "two workers and the same two cores as the creations; each placement on an extra server also connects to "
        "it once (the reachability check). On separate machines the clones and refills would use the other "
        "servers' CPU and disks; here they take this one's, so on this box the fleet can at best match one "
        "server.",
        "",
    )


def report_placement(section, mode, results):
    section.add(
        "### Placement burst",
        "",
        f"{SUBMITTERS} clients POST isolated creations as fast as they are answered; {WORKERS} workers "
        "(`rqworker --with-scheduler`) drain them, each creation placed by `placement.place` under its lock. "
        "`one server`: the two extra servers Disabled, every tenant on `main`; `three`: main plus the two "
        "clusters, with the weights shown. The configurations alternate "
        f"({', '.join(mode.fleet_placement_runs)}), {mode.fleet_placement_tenants} tenants each, so a change of "
        "the machine's load falls on all of them; each server already has its template before the first burst. "
        "Tenants/min: first POST to the end of the last creation attempt. Before each burst every tenant and its "
        "database is dropped, on every server.",
        "",
    )
    rows = []
    for r in results:
        placed = ", ".join(f"{name} {n} (share {share:.0f})" for name, n, share, _ in r["spread"])
        per_attempt = ", ".join(
            f"{name} {ms(Summary.of(v).median)}" for name, v in sorted(r["attempt_seconds"].items(), key=str)
        )
        within = "yes" if all(ok for *_, ok in r["spread"]) else "**no**"
        rows.append(
            [
                r["label"],
                r["count"],
                f"{r['drain_seconds']:.1f}",
                f"**{r['per_minute']:.0f}**",
                r["active"],
                r["failed"],
                placed,
                within,
                r["misplaced"],
                per_attempt,
                f"{r['refills'][0]} ({r['refills'][1]:.1f} s)",
            ]
        )
    section.table(
        [
            "servers",
            "tenants",
            "first POST → last attempt s",
            "tenants/min",
            "Active",
            "Failed",
            "tenants per server",
            "within ±10 %",
            "databases not where the catalog says",
            "creation attempt ms p50, by server",
            "spare refills (worker time)",
        ],
        rows,
    )
    rates = {}
    for r in results:
        rates.setdefault(r["label"], []).append(r["per_minute"])
    section.table(["servers", "tenants/min min / median / max"], [[k, triple(v)] for k, v in rates.items()])
    one = Summary.of(rates.get("one server", [])).median
    for label in (k for k in rates if k != "one server"):
        section.add(f"- {label} / one server: {fmt_ratio(ratio(Summary.of(rates[label]).median, one))} (medians)")
    section.add("")
    for label in {r["label"] for r in results if r["label"] != "one server"}:
        runs = [r for r in results if r["label"] == label]
        worst = max((abs(n - share) / share for r in runs for _, n, share, _ in r["spread"]), default=math.nan)
        section.target(
            f"placement {label}: each server within ±10 % of its weighted share",
            f"largest deviation {worst:.0%}",
            all(ok for r in runs for *_, ok in r["spread"]),
        )
    placement_reading(section, results, rates)
    lost = sum(r["accepted"] - r["active"] - r["failed"] for r in results)
    failed = sum(r["failed"] for r in results)
    misplaced = sum(r["misplaced"] for r in results)
    section.target(
        "fleet bursts: none lost, none Failed, every database on its server",
        f"{lost} lost, {failed} Failed, {misplaced} misplaced",
        not (lost or failed or misplaced),
    )


# 2. A server stopped


def me_requests(tokens, count):
    return [("/api/users/me", {"Authorization": f"Bearer {tokens[i % len(tokens)]}"}) for i in range(count)]


def latencies(answers, status=200):
    return [a.seconds for a in answers if a.status == status]


async def calls_until(base_url, tokens, done):
    """The stopped server's tenants calling one after another until `done` is set: every answer kept."""
    answers = []
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        i = 0
        while not done.is_set():
            headers = {"Authorization": f"Bearer {tokens[i % len(tokens)]}"}
            started, messages = time.monotonic(), ()
            try:
                response = await client.get("/api/users/me", headers=headers)
                status, messages = response.status_code, messages_of(response)
            except httpx.HTTPError as error:
                status = type(error).__name__
            answers.append(Answer(started, time.monotonic() - started, status, messages))
            i += 1
    return answers


async def others_with_stopped_calling(base_url, others, stopped, count):
    done = asyncio.Event()

    async def others_then_done():
        try:
            return await get_each(base_url, me_requests(others, count), concurrency=CALLERS)
        finally:
            done.set()

    return await asyncio.gather(others_then_done(), calls_until(base_url, stopped, done))


def health(web):
    """(status, body) of GET /health (body parsed when it is JSON; None when there was no answer)."""
    with contextlib.suppress(httpx.HTTPError):
        response = httpx.get(f"{web.url}/health", timeout=30)
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, response.text.strip()
    return None, None


def says_down(health_answer, server):
    status, body = health_answer
    return status == 200 and isinstance(body, dict) and (body.get("databaseServers") or {}).get(server) == "down"


def _health(answer):
    status, body = answer
    return "no answer" if status is None else f"{status} {json.dumps(body)}"


def tenants_on_each_server(web, fleet, per_server):
    """`per_server` Active isolated tenants on every server: those the last burst left, and new ones (named
    at creation) where it left fewer."""
    fleet.use(web, CONFIGURATIONS["three, 1/1/1"])
    active = Tenant.objects.filter(status=ProvisioningStatus.ACTIVE, has_isolated_database=True).order_by("id")
    tenants = {name: list(active.filter(database_server=name)[:per_server]) for name in fleet.names}
    bodies = [
        {**fixtures.tenant_body("fls", isolated=True), "databaseServer": name}
        for name in fleet.names
        for _ in range(per_server - len(tenants[name]))
    ]
    if bodies:
        create_tenants(web, bodies)
        for tenant in Tenant.objects.filter(id__in=[b["id"] for b in bodies], status=ProvisioningStatus.ACTIVE):
            tenants[tenant.database_server_id].append(tenant)
    return [tenant for name in fleet.names for tenant in tenants[name]]


def stop_cluster(cluster):
    cluster.stop("fast")


# How a server goes away: (what the report says, how it is done, how it comes back).
OUTAGES = {
    "stopped": ("`pg_ctl stop -m fast`: connections refused at once", stop_cluster, PostgresCluster.start_again),
    "hung": (
        "every process of the server frozen (SIGSTOP), the postmaster and the backends: open sessions and new "
        "connections wait unanswered, as with a host that stops answering",
        PostgresCluster.freeze,
        PostgresCluster.thaw,
    ),
}


def stopped_server(web, fleet, *, per_server, requests, outages, rounds):
    tenants = tenants_on_each_server(web, fleet, per_server)
    others = tenant_tokens([t for t in tenants if t.database_server_id != PLAIN])
    stopped = tenant_tokens([t for t in tenants if t.database_server_id == PLAIN])
    asyncio.run(get_each(web.url, me_requests(others + stopped, 30), concurrency=CALLERS))  # warm-up
    results = {}
    for kind in outages:
        logger.info("fleet: a server %s", kind)
        results[kind] = outage(web, fleet.clusters[PLAIN], others, stopped, requests=requests, kind=kind, rounds=rounds)
        results[kind].update(per_server=per_server, requests=requests, rounds=rounds)
    return results


def outage(web, cluster, others, stopped, *, requests, kind, rounds):
    """The other servers' tenants' calls before and during the outage, alone and with the stopped server's
    tenants calling; what those get; how soon they are served once the server is back. `rounds` times, up and
    down in turn (each row pools its rounds), so a change of the machine's load falls on both."""
    _, go, come_back = OUTAGES[kind]
    url = web.url
    per_round = max(requests // rounds, 1)
    result = {key: [] for key in ("before", "before mixed", "first", "during alone", "during mixed", "stopped calls")}
    result.update(stop_seconds=[], start_seconds=[], recovery_seconds=[], recovery_statuses=[])
    result["health before"] = health(web)
    for _ in range(rounds):
        result["before"] += asyncio.run(get_each(url, me_requests(others, per_round), concurrency=CALLERS))
        mixed, _served = asyncio.run(others_with_stopped_calling(url, others, stopped, per_round))
        result["before mixed"] += mixed
        began = time.monotonic()
        go(cluster)
        result["stop_seconds"].append(time.monotonic() - began)
        try:
            result["first"] += asyncio.run(get_each(url, me_requests(stopped, len(stopped)), concurrency=1))
            result["during alone"] += asyncio.run(get_each(url, me_requests(others, per_round), concurrency=CALLERS))
            mixed, refused = asyncio.run(others_with_stopped_calling(url, others, stopped, per_round))
            result["during mixed"] += mixed
            result["stopped calls"] += refused
            result["health during"] = health(web)
        finally:
            began = time.monotonic()
            come_back(cluster)
            result["start_seconds"].append(time.monotonic() - began)
        seconds, seen = recovery(url, stopped)
        result["recovery_seconds"].append(seconds)
        result["recovery_statuses"] += seen
    result["after"] = asyncio.run(get_each(url, me_requests(others + stopped, requests), concurrency=CALLERS))
    result["health after"] = health(web)
    return result


def recovery(url, tokens):
    """Seconds from the server's start until every one of its tenants is served again (200), and what the
    calls got on the way."""
    began = time.monotonic()
    seen = []
    while time.monotonic() - began < RECOVERY_TIMEOUT:
        answers = asyncio.run(get_each(url, me_requests(tokens, len(tokens)), concurrency=1))
        seen += answers
        if all(a.status == 200 for a in answers):
            return time.monotonic() - began, seen
        time.sleep(0.2)
    return math.nan, seen


def outage_reading(section, results, ratios):
    """What the outage figures say, from the figures."""
    lines = ["Reading:", ""]
    for kind, r in results.items():
        answers = r["first"] + r["stopped calls"]
        slowest = Summary.of([a.seconds for a in answers]).max
        worst = max(max(ratios[kind, key]) for key in ("during alone", "during mixed"))
        waited = sum(a.seconds >= 1 for a in answers)
        back = max(r["recovery_seconds"])
        lines.append(
            f"- {kind}: the server's tenants got {statuses_of(answers)}, p50 "
            f"{ms(Summary.of([a.seconds for a in answers]).median)} ms, the slowest in {ms(slowest)} ms; "
            f"{waited} of them took a second or more (a connection that is never answered waits for "
            "DIQUIS_SERVER_CONNECT_TIMEOUT; a refused one fails at once). Once the server was back, its tenants "
            f"were served again within {'–' if math.isnan(back) else f'{back:.1f} s'}"
            + f"; the other servers' tenants: alone {_pair(ratios[kind, 'during alone'])}, with its tenants calling "
            + f"{_pair(ratios[kind, 'during mixed'])} of their figures with it up"
            + (
                ", within the goal."
                if worst <= SLOWDOWN_GOAL
                else ". Where one row is over the goal and the other is not (the mixed row makes the same calls "
                "plus the server's own), this run does not tell the outage from the load of this shared machine; "
                "the p50s are what moved least."
            )
        )
    messages = {m for r in results.values() for a in r["first"] + r["stopped calls"] for m in a.messages}
    if messages and messages != {UNAVAILABLE_MESSAGE}:
        lines.append(
            f"- The refusal is a 503, but its line is {', '.join(f'“{m}”' for m in sorted(messages))}, the generic "
            f"one for a backing service, not API.md's “{UNAVAILABLE_MESSAGE}” for a tenant whose server is down."
        )
    section.add(*lines, "")


def report_stopped(section, results):
    any_result = next(iter(results.values()))
    section.add(
        "### A server stopped",
        "",
        f"{any_result['per_server']} isolated tenants on each server (the last burst's, completed by creations "
        f"naming the server). `GET /api/users/me` with the admins' tokens, {CALLERS} clients, "
        f"{any_result['requests']} calls per row, as the tenants of `main` and `{LOGICAL}`, alone and while the "
        f"tenants of `{PLAIN}` call too (one client, one call after another, for as long as the others run); then "
        f"`{PLAIN}` goes away and the same calls are made again; then `{PLAIN}` comes back and its tenants are "
        f"called until all are served. Up and down in turn, {any_result['rounds']} round(s), each row pooling its "
        "rounds, so that a change of the machine's load falls on both. How the server goes away: "
        + "; ".join(f"**{kind}**, {OUTAGES[kind][0]}" for kind in results)
        + ". Every status is counted; latencies are of the 200s.",
        "",
    )
    rows = []
    for kind, r in results.items():
        for key, what in (
            ("before", "others, all servers up"),
            ("during alone", f"others, {PLAIN} {kind}"),
            ("before mixed", f"others, all servers up, {PLAIN}'s tenants calling"),
            ("during mixed", f"others, {PLAIN} {kind}, its tenants calling"),
            ("after", f"all tenants, {PLAIN} back"),
        ):
            answers = r[key]
            s = Summary.of(latencies(answers))
            rows.append([kind, what, ms(s.median), ms(s.p99), ms(s.max), len(answers), statuses_of(answers)])
    section.table(["outage", "calls", "p50 ms", "p99 ms", "max ms", "calls", "statuses"], rows)
    ratios = {}
    for kind, r in results.items():
        for key, baseline in (("during alone", "before"), ("during mixed", "before mixed")):
            before, during = Summary.of(latencies(r[baseline])), Summary.of(latencies(r[key]))
            ratios[kind, key] = (ratio(during.median, before.median), ratio(during.p99, before.p99))
        section.add(
            f"- {kind} / up, the others alone: p50 {fmt_ratio(ratios[kind, 'during alone'][0])}, p99 "
            f"{fmt_ratio(ratios[kind, 'during alone'][1])}; with {PLAIN}'s tenants calling in both (served before, "
            f"refused during): p50 {fmt_ratio(ratios[kind, 'during mixed'][0])}, p99 "
            f"{fmt_ratio(ratios[kind, 'during mixed'][1])}"
        )
    section.add("")
    rows = []
    for kind, r in results.items():
        for key, what in (("first", "first call of each, right after"), ("stopped calls", "while the others call")):
            rows.append([kind, what, statuses_of(r[key]), messages_seen(r[key]), _triple(r[key]), len(r[key])])
    section.table(
        ["outage", f"calls of {PLAIN}'s tenants", "statuses", "messages", "ms min / p50 / max", "calls"], rows
    )
    for kind, r in results.items():
        slowest = max(r["recovery_seconds"])
        recovered = "–" if math.isnan(slowest) else f"{slowest:.1f} s"
        section.add(
            f"- {kind}: gone in {max(r['stop_seconds']):.1f} s at most, back in {max(r['start_seconds']):.1f} s; its "
            f"tenants served again at most {recovered} after that (statuses on the way: "
            f"{statuses_of(r['recovery_statuses'])}). `GET /health` before: `{_health(r['health before'])}`; during: "
            f"`{_health(r['health during'])}`; after: `{_health(r['health after'])}`."
        )
    section.add("")
    outage_reading(section, results, ratios)
    for kind, r in results.items():
        worst = max(max(ratios[kind, key]) for key in ("during alone", "during mixed"))
        section.target(
            f"{kind} server: other servers' tenants ≤ {SLOWDOWN_GOAL}× (p50 and p99)",
            f"alone {_pair(ratios[kind, 'during alone'])}; with its tenants calling "
            f"{_pair(ratios[kind, 'during mixed'])}",
            worst <= SLOWDOWN_GOAL,
        )
        answers = r["first"] + r["stopped calls"]
        slowest = Summary.of([a.seconds for a in answers]).max
        section.target(
            f"{kind} server: its tenants get 503 “{UNAVAILABLE_MESSAGE}” within {REFUSAL_GOAL_SECONDS:.0f} s",
            f"{statuses_of(answers)} ({messages_seen(answers)}); slowest {ms(slowest)} ms",
            all(a.status == 503 and a.messages == (UNAVAILABLE_MESSAGE,) for a in answers)
            and slowest <= REFUSAL_GOAL_SECONDS,
        )
        section.target(
            f'{kind} server: `GET /health` stays 200 and says `"{PLAIN}": "down"` (API.md)',
            _health(r["health during"]),
            says_down(r["health during"], PLAIN),
        )


def _pair(ratios):
    return f"p50 {fmt_ratio(ratios[0])} / p99 {fmt_ratio(ratios[1])}"


def _triple(answers):
    s = Summary.of([a.seconds for a in answers])
    return f"{ms(s.min)} / {ms(s.median)} / {ms(s.max)}"


def machine_notes(section):
    section.add(
        "Machine notes: the two extra servers are private PostgreSQL 15 clusters on this same machine "
        "(tests/support/postgres_clusters.py: initdb + pg_ctl on free ports, fsync and full_page_writes off, "
        "synchronous_commit on), started for this section and removed at its end; they share its 2 cores and its "
        "disk with the main server, Daphne, the workers and the load generators. So three servers add no CPU "
        "here: what the placement rows can show is what spreading costs (a check of the chosen server, a "
        "connection per server), not what a real second machine would add.",
        "",
    )


def run(ctx):
    mode = ctx.mode
    section = Section("6. Fleet: tenant databases over several PostgreSQL servers")
    fixtures.reset()
    try:
        # The clusters are made while the workers and Daphne boot: none reads the servers before a request.
        for i in range(WORKERS):
            start_worker(ctx.sandbox, name=f"worker{i}-fleet")
        with ThreadPoolExecutor(1) as pool:
            starting = pool.submit(Fleet.start)
            try:
                web = Web(ctx.sandbox, name="web-fleet")
                wait_for_workers(WORKERS)
            except BaseException:
                with contextlib.suppress(Exception):
                    starting.result().remove()
                raise
            fleet = starting.result()
        with fleet:
            logger.info("fleet: clusters up (%s)", ", ".join(map(repr, fleet.clusters.values())))
            try:
                fleet.register(web)
                warm_up(web, fleet)
                placements = []
                for label in mode.fleet_placement_runs:
                    logger.info("fleet: placement burst, %s", label)
                    placements.append(placement_burst(web, fleet, label=label, count=mode.fleet_placement_tenants))
                report_placement(section, mode, placements)
                ctx.results["fleet placement"] = placements
                logger.info("fleet: a server stopped")
                stopped = stopped_server(
                    web,
                    fleet,
                    per_server=mode.fleet_stop_tenants_per_server,
                    requests=mode.fleet_stop_requests,
                    outages=mode.fleet_outages,
                    rounds=mode.fleet_stop_rounds,
                )
                report_stopped(section, stopped)
            finally:
                ctx.sandbox.stop_processes()
            logger.info("fleet: moves")
            fleet_move.run(ctx, section, fleet)
            machine_notes(section)
    finally:
        ctx.sandbox.stop_processes()
        fixtures.reset()
    return section
