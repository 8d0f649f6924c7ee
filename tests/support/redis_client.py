"""The suite's Redis (REDIS_URL), through the connection RQ itself uses."""

import django_rq


def redis():
    return django_rq.get_connection("default")
