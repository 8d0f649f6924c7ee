"""A database server down hurts only its own tenants (API.md, "Database servers"): their sign-in and calls get
503 ["Tenant database unavailable"] within the connect timeout, never a 500 or a hang; tenants elsewhere see no
change; their websockets are refused without a crash; a job that needs the server ends Failed with a clear error
once its retries are spent; migrate_tenants reports them and goes on. Real servers: the suite's clusters, stopped
for real, and a socket that accepts connections and never answers (a host that has hung).
"""

import contextlib
import socket
import time

import psycopg
import psycopg.sql
import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from diquis.asgi import application
from jobs.models import Job
from jobs.runner import run_job
from notifications.auth import principal_for_token
from notifications.models import Notification
from tenants import services
from tenants.connections import SERVER_DOWN_SECONDS, forget_server, tenant_role_name, use_tenant
from tenants.exceptions import TenantDatabaseUnavailable
from tenants.models import DatabaseServer, ProvisioningStatus, Tenant, User
from tenants.pools import pool
from tenants.provisioning.steps import run_tenant_creation
from tenants.tokens import token_refusal
from tests.support.fleet import databases_on, roles_on
from tests.support.tenant_databases import ADMIN_PASSWORD, new_tenant
from tests.tenants.test_migrate_tenants import NEXT_RELEASE, migrate_tenants

pytestmark = pytest.mark.django_db(transaction=True)

UNAVAILABLE = ["Tenant database unavailable"]
# The connect timeout (DIQUIS_SERVER_CONNECT_TIMEOUT, 2 s) and some room for the rest of the request.
BOUND = settings.DIQUIS_SERVER_CONNECT_TIMEOUT + 1.5
# Well under the connect timeout, with room for a loaded machine: what no wait on a server looks like.
AT_ONCE = settings.DIQUIS_SERVER_CONNECT_TIMEOUT / 2
S = ProvisioningStatus


@pytest.fixture
def placed(fleet_servers, root_user):
    """`far` on pg-plain (to be stopped), `near` on main, `other` on pg-logical; each with its admin."""
    for tenant_id, server in (("far", "pg-plain"), ("near", "main"), ("other", "pg-logical")):
        new_tenant(tenant_id, database_server_id=server)
        run_tenant_creation(tenant_id=tenant_id, initiated_by=str(root_user.pk))
    return {tenant.id: tenant for tenant in Tenant.objects.all()}


@contextlib.contextmanager
def stopped(cluster, server="pg-plain"):
    """The cluster stopped for the block; started again after it, and this process told to try it again at once
    (it answers 503 at once for SERVER_DOWN_SECONDS after seeing it down)."""
    cluster.stop()
    try:
        yield
    finally:
        cluster.start_again()
        forget_server(server)


def api(api_client, *, tenant, token=None):
    api_client.defaults["HTTP_TENANT"] = tenant
    if token:
        api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return api_client


def sign_in(client, tenant_id):
    body = {"email": f"admin@{tenant_id}.test", "password": ADMIN_PASSWORD}
    return api(client, tenant=tenant_id).post("/api/tokens", body, format="json")


def timed(call):
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def token_of(tenant_id):
    response = sign_in(APIClient(), tenant_id)
    assert response.status_code == 200, response.content
    return response.json()["data"]["token"]


def assert_unavailable(response):
    assert response.status_code == 503, response.content
    body = response.json()
    assert body["succeeded"] is False and body["data"] is None
    assert body["messages"] == UNAVAILABLE


def test_sign_in_and_calls_of_a_stopped_server_s_tenant_get_503_at_once_others_carry_on(
    placed, extra_postgres_servers, api, root_api
):
    tokens = {tenant_id: token_of(tenant_id) for tenant_id in ("far", "near", "other")}
    with stopped(extra_postgres_servers.plain):
        response, seconds = timed(lambda: sign_in(api, "far"))
        assert_unavailable(response)
        assert seconds < BOUND
        for path in ("/api/users/me", "/api/users"):
            response, seconds = timed(lambda path=path: api_for("far", tokens["far"]).get(path))
            assert_unavailable(response)
            assert seconds < BOUND
        # The tenants elsewhere, and the catalog, as before.
        for tenant_id in ("near", "other"):
            assert sign_in(APIClient(), tenant_id).status_code == 200
            response, seconds = timed(
                lambda tenant_id=tenant_id: api_for(tenant_id, tokens[tenant_id]).get("/api/users/me")
            )
            assert response.status_code == 200 and seconds < AT_ONCE  # nothing of theirs waits on the stopped server
        assert root_api.get("/api/tenants").status_code == 200
        extra_postgres_servers.plain.start_again()
        # Seen down a moment ago: this process answers 503 at once for a few seconds, then tries again.
        response, seconds = timed(lambda: api_for("far", tokens["far"]).get("/api/users/me"))
        assert_unavailable(response)
        assert seconds < AT_ONCE
        time.sleep(SERVER_DOWN_SECONDS)
        # Back up: the same token works again, nothing to restart.
        assert api_for("far", tokens["far"]).get("/api/users/me").status_code == 200


