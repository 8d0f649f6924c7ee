"""The method section of RESULTS.md, and what the figures say should change."""


def lines(mode, open_files):
    return [
        f"- Mode: **{mode.name}**. Every process is real: Daphne "
        "(`daphne -b 127.0.0.1 -p PORT diquis.asgi:application`), RQ workers "
        "(`python manage.py rqworker --with-scheduler`), PostgreSQL and Redis on this machine; the load "
        "generators (asyncio: httpx, websockets) run in the bench process on the same 2 cores.",
        "- The bench makes its own main database (`manage.py migrate`), tenant databases under its own prefix, and "
        "uses a Redis database of its own; it drops all of them at the end, also on failure or Ctrl-C.",
        "- Processes run with `DJANGO_SETTINGS_MODULE=bench.settings`: the project's settings plus one bench-only URL "
        "(the synchronous baseline); `bench.settings_stock_layer` is the same with channels_redis at its defaults.",
        "- Latencies: min / p50 (median) / p99 (nearest rank) over every sample of the repeated rounds; throughputs: "
        "min / median / max over the rounds. Comparisons are ratios of figures measured in the same run.",
        f"- Open-files limit of the bench and its children: {open_files}.",
    ]


def notes(results):
    return results.get("notes", ["(nothing beyond the sections above)"])
