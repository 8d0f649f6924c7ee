"""The security findings of issue 18 that need the live stack (Daphne + worker), as the attacker sent them.

Each test names its finding; the in-process ones live beside the module they test, and their docstrings
name the finding too (`grep -rl "issue 18" tests` lists them all).
"""

import contextlib
import secrets
import time

import httpx
import jwt
import pytest
from django.conf import settings
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from notifications.services import notify
from tenants import services
from tenants.models import Tenant
from tenants.tokens import issue_tokens
from tests.support import live
from tests.support.factories import TenantFactory, UserFactory
from tests.support.live import drain, recv_json
from tests.support.users import ROOT_PASSWORD, make_root_user

PASSWORD = "User-Password-123!"
TENANT_ADMIN_PASSWORD = "Tenant-Admin-Pass-42!"
ROTATED_TENANT = {"tenant_id": "rotated", "name": "Rotated", "admin_email": "admin@rotated.test"}
ROTATED_TENANT["password"] = TENANT_ADMIN_PASSWORD


def sign_in(client, email, tenant, password=PASSWORD):
    response = client.post("/api/tokens", json={"email": email, "password": password}, headers={"tenant": tenant})
    assert response.status_code == 200, response.text
    return response.json()["data"]


@pytest.fixture
def acme(transactional_db):
    TenantFactory(id="acme")
    return UserFactory(tenant_id="acme", email="boss@acme.test", roles=["admin"])


def test_finding_4_a_refused_refresh_by_path_leaves_no_token_in_the_log(live_stack, acme):
    """Before: `Forbidden: /api/tokens/<refresh JWT>` in the web log, the token whole (and it still refreshed
    later). Now the log line says [redacted], and token responses say `Cache-Control: no-store`."""
    with httpx.Client(base_url=live_stack.url, timeout=30) as client:
        tokens = sign_in(client, acme.email, "acme")
        Tenant.objects.filter(pk="acme").update(is_active=False)
        refused = client.get(f"/api/tokens/{tokens['refreshToken']}")
        Tenant.objects.filter(pk="acme").update(is_active=True)
        refreshed = client.get(f"/api/tokens/{tokens['refreshToken']}")
    assert refused.status_code == 403 and refreshed.status_code == 200
    for response in (refused, refreshed):
        assert "no-store" in response.headers["cache-control"]
    live_stack.web.stop()
    log = live_stack.web.output()
    assert "/api/tokens/[redacted]" in log
    secret_part = tokens["refreshToken"].rsplit(".", 1)[1]
    assert secret_part not in log


def test_finding_11_a_secret_key_rotation_keeps_sessions_and_pending_admin_passwords(transactional_db, tmp_path):
    """Before: after SECRET_KEY was rotated, every access and refresh token was 401 and a tenant accepted just
    before the rotation failed ("cannot be decrypted"). Now the old key, in SECRET_KEY_FALLBACKS, still verifies
    and decrypts what it signed, until that expires; what is new is signed with the new key."""
    old_key, new_key = settings.SECRET_KEY, secrets.token_urlsafe(50)
    root = make_root_user()
    old_tokens = issue_tokens(root)  # signed with the suite's (old) key
    # accepted, its admin password encrypted with the old key; no worker runs yet
    services.create_tenant(**ROTATED_TENANT, has_isolated_database=False, initiated_by=root.pk)
    stack = live.LiveStack(tmp_path, SECRET_KEY=new_key, SECRET_KEY_FALLBACKS=old_key)
    try:
        with httpx.Client(base_url=stack.url, timeout=30) as client:
            me = client.get("/api/users/me", headers={"authorization": f"Bearer {old_tokens['token']}"})
            refreshed = client.post("/api/tokens/refresh", json={"refreshToken": old_tokens["refreshToken"]})
            tenant = wait_for_status(client, refreshed.json()["data"]["token"], "rotated")
            admin = client.post(
                "/api/tokens",
                json={"email": "admin@rotated.test", "password": TENANT_ADMIN_PASSWORD},
                headers={"tenant": "rotated"},
            )
    finally:
        stack.stop()
    assert me.status_code == 200 and refreshed.status_code == 200
    assert (tenant["status"], tenant["provisioningError"]) == ("Active", None)
    assert admin.status_code == 200
    new_token = refreshed.json()["data"]["token"]
    jwt.decode(new_token, new_key, algorithms=["HS256"])  # what is issued now is the new key's


