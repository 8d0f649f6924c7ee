"""Another commit's tree, served beside the current one so that a change is measured against the code before it,
side by side on the same machine state.

The tree is a detached git worktree under var/, run by the same virtualenv, on a main database of its own that
its own migrations make (and a tenant database prefix of its own). Both names extend the run's, so they say
"bench" as environment.prepare requires, and the sandbox's clean-up by prefix reaches its tenant databases too.
Redis is the run's (its keys are the stack's, removed with the run's). Everything is removed on exit, and on
entry when an interrupted run left it behind.
"""

import os
import subprocess
import sys
from urllib.parse import urlparse

import httpx
from psycopg import sql

from . import environment, sandbox

TREES = environment.ROOT / "var" / "bench-trees"


def _git(*args):
    completed = subprocess.run(
        ["git", *args], cwd=environment.ROOT, capture_output=True, text=True, check=True, timeout=120
    )
    return completed.stdout.strip()


def commit_before(path):
    """The commit before the one that added `path` (a file of this tree): the code without that work."""
    (added,) = _git("log", "--diff-filter=A", "--format=%H", "--", path).split()[-1:]
    return _git("rev-parse", f"{added}^")


class OtherTree:
    """The tree of `commit`, named `name` (a suffix of the run's database names: letters, digits, underscores).
    `path` is where its code is checked out, `env` what its processes need beside the run's environment."""

    def __init__(self, commit, name):
        self.commit = _git("rev-parse", "--verify", f"{commit}^{{commit}}")
        self.name = name
        self.path = TREES / name
        self.database = f"{environment.main_database_name()}_{name}"
        url = urlparse(os.environ["DATABASE_URL"])
        self.env = {
            "DATABASE_URL": url._replace(path=f"/{self.database}").geturl(),
            "DIQUIS_TENANT_DATABASE_PREFIX": f"{environment.tenant_prefix()}{name}_",
        }

    def __enter__(self):
        self._remove()
        TREES.mkdir(parents=True, exist_ok=True)
        _git("worktree", "add", "--detach", str(self.path), self.commit)
        try:
            sandbox.server_execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))
            self.manage("migrate", "--no-input", "-v0")
        except BaseException:
            self._remove()
            raise
        return self

    def __exit__(self, *exc):
        self._remove()
        return False

    def manage(self, *args):
        """`manage.py` of that tree, on its database."""
        subprocess.run(
            [sys.executable, "manage.py", *args], cwd=self.path, env=environment.child_env(**self.env), check=True
        )

    def reset(self):
        """What bench.fixtures.reset does to the run's database, by that tree's own bench.fixtures."""
        self.manage("shell", "-c", "from bench import fixtures; fixtures.reset()")

    def _remove(self):
        for name in sandbox.database_names(self.env["DIQUIS_TENANT_DATABASE_PREFIX"]):
            sandbox.drop_database(name)
        sandbox.drop_database(self.database)
        if self.path.exists():
            _git("worktree", "remove", "--force", str(self.path))
        _git("worktree", "prune")


def root_headers(web):
    """The root's bearer token, signed in over HTTP: a tree's own database has its own root user."""
    response = httpx.post(
        f"{web.url}/api/tokens",
        headers={"tenant": "root"},
        json={"email": os.environ["DIQUIS_ROOT_EMAIL"], "password": os.environ["DIQUIS_ROOT_PASSWORD"]},
        timeout=60,
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['data']['token']}"}
