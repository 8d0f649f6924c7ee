"""No secret is ever shown (API.md, "Envelope" and "Tenants"), checked after a whole life cycle.

On the real stack (Daphne + worker), root signs in, listens on the websocket, creates an isolated tenant
(whose admin signs in and adds a user, and an editor through the original web client's calls, who changes,
forgets and resets its password), updates it and deletes it, and fails a few requests on the way.
Then everything the system could have shown or kept is gathered and searched:

- every API response and websocket frame of the cycle,
- every line the web and worker processes logged, once in the human format and once as JSON lines (LOG_FORMAT),
  and once more in the human format beside every span they exported (OTEL_TRACES_EXPORTER=console),
- the durable job records (arguments, errors, step timings, tracebacks) and the notifications,
- every Redis key and value (RQ's job payloads and results decompressed, the channel layer, the cache),
- the operator's pages as root sees them: rq-dashboard at /rq/ (pages and the JSON behind them),
  django-rq under /admin/rq/ and /admin/django_rq/ (queues, registries, every job, the workers), and the admin's
  tenant and job pages.

The cycle also registers a database server (one of the suite's extra clusters) through the API, after a refused
registration with a wrong password, lists and changes it, puts the tenant's database on it (so its jobs and
their dashboards concern it), opens its admin pages (and has the admin's form refuse a registration), asks
/health, and removes the server at the end.

What must appear nowhere: the plaintext passwords, a password reset token (but in its mail), the password
hashes (and the "argon2$" and "pbkdf2_sha256$" markers of any), the admin password as encrypted at rest, a
connection string or the DATABASE_URL, a database server's password or URL (right or wrong) or its password as
stored, the password of the tenant's own database role, the SECRET_KEY, and a JWT (outside the bodies of the calls
whose purpose is to hand one out).
"""

import json
import re
import time
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from websockets.sync.client import connect

from jobs.models import Attempt, Job
from notifications.models import Notification
from tenants.connections import tenant_role_name
from tenants.models import ROOT_TENANT_ID, DatabaseServer, Tenant, User
from tenants.vault import tenant_role_password
from tests.support import live
from tests.support.fleet import drop_test_databases_on
from tests.support.html_links import links
from tests.support.postgres_clusters import CREATEDB_ROLE, SUPERUSER
from tests.support.redis_client import redis
from tests.support.secrets_scan import redis_occurrences
from tests.support.tenant_databases import drop_test_tenant_databases

TENANT = "secret-keepers"
SERVER = "pg-secrets"
ADMIN_PASSWORD = "Adm1n-Plaintext-Secret-7391!"
USER_PASSWORD = "Us3r-Plaintext-Secret-5602!"
# The original web client's identity calls: a user made on its Users page, its changed and its reset password.
EDITOR_PASSWORD = "Ed1tor-Plaintext-Secret-8813!"
CHANGED_PASSWORD = "Chang3d-Plaintext-Secret-2290!"
RESET_PASSWORD = "R3set-Plaintext-Secret-6475!"
RESET_TOKEN = re.compile(r"token is '([^']+)'")
WRONG_PASSWORD = "Wr0ng-Guess-Secret-4410!"
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}")
HANDS_OUT_TOKENS = re.compile(r"^/api/tokens(/.*)?$")
FERNET_MARKER = "gAAAAA"  # every Fernet token starts so (version byte + timestamp)
# The cookies must travel over the plain-HTTP test server to sign in to the admin.
STACK_ENV = {"SESSION_COOKIE_SECURE": "false", "CSRF_COOKIE_SECURE": "false", "LOG_LEVEL": "INFO"}
# Links the crawl does not follow: actions.
UNFOLLOWED = re.compile(r"/(delete|empty|requeue|requeue-all|enqueue|stop|clear)/")
DJANGO_RQ_MOUNTS = ("/admin/rq/", "/admin/django_rq/")  # ours, and django-rq's own admin entry
RQ_REGISTRIES = ["queued", "started", "finished", "failed", "deferred", "scheduled", "canceled"]


