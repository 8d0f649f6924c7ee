"""The template isolated databases are cloned from (real PostgreSQL): used when current, rebuilt when the
migration graph changes, never held open, never stale; and the fallback when cloning is impossible."""

import shutil
import sys
import threading

import psycopg
import pytest
from django.conf import settings
from django.db import connections
from django.test import override_settings

from tenants.models import Tenant
from tenants.provisioning import databases
from tenants.provisioning.databases import CLONED, CREATED, create_database, ensure_migrated, ensure_tenant_database
from tenants.provisioning.stores import main_store
from tenants.provisioning.template import BUILD_LOCK_KEY, TEMPLATE_LABEL, migration_fingerprint, template_name
from tenants.validators import validate_tenant_id
from tests.support.tenant_databases import (
    NEXT_RELEASE,
    NEXT_RELEASE_DIR,
    applied_migrations,
    database_oid,
    head_migrations,
    isolated_database,
    main_database,
    migrate_runs_on,
    new_tenant,
    query,
    raw_cursor,
    sessions_on,
    templates,
)

PREFIX = settings.DIQUIS_TENANT_DATABASE_PREFIX


@pytest.fixture(autouse=True)
def _databases(tenant_databases):
    """Every test here starts without templates and drops what it made (conftest, by prefix)."""
    for name in templates():
        main_store().drop(name)


def columns_of_users(database_name):
    rows = query(database_name, "SELECT column_name FROM information_schema.columns WHERE table_name = 'tenants_user'")
    return {row[0] for row in rows}


def test_the_first_clone_builds_the_template_and_the_next_ones_reuse_it():
    first = isolated_database(new_tenant("alpha"))
    (template,) = templates()
    assert template == template_name()
    oid = database_oid(template)

    assert create_database(main_store(), f"{PREFIX}beta") == CLONED
    second = isolated_database(new_tenant("beta"))  # exists already: kept as it is
    assert templates() == {template} and database_oid(template) == oid  # not rebuilt

    # Both are byte-for-byte copies of one migration run: the same rows, down to the timestamps.
    assert applied_migrations(first) == applied_migrations(second)
    assert {(app, name) for app, name, _ in applied_migrations(first)} == head_migrations()
    assert "tenants_user" in {row[0] for row in query(first, "SELECT tablename FROM pg_tables")}


def test_the_template_refuses_connections_and_nobody_is_left_on_it():
    ensure_tenant_database(new_tenant("alpha"))
    (template,) = templates()
    assert query(main_database(), "SELECT datallowconn FROM pg_database WHERE datname = %s", [template]) == [(False,)]
    assert sessions_on(template) == 0
    with pytest.raises(psycopg.OperationalError), raw_cursor(template):
        pass


def test_a_clone_needs_no_migration_afterwards_and_migrate_is_not_even_run():
    name = isolated_database(new_tenant("alpha"))
    before = applied_migrations(name)
    assert migrate_runs_on(Tenant.objects.get(pk="alpha")) == set()  # a later attempt: checked, nothing to do
    assert applied_migrations(name) == before


def test_the_attempt_that_cloned_the_database_does_not_even_check_it(monkeypatch):
    checked = []
    original = databases.has_pending_migrations
    monkeypatch.setattr(databases, "has_pending_migrations", lambda alias: checked.append(alias) or original(alias))
    tenant = new_tenant("alpha")
    ensure_migrated(tenant, created=ensure_tenant_database(tenant))
    assert checked == []
    ensure_migrated(Tenant.objects.get(pk="alpha"))  # a retry in a new attempt checks
    assert len(checked) == 1


def test_a_database_behind_the_head_is_migrated():
    name = isolated_database(new_tenant("alpha"))
    tenant = Tenant.objects.get(pk="alpha")
    with override_settings(MIGRATION_MODULES=NEXT_RELEASE):
        assert migrate_runs_on(tenant) == {name}
        assert "nickname" in columns_of_users(name)
        assert migrate_runs_on(tenant) == set()  # now at the head


def test_a_new_migration_builds_a_new_template_and_drops_the_old_one():
    current = isolated_database(new_tenant("alpha"))
    (old_template,) = templates()
    with override_settings(MIGRATION_MODULES=NEXT_RELEASE):
        assert template_name() != old_template
        clone = isolated_database(new_tenant("beta"))
        (new_template,) = templates()
        assert new_template == template_name() != old_template
        assert ("tenants", "0006_user_nickname") in {(a, n) for a, n, _ in applied_migrations(clone)}
        assert {(app, name) for app, name, _ in applied_migrations(clone)} == head_migrations()
        assert "nickname" in columns_of_users(clone)
    assert "nickname" not in columns_of_users(current)


