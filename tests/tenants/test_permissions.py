"""Who may call what: every endpoint of API.md x every kind of caller, one cell per test.

The expected statuses are the one table below; each cell is a fresh database with the same cast
(tenants A and B, an inactive tenant C, a failed tenant to retry, a notification for each user) and one
request. A refused call must answer in the envelope with the line API.md gives for its status, and must
change nothing; a granted one must show, or do, what its row of API.md says, for that caller only.
"""

import json
from datetime import timedelta

import pytest
from django.conf import settings
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from jobs.models import Job
from notifications.models import Notification
from tenants.models import ROOT_TENANT_ID, DatabaseServer, Operation, ProvisioningStatus, Role, Tenant, User
from tenants.tokens import issue_tokens
from tests.support.factories import TenantFactory

S = ProvisioningStatus
NEW_PASSWORD = "Matrix-Pass-2026!"

CALLERS = ["anonymous", "root", "admin_a", "user_a", "admin_b", "deactivated", "inactive_tenant", "expired", "refresh"]

# method path                     | anonymous root admin_a user_a admin_b deactivated inactive_tenant expired refresh
MATRIX = """
GET    /api/tenants/tenant-options  200 200 200 200 200 200 200 200 200
POST   /api/tokens                  200 200 401 401 401 401 403 200 200
POST   /api/tokens/refresh          200 200 200 200 200 200 403 200 200
GET    /api/tokens/{refresh}        200 200 200 200 200 200 403 200 200
GET    /api/tenants                 401 200 403 403 403 401 403 401 401
GET    /api/tenants/acme            401 200 403 403 403 401 403 401 401
POST   /api/tenants                 401 202 403 403 403 401 403 401 401
PUT    /api/tenants/acme            401 202 403 403 403 401 403 401 401
POST   /api/tenants/broken/retry    401 202 403 403 403 401 403 401 401
DELETE /api/tenants/acme            401 202 403 403 403 401 403 401 401
GET    /api/users                   401 200 200 403 200 401 403 401 401
POST   /api/users                   401 201 201 403 201 401 403 401 401
GET    /api/users/me                401 200 200 200 200 401 403 401 401
GET    /api/identity/profile        401 200 200 200 200 401 403 401 401
PUT    /api/identity/profile        401 200 200 200 200 401 403 401 401
PUT    /api/identity/preferences    401 200 200 200 200 401 403 401 401
GET    /api/identity/users          401 200 200 403 200 401 403 401 401
POST   /api/identity/users          401 201 201 403 201 401 403 401 401
GET    /api/identity/users/{user_a} 401 404 200 403 404 401 403 401 401
PUT    /api/identity/users/{user_a} 401 404 200 403 404 401 403 401 401
DELETE /api/identity/users/{user_a} 401 404 200 403 404 401 403 401 401
POST   /api/identity/forgot-password 200 200 200 200 200 200 403 200 200
GET    /api/notifications           401 200 200 200 200 401 403 401 401
POST   /api/notifications/read      401 200 200 200 200 401 403 401 401
GET    /api/database-servers        401 200 403 403 403 401 403 401 401
PATCH  /api/database-servers/main   401 200 403 403 403 401 403 401 401
DELETE /api/database-servers/idle   401 204 403 403 403 401 403 401 401
"""
# Notes on the table (API.md):
# - Sign-in and refresh take no bearer token, but the tenant is resolved from one when it is sent
#   ("Tenant resolution": JWT claim first). The sign-in body is root's, so a caller whose token names
#   tenant A or B signs in to that tenant and is refused (401), and one whose tenant is inactive gets
#   403 "Tenant invalid". An expired or refresh token is no access token: the call is anonymous.
# - A deactivated user's token is refused like an invalid one (401); the inactive tenant's users get
#   403 "Tenant invalid" on every tenant-scoped call.
# - /api/identity/users/{user_a} is user_a's (tenant A): another tenant's admin, and root (of the root tenant),
#   do not find it (404), as /api/users shows them only their own tenant's users.
# - forgot-password is anonymous (its tenant resolved as sign-in's): it answers alike for every caller whose tenant
#   is usable. Change- and reset-password refuse these passwordless users whoever calls (400): their callers are
#   in tests/tenants/test_identity_views.py and test_password_reset.py.
# - POST /api/database-servers reaches the server it is given before it answers 201: its callers are in
#   tests/tenants/test_server_views.py, with a real one.

