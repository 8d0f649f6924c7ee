"""HTTP (Django, rq-dashboard at /rq/ included) and websockets (Channels) in one ASGI application, served by Daphne."""

import os
from importlib import import_module

from django.core.asgi import get_asgi_application

from .tracing import set_up_tracing

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "diquis.settings")
set_up_tracing()  # before Django loads its middleware: the Django instrumentation adds one
django_http = get_asgi_application()

from .database_pool import pool_main_database  # noqa: E402

pool_main_database()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402  (needs Django set up first)
from django.conf import settings  # noqa: E402

from notifications.auth import websocket_stack  # noqa: E402
from notifications.metrics import CountWebsockets  # noqa: E402
from notifications.routing import websocket_urlpatterns  # noqa: E402

from . import access_log  # noqa: E402
from .garbage_collection import tune_for_open_sockets  # noqa: E402
from .request_context import RequestContextMiddleware, SocketUserMiddleware  # noqa: E402

access_log.install()

application = RequestContextMiddleware(
    ProtocolTypeRouter(
        {
            "http": django_http,
            "websocket": CountWebsockets(websocket_stack(SocketUserMiddleware(URLRouter(websocket_urlpatterns)))),
        }
    )
)

import_module(settings.ROOT_URLCONF)  # the URLconf and the views it imports, loaded before start-up is frozen
tune_for_open_sockets()
