"""7. Pooled connections to tenant databases: an isolated tenant's calls against a shared tenant's, for each
way of reaching the tenant databases, side by side in one run.

Each variant is its own Daphne process with its own environment (`VARIANTS`); all of them run at once and are
measured in turns (every cell of the grid visits the variants in a rotating order, rounds repeat the grid), so a
change of the machine's load falls on all alike. Two workloads (`WORKLOADS`): the issue's long tail, requests to
the few hottest tenants while the rest of the N stay idle, and the stress case, a Zipf law over all N. The same
draws go to shared and isolated tenants and to every variant. Each cell is warmed up first with draws of its own
law, not counted: a cell takes seconds and the grid minutes, so without it the pool would meet each cell with
what the previous one (or the idle timeout) left, and the figures would be the cells' cold starts.

Besides latency: the sessions each process holds (sampled on the server while requests run, and at rest), the
sessions opened on tenant databases (from which the pool's hit rate follows), the web process's memory before and
after serving 1,000 isolated tenants once and then again, and idle pooled sessions closed after
DIQUIS_TENANT_POOL_IDLE_SECONDS.
"""

import asyncio
import logging
import time
from dataclasses import dataclass, field

from django.conf import settings

from tenants.models import MAIN_SERVER

from . import fixtures, pooling_bouncer, sandbox
from .clients import get_each
from .pooling_sessions import (
    Held,
    PeakSessions,
    bouncer_clients,
    max_connections,
    server_sessions,
    sessions_opened,
    snapshot,
)
from .pooling_tenants import Workload, drop_isolated, isolated_tokens, shared_tokens, tenant_databases_like
from .report import Section
from .stack import Web, rss_kib
from .stats import Summary, fmt_ratio, ms, ratio

logger = logging.getLogger("bench")

ZIPF_EXPONENT = 1.0
PATHS = ("/api/users/me", "/api/users")
KINDS = ("shared", "isolated")
BASELINE, CHOSEN = "a", "b"
HOT_TENANTS = 10  # the "a few hot"
TOUCH_CLIENTS = 4
P50_GOAL, P99_GOAL = 1.1, 1.2  # isolated / shared (issue 20)
MEMORY_GROWTH_GOAL_KIB = 2048  # the second pass over the same tenants
# A cell through PgBouncer is not started while the shared server has fewer free sessions than this: PgBouncer
# 1.18 bounds its server connections per database only (bench.pooling_bouncer), and the server is everyone's.
HEADROOM = 25
ROOM_WAIT_SECONDS = 5


@dataclass(frozen=True)
class Variant:
    key: str
    label: str
    env: dict
    bounced: bool = False  # tenant sessions through PgBouncer (bench.pooling_bouncer)

    @property
    def app_name(self):
        return f"bench-pool-{self.key}"

    @property
    def pool_bound(self):
        """Idle tenant sessions the process may keep per server."""
        return int(self.env.get("DIQUIS_TENANT_POOL_PER_SERVER", settings.DIQUIS_TENANT_POOL_PER_SERVER))


VARIANTS = {
    "a": Variant("a", "(a) a session per request", {"DIQUIS_TENANT_POOL_PER_SERVER": "0"}),
    "b": Variant("b", "(b) in-process pool", {}),
    "c": Variant("c", "(c) PgBouncer, a session per request", {"DIQUIS_TENANT_POOL_PER_SERVER": "0"}, bounced=True),
    "d": Variant("d", "(d) PgBouncer and the in-process pool", {}, bounced=True),
}


WORKLOADS = {
    "hot": Workload("hot", "hot few", hot=HOT_TENANTS),
    "all": Workload("all", "Zipf over all"),
}
JUDGED = "hot"  # the workload the issue describes, and its targets are judged on


def cell_workload(mode, workload, count):
    """The workload a (workload, N) cell is measured as: the first of the mode's that sends the same draws (where
    the hot part is all N, "hot few" and "Zipf over all" are one law, measured once)."""
    return next(w for w in mode.pooling_workloads if WORKLOADS[w].tenants(count) == workload.tenants(count))


def measured(mode, variant, workload, count):
    """Is this variant measured in this cell (the variants through PgBouncer are, in some only)?"""
    if not variant.bounced:
        return True
    return count in mode.pooling_bounced_counts and workload.key in mode.pooling_bounced_workloads


