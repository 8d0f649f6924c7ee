"""8. Upgrading every tenant database: a release with nothing to apply, and one with a new tenant-side migration,
over N isolated tenants, against the `migrate_tenants` it replaced and against django-tenants, in the same run.

The tenant side is bench.tenant_product (38 models, 22 migrations: the size of a real product's), installed with
DIQUIS_TENANT_APPS for the whole bench run; its next release (bench.settings_release) adds one migration, a column
and an index on its orders table. The N tenants are made as creation jobs leave them (bench.pooling_tenants: the
database cloned from the template, the tenant's role, an admin); their catalog rows say they are at this release's
head, as provisioning records.

- Nothing to apply: `python manage.py migrate_tenants` (this release's command: it starts an upgrade and follows
  it), the whole command's wall time; and `POST /api/upgrades` answered by Daphne.
- One new migration: the web and a worker run the next release; `POST /api/upgrades {"parallel": 4}`, and the
  wall time until the upgrade is Succeeded (the new release's template, its canaries, every tenant), read from the
  catalog every 50 ms. Meanwhile one client calls `GET /api/users/me` as the admins of a few of the tenants, one
  call after another; the same client against the same web, just before the upgrade, is the idle baseline.
- The baseline: the same N databases cloned afresh, migrated by `migrate_tenants --parallel 4` as it was before
  upgrades (bench.migrate_tenants_before), under the next release's settings; and its run with nothing to apply.
- django-tenants (bench.upgrades_django_tenants, its own venv): N schemas with the same app, `migrate_schemas
  --executor multiprocessing` with nothing to apply and with the same new migration.

After each migration every tenant database (every schema, for django-tenants) is checked for the new column and
index, not only the catalog.
"""

import asyncio
import logging
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg

from tenants.models import UPGRADE_OPEN, Tenant, Upgrade, UpgradeTenant, UpgradeTenantStatus
from tenants.provisioning import databases, roles
from tenants.provisioning.stores import main_store

from . import environment, fixtures, pooling_tenants, sandbox, upgrades_django_tenants
from .clients import get_each
from .commands import timed_run
from .report import Section
from .stack import Web, start_worker, wait_for_workers
from .stats import Summary, fmt_ratio, ms, ratio, triple_ms
from .tenant_product import NEW_COLUMN, NEW_INDEX, ORDER_TABLE

logger = logging.getLogger("bench")

RELEASE_SETTINGS = "bench.settings_release"
LABEL = "upg"
PARALLEL = 4
POLL_SECONDS = 0.05
UPGRADE_TIMEOUT = 1800
CHECK_THREADS = 4
PATH = "/api/users/me"


def timed_command(argv, *, settings=None):
    """Wall time of one command in the bench's environment; raises if it fails."""
    return timed_run(argv, env=environment.child_env(**({"DJANGO_SETTINGS_MODULE": settings} if settings else {})))


def migrate_tenants_now(settings=None):
    return timed_command([sys.executable, "manage.py", "migrate_tenants"], settings=settings)


def django_start():
    """Wall time of starting the interpreter and Django alone: the part of each command's time that is not its work."""
    return timed_command([sys.executable, "-c", "import django; django.setup()"])


def migrate_tenants_before(settings=None):
    argv = [sys.executable, "-m", "bench.migrate_tenants_before", "--parallel", str(PARALLEL)]
    return timed_command(argv, settings=settings)


def tenant_databases():
    return list(Tenant.objects.filter(id__startswith=f"{LABEL}-").values_list("database_name", flat=True))


def _has_release(database_name):
    with psycopg.connect(environment.server_dsn(database_name)) as connection:
        column = connection.execute(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = %s AND column_name = %s",
            [ORDER_TABLE, NEW_COLUMN],
        ).fetchone()[0]
        index = connection.execute("SELECT count(*) FROM pg_indexes WHERE indexname = %s", [NEW_INDEX]).fetchone()[0]
    return column == 1, index == 1


def databases_with_release():
    """(databases with the new column, with the new index), read from every tenant database itself."""
    with ThreadPoolExecutor(CHECK_THREADS) as executor:
        found = list(executor.map(_has_release, tenant_databases()))
    return sum(column for column, _ in found), sum(index for _, index in found)


def _last_applied(database_name):
    with psycopg.connect(environment.server_dsn(database_name)) as connection:
        return connection.execute("SELECT extract(epoch FROM max(applied)) FROM django_migrations").fetchone()[0]


def applied_since(began):
    """Seconds from `began` (time.time()) to the migration each tenant database recorded after it
    (django_migrations.applied), in order: the baseline's progress, for the charts."""
    with ThreadPoolExecutor(CHECK_THREADS) as executor:
        applied = [float(a) for a in executor.map(_last_applied, tenant_databases()) if a is not None]
    return sorted(a - began for a in applied if a >= began)


