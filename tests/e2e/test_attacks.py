"""The security findings of issue 18 that need the live stack (Daphne + worker), as the attacker sent them.

Each test names its finding; the in-process ones live beside the module they test, and their docstrings
name the finding too (`grep -rl "issue 18" tests` lists them all).
"""

import secrets
import time

import httpx
import jwt
import pytest
from django.conf import settings

from tenants import services
from tenants.models import Tenant
from tenants.tokens import issue_tokens
from tests.support import live
from tests.support.factories import TenantFactory, UserFactory
from tests.support.users import make_root_user

PASSWORD = "User-Password-123!"
TENANT_ADMIN_PASSWORD = "Tenant-Admin-Pass-42!"


def sign_in(client, email, tenant, password=PASSWORD):
    response = client.post("/api/tokens", json={"email": email, "password": password}, headers={"tenant": tenant})
    assert response.status_code == 200, response.text
    return response.json()["data"]


@pytest.fixture
def acme(transactional_db):
    TenantFactory(id="acme")
    return UserFactory(tenant_id="acme", email="boss@acme.test", roles=["admin"])


def test_finding_4_a_refused_refresh_by_path_leaves_no_token_in_the_log(live_stack, acme):
    """Before: `Forbidden: /api/tokens/<refresh JWT>` in the web log, the token whole (and it still refreshed
    later). Now the log line says [redacted], and token responses say `Cache-Control: no-store`."""
    with httpx.Client(base_url=live_stack.url, timeout=30) as client:
        tokens = sign_in(client, acme.email, "acme")
        Tenant.objects.filter(pk="acme").update(is_active=False)
        refused = client.get(f"/api/tokens/{tokens['refreshToken']}")
        Tenant.objects.filter(pk="acme").update(is_active=True)
        refreshed = client.get(f"/api/tokens/{tokens['refreshToken']}")
    assert refused.status_code == 403 and refreshed.status_code == 200
    for response in (refused, refreshed):
        assert "no-store" in response.headers["cache-control"]
    live_stack.web.stop()
    log = live_stack.web.output()
    assert "/api/tokens/[redacted]" in log
    secret_part = tokens["refreshToken"].rsplit(".", 1)[1]
    assert secret_part not in log


def test_finding_11_a_secret_key_rotation_keeps_sessions_and_pending_admin_passwords(transactional_db, tmp_path):
    """Before: after SECRET_KEY was rotated, every access and refresh token was 401 and a tenant accepted just
    before the rotation failed ("cannot be decrypted"). Now the old key, in SECRET_KEY_FALLBACKS, still verifies
    and decrypts what it signed, until that expires; what is new is signed with the new key."""
    old_key, new_key = settings.SECRET_KEY, secrets.token_urlsafe(50)
    root = make_root_user()
    old_tokens = issue_tokens(root)  # signed with the suite's (old) key
    services.create_tenant(
        tenant_id="rotated",
        name="Rotated",
        admin_email="admin@rotated.test",
        password=TENANT_ADMIN_PASSWORD,
        has_isolated_database=False,
        initiated_by=root.pk,
    )  # its admin password encrypted with the old key; no worker runs yet
    stack = live.LiveStack(tmp_path, SECRET_KEY=new_key, SECRET_KEY_FALLBACKS=old_key)
    try:
        with httpx.Client(base_url=stack.url, timeout=30) as client:
            me = client.get("/api/users/me", headers={"authorization": f"Bearer {old_tokens['token']}"})
            refreshed = client.post("/api/tokens/refresh", json={"refreshToken": old_tokens["refreshToken"]})
            tenant = wait_for_status(client, refreshed.json()["data"]["token"], "rotated")
            admin = client.post(
                "/api/tokens",
                json={"email": "admin@rotated.test", "password": TENANT_ADMIN_PASSWORD},
                headers={"tenant": "rotated"},
            )
    finally:
        stack.stop()
    assert me.status_code == 200 and refreshed.status_code == 200
    assert (tenant["status"], tenant["provisioningError"]) == ("Active", None)
    assert admin.status_code == 200
    new_token = refreshed.json()["data"]["token"]
    jwt.decode(new_token, new_key, algorithms=["HS256"])  # what is issued now is the new key's


def wait_for_status(client, token, tenant_id, statuses=("Active", "Failed"), timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get(f"/api/tenants/{tenant_id}", headers={"authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
        if response.json()["data"]["status"] in statuses:
            return response.json()["data"]
        time.sleep(0.3)
    raise AssertionError(f"{tenant_id} did not reach {statuses}")
