"""The worker loads, before it forks its first work-horse, what every job would otherwise load again."""

import subprocess
import sys

PROBE = """
import sys
import django
django.setup()
from jobs.worker import preload
probes = ("jobs.runner", "channels_redis.core", "tenants.migrations.0001_initial")
before = [name for name in probes if name in sys.modules]
preload()
print(before, [name for name in probes if name in sys.modules], "tenants.tasks" in sys.modules)
"""


def test_preload_imports_the_runner_the_tasks_the_layer_and_the_migration_graph():
    output = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout
    loaded = "['jobs.runner', 'channels_redis.core', 'tenants.migrations.0001_initial']"
    assert output.splitlines()[-1] == f"[] {loaded} True"
