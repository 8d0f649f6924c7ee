"""The project's settings with a first password hasher that takes half a second of wall time whatever the machine
(it sleeps, then hashes as Argon2 does): a sign-in's hash then outlasts the main database pool's wait whenever the
session is held through it (tests/e2e/test_connections.py)."""

import time

from django.contrib.auth.hashers import Argon2PasswordHasher

from diquis.settings import *  # noqa: F403
from diquis.settings import PASSWORD_HASHERS

SLOW_HASH_SECONDS = 0.5


class SlowHasher(Argon2PasswordHasher):
    algorithm = "slow_argon2"

    def encode(self, password, salt):
        time.sleep(SLOW_HASH_SECONDS)
        return super().encode(password, salt)


PASSWORD_HASHERS = [f"{__name__}.SlowHasher", *PASSWORD_HASHERS]
