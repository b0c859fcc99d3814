"""``ProjectionFeed``: follows the projector's checkpoint through LISTEN/NOTIFY (never on the write path).

One dedicated PostgreSQL connection LISTENs on ``config_ledger_projected`` (the projector sends
``NOTIFY config_ledger_projected, '<last_seq>'`` after each committed batch). The payload is the
new checkpoint; on (re)connect and on the poll timer, as a safety net, one statement reads it.

What it is for: queries answered by the projection (history, versions, instants, diff, lists)
wait, bounded, until the projection has reached the newest write this process acknowledged
for that service (``wait_for``), so a client reads its own writes there too. Writes never wait
for it, and current documents and SSE come from the stream (``api.follower``).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
from collections.abc import Callable
from typing import Any

from ledger.errors import LedgerError
from projector import db
from projector.db import pg_errors
from projector.schema import NOTIFY_CHANNEL

from .repository import connect

__all__ = ["ProjectionFeed"]

log = logging.getLogger("api.feed")


class ProjectionFeed:
    """The projector's checkpoint, as this process last heard it, and waiters on it."""

    def __init__(
        self,
        dsn: str,
        *,
        poll_interval: float = 1.0,
        timeout: float = 5.0,
        on_refresh: Callable[[int], None] | None = None,
    ) -> None:
        self.dsn = dsn
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.on_refresh = on_refresh
        self.live = False
        self.last_error: str | None = "not connected yet"
        self.seq = -1  # the projector checkpoint (-1 before the first read)
        self._wake = asyncio.Event()
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._counter = itertools.count()
        self._first_attempt = asyncio.Event()

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self, *, wait: float = 0.0) -> None:
        """Start following; wait up to ``wait`` seconds for the first attempt (whether it succeeds
        or not: PostgreSQL being down must not hold the API's startup)."""
        self._task = asyncio.create_task(self._run(), name="projection-feed")
        if wait > 0:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._first_attempt.wait(), wait)

    async def close(self) -> None:
        self._closing.set()
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for _, _, fut in self._waiters:  # waiters re-check the checkpoint and report the truth
            if not fut.done():
                fut.set_result(None)
        self._waiters.clear()

    # --- waiting -----------------------------------------------------------------------------

    async def wait_for(self, seq: int, timeout: float) -> bool:
        """True once the projection reflects stream sequence ``seq``; False after ``timeout``."""
        if self.seq >= seq:
            return True
        if timeout <= 0 or self._closing.is_set():
            return False
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        item = (seq, next(self._counter), fut)
        heapq.heappush(self._waiters, item)
        self._wake.set()  # read the checkpoint now rather than at the next poll
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            pass
        finally:
            if not fut.done():
                fut.cancel()
                with contextlib.suppress(ValueError):
                    self._waiters.remove(item)
                    heapq.heapify(self._waiters)
        return self.seq >= seq

    def _advance(self, checkpoint: int) -> None:
        if checkpoint != self.seq:
            if checkpoint < self.seq:
                log.warning("projection checkpoint went back (%d < %d)", checkpoint, self.seq)
            self.seq = checkpoint
            if self.on_refresh is not None:
                self.on_refresh(checkpoint)
        while self._waiters and self._waiters[0][0] <= self.seq:
            _, _, fut = heapq.heappop(self._waiters)
            if not fut.done():
                fut.set_result(None)

    # --- the loop ----------------------------------------------------------------------------

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            seq = int(payload)
        except ValueError:
            self._wake.set()  # not a checkpoint: read it
            return
        if seq > self.seq:
            self._advance(seq)

    def _on_terminated(self, _conn: object) -> None:
        self._wake.set()

    async def _read(self, conn: Any) -> None:
        with pg_errors("projection checkpoint"):
            checkpoint = await conn.fetchval("SELECT coalesce(max(last_seq), 0) FROM projector_checkpoint")
        self._advance(int(checkpoint))

    async def _run(self) -> None:
        backoff = 0.05
        while not self._closing.is_set():
            conn: Any = None
            try:
                conn = await connect(self.dsn, timeout=self.timeout)
                with pg_errors("listen"):
                    await conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
                conn.add_termination_listener(self._on_terminated)
                await self._read(conn)
                self.live, self.last_error, backoff = True, None, 0.05
                self._first_attempt.set()
                log.info("following the projection at checkpoint %d", self.seq)
                while not self._closing.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.poll_interval):  # (wait_for can swallow a cancel)
                            await self._wake.wait()
                    self._wake.clear()
                    if self._closing.is_set():
                        break
                    if conn.is_closed():
                        raise LedgerError("listener connection closed")
                    await self._read(conn)
            except (LedgerError, db.PostgresError, OSError) as exc:
                if self.live:
                    log.warning("lost the projection feed: %s", exc)
                self.last_error = str(exc)
            except Exception as exc:  # a bug: log it, keep following
                log.exception("projection feed failed; reconnecting")
                self.last_error = f"{type(exc).__name__}: {exc}"
            finally:
                self.live = False
                self._first_attempt.set()
                await db.close(conn)
            if not self._closing.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(backoff):
                        await self._closing.wait()
                backoff = min(backoff * 2, 2.0)
