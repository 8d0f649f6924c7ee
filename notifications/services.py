"""notify(user, event, data): persist, then push to every open socket of that user.

The push is a span of the trace the notification was made in (a job's attempt: jobs.tracing), and the message
carries that trace's W3C context to the consumer, which sends the frame in a span of the same trace.
"""

import logging

from django.db import connections, router, transaction
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind

from .groups import user_group
from .layer_from_sync import group_send
from .models import Notification
from .selectors import previous_notification_id

logger = logging.getLogger(__name__)

PUSH_MESSAGE_TYPE = "notification.push"
CLOSE_MESSAGE_TYPE = "sockets.close"

tracer = trace.get_tracer("diquis.notifications")


def frame_attributes(frame):
    """What a span of a notification says about it: its event and id, never its data."""
    return {"diquis.notification.event": frame["event"], "diquis.notification.id": frame["id"] or 0}


def _push(user_id, frame, previous, trace_context):
    """Best effort: the row is already stored; a lost push is replayed by the client with ?since=, or, when the
    socket stays open, by the consumer at the next push (`previous` tells it what it should have had)."""
    with tracer.start_as_current_span(
        "notification push",
        context=propagate.extract(trace_context),
        kind=SpanKind.PRODUCER,
        attributes=frame_attributes(frame),
    ):
        message = {"type": PUSH_MESSAGE_TYPE, "frame": frame, "previous": previous}
        propagate.inject(message)  # `traceparent` beside the frame, for the consumer's span
        try:
            group_send(user_group(user_id), message)
        except Exception as error:  # Redis down must never fail the job that notifies
            logger.warning("notification %s not pushed: %s", frame.get("id"), type(error).__name__)


def close_sockets(user_id, code):
    """Close every open socket of the user with `code` (notifications.auth: REVOKED, FORBIDDEN), at once.
    Best effort: a socket the message misses finds out at its next check (NOTIFICATIONS_RECHECK_INTERVAL)."""
    try:
        group_send(user_group(user_id), {"type": CLOSE_MESSAGE_TYPE, "code": code})
    except Exception as error:  # Redis down must never fail the sign-out or the job
        logger.warning("sockets of a user not closed at once: %s", type(error).__name__)


def wait_for_earlier_notifications(user_id, using):
    """Hold the user's notification lock until this transaction ends: a notification of the same user made
    meanwhile by another transaction waits for this one to commit (or roll back) before it takes its id. So a
    user's ids are in commit order, and `previous` names a committed row: without it, two jobs of one user ending
    at once could commit 157 before 156, and a client that saw 157 would never be replayed 156 (`?since=157`).
    PostgreSQL only (SQLite has one writer at a time anyway); a transaction-level advisory lock, never left
    behind: it goes with the transaction, also when the process dies."""
    connection = connections[using]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"notifications:{user_id}"])


def notify(user_id, event, data, *, persist=True):
    """Send `event` to the user. Persisted notifications get an id, in commit order per user; the push happens
    after commit."""
    if user_id is None:
        return None
    frame = {"id": None, "event": event, "data": data}
    notification = previous = None
    if persist:
        using = router.db_for_write(Notification)
        with transaction.atomic(using=using):  # the caller's transaction, when there is one: the lock lasts as long
            wait_for_earlier_notifications(user_id, using)
            notification = Notification.objects.using(using).create(user_id=user_id, event=event, data=data)
        frame["id"] = notification.id
        previous = previous_notification_id(user_id=user_id, before=notification.id)
    trace_context = {}
    propagate.inject(trace_context)  # the trace it is made in: the push runs later, after commit
    transaction.on_commit(lambda: _push(user_id, frame, previous, trace_context))
    return notification


@transaction.atomic
def mark_read(*, user_id, up_to):
    return Notification.objects.filter(user_id=user_id, id__lte=up_to, read=False).update(read=True)
