"""4. Notification fan-out: thousands of open websockets on one Daphne, each a different user.

For each configuration (channels_redis stock vs the project's settings; Daphne's default flags vs
the flags proposed for the run command): open every client, measure Daphne's memory per connection,
send one notification per user from 1 and then 4 sender processes (notifications.services.notify, as a
job does), then leave the sockets idle and count those the server closes, then close every client and
reconnect all of them in one burst.
"""

import asyncio
import json
import logging
import subprocess
import sys
import time
from dataclasses import dataclass

from . import environment, fixtures
from .clients import Listener, close_all, open_all
from .fanout_sender import EVENT
from .report import Section
from .stack import LOG_DIR, ROOT, Web, rss_kib
from .stats import Summary, ms

logger = logging.getLogger("bench")
OPEN_BATCH = 100
OPEN_TIMEOUT = 60
DELIVERY_GRACE = 10
# The paced round: one sender at this many notifications a second, below what one Daphne delivers here.
PACED_RATE = 250
# Proposed for the documented run command: a deep listen backlog (Twisted's default is 50) and time
# for a burst of handshakes to be authenticated (the default refuses any not accepted within 5 s).
TUNED_DAPHNE_ENDPOINT = "tcp:port={port}:interface=127.0.0.1:backlog=4096"
TUNED_DAPHNE_ARGS = ("--websocket_connect_timeout", "60")


@dataclass(frozen=True)
class Variant:
    label: str
    settings: str
    endpoint: str | None = None
    daphne_args: tuple = ()
    idle_cap: int | None = None


VARIANTS = [
    Variant("stock channels_redis, Daphne defaults", "bench.settings_stock_layer", idle_cap=60),
    Variant("project settings, Daphne defaults", "bench.settings", idle_cap=60),
    Variant(
        "project settings, Daphne backlog 4096 + connect timeout 60 s",
        "bench.settings",
        TUNED_DAPHNE_ENDPOINT,
        TUNED_DAPHNE_ARGS,
    ),
]


def _send_round(round_number, users_file, senders, settings, rate=None):
    """Start `senders` sender processes together (each at `rate` a second, or flat out); wait for them.
    Returns their summaries."""
    start_at = time.time() + 3  # every sender has booted Django by then
    env = environment.child_env(DJANGO_SETTINGS_MODULE=settings)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.fanout_sender",
                str(round_number),
                users_file,
                str(i),
                str(senders),
                str(start_at),
                str(rate or 0),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for i in range(senders)
    ]
    summaries = []
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        summaries.append(json.loads(out.strip().splitlines()[-1]) if out.strip() else {"sent": 0, "seconds": 0})
    return summaries


async def _collect(listeners, round_number, expected):
    """Wait until every expected listener has the round's frame, or no progress for DELIVERY_GRACE s."""
    last_count, last_progress = -1, time.monotonic()
    while True:
        got = [c for c in expected if any(f["data"].get("round") == round_number for _, f in c.frames_of(EVENT))]
        if len(got) == len(expected):
            break
        if len(got) != last_count:
            last_count, last_progress = len(got), time.monotonic()
        elif time.monotonic() - last_progress > DELIVERY_GRACE:
            break
        await asyncio.sleep(0.2)
    latencies = []
    for listener in expected:
        for at, frame in listener.frames_of(EVENT):
            if frame["data"].get("round") == round_number:
                latencies.append(at - frame["data"]["sentAt"])
    return latencies


