"""The fault soak of tests/support/soak, short and seeded: three minutes of mixed operations under random
crashes, outages and freezes on private servers, then every invariant; any violation fails the suite (`make soak`
runs the long one). DIQUIS_SOAK_SEED / DIQUIS_SOAK_MINUTES change the run."""

import os

import pytest

from tests.support.soak.report import markdown
from tests.support.soak.run import soak

SEED = os.environ.get("DIQUIS_SOAK_SEED", "16")
MINUTES = float(os.environ.get("DIQUIS_SOAK_MINUTES", "3"))


@pytest.mark.timeout(900)
def test_a_seeded_soak_breaks_no_invariant(tmp_path):
    # Outages of 5-20 s (the long soak's reach 60 s): a three-minute run still gets several of each fault.
    result = soak(minutes=MINUTES, seed=SEED, log_dir=tmp_path, outage=(5, 20), pause=(4, 12))
    report = markdown(result)
    print(report)
    assert result.injector_error is None, result.injector_error
    assert not result.violations, report
