"""bench.lean_http against a server that answers as Daphne may: a Content-Length body, a chunked one, a
`Connection: close` (the next request opens a new connection), and one that never answers."""

import asyncio

import pytest

from bench.clients import closed_loop
from bench.lean_http import Connection

ANSWERS = {
    "/length": b'HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}',
    "/chunked": b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{"ok\r\n7;x=y\r\n":true}\r\n0\r\n\r\n',
    "/close": b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 2\r\n\r\nno",
}


async def serve(seen):
    """A server that answers each request by its path; `seen`: (connection number, method, path, body, Host
    header) of each."""
    connections = 0

    async def handle(reader, writer):
        nonlocal connections
        connections += 1
        number = connections
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
                method, path, _ = head[0].split(" ")
                headers = dict(line.split(": ", 1) for line in head[1:] if line)
                body = await reader.readexactly(int(headers.get("Content-Length", "0")))
                seen.append((number, method, path, body, headers["Host"], headers.get("Authorization")))
                if path == "/silent":
                    await asyncio.sleep(30)
                writer.write(ANSWERS[path])
                await writer.drain()
                if path == "/close":
                    break
        except asyncio.IncompleteReadError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


def test_answers_framed_by_length_chunks_or_close_are_read_whole_and_the_connection_kept_or_reopened():
    async def scenario():
        seen = []
        server, url = await serve(seen)
        connection = Connection(url, {"Authorization": "Bearer t"})
        try:
            answers = [
                await connection.request("POST", "/length", b'{"id":"a"}'),
                await connection.request("GET", "/chunked"),
                await connection.request("POST", "/close", b"{}"),
                await connection.request("POST", "/length", b"{}"),
            ]
        finally:
            await connection.close()
            server.close()
        return seen, answers, url

    seen, answers, url = asyncio.run(scenario())
    assert answers == [(202, b'{"ok":true}'), (200, b'{"ok":true}'), (400, b"no"), (202, b'{"ok":true}')]
    host = url.removeprefix("http://")
    assert seen == [
        (1, "POST", "/length", b'{"id":"a"}', host, "Bearer t"),
        (1, "GET", "/chunked", b"", host, "Bearer t"),
        (1, "POST", "/close", b"{}", host, "Bearer t"),
        (2, "POST", "/length", b"{}", host, "Bearer t"),  # a new connection after the server's close
    ]


def test_a_server_that_never_answers_fails_the_request_within_the_timeout():
    async def scenario():
        server, url = await serve([])
        connection = Connection(url, timeout=0.3)
        try:
            with pytest.raises(TimeoutError):
                await connection.request("POST", "/silent", b"{}")
            return await connection.request("POST", "/length", b"{}")  # a new connection
        finally:
            await connection.close()
            server.close()

    assert asyncio.run(scenario()) == (202, b'{"ok":true}')


def test_the_closed_loop_counts_each_status_and_times_the_expected_ones():
    async def scenario():
        seen = []
        server, url = await serve(seen)
        try:
            bodies = [{"n": n} for n in range(6)]
            ok = await closed_loop(url, "/length", bodies, concurrency=3, headers={}, expect=202)
            refused = await closed_loop(url, "/close", bodies[:2], concurrency=2, headers={}, expect=202)
        finally:
            server.close()
        return seen, ok, refused

    seen, ok, refused = asyncio.run(scenario())
    assert (ok.count, ok.statuses, refused.count, refused.statuses) == (6, {202: 6}, 0, {400: 2})
    assert sorted(body for _, _, path, body, _, _ in seen if path == "/length") == sorted(
        f'{{"n": {n}}}'.encode() for n in range(6)
    )
    assert len({number for number, _, path, *_ in seen if path == "/length"}) == 3  # one connection per client
