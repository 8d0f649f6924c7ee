"""Root users made on the spot, and API clients signed in as a user."""

import uuid

from rest_framework.test import APIClient

from tenants.models import ROOT_TENANT_ID, Role, User
from tenants.tokens import issue_tokens

ROOT_PASSWORD = "Another-Root-Pass-1!"


def make_root_user(email=None):
    return User.objects.create_user(
        email or f"root-{uuid.uuid4().hex[:8]}@diquis.test",
        ROOT_PASSWORD,
        tenant_id=ROOT_TENANT_ID,
        roles=[Role.ROOT],
    )


def client_for(user=None, *, tenant=None):
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_tokens(user)['token']}")
    if tenant is not None:
        client.defaults["HTTP_TENANT"] = tenant
    return client
