"""SignalR's JSON hub protocol on /hubs/notifications, frame by frame, against a real Daphne (HubProtocol.md):
the handshake and its errors, invocations, pings both ways, close messages, completions for calls the hub
does not have, and the plain frames of API.md for everyone else. Notifications are sent with notify() from
the test process through the same Redis channel layer.

No test reads a clock against a threshold: a rule about time is shown by two hubs. The brisk one's short
intervals show that a thing happens (a ping, a close) within a generous bound; the patient one's long
intervals show that it does not happen early (an answer that arrives there is an answer, not a keep-alive;
a plain frame that arrives there came at once, not after the wait)."""

import contextlib
import json
import time
from datetime import timedelta

import httpx
import pytest
from rest_framework_simplejwt.tokens import AccessToken
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from notifications.services import notify
from tenants.tokens import issue_tokens
from tests.support import live
from tests.support.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

RS = "\x1e"
HANDSHAKE = json.dumps({"protocol": "json", "version": 1}) + RS
CONNECTED = {"type": 1, "target": "Connected", "arguments": ["Successfully connected to notification hub"]}
PLAIN_CONNECTED = {"id": None, "event": "Connected", "data": {"message": "Successfully connected to notification hub"}}
SIGNALR_AGENT = "Microsoft SignalR/10.0 (10.0.11; Linux; NodeJS; v20)"
# Short protocol intervals so that pings and timeouts show within a test.
HUB_ENV = {
    "SIGNALR_KEEP_ALIVE_INTERVAL": 1,
    "SIGNALR_CLIENT_TIMEOUT": 4,
    "SIGNALR_HANDSHAKE_TIMEOUT": 6,  # room for a client that takes longer than a browser is given
    "NOTIFICATIONS_HANDSHAKE_WAIT": 1,
}
# Intervals no test lasts: nothing of theirs may happen while one runs.
PATIENT_ENV = {
    "SIGNALR_KEEP_ALIVE_INTERVAL": 600,
    "SIGNALR_CLIENT_TIMEOUT": 1200,
    "SIGNALR_HANDSHAKE_TIMEOUT": 600,
    "NOTIFICATIONS_HANDSHAKE_WAIT": 600,
}
WAIT = 30  # the bound of every wait for something that must come: generous, for a busy machine
QUIET = 2  # how long a test watches for something that must not come


@pytest.fixture(scope="module")
def hub(django_db_setup, tmp_path_factory):
    """One Daphne with HUB_ENV (no worker: the tests notify in-process) for the module."""
    web = live.start_web(tmp_path_factory.mktemp("hub"), **HUB_ENV)
    yield f"127.0.0.1:{web.port}"
    web.stop()


@pytest.fixture(scope="module")
def patient_hub(django_db_setup, tmp_path_factory):
    """One Daphne with PATIENT_ENV for the module."""
    web = live.start_web(tmp_path_factory.mktemp("patient-hub"), name="patient", **PATIENT_ENV)
    yield f"127.0.0.1:{web.port}"
    web.stop()


@pytest.fixture
def user(transactional_db):
    return UserFactory(roles=["root"])


def token_for(user, lifetime=None):
    if lifetime is None:
        return issue_tokens(user)["token"]
    token = AccessToken.for_user(user)
    token["tenant"] = user.tenant_id
    token.set_exp(lifetime=lifetime)
    return str(token)


