"""Where the notification hub listens: its websocket route, and SignalR's negotiate call beside it."""

from django.urls import path

from .consumers import NotificationConsumer

HUB_PATH = "hubs/notifications"
NEGOTIATE_PATH = f"{HUB_PATH}/negotiate"

websocket_urlpatterns = [path(HUB_PATH, NotificationConsumer.as_asgi())]
