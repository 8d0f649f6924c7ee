"""The method section of RESULTS.md, and what the figures say should change (computed from the run)."""

import math

from .stats import Summary, fmt_ratio, ms, ratio


def lines(mode, open_files):
    return [
        f"- Mode: **{mode.name}**. Every process is real: Daphne "
        "(`daphne -b 127.0.0.1 -p PORT diquis.asgi:application`), RQ workers "
        "(`python manage.py rqworker --with-scheduler`), PostgreSQL and Redis on this machine; the load "
        "generators (asyncio: httpx, websockets) run in the bench process on the same 2 cores.",
        "- The bench makes its own main database (`manage.py migrate`), tenant databases under its own prefix, and "
        "uses a Redis database of its own; it drops all of them at the end, also on failure or Ctrl-C.",
        "- Processes run with `DJANGO_SETTINGS_MODULE=bench.settings`: the project's settings plus one bench-only URL "
        "(the synchronous baseline); `bench.settings_stock_layer` is the same with channels_redis at its defaults, "
        "`bench.settings_pbkdf2` with Django's own PASSWORD_HASHERS (PBKDF2 first, section 9).",
        "- Latencies: min / p50 (median) / p99 (nearest rank) over every sample of the repeated rounds; throughputs: "
        "min / median / max over the rounds. Comparisons are ratios of figures measured in the same run.",
        "- The machine is shared: colleagues' test suites ran during this run (see the load averages above and "
        "after each section). Absolute times are inflated by that load and vary from run to run; the ratios, "
        "measured side by side in the same minutes, are the figures to read.",
        f"- Open-files limit of the bench and its children: {open_files}.",
        "- Charts (sections 1, 2, 3, 4, 6 and 8, under their tables): drawn by `python -m bench.charts` from each "
        "section's raw series, kept beside this file (`data/<section>.json`, rewritten when the section runs or is "
        "spliced); each says the machine, commit and date of the run it shows.",
    ]


def _accept(results):
    by = results.get("accept")
    if not by or 16 not in by:
        return []
    rate16 = Summary.of(by[16][0][1]).median
    p50_16 = Summary.of(by[16][0][0]).median
    p50_1 = Summary.of(by[1][0][0]).median if 1 in by else math.nan
    out = [
        f"- **Accept latency at 16 clients** (target p50 ≤ 15 ms): a closed loop obeys Little's law, p50 ≈ clients / "
        f"throughput. One Daphne process answered {rate16:.0f} req/s at 16 clients here, so p50 ≈ 16 / {rate16:.0f} "
        f"= {ms(16 / rate16)} ms (measured {ms(p50_16)} ms). A 15 ms p50 at 16 clients needs ≥ 1,067 req/s; in one "
        "Daphne process Django runs each request's sync code on a thread of its own, but all of them under one "
        "interpreter lock, so its ceiling is 1 / (CPU per request), and the 2 cores are shared with PostgreSQL, "
        "Redis, the worker and the load generator. With one client — what a "
        f"root admin sees — the p50 is {ms(p50_1)} ms.",
    ]
    profile = results.get("accept_profile")
    if profile:
        wall, cpu, parts = profile
        shares = ", ".join(f"{label.split(' (')[0]} {ms(value)} ms" for label, value in parts.items())
        out.append(
            f"  - Done in this round (profile first): a request now takes {ms(wall)} ms in-process, {ms(cpu)} ms of "
            f"it CPU ({shares}). The hand-over to Redis was the largest part (16.4 ms of 43.2 in the previous "
            "run): django-rq built a new Redis client and pool on every `get_queue()`, so every push opened a TCP "
            "connection and redis-py 8 read its own package metadata for it; one client per process now "
            "(`jobs.redis_client.connection`). The first hand-over pushes the carrier named in the creating "
            "transaction, without re-reading the row or asking Redis first; the bearer token is decoded once "
            "(the middleware's result is reused by authentication); and the web process takes its "
            "main-database sessions from a pool (`diquis.database_pool`, Django's advice under ASGI) instead of "
            "connecting to PostgreSQL for every request and every websocket handshake (~5 ms each; the "
            "in-process profile above does not see it: Django's test client keeps its connection)."
        )
    out.append(
        "  - What is left is Django and DRF doing their work (CPU) and five round trips to PostgreSQL and one to "
        "Redis. Throughput grows with processes, one Daphne per core behind a balancer; on this box the cores are "
        "already busy, so it would not move the p50 at 16 clients by the factor of ~20 the target asks."
    )
    return out