def test_an_edited_migration_changes_the_fingerprint(tmp_path, monkeypatch):
    """Names alone are not enough: a migration rewritten in place must not reuse the old template."""
    shutil.copytree(NEXT_RELEASE_DIR, tmp_path / "edited_migrations")
    monkeypatch.syspath_prepend(str(tmp_path))

    def fingerprint():
        for module in [m for m in sys.modules if m.startswith("edited_migrations")]:
            sys.modules.pop(module)
        with override_settings(MIGRATION_MODULES={"tenants": "edited_migrations"}):
            return migration_fingerprint()

    try:
        before = fingerprint()
        edited = tmp_path / "edited_migrations" / "0006_user_nickname.py"
        edited.write_text(edited.read_text().replace("max_length=40", "max_length=41"))
        after = fingerprint()
    finally:
        for module in [m for m in sys.modules if m.startswith("edited_migrations")]:
            sys.modules.pop(module)
    assert before != after


def test_a_crashed_build_is_thrown_away_and_rebuilt():
    leftover = f"{template_name()}_building"
    main_store().create(leftover)  # an empty, half-built template
    name = isolated_database(new_tenant("alpha"))
    assert not main_store().exists(leftover)
    assert {(app, n) for app, n, _ in applied_migrations(name)} == head_migrations()


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_concurrent_clones_builds_one_template_and_every_clone_succeeds():
    """Eight threads, eight connections, no template yet: one builds it under the lock, all clone it."""
    names = [f"{PREFIX}burst{i}" for i in range(8)]
    outcomes, errors = {}, []
    start = threading.Barrier(len(names))

    def clone(name):
        try:
            start.wait(timeout=30)
            outcomes[name] = create_database(main_store(), name)
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=clone, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    assert outcomes == dict.fromkeys(names, CLONED)
    assert len(templates()) == 1
    reference = applied_migrations(names[0])
    assert all(applied_migrations(name) == reference for name in names)


def test_when_the_template_cannot_be_had_the_database_is_created_and_migrated(settings):
    """Another process holds the build lock for longer than a job may wait: fall back, still correct."""
    settings.DIQUIS_SUBJECT_LOCK_WAIT = 1
    with raw_cursor(main_database()) as holder:
        holder.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", [BUILD_LOCK_KEY])
        tenant = new_tenant("alpha")
        assert create_database(main_store(), f"{PREFIX}alpha") == CREATED
        ensure_tenant_database(tenant)
        ensure_migrated(tenant)
    assert templates() == set()
    assert {(app, name) for app, name, _ in applied_migrations(f"{PREFIX}alpha")} == head_migrations()


@pytest.mark.parametrize("tenant_id", ["template", "template-abc", "templatex", "template1"])
def test_ids_that_could_name_a_template_are_refused(tenant_id):
    with pytest.raises(Exception, match="reserved"):
        validate_tenant_id(tenant_id)


def test_a_tenant_database_name_can_never_be_a_template_name():
    """Template names have an underscore after the prefix; a valid id never has one."""
    suffix = template_name().removeprefix(settings.DIQUIS_TENANT_DATABASE_PREFIX)
    assert suffix.startswith(f"{TEMPLATE_LABEL}_")
    with pytest.raises(Exception, match="only lowercase"):
        validate_tenant_id("template_x".replace("template", "a"))
    validate_tenant_id("temp-late")  # near misses are fine


def test_a_clone_waits_briefly_for_a_source_in_use_and_gives_up_after_a_bound():
    """PostgreSQL refuses to clone a database somebody is connected to (after waiting 5 s itself): one more
    try, then the error, within about 11 s; not forever."""
    main_store().create(f"{PREFIX}source")
    holder = psycopg.connect(**{**connections["default"].get_connection_params(), "dbname": f"{PREFIX}source"})
    threading.Timer(0.4, holder.close).start()  # the other session goes away in a moment
    main_store().clone(f"{PREFIX}copy", f"{PREFIX}source")
    assert main_store().exists(f"{PREFIX}copy")

    with raw_cursor(f"{PREFIX}source"):  # and this one stays
        with pytest.raises(psycopg.errors.ObjectInUse):
            main_store().clone(f"{PREFIX}copy2", f"{PREFIX}source")
    assert not main_store().exists(f"{PREFIX}copy2")