def api_for(tenant_id, token):
    return api(APIClient(), tenant=tenant_id, token=token)


@pytest.fixture
def hung_server(db):
    """A "server" that accepts TCP connections and never says a word: libpq waits for its greeting until the
    connect timeout. Registered in the catalog, with a tenant placed on it."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)  # the kernel completes the handshakes; nobody accepts, nobody answers
    DatabaseServer.objects.create(name="pg-hung", host="127.0.0.1", port=listener.getsockname()[1], user="nobody")
    Tenant.objects.create(
        id="hung",
        name="Hung",
        admin_email="admin@hung.test",
        has_isolated_database=True,
        database_server_id="pg-hung",
        database_name=f"{settings.DIQUIS_TENANT_DATABASE_PREFIX}hung",
        status=S.ACTIVE,
        is_provisioned=True,
    )
    yield
    listener.close()
    forget_server("pg-hung")


def test_a_server_that_hangs_costs_its_tenants_the_connect_timeout_once_not_a_hang(hung_server, api):
    response, seconds = timed(lambda: sign_in(api, "hung"))
    assert_unavailable(response)
    assert settings.DIQUIS_SERVER_CONNECT_TIMEOUT - 0.5 < seconds < BOUND
    # The next calls, for a few seconds, do not wait for it again: the process's sync views share one thread.
    response, seconds = timed(lambda: sign_in(APIClient(), "hung"))
    assert_unavailable(response)
    assert seconds < AT_ONCE


def test_websockets_of_a_stopped_server_s_tenant_are_refused_without_a_crash(placed, extra_postgres_servers):
    raw = token_of("far")
    with stopped(extra_postgres_servers.plain):
        assert token_refusal(AccessToken(raw)) is not None  # "cannot check now", not an exception
        assert principal_for_token(raw) is None

        async def handshake():
            headers = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
            communicator = WebsocketCommunicator(application, f"/hubs/notifications?access_token={raw}", headers)
            connected, _ = await communicator.connect(timeout=10)
            await communicator.disconnect()
            return connected

        assert async_to_sync(handshake)() is False
    assert principal_for_token(raw) is not None


def run_until_settled(job, rounds=10):
    """Run the job's attempts in this process (the suite's retry interval is 0) until it ends. The last attempt
    of a job that fails for good re-raises its error, as RQ's worker would see it."""
    for _ in range(rounds):
        with contextlib.suppress(TenantDatabaseUnavailable):
            run_job(str(job.pk))
        job.refresh_from_db()
        if job.status not in Job.OPEN_STATUSES:
            break
    return job


def assert_clear_error(text, server):
    assert f"Tenant database unavailable: database server {server} does not answer" in text
    for secret in ("postgres://", "password", "127.0.0.1", "diquis_platform"):
        assert secret not in text


def test_a_creation_placed_on_a_stopped_server_is_retried_then_fails_clearly(
    fleet_servers, extra_postgres_servers, root_user
):
    with stopped(extra_postgres_servers.plain):
        services.create_tenant(
            tenant_id="doomed",
            name="Doomed",
            admin_email="admin@doomed.test",
            password=ADMIN_PASSWORD,
            has_isolated_database=True,
            database_server="pg-plain",
            initiated_by=root_user.pk,
        )
        job = run_until_settled(Job.objects.get(subject="tenant:doomed"))
    assert job.status == Job.Status.FAILED
    assert job.attempts == settings.DIQUIS_JOB_MAX_ATTEMPTS
    tenant = Tenant.objects.get(pk="doomed")
    assert tenant.status == S.FAILED
    assert_clear_error(tenant.provisioning_error, "pg-plain")
    failed = Notification.objects.get(event="TenantCreationFailed", data__tenantId="doomed")
    assert_clear_error(failed.data["message"], "pg-plain")


def test_a_deletion_on_a_stopped_server_fails_clearly_keeps_the_tenant_and_is_retried_once_it_is_back(
    placed, extra_postgres_servers, root_user
):
    far = placed["far"]
    with stopped(extra_postgres_servers.plain):
        services.delete_tenant(tenant_id="far", initiated_by=root_user.pk)
        job = run_until_settled(Job.objects.get(subject="tenant:far", task__endswith="deprovision_tenant"))
        assert job.status == Job.Status.FAILED
        tenant = Tenant.objects.get(pk="far")
        assert tenant.status == S.FAILED
        assert_clear_error(tenant.provisioning_error, "pg-plain")
    assert far.database_name in databases_on(extra_postgres_servers.plain)
    services.retry_tenant(tenant_id="far", initiated_by=root_user.pk)
    assert run_until_settled(job).status == Job.Status.SUCCEEDED
    assert not Tenant.objects.filter(pk="far").exists()
    assert far.database_name not in databases_on(extra_postgres_servers.plain)
    assert far.database_name not in roles_on(extra_postgres_servers.plain)


