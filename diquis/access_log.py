"""Daphne's access log, without the secrets some URLs carry.

The original web client refreshes with GET /api/tokens/{refreshToken}, and websocket clients may send
`?access_token=<jwt>`: Daphne writes every request line to its access log as it is, and offers no hook
to filter it. Its one formatting method is wrapped here, so the documented command
(`daphne ... diquis.asgi:application`) keeps its access log, minus the tokens (the rules: diquis.redaction).
"""

from daphne.access import AccessLogGenerator

from .redaction import redact


def install():
    if getattr(AccessLogGenerator.write_entry, "redacts_secrets", False):
        return
    original = AccessLogGenerator.write_entry

    def write_entry(self, host, date, request, *args, **kwargs):
        return original(self, host, date, redact(request), *args, **kwargs)

    write_entry.redacts_secrets = True
    AccessLogGenerator.write_entry = write_entry
