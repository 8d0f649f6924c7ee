"""An upgrade run in this process (tenants.provisioning.rollout.run, the parent job's body) over real tenant
databases on PostgreSQL: the release is simulated by MIGRATION_MODULES pointing the suite's tenant app at its next
migrations. The live paths (a real worker, a killed one, Redis restarted, two servers) are in tests/e2e."""

import pytest
from django.test import override_settings

from tenants import upgrade_services
from tenants.connections import use_tenant
from tenants.models import Tenant, Upgrade, UpgradeStatus, UpgradeTenant
from tenants.provisioning import rollout
from tenants.provisioning.stores import main_store
from tenants.provisioning.template import migration_fingerprint, template_name
from tenants.provisioning.upgrades import COMPILED, FULL
from tests.support.tenant_app.models import Note
from tests.support.tenant_databases import applied_migrations, query, raw_cursor, templates
from tests.support.upgrades import make_upgrade

NEXT = {"tenant_notes": "tests.support.tenant_app.migrations_next"}
NEXT_PYTHON = {"tenant_notes": "tests.support.tenant_app.migrations_next_python"}
SUMMARY = ("tenant_notes", "0004_note_summary")


def columns(database, table="tenant_notes_note"):
    rows = query(database, "SELECT column_name FROM information_schema.columns WHERE table_name = %s", [table])
    return {row[0] for row in rows}


def upgrade_now(root_user, **options):
    """Start an upgrade as the API does, and run its parent job's body here."""
    upgrade = upgrade_services.start_upgrade(initiated_by=root_user.pk, **options)
    rollout.run(upgrade.pk)
    return Upgrade.objects.get(pk=upgrade.pk)


def test_a_created_tenant_is_recorded_at_the_head_of_its_release(isolated):
    (tenant,) = isolated("r-one")
    assert tenant.schema_fingerprint == migration_fingerprint()
    assert "pinned" in columns(tenant.database_name)  # the tenant app's tables are in the tenant's database


def test_a_release_reaches_every_tenant_by_compiled_sql_in_one_transaction_each(isolated, root_user):
    tenants = isolated("r-one", "r-two", "r-three")
    with use_tenant(tenants[0]):
        Note.objects.create(title="kept")
    with override_settings(MIGRATION_MODULES=NEXT):
        head = migration_fingerprint()
        upgrade = upgrade_now(root_user, canary=1, parallel=2)
    assert upgrade.status == UpgradeStatus.SUCCEEDED
    assert upgrade.target == head and upgrade.finished_on is not None
    children = UpgradeTenant.objects.filter(upgrade=upgrade)
    assert sorted(children.values_list("tenant_id", "status", "method")) == [
        (t.id, "done", COMPILED) for t in sorted(tenants, key=lambda t: t.id)
    ]
    assert children.filter(is_canary=True).count() == 1
    for tenant in tenants:
        assert "summary" in columns(tenant.database_name)
        assert SUMMARY in {(app, name) for app, name, _ in applied_migrations(tenant.database_name)}
        assert Tenant.objects.get(pk=tenant.id).schema_fingerprint == head
    with use_tenant(tenants[0]):
        assert Note.objects.get().title == "kept"  # the model of today still reads and writes the table
        Note.objects.create(title="after")


def test_a_deploy_with_nothing_to_apply_succeeds_at_once_and_opens_no_database(isolated, root_user):
    isolated("r-one", "r-two")
    upgrade = upgrade_services.start_upgrade(initiated_by=root_user.pk)
    assert upgrade.status == UpgradeStatus.SUCCEEDED
    assert (upgrade.total, upgrade.skipped) == (2, 2)
    assert not upgrade.children.exists()


def test_a_migration_that_runs_python_goes_through_the_full_executor(isolated, root_user):
    tenants = isolated("r-one", "r-two")
    with override_settings(MIGRATION_MODULES=NEXT_PYTHON):
        upgrade = upgrade_now(root_user, canary=0)
    assert upgrade.status == UpgradeStatus.SUCCEEDED
    assert set(upgrade.children.values_list("method", flat=True)) == {FULL}
    for tenant in tenants:
        labels = query(tenant.database_name, "SELECT name FROM tenant_notes_label ORDER BY name")
        assert labels == [("done",), ("todo",)]


def test_a_tenant_that_fails_keeps_its_schema_and_a_failed_canary_pauses_the_rest(isolated, root_user):
    broken, *others = isolated("r-a", "r-b", "r-c")
    with raw_cursor(broken.database_name) as cursor:  # the release's column exists already in one tenant only
        cursor.execute("ALTER TABLE tenant_notes_note ADD COLUMN summary text")
    with override_settings(MIGRATION_MODULES=NEXT):
        upgrade = upgrade_now(root_user, canary=1)
    assert upgrade.status == UpgradeStatus.PAUSED
    assert "canary tenant 'r-a' failed" in upgrade.error
    child = upgrade.children.get(tenant_id="r-a")
    assert child.status == "failed" and "already exists" in child.error
    # One transaction: the index the migration also creates is not there, nor its record.
    assert SUMMARY not in {(app, name) for app, name, _ in applied_migrations(broken.database_name)}
    index = "SELECT indexname FROM pg_indexes WHERE indexname = 'tenant_note_summary_idx'"
    assert query(broken.database_name, index) == []
    assert set(upgrade.children.exclude(tenant_id="r-a").values_list("status", flat=True)) == {"pending"}
    with use_tenant(broken):
        assert Note.objects.count() == 0  # it still serves


