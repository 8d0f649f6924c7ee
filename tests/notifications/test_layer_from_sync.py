"""Pushes from synchronous code (a job in the worker, a view) to the channel layer, on the real Redis:
delivered, over one kept connection per process, and from a forked child (an RQ work-horse) too."""

import multiprocessing

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from notifications.layer_from_sync import group_send
from tests.support.redis_client import redis

GROUP = "push-probe"
MESSAGE = {"type": "notification.push", "frame": {"id": 1, "event": "Probe", "data": {}}}


def listening_channel():
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(GROUP, channel)
    return channel


def received(channel, count):
    async def receive_all():
        return [await get_channel_layer().receive(channel) for _ in range(count)]

    try:
        return async_to_sync(receive_all)()
    finally:
        async_to_sync(get_channel_layer().group_discard)(GROUP, channel)


def connections_opened():
    return redis().info("stats")["total_connections_received"]


def test_a_push_from_sync_code_reaches_the_group():
    channel = listening_channel()
    group_send(GROUP, MESSAGE)
    assert received(channel, 1) == [MESSAGE]


def test_many_pushes_share_one_redis_connection():
    """async_to_sync(group_send) ran each push in a new event loop, with a new connection each time."""
    channel = listening_channel()
    group_send(GROUP, MESSAGE)  # the process's connection is open from here on
    before = connections_opened()
    for _ in range(20):
        group_send(GROUP, MESSAGE)
    opened = connections_opened() - before
    assert received(channel, 21) == [MESSAGE] * 21
    assert opened <= 2, f"{opened} connections opened for 20 pushes"


def _push_in_child():
    group_send(GROUP, {**MESSAGE, "frame": {**MESSAGE["frame"], "id": 2}})


def test_a_forked_child_pushes_through_a_loop_of_its_own():
    """The parent's loop thread does not exist in a fork: the child must start its own, not wait on that one."""
    channel = listening_channel()
    group_send(GROUP, MESSAGE)  # the parent's loop is running when the child is forked
    child = multiprocessing.get_context("fork").Process(target=_push_in_child)
    child.start()
    child.join(timeout=30)
    assert child.exitcode == 0
    assert [frame["frame"]["id"] for frame in received(channel, 2)] == [1, 2]
