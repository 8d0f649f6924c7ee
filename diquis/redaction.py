"""Secrets that requests carry in their URLs, kept out of every log line and of Daphne's access log.

The original web client refreshes with GET /api/tokens/{refreshToken}, and websocket clients may send
`?access_token=<jwt>`. Django's `django.request` logger writes the path of every 4xx and 5xx, Daphne's access
log every request line: both would keep a token that still works. One filter on the log handler redacts
every logger's lines; `diquis.access_log` applies the same rules to Daphne's.
"""

import logging
import re

REDACTED = "[redacted]"
_SECRETS = (
    (re.compile(r"(/api/tokens/)(?!(?:refresh|revoke)(?:[/?\s\"']|$))[^/?\s\"']+"), rf"\g<1>{REDACTED}"),
    (re.compile(r"([?&](?:access_token|token)=)[^&\s\"']+"), rf"\g<1>{REDACTED}"),
    # Any JWT, wherever it appears (a header, an error message): three base64url parts, the first a JSON object.
    (re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), REDACTED),
)


def redact(text):
    """Return `text` with the secrets of URLs and any JWT replaced by a marker."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """A handler's filter: the record's message, once formatted, without secrets (its args go with it)."""

    def filter(self, record):
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