class Hub:
    """A raw websocket to the hub that reads SignalR records one by one."""

    def __init__(self, ws):
        self.ws = ws
        self.records = []

    def send(self, *messages):
        self.ws.send("".join(m if isinstance(m, str) else json.dumps(m) + RS for m in messages))

    def next(self, timeout=WAIT):
        while not self.records:
            text = self.ws.recv(timeout=timeout)
            assert isinstance(text, str), "the Text transfer format: text frames only"
            assert text.endswith(RS), text
            self.records = [json.loads(part) for part in text.split(RS)[:-1]]
        return self.records.pop(0)

    def next_except_pings(self, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while True:
            record = self.next(max(0.1, deadline - time.monotonic()))
            if record != {"type": 6}:
                return record

    def closed(self, timeout=WAIT):
        """The close code once the server has closed, after any records left."""
        with contextlib.suppress(TimeoutError):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    self.ws.recv(timeout=max(0.1, deadline - time.monotonic()))
                except ConnectionClosed as closed:
                    return closed.rcvd.code if closed.rcvd else None
        raise AssertionError("the server did not close the socket")

    def only_pings(self, seconds):
        """True when nothing but keep-alive pings arrives within `seconds`."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                record = self.next(left)
            except TimeoutError:
                break
            assert record == {"type": 6}, record
        return True

    def nothing(self, seconds):
        with contextlib.suppress(TimeoutError):
            return self.next(seconds) is None
        return True


@contextlib.contextmanager
def socket(hub, token, query="", agent=None, origin=None):
    headers = {"User-Agent": agent} if agent else {}
    url = f"ws://{hub}/hubs/notifications?access_token={token}{query}"
    with connect(url, additional_headers=headers, origin=origin, open_timeout=WAIT) as ws:
        yield Hub(ws)


def negotiate(hub, token, version=1):
    response = httpx.post(
        f"http://{hub}/hubs/notifications/negotiate?negotiateVersion={version}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=WAIT,
    )
    assert response.status_code == 200, response.text
    return response.json()


@contextlib.contextmanager
def negotiated(hub, user, query=""):
    """A socket opened the way SignalR clients do by default: negotiate, then ?id=<connectionToken>."""
    token = token_for(user)
    body = negotiate(hub, token)
    with socket(hub, token, f"&id={body['connectionToken']}{query}") as ws:
        yield ws


@contextlib.contextmanager
def shaken(hub, user, query=""):
    with negotiated(hub, user, query) as ws:
        ws.send(HANDSHAKE)
        assert ws.next() == {}
        assert ws.next() == CONNECTED
        yield ws


def test_a_negotiated_socket_shakes_hands_and_gets_notifications_as_invocations(hub, user):
    with shaken(hub, user) as ws:
        notify(user.pk, "TenantCreated", {"type": "success", "tenantId": "acme"})
        assert ws.next_except_pings() == {
            "type": 1,
            "target": "TenantCreated",
            "arguments": [{"type": "success", "tenantId": "acme"}],
        }
        notify(user.pk, "TenantProvisioningProgress", {"tenantId": "acme", "step": "x"}, persist=False)
        assert ws.next_except_pings()["target"] == "TenantProvisioningProgress"


def test_a_version_0_negotiation_connects_with_its_connection_id(hub, user):
    token = token_for(user)
    body = negotiate(hub, token, version=0)
    with socket(hub, token, f"&id={body['connectionId']}") as ws:
        ws.send(HANDSHAKE)
        assert (ws.next(), ws.next()) == ({}, CONNECTED)


def test_records_after_the_handshake_in_the_same_frame_are_answered(hub, user):
    with negotiated(hub, user) as ws:
        ws.send(HANDSHAKE, {"type": 6})
        assert [ws.next(), ws.next(), ws.next()] == [{}, CONNECTED, {"type": 6}]


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        ({"protocol": "messagepack", "version": 1}, "Requested protocol 'messagepack' is not available."),
        ({"protocol": "json", "version": 2}, "The server does not support version 2 of the 'json' protocol."),
    ],
    ids=["unknown-protocol", "unknown-version"],
)
def test_a_handshake_the_server_cannot_honour_gets_its_error_then_a_close(hub, user, request_, error):
    with negotiated(hub, user) as ws:
        ws.send(request_)
        assert ws.next() == {"error": error}
        assert ws.closed() == 4400


def test_a_negotiated_socket_whose_first_message_is_no_handshake_is_closed(hub, user):
    with negotiated(hub, user) as ws:
        ws.send({"type": 6})
        assert "error" in ws.next()
        assert ws.closed() == 4400


def test_a_negotiated_socket_without_a_handshake_is_closed_after_the_handshake_timeout(hub, user):
    with negotiated(hub, user) as ws:
        assert ws.closed() == 4400


def test_a_negotiated_socket_may_shake_hands_any_time_within_the_handshake_timeout(patient_hub, user):
    with negotiated(patient_hub, user) as ws:
        assert ws.nothing(QUIET)
        ws.send(HANDSHAKE)
        assert (ws.next(), ws.next()) == ({}, CONNECTED)


@pytest.mark.parametrize("connection", ["forged", "someone-elses"])
def test_a_connection_token_that_is_not_the_users_is_refused(hub, user, connection):
    token = token_for(user)
    if connection == "forged":
        connection_token = negotiate(hub, token)["connectionToken"][:-2] + "xx"
    else:
        connection_token = negotiate(hub, token_for(UserFactory(roles=["root"])))["connectionToken"]
    with pytest.raises(InvalidStatus) as refused, socket(hub, token, f"&id={connection_token}"):
        pass
    assert refused.value.response.status_code == 403


def test_the_server_answers_a_ping(patient_hub, user):
    """On the patient hub no keep-alive is due within a test: a ping that comes back is the answer."""
    with shaken(patient_hub, user) as ws:
        assert ws.nothing(QUIET)  # nor is a silent client closed before its timeout
        ws.send({"type": 6})
        assert ws.next() == {"type": 6}
        assert ws.nothing(QUIET)


def test_a_client_that_keeps_pinging_is_kept_past_the_client_timeout(hub, user):
    """Twelve rounds of a client ping and half a second of listening outlast the client timeout (4 s here):
    the client's own pings keep the socket open; nothing but pings comes back meanwhile."""
    with shaken(hub, user) as ws:
        for _ in range(12):
            ws.send({"type": 6})
            assert ws.only_pings(0.5)
        ws.send({"type": 6})
        assert ws.next() == {"type": 6}


def test_a_client_that_stays_silent_gets_pings_then_a_close_message_after_the_client_timeout(hub, user):
    with shaken(hub, user) as ws:
        records = [ws.next()]
        while records[-1] == {"type": 6}:
            records.append(ws.next())
        *pings, goodbye = records
        assert pings, "no keep-alive ping before the client timeout"
        assert goodbye == {
            "type": 7,
            "error": "Client timeout elapsed without a message from the client.",
            "allowReconnect": True,
        }
        assert ws.closed() == 4408


def test_token_expiry_sends_a_close_message_without_reconnect_then_4401(patient_hub, user):
    """On the patient hub nothing but the token's end can close the socket within the test."""
    token = token_for(user, lifetime=timedelta(seconds=8))
    expires_at = AccessToken(token)["exp"]
    body = negotiate(patient_hub, token)
    with socket(patient_hub, token, f"&id={body['connectionToken']}") as ws:
        ws.send(HANDSHAKE)
        assert (ws.next(), ws.next()) == ({}, CONNECTED)
        assert ws.next() == {"type": 7, "error": "Token expired.", "allowReconnect": False}
        assert time.time() >= expires_at  # at its end, not before
        assert ws.closed() == 4401


def test_calls_to_methods_the_hub_does_not_have_get_an_error_completion(hub, user):
    with shaken(hub, user) as ws:
        ws.send({"type": 1, "invocationId": "7", "target": "SendMessage", "arguments": ["hi"]})
        assert ws.next_except_pings() == {"type": 3, "invocationId": "7", "error": "Unknown hub method 'SendMessage'"}
        ws.send({"type": 4, "invocationId": "8", "target": "Counter", "arguments": [3]})
        assert ws.next_except_pings() == {"type": 3, "invocationId": "8", "error": "Unknown hub method 'Counter'"}
        # A non-blocking invocation gets no answer at all; messages the hub never asked for are ignored.
        ws.send(
            {"type": 1, "target": "Fire", "arguments": []},
            {"type": 5, "invocationId": "8"},
            {"type": 2, "invocationId": "9", "item": 1},
            {"type": 3, "invocationId": "9", "result": 1},
            {"type": 6},
        )
        assert ws.next() == {"type": 6}
        notify(user.pk, "TenantUpdated", {"tenantId": "acme"})
        assert ws.next_except_pings()["target"] == "TenantUpdated"  # still serving


@pytest.mark.parametrize("garbage", ["{not json" + RS, "[1, 2]" + RS, '{"type": "1"}' + RS])
def test_a_record_that_is_not_a_hub_message_ends_the_socket_with_a_close_message(hub, user, garbage):
    with shaken(hub, user) as ws:
        ws.send(garbage)
        assert ws.next_except_pings() == {"type": 7, "error": "Invalid message.", "allowReconnect": False}
        assert ws.closed() == 4400


def test_a_record_split_across_frames_is_put_back_together(hub, user):
    with shaken(hub, user) as ws:
        ws.ws.send('{"type":1,"invocationId":"s1",')
        ws.ws.send('"target":"Split","arguments":[]}' + RS)
        assert ws.next_except_pings() == {"type": 3, "invocationId": "s1", "error": "Unknown hub method 'Split'"}


def test_a_client_close_message_closes_the_socket(hub, user):
    with shaken(hub, user) as ws:
        ws.send({"type": 7})
        assert ws.closed() == 1000


def test_since_replays_as_invocations_without_duplicates(hub, user):
    first = notify(user.pk, "TenantCreated", {"n": 1})
    notify(user.pk, "TenantUpdated", {"n": 2})
    with shaken(hub, user, f"&since={first.id - 1}") as ws:
        assert ws.next_except_pings()["arguments"] == [{"n": 1}]
        assert ws.next_except_pings()["arguments"] == [{"n": 2}]
        ws.send({"type": 6})
        assert ws.next() == {"type": 6}


def test_a_signalr_client_may_skip_negotiation_and_take_its_time(hub, user):
    with socket(hub, token_for(user), agent=SIGNALR_AGENT) as ws:
        assert ws.nothing(3 * HUB_ENV["NOTIFICATIONS_HANDSHAKE_WAIT"])  # what a browser gets, three times over
        ws.send(HANDSHAKE)
        assert (ws.next(), ws.next()) == ({}, CONNECTED)


def test_a_browser_that_skips_negotiation_speaks_signalr_when_it_opens_with_the_handshake(hub, user):
    with socket(hub, token_for(user), origin=f"http://{hub}") as ws:
        ws.send(HANDSHAKE)
        assert (ws.next(), ws.next()) == ({}, CONNECTED)


def test_a_plain_client_gets_api_md_frames_at_once(patient_hub, user):
    """At once: on the patient hub, a plain client that was waited for would hear nothing for ten minutes."""
    with socket(patient_hub, token_for(user)) as ws:
        assert json.loads(ws.ws.recv(timeout=WAIT)) == PLAIN_CONNECTED
        notification = notify(user.pk, "TenantCreated", {"tenantId": "acme"})
        assert json.loads(ws.ws.recv(timeout=WAIT)) == {
            "id": notification.id,
            "event": "TenantCreated",
            "data": {"tenantId": "acme"},
        }


def test_a_plain_socket_gets_neither_pings_nor_a_close(hub, user):
    """The brisk hub pings SignalR sockets every second and closes silent ones after four."""
    with socket(hub, token_for(user)) as ws:
        assert json.loads(ws.ws.recv(timeout=WAIT)) == PLAIN_CONNECTED
        with pytest.raises(TimeoutError):
            ws.ws.recv(timeout=5)  # the plain hub is as it was


def test_a_browser_that_sends_no_handshake_becomes_plain_after_the_wait(hub, patient_hub, user):
    with socket(patient_hub, token_for(user), origin=f"http://{patient_hub}") as ws:
        assert ws.nothing(QUIET)  # waited for: it may still send SignalR's handshake
    with socket(hub, token_for(user), origin=f"http://{hub}") as ws:
        assert json.loads(ws.ws.recv(timeout=WAIT)) == PLAIN_CONNECTED  # after the wait (1 s here)


def test_a_browser_whose_first_message_is_no_handshake_becomes_plain_at_once(patient_hub, user):
    with socket(patient_hub, token_for(user), origin=f"http://{patient_hub}") as ws:
        ws.ws.send("hello")
        assert json.loads(ws.ws.recv(timeout=WAIT)) == PLAIN_CONNECTED  # not after the patient hub's wait


def test_both_kinds_of_socket_of_one_user_get_the_same_notification_and_others_none(hub, user):
    other = UserFactory(roles=["root"])
    with shaken(hub, user) as signalr_ws, socket(hub, token_for(user)) as plain, shaken(hub, other) as stranger:
        assert json.loads(plain.ws.recv(timeout=WAIT)) == PLAIN_CONNECTED
        notification = notify(user.pk, "TenantCreated", {"tenantId": "acme"})
        assert signalr_ws.next_except_pings()["arguments"] == [{"tenantId": "acme"}]
        assert json.loads(plain.ws.recv(timeout=WAIT))["id"] == notification.id
        stranger.send({"type": 6})
        assert stranger.next() == {"type": 6}
        assert stranger.only_pings(1.5)


def test_a_stopping_server_tells_signalr_clients_to_reconnect(transactional_db, tmp_path):
    user = UserFactory(roles=["root"])
    web = live.start_web(tmp_path, name="stopping", **HUB_ENV)
    try:
        hub_address = f"127.0.0.1:{web.port}"
        with shaken(hub_address, user) as ws, socket(hub_address, token_for(user)) as plain:
            assert json.loads(plain.ws.recv(timeout=WAIT)) == PLAIN_CONNECTED
            # Daphne 4.2 forgets its applications on shutdown (KeyError in kill_all_applications) while the
            # request that upgraded a websocket is less than a second old; past that it cancels them.
            ws.send({"type": 6})
            time.sleep(1.5)
            web.stop()
            assert ws.next_except_pings() == {"type": 7, "allowReconnect": True}
            assert ws.closed() == 4503
            assert plain.closed() == 4503
    finally:
        web.stop()
