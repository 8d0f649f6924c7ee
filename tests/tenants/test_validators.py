"""Hostile tenant ids (API.md: the id rule).

Through the API, an id that is not a plain slug, is too long, is reserved, looks like one of ours in
another alphabet, or would take an existing database's name is refused with 400 before anything is
written; ids and names in paths and headers never reach the database as SQL. (Hostile database names,
given to the provisioning functions directly: tests/tenants/provisioning/stores/test_postgresql.py.)
"""

import pytest
from django.conf import settings

from jobs.models import Job
from tenants.models import ProvisioningStatus, Tenant
from tenants.provisioning.stores import main_store
from tests.support.factories import TenantFactory
from tests.support.tenant_databases import prefixed_databases as databases

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
    main_store().create(f"{PREFIX}foreign")
    response = root_api.post("/api/tenants", {**VALID, "id": "foreign"}, format="json")
    assert response.status_code == 400
    assert "existing database" in response.json()["errors"]["id"][0]
    assert not Tenant.objects.filter(pk="foreign").exists()
    assert not Job.objects.exists()


def test_an_existing_isolated_tenant_is_still_a_409_not_a_database_clash(root_api, tenant_databases):
    TenantFactory(id="taken", has_isolated_database=True, database_name=f"{PREFIX}taken")
    main_store().create(f"{PREFIX}taken")
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


@pytest.mark.django_db
def test_a_new_id_is_checked_with_one_query(django_assert_num_queries):
    """A new id has no database: that is asked first, so the tenant table is not asked too."""
    from tenants.validators import validate_tenant_id

    with django_assert_num_queries(1):
        validate_tenant_id("brand-new-academy")
