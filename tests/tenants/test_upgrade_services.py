"""The upgrade use cases that no request starts: DIQUIS_AUTO_UPGRADE's start by the first worker of a release, and
the worker's start hooks that call it (real PostgreSQL)."""

import logging

from django.test import override_settings

from jobs.models import Job
from jobs.worker import run_start_hooks
from tenants import upgrade_services
from tenants.models import Upgrade, UpgradeStatus
from tenants.subjects import upgrade_subject
from tests.tenants.provisioning.test_rollout import NEXT

AUTO = ["tenants.upgrade_services.start_upgrade_if_behind"]


def test_the_first_worker_of_a_release_starts_the_upgrade_and_the_next_ones_do_not(isolated):
    isolated("a-one", "a-two")
    assert upgrade_services.start_upgrade_if_behind() is None  # nothing behind today's head
    with override_settings(MIGRATION_MODULES=NEXT, DIQUIS_WORKER_START_HOOKS=AUTO):
        run_start_hooks()
        upgrade = Upgrade.objects.get()
        assert (upgrade.status, upgrade.total, upgrade.initiated_by) == (UpgradeStatus.PENDING, 2, None)
        assert Job.objects.filter(subject=upgrade_subject(upgrade.pk)).count() == 1
        run_start_hooks()  # the second worker of the release
        upgrade_services.cancel_upgrade(upgrade_id=upgrade.pk)
        assert upgrade_services.start_upgrade_if_behind() is None  # once per head: cancelled is a root's call
    assert Upgrade.objects.count() == 1


def test_a_start_hook_that_fails_is_logged_and_the_worker_goes_on(caplog):
    with override_settings(DIQUIS_WORKER_START_HOOKS=["tenants.no_such_module.hook"]):
        with caplog.at_level(logging.ERROR, logger="jobs.worker"):
            run_start_hooks()
    assert "worker start hook tenants.no_such_module.hook failed" in caplog.text