def test_more_failures_than_allowed_pause_the_upgrade_and_a_resume_finishes_what_is_left(isolated, root_user):
    broken, *others = isolated("r-a", "r-b", "r-c")
    with raw_cursor(broken.database_name) as cursor:
        cursor.execute("ALTER TABLE tenant_notes_note ADD COLUMN summary text")
    with override_settings(MIGRATION_MODULES=NEXT):
        upgrade = upgrade_now(root_user, canary=0, parallel=1, max_failures=0)
        assert upgrade.status == UpgradeStatus.PAUSED
        with raw_cursor(broken.database_name) as cursor:  # the operator repairs it
            cursor.execute("ALTER TABLE tenant_notes_note DROP COLUMN summary")
        upgrade_services.resume_upgrade(upgrade_id=upgrade.pk)
        rollout.run(upgrade.pk)
    upgrade.refresh_from_db()
    assert upgrade.status == UpgradeStatus.SUCCEEDED
    assert set(upgrade.children.values_list("status", flat=True)) == {"done"}
    assert all("summary" in columns(t.database_name) for t in (broken, *others))


@pytest.mark.django_db
@override_settings(DIQUIS_UPGRADE_PER_SERVER=2)
def test_the_bound_per_server_counts_the_lanes_at_work_there_not_the_children_they_claimed():
    """A lane claims a few children and upgrades them one after another: it is one session on their server."""
    children = [(f"c{n:02d}", "main", "pending") for n in range(12)] + [("o00", "other", "pending")]
    upgrade = make_upgrade(children, parallel=3)
    first, second = rollout.claim(upgrade.pk, 0), rollout.claim(upgrade.pk, 1)
    assert len(first) > 1 and len(second) > 1  # a few each (13 pending over 3 lanes)
    assert {child.database_server for child in (*first, *second)} == {"main"}
    assert set(upgrade.children.filter(status="running").values_list("lane", flat=True)) == {0, 1}
    third = rollout.claim(upgrade.pk, 2)  # two lanes at work on main: only the other server has room
    assert [child.tenant_id for child in third] == ["o00"]
    rollout.record_upgraded([(child, rollout.Outcome("done", method=COMPILED)) for child in first])
    assert {child.database_server for child in rollout.claim(upgrade.pk, 0)} == {"main"}  # lane 0 free again


def test_the_stale_template_is_retired_after_the_upgrade_has_ended_not_before(isolated, root_user):
    """Each DROP DATABASE waits for a checkpoint of the whole server: the upgrade's end does not wait for it."""
    isolated("r-one")
    today = template_name()
    with override_settings(MIGRATION_MODULES=NEXT):
        upgrade = upgrade_now(root_user, canary=0)
        assert upgrade.status == UpgradeStatus.SUCCEEDED
        assert templates() == {today, template_name()}  # the new one built, the one it replaces still there
        rollout.retire_templates(upgrade.pk)
        assert templates() == {template_name()}
        rollout.retire_templates(upgrade.pk)  # again (a run of the job again after a crash there): nothing left
        assert templates() == {template_name()} and main_store().exists(template_name())


@pytest.mark.django_db
def test_the_canaries_are_shared_by_the_lanes():
    children = [(f"c{n:02d}", "main", "pending") for n in range(20)]
    upgrade = make_upgrade(children, canary=3, parallel=3)
    UpgradeTenant.objects.filter(upgrade=upgrade, tenant_id__in=["c00", "c01", "c02"]).update(is_canary=True)
    batches = [rollout.claim(upgrade.pk, lane) for lane in range(3)]
    assert [[child.tenant_id for child in batch] for batch in batches] == [["c00"], ["c01"], ["c02"]]
    assert rollout.claim(upgrade.pk, 3) is rollout.WAIT  # the rest wait for them


def test_a_tenant_whose_server_stopped_answering_is_recorded_at_a_schema_not_known(isolated, root_user, settings):
    """The soak (seed 714461): a child's commit reached its database, then the server stopped before the answer, and
    the retries found it silent: failed, the catalog said the previous schema, the database had the new one. A
    child that fails for good that way is recorded "not known" (null), and the next upgrade looks."""
    tenant, other = isolated("r-a", "r-b")
    upgrade = make_upgrade([("r-a", "main", "running"), ("r-b", "main", "running")], max_failures=10)
    child = upgrade.children.get(tenant_id="r-a")
    child.attempts = settings.DIQUIS_UPGRADE_ATTEMPTS
    silent = rollout.Outcome("failed", error="Tenant database unavailable: server main does not answer", retry=True)
    rollout.record(child, silent)
    rollout.record(upgrade.children.get(tenant_id="r-b"), rollout.Outcome("failed", error="ProgrammingError: x"))
    assert Tenant.objects.get(pk="r-a").schema_fingerprint is None
    assert Tenant.objects.get(pk="r-b").schema_fingerprint == other.schema_fingerprint is not None
