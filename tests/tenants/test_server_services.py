"""tenants.server_services beyond what the API shows: the URL's parts and defaults, and DIQUIS_DATABASE_SERVERS
as `migrate` applies it (idempotent; same name and a new URL: updated; a server down: registered anyway, with a
warning; a malformed value: ImproperlyConfigured that quotes no password). Real servers: the suite's clusters."""

import io
import logging

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from tenants import connections
from tenants.exceptions import Refused
from tenants.models import MAIN_SERVER, DatabaseServer, ServerStatus
from tenants.seed import seed_database_servers
from tenants.server_services import parse_server_url, update_server
from tenants.vault import decrypt_secret
from tests.support.ports import free_port
from tests.support.postgres_clusters import CREATEDB_ROLE

SECRET = "Env-Pass-Secret-5307"

pytestmark = pytest.mark.django_db


def test_a_url_gives_its_parts_with_the_default_port_and_database():
    address = parse_server_url("postgresql://platform:p%40ss%2Cword@db.example.com")
    assert address == ("db.example.com", 5432, "postgres", "platform", "p@ss,word")
    assert "p@ss" not in repr(address) and "p@ss" not in str(address)
    assert parse_server_url("postgres://u@[::1]:6543/maint") == ("::1", 6543, "maint", "u", "")


def test_a_refusal_names_the_field_and_quotes_nothing():
    with pytest.raises(Refused) as refused:
        parse_server_url(f"postgres://u:{SECRET}@/postgres")
    assert refused.value.field == "url" and "host" in refused.value.message and SECRET not in refused.value.message


def configure(settings, value):
    settings.DIQUIS_DATABASE_SERVERS = value


def test_migrate_registers_the_configured_servers_once(settings, extra_postgres_servers):
    plain, logical = extra_postgres_servers.plain, extra_postgres_servers.logical
    configure(settings, f"pg-env={plain.createdb_url}, pg-env-2={logical.createdb_url}")
    out = io.StringIO()
    call_command("migrate", verbosity=0, stdout=out)
    assert "WARNING" not in out.getvalue()
    rows = {server.name: server for server in DatabaseServer.objects.exclude(pk=MAIN_SERVER)}
    assert set(rows) == {"pg-env", "pg-env-2"}
    env = rows["pg-env"]
    assert (env.host, env.port, env.user, env.maintenance_database) == (
        plain.host,
        plain.port,
        CREATEDB_ROLE,
        "postgres",
    )
    assert decrypt_secret(env.encrypted_password) == plain.passwords[CREATEDB_ROLE]
    assert (env.status, env.weight, env.reachable) == (ServerStatus.ACTIVE, 1, True)
    update_server(name="pg-env", weight=4)  # the admin's, kept by the next migrate
    call_command("migrate", verbosity=0, stdout=io.StringIO())
    again = DatabaseServer.objects.get(pk="pg-env")
    assert DatabaseServer.objects.count() == 3
    assert (again.created_on, again.encrypted_password, again.weight) == (env.created_on, env.encrypted_password, 4)


def test_the_same_name_with_a_new_url_is_updated_and_connections_follow(settings, extra_postgres_servers):
    plain, logical = extra_postgres_servers.plain, extra_postgres_servers.logical
    configure(settings, f"pg-env={plain.createdb_url}")
    seed_database_servers(stdout=io.StringIO())
    assert connections.server_settings("pg-env")["PORT"] == str(plain.port)  # read now, cached for a while
    configure(settings, f"pg-env={logical.createdb_url}")
    seed_database_servers(stdout=io.StringIO())
    row = DatabaseServer.objects.get(pk="pg-env")
    assert row.port == logical.port and decrypt_secret(row.encrypted_password) == logical.passwords[CREATEDB_ROLE]
    assert connections.server_settings("pg-env")["PORT"] == str(logical.port)  # not the cached old one
    connections.forget_server("pg-env")


def test_a_server_that_cannot_be_used_now_is_registered_anyway_with_a_warning(settings, caplog, extra_postgres_servers):
    closed = f"postgres://someone:{SECRET}@127.0.0.1:{free_port()}/postgres"
    configure(settings, f"pg-down={closed},pg-limited={extra_postgres_servers.plain.no_createdb_url}")
    out = io.StringIO()
    with caplog.at_level(logging.DEBUG):
        seed_database_servers(stdout=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert "pg-down" in lines[0] and "unreachable" in lines[0]
    assert "pg-limited" in lines[1] and "CREATEDB" in lines[1]
    assert DatabaseServer.objects.get(pk="pg-down").reachable is False
    limited_password = extra_postgres_servers.plain.passwords["diquis_limited"]
    for text in [out.getvalue(), caplog.text]:
        assert SECRET not in text and closed not in text and limited_password not in text


@pytest.mark.parametrize(
    "value",
    [
        f"pg-x postgres://u:{SECRET}@127.0.0.1/postgres",
        f"main=postgres://u:{SECRET}@127.0.0.1/postgres",
        f"PG=postgres://u:{SECRET}@127.0.0.1/postgres",
        f"pg-x=mysql://u:{SECRET}@127.0.0.1/postgres",
        f"pg-x=postgres://u:{SECRET}@127.0.0.1/postgres?sslmode=disable",
        f"pg-x=postgres://u:{SECRET}@127.0.0.1/a,pg-x=postgres://u:{SECRET}@127.0.0.2/b",
    ],
)
def test_a_malformed_value_is_improperly_configured_and_registers_nothing(settings, value):
    configure(settings, value)
    with pytest.raises(ImproperlyConfigured) as error:
        seed_database_servers(stdout=io.StringIO())
    assert "DIQUIS_DATABASE_SERVERS" in str(error.value) and SECRET not in str(error.value)
    assert list(DatabaseServer.objects.values_list("name", flat=True)) == [MAIN_SERVER]


def test_nothing_configured_changes_nothing(settings):
    configure(settings, " ")
    seed_database_servers(stdout=io.StringIO())
    assert list(DatabaseServer.objects.values_list("name", flat=True)) == [MAIN_SERVER]
