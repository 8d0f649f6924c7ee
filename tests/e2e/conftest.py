"""The tests that start the live stack (Daphne and RQ worker processes, chromium, Node, schemathesis), and
their fixtures. Every test collected below this folder is marked `e2e`: `-m "not e2e"` runs the rest."""

from pathlib import Path

import pytest

from tests.support import live
from tests.support.fault_injection import Fault
from tests.support.tenant_databases import drop_test_tenant_databases

HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Mark the tests of this folder before `-m` deselects by marker. The hook sees every collected item, of
    every folder, hence the filter on the path (a `pytestmark` here would mark nothing: it is read from test
    modules only)."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def fault(tmp_path):
    """A `Fault` on a faults file in the test's tmp_path (pass `fault.path` as DIQUIS_FAULTS_FILE to a live
    worker); released after the test, so no step stays held."""
    fault = Fault(tmp_path)
    yield fault
    fault.release()


@pytest.fixture
def start_stack(transactional_db, tmp_path, fault):
    """Starts Daphne + one worker with the faults file (and any other settings); stops them afterwards."""
    stacks = []

    def start(**env):
        stack = live.LiveStack(tmp_path, DIQUIS_FAULTS_FILE=str(fault.path), **env)
        stacks.append(stack)
        return stack

    yield start
    for stack in stacks:
        stack.stop()
    drop_test_tenant_databases()


@pytest.fixture
def live_stack(transactional_db, tmp_path):
    """Daphne + one RQ worker, as separate processes, on the test database. Stopped after the test."""
    stack = live.LiveStack(tmp_path)
    try:
        yield stack
    finally:
        stack.stop()
        drop_test_tenant_databases()