@dataclass
class Cells:
    """Every answer of the rounds, by (variant, workload, tenants, clients, kind, path); sessions opened and
    isolated requests sent, by (variant, workload, tenants, clients). A key names the workload a cell was
    measured as (`cell_workload`): look up through `key`."""

    latencies: dict = field(default_factory=dict)
    refused: dict = field(default_factory=dict)
    opened: dict = field(default_factory=dict)
    sent: dict = field(default_factory=dict)
    skipped: dict = field(default_factory=dict)  # cells not run: the shared server was near max_connections

    def add(self, key, answers):
        for answer in answers:
            cell = (*key, answer.path)
            if answer.status == 200:
                self.latencies.setdefault(cell, []).append(answer.seconds)
            else:
                self.refused.setdefault(cell, {}).setdefault(answer.status, 0)
                self.refused[cell][answer.status] += 1

    @staticmethod
    def key(mode, variant, workload, count, *rest):
        return (variant, cell_workload(mode, WORKLOADS[workload], count), count, *rest)

    def summary(self, *key):
        return Summary.of(self.latencies.get(key, []))

    def both_paths(self, *key):
        return Summary.of([s for path in PATHS for s in self.latencies.get((*key, path), [])])


def _requests(tokens, ranks, paths=PATHS):
    """GETs alternating over `paths`, each as the admin of the tenant of that rank."""
    return [(paths[i % len(paths)], {"Authorization": f"Bearer {tokens[rank]}"}) for i, rank in enumerate(ranks)]


def _get(web, requests, clients):
    return asyncio.run(get_each(web.url, requests, concurrency=clients))


def warm_up_processes(webs, tokens):
    """A few requests to each process before anything is measured (imports, first connections)."""
    for web in webs.values():
        for kind in KINDS:
            _get(web, _requests(tokens[kind], [i % 5 for i in range(20)]), 1)


def touch_all(web, tokens):
    """RSS of the process before, after a request as each isolated tenant's admin, and after a second pass over
    them all; and the answers' statuses (every admin must be answered)."""
    everyone = range(len(tokens))
    rss, statuses = [rss_kib(web.pid)], {}
    for path in PATHS:
        for answer in _get(web, _requests(tokens, everyone, (path,)), TOUCH_CLIENTS):
            statuses[answer.status] = statuses.get(answer.status, 0) + 1
        rss.append(rss_kib(web.pid))
    return rss, statuses


def room_on_server(limit, wait=ROOM_WAIT_SECONDS):
    """Are there fewer than `limit` sessions on the server, or will there be within `wait` seconds (PgBouncer's
    idle server connections of the previous cell closing)?"""
    deadline = time.monotonic() + wait
    while server_sessions() >= limit:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.25)
    return True


def warm_up_ranks(workload, law, count, seed):
    """`count` draws of the cell's law (another seed than the measured ones'), then, for a hot part, each of its
    tenants not drawn yet: the measured window meets every hot tenant as its steady state would."""
    ranks = law.draws(count, seed=f"warm-up/{seed}")
    if workload.hot:
        ranks += sorted(set(range(law.n)) - set(ranks))
    return ranks


def grid(mode):
    """The rounds' cells in order: (round, workload, tenants N, clients)."""
    for round_number in range(mode.pooling_rounds):
        for count in mode.pooling_tenant_counts:
            for key in mode.pooling_workloads:
                if cell_workload(mode, WORKLOADS[key], count) == key:
                    for clients in mode.pooling_clients:
                        yield round_number, WORKLOADS[key], count, clients


def run_cell(cells, web, key, tokens, warm, ranks):
    """One (variant, workload, N, clients, kind) cell: the warm-up (not counted), then the measured requests.
    Sessions opened on the isolated tenants' databases are read around the measured ones: nothing else opens
    any meanwhile (a shared tenant's call touches none)."""
    clients = key[3]
    _get(web, _requests(tokens, warm), clients)
    isolated = key[4] == "isolated"
    before = sessions_opened(tenant_databases_like()) if isolated else 0
    cells.add(key, _get(web, _requests(tokens, ranks), clients))
    if isolated:
        opened = sessions_opened(tenant_databases_like()) - before
        cells.opened[key[:4]] = cells.opened.get(key[:4], 0) + opened
        cells.sent[key[:4]] = cells.sent.get(key[:4], 0) + len(ranks)