class Recorder:
    """An HTTP client on the live stack that keeps every response it got, for the scan."""

    def __init__(self, stack):
        self.client = httpx.Client(base_url=stack.url, timeout=30)
        self.responses = []

    def __call__(self, method, path, *, token=None, tenant=None, **kwargs):
        headers = kwargs.pop("headers", {})
        if token:
            headers["authorization"] = f"Bearer {token}"
        if tenant:
            headers["tenant"] = tenant
        response = self.client.request(method, path, headers=headers, **kwargs)
        self.responses.append((path, response))
        return response

    def texts(self, *, tokens_allowed):
        """(where, text) of every response; the token calls' bodies aside when JWTs are looked for."""
        for path, response in self.responses:
            body = response.text
            if tokens_allowed and HANDS_OUT_TOKENS.match(path.split("?")[0]):
                body = ""
            yield f"{response.request.method} {path}", body + "\n" + str(dict(response.headers))


def sign_in(call, email, password, tenant=None):
    response = call("POST", "/api/tokens", json={"email": email, "password": password}, tenant=tenant)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def wait_for(ws, event, frames):
    frame, seen = live.wait_for_event(ws, event, timeout=60)
    frames.extend([*seen, frame])
    return frame


def admin_cookies(stack):
    """The cookies of a browser signed in to the admin as root, through the admin's own login form."""
    with httpx.Client(base_url=stack.url, timeout=30, follow_redirects=True) as browser:
        page = browser.get("/admin/login/")
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        signed_in = browser.post(
            "/admin/login/?next=/admin/",
            data={
                "username": settings.DIQUIS_ROOT_EMAIL,
                "password": settings.DIQUIS_ROOT_PASSWORD,
                "csrfmiddlewaretoken": csrf,
            },
            headers={"referer": f"{stack.url}/admin/login/"},
        )
        assert signed_in.url.path == "/admin/", signed_in.text[:500]
        return dict(browser.cookies)


def fetch(stack, cookies, page):
    """One page on a connection of its own: on a kept-alive connection the dashboards answer some
    requests with 500 ("CurrentThreadExecutor already quit or is broken"), a defect of their mount
    that is not what this test is about."""
    return httpx.get(f"{stack.url}{page}", cookies=cookies, timeout=30, follow_redirects=True)


def dashboard_pages(stack, cookies, job_ids):
    """(where, text) of the operator's pages root can open: rq-dashboard, django-rq, the admin."""
    registries = ["finished", "failed", "scheduled", "started", "deferred"]
    pages = ["/rq/", "/rq/0/view/workers", "/rq/0/data/queues.json", "/rq/0/data/workers.json"]
    for registry in RQ_REGISTRIES:
        pages.append(f"/rq/0/view/jobs/default/{registry}/100/asc/1")
        pages.append(f"/rq/0/data/jobs/default/{registry}/100/asc/1.json")
    pages += [f"/rq/0/data/job/{job_id}.json" for job_id in job_ids]
    pages += [f"/rq/0/view/job/{job_id}" for job_id in job_ids]
    pages += ["/admin/rq/", "/admin/rq/queues/0/", "/admin/rq/workers/0/", "/admin/django_rq/dashboard/"]
    pages += [f"/admin/rq/queues/0/{registry}/" for registry in registries]
    pages += [f"/admin/rq/queues/0/{job_id}/" for job_id in job_ids]
    pages += ["/admin/tenants/tenant/", "/admin/jobs/job/", "/admin/jobs/attempt/"]
    pages += ["/admin/tenants/databaseserver/", "/admin/tenants/databaseserver/add/"]
    pages += [f"/admin/tenants/databaseserver/{name}/change/" for name in ["main", SERVER]]
    pages += [f"/admin/jobs/job/{job.pk}/change/" for job in Job.objects.all()]
    pages += [f"/admin/jobs/attempt/{attempt.pk}/change/" for attempt in Attempt.objects.all()]
    seen, found = set(), []
    while pages:
        page = pages.pop(0)
        if page in seen:
            continue
        seen.add(page)
        response = fetch(stack, cookies, page)
        assert response.status_code in {200, 404}, (page, response.status_code)
        assert response.url.path != "/admin/login/", page  # really signed in
        found.append((f"GET {page}", response.text))
        pages += sorted(href for href in links(response.text, DJANGO_RQ_MOUNTS) if not UNFOLLOWED.search(href))
        assert len(seen) < 400, "runaway crawl"
    return found


