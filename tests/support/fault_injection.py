"""The test side of tenants.provisioning.faults: fail or hold a provisioning step of a live worker through the
faults file, and poll until something has happened. The `fault` fixture (tests/e2e/conftest.py) gives a test
one `Fault`."""

import json
import time
from pathlib import Path

from tenants.provisioning import databases, rollout, template, upgrades
from tenants.provisioning.steps import Step

# The fault points that are no step of an operation (an upgrade's tenant around its commit, a template derived, a
# tenant's database made or dropped but its role not yet):
# named by the code's own constants, so that a point renamed there cannot silently disarm a test.
POINTS = frozenset(
    {
        upgrades.BEFORE_COMMIT,
        rollout.AFTER_COMMIT,
        template.DERIVE_BEFORE_COMMIT,
        databases.DATABASE_MADE,
        databases.DATABASE_DROPPED,
    }
)


def wait_until(predicate, *, timeout, interval=0.2, what="condition"):
    """Poll `predicate` until it is truthy; returns the seconds it took. Fails after `timeout`."""
    started = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what} not reached within {timeout}s")
        time.sleep(interval)


def write_fault(path, step, tenant_id=None, *, action="fail", message=None):
    """Arm the faults file at `path` for one step (a tenants.provisioning.steps.Step, named by its label) or one
    of the POINTS."""
    if isinstance(step, Step):
        label = step.label
    elif step in POINTS:
        label = step
    else:
        raise TypeError(f"name a step by its Step (tenants.provisioning.steps) or one of {sorted(POINTS)}: {step!r}")
    fault = {"step": label, "tenant": tenant_id, "action": action}
    if message is not None:
        fault["message"] = message
    Path(path).write_text(json.dumps(fault))


class Fault:
    """Holds one provisioning step of one tenant while the faults file exists."""

    def __init__(self, directory):
        self.path = Path(directory) / "faults.json"
        self.held_path = Path(f"{self.path}.held")

    def hold(self, step, tenant_id):
        self.held_path.unlink(missing_ok=True)
        write_fault(self.path, step, tenant_id, action="hold")

    def wait_held(self, *, other_than=None, timeout=60):
        """The held step and its work-horse's pid, once a job waits there (a new horse: `other_than`)."""

        def held():
            try:
                report = json.loads(self.held_path.read_text())
            except (FileNotFoundError, ValueError):
                return None
            return report if report["pid"] != other_than else None

        wait_until(held, timeout=timeout, interval=0.1, what="a job held at the step")
        return held()

    def release(self):
        self.path.unlink(missing_ok=True)