def _reclone(database_name):
    store = main_store()
    sandbox.drop_database(database_name)
    databases.create_database(store, database_name)  # from this release's template: the migration pending again
    roles.ensure_tenant_role(store, database_name)


def reclone_all():
    with ThreadPoolExecutor(pooling_tenants.CREATION_THREADS) as executor:
        list(executor.map(_reclone, tenant_databases()))


def requests_until(stop, tokens):
    """(path, headers) of GET /api/users/me as each admin in turn, until `stop` is set."""
    turn = 0
    while not stop.is_set():
        yield PATH, {"Authorization": f"Bearer {tokens[turn % len(tokens)]}"}
        turn += 1


def idle_latencies(web, tokens, count):
    requests = [(PATH, {"Authorization": f"Bearer {tokens[i % len(tokens)]}"}) for i in range(count)]
    return asyncio.run(get_each(web.url, requests, concurrency=1))


def _wait_for_end(upgrade_id):
    deadline = time.monotonic() + UPGRADE_TIMEOUT
    while time.monotonic() < deadline:
        status = Upgrade.objects.filter(pk=upgrade_id).values_list("status", flat=True).first()
        if status not in UPGRADE_OPEN:
            return status
        time.sleep(POLL_SECONDS)
    raise RuntimeError(f"upgrade {upgrade_id} still open after {UPGRADE_TIMEOUT} s")


def upgrade_timeline(upgrade_id, posted_at):
    """Seconds from the POST to each milestone of the upgrade, from its children's timestamps."""
    children = list(UpgradeTenant.objects.filter(upgrade_id=upgrade_id))
    done = [c for c in children if c.status == UpgradeTenantStatus.DONE]
    canaries = [c.finished_at.timestamp() - posted_at for c in done if c.is_canary]
    started = [c.started_at.timestamp() - posted_at for c in children if c.started_at]
    finished = [c.finished_at.timestamp() - posted_at for c in done]
    methods = {}
    for child in done:
        methods[child.method] = methods.get(child.method, 0) + 1
    return {
        "children": len(children),
        "done": len(done),
        "failed": sum(c.status == UpgradeTenantStatus.FAILED for c in children),
        "attempts": sum(c.attempts for c in children),
        "canaries": len(canaries),
        "first child started": min(started, default=None),
        "first canary done": min(canaries, default=None),
        "last canary done": max(canaries, default=None),
        "last tenant done": max(finished, default=None),
        "methods": methods,
        "finished": sorted(finished),  # every tenant's, for the charts
    }


