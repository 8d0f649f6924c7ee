"""The security findings of issue 18 that need the live stack (Daphne + worker), as the attacker sent them.

Each test names its finding; the in-process ones live beside the module they test, and their docstrings
name the finding too (`grep -rl "issue 18" tests` lists them all).
"""

import httpx
import pytest

from tenants.models import Tenant
from tests.support.factories import TenantFactory, UserFactory

PASSWORD = "User-Password-123!"


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
