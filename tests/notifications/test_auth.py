"""Who may open /hubs/notifications (API.md, "WebSocket"): in-process through Channels' communicator,
with the real Redis channel layer."""

import asyncio
import json
import threading
import time
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from diquis.asgi import application
from notifications.groups import user_group
from notifications.services import PUSH_MESSAGE_TYPE, notify
from tenants.backends import TenantEmailBackend
from tests.support.factories import TenantFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

CONNECTED = {"id": None, "event": "Connected", "data": {"message": "Successfully connected to notification hub"}}


def access_for(user, lifetime=None):
    token = AccessToken.for_user(user)
    token["tenant"] = user.tenant_id
    if lifetime is not None:
        token.set_exp(lifetime=lifetime)
    return str(token)


def run(coroutine_function, *args):
    return async_to_sync(coroutine_function)(*args)


async def _open(path, headers=(), subprotocols=None):
    """Connect; once accepted, every frame until a close or a moment of silence after the first one."""
    communicator = WebsocketCommunicator(application, path, headers=list(headers), subprotocols=subprotocols)
    connected, detail = await communicator.connect(timeout=30)
    result = {"connected": connected, "detail": detail, "frames": []}
    if connected:
        message = await communicator.receive_output(timeout=30)  # an accepted socket says something first
        while True:
            if message["type"] == "websocket.close":
                result["closed"] = message.get("code")
                return result
            result["frames"].append(message.get("text"))
            if await communicator.receive_nothing(timeout=0.3):
                break
            message = await communicator.receive_output(timeout=30)
        await communicator.disconnect()
    return result


def open_socket(path, **kwargs):
    return async_to_sync(_open)(path, **kwargs)


@pytest.fixture
def user(db):
    return UserFactory(roles=["root"])


def test_a_valid_access_token_connects_and_gets_connected_first(user):
    result = open_socket(f"/hubs/notifications?access_token={access_for(user)}")
    assert result["connected"]
    assert json.loads(result["frames"][0]) == CONNECTED


def test_the_bearer_subprotocol_is_accepted_and_echoed(user):
    result = open_socket("/hubs/notifications", subprotocols=["bearer", access_for(user)])
    assert result["connected"]
    assert result["detail"] == "bearer"
    assert json.loads(result["frames"][0]) == CONNECTED


@pytest.mark.parametrize(
    "token",
    ["none", "not-a-jwt", "forged", "expired", "refresh"],
)
def test_a_bad_token_in_the_bearer_subprotocol_is_refused(user, token):
    valid = access_for(user)
    subprotocols = {
        "none": ["bearer"],
        "not-a-jwt": ["bearer", "not-a-jwt"],
        "forged": ["bearer", valid.rsplit(".", 1)[0] + ".AAAA"],
        "expired": ["bearer", access_for(user, lifetime=-timedelta(seconds=5))],
        "refresh": ["bearer", str(RefreshToken.for_user(user))],
    }[token]
    assert not open_socket("/hubs/notifications", subprotocols=subprotocols)["connected"]


def session_cookie(user):
    """The session cookie of `user` signed in to the Django admin's session (as a browser would hold it)."""
    client = Client()
    client.force_login(user)
    name = settings.SESSION_COOKIE_NAME
    return [(b"cookie", f"{name}={client.cookies[name].value}".encode())]


def test_the_session_of_a_staff_user_connects(user):
    result = open_socket("/hubs/notifications", headers=session_cookie(user))
    assert result["connected"]
    assert json.loads(result["frames"][0]) == CONNECTED


def test_the_session_of_a_user_who_is_not_staff_is_refused(db):
    """A root-tenant user without the root role: Django's session backend loads them (the session is valid),
    but only staff may open the hub with a session."""
    basic = UserFactory(roles=["basic"])
    assert TenantEmailBackend().get_user(basic.pk) == basic and not basic.is_staff
    assert not open_socket("/hubs/notifications", headers=session_cookie(basic))["connected"]


@pytest.mark.parametrize(
    "query",
    ["", "?access_token=", "?access_token=not-a-jwt", "?access_token=eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl"],
)
def test_missing_or_invalid_tokens_are_refused(query):
    result = open_socket(f"/hubs/notifications{query}")
    assert not result["connected"]


def test_an_expired_token_is_refused(user):
    result = open_socket(f"/hubs/notifications?access_token={access_for(user, lifetime=-timedelta(seconds=5))}")
    assert not result["connected"]


