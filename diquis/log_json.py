"""`LOG_FORMAT=json`: one JSON object per line, for a log collector to read without parsing text.

python-json-logger rather than django-structlog: it is a formatter of the standard library's logging, so every
logger already in use (ours, Django's, Daphne's, RQ's) is written the same way through the one handler LOGGING
configures, its filters (the request's and job's fields, the redaction of secrets) included, and the human format
stays exactly as it is. django-structlog would put structlog's processors in front of all of that and add lines
of its own for every request, for fields the filter already gives.

A line has the time, level, logger and message, the fields of diquis.log_context that apply, an HTTP status
where Django's request log gives one, and the traceback of an error; nothing else. Not the other `extra`
attributes a library attaches: Django's request log attaches the request itself, whose text is its path, with
the token some paths carry (diquis.redaction redacts the message only).
"""

from pythonjsonlogger.json import JsonFormatter

from .log_context import FIELDS

KEYS = ("timestamp", "level", "logger", "message", *FIELDS, "status_code", "exc_info", "stack_info")


class JsonLines(JsonFormatter):
    def __init__(self):
        super().__init__(
            ["levelname", "name", "message", *FIELDS, "status_code"],
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp=True,
        )

    def process_log_record(self, log_data):
        """The known keys, in their order, those without a value left out."""
        return {key: log_data[key] for key in KEYS if log_data.get(key) not in (None, "", [])}