def logs(process, log_format):
    """(where, text) of what a process logged: as written, and for JSON lines their values decoded too, so that
    no escape hides a secret."""
    text = process.output()
    if log_format != "json":
        return [(f"{process.name} log", text)]
    values = [str(value) for line in text.splitlines() for value in json.loads(line).values()]
    return [(f"{process.name} log", text), (f"{process.name} log, decoded", "\n".join(values))]


def database_records():
    rows = [*Job.objects.values(), *Attempt.objects.values(), *Notification.objects.values()]
    rows += list(Tenant.objects.values("id", "provisioning_error", "database_name", "database_server_id"))
    return [("database records", json.dumps(rows, default=str))]


def admin_registration_refused(stack, cookies, url):
    """The admin's registration form, posted with a URL the server refuses: the page with its error."""
    with httpx.Client(base_url=stack.url, cookies=cookies, timeout=30) as browser:
        page = browser.get("/admin/tenants/databaseserver/add/")
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        refused = browser.post(
            "/admin/tenants/databaseserver/add/",
            data={"name": "pg-refused", "url": url, "weight": "1", "csrfmiddlewaretoken": csrf},
            headers={"referer": f"{stack.url}/admin/tenants/databaseserver/add/"},
        )
    assert refused.status_code == 200 and "authentication" in refused.text, refused.text[:500]
    return [("POST /admin/tenants/databaseserver/add/", refused.text)]


def mailed_reset_token(mail_dir, timeout=60):
    """The token of the reset mail the worker wrote (Django's file backend), once it is there."""
    deadline = time.monotonic() + timeout
    while not (mails := sorted(Path(mail_dir).glob("*.log"))):
        assert time.monotonic() < deadline, "no reset mail"
        time.sleep(0.2)
    return RESET_TOKEN.search(mails[0].read_text()).group(1)


def original_clients_identity_calls(call, admin_token, mail_dir):
    """The original web client's Users page adds an editor, who changes its password (a wrong current one
    first), forgets it and resets it with the mailed token (a wrong token first). Returns the token."""
    body = {"firstName": "E", "lastName": "D", "email": "editor@keepers.test", "password": EDITOR_PASSWORD}
    added = call("POST", "/api/identity/users", token=admin_token, json={**body, "roleId": "editor"})
    assert added.status_code == 201, added.text
    assert call("GET", "/api/identity/users", token=admin_token).status_code == 200
    editor = sign_in(call, "editor@keepers.test", EDITOR_PASSWORD, tenant=TENANT)["token"]
    change = {"password": WRONG_PASSWORD, "newPassword": CHANGED_PASSWORD, "confirmNewPassword": CHANGED_PASSWORD}
    assert call("PUT", "/api/identity/change-password", token=editor, json=change).status_code == 400
    change["password"] = EDITOR_PASSWORD
    assert call("PUT", "/api/identity/change-password", token=editor, json=change).status_code == 200
    forgot = {"email": "editor@keepers.test", "tenant": TENANT}
    assert call("POST", "/api/identity/forgot-password", tenant=TENANT, json=forgot).status_code == 200
    token = mailed_reset_token(mail_dir)
    reset = {**forgot, "token": "not-the-token", "password": RESET_PASSWORD, "confirmPassword": RESET_PASSWORD}
    assert call("POST", "/api/identity/reset-password", tenant=TENANT, json=reset).status_code == 400
    assert (
        call("POST", "/api/identity/reset-password", tenant=TENANT, json={**reset, "token": token}).status_code == 200
    )
    sign_in(call, "editor@keepers.test", RESET_PASSWORD, tenant=TENANT)
    return token


def server_cluster_query(cluster, database, statement):
    with cluster.connect(cluster.url_as(SUPERUSER, database=database)) as connection:
        return connection.execute(statement).fetchall()


def rq_job_ids():
    """Every RQ job id Redis knows, in any registry (the worker has finished them all by now)."""
    connection = redis()
    return sorted(
        key.decode().removeprefix("rq:job:")
        for key in connection.scan_iter("rq:job:*")
        if connection.type(key) == b"hash"
    )


TRACED = "text-with-spans"
LOGS = {"text": {}, "json": {}, TRACED: {"OTEL_TRACES_EXPORTER": "console"}}


