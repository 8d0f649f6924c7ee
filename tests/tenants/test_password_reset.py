"""A forgotten password (POST /api/identity/forgot-password and /reset-password) with the original web client's
bodies: the same answer, after the same work, for any email; the token only in the mail (locmem in tests); a
bad or used token refused; throttled as sign-in is."""

import re
from datetime import datetime, timedelta

import pytest
from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from jobs.models import Job
from jobs.registry import resolve
from tenants.models import Role
from tenants.subjects import password_reset_subject
from tests.support.factories import TenantFactory, UserFactory
from tests.support.users import client_for

NEW_PASSWORD = "Reset-To-This-Pass-7!"
TOKEN_IN_MAIL = re.compile(r"token is '([^']+)'")
EMAIL_RATE = int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["password_reset_email"].split("/")[0])


@pytest.fixture
def member(db):
    TenantFactory(id="acme")
    return UserFactory(tenant_id="acme", email="member@acme.test", roles=[Role.BASIC])


@pytest.fixture
def acme_api(db):
    return client_for(tenant="acme")


def forgot(api, email, tenant="acme", address="10.0.0.1"):
    return api.post(
        "/api/identity/forgot-password", {"email": email, "tenant": tenant}, format="json", REMOTE_ADDR=address
    )


def reset(api, email, token, password=NEW_PASSWORD, confirm=None, tenant="acme"):
    body = {"email": email, "token": token, "password": password, "confirmPassword": confirm or password}
    return api.post("/api/identity/reset-password", {**body, "tenant": tenant}, format="json")


def run_reset_jobs():
    """The reset jobs' bodies, as the worker runs them (their arguments are the durable job's)."""
    for job in Job.objects.filter(subject=password_reset_subject("acme")).order_by("created_at"):
        resolve(job.task)(**job.kwargs)


def mailed_token():
    (message,) = mail.outbox
    return TOKEN_IN_MAIL.search(message.body).group(1)


def test_forgot_password_answers_alike_for_a_user_and_for_nobody(acme_api, member):
    known, unknown = forgot(acme_api, member.email), forgot(acme_api, "nobody@acme.test")
    assert known.status_code == unknown.status_code == 200
    assert known.json() == unknown.json()
    assert known.json()["data"] is None and known.json()["succeeded"] is True
    assert Job.objects.filter(subject=password_reset_subject("acme")).count() == 2  # one for each: the same work
    run_reset_jobs()
    assert [message.to for message in mail.outbox] == [[member.email]]  # but one mail, to the user only


def test_forgot_password_does_the_same_queries_whether_the_email_is_a_users_or_not(acme_api, member):
    forgot(acme_api, "warm-up@acme.test")
    counts = []
    for email in (member.email, "nobody@acme.test"):
        with CaptureQueriesContext(connection) as queries:
            assert forgot(acme_api, email).status_code == 200
        counts.append([re.sub(r"'[^']*'|\d+", "?", q["sql"]) for q in queries.captured_queries])
    assert counts[0] == counts[1]


def test_an_inactive_user_gets_no_mail_and_the_same_answer(acme_api, member):
    member.is_active = False
    member.save()
    assert forgot(acme_api, member.email).json() == forgot(acme_api, "nobody@acme.test").json()
    run_reset_jobs()
    assert mail.outbox == []


def test_the_token_is_only_in_the_mail_never_in_a_response_or_a_job(acme_api, member):
    response = forgot(acme_api, member.email)
    run_reset_jobs()
    token = mailed_token()
    assert token not in response.content.decode()
    assert all(token not in str(job.kwargs) for job in Job.objects.all())
    assert "/api/identity/reset-password" in mail.outbox[0].body


def test_the_mailed_token_resets_the_password_once(acme_api, member):
    old_token_api = client_for(member, tenant="acme")
    forgot(acme_api, member.email)
    run_reset_jobs()
    token = mailed_token()
    response = reset(acme_api, member.email, token)
    assert response.status_code == 200, response.content
    assert (response.json()["succeeded"], response.json()["data"]) == (True, None)
    assert token not in response.content.decode() and NEW_PASSWORD not in response.content.decode()
    member.refresh_from_db()
    assert member.check_password(NEW_PASSWORD)
    assert old_token_api.get("/api/identity/profile").status_code == 401  # signed out everywhere
    again = reset(acme_api, member.email, token, password="Yet-Another-Pass-8!")
    assert (again.status_code, again.json()["errors"]) == (400, {"token": ["Invalid or expired token"]})
    member.refresh_from_db()
    assert member.check_password(NEW_PASSWORD)


