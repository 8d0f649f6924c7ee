"""The original web client's calls (API.md, "Compatibility calls of the original web client")."""

import re

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from jobs.models import Job
from tenants.models import Operation, ProvisioningStatus, Role, Tenant
from tenants.tokens import issue_tokens
from tests.support.factories import TenantFactory, UserFactory
from tests.support.users import client_for

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
PROFILE_KEYS = {"id", "firstName", "lastName", "email", "phoneNumber", "isActive", "roleId", "imageUrl", "createdOn"}


def test_profile_is_the_signed_in_user_in_the_original_shape(root_user):
    root_user.first_name, root_user.last_name, root_user.phone_number = "Ada", "Root", "+1 555 0100"
    root_user.image_url = "https://cdn.example/ada.png"
    root_user.save()
    response = client_for(root_user).get("/api/identity/profile")
    assert response.status_code == 200
    body = response.json()
    assert (body["succeeded"], body["messages"]) == (True, [])
    data = body["data"]
    # the original's keys, and the preferences PUT /api/identity/preferences saved (test_identity_views.py)
    assert set(data) == PROFILE_KEYS | {"preferences"}
    assert data.pop("preferences") == {"darkModeDefault": False, "pageSizeDefault": 10}
    assert TIMESTAMP.match(data.pop("createdOn"))
    assert data == {
        "id": str(root_user.pk),
        "firstName": "Ada",
        "lastName": "Root",
        "email": root_user.email,
        "phoneNumber": "+1 555 0100",
        "isActive": True,
        "roleId": "root",
        "imageUrl": "https://cdn.example/ada.png",
    }


def test_profile_of_a_tenant_admin_names_its_role_and_leaks_no_secret(db):
    TenantFactory(id="acme")
    admin = UserFactory(tenant_id="acme", email="boss@acme.test", roles=[Role.ADMIN])
    response = client_for(admin, tenant="acme").get("/api/identity/profile")
    assert response.status_code == 200
    data = response.json()["data"]
    assert (data["email"], data["roleId"]) == ("boss@acme.test", "admin")
    assert "password" not in response.content.decode().lower()


def test_profile_needs_a_token(api):
    response = api.get("/api/identity/profile")
    assert (response.status_code, response.json()["messages"]) == (401, ["Not Authorized"])


def test_refresh_by_path_answers_as_the_post(api, root_user):
    refresh = issue_tokens(root_user)["refreshToken"]
    response = api.get(f"/api/tokens/{refresh}")
    assert response.status_code == 200
    data = response.json()["data"]
    assert set(data) == {"token", "refreshToken", "refreshTokenExpiryTime"}
    assert AccessToken(data["token"])["user_id"] == str(root_user.pk)
    by_post = api.post("/api/tokens/refresh", {"refreshToken": refresh}, format="json")
    assert by_post.status_code == 200
    assert set(by_post.json()["data"]) == set(data)


@pytest.mark.parametrize("token", ["not-a-jwt", "eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl"])
def test_refresh_by_path_refuses_what_the_post_refuses(api, token):
    by_path = api.get(f"/api/tokens/{token}")
    by_post = api.post("/api/tokens/refresh", {"refreshToken": token}, format="json")
    assert by_path.status_code == by_post.status_code == 401
    assert by_path.json() == by_post.json()


def test_refresh_by_path_refuses_an_access_token(api, root_user):
    access = issue_tokens(root_user)["token"]
    assert api.get(f"/api/tokens/{access}").status_code == 401


def test_refresh_by_path_of_a_deactivated_tenant_is_refused(db):
    tenant = TenantFactory(id="acme")
    admin = UserFactory(tenant_id="acme", email="boss@acme.test", roles=[Role.ADMIN])
    refresh = issue_tokens(admin)["refreshToken"]
    Tenant.objects.filter(pk=tenant.pk).update(is_active=False)
    response = APIClient().get(f"/api/tokens/{refresh}")
    assert (response.status_code, response.json()["messages"]) == (403, ["Tenant invalid"])


def test_put_with_the_whole_tenant_object_as_read_changes_only_name_and_activity(root_api):
    TenantFactory(id="acme", name="Acme", admin_email="admin@acme.test", has_isolated_database=False)
    whole = root_api.get("/api/tenants/acme").json()["data"]
    whole.update(
        name="Acme Renamed",
        isActive=False,
        adminEmail="hijack@evil.test",
        status="Failed",
        hasIsolatedDatabase=True,
        provisioningError="made up",
        createdOn="2000-01-01T00:00:00Z",
    )
    response = root_api.put("/api/tenants/acme", whole, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["data"] == "acme"
    kwargs = Job.objects.get(subject="tenant:acme").kwargs
    assert (kwargs["name"], kwargs["is_active"]) == ("Acme Renamed", False)
    tenant = Tenant.objects.get(pk="acme")
    assert (tenant.status, tenant.operation) == (ProvisioningStatus.UPDATING, Operation.UPDATE)
    assert (tenant.admin_email, tenant.has_isolated_database, tenant.provisioning_error) == (
        "admin@acme.test",
        False,
        None,
    )


def test_the_capitalised_tenant_header_is_the_tenant_header(api):
    TenantFactory(id="acme")
    UserFactory(tenant_id="acme", email="boss@acme.test", roles=[Role.ADMIN])
    response = api.post(
        "/api/tokens",
        {"email": "boss@acme.test", "password": "User-Password-123!"},
        format="json",
        headers={"Tenant": "acme"},
    )
    assert response.status_code == 200, response.content
    assert AccessToken(response.json()["data"]["token"])["tenant"] == "acme"
