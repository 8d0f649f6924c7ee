"""POST /hubs/notifications/negotiate (TransportProtocols.md, "negotiate"), in process."""

from datetime import timedelta

import pytest
from django.test import Client
from rest_framework_simplejwt.tokens import AccessToken

from notifications import signalr
from tenants.tokens import issue_tokens
from tests.support.factories import TenantFactory, UserFactory

URL = "/hubs/notifications/negotiate"
WEBSOCKETS_TEXT = [{"transport": "WebSockets", "transferFormats": ["Text"]}]


@pytest.fixture
def user(db):
    return UserFactory(roles=["root"])


def negotiate(query="?negotiateVersion=1", token=None, **headers):
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return Client().post(f"{URL}{query}", headers=headers)


def test_version_1_answers_id_token_and_websockets_with_text(user):
    response = negotiate(token=issue_tokens(user)["token"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"connectionId", "connectionToken", "negotiateVersion", "availableTransports"}
    assert body["negotiateVersion"] == 1
    assert body["availableTransports"] == WEBSOCKETS_TEXT
    assert body["connectionId"] != body["connectionToken"]
    assert signalr.connection_of(body["connectionToken"], user.pk) == body["connectionId"]


def test_each_negotiation_opens_a_new_connection(user):
    token = issue_tokens(user)["token"]
    first, second = negotiate(token=token).json(), negotiate(token=token).json()
    assert first["connectionId"] != second["connectionId"]


def test_version_0_uses_the_connection_id_as_the_token(user):
    body = negotiate(query="", token=issue_tokens(user)["token"]).json()
    assert set(body) == {"connectionId", "negotiateVersion", "availableTransports"}
    assert body["negotiateVersion"] == 0
    assert signalr.connection_of(body["connectionId"], user.pk)


def test_a_newer_version_than_the_server_knows_gets_the_servers_own(user):
    assert negotiate(query="?negotiateVersion=7", token=issue_tokens(user)["token"]).json()["negotiateVersion"] == 1


def test_the_token_may_come_in_the_query_as_on_the_websocket(user):
    response = negotiate(query=f"?negotiateVersion=1&access_token={issue_tokens(user)['token']}")
    assert response.status_code == 200


def test_a_connection_token_is_bound_to_its_user(user):
    body = negotiate(token=issue_tokens(user)["token"]).json()
    other = UserFactory(roles=["root"])
    assert signalr.connection_of(body["connectionToken"], other.pk) is None
    assert signalr.connection_of(body["connectionToken"] + "x", user.pk) is None


def expired_access(user):
    token = AccessToken.for_user(user)
    token["tenant"] = user.tenant_id
    token.set_exp(lifetime=-timedelta(seconds=5))
    return str(token)


@pytest.mark.parametrize(
    "credentials",
    [
        {},
        {"token": "not-a-jwt"},
        {"query": "?negotiateVersion=1&access_token=not-a-jwt"},
        {"refresh": True},
        {"expired": True},
    ],
    ids=["none", "garbage-header", "garbage-query", "refresh-token", "expired"],
)
def test_no_valid_access_token_is_401(user, credentials):
    token = credentials.get("token")
    if credentials.get("refresh"):
        token = issue_tokens(user)["refreshToken"]
    if credentials.get("expired"):
        token = expired_access(user)
    response = negotiate(query=credentials.get("query", "?negotiateVersion=1"), token=token)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "connectionId" not in response.json()


def test_a_token_of_a_deactivated_tenant_is_401(db):
    TenantFactory(id="acme", is_active=False)
    member = UserFactory(tenant_id="acme", roles=["admin"])
    assert negotiate(token=issue_tokens(member)["token"]).status_code == 401


def test_only_post_is_allowed(user):
    response = Client().get(URL, headers={"Authorization": f"Bearer {issue_tokens(user)['token']}"})
    assert response.status_code == 405


def test_a_version_that_is_not_a_number_is_400(user):
    assert negotiate(query="?negotiateVersion=one", token=issue_tokens(user)["token"]).status_code == 400
