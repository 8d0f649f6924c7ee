"""diquis.garbage_collection: the web process freezes what start-up loaded and collects its youngest
generation less often (the fan-out's figures: bench/RESULTS.md, section 4)."""

import json
import subprocess
import sys

from diquis.garbage_collection import YOUNG_THRESHOLD
from tests.support.live import stack_env

PROBE = "import gc, json, diquis.asgi; print(json.dumps([gc.get_threshold(), gc.get_freeze_count()]))"


def test_the_web_application_loads_with_start_up_frozen_and_the_young_generation_collected_less_often():
    ran = subprocess.run([sys.executable, "-c", PROBE], env=stack_env(), capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    (young, middle, oldest), frozen = json.loads(ran.stdout.strip().splitlines()[-1])
    assert young == YOUNG_THRESHOLD > 700  # CPython's default is 700
    assert (middle, oldest) == (10, 10)  # the older generations keep CPython's defaults
    assert frozen > 50_000  # Django, the apps and the URLconf: far more than a bare interpreter's
