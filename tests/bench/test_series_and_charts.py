"""The bench's raw series (bench.series) and their charts (bench.charts), on figures shaped like a run's: what is
kept of the samples, the lines RESULTS.md embeds surviving a splice, and a small PNG per chart."""

import datetime
import json

import pytest

from bench import run, series
from bench.clients import Answer
from bench.fleet_move import longest_refusal
from bench.modes import QUICK
from bench.report import Section, splice

STARTED = datetime.datetime(2026, 12, 4, 19, 0, tzinfo=datetime.UTC)


def saved_run(names, results, sections):
    return {
        "mode": QUICK,
        "names": names,
        "started": STARTED,
        "code": "commit abc1234",
        "results": results,
        "sections": sections,
    }


def accept_figures():
    job = [0.004 + i / 100_000 for i in range(1_000)]
    synchronous = [0.4 + i / 1_000 for i in range(8)]
    return {1: ((job, [250.0], {202: 1_000}), (synchronous, [2.0], {200: 8})), 16: ((job[:500], [400.0], {}), None)}


def test_quantiles_keep_the_extremes_and_at_most_their_number_in_order():
    samples = [((i * 7919) % 1000) / 1000 for i in range(1000)]
    kept = series.quantiles(samples, count=50)
    assert len(kept) == 50
    assert kept == sorted(kept)
    assert kept[0] == min(samples) and kept[-1] == max(samples)
    assert series.quantiles([0.3, None, 0.1]) == [0.1, 0.3]


def test_a_spliced_section_keeps_its_charts_line_and_its_series_says_what_it_was_measured_on(tmp_path):
    report = tmp_path / "RESULTS.md"
    report.write_text("# Benchmarks\n\n## 1. Accept latency\n\nold figures\n\n## What I would change\n\n- x\n")
    section = Section("1. Accept latency")
    section.add("| a | b |", "")
    section.add("_Section time 3 s; load average after it: 1.00 / 1.00 / 1.00._")
    saved = saved_run(["accept"], {"accept": accept_figures()}, [section])

    data, charts = run.save_series(saved, report)
    text = splice(report.read_text(), saved["sections"], run_line="measured now")

    line = "![CDF of the accept path's latency against the synchronous baseline](RESULTS-charts/accept-latency-cdf.png)"
    assert line in text
    assert text.index(line) < text.index("_Section time 3 s") < text.index("## What I would change")
    assert "old figures" not in text
    written = json.loads((data / "accept.json").read_text())
    assert written["commit"] == "commit abc1234" and written["date"] == "2026-12-04 19:00 UTC"
    assert written["mode"] == "quick" and "cores" in written["machine"]
    rows = {(r["path"], r["clients"]): r for r in written["rows"]}
    assert set(rows) == {("202 (job)", 1), ("200 (synchronous)", 1), ("202 (job)", 16)}
    assert rows["202 (job)", 1]["count"] == 1_000
    assert len(rows["202 (job)", 1]["quantiles"]) == series.QUANTILES
    assert charts == tmp_path / "RESULTS-charts"


def test_a_failed_section_has_no_series_and_no_charts_line(tmp_path):
    section = Section("1. accept: FAILED")
    section.add("_Section time 3 s._")
    run.save_series(saved_run(["accept"], {}, [section]), tmp_path / "RESULTS.md")
    assert not (tmp_path / "RESULTS-data").exists()
    assert section.lines == ["_Section time 3 s._"]


def test_figures_of_a_run_that_kept_no_series_are_re_rendered_without_charts(tmp_path):
    section = Section("3. Burst")
    older = {"burst": [{"kind": "isolated", "workers": 2, "count": 8, "per_minute": 100.0}]}  # no `done_at`
    run.save_series(saved_run(["burst"], older, [section]), tmp_path / "RESULTS.md")
    assert not (tmp_path / "RESULTS-data").exists()
    assert section.lines == []