def run_rounds(mode, webs, variants, tokens):
    """The grid, `mode.pooling_rounds` times; in each cell the variants in a rotating order, shared and isolated
    alternately first."""
    cells = Cells()
    limit = max_connections() - HEADROOM
    for turn, (round_number, workload, count, clients) in enumerate(grid(mode)):
        seed = f"{workload.key}/{round_number}/{count}/{clients}"
        law = workload.law(count, ZIPF_EXPONENT)
        ranks = law.draws(mode.pooling_requests, seed=seed)
        warm = warm_up_ranks(workload, law, mode.pooling_warm_up, seed)
        order = variants[turn % len(variants) :] + variants[: turn % len(variants)]
        kinds = KINDS if turn % 2 == 0 else KINDS[::-1]
        for variant in (v for v in order if measured(mode, v, workload, count)):
            for kind in kinds:
                key = (variant.key, workload.key, count, clients, kind)
                if variant.bounced and not room_on_server(limit):
                    cells.skipped[key] = cells.skipped.get(key, 0) + 1
                    continue
                run_cell(cells, webs[variant.key], key, tokens[kind], warm, ranks)
        if turn % 10 == 9:
            logger.info("pooling: %d cells done (round %d of %d)", turn + 1, round_number + 1, mode.pooling_rounds)
    return cells


def idle_close(ctx, tokens, seconds, touched):
    """A pooled process with a short idle time: its tenant sessions after serving `touched` tenants, then every
    half second until none is left (or 4× the idle time has passed)."""
    variant = Variant("idle", f"(b) with DIQUIS_TENANT_POOL_IDLE_SECONDS={seconds:g}", {})
    env = {"DIQUIS_TENANT_POOL_IDLE_SECONDS": str(seconds), "PGAPPNAME": variant.app_name}
    web = Web(ctx.sandbox, name="web-pool-idle", env=env)
    try:
        _get(web, _requests(tokens, range(touched), ("/api/users/me",)), 1)
        started, series = time.monotonic(), []
        while True:
            held = snapshot().processes.get(variant.app_name)
            elapsed = time.monotonic() - started
            series.append((elapsed, held.tenant if held else 0))
            if series[-1][1] == 0 or elapsed > 4 * seconds:
                return variant, series
            time.sleep(0.5)
    finally:
        web.stop()


def start_bouncer(ctx, section, variants):
    """PgBouncer for the variants through it, or those variants left out (and the reason said)."""
    if not any(v.bounced for v in variants):
        return None, variants
    try:
        return pooling_bouncer.start(ctx.sandbox), variants
    except pooling_bouncer.Unavailable as error:
        section.add(f"**Variants through PgBouncer not measured**: {error}.", "")
        return None, [v for v in variants if not v.bounced]


def start_web(ctx, variant, bouncer):
    env = {**variant.env, "PGAPPNAME": variant.app_name}
    if variant.bounced:
        env["DIQUIS_PGBOUNCER"] = bouncer.files.setting(MAIN_SERVER)
    return Web(ctx.sandbox, name=f"web-pool-{variant.key}", env=env)


def measure(ctx, section):
    mode = ctx.mode
    most = max(mode.pooling_tenant_counts)
    bouncer, variants = start_bouncer(ctx, section, [VARIANTS[key] for key in mode.pooling_variants])
    began = time.monotonic()
    tokens = {"shared": shared_tokens(most), "isolated": isolated_tokens(most)}
    setup_seconds = time.monotonic() - began
    logger.info("pooling: %d shared and %d isolated tenants made in %.0f s", most, most, setup_seconds)
    webs = {v.key: start_web(ctx, v, bouncer) for v in variants}
    warm_up_processes(webs, tokens)
    memory = {v.key: touch_all(webs[v.key], tokens["isolated"]) for v in variants if v.key in mode.pooling_memory}
    logger.info("pooling: %s served the %d isolated tenants twice", ", ".join(memory), most)
    with PeakSessions([v.app_name for v in variants], bouncer=bouncer) as peaks:
        cells = run_rounds(mode, webs, variants, tokens)
    time.sleep(1)
    rest = snapshot()
    rest_bounced = {}
    if bouncer:
        with bouncer.admin() as console:
            rest_bounced = bouncer_clients(console.cursor())
    idle = idle_close(ctx, tokens["isolated"], mode.pooling_idle_seconds, touched=min(most, 30))
    logger.info("pooling: idle sessions closed after %.1f s", idle[1][-1][0])
    budget = bouncer.files.budget if bouncer else None
    figures = Figures(
        mode, variants, cells, memory, peaks, rest, rest_bounced, idle, setup_seconds, max_connections(), budget
    )
    report(section, figures)