def test_a_refresh_token_is_refused(user):
    refresh = RefreshToken.for_user(user)
    refresh["tenant"] = user.tenant_id
    assert not open_socket(f"/hubs/notifications?access_token={refresh}")["connected"]


def test_a_token_with_a_bad_signature_is_refused(user):
    token = access_for(user)
    header, payload, _signature = token.split(".")
    forged = f"{header}.{payload}.AAAA"
    assert not open_socket(f"/hubs/notifications?access_token={forged}")["connected"]


def test_a_token_of_a_deactivated_tenant_is_refused(db):
    TenantFactory(id="acme", is_active=False)
    member = UserFactory(tenant_id="acme", roles=["admin"])
    assert not open_socket(f"/hubs/notifications?access_token={access_for(member)}")["connected"]


def test_a_foreign_origin_is_refused_and_an_allowed_one_accepted(user):
    token = access_for(user)
    foreign = open_socket(f"/hubs/notifications?access_token={token}", headers=[(b"origin", b"https://evil.example")])
    assert not foreign["connected"]
    # the socket's own origin (issue 18, finding 8: scheme, host and port of the handshake itself)
    same = [(b"origin", b"http://localhost:8000"), (b"host", b"localhost:8000")]
    allowed = open_socket(f"/hubs/notifications?access_token={token}", headers=same)
    assert allowed["connected"]


async def _expires(token):
    communicator = WebsocketCommunicator(application, f"/hubs/notifications?access_token={token}")
    connected, _ = await communicator.connect(timeout=30)
    assert connected
    assert (await communicator.receive_json_from(timeout=30))["event"] == "Connected"
    message = await communicator.receive_output(timeout=60)
    return message, time.time()


def test_the_socket_is_closed_with_4401_when_its_token_expires(user):
    token = access_for(user, lifetime=timedelta(seconds=2))
    expires_at = AccessToken(token)["exp"]
    message, closed_at = run(_expires, token)
    assert (message["type"], message["code"]) == ("websocket.close", 4401)
    assert closed_at >= expires_at  # at its expiry, not before


async def _replay(token, since, count):
    """Connected and the `count` frames replayed after it; then nothing more."""
    communicator = WebsocketCommunicator(application, f"/hubs/notifications?access_token={token}&since={since}")
    connected, _ = await communicator.connect(timeout=30)
    assert connected
    frames = [await communicator.receive_json_from(timeout=30) for _ in range(1 + count)]
    assert await communicator.receive_nothing(timeout=0.5), "more than was replayed"
    await communicator.disconnect()
    return frames


def test_since_replays_only_the_callers_notifications_in_order(user):
    other = UserFactory(roles=["root"])
    first = notify(user.pk, "TenantCreated", {"n": 1})
    notify(other.pk, "TenantCreated", {"n": "other"})
    second = notify(user.pk, "TenantUpdated", {"n": 2})
    frames = run(_replay, access_for(user), first.id - 1, 2)
    assert frames[0] == CONNECTED
    assert frames[1:] == [
        {"id": first.id, "event": "TenantCreated", "data": {"n": 1}},
        {"id": second.id, "event": "TenantUpdated", "data": {"n": 2}},
    ]
    assert run(_replay, access_for(user), second.id, 0) == [CONNECTED]


def test_a_push_is_not_held_up_by_a_busy_sync_thread(user):
    """Django's sync work (views, token checks) runs on one thread: a push must not wait for it. The thread
    is held until the push has arrived, or for a minute: a push that waited for it would not arrive."""

    async def scenario():
        communicator = WebsocketCommunicator(application, f"/hubs/notifications?access_token={access_for(user)}")
        assert (await communicator.connect(timeout=30))[0]
        assert json.loads(await communicator.receive_from(timeout=30)) == CONNECTED
        delivered = threading.Event()
        taken = threading.Event()

        def hold_the_sync_thread():
            taken.set()
            delivered.wait(timeout=60)

        busy = asyncio.ensure_future(sync_to_async(hold_the_sync_thread)())
        while not taken.is_set():
            await asyncio.sleep(0.05)
        frame = {"id": None, "event": "Probe", "data": {}}
        await get_channel_layer().group_send(user_group(user.pk), {"type": PUSH_MESSAGE_TYPE, "frame": frame})
        try:
            received = json.loads(await communicator.receive_from(timeout=30))
            thread_still_held = not busy.done()
        finally:
            delivered.set()
            await busy
            await communicator.disconnect()
        return received, thread_still_held

    received, thread_still_held = run(scenario)
    assert received["event"] == "Probe"
    assert thread_still_held
