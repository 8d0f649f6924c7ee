"""CORS for the original web client on another origin (API.md, "Compatibility calls"): django-cors-headers,
on /api/ and /hubs/ only, for the origins of CORS_ALLOWED_ORIGINS (empty by default)."""

import pytest
from django.conf import settings as django_settings
from django.test import Client, override_settings

APP = "https://app.diquis.example"
FOREIGN = "https://evil.example"


def preflight(path, origin, headers="authorization,content-type,tenant,x-signalr-user-agent"):
    return Client().options(
        path,
        headers={"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": headers},
    )


def test_no_origin_is_allowed_by_default(db):
    assert django_settings.CORS_ALLOWED_ORIGINS == []
    response = preflight("/api/tokens", APP)
    assert "access-control-allow-origin" not in response.headers


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