@dataclass
class Figures:
    mode: object
    variants: list
    cells: Cells
    memory: dict
    peaks: PeakSessions  # stopped
    rest: object  # pooling_sessions.Snapshot
    rest_bounced: dict  # application name -> client sessions on PgBouncer, at rest
    idle: tuple
    setup_seconds: float
    max_connections: int
    bouncer_budget: int | None  # the server connections PgBouncer may take (tenants.pgbouncer)


# --- the report ----------------------------------------------------------------------------------------------


def _pair(summary):
    return f"{ms(summary.median)} / {ms(summary.p99)}"


def _ratios(isolated, shared):
    return f"{fmt_ratio(ratio(isolated.median, shared.median))} / {fmt_ratio(ratio(isolated.p99, shared.p99))}"


def _hit_rate(cells, key):
    sent = cells.sent.get(key, 0)
    return f"{1 - cells.opened.get(key, 0) / sent:.0%}" if sent else "–"


def _opened_per_request(cells, key):
    sent = cells.sent.get(key, 0)
    return f"{cells.opened.get(key, 0) / sent:.2f}" if sent else "–"


def _env_of(variant):
    env = dict(variant.env, **({"DIQUIS_PGBOUNCER": "main=127.0.0.1:PORT"} if variant.bounced else {}))
    return " ".join(f"{k}={x}" for k, x in env.items()) or "defaults"


def _workloads(mode):
    return [WORKLOADS[key] for key in mode.pooling_workloads]


def _own_cells(mode, workload):
    """The tenant counts at which this workload was measured as itself (not as another of the same law)."""
    return [n for n in mode.pooling_tenant_counts if cell_workload(mode, workload, n) == workload.key]


def _describe_workload(mode, workload):
    bound = VARIANTS[CHOSEN].pool_bound
    if workload.hot:
        law = workload.law(workload.hot, ZIPF_EXPONENT)
        return (
            f"**{workload.label}**: the measured requests go to the {workload.hot} hottest of the N tenants of their "
            f"kind, drawn from a Zipf law of exponent {ZIPF_EXPONENT:g} among those {workload.hot} (P(rank k) ∝ 1/k: "
            f"the hottest {law.share_of_top(1):.0%}, the {workload.hot}th "
            f"{law.share_of_top(workload.hot) - law.share_of_top(workload.hot - 1):.1%}); the other N − "
            f"{workload.hot} exist, were called in the memory pass below, and stay idle. This is the issue's long "
            "tail, and its targets are judged on it. All tenants of the largest N exist through every cell (they "
            "are made once), so this workload sends the same law at every N: its rows at different N are repeats "
            "that differ by what the earlier cells left behind and by the machine's load."
        )
    tops = ", ".join(
        f"N = {n}: the hottest tenant {z.share_of_top(1):.0%}"
        + (f", the hottest {bound} (the pool's bound) {z.share_of_top(bound):.0%}" if n > bound else "")
        for n, z in ((n, workload.law(n, ZIPF_EXPONENT)) for n in mode.pooling_tenant_counts)
    )
    shared_with = [n for n in mode.pooling_tenant_counts if n not in _own_cells(mode, workload)]
    same = (
        f" At N = {', '.join(map(str, shared_with))} it is the same law as "
        f"{WORKLOADS[cell_workload(mode, workload, shared_with[0])].label}: measured once, shown with that one."
        if shared_with
        else ""
    )
    return (
        f"**{workload.label}** (the stress case): every request drawn from a Zipf law of exponent "
        f"{ZIPF_EXPONENT:g} over all N tenants of its kind ({tops}).{same}"
    )


