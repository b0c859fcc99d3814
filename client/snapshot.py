"""What a source reports: one service's config at one version, and where it came from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from ledger import Entry, EventKind

__all__ = ["Source", "Snapshot"]


class Source(StrEnum):
    """Where the config a client holds came from, best first."""

    STREAM = "stream"
    API = "api"
    LKG = "lkg"
    DEFAULTS = "defaults"


@dataclass(frozen=True)
class Snapshot:
    """A service's config as a source reported it.

    ``config`` is None when the service has no config there (deleted, or never created);
    ``version`` is None when the source does not know one (safe defaults, HTTP 404).
    """

    version: int | None
    config: dict[str, Any] | None
    source: Source
    updated_at: datetime | None = None
    seq: int | None = None  # stream sequence, for snapshots read from the stream

    @classmethod
    def from_entry(cls, entry: Entry) -> Snapshot:
        event = entry.event
        config = None if event.kind is EventKind.DELETED else event.config
        return cls(event.version, config, Source.STREAM, event.occurred_at, entry.seq)
