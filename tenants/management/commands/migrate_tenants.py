"""`python manage.py migrate_tenants [--parallel N] [--canary N] [--max-failures N] [--no-wait] [--in-process]
[--roles]`: upgrade every isolated tenant database to this release's migrations, as one operation.

`migrate` keeps doing the main database (shared tenants' rows live there). This command starts the same upgrade
as `POST /api/upgrades` (API.md, "Tenant database upgrades": canaries first, paused after more failures than
allowed, nothing half-migrated) and follows it with a progress bar until it ends; the exit status is non-zero
unless it succeeded. An upgrade already under way is followed, not started twice. The upgrade's parent job runs in
a worker; when none is running (a deploy script that migrates before it starts them, the embedded default), this
process claims the job and runs it itself, under the same locks: a worker that comes up meanwhile finds it taken.

`--roles` then sets every isolated tenant's role again (tenants.provisioning.roles: its password from the current
SECRET_KEY, its grants): what a SECRET_KEY rotation needs.
"""

import sys
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from django.utils import timezone
from redis.exceptions import RedisError
from rq import Worker

from jobs.locks import subject_lock
from jobs.models import Job
from jobs.redis_client import connection as redis_connection
from jobs.runner import run_job
from tenants import selectors, upgrade_services
from tenants.exceptions import Conflict
from tenants.models import UPGRADE_OPEN, Upgrade, UpgradeStatus
from tenants.provisioning.databases import ensure_tenant_role
from tenants.provisioning.rollout import counts
from tenants.subjects import subject_for, upgrade_subject

POLL_SECONDS = 0.5
BAR_WIDTH = 30


def workers_running():
    try:
        return Worker.count(connection=redis_connection()) > 0
    except RedisError:
        return False


class ProgressBar:
    """One line redrawn in place on a terminal; elsewhere (a CI log) a line whenever the counts change."""

    def __init__(self, stream, total):
        self.stream, self.total = stream, max(total, 1)
        self.tty = stream.isatty()
        self.started, self.last = time.monotonic(), None

    def show(self, tally):
        finished = tally["done"] + tally["failed"] + tally["skipped"]
        filled = BAR_WIDTH * finished // self.total
        line = (
            f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {finished}/{self.total}: {tally['done']} upgraded, "
            f"{tally['failed']} failed, {tally['skipped']} skipped{self._eta(finished)}"
        )
        if line == self.last:
            return
        self.last = line
        self.stream.write(f"\r{line}" if self.tty else f"{line}\n")
        self.stream.flush()

    def _eta(self, finished):
        elapsed = time.monotonic() - self.started
        if not finished or finished >= self.total:
            return ""
        return f", about {round(elapsed / finished * (self.total - finished))}s left"

    def close(self):
        if self.tty and self.last:
            self.stream.write("\n")


class Command(BaseCommand):
    help = "Upgrade the database of every isolated tenant to this release's migrations, and follow the upgrade."

    def add_arguments(self, parser):
        parser.add_argument("--parallel", type=int, default=upgrade_services.DEFAULT_PARALLEL, metavar="N")
        parser.add_argument("--canary", type=int, default=upgrade_services.DEFAULT_CANARY, metavar="N")
        parser.add_argument("--max-failures", type=int, default=upgrade_services.DEFAULT_MAX_FAILURES, metavar="N")
        parser.add_argument("--no-wait", action="store_true", help="start the upgrade and exit")
        parser.add_argument("--in-process", action="store_true", help="run the upgrade here even if workers run")
        parser.add_argument("--roles", action="store_true", help="then set every tenant's role again")

    def handle(self, *args, parallel, canary, max_failures, no_wait, in_process, roles, **options):
        upgrade = self._start(parallel=parallel, canary=canary, max_failures=max_failures)
        if upgrade.status == UpgradeStatus.SUCCEEDED and not upgrade.children.exists():
            self.stdout.write(f"Nothing to do: all {upgrade.total} tenant database(s) are at {upgrade.target}.")
        elif no_wait:
            self.stdout.write(f"Upgrade {upgrade.pk} started: GET /api/upgrades/{upgrade.pk} follows it.")
            return
        else:
            self._follow(upgrade, in_process=in_process or not workers_running())
        if roles:
            self._reset_roles()

    def _start(self, **options):
        try:
            upgrade = upgrade_services.start_upgrade(initiated_by=None, **options)
        except Conflict:
            upgrade = Upgrade.objects.filter(status__in=UPGRADE_OPEN).first()
            if upgrade is None or upgrade.status == UpgradeStatus.PAUSED:
                raise
            self.stdout.write(f"Upgrade {upgrade.pk} is under way already: following it.")
            return upgrade
        behind = upgrade.total - upgrade.skipped
        if behind:
            self.stdout.write(
                f"Upgrade {upgrade.pk} to {upgrade.target}: {behind} of {upgrade.total} tenant database(s) behind, "
                f"{upgrade.parallel} at a time, {upgrade.canary} canary(ies) first."
            )
        return upgrade

    def _follow(self, upgrade, *, in_process):
        bar = ProgressBar(self.stdout, upgrade.total)
        if in_process:
            self.stdout.write("No worker is running: upgrading in this process.")
            self._run_here(upgrade)
        while True:
            upgrade.refresh_from_db()
            tally = counts(upgrade)
            bar.show(tally)
            if upgrade.status not in (UpgradeStatus.PENDING, UpgradeStatus.RUNNING):
                break
            time.sleep(POLL_SECONDS)
        bar.close()
        self._summary(upgrade, tally)

    def _run_here(self, upgrade):
        """Run the upgrade's parent job in this process (its retries too) until it is over, or a worker has it."""
        jobs = Job.objects.filter(subject=upgrade_subject(upgrade.pk), status__in=Job.OPEN_STATUSES)
        while (job := jobs.order_by("created_at").first()) is not None and job.status != Job.Status.RUNNING:
            if job.status == Job.Status.RETRY_WAIT and job.run_after > timezone.now():
                time.sleep(POLL_SECONDS)
                continue
            try:
                run_job(str(job.pk))
            except Exception:  # its last attempt failed: recorded, and the upgrade paused with the error
                return

    def _summary(self, upgrade, tally):
        if upgrade.status == UpgradeStatus.SUCCEEDED:
            self.stdout.write(
                self.style.SUCCESS(f"Done: {tally['done']} upgraded, {tally['skipped']} skipped: all at the head.")
            )
            return
        failures = list(selectors.upgrade_failures(upgrade))
        done, failed = tally["done"], tally["failed"]
        self.stdout.write(f"Upgrade {upgrade.pk} is {upgrade.status}: {done} upgraded, {failed} failed:")
        for child in failures:
            self.stdout.write(f"  - {child.tenant_id}: {child.error}")
        reason = f" ({upgrade.error})" if upgrade.error else ""
        raise CommandError(f"upgrade {upgrade.pk} is {upgrade.status}{reason}: {tally['failed']} failed")

    def _reset_roles(self):
        tenants = list(selectors.isolated_tenants())
        for tenant in tenants:
            with subject_lock(subject_for(tenant.id)):
                ensure_tenant_role(tenant)
        connections.close_all()
        self.stdout.write(f"Roles set again for {len(tenants)} tenant database(s).")
        sys.stdout.flush()
