"""Pushes from synchronous code (a job in the worker, a view) to the channel layer, on the real Redis:
delivered, over one kept connection per process, and from a forked child (an RQ work-horse) too."""

import copy
import multiprocessing
import os
import uuid

import pytest
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


@pytest.fixture
def named_layer(settings):
    """The channel layer, for this test only, with its Redis connections named (CLIENT SETNAME): the Redis is
    shared with every other client on the machine, so the test counts its own connections by their name."""
    name = f"diquis-test-push-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    layers = copy.deepcopy(settings.CHANNEL_LAYERS)
    layers["default"]["CONFIG"]["hosts"][0]["client_name"] = name
    settings.CHANNEL_LAYERS = layers  # channels drops its layer objects when the setting changes
    yield name
    for client_id in connections_named(name):  # nothing of this test stays connected
        redis().client_kill_filter(_id=client_id)


def connections_named(name):
    """The ids of the connections open now on the Redis server that carry `name`."""
    return {client["id"] for client in redis().client_list() if client["name"] == name}


def test_a_push_from_sync_code_reaches_the_group():
    channel = listening_channel()
    group_send(GROUP, MESSAGE)
    assert received(channel, 1) == [MESSAGE]


def test_many_pushes_share_one_redis_connection(named_layer):
    """async_to_sync(group_send) ran each push in a new event loop, with a new connection each time (closed
    with its loop): the one connection open after the first push must be the one open after twenty more."""
    channel = listening_channel()
    group_send(GROUP, MESSAGE)  # the process's connection is open from here on
    kept = connections_named(named_layer)
    assert len(kept) == 1, kept
    for _ in range(20):
        group_send(GROUP, MESSAGE)
    assert connections_named(named_layer) == kept
    assert received(channel, 21) == [MESSAGE] * 21


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
