"""A user's notification ids are in commit order, and one socket sends them in increasing order, each once
(found by the fault soak: two workers ending jobs of one user at once committed 157 before 156, and a client that
saw 157 and came back with `?since=157` never had 156). Real PostgreSQL, each transaction on its own connection
(a thread each); the sockets through Channels' communicator with the real Redis channel layer."""

import json
import threading
import time

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import connection, transaction

from diquis.asgi import application
from notifications.groups import user_group
from notifications.services import PUSH_MESSAGE_TYPE, notify
from tests.notifications.test_auth import access_for
from tests.notifications.test_consumers import stored_without_push
from tests.support.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def waiting_for_an_advisory_lock():
    """Backends of this database waiting for an advisory lock another one holds."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        return cursor.fetchone()[0]


class Notifier(threading.Thread):
    """Notifies the user in a transaction of its own connection; `hold` keeps that transaction open until
    released. `committed` is set once the transaction has ended, `notification` is what notify returned."""

    def __init__(self, user_id, event, commits, hold=False):
        super().__init__(name=event, daemon=True)
        self.user_id, self.event, self.commits = user_id, event, commits
        self.notified, self.release, self.committed = threading.Event(), threading.Event(), threading.Event()
        self.notification = self.error = None
        if not hold:
            self.release.set()

    def run(self):
        try:
            with transaction.atomic():
                self.notification = notify(self.user_id, self.event, {})
                self.notified.set()
                self.release.wait(30)
            self.commits.append(self.notification.id)
        except Exception as error:  # noqa: BLE001  (the test reports it)
            self.error = error
        finally:
            self.committed.set()
            self.notified.set()
            connection.close()


def concurrent_notifications(user_id):
    """The soak's race: the first transaction has its id and is still open when the second notifies the same
    user; the second either waits for it (ids in commit order) or commits first. Returns the ids in the order
    they committed, and the two notifications (first, second)."""
    commits = []
    first = Notifier(user_id, "First", commits, hold=True)
    first.start()
    assert first.notified.wait(30)
    second = Notifier(user_id, "Second", commits)
    second.start()
    deadline = time.monotonic() + 20
    while not second.committed.is_set() and not waiting_for_an_advisory_lock():
        assert time.monotonic() < deadline, "the second notification neither committed nor waited"
        time.sleep(0.02)
    first.release.set()
    for notifier in (first, second):
        notifier.join(30)
        assert notifier.error is None, notifier.error
    return commits, first.notification, second.notification


def test_a_users_notification_ids_are_in_commit_order():
    user = UserFactory(roles=["root"])
    commits, first, second = concurrent_notifications(str(user.pk))
    assert commits == sorted(commits), f"committed in the order {commits}"
    assert commits == [first.id, second.id]


def test_notifications_of_two_users_do_not_wait_for_each_other():
    one, other = UserFactory(roles=["root"]), UserFactory(roles=["root"])
    commits = []
    holder = Notifier(str(one.pk), "Held", commits, hold=True)
    holder.start()
    assert holder.notified.wait(30)
    free = Notifier(str(other.pk), "Free", commits)
    free.start()
    assert free.committed.wait(10), "a notification of another user waited for the open transaction"
    holder.release.set()
    holder.join(30)
    assert commits == [free.notification.id, holder.notification.id]


def frames_of(communicator, count):
    async def receive():
        return [json.loads(await communicator.receive_from(timeout=30)) for _ in range(count)]

    return receive()


def test_a_socket_and_its_replay_see_concurrent_notifications_once_in_order():
    user = UserFactory(roles=["root"])
    before = notify(str(user.pk), "Before", {})

    async def scenario():
        path = f"/hubs/notifications?access_token={access_for(user)}&since={before.id}"
        live = WebsocketCommunicator(application, path)
        assert (await live.connect(timeout=30))[0]
        assert (await frames_of(live, 1))[0]["event"] == "Connected"
        _, first, second = await sync_to_async(concurrent_notifications)(str(user.pk))
        frames = await frames_of(live, 2)
        # The two pushes race between workers: the later one may come last as well, late; it is not sent again.
        layer = get_channel_layer()
        late = {"type": PUSH_MESSAGE_TYPE, "frame": first.frame(), "previous": before.id}
        await layer.group_send(user_group(str(user.pk)), late)
        assert await live.receive_nothing(timeout=1)
        await live.disconnect()

        replay = WebsocketCommunicator(application, f"/hubs/notifications?access_token={access_for(user)}&since=0")
        assert (await replay.connect(timeout=30))[0]
        replayed = (await frames_of(replay, 4))[1:]
        assert await replay.receive_nothing(timeout=1)
        await replay.disconnect()
        return frames, replayed, [before.id, first.id, second.id]

    frames, replayed, ids = async_to_sync(scenario)()
    assert [frame["id"] for frame in frames] == ids[1:]
    assert [frame["id"] for frame in replayed] == ids


def test_a_push_that_arrives_after_a_later_one_is_not_sent_after_it():
    """Two workers' pushes of one user, the later id first, to a socket opened without `?since=`: it sends both,
    in order (the later push names the earlier as its previous: the gap is replayed), and never goes back to the
    lower id when the earlier push arrives at last."""
    user = UserFactory(roles=["root"])
    notify(str(user.pk), "Before the socket", {})

    async def scenario():
        communicator = WebsocketCommunicator(application, f"/hubs/notifications?access_token={access_for(user)}")
        assert (await communicator.connect(timeout=30))[0]
        assert (await frames_of(communicator, 1))[0]["event"] == "Connected"
        earlier = await sync_to_async(stored_without_push)(user, "Earlier")  # committed; their pushes come below
        later = await sync_to_async(stored_without_push)(user, "Later")
        group, layer = user_group(str(user.pk)), get_channel_layer()
        await layer.group_send(group, {"type": PUSH_MESSAGE_TYPE, "frame": later.frame(), "previous": earlier.id})
        await layer.group_send(group, {"type": PUSH_MESSAGE_TYPE, "frame": earlier.frame(), "previous": None})
        frames = await frames_of(communicator, 2)
        assert await communicator.receive_nothing(timeout=1)
        await communicator.disconnect()
        return frames, [earlier.id, later.id]

    frames, ids = async_to_sync(scenario)()
    assert [frame["id"] for frame in frames] == ids
