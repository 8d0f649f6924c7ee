"""`python -m tests.support.soak` (what `make soak` runs): SOAK_MINUTES (30), SOAK_SEED (random), SOAK_REPORT
(bench/SOAK.md); exit status 1 on any violation."""

import os
import signal
import sys
from pathlib import Path

from tests.support.live import ROOT

from .report import markdown
from .run import soak


def stop_on_sigterm(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")  # unwinds through System.close: every server removed


def main():
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    minutes = float(os.environ.get("SOAK_MINUTES") or 30)
    report = Path(os.environ.get("SOAK_REPORT") or ROOT / "bench" / "SOAK.md")
    result = soak(minutes=minutes, seed=os.environ.get("SOAK_SEED") or None, log_dir=ROOT / "var" / "soak-logs")
    report.write_text(markdown(result))  # each violation was printed when it was found
    print(f"soak: seed {result.seed}, {len(result.violations)} violations; {report}")
    return 1 if result.violations or result.injector_error else 0


if __name__ == "__main__":
    sys.exit(main())
