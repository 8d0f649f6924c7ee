"""Tenants of the pooling benchmark: shared ones in bulk, isolated ones with real databases cloned from the
template and their own role (as provisioning gives them), an admin each, and the long tail of traffic over them.

The isolated tenants are made by the provisioning steps a creation job runs (clone, role), not through the API:
a thousand creations through the worker would take the section's whole time budget and measure something else
(section 3 measures it). The admin of each is inserted with one precomputed hash: the benchmark signs tokens,
it never signs in.
"""

import itertools
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.contrib.auth.hashers import make_password
from django.db import connections

from tenants.connections import database_name_for, tenant_role_name, use_tenant
from tenants.models import Role, Tenant, User
from tenants.provisioning import databases, roles
from tenants.provisioning.stores import main_store
from tenants.provisioning.template import ensure_template
from tenants.tokens import issue_tokens

from . import environment, fixtures, sandbox

SHARED_LABEL = "pls"
ISOLATED_LABEL = "pli"
# Clones and drops run a few at a time: the server's disk does the work, the bench only waits (a DROP DATABASE
# alone takes ~0.2 s here, eight at once ~0.06 s each).
CREATION_THREADS = 4
DROP_THREADS = 8


def shared_tokens(count):
    """`count` shared tenants with their admin (bulk inserts), and a token of each admin, hottest first."""
    tenants = [fixtures.active_tenant("Pooling", f"{SHARED_LABEL}-{i:04d}", isolated=False) for i in range(count)]
    Tenant.objects.bulk_create(tenants, batch_size=1000)
    password = make_password(fixtures.ADMIN_PASSWORD)
    admins = [User(email=t.admin_email, tenant_id=t.id, roles=[Role.ADMIN], password=password) for t in tenants]
    admins = User.objects.using("default").bulk_create(admins, batch_size=1000)
    return [issue_tokens(admin, tenant=tenant)["token"] for admin, tenant in zip(admins, tenants, strict=True)]


def _isolated(index, password, label):
    """One isolated tenant as a creation job leaves it: its database cloned, its role, its row, its admin."""
    tenant = fixtures.active_tenant("Pooling", f"{label}-{index:04d}", isolated=True)
    try:
        store = main_store()
        databases.create_database(store, tenant.database_name)
        roles.ensure_tenant_role(store, tenant.database_name)
        tenant.save(force_insert=True)
        with use_tenant(tenant):  # as the tenant's own role, through this process's pool: what requests do
            admin = User.objects.create(
                email=tenant.admin_email, tenant_id=tenant.id, roles=[Role.ADMIN], password=password
            )
        return issue_tokens(admin, tenant=tenant)["token"]
    finally:
        connections.close_all()  # this thread's main-database connection (the executor's threads end)


def isolated_tokens(count, *, label=ISOLATED_LABEL):
    """`count` isolated tenants (ids `<label>-0000`...), and a token of each admin, hottest first."""
    ensure_template(main_store())  # once, before the clones run side by side
    password = make_password(fixtures.ADMIN_PASSWORD)
    with ThreadPoolExecutor(CREATION_THREADS) as executor:
        return list(executor.map(_isolated, range(count), itertools.repeat(password), itertools.repeat(label)))


def _drop(index, label):
    name = database_name_for(f"{label}-{index:04d}")
    sandbox.drop_database(name)
    sandbox.drop_role(tenant_role_name(name))  # after its database: its privileges were there


def drop_isolated(count, *, label=ISOLATED_LABEL):
    """The isolated tenants' databases and roles, a few at a time (their rows go with fixtures.reset)."""
    with ThreadPoolExecutor(DROP_THREADS) as executor:
        list(executor.map(_drop, range(count), itertools.repeat(label)))


def tenant_databases_like():
    """The LIKE pattern of the isolated tenants' database names (not the template's, nor spares')."""
    return f"{environment.tenant_prefix()}{ISOLATED_LABEL}-%"


class Zipf:
    """Ranks 0..n-1 drawn with P(k) ∝ 1 / (k + 1)^s: a few tenants hot, most of them rarely called.

    Written here rather than taken from numpy: numpy's zipf is unbounded (no n), and `random.choices` with
    cumulative weights is all a bounded one needs.
    """

    def __init__(self, n, exponent):
        self.n, self.exponent = n, exponent
        weights = [1 / (k + 1) ** exponent for k in range(n)]
        self.cumulative = list(itertools.accumulate(weights))

    def share_of_top(self, k):
        """The fraction of requests that go to the k hottest tenants."""
        return self.cumulative[min(k, self.n) - 1] / self.cumulative[-1]

    def draws(self, count, seed):
        return random.Random(seed).choices(range(self.n), cum_weights=self.cumulative, k=count)


@dataclass(frozen=True)
class Workload:
    """Which of the N tenants a cell's requests go to: a Zipf law over the `hot` hottest (the others exist, were
    called before, and stay idle), or over all N when `hot` is None."""

    key: str
    label: str
    hot: int | None = None

    def tenants(self, count):
        """How many tenants the requests go to."""
        return min(count, self.hot) if self.hot else count

    def law(self, count, exponent):
        return Zipf(self.tenants(count), exponent)
