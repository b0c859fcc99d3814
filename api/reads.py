"""``ConfigReader``: where a read is answered from — the stream follower, the stream, or PostgreSQL.

Current config (the hot path) comes from the API's own stream follower (``api.follower``): the
current documents in memory, in stream order. A read is served from there when the follower has
reached what the reader must see:

- the newest write *this process* acknowledged for that service (read-your-writes: a GET after
  a POST on the same process always sees that version or later);
- ``X-Min-Seq`` / ``?min_seq=``: a stream sequence (e.g. a write's ``X-Ledger-Seq``);
- ``?min_version=`` / ``If-None-Match: "N"``: a version the reader has already seen, possibly
  from another API process behind the same load balancer — it never gets an older one.

If the follower is behind (briefly: it is fed by the same server that acknowledged the write),
the read waits for it up to ``FOLLOW_WAIT`` seconds, then reads the subject's last message
directly (one NATS round trip: the truth). With NATS down, the follower's documents still answer
what they satisfy, then this process's own last append (``Ledger.known``), then PostgreSQL;
otherwise 503.

Versions, instants, history and diff come from PostgreSQL (the projection); they first wait,
bounded, until the projection has reached this process's own newest write for that service.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from ledger import Entry, Ledger
from ledger.errors import Unavailable

from .cache import CachedConfig
from .follower import StreamFollower
from .metrics import Metrics
from .projection_wait import ProjectionFeed
from .repository import Repository, Version
from .views import version_from_entry

__all__ = ["ConfigReader", "CurrentRead", "FOLLOW_WAIT"]

Source = Literal["cache", "postgres", "stream", "ledger"]

FOLLOW_WAIT = 0.05  # how long a read waits for the follower before asking the stream directly


@dataclass(frozen=True)
class CurrentRead:
    entry: CachedConfig | None  # None: the service never existed
    source: Source
    stream_seq: int  # the follower's position when it answered (0 otherwise)


def _satisfies(entry: CachedConfig | None, min_version: int) -> bool:
    return min_version <= 0 or (entry is not None and entry.version.version >= min_version)


class ConfigReader:
    def __init__(
        self,
        follower: StreamFollower,
        feed: ProjectionFeed,
        repo: Repository,
        ledger: Ledger,
        metrics: Metrics,
        *,
        wait: float,
    ) -> None:
        self.follower = follower
        self.feed = feed
        self.repo = repo
        self.ledger = ledger
        self.metrics = metrics
        self.wait = wait
        self._acked: dict[str, int] = {}
        self.acked_max = 0

    # --- read-your-writes --------------------------------------------------------------------

    def note_ack(self, service: str, seq: int) -> None:
        """Remember the newest stream sequence this process acknowledged for ``service``."""
        if seq > self._acked.get(service, 0):
            self._acked[service] = seq
        if seq > self.acked_max:
            self.acked_max = seq

    def acked(self, service: str) -> int:
        return self._acked.get(service, 0)

    # --- current -----------------------------------------------------------------------------

    def cached(self, service: str) -> tuple[bool, CachedConfig | None]:
        """The hot path, without a coroutine: ``(True, entry or None)`` when the follower may
        answer this reader on its own; ``(False, None)`` when ``current`` must decide."""
        f = self.follower
        if f.caught_up and f.seq >= self._acked.get(service, 0):
            return True, f.get(service)
        return False, None

    async def current(self, service: str, min_seq: int = 0, min_version: int = 0) -> CurrentRead:
        f = self.follower
        need = max(min_seq, self.acked(service))
        connected = self.ledger.nc.is_connected
        if f.caught_up:
            if f.seq < need and connected:
                await f.wait_for(need, FOLLOW_WAIT)
            if f.seq >= need:
                entry = f.get(service)
                if _satisfies(entry, min_version):
                    return CurrentRead(entry, "cache", f.seq)
        if connected:
            return await self._from_stream(service)
        known = self.ledger.known(service)
        if known is not None and known[0] >= need:
            # NATS went down before the follower saw this process's own write: the ledger still
            # holds the event it appended (its store time unknown here: the event's own time).
            event = known[1]
            entry = CachedConfig.of(version_from_entry(Entry(event, known[0], event.occurred_at)))
            if _satisfies(entry, min_version):
                return CurrentRead(entry, "ledger", 0)
        try:
            row, checkpoint = await self._from_postgres(service)
        except Unavailable:
            raise Unavailable(
                f"cannot read {service!r} as of stream sequence {need} / version {min_version}: "
                "NATS is not connected and PostgreSQL is unavailable"
            ) from None
        entry = CachedConfig.of(row) if row else None
        if (checkpoint >= need or (row is not None and row.stream_seq >= need)) and _satisfies(entry, min_version):
            return CurrentRead(entry, "postgres", 0)
        raise Unavailable(
            f"the projection has not reached what this read must see (stream sequence {need}, "
            f"version {min_version}) and NATS is not connected"
        )

    async def _from_postgres(self, service: str) -> tuple[Version | None, int]:
        # Checkpoint first, row second: the row is then at least as new as the checkpoint says.
        status = await self.repo.status()
        row = await self.repo.current(service)
        return row, status.last_applied_seq

    async def _from_stream(self, service: str) -> CurrentRead:
        self.metrics.stream_fallbacks.inc()
        entry = await self.ledger.current_entry(service)
        version = version_from_entry(entry) if entry else None
        return CurrentRead(CachedConfig.of(version) if version else None, "stream", 0)

    # --- the projection ----------------------------------------------------------------------

    async def projected(self, service: str | None = None) -> None:
        """Wait (bounded) until the projection reflects this process's newest write for
        ``service`` (every service: None); past the bound, answer from what is projected."""
        need = self.acked_max if service is None else self.acked(service)
        if need and self.feed.live and self.feed.seq < need:
            await self.feed.wait_for(need, self.wait)

    async def version(self, service: str, version: int) -> Version | None:
        await self.projected(service)
        return await self.repo.version(service, version)

    async def at(self, service: str, instant: datetime) -> Version | None:
        await self.projected(service)
        return await self.repo.at(service, instant)

    async def resolve(self, service: str, ref: int | datetime) -> Version | None:
        """A version number or an instant → the version it names (None: none)."""
        if isinstance(ref, datetime):
            return await self.at(service, ref)
        return await self.version(service, ref)
