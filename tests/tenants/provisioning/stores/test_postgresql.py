"""Hostile database names (DESIGN.md: names reach SQL as identifiers), given to the provisioning functions
directly: names that would break or inject into formatted SQL create, find and drop exactly the database
of that name and nothing else: they travel as quoted identifiers. (Hostile tenant ids through the API:
tests/tenants/test_validators.py.)
"""

import psycopg
import pytest
from django.conf import settings

from tenants.provisioning.databases import drop_tenant_data, ensure_migrated
from tenants.provisioning.stores import main_store
from tests.support.tenant_databases import isolated_database, main_database, new_tenant, query
from tests.support.tenant_databases import prefixed_databases as databases

PREFIX = settings.DIQUIS_TENANT_DATABASE_PREFIX

HOSTILE_NAMES = {
    "double quote injection": f'{PREFIX}x"; DROP DATABASE "{PREFIX}victim',
    "single quote injection": f"{PREFIX}x'; DROP DATABASE {PREFIX}victim; --",
    "semicolon and spaces": f"{PREFIX}x; DROP DATABASE {PREFIX}victim",
    "percent placeholders": f"{PREFIX}%s%(victim)s{{}}",
    "backslash": f"{PREFIX}back\\slash",
    "mixed case": f"{PREFIX}MiXeD",  # unquoted, PostgreSQL would fold it to lowercase
    "unicode": f"{PREFIX}\u00e9t\u00e9-\u0430cme",
}


@pytest.fixture
def victim(tenant_databases):
    """A database an injection would drop: it must survive every test below."""
    name = f"{PREFIX}victim"
    main_store().create(name)
    yield name
    assert main_store().exists(name)


@pytest.mark.parametrize("name", list(HOSTILE_NAMES.values()), ids=list(HOSTILE_NAMES))
def test_hostile_database_names_create_find_and_drop_exactly_that_database(victim, name):
    before = databases()
    main_store().create(name)
    assert databases() == before | {name}  # exactly this name, byte for byte, and nothing else
    assert main_store().exists(name)
    assert query(main_database(), "SELECT count(*) FROM pg_database WHERE datname = %s", [name]) == [(1,)]
    main_store().create(name)  # idempotent: "exists already" is recognised for this very name
    main_store().drop(name)
    assert not main_store().exists(name)
    assert databases() == before


def test_a_nul_byte_in_a_database_name_is_refused_and_touches_nothing(tenant_databases):
    target = f"{PREFIX}nul-target"
    main_store().create(target)
    with pytest.raises((ValueError, psycopg.Error)):
        main_store().drop(f"{target}\x00; DROP DATABASE postgres")
    assert main_store().exists(target)


def test_a_prefix_is_matched_literally_not_as_a_like_pattern(victim):
    assert main_store().list(f"{PREFIX}%") == []
    assert main_store().list(f"{PREFIX}v_ctim") == []
    assert main_store().list(f"{PREFIX}victim") == [victim]


@pytest.mark.django_db(transaction=True)
def test_a_slug_that_breaks_unquoted_sql_is_provisioned_and_dropped(victim):
    """`2026-class` is a valid id, but `CREATE DATABASE test_..._2026-class` unquoted is a syntax error."""
    tenant = new_tenant("2026-class")
    name = isolated_database(tenant)
    assert name == f"{PREFIX}2026-class"
    ensure_migrated(tenant)
    assert "tenants_user" in {row[0] for row in query(name, "SELECT tablename FROM pg_tables")}
    drop_tenant_data(tenant)
    assert not main_store().exists(name)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("name", [HOSTILE_NAMES["double quote injection"], HOSTILE_NAMES["single quote injection"]])
def test_the_provisioner_with_a_hostile_database_name_touches_only_that_database(victim, name):
    tenant = new_tenant("acme", database_name=name)
    assert isolated_database(tenant) == name
    assert main_store().exists(name)
    ensure_migrated(tenant)  # connects to it by that name
    assert "tenants_user" in {row[0] for row in query(name, "SELECT tablename FROM pg_tables")}
    drop_tenant_data(tenant)
    assert not main_store().exists(name)
