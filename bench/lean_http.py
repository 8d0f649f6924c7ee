"""A keep-alive HTTP/1.1 client of a few lines, for the closed loops that measure the server's throughput.

The load generators run on the same two cores as the server, so every millisecond of CPU a client spends on a
request is one the server does not get: with httpx, the bench's clients cost 2.4 ms of CPU per request
(section 10's CPU budget), an eighth of all the machine spent on it, enough to cap what a second web process
can add. This client spends a tenth of that: it writes the request in one buffer and reads only the status,
the framing headers and the body's bytes. It speaks just what the bench sends to Daphne (one request at a
time per connection, Content-Length or chunked answers, `Connection: close` honoured); it is no HTTP client
for anything else, which is why it is not a library's: none is lighter than httpx and aiohttp, and both parse
far more than this needs.
"""

import asyncio
from urllib.parse import urlsplit


class ProtocolError(Exception):
    """The server's answer is not HTTP/1.1 as this client reads it."""


# What a failed exchange raises (TimeoutError is an OSError; ValueError: a status or length that is no number).
EXCHANGE_ERRORS = (OSError, asyncio.IncompleteReadError, ProtocolError, ValueError)


class Connection:
    """One connection to `base_url`, opened on first use and again after the server closed it."""

    def __init__(self, base_url, headers=None, *, timeout=300):
        url = urlsplit(base_url)
        self.timeout = timeout  # seconds for one exchange: a server that stops answering fails the request
        self.host, self.port = url.hostname, url.port or 80
        fixed = {"Host": url.netloc, **(headers or {})}
        self._fixed = "".join(f"{name}: {value}\r\n" for name, value in fixed.items())
        self._reader = self._writer = None

    async def request(self, method, path, body=b"", content_type="application/json"):
        """Send one request; returns (status, body bytes). Raises one of EXCHANGE_ERRORS when the exchange fails
        (the connection is closed then: the next request opens a new one)."""
        if self._writer is None:
            async with asyncio.timeout(self.timeout):
                self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        head = f"{method} {path} HTTP/1.1\r\n{self._fixed}"
        if body:
            head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        try:
            async with asyncio.timeout(self.timeout):  # raises TimeoutError, an OSError, inside the try
                self._writer.write(head.encode("latin-1") + b"\r\n" + body)
                status, content, close = await self._answer()
        except EXCHANGE_ERRORS:
            await self.close()
            raise
        if close:
            await self.close()
        return status, content

    async def _answer(self):
        lines = (await self._reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        if not version.startswith("HTTP/1."):
            raise ProtocolError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
        status = int(rest[:3])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            content = await self._chunks()
        else:
            content = await self._reader.readexactly(int(headers.get("content-length", "0")))
        return status, content, headers.get("connection", "").lower() == "close"

    async def _chunks(self):
        parts = []
        while size := int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16):
            parts.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)
        await self._reader.readuntil(b"\r\n")  # the end of the (empty) trailer
        return b"".join(parts)

    @property
    def client_port(self):
        """The local port of the open connection (None when closed): which server process holds it is read from
        /proc by the tests."""
        return None if self._writer is None else self._writer.get_extra_info("sockname")[1]

    async def close(self):
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass
