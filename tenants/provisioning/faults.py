"""Fault injection for tests of failure and recovery: fail or hold a provisioning step on purpose.

Active only when settings.DIQUIS_FAULTS_FILE names a file, and only while that file exists. It holds
JSON such as {"step": "create-admin-user", "tenant": "acme", "action": "fail"} ("hold" waits while the
file exists; while it holds, `<file>.held` names the step, the process id and the thread's). Production never
sets it. A step is named by its explicit label (steps.Step.label), never by the name of the function behind it: a
function renamed must not silently disarm the tests that inject faults into its step.
"""

import json
import os
import threading
import time
from pathlib import Path

from django.conf import settings


class InjectedFault(Exception):
    pass


def _active_fault():
    path = settings.DIQUIS_FAULTS_FILE
    if not path:
        return None
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, ValueError):
        return None


def _report_held(step_label, tenant_id):
    """Tell the test where the job is held, and by which process: `<faults file>.held` (JSON)."""
    held = {"step": step_label, "tenant": tenant_id, "pid": os.getpid(), "thread": threading.get_native_id()}
    Path(f"{settings.DIQUIS_FAULTS_FILE}.held").write_text(json.dumps(held))


def check(step_label, tenant_id):
    fault = _active_fault()
    if not fault or fault.get("step") != step_label or fault.get("tenant") not in (None, tenant_id):
        return
    if fault.get("action") == "hold":
        _report_held(step_label, tenant_id)
        while _active_fault() == fault:
            time.sleep(0.1)
        return
    raise InjectedFault(fault.get("message", f"Injected failure in {step_label}"))