# Each body of a call, for the caller's user (`me`, None for a caller that is anonymous).
BODIES = {
    ("POST", "/api/tokens"): lambda me: {
        "email": settings.DIQUIS_ROOT_EMAIL,
        "password": settings.DIQUIS_ROOT_PASSWORD,
    },
    ("POST", "/api/tokens/refresh"): lambda me: {"refreshToken": root_tokens()["refreshToken"]},
    ("POST", "/api/tenants"): lambda me: {
        "id": "newcomer",
        "name": "Newcomer",
        "adminEmail": "admin@newcomer.test",
        "password": NEW_PASSWORD,
        "hasIsolatedDatabase": False,
    },
    ("PUT", "/api/tenants/acme"): lambda me: {"name": "Acme Renamed", "isActive": True},
    ("POST", "/api/users"): lambda me: {"email": "new@matrix.test", "password": NEW_PASSWORD, "role": "basic"},
    ("POST", "/api/notifications/read"): lambda me: {"upTo": Notification.objects.order_by("-id").first().id},
    ("PATCH", "/api/database-servers/main"): lambda me: {"weight": 2},
    # The original web client's bodies (its Users page, profile and preferences tabs, forgotten-password page).
    ("PUT", "/api/identity/profile"): lambda me: {
        "id": str(me.pk) if me else "",
        "firstName": "Matrix",
        "lastName": "Profile",
        "email": me.email if me else "someone@matrix.test",
        "phoneNumber": "",
    },
    ("PUT", "/api/identity/preferences"): lambda me: {"darkModeDefault": True, "pageSizeDefault": 25},
    ("POST", "/api/identity/users"): lambda me: {
        "firstName": "New",
        "lastName": "User",
        "email": "new@matrix.test",
        "password": NEW_PASSWORD,
        "roleId": "basic",
    },
    ("PUT", "/api/identity/users/{user_a}"): lambda me: {
        "firstName": "User",
        "lastName": "A",
        "email": "user@acme.test",
        "phoneNumber": "",
        "isActive": True,
        "roleId": "editor",
    },
    ("POST", "/api/identity/forgot-password"): lambda me: {"email": "user@acme.test"},
}


def cells():
    for line in MATRIX.strip().splitlines():
        method, path, *statuses = line.split()
        assert len(statuses) == len(CALLERS), line
        for caller, status in zip(CALLERS, statuses, strict=True):
            yield pytest.param(method, path, caller, int(status), id=f"{method} {path} as {caller}")


def root_user():
    return User.objects.get(tenant_id=ROOT_TENANT_ID, email=settings.DIQUIS_ROOT_EMAIL.lower())


def root_tokens():
    return issue_tokens(root_user())


def user(tenant_id, email, role=Role.BASIC, **fields):
    """A user without a password (tokens are issued directly): no hashing in a test of 144 cells."""
    return User.objects.create(tenant_id=tenant_id, email=email, roles=[role], **fields)


@pytest.fixture
def cast(db):
    """Tenants A (acme), B (beta), the inactive C (closed), a failed creation to retry, and their users."""
    TenantFactory(id="acme", name="Acme")
    TenantFactory(id="beta", name="Beta")
    TenantFactory(id="closed", name="Closed", is_active=False)
    TenantFactory(id="broken", name="Broken", status=S.FAILED, is_provisioned=False, operation=Operation.CREATE)
    Job.objects.create(
        task="tenants.tasks.provision_tenant",
        kwargs={"tenant_id": "broken", "initiated_by": None},
        subject="tenant:broken",
        status=Job.Status.FAILED,
        attempts=3,
        max_attempts=3,
    )
    users = {
        "root": root_user(),
        "admin_a": user("acme", "admin@acme.test", Role.ADMIN),
        "user_a": user("acme", "user@acme.test"),
        "admin_b": user("beta", "admin@beta.test", Role.ADMIN),
        "deactivated": user("acme", "gone@acme.test", Role.ADMIN, is_active=False),
        "inactive_tenant": user("closed", "admin@closed.test", Role.ADMIN),
    }
    for name, someone in users.items():
        Notification.objects.create(user_id=someone.pk, event="Probe", data={"for": name})
    DatabaseServer.objects.create(name="idle", host="127.0.0.1", port=1, user="nobody")  # no tenant on it
    return users


def bearer_for(caller, cast):
    if caller == "anonymous":
        return None
    if caller == "expired":
        token = AccessToken(issue_tokens(cast["root"])["token"])
        token.set_exp(lifetime=-timedelta(seconds=5))
        return str(token)
    if caller == "refresh":
        return issue_tokens(cast["root"])["refreshToken"]
    return issue_tokens(cast[caller])["token"]


