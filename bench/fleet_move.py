"""Moving a tenant with data (API.md: `POST /api/tenants/{id}/move`): wall time, and what a client writing all
along sees, by logical replication against pg_dump | pg_restore.

Two isolated tenants, one on each extra cluster, get ~100 MB of rows in their users table (`INSERT ... SELECT
generate_series` straight in the tenant's database: wide names, one shared password hash) and are moved to
`main`: from the `wal_level=logical` cluster the move can copy by logical replication, from the other it must
dump and restore. The servers are registered again (through the API) with the clusters' superuser for this
part: PostgreSQL 15 lets only superusers create a publication of all tables or a subscription.

While each move runs, one client creates users (`POST /api/users` as the tenant's admin) one after another
and another reads (`GET /api/users/me`). A refusal is any answer but 201; the longest refusal is the time from
sending the first refused write of a run of refusals to the answer of the next accepted write. Afterwards
every user that was answered 201 is looked up in the tenant's database (wherever it now is), and the filler
rows are counted.
"""

import asyncio
import math
import time

import httpx
from django.db import connections
from django.urls import resolve

from diquis.envelope import api_not_found
from tenants.connections import use_tenant
from tenants.models import MAIN_SERVER, ProvisioningStatus, Tenant, User

from . import fixtures
from .clients import Answer, messages_of, messages_seen, statuses_of
from .fleet_servers import LOGICAL, PLAIN
from .fleet_tenants import clear_tenants, create_tenants, tenant_tokens
from .stack import Web, start_worker, wait_for_workers
from .stats import Summary, ms

MOVES = (("logical replication", LOGICAL, MAIN_SERVER), ("pg_dump + pg_restore", PLAIN, MAIN_SERVER))
WORKERS = 2
FILL_BATCH = 5_000
MOVE_TIMEOUT = 900
POLL_SECONDS = 0.1
WRITE_PASSWORD = fixtures.ADMIN_PASSWORD
# A valid PBKDF2 hash of no one's password: the filler users cannot sign in, and no hash is computed per row.
FILLER_HASH = "pbkdf2_sha256$1000000$benchfiller$" + "A" * 43 + "="


def move_available():
    """Whether this code has the move endpoint at all (unknown /api/ paths fall through to the envelope's 404)."""
    return resolve("/api/tenants/bench-probe/move").func is not api_not_found


def fill(fleet, tenant, megabytes):
    """Rows in the tenant's users table until it holds `megabytes` (with its indexes). Returns (rows, table MB,
    database MB)."""
    rows = 0
    with fleet.superuser_connection(tenant.database_server_id, tenant.database_name) as connection:
        while True:
            table, database = connection.execute(
                "SELECT pg_total_relation_size('tenants_user'), pg_database_size(current_database())"
            ).fetchone()
            if table >= megabytes * 2**20:
                return rows, table / 2**20, database / 2**20
            connection.execute(
                """
                INSERT INTO tenants_user (id, password, last_login, tenant_id, email, first_name, last_name,
                    phone_number, image_url, roles, is_active, created_on, token_generation, preferences)
                SELECT gen_random_uuid(), %(hash)s, NULL, %(tenant)s, 'filler-' || g || '@bench.test',
                    repeat(md5(g::text), 4), repeat(md5((-g)::text), 4), '', '', '[]'::jsonb, true, now(), 0,
                    '{}'::jsonb
                FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g
                """,
                {"hash": FILLER_HASH, "tenant": tenant.id, "first": rows + 1, "last": rows + FILL_BATCH},
            )
            rows += FILL_BATCH


async def write_continuously(base_url, token, done):
    """One client creating users one after another until `done`: every answer (and Retry-After) kept."""
    answers, retry_after, emails = [], [], []
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60) as client:
        i = 0
        while not done.is_set():
            i += 1
            email = f"writer{i:06d}@bench.test"
            body = {"email": email, "password": WRITE_PASSWORD, "firstName": "W", "lastName": str(i)}
            started, messages = time.monotonic(), ()
            try:
                response = await client.post("/api/users", json=body)
                status, messages = response.status_code, messages_of(response)
                if response.headers.get("Retry-After"):
                    retry_after.append(response.headers["Retry-After"])
            except httpx.HTTPError as error:
                status = type(error).__name__
            answers.append(Answer(started, time.monotonic() - started, status, messages))
            if status == 201:
                emails.append(email)
    return answers, retry_after, emails