def report_latency(section, f):
    mode = f.mode
    most = max(mode.pooling_tenant_counts)
    bounced = [v.label for v in f.variants if v.bounced]
    bounced_where = (
        f" {' and '.join(bounced)} only with {', '.join(WORKLOADS[w].label for w in mode.pooling_bounced_workloads)}"
        f" and N in {', '.join(map(str, mode.pooling_bounced_counts))}."
        if bounced
        else ""
    )
    per_path = mode.pooling_requests * mode.pooling_rounds // len(PATHS)
    section.add(
        "Variants, each its own Daphne process (all running; environment as named): "
        + "; ".join(f"{v.label} `{_env_of(v)}`" for v in f.variants)
        + ".",
        "",
        "Workloads, same cells and variants:",
        "",
        *(f"- {_describe_workload(mode, w)}" for w in _workloads(mode)),
        "",
        f"Each cell (variant, workload, N, clients, kind): first a warm-up, not counted — {mode.pooling_warm_up} "
        "draws of the cell's own law (another seed), then for a hot part each of its tenants not drawn yet, at the "
        "cell's clients — so that the pool holds what the workload's steady state gives it, not what the previous "
        "cell or the idle timeout left; then "
        f"{mode.pooling_requests} measured GETs alternating `{PATHS[0]}` and `{PATHS[1]}`, each as the admin of the "
        "tenant drawn. The same draws for shared and isolated tenants and for every variant; closed loop with "
        f"{' or '.join(map(str, mode.pooling_clients))} clients. {mode.pooling_rounds} round(s) of the whole grid; "
        "in each, every (workload, N, clients) cell visits the variants in a rotating order, shared and isolated "
        f"alternately first.{bounced_where} Samples: {per_path} per p50 / p99 of one path, "
        f"{per_path * len(PATHS)} for both paths together (the targets and the comparison with the baseline). Before "
        f"the rounds {', '.join(VARIANTS[k].label for k in f.memory)} served each of the {most} isolated tenants "
        "twice (the memory measurement below): the rounds meet no database for the first time. The isolated "
        "tenants' databases are clones of the template with their own role (as provisioning makes them), the "
        f"shared tenants live in the main database; {most} of each, made in {f.setup_seconds:.0f} s.",
        "",
        "Sessions opened: on the isolated tenants' databases during the measured requests of the isolated cells, "
        "from `pg_stat_database.sessions` before and after them, per request sent; pool hit rate: 1 − that (a "
        "request that found a pooled session opened none). p50 / p99 in ms, ratios isolated / shared of the same "
        "cell.",
        "",
    )
    for workload in _workloads(mode):
        section.add(f"{workload.label.capitalize()}:", "")
        report_latency_table(section, f, workload)
    if bounced:
        skipped = sum(f.cells.skipped.values())
        section.add(
            f"Through PgBouncer: a cell is not started while the shared server has fewer than {HEADROOM} sessions "
            f"free (waiting up to {ROOM_WAIT_SECONDS} s for PgBouncer's idle ones to close; {skipped} cell(s) left "
            "out so). The sessions opened are then PgBouncer's server logins: two for a tenant database it has no "
            "idle connection to (its lookup role's, for auth_query, and the tenant role's), and each idle "
            f"connection is closed after server_idle_timeout = {pooling_bouncer.SERVER_IDLE_TIMEOUT} s "
            "(bench.pooling_bouncer says why not the product's 30 s).",
            "",
        )
    report_against_baseline(section, f)


def report_latency_table(section, f, workload):
    mode, cells = f.mode, f.cells
    rows = []
    for count in _own_cells(mode, workload):
        for clients in mode.pooling_clients:
            for v in (v for v in f.variants if measured(mode, v, workload, count)):
                key = (v.key, workload.key, count, clients)
                row = [count, clients, v.label]
                for path in PATHS:
                    shared = cells.summary(*key, "shared", path)
                    isolated = cells.summary(*key, "isolated", path)
                    row += [_pair(shared), _pair(isolated), _ratios(isolated, shared)]
                refused = {
                    kind: sum(sum(cells.refused.get((*key, kind, p), {}).values()) for p in PATHS) for kind in KINDS
                }
                row += [_opened_per_request(cells, key), "–" if v.bounced else _hit_rate(cells, key)]
                row.append(f"{refused['shared']} / {refused['isolated']}")
                rows.append(row)
    header = ["tenants N", "clients", "variant"]
    for path in PATHS:
        header += [f"`{path}` shared p50 / p99", "isolated p50 / p99", "isolated / shared p50 / p99"]
    section.table([*header, "sessions opened per isolated request", "pool hit rate", "non-200 shared / isolated"], rows)