def state():
    """What a refused call must leave as it was."""
    return {
        "tenants": sorted(Tenant.objects.values_list("id", "name", "is_active", "status")),
        "users": sorted(User.objects.values_list("tenant_id", "email", "is_active")),
        "jobs": sorted(Job.objects.values_list("subject", "status")),
        "unread": Notification.objects.filter(read=False).count(),
        "servers": sorted(DatabaseServer.objects.values_list("name", "weight", "status")),
    }


def expected_message(path, caller, status):
    if status == 401 and path == "/api/tokens":
        return "Invalid credentials"
    if status == 403 and caller == "inactive_tenant":
        return "Tenant invalid"
    if status == 404:
        return "Not Found"
    return "Not Authorized"


@pytest.mark.parametrize(("method", "path", "caller", "status"), list(cells()))
def test_authorization_matrix(cast, method, path, caller, status):
    client = APIClient()
    token = bearer_for(caller, cast)
    if token:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    body = BODIES.get((method, path), lambda me: None)(cast.get(caller))
    url = path.replace("{refresh}", root_tokens()["refreshToken"]).replace("{user_a}", str(cast["user_a"].pk))
    before = state()

    response = client.generic(method, url, json.dumps(body) if body else "", content_type="application/json")

    assert response.status_code == status, response.content
    if status == 204:
        assert response.content == b""
        GRANTED[(method, path)](None, cast.get(caller), cast)
        return
    payload = response.json()
    assert payload["succeeded"] is (status < 400)
    if status >= 400:
        assert payload == {"succeeded": False, "data": None, "messages": [expected_message(path, caller, status)]}
        assert state() == before
    else:
        GRANTED[(method, path)](payload["data"], cast.get(caller), cast)


# --- what a granted call shows or does, by row (`me`: the caller's user; None for a call that is anonymous) ---


def root_was_signed_in(data, me, cast):
    """Sign-in with root's credentials and refresh of root's token: new tokens, for root whoever asks."""
    for token in (AccessToken(data["token"]), RefreshToken(data["refreshToken"])):
        assert (token["user_id"], token["tenant"]) == (str(cast["root"].pk), ROOT_TENANT_ID)


def tenant_options(data, me, cast):
    assert data == [{"id": "root", "name": "Root"}, {"id": "acme", "name": "Acme"}, {"id": "beta", "name": "Beta"}]


def every_tenant(data, me, cast):
    assert {t["id"] for t in data} == {"root", "acme", "beta", "closed", "broken"}


def tenant_acme(data, me, cast):
    assert (data["id"], data["name"], data["status"]) == ("acme", "Acme", S.ACTIVE)


def job_for(tenant_id, task, status):
    def check(data, me, cast):
        assert data == tenant_id
        assert Tenant.objects.get(pk=tenant_id).status == status
        job = Job.objects.filter(subject=f"tenant:{tenant_id}").order_by("-created_at").first()
        assert (job.task, job.status, job.kwargs["initiated_by"]) == (f"tenants.tasks.{task}", "queued", str(me.pk))

    return check


def users_of_my_tenant(data, me, cast):
    expected = {u.email for u in cast.values() if u.tenant_id == me.tenant_id}
    assert {u["email"] for u in data} == expected
    assert {u["tenant"] for u in data} == {me.tenant_id}


def user_created_in_my_tenant(data, me, cast):
    assert (data["email"], data["tenant"], data["roles"]) == ("new@matrix.test", me.tenant_id, ["basic"])
    assert list(User.objects.filter(email="new@matrix.test").values_list("tenant_id", flat=True)) == [me.tenant_id]


def myself(data, me, cast):
    assert (data["id"], data["email"]) == (str(me.pk), me.email)


def my_notifications(data, me, cast):
    assert [(n["event"], n["data"]) for n in data] == [("Probe", {"for": name_of(me, cast)})]


def only_mine_read(data, me, cast):
    assert data == 1
    read = Notification.objects.filter(read=True).values_list("data__for", flat=True)
    assert list(read) == [name_of(me, cast)]


def name_of(me, cast):
    (name,) = [name for name, someone in cast.items() if someone.pk == me.pk]
    return name


def my_profile_renamed(data, me, cast):
    assert (data["id"], data["email"], data["firstName"], data["lastName"]) == (
        str(me.pk),
        me.email,
        "Matrix",
        "Profile",
    )
    assert User.objects.get(pk=me.pk).first_name == "Matrix"