def test_the_writes_of_a_move_become_runs_whose_refusal_is_the_longest_one_measured():
    began = 100.0
    statuses = [201] * 5 + [503] * 4 + [201] * 3 + ["ConnectTimeout"] + [201] * 2
    answers = [Answer(began + i * 0.5, 0.1, status) for i, status in enumerate(statuses)]
    figures = {"fleet moves": [{"label": "dump", "seconds": 7.0, "began": began, "writes": answers}]}

    runs = series.fleet_series(figures)["moves"][0]["writes"]

    assert [(accepted, writes) for _, _, accepted, writes in runs] == [
        (True, 5),
        (False, 4),
        (True, 3),
        (False, 1),
        (True, 2),
    ]
    # The chart's red span, from the first refused write sent to the next accepted one sent, is the section's
    # longest refusal but for that accepted write's own answer time.
    assert runs[2][0] - runs[1][0] == pytest.approx(longest_refusal(answers) - 0.1)
    assert runs[1][0] == pytest.approx(2.5) and runs[0][1] == pytest.approx(2.1)


def charted_results():
    rows = [
        {
            "total": 0.1 * k,
            "accept (POST → 202)": 0.005,
            "Creating database": 0.02 * k,
            "Applying migrations": None,
            "enqueued → job record": -0.001,
            "attempt failures": 0,
        }
        for k in (1, 2, 3)
    ]
    answers = [Answer(10.0 + i, 0.2, 503 if 3 <= i < 6 else 201) for i in range(10)]
    return {
        "accept": accept_figures(),
        "notified": {"breakdowns": {"shared": rows, "isolated, spare": rows}},
        "burst": [
            {
                "kind": "isolated",
                "workers": 2,
                "count": 40,
                "drain_seconds": 20.0,
                "done_at": [i / 2 for i in range(40)],
            }
        ],
        "fanout": [
            {
                "variant": "project settings",
                "rounds": [
                    {"senders": 1, "rate": None, "latencies": [0.01 + i / 10_000 for i in range(300)]},
                    {"senders": 1, "rate": 250, "latencies": [0.005 + i / 20_000 for i in range(300)]},
                ],
            }
        ],
        "fleet moves": [{"label": "pg_dump + pg_restore", "seconds": 8.0, "began": 9.0, "writes": answers}],
        "upgrades": {
            "ours": {"wall": 12.0, "timeline": {"children": 30, "finished": [0.3 * i for i in range(1, 31)]}},
            "before": {"one": 25.0, "one_applied": [0.8 * i for i in range(1, 31)]},
            "theirs": {"one_migration_seconds": 40.0, "one_migration_applied": [1.2 * i for i in range(1, 31)]},
        },
    }


def test_every_chart_is_drawn_as_a_small_png_from_the_series_written(tmp_path):
    pytest.importorskip("matplotlib", reason="the bench's own requirement (bench/requirements.txt)")
    from bench import charts

    names = list(series.CHARTS)
    sections = [Section(name) for name in names]
    data, folder = run.save_series(saved_run(names, charted_results(), sections), tmp_path / "RESULTS.md")

    drawn = charts.draw_all(data, folder)

    assert sorted(path.stem for path in drawn) == sorted(stem for c in series.CHARTS.values() for stem, _ in c)
    for path in drawn:
        content = path.read_bytes()
        assert content.startswith(b"\x89PNG"), path
        assert 5_000 < len(content) < 100_000, (path, len(content))


def test_results_md_keeps_its_series_and_charts_in_bench_data_and_bench_charts_and_a_quick_run_elsewhere():
    assert run.artefact_folders(run.RESULTS) == (run.RESULTS.parent / "data", run.RESULTS.parent / "charts")
    data, charts = run.artefact_folders(run.QUICK_RESULTS)
    assert data.parent == charts.parent == run.QUICK_RESULTS.parent
    assert {data.name, charts.name} == {"bench-quick-data", "bench-quick-charts"}


def test_a_section_the_report_lacks_is_spliced_in_its_numbered_place():
    text = "# Benchmarks\n\n## 8. Upgrades\n\nx\n\n## 10. Web processes\n\ny\n\n## What I would change\n\n- z\n"
    spliced = splice(text, [Section("9. Hashing", ["figures"])], run_line="measured now")
    assert spliced.index("## 8. Upgrades") < spliced.index("## 9. Hashing") < spliced.index("## 10. Web processes")
    last = splice(text, [Section("12. Later", ["figures"])], run_line="measured now")
    assert last.index("## 10. Web processes") < last.index("## 12. Later") < last.index("## What I would change")