async def _exercise(ctx, web, variant, tokens, users_file):
    mode = ctx.mode
    out = {"variant": variant.label}
    warm = [Listener(web.ws_url, t) for t in tokens[:20]]
    await open_all(warm, at_once=20, timeout=OPEN_TIMEOUT)
    await close_all(warm)
    await asyncio.sleep(1)
    rss_before = rss_kib(web.pid)
    listeners = [Listener(web.ws_url, t) for t in tokens]
    seconds, accepted, errors = await open_all(listeners, at_once=OPEN_BATCH, timeout=OPEN_TIMEOUT)
    out["open"] = {"seconds": seconds, "accepted": accepted, "errors": errors}
    await asyncio.sleep(2)
    out["kib_per_connection"] = (rss_kib(web.pid) - rss_before) / max(accepted, 1)
    out["rss_mib"] = rss_kib(web.pid) / 1024
    out["rounds"] = []
    plan = [(senders, None) for senders in mode.fanout_senders for _ in range(mode.fanout_rounds)]
    plan += [(1, PACED_RATE)] * mode.fanout_rounds
    for round_number, (senders, rate) in enumerate(plan, start=1):
        expected = [c for c in listeners if c.is_open]
        summaries = await asyncio.to_thread(_send_round, round_number, users_file, senders, variant.settings, rate)
        latencies = await _collect(listeners, round_number, expected)
        out["rounds"].append(
            {
                "senders": senders,
                "rate": rate,
                "expected": len(expected),
                "received": len(latencies),
                "latencies": latencies,
                "send_seconds": max(s["seconds"] for s in summaries),
                "notify_calls": [call for s in summaries for call in s.get("calls", [])],
            }
        )
    idle = min(mode.idle_seconds, variant.idle_cap or mode.idle_seconds)
    open_before = [c for c in listeners if c.is_open]
    idle_started = time.time()
    await asyncio.sleep(idle)
    out["idle"] = {
        "seconds": idle,
        "open": len(open_before),
        "closed": sum(1 for c in open_before if c.closed_at and c.closed_at >= idle_started),
    }
    await close_all(listeners)
    await asyncio.sleep(2)
    seconds, accepted, errors = await open_all(listeners, at_once=None, timeout=OPEN_TIMEOUT)
    out["reconnect"] = {"seconds": seconds, "accepted": accepted, "errors": errors, "clients": len(listeners)}
    await close_all(listeners)
    return out


def run(ctx):
    mode = ctx.mode
    section = Section(f"4. Notification fan-out: {mode.fanout_clients:,} websocket clients on one Daphne")
    fixtures.reset()
    users = fixtures.bulk_users(mode.fanout_clients)
    tokens = fixtures.tokens_for(users)
    users_file = str(LOG_DIR / "fanout-users.json")
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    with open(users_file, "w") as f:
        json.dump([str(u.pk) for u in users], f)
    results, failed = [], []
    try:
        for variant in [VARIANTS[i] for i in mode.fanout_variants]:
            web = Web(
                ctx.sandbox,
                name=f"web-fanout-{len(results)}",
                settings=variant.settings,
                endpoint=variant.endpoint,
                daphne_args=variant.daphne_args,
            )
            try:
                results.append(asyncio.run(_exercise(ctx, web, variant, tokens, users_file)))
            except Exception as error:  # one configuration failing must not hide the others' figures
                logger.exception("fan-out configuration %r failed", variant.label)
                failed.append(f"{variant.label}: {type(error).__name__}: {error}")
            finally:
                web.stop()
    finally:
        fixtures.reset()
    _report(section, mode, results)
    for line in failed:
        section.add(f"- **Configuration failed**: {line}")
    ctx.results["fanout"] = results
    return section


def _by_senders(result):
    """Rounds by how they were sent: a sender count (flat out), or `(1, rate)` for the paced sender."""
    rounds = {}
    for rnd in result["rounds"]:
        key = (rnd["senders"], rnd["rate"]) if rnd.get("rate") else rnd["senders"]
        rounds.setdefault(key, []).append(rnd)
    return rounds


def _senders_label(key):
    return f"1 at {key[1]}/s" if isinstance(key, tuple) else str(key)


def _errors(errors):
    return ", ".join(f"{k}: {v}" for k, v in sorted(errors.items())) or "none"


