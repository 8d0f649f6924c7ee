"""What every log line says about where it was written: the request (its id, user, tenant) and the job (its id,
operation, subject, attempt, step), each field only where it applies.

One filter on the log handler (LOGGING in diquis/settings.py) sets them on every record, whichever format
writes it: the JSON lines (diquis.log_json) take them as keys, the human format as `name=value` words before the
message, the set ones only, so a line written outside a job carries no empty `job= operation= subject=`.
"""

import logging

from jobs.context import job_log_fields
from tenants.subjects import tenant_of_subject

from .request_context import request_log_fields

# Each field: the record's attribute (and JSON key), and its name in the human format, in the order written.
FIELDS = {
    "request_id": "request",
    "user_id": "user",
    "tenant": "tenant",
    "job_id": "job",
    "operation": "operation",
    "subject": "subject",
    "attempt": "attempt",
    "step": "step",
}


def context_fields():
    """The fields of a line written now, those not set left out."""
    fields = {**request_log_fields(), **job_log_fields()}
    if not fields.get("tenant") and fields.get("subject"):
        fields["tenant"] = tenant_of_subject(fields["subject"])  # a job on one tenant is that tenant's
    return {name: fields[name] for name in FIELDS if fields.get(name) not in (None, "")}


def _word(name, value):
    value = str(value)
    return f'{FIELDS[name]}="{value}"' if " " in value else f"{FIELDS[name]}={value}"


class LogContextFilter(logging.Filter):
    """Sets each field on the record (None when not set), and `context`: the set ones as the human format's
    words, each followed by a space."""

    def filter(self, record):
        fields = context_fields()
        for name in FIELDS:
            setattr(record, name, fields.get(name))
        record.context = "".join(f"{_word(name, value)} " for name, value in fields.items())
        return True