def report_against_baseline(section, f):
    mode, cells = f.mode, f.cells
    others = [v for v in f.variants if v.key != BASELINE]
    if not others:
        return
    workloads = _workloads(mode)
    section.add(
        f"Each variant against {VARIANTS[BASELINE].label}, same cells, both paths together, the workloads side by "
        "side: isolated p50 / p99 ratio, and shared p50 (the shared tenants' calls do not touch a tenant database: "
        "their ratio says how alike the variants' processes ran). – : not measured.",
        "",
    )
    rows = []
    for count in mode.pooling_tenant_counts:
        for clients in mode.pooling_clients:
            for v in others:
                row = [count, clients, v.label]
                for workload in workloads:
                    if not measured(mode, v, workload, count):
                        row += ["–", "–"]
                        continue
                    base, mine = (
                        {
                            kind: cells.both_paths(*Cells.key(mode, key, workload.key, count, clients, kind))
                            for kind in KINDS
                        }
                        for key in (BASELINE, v.key)
                    )
                    row += [
                        _ratios(mine["isolated"], base["isolated"]),
                        fmt_ratio(ratio(mine["shared"].median, base["shared"].median)),
                    ]
                if any(cell != "–" for cell in row[3:]):
                    rows.append(row)
    header = ["tenants N", "clients", "variant"]
    for workload in workloads:
        header += [f"{workload.label}: isolated p50 / p99 vs baseline", "shared p50 vs baseline"]
    section.table(header, rows)


def _bound(variant, clients):
    """The sessions a process may hold: the idle tenant sessions it keeps, one per request in flight (Django's
    ASGI handler runs each request's sync code on a thread of its own), its main-database pool."""
    main_pool = max(settings.DIQUIS_MAX_IDLE_CONNECTIONS_PER_PROCESS, 1)
    return variant.pool_bound + clients, main_pool


def report_connections(section, f):
    peaks = f.peaks
    clients = max(f.mode.pooling_clients)
    main_pool = settings.DIQUIS_MAX_IDLE_CONNECTIONS_PER_PROCESS
    section.add(
        f"Sessions on the server, by process (PGAPPNAME of each variant's Daphne), sampled every 20 ms during the "
        f"rounds ({peaks.samples} samples) and once 1 s after them (at rest). Bound: the idle tenant sessions "
        f"the process may keep (DIQUIS_TENANT_POOL_PER_SERVER) + one per request in flight (≤ {clients} clients: "
        "Django's ASGI handler runs each request on a thread of its own) on tenant databases, plus the main "
        f"database's pool (≤ DIQUIS_MAX_IDLE_CONNECTIONS_PER_PROCESS = {main_pool}). A session just closed can "
        "still show for a moment.",
        "",
    )
    if any(v.bounced for v in f.variants):
        section.add(
            "Through PgBouncer, a process's tenant sessions are its client sessions to PgBouncer (counted on its "
            "console, SHOW CLIENTS, in the same samples); the server sees PgBouncer's own connections, each carrying "
            "the application name of the client it served last (the last column).",
            "",
        )
    rows = []
    for v in f.variants:
        tenant_bound, main_bound = _bound(v, clients)
        held = f.rest.processes.get(v.app_name) or Held()
        name = v.app_name
        tenant = peaks.bounced[name] if v.bounced else peaks.tenant[name]
        rest_tenant = f.rest_bounced.get(name, 0) if v.bounced else held.tenant
        rows.append(
            [
                v.label,
                f"{tenant} (≤ {tenant_bound})",
                f"{peaks.main[name]} (≤ {main_bound})",
                f"{tenant + peaks.main[name]} at most" if v.bounced else f"{peaks.total[name]}",
                f"≤ {tenant_bound + main_bound}",
                f"{rest_tenant} / {held.main}",
                f"{peaks.tenant[name]} (at rest {held.tenant})" if v.bounced else "–",
            ]
        )
    header = ["variant", "peak tenant sessions", "peak main-database sessions", "peak in all", "bound"]
    section.table([*header, "at rest tenant / main", "PgBouncer's server connections last lent to it"], rows)
    bounds = sum(sum(_bound(v, clients)) for v in f.variants)
    bouncer = (
        f" PgBouncer's budget on this server (tenants.pgbouncer): {f.bouncer_budget} server connections."
        if f.bouncer_budget
        else ""
    )
    section.add(
        f"Server (main PostgreSQL, `max_connections` = {f.max_connections}): peak of the variants' processes "
        f"together {peaks.ours} (their bounds add up to {bounds}); peak of all sessions on tenant databases "
        f"{peaks.on_tenants}; peak of every client session on the server {peaks.server} (the bench's own sampling "
        f"and bookkeeping sessions and anyone else's on the shared server included).{bouncer}",
        "",
    )


