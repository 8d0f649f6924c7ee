"""The database servers API (API.md, "Database servers"), against real servers: the main one and the suite's extra
clusters (tests/support/postgres_clusters.py). A registration reaches the server for real; each refusal names
what failed, changes nothing, and shows neither the URL nor its password."""

import time
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from jobs.enqueue import enqueue
from tenants.models import MAIN_SERVER, DatabaseServer, ServerStatus, Tenant
from tenants.tasks import clean_up_after_move, refill_spare_databases
from tenants.vault import decrypt_secret
from tests.support.contract import SERVER_FIELDS
from tests.support.factories import TenantFactory, UserFactory
from tests.support.fleet import databases_on
from tests.support.ports import free_port, silent_port
from tests.support.postgres_clusters import CREATEDB_ROLE
from tests.support.users import client_for

SECRET = "Srv-Pass-Secret-8841"  # in the URLs of refused registrations: it must never come back


def register(api, name, url, **body):
    return api.post("/api/database-servers", {"name": name, "url": url, **body}, format="json")


def assert_refused(response, status, *, field=None, says=None, secrets=()):
    body = response.json()
    assert response.status_code == status, body
    assert body["succeeded"] is False and body["data"] is None
    if field is not None:
        assert list(body["errors"]) == [field], body
    if says is not None:
        assert says in " ".join(body["messages"] + sum(body.get("errors", {}).values(), [])), body
    for secret in secrets:
        assert secret not in response.content.decode(), secret
    return body


def table_names():
    return set(connection.introspection.table_names())


# --- GET -----------------------------------------------------------------------------------------------------


def test_main_comes_first_then_the_servers_as_registered_with_their_tenants(root_api, fleet_servers):
    TenantFactory(id="on-plain", has_isolated_database=True, database_server_id="pg-plain")
    TenantFactory(id="on-plain-too", has_isolated_database=True, database_server_id="pg-plain")
    TenantFactory(id="on-main", has_isolated_database=True, database_server_id=MAIN_SERVER)
    response = root_api.get("/api/database-servers")
    assert response.status_code == 200
    servers = response.json()["data"]
    assert [server["name"] for server in servers] == [MAIN_SERVER, "pg-logical", "pg-plain"]
    assert all(set(server) == SERVER_FIELDS for server in servers)
    main, logical, plain = servers
    default = settings.DATABASES["default"]
    assert (main["host"], main["port"], main["reachable"]) == (default["HOST"], int(default["PORT"]), True)
    assert [main["tenantCount"], logical["tenantCount"], plain["tenantCount"]] == [1, 0, 2]
    assert (plain["host"], plain["port"]) == (fleet_servers["pg-plain"].host, fleet_servers["pg-plain"].port)
    assert (plain["status"], plain["weight"]) == ("Active", 1)
    assert plain["createdOn"].endswith("Z")


# --- POST: a real server -------------------------------------------------------------------------------------


def test_a_reachable_server_whose_role_may_create_databases_is_registered(root_api, extra_postgres_servers):
    cluster = extra_postgres_servers.plain
    response = register(root_api, "pg-new", cluster.createdb_url, weight=3)
    assert response.status_code == 201, response.json()
    server = response.json()["data"]
    assert set(server) == SERVER_FIELDS
    assert server | {"createdOn": None} == {
        "name": "pg-new",
        "host": cluster.host,
        "port": cluster.port,
        "status": "Active",
        "weight": 3,
        "tenantCount": 0,
        "createdOn": None,
        "reachable": True,
    }
    row = DatabaseServer.objects.get(pk="pg-new")
    assert (row.user, row.maintenance_database) == (CREATEDB_ROLE, "postgres")
    password = cluster.passwords[CREATEDB_ROLE]
    assert password not in row.encrypted_password and decrypt_secret(row.encrypted_password) == password
    assert password not in response.content.decode() and cluster.createdb_url not in response.content.decode()
    listed = root_api.get("/api/database-servers")
    assert [s["name"] for s in listed.json()["data"]][-1] == "pg-new"
    assert password not in listed.content.decode()


