"""The consumer's delivery while a socket stays open (notifications/consumers.py): a push lost on the way (Redis
stopped or frozen a moment) leaves no hole before the notifications that follow. In-process through Channels'
communicator, with the real Redis channel layer and PostgreSQL."""

import json

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator

from diquis.asgi import application
from notifications.models import Notification
from notifications.services import notify
from tests.notifications.test_auth import access_for
from tests.support.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def stored_without_push(user, event):
    """A notification whose push was lost: the row is there, no socket was told."""
    return Notification.objects.create(user_id=user.pk, event=event, data={})


def test_a_push_after_a_lost_one_brings_the_lost_one_first_once():
    user = UserFactory(roles=["root"])
    seen = notify(str(user.pk), "Seen", {})

    async def scenario():
        path = f"/hubs/notifications?access_token={access_for(user)}&since={seen.id - 1}"
        communicator = WebsocketCommunicator(application, path)
        assert (await communicator.connect(timeout=30))[0]
        frames = [json.loads(await communicator.receive_from(timeout=30)) for _ in range(2)]  # Connected, Seen
        lost = await sync_to_async(stored_without_push)(user, "Lost")
        after = await sync_to_async(notify)(str(user.pk), "After", {})
        frames += [json.loads(await communicator.receive_from(timeout=30)) for _ in range(2)]
        assert await communicator.receive_nothing(timeout=1)
        await communicator.disconnect()
        return frames, [seen.id, lost.id, after.id]

    frames, ids = async_to_sync(scenario)()
    assert [frame["event"] for frame in frames] == ["Connected", "Seen", "Lost", "After"]
    assert [frame["id"] for frame in frames[1:]] == ids
