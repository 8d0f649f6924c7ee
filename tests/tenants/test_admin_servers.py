"""The database server admin without a browser: the list (host:port, status, weight, tenants, reachability),
registration through the same service as the API (its refusals as form errors), weight and status, removal only
of an empty server, and no page that shows a password, a URL or the password as stored."""

import re

import pytest
from django.test import Client

from tenants.models import MAIN_SERVER, DatabaseServer, ServerStatus
from tests.support.factories import TenantFactory, UserFactory
from tests.support.ports import free_port
from tests.support.postgres_clusters import CREATEDB_ROLE
from tests.support.users import make_root_user

LIST = "/admin/tenants/databaseserver/"
ADD = f"{LIST}add/"
SECRET = "Adm-Srv-Secret-6620"


@pytest.fixture
def admin(db):
    client = Client()
    client.force_login(make_root_user())
    return client


def change_url(name):
    return f"{LIST}{name}/change/"


def errors_of(page):
    return " ".join(re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', page, re.S))


def assert_shows_no_secret(page, *secrets):
    for secret in secrets:
        assert secret not in page, secret
    assert "gAAAAA" not in page  # no Fernet token: not even the password as stored


def test_the_list_shows_each_server_with_its_load_and_health(admin, fleet_servers, extra_postgres_servers):
    TenantFactory(id="one", has_isolated_database=True, database_server_id="pg-plain")
    DatabaseServer.objects.filter(pk="pg-logical").update(reachable=False)
    page = admin.get(LIST).content.decode()
    plain = fleet_servers["pg-plain"]
    assert f"{plain.host}:{plain.port}" in page
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", page, re.S)
    by_name = {name: row for row in rows for name in [MAIN_SERVER, "pg-logical", "pg-plain"] if f">{name}<" in row}
    assert set(by_name) == {MAIN_SERVER, "pg-logical", "pg-plain"}
    assert re.search(r"field-tenant_count[^>]*>1<", by_name["pg-plain"])
    assert 'alt="False"' in by_name["pg-logical"] and 'alt="True"' in by_name[MAIN_SERVER]
    assert "the main database" in by_name[MAIN_SERVER]
    assert_shows_no_secret(page, *[cluster.passwords[CREATEDB_ROLE] for cluster in extra_postgres_servers])


def test_a_server_is_registered_through_the_service(admin, extra_postgres_servers):
    cluster = extra_postgres_servers.logical
    form = admin.get(ADD).content.decode()
    assert 'type="password"' in form and 'name="url"' in form
    response = admin.post(ADD, {"name": "pg-admin", "url": cluster.createdb_url, "weight": "2"})
    assert response.status_code == 302, errors_of(response.content.decode())
    server = DatabaseServer.objects.get(pk="pg-admin")
    assert (server.host, server.port, server.user, server.weight, server.reachable) == (
        cluster.host,
        cluster.port,
        CREATEDB_ROLE,
        2,
        True,
    )
    page = admin.get(change_url("pg-admin")).content.decode()
    assert_shows_no_secret(page, cluster.passwords[CREATEDB_ROLE], cluster.createdb_url)


@pytest.mark.parametrize(
    "kind, says",
    [("wrong_password", "authentication"), ("no_createdb", "CREATEDB"), ("closed", "unreachable"), ("junk", "URL")],
)
def test_what_the_service_refuses_is_a_form_error_that_echoes_nothing(admin, extra_postgres_servers, kind, says):
    cluster = extra_postgres_servers.plain
    url = {
        "wrong_password": cluster.wrong_password_url,
        "no_createdb": cluster.no_createdb_url,
        "closed": f"postgres://someone:{SECRET}@127.0.0.1:{free_port()}/postgres",
        "junk": f"postgres://someone:{SECRET}@127.0.0.1/postgres;DROP DATABASE postgres",
    }[kind]
    response = admin.post(ADD, {"name": "pg-refused", "url": url, "weight": "1"})
    page = response.content.decode()
    assert response.status_code == 200
    assert says in errors_of(page), errors_of(page)
    assert_shows_no_secret(page, url, SECRET, *cluster.passwords.values())
    assert not DatabaseServer.objects.filter(pk="pg-refused").exists()


def test_a_name_taken_or_main_is_a_form_error(admin, fleet_servers, extra_postgres_servers):
    for name, says in [("pg-plain", "already exists"), (MAIN_SERVER, "main")]:
        response = admin.post(ADD, {"name": name, "url": extra_postgres_servers.logical.createdb_url, "weight": "1"})
        assert says in errors_of(response.content.decode())
    assert DatabaseServer.objects.get(pk="pg-plain").port == fleet_servers["pg-plain"].port


def test_weight_and_status_are_changed_and_nothing_else(admin, fleet_servers):
    page = admin.get(change_url("pg-plain")).content.decode()
    assert 'name="weight"' in page and 'name="status"' in page
    assert 'name="host"' not in page and 'name="encrypted_password"' not in page
    assert_shows_no_secret(page)
    response = admin.post(change_url("pg-plain"), {"weight": "0", "status": ServerStatus.DRAINING, "host": "evil"})
    assert response.status_code == 302
    server = DatabaseServer.objects.get(pk="pg-plain")
    assert (server.weight, server.status, server.host) == (0, ServerStatus.DRAINING, fleet_servers["pg-plain"].host)


def test_only_an_empty_server_other_than_main_may_be_deleted(admin, fleet_servers):
    TenantFactory(id="stays", has_isolated_database=True, database_server_id="pg-plain")
    assert admin.post(f"{LIST}pg-plain/delete/", {"post": "yes"}).status_code == 403
    assert admin.post(f"{LIST}{MAIN_SERVER}/delete/", {"post": "yes"}).status_code == 403
    assert admin.post(f"{LIST}pg-logical/delete/", {"post": "yes"}).status_code == 302
    assert sorted(DatabaseServer.objects.values_list("name", flat=True)) == [MAIN_SERVER, "pg-plain"]
    assert "delete_selected" not in admin.get(LIST).content.decode()


def test_only_root_may_open_it(db):
    tenant = TenantFactory(id="acme")
    client = Client()
    client.force_login(UserFactory(tenant_id=tenant.id, roles=["admin"]))
    for page in [LIST, ADD, change_url(MAIN_SERVER)]:
        response = client.get(page)
        assert response.status_code == 302 and response.url.startswith("/admin/login/"), page


def test_the_drain_action_drains_through_the_service_and_says_what_it_refused(admin, db):
    DatabaseServer.objects.create(name="pg-2", host="127.0.0.1", port=free_port(), user="nobody")
    DatabaseServer.objects.create(name="pg-3", host="127.0.0.1", port=free_port(), user="nobody")
    TenantFactory(id="held", has_isolated_database=True, database_name="db_held", database_server_id="pg-3")
    DatabaseServer.objects.filter(pk=MAIN_SERVER).update(weight=0)  # nothing may take pg-3's tenant
    page = admin.post(LIST, {"action": "drain", "_selected_action": ["pg-2", "pg-3"]}, follow=True)
    text = page.content.decode()
    assert "Drain initiated for pg-2." in text
    assert "No other database server can take the tenants of &#x27;pg-3&#x27;" in text
    statuses = dict(DatabaseServer.objects.values_list("name", "status"))
    assert (statuses["pg-2"], statuses["pg-3"]) == (ServerStatus.DRAINING, ServerStatus.ACTIVE)
