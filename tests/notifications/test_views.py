"""GET /api/notifications and POST /api/notifications/read (API.md, "Notifications"): each user sees, and
marks read, their own notifications only, whoever else has some with nearby ids."""

import pytest

from notifications.services import notify
from tests.support.factories import UserFactory
from tests.support.users import client_for


@pytest.fixture
def two_users(db):
    me, other = UserFactory(roles=["root"]), UserFactory(roles=["root"])
    ids = {me: [], other: []}
    for n in range(3):  # interleaved, so that any id range covers both users' notifications
        for user in (me, other):
            ids[user].append(notify(user.pk, "TenantCreated", {"n": n, "for": user.email}).id)
    return me, other, ids


def listed(user, **params):
    response = client_for(user).get("/api/notifications", params)
    assert response.status_code == 200, response.content
    return response.json()["data"]


def test_the_list_holds_the_callers_notifications_only(two_users):
    me, other, ids = two_users
    mine = listed(me)
    assert [n["id"] for n in mine] == ids[me]
    assert {n["data"]["for"] for n in mine} == {me.email}
    assert [n["id"] for n in listed(me, after=ids[me][0])] == ids[me][1:]
    assert [n["id"] for n in listed(other)] == ids[other]


def test_read_marks_the_callers_notifications_only(two_users):
    me, other, ids = two_users
    up_to = max(ids[me] + ids[other])
    response = client_for(me).post("/api/notifications/read", {"upTo": up_to}, format="json")
    assert (response.status_code, response.json()["data"]) == (200, 3)
    assert [n["read"] for n in listed(me)] == [True, True, True]
    assert [n["read"] for n in listed(other)] == [False, False, False]
    again = client_for(me).post("/api/notifications/read", {"upTo": up_to}, format="json")
    assert again.json()["data"] == 0  # nothing left unread
