"""Isolation (real PostgreSQL): tenants alpha and beta have databases of their own, gamma shares the main one.

The tenants are provisioned by the real provisioning steps (clone, migrate, admin user); every request
goes through the real middleware, authentication and routing.
"""

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings
from rest_framework.test import APIClient

from tenants.connections import use_tenant
from tenants.models import ProvisioningStatus, Role, Tenant, User
from tenants.pools import pool
from tenants.provisioning.steps import run_tenant_creation
from tests.support.tenant_app.models import Note
from tests.support.tenant_databases import ADMIN_PASSWORD, main_database, new_tenant, query, raw_cursor

PREFIX = settings.DIQUIS_TENANT_DATABASE_PREFIX

S = ProvisioningStatus
ISOLATED, SHARED = ("alpha", "beta"), ("gamma",)
MEMBER_PASSWORD = "Member-Password-77!"


@pytest.fixture
def tenants(root_user, tenant_databases):
    for tenant_id in ISOLATED + SHARED:
        new_tenant(tenant_id, isolated=tenant_id in ISOLATED)
        run_tenant_creation(tenant_id=tenant_id, initiated_by=str(root_user.pk))
    return {tenant.id: tenant for tenant in Tenant.objects.filter(pk__in=ISOLATED + SHARED)}


def client(token=None, *, tenant=None, host=None):
    api = APIClient()
    if token:
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    if tenant:
        api.defaults["HTTP_TENANT"] = tenant
    if host:
        api.defaults["HTTP_HOST"] = host
    return api


def sign_in(email, password=ADMIN_PASSWORD, **where):
    return client(**where).post("/api/tokens", {"email": email, "password": password}, format="json")


def admin_token(tenant_id):
    response = sign_in(f"admin@{tenant_id}.test", tenant=tenant_id)
    assert response.status_code == 200, response.content
    return response.json()["data"]["token"]


def emails(response):
    assert response.status_code == 200, response.content
    return sorted(user["email"] for user in response.json()["data"])


def create_user(token, email, role=Role.BASIC):
    body = {"email": email, "password": MEMBER_PASSWORD, "firstName": "M", "lastName": "X", "role": role}
    return client(token).post("/api/users", body, format="json")


def test_every_tenant_is_active_and_its_database_is_where_it_should_be(tenants):
    assert {t.id: (t.status, t.database_name) for t in tenants.values()} == {
        "alpha": (S.ACTIVE, f"{PREFIX}alpha"),
        "beta": (S.ACTIVE, f"{PREFIX}beta"),
        "gamma": (S.ACTIVE, None),
    }


def test_users_are_visible_only_through_their_own_tenant(tenants):
    tokens = {tenant_id: admin_token(tenant_id) for tenant_id in tenants}
    for tenant_id, token in tokens.items():
        assert create_user(token, f"member@{tenant_id}.test").status_code == 201
        assert create_user(token, "same@everyone.test").status_code == 201  # one email, three tenants
        again = create_user(token, "same@everyone.test")  # but once per tenant
        assert (again.status_code, again.json()["messages"]) == (409, ["Email already in use"])
    for tenant_id, token in tokens.items():
        listed = client(token).get("/api/users")
        assert emails(listed) == sorted([f"admin@{tenant_id}.test", f"member@{tenant_id}.test", "same@everyone.test"])
        assert {user["tenant"] for user in listed.json()["data"]} == {tenant_id}
        me = client(token).get("/api/users/me").json()["data"]
        assert (me["email"], me["tenant"], me["roles"]) == (f"admin@{tenant_id}.test", tenant_id, ["admin"])


