"""The soak's upgrade: at an instant drawn from the run's seed, a deploy of the next release (the suite's tenant
app with one more migration, tests.support.settings_next_tenant_app: a column and an index on tenant_notes_note)
and the upgrade it needs (POST /api/upgrades), while the clients and the faults go on. The fault injector runs it
between two faults, so that no fault is half-done while the processes are replaced; the checker follows it to its
end and looks at every tenant database it covered (invariants.py)."""

import random
import subprocess
import sys
import time

from tests.support.live import ROOT

from .system import ROOT_EMAIL, ROOT_PASSWORD
from .workload import Api

NEXT_RELEASE = "tests.support.settings_next_tenant_app"
MAX_RESUMES = 3
DUE_WITHIN = (0.2, 0.5)  # the part of the run in which the deploy and its upgrade start
# What of the next release a tenant database has: the migration's row, its column, its index. All or none.
RELEASE_LOOK = """
SELECT
  (SELECT count(*) FROM django_migrations WHERE app = 'tenant_notes' AND name = '0004_note_summary'),
  (SELECT count(*) FROM information_schema.columns
   WHERE table_name = 'tenant_notes_note' AND column_name = 'summary'),
  (SELECT count(*) FROM pg_indexes WHERE indexname = 'tenant_note_summary_idx')
"""


def release_parts(connection):
    """(migration row, column, index) of the next release in the database of `connection`, each 0 or 1."""
    return tuple(connection.execute(RELEASE_LOOK).fetchone())


class MidRunUpgrade:
    """Due at an instant drawn within `DUE_WITHIN` of the run (`run_seconds` long). `run()` deploys (the catalog
    migrated by the new release, then each Daphne and each worker replaced, one at a time) and starts the upgrade;
    `upgrade_id` and the heads before and after are recorded in the history (actor "upgrade")."""

    def __init__(self, system, history, seed, run_seconds):
        self.system = system
        self.history = history
        self.rng = random.Random(f"{seed}-upgrade")
        self.at = self.rng.uniform(*DUE_WITHIN) * run_seconds
        self.upgrade_id = None
        self.heads = []  # the migration head before the deploy, then after it (GET /api/tenants/upgrade-status)
        self.started = False
        self.resumes = 0
        self.token = None
        self.api = Api(system, self.rng)

    def due(self):
        return not self.started and self.history.now() >= self.at

    def log(self, kind, outcome, **detail):
        self.history.record("upgrade", kind, outcome=outcome, **detail)

    def run(self):
        self.started = True
        self.heads.append(self.head())
        self.log("deploy", "begins", release=NEXT_RELEASE)
        self.system.env = {**self.system.env, "DJANGO_SETTINGS_MODULE": NEXT_RELEASE}
        started = time.monotonic()
        migrate = [sys.executable, "manage.py", "migrate", "--no-input", "-v0"]
        subprocess.run(migrate, cwd=ROOT, env=self.system.env, check=True)
        self.log("deploy", "catalog migrated", seconds=round(time.monotonic() - started, 1))
        for process in [*self.system.webs, *self.system.workers]:
            started = time.monotonic()
            process.replace()
            self.log("deploy", "replaced", process=process.process.name, seconds=round(time.monotonic() - started, 1))
        self.log("deploy", "done")
        self.heads.append(self.head())
        body = {"canary": self.rng.choice([0, 1]), "parallel": self.rng.choice([1, 2]), "maxFailures": 1000}
        payload, outcome = self.call("POST", "/api/upgrades", body=body)
        if outcome == "202":
            self.upgrade_id = payload["data"]
        self.log("upgrade-start", outcome, id=self.upgrade_id, **body)

    def call(self, method, path, body=None, tries=10):
        """A root admin's call, signed in again and tried again while a process of the deploy is starting."""
        for _ in range(tries):
            if self.token is None:
                self.token, _ = self.api.sign_in(ROOT_EMAIL, ROOT_PASSWORD)
            if self.token is not None:
                payload, outcome = self.api.call(method, path, token=self.token, body=body)
                if outcome == "401":
                    self.token = None
                elif not outcome.startswith(("error", "5")):
                    return payload, outcome
            time.sleep(1)
        return None, outcome if self.token else "no token"

    def head(self):
        payload, outcome = self.call("GET", "/api/tenants/upgrade-status")
        head = payload["data"]["head"] if outcome == "200" else None
        self.log("upgrade-status", outcome, head=head)
        return head

    def resume(self):
        """What an operator does with a paused upgrade once the faults are over (three times at most)."""
        if self.resumes >= MAX_RESUMES:
            return
        self.resumes += 1
        _, outcome = self.call("POST", f"/api/upgrades/{self.upgrade_id}/resume")
        self.log("upgrade-resume", outcome, id=self.upgrade_id)

    def close(self):
        self.api.close()
