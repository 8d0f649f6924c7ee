"""A job recorded by an earlier release, with positional arguments, keeps its meaning after the upgrade."""

import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("jobs", "0002_job_rq_job_id")]
AFTER = [("jobs", "0003_job_kwargs")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture(autouse=True)
def back_at_the_head():
    """The database is left at the latest migration, for the tests after this one, however it ends."""
    yield
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes("jobs"))


@pytest.mark.django_db(transaction=True)
def test_positional_arguments_are_bound_to_the_parameters_of_their_task_by_name():
    old_apps = migrate(BEFORE)
    try:
        OldJob = old_apps.get_model("jobs", "Job")
        known = OldJob.objects.create(
            id=uuid.uuid4(), task="tenants.tasks.provision_tenant", args=["acme", "u-1"], max_attempts=3
        )
        unknown = OldJob.objects.create(id=uuid.uuid4(), task="gone.module.task", args=["x"], max_attempts=3)
    finally:
        new_apps = migrate(AFTER)
    Job = new_apps.get_model("jobs", "Job")
    assert Job.objects.get(pk=known.pk).kwargs == {"tenant_id": "acme", "initiated_by": "u-1"}
    assert Job.objects.get(pk=unknown.pk).kwargs == ["x"]  # no task to read the names from: left to fail when run
    Job.objects.filter(pk__in=[known.pk, unknown.pk]).delete()
