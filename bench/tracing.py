"""11. Tracing: the accept path (POST /api/tenants -> 202) with tracing off, as by default, against the code before
tracing was added, and against tracing on.

"Before" is the tree of the commit before the one that added diquis/tracing.py (bench.other_tree: a git worktree
under var/, its own main database, migrated by its own migrations), served by the same virtualenv. "Off" is this
tree's Daphne started without any OTEL_* variable: no SDK, nothing instrumented (diquis.tracing), the project's
spans the API's no-op ones. "On" is the same Daphne with the console exporter (`OTEL_TRACES_EXPORTER=console`):
every span of the request (Django's, each psycopg query, each Redis command) is made, batched and written as JSON
to the process's log file, a cost at least that of an OTLP export, with no collector needed beside the bench.

No worker runs (as in section 1); the variants alternate round after round, in the reverse order every other
round, so that the machine's noise and its drift hit all of them alike.
"""

import os
from dataclasses import dataclass, field

from . import accept, fixtures, other_tree
from .report import Section
from .stack import Web
from .stats import Summary, fmt_ratio, ms, ratio

TRACING_MODULE = "diquis/tracing.py"


@dataclass(frozen=True, eq=False)  # hashed by identity: keys of the figures
class Variant:
    name: str  # in the ratio columns
    label: str  # its column
    env: dict = field(default_factory=dict)
    before_tracing: bool = False  # served from the tree before tracing (bench.other_tree)


BEFORE = Variant("before", "before tracing (the parent commit)", before_tracing=True)
OFF = Variant("off", "tracing off (no OTEL_*)")
ON = Variant(
    "on", "tracing on (console exporter)", {"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "diquis-bench"}
)
VARIANTS = (BEFORE, OFF, ON)
# The ratio columns: (the variant measured, the one it is measured against).
COMPARISONS = ((OFF, BEFORE), (ON, OFF))


def _one_variant(ctx, variant, tree, measured):
    mode = ctx.mode
    served = tree if variant.before_tracing else None
    web = Web(ctx.sandbox, name="web-tracing", env=variant.env, tree=served)
    headers = other_tree.root_headers(web) if served else None

    def post_tenants(count, *, concurrency, kind):
        return accept.closed_loop_rounds(
            web,
            "/api/tenants",
            count,
            concurrency=concurrency,
            rounds=1,
            expect=202,
            kind=kind,
            isolated=True,
            headers=headers,
        )

    try:
        post_tenants(20, concurrency=4, kind="warm")
        for concurrency in mode.tracing_concurrency:
            latencies, rates, _ = post_tenants(mode.tracing_requests, concurrency=concurrency, kind="trc")
            measured["latency"][concurrency] += latencies
            measured["rate"][concurrency] += rates
    finally:
        ctx.sandbox.stop_processes()
        if served:
            tree.reset()
        else:
            fixtures.reset()


def _rows(measured, concurrencies):
    rows = []
    for clients in concurrencies:
        latency = {v: Summary.of(measured[v.label]["latency"][clients]) for v in VARIANTS}
        rate = {v: Summary.of(measured[v.label]["rate"][clients]).median for v in VARIANTS}
        rows.append(
            [
                f"{clients} client(s): latency ms p50 / p99",
                *[f"{ms(latency[v].median)} / {ms(latency[v].p99)}" for v in VARIANTS],
                *[
                    f"{fmt_ratio(ratio(latency[a].median, latency[b].median))} / "
                    f"{fmt_ratio(ratio(latency[a].p99, latency[b].p99))}"
                    for a, b in COMPARISONS
                ],
            ]
        )
        rows.append(
            [
                f"{clients} client(s): 202s per second (median of the rounds)",
                *[f"{rate[v]:.1f}" for v in VARIANTS],
                *[fmt_ratio(ratio(rate[b], rate[a])) for a, b in COMPARISONS],
            ]
        )
    return rows


def run(ctx):
    inherited = sorted(name for name in os.environ if name.startswith("OTEL_"))
    if inherited:
        raise RuntimeError(f"the 'off' variant needs an environment without OTEL_* (found {', '.join(inherited)})")
    mode = ctx.mode
    section = Section("11. Tracing: the accept path before tracing, with tracing off, and on")
    fixtures.reset()
    concurrencies = mode.tracing_concurrency
    measured = {
        v.label: {"latency": {c: [] for c in concurrencies}, "rate": {c: [] for c in concurrencies}} for v in VARIANTS
    }
    commit = other_tree.commit_before(TRACING_MODULE)
    with other_tree.OtherTree(commit, "before_tracing") as tree:
        if (tree.path / TRACING_MODULE).exists():
            raise RuntimeError(f"commit {commit[:7]} has {TRACING_MODULE}: not the code before tracing")
        for round_number in range(mode.tracing_rounds):
            for variant in VARIANTS if round_number % 2 == 0 else reversed(VARIANTS):
                _one_variant(ctx, variant, tree, measured[variant.label])
    section.add(
        f"{mode.tracing_rounds} round(s); in each, one Daphne per variant, the variants one after the other "
        "(in the reverse order every other round), "
        f"{mode.tracing_requests} isolated-tenant POSTs per client count (closed loop, as in section 1, no worker). "
        f'"Before" is commit {commit[:7]}, the parent of the commit that added {TRACING_MODULE}, from a git '
        "worktree on a main database of its own. The ratio columns: latency, the first over the second; "
        "throughput, the second over the first (above 1: the first costs more).",
        "",
    )
    ratios = [f"{a.name} / {b.name}" for a, b in COMPARISONS]
    section.table(["figure", *[v.label for v in VARIANTS], *ratios], _rows(measured, concurrencies))
    ctx.results["tracing"] = {"measured": measured, "before": commit}
    return section