async def read_continuously(base_url, token, done):
    answers = []
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
        while not done.is_set():
            started, messages = time.monotonic(), ()
            try:
                response = await c.get("/api/users/me")
                status, messages = response.status_code, messages_of(response)
            except httpx.HTTPError as error:
                status = type(error).__name__
            answers.append(Answer(started, time.monotonic() - started, status, messages))
    return answers


def longest_refusal(answers, accepted=201):
    """The longest time writes were refused: from sending the first refused write of a run to the answer of
    the next accepted one (to the last refused answer if none came after)."""
    longest, run_start = 0.0, None
    for answer in sorted(answers, key=lambda a: a.started):
        if answer.status != accepted:
            if run_start is None:
                run_start = answer.started
            run_end = answer.started + answer.seconds
        elif run_start is not None:
            longest = max(longest, answer.started + answer.seconds - run_start)
            run_start = None
    if run_start is not None:
        longest = max(longest, run_end - run_start)
    return longest


def wait_for_move(tenant_id, began):
    """Poll the catalog until the tenant is no longer Moving (or the timeout): (seconds, saw Moving). Runs in
    a thread of its own (beside the clients' event loop), whose connection it closes."""
    saw_moving = False
    try:
        while time.monotonic() - began < MOVE_TIMEOUT:
            status = Tenant.objects.values_list("status", flat=True).get(pk=tenant_id)
            if status == ProvisioningStatus.MOVING:
                saw_moving = True
            elif saw_moving or time.monotonic() - began > 5:
                return time.monotonic() - began, saw_moving
            time.sleep(POLL_SECONDS)
        return math.nan, saw_moving
    finally:
        connections.close_all()


async def move_while_writing(web, tenant, token, target, root_headers):
    """Writer and reader running; the move POSTed after a second of writes; both stopped a second after it
    ended."""
    done = asyncio.Event()
    writer = asyncio.create_task(write_continuously(web.url, token, done))
    reader = asyncio.create_task(read_continuously(web.url, token, done))
    await asyncio.sleep(1.0)
    async with httpx.AsyncClient(base_url=web.url, headers=root_headers, timeout=60) as client:
        began = time.monotonic()
        response = await client.post(f"/api/tenants/{tenant.id}/move", json={"databaseServer": target})
    accepted = response.status_code, response.json().get("messages")
    if response.status_code == 202:
        seconds, saw_moving = await asyncio.to_thread(wait_for_move, tenant.id, began)
    else:
        seconds, saw_moving = math.nan, False
    await asyncio.sleep(1.0)
    done.set()
    (writes, retry_after, emails), reads = await writer, await reader
    return {
        "accepted": accepted,
        "began": began,  # time.monotonic() of the POST, the clock of the answers' `started`
        "seconds": seconds,
        "saw_moving": saw_moving,
        "writes": writes,
        "retry_after": sorted(set(retry_after)),
        "emails": emails,
        "reads": reads,
    }


def one_move(web, fleet, *, label, source, target, megabytes):
    body = {**fixtures.tenant_body("flm", isolated=True), "databaseServer": source}
    create_tenants(web, [body])
    tenant = Tenant.objects.get(pk=body["id"])
    rows, table_size, size = fill(fleet, tenant, megabytes)
    token = tenant_tokens([tenant])[0]
    result = asyncio.run(move_while_writing(web, tenant, token, target, fixtures.root_headers()))
    tenant.refresh_from_db()
    with use_tenant(tenant):
        present = User.objects.filter(email__in=result["emails"]).count()
        filler = User.objects.filter(email__startswith="filler-").count()
    source_left = tenant.database_name in fleet.tenant_databases(source)
    result.update(
        label=label,
        source=source,
        target=target,
        rows=rows,
        table_megabytes=table_size,
        megabytes=size,
        server_after=tenant.database_server_id,
        status_after=tenant.status,
        error=tenant.provisioning_error,
        lost=len(result["emails"]) - present,
        filler_after=filler,
        source_left=source_left if tenant.database_server_id != source else None,
    )
    clear_tenants(fleet)
    return result


def _seconds(value):
    return "–" if math.isnan(value) else f"{value:.1f} s"


