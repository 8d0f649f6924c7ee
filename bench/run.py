"""`python -m bench [--quick] [--only accept,notified,...]`: run the benchmarks, write bench/RESULTS.md.

Everything runs on the real stack (Daphne, `manage.py rqworker --with-scheduler`, PostgreSQL, Redis) in
a main database and a Redis database of the bench's own, all removed at the end (bench.sandbox).
"""

import argparse
import importlib
import logging
import resource
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from . import environment
from .modes import FULL, QUICK
from .report import Section, busy_processes, load_average, render, utcnow

SECTION_NAMES = ["accept", "notified", "burst", "fanout", "scale"]
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
logger = logging.getLogger("bench")


@dataclass
class Context:
    sandbox: object
    mode: object
    results: dict = field(default_factory=dict)


def raise_open_files_limit():
    """2,000 websockets need 2,000 descriptors in the client and as many in Daphne (which inherits this)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def section_module(name):
    if name not in SECTION_NAMES:
        raise SystemExit(f"unknown section {name!r}; choose from {', '.join(SECTION_NAMES)}")
    return importlib.import_module(f"bench.{name}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small runs, under two minutes")
    parser.add_argument("--only", default=",".join(SECTION_NAMES), help="comma-separated: " + ", ".join(SECTION_NAMES))
    parser.add_argument("--output", default=str(RESULTS), help="where to write the report")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s bench %(message)s", stream=sys.stderr)
    mode = QUICK if args.quick else FULL
    environment.prepare()
    open_files = raise_open_files_limit()
    started, load_before, busy_before = utcnow(), load_average(), busy_processes()
    sections, failed = [], []

    import django

    from .sandbox import Sandbox

    with Sandbox() as sandbox:
        django.setup()
        ctx = Context(sandbox, mode)
        for name in [n.strip() for n in args.only.split(",") if n.strip()]:
            logger.info("section %s (%s mode; load %s)", name, mode.name, load_average())
            began = time.monotonic()
            try:
                section = section_module(name).run(ctx)
            except Exception:
                failed.append(name)
                section = Section(f"{name}: FAILED")
                section.add("```", traceback.format_exc(), "```")
                logger.exception("section %s failed", name)
            finally:
                sandbox.stop_processes()
            section.add(f"_Section time {time.monotonic() - began:.0f} s; load average after it: {load_average()}._")
            sections.append(section)
        load_after = load_average()
    from . import method

    text = render(
        mode=mode,
        started=started,
        finished=utcnow(),
        load_before=load_before,
        load_after=load_after,
        busy_before=busy_before,
        sections=sections,
        cleanup=sandbox.cleanup_report,
        method=method.lines(mode, open_files),
        notes=method.notes(ctx.results),
    )
    Path(args.output).write_text(text)
    logger.info("wrote %s (%s)", args.output, f"failed: {', '.join(failed)}" if failed else "all sections ran")
    return 1 if failed else 0
