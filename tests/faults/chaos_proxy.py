"""A small asyncio TCP chaos proxy: listen on a free loopback port, forward to a target.

Modes, switchable at runtime with ``set_mode`` (they apply to open connections too):

- ``pass``: forward both ways.
- ``delay``: forward both ways, each chunk held back ``delay_ms`` (order kept).
- ``blackhole``: accept connections and read from both sides, forward nothing (a partition
  that leaves TCP up). New connections are accepted and read, never answered.
- ``drop_replies``: forward client→server, discard server→client (the request is served, the
  answer — e.g. a JetStream ack — is lost).
- ``reset``: close every connection with RST (SO_LINGER 0); new ones are reset at once.

A TCP stream cannot lose bytes in the middle and carry on, so a connection that had bytes
discarded (blackhole / drop_replies) is reset when the mode goes back to ``pass``/``delay``:
the peers then reconnect, as they would after a real partition.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["ChaosProxy", "Mode"]

Mode = Literal["pass", "delay", "blackhole", "drop_replies", "reset"]
_MODES = ("pass", "delay", "blackhole", "drop_replies", "reset")


@dataclass(eq=False)
class _Conn:
    client: asyncio.StreamWriter
    server: asyncio.StreamWriter | None = None
    tainted: bool = False  # bytes were discarded: the stream is no longer faithful
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


def _rst(writer: asyncio.StreamWriter) -> None:
    """Close with RST instead of FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class ChaosProxy:
    """``async with ChaosProxy(target_port) as proxy: ... proxy.port ... proxy.set_mode(...)``."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1", *, port: int = 0,
                 mode: Mode = "pass", delay_ms: float = 0.0) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self._listen_port = port
        self.mode: Mode = mode
        self.delay_ms = delay_ms
        self._server: asyncio.Server | None = None
        self._conns: set[_Conn] = set()
        self.accepted = 0
        self.bytes_up = 0  # client→server forwarded
        self.bytes_down = 0  # server→client forwarded
        self.dropped_up = 0
        self.dropped_down = 0

    @property
    def port(self) -> int:
        assert self._server is not None, "proxy not started"
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.port}"

    def nats_url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def connections(self) -> int:
        return len(self._conns)

    async def start(self) -> ChaosProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self._listen_port)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self._conns):
            self._close(conn, rst=True)
        tasks = [t for c in list(self._conns) for t in c.tasks]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
        self._server = None

    async def __aenter__(self) -> ChaosProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def set_mode(self, mode: Mode, delay_ms: float | None = None) -> None:
        if mode not in _MODES:
            raise ValueError(f"unknown proxy mode {mode!r}; expected one of {_MODES}")
        if delay_ms is not None:
            self.delay_ms = delay_ms
        self.mode = mode
        if mode == "reset":
            for conn in list(self._conns):
                self._close(conn, rst=True)
        elif mode in ("pass", "delay"):
            for conn in [c for c in self._conns if c.tainted]:
                self._close(conn, rst=True)

    def reset_all(self) -> None:
        """RST every open connection, whatever the mode."""
        for conn in list(self._conns):
            self._close(conn, rst=True)

    # --- internals ------------------------------------------------------------------------------

    def _close(self, conn: _Conn, *, rst: bool) -> None:
        for w in (conn.client, conn.server):
            if w is None:
                continue
            if rst:
                _rst(w)
            else:
                with contextlib.suppress(Exception):
                    w.close()
        self._conns.discard(conn)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        conn = _Conn(client=writer)
        if self.mode == "reset":
            _rst(writer)
            return
        self._conns.add(conn)
        try:
            up_reader: asyncio.StreamReader | None = None
            if self.mode != "blackhole":
                try:
                    up_reader, conn.server = await asyncio.open_connection(self.target_host, self.target_port)
                except OSError:
                    self._close(conn, rst=True)  # target down: the client sees a reset, as it would
                    return
            else:
                conn.tainted = True
            if conn not in self._conns:  # reset while we were connecting
                if conn.server is not None:
                    _rst(conn.server)
                return
            # A connection born in blackhole mode has no upstream: its client side is read and
            # discarded until the heal resets it (it is tainted).
            conn.tasks.append(asyncio.create_task(self._pump(conn, reader, "up")))
            if up_reader is not None:
                conn.tasks.append(asyncio.create_task(self._pump(conn, up_reader, "down")))
            await asyncio.gather(*conn.tasks, return_exceptions=True)
        finally:
            if conn in self._conns:
                self._close(conn, rst=False)

    async def _pump(self, conn: _Conn, reader: asyncio.StreamReader, direction: str) -> None:
        pending: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
        sender = asyncio.create_task(self._sender(conn, pending, direction))
        loop = asyncio.get_running_loop()
        try:
            while conn in self._conns:
                try:
                    data = await reader.read(65536)
                except (ConnectionError, OSError):
                    break
                if not data:
                    break
                mode = self.mode
                discard = (mode == "blackhole" or (mode == "drop_replies" and direction == "down")
                           or conn.server is None)
                if discard:
                    conn.tainted = True
                    if direction == "up":
                        self.dropped_up += len(data)
                    else:
                        self.dropped_down += len(data)
                    continue
                due = loop.time() + (self.delay_ms / 1000 if mode == "delay" else 0.0)
                pending.put_nowait((due, data))
        finally:
            pending.put_nowait(None)
            with contextlib.suppress(Exception):
                await sender
            if conn in self._conns:
                self._close(conn, rst=False)

    async def _sender(self, conn: _Conn, pending: asyncio.Queue[tuple[float, bytes] | None],
                      direction: str) -> None:
        loop = asyncio.get_running_loop()
        target = conn.server if direction == "up" else conn.client
        while True:
            item = await pending.get()
            if item is None or conn not in self._conns:
                return
            due, data = item
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if conn not in self._conns or target is None:
                return
            try:
                target.write(data)
                await target.drain()
            except (ConnectionError, OSError):
                return
            if direction == "up":
                self.bytes_up += len(data)
            else:
                self.bytes_down += len(data)
