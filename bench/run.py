"""`python -m bench [--quick] [--only accept,notified,...]`: run the benchmarks, write bench/RESULTS.md.

Everything runs on the real stack (Daphne, `manage.py rqworker --with-scheduler`, PostgreSQL, Redis) in
a main database and a Redis database of the bench's own, all removed at the end (bench.sandbox).
"""

import argparse
import importlib
import logging
import os
import pickle
import resource
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from . import environment, series
from .modes import FULL, QUICK
from .report import Section, busy_processes, code_version, load_average, render, utcnow
from .report import splice as report_splice

SECTION_NAMES = [
    "accept",
    "notified",
    "burst",
    "fanout",
    "scale",
    "fleet",
    "pooling",
    "upgrades",
    "hashing",
    "web_processes",
    "tracing",
]
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
# The quick run is a smoke run: it must not overwrite the full run's figures.
QUICK_RESULTS = Path(__file__).resolve().parent.parent / "var" / "bench-quick.md"
LAST_RUN = Path(__file__).resolve().parent.parent / "var" / "bench-last-run.pickle"
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
    parser.add_argument(
        "--output", help=f"where to write the report (default {RESULTS.name}, or {QUICK_RESULTS} quick)"
    )
    parser.add_argument("--render-last", action="store_true", help="only re-render the last run's saved figures")
    parser.add_argument(
        "--splice",
        action="store_true",
        help=f"write only the sections run into {RESULTS.name}, in place of their previous figures, keeping the rest",
    )
    args = parser.parse_args(argv)
    if args.render_last:
        environment.prepare()
        output = write_report(pickle.loads(LAST_RUN.read_bytes()), args.output, splice=args.splice)
        print(f"wrote {output}")
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s bench %(message)s", stream=sys.stderr)
    mode = QUICK if args.quick else FULL
    environment.prepare()
    open_files = raise_open_files_limit()
    started, load_before, busy_before, code = utcnow(), load_average(), busy_processes(), code_version()
    sections, failed = [], []

    import django

    from .sandbox import Sandbox

    with Sandbox() as sandbox:
        django.setup()
        logger.setLevel(logging.INFO)  # Django's LOGGING (LOG_LEVEL) must not hide the bench's progress
        ctx = Context(sandbox, mode)
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        for name in names:
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
    saved = {
        "mode": mode,
        "names": names,
        "started": started,
        "finished": utcnow(),
        "load_before": load_before,
        "load_after": load_after,
        "busy_before": busy_before,
        "sections": sections,
        "cleanup": sandbox.cleanup_report,
        "results": ctx.results,
        "open_files": open_files,
        "code": code,
    }
    LAST_RUN.parent.mkdir(parents=True, exist_ok=True)
    LAST_RUN.write_bytes(pickle.dumps(saved))
    output = write_report(saved, args.output, splice=args.splice)
    logger.info("wrote %s (%s)", output, f"failed: {', '.join(failed)}" if failed else "all sections ran")
    return 1 if failed else 0


def artefact_folders(output):
    """Where the raw series (bench.series) and the charts of a report go: bench/data and bench/charts beside
    RESULTS.md; `<report>-data` and `<report>-charts` beside any other (a quick run's never replace them)."""
    if output.resolve() == RESULTS:
        return output.parent / "data", output.parent / "charts"
    return output.parent / f"{output.stem}-data", output.parent / f"{output.stem}-charts"


def save_series(saved, output):
    """The run's raw series beside `output`, and a line showing their charts in each section that has some."""
    data, charts = artefact_folders(output)
    charted = series.save(saved, data)
    charts_path = os.path.relpath(charts, output.parent)
    for name, section in zip(saved.get("names", []), saved["sections"], strict=True):
        if name in charted:
            timed = section.lines and section.lines[-1].startswith("_Section time")
            at = len(section.lines) - 1 if timed else len(section.lines)
            section.lines[at:at] = series.embed_lines(name, charts_path)
    return data, charts


def draw_charts(data, charts):
    try:
        from . import charts as drawing
    except ImportError as error:  # the figures are written already: say how to draw them later
        logger.warning("no charts (%s): pip install -r bench/requirements.txt; python -m bench.charts", error)
        return
    for path in drawing.draw_all(data, charts):
        logger.info("drew %s", path)


def write_report(saved, output=None, *, splice=False):
    """Render RESULTS.md from a run's saved figures (`--render-last` re-renders the last run); with `splice`,
    only the run's sections, into the existing file. The charted sections' raw series and charts beside it."""
    from . import method

    mode = saved["mode"]
    output = Path(output or (QUICK_RESULTS if mode.quick else RESULTS))
    folders = save_series(saved, output)
    if splice and output.exists():
        run_line = (
            f"Measured by `python -m bench{' --quick' if mode.quick else ''} --only "
            f"{','.join(saved.get('names', []))} --splice` on "
            f"{saved['started']:%Y-%m-%d %H:%M} UTC ({(saved['finished'] - saved['started']).total_seconds() / 60:.1f}"
            f" min), {saved.get('code', 'code not recorded')}; load average at the start {saved['load_before']}, "
            f"at the end {saved['load_after']}; the other sections are from the run described above."
        )
        output.write_text(report_splice(output.read_text(), saved["sections"], run_line=run_line))
        draw_charts(*folders)
        return output
    text = render(
        mode=mode,
        started=saved["started"],
        finished=saved["finished"],
        load_before=saved["load_before"],
        load_after=saved["load_after"],
        busy_before=saved["busy_before"],
        sections=saved["sections"],
        cleanup=saved["cleanup"],
        method=method.lines(mode, saved["open_files"]),
        notes=method.notes(saved["results"]),
        code=saved.get("code", "not recorded"),
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    draw_charts(*folders)
    return output
