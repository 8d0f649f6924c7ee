"""A new release's template derived from the previous one (real PostgreSQL): the same schema as a build from
scratch, and a build from scratch whenever deriving could differ from it (an edited migration, other routing, no
manifest, a migration that runs Python)."""

import json
import logging

import pytest
from django.conf import settings
from django.test import override_settings

from tenants.provisioning.stores import main_store
from tenants.provisioning.template import ensure_template, template_manifest
from tests.support.tenant_databases import NEXT_RELEASE, query, templates

PREFIX = settings.DIQUIS_TENANT_DATABASE_PREFIX
NEXT_PYTHON = {"tenant_notes": "tests.support.tenant_app.migrations_next_python"}
TEMPLATE_LOGGER = "tenants.provisioning.template"

SCHEMA = [
    "SELECT table_name, column_name, data_type, is_nullable, column_default, character_maximum_length"
    " FROM information_schema.columns WHERE table_schema = 'public'",
    "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'",
    "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
    " WHERE connamespace = 'public'::regnamespace",
    "SELECT app, name FROM django_migrations",
]


@pytest.fixture(autouse=True)
def _databases(tenant_databases):
    """No template at the start; what the tests make is dropped by prefix (conftest)."""
    for name in templates():
        main_store().drop(name)


def schema_of(template, label):
    """Tables, columns, indexes, constraints and recorded migrations of a template (through a clone of it: a
    template refuses connections)."""
    clone = f"{PREFIX}{label}"
    main_store().clone(clone, template)
    try:
        return [sorted(query(clone, statement)) for statement in SCHEMA]
    finally:
        main_store().drop(clone)


def how_built(caplog, migration_modules):
    """Ensure the template of the release `migration_modules` names: (its name, "derived" or "built")."""
    with override_settings(MIGRATION_MODULES=migration_modules), caplog.at_level(logging.INFO, TEMPLATE_LOGGER):
        caplog.clear()
        name = ensure_template(main_store())
    messages = " ".join(record.getMessage() for record in caplog.records if record.name == TEMPLATE_LOGGER)
    assert ("derived" in messages) != ("building" in messages), messages
    return name, "derived" if "derived" in messages else "built"


def test_a_derived_template_has_exactly_the_schema_of_one_built_from_scratch(caplog):
    first, how = how_built(caplog, {})
    assert how == "built"
    derived, how = how_built(caplog, NEXT_RELEASE)
    assert how == "derived" and derived != first
    assert templates() == {derived}  # the previous one is dropped, as after any build
    derived_schema = schema_of(derived, "derived_copy")

    main_store().drop(derived)  # no previous template now: the same release from scratch
    fresh, how = how_built(caplog, NEXT_RELEASE)
    assert how == "built" and fresh == derived
    assert schema_of(fresh, "fresh_copy") == derived_schema
    assert ("tenants", "0006_user_nickname") in derived_schema[3]


def tamper(template, change):
    manifest = json.loads(main_store().manifest(template))
    change(manifest)
    main_store().set_manifest(template, json.dumps(manifest))


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda m: m["migrations"].update({"tenants.0001_initial": "0" * 64}), id="edited-migration"),
        pytest.param(lambda m: m.update(routing="0" * 64), id="other-routing"),
        pytest.param(lambda m: m["migrations"].update({"tenants.0001_initial": None}), id="no-source"),
        pytest.param(lambda m: m.clear(), id="no-manifest"),
    ],
)
def test_a_template_that_could_differ_from_a_fresh_build_is_never_derived_from(caplog, change):
    previous, _ = how_built(caplog, {})
    tamper(previous, change)
    name, how = how_built(caplog, NEXT_RELEASE)
    assert how == "built"
    assert ("tenants", "0006_user_nickname") in schema_of(name, "built_copy")[3]


def test_a_release_whose_migration_runs_python_is_built_from_scratch(caplog):
    how_built(caplog, {})
    name, how = how_built(caplog, NEXT_PYTHON)
    assert how == "built"
    assert templates() == {name}


def test_every_template_records_its_manifest_and_its_clones_do_not_inherit_it(caplog):
    name, _ = how_built(caplog, {})
    assert json.loads(main_store().manifest(name)) == template_manifest()
    main_store().clone(f"{PREFIX}clone_of_template", name)
    assert main_store().manifest(f"{PREFIX}clone_of_template") is None
