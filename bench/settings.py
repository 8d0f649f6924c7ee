"""The project's settings, plus the bench-only URL of the synchronous baseline (bench.urls)."""

from diquis.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
