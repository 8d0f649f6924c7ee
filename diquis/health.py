"""GET /health: the database, Redis and the number of live workers (API.md, "Job monitoring")."""

from django.db import connections
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe
from rq import Worker

from jobs.redis_client import connection as redis_connection


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
    return JsonResponse(body, status=200 if healthy else 503)
