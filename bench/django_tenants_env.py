"""The venv of section 8's django-tenants side: var/bench-venvs/django-tenants, made once and kept.

django-tenants is not one of the project's requirements (it would replace the routing the product is built on), so
it gets a venv of its own: `python3.11 -m venv`, then django-tenants 4.0.1 with the Django and psycopg of the main
venv, so that both sides of the comparison migrate the same app with the same Django and the same driver. A marker
file in the venv records the pins it was made with: a later run with the same pins reuses it, one with other pins
(the main venv upgraded Django, say) makes it again.
"""

import json
import logging
import shutil
import subprocess
from importlib.metadata import version

from .environment import ROOT

logger = logging.getLogger("bench")

VENV = ROOT / "var" / "bench-venvs" / "django-tenants"
MARKER = VENV / ".bench-pins.json"
DJANGO_TENANTS_VERSION = "4.0.1"
PYTHON = "python3.11"
VERSIONS_OF = ("django-tenants", "Django")  # reported with the figures


def pins():
    """The requirements of the venv, the main venv's Django and psycopg included."""
    return [
        f"Django=={version('Django')}",
        f"django-tenants=={DJANGO_TENANTS_VERSION}",
        f"psycopg[binary]=={version('psycopg')}",
    ]


def python():
    """The venv's interpreter (it may not exist yet: `ensure()` makes it)."""
    return VENV / "bin" / "python"


def _run(argv):
    completed = subprocess.run([str(part) for part in argv], capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} failed:\n{(completed.stdout + completed.stderr)[-3000:]}")
    return completed.stdout


def installed_versions():
    """{"django-tenants": ..., "Django": ...} as the venv has them (it must exist)."""
    code = "import json, sys, importlib.metadata as m; print(json.dumps({p: m.version(p) for p in sys.argv[1:]}))"
    return json.loads(_run([python(), "-c", code, *VERSIONS_OF]))


def _is_ready(wanted):
    try:
        return python().exists() and json.loads(MARKER.read_text()) == wanted
    except (OSError, ValueError):
        return False


def ensure():
    """The venv's python, the venv made (or made again) first unless its marker says it has these pins."""
    wanted = pins()
    if _is_ready(wanted):
        return python()
    logger.info("django-tenants: making the venv %s (%s)", VENV.relative_to(ROOT), ", ".join(wanted))
    shutil.rmtree(VENV, ignore_errors=True)
    VENV.parent.mkdir(parents=True, exist_ok=True)
    _run([PYTHON, "-m", "venv", VENV])
    _run([python(), "-m", "pip", "install", "--quiet", *wanted])
    MARKER.write_text(json.dumps(wanted))
    return python()


if __name__ == "__main__":
    print(ensure())
