"""POST /api/tokens, POST /api/tokens/refresh and the claims of the access token (API.md, "Tokens")."""

import pytest
from rest_framework_simplejwt.tokens import AccessToken

from tenants.models import ProvisioningStatus, Role
from tests.support.factories import TenantFactory, UserFactory

S = ProvisioningStatus
PASSWORD = "User-Password-123!"


def sign_in(api, email, password=PASSWORD, tenant=None):
    headers = {"HTTP_TENANT": tenant} if tenant else {}
    return api.post("/api/tokens", {"email": email, "password": password}, format="json", **headers)


def test_root_signs_in_without_a_tenant_header(api, root_user, settings):
    response = sign_in(api, settings.DIQUIS_ROOT_EMAIL, settings.DIQUIS_ROOT_PASSWORD)
    assert response.status_code == 200
    data = response.json()["data"]
    assert set(data) == {"token", "refreshToken", "refreshTokenExpiryTime"}
    assert data["refreshTokenExpiryTime"].endswith("Z")
    claims = AccessToken(data["token"])
    assert claims["user_id"] == str(root_user.pk)
    assert (claims["tenant"], claims["email"], claims["roles"]) == ("root", root_user.email, ["root"])


def test_a_tenant_admin_signs_in_with_the_tenant_header_and_gets_admin_role(api):
    TenantFactory(id="acme")
    user = UserFactory(tenant_id="acme", email="boss@acme.test", roles=[Role.ADMIN])
    response = sign_in(api, "BOSS@acme.test", tenant="acme")
    assert response.status_code == 200
    claims = AccessToken(response.json()["data"]["token"])
    assert (claims["tenant"], claims["roles"], claims["user_id"]) == ("acme", ["admin"], str(user.pk))


def test_the_subdomain_names_the_tenant(api):
    TenantFactory(id="acme")
    UserFactory(tenant_id="acme", email="boss@acme.test")
    response = api.post(
        "/api/tokens", {"email": "boss@acme.test", "password": PASSWORD}, format="json", HTTP_HOST="acme.localhost"
    )
    assert response.status_code == 200
    assert AccessToken(response.json()["data"]["token"])["tenant"] == "acme"


def test_unknown_email_and_wrong_password_get_the_same_401(api):
    TenantFactory(id="acme")
    UserFactory(tenant_id="acme", email="boss@acme.test")
    unknown = sign_in(api, "nobody@acme.test", tenant="acme")
    wrong = sign_in(api, "boss@acme.test", "Wrong-Password-1!", tenant="acme")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json() == {"succeeded": False, "data": None, "messages": ["Invalid credentials"]}


def test_a_user_of_another_tenant_cannot_sign_in_here(api):
    TenantFactory(id="acme")
    TenantFactory(id="other")
    UserFactory(tenant_id="other", email="boss@other.test")
    assert sign_in(api, "boss@other.test", tenant="acme").status_code == 401


def test_a_deactivated_user_is_403(api):
    TenantFactory(id="acme")
    UserFactory(tenant_id="acme", email="gone@acme.test", is_active=False)
    response = sign_in(api, "gone@acme.test", tenant="acme")
    assert (response.status_code, response.json()["messages"]) == (403, ["User account deactivated"])


@pytest.mark.parametrize(
    "tenant",
    [
        {"status": S.PENDING, "is_provisioned": False},
        {"status": S.PROVISIONING, "is_provisioned": False},
        {"status": S.FAILED, "is_provisioned": False},
        {"status": S.DELETING},
        {"is_active": False},
    ],
)
def test_sign_in_to_an_unusable_tenant_is_403_tenant_invalid(api, tenant):
    TenantFactory(id="acme", **tenant)
    UserFactory(tenant_id="acme", email="boss@acme.test")
    response = sign_in(api, "boss@acme.test", tenant="acme")
    assert (response.status_code, response.json()["messages"]) == (403, ["Tenant invalid"])


def test_an_unknown_tenant_is_403_tenant_invalid(api):
    response = sign_in(api, "x@y.test", tenant="nowhere")
    assert (response.status_code, response.json()["messages"]) == (403, ["Tenant invalid"])


@pytest.mark.parametrize("tenant", [{"status": S.UPDATING}, {"status": S.FAILED, "is_provisioned": True}])
def test_a_tenant_stays_usable_while_updating_and_after_a_failed_update(api, tenant):
    TenantFactory(id="acme", **tenant)
    UserFactory(tenant_id="acme", email="boss@acme.test")
    assert sign_in(api, "boss@acme.test", tenant="acme").status_code == 200


def test_refresh_returns_the_same_shape_and_refuses_garbage(api):
    TenantFactory(id="acme")
    UserFactory(tenant_id="acme", email="boss@acme.test")
    refresh = sign_in(api, "boss@acme.test", tenant="acme").json()["data"]["refreshToken"]
    response = api.post("/api/tokens/refresh", {"refreshToken": refresh}, format="json")
    assert response.status_code == 200
    data = response.json()["data"]
    assert set(data) == {"token", "refreshToken", "refreshTokenExpiryTime"}
    assert AccessToken(data["token"])["tenant"] == "acme"
    bad = api.post("/api/tokens/refresh", {"refreshToken": "garbage"}, format="json")
    assert (bad.status_code, bad.json()["succeeded"]) == (401, False)


def test_an_access_token_is_not_a_refresh_token(api):
    TenantFactory(id="acme")
    UserFactory(tenant_id="acme", email="boss@acme.test")
    access = sign_in(api, "boss@acme.test", tenant="acme").json()["data"]["token"]
    assert api.post("/api/tokens/refresh", {"refreshToken": access}, format="json").status_code == 401


def test_refresh_of_a_deactivated_tenant_is_refused(api):
    tenant = TenantFactory(id="acme")
    UserFactory(tenant_id="acme", email="boss@acme.test")
    refresh = sign_in(api, "boss@acme.test", tenant="acme").json()["data"]["refreshToken"]
    tenant.is_active = False
    tenant.save()
    response = api.post("/api/tokens/refresh", {"refreshToken": refresh}, format="json")
    assert (response.status_code, response.json()["messages"]) == (403, ["Tenant invalid"])


def test_a_token_of_tenant_a_with_header_b_is_403(api):
    TenantFactory(id="acme")
    TenantFactory(id="other")
    UserFactory(tenant_id="acme", email="boss@acme.test")
    token = sign_in(api, "boss@acme.test", tenant="acme").json()["data"]["token"]
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.get("/api/users/me", HTTP_TENANT="acme").status_code == 200
    response = api.get("/api/users/me", HTTP_TENANT="other")
    assert (response.status_code, response.json()["messages"]) == (403, ["Not Authorized"])


def test_sign_in_validates_its_body(api):
    response = api.post("/api/tokens", {"email": ""}, format="json")
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"email", "password"}


def test_a_request_decodes_its_bearer_token_once(api, root_user, settings, monkeypatch):
    """The middleware's validated token (it names the tenant) is the one authentication uses."""
    token = sign_in(api, settings.DIQUIS_ROOT_EMAIL, settings.DIQUIS_ROOT_PASSWORD).json()["data"]["token"]
    decoded = []
    original = AccessToken.__init__

    def counting(self, *args, **kwargs):
        decoded.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(AccessToken, "__init__", counting)
    response = api.get("/api/users/me", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200 and response.json()["data"]["email"] == root_user.email
    assert len(decoded) == 1


@pytest.mark.parametrize("header", ["Bearer not-a-token", "Basic abc", "Bearer "])
def test_a_bad_or_foreign_authorization_header_still_gets_401(api, root_user, header):
    response = api.get("/api/users/me", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
