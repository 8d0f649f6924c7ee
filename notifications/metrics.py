"""Notification metrics for Prometheus: notifications sent (from their rows, at scrape time) and the
websockets open on this process.

The count of open websockets is the one value kept in memory: it belongs to the web process that holds the
sockets and serves the scrape (with several web processes, scrape each one as its own target and sum).
"""

from channels.middleware import BaseMiddleware
from django.db.models import Count
from prometheus_client import Gauge
from prometheus_client.core import CounterMetricFamily

from .models import Notification

# Registered by whoever serves the scrape (diquis.metrics), like the collectors below.
websocket_connections = Gauge(
    "diquis_websocket_connections_open", "Websockets open on this web process.", registry=None
)


def notifications_sent():
    """Persisted notifications (every one is pushed after commit); progress frames are not persisted."""
    counter = CounterMetricFamily("diquis_notifications_sent", "Notifications sent, by event.", labels=["event"])
    for event, n in Notification.objects.values_list("event").annotate(n=Count("id")).order_by():
        counter.add_metric([event], n)
    return counter


class NotificationCollector:
    def collect(self):
        yield notifications_sent()


class CountWebsockets(BaseMiddleware):
    """ASGI middleware: keeps `websocket_connections` equal to the sockets this process has accepted and
    not yet closed (wrapping the hub from outside, so the consumer stays unaware of metrics)."""

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            return await self.inner(scope, receive, send)
        accepted = False

        async def counting_send(message):
            nonlocal accepted
            if message["type"] == "websocket.accept" and not accepted:
                accepted = True
                websocket_connections.inc()
            await send(message)

        try:
            return await self.inner(scope, receive, counting_send)  # the scope unchanged: no copy
        finally:
            if accepted:
                websocket_connections.dec()
