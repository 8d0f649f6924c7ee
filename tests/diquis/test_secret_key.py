"""Security finding 11 of issue 18 (the part without the live stack): a weak SECRET_KEY is refused at start-up
when DEBUG is false, and the old key of a rotation (SECRET_KEY_FALLBACKS) still verifies the tokens it signed.
Before: `manage.py check` started with a 9-character key; a token of the previous key was 401."""

import secrets

import jwt
import pytest

from tenants.tokens import issue_tokens
from tests.support.production import manage


@pytest.mark.parametrize("key", ["too-short", "a" * 60, "django-insecure-" + secrets.token_urlsafe(50)])
def test_a_weak_secret_key_stops_every_command_when_debug_is_off(key):
    done = manage("check", SECRET_KEY=key)
    assert done.returncode != 0
    assert "SECRET_KEY must have at least 50 characters" in done.stderr


def test_a_weak_old_key_may_still_be_a_fallback():
    assert manage("check", SECRET_KEY_FALLBACKS="old-weak-key").returncode == 0


def test_a_token_of_the_previous_key_is_accepted_and_a_token_of_no_key_is_not(api, root_user, settings):
    previous_key = secrets.token_urlsafe(50)
    payload = jwt.decode(issue_tokens(root_user)["refreshToken"], options={"verify_signature": False})
    signed_before_the_rotation = jwt.encode(payload, previous_key, algorithm="HS256")
    settings.SECRET_KEY_FALLBACKS = [previous_key]
    refresh = {"refreshToken": signed_before_the_rotation}
    assert api.post("/api/tokens/refresh", refresh, format="json").status_code == 200
    settings.SECRET_KEY_FALLBACKS = []
    assert api.post("/api/tokens/refresh", refresh, format="json").status_code == 401
