"""``ProjectionFeed``: follows the projector through LISTEN/NOTIFY and keeps the cache current.

One dedicated PostgreSQL connection LISTENs on ``config_ledger_projected`` (the projector sends
``NOTIFY config_ledger_projected, '<last_seq>'`` after each committed batch). A notification, or
the poll timer as a safety net, triggers a refresh: one statement reads the checkpoint and the
``config_current`` rows changed since the cache's checkpoint, in one snapshot. Then:

- the cache moves to that checkpoint (``ConfigCache.apply``);
- writers waiting for their stream sequence to be projected wake up (``wait_for``);
- SSE watchers of the services that changed wake up (``subscribe``).

While the connection is down ``live`` is False and readers go to PostgreSQL through the pool
(or to the stream); the loop reconnects with backoff and catches up incrementally.
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

from .cache import ConfigCache
from .repository import changed_since, connect

__all__ = ["ProjectionFeed"]

log = logging.getLogger("api.feed")


class ProjectionFeed:
    """The cache's writer, the write path's waiter and the SSE fan-out, on one connection."""

    def __init__(
        self,
        dsn: str,
        cache: ConfigCache,
        *,
        poll_interval: float = 1.0,
        timeout: float = 5.0,
        on_refresh: Callable[[int], None] | None = None,
    ) -> None:
        self.dsn = dsn
        self.cache = cache
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.on_refresh = on_refresh
        self.live = False
        self.last_error: str | None = "not connected yet"
        self.notified_seq = 0
        self._wake = asyncio.Event()
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._counter = itertools.count()
        self._subs: dict[str, set[asyncio.Event]] = {}
        self._acked: dict[str, int] = {}
        self.acked_max = 0
        self._first_attempt = asyncio.Event()
        self._watches_ended = False

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self, *, wait: float = 0.0) -> None:
        """Start following; wait up to ``wait`` seconds for the first attempt to load the cache
        (whether it succeeds or not: PostgreSQL being down must not hold the API's startup)."""
        self._task = asyncio.create_task(self._run(), name="projection-feed")
        if wait > 0:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._first_attempt.wait(), wait)

    def end_watches(self) -> None:
        """Shutdown begins: SSE watchers end their streams (writers keep waiting, bounded)."""
        self._watches_ended = True
        self.wake_all_watchers()

    async def close(self) -> None:
        self.end_watches()
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

    @property
    def closing(self) -> bool:
        """True once watchers should end (shutdown began)."""
        return self._watches_ended or self._closing.is_set()

    @property
    def seq(self) -> int:
        """The checkpoint the cache reflects (-1 before the first load)."""
        return self.cache.seq

    # --- read-your-writes --------------------------------------------------------------------

    def note_ack(self, service: str, seq: int) -> None:
        """Remember the newest stream sequence this process acknowledged for ``service``."""
        if seq > self._acked.get(service, 0):
            self._acked[service] = seq
        if seq > self.acked_max:
            self.acked_max = seq

    def acked(self, service: str) -> int:
        return self._acked.get(service, 0)

    async def wait_for(self, seq: int, timeout: float) -> bool:
        """True once the cache reflects stream sequence ``seq``; False after ``timeout`` seconds."""
        if self.cache.seq >= seq:
            return True
        if timeout <= 0 or self._closing.is_set():
            return False
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        item = (seq, next(self._counter), fut)
        heapq.heappush(self._waiters, item)
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
        return self.cache.seq >= seq

    def _release_waiters(self) -> None:
        while self._waiters and self._waiters[0][0] <= self.cache.seq:
            _, _, fut = heapq.heappop(self._waiters)
            if not fut.done():
                fut.set_result(None)

    # --- SSE fan-out -------------------------------------------------------------------------

    def subscribe(self, service: str) -> asyncio.Event:
        """An event set whenever ``service`` changes (and on shutdown); the watcher clears it."""
        event = asyncio.Event()
        self._subs.setdefault(service, set()).add(event)
        return event

    def unsubscribe(self, service: str, event: asyncio.Event) -> None:
        subs = self._subs.get(service)
        if subs is not None:
            subs.discard(event)
            if not subs:
                del self._subs[service]

    @property
    def watchers(self) -> int:
        return sum(len(s) for s in self._subs.values())

    def wake_all_watchers(self) -> None:
        for subs in self._subs.values():
            for event in subs:
                event.set()

    # --- the loop ----------------------------------------------------------------------------

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            seq = int(payload)
        except ValueError:
            seq = 0
        self.notified_seq = max(self.notified_seq, seq)
        if seq == 0 or seq > self.cache.seq:
            self._wake.set()

    def _on_terminated(self, _conn: object) -> None:
        self._wake.set()

    async def _run(self) -> None:
        backoff = 0.05
        while not self._closing.is_set():
            conn: Any = None
            try:
                conn = await connect(self.dsn, timeout=self.timeout)
                with pg_errors("listen"):
                    await conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
                conn.add_termination_listener(self._on_terminated)
                await self._refresh(conn)
                self.live, self.last_error, backoff = True, None, 0.05
                self._first_attempt.set()
                log.info("following the projection at checkpoint %d", self.cache.seq)
                while not self._closing.is_set():
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.poll_interval)
                    self._wake.clear()
                    if self._closing.is_set():
                        break
                    if conn.is_closed():
                        raise LedgerError("listener connection closed")
                    await self._refresh(conn)
            except (LedgerError, db.PostgresError, OSError) as exc:
                if self.live:
                    log.warning("lost the projection feed: %s", exc)
                self.live = False
                self.last_error = str(exc)
                self.wake_all_watchers()  # watchers re-check through the pool
            except Exception as exc:  # a bug: log it, keep following (the readers fall back)
                log.exception("projection feed failed; reconnecting")
                self.live = False
                self.last_error = f"{type(exc).__name__}: {exc}"
                self.wake_all_watchers()
            finally:
                self.live = False
                self._first_attempt.set()
                await db.close(conn)
            if not self._closing.is_set():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), backoff)
                backoff = min(backoff * 2, 2.0)

    async def _refresh(self, conn: Any) -> None:
        since = self.cache.seq if self.cache.seq >= 0 else None
        with pg_errors("refresh"):
            checkpoint, rows = await changed_since(conn, since)
            full = since is None
            if since is not None and checkpoint < since:
                log.warning("projection checkpoint went back (%d < %d): reloading", checkpoint, since)
                checkpoint, rows = await changed_since(conn, None)
                full = True
        changed = self.cache.apply(checkpoint, rows, full=full)
        self._release_waiters()
        if full:
            self.wake_all_watchers()
        else:
            for service in changed:
                for event in self._subs.get(service, ()):
                    event.set()
        if self.on_refresh is not None:
            self.on_refresh(checkpoint)
