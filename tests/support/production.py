"""`python manage.py ...` as an operator runs it in production: a subprocess with the suite's environment."""

import os
import secrets
import subprocess
import sys

from tests.support.live import ROOT


def manage(*args, timeout=300, **env):
    """`python manage.py ...` in production mode with a strong SECRET_KEY, unless `env` says otherwise."""
    environment = {**os.environ, "DEBUG": "false", "SECRET_KEY": secrets.token_urlsafe(50), **env}
    for name, value in env.items():
        if value is None:
            environment.pop(name)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