def test_the_rows_of_an_isolated_tenant_are_physically_in_its_own_database_only(tenants):
    create_user(admin_token("alpha"), "member@alpha.test")
    create_user(admin_token("gamma"), "member@gamma.test")
    in_alpha = query(f"{PREFIX}alpha", "SELECT tenant_id, email FROM tenants_user ORDER BY email")
    assert in_alpha == [("alpha", "admin@alpha.test"), ("alpha", "member@alpha.test")]
    with connection.cursor() as cursor:  # the main database, inside this test's transaction
        cursor.execute("SELECT tenant_id, email FROM tenants_user WHERE tenant_id <> 'root' ORDER BY 2")
        in_main = cursor.fetchall()
    assert in_main == [("gamma", "admin@gamma.test"), ("gamma", "member@gamma.test")]
    assert query(f"{PREFIX}beta", "SELECT tenant_id, email FROM tenants_user") == [("beta", "admin@beta.test")]
    # Only tenant-side tables in a tenant database: the users and the tenant apps' (DIQUIS_TENANT_APPS) tables, no
    # catalog, jobs or notifications there.
    tables = {row[0] for row in query(f"{PREFIX}alpha", "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    notes = {"tenant_notes_note", "tenant_notes_label", "tenant_notes_note_labels"}
    assert tables == {"tenants_user", "django_migrations", *notes}


def test_a_tenant_app_s_rows_go_to_the_tenant_s_own_database(tenants):
    with use_tenant(Tenant.objects.get(pk="alpha")):
        Note.objects.create(title="alpha's own")
    with use_tenant(Tenant.objects.get(pk="beta")):
        assert not Note.objects.exists()
    assert query(f"{PREFIX}alpha", "SELECT title FROM tenant_notes_note") == [("alpha's own",)]
    assert not Note.objects.using("default").exists()


NOT_AUTHORIZED = {"succeeded": False, "data": None, "messages": ["Not Authorized"]}
HEADERS = [None, "alpha", "beta", "gamma", "root", "nobody"]
HOSTS = [None, "alpha.testserver", "beta.testserver", "beta.localhost", "gamma.localhost", "root.testserver"]


def test_the_admin_token_of_alpha_never_reads_or_writes_beta_whatever_the_header_or_subdomain(tenants):
    """Every combination of header and subdomain: alpha's own (or none) is served from alpha's database, any
    other is 403 and writes nothing anywhere. Each combination creates a user of its own, so that the rows
    show which of them wrote, and where."""
    token = admin_token("alpha")
    create_user(admin_token("beta"), "secret@beta.test")
    written = []
    for number, (header, host) in enumerate((header, host) for header in HEADERS for host in HOSTS):
        api = client(token, tenant=header, host=host)
        explicit = {value.split(".")[0] for value in (header, host) if value}
        served = explicit <= {"alpha"}
        for path in ("/api/users", "/api/users/me"):
            response = api.get(path)
            assert b"beta.test" not in response.content, (header, host, path)
            if served:
                assert response.status_code == 200, (header, host, path)
            else:
                assert response.json() == NOT_AUTHORIZED, (header, host, path)
        email = f"probe-{number}@x.test"
        created = api.post("/api/users", {"email": email, "password": MEMBER_PASSWORD}, format="json")
        if served:
            assert created.status_code == 201, (header, host, created.content)
            assert (created.json()["data"]["email"], created.json()["data"]["tenant"]) == (email, "alpha")
            written.append(email)
        else:
            assert (created.status_code, created.json()) == (403, NOT_AUTHORIZED), (header, host)
    assert len(written) == 4  # header none or alpha x host none or alpha's
    probes = "SELECT tenant_id, email FROM tenants_user WHERE email LIKE %s ORDER BY 2"
    assert query(f"{PREFIX}alpha", probes, ["probe-%"]) == sorted(("alpha", email) for email in written)
    assert query(f"{PREFIX}beta", "SELECT email FROM tenants_user ORDER BY 1") == [
        ("admin@beta.test",),
        ("secret@beta.test",),
    ]
    assert not User.objects.filter(email__startswith="probe-").exists()  # the main database (gamma, root)


def test_sign_in_to_an_isolated_tenant_reads_only_its_database(tenants):
    """A row in the main database with alpha's id and admin email must not let anyone in."""
    decoy = User.objects.create_user("admin@alpha.test", "Decoy-Password-55!", tenant_id="alpha", roles=[Role.ADMIN])
    assert sign_in("admin@alpha.test", "Decoy-Password-55!", tenant="alpha").status_code == 401
    response = sign_in("admin@alpha.test", tenant="alpha")
    assert response.status_code == 200
    token = response.json()["data"]["token"]
    (real_id,) = query(f"{PREFIX}alpha", "SELECT id FROM tenants_user WHERE email = 'admin@alpha.test'")[0]
    me = client(token).get("/api/users/me").json()["data"]
    assert me["id"] == str(real_id) != str(decoy.pk)
    assert "admin@alpha.test" in emails(client(token).get("/api/users"))
    assert len(client(token).get("/api/users").json()["data"]) == 1
    # The admin of alpha is no user of beta, nor of the main database.
    assert sign_in("admin@alpha.test", tenant="beta").status_code == 401
    assert sign_in("admin@alpha.test").status_code == 401


def test_resolution_without_a_token_subdomain_then_header_then_root(tenants, settings):
    assert sign_in("admin@alpha.test", host="alpha.testserver").status_code == 200
    assert sign_in("admin@alpha.test", host="alpha.localhost", tenant="alpha").status_code == 200
    assert sign_in("admin@alpha.test", tenant="alpha").status_code == 200
    assert sign_in(settings.DIQUIS_ROOT_EMAIL, settings.DIQUIS_ROOT_PASSWORD).status_code == 200  # root
    assert sign_in("admin@alpha.test").status_code == 401  # no tenant named: root, where alpha's admin is not
    # A subdomain and a header that disagree are ambiguous: refused rather than guessed.
    assert sign_in("admin@alpha.test", host="alpha.testserver", tenant="beta").status_code == 403
    # Not a subdomain of an allowed host: the header decides.
    assert sign_in("admin@alpha.test", host="127.0.0.1", tenant="alpha").status_code == 200


def set_state(tenant_id, **fields):
    Tenant.objects.filter(pk=tenant_id).update(**fields)


@pytest.mark.parametrize(
    ("state", "usable"),
    [
        ({"is_active": False}, False),
        ({"status": S.DELETING}, False),
        ({"status": S.PROVISIONING, "is_provisioned": False}, False),
        ({"status": S.FAILED, "is_provisioned": False}, False),
        ({"status": S.UPDATING}, True),
        ({"status": S.FAILED}, True),  # a failed update leaves the tenant usable
    ],
)
def test_an_isolated_tenant_is_usable_exactly_as_api_md_says(tenants, state, usable):
    token = admin_token("alpha")
    set_state("alpha", **state)
    listed, signed_in = client(token).get("/api/users"), sign_in("admin@alpha.test", tenant="alpha")
    if usable:
        assert (listed.status_code, signed_in.status_code) == (200, 200)
    else:
        assert (listed.status_code, signed_in.status_code) == (403, 403)
        assert listed.json()["messages"] == signed_in.json()["messages"] == ["Tenant invalid"]
    # Root is always valid, whatever happens to the others.
    assert sign_in(tenant="root", email="nobody@x.test").status_code == 401


def test_an_isolated_tenant_not_yet_created_is_tenant_invalid_not_an_error(db, tenant_databases):
    new_tenant("delta")  # Pending: no database yet
    response = sign_in("admin@delta.test", tenant="delta")
    assert response.status_code == 403
    assert response.json()["messages"] == ["Tenant invalid"]
    assert sign_in("admin@delta.test", host="delta.localhost").status_code == 403
    assert sign_in("admin@nope.test", tenant="nope").json()["messages"] == ["Tenant invalid"]


def test_only_admins_of_the_tenant_list_and_create_users(tenants):
    admin = admin_token("alpha")
    assert create_user(admin, "member@alpha.test").status_code == 201
    member = sign_in("member@alpha.test", MEMBER_PASSWORD, tenant="alpha").json()["data"]["token"]
    assert client(member).get("/api/users").status_code == 403
    assert create_user(member, "other@alpha.test").status_code == 403
    me = client(member).get("/api/users/me").json()["data"]
    assert (me["email"], me["roles"], me["tenant"]) == ("member@alpha.test", ["basic"], "alpha")
    assert create_user(admin, "second-admin@alpha.test", role=Role.ADMIN).status_code == 201
    second = sign_in("second-admin@alpha.test", MEMBER_PASSWORD, tenant="alpha").json()["data"]["token"]
    assert emails(client(second).get("/api/users")) == [
        "admin@alpha.test",
        "member@alpha.test",
        "second-admin@alpha.test",
    ]


def test_requests_leave_one_idle_pooled_session_on_the_tenant_database_and_none_without_the_pool(tenants):
    token = admin_token("alpha")
    statement = f"SELECT state FROM pg_stat_activity WHERE datname = '{PREFIX}alpha'"
    client(token).get("/api/users")
    client(token).post("/api/users", {"email": "m@alpha.test", "password": MEMBER_PASSWORD}, format="json")
    assert query(main_database(), statement) == [("idle",)]  # kept for the tenant's next request (tenants.pools)
    with override_settings(DIQUIS_TENANT_POOL_PER_SERVER=0):
        pool.forget()
        client(token).get("/api/users")
        assert query(main_database(), statement) == []


def test_refreshing_the_token_of_an_isolated_admin_reads_its_own_database(tenants):
    response = sign_in("admin@alpha.test", tenant="alpha")
    refresh = response.json()["data"]["refreshToken"]
    renewed = client().post("/api/tokens/refresh", {"refreshToken": refresh}, format="json")
    assert renewed.status_code == 200, renewed.content
    token = renewed.json()["data"]["token"]
    assert client(token).get("/api/users/me").json()["data"]["email"] == "admin@alpha.test"
    with raw_cursor(f"{PREFIX}alpha") as cursor:  # only there: the refresh must see it
        cursor.execute("UPDATE tenants_user SET is_active = false")
    refused = client().post("/api/tokens/refresh", {"refreshToken": refresh}, format="json")
    assert refused.status_code == 403
    assert refused.json()["messages"] == ["User account deactivated"]
