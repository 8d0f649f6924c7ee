"""Two runs of the suite on one machine, side by side, without destroying each other's state.

Everything a run keeps outside its own process is named after its *slot*, a number taken at start under a
file lock that the pytest process holds until it exits (a crashed run frees its slot with its process): the
Redis database (REDIS_URL .../<slot>), the test database (test_diquis_<slot>), the tenant databases
(test_dq<slot>_...), the channel layer prefix and the SQLite folder. pytest.ini names them with
{DIQUIS_TEST_SLOT}; any of them set in the environment wins, and DIQUIS_TEST_SLOT=<n> picks the slot itself.

A slot whose Redis database holds keys is skipped, unless a run of the suite had the slot before (its lock
file exists): the keys are then that run's leftovers, which the suite flushes before its first test. Redis
database 0 is left to `make run`.

Loaded with `-p` (pytest.ini's addopts), so that the slot is set before pytest-env applies pytest.ini's `env`
and before pytest-django reads the settings.
"""

import fcntl
import os
import re
import tempfile
from pathlib import Path

import pytest
import redis

SLOT_VARIABLE = "DIQUIS_TEST_SLOT"
SLOTS = range(1, 16)  # Redis has 16 databases by default
LOCK_DIRECTORY = Path(tempfile.gettempdir())

_held = []  # the open lock file: the lock lasts as long as this process


def lock_path(slot):
    return LOCK_DIRECTORY / f"diquis-test-slot-{slot}.lock"


def env_default(lines, name):
    """The value the `env` lines of pytest.ini give `name` (flags such as `D:` stripped), or None."""
    for line in lines:
        key, _, value = line.partition("=")
        if key.split(":")[-1].strip() == name:
            return value.strip()
    return None


def ini_default(config, name):
    return env_default(config.getini("env"), name)


def filled_in(config, template, *, keep):
    """`template` with its {NAME}s but `keep` filled in as pytest-env will: from the environment, else from
    pytest.ini (which runs after this plugin, so that the slot it sets is there to fill in)."""
    for name in set(re.findall(r"\{(\w+)\}", template)) - {keep}:
        template = template.replace(f"{{{name}}}", os.environ.get(name) or ini_default(config, name) or "")
    return template


def redis_database_is_free(url):
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
    try:
        return client.dbsize() == 0
    except redis.RedisError:
        return True  # nothing answers: nothing to destroy (the suite reports Redis down itself)
    finally:
        client.close()


def take_slot(redis_url_for):
    """Lock the first slot that no other run holds and whose Redis database (`redis_url_for(slot)`, None when
    the slot does not choose it) is free, or holds a run's leftovers."""
    for slot in SLOTS:
        path = lock_path(slot)
        used_by_a_run_before = path.exists()
        handle = open(path, "a+")  # noqa: SIM115  (kept open: closing it would release the lock)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        url = redis_url_for(slot)
        if used_by_a_run_before or url is None or redis_database_is_free(url):
            handle.truncate(0)
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            _held.append(handle)
            return slot
        handle.close()
    raise pytest.UsageError(f"no free test slot in {LOCK_DIRECTORY}/diquis-test-slot-*.lock (set {SLOT_VARIABLE})")


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config, parser, args):
    if SLOT_VARIABLE not in os.environ:
        # The Redis URL a slot gives the run, unless the environment names one (then no slot decides it).
        template = None if "REDIS_URL" in os.environ else ini_default(early_config, "REDIS_URL")
        placeholder = f"{{{SLOT_VARIABLE}}}"
        template = template and filled_in(early_config, template, keep=SLOT_VARIABLE)
        slot = take_slot(lambda slot: template.replace(placeholder, str(slot)) if template else None)
        os.environ[SLOT_VARIABLE] = str(slot)
    return (yield)


def pytest_report_header(config):
    names = ["DATABASE_URL", "REDIS_URL", "DIQUIS_TENANT_DATABASE_PREFIX", "CHANNEL_LAYER_PREFIX"]
    return f"test slot {os.environ.get(SLOT_VARIABLE)}: " + ", ".join(f"{n}={os.environ.get(n)}" for n in names)
