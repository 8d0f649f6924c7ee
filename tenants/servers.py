"""The database servers of the catalog as connections see them: does one answer now?

What a root admin does to servers (register, change, drain, remove) is in services; how a tenant's alias reaches
its server is in tenants.connections. A check connects for real, with the server's connect timeout, and records
what it saw on the row (`reachable`, `last_checked`), for the API, the admin and placement.
"""

import logging

import psycopg
from django.db.utils import load_backend
from django.utils import timezone

from .connections import note_server_reachable, server_settings
from .models import MAIN_SERVER, DatabaseServer

logger = logging.getLogger(__name__)


def connection_parameters(server_name):
    """psycopg's keyword arguments for the server's maintenance database (with its password: never log them)."""
    config = server_settings(server_name)
    return load_backend(config["ENGINE"]).DatabaseWrapper(config).get_connection_params()


def check_reachable(server_name):
    """Connect to the server once, now; record and return whether it answered. `main` is the catalog's own
    server: whoever runs this has just read the catalog from it."""
    if server_name == MAIN_SERVER:
        return True
    try:
        with psycopg.connect(**connection_parameters(server_name), autocommit=True) as connection:
            connection.execute("SELECT 1")
        reachable = True
    except psycopg.Error as error:
        logger.warning("database server %s does not answer: %s", server_name, type(error).__name__)
        reachable = False
    note_server_reachable(server_name, reachable)
    DatabaseServer.objects.filter(pk=server_name).update(reachable=reachable, last_checked=timezone.now())
    return reachable
