"""Nothing a user was told is lost: replay with `?since=` after a dropped socket, the REST calls for a user
who was offline, and exactly-once delivery while replay and live pushes overlap. Real Daphne + worker."""

import threading

import httpx
import pytest
from django.db import connection

from notifications.models import Notification
from notifications.services import notify
from tenants.provisioning.steps import CREATE_ADMIN_USER
from tests.support.fault_injection import wait_until
from tests.support.live import LiveStack, drain, wait_for_event
from tests.support.live_tenants import is_active, post_tenant, root_token, socket
from tests.support.users import make_root_user


@pytest.fixture
def stack(transactional_db, tmp_path, fault):
    stack = LiveStack(tmp_path, DIQUIS_FAULTS_FILE=str(fault.path))
    yield stack
    stack.stop()


LIVE_PUSHES = 200


def notifications_api(stack, token, method="GET", path="/api/notifications", **kwargs):
    return httpx.request(method, f"{stack.url}{path}", headers={"authorization": f"Bearer {token}"}, **kwargs)


def last_seen(frames, default):
    ids = [f["id"] for f in frames if f["id"] is not None]
    return max(ids, default=default)


def test_a_socket_dropped_during_provisioning_gets_the_result_once_on_reconnect(stack, fault):
    token = root_token()
    fault.hold(CREATE_ADMIN_USER, "dropped")
    with socket(stack, token, since=0) as ws:
        assert post_tenant(stack, token, "dropped").status_code == 202
        fault.wait_held()
        progress, before = wait_for_event(ws, "TenantProvisioningProgress", timeout=30)
    since = last_seen([*before, progress], 0)
    fault.release()
    wait_until(lambda: is_active("dropped"), timeout=30, what="tenant Active")

    with socket(stack, token, since=since) as ws:
        created, _ = wait_for_event(ws, "TenantCreated", timeout=30)
        assert created["data"]["tenantId"] == "dropped"
        assert created["id"] > since
        assert [f for f in drain(ws, 2.0) if f["event"] == "TenantCreated"] == []  # once


def test_a_socket_back_before_the_end_gets_the_result_live_once(stack, fault):
    token = root_token()
    fault.hold(CREATE_ADMIN_USER, "back-early")
    with socket(stack, token, since=0) as ws:
        assert post_tenant(stack, token, "back-early").status_code == 202
        fault.wait_held()
        progress, before = wait_for_event(ws, "TenantProvisioningProgress", timeout=30)
    since = last_seen([*before, progress], 0)
    with socket(stack, token, since=since) as ws:
        fault.release()
        frame, _ = wait_for_event(ws, "TenantCreated", timeout=30)
        assert frame["data"]["tenantId"] == "back-early"
        assert [f for f in drain(ws, 2.0) if f["event"] == "TenantCreated"] == []


def test_a_user_offline_during_the_creation_finds_it_by_socket_and_by_rest(stack):
    user = make_root_user()
    token = root_token(user)
    since = Notification.objects.filter(user_id=user.pk).order_by("-id").values_list("id", flat=True).first() or 0
    assert post_tenant(stack, token, "offline").status_code == 202
    wait_until(lambda: is_active("offline"), timeout=30, what="tenant Active")

    with socket(stack, token, since=since) as ws:
        frame, _ = wait_for_event(ws, "TenantCreated", timeout=10)
        assert frame["data"]["tenantId"] == "offline"
    listed = notifications_api(stack, token, params={"after": since})
    assert listed.status_code == 200
    (item,) = [n for n in listed.json()["data"] if n["event"] == "TenantCreated"]
    assert (item["id"], item["read"], item["data"]["tenantId"]) == (frame["id"], False, "offline")
    assert notifications_api(stack, token, params={"after": item["id"]}).json()["data"] == []

    marked = notifications_api(stack, token, "POST", "/api/notifications/read", json={"upTo": item["id"]})
    assert marked.status_code == 200
    assert [n["read"] for n in notifications_api(stack, token, params={"after": since}).json()["data"]] == [True]


def test_replay_and_live_pushes_overlapping_deliver_every_notification_once_in_order(stack):
    """Notifications keep coming while a client reconnects with `?since=`: each id arrives exactly once,
    none is missing, and they arrive in increasing order."""
    user = make_root_user()
    token = root_token(user)
    backlog = [notify(str(user.pk), "Backlog", {"n": n}).id for n in range(300)]
    live_ids, sender_errors = [], []

    def send_live():
        try:
            for n in range(LIVE_PUSHES):
                live_ids.append(notify(str(user.pk), "Live", {"n": n}).id)
        except BaseException as error:  # told to the test below, not lost with the thread
            sender_errors.append(error)
        finally:
            connection.close()  # this thread's own connection

    sender = threading.Thread(target=send_live)
    with socket(stack, token, since=backlog[0] - 1) as ws:
        sender.start()
        sender.join(timeout=120)
        assert not sender.is_alive(), "the sender did not finish within 120 s"
        assert sender_errors == []
        assert len(live_ids) == LIVE_PUSHES
        expected = backlog + live_ids
        frames = []
        while not frames or frames[-1]["id"] != expected[-1]:
            more = drain(ws, 3.0)
            assert more, f"stalled after {len(frames)} of {len(expected)} frames"
            frames += [f for f in more if f["id"] is not None]
    ids = [f["id"] for f in frames]
    assert len(ids) == len(set(ids)), "a notification arrived twice"
    assert ids == sorted(ids), "notifications arrived out of order"
    assert ids == expected
