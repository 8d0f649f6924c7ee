"""Three database servers under the live stack (Daphne + a real worker): isolated tenants created over HTTP are
placed across them and announced on the websocket; then one server is stopped mid-traffic: its tenants get 503
["Tenant database unavailable"] within a few seconds, the others carry on, /health names it, and once it is
started again its tenants are served again."""

import threading
import time

import httpx
import pytest
from django.conf import settings

from tenants.models import MAIN_SERVER, Tenant
from tests.support.fault_injection import wait_until
from tests.support.live import LiveStack, wait_for_event
from tests.support.live_tenants import figure, finished, post_tenant, root_token, sign_in, socket

PER_SERVER = 2
UNAVAILABLE = ["Tenant database unavailable"]


@pytest.fixture
def stack(transactional_db, fleet_servers, tmp_path):
    stack = LiveStack(tmp_path)
    try:
        yield stack
    finally:
        stack.stop()


def me(stack, token):
    started = time.monotonic()
    response = httpx.get(f"{stack.url}/api/users/me", headers={"authorization": f"Bearer {token}"}, timeout=30)
    return response, time.monotonic() - started


def test_tenants_are_placed_over_three_servers_and_a_stopped_one_hurts_only_its_own(
    stack, fleet_servers, extra_postgres_servers, root_user
):
    token = root_token(root_user)
    servers = [MAIN_SERVER, *fleet_servers]
    tenant_ids = [f"fleet-{n}" for n in range(PER_SERVER * len(servers))]
    with socket(stack, token) as ws:
        for tenant_id in tenant_ids:
            response = post_tenant(stack, token, tenant_id, isolated=True)
            assert response.status_code == 202, response.text
            frame, _ = wait_for_event(ws, "TenantCreated", timeout=120)
            assert frame["data"]["tenantId"] == tenant_id
    wait_until(lambda: all(finished(t) for t in tenant_ids), timeout=60, what="every creation recorded")
    placed = dict(Tenant.objects.filter(id__in=tenant_ids).values_list("id", "database_server_id"))
    assert sorted(placed.values()) == sorted(servers * PER_SERVER)  # each server its share, in turn
    tokens = {}
    for tenant_id in tenant_ids:
        response = sign_in(stack, tenant_id)
        assert response.status_code == 200, response.text
        tokens[tenant_id] = response.json()["data"]["token"]
    down = [t for t, server in placed.items() if server == "pg-plain"]
    up = [t for t in tenant_ids if t not in down]

    others = {"answers": [], "stop": threading.Event()}

    def keep_calling():  # the other servers' tenants, all along
        while not others["stop"].is_set():
            for tenant_id in up:
                others["answers"].append(me(stack, tokens[tenant_id])[0].status_code)

    caller = threading.Thread(target=keep_calling, daemon=True)
    caller.start()
    try:
        wait_until(lambda: len(others["answers"]) >= 10, timeout=30, what="calls under way")
        extra_postgres_servers.plain.stop()
        slowest = 0.0
        for tenant_id in down:
            response, took = me(stack, tokens[tenant_id])
            assert (response.status_code, response.json()["messages"]) == (503, UNAVAILABLE)
            slowest = max(slowest, took)
            response = sign_in(stack, tenant_id)
            assert (response.status_code, response.json()["messages"]) == (503, UNAVAILABLE)
        assert slowest < settings.DIQUIS_SERVER_CONNECT_TIMEOUT + 1.5, slowest
        health = httpx.get(f"{stack.url}/health", timeout=30)
        assert health.status_code == 200
        assert health.json()["databaseServers"] == {MAIN_SERVER: "ok", "pg-logical": "ok", "pg-plain": "down"}
        during = len(others["answers"])
        wait_until(lambda: len(others["answers"]) >= during + 10, timeout=30, what="the others served meanwhile")
    finally:
        extra_postgres_servers.plain.start_again()
    wait_until(
        lambda: all(me(stack, tokens[t])[0].status_code == 200 for t in down),
        timeout=30,
        what="the stopped server's tenants served again",
    )
    others["stop"].set()
    caller.join(timeout=60)
    assert set(others["answers"]) == {200}  # never a 503 (nor a 500) for a tenant elsewhere
    figure("slowest 503 of a stopped server's tenant (s)", round(slowest, 2))