def wait_for_status(client, token, tenant_id, statuses=("Active", "Failed"), timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get(f"/api/tenants/{tenant_id}", headers={"authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
        if response.json()["data"]["status"] in statuses:
            return response.json()["data"]
        time.sleep(0.3)
    raise AssertionError(f"{tenant_id} did not reach {statuses}")


@pytest.fixture
def sockets():
    """The test's websockets, closed at its end (websockets' client is a context manager)."""
    with contextlib.ExitStack() as opened:
        yield opened


def open_socket(sockets, stack, token=None, *, origin=None, cookie=None, query=""):
    headers = {"cookie": cookie} if cookie else {}
    arguments = "&".join(part for part in (token and f"access_token={token}", query) if part)
    url = f"{stack.ws_url}?{arguments}" if arguments else stack.ws_url
    ws = sockets.enter_context(connect(url, origin=origin, additional_headers=headers, open_timeout=10))
    assert recv_json(ws, 5)["event"] == "Connected"
    return ws


def close_code(ws, timeout):
    """The code the server closes the socket with, within `timeout` seconds (None: still open)."""
    try:
        while True:
            ws.recv(timeout=timeout)
    except TimeoutError:
        return None
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


def test_finding_7_deactivating_a_tenant_closes_its_users_sockets(live_stack, acme, sockets):
    """Before: the socket of a deactivated tenant's user stayed open until its token expired (up to 60 min).
    Now it is closed at once with 4403, and its token cannot open another."""
    token = sign_in(httpx.Client(base_url=live_stack.url), acme.email, "acme")["token"]
    ws = open_socket(sockets, live_stack, token)
    root = issue_tokens(make_root_user())["token"]
    response = httpx.put(
        f"{live_stack.url}/api/tenants/acme",
        json={"name": "Acme", "isActive": False},
        headers={"authorization": f"Bearer {root}"},
    )
    assert response.status_code == 202
    assert close_code(ws, 20) == 4403
    with pytest.raises(InvalidStatus):
        open_socket(sockets, live_stack, token)


def admin_session(client, email, password):
    client.get("/admin/login/")
    signed_in = client.post(
        "/admin/login/?next=/admin/",
        data={"username": email, "password": password, "csrfmiddlewaretoken": client.cookies.get("csrftoken")},
        headers={"referer": f"{client.base_url}/admin/login/"},
    )
    assert signed_in.status_code == 302, signed_in.text
    return f"sessionid={client.cookies.get('sessionid')}"


PLAIN_HTTP_COOKIES = {"SESSION_COOKIE_SECURE": "false", "CSRF_COOKIE_SECURE": "false"}


def test_finding_7_signing_out_of_the_admin_closes_its_session_socket(transactional_db, tmp_path, sockets):
    """Before: a socket opened with the admin's session cookie stayed open after the admin signed out, and for
    ever. Now the sign-out closes it (4401), and a session socket ends after its maximum age however active."""
    root = make_root_user("sessions@diquis.test")
    stack = live.LiveStack(tmp_path, NOTIFICATIONS_SESSION_SOCKET_MAX_AGE="3", **PLAIN_HTTP_COOKIES)
    try:
        with httpx.Client(base_url=stack.url, timeout=30) as client:
            cookie = admin_session(client, root.email, ROOT_PASSWORD)
            aged = open_socket(sockets, stack, cookie=cookie, origin=stack.url)
            assert close_code(aged, 8) == 4401  # its maximum age
            ws = open_socket(sockets, stack, cookie=cookie, origin=stack.url)  # the session itself still stands
            signed_out = client.post(
                "/admin/logout/",
                data={"csrfmiddlewaretoken": client.cookies.get("csrftoken")},
                headers={"referer": f"{stack.url}/admin/"},
            )
            assert signed_out.status_code == 200
            assert close_code(ws, 2.5) == 4401
            with pytest.raises(InvalidStatus):
                open_socket(sockets, stack, cookie=cookie, origin=stack.url)
    finally:
        stack.stop()


def test_finding_7_a_new_password_closes_the_sockets_of_the_old_one(transactional_db, tmp_path, sockets):
    """Before: open sockets outlived a password change. Now each socket checks its token again every
    NOTIFICATIONS_RECHECK_INTERVAL (here 1 s) and closes with 4401 once it was revoked."""
    TenantFactory(id="acme")
    user = UserFactory(tenant_id="acme", email="boss@acme.test")
    stack = live.LiveStack(tmp_path, NOTIFICATIONS_RECHECK_INTERVAL="1")
    try:
        token = sign_in(httpx.Client(base_url=stack.url), user.email, "acme")["token"]
        ws = open_socket(sockets, stack, token)
        assert close_code(ws, 1.5) is None
        user.set_password("A-Whole-New-Password-7!")
        user.save()
        assert close_code(ws, 5) == 4401
    finally:
        stack.stop()


@pytest.mark.parametrize(
    ("origin", "accepted"),
    [
        ("{url}", True),
        ("http://localhost:9999", False),  # an allowed host name, another port: another origin
        ("http://127.0.0.1:9999", False),
        ("https://127.0.0.1:{port}", False),  # another scheme
        ("http://evil.example", False),
        (None, True),  # no Origin: not a browser, judged by its token alone
    ],
)
def test_finding_8_the_origin_must_be_the_sockets_own_scheme_host_and_port(live_stack, acme, origin, accepted, sockets):
    """Before: any scheme and port of an allowed host was accepted (Origin: http://localhost:9999 opened a
    socket). Now the Origin must be the handshake's own origin, or a trusted (CSRF or CORS) one exactly."""
    token = sign_in(httpx.Client(base_url=live_stack.url), acme.email, "acme")["token"]
    origin = origin and origin.format(url=live_stack.url, port=live_stack.port)
    if accepted:
        open_socket(sockets, live_stack, token, origin=origin)
    else:
        with pytest.raises(InvalidStatus) as refused:
            open_socket(sockets, live_stack, token, origin=origin)
        assert refused.value.response.status_code == 403


def test_finding_9_one_user_may_open_twenty_sockets_not_more(live_stack, acme, sockets):
    """Before: 21 (and 2,000) sockets of one user were all accepted. Now the 21st is refused (403), and a
    socket that closes makes room for another."""
    token = sign_in(httpx.Client(base_url=live_stack.url), acme.email, "acme")["token"]
    limit = getattr(settings, "NOTIFICATIONS_MAX_SOCKETS_PER_USER", 20)  # the documented default where unset
    opened = [open_socket(sockets, live_stack, token) for _ in range(limit)]
    with pytest.raises(InvalidStatus) as refused:
        open_socket(sockets, live_stack, token)
    assert refused.value.response.status_code == 403
    opened[0].close()
    time.sleep(0.5)
    open_socket(sockets, live_stack, token)


def test_finding_9_a_since_replay_is_bounded_and_says_where_the_rest_is(transactional_db, tmp_path, sockets):
    """Before: `?since=0` replayed every notification the user ever had, in one go. Now at most
    NOTIFICATIONS_REPLAY_LIMIT (1,000 by default; 25 here), then ReplayTruncated names the last id sent."""
    root = make_root_user()
    ids = [notify(str(root.pk), "Backlog", {"n": n}).id for n in range(40)]
    stack = live.LiveStack(tmp_path, NOTIFICATIONS_REPLAY_LIMIT="25")
    try:
        ws = open_socket(sockets, stack, issue_tokens(root)["token"], query="since=0")
        frames = drain(ws, 2)
    finally:
        stack.stop()
    assert [f["id"] for f in frames[:-1]] == ids[:25]
    assert (frames[-1]["event"], frames[-1]["data"]["after"]) == ("ReplayTruncated", ids[24])