def _report(section, mode, results):
    n = mode.fanout_clients
    section.add(
        f"{n:,} users (one per client, root tenant, created in bulk), each with its own access token "
        f"(`tenants.tokens.issue_tokens`). Clients open {OPEN_BATCH} at a time; each round sends one notification "
        "per user from N sender processes that start together, flat out, and then from one sender at "
        f"{PACED_RATE} a second (a worker's notifications come at the pace of its jobs, far slower still); "
        "a frame's latency is its arrival time minus the "
        "`sentAt` the sender put in it just before calling `notify` (which first writes the Notification row). "
        "`lost` = clients open at the send that never got the frame. The stock configuration's idle period is "
        "capped at 60 s (enough to show what it loses; Daphne's flags play no part in it).",
        "",
    )
    rows = []
    for r in results:
        rows.append(
            [
                r["variant"],
                f"{r['open']['accepted']}/{n} in {r['open']['seconds']:.1f} s ({_errors(r['open']['errors'])})",
                f"{r['kib_per_connection']:.1f}",
                f"{r['rss_mib']:.0f}",
            ]
        )
    section.table(["configuration", "opened", "Daphne KiB per connection", "Daphne RSS MiB (open)"], rows)
    rows = []
    for r in results:
        for senders, rounds in _by_senders(r).items():
            s = Summary.of([x for rnd in rounds for x in rnd["latencies"]])
            calls = Summary.of([x for rnd in rounds for x in rnd.get("notify_calls", [])])
            rows.append(
                [
                    r["variant"],
                    _senders_label(senders),
                    len(rounds),
                    " / ".join(f"{rnd['send_seconds']:.1f}" for rnd in rounds),
                    f"{ms(s.min)} / {ms(s.median)} / {ms(s.p99)} / {ms(s.max)}",
                    f"{ms(calls.median)} / {ms(calls.p99)} / {ms(calls.max)}" if calls.count else "–",
                    " + ".join(str(rnd["expected"] - rnd["received"]) for rnd in rounds),
                ]
            )
    section.add(
        "Delivery, one notification per open client (`notify()`: the sender's own call, the row's commit and the "
        "push to Redis, part of each frame's latency):",
        "",
    )
    section.table(
        [
            "configuration",
            "senders",
            "rounds",
            "send time s (each round)",
            "latency ms min / p50 / p99 / max",
            "notify() ms p50 / p99 / max",
            "lost",
        ],
        rows,
    )
    rows = []
    for r in results:
        idle, again = r["idle"], r["reconnect"]
        rows.append(
            [
                r["variant"],
                f"{idle['closed']} of {idle['open']} in {idle['seconds']} s",
                f"{again['accepted']}/{again['clients']} in {again['seconds']:.1f} s ({_errors(again['errors'])})",
            ]
        )
    section.add("Idle sockets, and every client reconnecting at once:", "")
    section.table(["configuration", "idle sockets closed by the server", "reconnect burst accepted"], rows)
    ours = [r for r in results if r["variant"].startswith("project")]
    best = ours[-1] if ours else None
    if best:
        by_senders = _by_senders(best)
        if 1 in by_senders:
            p99 = Summary.of([x for rnd in by_senders[1] for x in rnd["latencies"]]).p99
            section.target("fan-out p99 ≤ 100 ms with one sender (flat out)", f"{ms(p99)} ms", p99 <= 0.1)
        if (1, PACED_RATE) in by_senders:
            p99 = Summary.of([x for rnd in by_senders[(1, PACED_RATE)] for x in rnd["latencies"]]).p99
            section.target(f"fan-out p99 ≤ 100 ms with one sender at {PACED_RATE}/s", f"{ms(p99)} ms", p99 <= 0.1)
        if 4 in by_senders:
            lost = sum(rnd["expected"] - rnd["received"] for rnd in by_senders[4])
            section.target("fan-out: 0 lost with four senders", f"{lost} lost", lost == 0)
        idle = best["idle"]
        section.target(f"0 idle sockets closed in {idle['seconds']} s", f"{idle['closed']} closed", idle["closed"] == 0)
        again = best["reconnect"]
        section.target(
            f"{n:,}-client reconnect burst fully accepted",
            f"{again['accepted']}/{again['clients']}",
            again["accepted"] == again["clients"],
        )
        section.target(
            "≤ 50 KiB per idle connection", f"{best['kib_per_connection']:.1f} KiB", best["kib_per_connection"] <= 50
        )
