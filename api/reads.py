"""``ConfigReader``: where a read is answered from — the cache, PostgreSQL, or the stream.

Current config (the hot path): from the in-process cache when it is live and at least as new as
what the reader must see — the newest write this process acknowledged for that service, and the
client's ``X-Min-Seq`` / ``?min_seq=``. Otherwise from the stream itself (the source of truth, one
direct get), so a client always reads its own writes even while the projection lags. With the
feed down, PostgreSQL answers through the pool.

With PostgreSQL down altogether, current reads come from the stream (NATS direct get); everything
else (versions, instants, history, snapshot, diff) needs PostgreSQL and answers 503.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from ledger import Ledger
from ledger.errors import Unavailable

from .cache import CachedConfig
from .metrics import Metrics
from .projection_wait import ProjectionFeed
from .repository import Repository, Version
from .views import version_from_entry

__all__ = ["ConfigReader", "CurrentRead"]

Source = Literal["cache", "postgres", "stream"]


@dataclass(frozen=True)
class CurrentRead:
    entry: CachedConfig | None  # None: the service never existed
    source: Source
    projected_seq: int


class ConfigReader:
    def __init__(
        self, feed: ProjectionFeed, repo: Repository, ledger: Ledger, metrics: Metrics, *, wait: float
    ) -> None:
        self.feed = feed
        self.repo = repo
        self.ledger = ledger
        self.metrics = metrics
        self.wait = wait

    def cached(self, service: str) -> tuple[bool, CachedConfig | None]:
        """The hot path, without a coroutine: ``(True, entry or None)`` when the cache may answer
        this reader on its own; ``(False, None)`` when ``current`` must decide."""
        feed = self.feed
        if feed.live and feed.cache.seq >= feed.acked(service):
            return True, feed.cache.get(service)
        return False, None

    async def current(self, service: str, min_seq: int = 0) -> CurrentRead:
        need = max(min_seq, self.feed.acked(service))
        feed = self.feed
        if feed.live:
            if feed.seq >= need:
                return CurrentRead(feed.cache.get(service), "cache", feed.seq)
            if self.ledger.nc.is_connected:
                # The projection is behind what this reader must see: one direct get on the
                # stream (~0.5 ms) beats waiting for the projector's next batch.
                return await self._from_stream(service, need)
            if await feed.wait_for(need, self.wait):
                return CurrentRead(feed.cache.get(service), "cache", feed.seq)
            raise Unavailable(
                f"the projection has not caught up with stream sequence {need} and NATS is unavailable"
            )
        try:
            row, checkpoint = await self._from_postgres(service)
        except Unavailable:
            if not self.ledger.nc.is_connected:
                raise
            return await self._from_stream(service, need)  # the truth, when the projection is down
        if checkpoint >= need or (row is not None and row.stream_seq >= need):
            return CurrentRead(CachedConfig.of(row) if row else None, "postgres", checkpoint)
        return await self._from_stream(service, need)

    async def _from_postgres(self, service: str) -> tuple[Version | None, int]:
        # Checkpoint first, row second: the row is then at least as new as the checkpoint says.
        # (The other order lets a batch committed in between make a stale row look current.)
        status = await self.repo.status()
        row = await self.repo.current(service)
        return row, status.last_applied_seq

    async def _from_stream(self, service: str, need: int) -> CurrentRead:
        if not self.ledger.nc.is_connected:
            raise Unavailable(
                f"the projection has not caught up with stream sequence {need} and NATS is unavailable"
            )
        self.metrics.stream_fallbacks.inc()
        entry = await self.ledger.current_entry(service)
        version = version_from_entry(entry) if entry else None
        return CurrentRead(CachedConfig.of(version) if version else None, "stream", self.feed.seq)

    async def version(self, service: str, version: int) -> Version | None:
        return await self.repo.version(service, version)

    async def at(self, service: str, instant: datetime) -> Version | None:
        return await self.repo.at(service, instant)

    async def resolve(self, service: str, ref: int | datetime) -> Version | None:
        """A version number or an instant → the version it names (None: none)."""
        if isinstance(ref, datetime):
            return await self.repo.at(service, ref)
        return await self.repo.version(service, ref)