def _sync(results):
    by = results.get("accept")
    if not by:
        return []
    out = []
    for clients, (asynchronous, synchronous) in by.items():
        if synchronous:
            a, s = Summary.of(asynchronous[0]), Summary.of(synchronous[0])
            out.append(f"{clients} client(s): {fmt_ratio(ratio(s.median, a.median))}")
    if not out:
        return []
    refused = {
        clients: sum(n for status, n in synchronous[2].items() if str(status) != "200")
        for clients, (_, synchronous) in by.items()
        if synchronous
    }
    refused_note = "".join(
        f" At {clients} clients {n} synchronous creation(s) answered 503: each holds one of the web process's "
        "pooled database sessions for the seconds it runs, and those that waited longer than the pool's wait "
        "were refused (the 202 path holds a session for milliseconds)."
        for clients, n in refused.items()
        if n
    )
    return [
        "- **Job path vs synchronous creation** (target ≥ 40×), p50 ratios: "
        + "; ".join(out)
        + ". The synchronous baseline is cheap here because a tenant database has a single table "
        "(`tenants.user`): create + migrate + hash take under a second. The ratio is that second over the accept "
        "latency above, so it moves with the accept path: 40× at one client needs a p50 of about a fortieth of "
        "the baseline's. At 16 clients the synchronous path also serialises on 2 cores, and 64 concurrent "
        "synchronous creations would each hold ~3 PostgreSQL connections (> `max_connections` = 100 with the other "
        "suites running), so that row is not run." + refused_note,
    ]


def _median(rows, key):
    return Summary.of([r[key] for r in rows if r.get(key) is not None]).median


def _notified(results):
    data = results.get("notified")
    if not data:
        return []
    steps, breakdowns = data["steps"], data["breakdowns"]
    spare, cloned, fallback = (
        breakdowns.get(k, []) for k in ("isolated, spare", "isolated, cloned", "isolated, create-and-migrate")
    )
    if not (spare and cloned and fallback):
        return []
    db, mig = "Creating database", "Applying migrations"
    overhead_keys = [
        "accept (POST → 202)",
        "queue wait + fork (RQ enqueued → work-horse started)",
        "job start (work-horse → attempt recorded)",
        "delivery (notification row → frame received)",
    ]
    overhead = sum(_median(spare, k) for k in overhead_keys)
    raw = Summary.of(steps["raw CREATE DATABASE … TEMPLATE (psql \\timing)"])
    claim = Summary.of(steps["claim a spare (ALTER DATABASE … RENAME, tenants.provisioning.spares)"])
    empty = _median(fallback, db) + _median(fallback, mig)
    return [
        "- **Time to notified, isolated**: done in this round — a database cloned in the attempt is not migrated "
        "(the template is at the head by construction; a database of unknown state is checked for pending "
        "migrations first, and `migrate` runs only when one is pending); notifications from jobs go through one "
        "event loop kept per process (`notifications.layer_from_sync`: channels_redis keeps its connections per "
        "loop and `async_to_sync` made a new loop, hence a new Redis connection, per push); the worker preloads "
        "what every work-horse loaded again (`jobs.worker.preload`); and new tenants get a **spare database** "
        f"(`tenants.provisioning.spares`) renamed in {ms(claim.median)} ms instead of a clone. What remains beside the "
        f"hash and the database step is {ms(overhead)} ms of fixed path (p50s: accept, queue and fork, job start, "
        "delivery) plus the attempt's own bookkeeping (the lock, the status, the notification row and the three "
        "progress frames); the fork per job is RQ's isolation of jobs from each other and from the worker, kept "
        "on purpose.",
        "- **Clone vs create-and-migrate** (target ≥ 5× on the database step): a spare's rename against "
        f"create-empty + migrate ({ms(empty)} ms in the worker, p50s of the two steps) meets it by far; a clone "
        "made while the tenant waits does not, and cannot on this schema: PostgreSQL 15's WAL_LOG strategy writes "
        "the whole ~7.5 MB template through the WAL (the bare statement: "
        f"{ms(raw.median)} ms p50, {ms(raw.min)} ms min, in the bench process), the same work as creating an "
        "empty database from template0, while migrating one model is cheap. The ratio is the schema's: it grows "
        "with every tenant-side model and migration. Spares run out in a burst (the default keeps 2): the rest "
        "of the burst is cloned, at the clone's cost.",
    ]


