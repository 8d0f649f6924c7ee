"""A next release whose new migration runs Python (RunPython): an upgrade cannot reduce it to SQL once for every
tenant, and runs Django's full executor for each instead (tenants.provisioning.upgrades)."""

from pathlib import Path

__path__.append(str(Path(__file__).resolve().parent.parent / "migrations"))