@pytest.fixture(params=list(LOGS))
def stack(request, transactional_db, tmp_path):
    """The live stack, its logs in the human format, then in JSON lines (LOG_FORMAT), then in the human format
    with the spans of every trace written beside them (the console exporter): all are searched."""
    mail = {"EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend", "EMAIL_FILE_PATH": tmp_path / "mail"}
    log_format = "json" if request.param == "json" else "text"
    running = live.LiveStack(tmp_path, **STACK_ENV, **mail, **LOGS[request.param], LOG_FORMAT=log_format)
    try:
        yield running
    finally:
        running.stop()
        drop_test_tenant_databases()


@pytest.fixture
def server_cluster(extra_postgres_servers):
    """The extra cluster the cycle registers, cleaned of the tenant databases and templates put on it."""
    yield extra_postgres_servers.plain
    drop_test_databases_on(extra_postgres_servers.plain)


@pytest.mark.timeout(600)
def test_after_a_whole_life_cycle_no_secret_is_shown_anywhere(stack, server_cluster, tmp_path):
    call, frames = Recorder(stack), []
    root = sign_in(call, settings.DIQUIS_ROOT_EMAIL, settings.DIQUIS_ROOT_PASSWORD)
    server_password = server_cluster.passwords[CREATEDB_ROLE]
    wrong = call(
        "POST",
        "/api/database-servers",
        token=root["token"],
        json={"name": SERVER, "url": server_cluster.wrong_password_url},
    )
    assert wrong.status_code == 400, wrong.text
    registered = call(
        "POST",
        "/api/database-servers",
        token=root["token"],
        json={"name": SERVER, "url": server_cluster.createdb_url, "weight": 1},
    )
    assert registered.status_code == 201, registered.text
    server_at_rest = DatabaseServer.objects.get(pk=SERVER).encrypted_password
    assert call("GET", "/api/database-servers", token=root["token"]).status_code == 200
    patched = call("PATCH", f"/api/database-servers/{SERVER}", token=root["token"], json={"weight": 2})
    assert patched.status_code == 200, patched.text
    assert call("GET", "/health").json()["databaseServers"] == {"main": "ok", SERVER: "ok"}
    root_hash = User.objects.get(tenant_id=ROOT_TENANT_ID, email=settings.DIQUIS_ROOT_EMAIL.lower()).password
    refused = call("POST", "/api/tokens", json={"email": settings.DIQUIS_ROOT_EMAIL, "password": WRONG_PASSWORD})
    assert refused.status_code == 401

    with connect(f"{stack.ws_url}?access_token={root['token']}", open_timeout=10) as ws:
        frames.append(live.recv_json(ws, 10))
        weak = call(
            "POST",
            "/api/tenants",
            token=root["token"],
            json={"id": TENANT, "name": "Keepers", "adminEmail": "admin@keepers.test", "password": "keepers"},
        )
        assert weak.status_code == 400  # a refused password is not echoed either
        created = call(
            "POST",
            "/api/tenants",
            token=root["token"],
            json={
                "id": TENANT,
                "name": "Keepers",
                "adminEmail": "admin@keepers.test",
                "password": ADMIN_PASSWORD,
                "hasIsolatedDatabase": True,
                "databaseServer": SERVER,
            },
        )
        assert created.status_code == 202, created.text
        encrypted = Tenant.objects.get(pk=TENANT).encrypted_admin_password  # may be erased already
        wait_for(ws, "TenantCreated", frames)

        database = Tenant.objects.get(pk=TENANT).database_name
        admin = sign_in(call, "admin@keepers.test", ADMIN_PASSWORD, tenant=TENANT)
        added = call(
            "POST",
            "/api/users",
            token=admin["token"],
            json={"email": "user@keepers.test", "password": USER_PASSWORD, "firstName": "U", "lastName": "Ser"},
        )
        assert added.status_code == 201, added.text
        assert Tenant.objects.get(pk=TENANT).database_server_id == SERVER
        hashes = [row[0] for row in server_cluster_query(server_cluster, database, "SELECT password FROM tenants_user")]
        assert len(hashes) == 2 and all(h.startswith("argon2$argon2id$") for h in hashes)
        for path in ["/api/users", "/api/users/me", "/api/identity/profile", "/api/notifications"]:
            assert call("GET", path, token=admin["token"]).status_code == 200
        reset_token = original_clients_identity_calls(call, admin["token"], tmp_path / "mail")
        hashes = [row[0] for row in server_cluster_query(server_cluster, database, "SELECT password FROM tenants_user")]
        assert len(hashes) == 3
        call("POST", "/api/tokens/refresh", json={"refreshToken": admin["refreshToken"]})
        call("GET", f"/api/tokens/{admin['refreshToken']}")

        for path in ["/api/tenants", f"/api/tenants/{TENANT}", "/api/notifications", "/api/users/me"]:
            assert call("GET", path, token=root["token"]).status_code == 200
        updated = call(
            "PUT", f"/api/tenants/{TENANT}", token=root["token"], json={"name": "Keepers 2", "isActive": True}
        )
        assert updated.status_code == 202
        wait_for(ws, "TenantUpdated", frames)
        assert call("DELETE", f"/api/tenants/{TENANT}", token=root["token"]).status_code == 202
        wait_for(ws, "TenantDeleted", frames)

    job_ids = rq_job_ids()
    assert job_ids, "the dashboards below would show no job at all"
    cookies = admin_cookies(stack)
    pages = dashboard_pages(stack, cookies, job_ids)
    pages += admin_registration_refused(stack, cookies, server_cluster.wrong_password_url)
    assert any("secret-keepers" in text for _, text in pages)  # the dashboards do show this tenant's jobs
    assert any(f"{server_cluster.host}:{server_cluster.port}" in text for _, text in pages)  # and the server
    assert call("DELETE", f"/api/database-servers/{SERVER}", token=root["token"]).status_code == 204

    elsewhere = [
        *[("websocket", json.dumps(frame)) for frame in frames],
        *[logged for process in [stack.web, *stack.workers] for logged in logs(process, stack.env["LOG_FORMAT"])],
        *database_records(),
        *pages,
    ]
    secrets = {
        "admin password": ADMIN_PASSWORD,
        "user password": USER_PASSWORD,
        "editor's password": EDITOR_PASSWORD,
        "editor's changed password": CHANGED_PASSWORD,
        "editor's reset password": RESET_PASSWORD,
        "reset token": reset_token,
        "refused password": WRONG_PASSWORD,
        "root password": settings.DIQUIS_ROOT_PASSWORD,
        "hash marker": "argon2$",
        "hash marker, before Argon2": "pbkdf2_sha256$",
        "root's hash": root_hash,
        **{f"tenant hash {n}": value for n, value in enumerate(hashes)},
        "database url": live.stack_env()["DATABASE_URL"],
        "postgres url": "postgres://",
        "postgresql url": "postgresql://",
        "server password": server_password,
        "server password, wrong": "not-" + server_password,
        "server url": server_cluster.createdb_url,
        "server url, wrong": server_cluster.wrong_password_url,
        "server password at rest": server_at_rest,
        "tenant role's password": tenant_role_password(tenant_role_name(database)),
        "secret key": settings.SECRET_KEY,
        "encrypted password": FERNET_MARKER,
        **({"this encrypted password": encrypted} if encrypted else {}),
    }
    leaks = [
        (what, where)
        for what, secret in secrets.items()
        for where, text in [*call.texts(tokens_allowed=False), *elsewhere]
        if secret in text
    ]
    # JWTs: in the bodies of the calls that hand them out, and nowhere else
    leaks += [("jwt", where) for where, text in [*call.texts(tokens_allowed=True), *elsewhere] if JWT.search(text)]
    assert leaks == []

    connection = redis()
    assert connection.dbsize() > 0
    for what, secret in {**secrets, "jwt header": "eyJhbGciOi"}.items():
        assert redis_occurrences(connection, secret) == [], what
    assert redis_occurrences(connection, TENANT)  # the scan does see what Redis holds


def test_refreshing_by_path_leaves_no_token_in_the_access_log(stack):
    refresh = sign_in(Recorder(stack), settings.DIQUIS_ROOT_EMAIL, settings.DIQUIS_ROOT_PASSWORD)["refreshToken"]
    assert httpx.get(f"{stack.url}/api/tokens/{refresh}").status_code == 200
    stack.stop()  # flushes the log
    assert refresh not in stack.web.output()
