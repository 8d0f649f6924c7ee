"""Security finding 1 of issue 18: the root's login at /admin/login/ had no throttle. Before: 45 wrong root
passwords from one address were all answered 200 ("Please enter the correct..."), the 46th (right) one 302,
each guess a password hash of CPU. Now the admin login has the API's sign-in budgets, per address and per
account (their counters shared with POST /api/tokens): 429 with Retry-After before any hash. (The seeding of
a weak DIQUIS_ROOT_PASSWORD: tests/tenants/test_seed_password.py.)"""

import pytest
from django.conf import settings
from django.test import Client

RATES = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
ADDRESS_BUDGET = int(RATES["login_address"].split("/")[0])
EMAIL_BUDGET = int(RATES["login_email"].split("/")[0])

pytestmark = pytest.mark.django_db


def guess(client, email, password, address):
    return client.post("/admin/login/", {"username": email, "password": password}, REMOTE_ADDR=address)


def test_the_root_account_runs_out_of_guesses_whatever_the_address(root_user):
    client = Client()
    codes = [guess(client, root_user.email, f"Guess-{n}!", f"198.51.100.{n}").status_code for n in range(EMAIL_BUDGET)]
    assert codes == [200] * EMAIL_BUDGET
    refused = guess(client, root_user.email, settings.DIQUIS_ROOT_PASSWORD, "198.51.100.200")
    assert refused.status_code == 429  # even the right password, once the account's budget is spent
    assert int(refused["Retry-After"]) > 0
    assert b"Too many sign-in attempts" in refused.content
    # the API's door shares the account's budget
    api = client.post(
        "/api/tokens",
        {"email": root_user.email, "password": settings.DIQUIS_ROOT_PASSWORD},
        content_type="application/json",
        REMOTE_ADDR="198.51.100.201",
    )
    assert api.status_code == 429


def test_one_address_runs_out_of_guesses_across_accounts(root_user):
    client = Client()
    for n in range(ADDRESS_BUDGET):
        assert guess(client, f"root{n}@diquis.test", "Guess-1!", "192.0.2.9").status_code == 200
    assert guess(client, root_user.email, settings.DIQUIS_ROOT_PASSWORD, "192.0.2.9").status_code == 429
    assert guess(client, root_user.email, settings.DIQUIS_ROOT_PASSWORD, "192.0.2.10").status_code == 302


def test_the_login_page_itself_is_not_counted(root_user):
    client = Client()
    for _ in range(ADDRESS_BUDGET + 5):
        assert client.get("/admin/login/", REMOTE_ADDR="192.0.2.11").status_code == 200
    assert guess(client, root_user.email, settings.DIQUIS_ROOT_PASSWORD, "192.0.2.11").status_code == 302
