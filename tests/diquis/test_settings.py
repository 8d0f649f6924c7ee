"""Production settings (DEBUG=false): Django's deployment checks pass, the development root password and
a missing secret are refused, and cookies and headers are the secure ones.

The checks run `manage.py` in a subprocess, as an operator would, with the suite's environment and the
variables named in each test; the seeding tests migrate a throwaway database of their own.
"""

import os
import secrets
import subprocess
import sys

import pytest
from django.conf import settings
from django.db import connection

from tenants import database_server
from tenants.seed import DEVELOPMENT_ROOT_PASSWORD
from tests.support.live import ROOT
from tests.support.tenant_databases import query

STRONG_ROOT_PASSWORD = "Deploy-Root-Pass-2026!"


def manage(*args, timeout=300, **env):
    """`python manage.py ...` in production mode with a strong SECRET_KEY, unless `env` says otherwise."""
    environment = {**os.environ, "DEBUG": "false", "SECRET_KEY": secrets.token_urlsafe(50), **env}
    for name, value in env.items():
        if value is None:
            environment.pop(name)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_check_deploy_passes_with_debug_off_and_a_strong_secret_key():
    done = manage("check", "--deploy", "--fail-level", "WARNING")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout


def test_check_deploy_fails_with_a_weak_secret_key():
    """The check above can fail: the same command with a short key stops on security.W009."""
    done = manage("check", "--deploy", "--fail-level", "WARNING", SECRET_KEY="too-short")
    assert done.returncode != 0
    assert "security.W009" in done.stderr + done.stdout


def test_without_a_secret_key_nothing_starts_when_debug_is_off():
    done = manage("check", SECRET_KEY=None)
    assert done.returncode != 0
    assert "SECRET_KEY is required when DEBUG is false" in done.stderr


@pytest.fixture
def throwaway_database(tenant_databases):
    """An empty database on the test server (named with the suite's prefix, so conftest drops it even after
    a crash), and the DATABASE_URL that points at it."""
    name = f"{settings.DIQUIS_TENANT_DATABASE_PREFIX}deploy_seed"
    database_server.drop(name)
    database_server.create(name)
    params = connection.settings_dict
    url = f"postgres://{params['USER'] or 'postgres'}@{params['HOST'] or '127.0.0.1'}:{params['PORT'] or 5432}/{name}"
    yield name, url
    database_server.drop(name)


def root_users(database_name):
    return query(database_name, "SELECT email FROM tenants_user WHERE tenant_id = 'root'")


@pytest.mark.timeout(600)
def test_migrate_refuses_the_development_root_password_then_seeds_a_strong_one(throwaway_database):
    name, url = throwaway_database
    refused = manage("migrate", "--no-input", DATABASE_URL=url, DIQUIS_ROOT_PASSWORD=DEVELOPMENT_ROOT_PASSWORD)
    assert refused.returncode != 0
    assert "DIQUIS_ROOT_PASSWORD is the documented development default; choose another." in refused.stderr
    assert root_users(name) == []  # no root user with the public password

    seeded = manage("migrate", "--no-input", DATABASE_URL=url, DIQUIS_ROOT_PASSWORD=STRONG_ROOT_PASSWORD)
    assert seeded.returncode == 0, seeded.stderr
    assert root_users(name) == [(settings.DIQUIS_ROOT_EMAIL.lower(),)]


@pytest.mark.timeout(600)
def test_migrate_requires_root_credentials_when_debug_is_off(throwaway_database):
    _name, url = throwaway_database
    done = manage("migrate", "--no-input", DATABASE_URL=url, DIQUIS_ROOT_EMAIL=None, DIQUIS_ROOT_PASSWORD=None)
    assert done.returncode != 0
    assert "DIQUIS_ROOT_EMAIL and DIQUIS_ROOT_PASSWORD are required when DEBUG is false." in done.stderr


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