def report_memory(section, f):
    most = max(f.mode.pooling_tenant_counts)
    section.add(
        f"Web process memory (VmRSS, MiB): after the warm-up, after one request as each of the {most} isolated "
        f"tenants' admins (`{PATHS[0]}`, {TOUCH_CLIENTS} clients), and after a second pass over the same {most} "
        f"(`{PATHS[1]}`). A per-tenant object kept forever shows as growth of the first pass beyond the baseline's; "
        "a per-request leak as growth of the second.",
        "",
    )
    rows = []
    for v in (v for v in f.variants if v.key in f.memory):
        (before, first, second), statuses = f.memory[v.key]
        rows.append(
            [
                v.label,
                f"{before / 1024:.1f}",
                f"{first / 1024:.1f} (+{(first - before) / 1024:.1f})",
                f"{second / 1024:.1f} ({(second - first) / 1024:+.1f})",
                ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items(), key=str)),
            ]
        )
    section.table(["variant", "before", f"after {most} tenants", f"after {most} more requests", "answers"], rows)


def report_idle(section, f):
    variant, series = f.idle
    closed_at = series[-1][0] if series[-1][1] == 0 else None
    section.add(
        f"Idle sessions closed: {variant.label}, after one request as each of 30 isolated tenants' admins (the pool "
        "keeps at most its bound of them), its sessions on tenant databases every 0.5 s: "
        + ", ".join(f"{at:.1f} s: {n}" for at, n in series)
        + ". "
        + (f"None left {closed_at:.1f} s after the last request." if closed_at is not None else "**Not all closed.**"),
        "",
    )


def _cell(f, variant, workload, count, clients):
    """(isolated, shared) summaries of a variant's cell, both paths together."""
    key = Cells.key(f.mode, variant, workload.key, count, clients)
    return f.cells.both_paths(*key, "isolated"), f.cells.both_paths(*key, "shared")


def report_latency_targets(section, f):
    mode, chosen = f.mode, VARIANTS[CHOSEN]
    for workload in _workloads(mode):
        for count in mode.pooling_tenant_counts:
            as_ = cell_workload(mode, workload, count)
            same = f" (the {WORKLOADS[as_].label} cells: one law at this N)" if as_ != workload.key else ""
            for clients in mode.pooling_clients:
                isolated, shared = _cell(f, CHOSEN, workload, count, clients)
                p50, p99 = ratio(isolated.median, shared.median), ratio(isolated.p99, shared.p99)
                section.target(
                    f"{chosen.label}, {workload.label}, {count} isolated tenants, {clients} client(s): isolated "
                    f"p50 ≤ {P50_GOAL}× and p99 ≤ {P99_GOAL}× of shared{same}",
                    f"p50 {fmt_ratio(p50)} ({ms(isolated.median)} vs {ms(shared.median)} ms), p99 {fmt_ratio(p99)} "
                    f"({ms(isolated.p99)} vs {ms(shared.p99)} ms); hit rate "
                    f"{_hit_rate(f.cells, Cells.key(mode, CHOSEN, workload.key, count, clients))}",
                    p50 <= P50_GOAL and p99 <= P99_GOAL,
                )