def run(ctx, section, fleet):
    mode = ctx.mode
    section.add("### Moving a tenant with data", "")
    if not move_available():
        section.add(
            'Not run: this code has no `POST /api/tenants/{id}/move` (API.md, "Tenants"). The benchmark is '
            "written against API.md (bench/fleet_move.py) and runs as soon as the endpoint is there: "
            f"{mode.fleet_move_megabytes} MB of rows per tenant, one move from `{LOGICAL}` (logical replication) "
            f"and one from `{PLAIN}` (pg_dump + pg_restore) to `main`, with a client writing all along.",
            "",
        )
        section.target("move: longest write refusal, logical replication against dump/restore", "not run", None)
        return
    clear_tenants(fleet)
    for i in range(WORKERS):
        start_worker(ctx.sandbox, name=f"worker{i}-fleet-move")
    web = Web(ctx.sandbox, name="web-fleet-move")
    wait_for_workers(WORKERS)
    try:
        fleet.as_superuser(web)
        fleet.use(web, {MAIN_SERVER: 1, LOGICAL: 1, PLAIN: 1})
        results = [
            one_move(web, fleet, label=label, source=source, target=target, megabytes=mode.fleet_move_megabytes)
            for label, source, target in MOVES
        ]
    finally:
        ctx.sandbox.stop_processes()
        clear_tenants(fleet)
    ctx.results["fleet moves"] = results
    report(section, results)


def report(section, results):
    section.add(
        "Each tenant's database is filled straight in PostgreSQL, then moved to `main` with `POST "
        "/api/tenants/{id}/move` while one client creates users (`POST /api/users`, each a password hash: about "
        "three a second) and another reads (`GET /api/users/me`). Wall time: the POST to the first poll of the "
        "catalog (every 0.1 s) that shows the tenant no longer `Moving`. The longest refusal: from sending the "
        "first refused write of a run to the answer of the next accepted one. Lost: users answered 201 but "
        "absent from the tenant's database after the move.",
        "",
    )
    rows = []
    for r in results:
        writes = r["writes"]
        reads = r["reads"]
        rows.append(
            [
                r["label"],
                f"{r['source']} → {r['target']}",
                f"{r['table_megabytes']:.0f} MB users table ({r['rows']:,} rows), database {r['megabytes']:.0f} MB",
                f"{r['accepted'][0]}",
                f"**{_seconds(r['seconds'])}**",
                f"{r['status_after']} on {r['server_after']}" + (f" ({r['error']})" if r["error"] else ""),
                f"**{longest_refusal(writes):.1f}**",
                statuses_of(writes),
                messages_seen(writes),
                ", ".join(r["retry_after"]) or "none",
                statuses_of(reads),
                ms(Summary.of([a.seconds for a in reads if a.status == 200]).max),
                r["lost"],
                f"{r['filler_after']:,}",
                {None: "–", True: "**yes**", False: "no"}[r["source_left"]],
            ]
        )
    section.table(
        [
            "method",
            "from → to",
            "data",
            "POST",
            "wall s",
            "after",
            "longest write refusal s",
            "writes",
            "refusals said",
            "Retry-After",
            "reads",
            "slowest read ms",
            "writes lost",
            "filler rows after",
            "source database left",
        ],
        rows,
    )
    by = {r["label"]: r for r in results}
    logical, dump = by.get("logical replication"), by.get("pg_dump + pg_restore")
    if logical and dump:
        section.add(
            f"- Longest write refusal, logical replication / dump-restore: {longest_refusal(logical['writes']):.1f} "
            f"s / {longest_refusal(dump['writes']):.1f} s; wall time {_seconds(logical['seconds'])} / "
            f"{_seconds(dump['seconds'])}.",
            "",
        )
    moved = all(r["server_after"] == r["target"] and r["status_after"] == ProvisioningStatus.ACTIVE for r in results)
    section.target(
        "move: tenant Active on the target, no write lost, nothing left on the source",
        "; ".join(
            f"{r['label']}: on {r['server_after']}, {r['lost']} lost, source left: {r['source_left']}" for r in results
        ),
        moved and not any(r["lost"] or r["source_left"] for r in results),
    )
    if logical and dump:
        section.target(
            "move by logical replication refuses writes for less time than dump/restore",
            f"{longest_refusal(logical['writes']):.1f} s against {longest_refusal(dump['writes']):.1f} s",
            longest_refusal(logical["writes"]) < longest_refusal(dump["writes"]),
        )
