"""Security findings 2 and 9 of issue 18, as the attacker sent them: the throttles of the API.

Finding 2: the per-address sign-in budget read the client address from X-Forwarded-For, which any client
writes; a fresh header per request was a fresh budget. Finding 9: creating users and tenants and refreshing
tokens had no budget at all.
"""

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings
from django.db import connections
from rest_framework.test import APIClient

from tenants.tokens import issue_tokens
from tests.support.factories import TenantFactory, UserFactory
from tests.support.users import client_for

RATES = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
# The documented defaults (README, "Security settings"), for a run against code that has no such budget.
DEFAULT_RATES = {"user_create": "30/min", "tenant_create": "60/min", "token_refresh": "30/min"}


def budget(scope):
    return int(RATES.get(scope, DEFAULT_RATES.get(scope, "")).split("/")[0])


@pytest.fixture
def acme(db):
    TenantFactory(id="acme")
    return UserFactory(tenant_id="acme", email="boss@acme.test", roles=["admin"])


def test_a_forged_x_forwarded_for_does_not_buy_a_fresh_sign_in_budget(api, acme):
    """Before: 35 x 401, no 429 (every request its own "address"). Now the budget of the one real address."""
    codes = []
    for n in range(budget("login_address") + 5):
        response = api.post(
            "/api/tokens",
            {"email": f"spray{n}@acme.test", "password": "Wrong-Password-1!"},
            format="json",
            HTTP_TENANT="acme",
            HTTP_X_FORWARDED_FOR=f"203.0.113.{n}, 198.51.100.{n}",
            REMOTE_ADDR="192.0.2.7",
        )
        codes.append(response.status_code)
    assert codes[: budget("login_address")] == [401] * budget("login_address")
    assert set(codes[budget("login_address") :]) == {429}


def test_creating_users_has_a_budget_per_admin(acme):
    """Before: every POST /api/users was served, each a password hash (0.33 s of CPU) inside the request."""
    admin = client_for(acme, tenant="acme")
    codes = [
        admin.post(
            "/api/users", {"email": f"u{n}@acme.test", "password": "Member-Password-1!"}, format="json"
        ).status_code
        for n in range(budget("user_create") + 1)
    ]
    assert codes == [201] * budget("user_create") + [429]
    assert admin.get("/api/users").status_code == 200  # reading is not counted
    other = UserFactory(tenant_id="acme", email="other@acme.test", roles=["admin"])
    body = {"email": "late@acme.test", "password": "Member-Password-1!"}
    assert client_for(other, tenant="acme").post("/api/users", body, format="json").status_code == 201


def test_creating_tenants_has_a_budget_per_root(root_api):
    """Before: every POST /api/tenants was accepted (each a database clone and a password hash in a job)."""
    codes = [
        root_api.post(
            "/api/tenants",
            {"id": f"flood-{n}", "name": "Flood", "adminEmail": "a@flood.test", "password": "Flood-Admin-Pass-1!"},
            format="json",
        ).status_code
        for n in range(budget("tenant_create") + 1)
    ]
    assert codes == [202] * budget("tenant_create") + [429]
    assert root_api.get("/api/tenants").status_code == 200


def test_refreshing_has_a_budget_per_user(acme, api):
    """Before: a refresh token could mint tokens without limit (POST and GET /api/tokens/{refreshToken})."""
    refresh = issue_tokens(acme)["refreshToken"]
    codes = []
    for n in range(budget("token_refresh") + 1):
        if n % 2:
            codes.append(api.get(f"/api/tokens/{refresh}", REMOTE_ADDR=f"192.0.2.{n}").status_code)
        else:
            body = {"refreshToken": refresh}
            codes.append(api.post("/api/tokens/refresh", body, format="json", REMOTE_ADDR=f"192.0.2.{n}").status_code)
    assert codes == [200] * budget("token_refresh") + [429]
    other = issue_tokens(UserFactory(tenant_id="acme", email="other@acme.test"))["refreshToken"]
    assert api.post("/api/tokens/refresh", {"refreshToken": other}, format="json").status_code == 200


def test_a_forged_refresh_token_spends_its_senders_budget_not_its_victims(acme, api):
    victim = issue_tokens(acme)["refreshToken"]
    header, payload, _ = victim.split(".")
    forged = f"{header}.{payload}.AAAA"  # the victim's user id, a bad signature
    for _ in range(budget("token_refresh")):
        api.post("/api/tokens/refresh", {"refreshToken": forged}, format="json", REMOTE_ADDR="192.0.2.66")
    assert api.post("/api/tokens/refresh", {"refreshToken": victim}, format="json").status_code == 200


def test_wrong_sign_ins_sent_together_get_no_more_than_the_budget(transactional_db):
    """Before: DRF's throttle read the key's history, decided, then wrote it back, so sign-ins at once all read the
    same history (12 sent together through HTTP got 6 past a budget of 5). Each from its own address: only the
    account's budget counts."""
    TenantFactory(id="acme")
    allowed, extra = budget("login_email"), 8
    start = threading.Barrier(allowed + extra)

    def sign_in(n):
        start.wait()
        body = {"email": "boss@acme.test", "password": "Wrong-Password-1!"}
        try:
            return (
                APIClient()
                .post("/api/tokens", body, format="json", HTTP_TENANT="acme", REMOTE_ADDR=f"192.0.2.{n}")
                .status_code
            )
        finally:
            connections.close_all()  # this thread's own

    with ThreadPoolExecutor(allowed + extra) as pool:
        codes = Counter(pool.map(sign_in, range(allowed + extra)))
    assert codes == {401: allowed, 429: extra}