def report_targets(section, f):
    mode = f.mode
    chosen = VARIANTS[CHOSEN]
    if chosen not in f.variants:
        return
    report_latency_targets(section, f)
    peaks = f.peaks
    tenant_bound, main_bound = _bound(chosen, max(mode.pooling_clients))
    peak = peaks.total[chosen.app_name]
    section.target(
        f"{chosen.label}: sessions of the web process within its bound",
        f"peak {peak} against {tenant_bound + main_bound}",
        peak <= tenant_bound + main_bound,
    )
    (_, first, second), statuses = f.memory[CHOSEN]
    section.target(
        f"{chosen.label}: memory does not keep growing (second pass over the same tenants ≤ "
        f"{MEMORY_GROWTH_GOAL_KIB // 1024} MiB)",
        f"{(second - first) / 1024:+.1f} MiB",
        second - first <= MEMORY_GROWTH_GOAL_KIB,
    )
    answered = all(status == 200 for _, statuses in f.memory.values() for status in statuses)
    section.target(
        f"every isolated tenant's admin answered 200 ({', '.join(VARIANTS[k].label for k in f.memory)})",
        "yes" if answered else "no",
        answered,
    )
    variant, series = f.idle
    section.target(
        f"{variant.label}: idle tenant sessions all closed",
        f"none left after {series[-1][0]:.1f} s" if series[-1][1] == 0 else f"{series[-1][1]} left",
        series[-1][1] == 0,
    )


def report_reading(section, f):
    """What the latency figures say, computed from them (a new run says it of its own)."""
    mode, cells = f.mode, f.cells
    clients = min(mode.pooling_clients)
    chosen, bound = VARIANTS[CHOSEN], VARIANTS[CHOSEN].pool_bound
    if chosen not in f.variants:
        return
    lines = ["Reading:", ""]
    for workload in _workloads(mode):
        for v in f.variants:
            cells_of = {n: _cell(f, v.key, workload, n, clients) for n in mode.pooling_tenant_counts}
            ratios = ", ".join(
                f"{n}: {fmt_ratio(ratio(isolated.median, shared.median))}"
                for n, (isolated, shared) in cells_of.items()
                if measured(mode, v, workload, n)
            )
            if ratios:
                lines.append(
                    f"- {workload.label}, {v.label}: isolated / shared p50 at {clients} client, by N, {ratios}."
                )
    if VARIANTS[BASELINE] in f.variants:
        judged = WORKLOADS[JUDGED]
        miss = [
            isolated.median - shared.median
            for isolated, shared in (_cell(f, BASELINE, judged, n, clients) for n in mode.pooling_tenant_counts)
        ]
        lines.append(
            "- A new session costs what the baseline's isolated calls pay over the shared ones: "
            f"{ms(min(miss))}–{ms(max(miss))} ms at p50 ({judged.label}, {clients} client). {chosen.label} saves it "
            f"on a hit, and keeps at most {bound} idle sessions per server."
        )
        for workload in _workloads(mode):
            hits = ", ".join(
                f"{n}: {_hit_rate(cells, Cells.key(mode, CHOSEN, workload.key, n, clients))}"
                for n in mode.pooling_tenant_counts
            )
            covered = ", ".join(
                f"{n}: {workload.law(n, ZIPF_EXPONENT).share_of_top(bound):.0%}" for n in mode.pooling_tenant_counts
            )
            why = (
                f"its {workload.hot} tenants fit in the pool, so after the warm-up a miss is rare: a request that "
                "finds every pooled session of its tenant taken by others in flight (with several clients the hot "
                "tenants' sessions together can pass the bound, and the least recently used are closed)"
                if workload.hot and workload.hot <= bound
                else f"at best it holds the {bound} hottest tenants, who take {covered} of the requests under this "
                "law (LRU holds fewer, and requests in flight at once for one tenant need a session each): beyond "
                "them an isolated tenant's call pays the new session again, which is what its p50 and p99 show"
            )
            lines.append(f"- {workload.label}: hit rate by N {hits} ({clients} client); {why}.")
    section.add(*lines, "")


def report(section, f):
    report_latency(section, f)
    report_reading(section, f)
    report_connections(section, f)
    report_memory(section, f)
    report_idle(section, f)
    report_targets(section, f)


def run(ctx):
    section = Section("7. Pooled connections to tenant databases")
    fixtures.reset()
    try:
        measure(ctx, section)
    finally:
        ctx.sandbox.stop_processes()
        logger.info("pooling: dropping the tenants")
        drop_isolated(max(ctx.mode.pooling_tenant_counts))
        fixtures.reset()
        pooling_bouncer.drop_lookup_role()  # first: its name has the tenant prefix, and its grants must go with it
        sandbox.drop_tenant_roles()
        logger.info("pooling: tenants dropped")
    return section
