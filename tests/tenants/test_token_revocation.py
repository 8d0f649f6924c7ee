"""Security finding 3 of issue 18: refresh tokens chained for ever. Before: each refresh minted a fresh 7-day
refresh token, the old one kept working, and nothing but a deactivation (while it lasted) or a new SECRET_KEY
revoked them. Now a refreshed session keeps the expiry of its sign-in (an already-used refresh token is still
accepted: the original web client re-sends the one of its sign-in), and a sign-out, a new password, or a
deactivation of the user or of its tenant revokes every token issued before it: 401, for good."""

import time

import pytest
from rest_framework.test import APIClient

from jobs.models import Job
from jobs.runner import run_job
from tenants.models import User
from tests.support.factories import TenantFactory, UserFactory

PASSWORD = "User-Password-123!"


@pytest.fixture
def acme(db):
    TenantFactory(id="acme", name="Acme")
    return UserFactory(tenant_id="acme", email="boss@acme.test", roles=["admin"])


def sign_in(api=None):
    response = (api or APIClient()).post(
        "/api/tokens", {"email": "boss@acme.test", "password": PASSWORD}, format="json", HTTP_TENANT="acme"
    )
    assert response.status_code == 200, response.content
    return response.json()["data"]


def refresh(raw, *, by_path=False):
    api = APIClient()
    if by_path:
        return api.get(f"/api/tokens/{raw}")
    return api.post("/api/tokens/refresh", {"refreshToken": raw}, format="json")


def me(access):
    return APIClient().get("/api/users/me", HTTP_AUTHORIZATION=f"Bearer {access}")


def test_a_refreshed_session_ends_when_its_sign_in_would_have(acme):
    first = sign_in()
    time.sleep(1.1)  # JWT times are whole seconds: a renewed 7 days would now end a second later
    second = refresh(first["refreshToken"]).json()["data"]
    time.sleep(1.1)
    third = refresh(second["refreshToken"], by_path=True).json()["data"]
    assert first["refreshTokenExpiryTime"] == second["refreshTokenExpiryTime"] == third["refreshTokenExpiryTime"]
    assert refresh(first["refreshToken"]).status_code == 200  # the sign-in's token is still accepted


def test_signing_out_revokes_every_token_of_the_user(acme):
    tokens, elsewhere = sign_in(), sign_in()
    out = APIClient().post("/api/tokens/revoke", HTTP_AUTHORIZATION=f"Bearer {tokens['token']}", HTTP_TENANT="acme")
    assert (out.status_code, out.json()["data"]) == (200, None)
    for raw in (tokens["refreshToken"], elsewhere["refreshToken"]):
        assert refresh(raw).status_code == 401
        assert refresh(raw, by_path=True).status_code == 401
    assert me(tokens["token"]).status_code == 401
    assert me(elsewhere["token"]).status_code == 401
    fresh = sign_in()
    assert me(fresh["token"]).status_code == 200 and refresh(fresh["refreshToken"]).status_code == 200


def test_a_new_password_revokes_the_tokens_of_the_old_one(acme):
    stolen = sign_in()
    acme.set_password("Brand-New-Password-9!")
    acme.save()
    assert refresh(stolen["refreshToken"]).status_code == 401
    assert me(stolen["token"]).status_code == 401


def test_a_password_rehash_at_sign_in_revokes_nothing(acme, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *settings.PASSWORD_HASHERS]
    tokens = sign_in()  # the stored Argon2 hash is rewritten as MD5 by check_password
    assert User.objects.get(pk=acme.pk).password.startswith("md5$")
    assert refresh(tokens["refreshToken"]).status_code == 200


def test_a_deactivated_then_reactivated_user_does_not_get_its_old_tokens_back(acme):
    stolen = sign_in()
    acme.is_active = False
    acme.save(update_fields=["is_active"])
    acme = User.objects.get(pk=acme.pk)
    acme.is_active = True
    acme.save()
    assert refresh(stolen["refreshToken"]).status_code == 401
    assert me(stolen["token"]).status_code == 401


@pytest.mark.django_db(transaction=True)
def test_a_deactivated_then_reactivated_tenant_does_not_get_its_old_tokens_back(acme, root_api):
    stolen = sign_in()
    for is_active in (False, True):
        assert (
            root_api.put("/api/tenants/acme", {"name": "Acme", "isActive": is_active}, format="json").status_code == 202
        )
        run_job(str(Job.objects.filter(subject="tenant:acme").latest("created_at").pk))
    assert refresh(stolen["refreshToken"]).status_code == 401
    assert refresh(stolen["refreshToken"], by_path=True).status_code == 401
    assert me(stolen["token"]).status_code == 401
    assert me(sign_in()["token"]).status_code == 200
