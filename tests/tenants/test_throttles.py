"""Repeated sign-in attempts are refused with 429 in the envelope (DRF throttling, counters in Redis)."""

import pytest
from django.conf import settings

from tests.support.factories import TenantFactory, UserFactory

EMAIL_RATE = int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["login_email"].split("/")[0])
ADDRESS_RATE = int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["login_address"].split("/")[0])


@pytest.fixture
def acme(db):
    TenantFactory(id="acme")
    return UserFactory(tenant_id="acme", email="boss@acme.test")


def attempt(api, email, password="Wrong-Password-1!", address="10.0.0.1"):
    return api.post(
        "/api/tokens", {"email": email, "password": password}, format="json", HTTP_TENANT="acme", REMOTE_ADDR=address
    )


def test_repeated_failures_for_one_email_are_refused_with_429(api, acme):
    for n in range(EMAIL_RATE):
        assert attempt(api, acme.email, address=f"10.0.1.{n}").status_code == 401
    refused = attempt(api, acme.email, address="10.0.2.1")
    assert refused.status_code == 429
    body = refused.json()
    assert body["succeeded"] is False and body["data"] is None
    assert body["messages"] and "throttled" in body["messages"][0]
    assert int(refused["Retry-After"]) > 0
    # even the right password waits: the budget is the account's, not the failure's
    assert attempt(api, acme.email, "User-Password-123!", address="10.0.2.2").status_code == 429
    # another account is not affected
    assert attempt(api, "someone@acme.test", address="10.0.2.3").status_code == 401


def test_repeated_attempts_from_one_address_are_refused_with_429(api, acme):
    for n in range(ADDRESS_RATE):
        assert attempt(api, f"user{n}@acme.test", address="10.9.9.9").status_code == 401
    assert attempt(api, "fresh@acme.test", address="10.9.9.9").status_code == 429
    assert attempt(api, "fresh@acme.test", address="10.9.9.10").status_code == 401