def test_a_wrong_password_is_refused_naming_authentication(root_api, extra_postgres_servers):
    url = extra_postgres_servers.plain.wrong_password_url
    body = assert_refused(
        register(root_api, "pg-wrong", url), 400, field="url", says="authentication", secrets=[url, "not-"]
    )
    assert "authentication" in body["errors"]["url"][0]
    assert not DatabaseServer.objects.filter(pk="pg-wrong").exists()


def test_a_role_that_may_not_create_databases_is_refused_naming_createdb(root_api, extra_postgres_servers):
    url = extra_postgres_servers.plain.no_createdb_url
    assert_refused(register(root_api, "pg-limited", url), 400, field="url", says="CREATEDB", secrets=[url])
    assert not DatabaseServer.objects.filter(pk="pg-limited").exists()


def test_a_role_that_may_create_databases_but_not_roles_is_refused_naming_createrole(root_api, extra_postgres_servers):
    """Each tenant's database gets a role of its own (tenants.provisioning.roles): CREATEDB alone is not enough."""
    cluster = extra_postgres_servers.plain
    role, password = f"{settings.DIQUIS_TENANT_DATABASE_PREFIX}createdb_only", "Createdb-Only-Pass-1"
    with cluster.connect() as superuser:
        superuser.execute(f"CREATE ROLE \"{role}\" LOGIN CREATEDB NOCREATEROLE PASSWORD '{password}'")
    try:
        url = cluster.url_as(role, password)
        assert_refused(register(root_api, "pg-no-roles", url), 400, field="url", says="CREATEROLE", secrets=[url])
        assert not DatabaseServer.objects.filter(pk="pg-no-roles").exists()
    finally:
        with cluster.connect() as superuser:
            superuser.execute(f'DROP ROLE IF EXISTS "{role}"')


def test_an_unreachable_host_is_refused_within_a_few_seconds(root_api):
    url = f"postgres://someone:{SECRET}@127.0.0.1:{free_port()}/postgres"
    started = time.monotonic()
    response = register(root_api, "pg-nowhere", url)
    assert time.monotonic() - started < 5
    assert_refused(response, 400, field="url", says="unreachable", secrets=[url, SECRET])
    assert not DatabaseServer.objects.filter(pk="pg-nowhere").exists()


def test_a_server_that_never_answers_is_refused_after_the_connect_timeout(root_api):
    with silent_port() as port:
        url = f"postgres://someone:{SECRET}@127.0.0.1:{port}/postgres"
        started = time.monotonic()
        response = register(root_api, "pg-silent", url)
        elapsed = time.monotonic() - started
    assert settings.DIQUIS_SERVER_CONNECT_TIMEOUT - 0.5 < elapsed < settings.DIQUIS_SERVER_CONNECT_TIMEOUT + 2
    assert_refused(response, 400, field="url", says="unreachable", secrets=[url, SECRET])
    assert not DatabaseServer.objects.filter(pk="pg-silent").exists()


def test_an_unknown_maintenance_database_is_refused_naming_it(root_api, extra_postgres_servers):
    cluster = extra_postgres_servers.plain
    url = cluster.url_as(CREATEDB_ROLE, cluster.passwords[CREATEDB_ROLE], database="nosuchdb")
    assert_refused(register(root_api, "pg-nodb", url), 400, field="url", says="maintenance database", secrets=[url])


def test_a_name_taken_is_409_and_main_is_no_name_for_another(root_api, fleet_servers, extra_postgres_servers):
    url = extra_postgres_servers.logical.createdb_url
    assert_refused(register(root_api, "pg-plain", url), 409, says="Database server already exists", secrets=[url])
    assert DatabaseServer.objects.get(pk="pg-plain").port == fleet_servers["pg-plain"].port  # untouched
    assert_refused(register(root_api, MAIN_SERVER, url), 400, field="name", says="main", secrets=[url])
    assert DatabaseServer.objects.get(pk=MAIN_SERVER).host == ""


