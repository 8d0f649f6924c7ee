"""Security findings 2 and 9 of issue 18, as the attacker sent them: the throttles of the API.

Finding 2: the per-address sign-in budget read the client address from X-Forwarded-For, which any client
writes; a fresh header per request was a fresh budget. Finding 9: creating users and tenants and refreshing
tokens had no budget at all.
"""

import pytest
from django.conf import settings

from tests.support.factories import TenantFactory, UserFactory

RATES = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]


def budget(scope):
    return int(RATES[scope].split("/")[0])


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
