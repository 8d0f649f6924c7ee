"""Running one command of a section from the repo's root and timing it (standard library only: the django-tenants
side imports it too, in a process without Django)."""

import subprocess
import time

from .environment import ROOT


def timed_run(argv, *, env):
    """Wall time of `argv` with `env`; raises with the tail of its output if it fails."""
    started = time.perf_counter()
    completed = subprocess.run([str(arg) for arg in argv], cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv[1:]))} failed:\n{(completed.stdout + completed.stderr)[-3000:]}")
    return seconds
