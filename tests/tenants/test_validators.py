"""Hostile tenant ids and database names (API.md: the id rule; DESIGN.md: names reach SQL as identifiers).

Through the API, an id that is not a plain slug, is too long, is reserved, looks like one of ours in
another alphabet, or would take an existing database's name is refused with 400 before anything is
written; ids and names in paths and headers never reach the database as SQL. Through the provisioning
functions directly, names that would break or inject into formatted SQL create, find and drop exactly
the database of that name and nothing else: they travel as quoted identifiers.
"""

import psycopg
import pytest
from django.conf import settings

from jobs.models import Job
from tenants import database_server
from tenants.models import ProvisioningStatus, Tenant
from tenants.provisioners import drop_tenant_data, ensure_migrated, ensure_tenant_database
from tests.support.factories import TenantFactory
from tests.support.tenant_databases import main_database, new_tenant, prefixed_databases, query

PREFIX = settings.DIQUIS_TENANT_DATABASE_PREFIX
VALID = {
    "name": "Hostile Academy",
    "adminEmail": "admin@hostile.test",
    "password": "Sturdy-Pass-2026!",
    "hasIsolatedDatabase": True,
}

HOSTILE_IDS = {
    "sql quote": "acme'; DROP DATABASE postgres; --",
    "sql double quote": 'acme"; DROP DATABASE "postgres',
    "statement separator": "acme; DROP DATABASE diquis",
    "comment": "acme--",
    "percent format": "acme%s%(x)s{}",
    "backslash": "acme\\",
    "nul byte": "acme\x00",
    "newline after a valid id": "acme\n",
    "leading space": " acme",
    "path traversal": "../../etc/passwd",
    "dot dot": "..",
    "slash": "acme/root",
    "encoded traversal": "%2e%2e%2f",
    "51 characters": "a" * 51,
    "very long": "a" * 10_000,
    "uppercase": "Acme",
    "underscore": "acme_db",
    "empty": "",
    "cyrillic a": "\u0430cme",
    "fullwidth": "\uff41\uff43\uff4d\uff45",
    "zero-width space": "acme\u200b",
    "dotless i": "\u0131nfo",
    "superscript digit": "acme\u00b2",
    "reserved root": "root",
    "reserved admin": "admin",
    "reserved www": "www",
    "reserved api": "api",
    "reserved template": "template",
    "template look-alike": "template-1",
    "template0": "template0",
    "postgres": "postgres",
}


def databases():
    return prefixed_databases()


@pytest.mark.parametrize("tenant_id", list(HOSTILE_IDS.values()), ids=list(HOSTILE_IDS))
def test_a_hostile_id_is_refused_with_400_before_anything_is_written(root_api, tenant_id):
    before = databases()
    response = root_api.post("/api/tenants", {**VALID, "id": tenant_id}, format="json")
    assert response.status_code == 400
    payload = response.json()
    assert payload["succeeded"] is False and payload["data"] is None
    assert list(payload["errors"]) == ["id"]
    assert list(Tenant.objects.values_list("id", flat=True)) == ["root"]
    assert not Job.objects.exists()
    assert databases() == before


def test_an_id_whose_database_name_is_taken_by_a_foreign_database_is_refused(root_api, tenant_databases):
    """The main database too could be taken this way, when its name starts with the prefix."""
    database_server.create(f"{PREFIX}foreign")
    response = root_api.post("/api/tenants", {**VALID, "id": "foreign"}, format="json")
    assert response.status_code == 400
    assert "existing database" in response.json()["errors"]["id"][0]
    assert not Tenant.objects.filter(pk="foreign").exists()
    assert not Job.objects.exists()


def test_an_existing_isolated_tenant_is_still_a_409_not_a_database_clash(root_api, tenant_databases):
    TenantFactory(id="taken", has_isolated_database=True, database_name=f"{PREFIX}taken")
    database_server.create(f"{PREFIX}taken")
    response = root_api.post("/api/tenants", {**VALID, "id": "taken"}, format="json")
    assert (response.status_code, response.json()["messages"]) == (409, ["Tenant already exists"])


