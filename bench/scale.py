"""5. Scale with the number of tenants: a tenant-scoped call, and `migrate_tenants` over many databases.

Tenant rows (and one admin each) are inserted in bulk: shared tenants in the main database, plus a few
isolated tenants with real databases cloned from the template. Each GET /api/users/me is sent with the
token of a tenant admin picked at random among all tenants, so resolution and routing see them all.
"""

import asyncio
import random
import subprocess
import sys
import time

from django.contrib.auth.hashers import make_password

from tenants import provisioners
from tenants.databases import database_name_for, use_tenant
from tenants.models import ProvisioningStatus, Role, Tenant, User

from . import environment, fixtures
from .clients import get_loop
from .report import Section
from .stack import ROOT, Web
from .stats import Summary, fmt_ratio, ratio, triple_ms

ISOLATED_FOR_CALLS = 3
CLIENTS = 1


def _tenant(tenant_id, *, isolated):
    return Tenant(
        id=tenant_id,
        name=f"Scale {tenant_id}",
        admin_email=f"admin@{tenant_id}.test",
        status=ProvisioningStatus.ACTIVE,
        is_provisioned=True,
        has_isolated_database=isolated,
        database_name=database_name_for(tenant_id) if isolated else None,
    )


def add_shared_tenants(start, count):
    """`count` shared tenants, each with its admin, in two bulk inserts. Returns their admins."""
    tenants = [_tenant(f"scl-{i:05d}", isolated=False) for i in range(start, start + count)]
    Tenant.objects.bulk_create(tenants, batch_size=1000)
    password = make_password(fixtures.ADMIN_PASSWORD)
    admins = [User(email=t.admin_email, tenant_id=t.id, roles=[Role.ADMIN], password=password) for t in tenants]
    return User.objects.using("default").bulk_create(admins, batch_size=1000)


def add_isolated_tenants(count, *, label, with_admin):
    """Isolated tenants with real databases cloned from the template (and their admin, if asked)."""
    admins = []
    for i in range(count):
        tenant = _tenant(f"{label}-{i:04d}", isolated=True)
        provisioners.create_database(tenant.database_name)
        tenant.save(force_insert=True)
        if with_admin:
            with use_tenant(tenant):
                admins.append(
                    User.objects.create_user(
                        tenant.admin_email, fixtures.ADMIN_PASSWORD, tenant_id=tenant.id, roles=[Role.ADMIN]
                    )
                )
    return admins


def _requests(tokens, count):
    return [("/api/users/me", {"Authorization": f"Bearer {random.choice(tokens)}"}) for _ in range(count)]


def tenant_count_latency(ctx, section):
    mode = ctx.mode
    web = Web(ctx.sandbox, name="web-scale")
    rows, medians = [], {}
    try:
        isolated_tokens = fixtures.tokens_for(add_isolated_tenants(ISOLATED_FOR_CALLS, label="sci", with_admin=True))
        shared_tokens, have = [], ISOLATED_FOR_CALLS
        asyncio.run(get_loop(web.url, _requests(isolated_tokens, 20), concurrency=CLIENTS))  # warm-up
        for count in mode.scale_tenant_counts:
            shared_tokens += fixtures.tokens_for(add_shared_tenants(have, count - have))
            have = count
            for label, tokens in (("shared", shared_tokens), ("isolated", isolated_tokens)):
                result = asyncio.run(get_loop(web.url, _requests(tokens, mode.scale_requests), concurrency=CLIENTS))
                s = Summary.of(result.latencies)
                medians[(label, count)] = s.median
                bad = {k: v for k, v in result.statuses.items() if k != 200}
                rows.append([count, label, triple_ms(s), s.count, bad or "none"])
    finally:
        web.stop()
    section.add(
        f"GET /api/users/me as a tenant admin, {CLIENTS} client, {mode.scale_requests} requests per row, each "
        f"with the token of a random tenant's admin: shared tenants (all N but {ISOLATED_FOR_CALLS}), and "
        f"{ISOLATED_FOR_CALLS} isolated tenants with their own databases (their rows measured separately).",
        "",
    )
    section.table(["tenants", "tenant kind called", "latency ms min / p50 / p99", "answers", "non-200"], rows)
    low, high = min(mode.scale_tenant_counts), max(mode.scale_tenant_counts)
    growth = {label: ratio(medians[(label, high)], medians[(label, low)]) for label in ("shared", "isolated")}
    section.add(
        f"p50 with {high} tenants / p50 with {low}: shared {fmt_ratio(growth['shared'])}, "
        f"isolated {fmt_ratio(growth['isolated'])}.",
        "",
    )
    worst = max(growth.values())
    section.target(
        f"tenant-scoped call does not grow with tenants ({low} → {high})",
        f"p50 ratio {fmt_ratio(worst)}",
        worst <= 1.5,
    )


def _migrate_tenants(parallel):
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "manage.py", "migrate_tenants", "--parallel", str(parallel)],
        cwd=ROOT,
        env=environment.child_env(),
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"migrate_tenants --parallel {parallel} failed:\n{completed.stdout[-2000:]}")
    return seconds


def migrate_tenants(ctx, section):
    mode = ctx.mode
    add_isolated_tenants(mode.migrate_databases, label="mig", with_admin=False)
    samples = {p: [] for p in mode.migrate_parallel}
    for _ in range(mode.migrate_repeats):
        for parallel in mode.migrate_parallel:
            samples[parallel].append(_migrate_tenants(parallel))
    n = Tenant.objects.filter(has_isolated_database=True).count()
    section.add(
        f"`python manage.py migrate_tenants --parallel P` over {n} isolated databases (the {mode.migrate_databases} "
        f"made for this plus {ISOLATED_FOR_CALLS} above), all already at the head: what a deploy without a new "
        f"tenant-side migration costs. Wall time of the whole command, {mode.migrate_repeats} run(s) each, "
        "alternating.",
        "",
    )
    rows = [[p, " / ".join(f"{x:.1f}" for x in (min(v), sorted(v)[len(v) // 2], max(v)))] for p, v in samples.items()]
    section.table(["--parallel", "seconds min / median / max"], rows)
    low, high = min(mode.migrate_parallel), max(mode.migrate_parallel)
    speedup = ratio(Summary.of(samples[low]).median, Summary.of(samples[high]).median)
    section.add(f"--parallel {high} is {fmt_ratio(speedup)} faster than --parallel {low} (medians).", "")
    ctx.results["migrate_tenants"] = samples


def run(ctx):
    section = Section("5. Scale with the number of tenants")
    fixtures.reset()
    try:
        tenant_count_latency(ctx, section)
        migrate_tenants(ctx, section)
    finally:
        ctx.sandbox.stop_processes()
        fixtures.reset()
    return section