@pytest.mark.parametrize(
    "name",
    [
        "x'; DROP TABLE tenants_tenant; --",
        'pg"; DROP DATABASE postgres; --',
        "PG-2",
        "pg_2",
        "-pg",
        "pg-",
        "pg--2",
        "pg 2",
        "pg-2\n",
        "",
        "a" * 51,
    ],
)
def test_a_name_that_is_no_slug_is_refused(root_api, name):
    tables = table_names()
    url = f"postgres://someone:{SECRET}@127.0.0.1:{free_port()}/postgres"
    assert_refused(register(root_api, name, url), 400, field="name", secrets=[SECRET])
    assert DatabaseServer.objects.count() == 1 and table_names() == tables


@pytest.mark.parametrize(
    "url",
    [
        f"mysql://someone:{SECRET}@127.0.0.1/postgres",
        f"postgres://someone:{SECRET}@/postgres",
        f"postgres://someone:{SECRET}@127.0.0.1:99999/postgres",
        f"postgres://someone:{SECRET}@127.0.0.1:0/postgres",
        f"postgres://someone:{SECRET}@127.0.0.1:port/postgres",
        f"postgres://someone:{SECRET}@127.0.0.1/postgres?sslmode=disable",
        f"postgres://someone:{SECRET}@127.0.0.1/postgres?options=-c%20log_statement%3Dall",
        f"postgres://someone:{SECRET}@127.0.0.1/postgres#x",
        f"postgres://someone:{SECRET}@127.0.0.1/postgres;DROP DATABASE postgres",
        f"postgres://someone:{SECRET}@127.0.0.1/{quote('postgres; DROP DATABASE x')}",
        f"postgres://someone:{SECRET}@127.0.0.1/postgres/more",
        f"postgres://{quote(chr(39) + '; DROP ROLE postgres; --')}:{SECRET}@127.0.0.1/postgres",
        f"postgres://:{SECRET}@127.0.0.1/postgres",
        f"postgres://someone:{SECRET}@127.0.0.1 /postgres",
        f"postgres://someone:{SECRET}@host;rm -rf/postgres",
        f"postgres://someone:{SECRET}@127.0.0.1/postgres\n",
        f"postgres://someone:{quote(SECRET + chr(0))}@127.0.0.1/postgres",
        f"host=127.0.0.1 user=someone password={SECRET}",
        "not a url",
    ],
)
def test_a_url_that_is_not_a_plain_postgres_url_is_refused_without_being_echoed(root_api, url):
    body = assert_refused(register(root_api, "pg-junk", url), 400, field="url", secrets=[url, SECRET])
    assert "postgres[ql]://user:password@host:port/database" in body["errors"]["url"][0]
    assert not DatabaseServer.objects.filter(pk="pg-junk").exists()


def test_a_body_without_name_or_url_or_with_a_bad_weight_is_refused(root_api):
    assert_refused(root_api.post("/api/database-servers", {}, format="json"), 400)
    url = f"postgres://someone:{SECRET}@127.0.0.1:{free_port()}/postgres"
    for weight in [-1, "heavy", 1.5, 10**9]:
        assert_refused(register(root_api, "pg-w", url, weight=weight), 400, field="weight", secrets=[SECRET])


# --- PATCH ---------------------------------------------------------------------------------------------------


def test_weight_and_status_change(root_api, fleet_servers):
    response = root_api.patch("/api/database-servers/pg-plain", {"weight": 0, "status": "Draining"}, format="json")
    assert response.status_code == 200, response.json()
    data = response.json()["data"]
    assert set(data) == SERVER_FIELDS and (data["weight"], data["status"]) == (0, "Draining")
    assert root_api.patch("/api/database-servers/pg-plain", {"status": "Disabled"}, format="json").status_code == 200
    row = DatabaseServer.objects.get(pk="pg-plain")
    assert (row.weight, row.status) == (0, ServerStatus.DISABLED)
    assert root_api.patch("/api/database-servers/main", {"weight": 2}, format="json").json()["data"]["weight"] == 2


