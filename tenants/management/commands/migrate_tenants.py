"""`python manage.py migrate_tenants [--parallel N]`: apply pending migrations to every isolated database.

`migrate` keeps doing the main database (shared tenants' rows live there). This command goes through
every isolated tenant's database, several at a time in a process pool if asked, prints a line per
database as it finishes, carries on past a failure, and ends with a summary of every failure and a
non-zero exit status if there was any.

Each database is migrated under its tenant's job lock, so it never races a job on the same tenant; then its
tenant's own role is set again (tenants.provisioning.roles: the password of the current SECRET_KEY, the grants).
A tenant whose database server does not answer is reported as failed within the connect timeout, and the others
go on.
"""

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass

from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from jobs.locks import subject_lock
from tenants.provisioning.databases import ensure_tenant_role, migrate_tenant_database
from tenants.selectors import get_tenant, isolated_tenants
from tenants.services import subject_for


@dataclass(frozen=True)
class Outcome:
    tenant_id: str
    database: str
    seconds: float
    error: str | None = None


def migrate_one(tenant_id):
    """Migrate one tenant's database; an error is reported, never raised (the others go on)."""
    started = time.monotonic()
    tenant = get_tenant(tenant_id)
    database = (tenant.database_name if tenant else None) or "?"
    try:
        if tenant is None:
            raise LookupError("the tenant no longer exists")
        with subject_lock(subject_for(tenant_id)):
            migrate_tenant_database(tenant)
            ensure_tenant_role(tenant)  # its password after a SECRET_KEY rotation, its grants on new tables
        error = None
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
    finally:
        connections.close_all()
    return Outcome(tenant_id, database, round(time.monotonic() - started, 2), error)


class Command(BaseCommand):
    help = "Apply pending migrations to the database of every isolated tenant."

    def add_arguments(self, parser):
        parser.add_argument(
            "--parallel", type=int, default=1, metavar="N", help="migrate N databases at a time (processes)"
        )

    def handle(self, *args, parallel, **options):
        if parallel < 1:
            raise CommandError("--parallel must be at least 1")
        tenant_ids = list(isolated_tenants().values_list("id", flat=True))
        if not tenant_ids:
            self.stdout.write("No isolated tenant databases to migrate.")
            return
        workers = min(parallel, len(tenant_ids))
        self.stdout.write(f"Migrating {len(tenant_ids)} tenant database(s), {workers} at a time.")
        failures = []
        for done, outcome in enumerate(self._outcomes(tenant_ids, workers), start=1):
            prefix = f"[{done}/{len(tenant_ids)}] {outcome.tenant_id} ({outcome.database})"
            if outcome.error:
                failures.append(outcome)
                self.stdout.write(self.style.ERROR(f"{prefix}: FAILED after {outcome.seconds}s: {outcome.error}"))
            else:
                self.stdout.write(f"{prefix}: OK in {outcome.seconds}s")
        self._summary(len(tenant_ids), failures)

    def _outcomes(self, tenant_ids, workers):
        if workers == 1:
            yield from map(migrate_one, tenant_ids)
            return
        # Forked children must not share the parent's sockets: the parent closes its own first.
        connections.close_all()
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            futures = [pool.submit(migrate_one, tenant_id) for tenant_id in tenant_ids]
            for future in as_completed(futures):
                yield future.result()

    def _summary(self, total, failures):
        migrated = total - len(failures)
        if not failures:
            self.stdout.write(self.style.SUCCESS(f"Done: all {total} tenant database(s) are migrated."))
            return
        self.stdout.write(f"Done: {migrated} migrated, {len(failures)} failed:")
        for outcome in failures:
            self.stdout.write(f"  - {outcome.tenant_id} ({outcome.database}): {outcome.error}")
        raise CommandError(f"{len(failures)} of {total} tenant database(s) failed to migrate.")
