"""The raw series behind the charts (bench.charts): what a section measured, as small JSON, one file per section.

Written beside the report each time a section runs (`--splice` rewrites only the files of the sections it ran), so
that `python -m bench.charts` can draw a section's charts again at any time from its own run. A long list of samples
is kept as `QUANTILES` evenly spaced order statistics (its CDF, to the pixel); every figure is in seconds. Each file
says what it was measured on: the machine, the commit, the date and the mode (a quick run's are smoke figures).

Standard library only: the charts need matplotlib (bench/requirements.txt), the series do not.
"""

import json
import os

from .report import cpu_model

QUANTILES = 200
DIGITS = 6  # microseconds

# Each section's charts: (file name without .png, what it shows), in the order RESULTS.md embeds them.
CHARTS = {
    "accept": (("accept-latency-cdf", "CDF of the accept path's latency against the synchronous baseline"),),
    "notified": (("notified-steps", "Time to notified by kind, stacked by step"),),
    "burst": (("burst-throughput", "Tenants per minute over time during each burst"),),
    "fanout": (("fanout-latency-cdf", "CDF of the fan-out latency"),),
    "fleet": (("move-write-refusals", "Accepted and refused writes during each move"),),
    "upgrades": (("upgrade-progress", "Tenants upgraded over time, against django-tenants' run"),),
}


def _round(value):
    return None if value is None else round(value, DIGITS)


def quantiles(samples, count=QUANTILES):
    """At most `count` order statistics of `samples`, the smallest and the largest among them."""
    ordered = sorted(s for s in samples if s is not None)
    if len(ordered) > count:
        ordered = [ordered[round(i * (len(ordered) - 1) / (count - 1))] for i in range(count)]
    return [_round(s) for s in ordered]


def _latencies(samples, **labels):
    return {**labels, "count": len(samples), "quantiles": quantiles(samples)}


def accept_series(results):
    rows = []
    for clients, (asynchronous, synchronous) in results["accept"].items():
        rows.append(_latencies(asynchronous[0], path="202 (job)", clients=clients))
        if synchronous is not None:
            rows.append(_latencies(synchronous[0], path="200 (synchronous)", clients=clients))
    return {"rows": rows}


# Intervals of section 2 that are not a step of their own: the whole, a count, and a part of the accept step.
NOT_A_STEP = ("total", "attempt failures", "enqueued → job record")


def notified_series(results):
    kinds = {}
    for kind, rows in results["notified"]["breakdowns"].items():
        steps = [name for name in rows[0] if name not in NOT_A_STEP] if rows else []
        kinds[kind] = {
            "total": [_round(r["total"]) for r in rows],
            "steps": {name: [_round(r[name]) for r in rows] for name in steps},
        }
    return {"kinds": kinds}


def burst_series(results):
    keys = ("kind", "workers", "count")
    bursts = [{**{k: r[k] for k in keys}, "done_at": [_round(t) for t in r["done_at"]]} for r in results["burst"]]
    return {"bursts": bursts}


def fanout_series(results):
    variants = []
    for result in results["fanout"]:
        pooled = {}
        for rnd in result["rounds"]:
            label = f"1 sender at {rnd['rate']}/s" if rnd.get("rate") else f"{rnd['senders']} sender(s)"
            pooled.setdefault(label, []).extend(rnd["latencies"])
        variants.append(
            {"variant": result["variant"], "senders": [_latencies(v, senders=k) for k, v in pooled.items()]}
        )
    return {"variants": variants}


def _runs(answers, began, accepted=201):
    """The writes as runs of the same outcome: [from, to, accepted, writes], seconds from the move's POST."""
    runs = []
    for answer in sorted(answers, key=lambda a: a.started):
        ok = answer.status == accepted
        start, end = answer.started - began, answer.started + answer.seconds - began
        if runs and runs[-1][2] == ok:
            runs[-1][1], runs[-1][3] = _round(end), runs[-1][3] + 1
        else:
            runs.append([_round(start), _round(end), ok, 1])
    return runs


def fleet_series(results):
    moves = [
        {"label": m["label"], "seconds": _round(m["seconds"]), "writes": _runs(m["writes"], m["began"])}
        for m in results["fleet moves"]
    ]
    return {"moves": moves}


def upgrades_series(results):
    figures = results["upgrades"]
    ours, before, theirs = figures["ours"], figures["before"], figures["theirs"]
    return {
        "tenants": ours["timeline"]["children"],
        "ours": {"seconds": _round(ours["wall"]), "done_at": [_round(t) for t in ours["timeline"]["finished"]]},
        "before": {"seconds": _round(before["one"]), "done_at": [_round(t) for t in before.get("one_applied", [])]},
        "theirs": {
            "seconds": _round(theirs.get("one_migration_seconds")),
            "done_at": [_round(t) for t in theirs.get("one_migration_applied", [])],
            "error": theirs.get("error"),
        },
    }


# Section name (bench.run.SECTION_NAMES) -> (the key of its figures in ctx.results, what makes its series).
SERIES = {
    "accept": ("accept", accept_series),
    "notified": ("notified", notified_series),
    "burst": ("burst", burst_series),
    "fanout": ("fanout", fanout_series),
    "fleet": ("fleet moves", fleet_series),
    "upgrades": ("upgrades", upgrades_series),
}


def header(saved):
    code = saved.get("code", "code not recorded")
    commit = code.split(",", 1)[0] + (" + uncommitted changes" if "uncommitted" in code else "")
    return {
        "machine": f"{cpu_model()}, {os.cpu_count()} cores",
        "commit": commit,
        "date": f"{saved['started']:%Y-%m-%d %H:%M} UTC",
        "mode": saved["mode"].name,
    }


def save(saved, directory):
    """`<directory>/<section>.json` for each section of the run whose figures are there; their names."""
    written = []
    for name in saved.get("names", []):
        key, series_of = SERIES.get(name, (None, None))
        if key not in saved["results"]:
            continue  # not a charted section, or it failed
        try:
            figures = series_of(saved["results"])
        except KeyError:
            continue  # figures saved by a bench that kept no series (`--render-last` of an older run)
        directory.mkdir(parents=True, exist_ok=True)
        data = {"section": name, **header(saved), **figures}
        (directory / f"{name}.json").write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n")
        written.append(name)
    return written


def embed_lines(name, charts_path):
    """The Markdown that shows the section's charts, `charts_path` the charts' folder relative to the report."""
    return [" ".join(f"![{alt}]({charts_path}/{stem}.png)" for stem, alt in CHARTS.get(name, ())), ""]