def test_a_bad_patch_is_refused_and_changes_nothing(root_api, fleet_servers):
    for body, field in [({"weight": -1}, "weight"), ({"weight": "x"}, "weight"), ({"status": "Gone"}, "status")]:
        assert_refused(root_api.patch("/api/database-servers/pg-plain", body, format="json"), 400, field=field)
    row = DatabaseServer.objects.get(pk="pg-plain")
    assert (row.weight, row.status) == (1, ServerStatus.ACTIVE)


def test_an_unknown_server_is_404(root_api):
    assert_refused(root_api.patch("/api/database-servers/nope", {"weight": 1}, format="json"), 404, says="Not Found")
    assert_refused(root_api.delete("/api/database-servers/nope"), 404, says="Not Found")
    assert_refused(root_api.patch("/api/database-servers/x'%3B--", {"weight": 1}, format="json"), 404)


# --- DELETE --------------------------------------------------------------------------------------------------


def test_an_empty_server_is_removed_with_the_template_and_spares_made_on_it(
    root_api, fleet_servers, extra_postgres_servers, settings
):
    settings.DIQUIS_SPARE_TENANT_DATABASES = 1
    refill_spare_databases(server="pg-plain")
    assert len(databases_on(extra_postgres_servers.plain)) == 2  # the template and its spare
    response = root_api.delete("/api/database-servers/pg-plain")
    assert response.status_code == 204 and response.content == b""
    assert not DatabaseServer.objects.filter(pk="pg-plain").exists()
    assert [s["name"] for s in root_api.get("/api/database-servers").json()["data"]] == [MAIN_SERVER, "pg-logical"]
    assert databases_on(extra_postgres_servers.plain) == []


def test_a_server_a_failed_move_s_clean_up_still_needs_is_not_removed(root_api, fleet_servers):
    enqueue(clean_up_after_move, tenant_id="gone", database_name="x", source=MAIN_SERVER, target="pg-plain")
    assert_refused(root_api.delete("/api/database-servers/pg-plain"), 409, says="still being cleared")
    assert DatabaseServer.objects.filter(pk="pg-plain").exists()


def test_a_server_with_tenants_or_a_move_to_it_is_not_removed(root_api, fleet_servers):
    TenantFactory(id="stays", has_isolated_database=True, database_server_id="pg-plain")
    assert_refused(root_api.delete("/api/database-servers/pg-plain"), 409, says="drain it first")
    TenantFactory(id="coming", has_isolated_database=True, database_server_id=MAIN_SERVER, move_target_id="pg-logical")
    assert_refused(root_api.delete("/api/database-servers/pg-logical"), 409, says="drain it first")
    assert DatabaseServer.objects.count() == 3 and Tenant.objects.filter(id__in=["stays", "coming"]).count() == 2


def test_main_cannot_be_removed(root_api):
    assert_refused(root_api.delete("/api/database-servers/main"), 400, says="main database server cannot be removed")
    assert DatabaseServer.objects.filter(pk=MAIN_SERVER).exists()


# --- who may -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("caller", ["anonymous", "tenant_admin", "root_basic"])
def test_only_root_may_call_them(api, fleet_servers, caller):
    if caller == "anonymous":
        client, status = api, 401
    elif caller == "tenant_admin":
        tenant = TenantFactory(id="acme")
        client, status = client_for(UserFactory(tenant_id=tenant.id, roles=["admin"]), tenant=tenant.id), 403
    else:
        client, status = client_for(UserFactory(roles=["basic"])), 403
    url = f"postgres://someone:{SECRET}@127.0.0.1:{free_port()}/postgres"
    calls = [
        client.get("/api/database-servers"),
        register(client, "pg-mine", url),
        client.patch("/api/database-servers/pg-plain", {"weight": 5}, format="json"),
        client.delete("/api/database-servers/pg-plain"),
    ]
    for response in calls:
        assert_refused(response, status, says="Not Authorized", secrets=[SECRET])
    assert sorted(DatabaseServer.objects.values_list("name", "weight")) == [
        (MAIN_SERVER, 1),
        ("pg-logical", 1),
        ("pg-plain", 1),
    ]
