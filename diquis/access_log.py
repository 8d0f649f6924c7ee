"""Daphne's access log, without the secrets some URLs carry, and as JSON lines with `LOG_FORMAT=json`.

The original web client refreshes with GET /api/tokens/{refreshToken}, and websocket clients may send
`?access_token=<jwt>`: Daphne writes every request line to its access log as it is, and offers no hook
to filter it. Its one formatting method is wrapped here, so the documented command
(`daphne ... diquis.asgi:application`) keeps its access log, minus the tokens (the rules: diquis.redaction).
Daphne writes that log to its stream in a format of its own; with `LOG_FORMAT=json` the entry goes through
logging instead (logger `diquis.access`), so that every line of the process is one JSON object.
"""

import logging

from daphne.access import AccessLogGenerator
from django.conf import settings

from .redaction import redact

logger = logging.getLogger("diquis.access")


def _log_entry(self, host, date, request, status=None, length=None, ident=None, user=None):
    """One access-log entry as a log record: the client, the request line, status and size."""
    extra = {"status_code": status} if status else {}
    logger.info('%s "%s" %s %s', host, request, status or "-", length or "-", extra=extra)


def install():
    if getattr(AccessLogGenerator.write_entry, "redacts_secrets", False):
        return
    original = _log_entry if settings.LOG_FORMAT == "json" else AccessLogGenerator.write_entry

    def write_entry(self, host, date, request, *args, **kwargs):
        return original(self, host, date, redact(request), *args, **kwargs)

    write_entry.redacts_secrets = True
    AccessLogGenerator.write_entry = write_entry