def upgrade_through_the_api(ctx, tokens, *, on_started=None):
    """The next release's web and worker; the idle latency, then the upgrade and the latency while it runs.
    `on_started`: called once the worker is up, before the upgrade (bench.profile_upgrade starts its sampler)."""
    mode = ctx.mode
    web = Web(ctx.sandbox, settings=RELEASE_SETTINGS)
    start_worker(ctx.sandbox, settings=RELEASE_SETTINGS)
    wait_for_workers(1)
    callers = tokens[: mode.upgrade_callers]
    idle_latencies(web, callers, mode.upgrade_idle_requests // 4)  # warm: the web's first sessions and pools
    idle = idle_latencies(web, callers, mode.upgrade_idle_requests)
    if on_started is not None:
        on_started()
    stop, during = threading.Event(), []
    caller = threading.Thread(
        target=lambda: during.extend(asyncio.run(get_each(web.url, requests_until(stop, callers), concurrency=1)))
    )
    caller.start()
    try:
        posted_mono, posted_at = time.monotonic(), time.time()
        response = httpx.post(
            f"{web.url}/api/upgrades", json={"parallel": PARALLEL}, headers=fixtures.root_headers(), timeout=60
        )
        if response.status_code != 202:
            raise RuntimeError(f"POST /api/upgrades answered {response.status_code}: {response.text[:500]}")
        upgrade_id = response.json()["data"]
        status = _wait_for_end(upgrade_id)
        wall = time.monotonic() - posted_mono
    finally:
        stop.set()
        caller.join()
    window = [a for a in during if posted_mono <= a.started <= posted_mono + wall]
    return {
        "status": status,
        "wall": wall,
        "accept": response.elapsed.total_seconds(),
        "timeline": upgrade_timeline(upgrade_id, posted_at),
        "idle": idle,
        "during": window,
    }


def accept_nothing_to_apply(ctx, count):
    """POST /api/upgrades with every tenant at the head: the latency of each 202 (each upgrade Succeeded at once)."""
    web = Web(ctx.sandbox)
    try:
        latencies = []
        headers = fixtures.root_headers()
        with httpx.Client(base_url=web.url, headers=headers, timeout=60) as client:
            for _ in range(count):
                response = client.post("/api/upgrades", json={})
                if response.status_code != 202:
                    raise RuntimeError(f"POST /api/upgrades answered {response.status_code}: {response.text[:500]}")
                latencies.append(response.elapsed.total_seconds())
        return latencies
    finally:
        web.stop()


def django_tenants_side(n):
    """Their figures, or why there are none (their venv could not be made, their command failed)."""
    try:
        return upgrades_django_tenants.measure(n)
    except Exception as error:  # their side failing must not lose ours
        logger.exception("django-tenants side failed")
        return {"error": f"{type(error).__name__}: {str(error).strip()[-1500:]}"}


def statuses(answers):
    counts = {}
    for answer in answers:
        counts[answer.status] = counts.get(answer.status, 0) + 1
    return ", ".join(f"{status}: {n}" for status, n in sorted(counts.items(), key=str))


def report(section, mode, n, figures):
    nothing, ours, before, theirs = figures["nothing"], figures["ours"], figures["before"], figures["theirs"]
    ours_nothing = Summary.of(nothing["command"]).median
    start = Summary.of(nothing["start"]).median
    accept = Summary.of(nothing["accept"])
    ours_one = ours["wall"]
    their_nothing = theirs.get("nothing_to_apply_seconds", float("nan"))
    their_one = theirs.get("one_migration_seconds", float("nan"))
    section.add(
        f"{n} isolated tenant databases (django-tenants: {n} schemas of one database), one tenant-side app of "
        "38 models and 22 migrations (bench.tenant_product), the new release's migration a nullable column and "
        "an index on its orders table. Wall time of the whole operation; per tenant, that time / N.",
        "",
    )

    def per_tenant(seconds):
        return ms(seconds / n)

    rows = [
        [
            "nothing to apply",
            f"{ours_nothing:.2f} s (command; {len(nothing['command'])} runs, median)",
            f"{before['nothing']:.1f} s",
            f"{their_nothing:.1f} s",
            fmt_ratio(ratio(before["nothing"], ours_nothing)),
            fmt_ratio(ratio(their_nothing, ours_nothing)),
        ],
        [
            "one new migration",
            f"{ours_one:.1f} s ({per_tenant(ours_one)} ms/tenant)",
            f"{before['one']:.1f} s ({per_tenant(before['one'])} ms/tenant)",
            f"{their_one:.1f} s ({per_tenant(their_one)} ms/tenant)",
            fmt_ratio(ratio(before["one"], ours_one)),
            fmt_ratio(ratio(their_one, ours_one)),
        ],
    ]
    dt_version = theirs.get("versions", {}).get("django-tenants", "?")
    dt_label = (
        f"django-tenants {dt_version} `migrate_schemas --executor multiprocessing` "
        f"({theirs.get('processes', '?')} processes)"
    )
    section.table(
        [
            "release",
            f"Diquis: upgrade (`POST /api/upgrades`, parallel {PARALLEL}, 1 worker)",
            f"`migrate_tenants --parallel {PARALLEL}` before upgrades",
            dt_label,
            "before / ours",
            "django-tenants / ours",
        ],
        rows,
    )
    if "error" in theirs:
        section.add(f"django-tenants side: **not measured**: `{theirs['error']}`", "")
    section.add(
        f"- Nothing to apply: the command's {ours_nothing:.2f} s is mostly Python and Django starting "
        f"({start:.2f} s, median of `python -c 'import django; django.setup()'` run in turn with it). The upgrade "
        f"itself, `POST /api/upgrades` answered (202, Succeeded at once, no tenant database opened): "
        f"{triple_ms(accept)} ms min / p50 / p99 over {len(nothing['accept'])} calls.",
    )
    if "create_seconds" in theirs:
        section.add(f"- django-tenants' {n} schemas were made in {theirs['create_seconds']:.0f} s (not timed above).")
    section.add("")
    timeline = ours["timeline"]
    section.add(
        f"The upgrade: {ours['status']}; {timeline['done']} of {timeline['children']} tenants done, "
        f"{timeline['failed']} failed, {timeline['attempts']} attempts in all; by method: "
        + ", ".join(f"{method or '?'} {count}" for method, count in sorted(timeline["methods"].items()))
        + f". POST answered in {ms(ours['accept'])} ms. Seconds after the POST:",
        "",
    )
    section.table(
        [
            "first tenant started",
            "first canary done",
            f"all {timeline['canaries']} canaries done",
            "last tenant done",
            "Succeeded seen",
        ],
        [
            [
                _s(timeline["first child started"]),
                _s(timeline["first canary done"]),
                _s(timeline["last canary done"]),
                _s(timeline["last tenant done"]),
                _s(ours["wall"]),
            ]
        ],
    )
    section.add(
        "Beside the lanes, the parent job makes the new release's template on each server (derived from the "
        "previous template by the upgrade's compiled plan where that equals a fresh build, else migrated afresh: "
        "tenants.provisioning.template; the templates it replaces are dropped after the upgrade's end); the "
        "canaries go first, the rest only once they all succeeded.",
        "",
    )
    idle_ok = [a.seconds for a in ours["idle"] if a.status == 200]
    during_ok = [a.seconds for a in ours["during"] if a.status == 200]
    idle_s, during_s = Summary.of(idle_ok), Summary.of(during_ok)
    section.table(
        [f"`GET {PATH}` as {mode.upgrade_callers} tenants' admins, 1 client", "latency ms min / p50 / p99", "answers"],
        [
            ["idle (same web and worker, just before)", triple_ms(idle_s), statuses(ours["idle"])],
            ["while the upgrade runs", triple_ms(during_s), statuses(ours["during"])],
        ],
    )
    checks = figures["checks"]
    section.add(
        "New column and index found in the databases themselves: "
        + "; ".join(f"{what}: {column} / {index} of {n}" for what, (column, index) in checks.items())
        + (
            f"; django-tenants: {theirs.get('schemas_with_column', '?')} / {theirs.get('schemas_with_index', '?')} "
            f"of {n} schemas."
        ),
        "",
    )
    p99_ratio = ratio(during_s.p99, idle_s.p99)
    all_there = all(column == n and index == n for column, index in checks.values())
    section.target(
        f"nothing to apply, {n} tenants: ours ≤ 1 s",
        f"{ms(accept.p99)} ms (POST, p99); the command {ours_nothing:.2f} s, {start:.2f} s of it Django starting",
        accept.p99 <= 1,
    )
    section.target(
        "nothing to apply: ≥ 100× faster than django-tenants",
        fmt_ratio(ratio(their_nothing, ours_nothing)),
        _met(ratio(their_nothing, ours_nothing), 100),
    )
    section.target(
        f"one new migration: ≤ 20 ms per tenant ({n} tenants)", f"{per_tenant(ours_one)} ms", ours_one / n <= 0.020
    )
    section.target(
        "one new migration: ≥ 3× faster than django-tenants",
        fmt_ratio(ratio(their_one, ours_one)),
        _met(ratio(their_one, ours_one), 3),
    )
    section.target(
        "tenant-scoped call p99 while upgrading ≤ 2× idle",
        f"{ms(during_s.p99)} vs {ms(idle_s.p99)} ms ({fmt_ratio(p99_ratio)})",
        p99_ratio <= 2,
    )
    section.target("every tenant database has the new column and index", "yes" if all_there else "**no**", all_there)


def _s(seconds):
    return "–" if seconds is None else f"{seconds:.1f}"


def _met(value, goal):
    return None if value != value else value >= goal  # NaN: not measured


def run(ctx):
    section = Section("8. Upgrading every tenant database")
    mode = ctx.mode
    n = mode.upgrade_tenants
    fixtures.reset()
    try:
        logger.info("upgrades: %s isolated tenants", n)
        tokens = pooling_tenants.isolated_tokens(n, label=LABEL)
        nothing = {"command": [], "start": []}
        for _ in range(mode.upgrade_repeats):  # side by side, in turn
            nothing["command"].append(migrate_tenants_now())
            nothing["start"].append(django_start())
        nothing["accept"] = accept_nothing_to_apply(ctx, mode.upgrade_idle_requests // 4)
        before = {"nothing": migrate_tenants_before()}
        logger.info("upgrades: nothing to apply measured; the upgrade")
        ours = upgrade_through_the_api(ctx, tokens)
        ctx.sandbox.stop_processes()
        checks = {"Diquis upgrade": databases_with_release()}
        logger.info("upgrades: the baseline command")
        reclone_all()
        began = time.time()
        before["one"] = migrate_tenants_before(RELEASE_SETTINGS)
        before["one_applied"] = applied_since(began)
        checks["`migrate_tenants` before upgrades"] = databases_with_release()
        logger.info("upgrades: django-tenants")
        theirs = django_tenants_side(n)
        figures = {"nothing": nothing, "ours": ours, "before": before, "theirs": theirs, "checks": checks}
        ctx.results["upgrades"] = figures
        report(section, mode, n, figures)
    finally:
        ctx.sandbox.stop_processes()
        pooling_tenants.drop_isolated(n, label=LABEL)
        fixtures.reset()
    return section