def _burst(results):
    rows = results.get("burst")
    if not rows:
        return []
    rates = {}
    for r in rows:
        if r["kind"] == "isolated":
            rates.setdefault(r["workers"], []).append(r["per_minute"])
    if not rates:
        return []
    most = max(rates)
    best = Summary.of(rates[most]).median
    per_tenant = 60 / best * most if best else math.nan
    scaling = ratio(best, Summary.of(rates[1]).median) if 1 in rates and most != 1 else None
    return [
        f"- **Burst** (target ≥ 150 isolated/min with 2 workers): {best:.0f}/min with {most} workers (median), "
        f"i.e. {per_tenant:.2f} s of one worker per tenant"
        + (f"; 2 workers gave {scaling:.2f}× the 1-worker rate" if scaling else "")
        + ". Each creation is CPU-bound on the password hash (PBKDF2, by design) plus the fork of a work-horse, "
        "Django's per-job work, the clone and the notification, all on two cores that the workers share with "
        "Daphne, PostgreSQL, the submitting clients and, on this machine, other test suites: the second worker "
        "pays only when a core is free, which is why its gain swings from run to run. More throughput needs "
        "more cores; spares do not add any in a burst (after the first two, every tenant is cloned, and the "
        "refill job competes for the same worker). RQ's worker pool adds processes, not cores, so it was not "
        "measured separately.",
    ]


