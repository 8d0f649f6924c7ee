"""The baseline of section 8: `manage.py migrate_tenants --parallel N` as it was before upgrades (commit 77516c9),
kept here to be measured side by side with the operation that replaced it.

`python -m bench.migrate_tenants_before --parallel N`: every isolated tenant's database, N at a time in a pool of
forked processes, each under its tenant's job lock, migrated by Django's full executor (`migrate` on a connection
of its own, the project state and the graph built for every database), then its role set again. The loop is the
old command's, unchanged but for the imports that moved; it prints a line per database and a summary, and exits
non-zero if any failed.
"""

import argparse
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

import django


def migrate_one(tenant_id):
    """Migrate one tenant's database: (tenant id, seconds, error or None); an error is reported, never raised."""
    from django.db import connections

    from jobs.locks import subject_lock
    from tenants.provisioning.databases import ensure_tenant_role, migrate_tenant_database
    from tenants.selectors import get_tenant
    from tenants.subjects import subject_for

    started = time.monotonic()
    try:
        tenant = get_tenant(tenant_id)
        if tenant is None:
            raise LookupError("the tenant no longer exists")
        with subject_lock(subject_for(tenant_id)):
            migrate_tenant_database(tenant)
            ensure_tenant_role(tenant)
        error = None
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
    finally:
        connections.close_all()
    return tenant_id, round(time.monotonic() - started, 2), error


def outcomes(tenant_ids, workers):
    from django.db import connections

    if workers == 1:
        yield from map(migrate_one, tenant_ids)
        return
    connections.close_all()  # forked children must not share the parent's sockets
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        futures = [pool.submit(migrate_one, tenant_id) for tenant_id in tenant_ids]
        for future in as_completed(futures):
            yield future.result()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.migrate_tenants_before", description=__doc__)
    parser.add_argument("--parallel", type=int, default=1)
    args = parser.parse_args(argv)
    django.setup()
    from tenants.selectors import isolated_tenants

    tenant_ids = list(isolated_tenants().values_list("id", flat=True))
    failures = []
    for done, (tenant_id, seconds, error) in enumerate(outcomes(tenant_ids, min(args.parallel, len(tenant_ids) or 1))):
        print(f"[{done + 1}/{len(tenant_ids)}] {tenant_id}: {'FAILED ' + error if error else 'OK'} in {seconds}s")
        if error:
            failures.append(tenant_id)
    print(f"Done: {len(tenant_ids) - len(failures)} migrated, {len(failures)} failed.")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
