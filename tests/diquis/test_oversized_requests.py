"""Security finding 6 of issue 18: oversized input answered 500 (a traceback in the log) or quoted Python's
internal error. Before: a 30 MB JSON body 500 (RequestDataTooBig unmapped), `?after=<5000 digits>` 500
(ValueError), `{"upTo": <5000 digits>}` 400 quoting `sys.set_int_max_str_digits()`. Now 413 and 400s in the
envelope, each with a plain line."""

import json

import pytest

pytestmark = pytest.mark.django_db

HUGE_NUMBER = "9" * 5000


@pytest.mark.parametrize("path", ["/api/tokens", "/api/tokens/refresh", "/api/tenants", "/api/users"])
def test_a_30_mb_body_is_413_in_the_envelope(root_api, path, caplog):
    body = json.dumps({"email": "a" * (30 * 1024 * 1024), "password": "x"})
    response = root_api.generic("POST", path, body, content_type="application/json")
    assert response.status_code == 413
    assert response.json() == {"succeeded": False, "data": None, "messages": ["The request body is too large."]}
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize("after", [HUGE_NUMBER, str(2**63), "0" * 30 + "1"])
def test_an_after_too_large_for_an_id_is_400(root_api, after):
    response = root_api.get(f"/api/notifications?after={after}")
    assert response.status_code == 400
    assert response.json()["errors"] == {"after": ["A whole number from 0 to 9223372036854775807 is required."]}


def test_the_largest_id_is_still_a_valid_after(root_api):
    assert root_api.get(f"/api/notifications?after={2**63 - 1}").status_code == 200


@pytest.mark.parametrize("up_to", [HUGE_NUMBER, str(2**63)])
def test_an_up_to_too_large_is_400_without_pythons_words(root_api, up_to):
    response = root_api.post("/api/notifications/read", f'{{"upTo": {up_to}}}', content_type="application/json")
    assert response.status_code == 400
    text = " ".join(response.json()["messages"] + sum(response.json().get("errors", {}).values(), []))
    assert "sys." not in text and "int_max_str_digits" not in text and "4300" not in text


def test_a_malformed_body_keeps_its_parse_error(root_api):
    response = root_api.post("/api/notifications/read", '{"upTo": ', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["messages"][0].startswith("JSON parse error - Expecting value")
