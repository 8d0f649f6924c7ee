"""5. Scale with the number of tenants: a tenant-scoped call (`migrate_tenants` over many databases is section 8's).

Tenant rows (and one admin each) are inserted in bulk: shared tenants in the main database, plus a few
isolated tenants with real databases cloned from the template. Each GET /api/users/me is sent with the
token of a tenant admin picked at random among all tenants, so resolution and routing see them all.
"""

import asyncio
import random

from django.contrib.auth.hashers import make_password

from tenants.connections import use_tenant
from tenants.models import Role, Tenant, User
from tenants.provisioning import databases, roles
from tenants.provisioning.stores import main_store

from . import fixtures
from .clients import get_loop
from .report import Section
from .stack import Web
from .stats import Summary, fmt_ratio, ratio, triple_ms

ISOLATED_FOR_CALLS = 3
CLIENTS = 1


def add_shared_tenants(start, count):
    """`count` shared tenants, each with its admin, in two bulk inserts. Returns their admins."""
    tenants = [fixtures.active_tenant("Scale", f"scl-{i:05d}", isolated=False) for i in range(start, start + count)]
    Tenant.objects.bulk_create(tenants, batch_size=1000)
    password = make_password(fixtures.ADMIN_PASSWORD)
    admins = [User(email=t.admin_email, tenant_id=t.id, roles=[Role.ADMIN], password=password) for t in tenants]
    return User.objects.using("default").bulk_create(admins, batch_size=1000)


def add_isolated_tenants(count, *, label, with_admin):
    """Isolated tenants with real databases cloned from the template and their own role, as provisioning leaves
    them (and their admin, if asked)."""
    admins = []
    for i in range(count):
        tenant = fixtures.active_tenant("Scale", f"{label}-{i:04d}", isolated=True)
        databases.create_database(main_store(), tenant.database_name)
        roles.ensure_tenant_role(main_store(), tenant.database_name)  # requests connect as it
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


def _passes(counts):
    """Up and back down (10, 100, 1000, 100, 10): samples of each count come from both ends of the
    section, so a change of the machine's load during it does not pass for growth."""
    return [*counts, *reversed(counts[:-1])]


def tenant_count_latency(ctx, section):
    mode = ctx.mode
    web = Web(ctx.sandbox, name="web-scale")
    samples, statuses = {}, {}
    try:
        isolated_tokens = fixtures.tokens_for(add_isolated_tenants(ISOLATED_FOR_CALLS, label="sci", with_admin=True))
        shared = []  # (tenant id, token) of the shared tenants present
        asyncio.run(get_loop(web.url, _requests(isolated_tokens, 20), concurrency=CLIENTS))  # warm-up
        for count in _passes(list(mode.scale_tenant_counts)):
            wanted = count - ISOLATED_FOR_CALLS
            if wanted > len(shared):
                admins = add_shared_tenants(len(shared), wanted - len(shared))
                shared += zip([a.tenant_id for a in admins], fixtures.tokens_for(admins), strict=True)
            elif wanted < len(shared):
                Tenant.objects.filter(id__in=[tenant_id for tenant_id, _ in shared[wanted:]]).delete()
                shared = shared[:wanted]
            tokens = {"shared": [token for _, token in shared], "isolated": isolated_tokens}
            for label in ("shared", "isolated"):
                result = asyncio.run(
                    get_loop(web.url, _requests(tokens[label], mode.scale_requests), concurrency=CLIENTS)
                )
                samples.setdefault((count, label), []).extend(result.latencies)
                for status, n in result.statuses.items():
                    if status != 200:
                        statuses.setdefault((count, label), {}).setdefault(status, 0)
                        statuses[(count, label)][status] += n
    finally:
        web.stop()
    section.add(
        f"GET /api/users/me as a tenant admin, {CLIENTS} client, each request with the token of a random tenant's "
        f"admin: shared tenants (all N but {ISOLATED_FOR_CALLS}), and {ISOLATED_FOR_CALLS} isolated tenants with "
        "their own databases (measured separately). The tenant count goes up and back down "
        f"({', '.join(map(str, _passes(list(mode.scale_tenant_counts))))}), {mode.scale_requests} requests per "
        "kind at each step; each row pools both visits of its count.",
        "",
    )
    rows = [
        [count, label, triple_ms(Summary.of(v)), len(v), statuses.get((count, label)) or "none"]
        for (count, label), v in sorted(samples.items())
    ]
    section.table(["tenants", "tenant kind called", "latency ms min / p50 / p99", "answers", "non-200"], rows)
    low, high = min(mode.scale_tenant_counts), max(mode.scale_tenant_counts)
    growth = {
        label: ratio(Summary.of(samples[(high, label)]).median, Summary.of(samples[(low, label)]).median)
        for label in ("shared", "isolated")
    }
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


def run(ctx):
    section = Section("5. Scale with the number of tenants")
    fixtures.reset()
    try:
        tenant_count_latency(ctx, section)
    finally:
        ctx.sandbox.stop_processes()
        fixtures.reset()
    return section
