"""notifications.recheck: a process's open sockets are checked again together, every
NOTIFICATIONS_RECHECK_INTERVAL, and renewed in the count of their user's sockets (the few queries a round
costs: tests/tenants/test_token_refusals.py). In-process through Channels' communicator, with the real Redis
and PostgreSQL."""

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator

from diquis.asgi import application
from notifications import presence
from notifications.recheck import recheck
from tenants.models import User
from tests.notifications.test_auth import access_for
from tests.support.factories import TenantFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


async def opened(users):
    sockets = []
    for user in users:
        communicator = WebsocketCommunicator(application, f"/hubs/notifications?access_token={access_for(user)}")
        assert (await communicator.connect(timeout=30))[0]
        assert json.loads(await communicator.receive_from(timeout=30))["event"] == "Connected"
        sockets.append(communicator)
    return sockets


async def lapses(user):
    """When the user's one socket's place in the count lapses (its score in Redis)."""
    members = await presence._client().zrange(presence._key(user.pk), 0, -1, withscores=True)
    assert len(members) == 1
    return members[0][1]


def test_a_user_deactivated_without_a_message_has_their_socket_closed_at_the_next_round(settings):
    settings.NOTIFICATIONS_RECHECK_INTERVAL = 0.5
    users = [UserFactory(roles=["root"]) for _ in range(3)]

    async def scenario():
        sockets = await opened(users)
        await sync_to_async(User.objects.filter(pk=users[1].pk).update)(is_active=False)  # no close message
        closed = await sockets[1].receive_output(timeout=10)
        others_stay = [await socket.receive_nothing(timeout=1.5) for socket in (sockets[0], sockets[2])]
        for socket in sockets:
            await socket.disconnect()
        return closed, others_stay

    closed, others_stay = async_to_sync(scenario)()
    assert (closed["type"], closed["code"]) == ("websocket.close", 4401)
    assert others_stay == [True, True]


def test_one_round_checks_every_socket_of_every_tenant_and_renews_them_all(settings):
    settings.NOTIFICATIONS_RECHECK_INTERVAL = 3600  # no round of its own while the test runs one
    TenantFactory(id="acme")
    users = [UserFactory(roles=["root"]) for _ in range(4)]
    users += [UserFactory(tenant_id="acme", email=f"u{i}@acme.test") for i in range(4)]

    async def scenario():
        sockets = await opened(users)
        watched = recheck()
        before = [await lapses(user) for user in users]
        await asyncio.sleep(0.05)
        await watched.check(list(watched.sockets))
        after = [await lapses(user) for user in users]
        count = len(watched.sockets)
        for socket in sockets:
            await socket.disconnect()
        return count, before, after, len(watched.sockets)

    watched, before, after, left = async_to_sync(scenario)()
    assert watched == 8
    assert all(later > earlier for earlier, later in zip(before, after, strict=True))
    assert left == 0  # a socket that ends leaves the round
