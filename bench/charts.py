"""`python -m bench.charts [--data DIR] [--out DIR]`: draw every chart whose raw series exists (bench.series).

`make bench` draws them after writing RESULTS.md (bench/data -> bench/charts; a quick run's go to var/). Each
chart is a small PNG that says in its corner the machine, the commit, the date and the mode of the run it shows.
matplotlib is the bench's own requirement (bench/requirements.txt), not the product's.
"""

import argparse
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from . import series  # noqa: E402
from .stats import percentile  # noqa: E402

HERE = Path(__file__).resolve().parent
SIZE = (8, 4.5)  # inches
TALL = (8, 5.5)  # a chart whose legend goes under it
DPI = 80  # 640 × 360 pixels: a few tens of KB each
BINS = 20  # of a burst's throughput over time, each at least MIN_BIN seconds
MIN_BIN = 2.0
ACCEPTED, REFUSED = "#198754", "#dc3545"


def _cdf(axes, quantiles, **style):
    """The empirical CDF of the order statistics (seconds), in milliseconds."""
    if not quantiles:
        return
    count = len(quantiles)
    fractions = [0.0, *((i + 1) / count for i in range(count))]
    axes.step([q * 1000 for q in (quantiles[0], *quantiles)], fractions, where="post", **style)


def _finish(figure, axes, data, title):
    axes.set_title(title, fontsize=11)
    axes.grid(True, alpha=0.3)
    figure.text(
        0.99,
        0.01,
        f"{data['machine']} · {data['commit']} · {data['date']} · {data['mode']} run",
        ha="right",
        va="bottom",
        fontsize=6.5,
        color="#666666",
    )
    figure.tight_layout(rect=(0, 0.03, 1, 1))


def accept_latency_cdf(axes, data):
    for row in data["rows"]:
        synchronous = row["path"].startswith("200")
        label = f"{row['path']}, {row['clients']} client(s), n={row['count']}"
        _cdf(axes, row["quantiles"], label=label, linestyle="--" if synchronous else "-")
    axes.set_xscale("log")
    axes.set_xlabel("latency, ms (log scale)")
    axes.set_ylabel("fraction of requests")
    axes.legend(fontsize=7, loc="lower right")
    return "Accept latency: 202 with a job against creating inside the request"


def notified_steps(axes, data):
    kinds = list(data["kinds"])
    steps = list(dict.fromkeys(step for kind in kinds for step in data["kinds"][kind]["steps"]))
    colours = plt.get_cmap("tab10")
    left = [0.0] * len(kinds)
    for index, step in enumerate(steps):
        medians = []
        for kind in kinds:
            samples = [s for s in data["kinds"][kind]["steps"].get(step, []) if s is not None]
            medians.append(percentile(samples, 0.5) * 1000 if samples else 0.0)
        axes.barh(kinds, medians, left=left, color=colours(index % 10), label=step)
        left = [a + b for a, b in zip(left, medians, strict=True)]
    totals = [percentile(data["kinds"][k]["total"], 0.5) * 1000 for k in kinds]
    axes.scatter(totals, kinds, marker="|", s=400, color="black", zorder=3, label="total (median)")
    axes.invert_yaxis()
    axes.set_xlabel("ms (median of each step; the steps' medians need not add up to the total's)")
    axes.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2)
    return "Time to notified, by kind, stacked by step"


