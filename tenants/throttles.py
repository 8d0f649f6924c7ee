"""Sign-in throttling, with DRF's own throttle machinery: one budget per client address and one per
(tenant, email), so neither spraying one address nor one account at many passwords goes unchecked.

The API's sign-in and the admin's login share them (same scopes, same counters): a root account has one
budget, whichever door is knocked on. A view tells where its form keeps the email (`login_email_field`)
and, when the request has no tenant of its own, whose accounts it signs in (`login_tenant`)."""

import hashlib
import logging
import secrets

from redis.exceptions import RedisError
from rest_framework.throttling import AnonRateThrottle, ScopedRateThrottle, SimpleRateThrottle, UserRateThrottle
from rest_framework_simplejwt.exceptions import TokenError

from jobs import redis_client

from .signing import RefreshToken

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


# One key's sliding window, decided and recorded in one step: the timestamps of the requests let through in the
# window are a sorted set; those older than the window go, and the request is let in (and added) if fewer than the
# budget remain. Returns {let in, count, oldest timestamp in the window}.
SLIDING_WINDOW = """
local key, now, window, budget = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
if count < budget then
    redis.call('ZADD', key, now, ARGV[4])
    redis.call('PEXPIRE', key, math.ceil(window * 1000))
    return {1, count + 1, ARGV[1]}
end
return {0, count, redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')[2]}
"""


class AtomicWindow(SimpleRateThrottle):
    """DRF's SimpleRateThrottle, its sliding window kept in Redis and decided there in one step (a Lua script).
    DRF reads a key's history from the cache, decides, and writes it back: requests of one key at once all read
    the same history and all passed (12 wrong sign-ins sent together got 6 through a budget of 5). Same rates,
    same window, same wait() as DRF's. A base placed after the DRF class it makes atomic (ScopedRateThrottle
    chooses its rate first). Written here because DRF has no atomic throttle, and the libraries that have one
    (django-ratelimit's fixed windows) count differently from the sliding window this API documents."""

    script = None

    def allow_request(self, request, view):
        if self.rate is None or (key := self.get_cache_key(request, view)) is None:
            return True
        if AtomicWindow.script is None:
            AtomicWindow.script = redis_client.connection().register_script(SLIDING_WINDOW)
        self.now = self.timer()
        member = f"{self.now}:{secrets.token_hex(4)}"
        # The key is where DRF kept the history (the cache's own name for it), a sorted set now.
        allowed, count, oldest = AtomicWindow.script(
            keys=[self.cache.make_key(key)], args=[repr(self.now), self.duration, self.num_requests, member]
        )
        # What wait() reads of DRF's history: its length, and its oldest entry last.
        self.history = [float(oldest)] * int(count)
        return bool(allowed)


class LoginAddressThrottle(FailOpen, AnonRateThrottle, AtomicWindow):
    scope = "login_address"


class LoginEmailThrottle(FailOpen, AtomicWindow):
    scope = "login_email"

    def get_cache_key(self, request, view):
        data = request.data if hasattr(request, "data") else request.POST  # DRF's request, or Django's form
        field = getattr(view, "login_email_field", "email")
        email = str(data.get(field, "")).strip().lower() if hasattr(data, "get") else ""
        if not email:
            return None
        tenant = getattr(getattr(request, "tenant", None), "id", None) or getattr(view, "login_tenant", "")
        # Hashed: the cache (Redis) never holds the address book of who tried to sign in.
        ident = hashlib.sha256(f"{tenant}:{email}".encode()).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": ident}


class PasswordResetAddressThrottle(LoginAddressThrottle):
    """Forgot and reset password, as sign-in is: per client address (its own budget: a burst of resets does not
    lock anyone out of signing in)..."""

    scope = "password_reset_address"


class PasswordResetEmailThrottle(LoginEmailThrottle):
    """... and per (tenant, email): no mailbox flooded with reset mails, no token tried at length."""

    scope = "password_reset_email"


class PasswordChangeThrottle(FailOpen, UserRateThrottle, AtomicWindow):
    """A budget per signed-in user for checking their current password: a stolen token does not buy
    unlimited guesses of the password behind it."""

    scope = "password_change"


def login_wait(request, view):
    """None when this sign-in may be tried, else how many seconds to wait. Every budget is charged, as DRF's
    own check_throttles does, so the address and the account both count the attempt."""
    waits = [
        throttle.wait()
        for throttle in (LoginAddressThrottle(), LoginEmailThrottle())
        if not throttle.allow_request(request, view)
    ]
    return max((wait or 0) for wait in waits) if waits else None


class CostlyWriteThrottle(FailOpen, ScopedRateThrottle, AtomicWindow):
    """DRF's ScopedRateThrottle (the view's `throttle_scope` names the rate; one budget per signed-in user)
    for a write that costs the server a password hash or a database clone: POST only, reads are free."""

    def allow_request(self, request, view):
        return request.method != "POST" or super().allow_request(request, view)


class TokenRefreshThrottle(FailOpen, AtomicWindow):
    """A budget per user for minting tokens by refresh: the user is the (verified) refresh token's, or,
    for a token that does not verify, the client address. Keyed on a verified token only, so nobody can
    spend another user's budget by writing their id into a forged one."""

    scope = "token_refresh"

    def get_cache_key(self, request, view):
        body = request.data if hasattr(request.data, "get") else {}
        raw = view.kwargs.get("refresh_token") or body.get("refreshToken")
        try:
            ident = f"user:{RefreshToken(str(raw))['user_id']}" if raw else self.get_ident(request)
        except (TokenError, KeyError):
            ident = self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}
