"""9. Password hashing: sign-in and time to notified with Argon2 first (the default) against PBKDF2 first.

Each variant runs its own Daphne and worker with its settings module (bench.settings, bench.settings_pbkdf2),
the variants alternating round after round so that the machine's noise hits both alike. A sign-in verifies the
root user's hash; its first sign-in under a variant rewrites the hash with that variant's first hasher (Django's
upgrade on check_password), so the sign-ins measured all verify a hash of the hasher measured. A shared tenant's
creation hashes its admin's password in the worker ("Creating admin user"). Beside them, in the bench process,
`make_password` alone with each hasher.
"""

import asyncio
import time

from django.conf import settings
from django.contrib.auth.hashers import make_password

from tenants.tokens import issue_tokens

from . import fixtures, notified
from .clients import closed_loop
from .report import Section
from .stack import Web, start_worker, wait_for_workers
from .stats import Summary, fmt_ratio, ms, ratio

ARGON2, PBKDF2 = "Argon2 first (the default)", "PBKDF2 first (Django's default list)"
VARIANTS = {ARGON2: ("bench.settings", "argon2"), PBKDF2: ("bench.settings_pbkdf2", "pbkdf2_sha256")}
# The sign-in throttles (10 a minute per account) would answer the measured sign-ins 429.
UNTHROTTLED = {"LOGIN_RATE_PER_ADDRESS": "1000000/min", "LOGIN_RATE_PER_EMAIL": "1000000/min"}
TENANT_KIND = ("shared", "hsh", False)
CREATE_STEP = f"{notified.ADMIN_STEP} (incl. the password hash)"


def _sign_ins(web, count, concurrency):
    body = {"email": settings.DIQUIS_ROOT_EMAIL, "password": settings.DIQUIS_ROOT_PASSWORD}
    result = asyncio.run(
        closed_loop(web.url, "/api/tokens", [body] * count, concurrency=concurrency, headers={}, expect=200)
    )
    if result.count != count:
        raise RuntimeError(f"sign-ins answered {result.statuses}")
    return result


def _one_variant(ctx, settings_module, measured):
    """Sign-ins at each client count, then shared tenants created one after another, on a stack of its own."""
    mode = ctx.mode
    web = Web(ctx.sandbox, name="web-hashing", settings=settings_module, env=UNTHROTTLED)
    try:
        start_worker(ctx.sandbox, name="worker-hashing", settings=settings_module)
        wait_for_workers(1)
        _sign_ins(web, 3, 1)  # warm-up; the first one rewrites the root's hash with this variant's hasher
        for concurrency in mode.hashing_concurrency:
            result = _sign_ins(web, mode.hashing_sign_ins, concurrency)
            measured["sign_in"][concurrency] += result.latencies
            measured["rate"][concurrency].append(result.rate)
        token, headers = issue_tokens(fixtures.root_user())["token"], fixtures.root_headers()
        asyncio.run(notified._create_and_wait(web, token, headers, [TENANT_KIND], 1))  # warm-up: the first job
        timings, _ = asyncio.run(notified._create_and_wait(web, token, headers, [TENANT_KIND], mode.hashing_tenants))
        measured["notified"] += notified._breakdown(timings[TENANT_KIND[0]])
    finally:
        ctx.sandbox.stop_processes()
        fixtures.reset()


def _hash_alone(repeats):
    """make_password with each hasher, in the bench process, interleaved."""
    samples = {label: [] for label in VARIANTS}
    for _ in range(repeats):
        for label, (_, hasher) in VARIANTS.items():
            started = time.perf_counter()
            make_password(fixtures.ADMIN_PASSWORD, hasher=hasher)
            samples[label].append(time.perf_counter() - started)
    return samples


def _compared(what, samples_of):
    """A row: p50 / p99 (ms) of each variant's samples, and PBKDF2's p50 over Argon2's."""
    summaries = {label: Summary.of(samples_of(label)) for label in VARIANTS}
    cells = [f"{ms(s.median)} / {ms(s.p99)}" for s in summaries.values()]
    return [f"{what}: ms p50 / p99", *cells, fmt_ratio(ratio(summaries[PBKDF2].median, summaries[ARGON2].median))]


def _rows(measured, hashes, concurrencies):
    rows = []
    for clients in concurrencies:
        rows.append(
            _compared(
                f"sign-in (POST /api/tokens), {clients} client(s)", lambda v, c=clients: measured[v]["sign_in"][c]
            )
        )
        rates = {label: Summary.of(measured[label]["rate"][clients]).median for label in VARIANTS}
        rows.append(
            [
                f"sign-ins per second, {clients} client(s) (median of the rounds)",
                *[f"{rate:.1f}" for rate in rates.values()],
                f"{fmt_ratio(ratio(rates[ARGON2], rates[PBKDF2]))} (Argon2 / PBKDF2)",
            ]
        )
    for what, metric in (("time to notified, shared tenant", "total"), (CREATE_STEP, CREATE_STEP)):
        rows.append(_compared(what, lambda v, metric=metric: [row[metric] for row in measured[v]["notified"]]))
    rows.append(_compared("make_password alone, in the bench process", lambda v: hashes[v]))
    return rows


def run(ctx):
    mode = ctx.mode
    section = Section("9. Password hashing: Argon2 first against PBKDF2 first")
    fixtures.reset()
    concurrencies = mode.hashing_concurrency
    measured = {
        label: {
            "sign_in": {c: [] for c in concurrencies},
            "rate": {c: [] for c in concurrencies},
            "notified": [],
        }
        for label in VARIANTS
    }
    for _ in range(mode.hashing_rounds):
        for label, (settings_module, _) in VARIANTS.items():
            _one_variant(ctx, settings_module, measured[label])
    hashes = _hash_alone(mode.hashing_repeats)
    section.add(
        f"{mode.hashing_rounds} round(s); in each, one Daphne and one worker per variant, the variants one after "
        f"the other: {mode.hashing_sign_ins} sign-ins of the root user per client count (closed loop, sign-in "
        f"throttles lifted), then {mode.hashing_tenants} shared tenants created one after another through the "
        "API, each waited for on the websocket (as in section 2). Argon2 at Django's parameters "
        "(`Argon2PasswordHasher`), PBKDF2 at Django's iterations; the last column is PBKDF2's p50 over Argon2's.",
        "",
    )
    section.table(["figure", ARGON2, PBKDF2, "PBKDF2 / Argon2"], _rows(measured, hashes, concurrencies))
    sign_in = {label: Summary.of(measured[label]["sign_in"][concurrencies[0]]).median for label in VARIANTS}
    section.target(
        f"sign-in p50 with Argon2 below PBKDF2's ({concurrencies[0]} client)",
        f"{ms(sign_in[ARGON2])} ms vs {ms(sign_in[PBKDF2])} ms",
        sign_in[ARGON2] < sign_in[PBKDF2],
    )
    ctx.results["hashing"] = {"measured": measured, "hashes": hashes}
    return section
