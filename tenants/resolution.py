"""Which tenant a request is for (API.md, "Tenant resolution"):
JWT claim -> first label of the Host when it is a subdomain -> header `tenant` -> `root`.
A claim that disagrees with an explicit subdomain or header is refused."""

from django.conf import settings
from rest_framework_simplejwt.exceptions import TokenError

from .models import ROOT_TENANT_ID
from .signing import AccessToken

TENANT_CLAIM = "tenant"
TENANT_HEADER = "HTTP_TENANT"


class TenantMismatch(Exception):
    pass


def _bearer_token(request):
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, raw = header.partition(" ")
    if scheme.lower() != "bearer" or not raw:
        return None
    try:
        return AccessToken(raw.strip())
    except TokenError:
        return None  # authentication will answer 401


def subdomain_tenant(host):
    """`acme.example.com` -> `acme` when `example.com` (or `.example.com`) is an allowed host."""
    host = host.split(":", 1)[0].lower().rstrip(".")
    label, _, parent = host.partition(".")
    if not parent or not label:
        return None
    for allowed in settings.ALLOWED_HOSTS:
        if allowed.lstrip(".").lower() == parent:
            return label
    return None


def explicit_tenant(request):
    from_host = subdomain_tenant(request.get_host()) if request.META.get("HTTP_HOST") else None
    from_header = request.META.get(TENANT_HEADER, "").strip() or None
    if from_host and from_header and from_host != from_header:
        raise TenantMismatch
    return from_host or from_header


def resolve_tenant_id(request):
    """The tenant id for this request, and the validated access token if one came with it."""
    token = _bearer_token(request)
    explicit = explicit_tenant(request)
    if token is not None:
        claimed = token.get(TENANT_CLAIM)
        if explicit and explicit != claimed:
            raise TenantMismatch
        return claimed, token
    return explicit or ROOT_TENANT_ID, None