def test_an_expired_token_is_refused(acme_api, member, monkeypatch):
    forgot(acme_api, member.email)
    run_reset_jobs()
    token = mailed_token()
    later = datetime.now() + timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT + 60)
    monkeypatch.setattr(default_token_generator, "_now", lambda: later)
    response = reset(acme_api, member.email, token)
    assert (response.status_code, response.json()["errors"]) == (400, {"token": ["Invalid or expired token"]})
    member.refresh_from_db()
    assert member.check_password("User-Password-123!")


def test_a_bad_token_and_an_unknown_email_are_refused_alike(acme_api, member):
    bad = reset(acme_api, member.email, "abc-0123456789abcdef")
    unknown = reset(acme_api, "nobody@acme.test", "abc-0123456789abcdef")
    assert bad.status_code == unknown.status_code == 400
    assert bad.json() == unknown.json()
    assert bad.json()["errors"] == {"token": ["Invalid or expired token"]}
    member.refresh_from_db()
    assert member.check_password("User-Password-123!")


def test_a_token_of_another_user_resets_nobody(acme_api, member):
    other = UserFactory(tenant_id="acme", email="other@acme.test")
    forgot(acme_api, other.email)
    run_reset_jobs()
    assert reset(acme_api, member.email, mailed_token()).status_code == 400
    member.refresh_from_db()
    assert member.check_password("User-Password-123!")


@pytest.mark.parametrize(
    ("body_change", "field"),
    [
        ({"confirmPassword": "Not-The-Same-Pass-1!"}, "confirmPassword"),
        ({"password": "abc", "confirmPassword": "abc"}, "password"),
        ({"email": "not-an-email"}, "email"),
        ({"token": ""}, "token"),
        ({"tenant": "globex"}, "tenant"),
    ],
)
def test_a_bad_reset_is_400_and_changes_nothing(acme_api, member, body_change, field):
    forgot(acme_api, member.email)
    run_reset_jobs()
    body = {
        "email": member.email,
        "token": mailed_token(),
        "password": NEW_PASSWORD,
        "confirmPassword": NEW_PASSWORD,
        "tenant": "acme",
        **body_change,
    }
    response = acme_api.post("/api/identity/reset-password", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    member.refresh_from_db()
    assert member.check_password("User-Password-123!")


@pytest.mark.parametrize(
    ("body", "field"), [({"email": "nope"}, "email"), ({"email": "a@b.test", "tenant": "x"}, "tenant")]
)
def test_a_bad_forgot_password_is_400_and_sends_nothing(acme_api, member, body, field):
    response = acme_api.post("/api/identity/forgot-password", body, format="json")
    assert response.status_code == 400 and field in response.json()["errors"]
    assert not Job.objects.exists()


def test_the_tenant_of_the_request_is_the_one_looked_in(member):
    TenantFactory(id="globex")
    response = forgot(client_for(tenant="globex"), member.email, tenant="globex")
    assert response.status_code == 200
    job = Job.objects.get()
    assert (job.subject, job.kwargs["tenant_id"]) == (password_reset_subject("globex"), "globex")
    resolve(job.task)(**job.kwargs)
    assert mail.outbox == []  # acme's member is no user of globex


def test_an_inactive_tenant_is_refused(member):
    TenantFactory(id="closed", is_active=False)
    response = forgot(client_for(tenant="closed"), "someone@closed.test", tenant="closed")
    assert (response.status_code, response.json()["messages"]) == (403, ["Tenant invalid"])


def test_repeated_requests_for_one_email_are_throttled(acme_api, member):
    for n in range(EMAIL_RATE):
        assert forgot(acme_api, member.email, address=f"10.0.1.{n}").status_code == 200
    refused = forgot(acme_api, member.email, address="10.0.2.1")
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert reset(acme_api, member.email, "abc-def").status_code == 429  # reset spends the same budget
    assert forgot(acme_api, "other@acme.test", address="10.0.2.2").status_code == 200
    assert Job.objects.count() == EMAIL_RATE + 1


def test_an_isolated_tenants_user_resets_its_password_in_its_own_database(isolated):
    isolated("solo")
    api = client_for(tenant="solo")
    assert forgot(api, "admin@solo.test", tenant="solo").status_code == 200
    for job in Job.objects.filter(subject=password_reset_subject("solo")):
        resolve(job.task)(**job.kwargs)  # the worker's part: it finds the user in the tenant's database
    assert reset(api, "admin@solo.test", mailed_token(), tenant="solo").status_code == 200
    signed_in = api.post("/api/tokens", {"email": "admin@solo.test", "password": NEW_PASSWORD}, format="json")
    assert signed_in.status_code == 200
