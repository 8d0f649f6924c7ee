"""The database servers of the catalog as connections see them: does one answer now?

What a root admin does to servers (register, change, drain, remove) is in services; how a tenant's alias reaches
its server is in tenants.connections. A check connects for real, with the server's connect timeout, and records
what it saw on the row (`reachable`, `last_checked`), for the API, the admin and placement.
"""

import logging
from concurrent.futures import ThreadPoolExecutor, wait

import psycopg
from django.conf import settings
from django.db.utils import load_backend
from django.utils import timezone

from .connections import note_server_reachable, server_settings
from .models import MAIN_SERVER, DatabaseServer

logger = logging.getLogger(__name__)

# What a check may take beyond the connect timeout (the SELECT 1 of a server that did answer) before it counts as down.
CHECK_GRACE_SECONDS = 1.0


def connection_parameters(server_name):
    """psycopg's keyword arguments for the server's maintenance database (with its password: never log them)."""
    config = server_settings(server_name)
    return load_backend(config["ENGINE"]).DatabaseWrapper(config).get_connection_params()


def answers(parameters):
    """Does the server of these psycopg parameters accept a session now? One attempt, bounded by their
    connect_timeout; touches no database of Django's, so it may run in any thread."""
    try:
        with psycopg.connect(**parameters, autocommit=True) as connection:
            connection.execute("SELECT 1")
        return True
    except psycopg.Error as error:
        logger.warning(
            "database server at %s:%s does not answer: %s",
            parameters.get("host"),
            parameters.get("port"),
            type(error).__name__,
        )
        return False


def record_reachability(server_name, reachable):
    """On the row, for the API, the admin and placement; and in this process's memory of the server (a check
    supersedes what its connections last saw, tenants.connections.note_server_reachable)."""
    note_server_reachable(server_name, reachable)
    DatabaseServer.objects.filter(pk=server_name).update(reachable=reachable, last_checked=timezone.now())


def check_reachable(server_name):
    """Connect to the server once, now; record and return whether it answered. `main` is the catalog's own
    server: whoever runs this has just read the catalog from it."""
    if server_name == MAIN_SERVER:
        return True
    reachable = answers(connection_parameters(server_name))
    record_reachability(server_name, reachable)
    return reachable


def check_all_reachable(server_names):
    """check_reachable for several servers at once, in about the time of one connect timeout, however many are
    down: the connections are tried side by side, and one that has not answered by then counts as down. The
    catalog is read and written in the calling thread only (its transaction, its connection)."""
    results = {name: True for name in server_names if name == MAIN_SERVER}
    others = [name for name in server_names if name != MAIN_SERVER]
    if not others:
        return results
    parameters = {name: connection_parameters(name) for name in others}
    pool = ThreadPoolExecutor(max_workers=len(others), thread_name_prefix="server-check")
    try:
        futures = {name: pool.submit(answers, parameters[name]) for name in others}
        wait(futures.values(), timeout=settings.DIQUIS_SERVER_CONNECT_TIMEOUT + CHECK_GRACE_SECONDS)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    for name, future in futures.items():
        reachable = future.done() and not future.cancelled() and future.result()
        record_reachability(name, reachable)
        results[name] = reachable
    return results
