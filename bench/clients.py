"""Load generators: a closed-loop HTTP client pool, and many websocket clients in one event loop.

Both run in the bench process with asyncio (bench.lean_http for the closed loop, httpx and websockets for the
rest), so they share the machine's two cores with the server; the figures say so.
"""

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from .lean_http import EXCHANGE_ERRORS, Connection


@dataclass
class HttpResult:
    latencies: list = field(default_factory=list)
    statuses: dict = field(default_factory=dict)
    elapsed: float = 0.0

    @property
    def count(self):
        return len(self.latencies)

    @property
    def rate(self):
        return self.count / self.elapsed if self.elapsed else 0.0


async def closed_loop(base_url, path, bodies, *, concurrency, headers, expect):
    """`concurrency` clients, each POSTing the next body (JSON) as soon as its previous answer came back, on a
    connection of its own kept alive (bench.lean_http: the clients share the server's cores, so they spend as
    little CPU as can be).

    Returns the latency of every answer whose status is `expect`; other statuses are counted (a failed exchange
    by its exception's name).
    """
    result = HttpResult()
    pending = iter(bodies)

    async def one_client():
        connection = Connection(base_url, headers)
        try:
            for body in pending:
                payload = json.dumps(body).encode()
                started = time.perf_counter()
                try:
                    status, _ = await connection.request("POST", path, payload)
                except EXCHANGE_ERRORS as error:
                    status = type(error).__name__
                latency = time.perf_counter() - started
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if status == expect:
                    result.latencies.append(latency)
        finally:
            await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - started
    return result


async def get_loop(base_url, requests, *, concurrency):
    """GET each (path, headers) of `requests` with `concurrency` clients; latencies of the 200s."""
    result = HttpResult()
    pending = iter(requests)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:

        async def one_client():
            for path, headers in pending:
                started = time.perf_counter()
                response = await client.get(path, headers=headers)
                latency = time.perf_counter() - started
                result.statuses[response.status_code] = result.statuses.get(response.status_code, 0) + 1
                if response.status_code == 200:
                    result.latencies.append(latency)

        started = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(concurrency)))
        result.elapsed = time.perf_counter() - started
    return result


class Listener:
    """One websocket client: connects with its access token, keeps every frame (with its arrival time)
    and notes when the server closes the socket."""

    def __init__(self, ws_url, token):
        self.url = f"{ws_url}?access_token={token}"
        self.frames = []
        self.connection = None
        self.closed_at = None
        self.close_code = None
        self.error = None
        self._reader = None
        self.connected = asyncio.Event()

    async def open(self, timeout):
        self.closed_at = self.close_code = self.error = None
        self.connected.clear()
        try:
            self.connection = await connect(self.url, open_timeout=timeout, max_queue=None, close_timeout=2)
            first = json.loads(await asyncio.wait_for(self.connection.recv(), timeout))
            if first.get("event") != "Connected":
                raise RuntimeError(f"first frame was {first.get('event')}")
        except (OSError, TimeoutError, WebSocketException, RuntimeError) as error:
            # Refused handshakes (HTTP status), handshakes the server dropped, timeouts: counted by kind.
            status = f" {error.response.status_code}" if isinstance(error, InvalidStatus) else ""
            self.error = type(error).__name__ + status
            await self.close()
            return False
        self.connected.set()
        self._reader = asyncio.create_task(self._read())
        return True

    async def _read(self):
        try:
            async for raw in self.connection:
                self.frames.append((time.time(), json.loads(raw)))
        except ConnectionClosed:
            pass
        if self.connection is not None:
            self.closed_at = time.time()
            self.close_code = self.connection.close_code

    @property
    def is_open(self):
        return self.connected.is_set() and self.closed_at is None

    def frames_of(self, event):
        return [(at, frame) for at, frame in self.frames if frame.get("event") == event]

    async def close(self):
        connection, self.connection = self.connection, None
        if self._reader:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
            self._reader = None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()


async def open_all(listeners, *, at_once, timeout):
    """Open every listener, `at_once` at a time (all of them at once when `at_once` is None).
    Returns (seconds taken, how many were accepted, their errors by kind)."""
    started = time.perf_counter()
    semaphore = asyncio.Semaphore(at_once or len(listeners))

    async def opened(listener):
        async with semaphore:
            return await listener.open(timeout)

    outcomes = await asyncio.gather(*(opened(listener) for listener in listeners))
    errors = {}
    for listener in listeners:
        if listener.error:
            errors[listener.error] = errors.get(listener.error, 0) + 1
    return time.perf_counter() - started, sum(outcomes), errors


async def close_all(listeners):
    await asyncio.gather(*(listener.close() for listener in listeners))


@dataclass
class Answer:
    started: float  # time.monotonic() when sent
    seconds: float
    status: object  # the HTTP status, or the name of the client's error (no answer at all)
    messages: tuple = ()  # the envelope's messages of a refusal
    path: str = ""  # what was asked


def messages_of(response):
    """The envelope's `messages` of a refusal (none of a success)."""
    if response.status_code < 300:
        return ()
    try:
        return tuple(response.json().get("messages") or ())
    except ValueError:
        return ("(no envelope)",)


def statuses_of(answers):
    """'200: 398, 503: 2': how many answers of each status (or client error)."""
    counts = {}
    for answer in answers:
        counts[answer.status] = counts.get(answer.status, 0) + 1
    return ", ".join(f"{status}: {n}" for status, n in sorted(counts.items(), key=lambda kv: str(kv[0]))) or "none"


def messages_seen(answers):
    """Each distinct envelope message of the refusals, quoted."""
    seen = dict.fromkeys(message for answer in answers for message in answer.messages)
    return "; ".join(f"“{message}”" for message in seen) or "none"


async def get_each(base_url, requests, *, concurrency, timeout=60):
    """GET each (path, headers) of `requests` with `concurrency` clients, keeping every answer (status and
    latency), whatever its status: what a benchmark of failures needs to report."""
    answers = []
    pending = iter(requests)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout) as client:

        async def one_client():
            for path, headers in pending:
                started, messages = time.monotonic(), ()
                try:
                    response = await client.get(path, headers=headers)
                    status, messages = response.status_code, messages_of(response)
                except httpx.HTTPError as error:
                    status = type(error).__name__
                answers.append(Answer(started, time.monotonic() - started, status, messages, path))

        await asyncio.gather(*(one_client() for _ in range(concurrency)))
    return answers
