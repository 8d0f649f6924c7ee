"""An /api/ path that no route matches answers 404 in the envelope, whatever the method, the credentials and
the Origin (API.md, "Envelope"): never Django's HTML CSRF page, which once answered every unsafe method there."""

import pytest
from django.test import Client

from tests.support.users import make_root_user

NOT_FOUND = {"succeeded": False, "data": None, "messages": ["Not Found"]}
# The original web client's Products page posts to a path this API does not have.
UNROUTED = "/api/products"
WEB_CLIENT_ORIGIN = "http://localhost:4200"


def browser(*, signed_in):
    client = Client(enforce_csrf_checks=True)  # as a browser meets it: Django's test client skips CSRF by default
    if signed_in:
        client.force_login(make_root_user())
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("origin", [None, WEB_CLIENT_ORIGIN])
@pytest.mark.parametrize("signed_in", [True, False], ids=["session", "no-credentials"])
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_an_unrouted_api_path_is_a_404_envelope_whatever_the_method(method, signed_in, origin):
    headers = {"origin": origin} if origin else {}
    send = getattr(browser(signed_in=signed_in), method)
    response = send(UNROUTED, data="{}", content_type="application/json", headers=headers)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == NOT_FOUND
