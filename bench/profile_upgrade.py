"""`python -m bench.profile_upgrade [--tenants N] [--py-spy FILE]`: one upgrade of section 8 alone, at a small size,
for finding where a tenant's time goes.

The same stack as section 8 (bench.upgrades): N isolated tenants, the next release's web and one worker, `POST
/api/upgrades {"parallel": 4}`, the wall time until Succeeded. Prints the upgrade's timeline (seconds after the
POST) and the wall time per tenant. With --py-spy, the worker and what it forks are sampled by py-spy meanwhile
(idle threads included: a lane waiting on PostgreSQL is where its time goes) and the collapsed stacks written to
FILE, with a summary of the lanes' time by frame printed. Not part of `python -m bench`: no RESULTS.md is written.
"""

import argparse
import collections
import json
import logging
import subprocess
import sys
import time

from . import environment

logger = logging.getLogger("bench")

# Frames of a lane's stack, and what they stand for (the first one found from the top of the stack wins).
PARTS = [
    ("connect to the tenant database", "_connect"),
    ("tenant: read django_migrations", "applied_migrations"),
    ("tenant: run the compiled plan, commit", "upgrade_database"),
    ("subject lock (take / release)", "holding"),
    ("tenant row read", "upgrade_child"),
    ("catalog: claim", "claim"),
    ("catalog: record done", "record_upgraded"),
    ("catalog: record other", "record"),
    ("lane waiting (nothing to claim yet)", "_lane"),
]


def _lane_part(stack):
    frames = stack.split(";")
    if not any("_lane" in frame for frame in frames):
        return None
    for label, function in PARTS:
        if any(frame.startswith(f"{function} ") or frame.startswith(f"{function}(") for frame in frames):
            return label
    return "other"


def summarize(path):
    """Samples of the lane threads by part, from py-spy's raw (collapsed) output."""
    parts = collections.Counter()
    for line in open(path, encoding="utf-8"):
        stack, _, count = line.rstrip("\n").rpartition(" ")
        part = _lane_part(stack)
        if part is not None:
            parts[part] += int(count)
    total = sum(parts.values()) or 1
    return {label: f"{100 * n / total:.1f}%" for label, n in parts.most_common()}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.profile_upgrade", description=__doc__)
    parser.add_argument("--tenants", type=int, default=150)
    parser.add_argument("--py-spy", dest="py_spy", help="sample the worker with py-spy into this file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s bench %(message)s", stream=sys.stderr)
    environment.prepare()

    import django

    from .sandbox import Sandbox

    with Sandbox() as sandbox:
        django.setup()
        logger.setLevel(logging.INFO)
        from . import fixtures, pooling_tenants, upgrades
        from .run import Context

        fixtures.reset()
        try:
            tokens = pooling_tenants.isolated_tokens(args.tenants, label=upgrades.LABEL)
            ctx = Context(sandbox, _SmallMode())
            recorder = _Recorder(sandbox, args.py_spy) if args.py_spy else None
            ours = upgrades.upgrade_through_the_api(ctx, tokens, on_started=recorder and recorder.start)
            if recorder:
                recorder.stop()
            print(
                json.dumps(
                    {
                        "tenants": args.tenants,
                        "status": ours["status"],
                        "wall": round(ours["wall"], 2),
                        "ms per tenant": round(1000 * ours["wall"] / args.tenants, 1),
                        "timeline": ours["timeline"],
                    },
                    indent=1,
                    default=str,
                )
            )
            if recorder:
                print(json.dumps(summarize(args.py_spy), indent=1))
        finally:
            sandbox.stop_processes()
            pooling_tenants.drop_isolated(args.tenants, label=upgrades.LABEL)
            fixtures.reset()
    return 0


class _SmallMode:
    upgrade_callers = 5
    upgrade_idle_requests = 20


class _Recorder:
    """py-spy on the worker process (the last one the sandbox started) and its work-horses."""

    def __init__(self, sandbox, path):
        self.sandbox, self.path, self.process = sandbox, path, None

    def start(self):
        worker = self.sandbox.processes[-1]
        argv = [
            "py-spy",
            "record",
            "--pid",
            str(worker.pid),
            "--subprocesses",
            "--idle",
            "--rate",
            "250",
            "--format",
            "raw",
            "--output",
            self.path,
            "--nonblocking",
        ]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)

    def stop(self):
        self.process.send_signal(2)
        self.process.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
