"""Sign-in throttling, with DRF's own throttle machinery: one budget per client address and one per
(tenant, email), so neither spraying one address nor one account at many passwords goes unchecked."""

import hashlib
import logging

from redis.exceptions import RedisError
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle

logger = logging.getLogger(__name__)


class FailOpen:
    """The counters live in Redis. If it is down, sign-in keeps working unthrottled (and says so in
    the log) rather than locking every user out."""

    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except RedisError as error:
            logger.warning("login throttle skipped: Redis unavailable (%s)", type(error).__name__)
            return True


class LoginAddressThrottle(FailOpen, AnonRateThrottle):
    scope = "login_address"


class LoginEmailThrottle(FailOpen, SimpleRateThrottle):
    scope = "login_email"

    def get_cache_key(self, request, view):
        email = str(request.data.get("email", "")).strip().lower() if hasattr(request.data, "get") else ""
        if not email:
            return None
        tenant = getattr(getattr(request, "tenant", None), "id", "")
        # Hashed: the cache (Redis) never holds the address book of who tried to sign in.
        ident = hashlib.sha256(f"{tenant}:{email}".encode()).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": ident}
