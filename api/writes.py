"""``ConfigWriter``: every write goes through the ledger and answers once JetStream stored it.

The stream is the truth: a write is acknowledged as soon as JetStream has stored the event
(CAS-checked, fsynced). Nothing waits for PostgreSQL. The reader is told the stream sequence
(``ConfigReader.note_ack``) so that this process's later reads reflect it (read-your-writes).
``projected`` in the answer says whether the projection (PostgreSQL) already reflects the write
when the answer leaves — usually not yet; the projector catches up within milliseconds.

Idempotency: an ``Idempotency-Key`` maps to a fixed ``event_id``
(``ledger.event.idempotency_event_id``). Inside NATS's duplicate window the ledger itself
recognises a retry; beyond it, the projection is asked first (``config_versions.event_id``) —
only for writes that carry a key. A retry returns the original result and appends nothing; the
same key with a different change is refused (422).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from ledger import Change, Delete, Ledger, NotFound, Patch, Replace, Rollback, VersionConflict
from ledger.errors import Unavailable
from ledger.event import format_time, idempotency_event_id
from ledger.ledger import Guard

from .errors import Unprocessable
from .metrics import Metrics
from .projection_wait import ProjectionFeed
from .reads import ConfigReader
from .repository import Repository, Version
from .views import not_found_message

__all__ = ["ConfigWriter", "WriteResult"]

log = logging.getLogger("api.writes")


@dataclass(frozen=True)
class WriteResult:
    service: str
    version: int
    seq: int
    kind: str
    event_id: str
    hash: str
    duplicate: bool  # an idempotent retry: nothing was appended
    projected: bool  # the projection (PostgreSQL) already reflected it when the answer left
    unchanged: bool = False  # a no-op write: nothing appended, version is the current one
    append_s: float = 0.0  # time in the ledger (until JetStream acknowledged)

    def server_timing(self) -> str:
        return f"append;dur={self.append_s * 1000:.2f}"

    def body(self, message: str) -> dict[str, Any]:
        return {
            "status": "success",
            "message": message,
            "service": self.service,
            "version": self.version,
            "seq": self.seq,
            "kind": self.kind,
            "event_id": self.event_id,
            "hash": self.hash,
            "projected": self.projected,
            "duplicate": self.duplicate,
            "unchanged": self.unchanged,
        }


def _same_intent(change: Change, kind: str, recorded: Any) -> bool:
    """Does a stored event record the change a retry asks for?"""
    if kind != change.kind.value:
        return False
    if isinstance(change, Replace):
        return bool(recorded == change.config)
    if isinstance(change, Patch):
        return bool(recorded == change.patch)
    if isinstance(change, Rollback):
        if not isinstance(recorded, dict):
            return False
        if change.to_version is not None:
            return bool(recorded.get("to_version") == change.to_version)
        assert change.to_time is not None
        return bool(recorded.get("to_time") == format_time(change.to_time))
    return isinstance(change, Delete)


class ConfigWriter:
    def __init__(
        self, ledger: Ledger, reader: ConfigReader, feed: ProjectionFeed, repo: Repository, metrics: Metrics
    ) -> None:
        self.ledger = ledger
        self.reader = reader
        self.feed = feed
        self.repo = repo
        self.metrics = metrics

    async def write(
        self,
        service: str,
        change: Change,
        *,
        actor: str,
        reason: str,
        if_match: int | str | None = None,
        idempotency_key: str | None = None,
        metadata: dict[str, str] | None = None,
        guard: Guard | None = None,
    ) -> WriteResult:
        if idempotency_key is not None:
            prior = await self._prior(service, idempotency_key)
            if prior is not None:
                if not _same_intent(change, prior.kind, prior.change):
                    raise self._mismatch()
                self.reader.note_ack(service, prior.stream_seq)
                self.metrics.appends.labels(change.kind.value, "duplicate").inc()
                return WriteResult(
                    service, prior.version, prior.stream_seq, prior.kind, prior.event_id or "",
                    prior.hash, duplicate=True, projected=True,
                )
        await self.ledger.wait_connected()  # a failover to another node of a cluster: a moment
        expected = await self._expected(service, if_match)
        started = time.perf_counter()
        try:
            appended = await self.ledger.append(
                service,
                change,
                actor=actor,
                reason=reason,
                expected_version=expected,
                idempotency_key=idempotency_key,
                metadata=metadata,
                guard=guard,
            )
        except VersionConflict:
            self.metrics.conflicts.inc()
            raise
        if not appended.unchanged and not appended.duplicate:
            self.metrics.append_latency.observe(time.perf_counter() - started)
        event = appended.event
        if appended.duplicate and not _same_intent(change, event.kind.value, event.change):
            raise self._mismatch()
        self.reader.note_ack(service, appended.seq)
        self.metrics.appends.labels(
            change.kind.value,
            "unchanged" if appended.unchanged else "duplicate" if appended.duplicate else "appended",
        ).inc()
        return WriteResult(
            service, event.version, appended.seq, event.kind.value, event.event_id, event.hash,
            duplicate=appended.duplicate, projected=self.feed.seq >= appended.seq,
            unchanged=appended.unchanged, append_s=time.perf_counter() - started,
        )

    async def _prior(self, service: str, key: str) -> Version | None:
        if not key or len(key) > 200:
            return None  # the ledger refuses it with the rule
        try:
            return await self.repo.by_event_id(idempotency_event_id(service, key))
        except Unavailable as exc:
            # Inside NATS's duplicate window the ledger still recognises the retry.
            log.info("idempotency lookup skipped (%s); relying on the stream's dedup", exc)
            return None

    async def _expected(self, service: str, if_match: int | str | None) -> int | None:
        if if_match is None or isinstance(if_match, int):
            return if_match
        # "If-Match: *": the config must exist now, and must not change before this write.
        entry = await self.ledger.current_entry(service)
        if entry is None or entry.event.config is None:
            raise NotFound(not_found_message(service), details={"service": service})
        return entry.event.version

    @staticmethod
    def _mismatch() -> Unprocessable:
        return Unprocessable(
            "idempotency.key_reused",
            "this Idempotency-Key was already used for a different change of this service",
        )

