"""Argon2 first (PASSWORD_HASHERS): new hashes are Argon2, and a hash made before, with PBKDF2, still signs its
user in through POST /api/tokens, which rewrites it as Argon2 (API.md, "Tokens")."""

import pytest
from django.conf import settings
from django.contrib.auth.hashers import make_password
from rest_framework.test import APIClient

from tenants.connections import use_tenant
from tenants.models import ROOT_TENANT_ID, User
from tests.support.factories import TenantFactory, UserFactory
from tests.support.tenant_databases import ADMIN_PASSWORD, query

ARGON2 = "argon2$argon2id$"
PBKDF2 = "pbkdf2_sha256$"
PASSWORD = "User-Password-123!"


def sign_in(email, password, tenant):
    response = APIClient().post(
        "/api/tokens", {"email": email, "password": password}, format="json", HTTP_TENANT=tenant
    )
    return response.status_code


def stored_hash(user):
    return User.objects.get(pk=user.pk).password


def test_a_new_password_is_hashed_with_argon2(db):
    TenantFactory(id="acme")
    assert stored_hash(UserFactory(tenant_id="acme")).startswith(ARGON2)


def test_a_pbkdf2_hash_signs_in_and_is_rewritten_as_argon2(db):
    TenantFactory(id="acme")
    user = UserFactory(tenant_id="acme", email="boss@acme.test")
    User.objects.filter(pk=user.pk).update(password=make_password(PASSWORD, hasher="pbkdf2_sha256"))
    assert stored_hash(user).startswith(PBKDF2)

    assert sign_in("boss@acme.test", PASSWORD, "acme") == 200
    assert stored_hash(user).startswith(ARGON2)
    assert sign_in("boss@acme.test", PASSWORD, "acme") == 200
    assert sign_in("boss@acme.test", "Wrong-Password-1!", "acme") == 401


def test_the_root_user_seeded_by_migrate_has_an_argon2_hash(root_user):
    assert root_user.password.startswith(ARGON2)
    User.objects.filter(pk=root_user.pk).update(
        password=make_password(settings.DIQUIS_ROOT_PASSWORD, hasher="pbkdf2_sha256")
    )
    assert sign_in(settings.DIQUIS_ROOT_EMAIL, settings.DIQUIS_ROOT_PASSWORD, ROOT_TENANT_ID) == 200
    assert stored_hash(root_user).startswith(ARGON2)


@pytest.mark.django_db(transaction=True)
def test_an_isolated_tenant_admin_made_by_the_job_has_argon2_and_an_old_pbkdf2_hash_is_upgraded_in_its_database(
    isolated,
):
    (tenant,) = isolated("hashed")
    statement = "SELECT password FROM tenants_user WHERE email = %s"
    assert query(tenant.database_name, statement, [tenant.admin_email])[0][0].startswith(ARGON2)
    with use_tenant(tenant):
        User.objects.filter(email=tenant.admin_email).update(
            password=make_password(ADMIN_PASSWORD, hasher="pbkdf2_sha256")
        )
    assert query(tenant.database_name, statement, [tenant.admin_email])[0][0].startswith(PBKDF2)

    assert sign_in(tenant.admin_email, ADMIN_PASSWORD, tenant.pk) == 200
    assert query(tenant.database_name, statement, [tenant.admin_email])[0][0].startswith(ARGON2)
    assert sign_in(tenant.admin_email, ADMIN_PASSWORD, tenant.pk) == 200