def _rate_over_time(done_at, width):
    """(bin centres, tenants/min in each bin of `width` seconds)."""
    bins = [0] * max(1, math.ceil(max(done_at) / width))
    for t in done_at:
        bins[min(len(bins) - 1, int(t // width))] += 1
    return [(i + 0.5) * width for i in range(len(bins))], [n * 60 / width for n in bins]


def burst_throughput(axes, data):
    for number, burst in enumerate(data["bursts"], start=1):
        if not burst["done_at"]:
            continue
        width = max(MIN_BIN, max(burst["done_at"]) / BINS)
        centres, rates = _rate_over_time(burst["done_at"], width)
        label = f"#{number}: {burst['count']} {burst['kind']}, {burst['workers']} worker(s)"
        axes.step(centres, rates, where="mid", label=label)
    axes.set_xlabel("seconds since the first POST")
    axes.set_ylabel("tenants created per minute")
    axes.legend(fontsize=7)
    return "Burst: tenants per minute while the queue drains"


def fanout_latency_cdf(axes, data):
    """A colour per configuration, a line style per way of sending."""
    colours, styles = plt.get_cmap("tab10"), ("-", "--", ":", "-.")
    ways = list(dict.fromkeys(senders["senders"] for variant in data["variants"] for senders in variant["senders"]))
    for index, variant in enumerate(data["variants"]):
        for senders in variant["senders"]:
            label = f"{variant['variant']}; {senders['senders']}, n={senders['count']}"
            style = styles[ways.index(senders["senders"]) % len(styles)]
            _cdf(axes, senders["quantiles"], label=label, color=colours(index % 10), linestyle=style)
    axes.set_xscale("log")
    axes.set_xlabel("notify → frame received, ms (log scale)")
    axes.set_ylabel("fraction of frames")
    axes.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    return "Fan-out: latency of one notification per connected user"


def move_write_refusals(axes, data):
    labels = []
    for row, move in enumerate(data["moves"]):
        labels.append(move["label"])
        runs = move["writes"]
        for index, (start, end, accepted, _) in enumerate(runs):
            end = runs[index + 1][0] if index + 1 < len(runs) else end  # a run lasts until the next one is sent
            axes.broken_barh([(start, end - start)], (row - 0.35, 0.7), color=ACCEPTED if accepted else REFUSED)
        if move["seconds"] is not None:
            axes.plot([move["seconds"]] * 2, [row - 0.45, row + 0.45], color="black", linewidth=1)
    axes.set_yticks(range(len(labels)), labels)
    axes.invert_yaxis()
    axes.set_xlabel("seconds since the move's POST (black tick: the catalog no longer says Moving)")
    axes.bar([0], [0], color=ACCEPTED, label="writes answered 201")
    axes.bar([0], [0], color=REFUSED, label="writes refused")
    axes.legend(fontsize=7, loc="lower right", framealpha=0.9)
    return "Moving a tenant: the window in which its writes are refused"


def _progress(axes, run, label):
    done = run["done_at"]
    if done:
        axes.step([0, *done], range(len(done) + 1), where="post", label=f"{label}: {run['seconds']:.0f} s in all")
    elif run.get("seconds") is not None:
        axes.scatter([run["seconds"]], [0], marker="x", label=f"{label}: {run['seconds']:.0f} s (no per-tenant times)")


def upgrade_progress(axes, data):
    _progress(axes, data["ours"], "Diquis upgrade (POST /api/upgrades, parallel 4)")
    if "before" in data:
        _progress(axes, data["before"], "migrate_tenants before upgrades (--parallel 4)")
    _progress(axes, data["theirs"], "django-tenants migrate_schemas (multiprocessing)")
    axes.set_xlabel("seconds since the upgrade was started")
    axes.set_ylabel("tenant databases (schemas) at the new release")
    axes.legend(fontsize=7, loc="lower right")
    return f"One new migration over {data['tenants']} tenants"


DRAW = {
    "accept-latency-cdf": accept_latency_cdf,
    "notified-steps": notified_steps,
    "burst-throughput": burst_throughput,
    "fanout-latency-cdf": fanout_latency_cdf,
    "move-write-refusals": move_write_refusals,
    "upgrade-progress": upgrade_progress,
}


LEGEND_UNDER = ("notified-steps", "fanout-latency-cdf")


def draw(stem, data, path):
    figure, axes = plt.subplots(figsize=TALL if stem in LEGEND_UNDER else SIZE, dpi=DPI)
    try:
        _finish(figure, axes, data, DRAW[stem](axes, data))
        figure.savefig(path, dpi=DPI, metadata={"Software": None})
    finally:
        plt.close(figure)


def draw_all(data_folder, charts_folder):
    """Every chart of every section whose series is in `data_folder`, into `charts_folder`: their paths."""
    drawn = []
    for name, charts in series.CHARTS.items():
        source = Path(data_folder) / f"{name}.json"
        if not source.exists():
            continue
        data = json.loads(source.read_text())
        Path(charts_folder).mkdir(parents=True, exist_ok=True)
        for stem, _ in charts:
            path = Path(charts_folder) / f"{stem}.png"
            draw(stem, data, path)
            drawn.append(path)
    return drawn


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.charts", description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(HERE / "data"), help="the series' folder (default bench/data)")
    parser.add_argument("--out", default=str(HERE / "charts"), help="the charts' folder (default bench/charts)")
    args = parser.parse_args(argv)
    for path in draw_all(args.data, args.out):
        print(f"drew {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
