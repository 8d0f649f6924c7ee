"""The architecture's contracts (.importlinter) hold, and would fail on a backward arrow or a cycle."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("diquis", "tenants", "jobs", "notifications")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def verdict(output, contract):
    """KEPT or BROKEN: the word that follows the contract's name in lint-imports' summary."""
    after = output[output.index(contract) :]
    return min(("KEPT", "BROKEN"), key=lambda word: after.find(word) if word in after else len(after))


def lint_imports(tree):
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=tree, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def tree(tmp_path):
    """A copy of the project's packages and contracts, to break on purpose."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "static"))
    shutil.copy(ROOT / ".importlinter", tmp_path)
    return tmp_path


def test_the_project_keeps_every_contract(tree):
    result = lint_imports(tree)
    assert result.returncode == 0, result.stdout
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("jobs/backward.py", "import tenants.models", "jobs and notifications are infrastructure"),
        ("notifications/backward.py", "from tenants import selectors", "jobs and notifications are infrastructure"),
        ("tenants/provisioning/backward.py", "import rest_framework", "The domain imports neither DRF"),
        ("tenants/backward.py", "import diquis.urls", "diquis imports the apps, never the other way"),
        ("tenants/provisioning/stores/backward.py", "from tenants.provisioning import steps", "No import cycles"),
    ],
)
def test_a_backward_import_breaks_a_contract(tree, module, line, contract):
    (tree / module).write_text(f"{line}  # added by the test\n")
    result = lint_imports(tree)
    assert result.returncode != 0
    assert verdict(result.stdout, contract) == "BROKEN", result.stdout
