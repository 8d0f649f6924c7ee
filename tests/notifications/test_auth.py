"""Who may open /hubs/notifications (API.md, "WebSocket"): in-process through Channels' communicator,
with the real Redis channel layer."""

import asyncio
import json
import time
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from diquis.asgi import application
from notifications.groups import user_group
from notifications.services import PUSH_MESSAGE_TYPE, notify
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
    communicator = WebsocketCommunicator(application, path, headers=list(headers), subprotocols=subprotocols)
    connected, detail = await communicator.connect(timeout=5)
    result = {"connected": connected, "detail": detail, "frames": []}
    if connected:
        while not await communicator.receive_nothing(timeout=0.3):
            message = await communicator.receive_output(timeout=1)
            if message["type"] == "websocket.close":
                result["closed"] = message.get("code")
                return result
            result["frames"].append(message.get("text"))
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
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    assert (await communicator.receive_json_from(timeout=2))["event"] == "Connected"
    started = time.monotonic()
    message = await communicator.receive_output(timeout=5)
    return message, time.monotonic() - started


def test_the_socket_is_closed_with_4401_when_its_token_expires(user):
    message, waited = run(_expires, access_for(user, lifetime=timedelta(seconds=2)))
    assert (message["type"], message["code"]) == ("websocket.close", 4401)
    assert waited < 4


async def _replay(token, since):
    communicator = WebsocketCommunicator(application, f"/hubs/notifications?access_token={token}&since={since}")
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    frames = []
    while not await communicator.receive_nothing(timeout=0.5):
        frames.append(await communicator.receive_json_from(timeout=1))
    await communicator.disconnect()
    return frames


def test_since_replays_only_the_callers_notifications_in_order(user):
    other = UserFactory(roles=["root"])
    first = notify(user.pk, "TenantCreated", {"n": 1})
    notify(other.pk, "TenantCreated", {"n": "other"})
    second = notify(user.pk, "TenantUpdated", {"n": 2})
    frames = run(_replay, access_for(user), first.id - 1)
    assert frames[0] == CONNECTED
    assert frames[1:] == [
        {"id": first.id, "event": "TenantCreated", "data": {"n": 1}},
        {"id": second.id, "event": "TenantUpdated", "data": {"n": 2}},
    ]
    assert run(_replay, access_for(user), second.id)[1:] == []


def test_a_push_is_not_held_up_by_a_busy_sync_thread(user):
    """Django's sync work (views, token checks) runs on one thread: a push must not wait for it."""

    async def scenario():
        communicator = WebsocketCommunicator(application, f"/hubs/notifications?access_token={access_for(user)}")
        assert (await communicator.connect(timeout=5))[0]
        assert json.loads(await communicator.receive_from(timeout=2)) == CONNECTED
        busy = asyncio.ensure_future(sync_to_async(time.sleep)(3))  # the sync thread, taken for 3 s
        await asyncio.sleep(0.2)
        started = time.monotonic()
        frame = {"id": None, "event": "Probe", "data": {}}
        await get_channel_layer().group_send(user_group(user.pk), {"type": PUSH_MESSAGE_TYPE, "frame": frame})
        received = json.loads(await communicator.receive_from(timeout=2))
        waited = time.monotonic() - started
        await busy
        await communicator.disconnect()
        return received, waited

    received, waited = run(scenario)
    assert received["event"] == "Probe"
    assert waited < 1, f"the push waited {waited:.1f} s for the sync thread"