def _fanout(results):
    rows = results.get("fanout")
    if not rows:
        return []
    by = {r["variant"]: r for r in rows}
    out = []
    stock = next((r for k, r in by.items() if k.startswith("stock")), None)
    default = next((r for k, r in by.items() if k == "project settings, Daphne defaults"), None)
    tuned = next((r for k, r in by.items() if "backlog" in k), None)
    if stock:
        stock_lost = sum(x["expected"] - x["received"] for x in stock["rounds"] if x["senders"] > 1)
        out.append(
            f"- **Fan-out, stock channels_redis**: {stock['idle']['closed']} idle sockets of "
            f"{stock['idle']['open']} closed by the server in {stock['idle']['seconds']} s (redis-py's 5 s read "
            "timeout against the layer's 5 s blocking read), "
            f"{stock_lost} notifications lost with several senders (capacity 100 on Daphne's inbox), and "
            f"{stock['reconnect']['accepted']}/{stock['reconnect']['clients']} clients accepted in the reconnect "
            "burst. The project's settings (socket_timeout 15, max_connections, capacity) remove the idle closes "
            "and the losses: keep them."
        )
    best = tuned or default
    if best:
        one = [x for rnd in best["rounds"] if rnd["senders"] == 1 and not rnd.get("rate") for x in rnd["latencies"]]
        paced = [rnd for rnd in best["rounds"] if rnd.get("rate")]
        if one:
            s1 = Summary.of(one)
            many = [x for rnd in best["rounds"] if rnd["senders"] > 1 for x in rnd["latencies"]]
            tail = f"; with several senders p99 {ms(Summary.of(many).p99)} ms" if many else ""
            send = min(rnd["send_seconds"] for rnd in best["rounds"] if rnd["senders"] == 1 and not rnd.get("rate"))
            sp = Summary.of([x for rnd in paced for x in rnd["latencies"]])
            paced_note = (
                f" At {paced[0]['rate']} notifications a second from one sender, p50 {ms(sp.median)} ms, p99 "
                f"{ms(sp.p99)} ms, max {ms(sp.max)} ms."
                if paced
                else ""
            )
            out.append(
                f"- **Fan-out latency**: p50 {ms(s1.median)} ms, p99 {ms(s1.p99)} ms, max {ms(s1.max)} ms with one "
                f"sender{tail}. Three causes of stalls were found by profiling Daphne (py-spy, and the collector's "
                "own callbacks) and removed. Channels 4.2+ runs `close_old_connections` on Django's one sync "
                "thread before *every* consumer message, so each push queued behind the sync work of thousands of "
                "sockets and views; the consumer dispatches without that hop (it reaches the database only "
                "through `database_sync_to_async`, which closes old connections itself). Each socket re-checked "
                "its token every ~30 s on that same thread, three queries each: 2,000 sockets kept it ~85% busy; "
                "one task per process now checks all of its sockets together in a handful of queries "
                "(`notifications.recheck`). And CPython's full collections walk every object of the process "
                "(~640,000 with 2,000 sockets open: 0.6–1.2 s each here, 22 in four minutes of delivery), every "
                "frame waiting meanwhile; the web process now freezes what start-up loaded and collects its "
                "youngest generation after 50,000 objects rather than 700 (`diquis.garbage_collection`), and a "
                "socket holds fewer objects (191 tracked, from 237: a token's socket skips the session "
                "middleware, and has no task of its own). One sender "
                f"sent 2,000 frames in {send:.1f} s at the fastest, its own `notify()` calls on the cores it shares "
                "with Daphne, Redis, PostgreSQL and the 2,000 clients (none is lost: the capacity holds them). "
                "With four senders frames queue in its inbox. At a worker's pace the tail is short; more "
                "delivery needs more Daphne processes (clients spread over them), i.e. more cores." + paced_note
            )
    if default and tuned:
        d, t = default["reconnect"], tuned["reconnect"]
        if d["accepted"] < d["clients"] and t["accepted"] == t["clients"]:
            out.append(
                f"- **Daphne flags**: with Daphne's defaults only {d['accepted']}/{d['clients']} reconnecting "
                f"clients got in (backlog 50, 5 s handshake timeout); with a backlog of 4096 and "
                f"`--websocket_connect_timeout 60` all {t['clients']} did. The documented run command (API.md, "
                "bin/run) should become `daphne -e tcp:port=$PORT:interface=127.0.0.1:backlog=4096 "
                "--websocket_connect_timeout 60 diquis.asgi:application` (and the kernel's `somaxconn` ≥ 4096)."
            )
        else:
            out.append(
                f"- **Daphne flags**: reconnect burst {d['accepted']}/{d['clients']} with Daphne's defaults, "
                f"{t['accepted']}/{t['clients']} with backlog 4096 + `--websocket_connect_timeout 60`. At this "
                "size the defaults held on this run; the flags are still the safe setting for a larger burst "
                "(every handshake is authenticated against the database one at a time)."
            )
    return out


def notes(results):
    out = []
    for part in (_accept, _sync, _notified, _burst, _fanout):
        try:
            out += part(results)
        except Exception as error:  # a note that cannot be computed must not lose the report
            out.append(f"- ({part.__name__[1:]}: note not computed: {type(error).__name__}: {error})")
    out.append(
        "- **CI**: `make bench-quick` is not run by `.ci/run`. On this 2-core machine it takes 1.5–2.5 minutes "
        "depending on the load, too close to the two-minute bound, and its figures are measurements, not "
        "pass/fail: it asserts nothing about time and exits non-zero only when a section crashes. Run it by hand "
        "after changing the stack; `make bench` for figures worth committing."
    )
    return out
