"""Daphne's access log, without the secrets some URLs carry.

The original web client refreshes with GET /api/tokens/{refreshToken}, and websocket clients may send
`?access_token=<jwt>`: Daphne writes every request line to its access log as it is, and offers no hook
to filter it. Its one formatting method is wrapped here, so the documented command
(`daphne ... diquis.asgi:application`) keeps its access log, minus the tokens.
"""

import re

from daphne.access import AccessLogGenerator

REDACTED = "[redacted]"
_SECRETS_IN_URLS = (
    (re.compile(r"(/api/tokens/)(?!refresh(?:[/?\s]|$))[^/?\s]+"), rf"\g<1>{REDACTED}"),
    (re.compile(r"([?&](?:access_token|token)=)[^&\s]+"), rf"\g<1>{REDACTED}"),
)


def redact(request_line):
    for pattern, replacement in _SECRETS_IN_URLS:
        request_line = pattern.sub(replacement, request_line)
    return request_line


def install():
    if getattr(AccessLogGenerator.write_entry, "redacts_secrets", False):
        return
    original = AccessLogGenerator.write_entry

    def write_entry(self, host, date, request, *args, **kwargs):
        return original(self, host, date, redact(request), *args, **kwargs)

    write_entry.redacts_secrets = True
    AccessLogGenerator.write_entry = write_entry
