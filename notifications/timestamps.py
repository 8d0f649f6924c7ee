"""The one wire format of a moment (API.md: "ISO-8601 UTC"), e.g. 2026-01-01T10:00:00Z."""

import datetime

from django.utils import timezone

UTC_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def format_utc(moment=None):
    """`moment` (an aware datetime; now when omitted) in the wire format."""
    return (moment or timezone.now()).astimezone(datetime.UTC).strftime(UTC_FORMAT)
