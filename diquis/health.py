"""GET /health: the database, Redis, the number of live workers (API.md, "Job monitoring") and each database
server of the fleet (API.md, "Database servers").

Only the main database and Redis decide the status: a tenant database server that is down costs its own tenants
their 503s, not the whole service its health. The servers are tried side by side with their connect timeout
(tenants.servers.check_all_reachable), so the answer takes about one timeout at most, however many are down.
"""

from django.db import connections
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe
from rq import Worker

from jobs.redis_client import connection as redis_connection
from tenants.models import MAIN_SERVER, DatabaseServer
from tenants.servers import check_all_reachable


@csrf_exempt  # it changes nothing; without this, CSRF would answer other methods 403 before require_safe's 405
@require_safe
def health(request):
    body, healthy = {}, True
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
        body["database"] = "ok"
    except Exception:
        body["database"], healthy = "down", False
    try:
        connection = redis_connection()
        connection.ping()
        body["redis"] = "ok"
        body["workers"] = Worker.count(connection=connection)
    except Exception:
        body["redis"], healthy = "down", False
        body["workers"] = 0
    body["databaseServers"] = database_servers(main_answers=body["database"] == "ok")
    return JsonResponse(body, status=200 if healthy else 503)


def database_servers(*, main_answers):
    """{"main": "ok", "pg-2": "down", ...}: `main` is the main database's server; the others' list is in it."""
    if not main_answers:
        return {MAIN_SERVER: "down"}
    try:
        names = list(DatabaseServer.objects.order_by("created_on", "name").values_list("name", flat=True))
        answered = check_all_reachable([MAIN_SERVER, *(name for name in names if name != MAIN_SERVER)])
    except Exception:
        return {MAIN_SERVER: "ok"}
    return {name: "ok" if reachable else "down" for name, reachable in answered.items()}
