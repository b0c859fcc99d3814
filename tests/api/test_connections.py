"""Slow and idle clients (no token needed) cannot hold connections open; aiohttp's own 400s are
JSON that repeats nothing of the request and are logged at INFO without a traceback.

Runs the API as ``python -m api`` serves it (``api.server.GuardedSite``) with short limits. The
measured times are printed (``-s``) for the closing note; nothing asserts a duration beyond a
generous deadline.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest

from .helpers import ADMIN, TOKENS, Stack
from .live import live_api

LIMITS = {
    "keepalive_timeout_s": 1.5,
    "header_timeout_s": 0.5,
    "body_timeout_s": 0.5,
    "max_connections_per_client": 4,
    "sse_heartbeat_s": 0.3,
}
DEADLINE = 15.0  # nothing waits longer than this for the server to act


@pytest.fixture
async def server(stack: Stack) -> AsyncIterator[tuple[str, int]]:
    async with live_api(stack, **LIMITS) as address:
        yield address


async def _read_until_closed(reader: asyncio.StreamReader) -> bytes:
    data = b""
    async with asyncio.timeout(DEADLINE):
        while chunk := await reader.read(65536):
            data += chunk
    return data


def _json_body(raw: bytes) -> dict:
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"application/problem+json" in head.lower(), head
    return orjson.loads(body)


async def _dribble(writer: asyncio.StreamWriter, data: bytes, every: float) -> None:
    """The slow client: one byte at a time (the pause is the client's behaviour under test)."""
    for i in range(len(data)):
        if writer.is_closing():
            return
        writer.write(data[i : i + 1])
        try:
            await writer.drain()
        except ConnectionError:
            return
        await asyncio.sleep(every)


async def test_a_connection_that_sends_nothing_is_closed(server) -> None:
    reader, writer = await asyncio.open_connection(*server)
    start = time.monotonic()
    assert await _read_until_closed(reader) == b""
    print(f"\nsilent connection closed after {time.monotonic() - start:.2f} s "
          f"(keepalive_timeout_s={LIMITS['keepalive_timeout_s']})")
    writer.close()


async def test_headers_dribbled_byte_by_byte_get_408(server) -> None:
    reader, writer = await asyncio.open_connection(*server)
    start = time.monotonic()
    slow = asyncio.create_task(_dribble(writer, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100, 0.1))
    raw = await _read_until_closed(reader)
    elapsed = time.monotonic() - start
    slow.cancel()
    assert raw.startswith(b"HTTP/1.1 408"), raw[:200]
    assert _json_body(raw)["error"]["details"]["rule"] == "connection.header_timeout"
    print(f"\ndribbled headers cut off after {elapsed:.2f} s (header_timeout_s={LIMITS['header_timeout_s']})")
    writer.close()


async def test_an_idle_keep_alive_connection_is_closed(server) -> None:
    reader, writer = await asyncio.open_connection(*server)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), DEADLINE)
    assert head.startswith(b"HTTP/1.1 200") and b"close" not in head.lower()
    length = int(next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(b":")[1])
    await reader.readexactly(length)
    start = time.monotonic()
    assert await _read_until_closed(reader) == b""
    print(f"\nidle keep-alive connection closed {time.monotonic() - start:.2f} s after its response")
    writer.close()


async def test_a_body_at_a_few_bytes_per_second_gets_408(server) -> None:
    reader, writer = await asyncio.open_connection(*server)
    body = b'{"a": ' + b"1" * 80 + b"}"
    head = (
        f"POST /api/v1/config/slow-body HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKENS['admin']}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    writer.write(head)
    start = time.monotonic()
    slow = asyncio.create_task(_dribble(writer, body, 0.1))
    first = await asyncio.wait_for(reader.read(1), DEADLINE)
    answered = time.monotonic() - start
    raw = first + await _read_until_closed(reader)
    closed = time.monotonic() - start
    slow.cancel()
    assert raw.startswith(b"HTTP/1.1 408"), raw[:200]
    assert _json_body(raw)["error"]["details"]["rule"] == "body.timeout"
    print(f"\nslow body answered 408 after {answered:.2f} s, connection closed after {closed:.2f} s "
          f"(body_timeout_s={LIMITS['body_timeout_s']})")
    writer.close()


async def test_sse_outlives_the_idle_timeout_with_its_heartbeat(server) -> None:
    host, port = server
    keepalives = 0
    start = time.monotonic()
    async with aiohttp.ClientSession() as session, session.get(
        f"http://{host}:{port}/api/v1/config/sse-idle/watch", headers=ADMIN
    ) as resp:
        assert resp.status == 200
        async with asyncio.timeout(DEADLINE):
            async for line in resp.content:
                keepalives += line.startswith(b": keepalive")
                if time.monotonic() - start > 3 * LIMITS["keepalive_timeout_s"]:
                    break
        assert not resp.content.at_eof()
    print(f"\nSSE open {time.monotonic() - start:.2f} s (3x the idle timeout), {keepalives} heartbeats")
    assert keepalives >= 3


async def test_connections_per_client_address_are_capped(server) -> None:
    cap = LIMITS["max_connections_per_client"]
    held = []
    for _ in range(cap):
        reader, writer = await asyncio.open_connection(*server)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")  # each one admitted and served
        await writer.drain()
        assert (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), DEADLINE)).startswith(b"HTTP/1.1 200")
        held.append((reader, writer))
    reader, writer = await asyncio.open_connection(*server)
    raw = await _read_until_closed(reader)
    assert raw.startswith(b"HTTP/1.1 429"), raw[:200]
    assert _json_body(raw)["error"]["details"]["rule"] == "connection.per_client"
    for _, w in held:
        w.close()
    writer.close()


@pytest.mark.parametrize(
    "request_head",
    [
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer SECRET" + b"S" * 9000 + b"\r\n\r\n",
        b"GET /SECRET" + b"S" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bad\x01Header: SECRET\r\n\r\n",
    ],
    ids=["header", "url", "malformed"],
)
async def test_aiohttp_own_400s_are_json_repeat_nothing_and_log_at_info(server, request_head, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    reader, writer = await asyncio.open_connection(*server)
    writer.write(request_head)
    await writer.drain()
    raw = await _read_until_closed(reader)
    writer.close()
    assert raw.split(b" ", 2)[1] == b"400", raw[:200]  # (aiohttp answers a broken request as HTTP/1.0)
    error = _json_body(raw)["error"]
    assert error["code"] == "bad_request" and error["details"]["rule"].startswith("http.")
    assert b"SECRET" not in raw
    records = [r for r in caplog.records if r.name.startswith(("api", "aiohttp"))]
    assert not [r for r in records if r.levelno >= logging.WARNING], [r.getMessage() for r in records]
    assert not [r for r in records if r.exc_info], "a client error logged a traceback"
    assert any("client error" in r.getMessage() and r.levelno == logging.INFO for r in records)
    assert all("SECRET" not in r.getMessage() for r in caplog.records)