def test_migrate_tenants_reports_a_stopped_server_s_tenants_and_upgrades_the_others(placed, extra_postgres_servers):
    with stopped(extra_postgres_servers.plain):
        started = time.monotonic()
        result = migrate_tenants("--canary", "0", "--max-failures", "1", settings_module=NEXT_RELEASE)
        seconds = time.monotonic() - started
    assert result.returncode != 0
    lines = result.stdout.splitlines()
    assert any(line.startswith("  - far: ") and "pg-plain does not answer" in line for line in lines), lines
    assert any(line.startswith("[") and ": 2 upgraded, 1 failed" in line for line in lines), lines
    assert "password" not in result.stdout + result.stderr
    assert seconds < 120


def test_a_server_stopped_under_an_open_session_is_the_tenant_s_unavailability_too(placed, extra_postgres_servers):
    """A connection made before the server went away fails its next statement as the tenant's own 503, not as
    "the main database is down"; the next use connects again once the server is back."""
    far = placed["far"]
    with use_tenant(far):
        assert User.objects.filter(tenant_id="far").count() == 1
        with stopped(extra_postgres_servers.plain), pytest.raises(TenantDatabaseUnavailable):
            User.objects.filter(tenant_id="far").count()
    with use_tenant(far):
        assert User.objects.filter(tenant_id="far").count() == 1


def test_a_tenant_its_server_refuses_does_not_take_the_server_s_other_tenants_down(
    placed, extra_postgres_servers, root_user
):
    """The server answers, but refuses one tenant's role (its password changed behind our back): that tenant gets
    503, and the server's next tenant is served at once (a refusal is about one role, not the server)."""
    new_tenant("neighbour", database_server_id="pg-plain")
    run_tenant_creation(tenant_id="neighbour", initiated_by=str(root_user.pk))
    role = tenant_role_name(placed["far"].database_name)
    with psycopg.connect(extra_postgres_servers.plain.url, autocommit=True) as superuser:
        superuser.execute(psycopg.sql.SQL("ALTER ROLE {} PASSWORD 'changed'").format(psycopg.sql.Identifier(role)))
    pool.forget()  # a session opened before the change stays signed in: a new one is what the server refuses
    assert_unavailable(sign_in(APIClient(), "far"))
    assert sign_in(APIClient(), "neighbour").status_code == 200


def test_a_new_isolated_tenant_goes_to_a_server_that_answers(fleet_servers, extra_postgres_servers, root_user):
    """pg-logical, the lightest server, is stopped: the creation job places the tenant elsewhere and succeeds at
    its first attempt."""
    for tenant_id, server in (("on-main", "main"), ("on-plain", "pg-plain")):
        Tenant.objects.create(
            id=tenant_id, name="x", admin_email="a@x.test", has_isolated_database=True, database_server_id=server
        )
    with stopped(extra_postgres_servers.logical, "pg-logical"):
        services.create_tenant(
            tenant_id="placed",
            name="Placed",
            admin_email="admin@placed.test",
            password=ADMIN_PASSWORD,
            has_isolated_database=True,
            initiated_by=root_user.pk,
        )
        job = run_until_settled(Job.objects.get(subject="tenant:placed"))
    assert job.status == Job.Status.SUCCEEDED and job.attempts == 1
    tenant = Tenant.objects.get(pk="placed")
    assert tenant.status == S.ACTIVE and tenant.database_server_id in {"main", "pg-plain"}
    assert DatabaseServer.objects.get(pk="pg-logical").reachable is False


def test_an_update_needs_only_the_catalog_and_succeeds_while_the_tenant_s_server_is_down(
    placed, extra_postgres_servers, root_user
):
    """Renaming and deactivating live in the catalog; the sockets of the deactivated tenant's users, listed from
    its database, end at their next check instead (the tenant is no longer usable)."""
    with stopped(extra_postgres_servers.plain):
        services.update_tenant(tenant_id="far", name="Far Renamed", is_active=False, initiated_by=root_user.pk)
        job = run_until_settled(Job.objects.get(subject="tenant:far", task__endswith="apply_tenant_update"))
    assert job.status == Job.Status.SUCCEEDED and job.attempts == 1
    tenant = Tenant.objects.get(pk="far")
    assert (tenant.status, tenant.name, tenant.is_active) == (S.ACTIVE, "Far Renamed", False)
