"""The environment of a benchmark run, shared by the bench process and every process it starts.

The bench owns what it is given: it creates the main database named in DATABASE_URL and drops it at the
end, and drops every database whose name starts with DIQUIS_TENANT_DATABASE_PREFIX. So both names must
say "bench": a misconfigured run can never drop a real database.
"""

import os
import secrets
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent

DEFAULTS = {
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/bench_diquis",
    "REDIS_URL": "redis://127.0.0.1:6379/12",
    "DIQUIS_TENANT_DATABASE_PREFIX": "bench_t_",
    "CHANNEL_LAYER_PREFIX": "bench:asgi",
    "DEBUG": "false",
    "ALLOWED_HOSTS": "localhost,127.0.0.1",
    "DIQUIS_ROOT_EMAIL": "root@bench.test",
    "DIQUIS_ROOT_PASSWORD": "Bench-Root-Password-1!",
    "LOG_LEVEL": "WARNING",
    # Failed attempts are not expected; a short retry interval keeps a flaky one from stalling a burst.
    "DIQUIS_JOB_RETRY_INTERVALS": "1",
    "DJANGO_SETTINGS_MODULE": "bench.settings",
    # The bench creates tenants and users as fast as it can: what it measures is the server, not the budgets.
    "TENANT_CREATE_RATE": "1000000/min",
    "USER_CREATE_RATE": "1000000/min",
    # A tenant side the size of a real product's (38 models, 22 migrations): what every tenant database holds.
    "DIQUIS_TENANT_APPS": "bench.tenant_product",
}

# Keys of the Redis database that the stack writes: RQ, the channel layer, Django's cache.
CACHE_KEY_PATTERN = "*diquis:cache*"


class UnsafeConfiguration(Exception):
    pass


def prepare():
    """Fill in the defaults (a random SECRET_KEY shared by all processes) and refuse unsafe names."""
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    if "bench" not in main_database_name():
        raise UnsafeConfiguration(
            f"DATABASE_URL names {main_database_name()!r}: the bench drops its main database at the end, "
            "so its name must contain 'bench'"
        )
    if "bench" not in tenant_prefix():
        raise UnsafeConfiguration("DIQUIS_TENANT_DATABASE_PREFIX must contain 'bench' (the bench drops by prefix)")


def main_database_name():
    return urlparse(os.environ["DATABASE_URL"]).path.lstrip("/")


def tenant_prefix():
    return os.environ["DIQUIS_TENANT_DATABASE_PREFIX"]


def channel_prefix():
    return os.environ["CHANNEL_LAYER_PREFIX"]


def server_dsn(dbname="postgres"):
    """A libpq connection string to another database of the same server (for CREATE/DROP DATABASE)."""
    url = urlparse(os.environ["DATABASE_URL"])
    parts = [f"host={url.hostname or '127.0.0.1'}", f"port={url.port or 5432}", f"dbname={dbname}"]
    parts.append(f"user={url.username or 'postgres'}")
    if url.password:
        parts.append(f"password={url.password}")
    return " ".join(parts)


def child_env(**overrides):
    env = dict(os.environ)
    env.update({k: str(v) for k, v in overrides.items()})
    return env