def my_preferences_saved(data, me, cast):
    assert data is None
    assert User.objects.get(pk=me.pk).preferences == {"dark_mode_default": True, "page_size_default": 25}
    assert User.objects.exclude(pk=me.pk).filter(preferences__has_key="page_size_default").count() == 0


def identity_users_of_my_tenant(data, me, cast):
    assert {u["email"] for u in data} == {u.email for u in cast.values() if u.tenant_id == me.tenant_id}


def identity_user_created_in_my_tenant(data, me, cast):
    assert (data["email"], data["roleId"]) == ("new@matrix.test", "basic")
    assert list(User.objects.filter(email="new@matrix.test").values_list("tenant_id", flat=True)) == [me.tenant_id]


def user_a(data, me, cast):
    assert (data["id"], data["email"], data["roleId"]) == (str(cast["user_a"].pk), "user@acme.test", "basic")


def user_a_made_editor(data, me, cast):
    assert (data["id"], data["roleId"]) == (str(cast["user_a"].pk), "editor")
    assert User.objects.get(pk=cast["user_a"].pk).roles == ["editor"]


def user_a_deleted(data, me, cast):
    assert data == str(cast["user_a"].pk)
    assert not User.objects.filter(pk=cast["user_a"].pk).exists()


def reset_mail_queued(data, me, cast):
    """For the tenant of the call: the caller's when its token names one, else root (anonymous callers)."""
    assert data is None
    job = Job.objects.get(task="tenants.tasks.send_password_reset")
    tenant_id = me.tenant_id if me else ROOT_TENANT_ID
    assert (job.subject, job.kwargs["tenant_id"], job.kwargs["email"]) == (
        f"password-reset:{tenant_id}",
        tenant_id,
        "user@acme.test",
    )


def servers_main_first(data, me, cast):
    assert [server["name"] for server in data] == ["main", "idle"]


def main_weighed_again(data, me, cast):
    assert (data["name"], data["weight"]) == ("main", 2)
    assert DatabaseServer.objects.get(pk="main").weight == 2


def idle_server_removed(data, me, cast):
    assert list(DatabaseServer.objects.values_list("name", flat=True)) == ["main"]


GRANTED = {
    ("GET", "/api/tenants/tenant-options"): tenant_options,
    ("POST", "/api/tokens"): root_was_signed_in,
    ("POST", "/api/tokens/refresh"): root_was_signed_in,
    ("GET", "/api/tokens/{refresh}"): root_was_signed_in,
    ("GET", "/api/tenants"): every_tenant,
    ("GET", "/api/tenants/acme"): tenant_acme,
    ("POST", "/api/tenants"): job_for("newcomer", "provision_tenant", S.PENDING),
    ("PUT", "/api/tenants/acme"): job_for("acme", "apply_tenant_update", S.UPDATING),
    ("POST", "/api/tenants/broken/retry"): job_for("broken", "provision_tenant", S.PENDING),
    ("DELETE", "/api/tenants/acme"): job_for("acme", "deprovision_tenant", S.DELETING),
    ("GET", "/api/users"): users_of_my_tenant,
    ("POST", "/api/users"): user_created_in_my_tenant,
    ("GET", "/api/users/me"): myself,
    ("GET", "/api/identity/profile"): myself,
    ("PUT", "/api/identity/profile"): my_profile_renamed,
    ("PUT", "/api/identity/preferences"): my_preferences_saved,
    ("GET", "/api/identity/users"): identity_users_of_my_tenant,
    ("POST", "/api/identity/users"): identity_user_created_in_my_tenant,
    ("GET", "/api/identity/users/{user_a}"): user_a,
    ("PUT", "/api/identity/users/{user_a}"): user_a_made_editor,
    ("DELETE", "/api/identity/users/{user_a}"): user_a_deleted,
    ("POST", "/api/identity/forgot-password"): reset_mail_queued,
    ("GET", "/api/notifications"): my_notifications,
    ("POST", "/api/notifications/read"): only_mine_read,
    ("GET", "/api/database-servers"): servers_main_first,
    ("PATCH", "/api/database-servers/main"): main_weighed_again,
    ("DELETE", "/api/database-servers/idle"): idle_server_removed,
}


def test_every_row_of_the_table_has_its_check_of_a_granted_call():
    rows = {tuple(line.split()[:2]) for line in MATRIX.strip().splitlines()}
    assert rows == set(GRANTED)