@pytest.mark.parametrize(
    "path_id",
    [
        "acme'%20OR%20'1'='1",
        "acme%22%3B%20DROP%20TABLE%20tenants_tenant%3B--",
        "..%2F..%2Froot",
        "a%00b",
        "%25s",
    ],
)
@pytest.mark.parametrize("method", ["get", "put", "delete", "post-retry"])
def test_hostile_ids_in_the_path_find_nothing_and_change_nothing(root_api, path_id, method):
    TenantFactory(id="acme", status=ProvisioningStatus.FAILED)
    before = sorted(Tenant.objects.values_list("id", "name", "status"))
    if method == "post-retry":
        response = root_api.post(f"/api/tenants/{path_id}/retry")
    else:
        response = getattr(root_api, method)(f"/api/tenants/{path_id}", {"name": "x", "isActive": True}, format="json")
    assert response.status_code in {400, 404}, response.content
    assert response.json()["succeeded"] is False
    assert sorted(Tenant.objects.values_list("id", "name", "status")) == before
    assert not Job.objects.exists()


@pytest.mark.parametrize("header", ["root' OR '1'='1", 'x"; DROP DATABASE postgres; --', "../root", "a" * 5000])
def test_hostile_tenant_headers_are_an_invalid_tenant(api, header):
    response = api.post("/api/tokens", {"email": "a@b.test", "password": "x"}, format="json", HTTP_TENANT=header)
    assert (response.status_code, response.json()["messages"]) == (403, ["Tenant invalid"])


# --- the provisioning functions, called directly ----------------------------------------------------------

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
    database_server.create(name)
    yield name
    assert database_server.exists(name)


@pytest.mark.parametrize("name", list(HOSTILE_NAMES.values()), ids=list(HOSTILE_NAMES))
def test_hostile_database_names_create_find_and_drop_exactly_that_database(victim, name):
    before = databases()
    database_server.create(name)
    assert databases() == before | {name}  # exactly this name, byte for byte, and nothing else
    assert database_server.exists(name)
    assert query(main_database(), "SELECT count(*) FROM pg_database WHERE datname = %s", [name]) == [(1,)]
    database_server.create(name)  # idempotent: "exists already" is recognised for this very name
    database_server.drop(name)
    assert not database_server.exists(name)
    assert databases() == before


def test_a_nul_byte_in_a_database_name_is_refused_and_touches_nothing(tenant_databases):
    target = f"{PREFIX}nul-target"
    database_server.create(target)
    with pytest.raises((ValueError, psycopg.Error)):
        database_server.drop(f"{target}\x00; DROP DATABASE postgres")
    assert database_server.exists(target)


def test_a_prefix_is_matched_literally_not_as_a_like_pattern(victim):
    assert database_server.names_starting_with(f"{PREFIX}%") == []
    assert database_server.names_starting_with(f"{PREFIX}v_ctim") == []
    assert database_server.names_starting_with(f"{PREFIX}victim") == [victim]


@pytest.mark.django_db(transaction=True)
def test_a_slug_that_breaks_unquoted_sql_is_provisioned_and_dropped(victim):
    """`2026-class` is a valid id, but `CREATE DATABASE test_..._2026-class` unquoted is a syntax error."""
    tenant = new_tenant("2026-class")
    name = ensure_tenant_database(tenant)
    assert name == f"{PREFIX}2026-class"
    ensure_migrated(tenant)
    assert "tenants_user" in {row[0] for row in query(name, "SELECT tablename FROM pg_tables")}
    drop_tenant_data(tenant)
    assert not database_server.exists(name)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("name", [HOSTILE_NAMES["double quote injection"], HOSTILE_NAMES["single quote injection"]])
def test_the_provisioner_with_a_hostile_database_name_touches_only_that_database(victim, name):
    tenant = new_tenant("acme", database_name=name)
    assert ensure_tenant_database(tenant) == name
    assert database_server.exists(name)
    ensure_migrated(tenant)  # connects to it by that name
    assert "tenants_user" in {row[0] for row in query(name, "SELECT tablename FROM pg_tables")}
    drop_tenant_data(tenant)
    assert not database_server.exists(name)
