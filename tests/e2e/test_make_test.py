"""`make test` on a machine where nothing answers at the suite's addresses (bin/test, tests/support/suite_servers.py):
private PostgreSQL and Redis servers for the run, removed after it, the servers that do answer never touched; and
one line naming what to install when they cannot be started.

The "nothing answers" machine is this one, with DIQUIS_TEST_POSTGRES / DIQUIS_TEST_REDIS pointed at ports where
nothing listens, and the inner run is a small one (PYTEST_ARGS). It starts as a fresh `make test` would: without
any of the variables pytest.ini sets for this run, nor its slot.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from tests.support import suite_servers
from tests.support.ports import free_port
from tests.support.postgres_clusters import CLUSTERS_DIRECTORY
from tests.support.redis_client import redis
from tests.support.suite_servers import POSTGRES, REDIS, listens, missing_programs, servers_to_start

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(sys.executable).parent.parent
MAKE = shutil.which("make")  # found here: a test's PATH may lack what make is looked up with
SMALL_RUN = "tests/diquis/test_health.py -p no:randomly"
PRIVATE = re.compile(r"a private (PostgreSQL|Redis) for this run on (127\.0\.0\.1:\d+)")


def fresh_environment(**overrides):
    """This process's environment less what pytest.ini and the slot plugin put in it: a new user's shell."""
    suite_variables = {line.partition("=")[0].split(":")[-1].strip() for line in suite_servers.pytest_ini_env()}
    environment = {k: v for k, v in os.environ.items() if k not in suite_variables | {"DIQUIS_TEST_SLOT"}}
    return {**environment, **overrides}


def make_test(environment, pytest_args=SMALL_RUN):
    """`make test` in the checkout, on this venv (installed already: its stamp is taken as up to date)."""
    argv = [MAKE, "-o", f"{VENV}/.installed", "test", f"VENV={VENV}", f"PYTEST_ARGS={pytest_args}"]
    return subprocess.run(argv, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=240)


def postgres_address():
    """host:port of the PostgreSQL this run uses."""
    settings = connection.settings_dict
    return f"{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}"


def redis_address():
    kwargs = redis().connection_pool.connection_kwargs
    return f"{kwargs['host']}:{kwargs['port']}"


def nowhere():
    """An address where nothing listens."""
    return f"127.0.0.1:{free_port()}"


def main_servers_identity():
    """What changes when the servers this run uses restart: PostgreSQL's start time and Redis's run id."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_postmaster_start_time()")
        started = cursor.fetchone()[0]
    return started, redis().info("server")["run_id"]


def clusters():
    return set(CLUSTERS_DIRECTORY.iterdir()) if CLUSTERS_DIRECTORY.is_dir() else set()


@pytest.mark.django_db
@pytest.mark.timeout(300)
def test_make_test_starts_private_servers_when_nothing_answers_and_removes_them_after():
    before, clusters_before = main_servers_identity(), clusters()
    run = make_test(fresh_environment(**{POSTGRES: nowhere(), REDIS: nowhere()}))

    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    private = dict(PRIVATE.findall(run.stdout))
    assert set(private) == {"PostgreSQL", "Redis"}, run.stdout[:2000]
    header = re.search(r"DATABASE_URL=(\S+), REDIS_URL=(\S+),", run.stdout)
    assert f"@{private['PostgreSQL']}/" in header[1] and f"//{private['Redis']}/" in header[2]  # the suite used them
    assert re.search(r"\d+ passed", run.stdout)
    assert not listens(private["PostgreSQL"]) and not listens(private["Redis"])  # stopped
    assert clusters() == clusters_before  # and deleted
    assert main_servers_identity() == before  # the servers that answered were left alone


@pytest.mark.timeout(120)
def test_make_test_says_in_one_line_what_to_install_when_it_cannot_start_a_server(tmp_path):
    empty_path = tmp_path / "bin"
    empty_path.mkdir()  # no redis-server on PATH
    silent = nowhere()
    run = make_test(fresh_environment(PATH=str(empty_path), **{POSTGRES: postgres_address(), REDIS: silent}))

    assert run.returncode != 0
    assert "test session starts" not in run.stdout  # the suite did not start
    ours = [line for line in run.stderr.splitlines() if line.startswith("make test:")]
    assert ours == [
        f"make test: nothing listens on {silent}, and a private server needs redis-server: apt-get install redis-server"
    ]


def test_the_line_names_postgresql_too(monkeypatch, tmp_path):
    monkeypatch.setattr(suite_servers, "BIN", tmp_path)  # where initdb and pg_ctl are not
    monkeypatch.setenv("PATH", str(tmp_path))
    line = missing_programs([POSTGRES, REDIS], {POSTGRES: "127.0.0.1:1", REDIS: "127.0.0.1:2"})
    assert line == (
        f"make test: nothing listens on 127.0.0.1:1 and 127.0.0.1:2, and a private server needs {tmp_path}/initdb, "
        f"{tmp_path}/pg_ctl, redis-server: apt-get install postgresql redis-server"
    )
    assert missing_programs([], {}) is None


def test_no_server_is_started_for_a_url_the_user_gave_nor_where_one_answers():
    assert servers_to_start({POSTGRES: postgres_address(), REDIS: redis_address()}) == []
    silent = {POSTGRES: nowhere(), REDIS: nowhere()}
    assert servers_to_start(silent) == [POSTGRES, REDIS]
    assert servers_to_start({**silent, "DATABASE_URL": "postgres://elsewhere/db", "REDIS_URL": "redis://x/0"}) == []
