"""The chaos proxy against an echo server, and against a real nats-server."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import nats
import pytest

from ops.embedded import NatsServer
from tests.support.waiting import wait_for

from .chaos_proxy import ChaosProxy

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    received: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                received.append(data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    server.received = received  # type: ignore[attr-defined]
    yield int(server.sockets[0].getsockname()[1])
    server.close()


async def roundtrip(port: int, payload: bytes, timeout: float = 2.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(payload)
        await writer.drain()
        return await asyncio.wait_for(reader.readexactly(len(payload)), timeout)
    finally:
        writer.close()


async def test_pass_forwards_both_ways(echo_port: int) -> None:
    async with ChaosProxy(echo_port) as proxy:
        assert await roundtrip(proxy.port, b"hello") == b"hello"
        big = bytes(range(256)) * 4096  # 1 MiB, several chunks
        assert await roundtrip(proxy.port, big, timeout=10) == big


async def test_delay_holds_each_chunk_back(echo_port: int) -> None:
    async with ChaosProxy(echo_port, mode="delay", delay_ms=150) as proxy:
        t0 = time.monotonic()
        assert await roundtrip(proxy.port, b"x") == b"x"
        assert time.monotonic() - t0 >= 0.29  # 150 ms each way
        proxy.set_mode("pass")
        t0 = time.monotonic()
        assert await roundtrip(proxy.port, b"y") == b"y"
        assert time.monotonic() - t0 < 0.29


async def test_blackhole_reads_but_answers_nothing_then_heals(echo_port: int) -> None:
    async with ChaosProxy(echo_port) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"a")
        assert await asyncio.wait_for(reader.readexactly(1), 2) == b"a"
        proxy.set_mode("blackhole")
        writer.write(b"lost")
        await writer.drain()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(reader.readexactly(1), 0.5)
        await wait_for(lambda: proxy.dropped_up >= 4, timeout=2, what="proxy to read the bytes")
        # A new connection is accepted (connect succeeds) but never answered.
        r2, w2 = await asyncio.open_connection("127.0.0.1", proxy.port)
        w2.write(b"z")
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(r2.readexactly(1), 0.5)
        proxy.set_mode("pass")
        # Tainted connections are reset on heal; fresh ones work.
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
            await asyncio.wait_for(reader.readexactly(1), 2)
        writer.close()
        w2.close()
        assert await roundtrip(proxy.port, b"ok") == b"ok"


async def test_drop_replies_forwards_requests_only(echo_port: int) -> None:
    async with ChaosProxy(echo_port, mode="drop_replies") as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"request")
        await writer.drain()
        await wait_for(lambda: proxy.dropped_down >= 7, timeout=2, what="the reply to be dropped")
        assert proxy.bytes_up >= 7  # the server did get the request
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(reader.readexactly(1), 0.3)
        writer.close()


async def test_reset_closes_with_rst(echo_port: int) -> None:
    async with ChaosProxy(echo_port) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"a")
        assert await asyncio.wait_for(reader.readexactly(1), 2) == b"a"
        proxy.set_mode("reset")
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(reader.read(1), 2)
            raise AssertionError("expected a reset")  # pragma: no cover
        writer.close()
        # New connections are reset too.
        r2, w2 = await asyncio.open_connection("127.0.0.1", proxy.port)
        with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
            w2.write(b"b")
            await w2.drain()
            await asyncio.wait_for(r2.readexactly(1), 2)
        w2.close()
        proxy.set_mode("pass")
        assert await roundtrip(proxy.port, b"back") == b"back"


async def test_target_down_resets_the_client() -> None:
    from ops.embedded import free_port

    async with ChaosProxy(free_port()) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
            await asyncio.wait_for(reader.readexactly(1), 2)
        writer.close()


async def test_nats_through_the_proxy_survives_a_blackhole(nats_server: NatsServer) -> None:
    async with ChaosProxy(nats_server.port) as proxy:
        reconnects: list[float] = []

        async def reconnected() -> None:
            reconnects.append(time.monotonic())

        nc = await nats.connect(proxy.nats_url(), reconnect_time_wait=0.2, max_reconnect_attempts=-1,
                                reconnected_cb=reconnected, connect_timeout=1)
        try:
            assert (await nc.request("$JS.API.INFO", b"", timeout=2)).data
            proxy.set_mode("blackhole")
            with pytest.raises(nats.errors.TimeoutError):
                await nc.request("$JS.API.INFO", b"", timeout=0.5)
            proxy.set_mode("pass")
            await wait_for(lambda: reconnects, timeout=5, what="the NATS client to reconnect")

            async def answered() -> bool:
                with contextlib.suppress(Exception):
                    return bool((await nc.request("$JS.API.INFO", b"", timeout=0.5)).data)
                return False

            await wait_for(answered, timeout=5, what="requests to flow again")
        finally:
            await nc.close()
