"""Production settings (DEBUG=false): Django's deployment checks pass, a missing secret is refused, and
cookies and headers are the secure ones; CORS for the original web client on another origin (API.md,
"Compatibility calls"): django-cors-headers, on /api/ and /hubs/ only, for the origins of
CORS_ALLOWED_ORIGINS (a comma-separated list in the environment, empty by default).

The checks run `manage.py` in a subprocess, as an operator would, with the suite's environment and the
variables named in each test (the refusal of the development root password: tests/tenants/test_seed.py).
"""

import json

import pytest
from django.conf import settings
from django.test import Client, override_settings

from tests.support.production import manage


def test_check_deploy_passes_with_debug_off_and_a_strong_secret_key():
    done = manage("check", "--deploy", "--fail-level", "WARNING")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout


def test_check_deploy_fails_with_a_weak_secret_key():
    """The check above can fail: the same command with a short key stops, before the checks run (issue 18,
    finding 11: the settings refuse what security.W009 only warned of)."""
    done = manage("check", "--deploy", "--fail-level", "WARNING", SECRET_KEY="too-short")
    assert done.returncode != 0
    assert "SECRET_KEY must have at least 50 characters" in done.stderr


def test_without_a_secret_key_nothing_starts_when_debug_is_off():
    done = manage("check", SECRET_KEY=None)
    assert done.returncode != 0
    assert "SECRET_KEY is required when DEBUG is false" in done.stderr


# --- what a browser gets (the suite runs with DEBUG=false) ----------------------------------------------


def test_the_suite_runs_the_production_settings():
    assert settings.DEBUG is False


def test_responses_carry_the_security_headers(client, db):
    response = client.get("/admin/login/", secure=True)
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    hsts = response["Strict-Transport-Security"]
    assert "max-age=31536000" in hsts and "includeSubDomains" in hsts


def test_the_admin_cookies_are_secure_and_the_session_cookie_http_only(client, root_user):
    page = client.get("/admin/login/", secure=True)
    csrf = page.cookies[settings.CSRF_COOKIE_NAME]
    assert csrf["secure"]
    signed_in = client.post(
        "/admin/login/?next=/admin/",
        {
            "username": settings.DIQUIS_ROOT_EMAIL,
            "password": settings.DIQUIS_ROOT_PASSWORD,
            "csrfmiddlewaretoken": csrf.value,
        },
        secure=True,
    )
    assert signed_in.status_code == 302
    session = signed_in.cookies[settings.SESSION_COOKIE_NAME]
    assert session["secure"] and session["httponly"]
    assert session["samesite"] == "Lax"


# --- CORS -----------------------------------------------------------------------------------------------------

APP = "https://app.diquis.example"
FOREIGN = "https://evil.example"


def preflight(path, origin, headers="authorization,content-type,tenant,x-signalr-user-agent"):
    return Client().options(
        path,
        headers={"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": headers},
    )


def test_no_origin_is_allowed_by_default(db):
    assert settings.CORS_ALLOWED_ORIGINS == []
    response = preflight("/api/tokens", APP)
    assert "access-control-allow-origin" not in response.headers


PREFLIGHT_FROM_EACH_ORIGIN = """
import json
from django.conf import settings
from django.test import Client
answers = {
    origin: Client().options(
        "/api/tokens", headers={"Origin": origin, "Access-Control-Request-Method": "POST"}
    ).headers.get("access-control-allow-origin")
    for origin in ["https://app.diquis.example", "https://second.diquis.example", "https://evil.example"]
}
print(json.dumps({"setting": settings.CORS_ALLOWED_ORIGINS, "answers": answers}))
"""


def test_cors_allowed_origins_are_read_from_the_environment_as_a_comma_separated_list():
    done = manage(
        "shell", "-c", PREFLIGHT_FROM_EACH_ORIGIN, CORS_ALLOWED_ORIGINS=f"{APP},https://second.diquis.example"
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "setting": [APP, "https://second.diquis.example"],
        "answers": {APP: APP, "https://second.diquis.example": "https://second.diquis.example", FOREIGN: None},
    }


@override_settings(CORS_ALLOWED_ORIGINS=[APP])
@pytest.mark.parametrize("path", ["/api/tokens", "/api/tenants/acme", "/hubs/notifications/negotiate"])
def test_a_preflight_from_an_allowed_origin_is_answered(db, path):
    response = preflight(path, APP)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == APP
    assert response.headers["access-control-allow-credentials"] == "true"
    allowed = {h.strip() for h in response.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "tenant", "x-signalr-user-agent"} <= allowed
    assert "POST" in response.headers["access-control-allow-methods"]


@override_settings(CORS_ALLOWED_ORIGINS=[APP])
@pytest.mark.parametrize("path", ["/api/tokens", "/hubs/notifications/negotiate"])
def test_a_preflight_from_a_refused_origin_gets_no_cors_headers(db, path):
    response = preflight(path, FOREIGN)
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-credentials" not in response.headers


@override_settings(CORS_ALLOWED_ORIGINS=[APP])
def test_cors_stays_off_outside_api_and_hubs(db):
    response = preflight("/admin/login/", APP)
    assert "access-control-allow-origin" not in response.headers


@override_settings(CORS_ALLOWED_ORIGINS=[APP])
def test_an_actual_cross_origin_call_carries_the_allow_origin_header(db):
    response = Client().get("/api/tenants/tenant-options", headers={"Origin": APP})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == APP
    refused = Client().get("/api/tenants/tenant-options", headers={"Origin": FOREIGN})
    assert "access-control-allow-origin" not in refused.headers
